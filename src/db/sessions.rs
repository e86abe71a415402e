//! Server-side browser sessions. The cookie holds a random id; the table
//! holds its SHA-256, so a database leak does not hand out sessions.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use crate::domain::{Role, SessionId, TenantId, UserId};

/// A live session joined with its user.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// User id.
    pub user_id: UserId,
    /// Tenant (none for operators).
    pub tenant_id: Option<TenantId>,
    /// Email.
    pub email: String,
    /// Role.
    pub role: Role,
    /// CSRF token of this session.
    pub csrf_token: String,
    /// Last request seen.
    pub last_seen_at: DateTime<Utc>,
    /// A session that may only enrol in two-factor sign-in (and sign out).
    pub totp_enrolment_only: bool,
    /// Whether the user's address is verified (the pages' banner).
    pub email_verified: bool,
    /// The time zone the user chose (none: the browser's).
    pub time_zone: Option<String>,
}

/// What a new session records.
#[derive(Debug)]
pub struct NewSession<'a> {
    /// SHA-256 of the cookie value.
    pub id_hash: &'a [u8],
    /// The user.
    pub user_id: UserId,
    /// The user's tenant.
    pub tenant_id: Option<TenantId>,
    /// CSRF token.
    pub csrf_token: &'a str,
    /// Absolute expiry.
    pub expires_at: DateTime<Utc>,
    /// Client address.
    pub client_ip: Option<&'a str>,
    /// User agent, truncated.
    pub user_agent: Option<&'a str>,
    /// A session that may only enrol in two-factor sign-in (and sign out).
    pub enrolment_only: bool,
}

/// Store a new session.
pub async fn insert(db: impl PgExecutor<'_>, s: &NewSession<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into sessions (id_hash, user_id, tenant_id, csrf_token, expires_at, client_ip, user_agent, totp_enrolment_only)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
        s.id_hash,
        s.user_id as _,
        s.tenant_id as _,
        s.csrf_token,
        s.expires_at,
        s.client_ip,
        s.user_agent,
        s.enrolment_only,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The session with this id hash, if it has not expired, was used after
/// `idle_since`, and its user is not disabled.
pub async fn find_live(
    db: impl PgExecutor<'_>,
    id_hash: &[u8],
    idle_since: DateTime<Utc>,
) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as!(
        SessionRow,
        r#"select s.user_id as "user_id: UserId", u.tenant_id as "tenant_id: TenantId", u.email,
                  u.role as "role: Role", s.csrf_token, s.last_seen_at, s.totp_enrolment_only,
                  u.email_verified_at is not null as "email_verified!", u.time_zone
             from sessions s join users u on u.id = s.user_id
            where s.id_hash = $1
              and s.expires_at > now()
              and s.last_seen_at > $2
              and u.disabled_at is null"#,
        id_hash,
        idle_since,
    )
    .fetch_optional(db)
    .await
}

/// Record activity (the caller throttles how often).
pub async fn touch(db: impl PgExecutor<'_>, id_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update sessions set last_seen_at = now() where id_hash = $1",
        id_hash
    )
    .execute(db)
    .await?;
    Ok(())
}

/// End a session.
pub async fn delete(db: impl PgExecutor<'_>, id_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query!("delete from sessions where id_hash = $1", id_hash)
        .execute(db)
        .await?;
    Ok(())
}

/// End every session of `user_id` but the one whose id hash is `keep`;
/// returns how many ended.
pub async fn delete_for_user(
    db: impl PgExecutor<'_>,
    user_id: UserId,
    keep: Option<&[u8]>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "delete from sessions where user_id = $1 and id_hash is distinct from $2",
        user_id as _,
        keep,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Remove expired and idle sessions; returns how many.
pub async fn prune(db: impl PgExecutor<'_>, idle_since: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "delete from sessions where expires_at <= now() or last_seen_at <= $1",
        idle_since
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// A live session of one person, as their sessions list shows it.
#[derive(Debug, Clone)]
pub struct OwnSessionRow {
    /// Public id.
    pub id: SessionId,
    /// Whether this is the session the list was asked from.
    pub current: bool,
    /// Started.
    pub created_at: DateTime<Utc>,
    /// Last request seen (written at most once a minute).
    pub last_seen_at: DateTime<Utc>,
    /// Client address when it started.
    pub client_ip: Option<String>,
    /// `User-Agent` when it started, truncated.
    pub user_agent: Option<String>,
}

/// The live sessions of `user_id` (not expired, used after `idle_since`),
/// the one whose id hash is `current` marked, most recently used first.
pub async fn list_for_user(
    db: impl PgExecutor<'_>,
    user_id: UserId,
    current: Option<&[u8]>,
    idle_since: DateTime<Utc>,
) -> Result<Vec<OwnSessionRow>, sqlx::Error> {
    sqlx::query_as!(
        OwnSessionRow,
        r#"select id as "id: SessionId", (id_hash = $2) is true as "current!",
                  created_at, last_seen_at, client_ip, user_agent
             from sessions
            where user_id = $1 and expires_at > now() and last_seen_at > $3
            order by (id_hash = $2) is true desc, last_seen_at desc, created_at desc
            limit 200"#,
        user_id as _,
        current,
        idle_since,
    )
    .fetch_all(db)
    .await
}

/// End the session `id` of `user_id`; what it was, if it was theirs.
pub async fn delete_own(
    db: impl PgExecutor<'_>,
    user_id: UserId,
    id: SessionId,
) -> Result<Option<OwnSessionRow>, sqlx::Error> {
    sqlx::query_as!(
        OwnSessionRow,
        r#"delete from sessions where id = $1 and user_id = $2
           returning id as "id: SessionId", false as "current!", created_at, last_seen_at,
                     client_ip, user_agent"#,
        id as _,
        user_id as _,
    )
    .fetch_optional(db)
    .await
}
