//! Alert delivery: drains the outbox (`service::alerts::deliver`), one
//! delivery at a time, whenever an event is announced on [`CHANNEL`] (by
//! the transaction that wrote it) and every `TOKENVAULT_ALERT_POLL_SECONDS`
//! (retries fall due without a notification). Several replicas drain it
//! together: each claims with `FOR UPDATE SKIP LOCKED`.

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::listen::follow;
use crate::db::alerts::CHANNEL;
use crate::service::alerts::deliver;
use crate::state::AppState;

/// The job's name in logs.
pub(super) const NAME: &str = "alert delivery";

/// Deliver until `stop` is cancelled (a delivery under way finishes).
pub(super) async fn run(state: Arc<AppState>, stop: CancellationToken) {
    let wake = Notify::new();
    let listen = follow(&state.pool, CHANNEL, "alert deliveries", &stop, |_| {
        wake.notify_one();
    });
    tokio::join!(listen, drain(&state, &wake, &stop));
}

async fn drain(state: &AppState, wake: &Notify, stop: &CancellationToken) {
    let poll = state.settings.alerts.poll();
    while !stop.is_cancelled() {
        match deliver::deliver_due(state).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %crate::report::error_chain(&e), "cannot deliver from the alert outbox; will retry");
            }
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = wake.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
    }
}
