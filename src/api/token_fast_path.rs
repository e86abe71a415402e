//! The token read from memory, before anything else.
//!
//! Tenant servers read tokens many times a second, and nearly every read
//! can be answered from this replica's memory: the API key is in the key
//! cache, the AppID in the app cache, the decrypted token in the token
//! cache (all three invalidated across replicas by LISTEN/NOTIFY). This
//! middleware, the outermost, answers exactly those reads: `GET
//! /api/v1/apps/<appid>/token` with a cached API key (`Authorization:
//! Bearer`), a plain `min_ttl` (or none) and a cached token that lives long
//! enough. Nothing is looked up in the database and nothing can fail, so
//! there is nothing to log: the request logger's span, the router's
//! regular-expression match and the query extractor are skipped (they were
//! half of the read's cost, see docs/BENCHMARKS.md).
//!
//! Every other request, and every read this path cannot answer from memory
//! (a session, an unknown or limited key, a cache miss, a token that needs
//! refreshing, any error), goes on through the logger and the router to
//! [`super::apps::token`], which answers every case. Both paths are the one
//! use case of [`crate::service::token_read`] (this one its in-memory part),
//! and the success body comes from the same function ([`token_response`]).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use chrono::Utc;

use crate::auth::KeyPrincipal;
use crate::domain::AppId;
use crate::refresh::token::ValidToken;
use crate::service::token_read;
use crate::state::AppState;

const PREFIX: &str = "/api/v1/apps/";
const SUFFIX: &str = "/token";

/// The `{appid}` segment when `path` is a token read's path. Segments the
/// router would decode (`%xx`) are left to the router.
pub fn token_read_appid(path: &str) -> Option<&str> {
    let appid = path.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    (!appid.is_empty() && !appid.contains(['/', '%'])).then_some(appid)
}

/// The answer to a successful token read (both paths).
pub fn token_response(appid: &AppId, token: &ValidToken) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .content_type("application/json")
        .body(token.to_json(appid, Utc::now()))
}

/// The middleware (`actix_web::middleware::from_fn`, outermost).
///
/// # Errors
/// Only those of the services behind it.
pub async fn serve(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if req.method() == Method::GET
        && let Some(mut res) = from_memory(&req)
    {
        for (name, value) in crate::http::headers_for(req.request()) {
            res.headers_mut().insert(
                header::HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        return Ok(req.into_response(res).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// The answer when everything it needs is in memory; `None` otherwise.
fn from_memory(req: &ServiceRequest) -> Option<HttpResponse> {
    let appid = token_read_appid(req.path())?;
    let min_ttl = plain_min_ttl(req.query_string())?;
    let key = req
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?
        .trim();
    let state = req.app_data::<web::Data<AppState>>()?;
    let key: KeyPrincipal = state.auth.keys.verify_cached(key)?;
    let appid = AppId::parse("appid", appid).ok()?;
    let token =
        token_read::from_memory(state, &key, &appid, std::time::Duration::from_secs(min_ttl))?;
    Some(token_response(&appid, &token))
}

/// `min_ttl` from a query string that holds nothing else (or nothing), when
/// it is a number the routed handler would accept; `None` sends the request
/// the long way, where anything else gets its precise answer.
fn plain_min_ttl(query: &str) -> Option<u64> {
    if query.is_empty() {
        return Some(0);
    }
    let value = query.strip_prefix("min_ttl=")?;
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) || value.len() > 4 {
        return None;
    }
    let seconds: u64 = value.parse().ok()?;
    (seconds <= token_read::MAX_MIN_TTL).then_some(seconds)
}

#[cfg(test)]
mod tests {
    use super::{plain_min_ttl, token_read_appid};

    #[test]
    fn recognises_only_the_token_read() {
        assert_eq!(
            token_read_appid("/api/v1/apps/wx0123456789abcdef/token"),
            Some("wx0123456789abcdef")
        );
        for other in [
            "/api/v1/apps//token",
            "/api/v1/apps/wx1/token/invalidate",
            "/api/v1/apps/wx1/refresh",
            "/api/v1/apps/a/b/token",
            "/api/v1/apps/wx%30/token",
            "/api/v1/apps/token",
            "/api/v1/apps",
            "/apps/wx1/token",
        ] {
            assert_eq!(token_read_appid(other), None, "{other}");
        }
    }

    #[test]
    fn only_plain_min_ttls_are_read_here() {
        assert_eq!(plain_min_ttl(""), Some(0));
        assert_eq!(plain_min_ttl("min_ttl=0"), Some(0));
        assert_eq!(plain_min_ttl("min_ttl=7000"), Some(7000));
        for long_way in [
            "min_ttl=7001",
            "min_ttl=",
            "min_ttl=-1",
            "min_ttl=+5",
            "min_ttl=1e3",
            "min_ttl=99999999999999999999",
            "min_ttl=1&min_ttl=2",
            "min_ttl=1&x=2",
            "x=1",
            "min_ttl=%31",
        ] {
            assert_eq!(plain_min_ttl(long_way), None, "{long_way}");
        }
    }
}
