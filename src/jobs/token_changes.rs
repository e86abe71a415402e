//! The token-change listener: every stored token, new or edited app and
//! earlier due time is announced on [`CHANNEL`] (by the triggers in
//! `migrations/`, payload: the app id). It drops the cached copy and wakes
//! the refresh loop; all cached tokens go when notifications may have been
//! missed.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::listen::{Heard, follow};
use crate::state::AppState;

/// The job's name in logs.
pub(super) const NAME: &str = "token change listener";

/// Channel announcing token rows that changed or became due earlier.
pub const CHANNEL: &str = "tokenvault_tokens";

/// Follow token changes until `stop` is cancelled.
pub(super) async fn run(state: Arc<AppState>, stop: CancellationToken) {
    let engine = &state.engine;
    follow(&state.pool, CHANNEL, "token changes", &stop, |heard| {
        match heard {
            Heard::MayHaveMissed => engine.cache.forget(None),
            Heard::Notified(app_id) => engine.cache.forget(app_id.parse().ok()),
        }
        engine.wake();
    })
    .await;
}
