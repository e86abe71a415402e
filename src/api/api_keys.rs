//! API keys: create (shown once), list, revoke — thin handlers over
//! `crate::service::keys`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::views::people::{ApiKeyList, CreatedApiKey};
use crate::domain::ApiKeyId;
use crate::error::ApiError;
use crate::service::Actor;
use crate::service::keys::{self, NewKey};
use crate::state::AppState;

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
        (status = 201, description = "The new key; `key` is shown only here", body = CreatedApiKey),
    ),
)]
pub async fn create(
    state: web::Data<AppState>,
    actor: Actor,
    body: web::Json<CreateKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let CreateKeyRequest {
        name,
        apps,
        read_only,
    } = body.into_inner();
    let appids = apps.unwrap_or_default();
    let input = NewKey {
        name: &name,
        appids: &appids,
        read_only,
    };
    let created = keys::create(&state, &actor, &input).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(CreatedApiKey::of(created, read_only, appids)))
}

/// GET /api/v1/api-keys: the tenant's keys (never the keys themselves).
#[utoipa::path(
    get,
    path = "/api/v1/api-keys",
    tag = "api-keys",
    security(("session" = [])),
    responses(
        (status = 200, description = "The organisation's keys (never the keys themselves)", body = ApiKeyList),
    ),
)]
pub async fn list(state: web::Data<AppState>, actor: Actor) -> Result<HttpResponse, ApiError> {
    let rows = keys::list(&state, &actor).await?;
    let items = rows.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(ApiKeyList { items }))
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
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<ApiKeyId>,
) -> Result<HttpResponse, ApiError> {
    keys::revoke(&state, &actor, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
