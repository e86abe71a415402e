//! Invitations to join a tenant.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

use crate::domain::{Email, InviteId, Role, TenantId, UserId};

/// An invite as listed (never its token).
#[derive(Debug, Clone)]
pub struct InviteRow {
    /// Invite id.
    pub id: InviteId,
    /// The email the invite is for, if it names one.
    pub email: Option<String>,
    /// Role the invitee gets.
    pub role: Role,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Expires.
    pub expires_at: DateTime<Utc>,
    /// Accepted, if it was.
    pub accepted_at: Option<DateTime<Utc>>,
}

/// An invite as its link finds it, whatever its state (for the page that
/// opens the link: it says whether the link still works and why not).
#[derive(Debug, Clone)]
pub struct InviteByToken {
    /// Invite id.
    pub id: InviteId,
    /// The inviting organisation.
    pub tenant_id: TenantId,
    /// Its name.
    pub tenant_name: String,
    /// The email the invite is for, if it names one.
    pub email: Option<String>,
    /// Role the invitee gets.
    pub role: Role,
    /// Expires.
    pub expires_at: DateTime<Utc>,
    /// Accepted, if it was.
    pub accepted_at: Option<DateTime<Utc>>,
}

/// An open invite, claimed (locked) for accepting.
#[derive(Debug, Clone)]
pub struct ClaimedInvite {
    /// Invite id.
    pub id: InviteId,
    /// The inviting organisation.
    pub tenant_id: TenantId,
    /// Role the invitee gets.
    pub role: Role,
    /// The email the invite is for, if it names one.
    pub email: Option<String>,
    /// Whether the token is the one mailed to `email` (joining with it
    /// verifies the address).
    pub by_mail: bool,
}

/// A new invite to store.
pub struct NewInvite<'a> {
    /// Invite id.
    pub id: InviteId,
    /// The inviting organisation.
    pub tenant_id: TenantId,
    /// Hash of the link's token.
    pub token_hash: &'a [u8],
    /// Hash of the token of the link mailed to `email`, if one is mailed.
    pub mail_token_hash: Option<&'a [u8]>,
    /// The email it is for, if any.
    pub email: Option<&'a Email>,
    /// Role the invitee gets.
    pub role: Role,
    /// Who invited.
    pub created_by: UserId,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
}

/// Store an invite.
pub async fn insert(db: impl PgExecutor<'_>, invite: &NewInvite<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into invites (id, tenant_id, token_hash, email, role, created_by, expires_at,
                              mail_token_hash)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
        invite.id as _,
        invite.tenant_id as _,
        invite.token_hash,
        invite.email.map(Email::as_str),
        invite.role as _,
        invite.created_by as _,
        invite.expires_at,
        invite.mail_token_hash,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Invites of a tenant, newest first.
pub async fn list(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
) -> Result<Vec<InviteRow>, sqlx::Error> {
    sqlx::query_as!(
        InviteRow,
        r#"select id as "id: InviteId", email, role as "role: Role", created_at, expires_at,
                  accepted_at
             from invites where tenant_id = $1 order by created_at desc, id"#,
        tenant_id as _,
    )
    .fetch_all(db)
    .await
}

/// Withdraw an open invite; returns it, or `None` if the tenant has no such
/// open invite.
pub async fn delete(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
    id: InviteId,
) -> Result<Option<InviteRow>, sqlx::Error> {
    sqlx::query_as!(
        InviteRow,
        r#"delete from invites where tenant_id = $1 and id = $2 and accepted_at is null
           returning id as "id: InviteId", email, role as "role: Role", created_at, expires_at,
                     accepted_at"#,
        tenant_id as _,
        id as _,
    )
    .fetch_optional(db)
    .await
}

/// The invite a link's token names, open or not.
pub async fn by_token(
    db: impl PgExecutor<'_>,
    token_hash: &[u8],
) -> Result<Option<InviteByToken>, sqlx::Error> {
    sqlx::query_as!(
        InviteByToken,
        r#"select i.id as "id: InviteId", i.tenant_id as "tenant_id: TenantId",
                  t.name as tenant_name, i.email, i.role as "role: Role", i.expires_at,
                  i.accepted_at
             from invites i join tenants t on t.id = i.tenant_id
            where i.token_hash = $1 or i.mail_token_hash = $1"#,
        token_hash,
    )
    .fetch_optional(db)
    .await
}

/// Claim an open, unexpired invite by its token hash (locks it).
pub async fn claim(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> Result<Option<ClaimedInvite>, sqlx::Error> {
    sqlx::query_as!(
        ClaimedInvite,
        r#"select id as "id: InviteId", tenant_id as "tenant_id: TenantId", role as "role: Role",
                  email, (mail_token_hash = $1) is true as "by_mail!"
             from invites
            where (token_hash = $1 or mail_token_hash = $1)
              and accepted_at is null and expires_at > now()
            for update"#,
        token_hash,
    )
    .fetch_optional(conn)
    .await
}

/// Mark an invite accepted.
pub async fn mark_accepted(
    conn: &mut PgConnection,
    id: InviteId,
    user_id: UserId,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update invites set accepted_at = now(), accepted_by = $2 where id = $1",
        id as _,
        user_id as _,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Withdraw the open invites `user_id` created in `tenant_id` (they were
/// removed, or may no longer invite); returns them.
pub async fn withdraw_created_by(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    user_id: UserId,
) -> Result<Vec<InviteRow>, sqlx::Error> {
    sqlx::query_as!(
        InviteRow,
        r#"delete from invites where tenant_id = $1 and created_by = $2 and accepted_at is null
           returning id as "id: InviteId", email, role as "role: Role", created_at, expires_at,
                     accepted_at"#,
        tenant_id as _,
        user_id as _,
    )
    .fetch_all(conn)
    .await
}
