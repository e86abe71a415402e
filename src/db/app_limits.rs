//! How many apps an organisation may register: the service's default
//! (`TOKENVAULT_MAX_APPS_PER_TENANT`) or an operator's limit for it
//! (`tenants.app_limit`).

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::TenantId;

/// Largest limit an operator may set.
pub const MAX_APP_LIMIT: i32 = 1_000_000;

/// The tenant is at its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitReached {
    /// The limit in force.
    pub limit: i64,
}

/// Inside the transaction that registers an app for `tenant_id`: lock the
/// tenant's row (two registrations of one tenant take turns here, so both
/// cannot pass at the limit) and check there is room for one more app.
pub async fn claim_app_slot(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    default_limit: u32,
) -> Result<Result<(), LimitReached>, sqlx::Error> {
    let own = sqlx::query_scalar!(
        "select app_limit from tenants where id = $1 for no key update",
        tenant_id as _,
    )
    .fetch_optional(&mut *conn)
    .await?
    .flatten();
    let limit = own.map_or(i64::from(default_limit), i64::from);
    let registered = sqlx::query_scalar!(
        r#"select count(*) as "n!" from apps where tenant_id = $1"#,
        tenant_id as _,
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(if registered < limit {
        Ok(())
    } else {
        Err(LimitReached { limit })
    })
}

/// The limit in force for `tenant_id`.
pub async fn effective(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
    default_limit: u32,
) -> Result<i64, sqlx::Error> {
    let own = sqlx::query_scalar!(
        "select app_limit from tenants where id = $1",
        tenant_id as _,
    )
    .fetch_optional(db)
    .await?
    .flatten();
    Ok(own.map_or(i64::from(default_limit), i64::from))
}

/// A tenant as an operator names it.
#[derive(Debug, Clone)]
pub struct TenantRef {
    /// Tenant id.
    pub id: TenantId,
    /// Organisation name.
    pub name: String,
    /// Its own app limit, if an operator set one.
    pub app_limit: Option<i32>,
}

/// Tenants whose id is `id_or_name`, or whose name is exactly it.
pub async fn find_tenants(
    db: impl PgExecutor<'_>,
    id_or_name: &str,
) -> Result<Vec<TenantRef>, sqlx::Error> {
    let id = id_or_name.trim().parse::<Uuid>().ok();
    sqlx::query_as!(
        TenantRef,
        r#"select id as "id: TenantId", name, app_limit from tenants
            where id = $1 or name = $2 order by created_at, id limit 10"#,
        id,
        id_or_name,
    )
    .fetch_all(db)
    .await
}

/// Set (or with `None`, clear) the tenant's own limit; returns the tenant
/// as it was before, `None` if there is no such tenant. Locks the row.
pub async fn set_override(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    limit: Option<i32>,
) -> Result<Option<TenantRef>, sqlx::Error> {
    let before = sqlx::query_as!(
        TenantRef,
        r#"select id as "id: TenantId", name, app_limit from tenants
            where id = $1 for no key update"#,
        tenant_id as _,
    )
    .fetch_optional(&mut *conn)
    .await?;
    if before.is_some() {
        sqlx::query!(
            "update tenants set app_limit = $2 where id = $1",
            tenant_id as _,
            limit,
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(before)
}
