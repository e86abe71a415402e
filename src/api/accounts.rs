//! Sign-up, sign-in, sign-out, and "who am I".

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::audit_event;
use crate::auth::{Principal, session};
use crate::db;
use crate::domain::{Email, Name, NewPassword, Role, TenantId, UserId};
use crate::error::ApiError;
use crate::http::identity::client_ip;
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
    password: SecretString,
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
    password: SecretString,
}

fn throttle(state: &AppState, req: &HttpRequest, account: Option<&str>) -> Result<(), ApiError> {
    state
        .auth
        .throttle
        .check(client_ip(req), account)
        .map_err(ApiError::TooManyRequests)
}

/// A new organisation with its owner, signed in.
pub struct NewAccount {
    /// The organisation.
    pub tenant_id: TenantId,
    /// Its owner.
    pub user_id: UserId,
    /// The organisation's name.
    pub organization: Name,
    /// The owner's email.
    pub email: Email,
    /// The owner's new session.
    pub session: session::StartedSession,
}

/// Create an organisation and its owner and sign the owner in: the one way
/// to sign up, shared by the JSON API and the sign-up page.
pub async fn create_account(
    req: &HttpRequest,
    state: &AppState,
    organization: &str,
    email: &str,
    password: SecretString,
) -> Result<NewAccount, ApiError> {
    throttle(state, req, None)?;
    let checked = (
        Name::parse("organization", organization),
        Email::parse("email", email),
        NewPassword::parse("password", password, email.trim()),
    );
    let (organization, email, password) = match checked {
        (Ok(o), Ok(e), Ok(p)) => (o, e, p),
        (o, e, p) => {
            return Err(ApiError::Validation(
                [o.err(), e.err(), p.err()].into_iter().flatten().collect(),
            ));
        }
    };
    let hash = state.auth.passwords.hash(password.secret().clone()).await?;

    let mut tx = state.pool.begin().await?;
    let (tenant_id, user_id) =
        match db::accounts::create_tenant_with_owner(&mut tx, &organization, &email, &hash).await {
            Ok(ids) => ids,
            Err(e) if db::accounts::is_email_taken(&e) => {
                return Err(ApiError::Conflict {
                    code: "email_taken",
                    detail: "an account with this email exists already: sign in instead".into(),
                });
            }
            Err(e) => return Err(e.into()),
        };
    db::audit::record(
        &mut *tx,
        audit_event(
            req,
            Some(tenant_id),
            Some(user_id),
            "tenant.created",
            Some(organization.to_string()),
        ),
    )
    .await?;
    tx.commit().await?;

    let session =
        crate::http::identity::start_session(req, state, user_id, Some(tenant_id)).await?;
    Ok(NewAccount {
        tenant_id,
        user_id,
        organization,
        email,
        session,
    })
}

/// A person just signed in.
pub struct SignedIn {
    /// The user's row.
    pub user: db::accounts::UserRow,
    /// The user's role.
    pub role: Role,
    /// The new session.
    pub session: session::StartedSession,
}

/// Check an email and password and start a session: the same answer,
/// taking the same time, whether the email is unknown or the password
/// wrong. Shared by the JSON API and the sign-in page.
pub async fn sign_in(
    req: &HttpRequest,
    state: &AppState,
    email: &str,
    password: SecretString,
) -> Result<SignedIn, ApiError> {
    let email = Email::parse("email", email)?;
    // Hard limits per address and per account from this address; from
    // everywhere, an account's attempts are only slowed down, so a stranger
    // cannot lock its owner out.
    throttle(state, req, Some(email.as_str()))?;
    state.auth.throttle.slow_down(email.as_str()).await;

    let user = db::accounts::user_by_email(&state.pool, &email).await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let verified = state.auth.passwords.verify(password, stored).await?;
    let user = match user {
        Some(u) if verified && u.disabled_at.is_none() => u,
        other => {
            db::audit::record(
                &state.pool,
                audit_event(
                    req,
                    other.as_ref().and_then(|u| u.tenant_id),
                    other.as_ref().map(|u| u.id),
                    "signin.failed",
                    Some(email.to_string()),
                ),
            )
            .await?;
            return Err(ApiError::Unauthenticated("wrong email or password"));
        }
    };
    let role: Role = user
        .role
        .parse()
        .map_err(|()| anyhow::anyhow!("user {} has an unknown role", user.id))?;
    let session = crate::http::identity::start_session(req, state, user.id, user.tenant_id).await?;
    db::audit::record(
        &state.pool,
        audit_event(
            req,
            user.tenant_id,
            Some(user.id),
            "signin",
            Some(user.email.clone()),
        ),
    )
    .await?;
    Ok(SignedIn {
        user,
        role,
        session,
    })
}

/// POST /api/v1/signup: a new organisation and its owner, signed in.
#[utoipa::path(
    post,
    path = "/api/v1/signup",
    tag = "accounts",
    request_body = SignupRequest,
    security(()),
    responses(
        (status = 201, description = "The organisation and its owner; sets the `tv_session` cookie", body = crate::api::openapi::SignedIn),
        (status = 409, description = "An account with this email exists (`email_taken`)", body = crate::api::openapi::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts from this address (`too_many_requests`); see `Retry-After`", body = crate::api::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Every password hasher is busy (`busy`); see `Retry-After`", body = crate::api::openapi::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn signup(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<SignupRequest>,
) -> Result<HttpResponse, ApiError> {
    let SignupRequest {
        organization,
        email,
        password,
    } = body.into_inner();
    let account = create_account(&req, &state, &organization, &email, password).await?;
    let started = account.session;
    Ok(HttpResponse::Created().cookie(started.cookie).json(json!({
        "tenant": { "id": account.tenant_id, "name": account.organization.as_str() },
        "user": { "id": account.user_id, "email": account.email.as_str(), "role": Role::Owner },
        "csrf_token": started.csrf_token,
    })))
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
        (status = 200, description = "Signed in; sets the `tv_session` cookie", body = crate::api::openapi::SignedIn),
        (status = 401, description = "Wrong email or password (`unauthenticated`)", body = crate::api::openapi::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts from this address, or for this account from this address (`too_many_requests`); see `Retry-After`", body = crate::api::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Every password hasher is busy (`busy`); see `Retry-After`", body = crate::api::openapi::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest { email, password } = body.into_inner();
    let SignedIn {
        user,
        role,
        session: started,
    } = sign_in(&req, &state, &email, password).await?;
    let tenant = match user.tenant_id {
        Some(t) => {
            Some(json!({ "id": t, "name": db::accounts::tenant_name(&state.pool, t).await? }))
        }
        None => None,
    };
    Ok(HttpResponse::Ok().cookie(started.cookie).json(json!({
        "tenant": tenant,
        "user": { "id": user.id, "email": user.email, "role": role },
        "csrf_token": started.csrf_token,
    })))
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
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let s = principal.require_session()?;
    crate::http::identity::end_session(&req, &state).await?;
    db::audit::record(
        &state.pool,
        audit_event(&req, s.tenant_id, Some(s.user_id), "signout", None),
    )
    .await?;
    Ok(HttpResponse::NoContent()
        .cookie(session::removal_cookie(state.settings.secure_cookies))
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
        (status = 200, description = "The signed-in person with the CSRF token, or the API key making the request", body = crate::api::openapi::WhoAmI),
    ),
)]
pub async fn current(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let tenant = |t: Option<TenantId>| {
        let pool = state.pool.clone();
        async move {
            Ok::<_, ApiError>(match t {
                Some(t) => {
                    Some(json!({ "id": t, "name": db::accounts::tenant_name(&pool, t).await? }))
                }
                None => None,
            })
        }
    };
    let body = match &principal {
        Principal::Session(s) => json!({
            "user": { "id": s.user_id, "email": s.email, "role": s.role },
            "tenant": tenant(s.tenant_id).await?,
            "csrf_token": s.csrf_token,
        }),
        Principal::ApiKey(k) => json!({
            "api_key": { "id": k.key_id, "read_only": k.read_only, "limited_to_apps": k.limited },
            "tenant": tenant(Some(k.tenant_id)).await?,
        }),
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}
