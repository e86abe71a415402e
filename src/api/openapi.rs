//! The OpenAPI 3 document, generated from the handlers' annotations, served
//! at `/api/openapi.json`, and a server-rendered reference page at `/api/docs`.
//!
//! The response schemas below describe what the handlers answer; the
//! schema-driven check (`tests/schema/run.sh`) holds them to it.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use actix_web::http::header::{self, HeaderValue};

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::views::{alerts, people};
use super::{
    account_security, accounts, api_keys, apps, docs_page, health, members, metrics, service_health,
};
use crate::domain::{
    AccountType, AuditAction, ChannelKind, DeliveryStatus, EventType, Role, TicketType, TokenMode,
};
use crate::refresh::policy::Health;
use crate::service::alerts::message::WebhookBody;
use crate::service::alerts::summary::SummaryBody;
use crate::upstream::ErrorClass;

pub use super::views::problem::{FieldError, Problem, TokenProblem};

/// The media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The document of this build of tokenvault.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "tokenvault",
        description = "Multi-tenant token vault that keeps the access_tokens of WeChat mini-programs and official accounts (the same token endpoints) and WeCom apps fresh. \
Every error is `application/problem+json` (RFC 9457) with a stable machine-readable `code`. \
Tenant servers authenticate with `Authorization: Bearer <API key>`; people sign in for a \
`tv_session` cookie and send the CSRF token from `GET /api/v1/session` in `X-CSRF-Token` \
on every state-changing call.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        health::healthz,
        health::readyz,
        metrics::metrics,
        openapi_json,
        reference_page,
        docs_page::stylesheet,
        accounts::signup,
        accounts::login,
        accounts::logout,
        accounts::current,
        account_security::request_reset,
        account_security::confirm_reset,
        account_security::change_password,
        account_security::resend_verification,
        account_security::confirm_verification,
        super::two_factor::start,
        super::two_factor::confirm,
        super::two_factor::regenerate,
        super::two_factor::disable,
        super::two_factor::patch_organization,
        super::account::list_sessions,
        super::account::end_session,
        api_keys::create,
        api_keys::list,
        api_keys::revoke,
        members::list,
        members::change_role,
        members::remove,
        members::create_invite,
        members::list_invites,
        members::accept_invite,
        members::delete_invite,
        members::audit_log,
        super::operator::tenants,
        service_health::service_health,
        apps::create,
        apps::list,
        apps::show,
        apps::edit,
        apps::remove,
        apps::refresh,
        apps::app_log,
        apps::token,
        apps::invalidate,
        apps::tenant_log,
        super::tickets::ticket,
        super::tickets::signature,
        super::wechat_compat::classic_token,
        super::wechat_compat::stable_token,
        super::alerts::create,
        super::alerts::list,
        super::alerts::delete,
        super::alerts::test,
        super::alerts::deliveries,
        super::wechat_ticket::get_ticket,
        super::wecom_compat::gettoken,
        super::wecom_ticket::get_jsapi_ticket,
        super::wecom_ticket::get_agent_ticket,
    ),
    components(schemas(
        Problem, TokenProblem, FieldError, Role, TokenMode, AccountType, Health, ErrorClass,
        AuditAction, people::Member, people::ApiKeyView,
        people::AuditEntry, people::InviteView, TicketType,
        ChannelKind, EventType, DeliveryStatus, alerts::ChannelView, alerts::DeliveryView,
        WebhookBody,
        SummaryBody,
        super::views::account::SessionView, super::views::account::SessionList,
    )),
    modifiers(&Security, &CommonErrors),
    tags(
        (name = "service", description = "Liveness, readiness, metrics and this documentation"),
        (name = "accounts", description = "Sign-up, sign-in, sessions"),
        (name = "api-keys", description = "API keys for tenant servers (session only)"),
        (name = "members", description = "People, invitations, the audit log"),
        (name = "apps", description = "Mini-programs, official accounts and WeCom apps, their health and refresh log"),
        (name = "tokens", description = "Reading and invalidating access tokens; JS-SDK tickets and page signatures"),
        (name = "alerts", description = "Alert channels (webhooks, WeCom, Feishu and DingTalk robots) and their deliveries"),
        (name = "wechat", description = "WeChat-compatible token endpoints for existing SDKs: the `secret` is a tokenvault API key"),
    ),
)]
pub struct ApiDoc;

/// The document, with this build's version.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    env!("CARGO_PKG_VERSION").clone_into(&mut doc.info.version);
    doc
}

static DOCUMENT_JSON: LazyLock<String> = LazyLock::new(|| document().to_json().unwrap_or_default());

/// The OpenAPI document of this service.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "service",
    security(()),
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json", body = Object)),
)]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ))
        .body(DOCUMENT_JSON.as_str())
}

static REFERENCE_PAGE: LazyLock<String> = LazyLock::new(|| docs_page::render(&document()));

/// The API reference, readable in a browser ([`docs_page`] renders it).
#[utoipa::path(
    get,
    path = "/api/docs",
    tag = "service",
    operation_id = "page",
    security(()),
    responses((status = 200, description = "The API reference page", content_type = "text/html", body = String)),
)]
pub async fn reference_page() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ))
        .body(REFERENCE_PAGE.as_str())
}

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`tvk_…`), created at POST /api/v1/api-keys and shown once.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "tv_session",
                "The session cookie set by sign-up and sign-in. State-changing calls also need \
                 the `X-CSRF-Token` header (see `csrf`).",
            ))),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`TOKENVAULT_METRICS_TOKEN`, when the operator set one: then /metrics needs it.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "csrf",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "The `csrf_token` of GET /api/v1/session; required with a session on every \
                 POST, PATCH and DELETE.",
            ))),
        );
    }
}

/// Error answers any endpoint under `/api/v1` may give, added to every
/// operation that does not describe them itself.
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let common: &[(&str, &str)] = &[
            (
                "400",
                "Malformed request: bad JSON, unknown or invalid query parameters (`invalid_json`, `invalid_query`)",
            ),
            (
                "401",
                "No credentials, or credentials that are not valid (`unauthenticated`)",
            ),
            (
                "403",
                "Not allowed: role, read-only key, key limited to other apps, session-only endpoint, or missing CSRF token (`forbidden`, `csrf_failed`)",
            ),
            ("404", "No such resource in this organisation (`not_found`)"),
            ("413", "The body is larger than 64 KiB (`body_too_large`)"),
            (
                "415",
                "The body is not `application/json` (`unsupported_media_type`)",
            ),
            (
                "422",
                "One or more fields are invalid (`validation_failed`, `invalid_field`), with `errors[]`",
            ),
            (
                "429",
                "Too many attempts, or too many invalid API keys from this address; see `Retry-After` (`too_many_requests`, `too_many_failed_key_attempts`)",
            ),
        ];
        for (path, item) in &mut doc.paths.paths {
            let in_api = path.starts_with("/api/v1/");
            for op in operations_mut(item) {
                let responses = &mut op.responses.responses;
                for (status, description) in common {
                    // Outside /api/v1 only an unknown method or path can go wrong.
                    if !in_api && *status != "404" {
                        continue;
                    }
                    responses
                        .entry((*status).to_owned())
                        .or_insert_with(|| problem_response(description));
                }
            }
        }
    }
}

fn operations_mut(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.post.as_mut(),
        item.put.as_mut(),
        item.patch.as_mut(),
        item.delete.as_mut(),
    ]
    .into_iter()
    .flatten()
}

fn problem_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                "Problem",
            )))),
        )
        .build()
        .into()
}
