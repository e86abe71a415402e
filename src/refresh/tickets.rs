//! JS-SDK tickets (`jsapi`, `wx_card`), kept by the same engine as tokens.
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

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::PgConnection;

use super::engine::{EngineError, RefreshEngine, TokenError};
use super::gate::{self, RefusalReason, Spent};
use super::policy::{self, chrono_duration};
use super::token::{Cause, Unavailable, ValidToken};
use crate::crypto::Binding;
use crate::db::budget::BudgetRow;
use crate::db::tickets::{self, StoredTicket, TicketRow};
use crate::db::{self, tokens};
use crate::domain::{AppUuid, TenantId, TicketType};
use crate::secret::Ticket;
use crate::upstream::{FetchFailure, FreshTicket, errcodes};

/// The least life a token must have left to fetch a ticket with it.
pub const TOKEN_MIN_TTL: Duration = Duration::from_secs(60);

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

/// A ticket is renewed in the last quarter of its life, at most 5 minutes
/// before it expires: readers never get one about to die.
fn renew_margin(fetched_at: DateTime<Utc>, expires_at: DateTime<Utc>) -> chrono::Duration {
    ((expires_at - fetched_at) / 4).min(chrono::Duration::minutes(5))
}

impl RefreshEngine {
    /// The app's ticket of `ticket_type`, fetched if none lives long enough
    /// (this turns the ticket on for the app).
    pub async fn ticket(
        &self,
        owner: TicketOwner<'_>,
        ticket_type: TicketType,
    ) -> Result<ValidTicket, TokenError> {
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
            let token = self
                .token(owner.tenant_id, owner.app_id, TOKEN_MIN_TTL)
                .await?;
            let result = self
                .fetch_ticket(&mut tx, owner, ticket_type, &token)
                .await?;
            tx.commit().await.map_err(EngineError::from)?;
            match result {
                Ok(t) => return Ok(t),
                Err(f) if f.errcode.is_some_and(errcodes::rejects_token) && !rejected_once => {
                    rejected_once = true;
                    self.invalidate(owner.app_id, token.access_token.expose_secret())
                        .await?;
                }
                Err(f) => {
                    let reason = failure_reason(&f);
                    return Err(unavailable(Cause::Failed, reason, Some(f)));
                }
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
        let renew_from = expires_at - renew_margin(fetched_at, expires_at);
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

    /// With the ticket's row locked: count the call in today's budget (or
    /// refuse when it is spent), call WeChat, store the ticket or the failure.
    async fn fetch_ticket(
        &self,
        tx: &mut PgConnection,
        owner: TicketOwner<'_>,
        ticket_type: TicketType,
        token: &ValidToken,
    ) -> Result<Result<ValidTicket, FetchFailure>, TokenError> {
        let now = Utc::now();
        let today = policy::quota_day(now);
        let stored = db::budget::lock(tx, owner.tenant_id, owner.appid, today).await?;
        let (day, mut spent) = Spent::on(today, stored.day, stored.calls, stored.forced);
        spent.last_forced_at = stored.last_forced_at;
        if !gate::another_call_fits(spent.calls, &self.config.limits) {
            self.metrics.count_refusal(RefusalReason::BudgetSpent);
            return Err(unavailable(
                Cause::Refused(RefusalReason::BudgetSpent),
                RefusalReason::BudgetSpent.explain().into(),
                None,
            ));
        }
        spent.calls += 1;
        let budget = BudgetRow {
            day,
            calls: i32::try_from(spent.calls).unwrap_or(i32::MAX),
            forced: i32::try_from(spent.forced).unwrap_or(i32::MAX),
            last_forced_at: spent.last_forced_at,
        };
        db::budget::store(tx, owner.tenant_id, owner.appid, day, &budget).await?;
        let secret = SecretString::from(token.access_token.expose_secret().to_string());
        let started = std::time::Instant::now();
        let outcome = self.provider.fetch_ticket(&secret, ticket_type).await;
        self.metrics.observe_upstream(started.elapsed());
        match outcome {
            Ok(fresh) => {
                self.store_ticket(tx, owner, ticket_type, token, now, &fresh)
                    .await
            }
            Err(failure) => {
                let code = failure.errcode.and_then(|c| i32::try_from(c).ok());
                tickets::store_failure(tx, owner.app_id, ticket_type, code, &failure.errmsg)
                    .await?;
                Ok(Err(failure))
            }
        }
    }

    /// Store a fetched ticket: a new one with its expiry from now, or the one
    /// already stored (see the module's notes) with its first expiry.
    async fn store_ticket(
        &self,
        tx: &mut PgConnection,
        owner: TicketOwner<'_>,
        ticket_type: TicketType,
        token: &ValidToken,
        now: DateTime<Utc>,
        fresh: &FreshTicket,
    ) -> Result<Result<ValidTicket, FetchFailure>, TokenError> {
        let plain = fresh.ticket.expose_secret();
        let binding = Binding::ticket(owner.tenant_id, owner.app_id, ticket_type);
        let stored = tickets::current(&mut *tx, owner.app_id, ticket_type).await?;
        if let Some(row) = stored
            && let (Some(ct), Some(fetched_at), Some(expires_at)) =
                (&row.ticket_ciphertext, row.fetched_at, row.expires_at)
            && self
                .crypto
                .decrypt_text(ct, &binding)
                .is_ok_and(|held| held.expose_secret() == plain)
        {
            tickets::store_same(tx, owner.app_id, ticket_type).await?;
            if expires_at <= now {
                // WeChat still holds the ticket our clock says has run out
                // (its clock started a moment after ours): ask again shortly.
                return Err(unavailable(
                    Cause::Busy,
                    "the ticket is being renewed at WeChat; try again in a moment".into(),
                    None,
                ));
            }
            return Ok(Ok(ValidTicket {
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
        };
        tickets::store(tx, owner.app_id, ticket_type, &stored).await?;
        Ok(Ok(ValidTicket {
            ticket: Ticket::from(plain.to_string()),
            fetched_at: now,
            expires_at,
        }))
    }
}

fn failure_reason(f: &FetchFailure) -> String {
    match f.errcode.and_then(errcodes::explain) {
        Some(e) => format!("WeChat refused the ticket request: {}", e.meaning_en),
        None => match f.errcode {
            Some(code) => format!("WeChat refused the ticket request: errcode {code}"),
            None => format!("the ticket request failed: {}", f.errmsg),
        },
    }
}

fn unavailable(cause: Cause, reason: String, failure: Option<FetchFailure>) -> TokenError {
    TokenError::Unavailable(Unavailable {
        cause,
        failure,
        retry_after: Duration::from_secs(if cause == Cause::Busy { 1 } else { 60 }),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn a_ticket_is_renewed_in_its_last_quarter_at_most_five_minutes_early() {
        let t0 = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let long = t0 + chrono::Duration::seconds(7200);
        assert_eq!(renew_margin(t0, long), chrono::Duration::minutes(5));
        let short = t0 + chrono::Duration::seconds(8);
        assert_eq!(renew_margin(t0, short), chrono::Duration::seconds(2));
    }
}
