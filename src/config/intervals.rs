//! How often each background job runs (`crate::jobs`): one setting per job,
//! each a flag and an environment variable like every other setting.

use std::time::Duration;

use clap::Args;

/// The intervals of the background jobs, in seconds.
#[derive(Debug, Clone, Args)]
pub struct JobIntervals {
    /// Seconds between this replica's heartbeats; the service health counts a
    /// replica alive for three of them plus 5 seconds.
    #[arg(long = "heartbeat-seconds", env = "TOKENVAULT_HEARTBEAT_SECONDS", default_value_t = 5,
          value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub heartbeat_seconds: u64,

    /// Seconds between writes of the API keys' last-use times.
    #[arg(long = "key-use-flush-seconds", env = "TOKENVAULT_KEY_USE_FLUSH_SECONDS", default_value_t = 5,
          value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub key_use_flush_seconds: u64,

    /// Seconds between the audit-log entries that count each key's token reads
    /// and refused invalidation reports (one entry per key and interval).
    #[arg(long = "audit-flush-seconds", env = "TOKENVAULT_AUDIT_FLUSH_SECONDS", default_value_t = 60,
          value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400), global = true)]
    pub audit_flush_seconds: u64,

    /// Seconds between prunings of the refresh log (entries older than
    /// `TOKENVAULT_REFRESH_LOG_DAYS`) and of past days' upstream budgets.
    #[arg(long = "log-prune-seconds", env = "TOKENVAULT_LOG_PRUNE_SECONDS", default_value_t = 600,
          value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400), global = true)]
    pub log_prune_seconds: u64,

    /// Seconds between deletions of expired sessions.
    #[arg(long = "session-prune-seconds", env = "TOKENVAULT_SESSION_PRUNE_SECONDS", default_value_t = 60,
          value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400), global = true)]
    pub session_prune_seconds: u64,

    /// Seconds between prunings of the in-memory sign-in and failed-key
    /// throttles and of the refused-key cache.
    #[arg(long = "throttle-prune-seconds", env = "TOKENVAULT_THROTTLE_PRUNE_SECONDS", default_value_t = 60,
          value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub throttle_prune_seconds: u64,

    /// Seconds between looks at the mail outbox for mails due (`crate::mail`).
    #[arg(long = "mail-send-seconds", env = "TOKENVAULT_MAIL_SEND_SECONDS", default_value_t = 5,
          value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub mail_send_seconds: u64,
}

impl JobIntervals {
    /// Between looks at the mail outbox.
    pub fn mail_send(&self) -> Duration {
        Duration::from_secs(self.mail_send_seconds)
    }

    /// Between heartbeats.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_seconds)
    }

    /// Between writes of the keys' last-use times.
    pub fn key_use_flush(&self) -> Duration {
        Duration::from_secs(self.key_use_flush_seconds)
    }

    /// Between the token-read audit entries.
    pub fn audit_flush(&self) -> Duration {
        Duration::from_secs(self.audit_flush_seconds)
    }

    /// Between prunings of the refresh log and the upstream budgets.
    pub fn log_prune(&self) -> Duration {
        Duration::from_secs(self.log_prune_seconds)
    }

    /// Between deletions of expired sessions.
    pub fn session_prune(&self) -> Duration {
        Duration::from_secs(self.session_prune_seconds)
    }

    /// Between prunings of the in-memory throttles.
    pub fn throttle_prune(&self) -> Duration {
        Duration::from_secs(self.throttle_prune_seconds)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        intervals: JobIntervals,
    }

    /// Parsed from `args` alone: the variables of the test's environment unbound.
    fn parse(args: &[&str]) -> Result<JobIntervals, clap::Error> {
        use clap::builder::Resettable;
        use clap::{CommandFactory as _, FromArgMatches as _};
        let matches = Flags::command()
            .mut_args(|arg| arg.env(Resettable::Reset))
            .try_get_matches_from(std::iter::once("tokenvault").chain(args.iter().copied()))?;
        Flags::from_arg_matches(&matches).map(|f| f.intervals)
    }

    #[test]
    fn the_defaults_are_the_intervals_the_jobs_always_had() {
        let defaults = parse(&[]).unwrap();
        assert_eq!(defaults.heartbeat(), Duration::from_secs(5));
        assert_eq!(defaults.key_use_flush(), Duration::from_secs(5));
        assert_eq!(defaults.audit_flush(), Duration::from_secs(60));
        assert_eq!(defaults.log_prune(), Duration::from_secs(600));
        assert_eq!(defaults.session_prune(), Duration::from_secs(60));
        assert_eq!(defaults.throttle_prune(), Duration::from_secs(60));
    }

    #[test]
    fn an_interval_out_of_range_names_its_flag() {
        for (flag, bad) in [
            ("--heartbeat-seconds", "0"),
            ("--key-use-flush-seconds", "3601"),
            ("--audit-flush-seconds", "0"),
            ("--log-prune-seconds", "86401"),
            ("--session-prune-seconds", "-1"),
            ("--throttle-prune-seconds", "soon"),
        ] {
            let err = parse(&[&format!("{flag}={bad}")]).unwrap_err().to_string();
            assert!(err.contains(flag), "{flag}={bad}: {err}");
        }
    }
}
