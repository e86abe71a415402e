//! The account page's use cases: who the person is (name, email and
//! whether it is verified), their own sessions (created, last seen,
//! address, browser) and ending one of them or all the others. Only one's
//! own sessions: someone else's id is no session (404).

use chrono::{DateTime, Duration, Utc};

use super::Actor;
use crate::db;
use crate::db::sessions::OwnSessionRow;
use crate::domain::browser::BrowserLabel;
use crate::domain::credential as token;
use crate::domain::{AuditAction, SessionId};
use crate::error::ApiError;
use crate::state::AppState;

/// Who the signed-in person is.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Email.
    pub email: String,
    /// The name they go by, if they gave one.
    pub display_name: Option<String>,
    /// When the address was verified (none: not yet).
    pub email_verified_at: Option<DateTime<Utc>>,
    /// The language of their mails.
    pub language: String,
}

/// The signed-in person's profile.
pub async fn profile(state: &AppState, actor: &Actor) -> Result<Profile, ApiError> {
    let me = actor.require_session()?;
    let row = db::accounts::profile(&state.pool, me.user_id)
        .await?
        .ok_or(ApiError::Unauthenticated("the account no longer exists"))?;
    Ok(Profile {
        email: row.email,
        display_name: row.display_name,
        email_verified_at: row.email_verified_at,
        language: row.language,
    })
}

/// One of the person's sessions.
#[derive(Debug, Clone)]
pub struct OwnSession {
    /// Public id (what `DELETE /api/v1/account/sessions/{id}` takes).
    pub id: SessionId,
    /// The session the list was asked from.
    pub current: bool,
    /// Started.
    pub created_at: DateTime<Utc>,
    /// Last request seen, to the minute.
    pub last_seen_at: DateTime<Utc>,
    /// Client address when it started.
    pub address: Option<String>,
    /// The browser and system its `User-Agent` named.
    pub browser: BrowserLabel,
}

impl From<OwnSessionRow> for OwnSession {
    fn from(row: OwnSessionRow) -> Self {
        Self {
            id: row.id,
            current: row.current,
            created_at: row.created_at,
            last_seen_at: row.last_seen_at,
            address: row.client_ip,
            browser: BrowserLabel::of(row.user_agent.as_deref()),
        }
    }
}

/// The signed-in person's live sessions, the one of `session_cookie` (the
/// request's) marked current and first.
pub async fn list(
    state: &AppState,
    actor: &Actor,
    session_cookie: Option<&str>,
) -> Result<Vec<OwnSession>, ApiError> {
    let me = actor.require_session()?;
    let current = session_cookie.map(token::hash);
    let idle_since = Utc::now() - Duration::minutes(i64::from(state.settings.session_idle_minutes));
    let rows = db::sessions::list_for_user(
        &state.pool,
        me.user_id,
        current.as_ref().map(<[u8; 32]>::as_slice),
        idle_since,
    )
    .await?;
    Ok(rows.into_iter().map(OwnSession::from).collect())
}

/// End the signed-in person's session `id` (it may be the current one:
/// that signs them out). Someone else's session is not found.
pub async fn end(state: &AppState, actor: &Actor, id: SessionId) -> Result<(), ApiError> {
    let me = actor.require_session()?;
    let mut tx = state.pool.begin().await?;
    let ended = db::sessions::delete_own(&mut *tx, me.user_id, id)
        .await?
        .map(OwnSession::from)
        .ok_or(ApiError::NotFound("session"))?;
    let event = actor
        .audit(AuditAction::SessionEnded)
        .target(me.email.as_str())
        .detail(serde_json::json!({
            "session": ended.id,
            "started": ended.created_at,
            "address": ended.address,
            "browser": ended.browser.text(),
        }));
    db::audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(())
}

/// End every session of the signed-in person but the one of
/// `session_cookie` (the request's); returns how many ended.
pub async fn end_others(
    state: &AppState,
    actor: &Actor,
    session_cookie: Option<&str>,
) -> Result<u64, ApiError> {
    let me = actor.require_session()?;
    let keep = session_cookie.map(token::hash);
    let mut tx = state.pool.begin().await?;
    let ended = db::sessions::delete_for_user(
        &mut *tx,
        me.user_id,
        keep.as_ref().map(<[u8; 32]>::as_slice),
    )
    .await?;
    if ended > 0 {
        let event = actor
            .audit(AuditAction::SessionEnded)
            .target(me.email.as_str())
            .detail(serde_json::json!({ "sessions_ended": ended }));
        db::audit::record(&mut *tx, event).await?;
    }
    tx.commit().await?;
    Ok(ended)
}

/// Set the language of the signed-in person's mails.
pub async fn set_language(
    state: &AppState,
    actor: &Actor,
    language: crate::mail::Language,
) -> Result<(), ApiError> {
    let me = actor.require_session()?;
    db::accounts::set_language(&state.pool, me.user_id, language.tag()).await?;
    Ok(())
}
