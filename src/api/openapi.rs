//! The OpenAPI 3 document, generated from the handlers' annotations, served
//! at `/api/openapi.json`, and a server-rendered reference page at `/api/docs`.
//!
//! The response schemas below describe what the handlers answer; the
//! schema-driven check (`tests/schema/run.sh`) holds them to it.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use actix_web::http::header::{self, HeaderValue};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{accounts, api_keys, apps, docs_page, health, members, metrics, service_health};
use crate::db::accounts::MemberRow;
use crate::db::api_keys::ApiKeyRow;
use crate::db::audit::AuditRow;
use crate::db::invites::InviteRow;
use crate::db::tokens::LogRow;
use crate::domain::{ApiKeyId, InviteId, Role, TenantId, TokenMode, UserId};
use crate::refresh::policy::Health;
use crate::upstream::ErrorClass;

pub use super::views::problem::{FieldErrorView, Problem};

/// The media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The document of this build of tokenvault.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "tokenvault",
        description = "Multi-tenant token vault that keeps WeChat mini-program access_tokens fresh. \
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
        super::wechat_compat::classic_token,
        super::wechat_compat::stable_token,
    ),
    components(schemas(
        Problem, FieldErrorView, Role, TokenMode, Health, ErrorClass,
        MemberRow, ApiKeyRow, AuditRow, InviteRow, LogRow,
    )),
    modifiers(&Security, &CommonErrors),
    tags(
        (name = "service", description = "Liveness, readiness, metrics and this documentation"),
        (name = "accounts", description = "Sign-up, sign-in, sessions"),
        (name = "api-keys", description = "API keys for tenant servers (session only)"),
        (name = "members", description = "People, invitations, the audit log"),
        (name = "apps", description = "Mini-programs, their health and refresh log"),
        (name = "tokens", description = "Reading and invalidating access tokens"),
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

/// An organisation.
#[derive(Serialize, ToSchema)]
pub struct TenantRef {
    /// Tenant id.
    pub id: TenantId,
    /// Organisation name.
    pub name: String,
}

/// A person.
#[derive(Serialize, ToSchema)]
pub struct UserRef {
    /// User id.
    pub id: UserId,
    /// Email.
    pub email: String,
    /// Role.
    pub role: Role,
}

/// A new session: who signed in, and the CSRF token for JSON calls.
#[derive(Serialize, ToSchema)]
pub struct SignedIn {
    /// The organisation (`null` for operators).
    pub tenant: Option<TenantRef>,
    /// The signed-in person.
    pub user: UserRef,
    /// Send in `X-CSRF-Token` on state-changing calls.
    pub csrf_token: String,
}

/// Who is calling: a signed-in person (`user`, `csrf_token`) or an API key (`api_key`).
#[derive(Serialize, ToSchema)]
pub struct WhoAmI {
    /// The signed-in person (sessions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserRef>,
    /// The API key making the request (keys only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<KeyRef>,
    /// The organisation (`null` for operators).
    pub tenant: Option<TenantRef>,
    /// The CSRF token (sessions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

/// The API key making a request.
#[derive(Serialize, ToSchema)]
pub struct KeyRef {
    /// Key id.
    pub id: ApiKeyId,
    /// Read-only keys cannot change anything.
    pub read_only: bool,
    /// Whether the key is limited to some apps.
    pub limited_to_apps: bool,
}

/// A new API key; `key` is shown only here.
#[derive(Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// Key id.
    pub id: ApiKeyId,
    /// Name.
    pub name: String,
    /// The key itself: store it now, it is never shown again.
    pub key: String,
    /// Visible prefix, to recognise the key.
    pub prefix: String,
    /// Read-only keys cannot change anything.
    pub read_only: bool,
    /// Appids the key is limited to; empty means every app.
    pub apps: Vec<String>,
}

/// The tenant's API keys.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    /// Keys, newest first.
    pub items: Vec<ApiKeyRow>,
}

/// The tenant's members.
#[derive(Serialize, ToSchema)]
pub struct MemberList {
    /// Members.
    pub items: Vec<MemberRow>,
}

/// A member after a role change.
#[derive(Serialize, ToSchema)]
pub struct MemberView {
    /// User id.
    pub id: UserId,
    /// Email.
    pub email: String,
    /// The new role.
    pub role: Role,
}

/// A new invitation; `token` and `url` are shown only here.
#[derive(Serialize, ToSchema)]
pub struct CreatedInvite {
    /// Invite id.
    pub id: InviteId,
    /// Role the invitee gets.
    pub role: Role,
    /// The email the invite is for, if it names one.
    pub email: Option<String>,
    /// The invite token.
    pub token: String,
    /// The invite link, relative to the service.
    pub url: String,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
}

/// The tenant's invitations.
#[derive(Serialize, ToSchema)]
pub struct InviteList {
    /// Invitations.
    pub items: Vec<InviteRow>,
}

/// A page of the audit log.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    /// Entries, newest first.
    pub items: Vec<AuditRow>,
    /// Pass as `before` for the next page; `null` on the last page.
    pub next_before: Option<i64>,
}

/// What a WeChat errcode means and how to fix it.
#[derive(Serialize, ToSchema)]
pub struct Explanation {
    /// Meaning, in English.
    pub meaning_en: String,
    /// Meaning, in Chinese.
    pub meaning_zh: String,
    /// Fix, in English.
    pub fix_en: String,
    /// Fix, in Chinese.
    pub fix_zh: String,
}

/// The current token's times (never the token).
#[derive(Serialize, ToSchema)]
pub struct TokenTimes {
    /// When it was fetched.
    pub fetched_at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// Seconds left.
    pub expires_in: i64,
}

/// The last refresh failure.
#[derive(Serialize, ToSchema)]
pub struct LastError {
    /// Failure class.
    pub class: Option<ErrorClass>,
    /// WeChat errcode.
    pub errcode: Option<i64>,
    /// Message.
    pub errmsg: Option<String>,
    /// What the errcode means.
    pub explanation: Option<Explanation>,
}

/// How a refresh (or the registration check) went.
#[derive(Serialize, ToSchema)]
pub struct RefreshOutcome {
    /// Whether it worked (`null`: not checked).
    pub ok: Option<bool>,
    /// `success`, `unchanged`, `disabled`, `failure`, `refused` or `not_checked`.
    pub outcome: String,
    /// Why no call was made (`refused` only): `backoff`, `bypass_cooldown`,
    /// `budget_spent`, `token_too_young`, `invalidate_limit`, `force_refresh_limit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<crate::refresh::gate::RefusalReason>,
    /// What the refusal means (`refused` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Seconds until asking again makes sense (`refused` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Failure class (failures only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<ErrorClass>,
    /// WeChat errcode (failures only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errcode: Option<i64>,
    /// Message (failures only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errmsg: Option<String>,
    /// What the errcode means (failures only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
}

/// A mini-program with its health; never its secret or token.
#[derive(Serialize, ToSchema)]
pub struct AppView {
    /// WeChat AppID.
    pub appid: String,
    /// Display name.
    pub name: String,
    /// Which WeChat endpoint keeps the token.
    pub token_mode: TokenMode,
    /// Whether refreshing is on.
    pub enabled: bool,
    /// Health.
    pub health: Health,
    /// Whether a secondary secret is set.
    pub has_secondary_secret: bool,
    /// The valid token's times, `null` when there is none.
    pub token: Option<TokenTimes>,
    /// Next scheduled refresh (`null` when disabled).
    pub next_refresh_at: Option<DateTime<Utc>>,
    /// Last refresh attempt.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// Last successful refresh.
    pub last_success_at: Option<DateTime<Utc>>,
    /// Failures in a row.
    pub failure_streak: i32,
    /// Failed attempts in the last 24 hours.
    pub failures_24h: i64,
    /// Calls to WeChat for this app today (WeChat's quota day, midnight Beijing time).
    pub upstream_calls_today: i64,
    /// The app's daily upstream budget.
    pub upstream_budget: UpstreamBudget,
    /// The last failure, while the streak lasts.
    pub last_error: Option<LastError>,
    /// Registered.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// The secret's last 4 characters (GET one app, owners and admins only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_hint: Option<String>,
    /// The registration check (POST /apps only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<RefreshOutcome>,
    /// The refresh just made (POST /apps/{appid}/refresh only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<RefreshOutcome>,
}

/// An app's daily upstream budget (the same for every app of the service).
#[derive(Serialize, ToSchema)]
pub struct UpstreamBudget {
    /// Calls to WeChat per app per day.
    pub daily_calls: u32,
    /// Of those, the last this many only scheduled refreshes may make.
    pub scheduler_reserve: u32,
    /// Stable-mode force refreshes made today (invalidation reports).
    pub force_refreshes_today: i64,
    /// Force refreshes allowed per day (WeChat: 20).
    pub force_refreshes_daily: u32,
}

/// A page of apps, by AppID.
#[derive(Serialize, ToSchema)]
pub struct AppPage {
    /// Apps.
    pub items: Vec<AppView>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next_after: Option<String>,
}

/// A refresh log entry with its errcode explained.
#[derive(Serialize, ToSchema)]
pub struct LogEntry {
    /// The entry.
    #[serde(flatten)]
    pub entry: LogRow,
    /// What the errcode means.
    pub explanation: Option<Explanation>,
}

/// A page of the refresh log.
#[derive(Serialize, ToSchema)]
pub struct LogPage {
    /// Attempts, newest first.
    pub items: Vec<LogEntry>,
    /// Pass as `before` for the next page; `null` on the last page.
    pub next_before: Option<i64>,
}

/// WeChat's answer shapes on the WeChat-compatible endpoints (always HTTP 200).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum WeChatAnswer {
    /// Success: the managed token and its remaining lifetime.
    Token {
        /// The access token.
        access_token: String,
        /// Seconds left.
        expires_in: i64,
    },
    /// Failure, with WeChat's own errcode (40002, 41002, 41004, 40013, 40125, 43002, 47001, -1, …).
    Error {
        /// WeChat errcode.
        errcode: i64,
        /// WeChat errmsg.
        errmsg: String,
    },
}

/// Body of `POST /cgi-bin/stable_token`.
#[derive(Serialize, ToSchema)]
pub struct StableTokenRequest {
    /// Must be `client_credential`.
    pub grant_type: String,
    /// The WeChat AppID.
    pub appid: String,
    /// A tokenvault API key (never a WeChat appsecret).
    #[schema(format = Password)]
    pub secret: String,
    /// Accepted and ignored: a client cannot invalidate the token other servers share.
    pub force_refresh: Option<bool>,
}

/// A valid access token.
#[derive(Serialize, ToSchema)]
pub struct TokenView {
    /// WeChat AppID.
    pub appid: String,
    /// The access token.
    pub access_token: String,
    /// Seconds left.
    pub expires_in: i64,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// When it was fetched.
    pub fetched_at: DateTime<Utc>,
}

/// What a reported token caused.
#[derive(Serialize, ToSchema)]
pub struct InvalidateView {
    /// Whether a refresh was made.
    pub refreshed: bool,
    /// Why not (when `refreshed` is false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How the refresh went (when `refreshed` is true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<RefreshOutcome>,
}
