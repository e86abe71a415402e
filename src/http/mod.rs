//! What the HTTP adapters — the REST API, the WeChat-compatible endpoints and
//! the web UI — share: who is calling and from where ([`identity`]), the
//! request log ([`request_log`]) and the headers every answer carries.

pub mod identity;
pub mod request_log;

use actix_web::middleware::DefaultHeaders;

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

/// HTTP Strict Transport Security, sent when users reach tokenvault over
/// HTTPS (an `https://` `TOKENVAULT_PUBLIC_URL`): a year, subdomains not included.
pub const HSTS: (&str, &str) = ("strict-transport-security", "max-age=31536000");

/// The middleware that adds [`SECURITY_HEADERS`], and [`HSTS`] when `https`.
pub fn security_headers(https: bool) -> DefaultHeaders {
    SECURITY_HEADERS
        .into_iter()
        .chain(https.then_some(HSTS))
        .fold(DefaultHeaders::new(), DefaultHeaders::add)
}
