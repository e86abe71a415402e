//! `GET /metrics` (Prometheus), and the caches that keep it and the
//! service health from costing database work per request.
//!
//! Figures that need the database (apps by health, tokens expiring soon,
//! the service health) are measured at most once per
//! `TOKENVAULT_STATS_CACHE_SECONDS` by one request, while concurrent ones
//! wait for that measurement instead of starting their own ([`StatsCache`]).
//! Counters kept in memory (refreshes, token reads, the guards' counters)
//! are always current. With `TOKENVAULT_METRICS_TOKEN` set, `/metrics`
//! answers only `Authorization: Bearer <token>`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::api::service_health::ServiceHealth;
use crate::auth::AuthState;
use crate::error::ApiError;
use crate::refresh::metrics::HealthLabels;
use crate::refresh::policy;
use crate::startup::AppState;
use crate::upstream::ErrorClass;

/// A value measured at most once per `ttl`; concurrent callers of a stale
/// value share one measurement (single flight).
pub struct StatsCache<T> {
    ttl: Duration,
    slot: tokio::sync::Mutex<Option<(Instant, Arc<T>)>>,
    refreshes: Counter,
}

impl<T> StatsCache<T> {
    /// A cache whose measurements are counted in `refreshes`.
    pub fn new(ttl: Duration, refreshes: Counter) -> Self {
        Self {
            ttl,
            slot: tokio::sync::Mutex::new(None),
            refreshes,
        }
    }

    /// The value, measured by `measure` if the cached one is older than
    /// the TTL. A failed measurement is not cached.
    pub async fn get<E, F, Fut>(&self, measure: F) -> Result<Arc<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        // Held across the measurement: whoever comes meanwhile waits for it.
        let mut slot = self.slot.lock().await;
        if let Some((at, value)) = slot.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(Arc::clone(value));
        }
        self.refreshes.inc();
        let value = Arc::new(measure().await?);
        *slot = Some((Instant::now(), Arc::clone(&value)));
        Ok(value)
    }
}

/// Labels of the cache refresh counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: String,
}

/// The figures of `/metrics` that come from the database.
#[derive(Debug)]
pub struct AppStats {
    by_health: Vec<(policy::Health, i64)>,
    expiring_soon: i64,
    near_budget: i64,
}

/// The stats caches and the guards' metrics of this replica.
pub struct Stats {
    registry: Registry,
    /// The database figures of `/metrics`.
    pub apps: StatsCache<AppStats>,
    /// The service health (with host names; stripped per caller).
    pub health: StatsCache<ServiceHealth>,
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stats")
    }
}

impl Stats {
    /// Caches refreshed at most once per `ttl`, and a registry of the
    /// counters that guard the shared resources (`auth`'s).
    pub fn new(ttl: Duration, auth: &AuthState) -> Self {
        let mut registry = Registry::with_prefix("tokenvault");
        let refreshes = Family::<CacheLabels, Counter>::default();
        registry.register(
            "stats_refreshes",
            "Measurements of the database figures behind /metrics and the service health, by cache",
            refreshes.clone(),
        );
        registry.register(
            "api_key_lookups",
            "API keys looked up in the database (cache misses)",
            auth.keys.lookups.clone(),
        );
        registry.register(
            "api_key_refusals_remembered",
            "Unknown or revoked API keys refused from memory, without a lookup",
            auth.keys.refused.hits.clone(),
        );
        registry.register(
            "key_auth_throttled",
            "Requests refused because their address sent too many invalid API keys",
            auth.key_failures.refused.clone(),
        );
        registry.register(
            "password_hashes_in_flight",
            "Password hashes and checks running now",
            auth.passwords.in_flight.clone(),
        );
        registry.register(
            "password_hashes_in_flight_max",
            "The most password hashes and checks that ever ran at once",
            auth.passwords.in_flight_max.clone(),
        );
        registry.register(
            "password_hash_busy",
            "Requests answered 503 busy because every password hasher was taken",
            auth.passwords.busy.clone(),
        );
        let counter = |name: &str| {
            refreshes
                .get_or_create(&CacheLabels {
                    cache: name.to_string(),
                })
                .clone()
        };
        Self {
            apps: StatsCache::new(ttl, counter("metrics")),
            health: StatsCache::new(ttl, counter("service_health")),
            registry,
        }
    }
}

/// Measure the database figures of `/metrics`.
async fn measure_apps(state: &AppState) -> Result<AppStats, sqlx::Error> {
    let rows: Vec<(bool, bool, i32, Option<String>, i64)> = sqlx::query_as(
        "select a.enabled, coalesce(s.expires_at > now(), false), least(s.failure_streak, 1), s.last_error_class, count(*)
           from apps a join token_state s on s.app_id = a.id group by 1, 2, 3, 4",
    )
    .fetch_all(&state.pool)
    .await?;
    let by_health = rows
        .into_iter()
        .map(|(enabled, valid, streak, class, n)| {
            let class = match class.as_deref() {
                Some("configuration") => Some(ErrorClass::Configuration),
                Some("bug") => Some(ErrorClass::Bug),
                Some("quota") => Some(ErrorClass::Quota),
                Some(_) => Some(ErrorClass::Transient),
                None => None,
            };
            (policy::health(enabled, valid, streak, class), n)
        })
        .collect();
    let expiring_soon: i64 = sqlx::query_scalar(
        "select count(*) from token_state s join apps a on a.id = s.app_id
          where a.enabled and s.expires_at between now() and now() + interval '5 minutes'",
    )
    .fetch_one(&state.pool)
    .await?;
    let limits = &state.engine.config().limits;
    let near = limits.daily_calls.saturating_sub(limits.scheduler_reserve) * 4 / 5;
    let near_budget = crate::db::budget::count_at_least(
        &state.pool,
        crate::refresh::policy::quota_day(chrono::Utc::now()),
        i32::try_from(near).unwrap_or(i32::MAX),
    )
    .await?;
    Ok(AppStats {
        by_health,
        expiring_soon,
        near_budget,
    })
}

/// Whether the request may read `/metrics`.
fn authorized(req: &HttpRequest, state: &AppState) -> bool {
    let Some(token) = &state.settings.metrics_token else {
        return true;
    };
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|sent| token.matches(sent.trim()))
}

/// GET /metrics: Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    security((), ("metrics_token" = [])),
    responses(
        (status = 200, description = "Prometheus metrics (OpenMetrics text); database figures at most `TOKENVAULT_STATS_CACHE_SECONDS` old", body = String, content_type = "application/openmetrics-text"),
        (status = 401, description = "`TOKENVAULT_METRICS_TOKEN` is set and the request did not send it as `Authorization: Bearer` (`unauthenticated`)", body = crate::api::openapi::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !authorized(&req, &state) {
        return Err(ApiError::Unauthenticated(
            "send the metrics token as 'Authorization: Bearer <token>' (TOKENVAULT_METRICS_TOKEN)",
        ));
    }
    let stats = state.stats.apps.get(|| measure_apps(&state)).await?;
    let m = &state.engine.metrics;
    for h in ["healthy", "refreshing", "degraded", "failing", "disabled"] {
        m.apps_by_health
            .get_or_create(&HealthLabels { health: h.into() })
            .set(0);
    }
    for (h, n) in &stats.by_health {
        m.apps_by_health
            .get_or_create(&HealthLabels {
                health: h.as_str().into(),
            })
            .inc_by(*n);
    }
    m.expiring_soon.set(stats.expiring_soon);
    m.apps_near_budget.set(stats.near_budget);
    // Two registries, one exposition: the first one's end marker goes.
    let mut body = m.encode();
    if let Some(kept) = body.strip_suffix("# EOF\n").map(str::len) {
        body.truncate(kept);
    }
    if prometheus_client::encoding::text::encode(&mut body, &state.stats.registry).is_err() {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "cannot encode the metrics"
        )));
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_readers_of_a_stale_value_share_one_measurement() {
        let refreshes = Counter::default();
        let cache = Arc::new(StatsCache::<u64>::new(
            Duration::from_secs(60),
            refreshes.clone(),
        ));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let cache = Arc::clone(&cache);
                tokio::spawn(async move {
                    cache
                        .get(|| async {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok::<_, ()>(7)
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(*t.await.unwrap().unwrap(), 7);
        }
        assert_eq!(refreshes.get(), 1);
        // A failed measurement is not kept.
        let failing = StatsCache::<u64>::new(Duration::from_secs(60), Counter::default());
        assert!(
            failing
                .get(|| async { Err::<u64, _>("down") })
                .await
                .is_err()
        );
        assert_eq!(*failing.get(|| async { Ok::<_, ()>(1) }).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_value_older_than_the_ttl_is_measured_again() {
        let refreshes = Counter::default();
        let cache = StatsCache::<u64>::new(Duration::from_millis(30), refreshes.clone());
        assert_eq!(*cache.get(|| async { Ok::<_, ()>(1) }).await.unwrap(), 1);
        assert_eq!(*cache.get(|| async { Ok::<_, ()>(2) }).await.unwrap(), 1);
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(*cache.get(|| async { Ok::<_, ()>(3) }).await.unwrap(), 3);
        assert_eq!(refreshes.get(), 2);
    }
}
