//! The heartbeat: this replica's row in `replicas`, written at start and
//! then every `TOKENVAULT_HEARTBEAT_SECONDS`, is what the service health
//! counts as an alive replica.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::periodic::{First, every};
use crate::db;
use crate::state::AppState;

/// The job's name in logs.
pub(super) const NAME: &str = "heartbeat";

/// Beat until `stop` is cancelled; the first beat at once, so a replica
/// that just started is not counted as missing.
pub(super) async fn run(state: Arc<AppState>, stop: CancellationToken) {
    let host = crate::startup::hostname();
    let mut beats: u64 = 0;
    every(state.settings.intervals.heartbeat(), First::Now, &stop, || {
        beats += 1;
        let first = beats == 1;
        let (state, host) = (&state, host.as_str());
        async move {
            let replica = state.engine.replica_id();
            if let Err(e) = db::ops::heartbeat(&state.pool, replica, host, env!("CARGO_PKG_VERSION")).await {
                if first {
                    tracing::warn!(error = %e, "first replica heartbeat failed; the next one retries it");
                } else {
                    tracing::debug!(error = %e, "replica heartbeat failed");
                }
            }
        }
    })
    .await;
}
