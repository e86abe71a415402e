//! Sign-up, sign-in and sign-out pages.

use crate::secret::Password;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use serde::Deserialize;

use super::pages::{CsrfForm, FieldErrors, FormRefusal, field_errors, form_session, one};
use super::{Page, redirect, redirect_with_flash};
use crate::auth::session;
use crate::error::ApiError;
use crate::http::identity::visitor;
use crate::service::accounts::{self, SignUp};
use crate::state::AppState;

/// The sign-up form as posted.
#[derive(Debug, Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    organization: String,
    #[serde(default)]
    email: String,
    /// Zeroized when dropped, masked in `Debug`.
    #[serde(default)]
    password: Password,
    /// The pre-session token (login CSRF).
    #[serde(default)]
    login_token: String,
}

/// An empty sign-in or sign-up form; the signed-in go to their dashboard.
fn blank_form(page: &Page, template: &str) -> HttpResponse {
    if page.user.is_some() {
        return redirect("/dashboard");
    }
    if page.must_enrol {
        return redirect("/account/two-factor");
    }
    page.render(
        StatusCode::OK,
        template,
        context! { form => context! {}, errors => FieldErrors::new() },
    )
}

/// GET /signup.
pub async fn signup_form(page: Page) -> HttpResponse {
    blank_form(&page, "signup.html")
}

/// POST /signup: a new organisation and its owner, signed in.
pub async fn signup(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<SignupForm>,
) -> HttpResponse {
    let SignupForm {
        organization,
        email,
        password,
        login_token,
    } = form.into_inner();
    let again = |errors: FieldErrors, status| {
        page.render(
            status,
            "signup.html",
            context! { form => context! { organization => organization.as_str(), email => email.as_str() }, errors },
        )
    };
    if !page.signed_out_form_ok(&req, &login_token) {
        return again(
            one("form", page.lang.text("err_cross_site")),
            StatusCode::FORBIDDEN,
        );
    }
    let input = SignUp {
        organization: &organization,
        email: &email,
        password: password.into_secret(),
    };
    let visitor = super::account::visitor_of(&page, &req);
    match accounts::sign_up(&state, &visitor, input).await {
        Ok(account) => {
            let mut res = redirect_with_flash("/dashboard", "ok", "flash_welcome", "");
            let _ = res.add_cookie(&account.session.cookie);
            res
        }
        Err(ApiError::Validation(errors)) => again(
            field_errors(page.lang, &errors),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(ApiError::Conflict { .. }) => again(
            one("email", page.lang.text("err_email_taken")),
            StatusCode::CONFLICT,
        ),
        Err(ApiError::TooManyRequests(_)) => again(
            one("form", page.lang.text("error_too_many")),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(ApiError::Busy(_)) => again(
            one("form", page.lang.text("error_busy")),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        Err(e) => page.error(&e),
    }
}

/// The sign-in form as posted.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    /// Zeroized when dropped, masked in `Debug`.
    #[serde(default)]
    password: Password,
    /// Where to go once signed in (a path on this site).
    #[serde(default)]
    next: String,
    /// The pre-session token (login CSRF).
    #[serde(default)]
    login_token: String,
}

/// Query of the sign-in page.
#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

/// GET /login: the form, remembering where to go back to.
pub async fn login_form(page: Page, query: web::Query<LoginQuery>) -> HttpResponse {
    let Some(next) = super::local_path(&query.next) else {
        return blank_form(&page, "login.html");
    };
    if page.user.is_some() {
        return redirect(next);
    }
    page.render(
        StatusCode::OK,
        "login.html",
        context! { form => context! { next }, errors => FieldErrors::new() },
    )
}

/// POST /login: the same message whether the email is unknown or the password wrong.
pub async fn login(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> HttpResponse {
    let LoginForm {
        email,
        password,
        next,
        login_token,
    } = form.into_inner();
    let next = super::local_path(&next);
    let again = |errors: FieldErrors, status| {
        page.render(
            status,
            "login.html",
            context! { form => context! { email => email.as_str(), next }, errors },
        )
    };
    if !page.signed_out_form_ok(&req, &login_token) {
        return again(
            one("form", page.lang.text("err_cross_site")),
            StatusCode::FORBIDDEN,
        );
    }
    // Nothing typed is a field error, not a wrong password (the API, which
    // has no fields to show, answers 401 alike).
    if password.expose_secret().is_empty() {
        let mut errors = one("password", page.lang.text("err_required"));
        if let Err(e) = crate::domain::Email::parse("email", &email) {
            errors.extend(field_errors(page.lang, &[e]));
        }
        return again(errors, StatusCode::UNPROCESSABLE_ENTITY);
    }
    match accounts::sign_in(&state, &visitor(&req), &email, password.into_secret(), None).await {
        Ok(signed_in) => {
            let mut res = redirect(next.unwrap_or("/dashboard"));
            let _ = res.add_cookie(&signed_in.session.cookie);
            res
        }
        // The password was right: the code on a second step.
        Err(ApiError::TotpRequired) => {
            let mut res = redirect(&super::login_totp::step_path(next));
            let _ = res.add_cookie(&super::login_totp::pending_cookie(
                &state,
                &email,
                crate::http::identity::cookies_secure(&req),
            ));
            res
        }
        Err(ApiError::Validation(errors)) => again(
            field_errors(page.lang, &errors),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(ApiError::Unauthenticated(_)) => again(
            one("form", page.lang.text("err_wrong_login")),
            StatusCode::UNAUTHORIZED,
        ),
        Err(ApiError::TooManyRequests(_)) => again(
            one("form", page.lang.text("error_too_many")),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(ApiError::Busy(_)) => again(
            one("form", page.lang.text("error_busy")),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        Err(e) => page.error(&e),
    }
}

/// POST /logout.
pub async fn logout(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    match form_session(&page, &form.csrf_token) {
        Ok(_) => {
            let signed_out = match page.actor(&req) {
                Ok(actor) => {
                    let cookie = visitor(&req).session_cookie;
                    accounts::sign_out(&state, &actor, cookie.as_deref()).await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = signed_out {
                return page.error(&e);
            }
            let mut res = redirect_with_flash("/login", "ok", "flash_signed_out", "");
            let _ = res.add_cookie(&session::removal_cookie(
                crate::http::identity::cookies_secure(&req),
            ));
            res
        }
        Err(FormRefusal::SignedOut) => redirect("/login"),
        Err(FormRefusal::Stale) => {
            redirect_with_flash("/dashboard", "error", "flash_stale_form", "")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Passwords posted by forms land in the masked, zeroized type at once.
    #[test]
    fn posted_passwords_are_secrets_from_the_edge() {
        let login: LoginForm =
            serde_json::from_str(r#"{"email":"a@b.co","password":"hunter2 hunter2"}"#).unwrap();
        assert_eq!(format!("{:?}", login.password), "Password(***)");
        assert_eq!(login.password.expose_secret(), "hunter2 hunter2");
        let signup: SignupForm =
            serde_json::from_str(r#"{"organization":"o","email":"a@b.co","password":"hunter2"}"#)
                .unwrap();
        assert_eq!(format!("{:?}", signup.password), "Password(***)");
        let empty: LoginForm = serde_json::from_str(r#"{"email":"a@b.co"}"#).unwrap();
        assert!(empty.password.expose_secret().is_empty());
    }
}
