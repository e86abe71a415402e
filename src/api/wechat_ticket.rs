//! The WeChat-compatible `GET /cgi-bin/ticket/getticket?access_token=T&type=…`:
//! an SDK pointed at tokenvault for its tokens gets the app's JS-SDK ticket
//! with any token tokenvault served for that app (the current one, or a
//! replaced one WeChat still accepts), in WeChat's shapes (always HTTP 200):
//!
//! | problem | errcode |
//! |---|---|
//! | `access_token` missing | 41001 |
//! | not a token tokenvault served | 40014 |
//! | a token tokenvault served that WeChat no longer accepts | 42001 |
//! | `type` missing or not `jsapi` / `wx_card` | 40097 |
//! | no ticket can be had now: WeChat's errcode of the failure, 45009 when the app's budget is spent, or -1 (`Retry-After`) | e.g. 45009, -1 |
//!
//! A WeCom app's token is not one WeChat would know: 40014. WeCom's own
//! ticket endpoints (`api::wecom_ticket`) answer through [`ticket_answer`].

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;

use super::compat;
use super::views::tickets::{GetTicketAnswer, WeChatTicketAnswer};
use crate::domain::{AppKind, TicketType};
use crate::refresh::tickets::ValidTicket;
use crate::service::tickets::{self, ByTokenError};
use crate::service::token_read::ReadError;
use crate::state::AppState;

pub(super) use super::compat::error;

/// GET /cgi-bin/ticket/getticket?access_token=T&type=jsapi
#[utoipa::path(
    get,
    path = "/cgi-bin/ticket/getticket",
    tag = "wechat",
    params(
        ("access_token" = String, Query, description = "A token tokenvault served for the app (current, or replaced and still accepted by WeChat)"),
        ("type" = String, Query, description = "`jsapi` or `wx_card`"),
    ),
    responses((status = 200, description = "WeChat's shapes: `{errcode: 0, errmsg: \"ok\", ticket, expires_in}`, or `{errcode, errmsg}`", body = GetTicketAnswer)),
)]
pub async fn get_ticket(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let params = compat::query(&req);
    let param = |name: &str| compat::param(&params, name);
    let Some(token) = param("access_token") else {
        return error(41001, "access_token missing");
    };
    let Some(ticket_type) = param("type")
        .and_then(|t| t.parse::<TicketType>().ok())
        .filter(|t| t.fits(AppKind::Wechat))
    else {
        return error(40097, "invalid args: type must be jsapi or wx_card");
    };
    ticket_answer(tickets::by_token(&state, token, ticket_type, AppKind::Wechat).await)
}

/// A ticket read by token in the shape WeChat and WeCom share: the ticket,
/// or `{errcode, errmsg}` (40014 unknown token, 42001 expired, the
/// platform's errcode of a failed fetch, 45009 for a spent budget or hourly
/// limit, -1 otherwise; `Retry-After` when waiting helps).
pub(super) fn ticket_answer(result: Result<ValidTicket, ByTokenError>) -> HttpResponse {
    match result {
        Ok(t) => compat::json(&GetTicketAnswer::Ticket(WeChatTicketAnswer {
            errcode: 0,
            errmsg: "ok",
            ticket: t.ticket.expose_secret().to_string(),
            expires_in: (t.expires_at - Utc::now()).num_seconds().max(0),
        })),
        Err(ByTokenError::Unknown) => error(40014, "invalid access_token"),
        Err(ByTokenError::Expired) => error(42001, "access_token expired"),
        Err(ByTokenError::Read(ReadError::Unavailable(u))) => compat::unavailable(&u, "ticket"),
        Err(ByTokenError::Read(e)) => compat::system_error(&e, "the ticket read"),
    }
}
