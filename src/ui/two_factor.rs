//! The two-factor page (`/account/two-factor`): enrol (QR code, secret,
//! a confirming code, then the recovery codes shown once), turn it off
//! (password and code), replace the recovery codes, and, for owners, the
//! organisation's requirement. People who must enrol are sent here and
//! can reach nothing else until they have.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use super::pages::{FieldErrors, field_errors, form_user, one};
use super::{Page, redirect_with_flash};
use crate::domain::Role;
use crate::error::ApiError;
use crate::service::two_factor;
use crate::state::AppState;

const PATH: &str = "/account/two-factor";

/// The forms of this page as posted.
#[derive(Debug, Deserialize)]
pub struct TwoFactorForm {
    #[serde(default)]
    csrf_token: String,
    /// Zeroized when dropped, masked in `Debug`.
    #[serde(default)]
    code: crate::secret::OneTimeToken,
    /// Zeroized when dropped, masked in `Debug`.
    #[serde(default)]
    password: crate::secret::Password,
    #[serde(default)]
    require_totp: Option<String>,
}

/// The page as it stands, with `errors` and, once, `recovery_codes`.
async fn show(
    req: &HttpRequest,
    page: &Page,
    state: &AppState,
    status: StatusCode,
    errors: &FieldErrors,
    recovery_codes: Option<&[SecretString]>,
) -> HttpResponse {
    let shown = async {
        let actor = page.actor(req)?;
        let standing = two_factor::status(state, &actor).await?;
        let pending = if standing.enrolling {
            two_factor::pending(state, &actor).await?
        } else {
            None
        };
        let enrolment = match &pending {
            Some(e) => Some(context! {
                secret => e.secret.expose_secret(),
                qr => minijinja::Value::from_safe_string(two_factor::qr_svg(&e.otpauth_uri)?),
            }),
            None => None,
        };
        let owner = page.user.as_ref().is_some_and(|u| u.role == Role::Owner);
        Ok::<_, ApiError>(context! {
            enabled => standing.enabled,
            required => standing.required,
            codes_left => standing.recovery_codes_left,
            enrolment,
            owner,
            org_requires => standing.organisation_requires.unwrap_or(false),
            recovery_codes => recovery_codes.map(|c| c.iter().map(|c| c.expose_secret().to_string()).collect::<Vec<_>>()),
            errors => errors.clone(),
        })
    }
    .await;
    match shown {
        Ok(ctx) => page.render(status, "two_factor.html", ctx),
        Err(e) => page.error(&e),
    }
}

/// GET /account/two-factor.
pub async fn page(req: HttpRequest, page: Page, state: web::Data<AppState>) -> HttpResponse {
    show(
        &req,
        &page,
        &state,
        StatusCode::OK,
        &FieldErrors::new(),
        None,
    )
    .await
}

/// The page again after a refused form.
async fn refused(req: &HttpRequest, page: &Page, state: &AppState, e: &ApiError) -> HttpResponse {
    let (status, errors) = match e {
        ApiError::Validation(errors) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            field_errors(page.lang, errors),
        ),
        ApiError::TooManyRequests(_) => (
            StatusCode::TOO_MANY_REQUESTS,
            one("form", page.lang.text("error_too_many")),
        ),
        ApiError::Conflict {
            code: "totp_required",
            ..
        } => (
            StatusCode::CONFLICT,
            one("form", page.lang.text("totp_err_required")),
        ),
        ApiError::Conflict { .. } => (
            StatusCode::CONFLICT,
            one("form", page.lang.text("flash_stale_form")),
        ),
        other => return page.error(other),
    };
    show(req, page, state, status, &errors, None).await
}

/// POST /account/two-factor/{action}: `enrol`, `confirm`,
/// `recovery-codes`, `disable`, `policy`.
pub async fn action(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<TwoFactorForm>,
) -> HttpResponse {
    if let Err(res) = form_user(&page, &form.csrf_token, PATH) {
        return res;
    }
    let actor = match page.actor(&req) {
        Ok(actor) => actor,
        Err(e) => return page.error(&e),
    };
    let TwoFactorForm {
        code,
        password,
        require_totp,
        ..
    } = form.into_inner();
    let done = match path.as_str() {
        "enrol" => two_factor::start(&state, &actor).await.map(|_| None),
        "confirm" => two_factor::confirm(&state, &actor, code.expose_secret())
            .await
            .map(Some),
        "recovery-codes" => two_factor::regenerate(&state, &actor, code.expose_secret())
            .await
            .map(Some),
        "disable" => {
            two_factor::disable(&state, &actor, password.into_secret(), code.expose_secret())
                .await
                .map(|()| None)
        }
        "policy" => two_factor::set_policy(&state, &actor, require_totp.is_some())
            .await
            .map(|_| None),
        _ => return page.not_found(),
    };
    match done {
        Ok(Some(codes)) => {
            show(
                &req,
                &page,
                &state,
                StatusCode::OK,
                &FieldErrors::new(),
                Some(&codes),
            )
            .await
        }
        Ok(None) => {
            let key = match path.as_str() {
                "disable" => "totp_flash_disabled",
                "policy" => "totp_flash_policy",
                _ => "totp_flash_scan",
            };
            redirect_with_flash(PATH, "ok", key, "")
        }
        Err(e) => refused(&req, &page, &state, &e).await,
    }
}
