//! What happened, for the charts: the refresh log read as aggregates over
//! a window (grouped by time bucket and outcome in the database, through
//! the `(app_id, created_at)`, `(tenant_id, created_at)` and `created_at`
//! indexes), every answer bounded by its window and a row limit.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use crate::domain::{AppUuid, RefreshOutcome, TenantId, Trigger};

/// Attempts of one outcome in one time bucket.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// Where the bucket starts.
    pub start: DateTime<Utc>,
    /// How they ended.
    pub outcome: RefreshOutcome,
    /// How many.
    pub attempts: i64,
    /// What started the newest of them.
    pub trigger: Trigger,
    /// WeChat's errcode of the newest of them that had one.
    pub errcode: Option<i32>,
}

/// An app's token attempts (tickets have their own credential) since
/// `since`, grouped in buckets of `stride_seconds`
/// (aligned on `since`) and by outcome, oldest first, at most `limit` rows.
pub async fn app_buckets(
    db: impl PgExecutor<'_>,
    app_id: AppUuid,
    since: DateTime<Utc>,
    stride_seconds: f64,
    limit: i64,
) -> Result<Vec<Bucket>, sqlx::Error> {
    sqlx::query_as!(
        Bucket,
        r#"select date_bin(make_interval(secs => $3), created_at, $2) as "start!",
                  outcome as "outcome!: RefreshOutcome",
                  count(*) as "attempts!",
                  (array_agg(trigger order by created_at desc))[1] as "trigger!: Trigger",
                  (array_agg(errcode order by created_at desc) filter (where errcode is not null))[1] as errcode
             from refresh_log
            where app_id = $1 and created_at >= $2 and credential = 'access_token'
            group by 1, 2
            order by 1, 2
            limit $4"#,
        app_id as AppUuid,
        since,
        stride_seconds,
        limit,
    )
    .fetch_all(db)
    .await
}

/// A change of the app's token validity: from `at` on, the stored token
/// is valid until `valid_until` (none: no token, or not known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validity {
    /// The attempt that set it.
    pub at: DateTime<Utc>,
    /// Until when the token it left is valid.
    pub valid_until: Option<DateTime<Utc>>,
}

/// The changes of an app's token validity since `since`, newest first (at
/// most `limit`), and the last one before `since` (where the window starts).
pub async fn app_validity(
    db: impl PgExecutor<'_> + Copy,
    app_id: AppUuid,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<(Vec<Validity>, Option<Validity>), sqlx::Error> {
    let changes = sqlx::query_as!(
        Validity,
        r#"select created_at as "at!", valid_until
             from (select created_at, valid_until,
                          lag(valid_until) over (order by created_at) as before,
                          row_number() over (order by created_at) as n
                     from refresh_log
                    where app_id = $1 and created_at >= $2
                      and credential = 'access_token') changes
            where n = 1 or valid_until is distinct from before
            order by created_at desc
            limit $3"#,
        app_id as AppUuid,
        since,
        limit,
    )
    .fetch_all(db)
    .await?;
    let before = sqlx::query_as!(
        Validity,
        r#"select created_at as at, valid_until
             from refresh_log
            where app_id = $1 and created_at < $2 and credential = 'access_token'
            order by created_at desc
            limit 1"#,
        app_id as AppUuid,
        since,
    )
    .fetch_optional(db)
    .await?;
    Ok((changes, before))
}

/// Attempts that called WeChat (every outcome but `skipped`) per hour
/// since `since`, oldest first (at most 48 rows).
pub async fn app_calls_per_hour(
    db: impl PgExecutor<'_>,
    app_id: AppUuid,
    since: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, i64)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select date_bin(interval '1 hour', created_at, $2) as "hour!", count(*) as "calls!"
             from refresh_log
            where app_id = $1 and created_at >= $2 and outcome <> 'skipped'
            group by 1
            order by 1
            limit 48"#,
        app_id as AppUuid,
        since,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.hour, r.calls)).collect())
}

/// Attempts of one app, one hour and one outcome.
#[derive(Debug, Clone)]
pub struct AppHour {
    /// The app.
    pub app_id: AppUuid,
    /// Where the hour starts (aligned on the window's start).
    pub hour: DateTime<Utc>,
    /// How they ended.
    pub outcome: RefreshOutcome,
    /// How many.
    pub attempts: i64,
}

/// An organisation's token attempts since `since` per app, hour and outcome
/// (at most `limit` rows, oldest first).
pub async fn tenant_hours(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<AppHour>, sqlx::Error> {
    sqlx::query_as!(
        AppHour,
        r#"select app_id as "app_id!: AppUuid",
                  date_bin(interval '1 hour', created_at, $2) as "hour!",
                  outcome as "outcome!: RefreshOutcome",
                  count(*) as "attempts!"
             from refresh_log
            where tenant_id = $1 and created_at >= $2 and credential = 'access_token'
            group by 1, 2, 3
            order by 2, 1, 3
            limit $3"#,
        tenant_id as TenantId,
        since,
        limit,
    )
    .fetch_all(db)
    .await
}

/// The whole service's attempts of one outcome in one time bucket.
#[derive(Debug, Clone)]
pub struct ServiceBucket {
    /// Where the bucket starts.
    pub start: DateTime<Utc>,
    /// How they ended.
    pub outcome: RefreshOutcome,
    /// How many.
    pub attempts: i64,
}

/// Every attempt since `since` grouped in buckets of `stride_seconds` and
/// by outcome, oldest first (at most `limit` rows).
pub async fn service_buckets(
    db: impl PgExecutor<'_>,
    since: DateTime<Utc>,
    stride_seconds: f64,
    limit: i64,
) -> Result<Vec<ServiceBucket>, sqlx::Error> {
    sqlx::query_as!(
        ServiceBucket,
        r#"select date_bin(make_interval(secs => $2), created_at, $1) as "start!",
                  outcome as "outcome!: RefreshOutcome",
                  count(*) as "attempts!"
             from refresh_log
            where created_at >= $1
            group by 1, 2
            order by 1, 2
            limit $3"#,
        since,
        stride_seconds,
        limit,
    )
    .fetch_all(db)
    .await
}

/// WeChat's latency percentiles over one hour.
#[derive(Debug, Clone)]
pub struct LatencyHour {
    /// Where the hour starts (aligned on the window's start).
    pub hour: DateTime<Utc>,
    /// Attempts that called WeChat.
    pub calls: i64,
    /// Median, 90th and 99th percentile in milliseconds.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// WeChat's latency percentiles per hour since `since`, oldest first (at
/// most 48 rows).
pub async fn service_latency(
    db: impl PgExecutor<'_>,
    since: DateTime<Utc>,
) -> Result<Vec<LatencyHour>, sqlx::Error> {
    sqlx::query_as!(
        LatencyHour,
        r#"select date_bin(interval '1 hour', created_at, $1) as "hour!",
                  count(*) as "calls!",
                  percentile_cont(0.5) within group (order by latency_ms) as "p50!",
                  percentile_cont(0.9) within group (order by latency_ms) as "p90!",
                  percentile_cont(0.99) within group (order by latency_ms) as "p99!"
             from refresh_log
            where created_at >= $1 and latency_ms is not null
            group by 1
            order by 1
            limit 48"#,
        since,
    )
    .fetch_all(db)
    .await
}
