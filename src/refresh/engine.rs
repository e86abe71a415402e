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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use secrecy::ExposeSecret as _;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::cache::ReadCache;
use super::metrics::Metrics;
use super::policy::{self, Timing};
use crate::auth::token::hash as fingerprint;
use crate::crypto::{Binding, KeyRing};
use crate::db::tokens::{self, ClaimedRow, LogEntry, StoredToken};
use crate::domain::{AppId, TokenMode};
use crate::upstream::{ErrorClass, FetchFailure, FetchRequest, TokenProvider, errcodes};

/// Least time between two claim rounds of one replica's scheduler loop.
const MIN_ROUND: Duration = Duration::from_millis(50);

/// What started an attempt (stored in the refresh log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The scheduler found the token due.
    Schedule,
    /// A reader found no token valid long enough.
    OnDemand,
    /// A person asked for it.
    Manual,
    /// A client reported the current token as bad.
    Invalidate,
    /// The app was just registered.
    Registration,
}

impl Trigger {
    /// The name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::OnDemand => "on_demand",
            Self::Manual => "manual",
            Self::Invalidate => "invalidate",
            Self::Registration => "registration",
        }
    }
}

/// Knobs of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Refresh timing and backoff.
    pub timing: Timing,
    /// Refreshes in flight at once on this replica.
    pub concurrency: usize,
    /// Longest wait for another replica's lock on the on-demand path.
    pub lock_timeout: Duration,
    /// This replica's id, for the refresh log.
    pub replica_id: String,
    /// Safety-net wake-up interval (notifications do the real work).
    pub tick: Duration,
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
    /// No attempt: the app is disabled.
    Disabled,
}

/// A token fit to hand out. Readers share one (`Arc`) per cached token.
#[derive(Debug)]
pub struct ValidToken {
    /// The token.
    pub access_token: crate::secret::AccessToken,
    /// When it was fetched.
    pub fetched_at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// Its version (for caches).
    pub version: i64,
    /// `"access_token":…,"expires_at":…,"fetched_at":…` as JSON, rendered
    /// once per token rather than once per read (secret: it holds the token).
    json_fields: crate::secret::AccessToken,
}

impl ValidToken {
    /// A token with its JSON fields rendered.
    pub fn new(
        access_token: crate::secret::AccessToken,
        fetched_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        version: i64,
    ) -> Self {
        #[derive(serde::Serialize)]
        struct Fields<'a> {
            access_token: &'a str,
            expires_at: DateTime<Utc>,
            fetched_at: DateTime<Utc>,
        }
        let object = serde_json::to_string(&Fields {
            access_token: access_token.expose_secret(),
            expires_at,
            fetched_at,
        })
        .unwrap_or_default();
        // Without the braces, to be spliced into a larger object.
        let fields = object
            .strip_prefix('{')
            .and_then(|o| o.strip_suffix('}'))
            .unwrap_or_default()
            .to_string();
        Self {
            access_token,
            fetched_at,
            expires_at,
            version,
            json_fields: crate::secret::AccessToken::from(fields),
        }
    }

    /// The token as the REST API answers it:
    /// `{"appid", "access_token", "expires_in", "expires_at", "fetched_at"}`.
    /// `appid` is a parsed [`AppId`] (nothing in it needs escaping).
    pub fn to_json(&self, appid: &AppId, now: DateTime<Utc>) -> String {
        let fields = self.json_fields.expose_secret();
        let mut body = String::with_capacity(fields.len() + appid.as_str().len() + 48);
        body.push_str("{\"appid\":\"");
        body.push_str(appid.as_str());
        body.push_str("\",\"expires_in\":");
        body.push_str(&(self.expires_at - now).num_seconds().to_string());
        body.push(',');
        body.push_str(fields);
        body.push('}');
        body
    }
}

/// Why no token can be handed out now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// The failure behind it, if there was one.
    pub failure: Option<FetchFailure>,
    /// When trying again makes sense.
    pub retry_after: Duration,
    /// Why, for people.
    pub reason: String,
}

/// The result of a compare-and-refresh report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidateOutcome {
    /// The reported token was current, and a refresh was made.
    Refreshed(AttemptOutcome),
    /// The reported token is no longer the current one: nothing to do.
    Stale,
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

/// The engine of one replica.
pub struct RefreshEngine {
    pool: PgPool,
    crypto: Arc<KeyRing>,
    provider: Arc<dyn TokenProvider>,
    config: EngineConfig,
    wake: tokio::sync::Notify,
    flights: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    /// Decrypted tokens and app ids of this replica (speed only).
    pub cache: ReadCache,
    /// Scheduled refreshes in flight at once (`concurrency` permits).
    slots: Arc<tokio::sync::Semaphore>,
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
    /// An engine over `pool`, storing tokens under `crypto`, fetching from `provider`.
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
            config,
            wake: tokio::sync::Notify::new(),
            flights: Mutex::new(HashMap::new()),
            cache: ReadCache::default(),
            metrics,
        }
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
    /// due time, a notification or a tick.
    ///
    /// One claim query runs at a time per replica, and only when a slot is
    /// free: a replica never fires a burst of claims that find nothing (all
    /// due rows held by others), and a slot that frees up is refilled at once
    /// instead of waiting for the slowest refresh of a round. Rounds are at
    /// least [`MIN_ROUND`] apart, so the notifications every stored token
    /// sends do not turn into a claim query each on every replica.
    pub async fn run(self: Arc<Self>) {
        tracing::info!(replica = %self.config.replica_id, concurrency = self.config.concurrency, "refresh engine started");
        loop {
            if self.pool.is_closed() {
                return;
            }
            let round = Instant::now();
            self.claim_due_rows().await;
            let pause = match tokens::next_due(&self.pool).await {
                Ok(Some(next)) => {
                    let until = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                    // Due rows held by other replicas (or in flight here):
                    // look again shortly; their commit also wakes us.
                    until.clamp(MIN_ROUND, self.config.tick.max(MIN_ROUND))
                }
                Ok(None) => self.config.tick,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the next due time; retrying");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
            // Coalesce bursts of wake-ups into one round per MIN_ROUND.
            tokio::time::sleep(MIN_ROUND.saturating_sub(round.elapsed())).await;
        }
    }

    /// Claim due rows one at a time while a refresh slot is free, and
    /// refresh each in its own task; stop when nothing due is free.
    async fn claim_due_rows(self: &Arc<Self>) {
        loop {
            let Ok(slot) = Arc::clone(&self.slots).acquire_owned().await else {
                return;
            };
            match self.claim_one().await {
                Ok(Some((tx, row))) => {
                    let engine = Arc::clone(self);
                    tokio::spawn(async move {
                        let _slot = slot;
                        if let Err(e) = engine.refresh_claimed(tx, row).await {
                            tracing::warn!(error = %crate::error::error_chain(&e), "scheduled refresh failed; will retry");
                        }
                    });
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %crate::error::error_chain(&e), "cannot claim due tokens; will retry");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    return;
                }
            }
        }
    }

    /// Claim one due row in a new transaction; `None` when nothing due is free.
    async fn claim_one(
        &self,
    ) -> Result<Option<(sqlx::Transaction<'static, sqlx::Postgres>, ClaimedRow)>, EngineError> {
        let started = Instant::now();
        let mut tx = self.pool.begin().await?;
        let Some(row) = tokens::claim_due(&mut tx).await? else {
            tx.rollback().await?;
            return Ok(None);
        };
        self.metrics.observe_claim(started.elapsed());
        Ok(Some((tx, row)))
    }

    /// Refresh a claimed row and commit (which releases the claim).
    async fn refresh_claimed(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
        row: ClaimedRow,
    ) -> Result<(), EngineError> {
        let app_id = row.app_id;
        self.refresh_locked(&mut tx, row, Trigger::Schedule, false)
            .await?;
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
        app_id: Uuid,
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
        let outcome = self.refresh_locked(&mut tx, row, trigger, false).await?;
        tx.commit().await?;
        self.cache.forget(Some(app_id));
        Ok(outcome)
    }

    /// A token valid for at least `min_ttl`, refreshed on demand if needed:
    /// concurrent readers of this replica share one attempt, and readers on
    /// other replicas wait on the row lock, then read the one new token.
    pub async fn token(
        &self,
        tenant_id: Uuid,
        app_id: Uuid,
        min_ttl: Duration,
    ) -> Result<Arc<ValidToken>, TokenError> {
        if let Some(t) = self.cache.token(app_id, min_ttl) {
            return Ok(t);
        }
        if let Some(t) = self.read_valid(tenant_id, app_id, min_ttl).await? {
            return Ok(t);
        }
        let flight = self.flight(app_id);
        let _guard = flight.lock().await;
        if let Some(t) = self.read_valid(tenant_id, app_id, min_ttl).await? {
            return Ok(t);
        }
        let mut tx = self.pool.begin().await.map_err(EngineError::from)?;
        let row = match self.lock_row(&mut tx, app_id).await {
            Ok(row) => row,
            Err(EngineError::Db(e)) if tokens::is_lock_timeout(&e) => {
                return Err(TokenError::Unavailable(Unavailable {
                    failure: None,
                    retry_after: Duration::from_secs(1),
                    reason: "another replica is refreshing this token; try again in a moment"
                        .into(),
                }));
            }
            Err(e) => return Err(e.into()),
        };
        // Another replica may have refreshed while we waited for the lock.
        let fresh_enough = row
            .expires_at
            .is_some_and(|exp| exp > Utc::now() + chrono_duration(min_ttl));
        let outcome = if fresh_enough {
            None
        } else if row.enabled {
            Some(
                self.refresh_locked(&mut tx, row.clone(), Trigger::OnDemand, false)
                    .await?,
            )
        } else {
            Some(AttemptOutcome::Disabled)
        };
        tx.commit().await.map_err(EngineError::from)?;
        self.cache.forget(Some(app_id));
        if let Some(t) = self.read_valid(tenant_id, app_id, min_ttl).await? {
            return Ok(t);
        }
        Err(TokenError::Unavailable(
            self.why_unavailable(outcome, app_id, min_ttl).await?,
        ))
    }

    async fn why_unavailable(
        &self,
        outcome: Option<AttemptOutcome>,
        app_id: Uuid,
        min_ttl: Duration,
    ) -> Result<Unavailable, EngineError> {
        let current = tokens::current(&self.pool, app_id)
            .await?
            .ok_or(EngineError::Gone)?;
        let retry_after = (current.next_refresh_at - Utc::now())
            .to_std()
            .unwrap_or(Duration::from_secs(1))
            .clamp(Duration::from_secs(1), Duration::from_secs(3600));
        Ok(match outcome {
            Some(AttemptOutcome::Failed(f)) => Unavailable {
                reason: match errcodes::explain(f.errcode.unwrap_or(0)) {
                    Some(e) if f.errcode.is_some() => {
                        format!("WeChat refused the token request: {}", e.meaning_en)
                    }
                    _ => format!("the token request failed: {}", f.errmsg),
                },
                failure: Some(f),
                retry_after,
            },
            Some(AttemptOutcome::Disabled) => Unavailable {
                failure: None,
                retry_after: Duration::from_secs(3600),
                reason: "refreshing is switched off for this app; enable it first".into(),
            },
            _ => Unavailable {
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

    /// Compare-and-refresh: refresh only if `reported` is still the current token.
    pub async fn invalidate(
        &self,
        app_id: Uuid,
        reported: &str,
    ) -> Result<InvalidateOutcome, EngineError> {
        let reported_fp = fingerprint(reported);
        let is_current = |fp: Option<&Vec<u8>>| {
            fp.is_some_and(|fp| crate::auth::token::constant_time_eq(fp, &reported_fp))
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
        let force = TokenMode::from_str_or_stable(&row.token_mode) == TokenMode::Stable;
        let outcome = self
            .refresh_locked(&mut tx, row, Trigger::Invalidate, force)
            .await?;
        tx.commit().await?;
        self.cache.forget(Some(app_id));
        Ok(InvalidateOutcome::Refreshed(outcome))
    }

    async fn current_fingerprint(&self, app_id: Uuid) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(sqlx::query_scalar::<_, Option<Vec<u8>>>(
            "select token_fingerprint from token_state where app_id = $1",
        )
        .bind(app_id)
        .fetch_optional(&self.pool)
        .await?
        .flatten())
    }

    async fn lock_row(
        &self,
        tx: &mut PgConnection,
        app_id: Uuid,
    ) -> Result<ClaimedRow, EngineError> {
        let ms = u32::try_from(self.config.lock_timeout.as_millis()).unwrap_or(u32::MAX);
        tokens::lock_for_refresh(tx, app_id, ms)
            .await?
            .ok_or(EngineError::Gone)
    }

    fn flight(&self, app_id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
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

    /// The stored token, decrypted, if it lives at least `min_ttl` more.
    pub async fn read_valid(
        &self,
        tenant_id: Uuid,
        app_id: Uuid,
        min_ttl: Duration,
    ) -> Result<Option<Arc<ValidToken>>, EngineError> {
        let Some(cur) = tokens::current(&self.pool, app_id).await? else {
            return Err(EngineError::Gone);
        };
        let (Some(ct), Some(fetched_at), Some(expires_at)) =
            (cur.access_token_ciphertext, cur.fetched_at, cur.expires_at)
        else {
            return Ok(None);
        };
        if expires_at <= Utc::now() + chrono_duration(min_ttl) {
            return Ok(None);
        }
        let token = self
            .crypto
            .decrypt_text(&ct, &Binding::access_token(tenant_id, app_id))?;
        let valid = Arc::new(ValidToken::new(
            crate::secret::AccessToken::from(token),
            fetched_at,
            expires_at,
            cur.version,
        ));
        self.cache.put_token(app_id, Arc::clone(&valid));
        Ok(Some(valid))
    }

    /// One attempt on a row this transaction holds: fetch, then store the
    /// token or the failure, and log the attempt.
    async fn refresh_locked(
        &self,
        tx: &mut PgConnection,
        row: ClaimedRow,
        trigger: Trigger,
        want_force: bool,
    ) -> Result<AttemptOutcome, EngineError> {
        if !row.enabled {
            return Ok(AttemptOutcome::Disabled);
        }
        let mode = TokenMode::from_str_or_stable(&row.token_mode);
        let now = Utc::now();
        let day = beijing_day(now);
        let force = want_force && mode == TokenMode::Stable && Self::force_allowed(&row, now, day);

        let started = Instant::now();
        let mut promoted = None;
        let result = match self
            .fetch_with(
                &row,
                &row.secret_ciphertext,
                Binding::app_secret(row.tenant_id, row.app_id),
                mode,
                force,
            )
            .await
        {
            Err(f) if is_secret_rejected(&f) && row.secondary_secret_ciphertext.is_some() => {
                let secondary = row.secondary_secret_ciphertext.clone().unwrap_or_default();
                match self
                    .fetch_with(
                        &row,
                        &secondary,
                        Binding::secondary_app_secret(row.tenant_id, row.app_id),
                        mode,
                        force,
                    )
                    .await
                {
                    Ok(t) => {
                        promoted = Some(secondary);
                        Ok(t)
                    }
                    Err(_) => Err(f),
                }
            }
            other => other,
        };
        let latency = started.elapsed();
        self.metrics.observe_upstream(latency);
        let latency_ms = i64::try_from(latency.as_millis()).ok();

        match result {
            Ok(fresh) => {
                let attempt = Attempt {
                    trigger,
                    mode,
                    force,
                    day,
                    latency_ms,
                };
                self.store_fresh(tx, &row, &fresh, promoted, &attempt).await
            }
            Err(failure) => {
                self.store_failed(tx, &row, failure, trigger, latency_ms)
                    .await
            }
        }
    }

    async fn store_fresh(
        &self,
        tx: &mut PgConnection,
        row: &ClaimedRow,
        fresh: &crate::upstream::FreshToken,
        promoted: Option<Vec<u8>>,
        attempt: &Attempt,
    ) -> Result<AttemptOutcome, EngineError> {
        let Attempt {
            trigger,
            mode,
            force,
            day,
            latency_ms,
        } = *attempt;
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_entropy();
        let token = fresh.access_token.expose_secret();
        let fp = fingerprint(token);
        let changed = row.token_fingerprint.as_deref() != Some(&fp[..]);
        let now = Utc::now();
        let expires_at = now + chrono_duration(fresh.expires_in);
        let fetched_at = if changed {
            now
        } else {
            row.fetched_at.unwrap_or(now)
        };
        let next_refresh_at = if changed {
            policy::next_refresh(
                mode,
                now,
                fetched_at,
                expires_at,
                &self.config.timing,
                &mut rng,
            )
        } else {
            policy::next_after_unchanged(now, expires_at)
        };
        let ciphertext = self.crypto.encrypt(
            token.as_bytes(),
            &Binding::access_token(row.tenant_id, row.app_id),
        )?;
        let force_refresh = force.then(|| {
            let count = if row.force_refresh_day == Some(day) {
                row.force_refresh_count + 1
            } else {
                1
            };
            (day, count, now)
        });
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
                force_refresh,
            },
        )
        .await?;
        let mut note = None;
        if let Some(secondary) = promoted {
            let plain = self.crypto.decrypt(
                &secondary,
                &Binding::secondary_app_secret(row.tenant_id, row.app_id),
            )?;
            let primary = self
                .crypto
                .encrypt(&plain, &Binding::app_secret(row.tenant_id, row.app_id))?;
            tokens::promote_secondary(tx, row.app_id, &primary).await?;
            note = Some(
                "the primary secret was rejected; the secondary secret worked and is now the primary",
            );
            tracing::info!(appid = %row.appid, "secondary secret promoted to primary");
        }
        let outcome = if changed {
            AttemptOutcome::Refreshed
        } else {
            AttemptOutcome::Unchanged
        };
        let outcome_name = if changed { "success" } else { "unchanged" };
        tokens::log(
            tx,
            &LogEntry {
                tenant_id: row.tenant_id,
                app_id: row.app_id,
                trigger: trigger.as_str(),
                outcome: outcome_name,
                error_class: None,
                errcode: None,
                errmsg: note,
                latency_ms,
                replica: &self.config.replica_id,
            },
        )
        .await?;
        self.metrics.count_refresh(outcome_name, None);
        Ok(outcome)
    }

    async fn store_failed(
        &self,
        tx: &mut PgConnection,
        row: &ClaimedRow,
        failure: FetchFailure,
        trigger: Trigger,
        latency_ms: Option<i64>,
    ) -> Result<AttemptOutcome, EngineError> {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_entropy();
        let streak = u32::try_from(row.failure_streak)
            .unwrap_or(0)
            .saturating_add(1);
        let mut next = policy::next_retry(
            failure.class,
            failure.errcode,
            streak,
            Utc::now(),
            &self.config.timing,
            &mut rng,
        );
        if failure.class == ErrorClass::Bug {
            tracing::error!(appid = %row.appid, errcode = ?failure.errcode, errmsg = %failure.errmsg, "WeChat says tokenvault sent a malformed token request: this is a bug");
        }
        // A scheduled retry never waits past the expiry of a token we still
        // hold when the failure is transient.
        if failure.class == ErrorClass::Transient
            && let Some(exp) = row.expires_at
            && exp > Utc::now()
            && next > exp
        {
            next = exp;
        }
        tokens::store_failure(
            tx,
            row.app_id,
            failure.class.as_str(),
            failure.errcode,
            &failure.errmsg,
            next,
        )
        .await?;
        tokens::log(
            tx,
            &LogEntry {
                tenant_id: row.tenant_id,
                app_id: row.app_id,
                trigger: trigger.as_str(),
                outcome: "failure",
                error_class: Some(failure.class.as_str()),
                errcode: failure.errcode,
                errmsg: Some(&failure.errmsg),
                latency_ms,
                replica: &self.config.replica_id,
            },
        )
        .await?;
        self.metrics.count_refresh("failure", Some(failure.class));
        tracing::warn!(appid = %row.appid, class = failure.class.as_str(), errcode = ?failure.errcode, errmsg = %failure.errmsg, streak, "token refresh failed");
        Ok(AttemptOutcome::Failed(failure))
    }

    async fn fetch_with(
        &self,
        row: &ClaimedRow,
        secret_ciphertext: &[u8],
        binding: Binding,
        mode: TokenMode,
        force: bool,
    ) -> Result<crate::upstream::FreshToken, FetchFailure> {
        let secret = self
            .crypto
            .decrypt_text(secret_ciphertext, &binding)
            .map_err(|e| FetchFailure {
                class: ErrorClass::Configuration,
                errcode: None,
                errmsg: format!(
                    "the stored appsecret cannot be read ({e}); enter the secret again"
                ),
            })?;
        let appid = AppId::parse("appid", &row.appid).map_err(|e| FetchFailure {
            class: ErrorClass::Bug,
            errcode: None,
            errmsg: format!("stored appid is malformed: {e}"),
        })?;
        self.provider
            .fetch(FetchRequest {
                appid: &appid,
                secret: &secret,
                mode,
                force_refresh: force,
            })
            .await
    }

    /// WeChat allows 20 force refreshes a day, at least 30 s apart.
    fn force_allowed(row: &ClaimedRow, now: DateTime<Utc>, day: NaiveDate) -> bool {
        let today = if row.force_refresh_day == Some(day) {
            row.force_refresh_count
        } else {
            0
        };
        let spaced = row
            .last_force_refresh_at
            .is_none_or(|at| now - at >= chrono::Duration::seconds(30));
        today < 20 && spaced
    }
}

/// What one attempt was, for storing its result.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    trigger: Trigger,
    mode: TokenMode,
    force: bool,
    day: NaiveDate,
    latency_ms: Option<i64>,
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

/// The outcome of the attempt a row last stored.
fn last_outcome(row: &ClaimedRow) -> AttemptOutcome {
    if !row.enabled {
        return AttemptOutcome::Disabled;
    }
    if row.failure_streak == 0 {
        return AttemptOutcome::Refreshed;
    }
    let class = match row.last_error_class.as_deref() {
        Some("quota") => ErrorClass::Quota,
        Some("configuration") => ErrorClass::Configuration,
        Some("bug") => ErrorClass::Bug,
        _ => ErrorClass::Transient,
    };
    AttemptOutcome::Failed(FetchFailure {
        class,
        errcode: row.last_errcode.map(i64::from),
        errmsg: row.last_errmsg.clone().unwrap_or_default(),
    })
}

fn is_secret_rejected(f: &FetchFailure) -> bool {
    matches!(f.errcode, Some(40001 | 40125))
}

fn beijing_day(now: DateTime<Utc>) -> NaiveDate {
    (now + chrono::Duration::hours(8)).date_naive()
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn the_rendered_body_is_the_json_of_the_token() {
        let fetched = Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap();
        let expires = fetched + chrono::Duration::seconds(7200);
        let t = ValidToken::new(
            crate::secret::AccessToken::from("sekr\"et\\/".to_string()),
            fetched,
            expires,
            3,
        );
        let appid = AppId::parse("appid", "wx0123456789abcdef").unwrap();
        let body: serde_json::Value =
            serde_json::from_str(&t.to_json(&appid, fetched + chrono::Duration::seconds(200)))
                .unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "appid": "wx0123456789abcdef",
                "access_token": "sekr\"et\\/",
                "expires_in": 7000,
                "expires_at": expires,
                "fetched_at": fetched,
            })
        );
        assert!(!format!("{t:?}").contains("sekr"), "{t:?}");
    }
}
