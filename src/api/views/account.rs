//! Bodies of the account API: one's own sessions.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::SessionId;
use crate::service::account::OwnSession;

/// One of the signed-in person's sessions.
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    /// Session id (not the cookie): what `DELETE /api/v1/account/sessions/{id}` takes.
    pub id: SessionId,
    /// Whether this is the session making the request.
    pub current: bool,
    /// When it started (sign-in).
    pub created_at: DateTime<Utc>,
    /// Its last request, to the minute.
    pub last_seen_at: DateTime<Utc>,
    /// The client address it signed in from.
    pub address: Option<String>,
    /// Browser and system its `User-Agent` named ("Chrome on Windows";
    /// `unknown` when it named none).
    pub browser: String,
}

impl From<OwnSession> for SessionView {
    fn from(s: OwnSession) -> Self {
        Self {
            id: s.id,
            current: s.current,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            address: s.address,
            browser: s.browser.text(),
        }
    }
}

/// The signed-in person's live sessions, the current one first.
#[derive(Serialize, ToSchema)]
pub struct SessionList {
    /// Sessions, the current one first, then the most recently used.
    pub items: Vec<SessionView>,
}
