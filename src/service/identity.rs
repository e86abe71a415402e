//! Who is calling: an API key checked under the failed-key throttle, and
//! browser sessions started, found and ended. The HTTP adapters read the
//! credentials from the request (`crate::http::identity`) and call these.

use std::net::IpAddr;

use chrono::{Duration, Utc};
use secrecy::SecretString;

use crate::auth::KeyPrincipal;
use crate::auth::session::{self, SessionPrincipal, StartedSession};
use crate::db;
use crate::domain::credential as token;
use crate::domain::{Role, TenantId, UserId};
use crate::error::ApiError;
use crate::service::Visitor;
use crate::state::AppState;

/// Activity is written back at most this often per session.
const TOUCH_EVERY_SECONDS: i64 = 60;

/// Why an API key was not accepted.
#[derive(Debug)]
pub enum KeyRefusal {
    /// Malformed, unknown or revoked.
    Invalid,
    /// The client address failed too often: refused before any lookup;
    /// retry after this many seconds.
    Throttled(u64),
    /// The database could not be asked.
    Database(sqlx::Error),
}

impl From<KeyRefusal> for ApiError {
    fn from(refusal: KeyRefusal) -> Self {
        match refusal {
            KeyRefusal::Invalid => Self::Unauthenticated("the API key is not valid or was revoked"),
            KeyRefusal::Throttled(retry_after) => Self::RateLimited {
                code: "too_many_failed_key_attempts",
                detail: format!(
                    "too many requests with an invalid API key from this address: check the key and try again in {retry_after} seconds"
                ),
                retry_after,
            },
            KeyRefusal::Database(e) => e.into(),
        }
    }
}

/// Check an API key sent by `client`: the one rule for every endpoint that
/// takes keys. A recently verified key is admitted from memory; otherwise
/// an address that failed too often is refused before the key is looked
/// at, and every refusal counts against its address.
pub async fn verify_api_key(
    state: &AppState,
    client: Option<IpAddr>,
    key: &SecretString,
) -> Result<KeyPrincipal, KeyRefusal> {
    use secrecy::ExposeSecret as _;
    if let Some(principal) = state.auth.keys.verify_cached(key.expose_secret()) {
        return Ok(principal);
    }
    state
        .auth
        .key_failures
        .admit(client)
        .map_err(KeyRefusal::Throttled)?;
    match state.auth.keys.verify(&state.pool, key).await {
        Ok(Some(principal)) => Ok(principal),
        Ok(None) => {
            state.auth.key_failures.record_failure(client);
            Err(KeyRefusal::Invalid)
        }
        Err(e) => Err(KeyRefusal::Database(e)),
    }
}

/// Start a session for `user_id` from `visitor`, ending the session the
/// visitor came with (a new id on every sign-in, no session fixation). It
/// may only enrol when the person must have two-factor sign-in and has not
/// (however they came in: sign-in, sign-up, joining through an invite).
pub async fn start_session(
    state: &AppState,
    visitor: &Visitor,
    user_id: UserId,
    tenant_id: Option<TenantId>,
    role: Role,
) -> Result<StartedSession, ApiError> {
    let enrolment_only = super::two_factor::must_enrol(state, user_id, role, tenant_id).await?;
    if let Some(old) = &visitor.session_cookie {
        db::sessions::delete(&state.pool, &token::hash(old)).await?;
    }
    let id = token::random_token(32);
    let csrf_token = token::random_token(32);
    let settings = &state.settings;
    let ip = visitor.client.map(|ip| ip.to_string());
    let agent = visitor
        .user_agent
        .as_deref()
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
            enrolment_only,
        },
    )
    .await?;
    Ok(StartedSession {
        cookie: session::cookie(id, visitor.secure_cookies, settings.session_max_hours),
        csrf_token,
    })
}

/// End the session whose cookie value is `cookie`.
pub async fn end_session(state: &AppState, cookie: &str) -> Result<(), sqlx::Error> {
    db::sessions::delete(&state.pool, &token::hash(cookie)).await
}

/// The live session whose cookie value is `cookie`, without any CSRF
/// check (the caller checks the token where the request carries it).
pub async fn find_session(
    state: &AppState,
    cookie: &str,
) -> Result<Option<SessionPrincipal>, ApiError> {
    let id_hash = token::hash(cookie);
    let idle_since = Utc::now() - Duration::minutes(i64::from(state.settings.session_idle_minutes));
    let Some(row) = db::sessions::find_live(&state.pool, &id_hash, idle_since).await? else {
        return Ok(None);
    };
    if (Utc::now() - row.last_seen_at).num_seconds() > TOUCH_EVERY_SECONDS {
        db::sessions::touch(&state.pool, &id_hash).await?;
    }
    Ok(Some(SessionPrincipal {
        user_id: row.user_id,
        tenant_id: row.tenant_id,
        email: row.email,
        role: row.role,
        csrf_token: row.csrf_token,
        enrolment_only: row.totp_enrolment_only,
        email_verified: row.email_verified,
        time_zone: row.time_zone,
    }))
}
