//! The token read without the router.
//!
//! actix-web matches a path with a dynamic segment
//! (`/api/v1/apps/{appid}/token`) by running a regular expression, and the
//! request logger asks the same question again to name the route: on the
//! hottest request the service answers, that was a tenth of the CPU
//! (see docs/BENCHMARKS.md). This middleware recognises `GET
//! /api/v1/apps/<appid>/token` with two string comparisons and answers it
//! with the same code the routed handler runs ([`super::apps::read_token`]),
//! with the same extractors, so the two cannot disagree. Anything else goes
//! on to the router unchanged.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{FromRequest as _, HttpRequest, HttpResponse, web};

use super::apps::{TokenQuery, read_token};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::startup::AppState;

/// The route pattern of the token read, as the router would name it.
pub const TOKEN_READ_ROUTE: &str = "/api/v1/apps/{appid}/token";

const PREFIX: &str = "/api/v1/apps/";
const SUFFIX: &str = "/token";

/// The `{appid}` segment when `path` is a token read's path. Segments the
/// router would decode (`%xx`) are left to the router.
pub fn token_read_appid(path: &str) -> Option<&str> {
    let appid = path.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    (!appid.is_empty() && !appid.contains(['/', '%'])).then_some(appid)
}

/// The middleware (`actix_web::middleware::from_fn`).
///
/// # Errors
/// Only those of the services behind it; the token read's own errors are
/// answered as responses, exactly as the router would.
pub async fn serve(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if req.method() != Method::GET || token_read_appid(req.path()).is_none() {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let (http, _payload) = req.into_parts();
    let res = answer(&http).await;
    Ok(ServiceResponse::new(http, res).map_into_right_body())
}

async fn answer(http: &HttpRequest) -> HttpResponse {
    let Some(state) = http.app_data::<web::Data<AppState>>() else {
        return HttpResponse::from_error(ApiError::Internal(anyhow::anyhow!(
            "application state missing"
        )));
    };
    let principal = match Principal::extract(http).await {
        Ok(p) => p,
        Err(e) => return HttpResponse::from_error(e),
    };
    // The query extractor applies the application's QueryConfig, as routed.
    let query = match web::Query::<TokenQuery>::extract(http).await {
        Ok(q) => q,
        Err(e) => return HttpResponse::from_error(e),
    };
    let appid = token_read_appid(http.path()).unwrap_or_default();
    read_token(state, &principal, appid, query.min_ttl.as_deref())
        .await
        .unwrap_or_else(HttpResponse::from_error)
}

#[cfg(test)]
mod tests {
    use super::token_read_appid;

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
}
