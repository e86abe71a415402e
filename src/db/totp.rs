//! Two-factor sign-in: each person's TOTP secret (a ciphertext), the last
//! time step a code was taken for, their recovery codes (hashes), and the
//! organisations' requirement.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

use crate::domain::{TenantId, UserId};

/// A person's TOTP enrolment.
#[derive(Debug, Clone)]
pub struct TotpRow {
    /// The secret, encrypted (`Binding::totp_secret`).
    pub secret_ciphertext: Vec<u8>,
    /// When a code confirmed it; `None` while enrolling.
    pub confirmed_at: Option<DateTime<Utc>>,
}

/// The enrolment of `user_id`, if they started one.
pub async fn get(db: impl PgExecutor<'_>, user_id: UserId) -> Result<Option<TotpRow>, sqlx::Error> {
    sqlx::query_as!(
        TotpRow,
        "select secret_ciphertext, confirmed_at from user_totp where user_id = $1",
        user_id as _,
    )
    .fetch_optional(db)
    .await
}

/// Start (or start again) an enrolment of `user_id` with a new secret,
/// unless one is confirmed already; whether it was stored.
pub async fn start(
    db: impl PgExecutor<'_>,
    user_id: UserId,
    secret_ciphertext: &[u8],
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "insert into user_totp (user_id, secret_ciphertext) values ($1, $2)
         on conflict (user_id) do update
            set secret_ciphertext = excluded.secret_ciphertext, last_step = null,
                created_at = now()
          where user_totp.confirmed_at is null",
        user_id as _,
        secret_ciphertext,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Take time step `step` for `user_id` if no code was taken for it or a
/// later one (a code counts once); whether it was taken.
pub async fn take_step(
    db: impl PgExecutor<'_>,
    user_id: UserId,
    step: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update user_totp set last_step = $2
          where user_id = $1 and (last_step is null or last_step < $2)",
        user_id as _,
        step,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Mark the enrolment of `user_id` confirmed, if the waiting secret is still
/// the one the code was checked against; whether it was.
pub async fn confirm(
    db: impl PgExecutor<'_>,
    user_id: UserId,
    secret_ciphertext: &[u8],
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update user_totp set confirmed_at = now()
          where user_id = $1 and confirmed_at is null and secret_ciphertext = $2",
        user_id as _,
        secret_ciphertext,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Remove the enrolment and the recovery codes of `user_id`.
pub async fn remove(conn: &mut PgConnection, user_id: UserId) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "delete from totp_recovery_codes where user_id = $1",
        user_id as _
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!("delete from user_totp where user_id = $1", user_id as _)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Replace the recovery codes of `user_id` with these hashes.
pub async fn replace_recovery_codes(
    conn: &mut PgConnection,
    user_id: UserId,
    hashes: &[Vec<u8>],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "delete from totp_recovery_codes where user_id = $1",
        user_id as _
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "insert into totp_recovery_codes (user_id, code_hash)
         select $1, h from unnest($2::bytea[]) as h",
        user_id as _,
        hashes,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Spend the unused recovery code of `user_id` with this hash; whether there was one.
pub async fn use_recovery_code(
    db: impl PgExecutor<'_>,
    user_id: UserId,
    hash: &[u8],
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update totp_recovery_codes set used_at = now()
          where user_id = $1 and code_hash = $2 and used_at is null",
        user_id as _,
        hash,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Unused recovery codes of `user_id`.
pub async fn recovery_codes_left(
    db: impl PgExecutor<'_>,
    user_id: UserId,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select count(*) as "n!" from totp_recovery_codes where user_id = $1 and used_at is null"#,
        user_id as _,
    )
    .fetch_one(db)
    .await
}

/// Whether organisation `tenant_id` requires two-factor sign-in.
pub async fn tenant_requires(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
) -> Result<bool, sqlx::Error> {
    let required = sqlx::query_scalar!(
        "select require_totp from tenants where id = $1",
        tenant_id as _
    )
    .fetch_optional(db)
    .await?;
    Ok(required.unwrap_or(false))
}

/// Set whether organisation `tenant_id` requires two-factor sign-in;
/// whether it changed.
pub async fn set_tenant_requires(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
    required: bool,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update tenants set require_totp = $2 where id = $1 and require_totp <> $2",
        tenant_id as _,
        required,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Let every enrolment-only session of `user_id` do everything (they enrolled).
pub async fn release_sessions(db: impl PgExecutor<'_>, user_id: UserId) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update sessions set totp_enrolment_only = false
          where user_id = $1 and totp_enrolment_only",
        user_id as _,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A TOTP secret for key rotation.
#[derive(Debug, Clone)]
pub struct SecretRow {
    /// Whose.
    pub user_id: UserId,
    /// The ciphertext.
    pub secret_ciphertext: Vec<u8>,
}

/// Lock up to `limit` secrets after `after` whose ciphertext does not start
/// with `prefix` (the active key's header), skipping locked rows and `exclude`.
pub async fn lock_secrets_not_under(
    conn: &mut PgConnection,
    prefix: &[u8],
    after: uuid::Uuid,
    exclude: &[uuid::Uuid],
    limit: i64,
) -> Result<Vec<SecretRow>, sqlx::Error> {
    sqlx::query_as!(
        SecretRow,
        r#"select user_id as "user_id: UserId", secret_ciphertext from user_totp
            where substring(secret_ciphertext from 1 for length($1::bytea)) <> $1::bytea
              and user_id > $2 and user_id <> all($3)
            order by user_id limit $4
            for update skip locked"#,
        prefix,
        after,
        exclude,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Secrets whose ciphertext does not start with `prefix`.
pub async fn count_not_under(db: impl PgExecutor<'_>, prefix: &[u8]) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select count(*) as "n!" from user_totp
            where substring(secret_ciphertext from 1 for length($1::bytea)) <> $1::bytea"#,
        prefix,
    )
    .fetch_one(db)
    .await
}

/// Store a re-encrypted secret.
pub async fn update_secret(
    conn: &mut PgConnection,
    user_id: UserId,
    secret_ciphertext: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update user_totp set secret_ciphertext = $2 where user_id = $1",
        user_id as _,
        secret_ciphertext,
    )
    .execute(conn)
    .await?;
    Ok(())
}
