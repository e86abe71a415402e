//! Alert channels: create, list, delete, send a test, the delivery log —
//! thin handlers over `crate::service::alerts`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::views::alerts::{ChannelList, ChannelView, DeliveryList, DeliveryView};
use crate::domain::AlertChannelId;
use crate::error::ApiError;
use crate::secret::SigningSecret;
use crate::service::Actor;
use crate::service::alerts::{self, NewChannel};
use crate::state::AppState;

/// Body of POST /api/v1/alert-channels.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannelRequest {
    /// `webhook`, `wecom`, `feishu`, `dingtalk` or `email`.
    kind: String,
    /// A name to recognise it by.
    name: String,
    /// The target: your HTTPS endpoint, or the robot's webhook address
    /// (not for `email`).
    #[serde(default)]
    url: String,
    /// `email` only: `members` (the default) mails every verified owner and
    /// admin in their language; an address mails that address.
    #[serde(default)]
    to: Option<String>,
    /// Signing secret (webhook: HMAC key; Feishu and DingTalk: the robot's
    /// signing secret; WeCom robots do not sign). Never shown again.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    secret: Option<SigningSecret>,
    /// Events to send; default: every app event.
    #[serde(default)]
    events: Option<Vec<String>>,
    /// `AppIDs` to limit it to; absent or empty: every app.
    #[serde(default)]
    apps: Option<Vec<String>>,
}

/// POST /api/v1/alert-channels: a new channel (owners and admins).
#[utoipa::path(
    post,
    path = "/api/v1/alert-channels",
    tag = "alerts",
    request_body = CreateChannelRequest,
    security(("session" = [], "csrf" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "The new channel, without its secret", body = ChannelView),
    ),
)]
pub async fn create(
    state: web::Data<AppState>,
    actor: Actor,
    body: web::Json<CreateChannelRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let input = NewChannel {
        kind: &body.kind,
        name: &body.name,
        url: &body.url,
        to: body.to.as_deref(),
        secret: body.secret.as_ref(),
        events: body.events.as_deref(),
        apps: body.apps.as_deref(),
    };
    let channel = alerts::create(&state, &actor, &input).await?;
    Ok(HttpResponse::Created().json(ChannelView::from(channel)))
}

/// GET /api/v1/alert-channels: the organisation's channels.
#[utoipa::path(
    get,
    path = "/api/v1/alert-channels",
    tag = "alerts",
    security(("session" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The organisation's channels (never a secret)", body = ChannelList),
    ),
)]
pub async fn list(state: web::Data<AppState>, actor: Actor) -> Result<HttpResponse, ApiError> {
    let rows = alerts::list(&state, &actor).await?;
    let items = rows.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(ChannelList { items }))
}

/// DELETE /api/v1/alert-channels/{id}: delete a channel and its pending deliveries.
#[utoipa::path(
    delete,
    path = "/api/v1/alert-channels/{id}",
    tag = "alerts",
    params(("id" = Uuid, Path, description = "Channel id")),
    security(("session" = [], "csrf" = []), ("api_key" = [])),
    responses((status = 204, description = "Deleted")),
)]
pub async fn delete(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<AlertChannelId>,
) -> Result<HttpResponse, ApiError> {
    alerts::delete(&state, &actor, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// POST /api/v1/alert-channels/{id}/test: send a `test` event now.
#[utoipa::path(
    post,
    path = "/api/v1/alert-channels/{id}/test",
    tag = "alerts",
    params(("id" = Uuid, Path, description = "Channel id")),
    security(("session" = [], "csrf" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The test delivery as it went: the target's status and answer", body = DeliveryView),
    ),
)]
pub async fn test(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<AlertChannelId>,
) -> Result<HttpResponse, ApiError> {
    let delivery = alerts::send_test(&state, &actor, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(DeliveryView::from(delivery)))
}

/// Query of GET /api/v1/alert-channels/{id}/deliveries.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// GET /api/v1/alert-channels/{id}/deliveries: the channel's delivery log.
#[utoipa::path(
    get,
    path = "/api/v1/alert-channels/{id}/deliveries",
    tag = "alerts",
    params(("id" = Uuid, Path, description = "Channel id"), DeliveriesQuery),
    security(("session" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The newest deliveries first", body = DeliveryList),
    ),
)]
pub async fn deliveries(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<AlertChannelId>,
    query: web::Query<DeliveriesQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = super::page_limit(query.limit)?;
    let (_, rows) = alerts::deliveries(&state, &actor, path.into_inner(), limit).await?;
    let items = rows.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(DeliveryList { items }))
}
