//! API keys: stored as a visible prefix and a SHA-256 of the whole key.

use crate::domain::{ApiKeyId, AppUuid, TenantId, UserId};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

/// An API key as listed (never the key itself).
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct ApiKeyRow {
    /// Key id.
    pub id: ApiKeyId,
    /// Name given at creation.
    pub name: String,
    /// Visible prefix, to recognise the key.
    pub prefix: String,
    /// Read-only keys cannot change anything.
    pub read_only: bool,
    /// Whether the key is limited to the apps in `apps` (even when they were all deleted).
    pub limited_to_apps: bool,
    /// Appids the key is limited to.
    pub apps: Vec<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last use (recorded at most every few seconds).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What verifying a key needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyAuthRow {
    /// Key id.
    pub id: ApiKeyId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// SHA-256 of the whole key.
    pub key_hash: Vec<u8>,
    /// Read-only?
    pub read_only: bool,
    /// Whether the key is limited to `app_ids` (possibly none left).
    pub limited_to_apps: bool,
    /// App ids (uuid) the key is limited to.
    pub app_ids: Vec<AppUuid>,
    /// Revoked?
    pub revoked_at: Option<DateTime<Utc>>,
}

const LIST_COLUMNS: &str = "k.id, k.name, k.prefix, k.read_only, k.limited_to_apps, k.created_at, k.last_used_at, k.revoked_at,
    coalesce((select array_agg(a.appid order by a.appid) from api_key_apps ka join apps a on a.id = ka.app_id
              where ka.api_key_id = k.id), '{}') as apps";

/// Insert a key and its app limits.
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    conn: &mut PgConnection,
    id: ApiKeyId,
    tenant_id: TenantId,
    name: &str,
    prefix: &str,
    key_hash: &[u8],
    read_only: bool,
    app_ids: &[AppUuid],
    created_by: UserId,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into api_keys (id, tenant_id, name, prefix, key_hash, read_only, created_by, limited_to_apps)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(tenant_id)
    .bind(name)
    .bind(prefix)
    .bind(key_hash)
    .bind(read_only)
    .bind(created_by)
    .bind(!app_ids.is_empty())
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "insert into api_key_apps (api_key_id, app_id, tenant_id) select $1, unnest($2::uuid[]), $3",
    )
    .bind(id)
    .bind(app_ids)
    .bind(tenant_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Map appids to app ids within a tenant; returns the appids not found.
pub async fn resolve_appids(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
    appids: &[String],
) -> Result<(Vec<AppUuid>, Vec<String>), sqlx::Error> {
    let found: Vec<(AppUuid, String)> =
        sqlx::query_as("select id, appid from apps where tenant_id = $1 and appid = any($2)")
            .bind(tenant_id)
            .bind(appids)
            .fetch_all(db)
            .await?;
    let missing = appids
        .iter()
        .filter(|a| !found.iter().any(|(_, f)| f == *a))
        .cloned()
        .collect();
    Ok((found.into_iter().map(|(id, _)| id).collect(), missing))
}

/// One key of a tenant.
pub async fn get(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
    id: ApiKeyId,
) -> Result<Option<ApiKeyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {LIST_COLUMNS} from api_keys k where k.tenant_id = $1 and k.id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// A tenant's keys, newest first.
pub async fn list(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
) -> Result<Vec<ApiKeyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {LIST_COLUMNS} from api_keys k where k.tenant_id = $1 order by k.created_at desc, k.id"
    ))
    .bind(tenant_id)
    .fetch_all(db)
    .await
}

/// Revoke a key; `false` if the tenant has no such key. Revoking twice is fine.
pub async fn revoke(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
    id: ApiKeyId,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update api_keys set revoked_at = coalesce(revoked_at, now()) where tenant_id = $1 and id = $2",
    )
    .bind(tenant_id)
    .bind(id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The key with this prefix, for verification.
pub async fn by_prefix(
    db: impl PgExecutor<'_>,
    prefix: &str,
) -> Result<Option<KeyAuthRow>, sqlx::Error> {
    sqlx::query_as(
        "select k.id, k.tenant_id, k.key_hash, k.read_only, k.limited_to_apps, k.revoked_at,
                coalesce((select array_agg(app_id) from api_key_apps where api_key_id = k.id), '{}') as app_ids
           from api_keys k where k.prefix = $1",
    )
    .bind(prefix)
    .fetch_optional(db)
    .await
}

/// Record last use of many keys at once.
pub async fn record_last_used(
    db: impl PgExecutor<'_>,
    ids: &[ApiKeyId],
    times: &[DateTime<Utc>],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update api_keys k set last_used_at = greatest(k.last_used_at, u.t)
           from unnest($1::uuid[], $2::timestamptz[]) as u(id, t) where k.id = u.id",
    )
    .bind(ids)
    .bind(times)
    .execute(db)
    .await?;
    Ok(())
}
