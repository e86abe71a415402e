//! When to refresh, how long to back off, and what an app's health is:
//! pure functions of the token state, so they can be tested exhaustively.

use std::time::Duration;

use chrono::{DateTime, Datelike as _, FixedOffset, SubsecRound as _, TimeZone as _, Utc};
use rand::Rng;

pub use crate::domain::Health;
use crate::domain::TokenMode;
use crate::upstream::ErrorClass;

/// The current instant at the database's precision (microseconds). A replica
/// that answers from what it has just stored then prints the same instant as
/// one that reads the row back.
#[must_use]
pub fn stored_now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Timing knobs (all scale down to the few-second lifetimes tests use).
#[derive(Debug, Clone)]
pub struct Timing {
    /// Classic tokens are refreshed when this fraction of their life remains.
    pub margin: f64,
    /// Random spread, as a fraction of the lifetime, so apps do not refresh in lockstep.
    pub jitter: f64,
    /// WeChat issues a new stable token only in the last this-long of the old one.
    pub stable_window: Duration,
    /// First retry delay after a transient failure; doubles per failure.
    pub retry_base: Duration,
    /// Longest retry delay after a transient failure.
    pub retry_cap: Duration,
    /// Retry delay after a configuration error (the owner must act; we keep checking slowly).
    pub config_retry: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            margin: 0.2,
            jitter: 0.05,
            stable_window: Duration::from_secs(300),
            retry_base: Duration::from_secs(2),
            retry_cap: Duration::from_secs(300),
            config_retry: Duration::from_secs(600),
        }
    }
}

// Token lifetimes and delays are seconds to days: far inside f64's exact range.
#[allow(clippy::cast_precision_loss)]
fn secs(d: chrono::Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

#[allow(clippy::cast_possible_truncation)]
fn after(t: DateTime<Utc>, seconds: f64) -> DateTime<Utc> {
    t + chrono::Duration::milliseconds((seconds * 1000.0).round() as i64)
}

/// When to refresh a token fetched at `fetched_at` that expires at `expires_at`.
///
/// Classic: at `lifetime × (1 − margin)`, minus jitter. Stable: inside WeChat's
/// renewal window (the last `stable_window`, scaled down for short lifetimes),
/// since an earlier call only returns the same token. Never before `now + 1 s`,
/// never after expiry.
pub fn next_refresh(
    mode: TokenMode,
    now: DateTime<Utc>,
    fetched_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    timing: &Timing,
    rng: &mut impl Rng,
) -> DateTime<Utc> {
    let lifetime = secs(expires_at - fetched_at).max(1.0);
    let at = match mode {
        TokenMode::Classic => {
            let jitter = rng.gen_range(0.0..=timing.jitter * lifetime);
            after(fetched_at, lifetime * (1.0 - timing.margin) - jitter)
        }
        TokenMode::Stable => {
            let window = timing
                .stable_window
                .as_secs_f64()
                .min(lifetime * timing.margin);
            // Somewhere in the first half of the window: a new token is
            // issued, and half a window is left for retries before expiry.
            after(expires_at, -window + rng.gen_range(0.0..=window * 0.5))
        }
    };
    clamp(at, now, expires_at)
}

/// When to try again after a stable fetch returned the token we already
/// hold (we were early, or the window is shorter than configured): a quarter
/// of the remaining life later.
pub fn next_after_unchanged(now: DateTime<Utc>, expires_at: DateTime<Utc>) -> DateTime<Utc> {
    let remaining = secs(expires_at - now).max(0.0);
    clamp(after(now, remaining * 0.25), now, expires_at)
}

fn clamp(at: DateTime<Utc>, now: DateTime<Utc>, expires_at: DateTime<Utc>) -> DateTime<Utc> {
    let earliest = after(now, 1.0);
    if expires_at <= earliest {
        return earliest;
    }
    at.clamp(earliest, expires_at)
}

/// When to retry after the `streak`-th failure in a row (1 for the first).
pub fn next_retry(
    class: ErrorClass,
    errcode: Option<i64>,
    streak: u32,
    now: DateTime<Utc>,
    timing: &Timing,
    rng: &mut impl Rng,
) -> DateTime<Utc> {
    let jittered = |base: f64, rng: &mut dyn rand::RngCore| base * rng.gen_range(0.75..=1.25);
    match class {
        ErrorClass::Transient => {
            let exp = 2f64.powi(i32::try_from(streak.saturating_sub(1).min(20)).unwrap_or(20));
            let delay = (timing.retry_base.as_secs_f64() * exp).min(timing.retry_cap.as_secs_f64());
            after(now, jittered(delay, rng).max(0.2))
        }
        ErrorClass::Quota if errcode == Some(45011) => {
            // Per-minute limit: the next minute.
            let next_minute =
                60.0 - f64::from(u32::try_from(now.timestamp().rem_euclid(60)).unwrap_or(0));
            after(now, next_minute + rng.gen_range(0.0..=5.0))
        }
        ErrorClass::Quota => {
            next_quota_day(now) + chrono::Duration::seconds(rng.gen_range(0..=120))
        }
        ErrorClass::Configuration | ErrorClass::Bug => {
            let exp = 2f64.powi(i32::try_from(streak.saturating_sub(1).min(3)).unwrap_or(3));
            let delay = (timing.config_retry.as_secs_f64() * exp)
                .min(timing.config_retry.as_secs_f64() * 6.0);
            after(now, jittered(delay, rng))
        }
    }
}

/// `d` as a chrono duration (saturating: a duration too long to count is forever).
pub fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// WeChat's quota day of `now`: the date in Beijing (UTC+8).
pub fn quota_day(now: DateTime<Utc>) -> chrono::NaiveDate {
    (now + chrono::Duration::hours(8)).date_naive()
}

/// WeChat's daily quotas reset at midnight Beijing time.
pub fn next_quota_day(now: DateTime<Utc>) -> DateTime<Utc> {
    let beijing = FixedOffset::east_opt(8 * 3600)
        .unwrap_or_else(|| FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!()));
    let local = now.with_timezone(&beijing);
    let tomorrow = local.date_naive().succ_opt().unwrap_or(local.date_naive());
    beijing
        .with_ymd_and_hms(tomorrow.year(), tomorrow.month(), tomorrow.day(), 0, 0, 0)
        .single()
        .map_or(now + chrono::Duration::days(1), |t| t.with_timezone(&Utc))
}

/// An app's health (the rule is the domain's: [`Health::derive`]).
pub fn health(
    enabled: bool,
    token_valid: bool,
    failure_streak: i32,
    last_class: Option<ErrorClass>,
) -> Health {
    Health::derive(enabled, token_valid, failure_streak, last_class)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(7)
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn classic_refreshes_before_the_margin_with_jitter() {
        let timing = Timing::default();
        for _ in 0..200 {
            let at = next_refresh(TokenMode::Classic, t(0), t(0), t(7200), &timing, &mut rng());
            assert!(at <= t(5760) && at >= t(5760 - 360), "{at}");
        }
    }

    #[test]
    fn stable_refreshes_inside_the_renewal_window() {
        let timing = Timing::default();
        let mut r = rng();
        for _ in 0..200 {
            let at = next_refresh(TokenMode::Stable, t(0), t(0), t(7200), &timing, &mut r);
            assert!(at >= t(6900) && at <= t(7050), "{at}");
        }
    }

    #[test]
    fn short_test_lifetimes_scale() {
        let timing = Timing {
            stable_window: Duration::from_secs(2),
            ..Timing::default()
        };
        let mut r = rng();
        for _ in 0..100 {
            let at = next_refresh(TokenMode::Stable, t(0), t(0), t(10), &timing, &mut r);
            assert!(at >= t(8) && at <= t(9), "{at}");
            let at = next_refresh(TokenMode::Classic, t(0), t(0), t(10), &timing, &mut r);
            assert!(at >= t(7) && at <= t(8), "{at}");
        }
        // Never a busy loop, never past expiry.
        let at = next_refresh(TokenMode::Classic, t(100), t(0), t(10), &timing, &mut r);
        assert_eq!(at, t(101));
        assert!(next_after_unchanged(t(0), t(100)) == t(25));
    }

    #[test]
    fn backoff_by_class() {
        let timing = Timing::default();
        let mut r = rng();
        let first = next_retry(ErrorClass::Transient, None, 1, t(0), &timing, &mut r);
        assert!(first >= t(1) && first <= t(3), "{first}");
        let later = next_retry(ErrorClass::Transient, None, 6, t(0), &timing, &mut r);
        assert!(later >= t(48) && later <= t(80), "{later}");
        let capped = next_retry(ErrorClass::Transient, None, 60, t(0), &timing, &mut r);
        assert!(capped <= t(375), "{capped}");
        let minute = next_retry(ErrorClass::Quota, Some(45011), 1, t(30), &timing, &mut r);
        assert!(minute >= t(60) && minute <= t(66), "{minute}");
        let config = next_retry(
            ErrorClass::Configuration,
            Some(40001),
            1,
            t(0),
            &timing,
            &mut r,
        );
        assert!(config >= t(450) && config <= t(750), "{config}");
    }

    #[test]
    fn daily_quota_waits_for_beijing_midnight() {
        // 2026-11-25 15:59:59 UTC is 23:59:59 in Beijing.
        let now = DateTime::parse_from_rfc3339("2026-11-25T15:59:59Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            next_quota_day(now).to_rfc3339(),
            "2026-11-25T16:00:00+00:00"
        );
        let now = DateTime::parse_from_rfc3339("2026-11-25T16:00:01Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            next_quota_day(now).to_rfc3339(),
            "2026-11-26T16:00:00+00:00"
        );
    }
}
