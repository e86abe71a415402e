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

/// The middleware that adds [`SECURITY_HEADERS`].
pub fn security_headers() -> DefaultHeaders {
    SECURITY_HEADERS
        .into_iter()
        .fold(DefaultHeaders::new(), DefaultHeaders::add)
}
