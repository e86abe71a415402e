//! API keys: create (shown once), list, revoke.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret as _;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit_event;
use crate::auth::{Principal, api_key};
use crate::db;
use crate::domain::{FieldError, Name, Role};
use crate::error::ApiError;
use crate::startup::AppState;

/// Most apps one key may be limited to.
const MAX_APPS_PER_KEY: usize = 100;

/// Body of POST /api/v1/api-keys.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// A name to recognise the key by.
    name: String,
    /// `AppID`s the key is limited to (at most 100); absent or empty: every app.
    #[serde(default)]
    apps: Option<Vec<String>>,
    /// A read-only key reads tokens and health but changes nothing.
    #[serde(default)]
    read_only: bool,
}

/// POST /api/v1/api-keys: a new key, shown in full only in this answer.
#[utoipa::path(
    post,
    path = "/api/v1/api-keys",
    tag = "api-keys",
    request_body = CreateKeyRequest,
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 201, description = "The new key; `key` is shown only here", body = crate::api::openapi::CreatedApiKey),
    ),
)]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let user = principal.require_session()?;
    let scope = principal.require(Role::Admin)?;
    let body = body.into_inner();
    let name = Name::parse("name", &body.name)?;
    let appids = body.apps.unwrap_or_default();
    if appids.len() > MAX_APPS_PER_KEY {
        return Err(FieldError::new(
            "apps",
            "too_many",
            format!("a key may name at most {MAX_APPS_PER_KEY} apps"),
        )
        .into());
    }
    let (app_uuids, missing) =
        db::api_keys::resolve_appids(&state.pool, scope.tenant_id, &appids).await?;
    if !missing.is_empty() {
        return Err(FieldError::new(
            "apps",
            "unknown_app",
            format!("no such app in this organisation: {}", missing.join(", ")),
        )
        .into());
    }

    let new = api_key::generate();
    let id = Uuid::new_v4();
    let mut tx = state.pool.begin().await?;
    db::api_keys::insert(
        &mut tx,
        id,
        scope.tenant_id,
        name.as_str(),
        &new.prefix,
        &new.hash,
        body.read_only,
        &app_uuids,
        user.user_id,
    )
    .await?;
    db::audit::record(
        &mut *tx,
        db::audit::AuditEvent {
            detail: json!({ "name": name.as_str(), "read_only": body.read_only, "apps": appids }),
            ..audit_event(
                &req,
                Some(scope.tenant_id),
                Some(user.user_id),
                "api_key.created",
                Some(new.prefix.clone()),
            )
        },
    )
    .await?;
    tx.commit().await?;

    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "id": id,
            "name": name.as_str(),
            "key": new.key.expose_secret(),
            "prefix": new.prefix,
            "read_only": body.read_only,
            "apps": appids,
        })))
}

/// GET /api/v1/api-keys: the tenant's keys (never the keys themselves).
#[utoipa::path(
    get,
    path = "/api/v1/api-keys",
    tag = "api-keys",
    security(("session" = [])),
    responses(
        (status = 200, description = "The organisation's keys (never the keys themselves)", body = crate::api::openapi::ApiKeyList),
    ),
)]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require_session()?;
    let scope = principal.require(Role::Admin)?;
    let keys = db::api_keys::list(&state.pool, scope.tenant_id).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": keys })))
}

/// DELETE /api/v1/api-keys/{id}: revoke; every replica stops accepting it
/// within a second.
#[utoipa::path(
    delete,
    path = "/api/v1/api-keys/{id}",
    tag = "api-keys",
    params(("id" = Uuid, Path, description = "Key id")),
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Revoked; every replica stops accepting it within a second"),
    ),
)]
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let user = principal.require_session()?;
    let scope = principal.require(Role::Admin)?;
    let id = path.into_inner();
    let mut tx = state.pool.begin().await?;
    let Some(key) = db::api_keys::get(&mut *tx, scope.tenant_id, id).await? else {
        return Err(ApiError::NotFound("API key"));
    };
    db::api_keys::revoke(&mut *tx, scope.tenant_id, id).await?;
    sqlx::query("select pg_notify($1, $2)")
        .bind(api_key::REVOCATION_CHANNEL)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    db::audit::record(
        &mut *tx,
        audit_event(
            &req,
            Some(scope.tenant_id),
            Some(user.user_id),
            "api_key.revoked",
            Some(key.prefix),
        ),
    )
    .await?;
    tx.commit().await?;
    state.auth.keys.evict(id);
    Ok(HttpResponse::NoContent().finish())
}
