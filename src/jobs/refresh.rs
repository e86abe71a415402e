//! The refresh loop of this replica's engine ([`RefreshEngine::run`]): it
//! claims due tokens and refreshes them; on cancellation it claims nothing
//! more and returns once its in-flight refreshes are stored.
//!
//! [`RefreshEngine::run`]: crate::refresh::engine::RefreshEngine::run

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// The job's name in logs.
pub(super) const NAME: &str = "refresh engine";

/// Run the refresh loop until `stop` is cancelled.
pub(super) async fn run(state: Arc<AppState>, stop: CancellationToken) {
    Arc::clone(&state.engine).run(stop).await;
}
