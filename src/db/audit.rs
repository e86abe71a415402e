//! The audit log: who did what, when, from where.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use crate::domain::{ApiKeyId, AuditAction, TenantId, UserId};

/// One event to record.
#[derive(Debug)]
pub struct AuditEvent {
    /// Tenant (none for events of the service itself).
    pub tenant_id: Option<TenantId>,
    /// Acting user.
    pub actor_user_id: Option<UserId>,
    /// Acting API key.
    pub actor_api_key_id: Option<ApiKeyId>,
    /// What happened.
    pub action: AuditAction,
    /// What it happened to, e.g. a key id or an email.
    pub target: Option<String>,
    /// More, as JSON (never a secret).
    pub detail: serde_json::Value,
    /// Client address.
    pub client_ip: Option<String>,
}

impl AuditEvent {
    /// An event of `action` by nobody in particular, from nowhere (the
    /// service itself, the command line); fill in the rest.
    pub fn new(action: AuditAction) -> Self {
        Self {
            tenant_id: None,
            actor_user_id: None,
            actor_api_key_id: None,
            action,
            target: None,
            detail: serde_json::Value::Null,
            client_ip: None,
        }
    }

    /// The same event, about `target`.
    #[must_use]
    pub fn target(self, target: impl Into<String>) -> Self {
        Self {
            target: Some(target.into()),
            ..self
        }
    }

    /// The same event, with `detail`.
    #[must_use]
    pub fn detail(self, detail: serde_json::Value) -> Self {
        Self { detail, ..self }
    }
}

/// An audit entry as listed.
#[derive(Debug, Clone)]
pub struct AuditRow {
    /// Entry id.
    pub id: i64,
    /// What happened.
    pub action: AuditAction,
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
pub async fn record(db: impl PgExecutor<'_>, e: AuditEvent) -> Result<(), sqlx::Error> {
    let detail = if e.detail.is_null() {
        serde_json::json!({})
    } else {
        e.detail
    };
    sqlx::query!(
        "insert into audit_log (tenant_id, actor_user_id, actor_api_key_id, action, target, detail, client_ip)
         values ($1, $2, $3, $4, $5, $6, $7)",
        e.tenant_id as _,
        e.actor_user_id as _,
        e.actor_api_key_id as _,
        e.action as _,
        e.target,
        detail,
        e.client_ip,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Record that operator `operator` saw `what` (a page or an API path)
/// showing each of `tenants`: one entry per organisation, in its own audit
/// log, so its owners see it. The same operator seeing the same `what` of
/// the same organisation again within a minute adds nothing (a page
/// reloaded). The number of entries written.
pub async fn record_operator_views(
    db: impl PgExecutor<'_>,
    operator: UserId,
    tenants: &[TenantId],
    what: &str,
    client_ip: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        r#"insert into audit_log (tenant_id, actor_user_id, action, target, client_ip)
           select t.id, $2, $3, $4, $5
             from unnest($1::uuid[]) as t(id)
            where not exists (
                  select 1 from audit_log l
                   where l.tenant_id = t.id and l.action = $3
                     and l.actor_user_id = $2 and l.target = $4
                     and l.created_at > now() - interval '1 minute')"#,
        tenants as _,
        operator as _,
        AuditAction::OperatorViewed as _,
        what,
        client_ip,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// A tenant's audit log, newest first, before entry `before` (keyset
/// paging), only entries of `action` if given.
pub async fn list(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
    before: Option<i64>,
    action: Option<AuditAction>,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as!(
        AuditRow,
        r#"select l.id, l.action as "action: AuditAction", u.email as "actor_email?",
                  k.prefix as "actor_api_key?", l.target, l.detail, l.client_ip, l.created_at
             from audit_log l
             left join users u on u.id = l.actor_user_id
             left join api_keys k on k.id = l.actor_api_key_id
            where l.tenant_id = $1 and ($2::bigint is null or l.id < $2)
              and ($3::text is null or l.action = $3)
            order by l.id desc
            limit $4"#,
        tenant_id as _,
        before,
        action as _,
        limit,
    )
    .fetch_all(db)
    .await
}
