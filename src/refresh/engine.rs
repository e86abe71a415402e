//! The refresh engine: claims due token rows with `FOR UPDATE SKIP LOCKED`,
//! calls WeChat while it owns the row, and stores the token or the failure in
//! the same transaction.
//!
//! Why the lock is the row lock of an open transaction, not a lease: a lease
//! needs fencing tokens and clock agreement, while a row lock is released by
//! PostgreSQL the moment its connection dies, so a replica killed mid-request
//! lets go at once and another takes the app over on its next claim. Nothing
//! can hold it for ever: the upstream call times out well before
//! `idle_in_transaction_session_timeout` (60 s) ends the transaction, and
//! waiters use `lock_timeout`.
//!
//! Every attempt, whatever asked for it, passes the gate ([`super::gate`])
//! with the row locked; the attempt itself is in [`super::attempt`], the
//! on-demand read in [`super::reads`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use super::cache::ReadCache;
pub use super::gate::Trigger;
use super::gate::{Limits, Refusal};
use super::metrics::Metrics;
use super::policy::Timing;
use super::slots::OnDemandSlots;
use super::token::Unavailable;
use crate::crypto::KeyRing;
use crate::db::tickets::{self as db_tickets, ClaimedTicket};
use crate::db::tokens::{self, ClaimedRow};
use crate::domain::AppUuid;
use crate::domain::credential::hash as fingerprint;
use crate::upstream::{ErrorClass, FetchFailure, TokenProvider};

/// Least time between two claim rounds of one replica's scheduler loop.
const MIN_ROUND: Duration = Duration::from_millis(50);

/// Knobs of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Refresh timing and backoff.
    pub timing: Timing,
    /// The gate's limits on upstream calls.
    pub limits: Limits,
    /// Scheduled refreshes in flight at once on this replica.
    pub concurrency: usize,
    /// On-demand refreshes (token reads) in flight at once on this replica.
    pub on_demand_concurrency: usize,
    /// Of those, at most this many for one organisation.
    pub on_demand_per_tenant: usize,
    /// Longest wait for another replica's lock on the on-demand path.
    pub lock_timeout: Duration,
    /// Longest upstream call.
    pub upstream_timeout: Duration,
    /// How long WeChat keeps a replaced classic token alive.
    pub classic_overlap: Duration,
    /// This replica's id, for the refresh log.
    pub replica_id: String,
    /// Safety-net wake-up interval (notifications do the real work).
    pub tick: Duration,
    /// At most one failing/recovered alert pair per app and channel per this long.
    pub alert_damping: Duration,
    /// How long failing and recovered alerts wait to be gathered into a summary.
    pub alert_gather: Duration,
}

/// A row the scheduler claimed, of either kind.
#[derive(Debug)]
enum Claimed {
    /// A token row.
    Token(ClaimedRow),
    /// A ticket row.
    Ticket(ClaimedTicket),
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A new token is stored.
    Refreshed,
    /// WeChat returned the token already held (stable mode, outside the window).
    Unchanged,
    /// The attempt failed; any valid token was kept.
    Failed(FetchFailure),
    /// The gate refused to call WeChat; nothing changed.
    Refused(Refusal),
    /// No attempt: the app is disabled.
    Disabled,
}

/// The result of a compare-and-refresh report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidateOutcome {
    /// The reported token was current: how the refresh went (or why the
    /// gate refused it).
    Refreshed(AttemptOutcome),
    /// The reported token is no longer the current one: nothing to do.
    Stale,
}

impl AttemptOutcome {
    /// The outcome's name, as answers and the audit log give it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Refreshed => "success",
            Self::Unchanged => "unchanged",
            Self::Disabled => "disabled",
            Self::Refused(_) => "refused",
            Self::Failed(_) => "failure",
        }
    }
}

/// Errors of the engine itself (database, crypto); upstream failures are outcomes.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Encrypting a token failed.
    #[error("cannot encrypt the token: {0}")]
    Crypto(#[from] crate::crypto::CryptoError),
    /// The app no longer exists.
    #[error("the app no longer exists")]
    Gone,
}

/// Errors of a token read.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No valid token can be had now.
    #[error("{}", .0.reason)]
    Unavailable(Unavailable),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<sqlx::Error> for TokenError {
    fn from(e: sqlx::Error) -> Self {
        Self::Engine(e.into())
    }
}

/// The engine of one replica.
pub struct RefreshEngine {
    /// The engine's own connections (refreshes and token reads), apart from
    /// the pool of the web UI and the rest of the API, so neither can starve
    /// the other.
    pub(super) pool: PgPool,
    pub(super) crypto: Arc<KeyRing>,
    pub(super) provider: Arc<dyn TokenProvider>,
    pub(super) config: EngineConfig,
    wake: tokio::sync::Notify,
    flights: Mutex<HashMap<AppUuid, Arc<tokio::sync::Mutex<()>>>>,
    /// Decrypted tokens and app ids of this replica (speed only).
    pub cache: ReadCache,
    /// Scheduled refreshes in flight at once (`concurrency` permits).
    slots: Arc<tokio::sync::Semaphore>,
    /// On-demand refreshes in flight, per replica and per tenant.
    pub(super) on_demand: OnDemandSlots,
    /// Prometheus metrics of this replica.
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for RefreshEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshEngine")
            .field("replica_id", &self.config.replica_id)
            .finish_non_exhaustive()
    }
}

impl RefreshEngine {
    /// An engine over `pool` (its own connections), storing tokens under
    /// `crypto`, fetching from `provider`.
    pub fn new(
        pool: PgPool,
        crypto: Arc<KeyRing>,
        provider: Arc<dyn TokenProvider>,
        config: EngineConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            pool,
            crypto,
            provider,
            slots: Arc::new(tokio::sync::Semaphore::new(config.concurrency.max(1))),
            on_demand: OnDemandSlots::new(
                config.on_demand_concurrency,
                config.on_demand_per_tenant,
            ),
            config,
            wake: tokio::sync::Notify::new(),
            flights: Mutex::new(HashMap::new()),
            cache: ReadCache::default(),
            metrics,
        }
    }

    /// The engine's connection pool (also the token-read path's).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The key ring tokens and tickets are stored under.
    pub fn key_ring(&self) -> &KeyRing {
        &self.crypto
    }

    /// This replica's id.
    pub fn replica_id(&self) -> &str {
        &self.config.replica_id
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Wake the scheduler loop (a notification or a tick arrived).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The scheduler loop: claim due rows while refresh slots are free (each
    /// claimed row is refreshed in its own task), then sleep until the next
    /// due time, a notification or a tick; until `stop` is cancelled, then
    /// wait for the refreshes in flight to be stored.
    ///
    /// One claim query runs at a time per replica, and only when a slot is
    /// free: a replica never fires a burst of claims that find nothing (all
    /// due rows held by others), and a slot that frees up is refilled at once
    /// instead of waiting for the slowest refresh of a round. Rounds are at
    /// least [`MIN_ROUND`] apart, so the notifications every stored token
    /// sends do not turn into a claim query each on every replica.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        tracing::info!(replica = %self.config.replica_id, concurrency = self.config.concurrency, "refresh engine started");
        while !stop.is_cancelled() {
            let round = Instant::now();
            // A claim cut short by the cancellation rolls back: the row stays due.
            stop.run_until_cancelled(self.claim_due_rows()).await;
            let pause = match stop.run_until_cancelled(self.next_due()).await {
                None => break,
                Some(Ok(Some(next))) => {
                    let until = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                    // Due rows held by other replicas (or in flight here):
                    // look again shortly; their commit also wakes us.
                    until.clamp(MIN_ROUND, self.config.tick.max(MIN_ROUND))
                }
                Some(Ok(None)) => self.config.tick,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "cannot read the next due time; retrying");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                () = stop.cancelled() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
            // Coalesce bursts of wake-ups into one round per MIN_ROUND.
            let rest = MIN_ROUND.saturating_sub(round.elapsed());
            stop.run_until_cancelled(tokio::time::sleep(rest)).await;
        }
        // Every in-flight refresh holds a slot until its transaction ends.
        let all = u32::try_from(self.config.concurrency.max(1)).unwrap_or(u32::MAX);
        let _ = self.slots.acquire_many(all).await;
        tracing::info!(replica = %self.config.replica_id, "refresh engine stopped");
    }

    /// Claim due rows one at a time while a refresh slot is free, and
    /// refresh each in its own task; stop when nothing due is free.
    async fn claim_due_rows(self: &Arc<Self>) {
        loop {
            let Ok(slot) = Arc::clone(&self.slots).acquire_owned().await else {
                return;
            };
            match self.claim_one().await {
                Ok(Some((tx, claimed))) => {
                    let engine = Arc::clone(self);
                    tokio::spawn(async move {
                        let _slot = slot;
                        let done = match claimed {
                            Claimed::Token(row) => engine.refresh_claimed(tx, row).await,
                            Claimed::Ticket(t) => engine.renew_claimed_ticket(tx, t).await,
                        };
                        if let Err(e) = done {
                            tracing::warn!(error = %crate::report::error_chain(&e), "scheduled refresh failed; will retry");
                        }
                    });
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %crate::report::error_chain(&e), "cannot claim due tokens; will retry");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    return;
                }
            }
        }
    }

    /// Claim one due row in a new transaction, a token's first (tickets
    /// depend on tokens), then a ticket's; `None` when nothing due is free.
    async fn claim_one(
        &self,
    ) -> Result<Option<(sqlx::Transaction<'static, sqlx::Postgres>, Claimed)>, EngineError> {
        let started = Instant::now();
        let mut tx = self.pool.begin().await?;
        let claimed = if let Some(row) = tokens::claim_due(&mut tx).await? {
            Claimed::Token(row)
        } else if let Some(ticket) = db_tickets::claim_due(&mut tx).await? {
            Claimed::Ticket(ticket)
        } else {
            tx.rollback().await?;
            return Ok(None);
        };
        self.metrics.observe_claim(started.elapsed());
        Ok(Some((tx, claimed)))
    }

    /// The earliest due time of any credential the scheduler keeps.
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        let token = tokens::next_due(&self.pool).await?;
        let ticket = db_tickets::next_due(&self.pool).await?;
        Ok(match (token, ticket) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Refresh a claimed row and commit (which releases the claim).
    async fn refresh_claimed(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
        row: ClaimedRow,
    ) -> Result<(), EngineError> {
        let app_id = row.app_id;
        self.refresh_locked(&mut tx, row, Trigger::Schedule).await?;
        tx.commit().await?;
        self.cache.forget(Some(app_id));
        Ok(())
    }

    /// Refresh `app_id` now, waiting for its lock (manual refresh,
    /// registration). If an attempt was stored after `since` while we waited
    /// (the scheduler, another replica, a double click), its result is the
    /// answer: WeChat is not asked twice.
    pub async fn refresh_now(
        &self,
        app_id: AppUuid,
        trigger: Trigger,
        since: DateTime<Utc>,
    ) -> Result<AttemptOutcome, EngineError> {
        let flight = self.flight(app_id);
        let _guard = flight.lock().await;
        let mut tx = self.pool.begin().await?;
        let row = self.lock_row(&mut tx, app_id).await?;
        if row.last_attempt_at.is_some_and(|at| at >= since) {
            tx.rollback().await?;
            return Ok(last_outcome(&row));
        }
        let outcome = self.refresh_locked(&mut tx, row, trigger).await?;
        tx.commit().await?;
        self.cache.forget(Some(app_id));
        Ok(outcome)
    }

    /// Compare-and-refresh: refresh only if `reported` is still the current token.
    pub async fn invalidate(
        &self,
        app_id: AppUuid,
        reported: &str,
    ) -> Result<InvalidateOutcome, EngineError> {
        let reported_fp = fingerprint(reported);
        let is_current = |fp: Option<&Vec<u8>>| {
            fp.is_some_and(|fp| crate::domain::credential::constant_time_eq(fp, &reported_fp))
        };
        let current_fp = self.current_fingerprint(app_id).await?;
        if !is_current(current_fp.as_ref()) {
            self.cache.forget(Some(app_id));
            return Ok(InvalidateOutcome::Stale);
        }
        let flight = self.flight(app_id);
        let _guard = flight.lock().await;
        if !is_current(self.current_fingerprint(app_id).await?.as_ref()) {
            self.cache.forget(Some(app_id));
            return Ok(InvalidateOutcome::Stale);
        }
        let mut tx = self.pool.begin().await?;
        let row = self.lock_row(&mut tx, app_id).await?;
        if !is_current(row.token_fingerprint.as_ref()) {
            tx.rollback().await?;
            self.cache.forget(Some(app_id));
            return Ok(InvalidateOutcome::Stale);
        }
        let outcome = self
            .refresh_locked(&mut tx, row, Trigger::Invalidate)
            .await?;
        tx.commit().await?;
        self.cache.forget(Some(app_id));
        Ok(InvalidateOutcome::Refreshed(outcome))
    }

    async fn current_fingerprint(&self, app_id: AppUuid) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(tokens::fingerprint(&self.pool, app_id).await?)
    }

    pub(super) async fn lock_row(
        &self,
        tx: &mut PgConnection,
        app_id: AppUuid,
    ) -> Result<ClaimedRow, EngineError> {
        let ms = u32::try_from(self.config.lock_timeout.as_millis()).unwrap_or(u32::MAX);
        tokens::lock_for_refresh(tx, app_id, ms)
            .await?
            .ok_or(EngineError::Gone)
    }

    pub(super) fn flight(&self, app_id: AppUuid) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self
            .flights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if flights.len() > 10_000 {
            // Drop idle entries so the map stays bounded.
            flights.retain(|_, m| Arc::strong_count(m) > 1);
        }
        Arc::clone(flights.entry(app_id).or_default())
    }
}

/// The outcome of the attempt a row last stored.
fn last_outcome(row: &ClaimedRow) -> AttemptOutcome {
    if !row.enabled {
        return AttemptOutcome::Disabled;
    }
    if row.failure_streak == 0 {
        return AttemptOutcome::Refreshed;
    }
    AttemptOutcome::Failed(FetchFailure {
        class: row.last_error_class.unwrap_or(ErrorClass::Transient),
        errcode: row.last_errcode.map(i64::from),
        errmsg: row.last_errmsg.clone().unwrap_or_default(),
        outcome_unknown: false,
        platform: crate::upstream::errcodes::kind_of(&row.appid),
    })
}
