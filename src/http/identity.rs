//! Who is calling, read from the request: the client's address, the API key
//! or the session cookie (with the CSRF token for state changes), turned
//! into a [`Principal`] by the extractor every handler takes.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{Method, header};
use actix_web::{FromRequest, HttpRequest, web};
use secrecy::SecretString;

use crate::auth::Principal;
use crate::auth::session::{COOKIE, CSRF_HEADER, SessionPrincipal};
use crate::error::ApiError;
use crate::service::Visitor;
use crate::service::identity::{find_session, verify_api_key};
use crate::state::AppState;

/// The client's address: the TCP peer, or, when the peer is one of
/// `TOKENVAULT_TRUSTED_PROXIES`, the address it forwarded the request for
/// (see [`client`]). The one answer for the audit log, sessions, throttles
/// and the request log.
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Some(peer.to_canonical());
    };
    let trusted = &state.settings.trusted_proxies;
    if trusted.is_empty() {
        return Some(peer.to_canonical());
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .map(actix_web::http::header::HeaderValue::as_bytes)
        .collect::<Vec<_>>();
    Some(trusted.client(peer, forwarded.into_iter()))
}

/// Whether the user reached tokenvault over HTTPS: an `https://`
/// `TOKENVAULT_PUBLIC_URL`, or a peer among `TOKENVAULT_TRUSTED_PROXIES`
/// that says so (`X-Forwarded-Proto: https`, `Forwarded: proto=https`).
/// Then the answer carries HSTS and the session cookie is `Secure`.
pub fn over_https(req: &HttpRequest) -> bool {
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return false;
    };
    if state.settings.served_over_https() {
        return true;
    }
    let trusted = &state.settings.trusted_proxies;
    let Some(peer) = req.peer_addr().map(|a| a.ip()) else {
        return false;
    };
    if trusted.is_empty() {
        return false;
    }
    let headers = req.headers();
    trusted.forwarded_https(
        peer,
        headers
            .get_all("x-forwarded-proto")
            .map(header::HeaderValue::as_bytes),
        headers
            .get_all("forwarded")
            .map(header::HeaderValue::as_bytes),
    )
}

/// Whether this request's session cookie is `Secure`: the
/// `TOKENVAULT_SECURE_COOKIES` override, or [`over_https`].
pub fn cookies_secure(req: &HttpRequest) -> bool {
    req.app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.settings.secure_cookies)
        || over_https(req)
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await })
    }
}

fn state(req: &HttpRequest) -> Result<&web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("application state missing")))
}

async fn authenticate(req: &HttpRequest) -> Result<Principal, ApiError> {
    let state = state(req)?;
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        // A credential that is present but wrong is refused, never ignored.
        let key = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError::Unauthenticated(
                "send the API key as 'Authorization: Bearer <key>'",
            ))?;
        let key = SecretString::from(key);
        return verify_api_key(state, client_ip(req), &key)
            .await
            .map(Principal::ApiKey)
            .map_err(ApiError::from);
    }
    match session(req, state).await? {
        Some(s) => Ok(Principal::Session(s)),
        None => Err(ApiError::Unauthenticated(
            "sign in, or send an API key as 'Authorization: Bearer <key>'",
        )),
    }
}

/// The live session of this request, with the CSRF token checked for
/// state-changing methods.
async fn session(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<SessionPrincipal>, ApiError> {
    let Some(session) = lookup_session(req, state).await? else {
        return Ok(None);
    };
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        let sent = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !session.csrf_matches(sent) {
            return Err(ApiError::Csrf);
        }
    }
    Ok(Some(session))
}

/// The live session of this request without any CSRF check: for pages,
/// whose forms carry the token in a field the caller checks with
/// [`SessionPrincipal::csrf_matches`].
pub async fn lookup_session(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<SessionPrincipal>, ApiError> {
    let Some(cookie) = req.cookie(COOKIE) else {
        return Ok(None);
    };
    match find_session(state, cookie.value()).await? {
        Some(s) if s.enrolment_only && !ENROLMENT_PATHS.contains(&req.path()) => {
            Err(ApiError::TotpEnrollmentRequired)
        }
        found => Ok(found),
    }
}

/// What a session that may only enrol in two-factor sign-in can reach:
/// enrolling (API and page), who am I, and signing out.
const ENROLMENT_PATHS: &[&str] = &[
    "/api/v1/account/totp",
    "/api/v1/account/totp/confirm",
    "/api/v1/session",
    "/api/v1/logout",
    "/account/two-factor",
    "/account/two-factor/enrol",
    "/account/two-factor/confirm",
    "/logout",
];

/// The session cookie's value, if the request has one.
pub fn session_cookie(req: &HttpRequest) -> Option<String> {
    req.cookie(COOKIE).map(|c| c.value().to_string())
}

/// The request's `User-Agent`, if it is text.
pub fn user_agent(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
}

/// The visitor making this request: its address, `User-Agent` and the
/// session cookie it came with (ended when a new session starts).
pub fn visitor(req: &HttpRequest) -> Visitor {
    Visitor {
        client: client_ip(req),
        user_agent: user_agent(req).map(str::to_string),
        session_cookie: session_cookie(req),
        secure_cookies: cookies_secure(req),
        // The pages set the visitor's page language; the API's bodies may
        // name one.
        language: crate::mail::Language::default(),
    }
}

impl FromRequest for Visitor {
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(visitor(req)))
    }
}

impl FromRequest for crate::service::Actor {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            Ok(Self {
                principal: authenticate(&req).await?,
                client: client_ip(&req),
            })
        })
    }
}
