//! Pruning: refresh-log entries older than `TOKENVAULT_REFRESH_LOG_DAYS`
//! (in batches, so no statement runs long) and the upstream budgets of days
//! before yesterday's quota day, and alert events as old as the refresh
//! log whose deliveries are finished, every `TOKENVAULT_LOG_PRUNE_SECONDS`.

use std::sync::Arc;

use chrono::{Days, Utc};
use tokio_util::sync::CancellationToken;

use super::periodic::{First, every};
use crate::db;
use crate::refresh::policy::quota_day;
use crate::state::AppState;

/// The job's name in logs.
pub(super) const NAME: &str = "refresh log pruning";

/// Refresh-log entries deleted per statement.
const BATCH: i64 = 5_000;

/// Prune until `stop` is cancelled.
pub(super) async fn run(state: Arc<AppState>, stop: CancellationToken) {
    every(
        state.settings.intervals.log_prune(),
        First::AfterOnePeriod,
        &stop,
        || prune(&state, &stop),
    )
    .await;
}

async fn prune(state: &AppState, stop: &CancellationToken) {
    let pool = &state.pool;
    let now = Utc::now();
    if let Err(e) = db::budget::prune(pool, quota_day(now) - Days::new(1)).await {
        tracing::warn!(error = %e, "cannot prune past upstream budgets; will retry");
    }
    let cutoff = now - chrono::Duration::days(i64::from(state.settings.refresh_log_days));
    match db::alerts::prune(pool, cutoff).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, "pruned old alert events and their deliveries"),
        Err(e) => tracing::warn!(error = %e, "cannot prune old alert events; will retry"),
    }
    // Batch after batch; a shutdown waits for one batch at most.
    while !stop.is_cancelled() {
        match db::tokens::prune_log(pool, cutoff, BATCH).await {
            Ok(0) => break,
            Ok(n) => tracing::info!(deleted = n, "pruned old refresh log entries"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot prune the refresh log; will retry");
                break;
            }
        }
    }
}
