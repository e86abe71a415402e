//! The mail outbox (`mail_outbox`): queued mails, claimed one at a time
//! with `for update skip locked`, so a mail is sent by one replica.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

/// A mail to queue; the bodies already encrypted.
#[derive(Debug)]
pub struct NewMail<'a> {
    /// The mail's id (the ciphertext is bound to it).
    pub id: Uuid,
    /// Recipient address.
    pub recipient: &'a str,
    /// Subject.
    pub subject: &'a str,
    /// What caused it.
    pub kind: &'a str,
    /// The encrypted bodies.
    pub body_ciphertext: &'a [u8],
}

/// A queued mail, claimed for sending.
#[derive(Debug, Clone)]
pub struct QueuedMail {
    /// Id.
    pub id: Uuid,
    /// Recipient address.
    pub recipient: String,
    /// Subject.
    pub subject: String,
    /// What caused it.
    pub kind: String,
    /// The encrypted bodies.
    pub body_ciphertext: Vec<u8>,
    /// Attempts before this one.
    pub attempts: i32,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
}

/// A mail's headers and fate, for operators: never its bodies.
#[derive(Debug, Clone)]
pub struct MailHeaders {
    /// Id.
    pub id: Uuid,
    /// Recipient address.
    pub recipient: String,
    /// Subject.
    pub subject: String,
    /// What caused it.
    pub kind: String,
    /// `queued`, `sent` or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When it was sent.
    pub sent_at: Option<DateTime<Utc>>,
}

/// Queue a mail (in the caller's transaction, if it passes one).
pub async fn insert(db: impl PgExecutor<'_>, mail: &NewMail<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into mail_outbox (id, recipient, subject, kind, body_ciphertext)
         values ($1, $2, $3, $4, $5)",
        mail.id,
        mail.recipient,
        mail.subject,
        mail.kind,
        mail.body_ciphertext,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Lock one due mail that no other transaction holds, oldest first.
pub async fn claim_due(conn: &mut PgConnection) -> Result<Option<QueuedMail>, sqlx::Error> {
    sqlx::query_as!(
        QueuedMail,
        r#"select id, recipient, subject, kind, body_ciphertext as "body_ciphertext!", attempts, created_at
           from mail_outbox
           where status = 'queued' and next_attempt_at <= now()
           order by next_attempt_at
           limit 1
           for update skip locked"#,
    )
    .fetch_optional(conn)
    .await
}

/// The claimed mail went out: erase its bodies.
pub async fn mark_sent(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update mail_outbox
         set status = 'sent', sent_at = now(), attempts = attempts + 1,
             body_ciphertext = null, last_error = null
         where id = $1",
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The claimed mail failed: try again at `next_attempt_at`.
pub async fn mark_retry(
    conn: &mut PgConnection,
    id: Uuid,
    error: &str,
    next_attempt_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update mail_outbox
         set attempts = attempts + 1, last_error = left($2, 500), next_attempt_at = $3
         where id = $1",
        id,
        error,
        next_attempt_at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The claimed mail cannot be sent (rejected for good, or too old): erase
/// its bodies.
pub async fn mark_failed(
    conn: &mut PgConnection,
    id: Uuid,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update mail_outbox
         set status = 'failed', attempts = attempts + 1, last_error = left($2, 500),
             body_ciphertext = null
         where id = $1",
        id,
        error,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The most recent mails, newest first: headers only.
pub async fn recent(pool: &PgPool, limit: i64) -> Result<Vec<MailHeaders>, sqlx::Error> {
    sqlx::query_as!(
        MailHeaders,
        "select id, recipient, subject, kind, status, attempts, last_error, created_at, sent_at
         from mail_outbox
         order by created_at desc, id
         limit $1",
        limit
    )
    .fetch_all(pool)
    .await
}

/// Queued mails whose bodies are not under the key with header `prefix`,
/// after `after`, locked (skipping rows the mail job holds): for rotation.
pub async fn lock_bodies_not_under(
    conn: &mut PgConnection,
    prefix: &[u8],
    after: Uuid,
    skip: &[Uuid],
    limit: i64,
) -> Result<Vec<(Uuid, Vec<u8>)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select id, body_ciphertext as "body!"
           from mail_outbox
           where body_ciphertext is not null
             and substring(body_ciphertext from 1 for length($1::bytea)) <> $1::bytea
             and id > $2 and id <> all($3)
           order by id
           limit $4
           for update skip locked"#,
        prefix,
        after,
        skip,
        limit,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.body)).collect())
}

/// Replace the bodies of a queued mail (rotation).
pub async fn update_body(
    conn: &mut PgConnection,
    id: Uuid,
    ciphertext: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update mail_outbox set body_ciphertext = $2 where id = $1 and body_ciphertext is not null",
        id,
        ciphertext
    )
    .execute(conn)
    .await?;
    Ok(())
}
