//! The upstream budget: calls and force refreshes per app (tenant and
//! AppID) per quota day. The refresh engine reads and counts it with the
//! app's token row locked, in the same transaction as the attempt.
//!
//! Every query is checked at compile time (`sqlx::query!` and friends, with
//! the offline data in `.sqlx/`).

use crate::domain::TenantId;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgExecutor};

/// A budget row as stored.
#[derive(Debug, Clone, Copy)]
pub struct BudgetRow {
    /// The quota day the counts belong to.
    pub day: NaiveDate,
    /// Calls that day.
    pub calls: i32,
    /// Force refreshes that day.
    pub forced: i32,
    /// The last force refresh.
    pub last_forced_at: Option<DateTime<Utc>>,
}

/// Lock the budget row of an app (creating it for `today`), for the rest
/// of the transaction.
pub async fn lock(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    appid: &str,
    today: NaiveDate,
) -> Result<BudgetRow, sqlx::Error> {
    sqlx::query!(
        "insert into upstream_budget (tenant_id, appid, day) values ($1, $2, $3)
         on conflict (tenant_id, appid) do nothing",
        tenant_id as TenantId,
        appid,
        today,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query_as!(
        BudgetRow,
        "select day, calls, forced, last_forced_at from upstream_budget
          where tenant_id = $1 and appid = $2 for update",
        tenant_id as TenantId,
        appid,
    )
    .fetch_one(conn)
    .await
}

/// Store the spending of day `day` after a call (the row is locked).
pub async fn store(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    appid: &str,
    day: NaiveDate,
    row: &BudgetRow,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update upstream_budget set day = $3, calls = $4, forced = $5, last_forced_at = $6
          where tenant_id = $1 and appid = $2",
        tenant_id as TenantId,
        appid,
        day,
        row.calls,
        row.forced,
        row.last_forced_at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Apps (of every tenant) that spent at least `calls` on `day` or later.
pub async fn count_at_least(
    db: impl PgExecutor<'_>,
    day: NaiveDate,
    calls: i32,
) -> Result<i64, sqlx::Error> {
    let n = sqlx::query_scalar!(
        r#"select count(*) as "n!" from upstream_budget where day >= $1 and calls >= $2"#,
        day,
        calls
    )
    .fetch_one(db)
    .await?;
    Ok(n)
}

/// Delete the rows of days before `day` (they count nothing any more).
pub async fn prune(db: impl PgExecutor<'_>, day: NaiveDate) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query!("delete from upstream_budget where day < $1", day)
            .execute(db)
            .await?
            .rows_affected(),
    )
}

/// Lock the hourly budget row `scope` for the rest of the transaction
/// (creating it) and answer the calls counted in the clock hour `hour`
/// (none when the row's hour has passed).
pub async fn lock_hourly(
    conn: &mut PgConnection,
    scope: &str,
    hour: DateTime<Utc>,
) -> Result<i32, sqlx::Error> {
    sqlx::query!(
        "insert into hourly_budget (scope, hour) values ($1, $2) on conflict (scope) do nothing",
        scope,
        hour,
    )
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query!(
        "select hour, calls from hourly_budget where scope = $1 for update",
        scope,
    )
    .fetch_one(conn)
    .await?;
    Ok(if row.hour == hour { row.calls } else { 0 })
}

/// Store `calls` for the clock hour `hour` in the locked row `scope`.
pub async fn store_hourly(
    conn: &mut PgConnection,
    scope: &str,
    hour: DateTime<Utc>,
    calls: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update hourly_budget set hour = $2, calls = $3 where scope = $1",
        scope,
        hour,
        calls,
    )
    .execute(conn)
    .await?;
    Ok(())
}
