//! The WeCom-compatible token endpoint: `GET /cgi-bin/gettoken?corpid=C&corpsecret=K`,
//! answered in WeCom's shapes so that a WeCom SDK pointed at tokenvault gets
//! the managed token of one WeCom app.
//!
//! `corpsecret` is a tokenvault API key limited to exactly that one WeCom app
//! (WeCom's request names the company only; the key says which of its apps),
//! never a WeCom secret. Every answer is HTTP 200 with
//! `{"errcode": 0, "errmsg": "ok", "access_token", "expires_in"}` or
//! `{"errcode", "errmsg"}`:
//!
//! | problem | errcode |
//! |---|---|
//! | `corpid` missing | 41002 |
//! | `corpsecret` missing | 41004 |
//! | the key is unknown, malformed or revoked | 40001 |
//! | too many invalid keys from this client address, or the key reads too fast (`Retry-After`) | 45009 |
//! | the key is not limited to exactly one app, or that app is not a WeCom app of `corpid` | 40013 |
//! | no valid token can be had: WeCom's errcode of the failed refresh, 45009 when the app's upstream budget is spent, or -1 (`Retry-After`) | e.g. 60020, 45009, -1 |
//!
//! 45009 is WeCom's own errcode for every frequency limit ("api freq out of
//! limit"), as the simulator answers it. The hot path is the WeChat
//! endpoints': the key from the key cache, its read rate, the app from the
//! app cache, the token from the token cache; the database only on a miss.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use secrecy::SecretString;
use serde::Serialize;
use utoipa::ToSchema;

use super::compat::{self, FREQ_LIMIT, error, with_retry_after};
use crate::service::identity::KeyRefusal;
use crate::service::token_read::{self, ReadError};
use crate::state::AppState;

/// WeCom's answer shapes on the WeCom-compatible endpoint (always HTTP 200).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum WeComAnswer {
    /// Success: the managed token and its remaining lifetime.
    Token {
        /// Always 0.
        errcode: i64,
        /// Always `ok`.
        errmsg: String,
        /// The access token.
        access_token: String,
        /// Seconds left.
        expires_in: i64,
    },
    /// Failure, with WeCom's errcode (41002, 41004, 40001, 40013, 45009, -1, …).
    Error {
        /// WeCom errcode.
        errcode: i64,
        /// WeCom errmsg.
        errmsg: String,
    },
}

/// GET /cgi-bin/gettoken?corpid=CORPID&corpsecret=API_KEY
#[utoipa::path(
    get,
    path = "/cgi-bin/gettoken",
    tag = "wechat",
    params(
        ("corpid" = String, Query, description = "WeCom corpid of the app"),
        ("corpsecret" = String, Query, description = "A tokenvault API key limited to that one WeCom app (not a WeCom secret)"),
    ),
    responses((status = 200, description = "WeCom's shapes: the managed token, or `{errcode, errmsg}`", body = WeComAnswer)),
)]
pub async fn gettoken(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let params = compat::query(&req);
    let Some(corpid) = compat::param(&params, "corpid") else {
        return error(41002, "corpid missing");
    };
    let Some(secret) = compat::param(&params, "corpsecret").map(SecretString::from) else {
        return error(41004, "corpsecret missing");
    };
    let client = crate::http::identity::client_ip(&req);
    let key = match crate::service::identity::verify_api_key(&state, client, &secret).await {
        Ok(key) => key,
        Err(KeyRefusal::Invalid) => {
            return error(
                40001,
                "invalid secret: corpsecret must be a tokenvault API key limited to one WeCom app",
            );
        }
        Err(KeyRefusal::Throttled(wait)) => {
            return with_retry_after(
                error(
                    FREQ_LIMIT,
                    "api freq out of limit: too many invalid API keys from this address",
                ),
                Duration::from_secs(wait),
            );
        }
        Err(KeyRefusal::Database(e)) => {
            return compat::system_error(&e, "the WeCom-compatible key check");
        }
    };
    match token_read::read_wecom(&state, &key, corpid).await {
        Ok((_, t)) => compat::json(&WeComAnswer::Token {
            errcode: 0,
            errmsg: "ok".into(),
            access_token: t.access_token.expose_secret().to_string(),
            expires_in: (t.expires_at - Utc::now()).num_seconds().max(1),
        }),
        Err(ReadError::NotFound | ReadError::KeyLimited) => error(
            40013,
            "invalid corpid: the key must be limited to exactly one WeCom app of this corpid",
        ),
        Err(ReadError::RateLimited(wait)) => with_retry_after(
            error(
                FREQ_LIMIT,
                "api freq out of limit: this API key reads tokens faster than \
                 TOKENVAULT_KEY_READ_RATE allows; keep the token for its expires_in",
            ),
            wait,
        ),
        Err(ReadError::Unavailable(u)) => compat::unavailable(&u, "token"),
        Err(ReadError::Internal(e)) => compat::system_error(e.as_ref(), "the WeCom token read"),
    }
}
