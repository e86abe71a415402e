//! Bodies about people and their keys: accounts and sessions, members,
//! invitations, API keys, the audit log, and the operator's tenant list.

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret as _;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::domain::{ApiKeyId, AuditAction, Email, InviteId, Role, TenantId, UserId};
use crate::service::accounts::{Organisation, WhoAmI as Caller};
use crate::service::audit::AuditRow;
use crate::service::invites::InviteRow;
use crate::service::keys::ApiKeyRow;
use crate::service::members::MemberRow;
use crate::service::{accounts, invites, keys, members};

/// An organisation.
#[derive(Serialize, ToSchema)]
pub struct TenantRef {
    /// Tenant id.
    pub id: TenantId,
    /// Organisation name.
    pub name: String,
}

impl From<Organisation> for TenantRef {
    fn from(o: Organisation) -> Self {
        Self {
            id: o.id,
            name: o.name,
        }
    }
}

/// A person.
#[derive(Serialize, ToSchema)]
pub struct UserRef {
    /// User id.
    pub id: UserId,
    /// Email.
    pub email: String,
    /// Role.
    pub role: Role,
}

/// A new session: who signed in, and the CSRF token for JSON calls.
#[derive(Serialize, ToSchema)]
pub struct SignedIn {
    /// The organisation (`null` for operators).
    pub tenant: Option<TenantRef>,
    /// The signed-in person.
    pub user: UserRef,
    /// Send in `X-CSRF-Token` on state-changing calls.
    pub csrf_token: String,
}

impl SignedIn {
    /// The body for a new session (its cookie goes on the answer apart).
    pub fn of(s: &accounts::SignedIn) -> Self {
        Self {
            tenant: s.tenant.clone().map(TenantRef::from),
            user: UserRef {
                id: s.user_id,
                email: s.email.clone(),
                role: s.role,
            },
            csrf_token: s.session.csrf_token.clone(),
        }
    }
}

/// Who is calling: a signed-in person (`user`, `csrf_token`) or an API key (`api_key`).
#[derive(Serialize, ToSchema)]
pub struct WhoAmI {
    /// The signed-in person (sessions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserRef>,
    /// The API key making the request (keys only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<KeyRef>,
    /// The organisation (`null` for operators).
    pub tenant: Option<TenantRef>,
    /// The CSRF token (sessions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

impl From<Caller> for WhoAmI {
    fn from(c: Caller) -> Self {
        let tenant = c.tenant.map(TenantRef::from);
        match c.principal {
            Principal::Session(s) => Self {
                user: Some(UserRef {
                    id: s.user_id,
                    email: s.email,
                    role: s.role,
                }),
                api_key: None,
                tenant,
                csrf_token: Some(s.csrf_token),
            },
            Principal::ApiKey(k) => Self {
                user: None,
                api_key: Some(KeyRef {
                    id: k.key_id,
                    read_only: k.read_only,
                    limited_to_apps: k.limited,
                }),
                tenant,
                csrf_token: None,
            },
        }
    }
}

/// The API key making a request.
#[derive(Serialize, ToSchema)]
pub struct KeyRef {
    /// Key id.
    pub id: ApiKeyId,
    /// Read-only keys cannot change anything.
    pub read_only: bool,
    /// Whether the key is limited to some apps.
    pub limited_to_apps: bool,
}

/// A new API key; `key` is shown only here.
#[derive(Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// Key id.
    pub id: ApiKeyId,
    /// Name.
    pub name: String,
    /// The key itself: store it now, it is never shown again.
    pub key: String,
    /// Visible prefix, to recognise the key.
    pub prefix: String,
    /// Read-only keys cannot change anything.
    pub read_only: bool,
    /// Appids the key is limited to; empty means every app.
    pub apps: Vec<String>,
}

impl CreatedApiKey {
    /// The body for `created`, asked for as `read_only` and limited to `apps`.
    pub fn of(created: keys::CreatedKey, read_only: bool, apps: Vec<String>) -> Self {
        Self {
            id: created.id,
            name: created.name,
            key: created.key.expose_secret().to_string(),
            prefix: created.prefix,
            read_only,
            apps,
        }
    }
}

/// An API key as listed (never the key itself).
#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    /// Key id.
    pub id: ApiKeyId,
    /// Name given at creation.
    pub name: String,
    /// Visible prefix, to recognise the key.
    pub prefix: String,
    /// Read-only keys cannot change anything.
    pub read_only: bool,
    /// Whether the key is limited to the apps in `apps` (even when they were all deleted).
    pub limited_to_apps: bool,
    /// Appids the key is limited to.
    pub apps: Vec<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last use (recorded at most every few seconds).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Who created it: their user id while they are a member (`null`
    /// once they left).
    pub created_by: Option<UserId>,
    /// The email of who created it, kept after they leave (`null` for
    /// keys older than this record).
    pub created_by_email: Option<String>,
}

impl From<ApiKeyRow> for ApiKeyView {
    fn from(k: ApiKeyRow) -> Self {
        Self {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            read_only: k.read_only,
            limited_to_apps: k.limited_to_apps,
            apps: k.apps,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
            created_by: k.created_by,
            created_by_email: k.created_by_email,
        }
    }
}

/// The tenant's API keys.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    /// Keys, newest first.
    pub items: Vec<ApiKeyView>,
}

/// A member as listed.
#[derive(Serialize, ToSchema)]
pub struct Member {
    /// User id.
    pub id: UserId,
    /// Email.
    pub email: String,
    /// Role.
    pub role: Role,
    /// When they joined.
    pub created_at: DateTime<Utc>,
}

impl From<MemberRow> for Member {
    fn from(m: MemberRow) -> Self {
        Self {
            id: m.id,
            email: m.email,
            role: m.role,
            created_at: m.created_at,
        }
    }
}

/// The tenant's members.
#[derive(Serialize, ToSchema)]
pub struct MemberList {
    /// Members.
    pub items: Vec<Member>,
}

/// A member after a role change.
#[derive(Serialize, ToSchema)]
pub struct MemberView {
    /// User id.
    pub id: UserId,
    /// Email.
    pub email: String,
    /// The new role.
    pub role: Role,
}

impl From<members::RoleChange> for MemberView {
    fn from(c: members::RoleChange) -> Self {
        Self {
            id: c.member.id,
            email: c.member.email,
            role: c.to,
        }
    }
}

/// A new invitation; `token` and `url` are shown only here.
#[derive(Serialize, ToSchema)]
pub struct CreatedInvite {
    /// Invite id.
    pub id: InviteId,
    /// Role the invitee gets.
    pub role: Role,
    /// The email the invite is for, if it names one.
    pub email: Option<String>,
    /// The invite token.
    pub token: String,
    /// The invite link, relative to the service.
    pub url: String,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
}

impl From<invites::CreatedInvite> for CreatedInvite {
    fn from(c: invites::CreatedInvite) -> Self {
        Self {
            id: c.id,
            role: c.role,
            email: c.email.as_ref().map(|e| Email::as_str(e).to_string()),
            url: c.path(),
            token: c.token.expose_secret().to_string(),
            expires_at: c.expires_at,
        }
    }
}

/// An invitation as listed (never its token).
#[derive(Serialize, ToSchema)]
pub struct InviteView {
    /// Invite id.
    pub id: InviteId,
    /// The email the invite is for, if it names one.
    pub email: Option<String>,
    /// Role the invitee gets.
    pub role: Role,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Expires.
    pub expires_at: DateTime<Utc>,
    /// Accepted, if it was.
    pub accepted_at: Option<DateTime<Utc>>,
}

impl From<InviteRow> for InviteView {
    fn from(i: InviteRow) -> Self {
        Self {
            id: i.id,
            email: i.email,
            role: i.role,
            created_at: i.created_at,
            expires_at: i.expires_at,
            accepted_at: i.accepted_at,
        }
    }
}

/// The tenant's invitations.
#[derive(Serialize, ToSchema)]
pub struct InviteList {
    /// Invitations.
    pub items: Vec<InviteView>,
}

/// An audit entry.
#[derive(Serialize, ToSchema)]
pub struct AuditEntry {
    /// Entry id.
    pub id: i64,
    /// What happened.
    pub action: AuditAction,
    /// Email of the acting user, if a user acted.
    pub actor_email: Option<String>,
    /// Prefix of the acting API key, if a key acted.
    pub actor_api_key: Option<String>,
    /// What it happened to.
    pub target: Option<String>,
    /// More detail.
    pub detail: serde_json::Value,
    /// Client address.
    pub client_ip: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        Self {
            id: r.id,
            action: r.action,
            actor_email: r.actor_email,
            actor_api_key: r.actor_api_key,
            target: r.target,
            detail: r.detail,
            client_ip: r.client_ip,
            created_at: r.created_at,
        }
    }
}

/// A page of the audit log.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    /// Entries, newest first.
    pub items: Vec<AuditEntry>,
    /// Pass as `before` for the next page; `null` on the last page.
    pub next_before: Option<i64>,
}
