//! API keys: stored as a visible prefix and a SHA-256 of the whole key.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

use crate::domain::{ApiKeyId, AppUuid, TenantId, UserId};

/// An API key as listed (never the key itself).
#[derive(Debug, Clone)]
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
    /// Who created it, while they are a member.
    pub created_by: Option<UserId>,
    /// The email of who created it (kept after they leave).
    pub created_by_email: Option<String>,
}

/// What verifying a key needs.
#[derive(Debug, Clone)]
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

/// A key to store.
#[derive(Debug)]
pub struct NewApiKey<'a> {
    /// Key id.
    pub id: ApiKeyId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Name given at creation.
    pub name: &'a str,
    /// Visible prefix.
    pub prefix: &'a str,
    /// SHA-256 of the whole key.
    pub key_hash: &'a [u8],
    /// Read-only?
    pub read_only: bool,
    /// The apps it is limited to; empty: every app.
    pub app_ids: &'a [AppUuid],
    /// Who created it.
    pub created_by: UserId,
}

/// Insert a key and its app limits.
pub async fn insert(conn: &mut PgConnection, key: &NewApiKey<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into api_keys (id, tenant_id, name, prefix, key_hash, read_only, created_by, limited_to_apps,
                               created_by_email)
         values ($1, $2, $3, $4, $5, $6, $7, $8, (select email from users where id = $7))",
        key.id as _,
        key.tenant_id as _,
        key.name,
        key.prefix,
        key.key_hash,
        key.read_only,
        key.created_by as _,
        !key.app_ids.is_empty(),
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "insert into api_key_apps (api_key_id, app_id, tenant_id) select $1, unnest($2::uuid[]), $3",
        key.id as _,
        key.app_ids as _,
        key.tenant_id as _,
    )
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
    let found = sqlx::query!(
        r#"select id as "id: AppUuid", appid from apps where tenant_id = $1 and appid = any($2)"#,
        tenant_id as _,
        appids,
    )
    .fetch_all(db)
    .await?;
    let missing = appids
        .iter()
        .filter(|a| !found.iter().any(|f| f.appid == **a))
        .cloned()
        .collect();
    Ok((found.into_iter().map(|f| f.id).collect(), missing))
}

/// One key of a tenant.
pub async fn get(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
    id: ApiKeyId,
) -> Result<Option<ApiKeyRow>, sqlx::Error> {
    // The same columns as `list` (a macro takes one literal, so they are
    // written out twice).
    sqlx::query_as!(
        ApiKeyRow,
        r#"select k.id as "id: ApiKeyId", k.name, k.prefix, k.read_only, k.limited_to_apps,
                  k.created_at, k.last_used_at, k.revoked_at,
                  k.created_by as "created_by: UserId", k.created_by_email,
                  coalesce((select array_agg(a.appid order by a.appid)
                              from api_key_apps ka join apps a on a.id = ka.app_id
                             where ka.api_key_id = k.id), '{}') as "apps!"
             from api_keys k where k.tenant_id = $1 and k.id = $2"#,
        tenant_id as _,
        id as _,
    )
    .fetch_optional(db)
    .await
}

/// A tenant's keys, newest first.
pub async fn list(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
) -> Result<Vec<ApiKeyRow>, sqlx::Error> {
    sqlx::query_as!(
        ApiKeyRow,
        r#"select k.id as "id: ApiKeyId", k.name, k.prefix, k.read_only, k.limited_to_apps,
                  k.created_at, k.last_used_at, k.revoked_at,
                  k.created_by as "created_by: UserId", k.created_by_email,
                  coalesce((select array_agg(a.appid order by a.appid)
                              from api_key_apps ka join apps a on a.id = ka.app_id
                             where ka.api_key_id = k.id), '{}') as "apps!"
             from api_keys k where k.tenant_id = $1 order by k.created_at desc, k.id"#,
        tenant_id as _,
    )
    .fetch_all(db)
    .await
}

/// Revoke a key; `false` if the tenant has no such key. Revoking twice is
/// fine. Every replica hears of it on `channel` when the transaction
/// commits.
pub async fn revoke(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: ApiKeyId,
    channel: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update api_keys set revoked_at = coalesce(revoked_at, now()) where tenant_id = $1 and id = $2",
        tenant_id as _,
        id as _,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!("select pg_notify($1, $2)", channel, id.to_string())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The key with this prefix, for verification.
pub async fn by_prefix(
    db: impl PgExecutor<'_>,
    prefix: &str,
) -> Result<Option<KeyAuthRow>, sqlx::Error> {
    sqlx::query_as!(
        KeyAuthRow,
        r#"select k.id as "id: ApiKeyId", k.tenant_id as "tenant_id: TenantId", k.key_hash,
                  k.read_only, k.limited_to_apps, k.revoked_at,
                  coalesce((select array_agg(app_id) from api_key_apps where api_key_id = k.id),
                           '{}') as "app_ids!: Vec<AppUuid>"
             from api_keys k where k.prefix = $1"#,
        prefix,
    )
    .fetch_optional(db)
    .await
}

/// Record last use of many keys at once.
pub async fn record_last_used(
    db: impl PgExecutor<'_>,
    ids: &[ApiKeyId],
    times: &[DateTime<Utc>],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update api_keys k set last_used_at = greatest(k.last_used_at, u.t)
           from unnest($1::uuid[], $2::timestamptz[]) as u(id, t) where k.id = u.id",
        ids as _,
        times,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The live keys of `tenant_id` whose creator has left (removed from the
/// organisation), oldest first.
pub async fn of_departed(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
) -> Result<Vec<ApiKeyRow>, sqlx::Error> {
    sqlx::query_as!(
        ApiKeyRow,
        r#"select k.id as "id: ApiKeyId", k.name, k.prefix, k.read_only, k.limited_to_apps,
                  k.created_at, k.last_used_at, k.revoked_at,
                  k.created_by as "created_by: UserId", k.created_by_email,
                  coalesce((select array_agg(a.appid order by a.appid)
                              from api_key_apps ka join apps a on a.id = ka.app_id
                             where ka.api_key_id = k.id), '{}') as "apps!"
             from api_keys k
            where k.tenant_id = $1 and k.revoked_at is null
              and k.created_by is null and k.created_by_email is not null
            order by k.created_at, k.id"#,
        tenant_id as _,
    )
    .fetch_all(db)
    .await
}
