//! JS-SDK tickets (`jsapi`, `wx_card`), kept by the same engine as tokens
//! (the kind: [`TicketKind`]).
//!
//! A ticket is derived from the app's access token and lives on its own
//! clock: WeChat answers the same ticket while it lives, always with the
//! full 7200 s, so the lifetime is counted from the fetch that first got
//! it. In the last quarter of that life (at most 5 minutes) the ticket is
//! fetched once more; if WeChat still answers the same ticket, it is kept
//! with its first expiry and served until then, and the next fetch is made
//! when it expires. A read that finds no ticket it may serve locks the
//! ticket's row (`app_tickets`, waiting at most
//! `lock_timeout` for another replica), looks again, and only then fetches:
//! one upstream call per ticket lifetime across every replica. The call is
//! made with a token that lives at least [`TOKEN_MIN_TTL`] more (refreshed
//! on demand through the gate first if needed), is counted in the app's
//! daily upstream budget like every token call, and a ticket call that
//! WeChat answers with a rejected token (40001, 40014, 42001) reports that
//! token (the compare-and-refresh of [`RefreshEngine::invalidate`]) and is
//! tried once more with the new one.
//!
//! The scheduler renews every ticket an app keeps on the ticket's own clock
//! (`app_tickets.next_due_at`: its renew margin, its expiry after WeChat
//! answered the same ticket, or the backoff after a failure), claiming the
//! row with `for update skip locked` as it claims token rows; reads then
//! find a fresh ticket. Every attempt, whoever made it, is stored in the
//! app's refresh log with the ticket named.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::PgConnection;

use super::engine::{EngineError, RefreshEngine, TokenError, Trigger};
use super::gate::{self, RefusalReason, Spent};
pub use super::kind::TOKEN_MIN_TTL;
use super::kind::{Call, CredentialKind as _, Dependency, Fresh, TicketKind};
use super::policy::{self, chrono_duration};
use super::token::{Cause, Unavailable, ValidToken};
use crate::crypto::Binding;
use crate::db::budget::BudgetRow;
use crate::db::tickets::{self, ClaimedTicket, StoredTicket, TicketRow};
use crate::db::tokens::LogEntry;
use crate::db::{self, tokens};
use crate::domain::{AppId, AppUuid, RefreshOutcome, TenantId, TicketType};
use crate::secret::Ticket;
use crate::upstream::{ErrorClass, FetchFailure, errcodes};

/// A ticket fit to hand out.
#[derive(Debug, Clone)]
pub struct ValidTicket {
    /// The ticket.
    pub ticket: Ticket,
    /// When it was fetched.
    pub fetched_at: DateTime<Utc>,
    /// When it expires (on tokenvault's clock).
    pub expires_at: DateTime<Utc>,
}

/// Which app a ticket belongs to.
#[derive(Debug, Clone, Copy)]
pub struct TicketOwner<'a> {
    /// The organisation.
    pub tenant_id: TenantId,
    /// The app.
    pub app_id: AppUuid,
    /// Its WeChat AppID (the budget's key).
    pub appid: &'a str,
}

/// How one attempt on a locked ticket row ended (its result is stored).
#[derive(Debug)]
enum TicketAttempt {
    /// A ticket to serve.
    Got(ValidTicket),
    /// WeChat said the token the call was made with is no good.
    TokenRejected(std::sync::Arc<ValidToken>, FetchFailure),
    /// No ticket now.
    Unavailable(Unavailable),
}

impl RefreshEngine {
    /// The app's ticket of `ticket_type`, fetched if none lives long enough
    /// (this turns the ticket on for the app).
    pub async fn ticket(
        &self,
        owner: TicketOwner<'_>,
        ticket_type: TicketType,
    ) -> Result<ValidTicket, TokenError> {
        // Each kind keeps its own tickets: a WeCom token sent to WeChat's
        // getticket would only be rejected (and reported, renewing it for
        // nothing), and the other way round.
        let app_kind = errcodes::kind_of(owner.appid);
        if !ticket_type.fits(app_kind) {
            return Err(TokenError::Engine(EngineError::Gone));
        }
        let stored = tickets::current(&self.pool, owner.app_id, ticket_type).await?;
        if let Some(t) = stored.and_then(|row| self.usable(owner, &row).transpose()) {
            return Ok(t?);
        }
        let mut rejected_once = false;
        loop {
            let mut tx = self.pool.begin().await.map_err(EngineError::from)?;
            let ms = u32::try_from(self.config.lock_timeout.as_millis()).unwrap_or(u32::MAX);
            let row = match tickets::lock(&mut tx, owner.tenant_id, owner.app_id, ticket_type, ms)
                .await
            {
                Ok(row) => row,
                Err(e) if tokens::is_lock_timeout(&e) => {
                    return Err(unavailable(
                        Cause::Busy,
                        "another replica is fetching this ticket; try again in a moment".into(),
                        None,
                    ));
                }
                Err(e) => return Err(e.into()),
            };
            // Another replica may have fetched it while we waited.
            if let Some(t) = self.usable(owner, &row)? {
                tx.commit().await.map_err(EngineError::from)?;
                return Ok(t);
            }
            let kind = TicketKind(ticket_type, app_kind);
            let attempt = self
                .attempt_ticket(&mut tx, owner, kind, &row, Trigger::OnDemand)
                .await?;
            tx.commit().await.map_err(EngineError::from)?;
            match attempt {
                TicketAttempt::Got(t) => return Ok(t),
                TicketAttempt::TokenRejected(token, _) if !rejected_once => {
                    rejected_once = true;
                    self.invalidate(owner.app_id, token.access_token.expose_secret())
                        .await?;
                }
                TicketAttempt::TokenRejected(_, f) => {
                    return Err(unavailable(Cause::Failed, failure_reason(&f), Some(f)));
                }
                TicketAttempt::Unavailable(u) => return Err(TokenError::Unavailable(u)),
            }
        }
    }

    /// Renew a ticket row the scheduler claimed, and commit (which releases
    /// the claim). A rejected token is reported afterwards; the row is due
    /// again at once, for the next round to fetch with the new token.
    pub(super) async fn renew_claimed_ticket(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
        claim: ClaimedTicket,
    ) -> Result<(), EngineError> {
        let owner = TicketOwner {
            tenant_id: claim.tenant_id,
            app_id: claim.app_id,
            appid: &claim.appid,
        };
        let Some(row) = tickets::current(&mut *tx, claim.app_id, claim.ticket_type).await? else {
            tx.rollback().await?;
            return Ok(());
        };
        let kind = TicketKind(claim.ticket_type, errcodes::kind_of(&claim.appid));
        let attempt = match self
            .attempt_ticket(&mut tx, owner, kind, &row, Trigger::Schedule)
            .await
        {
            Ok(attempt) => attempt,
            Err(TokenError::Engine(e)) => return Err(e),
            Err(TokenError::Unavailable(u)) => TicketAttempt::Unavailable(u),
        };
        tx.commit().await?;
        if let TicketAttempt::TokenRejected(token, _) = attempt {
            self.invalidate(owner.app_id, token.access_token.expose_secret())
                .await?;
        }
        Ok(())
    }

    /// One attempt on a ticket row this transaction holds: take the token it
    /// depends on, spend one call of the app's budget, fetch, and store the
    /// ticket or the failure with the next renewal and a refresh-log entry.
    /// On demand, a token or a budget that is not there is the reader's
    /// answer; on the scheduler's clock it is stored and logged as well.
    async fn attempt_ticket(
        &self,
        tx: &mut PgConnection,
        owner: TicketOwner<'_>,
        kind: TicketKind,
        row: &TicketRow,
        trigger: Trigger,
    ) -> Result<TicketAttempt, TokenError> {
        let Dependency::AccessToken { min_ttl } = kind.depends_on() else {
            return Err(TokenError::Engine(EngineError::Gone));
        };
        let token = match self.token(owner.tenant_id, owner.app_id, min_ttl).await {
            Ok(token) => token,
            Err(TokenError::Unavailable(u)) if trigger == Trigger::Schedule => {
                let failure = u.failure.clone().unwrap_or_else(|| FetchFailure {
                    class: ErrorClass::Transient,
                    errcode: None,
                    errmsg: format!("no access token to fetch the ticket with: {}", u.reason),
                    outcome_unknown: false,
                    platform: kind.1,
                });
                // Not before the token itself is tried again: a token that
                // keeps failing must not bring the ticket round again at once.
                let next = Utc::now()
                    + chrono::Duration::from_std(u.retry_after)
                        .unwrap_or_else(|_| chrono::Duration::seconds(60));
                self.store_ticket_failure(tx, owner, kind, next, trigger, &failure, None)
                    .await?;
                return Ok(TicketAttempt::Unavailable(u));
            }
            Err(e) => return Err(e),
        };
        if let Err(refused) = self.spend_hourly(tx, owner, kind).await? {
            if trigger == Trigger::Schedule {
                self.skip_ticket(tx, owner, kind, &refused).await?;
            }
            return Ok(TicketAttempt::Unavailable(refused));
        }
        if let Err(refused) = self.spend_one_call(tx, owner).await? {
            if trigger == Trigger::Schedule {
                self.skip_ticket(tx, owner, kind, &refused).await?;
            }
            return Ok(TicketAttempt::Unavailable(refused));
        }
        let appid = AppId::parse("appid", owner.appid).map_err(|_| EngineError::Gone)?;
        let with = SecretString::from(token.access_token.expose_secret().to_string());
        let started = std::time::Instant::now();
        let outcome = kind
            .fetch(
                self.provider.as_ref(),
                Call {
                    appid: &appid,
                    with: &with,
                },
            )
            .await;
        let latency = started.elapsed();
        self.metrics.observe_upstream(latency);
        let latency_ms = i64::try_from(latency.as_millis()).ok();
        match outcome {
            Ok(fresh) => {
                self.store_ticket(tx, owner, kind, (&token, trigger, latency_ms), &fresh)
                    .await
            }
            Err(mut failure) => {
                if let Some(code) = failure.errcode {
                    failure.class = kind.classify(code);
                }
                let next = kind.after_failure(
                    &failure,
                    row.failure_streak,
                    Utc::now(),
                    &self.config.timing,
                );
                self.store_ticket_failure(tx, owner, kind, next, trigger, &failure, latency_ms)
                    .await?;
                if failure.errcode.is_some_and(|c| kind.rejects_dependency(c)) {
                    return Ok(TicketAttempt::TokenRejected(token, failure));
                }
                let reason = failure_reason(&failure);
                Ok(TicketAttempt::Unavailable(Unavailable {
                    cause: Cause::Failed,
                    retry_after: Duration::from_secs(60),
                    reason,
                    failure: Some(failure),
                }))
            }
        }
    }

    /// The row's ticket, decrypted, if it may be served without a fetch:
    /// before its renew margin, or inside it once a renewal was tried there
    /// (WeChat answered the same ticket, or failed), until it expires.
    fn usable(
        &self,
        owner: TicketOwner<'_>,
        row: &TicketRow,
    ) -> Result<Option<ValidTicket>, EngineError> {
        let (Some(ct), Some(fetched_at), Some(expires_at)) =
            (&row.ticket_ciphertext, row.fetched_at, row.expires_at)
        else {
            return Ok(None);
        };
        let now = Utc::now();
        let renew_from = expires_at - TicketKind::renew_margin(fetched_at, expires_at);
        let renewal_tried = row.last_attempt_at.is_some_and(|at| at >= renew_from);
        if expires_at <= now || (renew_from <= now && !renewal_tried) {
            return Ok(None);
        }
        let binding = Binding::ticket(owner.tenant_id, owner.app_id, row.ticket_type);
        let ticket = self.crypto.decrypt_text(ct, &binding)?;
        Ok(Some(ValidTicket {
            ticket: Ticket::from(ticket),
            fetched_at,
            expires_at,
        }))
    }

    /// With a credential's row locked: count one call in the app's budget
    /// for today, or refuse when it is spent (the gate's rule for calls
    /// other than the token's own).
    pub(super) async fn spend_one_call(
        &self,
        tx: &mut PgConnection,
        owner: TicketOwner<'_>,
    ) -> Result<Result<(), Unavailable>, EngineError> {
        let today = policy::quota_day(Utc::now());
        let stored = db::budget::lock(tx, owner.tenant_id, owner.appid, today).await?;
        let (day, mut spent) = Spent::on(today, stored.day, stored.calls, stored.forced);
        spent.last_forced_at = stored.last_forced_at;
        if !gate::another_call_fits(spent.calls, &self.config.limits) {
            self.metrics.count_refusal(RefusalReason::BudgetSpent);
            return Ok(Err(Unavailable {
                cause: Cause::Refused(RefusalReason::BudgetSpent),
                failure: None,
                retry_after: Duration::from_secs(60),
                reason: RefusalReason::BudgetSpent.explain().into(),
            }));
        }
        spent.calls += 1;
        let budget = BudgetRow {
            day,
            calls: i32::try_from(spent.calls).unwrap_or(i32::MAX),
            forced: i32::try_from(spent.forced).unwrap_or(i32::MAX),
            last_forced_at: spent.last_forced_at,
        };
        db::budget::store(tx, owner.tenant_id, owner.appid, day, &budget).await?;
        Ok(Ok(()))
    }

    /// The scheduler found a ticket due whose budget is spent: no call; it
    /// waits for the next quota day (the day's budget) or the next hour (an
    /// hourly limit), and the log says why.
    async fn skip_ticket(
        &self,
        tx: &mut PgConnection,
        owner: TicketOwner<'_>,
        kind: TicketKind,
        refused: &Unavailable,
    ) -> Result<(), EngineError> {
        let now = Utc::now();
        let (at, reason) = match refused.cause {
            Cause::Refused(RefusalReason::HourlyLimit) => {
                (super::hourly::next_hour(now), RefusalReason::HourlyLimit)
            }
            _ => (policy::next_quota_day(now), RefusalReason::BudgetSpent),
        };
        tickets::reschedule(&mut *tx, owner.app_id, kind.0, at).await?;
        let entry = self.log_entry(owner, kind, Trigger::Schedule, RefreshOutcome::Skipped);
        self.record(
            tx,
            &LogEntry {
                errmsg: Some(reason.explain()),
                ..entry
            },
        )
        .await
    }

    /// Store a failed attempt (any ticket still valid is kept) to be tried
    /// again at `next`, and log it.
    #[allow(clippy::too_many_arguments)]
    async fn store_ticket_failure(
        &self,
        tx: &mut PgConnection,
        owner: TicketOwner<'_>,
        kind: TicketKind,
        next: DateTime<Utc>,
        trigger: Trigger,
        failure: &FetchFailure,
        latency_ms: Option<i64>,
    ) -> Result<(), EngineError> {
        let code = failure.errcode.and_then(|c| i32::try_from(c).ok());
        tickets::store_failure(tx, owner.app_id, kind.0, code, &failure.errmsg, next).await?;
        let entry = self.log_entry(owner, kind, trigger, RefreshOutcome::Failure);
        self.record(
            tx,
            &LogEntry {
                error_class: Some(failure.class),
                errcode: failure.errcode,
                errmsg: Some(&failure.errmsg),
                latency_ms,
                ..entry
            },
        )
        .await?;
        tracing::warn!(appid = %owner.appid, credential = kind.credential().as_str(), errcode = ?failure.errcode, errmsg = %failure.errmsg, "ticket fetch failed");
        Ok(())
    }

    fn log_entry<'a>(
        &'a self,
        owner: TicketOwner<'_>,
        kind: TicketKind,
        trigger: Trigger,
        outcome: RefreshOutcome,
    ) -> LogEntry<'a> {
        LogEntry {
            credential: kind.credential(),
            tenant_id: owner.tenant_id,
            app_id: owner.app_id,
            trigger,
            outcome,
            error_class: None,
            errcode: None,
            errmsg: None,
            latency_ms: None,
            replica: &self.config.replica_id,
            // A ticket's attempts say nothing of the token's validity.
            valid_until: None,
        }
    }

    /// Store a fetched ticket: a new one with its expiry from now, or the one
    /// already stored (see the module's notes) with its first expiry; log it.
    async fn store_ticket(
        &self,
        tx: &mut PgConnection,
        owner: TicketOwner<'_>,
        kind: TicketKind,
        (token, trigger, latency_ms): (&ValidToken, Trigger, Option<i64>),
        fresh: &Fresh,
    ) -> Result<TicketAttempt, TokenError> {
        // To the microsecond, as the database keeps it: the reader who
        // fetched and every later reader see the same expiry.
        let now = policy::stored_now();
        let plain = fresh.value.expose_secret();
        let binding = Binding::ticket(owner.tenant_id, owner.app_id, kind.0);
        let stored = tickets::current(&mut *tx, owner.app_id, kind.0).await?;
        let entry = LogEntry {
            latency_ms,
            ..self.log_entry(owner, kind, trigger, RefreshOutcome::Unchanged)
        };
        if let Some(row) = stored
            && let (Some(ct), Some(fetched_at), Some(expires_at)) =
                (&row.ticket_ciphertext, row.fetched_at, row.expires_at)
            && self
                .crypto
                .decrypt_text(ct, &binding)
                .is_ok_and(|held| held.expose_secret() == plain)
        {
            // Renewed a second after it expires on our clock (WeChat's clock
            // started a moment after ours: asked at once, it may still
            // answer the same ticket); a read in between fetches on demand.
            let next = expires_at.max(now) + chrono::Duration::seconds(1);
            tickets::store_same(tx, owner.app_id, kind.0, next).await?;
            self.record(tx, &entry).await?;
            if expires_at <= now {
                return Ok(TicketAttempt::Unavailable(Unavailable {
                    cause: Cause::Busy,
                    failure: None,
                    retry_after: Duration::from_secs(1),
                    reason: "the ticket is being renewed at WeChat; try again in a moment".into(),
                }));
            }
            return Ok(TicketAttempt::Got(ValidTicket {
                ticket: Ticket::from(plain.to_string()),
                fetched_at,
                expires_at,
            }));
        }
        let expires_at = now + chrono_duration(fresh.expires_in);
        let ciphertext = self
            .crypto
            .encrypt(plain.as_bytes(), &binding)
            .map_err(EngineError::from)?;
        let stored = StoredTicket {
            ciphertext: &ciphertext,
            fetched_at: now,
            expires_at,
            token_version: token.version,
            next_due_at: kind.renew_at(now, expires_at, &self.config.timing),
        };
        tickets::store(tx, owner.app_id, kind.0, &stored).await?;
        let entry = LogEntry {
            outcome: RefreshOutcome::Success,
            ..entry
        };
        self.record(tx, &entry).await?;
        Ok(TicketAttempt::Got(ValidTicket {
            ticket: Ticket::from(plain.to_string()),
            fetched_at: now,
            expires_at,
        }))
    }
}

fn failure_reason(f: &FetchFailure) -> String {
    errcodes::refused(f, "ticket")
}

fn unavailable(cause: Cause, reason: String, failure: Option<FetchFailure>) -> TokenError {
    TokenError::Unavailable(Unavailable {
        cause,
        failure,
        retry_after: Duration::from_secs(if cause == Cause::Busy { 1 } else { 60 }),
        reason,
    })
}
