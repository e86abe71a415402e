//! Use cases, each written once and called by every adapter (the REST API,
//! the WeChat-compatible endpoints, the web UI).

pub mod account;
pub mod accounts;
pub mod activity;
pub mod alerts;
pub mod apps;
pub mod audit;
pub mod health;
pub mod identity;
pub mod invites;
pub mod keys;
pub mod members;
pub mod metrics;
pub mod operator;
pub mod passwords;
pub mod tenants;
pub mod tickets;
pub mod time_zone;
pub mod token_read;
pub mod two_factor;
pub mod verification;

use std::net::IpAddr;

use crate::auth::{Principal, SessionPrincipal, TenantScope};
use crate::db::audit::AuditEvent;
use crate::domain::{AuditAction, Role};
use crate::error::ApiError;

/// Who acts in a use case: the principal the request authenticated as (a
/// signed-in person or an API key) and the client's address. Adapters build
/// it (`crate::http::identity`); use cases never see the request.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Who.
    pub principal: Principal,
    /// From where (for the audit log and the throttles).
    pub client: Option<IpAddr>,
}

impl Actor {
    /// Require at least `role` inside the actor's organisation.
    pub fn require(&self, role: Role) -> Result<TenantScope, ApiError> {
        self.principal.require(role)
    }

    /// Require a signed-in person (not an API key).
    pub fn require_session(&self) -> Result<&SessionPrincipal, ApiError> {
        self.principal.require_session()
    }

    /// Require a signed-in person with at least `role` inside their
    /// organisation: the rule of every people and key use case.
    pub fn require_person(&self, role: Role) -> Result<TenantScope, ApiError> {
        self.require_session()?;
        self.require(role)
    }

    /// An audit event of `action` by this actor: its organisation, its
    /// user or key, its address.
    pub fn audit(&self, action: AuditAction) -> AuditEvent {
        let (tenant_id, user_id, key_id) = match &self.principal {
            Principal::Session(s) => (s.tenant_id, Some(s.user_id), None),
            Principal::ApiKey(k) => (Some(k.tenant_id), None, Some(k.key_id)),
        };
        AuditEvent {
            tenant_id,
            actor_user_id: user_id,
            actor_api_key_id: key_id,
            client_ip: self.client.map(|ip| ip.to_string()),
            ..AuditEvent::new(action)
        }
    }
}

/// Someone not signed in (yet): signing up, signing in, joining through an
/// invite. Adapters build it from the request (`crate::http::identity`).
#[derive(Clone, Default)]
pub struct Visitor {
    /// From where (for the audit log, the throttles and the new session).
    pub client: Option<IpAddr>,
    /// The browser's `User-Agent`, recorded with a new session.
    pub user_agent: Option<String>,
    /// The session cookie the request came with, if any: ended when a new
    /// session starts (a new id on every sign-in, no session fixation).
    pub session_cookie: Option<String>,
    /// Whether a session cookie set for this visitor is `Secure` (the
    /// request came over HTTPS, or the override is set).
    pub secure_cookies: bool,
    /// The language the visitor reads (the pages' choice; the API's body
    /// may name one): a new account's mails are in it.
    pub language: crate::mail::Language,
}

/// The session cookie is a credential: `Debug` says only whether there is one.
impl std::fmt::Debug for Visitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Visitor")
            .field("client", &self.client)
            .field("user_agent", &self.user_agent)
            .field(
                "session_cookie",
                &self.session_cookie.as_ref().map(|_| crate::secret::MASK),
            )
            .field("secure_cookies", &self.secure_cookies)
            .field("language", &self.language)
            .finish()
    }
}

impl Visitor {
    /// An audit event of `action` from this visitor's address.
    pub fn audit(&self, action: AuditAction) -> AuditEvent {
        AuditEvent {
            client_ip: self.client.map(|ip| ip.to_string()),
            ..AuditEvent::new(action)
        }
    }
}
