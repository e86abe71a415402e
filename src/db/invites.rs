//! Invitations to join a tenant.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// An invite as listed (never its token).
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct InviteRow {
    /// Invite id.
    pub id: Uuid,
    /// Role the invitee gets.
    pub role: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Expires.
    pub expires_at: DateTime<Utc>,
    /// Accepted, if it was.
    pub accepted_at: Option<DateTime<Utc>>,
}

/// Store an invite.
pub async fn insert(
    db: impl PgExecutor<'_>,
    id: Uuid,
    tenant_id: Uuid,
    token_hash: &[u8],
    role: &str,
    created_by: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into invites (id, tenant_id, token_hash, role, created_by, expires_at) values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(tenant_id)
    .bind(token_hash)
    .bind(role)
    .bind(created_by)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Open invites of a tenant, newest first.
pub async fn list(db: impl PgExecutor<'_>, tenant_id: Uuid) -> Result<Vec<InviteRow>, sqlx::Error> {
    sqlx::query_as(
        "select id, role, created_at, expires_at, accepted_at from invites
          where tenant_id = $1 order by created_at desc, id",
    )
    .bind(tenant_id)
    .fetch_all(db)
    .await
}

/// Withdraw an invite; `false` if the tenant has no such invite.
pub async fn delete(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("delete from invites where tenant_id = $1 and id = $2 and accepted_at is null")
            .bind(tenant_id)
            .bind(id)
            .execute(db)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Claim an open, unexpired invite by its token hash (locks it); returns
/// (invite id, tenant id, role).
pub async fn claim(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> Result<Option<(Uuid, Uuid, String)>, sqlx::Error> {
    sqlx::query_as(
        "select id, tenant_id, role from invites
          where token_hash = $1 and accepted_at is null and expires_at > now() for update",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await
}

/// Mark an invite accepted.
pub async fn mark_accepted(
    conn: &mut PgConnection,
    id: Uuid,
    user_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("update invites set accepted_at = now(), accepted_by = $2 where id = $1")
        .bind(id)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}
