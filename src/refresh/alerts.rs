//! The alert events of an attempt, written to the outbox in the attempt's
//! own transaction (so an event exists exactly when the health change
//! that causes it is stored): `app.failing` when the health turns failing,
//! `app.recovered` when a failing app works again, `app.token_expiring`
//! when the valid token ends within 10 minutes and refreshes fail,
//! `app.secret_promoted` when the secondary secret took over.

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgConnection;

use crate::db;
use crate::db::alerts::AppEvent;
use crate::db::tokens::ClaimedRow;
use crate::domain::{ErrorClass, EventType, Health};

/// A token ending within this is expiring.
const EXPIRING_WITHIN: TimeDelta = TimeDelta::minutes(10);

/// The health the last stored attempt left, as of that attempt.
fn health_before(row: &ClaimedRow) -> Health {
    let at = row.last_attempt_at.unwrap_or_else(Utc::now);
    let valid = row.expires_at.is_some_and(|e| e > at);
    Health::derive(row.enabled, valid, row.failure_streak, row.last_error_class)
}

/// The event a failed attempt causes, if any: `expiry` is the end of the
/// token still served (if one is).
pub fn after_failure(
    row: &ClaimedRow,
    class: ErrorClass,
    expiry: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<EventType> {
    let valid = expiry.is_some_and(|e| e > now);
    let after = Health::derive(
        true,
        valid,
        row.failure_streak.saturating_add(1),
        Some(class),
    );
    if after == Health::Failing {
        return (health_before(row) != Health::Failing).then_some(EventType::AppFailing);
    }
    let expiring = |at: DateTime<Utc>| expiry.is_some_and(|e| e > at && e - at <= EXPIRING_WITHIN);
    let was_expiring = row.failure_streak > 0 && row.last_attempt_at.is_some_and(expiring);
    (after == Health::Degraded && expiring(now) && !was_expiring)
        .then_some(EventType::AppTokenExpiring)
}

/// The event a successful attempt causes: `app.recovered` after failures
/// (the outbox sends it only to channels told of the failure).
pub fn after_success(row: &ClaimedRow) -> Option<EventType> {
    (row.failure_streak > 0).then_some(EventType::AppRecovered)
}

/// Write `event` about `row`'s app to the outbox in `tx`.
pub async fn record(
    tx: &mut PgConnection,
    row: &ClaimedRow,
    event: EventType,
    errcode: Option<i32>,
    errmsg: Option<&str>,
    config: &super::engine::EngineConfig,
) -> Result<(), sqlx::Error> {
    let queued = db::alerts::record_app_event(
        tx,
        &AppEvent {
            tenant_id: row.tenant_id,
            event_type: event,
            appid: &row.appid,
            errcode,
            errmsg,
            damping_seconds: config.alert_damping.as_secs_f64(),
            gather_seconds: config.alert_gather.as_secs_f64(),
        },
    )
    .await?;
    tracing::info!(appid = %row.appid, event = event.as_str(), deliveries = queued, "alert event recorded");
    Ok(())
}
