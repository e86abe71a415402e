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
    /// The ticket to sign with: `jsapi` (the default: `wx.config`; a WeCom
    /// app's company ticket) or, for a WeCom app, `agent_config` (its app
    /// ticket, for `wx.agentConfig`; the answer then carries `agentid`).
    #[serde(default)]
    pub ticket_type: Option<String>,
}

/// The app of the path and a ticket type it keeps: WeChat apps keep
/// `jsapi` and `wx_card`, WeCom apps `jsapi` (the company's) and
/// `agent_config` (the app's).
fn app_and_type(raw_appid: &str, raw_type: &str) -> Result<(AppId, TicketType), ApiError> {
    let appid = AppId::parse("appid", raw_appid).map_err(|_| ApiError::NotFound("app"))?;
    let ticket_type: TicketType = raw_type.parse().map_err(|()| ApiError::BadRequest {
        code: "unknown_ticket_type",
        detail: "the ticket type must be `jsapi` or `wx_card` (WeChat apps), `jsapi` or \
                 `agent_config` (WeCom apps)"
            .into(),
    })?;
    match appid.kind() {
        _ if ticket_type.fits(appid.kind()) => Ok((appid, ticket_type)),
        AppKind::Wecom => Err(ApiError::BadRequest {
            code: "ticket_type_not_for_wecom",
            detail: format!(
                "a WeCom app keeps `jsapi` (its company's ticket) and `agent_config` (its own), \
                 not `{}`",
                ticket_type.as_str()
            ),
        }),
        AppKind::Wechat => Err(ApiError::BadRequest {
            code: "ticket_type_not_for_wechat",
            detail: format!(
                "a WeChat app keeps `jsapi` and `wx_card`, not `{}` (a WeCom app's ticket)",
                ticket_type.as_str()
            ),
        }),
    }
}

/// GET /api/v1/apps/{appid}/tickets/{type}: a JS-SDK ticket.
#[utoipa::path(
    get,
    path = "/api/v1/apps/{appid}/tickets/{type}",
    tag = "tokens",
    params(
        ("appid" = String, Path, description = "AppID of the official account or mini-program, e.g. `wx0123456789abcdef`, or a WeCom app's `{corpid}-{agentid}`"),
        ("type" = TicketType, Path, description = "`jsapi` or `wx_card` for a WeChat app; `jsapi` (the company's ticket) or `agent_config` (the app's) for a WeCom app"),
    ),
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "A valid ticket; the first read turns the ticket on for the app", body = TicketView),
        (status = 400, description = "An unknown ticket type (`unknown_ticket_type`), `wx_card` for a WeCom app (`ticket_type_not_for_wecom`), `agent_config` for a WeChat app (`ticket_type_not_for_wechat`)", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        (status = 429, description = "This API key reads faster than `TOKENVAULT_KEY_READ_RATE` allows (`key_read_rate`); see `Retry-After`", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "No valid ticket can be had now (`token_unavailable`, with `reason` and WeChat's or WeCom's `errcode` when a failure is behind it; WeCom's hourly ticket limits are refused here before WeCom would); see `Retry-After`", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
)]
pub async fn ticket(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let scope = token_read::require_reader(&principal)?;
    let (raw_appid, raw_type) = path.into_inner();
    let (appid, ticket_type) = app_and_type(&raw_appid, &raw_type)?;
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
    params(("appid" = String, Path, description = "AppID of the official account, e.g. `wx0123456789abcdef`, or a WeCom app's `{corpid}-{agentid}`")),
    request_body = SignatureRequest,
    security(("api_key" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "`appId`, `timestamp`, `nonceStr` and `signature` for `wx.config`, signed with the app's `jsapi` ticket (turned on by the first call); for a WeCom app `appId` is the corpid, and with `ticket_type: agent_config` the signature is for `wx.agentConfig` (with `agentid`)", body = SignatureView),
        (status = 400, description = "A ticket type the app does not keep or that signs no page (`unknown_ticket_type`, `ticket_type_not_for_wecom`, `ticket_type_not_for_wechat`)", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
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
    let raw_type = body.ticket_type.as_deref().unwrap_or("jsapi");
    let (appid, ticket_type) = app_and_type(&path, raw_type)?;
    if ticket_type == TicketType::WxCard {
        return Err(ApiError::BadRequest {
            code: "unknown_ticket_type",
            detail: "pages are signed with the `jsapi` ticket (or a WeCom app's `agent_config`), \
                     not `wx_card`"
                .into(),
        });
    }
    let url = jssdk::parse_page_url(&body.url).map_err(ApiError::field)?;
    let reader = match &principal {
        Principal::ApiKey(k) => Reader::Key(k),
        Principal::Session(_) => Reader::Person(&scope),
    };
    let signed = tickets::sign(&state, reader, &appid, &url, ticket_type)
        .await
        .map_err(read_error)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(SignatureView::from(&signed)))
}
