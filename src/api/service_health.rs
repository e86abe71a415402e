//! `GET /api/v1/service-health`: the service's own health
//! ([`crate::service::health`]) for everyone signed in and every API key.

use actix_web::{HttpResponse, web};

use super::views::ops::ServiceHealth;
use crate::error::ApiError;
use crate::service::{Actor, health};
use crate::state::AppState;

/// GET /api/v1/service-health: the service's health, at most
/// `TOKENVAULT_STATS_CACHE_SECONDS` old.
#[utoipa::path(
    get,
    path = "/api/v1/service-health",
    tag = "service",
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "The service's health, measured at most `TOKENVAULT_STATS_CACHE_SECONDS` ago (`checked_at`): replicas, refresh backlog, database, WeChat's answers over the last 15 minutes. Aggregates only; replicas' host names for operators", body = ServiceHealth),
    ),
)]
pub async fn service_health(
    state: web::Data<AppState>,
    actor: Actor,
) -> Result<HttpResponse, ApiError> {
    let health: ServiceHealth = health::service_health(&state, &actor).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(health))
}
