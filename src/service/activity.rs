//! What the whole service did over the last 24 hours, for the service
//! health and operator pages: refreshes by outcome in 10-minute buckets
//! and WeChat's latency percentiles per hour. Aggregates over every
//! tenant, never a tenant's rows, each bounded by its number of buckets.

use chrono::{DateTime, Duration, Utc};

use super::Actor;
use crate::db;
use crate::db::history::{LatencyHour, ServiceBucket};
use crate::error::ApiError;
use crate::state::AppState;

/// The width of one bucket of the refresh counts.
pub const STRIDE: Duration = Duration::minutes(10);

/// The service's last 24 hours.
#[derive(Debug)]
pub struct ServiceActivity {
    /// Where the window starts (buckets and hours are aligned on it).
    pub since: DateTime<Utc>,
    /// Attempts per [`STRIDE`] and outcome, oldest first.
    pub buckets: Vec<ServiceBucket>,
    /// WeChat's latency percentiles per hour, oldest first.
    pub latency: Vec<LatencyHour>,
}

/// The service's last 24 hours, for anyone who may see its health (every
/// signed-in person and API key: aggregates only).
pub async fn last_day(state: &AppState, actor: &Actor) -> Result<ServiceActivity, ApiError> {
    // Everyone who may see the service's health may see this; the actor
    // is taken so the rule has one place to change.
    let _ = actor;
    let since = Utc::now() - Duration::hours(24);
    let buckets_per_day = Duration::hours(24).num_seconds() / STRIDE.num_seconds();
    let (buckets, latency) = tokio::try_join!(
        db::history::service_buckets(
            &state.pool,
            since,
            f64::from(i32::try_from(STRIDE.num_seconds()).unwrap_or(600)),
            buckets_per_day * 4,
        ),
        db::history::service_latency(&state.pool, since),
    )?;
    Ok(ServiceActivity {
        since,
        buckets,
        latency,
    })
}
