//! Token reads: from the replica's cache, from the database, or — when no
//! stored token lives long enough — refreshed on demand under the row lock,
//! through the same gate as every other attempt.
//!
//! A reader never calls WeChat while a failure's retry time is pending: it
//! gets the stored failure and `Retry-After` (remembered in memory until the
//! retry time, so a client loop costs neither WeChat nor the database).
//! On-demand refreshes are bounded per replica and per organisation, so one
//! tenant's failing apps cannot hold every connection and slot.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::engine::{AttemptOutcome, EngineError, RefreshEngine, TokenError, Trigger};
use super::gate::{self, RefusalReason};
use super::policy::chrono_duration;
use super::token::{Cause, Unavailable, ValidToken};
use crate::crypto::Binding;
use crate::db::tokens::{self, CurrentToken};
use crate::domain::{AppUuid, TenantId};
use crate::upstream::{ErrorClass, FetchFailure, errcodes};

/// What the stored state says, before any lock is taken.
enum Stored {
    /// A token valid long enough.
    Token(Arc<ValidToken>),
    /// None, and none may be fetched now.
    Unavailable(Unavailable),
    /// None: a refresh may be tried.
    Missing,
}

impl RefreshEngine {
    /// A token valid for at least `min_ttl`, refreshed on demand if needed:
    /// concurrent readers of this replica share one attempt, and readers on
    /// other replicas wait on the row lock, then read the one new token.
    pub async fn token(
        &self,
        tenant_id: TenantId,
        app_id: AppUuid,
        min_ttl: Duration,
    ) -> Result<Arc<ValidToken>, TokenError> {
        if let Some(t) = self.cache.token(app_id, min_ttl) {
            return Ok(t);
        }
        if let Some(u) = self.cache.unavailable(app_id) {
            return Err(TokenError::Unavailable(u));
        }
        match self.stored(tenant_id, app_id, min_ttl).await? {
            Stored::Token(t) => return Ok(t),
            Stored::Unavailable(u) => return Err(TokenError::Unavailable(u)),
            Stored::Missing => {}
        }
        let flight = self.flight(app_id);
        let _guard = flight.lock().await;
        match self.stored(tenant_id, app_id, min_ttl).await? {
            Stored::Token(t) => return Ok(t),
            Stored::Unavailable(u) => return Err(TokenError::Unavailable(u)),
            Stored::Missing => {}
        }
        let Some(_slot) = self
            .on_demand
            .acquire(tenant_id, self.config.lock_timeout)
            .await
        else {
            return Err(TokenError::Unavailable(busy(
                "this service is refreshing as many tokens on demand as it allows at once; \
                 try again in a moment",
            )));
        };
        let outcome = self.refresh_on_demand(app_id, min_ttl).await?;
        if let Some(t) = self.read_valid(tenant_id, app_id, min_ttl).await? {
            return Ok(t);
        }
        let unavailable = self.why_unavailable(outcome, app_id, min_ttl).await?;
        // Remembered only when no reader could be served: a token too short
        // for this reader may do for the next.
        let remember = matches!(
            unavailable.cause,
            Cause::Failed | Cause::Refused(RefusalReason::Backoff | RefusalReason::BudgetSpent)
        );
        if remember
            && self
                .read_valid(tenant_id, app_id, Duration::ZERO)
                .await?
                .is_none()
        {
            self.cache.put_unavailable(app_id, unavailable.clone());
        }
        Err(TokenError::Unavailable(unavailable))
    }

    /// Lock the row (waiting for another replica's refresh) and refresh it
    /// unless someone else just did; `None` when no attempt was needed.
    async fn refresh_on_demand(
        &self,
        app_id: AppUuid,
        min_ttl: Duration,
    ) -> Result<Option<AttemptOutcome>, TokenError> {
        let mut tx = self.pool.begin().await.map_err(EngineError::from)?;
        let row = match self.lock_row(&mut tx, app_id).await {
            Ok(row) => row,
            Err(EngineError::Db(e)) if tokens::is_lock_timeout(&e) => {
                return Err(TokenError::Unavailable(busy(
                    "another replica is refreshing this token; try again in a moment",
                )));
            }
            Err(e) => return Err(e.into()),
        };
        // Another replica may have refreshed while we waited for the lock.
        let fresh_enough = row
            .expires_at
            .is_some_and(|exp| exp > Utc::now() + chrono_duration(min_ttl));
        let outcome = if fresh_enough {
            None
        } else {
            Some(self.refresh_locked(&mut tx, row, Trigger::OnDemand).await?)
        };
        tx.commit().await.map_err(EngineError::from)?;
        self.cache.forget(Some(app_id));
        Ok(outcome)
    }

    /// The stored token if it lives long enough; otherwise whether the
    /// gate would refuse a reader's call anyway (the app is failing: its
    /// retries are the scheduler's), which then needs no lock and no slot.
    async fn stored(
        &self,
        tenant_id: TenantId,
        app_id: AppUuid,
        min_ttl: Duration,
    ) -> Result<Stored, EngineError> {
        let cur = tokens::current(&self.pool, app_id)
            .await?
            .ok_or(EngineError::Gone)?;
        if let Some(t) = self.decrypt_valid(tenant_id, app_id, &cur, min_ttl)? {
            return Ok(Stored::Token(t));
        }
        let now = Utc::now();
        if gate::readers_wait(Trigger::OnDemand, cur.failure_streak) {
            let unavailable = backing_off(&cur, now);
            self.metrics.count_refusal(RefusalReason::Backoff);
            if cur.expires_at.is_none_or(|e| e <= now) {
                self.cache.put_unavailable(app_id, unavailable.clone());
            }
            return Ok(Stored::Unavailable(unavailable));
        }
        Ok(Stored::Missing)
    }

    /// The stored token, decrypted, if it lives at least `min_ttl` more.
    pub async fn read_valid(
        &self,
        tenant_id: TenantId,
        app_id: AppUuid,
        min_ttl: Duration,
    ) -> Result<Option<Arc<ValidToken>>, EngineError> {
        let cur = tokens::current(&self.pool, app_id)
            .await?
            .ok_or(EngineError::Gone)?;
        self.decrypt_valid(tenant_id, app_id, &cur, min_ttl)
    }

    fn decrypt_valid(
        &self,
        tenant_id: TenantId,
        app_id: AppUuid,
        cur: &CurrentToken,
        min_ttl: Duration,
    ) -> Result<Option<Arc<ValidToken>>, EngineError> {
        let (Some(ct), Some(fetched_at), Some(expires_at)) =
            (&cur.access_token_ciphertext, cur.fetched_at, cur.expires_at)
        else {
            return Ok(None);
        };
        if expires_at <= Utc::now() + chrono_duration(min_ttl) {
            return Ok(None);
        }
        let token = self
            .crypto
            .decrypt_text(ct, &Binding::access_token(tenant_id, app_id))?;
        let valid = Arc::new(ValidToken::new(
            crate::secret::AccessToken::from(token),
            fetched_at,
            expires_at,
            cur.version,
        ));
        self.cache.put_token(app_id, Arc::clone(&valid));
        Ok(Some(valid))
    }

    async fn why_unavailable(
        &self,
        outcome: Option<AttemptOutcome>,
        app_id: AppUuid,
        min_ttl: Duration,
    ) -> Result<Unavailable, EngineError> {
        let current = tokens::current(&self.pool, app_id)
            .await?
            .ok_or(EngineError::Gone)?;
        let now = Utc::now();
        let retry_after = (current.next_refresh_at - now)
            .to_std()
            .unwrap_or(Duration::from_secs(1))
            .clamp(Duration::from_secs(1), Duration::from_secs(3600));
        Ok(match outcome {
            Some(AttemptOutcome::Failed(f)) => Unavailable {
                cause: Cause::Failed,
                reason: failure_reason(&f),
                failure: Some(f),
                retry_after,
            },
            Some(AttemptOutcome::Refused(r)) if r.reason == RefusalReason::Backoff => {
                backing_off(&current, now)
            }
            Some(AttemptOutcome::Refused(r)) => Unavailable {
                cause: Cause::Refused(r.reason),
                failure: None,
                retry_after: r.retry_after,
                reason: r.reason.explain().into(),
            },
            Some(AttemptOutcome::Disabled) => Unavailable {
                cause: Cause::Disabled,
                failure: None,
                retry_after: Duration::from_secs(3600),
                reason: "refreshing is switched off for this app; enable it first".into(),
            },
            _ => Unavailable {
                cause: Cause::TooShort,
                failure: None,
                retry_after,
                reason: format!(
                    "no token with at least {} s left can be had now (stable tokens are renewed by \
                     WeChat only in their last minutes); ask for a smaller min_ttl or retry later",
                    min_ttl.as_secs()
                ),
            },
        })
    }
}

/// A reader's answer while the stored failure's retry time is pending.
fn backing_off(cur: &CurrentToken, now: chrono::DateTime<Utc>) -> Unavailable {
    let failure = FetchFailure {
        class: cur.last_error_class.unwrap_or(ErrorClass::Transient),
        errcode: cur.last_errcode.map(i64::from),
        errmsg: cur.last_errmsg.clone().unwrap_or_default(),
        outcome_unknown: false,
        platform: errcodes::kind_of(&cur.appid),
    };
    Unavailable {
        cause: Cause::Refused(RefusalReason::Backoff),
        reason: format!(
            "{}; tokenvault retries at {} and asks {} nothing before then",
            failure_reason(&failure),
            cur.next_refresh_at.format("%Y-%m-%d %H:%M:%S UTC"),
            failure.platform.platform(),
        ),
        retry_after: (cur.next_refresh_at - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_secs(1)),
        failure: Some(failure),
    }
}

fn failure_reason(f: &FetchFailure) -> String {
    errcodes::refused(f, "token")
}

fn busy(reason: &str) -> Unavailable {
    Unavailable {
        cause: Cause::Busy,
        failure: None,
        retry_after: Duration::from_secs(1),
        reason: reason.into(),
    }
}
