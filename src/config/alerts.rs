//! The settings of alert delivery: which targets are allowed, how long a
//! delivery may take, how often the outbox is looked at.

use std::time::Duration;

use clap::Args;

/// How alerts are delivered.
#[derive(Debug, Clone, Args)]
pub struct AlertSettings {
    /// Allow alert targets at loopback, private, link-local, unique-local and
    /// metadata addresses (on-premises receivers). Off: such targets are
    /// refused when a channel is created and again at every delivery.
    #[arg(long = "alerts-allow-private-targets", env = "TOKENVAULT_ALERTS_ALLOW_PRIVATE_TARGETS",
          default_value_t = false, action = clap::ArgAction::Set, value_name = "BOOL", global = true)]
    pub allow_private_targets: bool,

    /// Seconds one delivery may take (connecting, sending, reading the answer).
    #[arg(long = "alert-timeout", env = "TOKENVAULT_ALERT_TIMEOUT", default_value_t = 5,
          value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=60), global = true)]
    pub timeout_seconds: u64,

    /// Seconds between looks at the alert outbox when nothing woke the
    /// delivery job earlier.
    #[arg(long = "alert-poll-seconds", env = "TOKENVAULT_ALERT_POLL_SECONDS", default_value_t = 2,
          value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub poll_seconds: u64,

    /// Seconds before the first retry of a failed delivery; each further
    /// retry waits twice as long (at most an hour), for 24 hours in all.
    #[arg(long = "alert-retry-base", env = "TOKENVAULT_ALERT_RETRY_BASE", default_value_t = 30,
          value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub retry_base_seconds: u64,

    /// Minutes within which a channel gets at most one `app.failing` (and its
    /// `app.recovered`) per app.
    #[arg(long = "alert-damping-minutes", env = "TOKENVAULT_ALERT_DAMPING_MINUTES", default_value_t = 30,
          value_name = "MINUTES", value_parser = clap::value_parser!(u32).range(0..=1440), global = true)]
    pub damping_minutes: u32,

    /// Seconds an `app.failing` or `app.recovered` delivery waits before it
    /// is sent, so that the changes of many apps at once go out as one
    /// summary per channel.
    #[arg(long = "alert-summary-gather-seconds", env = "TOKENVAULT_ALERT_SUMMARY_GATHER_SECONDS",
          default_value_t = 5, value_name = "SECONDS",
          value_parser = clap::value_parser!(u32).range(0..=300), global = true)]
    pub summary_gather_seconds: u32,

    /// A channel gets one summary instead of single messages when more than
    /// this many of its `app.failing` (or `app.recovered`) deliveries are
    /// waiting together.
    #[arg(long = "alert-summary-threshold", env = "TOKENVAULT_ALERT_SUMMARY_THRESHOLD",
          default_value_t = 3, value_name = "APPS",
          value_parser = clap::value_parser!(u32).range(1..=1000), global = true)]
    pub summary_threshold: u32,
}

impl AlertSettings {
    /// How long one delivery may take.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }

    /// The wait before retry number `attempts` (1 for the first retry).
    pub fn retry_delay(&self, attempts: u32) -> Duration {
        let factor = 2u64.saturating_pow(attempts.saturating_sub(1).min(20));
        Duration::from_secs(self.retry_base_seconds.saturating_mul(factor).min(3600))
    }

    /// How long failing and recovered deliveries wait to be summarised.
    pub fn summary_gather(&self) -> Duration {
        Duration::from_secs(u64::from(self.summary_gather_seconds))
    }

    /// Between looks at the outbox.
    pub fn poll(&self) -> Duration {
        Duration::from_secs(self.poll_seconds)
    }
}
