//! The HTTP API: routes under `/api/v1`, WeChat-compatible routes, health.

pub mod accounts;
pub mod api_keys;
pub mod apps;
pub mod docs_page;
pub mod health;
pub mod members;
pub mod openapi;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use uuid::Uuid;

use crate::auth::client_ip;
use crate::db::audit::AuditEvent;
use crate::error::{ApiError, problem_response};

/// Largest page a list endpoint returns.
pub const MAX_PAGE: i64 = 200;

/// Register every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(apps::metrics))
        .route("/api/openapi.json", web::get().to(openapi::openapi_json))
        .route("/api/docs", web::get().to(docs_page::page))
        .route("/api/docs.css", web::get().to(docs_page::stylesheet))
        .service(
            web::scope("/api/v1")
                .route("/signup", web::post().to(accounts::signup))
                .route("/login", web::post().to(accounts::login))
                .route("/logout", web::post().to(accounts::logout))
                .route("/session", web::get().to(accounts::current))
                .route("/api-keys", web::post().to(api_keys::create))
                .route("/api-keys", web::get().to(api_keys::list))
                .route("/api-keys/{id}", web::delete().to(api_keys::revoke))
                .route("/members", web::get().to(members::list))
                .route("/members/{id}", web::patch().to(members::change_role))
                .route("/members/{id}", web::delete().to(members::remove))
                .route("/invites", web::post().to(members::create_invite))
                .route("/invites", web::get().to(members::list_invites))
                .route("/invites/accept", web::post().to(members::accept_invite))
                .route("/invites/{id}", web::delete().to(members::delete_invite))
                .route("/audit-log", web::get().to(members::audit_log))
                .route(
                    "/operator/tenants",
                    web::get().to(members::operator_tenants),
                )
                .route("/apps", web::post().to(apps::create))
                .route("/apps", web::get().to(apps::list))
                .route("/apps/{appid}", web::get().to(apps::show))
                .route("/apps/{appid}", web::patch().to(apps::edit))
                .route("/apps/{appid}", web::delete().to(apps::remove))
                .route("/apps/{appid}/refresh", web::post().to(apps::refresh))
                .route("/apps/{appid}/refresh-log", web::get().to(apps::app_log))
                .route("/apps/{appid}/token", web::get().to(apps::token))
                .route(
                    "/apps/{appid}/token/invalidate",
                    web::post().to(apps::invalidate),
                )
                .route("/refresh-log", web::get().to(apps::tenant_log)),
        );
}

/// Unknown paths answer problem+json like every other error.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    problem_response(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no such endpoint: {} {}", req.method(), req.path()),
    )
}

/// An audit event with the request's address filled in.
pub fn audit_event<'a>(
    req: &HttpRequest,
    tenant_id: Option<Uuid>,
    actor_user_id: Option<Uuid>,
    action: &'a str,
    target: Option<String>,
) -> AuditEvent<'a> {
    AuditEvent {
        tenant_id,
        actor_user_id,
        action,
        target,
        client_ip: client_ip(req).map(|ip| ip.to_string()),
        ..AuditEvent::default()
    }
}

/// A `limit` query value checked against [`MAX_PAGE`] (default 50).
pub fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(50),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::BadRequest {
            code: "invalid_query",
            detail: format!("limit must be between 1 and {MAX_PAGE}"),
        }),
    }
}
