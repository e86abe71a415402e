//! JS-SDK tickets over the REST API: read an app's ticket (the first read
//! turns it on for the app) and sign a page URL with the `jsapi` ticket.
//! Same readers, key rate and app limits as the token read.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;

use super::apps::read_error;
use super::views::tickets::{SignatureView, TicketView};
use crate::auth::Principal;
use crate::domain::{AppId, AppKind, TicketType, jssdk};
use crate::error::ApiError;
use crate::service::tickets;
use crate::service::token_read::{self, Reader};
use crate::state::AppState;

/// Body of POST /api/v1/apps/{appid}/jssdk-signature.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureRequest {
    /// The page's URL without its `#fragment` (`location.href.split('#')[0]`),
    /// signed exactly as sent.
    pub url: String,
}

/// The app of the path; a WeCom app keeps no WeChat JS-SDK ticket.
fn app_path(raw: &str) -> Result<AppId, ApiError> {
    let appid = AppId::parse("appid", raw).map_err(|_| ApiError::NotFound("app"))?;
    if appid.kind() == AppKind::Wecom {
        return Err(ApiError::BadRequest {
            code: "unknown_ticket_type",
            detail: "WeChat's JS-SDK tickets belong to WeChat apps; WeCom apps' tickets are not kept yet"
                .into(),
        });
    }
    Ok(appid)
}

/// GET /api/v1/apps/{appid}/tickets/{type}: a JS-SDK ticket.
#[utoipa::path(
    get,
    path = "/api/v1/apps/{appid}/tickets/{type}",
    tag = "tokens",
    params(
        ("appid" = String, Path, description = "AppID of the official account or mini-program, e.g. `wx0123456789abcdef`"),
        ("type" = TicketType, Path, description = "`jsapi` or `wx_card`"),
    ),
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "A valid ticket; the first read turns the ticket on for the app", body = TicketView),
        (status = 400, description = "An unknown ticket type (`unknown_ticket_type`)", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        (status = 429, description = "This API key reads faster than `TOKENVAULT_KEY_READ_RATE` allows (`key_read_rate`); see `Retry-After`", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "No valid ticket can be had now (`token_unavailable`, with `reason` and WeChat's `errcode` when a failure is behind it); see `Retry-After`", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
)]
pub async fn ticket(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let scope = token_read::require_reader(&principal)?;
    let (raw_appid, raw_type) = path.into_inner();
    let appid = app_path(&raw_appid)?;
    let ticket_type: TicketType = raw_type.parse().map_err(|()| ApiError::BadRequest {
        code: "unknown_ticket_type",
        detail: "the ticket type must be `jsapi` or `wx_card`".into(),
    })?;
    let reader = match &principal {
        Principal::ApiKey(k) => Reader::Key(k),
        Principal::Session(_) => Reader::Person(&scope),
    };
    let t = tickets::read(&state, reader, &appid, ticket_type)
        .await
        .map_err(read_error)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(TicketView::of(appid.as_str(), ticket_type, &t, Utc::now())))
}

/// POST /api/v1/apps/{appid}/jssdk-signature: sign a page for `wx.config`.
#[utoipa::path(
    post,
    path = "/api/v1/apps/{appid}/jssdk-signature",
    tag = "tokens",
    params(("appid" = String, Path, description = "AppID of the official account, e.g. `wx0123456789abcdef`")),
    request_body = SignatureRequest,
    security(("api_key" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "`appId`, `timestamp`, `nonceStr` and `signature` for `wx.config`, signed with the app's `jsapi` ticket (turned on by the first call)", body = SignatureView),
        (status = 422, description = "The URL is not an absolute http(s) URL, has a `#fragment`, spaces or non-ASCII characters, or is too long", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        (status = 503, description = "No valid `jsapi` ticket can be had now (`token_unavailable`); see `Retry-After`", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
)]
pub async fn signature(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Json<SignatureRequest>,
) -> Result<HttpResponse, ApiError> {
    let scope = token_read::require_reader(&principal)?;
    let appid = app_path(&path)?;
    let url = jssdk::parse_page_url(&body.url).map_err(ApiError::field)?;
    let reader = match &principal {
        Principal::ApiKey(k) => Reader::Key(k),
        Principal::Session(_) => Reader::Person(&scope),
    };
    let signed = tickets::sign(&state, reader, &appid, &url)
        .await
        .map_err(read_error)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(SignatureView::from(&signed)))
}
