//! What the WeChat- and WeCom-compatible endpoints share (`wechat_compat`,
//! `wecom_compat`, `wechat_ticket`, `wecom_ticket`): their answers are
//! always HTTP 200 JSON that is never cached, errors are `{errcode,
//! errmsg}` with `Retry-After` when waiting helps, the query is read as
//! WeChat reads it, and a token or ticket that cannot be had is answered
//! with the same errcodes on both platforms.

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use crate::refresh::gate::RefusalReason;
use crate::refresh::token::{Cause, Unavailable};

/// The frequency-limit errcode WeChat and WeCom both answer (WeChat's
/// daily quota, WeCom's "api freq out of limit", 接口调用超过限制):
/// tokenvault's spent budgets and WeCom's hourly ticket limits are refused
/// with it, as the simulator does.
pub const FREQ_LIMIT: i64 = 45009;

/// System error: retry later (both platforms).
pub const SYSTEM_ERROR: i64 = -1;

/// HTTP 200 with the platform's JSON; never cached (it may carry a token).
pub fn json<T: Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")))
        .json(body)
}

/// The platforms' error shape.
#[derive(Serialize)]
struct Error<'a> {
    errcode: i64,
    errmsg: &'a str,
}

/// `{errcode, errmsg}`.
pub fn error(errcode: i64, errmsg: &str) -> HttpResponse {
    json(&Error { errcode, errmsg })
}

/// Add `Retry-After` (whole seconds, at least one).
pub fn with_retry_after(mut res: HttpResponse, wait: Duration) -> HttpResponse {
    res.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(wait.as_secs().max(1)),
    );
    res
}

/// -1, so the SDK retries; the cause goes to the log only.
pub fn system_error(error: &dyn std::error::Error, what: &str) -> HttpResponse {
    tracing::error!(error = %error, "{what} on a compatible endpoint");
    self::error(SYSTEM_ERROR, "system error")
}

/// The query's pairs, as WeChat reads them (undecodable: none).
pub fn query(req: &HttpRequest) -> Vec<(String, String)> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default()
}

/// The first value of `name`; an empty one counts as missing, as at WeChat.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The answer when no token or ticket can be had now: the platform's own
/// errcode of the failed refresh (the SDK reacts as it would to WeChat or
/// WeCom: 45009 waits, -1 retries), 45009 for a spent budget or an hourly
/// limit, -1 otherwise; with `Retry-After`.
pub fn unavailable(u: &Unavailable, what: &str) -> HttpResponse {
    let (errcode, errmsg) = unavailable_error(u, what);
    with_retry_after(error(errcode, &errmsg), u.retry_after)
}

/// The errcode and errmsg of [`unavailable`].
fn unavailable_error(u: &Unavailable, what: &str) -> (i64, String) {
    match (u.failure.as_ref(), u.cause) {
        (Some(f), _) if f.errcode.is_some_and(|c| c != 0) => (
            f.errcode.unwrap_or(SYSTEM_ERROR),
            format!(
                "{} ({}'s answer to tokenvault's refresh of this app's {what})",
                f.errmsg,
                f.platform.platform()
            ),
        ),
        (_, Cause::Refused(RefusalReason::BudgetSpent | RefusalReason::HourlyLimit)) => {
            (FREQ_LIMIT, format!("api freq out of limit: {}", u.reason))
        }
        _ => (SYSTEM_ERROR, format!("system busy: {}", u.reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AppKind;
    use crate::upstream::{ErrorClass, FetchFailure};

    #[test]
    fn what_cannot_be_had_is_answered_alike_on_both_platforms() {
        let refused = |cause| Unavailable {
            cause,
            failure: None,
            retry_after: Duration::from_secs(30),
            reason: "spent".into(),
        };
        for reason in [RefusalReason::BudgetSpent, RefusalReason::HourlyLimit] {
            let u = refused(Cause::Refused(reason));
            assert_eq!(unavailable_error(&u, "token").0, FREQ_LIMIT);
            let res = unavailable(&u, "token");
            assert_eq!(
                res.headers().get(header::RETRY_AFTER).unwrap(),
                &HeaderValue::from_static("30")
            );
        }
        assert_eq!(
            unavailable_error(&refused(Cause::Busy), "token").0,
            SYSTEM_ERROR
        );
        let failed = Unavailable {
            failure: Some(FetchFailure {
                class: ErrorClass::Configuration,
                errcode: Some(60020),
                errmsg: "not allow to access from your ip".into(),
                outcome_unknown: false,
                platform: AppKind::Wecom,
            }),
            ..refused(Cause::Failed)
        };
        let (code, msg) = unavailable_error(&failed, "token");
        assert_eq!(code, 60020);
        assert!(msg.contains("WeCom's answer to tokenvault's refresh of this app's token"));
    }
}
