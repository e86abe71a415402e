//! What operators of the service see across tenants: every organisation
//! with its apps' health, and the apps whose refreshes fail (never a secret
//! or a token). Everyone else is refused.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Actor;
use crate::db;
use crate::db::accounts::TenantHealthRow;
use crate::domain::TenantId;
use crate::domain::health::Health;
use crate::error::ApiError;
use crate::refresh::policy;
use crate::state::AppState;
use crate::upstream::errcodes::{self, Errcode};

/// Most failing apps the overview lists.
pub const MAX_FAILING_LISTED: i64 = 200;

/// Apps by health.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HealthCounts {
    /// Healthy apps.
    pub healthy: i64,
    /// Apps fetching their first token.
    pub refreshing: i64,
    /// Apps failing with a token still valid.
    pub degraded: i64,
    /// Apps failing for a reason the owner must fix, or without a token.
    pub failing: i64,
    /// Apps switched off.
    pub disabled: i64,
}

impl HealthCounts {
    fn add(&mut self, health: Health, n: i64) {
        let slot = match health {
            Health::Healthy => &mut self.healthy,
            Health::Refreshing => &mut self.refreshing,
            Health::Degraded => &mut self.degraded,
            Health::Failing => &mut self.failing,
            Health::Disabled => &mut self.disabled,
        };
        *slot += n;
    }
}

/// One organisation and its apps' health.
#[derive(Debug, Clone)]
pub struct TenantOverview {
    /// The organisation, its members, apps and app limit.
    pub tenant: TenantHealthRow,
    /// Its apps by health.
    pub health: HealthCounts,
}

/// An app whose refreshes fail, with what its errcode means.
#[derive(Debug, Clone)]
pub struct FailingApp {
    /// The app and its tenant.
    pub app: db::ops::FailingApp,
    /// Its health.
    pub health: Health,
    /// What its last errcode means, when WeChat gave one we know.
    pub explanation: Option<&'static Errcode>,
}

/// An outgoing mail's headers and fate (never its bodies).
pub use crate::db::mail::MailHeaders as OutgoingMail;

/// Outgoing mails the overview lists.
const MAILS_LISTED: i64 = 20;

/// The operator's overview.
#[derive(Debug, Clone)]
pub struct Overview {
    /// Every organisation, oldest first.
    pub tenants: Vec<TenantOverview>,
    /// Every app of the service by health.
    pub total: HealthCounts,
    /// The failing apps, most recent attempt first.
    pub failing: Vec<FailingApp>,
    /// Whether more apps fail than are listed.
    pub failing_capped: bool,
    /// The most recent outgoing mails: headers and fate, never bodies.
    pub mails: Vec<OutgoingMail>,
}

/// What an operator saw, as the audit log names it: the operator page.
pub const SEEN_OPERATOR_PAGE: &str = "/operator";
/// What an operator saw, as the audit log names it: the organisations list
/// of the API.
pub const SEEN_TENANT_LIST: &str = "/api/v1/operator/tenants";

/// Write to each organisation's audit log that the operator behind `actor`
/// saw `what` showing it (`operator.viewed`), before it is shown: a view
/// that cannot be recorded is not answered.
async fn audit_view(
    state: &AppState,
    actor: &Actor,
    tenants: &[TenantId],
    what: &str,
) -> Result<(), ApiError> {
    let operator = actor.principal.require_operator()?;
    let client = actor.client.map(|ip| ip.to_string());
    db::audit::record_operator_views(
        &state.pool,
        operator.user_id,
        tenants,
        what,
        client.as_deref(),
    )
    .await?;
    Ok(())
}

/// Every tenant's health, for an operator (recorded in each tenant's
/// audit log).
pub async fn tenants(state: &AppState, actor: &Actor) -> Result<Vec<TenantHealthRow>, ApiError> {
    actor.principal.require_operator()?;
    let tenants = db::accounts::tenant_health(&state.pool).await?;
    let ids: Vec<TenantId> = tenants.iter().map(|t| t.id).collect();
    audit_view(state, actor, &ids, SEEN_TENANT_LIST).await?;
    Ok(tenants)
}

/// The overview across tenants, for an operator (recorded in the audit log
/// of every tenant it shows).
pub async fn overview(state: &AppState, actor: &Actor) -> Result<Overview, ApiError> {
    actor.principal.require_operator()?;
    let pool = &state.pool;
    let (tenants, groups, failing, mails) = tokio::try_join!(
        db::accounts::tenant_health(pool),
        db::ops::health_groups(pool),
        db::ops::failing_apps(pool, MAX_FAILING_LISTED),
        db::mail::recent(pool, MAILS_LISTED),
    )?;
    let mut counts: BTreeMap<TenantId, HealthCounts> = BTreeMap::new();
    let mut total = HealthCounts::default();
    for g in &groups {
        let health = policy::health(g.enabled, g.token_valid, g.failing, g.last_error_class);
        if let Some(tenant_id) = g.tenant_id {
            counts.entry(tenant_id).or_default().add(health, g.apps);
        }
        total.add(health, g.apps);
    }
    let tenants: Vec<TenantOverview> = tenants
        .into_iter()
        .map(|tenant| TenantOverview {
            health: counts.remove(&tenant.id).unwrap_or_default(),
            tenant,
        })
        .collect();
    let mut shown: Vec<TenantId> = tenants
        .iter()
        .map(|t: &TenantOverview| t.tenant.id)
        .collect();
    shown.extend(failing.iter().map(|a| a.tenant_id));
    shown.sort_unstable();
    shown.dedup();
    audit_view(state, actor, &shown, SEEN_OPERATOR_PAGE).await?;
    let failing_capped = failing.len() >= usize::try_from(MAX_FAILING_LISTED).unwrap_or(usize::MAX);
    let failing = failing
        .into_iter()
        .map(|app| FailingApp {
            health: policy::health(
                true,
                app.token_valid,
                app.failure_streak,
                app.last_error_class,
            ),
            explanation: app
                .last_errcode
                .and_then(|c| errcodes::explain_for(errcodes::kind_of(&app.appid), i64::from(c))),
            app,
        })
        .collect();
    Ok(Overview {
        tenants,
        total,
        failing,
        failing_capped,
        mails,
    })
}
