//! Two-factor sign-in (TOTP) and the organisation's requirement of it:
//! thin handlers over `crate::service::two_factor`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::views::two_factor::{OrganizationPolicy, RecoveryCodes, TotpEnrolment};
use crate::error::ApiError;
use crate::secret::{OneTimeToken, Password};
use crate::service::{Actor, two_factor};
use crate::state::AppState;

/// Body of POST /api/v1/account/totp/confirm and …/recovery-codes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    /// The six-digit code the authenticator app shows now.
    #[schema(value_type = String, format = Password)]
    code: OneTimeToken,
}

/// Body of DELETE /api/v1/account/totp.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpDisable {
    /// The account's password.
    #[schema(value_type = String, format = Password)]
    password: Password,
    /// A code of the authenticator app, or a recovery code.
    #[schema(value_type = String, format = Password)]
    code: OneTimeToken,
}

/// Body of PATCH /api/v1/organization.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationPatch {
    /// Require two-factor sign-in of every member.
    require_totp: bool,
}

/// POST /api/v1/account/totp: start enrolling (a new secret).
#[utoipa::path(
    post,
    path = "/api/v1/account/totp",
    tag = "accounts",
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The secret and its `otpauth://` URI; confirm with a code to turn two-factor sign-in on", body = TotpEnrolment),
        (status = 409, description = "Two-factor sign-in is on already (`totp_enabled`)", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn start(state: web::Data<AppState>, actor: Actor) -> Result<HttpResponse, ApiError> {
    let enrolment = two_factor::start(&state, &actor).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(TotpEnrolment::from(enrolment)))
}

/// POST /api/v1/account/totp/confirm: a code confirms the enrolment; the
/// ten recovery codes are answered once.
#[utoipa::path(
    post,
    path = "/api/v1/account/totp/confirm",
    tag = "accounts",
    request_body = TotpCode,
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "Two-factor sign-in is on; the recovery codes, shown this once", body = RecoveryCodes),
        (status = 409, description = "No enrolment is waiting (`totp_not_enrolling`)", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A wrong or used code (`code`: `wrong_code`)", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts (`too_many_requests`)", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn confirm(
    state: web::Data<AppState>,
    actor: Actor,
    body: web::Json<TotpCode>,
) -> Result<HttpResponse, ApiError> {
    let codes = two_factor::confirm(&state, &actor, body.code.expose_secret()).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(RecoveryCodes::from(codes)))
}

/// POST /api/v1/account/totp/recovery-codes: ten new recovery codes (the
/// old ones stop working), given a current code.
#[utoipa::path(
    post,
    path = "/api/v1/account/totp/recovery-codes",
    tag = "accounts",
    request_body = TotpCode,
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The new recovery codes, shown this once", body = RecoveryCodes),
        (status = 409, description = "Two-factor sign-in is not on (`totp_not_enabled`)", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A wrong or used code (`code`: `wrong_code`)", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn regenerate(
    state: web::Data<AppState>,
    actor: Actor,
    body: web::Json<TotpCode>,
) -> Result<HttpResponse, ApiError> {
    let codes = two_factor::regenerate(&state, &actor, body.code.expose_secret()).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(RecoveryCodes::from(codes)))
}

/// DELETE /api/v1/account/totp: turn two-factor sign-in off.
#[utoipa::path(
    delete,
    path = "/api/v1/account/totp",
    tag = "accounts",
    request_body = TotpDisable,
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Two-factor sign-in is off; the recovery codes are gone"),
        (status = 409, description = "It is not on (`totp_not_enabled`), or the account must have it (`totp_required`)", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A wrong password (`password`: `wrong_password`) or code (`code`: `wrong_code`)", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn disable(
    state: web::Data<AppState>,
    actor: Actor,
    body: web::Json<TotpDisable>,
) -> Result<HttpResponse, ApiError> {
    let TotpDisable { password, code } = body.into_inner();
    two_factor::disable(&state, &actor, password.into_secret(), code.expose_secret()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// PATCH /api/v1/organization: an owner requires two-factor sign-in of
/// every member (members without it enrol at their next sign-in).
#[utoipa::path(
    patch,
    path = "/api/v1/organization",
    tag = "members",
    request_body = OrganizationPatch,
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The requirement now", body = OrganizationPolicy),
        (status = 403, description = "Only owners change it (`forbidden`)", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn patch_organization(
    state: web::Data<AppState>,
    actor: Actor,
    body: web::Json<OrganizationPatch>,
) -> Result<HttpResponse, ApiError> {
    let require_totp = two_factor::set_policy(&state, &actor, body.require_totp).await?;
    Ok(HttpResponse::Ok().json(OrganizationPolicy { require_totp }))
}
