//! JS-SDK tickets (`app_tickets`): one row per app and ticket type, created
//! when the app first asks for that ticket. Fetching a ticket locks its row
//! for the call, as refreshing a token locks `token_state`: across replicas,
//! one ticket fetch per lifetime.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::{AppUuid, TenantId, TicketType};

/// A stored ticket row.
#[derive(Debug, Clone)]
pub struct TicketRow {
    /// The type.
    pub ticket_type: TicketType,
    /// The encrypted ticket.
    pub ticket_ciphertext: Option<Vec<u8>>,
    /// When it was fetched.
    pub fetched_at: Option<DateTime<Utc>>,
    /// When it expires (on our clock, from the first fetch).
    pub expires_at: Option<DateTime<Utc>>,
    /// Failures in a row.
    pub failure_streak: i32,
    /// When the last fetch was tried.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// Errcode of the last failure.
    pub last_errcode: Option<i32>,
    /// Message of the last failure.
    pub last_errmsg: Option<String>,
    /// Kept fresh by the scheduler (an owner can turn it off).
    pub enabled: bool,
    /// When the scheduler renews it next.
    pub next_due_at: DateTime<Utc>,
}

/// The app's ticket of `ticket_type`, if it keeps one.
pub async fn current(
    db: impl PgExecutor<'_>,
    app_id: AppUuid,
    ticket_type: TicketType,
) -> Result<Option<TicketRow>, sqlx::Error> {
    sqlx::query_as!(
        TicketRow,
        r#"select ticket_type as "ticket_type: TicketType", ticket_ciphertext, fetched_at,
                  expires_at, failure_streak, last_attempt_at, last_errcode, last_errmsg,
                  enabled, next_due_at
             from app_tickets
            where app_id = $1 and ticket_type = $2"#,
        app_id as AppUuid,
        ticket_type as TicketType,
    )
    .fetch_optional(db)
    .await
}

/// Every ticket the app keeps, in type order.
pub async fn of_app(
    db: impl PgExecutor<'_>,
    app_id: AppUuid,
) -> Result<Vec<TicketRow>, sqlx::Error> {
    sqlx::query_as!(
        TicketRow,
        r#"select ticket_type as "ticket_type: TicketType", ticket_ciphertext, fetched_at,
                  expires_at, failure_streak, last_attempt_at, last_errcode, last_errmsg,
                  enabled, next_due_at
             from app_tickets
            where app_id = $1
            order by ticket_type"#,
        app_id as AppUuid,
    )
    .fetch_all(db)
    .await
}

/// Turn the ticket on (create its row unless it exists), then wait at most
/// `lock_timeout_ms` for its row and lock it for this transaction.
pub async fn lock(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    app_id: AppUuid,
    ticket_type: TicketType,
    lock_timeout_ms: u32,
) -> Result<TicketRow, sqlx::Error> {
    sqlx::query!(
        "select set_config('lock_timeout', $1, true)",
        format!("{lock_timeout_ms}ms"),
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query!(
        "insert into app_tickets (app_id, tenant_id, ticket_type) values ($1, $2, $3)
         on conflict (app_id, ticket_type) do update set enabled = true
          where not app_tickets.enabled",
        app_id as AppUuid,
        tenant_id as TenantId,
        ticket_type as TicketType,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query_as!(
        TicketRow,
        r#"select ticket_type as "ticket_type: TicketType", ticket_ciphertext, fetched_at,
                  expires_at, failure_streak, last_attempt_at, last_errcode, last_errmsg,
                  enabled, next_due_at
             from app_tickets
            where app_id = $1 and ticket_type = $2
              for update"#,
        app_id as AppUuid,
        ticket_type as TicketType,
    )
    .fetch_one(conn)
    .await
}

/// A ticket row the scheduler claimed (locked until its transaction ends).
#[derive(Debug, Clone)]
pub struct ClaimedTicket {
    /// The organisation.
    pub tenant_id: TenantId,
    /// The app.
    pub app_id: AppUuid,
    /// Its AppID (the budget's key).
    pub appid: String,
    /// The ticket.
    pub ticket_type: TicketType,
}

/// Claim one due ticket of an enabled app, skipping rows other replicas
/// hold (the scheduler's claim, as `tokens::claim_due` for tokens).
pub async fn claim_due(conn: &mut PgConnection) -> Result<Option<ClaimedTicket>, sqlx::Error> {
    sqlx::query_as!(
        ClaimedTicket,
        r#"select t.tenant_id as "tenant_id: TenantId", t.app_id as "app_id: AppUuid", a.appid,
                  t.ticket_type as "ticket_type: TicketType"
             from app_tickets t join apps a on a.id = t.app_id
            where t.enabled and a.enabled and t.next_due_at <= now()
            order by t.next_due_at
            limit 1
              for update of t skip locked"#
    )
    .fetch_optional(conn)
    .await
}

/// The earliest due time of any ticket the scheduler keeps.
pub async fn next_due(db: impl PgExecutor<'_>) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar!(
        "select min(t.next_due_at) from app_tickets t join apps a on a.id = t.app_id
          where t.enabled and a.enabled"
    )
    .fetch_one(db)
    .await
}

/// Put off a ticket's next renewal until `at` (its app's budget is spent).
pub async fn reschedule(
    db: impl PgExecutor<'_>,
    app_id: AppUuid,
    ticket_type: TicketType,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update app_tickets set next_due_at = $3 where app_id = $1 and ticket_type = $2",
        app_id as AppUuid,
        ticket_type as TicketType,
        at,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Turn the app's ticket on (kept fresh by the scheduler from its next
/// round) or off (left alone by the scheduler; a read that must fetch it
/// turns it on again).
pub async fn switch(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
    app_id: AppUuid,
    ticket_type: TicketType,
    enabled: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into app_tickets (app_id, tenant_id, ticket_type, enabled) values ($1, $2, $3, $4)
         on conflict (app_id, ticket_type)
         do update set enabled = $4",
        app_id as AppUuid,
        tenant_id as TenantId,
        ticket_type as TicketType,
        enabled,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A fetched ticket to store.
#[derive(Debug)]
pub struct StoredTicket<'a> {
    /// The encrypted ticket.
    pub ciphertext: &'a [u8],
    /// When it was fetched.
    pub fetched_at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// The version of the token that fetched it.
    pub token_version: i64,
    /// When the scheduler renews it.
    pub next_due_at: DateTime<Utc>,
}

/// Store a fetched ticket and clear the failure.
pub async fn store(
    conn: &mut PgConnection,
    app_id: AppUuid,
    ticket_type: TicketType,
    t: &StoredTicket<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update app_tickets
            set ticket_ciphertext = $3, fetched_at = $4, expires_at = $5, token_version = $6,
                failure_streak = 0, last_attempt_at = $4, last_errcode = null, last_errmsg = null,
                next_due_at = $7
          where app_id = $1 and ticket_type = $2",
        app_id as AppUuid,
        ticket_type as TicketType,
        t.ciphertext,
        t.fetched_at,
        t.expires_at,
        t.token_version,
        t.next_due_at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Record a fetch that returned the ticket already stored (WeChat answers
/// the same ticket while it lives, always with the full `expires_in`): the
/// stored expiry, counted from the first fetch, is kept; the next renewal
/// is at `next_due_at`.
pub async fn store_same(
    conn: &mut PgConnection,
    app_id: AppUuid,
    ticket_type: TicketType,
    next_due_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update app_tickets
            set failure_streak = 0, last_attempt_at = now(), last_errcode = null, last_errmsg = null,
                next_due_at = $3
          where app_id = $1 and ticket_type = $2",
        app_id as AppUuid,
        ticket_type as TicketType,
        next_due_at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Store a failed fetch (any ticket still valid is kept), to be tried again
/// at `next_due_at`.
pub async fn store_failure(
    conn: &mut PgConnection,
    app_id: AppUuid,
    ticket_type: TicketType,
    errcode: Option<i32>,
    errmsg: &str,
    next_due_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update app_tickets
            set failure_streak = failure_streak + 1, last_attempt_at = now(),
                last_errcode = $3, last_errmsg = $4, next_due_at = $5
          where app_id = $1 and ticket_type = $2",
        app_id as AppUuid,
        ticket_type as TicketType,
        errcode,
        errmsg,
        next_due_at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The encrypted column of one ticket row, for key rotation.
#[derive(Debug, Clone)]
pub struct TicketCiphertext {
    /// `app_tickets.app_id`.
    pub app_id: AppUuid,
    /// `app_tickets.tenant_id`.
    pub tenant_id: TenantId,
    /// `app_tickets.ticket_type`.
    pub ticket_type: TicketType,
    /// `app_tickets.ticket_ciphertext`.
    pub ticket: Vec<u8>,
}

/// Lock and return the tickets not under the key whose ciphertext header is
/// `header`, of up to `limit` apps after `after` (in id order; every ticket of
/// an app in the same batch), skipping `exclude` and rows locked by others.
pub async fn lock_not_under(
    conn: &mut PgConnection,
    header: &[u8],
    after: Uuid,
    exclude: &[Uuid],
    limit: i64,
) -> Result<Vec<TicketCiphertext>, sqlx::Error> {
    sqlx::query_as!(
        TicketCiphertext,
        r#"select app_id as "app_id: AppUuid", tenant_id as "tenant_id: TenantId",
                  ticket_type as "ticket_type: TicketType", ticket_ciphertext as "ticket!"
             from app_tickets
            where app_id in (select distinct app_id from app_tickets
                              where app_id > $2 and app_id <> all($3)
                                and substring(ticket_ciphertext from 1 for length($1::bytea)) <> $1::bytea
                              order by app_id limit $4)
              and substring(ticket_ciphertext from 1 for length($1::bytea)) <> $1::bytea
            order by app_id, ticket_type
              for update skip locked"#,
        header,
        after,
        exclude,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Replace a ticket's ciphertext (the ticket itself is unchanged).
pub async fn update_ciphertext(
    conn: &mut PgConnection,
    app_id: AppUuid,
    ticket_type: TicketType,
    ciphertext: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update app_tickets set ticket_ciphertext = $3 where app_id = $1 and ticket_type = $2",
        app_id as AppUuid,
        ticket_type as TicketType,
        ciphertext,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Tickets not under the key whose ciphertext header is `header`.
pub async fn count_not_under(db: impl PgExecutor<'_>, header: &[u8]) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select count(*) as "n!" from app_tickets
            where substring(ticket_ciphertext from 1 for length($1::bytea)) <> $1::bytea"#,
        header,
    )
    .fetch_one(db)
    .await
}
