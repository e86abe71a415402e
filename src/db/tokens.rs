//! Token state: the row per app that the refresh engine locks, and the
//! refresh log.
//!
//! Claiming (`FOR UPDATE SKIP LOCKED`) and waiting (`FOR UPDATE` under a
//! `lock_timeout`) both lock the `token_state` row inside a transaction that
//! stays open until the new token is stored or the failure is logged: the lock
//! is the claim. A replica that dies mid-request loses its connection, and
//! PostgreSQL releases the lock with it.
//!
//! Every query is checked at compile time (`sqlx::query!` and friends, with
//! the offline data in `.sqlx/`); typed values are bound with `value as
//! Type`, sqlx's type ascription.

use crate::domain::{
    AppUuid, Credential, ErrorClass, RefreshOutcome, TenantId, TokenMode, Trigger,
};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

/// A locked token row with what a refresh needs.
#[derive(Debug, Clone)]
pub struct ClaimedRow {
    /// App id.
    pub app_id: AppUuid,
    /// Tenant.
    pub tenant_id: TenantId,
    /// WeChat AppID.
    pub appid: String,
    /// Which WeChat endpoint keeps the token.
    pub token_mode: TokenMode,
    /// Refreshing switched on?
    pub enabled: bool,
    /// Encrypted primary secret.
    pub secret_ciphertext: Vec<u8>,
    /// Encrypted secondary secret.
    pub secondary_secret_ciphertext: Option<Vec<u8>>,
    /// Encrypted current token.
    pub access_token_ciphertext: Option<Vec<u8>>,
    /// SHA-256 of the current token.
    pub token_fingerprint: Option<Vec<u8>>,
    /// When the current token was fetched.
    pub fetched_at: Option<DateTime<Utc>>,
    /// When it expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the next refresh is due.
    pub next_refresh_at: DateTime<Utc>,
    /// Failures in a row.
    pub failure_streak: i32,
    /// When a person's "refresh now" last went past a pending retry time.
    pub last_bypass_at: Option<DateTime<Utc>>,
    /// Token version (bumped on every stored token).
    pub version: i64,
    /// When the last attempt was stored.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// Class of the last failure.
    pub last_error_class: Option<ErrorClass>,
    /// Errcode of the last failure.
    pub last_errcode: Option<i32>,
    /// Message of the last failure.
    pub last_errmsg: Option<String>,
}

// `claim_due` and `lock_for_refresh` select the same columns: `query_as!`
// takes one string literal, so the list is written out in both.

/// Claim one due row that no other replica holds. The WHERE clause is
/// re-checked by PostgreSQL after the lock is taken, so a row another replica
/// just refreshed is not returned (the double-check: no call for a token
/// that is no longer due).
pub async fn claim_due(conn: &mut PgConnection) -> Result<Option<ClaimedRow>, sqlx::Error> {
    sqlx::query_as!(
        ClaimedRow,
        r#"select s.app_id as "app_id: AppUuid", s.tenant_id as "tenant_id: TenantId", a.appid,
                  a.token_mode as "token_mode: TokenMode", a.enabled, a.secret_ciphertext,
                  a.secondary_secret_ciphertext, s.access_token_ciphertext, s.token_fingerprint,
                  s.fetched_at, s.expires_at, s.next_refresh_at, s.failure_streak, s.last_bypass_at,
                  s.version, s.last_attempt_at, s.last_error_class as "last_error_class: ErrorClass",
                  s.last_errcode, s.last_errmsg
             from token_state s join apps a on a.id = s.app_id
            where s.next_refresh_at <= now() and a.enabled
            order by s.next_refresh_at
            limit 1
              for update of s skip locked"#
    )
    .fetch_optional(conn)
    .await
}

/// Lock the token state of `app_id` (waiting for a refresh in progress).
/// An edit or delete of the app takes this lock before the app's row, in
/// the same order as the refresher (token state, then app), so the two
/// never deadlock.
pub async fn lock_state(conn: &mut PgConnection, app_id: AppUuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "select 1 as locked from token_state where app_id = $1 for update",
        app_id as AppUuid,
    )
    .fetch_optional(conn)
    .await?;
    Ok(())
}

/// Wait (at most `lock_timeout_ms`) for the row of `app_id` and lock it.
pub async fn lock_for_refresh(
    conn: &mut PgConnection,
    app_id: AppUuid,
    lock_timeout_ms: u32,
) -> Result<Option<ClaimedRow>, sqlx::Error> {
    // `set_config(…, true)` is `set local` with the value as a parameter.
    sqlx::query!(
        "select set_config('lock_timeout', $1, true)",
        format!("{lock_timeout_ms}ms"),
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query_as!(
        ClaimedRow,
        r#"select s.app_id as "app_id: AppUuid", s.tenant_id as "tenant_id: TenantId", a.appid,
                  a.token_mode as "token_mode: TokenMode", a.enabled, a.secret_ciphertext,
                  a.secondary_secret_ciphertext, s.access_token_ciphertext, s.token_fingerprint,
                  s.fetched_at, s.expires_at, s.next_refresh_at, s.failure_streak, s.last_bypass_at,
                  s.version, s.last_attempt_at, s.last_error_class as "last_error_class: ErrorClass",
                  s.last_errcode, s.last_errmsg
             from token_state s join apps a on a.id = s.app_id
            where s.app_id = $1
              for update of s"#,
        app_id as AppUuid,
    )
    .fetch_optional(conn)
    .await
}

/// Whether `e` is a lock wait that ran out (`lock_not_available`).
pub fn is_lock_timeout(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("55P03"))
}

/// A token to store.
#[derive(Debug)]
pub struct StoredToken<'a> {
    /// Encrypted token.
    pub ciphertext: &'a [u8],
    /// SHA-256 of the token.
    pub fingerprint: &'a [u8],
    /// Fetch time.
    pub fetched_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// Next refresh.
    pub next_refresh_at: DateTime<Utc>,
    /// Whether it differs from the token held before (bumps the version).
    pub changed: bool,
}

/// Store a successful refresh and clear the failure streak.
pub async fn store_success(
    conn: &mut PgConnection,
    app_id: AppUuid,
    t: &StoredToken<'_>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        "update token_state set
            access_token_ciphertext = $2, token_fingerprint = $3, fetched_at = $4, expires_at = $5,
            next_refresh_at = $6, failure_streak = 0, last_attempt_at = clock_timestamp(), last_success_at = clock_timestamp(),
            last_error_class = null, last_errcode = null, last_errmsg = null,
            version = version + case when $7 then 1 else 0 end,
            last_outcome = case when $7 then 'success' else 'unchanged' end
          where app_id = $1
          returning version",
        app_id as AppUuid,
        t.ciphertext,
        t.fingerprint,
        t.fetched_at,
        t.expires_at,
        t.next_refresh_at,
        t.changed,
    )
    .fetch_one(conn)
    .await
}

/// A failed refresh to store.
#[derive(Debug)]
pub struct StoredFailure<'a> {
    /// Failure class.
    pub class: ErrorClass,
    /// WeChat's errcode.
    pub errcode: Option<i64>,
    /// Message.
    pub errmsg: &'a str,
    /// The retry time.
    pub next_refresh_at: DateTime<Utc>,
    /// Trust the stored token only until then (it may have been replaced
    /// at WeChat by a call whose answer was lost); `None` keeps its expiry.
    pub trusted_until: Option<DateTime<Utc>>,
}

/// Record a failed refresh; the stored token (if any) is kept, its
/// expiry shortened to `trusted_until` when that is earlier.
pub async fn store_failure(
    conn: &mut PgConnection,
    app_id: AppUuid,
    f: &StoredFailure<'_>,
) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar!(
        "update token_state set
            failure_streak = failure_streak + 1, last_attempt_at = clock_timestamp(), last_error_class = $2,
            last_errcode = $3, last_errmsg = $4, next_refresh_at = $5, last_outcome = 'failure',
            expires_at = case when $6::timestamptz is not null and expires_at > $6 then $6 else expires_at end
          where app_id = $1
          returning failure_streak",
        app_id as AppUuid,
        f.class as ErrorClass,
        f.errcode.and_then(|c| i32::try_from(c).ok()),
        f.errmsg,
        f.next_refresh_at,
        f.trusted_until,
    )
    .fetch_one(conn)
    .await
}

/// Remember that a person's "refresh now" went past a retry time at `at`.
pub async fn record_bypass(
    conn: &mut PgConnection,
    app_id: AppUuid,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update token_state set last_bypass_at = $2 where app_id = $1",
        app_id as AppUuid,
        at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Refreshes made for invalidation reports of `app_id` in the last hour.
pub async fn invalidations_last_hour(
    conn: &mut PgConnection,
    app_id: AppUuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select count(*) as "n!" from refresh_log
            where app_id = $1 and trigger = 'invalidate' and outcome <> 'skipped'
              and created_at > now() - interval '1 hour'"#,
        app_id as AppUuid,
    )
    .fetch_one(conn)
    .await
}

/// Move the next refresh without an attempt.
pub async fn reschedule(
    conn: &mut PgConnection,
    app_id: AppUuid,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update token_state set next_refresh_at = $2 where app_id = $1",
        app_id as AppUuid,
        at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Promote the secondary secret to primary (it worked where the primary failed).
pub async fn promote_secondary(
    conn: &mut PgConnection,
    app_id: AppUuid,
    new_primary: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update apps set secret_ciphertext = $2, secondary_secret_ciphertext = null where id = $1",
        app_id as AppUuid,
        new_primary,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The current token of an app, as readers need it.
#[derive(Debug, Clone)]
pub struct CurrentToken {
    /// The app's id (its kind explains its failure).
    pub appid: String,
    /// Encrypted token.
    pub access_token_ciphertext: Option<Vec<u8>>,
    /// Fetch time.
    pub fetched_at: Option<DateTime<Utc>>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Version.
    pub version: i64,
    /// Failures in a row.
    pub failure_streak: i32,
    /// Last errcode.
    pub last_errcode: Option<i32>,
    /// Last error class.
    pub last_error_class: Option<ErrorClass>,
    /// Last error message.
    pub last_errmsg: Option<String>,
    /// Next planned refresh.
    pub next_refresh_at: DateTime<Utc>,
}

/// Read the current token of `app_id` (no lock).
pub async fn current(
    db: impl PgExecutor<'_>,
    app_id: AppUuid,
) -> Result<Option<CurrentToken>, sqlx::Error> {
    sqlx::query_as!(
        CurrentToken,
        r#"select a.appid, t.access_token_ciphertext, t.fetched_at, t.expires_at, t.version,
                  t.failure_streak, t.last_errcode,
                  t.last_error_class as "last_error_class: ErrorClass", t.last_errmsg,
                  t.next_refresh_at
             from token_state t join apps a on a.id = t.app_id where t.app_id = $1"#,
        app_id as AppUuid,
    )
    .fetch_optional(db)
    .await
}

/// The fingerprint (SHA-256) of the current token of `app_id`, if any.
pub async fn fingerprint(
    db: impl PgExecutor<'_>,
    app_id: AppUuid,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    Ok(sqlx::query_scalar!(
        "select token_fingerprint from token_state where app_id = $1",
        app_id as AppUuid,
    )
    .fetch_optional(db)
    .await?
    .flatten())
}

/// The earliest due time of any enabled app.
pub async fn next_due(db: impl PgExecutor<'_>) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar!("select min(next_refresh_at) from token_state")
        .fetch_one(db)
        .await
}

/// One refresh attempt for the log.
#[derive(Debug)]
pub struct LogEntry<'a> {
    /// Which credential was fetched.
    pub credential: Credential,
    /// Tenant.
    pub tenant_id: TenantId,
    /// App.
    pub app_id: AppUuid,
    /// What started it.
    pub trigger: Trigger,
    /// How it ended.
    pub outcome: RefreshOutcome,
    /// Failure class (failures only).
    pub error_class: Option<ErrorClass>,
    /// WeChat errcode.
    pub errcode: Option<i64>,
    /// Message.
    pub errmsg: Option<&'a str>,
    /// Upstream latency.
    pub latency_ms: Option<i64>,
    /// Replica id.
    pub replica: &'a str,
    /// Until when the app's stored token is valid after this attempt.
    pub valid_until: Option<DateTime<Utc>>,
}

/// Append to the refresh log.
pub async fn log(db: impl PgExecutor<'_>, e: &LogEntry<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into refresh_log (tenant_id, app_id, trigger, outcome, error_class, errcode, errmsg, latency_ms, replica, credential, valid_until)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        e.tenant_id as TenantId,
        e.app_id as AppUuid,
        e.trigger as Trigger,
        e.outcome as RefreshOutcome,
        e.error_class as Option<ErrorClass>,
        e.errcode.and_then(|c| i32::try_from(c).ok()),
        e.errmsg,
        e.latency_ms.and_then(|l| i32::try_from(l).ok()),
        e.replica,
        e.credential as Credential,
        e.valid_until,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A refresh log entry as listed.
#[derive(Debug, Clone)]
pub struct LogRow {
    /// Entry id (for paging).
    pub id: i64,
    /// The app's AppID.
    pub appid: String,
    /// Which credential was fetched.
    pub credential: Credential,
    /// What started it.
    pub trigger: Trigger,
    /// How it ended.
    pub outcome: RefreshOutcome,
    /// Failure class.
    pub error_class: Option<ErrorClass>,
    /// WeChat errcode.
    pub errcode: Option<i32>,
    /// Message.
    pub errmsg: Option<String>,
    /// Upstream latency.
    pub latency_ms: Option<i32>,
    /// Replica.
    pub replica: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A page of a tenant's refresh log, newest first, optionally one app and
/// only failures, before entry `before`.
pub async fn list_log(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
    app_id: Option<AppUuid>,
    failures_only: bool,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<LogRow>, sqlx::Error> {
    sqlx::query_as!(
        LogRow,
        r#"select l.id, a.appid, l.credential as "credential: Credential", l.trigger as "trigger: Trigger", l.outcome as "outcome: RefreshOutcome",
                  l.error_class as "error_class: ErrorClass", l.errcode, l.errmsg, l.latency_ms,
                  l.replica, l.created_at
             from refresh_log l join apps a on a.id = l.app_id
            where l.tenant_id = $1 and ($2::uuid is null or l.app_id = $2)
              and (not $3 or l.outcome = 'failure') and ($4::bigint is null or l.id < $4)
            order by l.id desc limit $5"#,
        tenant_id as TenantId,
        app_id as Option<AppUuid>,
        failures_only,
        before,
        limit,
    )
    .fetch_all(db)
    .await
}

/// Delete log entries older than `cutoff`, at most `batch` at a time; returns how many.
pub async fn prune_log(
    db: impl PgExecutor<'_>,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "delete from refresh_log where id in
           (select id from refresh_log where created_at < $1 order by id limit $2)",
        cutoff,
        batch,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
