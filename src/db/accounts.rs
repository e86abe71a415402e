//! Tenants and the people in them.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

use crate::domain::{Email, Name, Role, TenantId, UserId};

/// A person's account as the auth layer needs it.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// User id.
    pub id: UserId,
    /// Tenant, or `None` for operators.
    pub tenant_id: Option<TenantId>,
    /// Email (lower-case).
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Role.
    pub role: Role,
    /// When the account was disabled, if it was.
    pub disabled_at: Option<DateTime<Utc>>,
}

/// A member as listed to the tenant.
#[derive(Debug, Clone)]
pub struct MemberRow {
    /// User id.
    pub id: UserId,
    /// Email.
    pub email: String,
    /// Role.
    pub role: Role,
    /// When they joined.
    pub created_at: DateTime<Utc>,
}

/// Whether a unique violation on the users' email index caused `e`.
pub fn is_email_taken(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.constraint() == Some("users_email_unique"))
}

/// Create a tenant and its owner in one transaction.
pub async fn create_tenant_with_owner(
    conn: &mut PgConnection,
    organization: &Name,
    email: &Email,
    password_hash: &str,
) -> Result<(TenantId, UserId), sqlx::Error> {
    let tenant_id = TenantId::new();
    let user_id = UserId::new();
    sqlx::query!(
        "insert into tenants (id, name) values ($1, $2)",
        tenant_id as _,
        organization.as_str(),
    )
    .execute(&mut *conn)
    .await?;
    insert_user(
        conn,
        user_id,
        Some(tenant_id),
        email,
        password_hash,
        Role::Owner,
    )
    .await?;
    Ok((tenant_id, user_id))
}

/// Insert a user.
pub async fn insert_user(
    db: impl PgExecutor<'_>,
    id: UserId,
    tenant_id: Option<TenantId>,
    email: &Email,
    password_hash: &str,
    role: Role,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into users (id, tenant_id, email, password_hash, role) values ($1, $2, $3, $4, $5)",
        id as _,
        tenant_id as _,
        email.as_str(),
        password_hash,
        role as _,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The account with this email, if any.
pub async fn user_by_email(
    db: impl PgExecutor<'_>,
    email: &Email,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as!(
        UserRow,
        r#"select id as "id: UserId", tenant_id as "tenant_id: TenantId", email, password_hash,
                  role as "role: Role", disabled_at
             from users where lower(email) = $1"#,
        email.as_str(),
    )
    .fetch_optional(db)
    .await
}

/// A person's email, password hash, language and whether the address is
/// verified.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Email.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Language of their mails (`en`, `zh-CN`).
    pub language: String,
    /// When the address was verified.
    pub email_verified_at: Option<DateTime<Utc>>,
}

/// The credentials of `user_id`.
pub async fn credentials(
    db: impl PgExecutor<'_>,
    user_id: UserId,
) -> Result<Option<Credentials>, sqlx::Error> {
    sqlx::query_as!(
        Credentials,
        "select email, password_hash, language, email_verified_at from users where id = $1",
        user_id as _,
    )
    .fetch_optional(db)
    .await
}

/// Replace the password hash of `user_id`.
pub async fn set_password_hash(
    db: impl PgExecutor<'_>,
    user_id: UserId,
    password_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update users set password_hash = $2 where id = $1",
        user_id as _,
        password_hash,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Mark `email` verified for `user_id`, if it is still their address.
pub async fn mark_verified(
    db: impl PgExecutor<'_>,
    user_id: UserId,
    email: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update users set email_verified_at = coalesce(email_verified_at, now())
          where id = $1 and lower(email) = lower($2)",
        user_id as _,
        email,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The tenant's name.
pub async fn tenant_name(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!("select name from tenants where id = $1", tenant_id as _)
        .fetch_optional(db)
        .await
}

/// Members of a tenant, oldest first.
pub async fn list_members(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
) -> Result<Vec<MemberRow>, sqlx::Error> {
    sqlx::query_as!(
        MemberRow,
        r#"select id as "id: UserId", email, role as "role: Role", created_at
             from users where tenant_id = $1 order by created_at, id"#,
        tenant_id as _,
    )
    .fetch_all(db)
    .await
}

/// One member of a tenant, locked for update.
pub async fn member_for_update(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    user_id: UserId,
) -> Result<Option<MemberRow>, sqlx::Error> {
    sqlx::query_as!(
        MemberRow,
        r#"select id as "id: UserId", email, role as "role: Role", created_at
             from users where tenant_id = $1 and id = $2 for update"#,
        tenant_id as _,
        user_id as _,
    )
    .fetch_optional(conn)
    .await
}

/// Owners of a tenant (locked, so two demotions cannot both pass the
/// last-owner check).
pub async fn owner_count_for_update(
    conn: &mut PgConnection,
    tenant_id: TenantId,
) -> Result<i64, sqlx::Error> {
    let ids = sqlx::query_scalar!(
        "select id from users where tenant_id = $1 and role = 'owner' for update",
        tenant_id as _,
    )
    .fetch_all(conn)
    .await?;
    Ok(i64::try_from(ids.len()).unwrap_or(i64::MAX))
}

/// Change a member's role.
pub async fn set_role(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    user_id: UserId,
    role: Role,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update users set role = $3 where tenant_id = $1 and id = $2",
        tenant_id as _,
        user_id as _,
        role as _,
    )
    .execute(&mut *conn)
    .await?;
    // A changed role takes effect at once: end the member's sessions.
    sqlx::query!("delete from sessions where user_id = $1", user_id as _)
        .execute(conn)
        .await?;
    Ok(())
}

/// Remove a member (their sessions go with them).
pub async fn delete_member(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    user_id: UserId,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "delete from users where tenant_id = $1 and id = $2",
        tenant_id as _,
        user_id as _,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Per-tenant summary for operators: no secrets, no tokens.
#[derive(Debug, Clone)]
pub struct TenantHealthRow {
    /// Tenant id.
    pub id: TenantId,
    /// Organisation name.
    pub name: String,
    /// When it signed up.
    pub created_at: DateTime<Utc>,
    /// Members.
    pub members: i64,
    /// Registered apps.
    pub apps: i64,
    /// Apps whose last refresh failed.
    pub failing_apps: i64,
    /// The organisation's own app limit, set by an operator; `None`: the
    /// service's default.
    pub app_limit: Option<i32>,
}

/// Every tenant's health, for operators.
pub async fn tenant_health(db: impl PgExecutor<'_>) -> Result<Vec<TenantHealthRow>, sqlx::Error> {
    sqlx::query_as!(
        TenantHealthRow,
        r#"select t.id as "id: TenantId", t.name, t.created_at,
                  (select count(*) from users u where u.tenant_id = t.id) as "members!",
                  (select count(*) from apps a where a.tenant_id = t.id) as "apps!",
                  (select count(*) from token_state s
                    where s.tenant_id = t.id and s.failure_streak > 0) as "failing_apps!",
                  t.app_limit
             from tenants t
            order by t.created_at, t.id"#,
    )
    .fetch_all(db)
    .await
}

/// What the account page shows of a person.
#[derive(Debug, Clone)]
pub struct ProfileRow {
    /// Email.
    pub email: String,
    /// The name they go by.
    pub display_name: Option<String>,
    /// Language of their mails.
    pub language: String,
    /// When the address was verified.
    pub email_verified_at: Option<DateTime<Utc>>,
}

/// The profile of `user_id`.
pub async fn profile(
    db: impl PgExecutor<'_>,
    user_id: UserId,
) -> Result<Option<ProfileRow>, sqlx::Error> {
    sqlx::query_as!(
        ProfileRow,
        "select email, display_name, language, email_verified_at from users where id = $1",
        user_id as _,
    )
    .fetch_optional(db)
    .await
}

/// Set the language of `user_id`'s mails (`en`, `zh-CN`).
pub async fn set_language(
    db: impl PgExecutor<'_>,
    user_id: UserId,
    language: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update users set language = $2 where id = $1",
        user_id as _,
        language,
    )
    .execute(db)
    .await?;
    Ok(())
}
