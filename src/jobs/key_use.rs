//! API keys' last-use times, gathered in memory by every request and written
//! every `TOKENVAULT_KEY_USE_FLUSH_SECONDS` (never a write per request),
//! and once more on shutdown.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::periodic::{First, every};
use crate::state::AppState;

/// The job's name in logs.
pub(super) const NAME: &str = "key last-use flush";

/// Flush until `stop` is cancelled, then a last time.
pub(super) async fn run(state: Arc<AppState>, stop: CancellationToken) {
    every(
        state.settings.intervals.key_use_flush(),
        First::AfterOnePeriod,
        &stop,
        || flush(&state),
    )
    .await;
    flush(&state).await;
}

async fn flush(state: &AppState) {
    if let Err(e) = state.auth.keys.flush_last_used(&state.pool).await {
        tracing::warn!(error = %e, "cannot record API key last use; will retry");
    }
}
