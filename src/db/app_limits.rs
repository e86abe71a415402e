//! How many apps an organisation may register: the service's default
//! (`TOKENVAULT_MAX_APPS_PER_TENANT`) or an operator's limit for it
//! (`tenants.app_limit`).

use crate::domain::TenantId;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

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
    let own: Option<i32> =
        sqlx::query_scalar("select app_limit from tenants where id = $1 for no key update")
            .bind(tenant_id)
            .fetch_optional(&mut *conn)
            .await?
            .flatten();
    let limit = own.map_or(i64::from(default_limit), i64::from);
    let registered: i64 = sqlx::query_scalar("select count(*) from apps where tenant_id = $1")
        .bind(tenant_id)
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
    let own: Option<i32> = sqlx::query_scalar("select app_limit from tenants where id = $1")
        .bind(tenant_id)
        .fetch_optional(db)
        .await?
        .flatten();
    Ok(own.map_or(i64::from(default_limit), i64::from))
}

/// A tenant as an operator names it.
#[derive(Debug, Clone, sqlx::FromRow)]
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
    sqlx::query_as(
        "select id, name, app_limit from tenants where id = $1 or name = $2 order by created_at, id limit 10",
    )
    .bind(id)
    .bind(id_or_name)
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
    let before: Option<TenantRef> =
        sqlx::query_as("select id, name, app_limit from tenants where id = $1 for no key update")
            .bind(tenant_id)
            .fetch_optional(&mut *conn)
            .await?;
    if before.is_some() {
        sqlx::query("update tenants set app_limit = $2 where id = $1")
            .bind(tenant_id)
            .bind(limit)
            .execute(&mut *conn)
            .await?;
    }
    Ok(before)
}

/// Set or clear the tenant's own limit and record it in the audit log, in
/// one transaction; `event` names who did it and `via` how (`cli`, `page`).
/// Returns the tenant as it was before, `None` if there is no such tenant
/// (nothing is recorded then).
pub async fn change(
    pool: &sqlx::PgPool,
    tenant_id: TenantId,
    limit: Option<i32>,
    via: &str,
    event: super::audit::AuditEvent<'_>,
) -> Result<Option<TenantRef>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let Some(before) = set_override(&mut tx, tenant_id, limit).await? else {
        return Ok(None);
    };
    super::audit::record(
        &mut *tx,
        super::audit::AuditEvent {
            tenant_id: Some(tenant_id),
            action: "tenant.app_limit_changed",
            target: Some(before.name.clone()),
            detail: serde_json::json!({ "from": before.app_limit, "to": limit, "via": via }),
            ..event
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Some(before))
}

impl From<LimitReached> for crate::error::ApiError {
    fn from(reached: LimitReached) -> Self {
        Self::Conflict {
            code: "app_limit_reached",
            detail: format!(
                "this organisation has reached its limit of {} apps: delete an app it no longer needs, or ask the service's operator to raise the limit",
                reached.limit
            ),
        }
    }
}
