//! The web UI: server-rendered pages (templates in `web/templates/`), one
//! stylesheet and one small script (in `web/static/`), all embedded in the
//! binary. No CDN, no inline script or style (the CSP forbids them).
//!
//! CSRF: pages of a signed-in person carry the session's token in a hidden
//! `csrf_token` field, checked in constant time. The forms posted before a
//! session exists (sign-in, sign-up, password reset, joining) carry a
//! pre-session token instead (`presession`: an HMAC of a cookie's random
//! value), which stops another site from signing a visitor in to an
//! account of the attacker's choosing (login CSRF); a present `Origin` or
//! `Sec-Fetch-Site` must also name this host.

pub mod account;
pub mod accounts;
pub mod activity;
pub mod alerts;
pub mod app_limit;
pub mod app_page;
pub mod app_tickets;
pub mod apps;
pub mod audit;
pub mod charts;
pub mod departed;
pub mod i18n;
pub mod join;
pub mod keys;
pub mod login_totp;
pub mod ops;
pub mod pages;
pub mod people;
pub mod presession;
pub mod recovery;
pub mod snippets;
mod templates;
pub mod time_zone;
pub mod timeline;
pub mod two_factor;

use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use minijinja::context;
use minijinja::value::Serde;
use sha2::{Digest as _, Sha256};

use crate::auth::SessionPrincipal;
use crate::error::ApiError;
use crate::state::AppState;
use i18n::Lang;

const STYLESHEET: &str = include_str!("../../web/static/app.css");
const SCRIPT: &str = include_str!("../../web/static/app.js");
/// The favicon (the brand's green square), also answered at `/favicon.ico`,
/// where browsers look for one without being told.
const FAVICON: &str = include_str!("../../web/static/favicon.svg");
/// Cookie carrying a message to show on the next page.
const FLASH_COOKIE: &str = "tv_flash";

/// A short content hash, so the static files can be cached for a year.
static ASSET_VERSION: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::digest([STYLESHEET, SCRIPT, FAVICON].concat().as_bytes());
    hex::encode(&digest[..6])
});

/// Register the pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    two_factor_pages(cfg);
    cfg.route("/", web::get().to(pages::home))
        .route("/static/app.css", web::get().to(stylesheet))
        .route("/static/app.js", web::get().to(script))
        .route("/static/favicon.svg", web::get().to(favicon))
        .route("/favicon.ico", web::get().to(favicon))
        .route("/lang/{tag}", web::get().to(pages::switch_language))
        .configure(signed_out_pages)
        // The account page: profile, password, sessions.
        .configure(account::routes)
        .configure(departed::routes)
        .route("/dashboard", web::get().to(apps::dashboard))
        .service(
            web::resource("/apps/new")
                .route(web::get().to(apps::new_app_form))
                .route(web::post().to(apps::register_app)),
        )
        .service(
            web::resource("/keys")
                .route(web::get().to(keys::keys))
                .route(web::post().to(keys::create_key)),
        )
        .route("/keys/{id}/revoke", web::post().to(keys::revoke_key))
        .route("/members", web::get().to(people::members))
        .service(
            web::resource("/members/invite")
                .route(web::get().to(people::invite_form))
                .route(web::post().to(people::create_invite)),
        )
        .route("/members/{id}/role", web::post().to(people::change_role))
        .route(
            "/members/{id}/remove",
            web::post().to(people::remove_member),
        )
        .route(
            "/members/invites/{id}/revoke",
            web::post().to(people::revoke_invite),
        )
        .route("/invite", web::get().to(join::invite_without_token))
        .service(
            web::resource("/invite/{token}")
                .route(web::get().to(join::invite_page))
                .route(web::post().to(join::accept_invite)),
        )
        .route("/audit", web::get().to(audit::audit))
        .configure(alerts::configure)
        .route("/apps/{appid}", web::get().to(app_page::app_page))
        .route("/apps/{appid}/refresh", web::post().to(pages::refresh_app))
        .configure(app_tickets::routes)
        .route(
            "/apps/{appid}/{action}",
            web::post().to(app_page::app_action),
        )
        .configure(time_zone::routes)
        .route("/status", web::get().to(ops::status_page))
        .route("/operator", web::get().to(ops::operator_page))
        .route(
            "/operator/tenants/{id}/app-limit",
            web::post().to(app_limit::set_app_limit),
        );
}

/// Sign-up, sign-in and out, and the way back in (forgotten password,
/// address verification).
fn signed_out_pages(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/signup")
            .route(web::get().to(accounts::signup_form))
            .route(web::post().to(accounts::signup)),
    )
    .service(
        web::resource("/login")
            .route(web::get().to(accounts::login_form))
            .route(web::post().to(accounts::login)),
    )
    .route("/logout", web::post().to(accounts::logout))
    .service(
        web::resource("/forgot")
            .route(web::get().to(recovery::forgot_form))
            .route(web::post().to(recovery::forgot)),
    )
    .service(
        web::resource("/reset")
            .route(web::get().to(recovery::reset_form))
            .route(web::post().to(recovery::reset)),
    )
    .service(
        web::resource("/verify-email")
            .route(web::get().to(recovery::verify_form))
            .route(web::post().to(recovery::verify)),
    )
    .service(
        web::resource("/confirm-alert-mail")
            .route(web::get().to(recovery::alert_confirm_form))
            .route(web::post().to(recovery::alert_confirm)),
    );
}

/// The second sign-in step and the two-factor page.
fn two_factor_pages(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/login/two-factor")
            .route(web::get().to(login_totp::form))
            .route(web::post().to(login_totp::submit)),
    )
    .route("/account/two-factor", web::get().to(two_factor::page))
    .route(
        "/account/two-factor/{action}",
        web::post().to(two_factor::action),
    );
}

async fn stylesheet() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLESHEET)
}

async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn favicon() -> HttpResponse {
    asset("image/svg+xml", FAVICON)
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        ))
        .body(body)
}

/// A message shown once on the next page, after an action.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Flash {
    /// `ok` or `error`.
    pub kind: String,
    /// Catalogue key of the message.
    pub key: String,
    /// A value shown with it (an AppID), if any.
    pub arg: String,
}

impl Flash {
    fn parse(raw: &str) -> Option<Self> {
        let mut parts = raw.splitn(3, ':');
        let kind = parts.next()?;
        let key = parts.next()?;
        let arg = parts.next().unwrap_or_default();
        let known = matches!(kind, "ok" | "error") && Lang::En.messages().contains_key(key);
        known.then(|| Self {
            kind: kind.into(),
            key: key.into(),
            arg: arg.chars().take(64).collect(),
        })
    }
}

/// What every page needs: the visitor's language, who is signed in (if
/// anyone), and the flash message to show.
pub struct Page {
    /// The language to answer in.
    pub lang: Lang,
    /// The signed-in person, if any (looked up without a CSRF check:
    /// forms check their own field).
    pub user: Option<SessionPrincipal>,
    /// The time zone the signed-in person chose (none: the browser's).
    pub time_zone: Option<String>,
    flash: Option<Flash>,
    path: String,
    /// This service's address as the visitor reached it, for snippets.
    pub base_url: String,
    /// The visitor's pre-session token (login CSRF).
    presession: presession::PreSession,
    /// Signed in with a session that may only enrol in two-factor sign-in
    /// (then `user` is `None` on every other page).
    pub must_enrol: bool,
}

impl FromRequest for Page {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("application state missing")))?;
            let (user, must_enrol) = match crate::http::identity::lookup_session(&req, state).await
            {
                Ok(user) => (user, false),
                Err(ApiError::TotpEnrollmentRequired) => (None, true),
                Err(e) => return Err(e),
            };
            let time_zone = user.as_ref().and_then(|u| u.time_zone.clone());
            Ok(Self {
                lang: Lang::of(&req),
                user,
                must_enrol,
                time_zone,
                flash: req
                    .cookie(FLASH_COOKIE)
                    .and_then(|c| Flash::parse(c.value())),
                path: req.path().to_string(),
                base_url: snippets::base_url(&req),
                presession: presession::PreSession::of(
                    &req,
                    &state.crypto,
                    crate::http::identity::cookies_secure(&req),
                ),
            })
        })
    }
}

impl Page {
    /// Render `template` with `ctx` plus the layout's values.
    pub fn render(
        &self,
        status: StatusCode,
        template: &str,
        ctx: minijinja::Value,
    ) -> HttpResponse {
        let full = context! {
            lang => self.lang.tag(),
            t => self.lang.messages(),
            user => self.user.as_ref().map(|u| context! {
                email => u.email.as_str(),
                role => u.role.as_str(),
                verified => u.email_verified,
            }),
            csrf_token => self.user.as_ref().map(|u| u.csrf_token.as_str()),
            flash => Serde(&self.flash),
            path => self.path.as_str(),
            asset_version => ASSET_VERSION.as_str(),
            login_token => self.presession.token(),
            time_zone => self.time_zone.as_deref(),
            ..ctx
        };
        match templates::render(template, full) {
            Ok(html) => {
                let mut res = HttpResponse::build(status);
                res.insert_header((
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ))
                .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
                if self.flash.is_some() {
                    res.cookie(removal(FLASH_COOKIE));
                }
                if let Some(cookie) = self.presession.cookie() {
                    res.cookie(cookie);
                }
                res.body(html)
            }
            Err(e) => {
                tracing::error!(error = %e, template, "cannot render page");
                HttpResponse::InternalServerError().body("internal error")
            }
        }
    }

    /// The page for an error: sign-in for a missing session, otherwise a
    /// page that says what went wrong (internal causes are logged, not shown).
    pub fn error(&self, e: &ApiError) -> HttpResponse {
        let (status, key) = match e {
            ApiError::Unauthenticated(_) | ApiError::TotpEnrollmentRequired if self.must_enrol => {
                return redirect_with_flash(
                    "/account/two-factor",
                    "error",
                    "flash_enrol_first",
                    "",
                );
            }
            ApiError::Unauthenticated(_) => {
                return sign_in_then(&self.path, "flash_signin_needed");
            }
            ApiError::NotFound(_) => return self.not_found(),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "error_forbidden"),
            ApiError::TooManyRequests(_) | ApiError::RateLimited { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "error_too_many")
            }
            ApiError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "error_busy"),
            ApiError::Internal(cause) => {
                tracing::error!(error = ?cause, "page failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "error_internal")
            }
            _ => (StatusCode::BAD_REQUEST, "error_bad_request"),
        };
        self.render(
            status,
            "error.html",
            context! { message => self.lang.text(key), status => status.as_u16() },
        )
    }
}

impl Page {
    /// The page for a path or an item that does not exist (or belongs to
    /// another organisation): says so and links back.
    pub fn not_found(&self) -> HttpResponse {
        let back = match &self.user {
            None => "login",
            Some(u) if u.role == crate::domain::Role::Operator => "operator",
            Some(_) => "dashboard",
        };
        self.render(StatusCode::NOT_FOUND, "notfound.html", context! { back })
    }
}

impl Page {
    /// The signed-in person of this page as the use cases' actor, from the
    /// request's address; unauthenticated when nobody is signed in. Forms
    /// check their CSRF field first.
    pub fn actor(&self, req: &HttpRequest) -> Result<crate::service::Actor, ApiError> {
        let user = self
            .user
            .clone()
            .ok_or(ApiError::Unauthenticated("sign in"))?;
        Ok(crate::service::Actor {
            principal: crate::auth::Principal::Session(user),
            client: crate::http::identity::client_ip(req),
        })
    }
}

impl Page {
    /// Whether a form posted without a session may be taken: it carries
    /// this browser's pre-session token in `login_token` and, when the
    /// browser says where it came from, it came from this host.
    pub fn signed_out_form_ok(&self, req: &HttpRequest, login_token: &str) -> bool {
        same_origin(req) && self.presession.accepts(login_token)
    }
}

/// A 303 redirect to `location`.
pub fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, local_path(location).unwrap_or("/")))
        .finish()
}

/// `path` if it is a path on this site that is safe to send the browser to:
/// printable ASCII, starting with one `/` (never an open redirect, never a
/// header split).
pub fn local_path(path: &str) -> Option<&str> {
    let safe = path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && path.bytes().all(|b| b.is_ascii_graphic());
    safe.then_some(path)
}

/// To the sign-in page with message `key`, coming back to `next` (a path
/// on this site) once signed in.
pub fn sign_in_then(next: &str, key: &str) -> HttpResponse {
    let location = match local_path(next) {
        Some(next) if !["/", "/login", "/logout", "/signup"].contains(&next) => format!(
            "/login?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("next", next)
                .finish()
        ),
        _ => "/login".to_string(),
    };
    redirect_with_flash(&location, "error", key, "")
}

/// A 303 redirect to `location` that shows message `key` (with `arg`) there.
pub fn redirect_with_flash(location: &str, kind: &str, key: &str, arg: &str) -> HttpResponse {
    let cookie = Cookie::build(FLASH_COOKIE, format!("{kind}:{key}:{arg}"))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .finish();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, local_path(location).unwrap_or("/")))
        .cookie(cookie)
        .finish()
}

fn removal(name: &'static str) -> Cookie<'static> {
    let mut c = Cookie::build(name, "").path("/").finish();
    c.make_removal();
    c
}

/// Whether a form post without a session came from a page of this host:
/// `Sec-Fetch-Site` when the browser sends it, else a present `Origin` must
/// name this host (with `Referrer-Policy: no-referrer` browsers may send
/// `Origin: null`, which proves nothing either way; see the module comment).
pub fn same_origin(req: &HttpRequest) -> bool {
    if let Some(site) = req.headers().get("sec-fetch-site") {
        return matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .unwrap_or("null");
    if origin == "null" {
        return true;
    }
    let host = origin.split_once("://").map_or("", |(_, h)| h);
    host == req.connection_info().host()
}
