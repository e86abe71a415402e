//! What keeps mail alert channels from mailing strangers: whether an
//! address is a verified member's, the one-use confirmation link of a
//! channel to any other address, and the counts behind the limits on
//! confirmation mails and on "send test".

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

use crate::domain::{AlertChannelId, TenantId};

/// Whether `email` is the verified address of an active member of the
/// organisation.
pub async fn is_verified_member(
    ex: impl PgExecutor<'_>,
    tenant_id: TenantId,
    email: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select exists (select 1 from users
                          where tenant_id = $1 and lower(email) = lower($2)
                            and email_verified_at is not null and disabled_at is null) as "member!""#,
        tenant_id as _,
        email,
    )
    .fetch_one(ex)
    .await
}

/// Confirmation mails the organisation queued since `since` (the audit
/// log keeps them when their channels are gone).
pub async fn mailed_since(
    ex: impl PgExecutor<'_>,
    tenant_id: TenantId,
    since: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select count(*) as "n!" from audit_log
           where tenant_id = $1 and action = 'alert_channel.created'
             and detail->>'confirmation' = 'mailed' and created_at > $2"#,
        tenant_id as _,
        since,
    )
    .fetch_one(ex)
    .await
}

/// Leave a new channel unconfirmed until the link whose SHA-256 is
/// `token_hash` is used (before `expires_at`).
pub async fn await_confirmation(
    conn: &mut PgConnection,
    id: AlertChannelId,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update alert_channels
         set confirmed_at = null, confirm_token_hash = $2, confirm_expires_at = $3
         where id = $1",
        id as _,
        token_hash,
        expires_at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A channel its recipient just confirmed.
#[derive(Debug)]
pub struct Confirmed {
    /// The channel.
    pub id: AlertChannelId,
    /// Its organisation.
    pub tenant_id: TenantId,
    /// Its name.
    pub name: String,
    /// The address that confirmed.
    pub address: String,
}

/// Confirm the channel of the unexpired link whose SHA-256 is
/// `token_hash`, spending the link (one use).
pub async fn confirm(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> Result<Option<Confirmed>, sqlx::Error> {
    sqlx::query_as!(
        Confirmed,
        r#"update alert_channels
           set confirmed_at = now(), confirm_token_hash = null, confirm_expires_at = null
           where confirm_token_hash = $1 and confirm_expires_at > now() and confirmed_at is null
           returning id as "id: AlertChannelId", tenant_id as "tenant_id: TenantId", name,
                     url_display as address"#,
        token_hash,
    )
    .fetch_optional(conn)
    .await
}

/// Serialise the tests of one organisation until the caller's transaction
/// ends, so that counting them and queuing one is one step.
pub async fn lock_tests(conn: &mut PgConnection, tenant_id: TenantId) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "select pg_advisory_xact_lock(hashtextextended('alert-tests:' || $1::text, 0))",
        tenant_id as _,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Tests queued since `since`: for the channel, for the organisation, and
/// the time of the oldest of each (when a place frees up).
pub async fn tests_since(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    channel_id: AlertChannelId,
    since: DateTime<Utc>,
) -> Result<TestCounts, sqlx::Error> {
    sqlx::query_as!(
        TestCounts,
        r#"select count(*) filter (where d.channel_id = $2) as "channel!",
                  count(*) as "organisation!",
                  min(d.created_at) filter (where d.channel_id = $2) as channel_oldest,
                  min(d.created_at) as organisation_oldest
           from alert_deliveries d join alert_events e on e.id = d.event_id
           where d.tenant_id = $1 and e.event_type = 'test' and d.created_at > $3"#,
        tenant_id as _,
        channel_id as _,
        since,
    )
    .fetch_one(conn)
    .await
}

/// Recent tests of a channel and of its organisation.
#[derive(Debug)]
pub struct TestCounts {
    /// Of the channel.
    pub channel: i64,
    /// Of the organisation.
    pub organisation: i64,
    /// When the channel's oldest counted test was queued.
    pub channel_oldest: Option<DateTime<Utc>>,
    /// When the organisation's oldest counted test was queued.
    pub organisation_oldest: Option<DateTime<Utc>>,
}

/// Put the organisation's mail channels to `email` back to awaiting a
/// confirmation (their recipient is no member any more): nothing is sent
/// to them until the channel is created again. No link is mailed; each
/// row's pending hash is derived from `secret` (random, never stored) and
/// the row id, so no link can match it. How many channels were paused.
pub async fn unconfirm_address(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    email: &str,
    secret: &[u8],
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "update alert_channels
         set confirmed_at = null,
             confirm_token_hash = sha256(convert_to(id::text, 'UTF8') || $3::bytea),
             confirm_expires_at = now()
         where tenant_id = $1 and kind = 'email' and lower(url_display) = lower($2)
           and confirmed_at is not null",
        tenant_id as _,
        email,
        secret,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
