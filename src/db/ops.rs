//! Queries about the service itself: the replicas' heartbeats, the database
//! ping, the refresh backlog, upstream results over a recent window, app
//! health across tenants (service health, `/metrics`, the operator view).
//! None of them reads a secret or a token column. Every statement is
//! checked at compile time against the schema (`sqlx::query!`, offline data
//! in `.sqlx/`).

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use crate::domain::{ErrorClass, TenantId};

/// Record that replica `id` is alive: its row is created on the first beat
/// (`started_at`), and `last_seen_at` moves on every later one.
pub async fn heartbeat(
    db: impl PgExecutor<'_>,
    id: &str,
    hostname: &str,
    version: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into replicas (id, hostname, version) values ($1, $2, $3)
         on conflict (id) do update set last_seen_at = now()",
        id,
        hostname,
        version,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Whether the database answers a trivial statement.
pub async fn ping(db: impl PgExecutor<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!("select 1 as one").fetch_one(db).await?;
    Ok(())
}

/// A replica that heartbeated recently.
#[derive(Debug, Clone)]
pub struct ReplicaRow {
    /// Replica id (also in the refresh log).
    pub id: String,
    /// Host it runs on.
    pub hostname: String,
    /// tokenvault version.
    pub version: String,
    /// First heartbeat.
    pub started_at: DateTime<Utc>,
    /// Last heartbeat.
    pub last_seen_at: DateTime<Utc>,
    /// Seconds since the last heartbeat, by the database's clock.
    pub seconds_since_seen: f64,
}

/// Replicas seen within `within_seconds`, most recently seen first.
pub async fn replicas_seen(
    db: impl PgExecutor<'_>,
    within_seconds: f64,
    limit: i64,
) -> Result<Vec<ReplicaRow>, sqlx::Error> {
    sqlx::query_as!(
        ReplicaRow,
        r#"select id, hostname, version, started_at, last_seen_at,
                extract(epoch from now() - last_seen_at)::float8 as "seconds_since_seen!"
           from replicas
          where last_seen_at > now() - make_interval(secs => $1)
          order by last_seen_at desc, id
          limit $2"#,
        within_seconds,
        limit,
    )
    .fetch_all(db)
    .await
}

/// Enabled apps whose refresh is due and not done yet.
#[derive(Debug, Clone, Copy)]
pub struct Backlog {
    /// Due now (a refresh may be under way).
    pub due: i64,
    /// Due for longer than the grace the caller gave.
    pub overdue: i64,
    /// How long the most overdue one has been due, in seconds (0 when none).
    pub lag_seconds: f64,
}

/// The refresh backlog; an app counts as overdue once it has been due for
/// `grace_seconds`. Reads only due rows through `token_state_due`.
pub async fn backlog(db: impl PgExecutor<'_>, grace_seconds: f64) -> Result<Backlog, sqlx::Error> {
    sqlx::query_as!(
        Backlog,
        r#"select count(*) as "due!",
                count(*) filter (where s.next_refresh_at <= now() - make_interval(secs => $1)) as "overdue!",
                coalesce(extract(epoch from now() - min(s.next_refresh_at))::float8, 0) as "lag_seconds!"
           from token_state s join apps a on a.id = s.app_id
          where s.next_refresh_at <= now() and a.enabled"#,
        grace_seconds,
    )
    .fetch_one(db)
    .await
}

/// Refresh attempts of every tenant over a recent window.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamWindow {
    /// Attempts that reached the point of asking WeChat (skips excluded).
    pub attempts: i64,
    /// Failed attempts, any class.
    pub failures: i64,
    /// Failures of WeChat or the network (class `transient`).
    pub upstream_errors: i64,
    /// Median latency in milliseconds.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency in milliseconds.
    pub p95_ms: Option<f64>,
}

/// Attempts of the last `minutes`, through the `refresh_log_created_outcome` index.
pub async fn upstream_window(
    db: impl PgExecutor<'_>,
    minutes: i32,
) -> Result<UpstreamWindow, sqlx::Error> {
    sqlx::query_as!(
        UpstreamWindow,
        r#"select count(*) as "attempts!",
                count(*) filter (where outcome = 'failure') as "failures!",
                count(*) filter (where error_class = 'transient') as "upstream_errors!",
                percentile_cont(0.5) within group (order by latency_ms) as p50_ms,
                percentile_cont(0.95) within group (order by latency_ms) as p95_ms
           from refresh_log
          where created_at > now() - make_interval(mins => $1) and outcome <> 'skipped'"#,
        minutes,
    )
    .fetch_one(db)
    .await
}

/// Apps that share the inputs of their health (of one tenant, or of all).
#[derive(Debug, Clone)]
pub struct HealthGroup {
    /// Tenant (`None` in the totals over every tenant).
    pub tenant_id: Option<TenantId>,
    /// Refreshing switched on.
    pub enabled: bool,
    /// A token that has not expired.
    pub token_valid: bool,
    /// 1 when the last attempts failed, else 0.
    pub failing: i32,
    /// Class of the last failure.
    pub last_error_class: Option<ErrorClass>,
    /// Apps in the group.
    pub apps: i64,
}

/// Every tenant's apps, grouped by what their health is derived from.
pub async fn health_groups(db: impl PgExecutor<'_>) -> Result<Vec<HealthGroup>, sqlx::Error> {
    sqlx::query_as!(
        HealthGroup,
        r#"select a.tenant_id as "tenant_id?: TenantId", a.enabled,
                coalesce(s.expires_at > now(), false) as "token_valid!",
                least(s.failure_streak, 1) as "failing!",
                s.last_error_class as "last_error_class: ErrorClass", count(*) as "apps!"
           from apps a join token_state s on s.app_id = a.id
          group by 1, 2, 3, 4, 5"#,
    )
    .fetch_all(db)
    .await
}

/// Every app of the service, grouped by what its health is derived from
/// (like [`health_groups`], without the tenants).
pub async fn health_totals(db: impl PgExecutor<'_>) -> Result<Vec<HealthGroup>, sqlx::Error> {
    sqlx::query_as!(
        HealthGroup,
        r#"select null::uuid as "tenant_id?: TenantId", a.enabled,
                coalesce(s.expires_at > now(), false) as "token_valid!",
                least(s.failure_streak, 1) as "failing!",
                s.last_error_class as "last_error_class: ErrorClass", count(*) as "apps!"
           from apps a join token_state s on s.app_id = a.id
          group by 2, 3, 4, 5"#,
    )
    .fetch_all(db)
    .await
}

/// Tokens of enabled apps that expire within `seconds`.
pub async fn expiring_within(db: impl PgExecutor<'_>, seconds: f64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select count(*) as "n!" from token_state s join apps a on a.id = s.app_id
          where a.enabled and s.expires_at between now() and now() + make_interval(secs => $1)"#,
        seconds,
    )
    .fetch_one(db)
    .await
}

/// An enabled app whose refreshes fail, with its tenant (never a secret or token).
#[derive(Debug, Clone)]
pub struct FailingApp {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Organisation name.
    pub tenant_name: String,
    /// WeChat AppID.
    pub appid: String,
    /// App name.
    pub name: String,
    /// A token that has not expired.
    pub token_valid: bool,
    /// Failures in a row.
    pub failure_streak: i32,
    /// Class of the last failure.
    pub last_error_class: Option<ErrorClass>,
    /// WeChat errcode of the last failure.
    pub last_errcode: Option<i32>,
    /// Last attempt.
    pub last_attempt_at: Option<DateTime<Utc>>,
}

/// Enabled apps with failing refreshes across tenants, most recent first.
pub async fn failing_apps(
    db: impl PgExecutor<'_>,
    limit: i64,
) -> Result<Vec<FailingApp>, sqlx::Error> {
    sqlx::query_as!(
        FailingApp,
        r#"select a.tenant_id as "tenant_id: TenantId", t.name as tenant_name, a.appid, a.name,
                coalesce(s.expires_at > now(), false) as "token_valid!", s.failure_streak,
                s.last_error_class as "last_error_class: ErrorClass", s.last_errcode, s.last_attempt_at
           from token_state s
           join apps a on a.id = s.app_id
           join tenants t on t.id = a.tenant_id
          where s.failure_streak > 0 and a.enabled
          order by s.last_attempt_at desc nulls last, a.appid
          limit $1"#,
        limit,
    )
    .fetch_all(db)
    .await
}
