//! The state every request handler, use case and background job shares: one
//! per replica, built by `startup` and handed out as `web::Data<AppState>`.

use std::sync::Arc;

use sqlx::PgPool;

use crate::auth::AuthState;
use crate::config::Settings;
use crate::crypto::KeyRing;
use crate::refresh::engine::RefreshEngine;
use crate::stats::Stats;

/// Shared state of every request handler.
#[derive(Debug)]
pub struct AppState {
    /// The database pool.
    pub pool: PgPool,
    /// The settings the service started with.
    pub settings: Settings,
    /// Sessions, keys and throttles of this replica.
    pub auth: AuthState,
    /// The master keys that encrypt secrets at rest, checked against the database.
    pub crypto: Arc<KeyRing>,
    /// The refresh engine of this replica.
    pub engine: Arc<RefreshEngine>,
    /// Cached database figures (`/metrics`, service health) and the guards' metrics.
    pub stats: Stats,
}
