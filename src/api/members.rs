//! Members of an organisation, invitations, and the audit log.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::audit_event;
use crate::auth::{Principal, TenantScope, session, token};
use crate::db;
use crate::domain::{Email, FieldError, InviteId, NewPassword, Role, TenantId, UserId};
use crate::error::ApiError;
use crate::state::AppState;

/// How long an invite link works.
const INVITE_DAYS: i64 = 7;

/// GET /api/v1/members
#[utoipa::path(
    get,
    path = "/api/v1/members",
    tag = "members",
    security(("session" = [])),
    responses(
        (status = 200, description = "The organisation's members", body = crate::api::openapi::MemberList),
    ),
)]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require_session()?;
    let scope = principal.require(Role::Viewer)?;
    let members = db::accounts::list_members(&state.pool, scope.tenant_id).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": members })))
}

/// Body of PATCH /api/v1/members/{id}.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRoleRequest {
    /// The new role: owner, admin or viewer.
    role: Role,
}

/// Whether `actor` may give or take a role from a member who has `current`
/// and is to get `new` (admins manage admins and viewers; owners manage all).
pub fn may_manage(actor: Role, current: Role, new: Option<Role>) -> bool {
    let touches_owner = current == Role::Owner || new == Some(Role::Owner);
    match actor {
        Role::Owner => true,
        Role::Admin => !touches_owner,
        _ => false,
    }
}

/// A member whose role was changed.
pub struct RoleChange {
    /// The member, as before the change.
    pub member: db::accounts::MemberRow,
    /// The role they had.
    pub from: Role,
    /// The role they have now.
    pub to: Role,
}

/// Change a member's role by the rules of the organisation (who may manage
/// whom, never without an owner): shared by the JSON API and the members
/// page. The member's sessions end, so the new role applies at once.
pub async fn change_member_role(
    req: &HttpRequest,
    state: &AppState,
    scope: &TenantScope,
    member_id: UserId,
    new_role: Role,
) -> Result<RoleChange, ApiError> {
    if new_role == Role::Operator {
        return Err(
            FieldError::new("role", "invalid_role", "choose owner, admin or viewer").into(),
        );
    }
    let mut tx = state.pool.begin().await?;
    let member = lock_member(&mut tx, scope, member_id).await?;
    let current: Role = member.role.parse().unwrap_or(Role::Viewer);
    if !may_manage(scope.role, current, Some(new_role)) {
        return Err(ApiError::Forbidden(
            "only an owner may give or take the owner role",
        ));
    }
    if current == new_role {
        // Nothing changes: no audit entry, and the member stays signed in
        // (a real change ends their sessions).
        return Ok(RoleChange {
            member,
            from: current,
            to: new_role,
        });
    }
    if current == Role::Owner && new_role != Role::Owner {
        ensure_another_owner(&mut tx, scope.tenant_id).await?;
    }
    db::accounts::set_role(&mut tx, scope.tenant_id, member_id, new_role).await?;
    db::audit::record(
        &mut *tx,
        db::audit::AuditEvent {
            detail: json!({ "from": current, "to": new_role }),
            ..audit_event(
                req,
                Some(scope.tenant_id),
                scope.user_id,
                "member.role_changed",
                Some(member.email.clone()),
            )
        },
    )
    .await?;
    tx.commit().await?;
    Ok(RoleChange {
        member,
        from: current,
        to: new_role,
    })
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
        (status = 200, description = "The member with the new role", body = crate::api::openapi::MemberView),
        (status = 409, description = "The organisation would lose its last owner (`last_owner`)", body = crate::api::openapi::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn change_role(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<UserId>,
    body: web::Json<ChangeRoleRequest>,
) -> Result<HttpResponse, ApiError> {
    principal.require_session()?;
    let scope = principal.require(Role::Admin)?;
    let change = change_member_role(&req, &state, &scope, path.into_inner(), body.role).await?;
    Ok(HttpResponse::Ok()
        .json(json!({ "id": change.member.id, "email": change.member.email, "role": change.to })))
}

/// Remove a member by the rules of the organisation (who may manage whom,
/// never without an owner): shared by the JSON API and the members page.
/// Returns the member as they were.
pub async fn remove_member(
    req: &HttpRequest,
    state: &AppState,
    scope: &TenantScope,
    member_id: UserId,
) -> Result<db::accounts::MemberRow, ApiError> {
    let mut tx = state.pool.begin().await?;
    let member = lock_member(&mut tx, scope, member_id).await?;
    let current: Role = member.role.parse().unwrap_or(Role::Viewer);
    if !may_manage(scope.role, current, None) {
        return Err(ApiError::Forbidden("only an owner may remove an owner"));
    }
    if current == Role::Owner {
        ensure_another_owner(&mut tx, scope.tenant_id).await?;
    }
    db::accounts::delete_member(&mut tx, scope.tenant_id, member_id).await?;
    db::audit::record(
        &mut *tx,
        audit_event(
            req,
            Some(scope.tenant_id),
            scope.user_id,
            "member.removed",
            Some(member.email.clone()),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(member)
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
        (status = 409, description = "The organisation would lose its last owner (`last_owner`)", body = crate::api::openapi::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn remove(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    principal.require_session()?;
    let scope = principal.require(Role::Admin)?;
    remove_member(&req, &state, &scope, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn lock_member(
    tx: &mut sqlx::PgConnection,
    scope: &TenantScope,
    member_id: UserId,
) -> Result<db::accounts::MemberRow, ApiError> {
    db::accounts::member_for_update(tx, scope.tenant_id, member_id)
        .await?
        .ok_or(ApiError::NotFound("member"))
}

async fn ensure_another_owner(
    tx: &mut sqlx::PgConnection,
    tenant_id: TenantId,
) -> Result<(), ApiError> {
    if db::accounts::owner_count_for_update(tx, tenant_id).await? < 2 {
        return Err(ApiError::Conflict {
            code: "last_owner",
            detail: "an organisation needs at least one owner: make someone else owner first"
                .into(),
        });
    }
    Ok(())
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

/// An invite just created; its token is shown only once.
pub struct CreatedInvite {
    /// Invite id.
    pub id: InviteId,
    /// Role the invitee gets.
    pub role: Role,
    /// The email it is for, if any.
    pub email: Option<Email>,
    /// The link's token (only its hash is stored).
    pub token: SecretString,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
}

impl CreatedInvite {
    /// The invite link, relative to the service.
    pub fn path(&self) -> String {
        format!("/invite/{}", self.token.expose_secret())
    }
}

/// Create an invite link for a new admin or viewer (`role` as named by
/// the request or form), optionally for one email: shared by the JSON API
/// and the members page. Nothing is stored unless every field is valid.
pub async fn create_invite_link(
    req: &HttpRequest,
    state: &AppState,
    scope: &TenantScope,
    email: Option<&str>,
    role: &str,
) -> Result<CreatedInvite, ApiError> {
    let email = email.map(|e| Email::parse("email", e)).transpose();
    let role_ok = role
        .parse::<Role>()
        .ok()
        .filter(|r| matches!(r, Role::Admin | Role::Viewer))
        .ok_or_else(|| {
            FieldError::new(
                "role",
                "invalid_role",
                "invite as admin or viewer; make an owner later from the members list",
            )
        });
    let (email, role) = match (email, role_ok) {
        (Ok(e), Ok(r)) => (e, r),
        (e, r) => {
            return Err(ApiError::Validation(
                [e.err(), r.err()].into_iter().flatten().collect(),
            ));
        }
    };
    let user_id = scope
        .user_id
        .ok_or(ApiError::Forbidden("this needs a signed-in user"))?;
    let invite_token = token::random_token(32);
    let id = InviteId::new();
    let expires_at = Utc::now() + Duration::days(INVITE_DAYS);
    let mut tx = state.pool.begin().await?;
    db::invites::insert(
        &mut *tx,
        &db::invites::NewInvite {
            id,
            tenant_id: scope.tenant_id,
            token_hash: &token::hash(&invite_token),
            email: email.as_ref(),
            role: role.as_str(),
            created_by: user_id,
            expires_at,
        },
    )
    .await?;
    db::audit::record(
        &mut *tx,
        db::audit::AuditEvent {
            detail: json!({ "role": role, "email": email.as_ref().map(Email::as_str) }),
            ..audit_event(
                req,
                Some(scope.tenant_id),
                Some(user_id),
                "invite.created",
                Some(id.to_string()),
            )
        },
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedInvite {
        id,
        role,
        email,
        token: SecretString::from(invite_token),
        expires_at,
    })
}

/// POST /api/v1/invites: an invite link (shown once) for a new member.
#[utoipa::path(
    post,
    path = "/api/v1/invites",
    tag = "members",
    request_body = CreateInviteRequest,
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 201, description = "The invitation; `token` and `url` are shown only here", body = crate::api::openapi::CreatedInvite),
    ),
)]
pub async fn create_invite(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateInviteRequest>,
) -> Result<HttpResponse, ApiError> {
    principal.require_session()?;
    let scope = principal.require(Role::Admin)?;
    let created = create_invite_link(
        &req,
        &state,
        &scope,
        body.email.as_deref(),
        body.role.as_str(),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({
            "id": created.id,
            "role": created.role,
            "email": created.email.as_ref().map(Email::as_str),
            "token": created.token.expose_secret(),
            "url": created.path(),
            "expires_at": created.expires_at,
        })))
}

/// GET /api/v1/invites
#[utoipa::path(
    get,
    path = "/api/v1/invites",
    tag = "members",
    security(("session" = [])),
    responses(
        (status = 200, description = "The organisation's invitations", body = crate::api::openapi::InviteList),
    ),
)]
pub async fn list_invites(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require_session()?;
    let scope = principal.require(Role::Admin)?;
    let invites = db::invites::list(&state.pool, scope.tenant_id).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": invites })))
}

/// Withdraw an open invite (its link stops working): shared by the JSON API
/// and the members page. Returns the invite as it was.
pub async fn withdraw_invite(
    req: &HttpRequest,
    state: &AppState,
    scope: &TenantScope,
    id: InviteId,
) -> Result<db::invites::InviteRow, ApiError> {
    let mut tx = state.pool.begin().await?;
    let invite = db::invites::delete(&mut *tx, scope.tenant_id, id)
        .await?
        .ok_or(ApiError::NotFound("invite"))?;
    db::audit::record(
        &mut *tx,
        db::audit::AuditEvent {
            detail: json!({ "role": invite.role, "email": invite.email }),
            ..audit_event(
                req,
                Some(scope.tenant_id),
                scope.user_id,
                "invite.withdrawn",
                Some(id.to_string()),
            )
        },
    )
    .await?;
    tx.commit().await?;
    Ok(invite)
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
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<InviteId>,
) -> Result<HttpResponse, ApiError> {
    principal.require_session()?;
    let scope = principal.require(Role::Admin)?;
    withdraw_invite(&req, &state, &scope, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Body of POST /api/v1/invites/accept.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInviteRequest {
    /// The invite token.
    token: String,
    /// The new member's email (the invite's, if it names one).
    #[schema(format = Email)]
    email: String,
    /// At least 10 characters, not a common password.
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

/// A person who just joined an organisation through an invite, signed in.
pub struct Joined {
    /// The organisation.
    pub tenant_id: TenantId,
    /// The new member.
    pub user_id: UserId,
    /// Their email.
    pub email: Email,
    /// The role the invite gave them.
    pub role: Role,
    /// Their new session.
    pub session: session::StartedSession,
}

/// Accept an invite with a new account and sign it in: the one way to
/// join, shared by the JSON API and the invite page. The invite is claimed
/// under a row lock, so a link works exactly once; nothing is stored unless
/// the account is created.
pub async fn join(
    req: &HttpRequest,
    state: &AppState,
    invite_token: &str,
    email: &str,
    password: SecretString,
) -> Result<Joined, ApiError> {
    state
        .auth
        .throttle
        .check(crate::http::identity::client_ip(req), None)
        .map_err(ApiError::TooManyRequests)?;
    let checked = (
        Email::parse("email", email),
        NewPassword::parse("password", password, email.trim()),
    );
    let (email, password) = match checked {
        (Ok(e), Ok(p)) => (e, p),
        (e, p) => {
            return Err(ApiError::Validation(
                [e.err(), p.err()].into_iter().flatten().collect(),
            ));
        }
    };
    let hash = state.auth.passwords.hash(password.secret().clone()).await?;

    let mut tx = state.pool.begin().await?;
    let Some(invite) = db::invites::claim(&mut tx, &token::hash(invite_token)).await? else {
        return Err(ApiError::NotFound(
            "invite (it may have expired or been used already)",
        ));
    };
    if let Some(invited) = invite.email.as_deref()
        && invited != email.as_str()
    {
        return Err(FieldError::new(
            "email",
            "invite_email_mismatch",
            format!("this invite is for {invited}: join with that address"),
        )
        .into());
    }
    let role: Role = invite.role.parse().unwrap_or(Role::Viewer);
    let user_id = UserId::new();
    match db::accounts::insert_user(
        &mut *tx,
        user_id,
        Some(invite.tenant_id),
        &email,
        &hash,
        role,
    )
    .await
    {
        Ok(()) => {}
        Err(e) if db::accounts::is_email_taken(&e) => {
            return Err(ApiError::Conflict {
                code: "email_taken",
                detail: "an account with this email exists already".into(),
            });
        }
        Err(e) => return Err(e.into()),
    }
    db::invites::mark_accepted(&mut tx, invite.id, user_id).await?;
    db::audit::record(
        &mut *tx,
        db::audit::AuditEvent {
            detail: json!({ "role": role }),
            ..audit_event(
                req,
                Some(invite.tenant_id),
                Some(user_id),
                "member.joined",
                Some(email.to_string()),
            )
        },
    )
    .await?;
    tx.commit().await?;
    let session =
        crate::http::identity::start_session(req, state, user_id, Some(invite.tenant_id)).await?;
    Ok(Joined {
        tenant_id: invite.tenant_id,
        user_id,
        email,
        role,
        session,
    })
}

/// POST /api/v1/invites/accept: join with a new account, signed in.
#[utoipa::path(
    post,
    path = "/api/v1/invites/accept",
    tag = "members",
    request_body = AcceptInviteRequest,
    security(()),
    responses(
        (status = 201, description = "Joined and signed in; sets the `tv_session` cookie", body = crate::api::openapi::SignedIn),
        (status = 409, description = "An account with this email exists (`email_taken`)", body = crate::api::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Every password hasher is busy (`busy`); see `Retry-After`", body = crate::api::openapi::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn accept_invite(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<AcceptInviteRequest>,
) -> Result<HttpResponse, ApiError> {
    let AcceptInviteRequest {
        token: invite_token,
        email,
        password,
    } = body.into_inner();
    let joined = join(&req, &state, &invite_token, &email, password).await?;
    Ok(HttpResponse::Created().cookie(joined.session.cookie).json(json!({
        "tenant": { "id": joined.tenant_id, "name": db::accounts::tenant_name(&state.pool, joined.tenant_id).await? },
        "user": { "id": joined.user_id, "email": joined.email.as_str(), "role": joined.role },
        "csrf_token": joined.session.csrf_token,
    })))
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

/// A page of the audit log, newest first.
pub struct AuditPage {
    /// The entries.
    pub items: Vec<db::audit::AuditRow>,
    /// The `before` of the next (older) page, if there may be one.
    pub next_before: Option<i64>,
}

/// A page of the tenant's audit log (owners and admins read it): shared by
/// the JSON API and the audit page.
pub async fn audit_page(
    state: &AppState,
    scope: &TenantScope,
    before: Option<i64>,
    action: Option<&str>,
    limit: i64,
) -> Result<AuditPage, ApiError> {
    // Action names are dotted lower-case words (`member.joined`).
    if let Some(a) = action
        && (a.is_empty()
            || a.len() > 64
            || !a
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_'))
    {
        return Err(ApiError::BadRequest {
            code: "invalid_query",
            detail: "action must be an action name such as member.joined".into(),
        });
    }
    let items = db::audit::list(&state.pool, scope.tenant_id, before, action, limit).await?;
    let next_before = (items.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| items.last().map(|i| i.id))
        .flatten();
    Ok(AuditPage { items, next_before })
}

/// GET /api/v1/audit-log: newest first, `before` an id for the next page.
#[utoipa::path(
    get,
    path = "/api/v1/audit-log",
    tag = "members",
    params(AuditQuery),
    security(("session" = [])),
    responses(
        (status = 200, description = "Audit entries, newest first", body = crate::api::openapi::AuditPage),
    ),
)]
pub async fn audit_log(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require_session()?;
    let scope = principal.require(Role::Admin)?;
    let limit = super::page_limit(query.limit)?;
    let page = audit_page(&state, &scope, query.before, query.action.as_deref(), limit).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": page.items, "next_before": page.next_before })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_may_manage_whom() {
        assert!(may_manage(Role::Owner, Role::Owner, Some(Role::Viewer)));
        assert!(may_manage(Role::Admin, Role::Viewer, Some(Role::Admin)));
        assert!(!may_manage(Role::Admin, Role::Owner, Some(Role::Viewer)));
        assert!(!may_manage(Role::Admin, Role::Viewer, Some(Role::Owner)));
        assert!(!may_manage(Role::Admin, Role::Owner, None));
        assert!(!may_manage(Role::Viewer, Role::Viewer, None));
    }
}
