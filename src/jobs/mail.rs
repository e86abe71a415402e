//! The mail job: sends the outbox's due mails (`crate::mail::drain`) every
//! `TOKENVAULT_MAIL_SEND_SECONDS`.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::periodic::{First, every};
use crate::mail::{self, Transport};
use crate::state::AppState;

/// The job's name in logs.
pub(super) const NAME: &str = "mail";

/// Send mail until `stop` is cancelled.
pub(super) async fn run(state: Arc<AppState>, stop: CancellationToken) {
    let transport = match Transport::from_settings(&state.settings) {
        Ok(transport) => transport,
        Err(e) => {
            tracing::error!(error = %e, "cannot set up mail sending; mails stay queued");
            stop.cancelled().await;
            return;
        }
    };
    tracing::info!("mail is sent {}", transport.describe(&state.settings));
    every(
        state.settings.intervals.mail_send(),
        First::Now,
        &stop,
        || mail::drain(&state, &transport, &stop),
    )
    .await;
}
