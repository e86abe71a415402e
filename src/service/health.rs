//! The service's own health, for everyone signed in and every API key:
//! replicas seen recently, the refresh backlog, the database, and WeChat's
//! answers over the last minutes. Only aggregates over all tenants, never a
//! tenant's rows; host names and replica ids are for operators only (everyone else
//! sees each replica's opaque label). And the
//! readiness behind `/readyz`.
//!
//! Measured at most once per `TOKENVAULT_STATS_CACHE_SECONDS` (one
//! measurement shared by concurrent callers, [`crate::stats::StatsCache`]);
//! the measurement keeps host names, and each answer drops them for
//! callers who are not operators.

use std::time::{Duration, Instant};

use chrono::Utc;

use super::Actor;
use crate::db;
use crate::domain::Role;
use crate::domain::health::{
    DatabaseHealth, ReplicaHealth, ReplicasHealth, SchedulerHealth, ServiceHealth, UpstreamHealth,
    replica_label,
};
use crate::error::ApiError;
use crate::state::AppState;

/// Replicas seen within this long are listed.
const LISTED_FOR_SECONDS: f64 = 3600.0;
/// Most replicas listed.
const MAX_REPLICAS: i64 = 50;
/// A due app counts as overdue after this long.
pub const OVERDUE_AFTER_SECONDS: f64 = 60.0;
/// The window of the upstream figures.
pub const UPSTREAM_WINDOW_MINUTES: i32 = 15;
/// Share of attempts failing for WeChat's or the network's reasons above
/// which the service counts as degraded (given enough attempts to judge).
const DEGRADED_UPSTREAM_ERROR_RATE: f64 = 0.2;
const MIN_ATTEMPTS_TO_JUDGE: i64 = 5;
/// Longest wait for the database's answer to a health check.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// The service's health as `actor` may see it, at most
/// `TOKENVAULT_STATS_CACHE_SECONDS` old: replicas' host names for operators only.
pub async fn service_health(state: &AppState, actor: &Actor) -> Result<ServiceHealth, ApiError> {
    let measured = state.stats.health.get(|| measure(state)).await?;
    let mut health = ServiceHealth::clone(&measured);
    if actor.principal.role() != Role::Operator {
        health.answered_by = replica_label(&health.answered_by);
        for replica in &mut health.replicas.items {
            replica.host = None;
            replica.id.clone_from(&replica.label);
        }
    }
    Ok(health)
}

/// Measure the service's health now, host names included.
async fn measure(state: &AppState) -> Result<ServiceHealth, ApiError> {
    let pool = &state.pool;
    let started = Instant::now();
    let ping = tokio::time::timeout(PING_TIMEOUT, db::ops::ping(pool)).await;
    let reachable = matches!(ping, Ok(Ok(())));
    if let Ok(Err(e)) = &ping {
        tracing::warn!(error = %e, "service health: the database does not answer");
    }
    let database = DatabaseHealth {
        reachable,
        latency_ms: reachable.then(|| round1(started.elapsed().as_secs_f64() * 1000.0)),
        pool_size: pool.size(),
        pool_idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
        pool_max: pool.options().get_max_connections(),
    };
    let answered_by = state.engine.replica_id().to_string();
    let alive_within_seconds = alive_within(state);
    if !reachable {
        return Ok(ServiceHealth {
            status: "down",
            checked_at: Utc::now(),
            answered_by,
            replicas: ReplicasHealth {
                alive: 0,
                stale: 0,
                alive_within_seconds,
                items: Vec::new(),
            },
            scheduler: None,
            database,
            upstream: None,
        });
    }
    let (replicas, backlog, window) = tokio::try_join!(
        db::ops::replicas_seen(pool, LISTED_FOR_SECONDS, MAX_REPLICAS),
        db::ops::backlog(pool, OVERDUE_AFTER_SECONDS),
        db::ops::upstream_window(pool, UPSTREAM_WINDOW_MINUTES),
    )?;
    let replicas = replicas_health(replicas, alive_within_seconds);
    let scheduler = SchedulerHealth {
        status: if backlog.overdue > 0 { "lagging" } else { "ok" },
        due_apps: backlog.due,
        overdue_apps: backlog.overdue,
        lag_seconds: round1(backlog.lag_seconds.max(0.0)),
        overdue_after_seconds: OVERDUE_AFTER_SECONDS,
    };
    let upstream = upstream_health(&window);
    let degraded = replicas.alive == 0 || backlog.overdue > 0 || upstream.status == "failing";
    Ok(ServiceHealth {
        status: if degraded { "degraded" } else { "ok" },
        checked_at: Utc::now(),
        answered_by,
        replicas,
        scheduler: Some(scheduler),
        database,
        upstream: Some(upstream),
    })
}

/// The replicas seen, each alive when seen within `alive_within_seconds`.
fn replicas_health(rows: Vec<db::ops::ReplicaRow>, alive_within_seconds: u64) -> ReplicasHealth {
    #[allow(clippy::cast_precision_loss, reason = "seconds, far below 2^52")]
    let limit = alive_within_seconds as f64;
    let items: Vec<ReplicaHealth> = rows
        .into_iter()
        .map(|r| ReplicaHealth {
            alive: r.seconds_since_seen <= limit,
            seconds_since_seen: round1(r.seconds_since_seen.max(0.0)),
            label: replica_label(&r.id),
            id: r.id,
            host: Some(r.hostname),
            version: r.version,
            started_at: r.started_at,
            last_seen_at: r.last_seen_at,
        })
        .collect();
    let alive = items.iter().filter(|r| r.alive).count();
    ReplicasHealth {
        alive,
        stale: items.len() - alive,
        alive_within_seconds,
        items,
    }
}

/// WeChat's answers over the window, judged.
fn upstream_health(window: &db::ops::UpstreamWindow) -> UpstreamHealth {
    let rate = |n: i64| {
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let r = (window.attempts > 0).then(|| n as f64 / window.attempts as f64);
        r.map(|r| (r * 1000.0).round() / 1000.0)
    };
    let upstream_error_rate = rate(window.upstream_errors);
    let failing = window.attempts >= MIN_ATTEMPTS_TO_JUDGE
        && upstream_error_rate.is_some_and(|r| r >= DEGRADED_UPSTREAM_ERROR_RATE);
    UpstreamHealth {
        status: match (window.attempts, failing) {
            (0, _) => "idle",
            (_, true) => "failing",
            _ => "ok",
        },
        window_minutes: UPSTREAM_WINDOW_MINUTES,
        attempts: window.attempts,
        failures: window.failures,
        failure_rate: rate(window.failures),
        upstream_errors: window.upstream_errors,
        upstream_error_rate,
        p50_ms: window.p50_ms.map(round1),
        p95_ms: window.p95_ms.map(round1),
    }
}

/// A replica heartbeats every `TOKENVAULT_HEARTBEAT_SECONDS`: three missed
/// beats make it stale.
fn alive_within(state: &AppState) -> u64 {
    state
        .settings
        .intervals
        .heartbeat_seconds
        .saturating_mul(3)
        .saturating_add(5)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The checks behind readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// `ok`, `unreachable` or `timeout`.
    pub database: &'static str,
    /// `ok`, `pending` or `unknown`.
    pub migrations: &'static str,
}

impl Readiness {
    /// Ready: the database answers and every migration is applied.
    pub fn ready(self) -> bool {
        self.database == "ok" && self.migrations == "ok"
    }
}

/// Whether this replica can serve: the database answers (within two
/// seconds) and every migration is applied. Asked by anyone, unauthenticated.
pub async fn readiness(state: &AppState) -> Readiness {
    let check = async {
        db::ops::ping(&state.pool).await?;
        db::migrations_applied(&state.pool).await
    };
    let (database, migrations) = match tokio::time::timeout(PING_TIMEOUT, check).await {
        Ok(Ok(applied)) => ("ok", if applied { "ok" } else { "pending" }),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database check failed");
            ("unreachable", "unknown")
        }
        Err(_) => ("timeout", "unknown"),
    };
    Readiness {
        database,
        migrations,
    }
}
