//! The index of served tokens (`served_tokens`): a keyed hash of every
//! token tokenvault stored, its app and how long WeChat accepts it. The
//! WeChat-compatible getticket finds a token's app here, never by
//! decrypting tokens.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

use crate::domain::{AppUuid, TenantId};

/// A token to index.
#[derive(Debug)]
pub struct IndexedToken<'a> {
    /// HMAC-SHA256 of the token under `key_id`'s index key.
    pub hash: &'a [u8],
    /// The master key the hash was made with.
    pub key_id: &'a str,
    /// Its app.
    pub app_id: AppUuid,
    /// The app's organisation.
    pub tenant_id: TenantId,
    /// When WeChat stops accepting it.
    pub expires_at: DateTime<Utc>,
}

/// Index a newly stored token. The app's older tokens end at `others_until`
/// at the latest (a replaced classic token lives for the overlap); rows of
/// tokens that expired are dropped.
pub async fn index(
    conn: &mut PgConnection,
    t: &IndexedToken<'_>,
    others_until: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "delete from served_tokens where app_id = $1 and expires_at <= now()",
        t.app_id as AppUuid,
    )
    .execute(&mut *conn)
    .await?;
    if let Some(until) = others_until {
        sqlx::query!(
            "update served_tokens set expires_at = least(expires_at, $2) where app_id = $1",
            t.app_id as AppUuid,
            until,
        )
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query!(
        "insert into served_tokens (token_hash, key_id, app_id, tenant_id, expires_at)
         values ($1, $2, $3, $4, $5)
         on conflict (token_hash) do update set expires_at = excluded.expires_at",
        t.hash,
        t.key_id,
        t.app_id as AppUuid,
        t.tenant_id as TenantId,
        t.expires_at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The app a token belongs to.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    /// The app.
    pub app_id: AppUuid,
    /// Its organisation.
    pub tenant_id: TenantId,
    /// Its AppID.
    pub appid: String,
    /// When WeChat stops accepting the token.
    pub expires_at: DateTime<Utc>,
}

/// The owner of the token whose keyed hash is one of `hashes` (`(key id,
/// hash)` pairs: a row matches only with the hash of its own key).
pub async fn lookup(
    db: impl PgExecutor<'_>,
    key_ids: &[String],
    hashes: &[Vec<u8>],
) -> Result<Option<TokenOwner>, sqlx::Error> {
    sqlx::query_as!(
        TokenOwner,
        r#"select s.app_id as "app_id: AppUuid", s.tenant_id as "tenant_id: TenantId",
                  a.appid, s.expires_at
             from served_tokens s
             join apps a on a.id = s.app_id and a.tenant_id = s.tenant_id
             join unnest($1::text[], $2::bytea[]) as q(key_id, token_hash)
               on q.key_id = s.key_id and q.token_hash = s.token_hash
            limit 1"#,
        key_ids,
        hashes,
    )
    .fetch_optional(db)
    .await
}
