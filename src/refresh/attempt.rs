//! One attempt on a token row the transaction holds: ask the gate, spend
//! the budget, fetch (with the secondary secret when the primary is
//! rejected), then store the token or the failure and log the attempt.

use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use secrecy::ExposeSecret as _;
use sqlx::PgConnection;

use super::alerts;
use super::engine::{AttemptOutcome, EngineError, RefreshEngine, Trigger};
use super::gate::{self, Decision, Refusal, Spent};
use super::kind::{AccessTokenKind, Call, CredentialKind as _};
use super::policy::{self, chrono_duration};
use crate::crypto::Binding;
use crate::db;
use crate::db::budget::BudgetRow;
use crate::db::tokens::{self, ClaimedRow, LogEntry, StoredFailure, StoredToken};
use crate::domain::credential::hash as fingerprint;
use crate::domain::{AppId, Credential, EventType, RefreshOutcome, TokenMode};
use crate::upstream::{ErrorClass, FetchFailure, FreshToken};

/// What one attempt was, for storing its result.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    trigger: Trigger,
    mode: TokenMode,
    force: bool,
    started_at: DateTime<Utc>,
    latency_ms: Option<i64>,
}

impl RefreshEngine {
    /// One attempt on a row this transaction holds: the gate decides whether
    /// WeChat is called; if so, the call is counted against today's budget,
    /// and the token or the failure is stored and logged.
    pub(super) async fn refresh_locked(
        &self,
        tx: &mut PgConnection,
        row: ClaimedRow,
        trigger: Trigger,
    ) -> Result<AttemptOutcome, EngineError> {
        if !row.enabled {
            return Ok(AttemptOutcome::Disabled);
        }
        let now = policy::stored_now();
        let (day, mut spent, force) = match self.ask_gate(tx, &row, trigger, now).await? {
            Ok(allowed) => allowed,
            Err(refusal) => return Ok(AttemptOutcome::Refused(refusal)),
        };
        let started = Instant::now();
        let (result, promoted) = self.fetch(&row, force, &mut spent).await;
        let latency = started.elapsed();
        self.metrics.observe_upstream(latency);
        db::budget::store(
            tx,
            row.tenant_id,
            &row.appid,
            day,
            &BudgetRow {
                day,
                calls: i32::try_from(spent.calls).unwrap_or(i32::MAX),
                forced: i32::try_from(spent.forced).unwrap_or(i32::MAX),
                last_forced_at: spent.last_forced_at,
            },
        )
        .await?;
        let attempt = Attempt {
            trigger,
            mode: row.token_mode,
            force,
            started_at: now,
            latency_ms: i64::try_from(latency.as_millis()).ok(),
        };
        match result {
            Ok(fresh) => self.store_fresh(tx, &row, &fresh, promoted, &attempt).await,
            Err(failure) => self.store_failed(tx, &row, failure, &attempt).await,
        }
    }

    /// Index a newly stored token by its keyed hash (for the
    /// WeChat-compatible getticket); a replaced classic token stays
    /// findable for the overlap WeChat still accepts it.
    async fn index_token(
        &self,
        tx: &mut PgConnection,
        row: &ClaimedRow,
        token: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        let Some((key_id, hash)) = self
            .crypto
            .index_hashes(token.as_bytes())
            .into_iter()
            .next()
        else {
            return Ok(());
        };
        let overlap = match row.token_mode {
            TokenMode::Classic => Some(now + chrono_duration(self.config.classic_overlap)),
            TokenMode::Stable => None,
        };
        let indexed = db::served_tokens::IndexedToken {
            hash: &hash,
            key_id: &key_id,
            app_id: row.app_id,
            tenant_id: row.tenant_id,
            expires_at,
        };
        db::served_tokens::index(tx, &indexed, overlap).await?;
        Ok(())
    }

    /// Ask the gate about a call now, with today's budget of the app locked:
    /// the budget's day, what is spent counting this call, and whether it
    /// forces a new token; or why not (a refused scheduled refresh is
    /// rescheduled and logged).
    async fn ask_gate(
        &self,
        tx: &mut PgConnection,
        row: &ClaimedRow,
        trigger: Trigger,
        now: DateTime<Utc>,
    ) -> Result<Result<(NaiveDate, Spent, bool), Refusal>, EngineError> {
        let today = policy::quota_day(now);
        let stored = db::budget::lock(tx, row.tenant_id, &row.appid, today).await?;
        let (day, mut spent) = Spent::on(today, stored.day, stored.calls, stored.forced);
        spent.last_forced_at = stored.last_forced_at;
        let invalidates_last_hour = if trigger == Trigger::Invalidate {
            u32::try_from(tokens::invalidations_last_hour(tx, row.app_id).await?).unwrap_or(0)
        } else {
            0
        };
        let input = gate::Input {
            trigger,
            mode: row.token_mode,
            failure_streak: row.failure_streak,
            next_refresh_at: row.next_refresh_at,
            fetched_at: row.fetched_at,
            expires_at: row.expires_at,
            last_bypass_at: row.last_bypass_at,
            spent,
            invalidates_last_hour,
        };
        let (force, bypass) = match gate::decide(&input, &self.config.limits, now) {
            Decision::Call { force, bypass } => (force, bypass),
            Decision::Refuse(refusal) => {
                self.metrics.count_refusal(refusal.reason);
                if trigger == Trigger::Schedule {
                    self.skip(tx, row, refusal).await?;
                }
                return Ok(Err(refusal));
            }
        };
        if bypass {
            tokens::record_bypass(tx, row.app_id, now).await?;
        }
        spent.calls += 1;
        if force {
            spent.forced += 1;
            spent.last_forced_at = Some(now);
        }
        Ok(Ok((day, spent, force)))
    }

    /// Fetch with the primary secret and, when WeChat rejects it and the
    /// budget allows one more call, with the secondary (counted in `spent`);
    /// the token or the failure, and the secondary's ciphertext when it
    /// worked (to be promoted).
    async fn fetch(
        &self,
        row: &ClaimedRow,
        force: bool,
        spent: &mut Spent,
    ) -> (Result<FreshToken, FetchFailure>, Option<Vec<u8>>) {
        let mode = row.token_mode;
        let primary = Binding::app_secret(row.tenant_id, row.app_id);
        match self
            .fetch_with(row, &row.secret_ciphertext, primary, mode, force)
            .await
        {
            Err(f)
                if is_secret_rejected(&f)
                    && row.secondary_secret_ciphertext.is_some()
                    && gate::another_call_fits(spent.calls, &self.config.limits) =>
            {
                spent.calls += 1;
                let secondary = row.secondary_secret_ciphertext.clone().unwrap_or_default();
                let binding = Binding::secondary_app_secret(row.tenant_id, row.app_id);
                match self.fetch_with(row, &secondary, binding, mode, force).await {
                    Ok(t) => (Ok(t), Some(secondary)),
                    Err(_) => (Err(f), None),
                }
            }
            other => (other, None),
        }
    }

    /// The scheduler found a row due whose budget is spent: no call; the
    /// row waits for the next quota day, and the log says why (once).
    async fn skip(
        &self,
        tx: &mut PgConnection,
        row: &ClaimedRow,
        refusal: Refusal,
    ) -> Result<(), EngineError> {
        let at = Utc::now() + chrono_duration(refusal.retry_after);
        tokens::reschedule(tx, row.app_id, at).await?;
        self.record(
            tx,
            &LogEntry {
                credential: Credential::AccessToken,
                tenant_id: row.tenant_id,
                app_id: row.app_id,
                trigger: Trigger::Schedule,
                outcome: RefreshOutcome::Skipped,
                error_class: None,
                errcode: None,
                errmsg: Some(refusal.reason.explain()),
                latency_ms: None,
                replica: &self.config.replica_id,
                valid_until: row.expires_at,
            },
        )
        .await?;
        tracing::warn!(appid = %row.appid, reason = refusal.reason.as_str(), until = %at, "scheduled refresh skipped");
        Ok(())
    }

    /// When a stored token was fetched, when it expires, and when to
    /// refresh it next (an unchanged token keeps its fetch time).
    fn times(
        &self,
        row: &ClaimedRow,
        fresh: &FreshToken,
        attempt: &Attempt,
        changed: bool,
        now: DateTime<Utc>,
    ) -> (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>) {
        let expires_at = now + chrono_duration(fresh.expires_in);
        if !changed {
            let fetched_at = row.fetched_at.unwrap_or(now);
            return (
                fetched_at,
                expires_at,
                policy::next_after_unchanged(now, expires_at),
            );
        }
        let kind = AccessTokenKind {
            mode: attempt.mode,
            force: attempt.force,
        };
        (
            now,
            expires_at,
            kind.renew_at(now, expires_at, &self.config.timing),
        )
    }

    async fn store_fresh(
        &self,
        tx: &mut PgConnection,
        row: &ClaimedRow,
        fresh: &FreshToken,
        promoted: Option<Vec<u8>>,
        attempt: &Attempt,
    ) -> Result<AttemptOutcome, EngineError> {
        let token = fresh.access_token.expose_secret();
        let fp = fingerprint(token);
        let changed = row.token_fingerprint.as_deref() != Some(&fp[..]);
        let now = policy::stored_now();
        let (fetched_at, expires_at, next_refresh_at) =
            self.times(row, fresh, attempt, changed, now);
        let ciphertext = self.crypto.encrypt(
            token.as_bytes(),
            &Binding::access_token(row.tenant_id, row.app_id),
        )?;
        tokens::store_success(
            tx,
            row.app_id,
            &StoredToken {
                ciphertext: &ciphertext,
                fingerprint: &fp,
                fetched_at,
                expires_at,
                next_refresh_at,
                changed,
            },
        )
        .await?;
        if changed {
            self.index_token(tx, row, token, expires_at, now).await?;
        }
        let mut note = None;
        if let Some(secondary) = promoted {
            self.promote(tx, row, &secondary).await?;
            self.alert(tx, row, Some(EventType::AppSecretPromoted), None)
                .await?;
            note = Some(
                "the primary secret was rejected; the secondary secret worked and is now the primary",
            );
        }
        let outcome = if changed {
            RefreshOutcome::Success
        } else {
            RefreshOutcome::Unchanged
        };
        self.record(
            tx,
            &LogEntry {
                credential: Credential::AccessToken,
                tenant_id: row.tenant_id,
                app_id: row.app_id,
                trigger: attempt.trigger,
                outcome,
                error_class: None,
                errcode: None,
                errmsg: note,
                latency_ms: attempt.latency_ms,
                replica: &self.config.replica_id,
                valid_until: Some(expires_at),
            },
        )
        .await?;
        self.alert(tx, row, alerts::after_success(row), None)
            .await?;
        Ok(if changed {
            AttemptOutcome::Refreshed
        } else {
            AttemptOutcome::Unchanged
        })
    }

    async fn promote(
        &self,
        tx: &mut PgConnection,
        row: &ClaimedRow,
        secondary: &[u8],
    ) -> Result<(), EngineError> {
        let plain = self.crypto.decrypt(
            secondary,
            &Binding::secondary_app_secret(row.tenant_id, row.app_id),
        )?;
        let primary = self
            .crypto
            .encrypt(&plain, &Binding::app_secret(row.tenant_id, row.app_id))?;
        tokens::promote_secondary(tx, row.app_id, &primary).await?;
        tracing::info!(appid = %row.appid, "secondary secret promoted to primary");
        Ok(())
    }

    async fn store_failed(
        &self,
        tx: &mut PgConnection,
        row: &ClaimedRow,
        failure: FetchFailure,
        attempt: &Attempt,
    ) -> Result<AttemptOutcome, EngineError> {
        let streak = u32::try_from(row.failure_streak)
            .unwrap_or(0)
            .saturating_add(1);
        let now = policy::stored_now();
        let kind = AccessTokenKind {
            mode: attempt.mode,
            force: attempt.force,
        };
        let mut next = kind.retry_at(&failure, streak, now, &self.config.timing);
        if failure.class == ErrorClass::Bug {
            tracing::error!(appid = %row.appid, errcode = ?failure.errcode, errmsg = %failure.errmsg, "WeChat says tokenvault sent a malformed token request: this is a bug");
        }
        let trusted_until = self.trusted_until(row, &failure, attempt);
        // A scheduled retry never waits past the expiry of a token we still
        // hold when the failure is transient.
        let expiry = match (row.expires_at, trusted_until) {
            (Some(e), Some(t)) => Some(e.min(t)),
            (e, _) => e,
        };
        if failure.class == ErrorClass::Transient
            && let Some(exp) = expiry
            && exp > now
            && next > exp
        {
            next = exp;
        }
        if trusted_until.is_some() {
            // The lost call may still be answered at WeChat (within about
            // one more timeout): a retry before that could get a token the
            // late answer then replaces. Readers get 503 meanwhile, never a
            // token that may be dead.
            let late = attempt.started_at + chrono_duration(self.config.upstream_timeout * 2);
            next = next.max(late);
        }
        tokens::store_failure(
            tx,
            row.app_id,
            &StoredFailure {
                class: failure.class,
                errcode: failure.errcode,
                errmsg: &failure.errmsg,
                next_refresh_at: next,
                trusted_until,
            },
        )
        .await?;
        self.record(
            tx,
            &LogEntry {
                credential: Credential::AccessToken,
                tenant_id: row.tenant_id,
                app_id: row.app_id,
                trigger: attempt.trigger,
                outcome: RefreshOutcome::Failure,
                error_class: Some(failure.class),
                errcode: failure.errcode,
                errmsg: Some(&failure.errmsg),
                latency_ms: attempt.latency_ms,
                replica: &self.config.replica_id,
                valid_until: expiry,
            },
        )
        .await?;
        let event = alerts::after_failure(row, failure.class, expiry, now);
        self.alert(tx, row, event, Some(&failure)).await?;
        tracing::warn!(appid = %row.appid, class = failure.class.as_str(), errcode = ?failure.errcode, errmsg = %failure.errmsg, streak, outcome_unknown = failure.outcome_unknown, "token refresh failed");
        Ok(AttemptOutcome::Failed(failure))
    }

    /// Write `event` (if any) to the alert outbox in the attempt's transaction.
    async fn alert(
        &self,
        tx: &mut PgConnection,
        row: &ClaimedRow,
        event: Option<EventType>,
        failure: Option<&FetchFailure>,
    ) -> Result<(), EngineError> {
        let Some(event) = event else { return Ok(()) };
        let errcode = failure
            .and_then(|f| f.errcode)
            .and_then(|c| i32::try_from(c).ok());
        let errmsg = failure.map(|f| f.errmsg.as_str());
        alerts::record(tx, row, event, errcode, errmsg, &self.config).await?;
        Ok(())
    }

    /// How long the stored token can still be trusted after a call whose
    /// answer was lost. WeChat may have served it: a classic call then
    /// issued a new token, and the stored one dies `classic_overlap` after
    /// the call; a forced stable call killed the stored one at once. A
    /// normal stable call changes nothing (WeChat hands out the same token).
    fn trusted_until(
        &self,
        row: &ClaimedRow,
        failure: &FetchFailure,
        attempt: &Attempt,
    ) -> Option<DateTime<Utc>> {
        if !failure.outcome_unknown || row.expires_at.is_none() {
            return None;
        }
        let until = match (attempt.mode, attempt.force) {
            (TokenMode::Classic, _) => {
                attempt.started_at + chrono_duration(self.config.classic_overlap)
            }
            (TokenMode::Stable, true) => attempt.started_at,
            (TokenMode::Stable, false) => return None,
        };
        tracing::warn!(appid = %row.appid, until = %until, "a token call's answer was lost: the stored token is trusted only until WeChat's overlap ends");
        Some(until)
    }

    async fn fetch_with(
        &self,
        row: &ClaimedRow,
        secret_ciphertext: &[u8],
        binding: Binding,
        mode: TokenMode,
        force: bool,
    ) -> Result<FreshToken, FetchFailure> {
        let secret = self
            .crypto
            .decrypt_text(secret_ciphertext, &binding)
            .map_err(|e| FetchFailure {
                class: ErrorClass::Configuration,
                errcode: None,
                errmsg: format!(
                    "the stored appsecret cannot be read ({e}); enter the secret again"
                ),
                outcome_unknown: false,
                platform: crate::upstream::errcodes::kind_of(&row.appid),
            })?;
        let appid = AppId::parse("appid", &row.appid).map_err(|e| FetchFailure {
            class: ErrorClass::Bug,
            errcode: None,
            errmsg: format!("stored appid is malformed: {e}"),
            outcome_unknown: false,
            platform: crate::upstream::errcodes::kind_of(&row.appid),
        })?;
        let fresh = AccessTokenKind { mode, force }
            .fetch(
                self.provider.as_ref(),
                Call {
                    appid: &appid,
                    with: &secret,
                },
            )
            .await?;
        Ok(FreshToken {
            access_token: fresh.value,
            expires_in: fresh.expires_in,
        })
    }
}

fn is_secret_rejected(f: &FetchFailure) -> bool {
    matches!(f.errcode, Some(40001 | 40125))
}
