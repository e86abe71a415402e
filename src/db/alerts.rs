//! Alert channels, the events written in the transactions that change an
//! app's health, and the outbox of deliveries (one row per event and
//! channel) that the delivery job claims with `FOR UPDATE SKIP LOCKED`.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};

use crate::domain::{
    AlertChannelId, AlertDeliveryId, AlertSummaryId, ChannelKind, DeliveryStatus, EventType,
    TenantId,
};

/// The notification channel that announces new deliveries to every
/// replica's delivery job (sent in the transaction that queues them).
pub const CHANNEL: &str = "tokenvault_alerts";

/// Announce new deliveries when the caller's transaction commits.
pub async fn notify(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query!("select pg_notify($1, '')", CHANNEL)
        .execute(conn)
        .await?;
    Ok(())
}

/// A channel as stored (its secret stays encrypted).
#[derive(Debug, Clone)]
pub struct ChannelRow {
    /// Channel id.
    pub id: AlertChannelId,
    /// Its organisation.
    pub tenant_id: TenantId,
    /// Where it sends.
    pub kind: ChannelKind,
    /// A name to recognise it by.
    pub name: String,
    /// The target URL with its credentials masked.
    pub url: String,
    /// Whether it signs its messages.
    pub has_secret: bool,
    /// Event type names it receives.
    pub events: Vec<String>,
    /// `AppIDs` it is limited to; empty: every app.
    pub appids: Vec<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Whether it may be sent alerts (a mail channel to an address that is
    /// no verified member's waits for its recipient's confirmation).
    pub confirmed: bool,
}

/// A channel to store.
pub struct NewChannel<'a> {
    /// Channel id.
    pub id: AlertChannelId,
    /// Its organisation.
    pub tenant_id: TenantId,
    /// Where it sends.
    pub kind: ChannelKind,
    /// Its name.
    pub name: &'a str,
    /// The target URL under the key ring.
    pub url_ciphertext: &'a [u8],
    /// The target URL with its credentials masked.
    pub url_display: &'a str,
    /// The signing secret under the key ring.
    pub secret_ciphertext: Option<&'a [u8]>,
    /// Event type names.
    pub events: &'a [String],
    /// `AppIDs`; empty: every app.
    pub appids: &'a [String],
}

/// Store a channel.
pub async fn insert_channel(
    conn: &mut PgConnection,
    c: &NewChannel<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into alert_channels (id, tenant_id, kind, name, url_ciphertext, url_display,
                                     secret_ciphertext, events, appids)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        c.id as _,
        c.tenant_id as _,
        c.kind as _,
        c.name,
        c.url_ciphertext,
        c.url_display,
        c.secret_ciphertext,
        c.events,
        c.appids,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The organisation's channels, oldest first.
pub async fn list_channels(
    pool: &PgPool,
    tenant_id: TenantId,
) -> Result<Vec<ChannelRow>, sqlx::Error> {
    sqlx::query_as!(
        ChannelRow,
        r#"select id as "id: AlertChannelId", tenant_id as "tenant_id: TenantId",
                  kind as "kind: ChannelKind", name, url_display as url,
                  secret_ciphertext is not null as "has_secret!", events, appids, created_at,
                  confirmed_at is not null as "confirmed!"
           from alert_channels where tenant_id = $1 order by created_at, id"#,
        tenant_id as _,
    )
    .fetch_all(pool)
    .await
}

/// One channel of the organisation.
pub async fn get_channel(
    ex: impl PgExecutor<'_>,
    tenant_id: TenantId,
    id: AlertChannelId,
) -> Result<Option<ChannelRow>, sqlx::Error> {
    sqlx::query_as!(
        ChannelRow,
        r#"select id as "id: AlertChannelId", tenant_id as "tenant_id: TenantId",
                  kind as "kind: ChannelKind", name, url_display as url,
                  secret_ciphertext is not null as "has_secret!", events, appids, created_at,
                  confirmed_at is not null as "confirmed!"
           from alert_channels where tenant_id = $1 and id = $2"#,
        tenant_id as _,
        id as _,
    )
    .fetch_optional(ex)
    .await
}

/// Delete a channel and its pending deliveries; whether it existed.
pub async fn delete_channel(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: AlertChannelId,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "delete from alert_channels where tenant_id = $1 and id = $2",
        tenant_id as _,
        id as _,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// An event about an app, as the refresh engine records it.
#[derive(Debug, Clone, Copy)]
pub struct AppEvent<'a> {
    /// The app's organisation.
    pub tenant_id: TenantId,
    /// What happened.
    pub event_type: EventType,
    /// The app's `AppID`.
    pub appid: &'a str,
    /// WeChat's errcode, if it answered one.
    pub errcode: Option<i32>,
    /// WeChat's message (or tokenvault's description of the failure).
    pub errmsg: Option<&'a str>,
    /// Failing/recovered pairs per app and channel: at most one per this many seconds.
    pub damping_seconds: f64,
    /// How long `app.failing` and `app.recovered` deliveries wait before
    /// they are due, so that many at once can be sent as one summary.
    pub gather_seconds: f64,
}

/// Record an event and one pending delivery for every channel of the
/// organisation that takes it, in the caller's transaction (the outbox).
/// Damping: a channel gets `app.failing` for an app only when it got none
/// for that app within the damping window, and `app.recovered` only when
/// the last failing/recovered message it got for that app was a failing one.
/// A damped event stays in `alert_events` without a delivery for that
/// channel: the channel's next message for the app counts it ([`folded`]).
/// Only confirmed channels get deliveries. Failing and recovered
/// deliveries are due after the gathering delay (`summary`).
/// Returns how many deliveries were queued.
pub async fn record_app_event(
    conn: &mut PgConnection,
    e: &AppEvent<'_>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        r#"with ev as (
             insert into alert_events (id, tenant_id, event_type, appid, app_name, errcode, errmsg)
             select gen_random_uuid(), $1, $2, $3,
                    (select name from apps where tenant_id = $1 and appid = $3), $4, $5
             returning id, tenant_id, event_type, appid
           )
           insert into alert_deliveries (id, event_id, channel_id, tenant_id, next_attempt_at)
           select gen_random_uuid(), ev.id, c.id, c.tenant_id,
                  case when ev.event_type in ('app.failing', 'app.recovered')
                       then now() + make_interval(secs => $7) else now() end
           from ev join alert_channels c on c.tenant_id = ev.tenant_id
           where ev.event_type = any(c.events) and c.confirmed_at is not null
             and (cardinality(c.appids) = 0 or ev.appid = any(c.appids))
             and (ev.event_type <> 'app.failing' or not exists (
                   select 1 from alert_deliveries d join alert_events e on e.id = d.event_id
                   where d.channel_id = c.id and e.appid = ev.appid and e.event_type = 'app.failing'
                     and d.created_at > now() - make_interval(secs => $6)))
             and (ev.event_type <> 'app.recovered' or 'app.failing' = (
                   select e.event_type from alert_deliveries d join alert_events e on e.id = d.event_id
                   where d.channel_id = c.id and e.appid = ev.appid
                     and e.event_type in ('app.failing', 'app.recovered')
                   order by d.created_at desc limit 1))"#,
        e.tenant_id as _,
        e.event_type as _,
        e.appid,
        e.errcode,
        e.errmsg,
        e.damping_seconds,
        e.gather_seconds,
    )
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() > 0 {
        notify(conn).await?;
    }
    Ok(done.rows_affected())
}

/// Queue a `test` event for one channel; the delivery's id. The caller
/// sends it at once (`claim_one`); the delivery job takes it only if that
/// did not happen within 10 seconds.
pub async fn record_test(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    channel_id: AlertChannelId,
) -> Result<AlertDeliveryId, sqlx::Error> {
    let id = AlertDeliveryId::new();
    sqlx::query!(
        r#"with ev as (
             insert into alert_events (id, tenant_id, event_type) values (gen_random_uuid(), $1, 'test')
             returning id
           )
           insert into alert_deliveries (id, event_id, channel_id, tenant_id, next_attempt_at)
           select $3, ev.id, $2, $1, now() + interval '10 seconds' from ev"#,
        tenant_id as _,
        channel_id as _,
        id as _,
    )
    .execute(conn)
    .await?;
    Ok(id)
}

/// A delivery claimed for sending, with its event and channel.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    /// Delivery id (stable across retries).
    pub id: AlertDeliveryId,
    /// Attempts made before this one.
    pub attempts: i32,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// The organisation.
    pub tenant_id: TenantId,
    /// The organisation's name.
    pub organization: String,
    /// Channel id.
    pub channel_id: AlertChannelId,
    /// Where it goes.
    pub kind: ChannelKind,
    /// The encrypted target URL.
    pub url_ciphertext: Vec<u8>,
    /// The encrypted signing secret.
    pub secret_ciphertext: Option<Vec<u8>>,
    /// What happened.
    pub event_type: EventType,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// The app's `AppID`.
    pub appid: Option<String>,
    /// The app's name.
    pub app_name: Option<String>,
    /// WeChat's errcode.
    pub errcode: Option<i32>,
    /// WeChat's message.
    pub errmsg: Option<String>,
    /// The summary it is part of, once its group was formed.
    pub summary_id: Option<AlertSummaryId>,
}

/// Lock the oldest due pending delivery no other transaction holds, and
/// its channel (so that one replica at a time sends to a channel: the
/// summaries of `crate::db::alert_groups` are formed by one).
pub async fn claim_due(conn: &mut PgConnection) -> Result<Option<ClaimedDelivery>, sqlx::Error> {
    sqlx::query_as!(
        ClaimedDelivery,
        r#"select d.id as "id: AlertDeliveryId", d.attempts, d.created_at,
                  d.tenant_id as "tenant_id: TenantId", t.name as organization,
                  c.id as "channel_id: AlertChannelId", c.kind as "kind: ChannelKind", c.url_ciphertext,
                  c.secret_ciphertext, e.event_type as "event_type: EventType", e.occurred_at,
                  e.appid, e.app_name, e.errcode, e.errmsg, d.summary_id as "summary_id: AlertSummaryId"
           from alert_deliveries d
           join alert_events e on e.id = d.event_id
           join alert_channels c on c.id = d.channel_id
           join tenants t on t.id = d.tenant_id
           where d.status = 'pending' and d.next_attempt_at <= now()
           order by d.next_attempt_at
           limit 1
           for update of d skip locked for no key update of c skip locked"#,
    )
    .fetch_optional(conn)
    .await
}

/// Lock one delivery of the organisation not tried yet (a test sent now),
/// waiting for a replica that holds it.
pub async fn claim_one(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    id: AlertDeliveryId,
) -> Result<Option<ClaimedDelivery>, sqlx::Error> {
    sqlx::query_as!(
        ClaimedDelivery,
        r#"select d.id as "id: AlertDeliveryId", d.attempts, d.created_at,
                  d.tenant_id as "tenant_id: TenantId", t.name as organization,
                  c.id as "channel_id: AlertChannelId", c.kind as "kind: ChannelKind", c.url_ciphertext,
                  c.secret_ciphertext, e.event_type as "event_type: EventType", e.occurred_at,
                  e.appid, e.app_name, e.errcode, e.errmsg, d.summary_id as "summary_id: AlertSummaryId"
           from alert_deliveries d
           join alert_events e on e.id = d.event_id
           join alert_channels c on c.id = d.channel_id
           join tenants t on t.id = d.tenant_id
           where d.id = $1 and d.tenant_id = $2 and d.status = 'pending' and d.attempts = 0
           for update of d"#,
        id as _,
        tenant_id as _,
    )
    .fetch_optional(conn)
    .await
}

/// The failing/recovered changes of delivery `id`'s app that damping kept
/// from its channel since the channel's previous failing/recovered message
/// for that app (and before this delivery's event): how many failing, how
/// many recovered, and since when (the previous message, else the first
/// change held back). Only events the channel takes and that happened after
/// it was created count.
pub async fn folded(
    conn: &mut PgConnection,
    id: AlertDeliveryId,
) -> Result<(i64, i64, Option<DateTime<Utc>>), sqlx::Error> {
    let row = sqlx::query!(
        r#"with this as (
             select e.occurred_at, e.appid, d.channel_id
             from alert_deliveries d join alert_events e on e.id = d.event_id where d.id = $1
           ), last as (
             select max(e.occurred_at) as at
             from this, alert_deliveries d join alert_events e on e.id = d.event_id
             where d.channel_id = this.channel_id and e.appid = this.appid
               and e.event_type in ('app.failing', 'app.recovered')
               and e.occurred_at < this.occurred_at
           )
           select count(e.id) filter (where e.event_type = 'app.failing') as "failing!",
                  count(e.id) filter (where e.event_type = 'app.recovered') as "recovered!",
                  coalesce(min(last.at), min(e.occurred_at)) as since
           from this cross join last
           join alert_channels c on c.id = this.channel_id
           join alert_events e on e.tenant_id = c.tenant_id and e.appid = this.appid
           where e.event_type in ('app.failing', 'app.recovered')
             and e.event_type = any(c.events)
             and (cardinality(c.appids) = 0 or e.appid = any(c.appids))
             and e.occurred_at >= c.created_at
             and e.occurred_at < this.occurred_at
             and e.occurred_at > coalesce(last.at, '-infinity')
             and not exists (select 1 from alert_deliveries f
                             where f.event_id = e.id and f.channel_id = c.id)"#,
        id as _,
    )
    .fetch_one(conn)
    .await?;
    Ok((row.failing, row.recovered, row.since))
}

/// How one attempt went, to store.
#[derive(Debug, Clone)]
pub struct AttemptResult<'a> {
    /// The status after it.
    pub status: DeliveryStatus,
    /// When to try again (pending only).
    pub next_attempt_at: DateTime<Utc>,
    /// The target's HTTP status, if it answered.
    pub http_status: Option<i32>,
    /// How long it took.
    pub latency_ms: i32,
    /// The start of the target's answer.
    pub answer: Option<&'a str>,
    /// Why it failed.
    pub error: Option<&'a str>,
}

/// Store an attempt on a delivery this transaction holds.
pub async fn finish(
    conn: &mut PgConnection,
    id: AlertDeliveryId,
    r: &AttemptResult<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update alert_deliveries
         set status = $2, attempts = attempts + 1, next_attempt_at = $3, last_attempt_at = now(),
             http_status = $4, latency_ms = $5, answer = $6, error = $7
         where id = $1",
        id as _,
        r.status as _,
        r.next_attempt_at,
        r.http_status,
        r.latency_ms,
        r.answer,
        r.error,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// One line of a channel's delivery log.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    /// Delivery id.
    pub id: AlertDeliveryId,
    /// What happened.
    pub event_type: EventType,
    /// The app's `AppID`.
    pub appid: Option<String>,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts so far.
    pub attempts: i32,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// The last attempt.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The next attempt (pending only).
    pub next_attempt_at: DateTime<Utc>,
    /// The target's last HTTP status.
    pub http_status: Option<i32>,
    /// The last attempt's latency.
    pub latency_ms: Option<i32>,
    /// The start of the target's last answer.
    pub answer: Option<String>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// The summary it was sent in, if it was.
    pub summary_id: Option<AlertSummaryId>,
}

/// A channel's deliveries, newest first.
pub async fn list_deliveries(
    ex: impl PgExecutor<'_>,
    channel_id: AlertChannelId,
    limit: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as!(
        DeliveryRow,
        r#"select d.id as "id: AlertDeliveryId", e.event_type as "event_type: EventType", e.appid,
                  d.status as "status: DeliveryStatus", d.attempts, d.created_at, d.last_attempt_at,
                  d.next_attempt_at, d.http_status, d.latency_ms, d.answer, d.error, d.summary_id as "summary_id: AlertSummaryId"
           from alert_deliveries d join alert_events e on e.id = d.event_id
           where d.channel_id = $1
           order by d.created_at desc, d.id
           limit $2"#,
        channel_id as _,
        limit,
    )
    .fetch_all(ex)
    .await
}

/// One delivery of the organisation.
pub async fn get_delivery(
    ex: impl PgExecutor<'_>,
    tenant_id: TenantId,
    id: AlertDeliveryId,
) -> Result<Option<DeliveryRow>, sqlx::Error> {
    sqlx::query_as!(
        DeliveryRow,
        r#"select d.id as "id: AlertDeliveryId", e.event_type as "event_type: EventType", e.appid,
                  d.status as "status: DeliveryStatus", d.attempts, d.created_at, d.last_attempt_at,
                  d.next_attempt_at, d.http_status, d.latency_ms, d.answer, d.error, d.summary_id as "summary_id: AlertSummaryId"
           from alert_deliveries d join alert_events e on e.id = d.event_id
           where d.id = $1 and d.tenant_id = $2"#,
        id as _,
        tenant_id as _,
    )
    .fetch_optional(ex)
    .await
}

/// The outbox: pending deliveries and the age in seconds of the oldest.
pub async fn outbox(pool: &PgPool) -> Result<(i64, f64), sqlx::Error> {
    let row = sqlx::query!(
        r#"select count(*) as "depth!",
                  coalesce(extract(epoch from now() - min(created_at))::float8, 0) as "oldest!"
           from alert_deliveries where status = 'pending'"#
    )
    .fetch_one(pool)
    .await?;
    Ok((row.depth, row.oldest))
}

/// Delete events (and their deliveries) older than `before` whose
/// deliveries are all finished; how many events.
pub async fn prune(pool: &PgPool, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "delete from alert_events e where e.occurred_at < $1
           and not exists (select 1 from alert_deliveries d where d.event_id = e.id and d.status = 'pending')",
        before,
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Addresses and languages of the organisation's verified, active owners
/// and admins: whom a `members` mail channel mails.
pub async fn mail_members(
    ex: impl PgExecutor<'_>,
    tenant_id: TenantId,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select email, language from users
           where tenant_id = $1 and role in ('owner', 'admin')
             and email_verified_at is not null and disabled_at is null
           order by created_at, id"#,
        tenant_id as _,
    )
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(|r| (r.email, r.language)).collect())
}

/// The language of the organisation's member with address `email`, if
/// one has it.
pub async fn mail_language(
    ex: impl PgExecutor<'_>,
    tenant_id: TenantId,
    email: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "select language from users where tenant_id = $1 and lower(email) = lower($2)",
        tenant_id as _,
        email,
    )
    .fetch_optional(ex)
    .await
}
