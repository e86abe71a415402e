//! Credential kinds: what the engine must know of each credential it keeps
//! (how to fetch it, how to read a refusal, when to renew it, what it needs
//! first), as one small trait implementation per kind. Everything else is
//! shared by every kind: the row lock or the scheduler's claim, the gate's
//! daily budget, the refresh log and the metrics ([`RefreshEngine::record`]),
//! health and backoff (`policy`).
//!
//! The access token ([`AccessTokenKind`]) is fetched with the app's secret
//! and depends on nothing; a JS-SDK ticket ([`TicketKind`]) is fetched with
//! an access token that must live a while longer, and an answer that says
//! the token is no good refreshes the token first. A new kind (another
//! provider's token, another ticket) is one more implementation, a
//! [`Credential`] name, and its rows claimed by the same engine code.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sqlx::PgConnection;

use super::engine::{EngineError, RefreshEngine};
use super::policy::{self, Timing};
use crate::db::tokens::{self, LogEntry};
use crate::domain::{AppId, AppKind, Credential, TicketType, TokenMode};
use crate::upstream::{BoxFuture, ErrorClass, FetchFailure, FetchRequest, TokenProvider, errcodes};

/// What a credential needs before it can be fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    /// Nothing but the app's secret.
    Secret,
    /// The app's access token, living at least this much longer.
    AccessToken {
        /// The least life the token must have left.
        min_ttl: Duration,
    },
}

/// One upstream call for a credential.
#[derive(Debug)]
pub struct Call<'a> {
    /// The app.
    pub appid: &'a AppId,
    /// What the call is made with: the app's secret for a token, the access
    /// token for a ticket (secret either way).
    pub with: &'a SecretString,
}

/// A credential as the provider issued it.
#[derive(Debug)]
pub struct Fresh {
    /// The credential (secret).
    pub value: SecretString,
    /// Its lifetime as the provider reported it.
    pub expires_in: Duration,
}

/// A kind of credential the engine keeps.
pub trait CredentialKind: Send + Sync + std::fmt::Debug {
    /// Its name in the refresh log and the metrics.
    fn credential(&self) -> Credential;

    /// What must be valid before it is fetched.
    fn depends_on(&self) -> Dependency;

    /// Fetch it; every outcome, network trouble included, is classified.
    fn fetch<'a>(
        &'a self,
        provider: &'a dyn TokenProvider,
        call: Call<'a>,
    ) -> BoxFuture<'a, Result<Fresh, FetchFailure>>;

    /// The class of an errcode answered to its fetch.
    fn classify(&self, errcode: i64) -> ErrorClass;

    /// Does `errcode` say what it depends on (the token) is no good?
    fn rejects_dependency(&self, errcode: i64) -> bool;

    /// When one fetched at `fetched_at` (now) that expires at `expires_at`
    /// is renewed.
    fn renew_at(
        &self,
        fetched_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        timing: &Timing,
    ) -> DateTime<Utc>;

    /// When to try again after the `streak`-th failure in a row (the
    /// failure classified by [`Self::classify`]).
    fn retry_at(
        &self,
        failure: &FetchFailure,
        streak: u32,
        now: DateTime<Utc>,
        timing: &Timing,
    ) -> DateTime<Utc> {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_entropy();
        policy::next_retry(
            failure.class,
            failure.errcode,
            streak,
            now,
            timing,
            &mut rng,
        )
    }
}

/// The app's access token (classic or stable).
#[derive(Debug, Clone, Copy)]
pub struct AccessTokenKind {
    /// Classic or stable.
    pub mode: TokenMode,
    /// A stable call that forces a new token.
    pub force: bool,
}

impl CredentialKind for AccessTokenKind {
    fn credential(&self) -> Credential {
        Credential::AccessToken
    }

    fn depends_on(&self) -> Dependency {
        Dependency::Secret
    }

    fn fetch<'a>(
        &'a self,
        provider: &'a dyn TokenProvider,
        call: Call<'a>,
    ) -> BoxFuture<'a, Result<Fresh, FetchFailure>> {
        Box::pin(async move {
            let fresh = provider
                .fetch(FetchRequest {
                    appid: call.appid,
                    secret: call.with,
                    mode: self.mode,
                    force_refresh: self.force,
                })
                .await?;
            Ok(Fresh {
                value: fresh.access_token,
                expires_in: fresh.expires_in,
            })
        })
    }

    fn classify(&self, errcode: i64) -> ErrorClass {
        errcodes::classify(errcode)
    }

    fn rejects_dependency(&self, _errcode: i64) -> bool {
        false
    }

    fn renew_at(
        &self,
        fetched_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        timing: &Timing,
    ) -> DateTime<Utc> {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_entropy();
        policy::next_refresh(
            self.mode, fetched_at, fetched_at, expires_at, timing, &mut rng,
        )
    }
}

/// A JS-SDK ticket of an app of a kind (WeChat or WeCom: which endpoint,
/// which errcode table), fetched with the app's access token.
#[derive(Debug, Clone, Copy)]
pub struct TicketKind(pub TicketType, pub AppKind);

/// The least life a token must have left to fetch a ticket with it.
pub const TOKEN_MIN_TTL: Duration = Duration::from_secs(60);

impl TicketKind {
    /// A ticket is renewed in the last quarter of its life, at most 5
    /// minutes before it expires: readers never get one about to die.
    pub fn renew_margin(fetched_at: DateTime<Utc>, expires_at: DateTime<Utc>) -> chrono::Duration {
        ((expires_at - fetched_at) / 4).min(chrono::Duration::minutes(5))
    }

    /// When to try again after the ticket's own call failed, `streak`
    /// failures in a row before it: at once after the first answer that
    /// rejects the token (the token is refreshed first, the ticket right
    /// after); by the failure's class and streak otherwise — also when
    /// WeChat keeps rejecting the token (its invalidation may have been
    /// refused by the gate), so a rejection never becomes a loop of calls.
    pub fn after_failure(
        &self,
        failure: &FetchFailure,
        streak: i32,
        now: DateTime<Utc>,
        timing: &Timing,
    ) -> DateTime<Utc> {
        let first_rejection =
            streak == 0 && failure.errcode.is_some_and(|c| self.rejects_dependency(c));
        if first_rejection {
            return now;
        }
        let streak = u32::try_from(streak).unwrap_or(0).saturating_add(1);
        self.retry_at(failure, streak, now, timing)
    }
}

impl CredentialKind for TicketKind {
    fn credential(&self) -> Credential {
        Credential::from(self.0)
    }

    fn depends_on(&self) -> Dependency {
        Dependency::AccessToken {
            min_ttl: TOKEN_MIN_TTL,
        }
    }

    fn fetch<'a>(
        &'a self,
        provider: &'a dyn TokenProvider,
        call: Call<'a>,
    ) -> BoxFuture<'a, Result<Fresh, FetchFailure>> {
        Box::pin(async move {
            let fresh = provider.fetch_ticket(call.with, self.0, self.1).await?;
            Ok(Fresh {
                value: fresh.ticket,
                expires_in: fresh.expires_in,
            })
        })
    }

    fn classify(&self, errcode: i64) -> ErrorClass {
        errcodes::classify_ticket_for(self.1, errcode)
    }

    fn rejects_dependency(&self, errcode: i64) -> bool {
        errcodes::rejects_token_for(self.1, errcode)
    }

    fn renew_at(
        &self,
        fetched_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        _timing: &Timing,
    ) -> DateTime<Utc> {
        expires_at - Self::renew_margin(fetched_at, expires_at)
    }
}

impl RefreshEngine {
    /// Log an attempt on any credential in the attempt's transaction, and
    /// count it in the metrics: one place for every kind.
    pub(super) async fn record(
        &self,
        tx: &mut PgConnection,
        entry: &LogEntry<'_>,
    ) -> Result<(), EngineError> {
        tokens::log(&mut *tx, entry).await?;
        self.metrics
            .count_refresh(entry.credential, entry.outcome, entry.error_class);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn a_ticket_is_renewed_in_its_last_quarter_at_most_five_minutes_early() {
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let long = t0 + chrono::Duration::seconds(7200);
        let kind = TicketKind(TicketType::Jsapi, AppKind::Wechat);
        let timing = Timing::default();
        assert_eq!(
            kind.renew_at(t0, long, &timing),
            long - chrono::Duration::minutes(5)
        );
        let short = t0 + chrono::Duration::seconds(8);
        assert_eq!(
            kind.renew_at(t0, short, &timing),
            short - chrono::Duration::seconds(2)
        );
    }

    #[test]
    fn kinds_name_their_credential_and_dependency() {
        let token = AccessTokenKind {
            mode: TokenMode::Stable,
            force: false,
        };
        assert_eq!(token.credential(), Credential::AccessToken);
        assert_eq!(token.depends_on(), Dependency::Secret);
        assert!(!token.rejects_dependency(40001));
        let card = TicketKind(TicketType::WxCard, AppKind::Wechat);
        assert_eq!(card.credential(), Credential::WxCardTicket);
        assert_eq!(
            card.depends_on(),
            Dependency::AccessToken {
                min_ttl: TOKEN_MIN_TTL
            }
        );
        for code in [40001, 40014, 42001] {
            assert!(card.rejects_dependency(code));
            assert_eq!(card.classify(code), ErrorClass::Transient);
        }
        assert!(!card.rejects_dependency(45009));
        // At WeCom 40001 is a wrong secret, not a rejected token.
        let agent = TicketKind(TicketType::AgentConfig, AppKind::Wecom);
        assert_eq!(agent.credential(), Credential::AgentConfigTicket);
        assert!(!agent.rejects_dependency(40001));
        assert!(agent.rejects_dependency(42001) && agent.rejects_dependency(40014));
        assert_eq!(agent.classify(45009), ErrorClass::Quota);
    }

    #[test]
    fn a_token_is_renewed_before_it_expires() {
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let expires = t0 + chrono::Duration::seconds(7200);
        for mode in [TokenMode::Classic, TokenMode::Stable] {
            let kind = AccessTokenKind { mode, force: false };
            let at = kind.renew_at(t0, expires, &Timing::default());
            assert!(at > t0 && at < expires, "{mode:?}: {at}");
        }
    }

    #[test]
    fn a_failure_is_retried_later_by_its_class() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let kind = TicketKind(TicketType::Jsapi, AppKind::Wechat);
        let f = |errcode: Option<i64>| FetchFailure {
            class: errcode.map_or(ErrorClass::Transient, |c| kind.classify(c)),
            errcode,
            errmsg: String::new(),
            outcome_unknown: false,
            platform: AppKind::Wechat,
        };
        let timing = Timing::default();
        let transient = kind.retry_at(&f(None), 1, now, &timing);
        assert!(transient > now && transient < now + chrono::Duration::seconds(10));
        // 40164 (address not allowed): the owner must act, checked slowly.
        let config = kind.retry_at(&f(Some(40164)), 1, now, &timing);
        assert!(config > now + chrono::Duration::minutes(5), "{config}");
    }

    #[test]
    fn a_rejected_token_brings_the_ticket_back_at_once_only_the_first_time() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let kind = TicketKind(TicketType::Jsapi, AppKind::Wechat);
        let rejected = FetchFailure {
            class: kind.classify(40001),
            errcode: Some(40001),
            errmsg: String::new(),
            outcome_unknown: false,
            platform: AppKind::Wechat,
        };
        let timing = Timing::default();
        assert_eq!(kind.after_failure(&rejected, 0, now, &timing), now);
        // Rejected again (the token could not be replaced): backed off.
        for streak in [1, 2, 10] {
            assert!(kind.after_failure(&rejected, streak, now, &timing) > now);
        }
    }
}
