//! Liveness and readiness.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::db;
use crate::state::AppState;

/// Liveness: the process answers HTTP.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    security(()),
    responses(
        (status = 200, description = "The process answers HTTP", body = crate::api::openapi::Liveness),
    ),
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Readiness: the database answers and every migration is applied.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "service",
    security(()),
    responses(
        (status = 200, description = "Ready: the database answers and every migration is applied", body = crate::api::openapi::Readiness),
        (status = 503, description = "Not ready", body = crate::api::openapi::Readiness),
    ),
)]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let check = async {
        sqlx::query("select 1").execute(&state.pool).await?;
        db::migrations_applied(&state.pool).await
    };
    let (database, migrations) = match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(Ok(applied)) => ("ok", if applied { "ok" } else { "pending" }),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database check failed");
            ("unreachable", "unknown")
        }
        Err(_) => ("timeout", "unknown"),
    };
    let ready = database == "ok" && migrations == "ok";
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": { "database": database, "migrations": migrations },
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
