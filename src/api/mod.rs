//! The HTTP API: routes under `/api/v1`, WeChat-compatible routes, health.

pub mod account;
pub mod account_security;
pub mod accounts;
pub mod alerts;
pub mod api_keys;
pub mod apps;
pub mod compat;
pub mod docs_page;
pub mod health;
pub mod members;
pub mod metrics;
pub mod openapi;
pub mod operator;
pub mod service_health;
pub mod tickets;
pub mod token_fast_path;
pub mod two_factor;
pub mod views;
pub mod wechat_compat;
pub mod wechat_ticket;
pub mod wecom_compat;
pub mod wecom_ticket;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::{ApiError, problem_response};

/// Largest page a list endpoint returns.
pub const MAX_PAGE: i64 = 200;

/// Register every route.
///
/// One resource per path, the hot token read first: actix tries resources in
/// order and matches each dynamic path with a regular expression, so the
/// order is the cost of a token read.
pub fn configure(cfg: &mut web::ServiceConfig) {
    two_factor_routes(cfg);
    account_security_routes(cfg);
    service_routes(cfg);
    cfg.service(
        web::scope("/api/v1")
            .service(resource("/apps/{appid}/token").route(web::get().to(apps::token)))
            .service(resource("/signup").route(web::post().to(accounts::signup)))
            .service(resource("/login").route(web::post().to(accounts::login)))
            .service(resource("/logout").route(web::post().to(accounts::logout)))
            .service(resource("/session").route(web::get().to(accounts::current)))
            .service(
                resource("/api-keys")
                    .route(web::post().to(api_keys::create))
                    .route(web::get().to(api_keys::list)),
            )
            .service(resource("/api-keys/{id}").route(web::delete().to(api_keys::revoke)))
            .service(resource("/members").route(web::get().to(members::list)))
            .service(
                resource("/members/{id}")
                    .route(web::patch().to(members::change_role))
                    .route(web::delete().to(members::remove)),
            )
            .service(
                resource("/invites")
                    .route(web::post().to(members::create_invite))
                    .route(web::get().to(members::list_invites)),
            )
            .service(resource("/invites/accept").route(web::post().to(members::accept_invite)))
            .service(resource("/invites/{id}").route(web::delete().to(members::delete_invite)))
            .service(resource("/audit-log").route(web::get().to(members::audit_log)))
            .service(resource("/operator/tenants").route(web::get().to(operator::tenants)))
            .service(
                resource("/service-health").route(web::get().to(service_health::service_health)),
            )
            .service(
                resource("/apps")
                    .route(web::post().to(apps::create))
                    .route(web::get().to(apps::list)),
            )
            .service(
                resource("/apps/{appid}")
                    .route(web::get().to(apps::show))
                    .route(web::patch().to(apps::edit))
                    .route(web::delete().to(apps::remove)),
            )
            .service(resource("/apps/{appid}/refresh").route(web::post().to(apps::refresh)))
            .service(resource("/apps/{appid}/refresh-log").route(web::get().to(apps::app_log)))
            .service(
                resource("/apps/{appid}/token/invalidate").route(web::post().to(apps::invalidate)),
            )
            .service(resource("/refresh-log").route(web::get().to(apps::tenant_log)))
            .service(resource("/apps/{appid}/tickets/{type}").route(web::get().to(tickets::ticket)))
            .service(
                resource("/apps/{appid}/jssdk-signature").route(web::post().to(tickets::signature)),
            )
            .service(
                resource("/alert-channels")
                    .route(web::post().to(alerts::create))
                    .route(web::get().to(alerts::list)),
            )
            .service(resource("/alert-channels/{id}").route(web::delete().to(alerts::delete)))
            .service(resource("/alert-channels/{id}/test").route(web::post().to(alerts::test)))
            .service(
                resource("/alert-channels/{id}/deliveries")
                    .route(web::get().to(alerts::deliveries)),
            ),
    );
}

/// Health, metrics, the WeChat-compatible endpoints and the documentation.
fn service_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(metrics::metrics))
        .route(
            "/cgi-bin/token",
            web::get().to(wechat_compat::classic_token),
        )
        .route(
            "/cgi-bin/stable_token",
            web::route().to(wechat_compat::stable_token),
        )
        .route(
            "/cgi-bin/ticket/getticket",
            web::get().to(wechat_ticket::get_ticket),
        )
        .route("/cgi-bin/gettoken", web::get().to(wecom_compat::gettoken))
        .route(
            "/cgi-bin/get_jsapi_ticket",
            web::get().to(wecom_ticket::get_jsapi_ticket),
        )
        .route(
            "/cgi-bin/ticket/get",
            web::get().to(wecom_ticket::get_agent_ticket),
        )
        .route("/api/openapi.json", web::get().to(openapi::openapi_json))
        .route("/api/docs", web::get().to(openapi::reference_page))
        .route("/api/docs.css", web::get().to(docs_page::stylesheet));
}

/// Two-factor sign-in and the organisation's requirement of it: a scope
/// of its own, registered before `/api/v1/account` (which would take its paths).
fn two_factor_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/account/totp")
            .service(
                resource("")
                    .route(web::post().to(two_factor::start))
                    .route(web::delete().to(two_factor::disable)),
            )
            .service(resource("/confirm").route(web::post().to(two_factor::confirm)))
            .service(resource("/recovery-codes").route(web::post().to(two_factor::regenerate))),
    )
    .service(
        resource("/api/v1/organization").route(web::patch().to(two_factor::patch_organization)),
    );
}

/// Password reset and change, email verification: scopes of their own,
/// registered before `/api/v1` (whose scope would take their paths).
fn account_security_routes(cfg: &mut web::ServiceConfig) {
    use account_security as a;
    cfg.service(
        web::scope("/api/v1/password-reset")
            .service(resource("").route(web::post().to(a::request_reset)))
            .service(resource("/confirm").route(web::post().to(a::confirm_reset))),
    )
    .service(
        web::scope("/api/v1/account")
            .service(resource("/password").route(web::post().to(a::change_password)))
            // The account page's sessions.
            .service(resource("/sessions").route(web::get().to(account::list_sessions)))
            .service(resource("/sessions/{id}").route(web::delete().to(account::end_session))),
    )
    .service(
        web::scope("/api/v1/email-verification")
            .service(resource("").route(web::post().to(a::resend_verification)))
            .service(resource("/confirm").route(web::post().to(a::confirm_verification))),
    );
}

/// A resource whose unsupported methods answer 405 as problem+json.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    problem_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not supported on {}", req.method(), req.path()),
    )
}

/// Unknown API paths answer problem+json like every other error (the
/// default service, `ui::ops::not_found`, sends browsers a page instead).
pub fn not_found(req: &HttpRequest) -> HttpResponse {
    problem_response(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no such endpoint: {} {}", req.method(), req.path()),
    )
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
