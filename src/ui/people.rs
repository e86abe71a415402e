//! The members page: members with their roles, removal, and invitations.
//! Every action calls the same use case as the JSON API
//! (`crate::service::members`, `crate::service::invites`), so both apply
//! the same rules: who may manage whom, never without an owner, invites
//! shown once.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use minijinja::context;
use minijinja::value::Serde;
use serde::{Deserialize, Serialize};

use super::i18n::Lang;
use super::pages::{
    CsrfForm, FieldErrors, FormRefusal, admin_scope, field_errors, form_session, form_user, one,
    signed_out, tenant_scope, when,
};
use super::{Page, redirect, redirect_with_flash};
use crate::auth::TenantScope;
use crate::domain::{InviteId, Role, UserId};
use crate::error::ApiError;
use crate::service::Actor;
use crate::service::invites::{self, CreatedInvite, InviteRow};
use crate::service::members::{self, MemberRow, TENANT_ROLES, may_manage};
use crate::state::AppState;

/// A role's name in the visitor's language.
pub(super) fn role_name(lang: Lang, role: &str) -> String {
    let text = lang.text(&format!("people_role_{role}"));
    if text.is_empty() {
        role.to_string()
    } else {
        text.to_string()
    }
}

/// What the visitor may do with a member.
#[derive(Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum MemberAccess {
    /// Change their role and remove them.
    Manage,
    /// Theirs to manage, but the only owner keeps the role: no form offers
    /// what the last-owner rule refuses.
    LastOwner,
    /// A manager who may not manage this member (an admin, an owner).
    NotTheirs,
    /// A viewer: the list only.
    ReadOnly,
}

/// A member as the members page lists them.
#[derive(Serialize)]
struct MemberLine {
    id: String,
    email: String,
    role: String,
    joined: String,
    is_you: bool,
    access: MemberAccess,
    /// Roles the visitor may give this member (with `Manage`).
    role_choices: Vec<&'static str>,
}

/// An open invite as the members page lists it (never its token).
#[derive(Serialize)]
struct InviteLine {
    id: String,
    email: Option<String>,
    role: String,
    created_at: String,
    expires_at: String,
    expired: bool,
}

/// An invite just created: its link, shown once.
#[derive(Serialize)]
struct ShownInvite {
    url: String,
    email: Option<String>,
    role: String,
    expires_at: String,
}

/// What the members page shows besides the lists.
#[derive(Default)]
struct MembersView {
    /// The invite form as typed.
    email: String,
    role: String,
    /// Errors of the invite form.
    errors: FieldErrors,
    /// An error next to one member's row: member id to message.
    row_errors: BTreeMap<String, String>,
    /// The invite just created.
    created: Option<ShownInvite>,
}

impl MemberLine {
    /// `m` as `scope` sees it, in an organisation with `owners` owners.
    fn of(m: MemberRow, scope: &TenantScope, owners: usize) -> Self {
        let can_manage = scope.role.at_least(Role::Admin);
        let access = if !can_manage {
            MemberAccess::ReadOnly
        } else if !may_manage(scope.role, m.role, None) {
            MemberAccess::NotTheirs
        } else if m.role == Role::Owner && owners < 2 {
            MemberAccess::LastOwner
        } else {
            MemberAccess::Manage
        };
        let role_choices = if access == MemberAccess::Manage {
            TENANT_ROLES
                .iter()
                .filter(|r| may_manage(scope.role, m.role, Some(**r)))
                .map(|r| r.as_str())
                .collect()
        } else {
            Vec::new()
        };
        Self {
            id: m.id.to_string(),
            is_you: Some(m.id) == scope.user_id,
            access,
            role_choices,
            joined: when(m.created_at),
            email: m.email,
            role: m.role.as_str().to_string(),
        }
    }
}

impl InviteLine {
    fn of(i: InviteRow, now: chrono::DateTime<Utc>) -> Self {
        Self {
            id: i.id.to_string(),
            email: i.email,
            role: i.role.as_str().to_string(),
            created_at: when(i.created_at),
            expires_at: when(i.expires_at),
            expired: i.expires_at <= now,
        }
    }
}

/// Render the members page as `actor` sees it.
async fn members_page(
    page: &Page,
    state: &AppState,
    actor: &Actor,
    status: StatusCode,
    view: MembersView,
) -> HttpResponse {
    let (scope, members) = match members::list(state, actor).await {
        Ok(listed) => listed,
        Err(e) => return page.error(&e),
    };
    let can_manage = scope.role.at_least(Role::Admin);
    let (invites, departed) = if can_manage {
        let loaded = async {
            let invites = invites::list(state, actor).await?;
            Ok::<_, ApiError>((invites, super::departed::groups(state, actor).await?))
        };
        match loaded.await {
            Ok(rows) => rows,
            Err(e) => return page.error(&e),
        }
    } else {
        (Vec::new(), Vec::new())
    };
    let owners = members.iter().filter(|m| m.role == Role::Owner).count();
    let lines: Vec<MemberLine> = members
        .into_iter()
        .map(|m| MemberLine::of(m, &scope, owners))
        .collect();
    let now = Utc::now();
    let pending: Vec<InviteLine> = invites
        .into_iter()
        .filter(|i| i.accepted_at.is_none())
        .map(|i| InviteLine::of(i, now))
        .collect();
    let role_names: BTreeMap<&str, String> = TENANT_ROLES
        .iter()
        .map(|r| (r.as_str(), role_name(page.lang, r.as_str())))
        .collect();
    page.render(
        status,
        "members.html",
        context! {
            members => Serde(&lines),
            invites => Serde(&pending),
            can_manage,
            role_names => Serde(&role_names),
            form => context! {
                email => view.email,
                role => if view.role.is_empty() { "viewer".to_string() } else { view.role },
            },
            errors => Serde(&view.errors),
            row_errors => Serde(&view.row_errors),
            created => Serde(&view.created),
            departed => Serde(&departed),
        },
    )
}

/// GET /members: every member of the organisation; owners and admins also
/// manage roles and invites here (viewers see the list, as in the API).
pub async fn members(req: HttpRequest, page: Page, state: web::Data<AppState>) -> HttpResponse {
    match tenant_scope(&page).and_then(|_| page.actor(&req)) {
        Ok(actor) => {
            members_page(
                &page,
                &state,
                &actor,
                StatusCode::OK,
                MembersView::default(),
            )
            .await
        }
        Err(e) => page.error(&e),
    }
}

/// The invite form as posted.
#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// The service's own address as the visitor reached it, for links to copy.
fn base_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

/// POST /members/invite: an invite link for one email, shown once.
pub async fn create_invite(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<InviteForm>,
) -> HttpResponse {
    let InviteForm {
        csrf_token,
        email,
        role,
    } = form.into_inner();
    let refused = match form_session(&page, &csrf_token) {
        Ok(_) => None,
        Err(FormRefusal::SignedOut) => return signed_out("/members"),
        Err(FormRefusal::Stale) => Some(one("form", page.lang.text("flash_stale_form"))),
    };
    let actor = match admin_actor(&page, &req) {
        Ok((_, actor)) => actor,
        Err(e) => return page.error(&e),
    };
    let again = |status, errors| {
        members_page(
            &page,
            &state,
            &actor,
            status,
            MembersView {
                email: email.clone(),
                role: role.clone(),
                errors,
                ..MembersView::default()
            },
        )
    };
    if let Some(errors) = refused {
        return again(StatusCode::FORBIDDEN, errors).await;
    }
    match invites::create(&state, &actor, Some(&email), &role).await {
        Ok(created) => {
            let shown = shown_invite(&req, page.lang, &created);
            members_page(
                &page,
                &state,
                &actor,
                StatusCode::CREATED,
                MembersView {
                    created: Some(shown),
                    ..MembersView::default()
                },
            )
            .await
        }
        Err(ApiError::Validation(errors)) => {
            again(
                StatusCode::UNPROCESSABLE_ENTITY,
                field_errors(page.lang, &errors),
            )
            .await
        }
        Err(e) => page.error(&e),
    }
}

fn shown_invite(req: &HttpRequest, lang: Lang, created: &CreatedInvite) -> ShownInvite {
    ShownInvite {
        url: format!("{}{}", base_url(req), created.path()),
        email: created.email.as_ref().map(ToString::to_string),
        role: role_name(lang, created.role.as_str()),
        expires_at: when(created.expires_at),
    }
}

/// The role form of a member's row.
#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    role: String,
}

/// The owner or admin of a page, as the scope they act in and the actor
/// of the use cases; or the page that says why not.
fn admin_actor(page: &Page, req: &HttpRequest) -> Result<(TenantScope, Actor), ApiError> {
    let scope = admin_scope(page)?;
    Ok((scope, page.actor(req)?))
}

/// A member id from the path; anything else is a member that does not exist.
fn member_id(raw: &str) -> Result<UserId, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound("member"))
}

/// The members page with an error next to one member's row.
async fn row_error(
    page: &Page,
    state: &AppState,
    actor: &Actor,
    status: StatusCode,
    id: UserId,
    text: String,
) -> HttpResponse {
    members_page(
        page,
        state,
        actor,
        status,
        MembersView {
            row_errors: BTreeMap::from([(id.to_string(), text)]),
            ..MembersView::default()
        },
    )
    .await
}

/// The page for a refused change of a member: the reason next to their row.
async fn member_refusal(
    page: &Page,
    state: &AppState,
    actor: &Actor,
    id: UserId,
    e: ApiError,
) -> HttpResponse {
    let (status, text) = match e {
        ApiError::Conflict {
            code: "last_owner", ..
        } => (
            StatusCode::CONFLICT,
            page.lang.text("people_last_owner").to_string(),
        ),
        ApiError::Forbidden(_) => (
            StatusCode::FORBIDDEN,
            page.lang.text("people_owner_only").to_string(),
        ),
        ApiError::Validation(errors) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            field_errors(page.lang, &errors)
                .into_values()
                .next()
                .unwrap_or_default(),
        ),
        e => return page.error(&e),
    };
    row_error(page, state, actor, status, id, text).await
}

/// Where a person goes after changing their own membership: their
/// sessions ended with it, so sign-in, saying why.
fn own_change(key: &str) -> HttpResponse {
    redirect_with_flash("/login", "ok", key, "")
}

/// POST /members/{id}/role: give a member another role.
pub async fn change_role(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<RoleForm>,
) -> HttpResponse {
    if let Err(refused) = form_user(&page, &form.csrf_token, "/members") {
        return refused;
    }
    let (scope, actor, id) =
        match admin_actor(&page, &req).and_then(|(s, a)| Ok((s, a, member_id(&path)?))) {
            Ok(found) => found,
            Err(e) => return page.error(&e),
        };
    // A role the form cannot offer is refused like any role the API refuses.
    let Some(role) = form
        .role
        .parse::<Role>()
        .ok()
        .filter(|r| *r != Role::Operator)
    else {
        return row_error(
            &page,
            &state,
            &actor,
            StatusCode::UNPROCESSABLE_ENTITY,
            id,
            page.lang.text("err_invalid_role").to_string(),
        )
        .await;
    };
    match members::change_role(&state, &actor, id, role).await {
        // The role it already had: nothing changed.
        Ok(change) if change.from == change.to => super::redirect("/members"),
        Ok(change) if Some(change.member.id) == scope.user_id => {
            own_change("people_own_role_changed")
        }
        Ok(change) => redirect_with_flash(
            "/members",
            "ok",
            &format!("people_role_changed_{}", change.to.as_str()),
            &change.member.email,
        ),
        Err(e) => member_refusal(&page, &state, &actor, id, e).await,
    }
}

/// POST /members/{id}/remove: remove a member after the confirmation step.
pub async fn remove_member(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    if let Err(refused) = form_user(&page, &form.csrf_token, "/members") {
        return refused;
    }
    let (scope, actor, id) =
        match admin_actor(&page, &req).and_then(|(s, a)| Ok((s, a, member_id(&path)?))) {
            Ok(found) => found,
            Err(e) => return page.error(&e),
        };
    match members::remove(&state, &actor, id).await {
        Ok(member) if Some(member.id) == scope.user_id => own_change("people_you_left"),
        Ok(member) => redirect_with_flash("/members", "ok", "people_removed", &member.email),
        Err(e) => member_refusal(&page, &state, &actor, id, e).await,
    }
}

/// POST /members/invites/{id}/revoke: withdraw an open invite.
pub async fn revoke_invite(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    if let Err(refused) = form_user(&page, &form.csrf_token, "/members") {
        return refused;
    }
    let result = async {
        let (_, actor) = admin_actor(&page, &req)?;
        let id = path
            .parse::<InviteId>()
            .map_err(|_| ApiError::NotFound("invite"))?;
        invites::withdraw(&state, &actor, id).await
    }
    .await;
    match result {
        Ok(invite) => match invite.email {
            Some(email) => redirect_with_flash("/members", "ok", "invite_revoked", &email),
            None => redirect_with_flash("/members", "ok", "invite_revoked_any", ""),
        },
        Err(e) => page.error(&e),
    }
}

/// GET /members/invite: the form's address opened directly; the page
/// with the form.
pub async fn invite_form() -> HttpResponse {
    redirect("/members")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every role has a name in both languages.
    #[test]
    fn every_role_is_named() {
        for lang in [Lang::En, Lang::Zh] {
            for role in TENANT_ROLES {
                assert_ne!(role_name(lang, role.as_str()), role.as_str());
            }
        }
    }
}
