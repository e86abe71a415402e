//! The JS-SDK tickets an app keeps, as its page shows them (state and
//! expiry, never the ticket), and turning one on or off.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Actor, audit, find};
use crate::db;
use crate::domain::{AuditAction, Role, TicketType};
use crate::error::ApiError;
use crate::state::AppState;
use crate::upstream::errcodes;

/// One ticket type of an app: whether it is kept and how it stands.
#[derive(Debug, Clone)]
pub struct KeptTicket {
    /// The type.
    pub ticket_type: TicketType,
    /// The app keeps it (a read or the owner turned it on once).
    pub kept: bool,
    /// The scheduler keeps it fresh.
    pub enabled: bool,
    /// When the ticket held was fetched.
    pub fetched_at: Option<DateTime<Utc>>,
    /// When it expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Failed fetches in a row.
    pub failure_streak: i32,
    /// The last failure's errcode.
    pub last_errcode: Option<i32>,
    /// The last failure's message.
    pub last_errmsg: Option<String>,
}

/// Every ticket type of the app `appid` (viewers and up): kept or not, its
/// expiry and failures: WeChat's `jsapi` and `wx_card`, or a WeCom app's
/// company (`jsapi`) and app (`agent_config`) tickets.
pub async fn kept_tickets(
    state: &AppState,
    actor: &Actor,
    appid: &str,
) -> Result<Vec<KeptTicket>, ApiError> {
    let (_, app) = find(state, actor, Role::Viewer, appid).await?;
    let kind = errcodes::kind_of(&app.appid);
    let rows = db::tickets::of_app(&state.pool, app.id).await?;
    Ok(TicketType::of_kind(kind)
        .iter()
        .copied()
        .map(|t| match rows.iter().find(|r| r.ticket_type == t) {
            Some(r) => KeptTicket {
                ticket_type: t,
                kept: true,
                enabled: r.enabled,
                fetched_at: r.fetched_at,
                expires_at: r.expires_at,
                failure_streak: r.failure_streak,
                last_errcode: r.last_errcode,
                last_errmsg: r.last_errmsg.clone(),
            },
            None => KeptTicket {
                ticket_type: t,
                kept: false,
                enabled: false,
                fetched_at: None,
                expires_at: None,
                failure_streak: 0,
                last_errcode: None,
                last_errmsg: None,
            },
        })
        .collect())
}

/// Turn the app's ticket of `ticket_type` on (the scheduler fetches it in
/// its next round and keeps it fresh) or off (owners and admins); audited.
pub async fn switch_ticket(
    state: &AppState,
    actor: &Actor,
    appid: &str,
    ticket_type: TicketType,
    on: bool,
) -> Result<(), ApiError> {
    let (scope, app) = find(state, actor, Role::Admin, appid).await?;
    if !ticket_type.fits(errcodes::kind_of(&app.appid)) {
        return Err(ApiError::BadRequest {
            code: "unknown_ticket_type",
            detail: format!("this app keeps no `{}` ticket", ticket_type.as_str()),
        });
    }
    db::tickets::switch(&state.pool, app.tenant_id, app.id, ticket_type, on).await?;
    state.engine.wake();
    audit(
        state,
        actor,
        &scope,
        AuditAction::AppTicketSwitched,
        &app.appid,
        json!({ "ticket": ticket_type.as_str(), "enabled": on }),
    )
    .await
}
