//! The audit log: who did what, when, from where.

use crate::domain::{ApiKeyId, TenantId, UserId};
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

/// One event to record.
#[derive(Debug, Default)]
pub struct AuditEvent<'a> {
    /// Tenant (none for events of the service itself).
    pub tenant_id: Option<TenantId>,
    /// Acting user.
    pub actor_user_id: Option<UserId>,
    /// Acting API key.
    pub actor_api_key_id: Option<ApiKeyId>,
    /// What happened, e.g. `api_key.created`.
    pub action: &'a str,
    /// What it happened to, e.g. a key id or an email.
    pub target: Option<String>,
    /// More, as JSON (never a secret).
    pub detail: serde_json::Value,
    /// Client address.
    pub client_ip: Option<String>,
}

/// An audit entry as listed.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct AuditRow {
    /// Entry id.
    pub id: i64,
    /// What happened.
    pub action: String,
    /// Email of the acting user, if a user acted.
    pub actor_email: Option<String>,
    /// Prefix of the acting API key, if a key acted.
    pub actor_api_key: Option<String>,
    /// What it happened to.
    pub target: Option<String>,
    /// More detail.
    pub detail: serde_json::Value,
    /// Client address.
    pub client_ip: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Record an event.
pub async fn record(db: impl PgExecutor<'_>, e: AuditEvent<'_>) -> Result<(), sqlx::Error> {
    let detail = if e.detail.is_null() {
        serde_json::json!({})
    } else {
        e.detail
    };
    sqlx::query(
        "insert into audit_log (tenant_id, actor_user_id, actor_api_key_id, action, target, detail, client_ip)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(e.tenant_id)
    .bind(e.actor_user_id)
    .bind(e.actor_api_key_id)
    .bind(e.action)
    .bind(e.target)
    .bind(detail)
    .bind(e.client_ip)
    .execute(db)
    .await?;
    Ok(())
}

/// A tenant's audit log, newest first, before entry `before` (keyset
/// paging), only entries of `action` if given.
pub async fn list(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
    before: Option<i64>,
    action: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as(
        "select l.id, l.action, u.email as actor_email, k.prefix as actor_api_key, l.target, l.detail,
                l.client_ip, l.created_at
           from audit_log l
           left join users u on u.id = l.actor_user_id
           left join api_keys k on k.id = l.actor_api_key_id
          where l.tenant_id = $1 and ($2::bigint is null or l.id < $2)
            and ($3::text is null or l.action = $3)
          order by l.id desc
          limit $4",
    )
    .bind(tenant_id)
    .bind(before)
    .bind(action)
    .bind(limit)
    .fetch_all(db)
    .await
}
