//! Prometheus metrics of one replica, served at `/metrics`.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::domain::{Credential, RefreshOutcome};
use crate::upstream::ErrorClass;

/// Labels of the refresh counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefreshLabels {
    /// The credential: `access_token`, `jsapi_ticket`, `wx_card_ticket`.
    pub credential: &'static str,
    /// `success`, `unchanged`, `failure` or `skipped`.
    pub outcome: String,
    /// Failure class, empty on success.
    pub class: String,
}

/// Labels of the health gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HealthLabels {
    /// Health name.
    pub health: String,
}

/// Labels of the refusal counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// The gate's rule (`backoff`, `budget_spent`, …).
    pub reason: &'static str,
}

/// The metrics.
pub struct Metrics {
    registry: Registry,
    refreshes: Family<RefreshLabels, Counter>,
    upstream_seconds: Histogram,
    claim_seconds: Histogram,
    /// Apps by health (set before each scrape).
    pub apps_by_health: Family<HealthLabels, Gauge>,
    /// Tokens that expire within the refresh margin (set before each scrape).
    pub expiring_soon: Gauge,
    /// Apps that spent 80 % of the budget others than the scheduler may
    /// spend today (set before each scrape).
    pub apps_near_budget: Gauge,
    /// Upstream calls the gate refused, by rule.
    refusals: Family<ReasonLabels, Counter>,
    /// Token reads answered.
    reads_ok: Counter,
    reads_unavailable: Counter,
    reads_from_memory: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tokenvault");
        let refreshes = Family::<RefreshLabels, Counter>::default();
        registry.register(
            "refreshes",
            "Token refresh attempts by outcome and failure class",
            refreshes.clone(),
        );
        let upstream_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "upstream_request_seconds",
            "Latency of token requests to WeChat",
            upstream_seconds.clone(),
        );
        let claim_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "claim_query_seconds",
            "Time to claim a due token row",
            claim_seconds.clone(),
        );
        let apps_by_health = Family::<HealthLabels, Gauge>::default();
        registry.register("apps", "Registered apps by health", apps_by_health.clone());
        let expiring_soon = Gauge::default();
        registry.register(
            "tokens_expiring_soon",
            "Tokens of enabled apps that expire within five minutes",
            expiring_soon.clone(),
        );
        let apps_near_budget = Gauge::default();
        registry.register(
            "apps_near_upstream_budget",
            "Apps that spent at least 80 % of today's upstream budget outside the scheduler's reserve",
            apps_near_budget.clone(),
        );
        let refusals = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "upstream_refusals",
            "Upstream calls the gate refused, by rule",
            refusals.clone(),
        );
        let token_reads = Family::<HealthLabels, Counter>::default();
        registry.register(
            "token_reads",
            "Token reads answered, by result",
            token_reads.clone(),
        );
        // Handles kept, so the hot path neither allocates labels nor locks the family.
        let reads_ok = token_reads
            .get_or_create(&HealthLabels {
                health: "ok".into(),
            })
            .clone();
        let reads_unavailable = token_reads
            .get_or_create(&HealthLabels {
                health: "unavailable".into(),
            })
            .clone();
        let reads_from_memory = Counter::default();
        registry.register(
            "token_reads_from_memory",
            "Token reads answered from this replica's caches, before the request logger and the router",
            reads_from_memory.clone(),
        );
        Self {
            registry,
            refreshes,
            upstream_seconds,
            claim_seconds,
            apps_by_health,
            expiring_soon,
            apps_near_budget,
            refusals,
            reads_ok,
            reads_unavailable,
            reads_from_memory,
        }
    }
}

impl Metrics {
    /// Count a refresh attempt of `credential`.
    pub fn count_refresh(
        &self,
        credential: Credential,
        outcome: RefreshOutcome,
        class: Option<ErrorClass>,
    ) {
        self.refreshes
            .get_or_create(&RefreshLabels {
                credential: credential.as_str(),
                outcome: outcome.as_str().to_string(),
                class: class
                    .map(ErrorClass::as_str)
                    .unwrap_or_default()
                    .to_string(),
            })
            .inc();
    }

    /// Count a call the gate refused.
    pub fn count_refusal(&self, reason: crate::refresh::gate::RefusalReason) {
        self.refusals
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// Record an upstream call's latency.
    pub fn observe_upstream(&self, d: Duration) {
        self.upstream_seconds.observe(d.as_secs_f64());
    }

    /// Record a claim query's duration.
    pub fn observe_claim(&self, d: Duration) {
        self.claim_seconds.observe(d.as_secs_f64());
    }

    /// Count a token read answered from memory (see `api::token_fast_path`).
    pub fn count_read_from_memory(&self) {
        self.reads_ok.inc();
        self.reads_from_memory.inc();
    }

    /// Count a token read answered (`served`) or refused for want of a token.
    pub fn count_read(&self, served: bool) {
        if served {
            self.reads_ok.inc();
        } else {
            self.reads_unavailable.inc();
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
