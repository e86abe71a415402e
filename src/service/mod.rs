//! Use cases, each written once and called by every adapter (the REST API,
//! the WeChat-compatible endpoints, the web UI).

pub mod health;
pub mod identity;
pub mod metrics;
pub mod operator;
pub mod token_read;

use std::net::IpAddr;

use crate::auth::{Principal, TenantScope};
use crate::domain::Role;
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
}
