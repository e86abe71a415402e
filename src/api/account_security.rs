//! Password reset and change, and email verification: thin handlers over
//! `crate::service::passwords` and `crate::service::verification`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::secret::{OneTimeToken, Password};
use crate::service::{Actor, Visitor, passwords, verification};
use crate::state::AppState;

/// Body of POST /api/v1/password-reset.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// The account's email.
    #[schema(format = Email)]
    email: String,
}

/// Body of POST /api/v1/password-reset/confirm.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    /// The token of the mailed link (`/reset?token=…`).
    #[schema(value_type = String, format = Password)]
    token: OneTimeToken,
    /// The new password: at least 10 characters, not a common password.
    #[schema(value_type = String, format = Password)]
    password: Password,
}

/// Body of POST /api/v1/account/password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The password now.
    #[schema(value_type = String, format = Password)]
    current_password: Password,
    /// The new password: at least 10 characters, not a common password.
    #[schema(value_type = String, format = Password)]
    new_password: Password,
}

/// Body of POST /api/v1/email-verification/confirm.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerificationConfirm {
    /// The token of the mailed link (`/verify-email?token=…`).
    #[schema(value_type = String, format = Password)]
    token: OneTimeToken,
}

/// POST /api/v1/password-reset: mail a reset link, if the email belongs to
/// an account with a verified address. The same answer, in the same time,
/// whatever the email.
#[utoipa::path(
    post,
    path = "/api/v1/password-reset",
    tag = "accounts",
    request_body = ResetRequest,
    security(()),
    responses(
        (status = 202, description = "Accepted: if the email has an account with a verified address, a link valid one hour is mailed to it"),
        (status = 429, description = "Too many attempts from this address (`too_many_requests`); see `Retry-After`", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn request_reset(
    state: web::Data<AppState>,
    visitor: Visitor,
    body: web::Json<ResetRequest>,
) -> Result<HttpResponse, ApiError> {
    passwords::request_reset(&state, &visitor, &body.email).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// POST /api/v1/password-reset/confirm: choose a new password with the
/// mailed link; every session of the person ends.
#[utoipa::path(
    post,
    path = "/api/v1/password-reset/confirm",
    tag = "accounts",
    request_body = ResetConfirm,
    security(()),
    responses(
        (status = 204, description = "The password is changed and every session of the person ended"),
        (status = 400, description = "The link is unknown, expired, used or tampered with (`invalid_token`)", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts from this address (`too_many_requests`)", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn confirm_reset(
    state: web::Data<AppState>,
    visitor: Visitor,
    body: web::Json<ResetConfirm>,
) -> Result<HttpResponse, ApiError> {
    let ResetConfirm { token, password } = body.into_inner();
    passwords::confirm_reset(
        &state,
        &visitor,
        token.expose_secret(),
        password.into_secret(),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// POST /api/v1/account/password: change one's password; one's other
/// sessions end.
#[utoipa::path(
    post,
    path = "/api/v1/account/password",
    tag = "accounts",
    request_body = PasswordChange,
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Changed; the person's other sessions ended"),
        (status = 422, description = "Wrong current password (`current_password`: `wrong_password`) or a weak new one (`validation_failed`)", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn change_password(
    state: web::Data<AppState>,
    actor: Actor,
    visitor: Visitor,
    body: web::Json<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    let PasswordChange {
        current_password,
        new_password,
    } = body.into_inner();
    passwords::change(
        &state,
        &actor,
        visitor.session_cookie.as_deref(),
        current_password.into_secret(),
        new_password.into_secret(),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// POST /api/v1/email-verification: mail the signed-in person a new
/// verification link (nothing if their address is verified).
#[utoipa::path(
    post,
    path = "/api/v1/email-verification",
    tag = "accounts",
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 202, description = "A link is mailed to the person's address, unless it is verified already"),
        (status = 429, description = "Several links were mailed this hour (`too_many_mails`)", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn resend_verification(
    state: web::Data<AppState>,
    actor: Actor,
) -> Result<HttpResponse, ApiError> {
    verification::resend(&state, &actor).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// POST /api/v1/email-verification/confirm: verify the address the link
/// was mailed to.
#[utoipa::path(
    post,
    path = "/api/v1/email-verification/confirm",
    tag = "accounts",
    request_body = VerificationConfirm,
    security(()),
    responses(
        (status = 204, description = "The address is verified"),
        (status = 400, description = "The link is unknown, expired, used, tampered with, or for an address the person no longer has (`invalid_token`)", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn confirm_verification(
    state: web::Data<AppState>,
    visitor: Visitor,
    body: web::Json<VerificationConfirm>,
) -> Result<HttpResponse, ApiError> {
    verification::confirm(&state, &visitor, body.token.expose_secret()).await?;
    Ok(HttpResponse::NoContent().finish())
}
