//! Members of an organisation, invitations, the audit log, and the
//! operator's tenant list: thin handlers over `crate::service`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::views::people::{
    AuditPage, CreatedInvite, InviteList, MemberList, MemberView, SignedIn,
};
use crate::domain::{InviteId, Role, UserId};
use crate::error::ApiError;
use crate::secret::{OneTimeToken, Password};
use crate::service::audit::ActionFilter;
use crate::service::{Actor, Visitor, audit, invites, members};
use crate::state::AppState;

/// GET /api/v1/members
#[utoipa::path(
    get,
    path = "/api/v1/members",
    tag = "members",
    security(("session" = [])),
    responses(
        (status = 200, description = "The organisation's members", body = MemberList),
    ),
)]
pub async fn list(state: web::Data<AppState>, actor: Actor) -> Result<HttpResponse, ApiError> {
    let (_, rows) = members::list(&state, &actor).await?;
    let items = rows.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(MemberList { items }))
}

/// Body of PATCH /api/v1/members/{id}.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRoleRequest {
    /// The new role: owner, admin or viewer.
    role: Role,
}

/// PATCH /api/v1/members/{id}: change a member's role.
#[utoipa::path(
    patch,
    path = "/api/v1/members/{id}",
    tag = "members",
    params(("id" = Uuid, Path, description = "User id")),
    request_body = ChangeRoleRequest,
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The member with the new role", body = MemberView),
        (status = 409, description = "The organisation would lose its last owner (`last_owner`)", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn change_role(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<UserId>,
    body: web::Json<ChangeRoleRequest>,
) -> Result<HttpResponse, ApiError> {
    let change = members::change_role(&state, &actor, path.into_inner(), body.role).await?;
    Ok(HttpResponse::Ok().json(MemberView::from(change)))
}

/// DELETE /api/v1/members/{id}: remove a member.
#[utoipa::path(
    delete,
    path = "/api/v1/members/{id}",
    tag = "members",
    params(("id" = Uuid, Path, description = "User id")),
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 409, description = "The organisation would lose its last owner (`last_owner`)", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn remove(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    members::remove(&state, &actor, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Body of POST /api/v1/invites.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInviteRequest {
    /// The invitee's role: admin or viewer.
    role: Role,
    /// The invitee's email: when given, the link works only for it.
    #[schema(format = Email)]
    email: Option<String>,
}

/// POST /api/v1/invites: an invite link (shown once) for a new member.
#[utoipa::path(
    post,
    path = "/api/v1/invites",
    tag = "members",
    request_body = CreateInviteRequest,
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 201, description = "The invitation; `token` and `url` are shown only here", body = CreatedInvite),
    ),
)]
pub async fn create_invite(
    state: web::Data<AppState>,
    actor: Actor,
    body: web::Json<CreateInviteRequest>,
) -> Result<HttpResponse, ApiError> {
    let email = body.email.as_deref();
    let created = invites::create(&state, &actor, email, body.role.as_str()).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(CreatedInvite::from(created)))
}

/// GET /api/v1/invites
#[utoipa::path(
    get,
    path = "/api/v1/invites",
    tag = "members",
    security(("session" = [])),
    responses(
        (status = 200, description = "The organisation's invitations", body = InviteList),
    ),
)]
pub async fn list_invites(
    state: web::Data<AppState>,
    actor: Actor,
) -> Result<HttpResponse, ApiError> {
    let rows = invites::list(&state, &actor).await?;
    let items = rows.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(InviteList { items }))
}

/// DELETE /api/v1/invites/{id}: withdraw an open invite.
#[utoipa::path(
    delete,
    path = "/api/v1/invites/{id}",
    tag = "members",
    params(("id" = Uuid, Path, description = "Invite id")),
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Withdrawn"),
    ),
)]
pub async fn delete_invite(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<InviteId>,
) -> Result<HttpResponse, ApiError> {
    invites::withdraw(&state, &actor, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Body of POST /api/v1/invites/accept.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInviteRequest {
    /// The invite token.
    #[schema(value_type = String, format = Password)]
    token: OneTimeToken,
    /// The new member's email (the invite's, if it names one).
    #[schema(format = Email)]
    email: String,
    /// At least 10 characters, not a common password.
    #[schema(value_type = String, format = Password)]
    password: Password,
    /// The language of the new member's mails (default `en`).
    #[serde(default)]
    language: Option<crate::mail::Language>,
}

/// POST /api/v1/invites/accept: join with a new account, signed in.
#[utoipa::path(
    post,
    path = "/api/v1/invites/accept",
    tag = "members",
    request_body = AcceptInviteRequest,
    security(()),
    responses(
        (status = 201, description = "Joined and signed in; sets the `tv_session` cookie", body = SignedIn),
        (status = 409, description = "An account with this email exists (`email_taken`)", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Every password hasher is busy (`busy`); see `Retry-After`", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn accept_invite(
    state: web::Data<AppState>,
    visitor: Visitor,
    body: web::Json<AcceptInviteRequest>,
) -> Result<HttpResponse, ApiError> {
    let AcceptInviteRequest {
        token,
        email,
        password,
        language,
    } = body.into_inner();
    let visitor = super::account::speaking(visitor, language);
    let joined = invites::accept(
        &state,
        &visitor,
        token.expose_secret(),
        &email,
        password.into_secret(),
    )
    .await?;
    Ok(HttpResponse::Created()
        .cookie(joined.session.cookie.clone())
        .json(SignedIn::of(&joined)))
}

/// Query of GET /api/v1/audit-log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries older than this id (`next_before` of the previous page).
    before: Option<i64>,
    /// Only entries of this action, e.g. `member.joined`.
    action: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// GET /api/v1/audit-log: newest first, `before` an id for the next page.
#[utoipa::path(
    get,
    path = "/api/v1/audit-log",
    tag = "members",
    params(AuditQuery),
    security(("session" = [])),
    responses(
        (status = 200, description = "Audit entries, newest first", body = AuditPage),
    ),
)]
pub async fn audit_log(
    state: web::Data<AppState>,
    actor: Actor,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    // The role first, then the query: a viewer learns nothing from a bad one.
    actor.require_person(Role::Admin)?;
    let limit = super::page_limit(query.limit)?;
    let filter = ActionFilter::parse(query.action.as_deref())?;
    let page = audit::page(&state, &actor, query.before, filter, limit).await?;
    Ok(HttpResponse::Ok().json(AuditPage {
        items: page.items.into_iter().map(Into::into).collect(),
        next_before: page.next_before,
    }))
}
