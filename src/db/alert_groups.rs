//! Summaries of alert deliveries: the `app.failing` (or `app.recovered`)
//! deliveries of one channel that wait together are sent as one message.
//! The group is formed by the transaction that claimed one of them (which
//! also holds the channel's row, `alerts::claim_due`), gets one summary id
//! kept on every retry, and every delivery of it gets the same outcome.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::alerts::{AttemptResult, ClaimedDelivery};
use crate::domain::{AlertDeliveryId, AlertSummaryId, EventType};

/// The other deliveries that may join `d`'s summary: pending, never tried,
/// of the same channel and event type, in no summary yet (due or still
/// gathering), oldest first, at most `limit`; locked.
pub async fn gather(
    conn: &mut PgConnection,
    d: &ClaimedDelivery,
    limit: i64,
) -> Result<Vec<AlertDeliveryId>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select d.id as "id: AlertDeliveryId"
           from alert_deliveries d join alert_events e on e.id = d.event_id
           where d.channel_id = $1 and d.id <> $2 and e.event_type = $3
             and d.status = 'pending' and d.attempts = 0 and d.summary_id is null
           order by d.created_at, d.id
           limit $4
           for update of d skip locked"#,
        d.channel_id as _,
        d.id as _,
        d.event_type as _,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Give `ids` the summary id `summary_id`.
pub async fn form(
    conn: &mut PgConnection,
    summary_id: AlertSummaryId,
    ids: &[AlertDeliveryId],
) -> Result<(), sqlx::Error> {
    let ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.uuid()).collect();
    sqlx::query!(
        "update alert_deliveries set summary_id = $1 where id = any($2) and summary_id is null",
        summary_id as _,
        &ids,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// One app in a summary.
#[derive(Debug, Clone)]
pub struct SummaryItem {
    /// The delivery of this app's event.
    pub delivery_id: AlertDeliveryId,
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
}

/// The pending deliveries of summary `summary_id`, oldest event first;
/// locked (the same set on every retry).
pub async fn members(
    conn: &mut PgConnection,
    summary_id: AlertSummaryId,
) -> Result<Vec<SummaryItem>, sqlx::Error> {
    sqlx::query_as!(
        SummaryItem,
        r#"select d.id as "delivery_id: AlertDeliveryId", e.event_type as "event_type: EventType",
                  e.occurred_at, e.appid, e.app_name, e.errcode, e.errmsg
           from alert_deliveries d join alert_events e on e.id = d.event_id
           where d.summary_id = $1 and d.status = 'pending'
           order by e.occurred_at, d.id
           for update of d"#,
        summary_id as _,
    )
    .fetch_all(conn)
    .await
}

/// Store one attempt on every pending delivery of summary `summary_id`.
pub async fn finish(
    conn: &mut PgConnection,
    summary_id: AlertSummaryId,
    r: &AttemptResult<'_>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "update alert_deliveries
         set status = $2, attempts = attempts + 1, next_attempt_at = $3, last_attempt_at = now(),
             http_status = $4, latency_ms = $5, answer = $6, error = $7
         where summary_id = $1 and status = 'pending'",
        summary_id as _,
        r.status as _,
        r.next_attempt_at,
        r.http_status,
        r.latency_ms,
        r.answer,
        r.error,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
