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

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;

use super::views::tickets::{GetTicketAnswer, WeChatTicketAnswer};
use crate::domain::{AppKind, TicketType};
use crate::refresh::gate::RefusalReason;
use crate::refresh::tickets::ValidTicket;
use crate::refresh::token::Cause;
use crate::service::tickets::{self, ByTokenError};
use crate::service::token_read::ReadError;
use crate::state::AppState;

/// The frequency-limit errcode WeChat and WeCom both answer (WeChat's daily
/// quota, WeCom's "api freq out of limit"): tokenvault's own budgets and
/// WeCom's hourly ticket limits are refused with it.
pub(super) const FREQ_LIMIT: i64 = 45009;

fn answer<T: serde::Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(body)
}

pub(super) fn error(errcode: i64, errmsg: &str) -> HttpResponse {
    answer(&GetTicketAnswer::Error {
        errcode,
        errmsg: errmsg.to_string(),
    })
}

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
    let params = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
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
        Ok(t) => answer(&GetTicketAnswer::Ticket(WeChatTicketAnswer {
            errcode: 0,
            errmsg: "ok",
            ticket: t.ticket.expose_secret().to_string(),
            expires_in: (t.expires_at - Utc::now()).num_seconds().max(0),
        })),
        Err(ByTokenError::Unknown) => error(40014, "invalid access_token"),
        Err(ByTokenError::Expired) => error(42001, "access_token expired"),
        Err(ByTokenError::Read(ReadError::Unavailable(u))) => {
            let code = match (u.failure.as_ref().and_then(|f| f.errcode), u.cause) {
                (Some(code), _) => code,
                (None, Cause::Refused(RefusalReason::BudgetSpent | RefusalReason::HourlyLimit)) => {
                    FREQ_LIMIT
                }
                (None, _) => -1,
            };
            let mut res = error(code, &u.reason);
            res.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(u.retry_after.as_secs().max(1)),
            );
            res
        }
        Err(ByTokenError::Read(e)) => {
            tracing::error!(error = %e, "ticket read failed on a WeChat-compatible getticket");
            error(-1, "system error")
        }
    }
}
