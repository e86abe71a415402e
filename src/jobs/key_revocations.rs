//! The key-revocation listener: evicts revoked keys from this replica's
//! key cache as any replica announces them, and clears the cache when
//! announcements may have been missed, so correctness never rests on it.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::listen::{Heard, follow};
use crate::auth::api_key::REVOCATION_CHANNEL;
use crate::domain::ApiKeyId;
use crate::state::AppState;

/// The job's name in logs.
pub(super) const NAME: &str = "key revocation listener";

/// Follow key revocations until `stop` is cancelled.
pub(super) async fn run(state: Arc<AppState>, stop: CancellationToken) {
    let keys = &state.auth.keys;
    follow(
        &state.pool,
        REVOCATION_CHANNEL,
        "API key revocations",
        &stop,
        |heard| match heard {
            Heard::Notified(payload) => match payload.parse::<ApiKeyId>() {
                Ok(id) => keys.evict(id),
                Err(_) => keys.clear(),
            },
            Heard::MayHaveMissed => keys.clear(),
        },
    )
    .await;
}
