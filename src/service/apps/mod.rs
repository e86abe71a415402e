//! Mini-programs: register (verified against WeChat), list with health,
//! show (with the secret's hint), edit, remove, refresh now, the refresh
//! log and reports of rejected tokens. Each use case is written once here,
//! called by the REST API and the web UI alike: it checks the actor's role
//! and, for an API key limited to some apps, that the app is one of them;
//! what it changes it audits with the actor's address.
//!
//! An app is named by its AppID as the request gave it: the role is checked
//! first, then the name (a malformed AppID names no app: 404).

mod history;
mod kept_tickets;
mod log;
mod manage;
mod refresh;
mod register;

pub use history::{
    AppHistory, MAX_VALIDITY_CHANGES, Span, history, last_day_per_app, show_history,
};
pub use kept_tickets::{KeptTicket, kept_tickets, switch_ticket};
pub use log::{LogFilter, LogPage, refresh_log};
pub use manage::{AppChanges, AppWithLog, Shown, edit, editable, remove, show, show_with_log};
pub use refresh::{Invalidated, invalidate, refresh_now, refused};
pub use register::{NewAppInput, Registered, app_limit, may_register, register};

use std::net::IpAddr;

use serde_json::Value;

use super::Actor;
use crate::auth::{Principal, TenantScope};
use crate::db;
use crate::db::apps::AppRow;
use crate::domain::{AppId, AuditAction, Role};
use crate::error::ApiError;
use crate::state::AppState;

/// A page of the organisation's apps, by AppID.
#[derive(Debug)]
pub struct AppList {
    /// The apps.
    pub apps: Vec<AppRow>,
    /// The AppID to continue after, when the page is full.
    pub next_after: Option<String>,
}

/// The organisation's apps with their health, by AppID, after `after`
/// (viewers and up; a key limited to some apps sees only those).
pub async fn list(
    state: &AppState,
    actor: &Actor,
    after: Option<&AppId>,
    limit: i64,
) -> Result<AppList, ApiError> {
    let scope = actor.require(Role::Viewer)?;
    let only = match &actor.principal {
        Principal::ApiKey(k) if k.limited => Some(k.app_ids.to_vec()),
        _ => None,
    };
    let apps = db::apps::list(
        &state.pool,
        scope.tenant_id,
        only.as_deref(),
        after.map(AppId::as_str),
        limit,
    )
    .await?;
    let next_after = (apps.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| apps.last().map(|a| a.appid.clone()))
        .flatten();
    Ok(AppList { apps, next_after })
}

/// The app `appid` of the actor's organisation, once the actor holds at
/// least `role`: 404 when there is none, 403 for a key limited to other apps.
async fn find(
    state: &AppState,
    actor: &Actor,
    role: Role,
    appid: &str,
) -> Result<(TenantScope, AppRow), ApiError> {
    let scope = actor.require(role)?;
    let app = find_in(state, actor, &scope, appid).await?;
    Ok((scope, app))
}

/// [`find`] for a scope already checked.
async fn find_in(
    state: &AppState,
    actor: &Actor,
    scope: &TenantScope,
    appid: &str,
) -> Result<AppRow, ApiError> {
    let appid = AppId::parse("appid", appid).map_err(|_| ApiError::NotFound("app"))?;
    let app = db::apps::get(&state.pool, scope.tenant_id, appid.as_str())
        .await?
        .ok_or(ApiError::NotFound("app"))?;
    if let Principal::ApiKey(k) = &actor.principal
        && !k.allows_app(app.id)
    {
        return Err(ApiError::Forbidden("this API key is limited to other apps"));
    }
    Ok(app)
}

/// The app as it is now (after a change).
async fn reload(state: &AppState, scope: &TenantScope, appid: &str) -> Result<AppRow, ApiError> {
    db::apps::get(&state.pool, scope.tenant_id, appid)
        .await?
        .ok_or(ApiError::NotFound("app"))
}

/// The audit event of `action` on the app `appid` by the actor of `scope`.
fn audit_event(
    scope: &TenantScope,
    client: Option<IpAddr>,
    action: AuditAction,
    appid: &str,
    detail: Value,
) -> db::audit::AuditEvent {
    db::audit::AuditEvent {
        tenant_id: Some(scope.tenant_id),
        actor_user_id: scope.user_id,
        actor_api_key_id: scope.api_key_id,
        target: Some(appid.to_string()),
        detail,
        client_ip: client.map(|ip| ip.to_string()),
        ..db::audit::AuditEvent::new(action)
    }
}

/// Record `action` on the app `appid` by the actor of `scope`.
async fn audit(
    state: &AppState,
    actor: &Actor,
    scope: &TenantScope,
    action: AuditAction,
    appid: &str,
    detail: Value,
) -> Result<(), ApiError> {
    let event = audit_event(scope, actor.client, action, appid, detail);
    db::audit::record(&state.pool, event).await?;
    Ok(())
}
