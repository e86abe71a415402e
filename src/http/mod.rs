//! What the HTTP adapters — the REST API, the WeChat-compatible endpoints and
//! the web UI — share: who is calling and from where ([`identity`]), the
//! request log ([`request_log`]) and the headers every answer carries.

pub mod identity;
pub mod request_log;

use actix_web::HttpRequest;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;

/// Headers on every response (also set by the token read's fast path,
/// which answers before the middleware that adds them).
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    (
        "content-security-policy",
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
];

/// HTTP Strict Transport Security, sent when the user reached tokenvault
/// over HTTPS (see [`identity::over_https`]): a year, subdomains not included.
pub const HSTS: (&str, &str) = ("strict-transport-security", "max-age=31536000");

/// The headers of an answer to `req`: [`SECURITY_HEADERS`], and [`HSTS`]
/// when the request came over HTTPS.
pub fn headers_for(req: &HttpRequest) -> impl Iterator<Item = (&'static str, &'static str)> {
    headers_over(identity::over_https(req))
}

fn headers_over(https: bool) -> impl Iterator<Item = (&'static str, &'static str)> {
    SECURITY_HEADERS.into_iter().chain(https.then_some(HSTS))
}

/// The middleware (`actix_web::middleware::from_fn`) that adds
/// [`headers_for`] the request to every answer that lacks them.
///
/// # Errors
/// Only those of the services behind it.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let https = identity::over_https(req.request());
    let mut res = next.call(req).await?;
    for (name, value) in headers_over(https) {
        let name = HeaderName::from_static(name);
        if !res.headers().contains_key(&name) {
            res.headers_mut()
                .insert(name, HeaderValue::from_static(value));
        }
    }
    Ok(res)
}
