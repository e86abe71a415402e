//! Expired sessions (past their end, or idle longer than
//! `TOKENVAULT_SESSION_IDLE_MINUTES`) deleted every
//! `TOKENVAULT_SESSION_PRUNE_SECONDS`.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::periodic::{First, every};
use crate::db;
use crate::state::AppState;

/// The job's name in logs.
pub(super) const NAME: &str = "session pruning";

/// Prune until `stop` is cancelled.
pub(super) async fn run(state: Arc<AppState>, stop: CancellationToken) {
    every(
        state.settings.intervals.session_prune(),
        First::AfterOnePeriod,
        &stop,
        || prune(&state),
    )
    .await;
}

async fn prune(state: &AppState) {
    let idle_since = chrono::Utc::now()
        - chrono::Duration::minutes(i64::from(state.settings.session_idle_minutes));
    if let Err(e) = db::sessions::prune(&state.pool, idle_since).await {
        tracing::warn!(error = %e, "cannot prune expired sessions; will retry");
    }
}
