//! The gate every upstream call of an app passes, whatever asked for it:
//! the schedule, a token read, "refresh now", an invalidation report, a
//! registration or an edit (through the schedule). It decides, with the
//! app's token row locked, whether WeChat may be called now.
//!
//! WeChat's quotas and the egress IP's reputation are shared by every
//! tenant, so the rules are about not spending them in vain:
//! - a failure's retry time is honoured by readers and reports; a person's
//!   "refresh now" may go past it, at most once per app per `bypass_interval`;
//! - a daily budget per app mirrors WeChat's quota day (midnight in Beijing),
//!   with a reserve only the scheduler may spend;
//! - invalidation reports refresh only a token older than a minimum age, a
//!   few times an hour, and never beyond WeChat's 20 force refreshes a day;
//! - a stable token read with too little life left is not fetched again
//!   before WeChat's renewal window: WeChat would answer the same token.
//!
//! Pure functions of the row, the budget and the clock: tested exhaustively
//! below.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use super::policy::{self, chrono_duration};
use crate::domain::TokenMode;

pub use crate::domain::Trigger;

/// The gate's limits (settings).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Upstream calls per app per quota day.
    pub daily_calls: u32,
    /// Of those, the last this many only the scheduler may make.
    pub scheduler_reserve: u32,
    /// Force refreshes per app per day (WeChat: 20).
    pub forced_daily: u32,
    /// Least time between two force refreshes (WeChat: 30 s).
    pub forced_interval: Duration,
    /// A person may go past a pending retry time once per app per this long.
    pub bypass_interval: Duration,
    /// An invalidation report refreshes only a token at least this old.
    pub invalidate_min_age: Duration,
    /// Invalidation reports that refresh, per app per hour.
    pub invalidates_per_hour: u32,
    /// WeChat renews a stable token only in its last this-long.
    pub stable_window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            daily_calls: 2000,
            scheduler_reserve: 200,
            forced_daily: 20,
            forced_interval: Duration::from_secs(30),
            bypass_interval: Duration::from_secs(60),
            invalidate_min_age: Duration::from_secs(60),
            invalidates_per_hour: 3,
            stable_window: Duration::from_secs(300),
        }
    }
}

/// An app's upstream spending on the current quota day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spent {
    /// Calls made.
    pub calls: u32,
    /// Force refreshes made.
    pub forced: u32,
    /// The last force refresh (any day).
    pub last_forced_at: Option<DateTime<Utc>>,
}

impl Spent {
    /// The spending on `today`, from a stored row of `day`: a row of an
    /// earlier day counts nothing. A row of a later day (the clock went
    /// back) keeps counting, so a clock jump never hands out a new budget.
    pub fn on(today: NaiveDate, day: NaiveDate, calls: i32, forced: i32) -> (NaiveDate, Self) {
        if day < today {
            (today, Self::default())
        } else {
            (
                day,
                Self {
                    calls: u32::try_from(calls).unwrap_or(0),
                    forced: u32::try_from(forced).unwrap_or(0),
                    last_forced_at: None,
                },
            )
        }
    }
}

/// What the gate knows of the app when it decides.
#[derive(Debug, Clone, Copy)]
pub struct Input {
    /// What asks.
    pub trigger: Trigger,
    /// Stable or classic.
    pub mode: TokenMode,
    /// Failures in a row.
    pub failure_streak: i32,
    /// When the next attempt is planned (a failure's retry time when failing).
    pub next_refresh_at: DateTime<Utc>,
    /// The stored token's fetch time and (trusted) expiry.
    pub fetched_at: Option<DateTime<Utc>>,
    /// See `fetched_at`.
    pub expires_at: Option<DateTime<Utc>>,
    /// When a person last went past a retry time.
    pub last_bypass_at: Option<DateTime<Utc>>,
    /// Today's spending.
    pub spent: Spent,
    /// Refreshes made for invalidation reports in the last hour.
    pub invalidates_last_hour: u32,
}

/// The gate's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Call WeChat (stable mode: with `force_refresh` when `force`).
    Call {
        /// Force a new stable token.
        force: bool,
        /// A person goes past a pending retry time (remembered).
        bypass: bool,
    },
    /// Do not call.
    Refuse(Refusal),
}

/// Why no call is made, and when asking again makes sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The rule.
    pub reason: RefusalReason,
    /// When asking again makes sense (at least a second).
    pub retry_after: Duration,
}

/// The rule that refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// The last attempt failed and its retry time has not come.
    Backoff,
    /// "Refresh now" already went past a retry time less than a minute ago.
    BypassCooldown,
    /// The app's upstream budget for today is spent (for this kind of call).
    BudgetSpent,
    /// Invalidation: the token is younger than the minimum age.
    TokenTooYoung,
    /// Invalidation: the hourly number of invalidations is reached.
    InvalidateLimit,
    /// Invalidation of a stable token: WeChat's force refreshes are used up
    /// for today, or the last one was less than 30 s ago.
    ForceRefreshLimit,
    /// A stable token outside WeChat's renewal window: a call would return it again.
    NotRenewable,
    /// A provider's hourly limit for this call is reached (WeCom's ticket
    /// APIs: per company and per app).
    HourlyLimit,
}

impl RefusalReason {
    /// The stable machine-readable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backoff => "backoff",
            Self::BypassCooldown => "bypass_cooldown",
            Self::BudgetSpent => "budget_spent",
            Self::TokenTooYoung => "token_too_young",
            Self::InvalidateLimit => "invalidate_limit",
            Self::ForceRefreshLimit => "force_refresh_limit",
            Self::NotRenewable => "not_renewable",
            Self::HourlyLimit => "hourly_limit",
        }
    }

    /// What it means and what to do, for people.
    pub fn explain(self) -> &'static str {
        match self {
            Self::Backoff => {
                "the last token request failed and tokenvault waits before asking WeChat again; \
                 fix the cause shown with the failure, or wait for the retry"
            }
            Self::BypassCooldown => {
                "refresh now already went past the retry time less than a minute ago; \
                 wait a minute, or fix the cause and let the next retry run"
            }
            Self::BudgetSpent => {
                "this app's upstream calls for today (WeChat's quota day, midnight Beijing time) \
                 are spent; scheduled refreshes use the reserve, everything else waits for the next day"
            }
            Self::TokenTooYoung => {
                "the reported token was fetched moments ago, so WeChat rejecting it is unlikely to \
                 be the token's fault; check that the call used this app's token"
            }
            Self::InvalidateLimit => {
                "this app's token was refreshed for invalidation reports as often as allowed this \
                 hour; fetch the current token and check what rejects it"
            }
            Self::ForceRefreshLimit => {
                "WeChat allows 20 forced stable-token refreshes a day, at least 30 s apart; \
                 none is left now"
            }
            Self::NotRenewable => {
                "WeChat renews a stable token only in its last minutes, so no token with that much \
                 life can be had now; ask for a smaller min_ttl or retry later"
            }
            Self::HourlyLimit => {
                "WeCom allows each ticket to be fetched at most 400 times an hour per company and \
                 100 times per app; this hour's calls are spent, so tokenvault waits for the next hour"
            }
        }
    }
}

/// Whether a failure's retry time is still pending.
pub fn backing_off(
    failure_streak: i32,
    next_refresh_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    failure_streak > 0 && next_refresh_at > now
}

/// Whether a reader leaves a failing app to the scheduler: while failures
/// last, the scheduler's backoff alone decides when WeChat is asked again
/// (readers get the failure and `Retry-After`), so no number of readers
/// adds a single call to it.
pub fn readers_wait(trigger: Trigger, failure_streak: i32) -> bool {
    trigger == Trigger::OnDemand && failure_streak > 0
}

/// Decide on one upstream call at `now`.
pub fn decide(input: &Input, limits: &Limits, now: DateTime<Utc>) -> Decision {
    let refuse = |reason, until: DateTime<Utc>| {
        Decision::Refuse(Refusal {
            reason,
            retry_after: until_at_least_a_second(now, until),
        })
    };
    if readers_wait(input.trigger, input.failure_streak) {
        return refuse(RefusalReason::Backoff, input.next_refresh_at);
    }
    let mut bypass = false;
    if input.trigger != Trigger::Schedule
        && backing_off(input.failure_streak, input.next_refresh_at, now)
    {
        if input.trigger != Trigger::Manual {
            return refuse(RefusalReason::Backoff, input.next_refresh_at);
        }
        if let Some(at) = input.last_bypass_at
            && now < at + chrono_duration(limits.bypass_interval)
        {
            let until = input
                .next_refresh_at
                .min(at + chrono_duration(limits.bypass_interval));
            return refuse(RefusalReason::BypassCooldown, until);
        }
        bypass = true;
    }
    let allowed = if input.trigger == Trigger::Schedule {
        limits.daily_calls
    } else {
        limits.daily_calls.saturating_sub(limits.scheduler_reserve)
    };
    if input.spent.calls >= allowed {
        return refuse(RefusalReason::BudgetSpent, policy::next_quota_day(now));
    }
    let mut force = false;
    match input.trigger {
        Trigger::Invalidate => {
            let age = input.fetched_at.map_or(chrono::Duration::MAX, |f| now - f);
            let min_age = chrono_duration(limits.invalidate_min_age);
            if age < min_age {
                let fetched = input.fetched_at.unwrap_or(now);
                return refuse(RefusalReason::TokenTooYoung, fetched + min_age);
            }
            if input.invalidates_last_hour >= limits.invalidates_per_hour {
                return refuse(
                    RefusalReason::InvalidateLimit,
                    now + chrono::Duration::minutes(10),
                );
            }
            if input.mode == TokenMode::Stable {
                if input.spent.forced >= limits.forced_daily {
                    return refuse(
                        RefusalReason::ForceRefreshLimit,
                        policy::next_quota_day(now),
                    );
                }
                let spacing = chrono_duration(limits.forced_interval);
                if let Some(at) = input.spent.last_forced_at
                    && now < at + spacing
                {
                    return refuse(RefusalReason::ForceRefreshLimit, at + spacing);
                }
                force = true;
            }
        }
        Trigger::OnDemand if input.mode == TokenMode::Stable => {
            // A valid stable token outside WeChat's renewal window comes back
            // unchanged: calling would spend a call for nothing.
            if let (Some(exp), Some(fetched)) = (input.expires_at, input.fetched_at)
                && exp > now
            {
                let lifetime = (exp - fetched).max(chrono::Duration::seconds(1));
                let window = chrono_duration(limits.stable_window).min(lifetime / 2);
                let renewable_from = exp - window;
                if now < renewable_from {
                    return refuse(RefusalReason::NotRenewable, renewable_from);
                }
            }
        }
        _ => {}
    }
    Decision::Call { force, bypass }
}

/// Whether a further call (an attempt with the secondary secret, after the
/// primary was rejected) still fits today's budget: only the hard limit
/// counts, the reserve is not kept back from a call already admitted.
pub fn another_call_fits(spent_calls: u32, limits: &Limits) -> bool {
    spent_calls < limits.daily_calls
}

fn until_at_least_a_second(now: DateTime<Utc>, until: DateTime<Utc>) -> Duration {
    (until - now)
        .to_std()
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn healthy(trigger: Trigger, mode: TokenMode) -> Input {
        Input {
            trigger,
            mode,
            failure_streak: 0,
            next_refresh_at: t(5000),
            fetched_at: Some(t(0)),
            expires_at: Some(t(7200)),
            last_bypass_at: None,
            spent: Spent::default(),
            invalidates_last_hour: 0,
        }
    }

    fn failing(trigger: Trigger) -> Input {
        Input {
            failure_streak: 3,
            next_refresh_at: t(700),
            fetched_at: None,
            expires_at: None,
            ..healthy(trigger, TokenMode::Classic)
        }
    }

    fn refused(d: Decision) -> Refusal {
        match d {
            Decision::Refuse(r) => r,
            Decision::Call { .. } => panic!("expected a refusal, got {d:?}"),
        }
    }

    const CALL: Decision = Decision::Call {
        force: false,
        bypass: false,
    };

    #[test]
    fn readers_and_reports_honour_a_pending_retry() {
        let limits = Limits::default();
        for trigger in [
            Trigger::OnDemand,
            Trigger::Invalidate,
            Trigger::Registration,
        ] {
            let r = refused(decide(&failing(trigger), &limits, t(100)));
            assert_eq!(r.reason, RefusalReason::Backoff, "{trigger:?}");
            assert_eq!(r.retry_after, Duration::from_secs(600));
        }
        // Even once the retry time has come, a reader leaves the retry to
        // the scheduler (which claims the row at that moment).
        let r = refused(decide(&failing(Trigger::OnDemand), &limits, t(700)));
        assert_eq!(
            (r.reason, r.retry_after),
            (RefusalReason::Backoff, Duration::from_secs(1))
        );
        assert_eq!(decide(&failing(Trigger::Invalidate), &limits, t(700)), CALL);
        // The scheduler only claims due rows; the gate never stops it for backoff.
        assert_eq!(decide(&failing(Trigger::Schedule), &limits, t(100)), CALL);
    }

    #[test]
    fn refresh_now_goes_past_a_retry_once_a_minute() {
        let limits = Limits::default();
        let first = decide(&failing(Trigger::Manual), &limits, t(100));
        assert_eq!(
            first,
            Decision::Call {
                force: false,
                bypass: true
            }
        );
        let again = Input {
            last_bypass_at: Some(t(100)),
            ..failing(Trigger::Manual)
        };
        let r = refused(decide(&again, &limits, t(130)));
        assert_eq!(r.reason, RefusalReason::BypassCooldown);
        assert_eq!(r.retry_after, Duration::from_secs(30));
        assert!(matches!(
            decide(&again, &limits, t(160)),
            Decision::Call { bypass: true, .. }
        ));
        // A healthy app's refresh now is no bypass and has no cooldown.
        let healthy_manual = Input {
            last_bypass_at: Some(t(100)),
            ..healthy(Trigger::Manual, TokenMode::Classic)
        };
        assert_eq!(decide(&healthy_manual, &limits, t(110)), CALL);
    }

    #[test]
    fn the_reserve_is_the_schedulers() {
        let limits = Limits {
            daily_calls: 10,
            scheduler_reserve: 3,
            ..Limits::default()
        };
        let spent = |calls| Spent {
            calls,
            ..Spent::default()
        };
        for trigger in [
            Trigger::OnDemand,
            Trigger::Manual,
            Trigger::Invalidate,
            Trigger::Registration,
        ] {
            let input = Input {
                spent: spent(7),
                fetched_at: Some(t(-3600)),
                ..healthy(trigger, TokenMode::Classic)
            };
            let r = refused(decide(&input, &limits, t(100)));
            assert_eq!(r.reason, RefusalReason::BudgetSpent, "{trigger:?}");
            assert_eq!(
                t(100) + chrono::Duration::from_std(r.retry_after).unwrap(),
                policy::next_quota_day(t(100))
            );
            let input = Input {
                spent: spent(6),
                ..input
            };
            assert!(matches!(
                decide(&input, &limits, t(100)),
                Decision::Call { .. }
            ));
        }
        let schedule = Input {
            spent: spent(9),
            ..healthy(Trigger::Schedule, TokenMode::Classic)
        };
        assert_eq!(decide(&schedule, &limits, t(100)), CALL);
        let spent_all = Input {
            spent: spent(10),
            ..schedule
        };
        assert_eq!(
            refused(decide(&spent_all, &limits, t(100))).reason,
            RefusalReason::BudgetSpent
        );
        assert!(another_call_fits(9, &limits));
        assert!(!another_call_fits(10, &limits));
    }

    #[test]
    fn invalidation_is_limited() {
        let limits = Limits::default();
        let young = healthy(Trigger::Invalidate, TokenMode::Classic);
        let r = refused(decide(&young, &limits, t(20)));
        assert_eq!(r.reason, RefusalReason::TokenTooYoung);
        assert_eq!(r.retry_after, Duration::from_secs(40));
        assert_eq!(decide(&young, &limits, t(60)), CALL);
        let often = Input {
            invalidates_last_hour: 3,
            ..young
        };
        assert_eq!(
            refused(decide(&often, &limits, t(600))).reason,
            RefusalReason::InvalidateLimit
        );
        // Stable: a force refresh, within WeChat's limits.
        let stable = healthy(Trigger::Invalidate, TokenMode::Stable);
        assert_eq!(
            decide(&stable, &limits, t(600)),
            Decision::Call {
                force: true,
                bypass: false
            }
        );
        let used_up = Input {
            spent: Spent {
                forced: 20,
                ..Spent::default()
            },
            ..stable
        };
        assert_eq!(
            refused(decide(&used_up, &limits, t(600))).reason,
            RefusalReason::ForceRefreshLimit
        );
        let too_soon = Input {
            spent: Spent {
                forced: 1,
                last_forced_at: Some(t(590)),
                ..Spent::default()
            },
            ..stable
        };
        let r = refused(decide(&too_soon, &limits, t(600)));
        assert_eq!(r.reason, RefusalReason::ForceRefreshLimit);
        assert_eq!(r.retry_after, Duration::from_secs(20));
    }

    #[test]
    fn stable_reads_call_only_inside_the_renewal_window() {
        let limits = Limits::default();
        let read = healthy(Trigger::OnDemand, TokenMode::Stable);
        let r = refused(decide(&read, &limits, t(1000)));
        assert_eq!(r.reason, RefusalReason::NotRenewable);
        assert_eq!(r.retry_after, Duration::from_secs(5900));
        assert_eq!(decide(&read, &limits, t(6950)), CALL);
        // No valid token: call.
        let expired = Input {
            expires_at: Some(t(900)),
            ..read
        };
        assert_eq!(decide(&expired, &limits, t(1000)), CALL);
        // Classic tokens can be fetched anew for a reader who needs more life.
        let classic = Input {
            mode: TokenMode::Classic,
            ..read
        };
        assert_eq!(decide(&classic, &limits, t(1000)), CALL);
    }

    #[test]
    fn a_clock_jump_never_hands_out_a_new_budget() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
        assert_eq!(Spent::on(day(2), day(1), 1999, 20).1, Spent::default());
        assert_eq!(Spent::on(day(2), day(1), 1999, 20).0, day(2));
        let (kept_day, kept) = Spent::on(day(1), day(2), 1999, 20);
        assert_eq!((kept_day, kept.calls, kept.forced), (day(2), 1999, 20));
        assert_eq!(Spent::on(day(2), day(2), -5, 3).1.calls, 0);
    }
}
