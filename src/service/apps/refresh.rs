//! Asking for a new token: "refresh now" by a person or a server, and the
//! report of a token WeChat rejected (compare-and-refresh). Both go through
//! the engine's gate, like every other call to WeChat.

use chrono::Utc;
use serde_json::json;

use super::{Actor, audit, find, find_in, reload};
use crate::auth::Principal;
use crate::db::apps::AppRow;
use crate::domain::{AuditAction, FieldError, Role, Trigger};
use crate::error::ApiError;
use crate::refresh::engine::{AttemptOutcome, InvalidateOutcome};
use crate::refresh::gate::Refusal;
use crate::secret::AccessToken;
use crate::service::token_read;
use crate::state::AppState;

/// Longest token a report may carry.
const MAX_REPORTED_TOKEN: usize = 16 * 1024;

/// Refresh the app `appid` now (owners and admins), audited; the app as it
/// is afterwards and how the attempt went (a refusal of the gate is an
/// outcome here: the API answers it with 429, the app page with a message).
pub async fn refresh_now(
    state: &AppState,
    actor: &Actor,
    appid: &str,
) -> Result<(AppRow, AttemptOutcome), ApiError> {
    let (scope, app) = find(state, actor, Role::Admin, appid).await?;
    let outcome = state
        .engine
        .refresh_now(app.id, Trigger::Manual, Utc::now())
        .await
        .map_err(anyhow::Error::from)?;
    let detail = json!({ "outcome": outcome.name() });
    audit(
        state,
        actor,
        &scope,
        AuditAction::AppRefreshed,
        &app.appid,
        detail,
    )
    .await?;
    let app = reload(state, &scope, &app.appid).await?;
    Ok((app, outcome))
}

/// What a report of a rejected token caused.
#[derive(Debug)]
pub enum Invalidated {
    /// The reported token is no longer the current one: nothing was done.
    Stale,
    /// It was current: how the refresh went (never a refusal: that is an error).
    Refreshed(AttemptOutcome),
}

/// A token of the app `appid` was rejected by WeChat: refresh it, if it is
/// still the current one and the gate allows (the token's readers: any key
/// of the organisation, owners and admins). A refusal is audited (a key's
/// counted a minute at a time) and answered as [`refused`].
pub async fn invalidate(
    state: &AppState,
    actor: &Actor,
    appid: &str,
    reported: &AccessToken,
) -> Result<Invalidated, ApiError> {
    let scope = token_read::require_reader(&actor.principal)?;
    let app = find_in(state, actor, &scope, appid).await?;
    let reported = reported.expose_secret();
    if reported.is_empty() || reported.len() > MAX_REPORTED_TOKEN {
        return Err(FieldError::new(
            "access_token",
            "invalid_token",
            "send the token your WeChat call rejected",
        )
        .into());
    }
    let outcome = state
        .engine
        .invalidate(app.id, reported)
        .await
        .map_err(anyhow::Error::from)?;
    match outcome {
        InvalidateOutcome::Stale => Ok(Invalidated::Stale),
        InvalidateOutcome::Refreshed(AttemptOutcome::Refused(r)) => {
            // Refused reports are audited too: a key's, counted a minute at
            // a time (a looping client writes one row); a person's, each.
            match &actor.principal {
                Principal::ApiKey(k) => k.count_refused_report(),
                Principal::Session(_) => {
                    let detail = json!({ "reason": r.reason });
                    let action = AuditAction::TokenInvalidateRefused;
                    audit(state, actor, &scope, action, &app.appid, detail).await?;
                }
            }
            Err(refused(r))
        }
        InvalidateOutcome::Refreshed(o) => {
            let detail = json!({ "outcome": o.name() });
            let action = AuditAction::TokenInvalidated;
            audit(state, actor, &scope, action, &app.appid, detail).await?;
            Ok(Invalidated::Refreshed(o))
        }
    }
}

/// The answer to a call the gate refused: 429 with the rule as its code.
pub fn refused(r: Refusal) -> ApiError {
    ApiError::RateLimited {
        code: r.reason.as_str(),
        detail: r.reason.explain().into(),
        retry_after: r.retry_after.as_secs().max(1),
    }
}
