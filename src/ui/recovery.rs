//! Pages behind the links in mails and the way back in: "forgot your
//! password" (`/forgot`), choosing a new password with a reset link
//! (`/reset?token=…`), verifying an address (`/verify-email?token=…`), and
//! confirming a mail alert channel (`/confirm-alert-mail?token=…`).
//! A link opened only shows a form: the token is spent by the POST (a mail
//! scanner that follows links spends nothing).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use serde::Deserialize;

use super::Page;
use super::pages::{FieldErrors, field_errors, one};
use crate::error::ApiError;
use crate::http::identity::visitor;
use crate::secret::{OneTimeToken, Password};
use crate::service::{alerts, passwords, verification};
use crate::state::AppState;

/// `?token=…` of a mailed link.
#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    /// Zeroized when dropped, masked in `Debug`.
    #[serde(default)]
    token: OneTimeToken,
}

/// The forms of these pages as posted.
#[derive(Debug, Deserialize)]
pub struct RecoveryForm {
    #[serde(default)]
    email: String,
    /// Zeroized when dropped, masked in `Debug`.
    #[serde(default)]
    token: OneTimeToken,
    /// Zeroized when dropped, masked in `Debug`.
    #[serde(default)]
    password: Password,
    /// The pre-session token (login CSRF).
    #[serde(default)]
    login_token: String,
}

fn show(
    page: &Page,
    status: StatusCode,
    mode: &str,
    token: &str,
    errors: &FieldErrors,
) -> HttpResponse {
    page.render(
        status,
        "recovery.html",
        context! { mode, token, errors => errors.clone(), form => context! {} },
    )
}

/// The answer to a refused request, on the page of `mode`.
fn refused(page: &Page, mode: &str, token: &str, e: &ApiError) -> HttpResponse {
    let (status, errors) = match e {
        ApiError::Validation(errors) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            field_errors(page.lang, errors),
        ),
        ApiError::BadRequest { .. } => (
            StatusCode::BAD_REQUEST,
            one("form", page.lang.text("recovery_invalid_link")),
        ),
        ApiError::TooManyRequests(_) => (
            StatusCode::TOO_MANY_REQUESTS,
            one("form", page.lang.text("error_too_many")),
        ),
        ApiError::Busy(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            one("form", page.lang.text("error_busy")),
        ),
        other => return page.error(other),
    };
    show(page, status, mode, token, &errors)
}

fn cross_site(page: &Page, mode: &str, token: &str) -> HttpResponse {
    show(
        page,
        StatusCode::FORBIDDEN,
        mode,
        token,
        &one("form", page.lang.text("err_cross_site")),
    )
}

/// GET /forgot.
pub async fn forgot_form(page: Page) -> HttpResponse {
    show(&page, StatusCode::OK, "forgot", "", &FieldErrors::new())
}

/// POST /forgot: the same page whatever the email.
pub async fn forgot(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<RecoveryForm>,
) -> HttpResponse {
    if !page.signed_out_form_ok(&req, &form.login_token) {
        return cross_site(&page, "forgot", "");
    }
    match passwords::request_reset(&state, &visitor(&req), &form.email).await {
        Ok(()) => show(
            &page,
            StatusCode::OK,
            "forgot_sent",
            "",
            &FieldErrors::new(),
        ),
        Err(e) => refused(&page, "forgot", "", &e),
    }
}

/// GET /reset?token=…: the form to choose a new password.
pub async fn reset_form(page: Page, query: web::Query<TokenQuery>) -> HttpResponse {
    show(
        &page,
        StatusCode::OK,
        "reset",
        query.token.expose_secret(),
        &FieldErrors::new(),
    )
}

/// POST /reset: set the new password; every session ends.
pub async fn reset(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<RecoveryForm>,
) -> HttpResponse {
    let RecoveryForm {
        token,
        password,
        login_token,
        ..
    } = form.into_inner();
    if !page.signed_out_form_ok(&req, &login_token) {
        return cross_site(&page, "reset", token.expose_secret());
    }
    let token = token.expose_secret();
    match passwords::confirm_reset(&state, &visitor(&req), token, password.into_secret()).await {
        Ok(()) => show(&page, StatusCode::OK, "reset_done", "", &FieldErrors::new()),
        Err(e) => refused(&page, "reset", token, &e),
    }
}

/// GET /verify-email?token=…: a button that verifies the address.
pub async fn verify_form(page: Page, query: web::Query<TokenQuery>) -> HttpResponse {
    show(
        &page,
        StatusCode::OK,
        "verify",
        query.token.expose_secret(),
        &FieldErrors::new(),
    )
}

/// POST /verify-email.
pub async fn verify(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<RecoveryForm>,
) -> HttpResponse {
    if !page.signed_out_form_ok(&req, &form.login_token) {
        return cross_site(&page, "verify", form.token.expose_secret());
    }
    match verification::confirm(&state, &visitor(&req), form.token.expose_secret()).await {
        Ok(()) => show(
            &page,
            StatusCode::OK,
            "verify_done",
            "",
            &FieldErrors::new(),
        ),
        Err(e) => refused(&page, "verify", form.token.expose_secret(), &e),
    }
}

/// GET /confirm-alert-mail?token=…: a button that confirms the channel.
pub async fn alert_confirm_form(page: Page, query: web::Query<TokenQuery>) -> HttpResponse {
    show(
        &page,
        StatusCode::OK,
        "alert_confirm",
        query.token.expose_secret(),
        &FieldErrors::new(),
    )
}

/// POST /confirm-alert-mail: alerts may be mailed to this address now.
pub async fn alert_confirm(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<RecoveryForm>,
) -> HttpResponse {
    let token = form.token.expose_secret();
    if !page.signed_out_form_ok(&req, &form.login_token) {
        return cross_site(&page, "alert_confirm", token);
    }
    match alerts::confirm::confirm(&state, &visitor(&req), token).await {
        Ok(_) => show(
            &page,
            StatusCode::OK,
            "alert_confirm_done",
            "",
            &FieldErrors::new(),
        ),
        Err(e) => refused(&page, "alert_confirm", token, &e),
    }
}
