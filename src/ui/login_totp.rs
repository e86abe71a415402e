//! The second sign-in step: after a right password, an account with
//! two-factor sign-in on is asked for a code. Between the steps the browser
//! holds only a signed, short-lived `tv_pending_2fa` cookie naming the
//! email whose password was right: not a session, so it can do nothing but
//! post a code here (under the sign-in throttle).

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use minijinja::context;
use serde::Deserialize;

use super::pages::{FieldErrors, one};
use super::{Page, redirect, redirect_with_flash};
use crate::error::ApiError;
use crate::http::identity::visitor;
use crate::service::accounts;
use crate::state::AppState;

/// The cookie between the two steps.
const COOKIE: &str = "tv_pending_2fa";
/// Seconds the second step may take.
const PENDING_SECONDS: i64 = 300;
/// What the cookie's HMAC covers besides its body (a purpose of its own).
const PURPOSE: &str = "tokenvault/pending-2fa/v1";

/// The cookie that lets `email` (whose password was right) give a code.
pub fn pending_cookie(state: &AppState, email: &str, secure: bool) -> Cookie<'static> {
    let expires = chrono::Utc::now().timestamp() + PENDING_SECONDS;
    let body = format!("{}.{expires}", URL_SAFE_NO_PAD.encode(email));
    let signed = format!("{body}.{}", state.crypto.tag(PURPOSE, body.as_bytes()));
    Cookie::build(COOKIE, signed)
        .path("/login")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(CookieDuration::seconds(PENDING_SECONDS))
        .finish()
}

/// The email of a valid pending cookie.
fn pending_email(req: &HttpRequest, state: &AppState) -> Option<String> {
    let cookie = req.cookie(COOKIE)?;
    let (body, sent) = cookie.value().rsplit_once('.')?;
    let ok = state.crypto.tag_matches(PURPOSE, body.as_bytes(), sent);
    let (email, expires) = body.split_once('.')?;
    let fresh = expires.parse::<i64>().ok()? > chrono::Utc::now().timestamp();
    let email = String::from_utf8(URL_SAFE_NO_PAD.decode(email).ok()?).ok()?;
    (ok && fresh).then_some(email)
}

fn removal() -> Cookie<'static> {
    let mut c = Cookie::build(COOKIE, "").path("/login").finish();
    c.make_removal();
    c
}

/// The second step's address, carrying `next` (the page asked for before
/// signing in) when it is a path on this site.
pub fn step_path(next: Option<&str>) -> String {
    match next.and_then(super::local_path) {
        Some(next) => format!(
            "/login/two-factor?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("next", next)
                .finish()
        ),
        None => "/login/two-factor".to_string(),
    }
}

fn show(page: &Page, status: StatusCode, errors: &FieldErrors, next: Option<&str>) -> HttpResponse {
    page.render(
        status,
        "login_totp.html",
        context! { errors => errors.clone(), next },
    )
}

/// Where the code form comes back to once signed in.
#[derive(Debug, Default, Deserialize)]
pub struct Next {
    /// A path on this site (anything else is ignored).
    #[serde(default)]
    next: String,
}

/// GET /login/two-factor: the code form (back to sign-in without a pending step).
pub async fn form(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    query: web::Query<Next>,
) -> HttpResponse {
    if pending_email(&req, &state).is_none() {
        return redirect("/login");
    }
    let next = super::local_path(&query.next);
    show(&page, StatusCode::OK, &FieldErrors::new(), next)
}

/// The code form as posted.
#[derive(Debug, Deserialize)]
pub struct CodeForm {
    /// Zeroized when dropped, masked in `Debug`.
    #[serde(default)]
    code: crate::secret::OneTimeToken,
    /// The pre-session token (login CSRF).
    #[serde(default)]
    login_token: String,
    /// The page to open once signed in (a path on this site).
    #[serde(default)]
    next: String,
}

/// POST /login/two-factor: the code (or a recovery code) signs in.
pub async fn submit(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<CodeForm>,
) -> HttpResponse {
    let next = super::local_path(&form.next);
    if !page.signed_out_form_ok(&req, &form.login_token) {
        let errors = one("form", page.lang.text("err_cross_site"));
        return show(&page, StatusCode::FORBIDDEN, &errors, next);
    }
    let Some(email) = pending_email(&req, &state) else {
        return redirect_with_flash("/login", "error", "flash_totp_expired", "");
    };
    match accounts::sign_in_second_step(&state, &visitor(&req), &email, form.code.expose_secret())
        .await
    {
        Ok(signed_in) => {
            let mut res = redirect(next.unwrap_or("/dashboard"));
            let _ = res.add_cookie(&signed_in.session.cookie);
            let _ = res.add_cookie(&removal());
            res
        }
        Err(ApiError::Unauthenticated(_) | ApiError::Validation(_)) => show(
            &page,
            StatusCode::UNAUTHORIZED,
            &one("code", page.lang.text("err_totp_wrong")),
            next,
        ),
        Err(ApiError::TooManyRequests(_)) => show(
            &page,
            StatusCode::TOO_MANY_REQUESTS,
            &one("form", page.lang.text("error_too_many")),
            next,
        ),
        Err(e) => page.error(&e),
    }
}
