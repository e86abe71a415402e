//! The Prometheus exposition of `/metrics`: the engine's and the guards'
//! counters, kept in memory and always current, and the figures that need
//! the database (apps by health, tokens expiring soon, apps near their
//! budget), measured at most once per `TOKENVAULT_STATS_CACHE_SECONDS` by one
//! caller while concurrent ones wait for that measurement
//! ([`crate::stats::StatsCache`]). With `TOKENVAULT_METRICS_TOKEN` set, only
//! callers who send it get them.

use crate::db;
use crate::domain::health::{AppCounts, Health};
use crate::error::ApiError;
use crate::refresh::metrics::HealthLabels;
use crate::refresh::policy::{self, quota_day};
use crate::state::AppState;

/// Tokens expiring within this many seconds count as expiring soon.
const EXPIRING_SOON_SECONDS: f64 = 300.0;

/// Every health, so that a health no app has any more reads 0, not its last value.
const HEALTHS: [Health; 5] = [
    Health::Healthy,
    Health::Refreshing,
    Health::Degraded,
    Health::Failing,
    Health::Disabled,
];

/// The metrics in the `OpenMetrics` text format, for a caller who sent
/// `sent_token` as its bearer token (if any).
pub async fn exposition(state: &AppState, sent_token: Option<&str>) -> Result<String, ApiError> {
    if let Some(token) = &state.settings.metrics_token
        && !sent_token.is_some_and(|sent| token.matches(sent))
    {
        return Err(ApiError::Unauthenticated(
            "send the metrics token as 'Authorization: Bearer <token>' (TOKENVAULT_METRICS_TOKEN)",
        ));
    }
    let figures = state.stats.apps.get(|| measure(state)).await?;
    let m = &state.engine.metrics;
    for health in HEALTHS {
        m.apps_by_health
            .get_or_create(&HealthLabels {
                health: health.as_str().into(),
            })
            .set(0);
    }
    for (health, n) in &figures.by_health {
        m.apps_by_health
            .get_or_create(&HealthLabels {
                health: health.as_str().into(),
            })
            .inc_by(*n);
    }
    m.expiring_soon.set(figures.expiring_soon);
    m.apps_near_budget.set(figures.near_budget);
    let (depth, oldest) = db::alerts::outbox(&state.pool).await?;
    state.stats.alerts.outbox_depth.set(depth);
    state.stats.alerts.outbox_oldest_seconds.set(oldest);
    // Two registries, one exposition: the first one's end marker goes.
    let mut body = m.encode();
    if let Some(kept) = body.strip_suffix("# EOF\n").map(str::len) {
        body.truncate(kept);
    }
    prometheus_client::encoding::text::encode(&mut body, &state.stats.registry)
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("cannot encode the metrics")))?;
    Ok(body)
}

/// Measure the database figures of `/metrics`.
async fn measure(state: &AppState) -> Result<AppCounts, sqlx::Error> {
    let pool = &state.pool;
    let limits = &state.engine.config().limits;
    let near = limits.daily_calls.saturating_sub(limits.scheduler_reserve) * 4 / 5;
    let (groups, expiring_soon, near_budget) = tokio::try_join!(
        db::ops::health_totals(pool),
        db::ops::expiring_within(pool, EXPIRING_SOON_SECONDS),
        db::budget::count_at_least(
            pool,
            quota_day(chrono::Utc::now()),
            i32::try_from(near).unwrap_or(i32::MAX),
        ),
    )?;
    let by_health = groups
        .into_iter()
        .map(|g| {
            let health = policy::health(g.enabled, g.token_valid, g.failing, g.last_error_class);
            (health, g.apps)
        })
        .collect();
    Ok(AppCounts {
        by_health,
        expiring_soon,
        near_budget,
    })
}
