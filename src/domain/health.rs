//! Health as people read it: an app's, and the service's own (replicas, the
//! refresh backlog, the database, WeChat's answers). Read models measured
//! from the database and cached (`crate::stats`), then answered as they are.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::ErrorClass;

/// The opaque label tenants see for the replica with id `id`, in the
/// refresh log and the service health: stable for a replica, and telling
/// nothing of its host (a configured id may name one). Operators see the
/// id and the host name beside it.
pub fn replica_label(id: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(id.as_bytes());
    let n = digest
        .iter()
        .take(5)
        .fold(0_u64, |n, byte| (n << 8) | u64::from(*byte));
    format!("replica-{n:010x}")
}

/// An app's health, derived from its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// A valid token, and the last refresh worked.
    Healthy,
    /// No valid token yet, and no failure so far: the first fetch is under way.
    Refreshing,
    /// Refreshes fail for a passing reason, but a valid token is still served.
    Degraded,
    /// Refreshes fail for a reason the owner must fix, or no valid token is left.
    Failing,
    /// Refreshing is switched off for this app.
    Disabled,
}

names!(Health {
    Healthy = "healthy",
    Refreshing = "refreshing",
    Degraded = "degraded",
    Failing = "failing",
    Disabled = "disabled",
});

impl Health {
    /// The one rule for an app's health, from its state: switched on or
    /// off, whether its stored token is still valid, its failures in a row
    /// and the class of the last one.
    pub fn derive(
        enabled: bool,
        token_valid: bool,
        failure_streak: i32,
        last_class: Option<ErrorClass>,
    ) -> Self {
        let needs_owner = matches!(
            last_class,
            Some(ErrorClass::Configuration | ErrorClass::Bug)
        );
        match (enabled, token_valid, failure_streak > 0) {
            (false, _, _) => Self::Disabled,
            (true, _, true) if needs_owner => Self::Failing,
            (true, true, true) => Self::Degraded,
            (true, true, false) => Self::Healthy,
            (true, false, false) => Self::Refreshing,
            (true, false, true) => Self::Failing,
        }
    }
}

/// The figures of `/metrics` that come from the database.
#[derive(Debug)]
pub struct AppCounts {
    /// Apps by health.
    pub by_health: Vec<(Health, i64)>,
    /// Tokens of enabled apps that expire within five minutes.
    pub expiring_soon: i64,
    /// Apps near their daily upstream budget.
    pub near_budget: i64,
}

/// The service's health at one moment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceHealth {
    /// `ok`, `degraded` (overdue refreshes, no live replica, WeChat failing)
    /// or `down` (the database does not answer).
    pub status: &'static str,
    /// When this was measured.
    pub checked_at: DateTime<Utc>,
    /// The replica that measured this: its id for operators, its opaque
    /// label for everyone else.
    pub answered_by: String,
    /// Replicas that heartbeated in the last hour.
    pub replicas: ReplicasHealth,
    /// The refresh backlog; `null` when the database does not answer.
    pub scheduler: Option<SchedulerHealth>,
    /// The database as this replica sees it.
    pub database: DatabaseHealth,
    /// WeChat's answers over the window; `null` when the database does not answer.
    pub upstream: Option<UpstreamHealth>,
}

/// Replicas that heartbeated recently.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReplicasHealth {
    /// Replicas whose last heartbeat is recent enough to count as alive.
    pub alive: usize,
    /// Listed replicas that stopped heartbeating.
    pub stale: usize,
    /// A replica is alive when seen within this many seconds.
    pub alive_within_seconds: u64,
    /// The replicas, most recently seen first.
    pub items: Vec<ReplicaHealth>,
}

/// One replica.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReplicaHealth {
    /// Replica id for operators; for everyone else the replica's opaque
    /// label, as in the refresh log.
    pub id: String,
    /// The replica's opaque label (as in the refresh log).
    pub label: String,
    /// Host name; `null` except for operators.
    pub host: Option<String>,
    /// tokenvault version.
    pub version: String,
    /// First heartbeat.
    pub started_at: DateTime<Utc>,
    /// Last heartbeat.
    pub last_seen_at: DateTime<Utc>,
    /// Seconds since the last heartbeat.
    pub seconds_since_seen: f64,
    /// Seen recently enough to count as alive.
    pub alive: bool,
}

/// Enabled apps waiting for their refresh.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SchedulerHealth {
    /// `ok`, or `lagging` when an app is overdue.
    pub status: &'static str,
    /// Apps due now (refreshes may be under way).
    pub due_apps: i64,
    /// Apps due for longer than `overdue_after_seconds`.
    pub overdue_apps: i64,
    /// How long the most overdue app has been due, in seconds (0: none due).
    pub lag_seconds: f64,
    /// When a due app counts as overdue.
    pub overdue_after_seconds: f64,
}

/// The database as this replica sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DatabaseHealth {
    /// It answered `select 1` within two seconds.
    pub reachable: bool,
    /// Round trip of that query, in milliseconds; `null` when unreachable.
    pub latency_ms: Option<f64>,
    /// Open connections of this replica's pool.
    pub pool_size: u32,
    /// Of those, idle.
    pub pool_idle: u32,
    /// Most connections the pool opens.
    pub pool_max: u32,
}

/// Refresh attempts of every tenant over the window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UpstreamHealth {
    /// `ok`, `failing` (WeChat or the network fails too often) or `idle` (no attempts).
    pub status: &'static str,
    /// Length of the window in minutes.
    pub window_minutes: i32,
    /// Attempts (token requests to WeChat).
    pub attempts: i64,
    /// Failed attempts, any reason (including apps' wrong settings).
    pub failures: i64,
    /// `failures / attempts`; `null` without attempts.
    pub failure_rate: Option<f64>,
    /// Failures of WeChat or the network: timeouts, 5xx, busy, malformed answers.
    pub upstream_errors: i64,
    /// `upstream_errors / attempts`; `null` without attempts.
    pub upstream_error_rate: Option<f64>,
    /// Median latency, in milliseconds.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency, in milliseconds.
    pub p95_ms: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::{ErrorClass, Health};

    #[test]
    fn health_table() {
        use ErrorClass::{Configuration, Transient};
        let derive = Health::derive;
        assert_eq!(derive(false, true, 0, None), Health::Disabled);
        assert_eq!(derive(true, true, 0, None), Health::Healthy);
        assert_eq!(derive(true, false, 0, None), Health::Refreshing);
        assert_eq!(derive(true, true, 2, Some(Transient)), Health::Degraded);
        assert_eq!(derive(true, false, 2, Some(Transient)), Health::Failing);
        assert_eq!(derive(true, true, 1, Some(Configuration)), Health::Failing);
    }
}
