//! Queries for the service health page and the operator view: replicas,
//! the refresh backlog, upstream results over a recent window, and app
//! health across tenants. None of them reads a secret or a token column.

use crate::domain::TenantId;
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

/// A replica that heartbeated recently.
#[derive(Debug, Clone, sqlx::FromRow)]
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
    sqlx::query_as(
        "select id, hostname, version, started_at, last_seen_at,
                extract(epoch from now() - last_seen_at)::float8 as seconds_since_seen
           from replicas
          where last_seen_at > now() - make_interval(secs => $1)
          order by last_seen_at desc, id
          limit $2",
    )
    .bind(within_seconds)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Enabled apps whose refresh is due and not done yet.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
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
    sqlx::query_as(
        "select count(*) as due,
                count(*) filter (where s.next_refresh_at <= now() - make_interval(secs => $1)) as overdue,
                coalesce(extract(epoch from now() - min(s.next_refresh_at))::float8, 0) as lag_seconds
           from token_state s join apps a on a.id = s.app_id
          where s.next_refresh_at <= now() and a.enabled",
    )
    .bind(grace_seconds)
    .fetch_one(db)
    .await
}

/// Refresh attempts of every tenant over a recent window.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
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

/// Attempts of the last `minutes`, through the `refresh_log_created` index.
pub async fn upstream_window(
    db: impl PgExecutor<'_>,
    minutes: i32,
) -> Result<UpstreamWindow, sqlx::Error> {
    sqlx::query_as(
        "select count(*) as attempts,
                count(*) filter (where outcome = 'failure') as failures,
                count(*) filter (where error_class = 'transient') as upstream_errors,
                percentile_cont(0.5) within group (order by latency_ms) as p50_ms,
                percentile_cont(0.95) within group (order by latency_ms) as p95_ms
           from refresh_log
          where created_at > now() - make_interval(mins => $1) and outcome <> 'skipped'",
    )
    .bind(minutes)
    .fetch_one(db)
    .await
}

/// Apps of one tenant that share the inputs of their health.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HealthGroup {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Refreshing switched on.
    pub enabled: bool,
    /// A token that has not expired.
    pub token_valid: bool,
    /// 1 when the last attempts failed, else 0.
    pub failing: i32,
    /// Class of the last failure.
    pub last_error_class: Option<String>,
    /// Apps in the group.
    pub apps: i64,
}

/// Every tenant's apps, grouped by what their health is derived from.
pub async fn health_groups(db: impl PgExecutor<'_>) -> Result<Vec<HealthGroup>, sqlx::Error> {
    sqlx::query_as(
        "select a.tenant_id, a.enabled, coalesce(s.expires_at > now(), false) as token_valid,
                least(s.failure_streak, 1) as failing, s.last_error_class, count(*) as apps
           from apps a join token_state s on s.app_id = a.id
          group by 1, 2, 3, 4, 5",
    )
    .fetch_all(db)
    .await
}

/// An enabled app whose refreshes fail, with its tenant (never a secret or token).
#[derive(Debug, Clone, sqlx::FromRow)]
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
    pub last_error_class: Option<String>,
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
    sqlx::query_as(
        "select a.tenant_id, t.name as tenant_name, a.appid, a.name,
                coalesce(s.expires_at > now(), false) as token_valid, s.failure_streak,
                s.last_error_class, s.last_errcode, s.last_attempt_at
           from token_state s
           join apps a on a.id = s.app_id
           join tenants t on t.id = a.tenant_id
          where s.failure_streak > 0 and a.enabled
          order by s.last_attempt_at desc nulls last, a.appid
          limit $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await
}
