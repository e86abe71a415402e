//! Browser sessions: a random id in an `HttpOnly`, `SameSite=Lax` cookie, the
//! session itself in Postgres, a CSRF token per session for every
//! state-changing request.

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::Method;
use actix_web::{HttpRequest, web};
use chrono::{Duration, Utc};
use uuid::Uuid;

use super::token;
use crate::db;
use crate::domain::Role;
use crate::error::ApiError;
use crate::startup::AppState;

/// Name of the session cookie.
pub const COOKIE: &str = "tv_session";
/// Header carrying the CSRF token on JSON calls.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Activity is written back at most this often per session.
const TOUCH_EVERY_SECONDS: i64 = 60;

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct SessionPrincipal {
    /// User id.
    pub user_id: Uuid,
    /// Tenant; `None` for operators.
    pub tenant_id: Option<Uuid>,
    /// Email.
    pub email: String,
    /// Role.
    pub role: Role,
    /// This session's CSRF token.
    pub csrf_token: String,
}

/// A session just created; its cookie must be set on the response.
pub struct StartedSession {
    /// The cookie to send.
    pub cookie: Cookie<'static>,
    /// The CSRF token for JSON calls.
    pub csrf_token: String,
}

/// Start a session for `user_id`, ending the one the request came with
/// (a new id on every sign-in: no session fixation).
pub async fn start(
    req: &HttpRequest,
    state: &AppState,
    user_id: Uuid,
    tenant_id: Option<Uuid>,
) -> Result<StartedSession, sqlx::Error> {
    if let Some(old) = req.cookie(COOKIE) {
        db::sessions::delete(&state.pool, &token::hash(old.value())).await?;
    }
    let id = token::random_token(32);
    let csrf_token = token::random_token(32);
    let settings = &state.settings;
    let ip = super::client_ip(req).map(|ip| ip.to_string());
    let agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(200).collect::<String>());
    db::sessions::insert(
        &state.pool,
        &db::sessions::NewSession {
            id_hash: &token::hash(&id),
            user_id,
            tenant_id,
            csrf_token: &csrf_token,
            expires_at: Utc::now() + Duration::hours(i64::from(settings.session_max_hours)),
            client_ip: ip.as_deref(),
            user_agent: agent.as_deref(),
        },
    )
    .await?;
    Ok(StartedSession {
        cookie: cookie(id, settings.secure_cookies, settings.session_max_hours),
        csrf_token,
    })
}

fn cookie(value: String, secure: bool, max_hours: u32) -> Cookie<'static> {
    Cookie::build(COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(CookieDuration::hours(i64::from(max_hours)))
        .finish()
}

/// A cookie that removes the session cookie.
pub fn removal_cookie(secure: bool) -> Cookie<'static> {
    let mut c = cookie(String::new(), secure, 0);
    c.make_removal();
    c
}

/// End the request's session, if any.
pub async fn end(req: &HttpRequest, state: &AppState) -> Result<(), sqlx::Error> {
    if let Some(c) = req.cookie(COOKIE) {
        db::sessions::delete(&state.pool, &token::hash(c.value())).await?;
    }
    Ok(())
}

/// The live session of this request, with the CSRF token checked for
/// state-changing methods.
pub(super) async fn from_request(
    req: &HttpRequest,
    state: &web::Data<AppState>,
) -> Result<Option<SessionPrincipal>, ApiError> {
    let Some(session) = lookup(req, state).await? else {
        return Ok(None);
    };
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        let sent = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !session.csrf_matches(sent) {
            return Err(ApiError::Csrf);
        }
    }
    Ok(Some(session))
}

/// The live session of this request without any CSRF check: for pages,
/// whose forms carry the token in a field the caller checks with
/// [`SessionPrincipal::csrf_matches`].
pub async fn lookup(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<SessionPrincipal>, ApiError> {
    let Some(c) = req.cookie(COOKIE) else {
        return Ok(None);
    };
    let id_hash = token::hash(c.value());
    let idle_since = Utc::now() - Duration::minutes(i64::from(state.settings.session_idle_minutes));
    let Some(row) = db::sessions::find_live(&state.pool, &id_hash, idle_since).await? else {
        return Ok(None);
    };
    let Ok(role) = row.role.parse::<Role>() else {
        return Ok(None);
    };
    if (Utc::now() - row.last_seen_at).num_seconds() > TOUCH_EVERY_SECONDS {
        db::sessions::touch(&state.pool, &id_hash).await?;
    }
    Ok(Some(SessionPrincipal {
        user_id: row.user_id,
        tenant_id: row.tenant_id,
        email: row.email,
        role,
        csrf_token: row.csrf_token,
    }))
}

impl SessionPrincipal {
    /// Whether `sent` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, sent: &str) -> bool {
        token::constant_time_eq(sent.as_bytes(), self.csrf_token.as_bytes())
    }
}
