//! The WeCom-compatible JS-SDK ticket endpoints, for a token tokenvault
//! served for a WeCom app (found like the WeChat-compatible `getticket`'s,
//! by its keyed hash):
//!
//! - `GET /cgi-bin/get_jsapi_ticket?access_token=T`: the company's ticket
//!   (`wx.config`), kept as the app's `jsapi` ticket;
//! - `GET /cgi-bin/ticket/get?access_token=T&type=agent_config`: the app's
//!   ticket (`wx.agentConfig`).
//!
//! Answers are WeCom's (always HTTP 200): `{errcode: 0, errmsg: "ok",
//! ticket, expires_in}` or `{errcode, errmsg}`:
//!
//! | problem | errcode |
//! |---|---|
//! | `access_token` missing | 41001 |
//! | not a token tokenvault served for a WeCom app | 40014 |
//! | a token tokenvault served that WeCom no longer accepts | 42001 |
//! | `ticket/get`: `type` missing or not `agent_config` | 40058 |
//! | WeCom's hourly ticket limit (400 per company, 100 per app) or the app's daily budget reached (`Retry-After`) | 45009 |
//! | no ticket can be had now: WeCom's errcode of the failure, or -1 (`Retry-After`) | e.g. 48002, -1 |

use actix_web::{HttpRequest, HttpResponse, web};

use super::compat::{error, param, query};
use super::views::tickets::GetTicketAnswer;
use super::wechat_ticket::ticket_answer;
use crate::domain::{AppKind, TicketType};
use crate::service::tickets;
use crate::state::AppState;

/// WeCom's "invalid parameter" (不合法的参数).
const INVALID_PARAMETER: i64 = 40058;

async fn by_token(state: &AppState, token: Option<&str>, ticket_type: TicketType) -> HttpResponse {
    let Some(token) = token else {
        return error(41001, "access_token missing");
    };
    ticket_answer(tickets::by_token(state, token, ticket_type, AppKind::Wecom).await)
}

/// GET /cgi-bin/get_jsapi_ticket?access_token=T
#[utoipa::path(
    get,
    path = "/cgi-bin/get_jsapi_ticket",
    tag = "wechat",
    params(
        ("access_token" = String, Query, description = "A token tokenvault served for the WeCom app (current, or still accepted by WeCom)"),
    ),
    responses((status = 200, description = "WeCom's shapes: the company's JS-SDK ticket `{errcode: 0, errmsg: \"ok\", ticket, expires_in}`, or `{errcode, errmsg}`", body = GetTicketAnswer)),
)]
pub async fn get_jsapi_ticket(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let params = query(&req);
    by_token(&state, param(&params, "access_token"), TicketType::Jsapi).await
}

/// GET /cgi-bin/ticket/get?access_token=T&type=agent_config
#[utoipa::path(
    get,
    path = "/cgi-bin/ticket/get",
    tag = "wechat",
    params(
        ("access_token" = String, Query, description = "A token tokenvault served for the WeCom app (current, or still accepted by WeCom)"),
        ("type" = String, Query, description = "`agent_config`"),
    ),
    responses((status = 200, description = "WeCom's shapes: the app's ticket for `wx.agentConfig` `{errcode: 0, errmsg: \"ok\", ticket, expires_in}`, or `{errcode, errmsg}`", body = GetTicketAnswer)),
)]
pub async fn get_agent_ticket(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let params = query(&req);
    let token = param(&params, "access_token");
    if token.is_some() && param(&params, "type") != Some("agent_config") {
        return error(
            INVALID_PARAMETER,
            "invalid parameter: type must be agent_config",
        );
    }
    by_token(&state, token, TicketType::AgentConfig).await
}
