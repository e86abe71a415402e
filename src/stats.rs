//! Figures that cost database work — the counts behind `/metrics` and the
//! service health — measured at most once per `TOKENVAULT_STATS_CACHE_SECONDS`
//! by one request while concurrent ones wait for that measurement
//! ([`StatsCache`]), and the registry of the counters that guard shared
//! resources.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::auth::AuthState;
use crate::domain::health::{AppCounts, ServiceHealth};

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

/// The stats caches and the guards' metrics of this replica.
pub struct Stats {
    /// The guards' counters, encoded after the engine's in `/metrics`.
    pub registry: Registry,
    /// The database figures of `/metrics`.
    pub apps: StatsCache<AppCounts>,
    /// The service health (with host names; stripped per caller).
    pub health: StatsCache<ServiceHealth>,
    /// Alert deliveries and the outbox.
    pub alerts: AlertMetrics,
}

/// Labels of the alert delivery counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// The channel kind.
    pub kind: String,
    /// `delivered`, `failed` (retried later) or `dead`.
    pub outcome: String,
}

/// The alert figures of `/metrics`.
#[derive(Debug, Default)]
pub struct AlertMetrics {
    /// Delivery attempts by channel kind and outcome.
    pub deliveries: Family<DeliveryLabels, Counter>,
    /// Deliveries not delivered yet.
    pub outbox_depth: Gauge,
    /// Age in seconds of the oldest delivery not delivered yet.
    pub outbox_oldest_seconds: Gauge<f64, AtomicU64>,
}

impl AlertMetrics {
    /// Count one delivery attempt.
    pub fn count_delivery(&self, kind: &str, outcome: &str) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                kind: kind.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "alert_deliveries",
            "Alert delivery attempts by channel kind and outcome",
            self.deliveries.clone(),
        );
        registry.register(
            "alert_outbox_depth",
            "Alert deliveries not delivered yet",
            self.outbox_depth.clone(),
        );
        registry.register(
            "alert_outbox_oldest_seconds",
            "Age of the oldest alert delivery not delivered yet",
            self.outbox_oldest_seconds.clone(),
        );
    }
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
        let alerts = AlertMetrics::default();
        alerts.register(&mut registry);
        Self {
            apps: StatsCache::new(ttl, counter("metrics")),
            health: StatsCache::new(ttl, counter("service_health")),
            alerts,
            registry,
        }
    }
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
