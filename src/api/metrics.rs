//! `GET /metrics` (Prometheus): the exposition of
//! [`crate::service::metrics`], for the bearer token when
//! `TOKENVAULT_METRICS_TOKEN` is set.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;
use crate::service::metrics;
use crate::state::AppState;

/// GET /metrics: Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    security((), ("metrics_token" = [])),
    responses(
        (status = 200, description = "Prometheus metrics (OpenMetrics text); database figures at most `TOKENVAULT_STATS_CACHE_SECONDS` old", body = String, content_type = "application/openmetrics-text"),
        (status = 401, description = "`TOKENVAULT_METRICS_TOKEN` is set and the request did not send it as `Authorization: Bearer` (`unauthenticated`)", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let sent = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let body = metrics::exposition(&state, sent).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(body))
}
