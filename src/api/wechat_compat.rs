//! WeChat-compatible token endpoints: `GET /cgi-bin/token` and
//! `POST /cgi-bin/stable_token`, answered exactly in WeChat's shapes so that
//! an existing WeChat SDK pointed at tokenvault gets the managed token.
//!
//! The `secret` parameter is a tokenvault API key, never a WeChat appsecret.
//! Every answer is HTTP 200 with `{"access_token", "expires_in"}` (the
//! remaining seconds of the managed token) or `{"errcode", "errmsg"}`, like
//! WeChat's own. Errors use WeChat's codes, checked in WeChat's order:
//!
//! | problem | errcode |
//! |---|---|
//! | `grant_type` missing or not `client_credential` | 40002 |
//! | `appid` missing | 41002 |
//! | `secret` missing | 41004 |
//! | `appid` malformed, not in the key's organisation, or not allowed for a limited key | 40013 |
//! | the key is unknown, malformed or revoked | 40125 |
//! | too many invalid keys from this client address: refused before any lookup (`Retry-After` says how long) | 45011 |
//! | stable token: not a POST | 43002 |
//! | stable token: the body is not a JSON object of WeChat's field types | 47001 |
//! | the key reads faster than `TOKENVAULT_KEY_READ_RATE` allows (`Retry-After`) | 45011 |
//! | no valid token can be had: WeChat's errcode of the failed (or still backing-off) refresh, or -1 (`Retry-After`) | e.g. 40164, 45009, -1 |
//! | the app's upstream budget for today is spent | 45009 |
//!
//! `force_refresh: true` is accepted and ignored: the managed token is shared
//! by every server of the organisation, and one client must not be able to
//! kill it for all the others. A client that saw a token rejected reports it
//! to `POST /api/v1/apps/{appid}/token/invalidate` (compare-and-refresh).

use std::time::Duration;

use actix_web::http::Method;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use secrecy::SecretString;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::compat::{self, with_retry_after};
use super::views::tokens::WeChatAnswer;
use crate::domain::AppId;
use crate::service::identity::KeyRefusal;
use crate::service::token_read::{self, ReadError, Reader};
use crate::state::AppState;

/// `grant_type` is missing or not `client_credential`.
const INVALID_GRANT_TYPE: i64 = 40002;
/// `appid` is malformed or not one this key may use.
const INVALID_APPID: i64 = 40013;
/// The secret (a tokenvault API key) is not valid.
const INVALID_SECRET: i64 = 40125;
/// `appid` missing.
const APPID_MISSING: i64 = 41002;
/// `secret` missing.
const SECRET_MISSING: i64 = 41004;
/// The stable-token endpoint takes POST only.
const REQUIRE_POST: i64 = 43002;
/// The body is not the JSON expected.
const DATA_FORMAT: i64 = 47001;
/// WeChat's "api minute-quota reach limit": SDKs wait rather than retry at
/// once, which is what a client with a bad key should do.
const MINUTE_QUOTA: i64 = 45011;

// Documented only: the handler implements WeChat's own tolerance
// (`stable_request`): fields may be missing or `null`, and anything else of
// the wrong type is 47001.
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

/// The parameters of a token request, as sent.
#[derive(Default)]
struct Credentials {
    grant_type: Option<String>,
    appid: Option<String>,
    secret: Option<SecretString>,
}

/// A WeChat-shaped error answer.
fn wx_error(errcode: i64, errmsg: &str) -> HttpResponse {
    compat::error(errcode, errmsg)
}

/// An empty parameter counts as a missing one, as at WeChat.
fn present(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// GET /cgi-bin/token?grant_type=client_credential&appid=APPID&secret=API_KEY
#[utoipa::path(
    get,
    path = "/cgi-bin/token",
    tag = "wechat",
    params(
        ("grant_type" = String, Query, description = "Must be `client_credential`"),
        ("appid" = String, Query, description = "WeChat AppID"),
        ("secret" = String, Query, description = "A tokenvault API key (not a WeChat appsecret)"),
    ),
    responses((status = 200, description = "WeChat's shapes: the managed token, or `{errcode, errmsg}`", body = WeChatAnswer)),
)]
pub async fn classic_token(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let params = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let mut creds = Credentials::default();
    for (key, value) in params {
        // The first occurrence wins, as in most query parsers.
        match key.as_str() {
            "grant_type" if creds.grant_type.is_none() => creds.grant_type = Some(value),
            "appid" if creds.appid.is_none() => creds.appid = Some(value),
            "secret" if creds.secret.is_none() => creds.secret = Some(SecretString::from(value)),
            _ => {}
        }
    }
    answer(&state, crate::http::identity::client_ip(&req), creds).await
}

/// POST /cgi-bin/stable_token with JSON
/// `{"grant_type", "appid", "secret", "force_refresh"}`.
#[utoipa::path(
    post,
    path = "/cgi-bin/stable_token",
    tag = "wechat",
    request_body = StableTokenRequest,
    responses((status = 200, description = "WeChat's shapes: the managed token, or `{errcode, errmsg}`", body = WeChatAnswer)),
)]
pub async fn stable_token(
    req: HttpRequest,
    body: Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    if req.method() != Method::POST {
        return wx_error(REQUIRE_POST, "require POST method");
    }
    match stable_request(&body) {
        Some(creds) => answer(&state, crate::http::identity::client_ip(&req), creds).await,
        None => wx_error(DATA_FORMAT, "data format error"),
    }
}

/// The stable-token body: a JSON object whose fields, when present, have
/// WeChat's types (strings, and a boolean `force_refresh`). `None` means 47001.
fn stable_request(body: &[u8]) -> Option<Credentials> {
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let mut text = |key: &str| match map.remove(key) {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s)),
        Some(_) => None,
    };
    let grant_type = text("grant_type")?;
    let appid = text("appid")?;
    let secret = text("secret")?.map(SecretString::from);
    // Accepted for compatibility and deliberately ignored (see the module docs).
    match map.get("force_refresh") {
        None | Some(Value::Null | Value::Bool(_)) => {}
        Some(_) => return None,
    }
    Some(Credentials {
        grant_type,
        appid,
        secret,
    })
}

/// Check the request in WeChat's order and answer with the managed token.
async fn answer(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    creds: Credentials,
) -> HttpResponse {
    if creds.grant_type.as_deref() != Some("client_credential") {
        return wx_error(INVALID_GRANT_TYPE, "invalid grant_type");
    }
    let Some(appid) = present(creds.appid) else {
        return wx_error(APPID_MISSING, "appid missing");
    };
    let Some(secret) = creds
        .secret
        .filter(|s| !secrecy::ExposeSecret::expose_secret(s).is_empty())
    else {
        return wx_error(SECRET_MISSING, "appsecret missing");
    };
    // A WeCom app is read through WeCom's own `gettoken`, never here.
    let Ok(appid) = AppId::parse_wechat("appid", &appid) else {
        return wx_error(INVALID_APPID, "invalid appid");
    };
    let key = match crate::service::identity::verify_api_key(state, client, &secret).await {
        Ok(key) => key,
        Err(KeyRefusal::Invalid) => {
            return wx_error(
                INVALID_SECRET,
                "invalid appsecret: the secret must be a valid tokenvault API key of this appid's organisation",
            );
        }
        Err(KeyRefusal::Throttled(retry_after)) => {
            return with_retry_after(
                wx_error(
                    MINUTE_QUOTA,
                    &format!(
                        "api minute-quota reach limit: too many invalid API keys from this address; retry in {retry_after} seconds"
                    ),
                ),
                Duration::from_secs(retry_after),
            );
        }
        Err(KeyRefusal::Database(e)) => return compat::system_error(&e, "the API key check"),
    };
    // Another tenant's app, an unknown one and one the key may not use all
    // answer the same: nothing tells them apart.
    match token_read::read(state, Reader::Key(&key), &appid, Duration::ZERO).await {
        Ok(t) => {
            let expires_in = (t.expires_at - Utc::now()).num_seconds().max(1);
            compat::json(&WeChatAnswer::Token {
                access_token: t.access_token.expose_secret().to_string(),
                expires_in,
            })
        }
        Err(ReadError::NotFound | ReadError::KeyLimited) => {
            wx_error(INVALID_APPID, "invalid appid")
        }
        Err(ReadError::RateLimited(wait)) => with_retry_after(
            wx_error(
                MINUTE_QUOTA,
                "api minute-quota reach limit: this API key reads tokens faster than \
                 TOKENVAULT_KEY_READ_RATE allows; keep the token for its expires_in",
            ),
            wait,
        ),
        Err(ReadError::Unavailable(u)) => compat::unavailable(&u, "token"),
        Err(ReadError::Internal(e)) => compat::system_error(e.as_ref(), "the token read"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    #[test]
    fn stable_bodies_need_wechats_types() {
        let ok = stable_request(
            br#"{"grant_type":"client_credential","appid":"wx1","secret":"k","force_refresh":true}"#,
        )
        .expect("valid body");
        assert_eq!(ok.grant_type.as_deref(), Some("client_credential"));
        assert_eq!(ok.appid.as_deref(), Some("wx1"));
        assert_eq!(ok.secret.expect("secret").expose_secret(), "k");
        let empty = stable_request(b"{}").expect("an empty object is well-formed");
        assert!(empty.appid.is_none() && empty.secret.is_none());
        for bad in [
            &b""[..],
            b"grant_type=client_credential",
            b"[]",
            b"\"x\"",
            br#"{"appid":1}"#,
            br#"{"force_refresh":"yes"}"#,
            br#"{"secret":["a"]}"#,
        ] {
            assert!(
                stable_request(bad).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn empty_parameters_are_missing() {
        assert_eq!(present(Some(String::new())), None);
        assert_eq!(present(Some("wx".into())), Some("wx".into()));
    }
}
