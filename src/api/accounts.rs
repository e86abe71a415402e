//! Sign-up, sign-in, sign-out, and "who am I": thin handlers over
//! `crate::service::accounts`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::views::people::{SignedIn, WhoAmI};
use crate::auth::session;
use crate::error::ApiError;
use crate::secret::{OneTimeToken, Password};
use crate::service::accounts::{self, SignUp};
use crate::service::{Actor, Visitor};
use crate::state::AppState;

/// Body of POST /api/v1/signup.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// Organisation name.
    organization: String,
    /// The owner's email.
    #[schema(format = Email)]
    email: String,
    /// At least 10 characters, not a common password.
    #[schema(value_type = String, format = Password)]
    password: Password,
    /// The language of the owner's mails (default `en`).
    #[serde(default)]
    language: Option<crate::mail::Language>,
}

/// Body of POST /api/v1/login.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Email.
    #[schema(format = Email)]
    email: String,
    /// Password.
    #[schema(value_type = String, format = Password)]
    password: Password,
    /// With two-factor sign-in on: the code of the authenticator app, or a
    /// recovery code (each works once).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    totp: Option<OneTimeToken>,
}

/// POST /api/v1/signup: a new organisation and its owner, signed in.
#[utoipa::path(
    post,
    path = "/api/v1/signup",
    tag = "accounts",
    request_body = SignupRequest,
    security(()),
    responses(
        (status = 201, description = "The organisation and its owner; sets the `tv_session` cookie", body = SignedIn),
        (status = 409, description = "An account with this email exists (`email_taken`)", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts from this address (`too_many_requests`); see `Retry-After`", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Every password hasher is busy (`busy`); see `Retry-After`", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn signup(
    state: web::Data<AppState>,
    visitor: Visitor,
    body: web::Json<SignupRequest>,
) -> Result<HttpResponse, ApiError> {
    let SignupRequest {
        organization,
        email,
        password,
        language,
    } = body.into_inner();
    let visitor = super::account::speaking(visitor, language);
    let input = SignUp {
        organization: &organization,
        email: &email,
        password: password.into_secret(),
    };
    let signed_in = accounts::sign_up(&state, &visitor, input).await?;
    Ok(HttpResponse::Created()
        .cookie(signed_in.session.cookie.clone())
        .json(SignedIn::of(&signed_in)))
}

/// POST /api/v1/login: the same answer, taking the same time, whether the
/// email is unknown or the password wrong.
#[utoipa::path(
    post,
    path = "/api/v1/login",
    tag = "accounts",
    request_body = LoginRequest,
    security(()),
    responses(
        (status = 200, description = "Signed in; sets the `tv_session` cookie", body = SignedIn),
        (status = 401, description = "Wrong email or password, or a wrong, used or replayed two-factor code (`unauthenticated`); the password is right and the account signs in with two factors: send `totp` (`totp_required`)", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts from this address, or for this account from this address (`too_many_requests`); see `Retry-After`", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Every password hasher is busy (`busy`); see `Retry-After`", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn login(
    state: web::Data<AppState>,
    visitor: Visitor,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest {
        email,
        password,
        totp,
    } = body.into_inner();
    let totp = totp.as_ref().map(OneTimeToken::expose_secret);
    let signed_in =
        accounts::sign_in(&state, &visitor, &email, password.into_secret(), totp).await?;
    Ok(HttpResponse::Ok()
        .cookie(signed_in.session.cookie.clone())
        .json(SignedIn::of(&signed_in)))
}

/// POST /api/v1/logout: ends the session on the server.
#[utoipa::path(
    post,
    path = "/api/v1/logout",
    tag = "accounts",
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Signed out; the cookie is removed"),
    ),
)]
pub async fn logout(
    state: web::Data<AppState>,
    actor: Actor,
    visitor: Visitor,
) -> Result<HttpResponse, ApiError> {
    accounts::sign_out(&state, &actor, visitor.session_cookie.as_deref()).await?;
    Ok(HttpResponse::NoContent()
        .cookie(session::removal_cookie(visitor.secure_cookies))
        .finish())
}

/// GET /api/v1/session: who am I — the signed-in user with the CSRF token
/// for JSON calls, or the API key making the request.
#[utoipa::path(
    get,
    path = "/api/v1/session",
    tag = "accounts",
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "The signed-in person with the CSRF token, or the API key making the request", body = WhoAmI),
    ),
)]
pub async fn current(state: web::Data<AppState>, actor: Actor) -> Result<HttpResponse, ApiError> {
    let caller = accounts::who_am_i(&state, &actor).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(WhoAmI::from(caller)))
}
