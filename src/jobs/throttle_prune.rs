//! The in-memory throttles (sign-in, failed keys) and the refused-key cache
//! forget what is over every `TOKENVAULT_THROTTLE_PRUNE_SECONDS`, so their
//! memory stays bounded.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::periodic::{First, every};
use crate::state::AppState;

/// The job's name in logs.
pub(super) const NAME: &str = "throttle pruning";

/// Prune until `stop` is cancelled.
pub(super) async fn run(state: Arc<AppState>, stop: CancellationToken) {
    every(
        state.settings.intervals.throttle_prune(),
        First::AfterOnePeriod,
        &stop,
        || {
            let auth = &state.auth;
            auth.throttle.prune();
            auth.key_failures.prune();
            auth.keys.refused.prune();
            async {}
        },
    )
    .await;
}
