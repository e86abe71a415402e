//! Browser sessions: a random id in an `HttpOnly`, `SameSite=Lax` cookie, the
//! session itself in Postgres, a CSRF token per session for every
//! state-changing request.

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};

use crate::domain::credential as token;
use crate::domain::{Role, TenantId, UserId};

/// Name of the session cookie.
pub const COOKIE: &str = "tv_session";
/// Header carrying the CSRF token on JSON calls.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct SessionPrincipal {
    /// User id.
    pub user_id: UserId,
    /// Tenant; `None` for operators.
    pub tenant_id: Option<TenantId>,
    /// Email.
    pub email: String,
    /// Role.
    pub role: Role,
    /// This session's CSRF token.
    pub csrf_token: String,
    /// Whether this session may only enrol in two-factor sign-in (and sign
    /// out): its person must have it and does not yet.
    pub enrolment_only: bool,
    /// Whether the person's address is verified (unverified people see a
    /// banner on every page).
    pub email_verified: bool,
    /// The time zone the person chose (none: the browser's): pages show
    /// times in it.
    pub time_zone: Option<String>,
}

/// A session just created; its cookie must be set on the response.
pub struct StartedSession {
    /// The cookie to send.
    pub cookie: Cookie<'static>,
    /// The CSRF token for JSON calls.
    pub csrf_token: String,
}

/// The session cookie carrying `value`.
pub fn cookie(value: String, secure: bool, max_hours: u32) -> Cookie<'static> {
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

impl SessionPrincipal {
    /// Whether `sent` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, sent: &str) -> bool {
        token::constant_time_eq(sent.as_bytes(), self.csrf_token.as_bytes())
    }
}
