//! Who is calling: browser sessions (cookie + CSRF token) and API keys
//! (`Authorization: Bearer`), password hashing and the throttles. Handlers
//! take a [`Principal`] (extracted from the request in `crate::http`) and
//! state in one line which role they need.

pub mod api_key;

pub mod password;
pub mod session;
pub mod throttle;

use std::sync::Arc;

pub use crate::domain::client::{ThrottleKey, TrustedProxies};
use crate::domain::{ApiKeyId, Role, TenantId, UserId};
use crate::error::ApiError;
pub use api_key::{KeyPrincipal, KeyVerifier};
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
    pub tenant_id: TenantId,
    /// The acting user, for session callers.
    pub user_id: Option<UserId>,
    /// The acting key, for key callers.
    pub api_key_id: Option<ApiKeyId>,
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
