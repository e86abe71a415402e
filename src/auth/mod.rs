//! Who is calling: browser sessions (cookie + CSRF token) and API keys
//! (`Authorization: Bearer`). Handlers take a [`Principal`] and state in one
//! line which role they need.

pub mod api_key;
pub mod client;
pub mod password;
pub mod session;
pub mod throttle;
pub mod token;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use secrecy::SecretString;
use uuid::Uuid;

use crate::domain::Role;
use crate::error::ApiError;
use crate::startup::AppState;
pub use api_key::{KeyPrincipal, KeyVerifier};
pub use client::{ThrottleKey, TrustedProxies};
pub use session::SessionPrincipal;
pub use throttle::{KeyAuthThrottle, LoginThrottle};

/// Per-replica authentication state.
#[derive(Debug)]
pub struct AuthState {
    /// Verified-key cache.
    pub keys: Arc<KeyVerifier>,
    /// Sign-in throttle.
    pub throttle: LoginThrottle,
    /// Failed API key authentications per client address.
    pub key_failures: KeyAuthThrottle,
    /// Password hashing, a few at a time.
    pub passwords: password::PasswordHasher,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A person signed in through the browser or the JSON API.
    Session(SessionPrincipal),
    /// A tenant server with an API key.
    ApiKey(KeyPrincipal),
}

/// The tenant a request acts in, after its role was checked.
#[derive(Debug, Clone, Copy)]
pub struct TenantScope {
    /// The tenant.
    pub tenant_id: Uuid,
    /// The acting user, for session callers.
    pub user_id: Option<Uuid>,
    /// The acting key, for key callers.
    pub api_key_id: Option<Uuid>,
    /// The caller's effective role.
    pub role: Role,
}

impl Principal {
    /// The caller's effective role: a read-only key acts as a viewer, any
    /// other key as an admin of its tenant's apps.
    pub fn role(&self) -> Role {
        match self {
            Self::Session(s) => s.role,
            Self::ApiKey(k) if k.read_only => Role::Viewer,
            Self::ApiKey(_) => Role::Admin,
        }
    }

    /// Require at least `role` inside a tenant.
    pub fn require(&self, role: Role) -> Result<TenantScope, ApiError> {
        let (tenant_id, user_id, api_key_id) = match self {
            Self::Session(s) => match s.tenant_id {
                Some(t) => (t, Some(s.user_id), None),
                None => {
                    return Err(ApiError::Forbidden(
                        "operators see every tenant's health but do not act inside a tenant",
                    ));
                }
            },
            Self::ApiKey(k) => (k.tenant_id, None, Some(k.key_id)),
        };
        if !self.role().at_least(role) {
            return Err(ApiError::Forbidden(match (self, role) {
                (Self::ApiKey(_), _) => "this API key is read-only",
                (_, Role::Owner) => "only an owner of the organisation may do this",
                _ => "your role does not allow this; ask an owner or admin",
            }));
        }
        Ok(TenantScope {
            tenant_id,
            user_id,
            api_key_id,
            role: self.role(),
        })
    }

    /// Require a signed-in person (not an API key).
    pub fn require_session(&self) -> Result<&SessionPrincipal, ApiError> {
        match self {
            Self::Session(s) => Ok(s),
            Self::ApiKey(_) => Err(ApiError::Forbidden(
                "this needs a signed-in user, not an API key",
            )),
        }
    }

    /// Require an operator of the service.
    pub fn require_operator(&self) -> Result<&SessionPrincipal, ApiError> {
        match self {
            Self::Session(s) if s.role == Role::Operator => Ok(s),
            _ => Err(ApiError::Forbidden(
                "only operators of the service may see this",
            )),
        }
    }
}

/// The client's address: the TCP peer, or, when the peer is one of
/// `TOKENVAULT_TRUSTED_PROXIES`, the address it forwarded the request for
/// (see [`client`]). The one answer for the audit log, sessions, throttles
/// and the request log.
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Some(peer.to_canonical());
    };
    let trusted = &state.settings.trusted_proxies;
    if trusted.is_empty() {
        return Some(peer.to_canonical());
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .map(actix_web::http::header::HeaderValue::as_bytes)
        .collect::<Vec<_>>();
    Some(trusted.client(peer, forwarded.into_iter()))
}

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

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await })
    }
}

fn state(req: &HttpRequest) -> Result<&web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("application state missing")))
}

async fn authenticate(req: &HttpRequest) -> Result<Principal, ApiError> {
    let state = state(req)?;
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        // A credential that is present but wrong is refused, never ignored.
        let key = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError::Unauthenticated(
                "send the API key as 'Authorization: Bearer <key>'",
            ))?;
        let key = SecretString::from(key);
        return verify_api_key(state, client_ip(req), &key)
            .await
            .map(Principal::ApiKey)
            .map_err(ApiError::from);
    }
    match session::from_request(req, state).await? {
        Some(s) => Ok(Principal::Session(s)),
        None => Err(ApiError::Unauthenticated(
            "sign in, or send an API key as 'Authorization: Bearer <key>'",
        )),
    }
}
