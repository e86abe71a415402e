//! Liveness and readiness.

use actix_web::{HttpResponse, web};

use super::views::ops::{Liveness, Readiness};
use crate::service::health;
use crate::state::AppState;

/// Liveness: the process answers HTTP.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    security(()),
    responses(
        (status = 200, description = "The process answers HTTP", body = Liveness),
    ),
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Liveness::ok())
}

/// Readiness: the database answers and every migration is applied.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "service",
    security(()),
    responses(
        (status = 200, description = "Ready: the database answers and every migration is applied", body = Readiness),
        (status = 503, description = "Not ready", body = Readiness),
    ),
)]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let checked = health::readiness(&state).await;
    let mut res = if checked.ready() {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    res.json(Readiness::from(checked))
}
