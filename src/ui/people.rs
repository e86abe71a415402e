//! Pages about people: the members page (roles, removal, invites), the page
//! an invite link opens, and the audit log. Every action calls the same
//! function as the JSON API (`src/api/members.rs`), so both apply the same
//! rules: who may manage whom, never without an owner, invites shown once.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use minijinja::context;
use minijinja::value::Serde;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::i18n::Lang;
use super::pages::{
    CsrfForm, FieldErrors, FormRefusal, admin_scope, field_errors, form_session, form_user, one,
    signed_out, tenant_scope, when,
};
use super::{Page, redirect, redirect_with_flash, same_origin};
use crate::api::members::{self as api_members, CreatedInvite, may_manage};
use crate::auth::{TenantScope, token};
use crate::db;
use crate::domain::{InviteId, Role, UserId};
use crate::error::ApiError;
use crate::state::AppState;

/// Entries per page of the audit log.
const AUDIT_PAGE_SIZE: i64 = 50;

/// The actions the audit log records for a tenant (the filter offers
/// these; each has a name in both catalogues, `audit_action_<action>`).
pub const AUDIT_ACTIONS: &[&str] = &[
    "signin",
    "signin.failed",
    "signout",
    "tenant.created",
    "tenant.app_limit_changed",
    "member.joined",
    "member.role_changed",
    "member.removed",
    "invite.created",
    "invite.withdrawn",
    "api_key.created",
    "api_key.revoked",
    "app.registered",
    "app.edited",
    "app.deleted",
    "app.refreshed",
    "token.read",
    "token.invalidated",
    "token.invalidate_refused",
];

/// The roles a tenant member can have, highest first.
const TENANT_ROLES: [Role; 3] = [Role::Owner, Role::Admin, Role::Viewer];

/// A role's name in the visitor's language.
fn role_name(lang: Lang, role: &str) -> String {
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

/// Render the members page for `scope`.
async fn members_page(
    page: &Page,
    state: &AppState,
    scope: &TenantScope,
    status: StatusCode,
    view: MembersView,
) -> HttpResponse {
    let members = match db::accounts::list_members(&state.pool, scope.tenant_id).await {
        Ok(rows) => rows,
        Err(e) => return page.error(&e.into()),
    };
    let can_manage = scope.role.at_least(Role::Admin);
    let invites = if can_manage {
        match db::invites::list(&state.pool, scope.tenant_id).await {
            Ok(rows) => rows,
            Err(e) => return page.error(&e.into()),
        }
    } else {
        Vec::new()
    };
    let owners = members.iter().filter(|m| m.role == "owner").count();
    let now = Utc::now();
    let lines: Vec<MemberLine> = members
        .into_iter()
        .map(|m| {
            let current: Role = m.role.parse().unwrap_or(Role::Viewer);
            let access = if !can_manage {
                MemberAccess::ReadOnly
            } else if !may_manage(scope.role, current, None) {
                MemberAccess::NotTheirs
            } else if current == Role::Owner && owners < 2 {
                MemberAccess::LastOwner
            } else {
                MemberAccess::Manage
            };
            let role_choices = if access == MemberAccess::Manage {
                TENANT_ROLES
                    .iter()
                    .filter(|r| may_manage(scope.role, current, Some(**r)))
                    .map(|r| r.as_str())
                    .collect()
            } else {
                Vec::new()
            };
            MemberLine {
                id: m.id.to_string(),
                is_you: Some(m.id) == scope.user_id,
                access,
                role_choices,
                joined: when(m.created_at),
                email: m.email,
                role: m.role,
            }
        })
        .collect();
    let pending: Vec<InviteLine> = invites
        .into_iter()
        .filter(|i| i.accepted_at.is_none())
        .map(|i| InviteLine {
            id: i.id.to_string(),
            email: i.email,
            role: i.role,
            created_at: when(i.created_at),
            expires_at: when(i.expires_at),
            expired: i.expires_at <= now,
        })
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
        },
    )
}

/// GET /members: every member of the organisation; owners and admins also
/// manage roles and invites here (viewers see the list, as in the API).
pub async fn members(page: Page, state: web::Data<AppState>) -> HttpResponse {
    match tenant_scope(&page) {
        Ok((_, scope)) => {
            members_page(
                &page,
                &state,
                &scope,
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
    let scope = match admin_scope(&page) {
        Ok(scope) => scope,
        Err(e) => return page.error(&e),
    };
    let again = |status, errors| {
        members_page(
            &page,
            &state,
            &scope,
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
    match api_members::create_invite_link(&req, &state, &scope, Some(&email), &role).await {
        Ok(created) => {
            let shown = shown_invite(&req, page.lang, &created);
            members_page(
                &page,
                &state,
                &scope,
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

/// A member id from the path; anything else is a member that does not exist.
fn member_id(raw: &str) -> Result<UserId, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound("member"))
}

/// The members page with an error next to one member's row.
async fn row_error(
    page: &Page,
    state: &AppState,
    scope: &TenantScope,
    status: StatusCode,
    id: UserId,
    text: String,
) -> HttpResponse {
    members_page(
        page,
        state,
        scope,
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
    scope: &TenantScope,
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
    row_error(page, state, scope, status, id, text).await
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
    let (scope, id) = match admin_scope(&page).and_then(|s| Ok((s, member_id(&path)?))) {
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
            &scope,
            StatusCode::UNPROCESSABLE_ENTITY,
            id,
            page.lang.text("err_invalid_role").to_string(),
        )
        .await;
    };
    match api_members::change_member_role(&req, &state, &scope, id, role).await {
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
        Err(e) => member_refusal(&page, &state, &scope, id, e).await,
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
    let (scope, id) = match admin_scope(&page).and_then(|s| Ok((s, member_id(&path)?))) {
        Ok(found) => found,
        Err(e) => return page.error(&e),
    };
    match api_members::remove_member(&req, &state, &scope, id).await {
        Ok(member) if Some(member.id) == scope.user_id => own_change("people_you_left"),
        Ok(member) => redirect_with_flash("/members", "ok", "people_removed", &member.email),
        Err(e) => member_refusal(&page, &state, &scope, id, e).await,
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
        let scope = admin_scope(&page)?;
        let id = path
            .parse::<InviteId>()
            .map_err(|_| ApiError::NotFound("invite"))?;
        api_members::withdraw_invite(&req, &state, &scope, id).await
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

/// Why an invite link does not work (any more).
#[derive(Clone, Copy)]
enum ClosedInvite {
    Unknown,
    Used,
    Expired,
}

/// The page for a link that does not work, saying what to do next.
fn closed_invite(
    page: &Page,
    why: ClosedInvite,
    invite: Option<&db::invites::InviteByToken>,
) -> HttpResponse {
    let (status, reason) = match why {
        ClosedInvite::Unknown => (StatusCode::NOT_FOUND, "unknown"),
        ClosedInvite::Used => (StatusCode::GONE, "used"),
        ClosedInvite::Expired => (StatusCode::GONE, "expired"),
    };
    page.render(
        status,
        "invite_closed.html",
        context! {
            reason,
            organization => invite.map(|i| i.tenant_name.as_str()),
            expired_at => invite.map(|i| when(i.expires_at)),
        },
    )
}

/// The invite a link names, or why it does not work.
async fn open_invite(
    state: &AppState,
    invite_token: &str,
) -> Result<
    Result<db::invites::InviteByToken, (ClosedInvite, Option<db::invites::InviteByToken>)>,
    ApiError,
> {
    let Some(invite) = db::invites::by_token(&state.pool, &token::hash(invite_token)).await? else {
        return Ok(Err((ClosedInvite::Unknown, None)));
    };
    Ok(if invite.accepted_at.is_some() {
        Err((ClosedInvite::Used, Some(invite)))
    } else if invite.expires_at <= Utc::now() {
        Err((ClosedInvite::Expired, Some(invite)))
    } else {
        Ok(invite)
    })
}

/// Render the form that accepts `invite`.
fn join_form(
    page: &Page,
    invite: &db::invites::InviteByToken,
    invite_token: &str,
    status: StatusCode,
    email: &str,
    errors: &FieldErrors,
) -> HttpResponse {
    page.render(
        status,
        "invite.html",
        context! {
            organization => invite.tenant_name.as_str(),
            role => invite.role.as_str(),
            role_name => role_name(page.lang, &invite.role),
            fixed_email => invite.email.as_deref(),
            action => format!("/invite/{invite_token}"),
            expires_at => when(invite.expires_at),
            form => context! { email => invite.email.as_deref().unwrap_or(email) },
            errors => Serde(errors),
        },
    )
}

/// GET /invite/{token}: the form that joins the organisation, or a page
/// saying why the link does not work and what to do.
pub async fn invite_page(
    page: Page,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    match open_invite(&state, &path).await {
        Ok(Ok(invite)) => join_form(
            &page,
            &invite,
            &path,
            StatusCode::OK,
            "",
            &FieldErrors::new(),
        ),
        Ok(Err((why, invite))) => closed_invite(&page, why, invite.as_ref()),
        Err(e) => page.error(&e),
    }
}

/// The join form as posted (the password is never sent back).
#[derive(Deserialize)]
pub struct JoinForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// POST /invite/{token}: create the account with the invite's role and
/// sign it in, by the API's code path.
pub async fn accept_invite(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<JoinForm>,
) -> HttpResponse {
    let JoinForm { email, password } = form.into_inner();
    let invite = match open_invite(&state, &path).await {
        Ok(Ok(invite)) => invite,
        Ok(Err((why, invite))) => return closed_invite(&page, why, invite.as_ref()),
        Err(e) => return page.error(&e),
    };
    let again =
        |status, errors: FieldErrors| join_form(&page, &invite, &path, status, &email, &errors);
    // No session yet: the same check against login CSRF as sign-up.
    if !same_origin(&req) {
        return again(
            StatusCode::FORBIDDEN,
            one("form", page.lang.text("err_cross_site")),
        );
    }
    match api_members::join(&req, &state, &path, &email, SecretString::from(password)).await {
        Ok(joined) => {
            let key = format!("invite_joined_{}", joined.role.as_str());
            let mut res = redirect_with_flash("/dashboard", "ok", &key, "");
            let _ = res.add_cookie(&joined.session.cookie);
            res
        }
        Err(ApiError::Validation(errors)) => again(
            StatusCode::UNPROCESSABLE_ENTITY,
            field_errors(page.lang, &errors),
        ),
        Err(ApiError::Conflict { .. }) => again(
            StatusCode::CONFLICT,
            one("email", page.lang.text("invite_email_taken")),
        ),
        Err(ApiError::TooManyRequests(_)) => again(
            StatusCode::TOO_MANY_REQUESTS,
            one("form", page.lang.text("error_too_many")),
        ),
        Err(ApiError::Busy(_)) => again(
            StatusCode::SERVICE_UNAVAILABLE,
            one("form", page.lang.text("error_busy")),
        ),
        // Used or expired between opening the page and sending it.
        Err(ApiError::NotFound(_)) => match open_invite(&state, &path).await {
            Ok(Err((why, invite))) => closed_invite(&page, why, invite.as_ref()),
            _ => closed_invite(&page, ClosedInvite::Unknown, None),
        },
        Err(e) => page.error(&e),
    }
}

/// Query of the audit page: kept as text, so a mangled link shows a page
/// rather than a bare error.
#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    before: String,
}

/// One audit entry as the page shows it.
#[derive(Serialize)]
struct AuditLine {
    when: String,
    action: String,
    action_name: String,
    actor: Option<String>,
    actor_key: Option<String>,
    target: Option<String>,
    details: Vec<(String, String)>,
    client_ip: Option<String>,
}

/// A detail value as text: roles named in the visitor's language, lists
/// joined, yes/no for flags; `None` for nothing to show.
fn detail_text(lang: Lang, key: &str, value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::Null => None,
        Value::Bool(b) => Some(
            lang.text(if *b { "audit_yes" } else { "audit_no" })
                .to_string(),
        ),
        Value::String(s) if matches!(key, "role" | "from" | "to") => Some(role_name(lang, s)),
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if items.is_empty() => None,
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|v| detail_text(lang, key, v))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        other => Some(other.to_string()),
    }
}

impl AuditLine {
    fn of(lang: Lang, row: db::audit::AuditRow) -> Self {
        let action_name = lang.text(&format!("audit_action_{}", row.action.replace('.', "_")));
        let detail = row.detail.as_object().cloned().unwrap_or_default();
        // An invite's email says more than its id.
        let target = detail
            .get("email")
            .and_then(|e| e.as_str())
            .map(str::to_string)
            .or(row.target);
        let details = detail
            .iter()
            .filter(|(k, _)| k.as_str() != "email")
            .filter_map(|(k, v)| {
                let label = lang.text(&format!("audit_detail_{k}"));
                let label = if label.is_empty() {
                    k.clone()
                } else {
                    label.to_string()
                };
                detail_text(lang, k, v).map(|text| (label, text))
            })
            .collect();
        Self {
            when: when(row.created_at),
            action_name: if action_name.is_empty() {
                row.action.clone()
            } else {
                action_name.to_string()
            },
            action: row.action,
            actor: row.actor_email,
            actor_key: row.actor_api_key,
            target,
            details,
            client_ip: row.client_ip,
        }
    }
}

/// GET /audit: the organisation's audit log, newest first, a page at a
/// time, optionally one action (owners and admins, as in the API).
pub async fn audit(
    page: Page,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> HttpResponse {
    let scope = match admin_scope(&page) {
        Ok(scope) => scope,
        Err(e) => return page.error(&e),
    };
    let before = match query.before.trim() {
        "" => None,
        raw => match raw.parse::<i64>() {
            Ok(id) if id > 0 => Some(id),
            _ => {
                return page.error(&ApiError::BadRequest {
                    code: "invalid_query",
                    detail: "before must be an entry id".into(),
                });
            }
        },
    };
    let wanted = query.action.trim();
    let (action, errors) = match AUDIT_ACTIONS.iter().find(|a| **a == wanted) {
        Some(a) => (Some(*a), FieldErrors::new()),
        None if wanted.is_empty() => (None, FieldErrors::new()),
        None => (None, one("action", page.lang.text("audit_unknown_action"))),
    };
    let found = match api_members::audit_page(&state, &scope, before, action, AUDIT_PAGE_SIZE).await
    {
        Ok(found) => found,
        Err(e) => return page.error(&e),
    };
    let entries: Vec<AuditLine> = found
        .items
        .into_iter()
        .map(|row| AuditLine::of(page.lang, row))
        .collect();
    let actions: Vec<(&str, &str)> = AUDIT_ACTIONS
        .iter()
        .map(|a| {
            (
                *a,
                page.lang
                    .text(&format!("audit_action_{}", a.replace('.', "_"))),
            )
        })
        .collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    page.render(
        status,
        "audit.html",
        context! {
            entries => Serde(&entries),
            actions => Serde(&actions),
            action => action.unwrap_or_default(),
            next_before => found.next_before,
            paged => before.is_some(),
            errors => Serde(&errors),
        },
    )
}

/// GET /invite: the invite link without its token (cut off when copied).
pub async fn invite_without_token(page: Page) -> HttpResponse {
    closed_invite(&page, ClosedInvite::Unknown, None)
}

/// GET /members/invite: the form's address opened directly; the page
/// with the form.
pub async fn invite_form() -> HttpResponse {
    redirect("/members")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every action the filter offers has a name in both languages.
    #[test]
    fn every_audit_action_is_named() {
        for lang in [Lang::En, Lang::Zh] {
            for action in AUDIT_ACTIONS {
                let key = format!("audit_action_{}", action.replace('.', "_"));
                assert!(!lang.text(&key).is_empty(), "{key} missing ({lang:?})");
            }
            for role in TENANT_ROLES {
                assert_ne!(role_name(lang, role.as_str()), role.as_str());
            }
        }
    }

    #[test]
    fn details_read_as_text() {
        let lang = Lang::En;
        assert_eq!(
            detail_text(lang, "to", &serde_json::json!("viewer")).as_deref(),
            Some("Viewer")
        );
        assert_eq!(
            detail_text(lang, "changed", &serde_json::json!(["name", "secret"])).as_deref(),
            Some("name, secret")
        );
        assert_eq!(detail_text(lang, "x", &serde_json::Value::Null), None);
        assert_eq!(
            detail_text(lang, "read_only", &serde_json::json!(true)).as_deref(),
            Some("yes")
        );
    }
}
