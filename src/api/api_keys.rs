//! API keys: create (shown once), list, revoke.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::audit_event;
use crate::auth::{Principal, TenantScope, api_key};
use crate::db;
use crate::domain::{ApiKeyId, FieldError, Name, Role, UserId};
use crate::error::ApiError;
use crate::state::AppState;

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
    let appids = body.apps.unwrap_or_default();
    let created = create_key(
        &req,
        &state,
        user.user_id,
        &scope,
        &body.name,
        &appids,
        body.read_only,
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "id": created.id,
            "name": created.name,
            "key": created.key.expose_secret(),
            "prefix": created.prefix,
            "read_only": body.read_only,
            "apps": appids,
        })))
}

/// A key just created; `key` is shown once, then only its hash is kept.
pub struct CreatedKey {
    /// Key id.
    pub id: ApiKeyId,
    /// Its name, as stored.
    pub name: String,
    /// The whole key.
    pub key: SecretString,
    /// Its visible prefix.
    pub prefix: String,
}

/// Validate and store a new key with its audit record (all or nothing);
/// shared by the API and the keys page.
pub async fn create_key(
    req: &HttpRequest,
    state: &AppState,
    user_id: UserId,
    scope: &TenantScope,
    name: &str,
    appids: &[String],
    read_only: bool,
) -> Result<CreatedKey, ApiError> {
    // Every field is checked, so a form shows all its errors at once.
    let name = Name::parse("name", name);
    let mut errors = Vec::new();
    let mut app_uuids = Vec::new();
    if appids.len() > MAX_APPS_PER_KEY {
        errors.push(FieldError::new(
            "apps",
            "too_many",
            format!("a key may name at most {MAX_APPS_PER_KEY} apps"),
        ));
    } else if appids
        .iter()
        .any(|a| crate::domain::AppId::parse("apps", a).is_err())
    {
        errors.push(FieldError::new(
            "apps",
            "invalid_appid",
            "every entry of apps must be an AppID such as wx0123456789abcdef",
        ));
    } else {
        let (found, missing) =
            db::api_keys::resolve_appids(&state.pool, scope.tenant_id, appids).await?;
        if !missing.is_empty() {
            errors.push(FieldError::new(
                "apps",
                "unknown_app",
                format!("no such app in this organisation: {}", missing.join(", ")),
            ));
        }
        app_uuids = found;
    }
    let name = match name {
        Ok(name) if errors.is_empty() => name,
        Ok(_) => return Err(ApiError::Validation(errors)),
        Err(e) => {
            errors.insert(0, e);
            return Err(ApiError::Validation(errors));
        }
    };

    let new = api_key::generate();
    let id = ApiKeyId::new();
    let mut tx = state.pool.begin().await?;
    db::api_keys::insert(
        &mut tx,
        id,
        scope.tenant_id,
        name.as_str(),
        &new.prefix,
        &new.hash,
        read_only,
        &app_uuids,
        user_id,
    )
    .await?;
    db::audit::record(
        &mut *tx,
        db::audit::AuditEvent {
            detail: json!({ "name": name.as_str(), "read_only": read_only, "apps": appids }),
            ..audit_event(
                req,
                Some(scope.tenant_id),
                Some(user_id),
                "api_key.created",
                Some(new.prefix.clone()),
            )
        },
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedKey {
        id,
        name: name.as_str().to_string(),
        key: new.key,
        prefix: new.prefix,
    })
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
    path: web::Path<ApiKeyId>,
) -> Result<HttpResponse, ApiError> {
    let user = principal.require_session()?;
    let scope = principal.require(Role::Admin)?;
    revoke_key(&req, &state, user.user_id, &scope, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Revoke a key of the tenant, tell every replica, record it; shared by
/// the API and the keys page. Revoking twice is fine.
pub async fn revoke_key(
    req: &HttpRequest,
    state: &AppState,
    user_id: UserId,
    scope: &TenantScope,
    id: ApiKeyId,
) -> Result<(), ApiError> {
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
            req,
            Some(scope.tenant_id),
            Some(user_id),
            "api_key.revoked",
            Some(key.prefix),
        ),
    )
    .await?;
    tx.commit().await?;
    state.auth.keys.evict(id);
    Ok(())
}
