//! Token reads and refused invalidation reports, counted per key in memory,
//! written to the audit log as one entry per key every
//! `TOKENVAULT_AUDIT_FLUSH_SECONDS` (the audit log stays small however often
//! a client reads), and once more on shutdown.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::periodic::{First, every};
use crate::state::AppState;

/// The job's name in logs.
pub(super) const NAME: &str = "token read audit flush";

/// Flush until `stop` is cancelled, then a last time.
pub(super) async fn run(state: Arc<AppState>, stop: CancellationToken) {
    every(
        state.settings.intervals.audit_flush(),
        First::AfterOnePeriod,
        &stop,
        || flush(&state),
    )
    .await;
    flush(&state).await;
}

async fn flush(state: &AppState) {
    let period = state.settings.intervals.audit_flush_seconds;
    if let Err(e) = state.auth.keys.flush_token_reads(&state.pool, period).await {
        tracing::warn!(error = %e, "cannot record token reads in the audit log");
    }
}
