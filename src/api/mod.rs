//! The HTTP API: routes under `/api/v1`, WeChat-compatible routes, health.

pub mod health;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::problem_response;

/// Register every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz));
}

/// Unknown paths answer problem+json like every other error.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    problem_response(
        actix_web::http::StatusCode::NOT_FOUND,
        "not_found",
        format!("no such endpoint: {} {}", req.method(), req.path()),
    )
}
