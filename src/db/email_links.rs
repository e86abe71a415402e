//! One-use links mailed to people (`email_links`): email verification and
//! password reset. Only the SHA-256 of a link's token is stored.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

use crate::domain::{TenantId, UserId};

/// What a link is for (the `purpose` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Verify the address it was mailed to.
    VerifyEmail,
    /// Choose a new password.
    ResetPassword,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }
}

/// A live link, locked for its one use.
#[derive(Debug, Clone)]
pub struct LinkRow {
    /// Whose.
    pub user_id: UserId,
    /// Their organisation (`None` for operators).
    pub tenant_id: Option<TenantId>,
    /// The address it was mailed to.
    pub email: String,
    /// The person's address now.
    pub current_email: String,
}

/// Store a link valid until `expires_at`.
pub async fn insert(
    db: impl PgExecutor<'_>,
    token_hash: &[u8],
    user_id: UserId,
    purpose: Purpose,
    email: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into email_links (token_hash, user_id, purpose, email, expires_at)
         values ($1, $2, $3, $4, $5)",
        token_hash,
        user_id as _,
        purpose.as_str(),
        email,
        expires_at,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Links of `purpose` made for `user_id` since `since` (the per-account
/// throttle).
pub async fn count_since(
    db: impl PgExecutor<'_>,
    user_id: UserId,
    purpose: Purpose,
    since: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select count(*) as "n!" from email_links
            where user_id = $1 and purpose = $2 and created_at > $3"#,
        user_id as _,
        purpose.as_str(),
        since,
    )
    .fetch_one(db)
    .await
}

/// Take the unused, unexpired link of `purpose` with this token hash: it is
/// marked used (and locked until the transaction ends). `None` for an
/// unknown, expired, used or foreign link, or a disabled person.
pub async fn take(
    conn: &mut PgConnection,
    token_hash: &[u8],
    purpose: Purpose,
) -> Result<Option<LinkRow>, sqlx::Error> {
    sqlx::query_as!(
        LinkRow,
        r#"update email_links l set used_at = now()
             from users u
            where l.token_hash = $1 and l.purpose = $2 and l.used_at is null
              and l.expires_at > now() and u.id = l.user_id and u.disabled_at is null
           returning l.user_id as "user_id: UserId", u.tenant_id as "tenant_id: TenantId",
                     l.email, u.email as current_email"#,
        token_hash,
        purpose.as_str(),
    )
    .fetch_optional(conn)
    .await
}

/// Spend every other unused link of `purpose` of `user_id`.
pub async fn spend_all(
    db: impl PgExecutor<'_>,
    user_id: UserId,
    purpose: Purpose,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update email_links set used_at = now()
          where user_id = $1 and purpose = $2 and used_at is null",
        user_id as _,
        purpose.as_str(),
    )
    .execute(db)
    .await?;
    Ok(())
}
