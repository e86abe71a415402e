//! Bodies about the service itself: liveness, readiness, the service health
//! and the operator's list of tenants.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::accounts::TenantHealthRow;
use crate::domain::TenantId;
pub use crate::domain::health::{
    DatabaseHealth, ReplicaHealth, ReplicasHealth, SchedulerHealth, ServiceHealth, UpstreamHealth,
};
use crate::service::health::Readiness as Checked;

/// `{"status": "ok"}`.
#[derive(Serialize, ToSchema)]
pub struct Liveness {
    /// Always `ok`.
    pub status: String,
}

impl Liveness {
    /// The process answers.
    pub fn ok() -> Self {
        Self {
            status: "ok".into(),
        }
    }
}

/// Readiness and the checks behind it.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: String,
    /// Each check's result.
    pub checks: ReadinessChecks,
}

/// The readiness checks.
#[derive(Serialize, ToSchema)]
pub struct ReadinessChecks {
    /// `ok`, `unreachable` or `timeout`.
    pub database: String,
    /// `ok`, `pending` or `unknown`.
    pub migrations: String,
}

impl From<Checked> for Readiness {
    fn from(checked: Checked) -> Self {
        Self {
            status: if checked.ready() {
                "ready"
            } else {
                "not_ready"
            }
            .into(),
            checks: ReadinessChecks {
                database: checked.database.into(),
                migrations: checked.migrations.into(),
            },
        }
    }
}

/// One organisation as operators see it: no secrets, no tokens.
#[derive(Serialize, ToSchema)]
#[schema(as = TenantHealth)]
pub struct TenantHealthView {
    /// Tenant id.
    pub id: TenantId,
    /// Organisation name.
    pub name: String,
    /// When it signed up.
    pub created_at: DateTime<Utc>,
    /// Members.
    pub members: i64,
    /// Registered apps.
    pub apps: i64,
    /// Apps whose last refresh failed.
    pub failing_apps: i64,
    /// The organisation's own app limit, set by an operator; `null`: the
    /// service's default.
    pub app_limit: Option<i32>,
}

impl From<TenantHealthRow> for TenantHealthView {
    fn from(row: TenantHealthRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            created_at: row.created_at,
            members: row.members,
            apps: row.apps,
            failing_apps: row.failing_apps,
            app_limit: row.app_limit,
        }
    }
}

/// Every tenant's health.
#[derive(Serialize, ToSchema)]
pub struct TenantHealthList {
    /// Tenants, oldest first.
    pub items: Vec<TenantHealthView>,
}
