//! The organisations' app limits, set from the operator page or the command
//! line (every tenant's health is in `super::operator`).

use sqlx::PgPool;

use super::Actor;
use crate::db;
use crate::db::app_limits::{LimitReached, TenantRef};
use crate::db::audit::AuditEvent;
use crate::domain::{AuditAction, TenantId};
use crate::error::ApiError;

pub use crate::db::accounts::TenantHealthRow;
pub use crate::db::app_limits::MAX_APP_LIMIT;

/// Who changes an app limit.
#[derive(Debug, Clone, Copy)]
pub enum LimitSetter<'a> {
    /// An operator signed in to the operator page.
    Operator(&'a Actor),
    /// Whoever runs `tokenvault operator app-limit` next to the database.
    CommandLine,
}

/// The organisations whose id is `id_or_name`, or whose name is exactly it
/// (for the command line, which names an organisation either way).
pub async fn find(pool: &PgPool, id_or_name: &str) -> Result<Vec<TenantRef>, sqlx::Error> {
    db::app_limits::find_tenants(pool, id_or_name).await
}

/// Set (or with `None`, clear) the organisation's own app limit and record
/// who did it and how, in one transaction. Returns the organisation as it
/// was before, `None` if there is no such organisation (nothing is
/// recorded then). Takes the pool, not the state: the command line has no
/// running service.
pub async fn set_app_limit(
    pool: &PgPool,
    by: LimitSetter<'_>,
    tenant_id: TenantId,
    limit: Option<i32>,
) -> Result<Option<TenantRef>, ApiError> {
    let (event, via) = match by {
        LimitSetter::Operator(actor) => {
            actor.principal.require_operator()?;
            (actor.audit(AuditAction::TenantAppLimitChanged), "page")
        }
        LimitSetter::CommandLine => (AuditEvent::new(AuditAction::TenantAppLimitChanged), "cli"),
    };
    let mut tx = pool.begin().await?;
    let Some(before) = db::app_limits::set_override(&mut tx, tenant_id, limit).await? else {
        return Ok(None);
    };
    let event = AuditEvent {
        tenant_id: Some(tenant_id),
        ..event
    }
    .target(before.name.as_str())
    .detail(serde_json::json!({ "from": before.app_limit, "to": limit, "via": via }));
    db::audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(Some(before))
}

impl From<LimitReached> for ApiError {
    fn from(reached: LimitReached) -> Self {
        Self::Conflict {
            code: "app_limit_reached",
            detail: format!(
                "this organisation has reached its limit of {} apps: delete an app it no longer needs, or ask the service's operator to raise the limit",
                reached.limit
            ),
        }
    }
}
