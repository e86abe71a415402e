//! Invitations: an owner or admin creates a link (shown once) for a new
//! admin or viewer, lists and withdraws them; whoever opens the link joins
//! with a new account, exactly once.

use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret as _, SecretString};

use super::accounts::{self, SignedIn};
use super::{Actor, Visitor, identity};
use crate::db;
use crate::domain::credential as token;
use crate::domain::{AuditAction, Email, FieldError, InviteId, NewPassword, Role, UserId};
use crate::error::ApiError;
use crate::mail::{self, Language, Mail};
use crate::state::AppState;

pub use crate::db::invites::{InviteByToken, InviteRow};

/// How long an invite link works.
const INVITE_DAYS: i64 = 7;

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

/// The role an invite may give (admin or viewer), from its name as sent.
fn invitee_role(role: &str) -> Result<Role, FieldError> {
    role.parse::<Role>()
        .ok()
        .filter(|r| matches!(r, Role::Admin | Role::Viewer))
        .ok_or_else(|| {
            FieldError::new(
                "role",
                "invalid_role",
                "invite as admin or viewer; make an owner later from the members list",
            )
        })
}

/// Create an invite link for a new admin or viewer (`role` as named by the
/// request or form), optionally for one email. Nothing is stored unless
/// every field is valid.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    email: Option<&str>,
    role: &str,
) -> Result<CreatedInvite, ApiError> {
    let scope = actor.require_person(Role::Admin)?;
    let (email, role) = match (
        email.map(|e| Email::parse("email", e)).transpose(),
        invitee_role(role),
    ) {
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
    // With an email, a second token, mailed to it: joining with that one
    // verifies the address.
    let mail_token = email.as_ref().map(|_| token::random_token(32));
    let id = InviteId::new();
    let expires_at = Utc::now() + Duration::days(INVITE_DAYS);
    let mail_hash = mail_token.as_deref().map(token::hash);
    let mut tx = state.pool.begin().await?;
    let new = db::invites::NewInvite {
        id,
        tenant_id: scope.tenant_id,
        token_hash: &token::hash(&invite_token),
        mail_token_hash: mail_hash.as_ref().map(<[u8; 32]>::as_slice),
        email: email.as_ref(),
        role,
        created_by: user_id,
        expires_at,
    };
    db::invites::insert(&mut *tx, &new).await?;
    if let (Some(to), Some(mail_token)) = (&email, &mail_token) {
        let invite = InviteMail {
            to,
            role,
            expires_at,
            link: format!("{}/invite/{mail_token}", state.settings.public_base()),
        };
        mail_invite(&mut tx, state, actor, &invite).await?;
    }
    let event = actor
        .audit(AuditAction::InviteCreated)
        .target(id.to_string())
        .detail(serde_json::json!({ "role": role, "email": email.as_ref().map(Email::as_str) }));
    db::audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(CreatedInvite {
        id,
        role,
        email,
        token: SecretString::from(invite_token),
        expires_at,
    })
}

/// What an invite mail says.
struct InviteMail<'a> {
    to: &'a Email,
    role: Role,
    expires_at: DateTime<Utc>,
    link: String,
}

/// Queue the invite mail on `conn` (the invite's transaction), in the
/// inviter's language.
async fn mail_invite(
    conn: &mut sqlx::PgConnection,
    state: &AppState,
    actor: &Actor,
    invite: &InviteMail<'_>,
) -> Result<(), ApiError> {
    let me = actor.require_session()?;
    let organization = match me.tenant_id {
        Some(id) => db::accounts::tenant_name(&mut *conn, id).await?,
        None => None,
    }
    .unwrap_or_default();
    let language = db::accounts::credentials(&mut *conn, me.user_id)
        .await?
        .map_or(Language::En, |c| Language::from_tag(&c.language));
    let context = minijinja::context! {
        organization,
        inviter => me.email.as_str(),
        role => invite.role.as_str(),
        expires => invite.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        link => invite.link.as_str(),
    };
    let rendered = mail::render("invite", language, &context)?;
    mail::enqueue_in(
        conn,
        &state.crypto,
        &Mail::new(invite.to.clone(), "invite.mailed", rendered),
    )
    .await?;
    Ok(())
}

/// The invites of the actor's organisation, newest first (owners and admins).
pub async fn list(state: &AppState, actor: &Actor) -> Result<Vec<InviteRow>, ApiError> {
    let scope = actor.require_person(Role::Admin)?;
    Ok(db::invites::list(&state.pool, scope.tenant_id).await?)
}

/// Withdraw an open invite (its link stops working); returns it as it was.
pub async fn withdraw(
    state: &AppState,
    actor: &Actor,
    id: InviteId,
) -> Result<InviteRow, ApiError> {
    let scope = actor.require_person(Role::Admin)?;
    let mut tx = state.pool.begin().await?;
    let invite = db::invites::delete(&mut *tx, scope.tenant_id, id)
        .await?
        .ok_or(ApiError::NotFound("invite"))?;
    let event = actor
        .audit(AuditAction::InviteWithdrawn)
        .target(id.to_string())
        .detail(serde_json::json!({ "role": invite.role, "email": invite.email }));
    db::audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(invite)
}

/// Why an invite link does not work (any more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedInvite {
    /// No invite has this token.
    Unknown,
    /// Someone joined with it already.
    Used,
    /// It expired.
    Expired,
}

/// The open invite a link's token names, or why the link does not work
/// (with the invite, when there is one).
pub async fn open(
    state: &AppState,
    invite_token: &str,
) -> Result<Result<InviteByToken, (ClosedInvite, Option<InviteByToken>)>, ApiError> {
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

/// Accept an invite with a new account and sign it in: the one way to
/// join. The invite is claimed under a row lock, so a link works exactly
/// once; nothing is stored unless the account is created.
pub async fn accept(
    state: &AppState,
    visitor: &Visitor,
    invite_token: &str,
    email: &str,
    password: SecretString,
) -> Result<SignedIn, ApiError> {
    accounts::throttle(state, visitor, None)?;
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
    let user_id = UserId::new();
    let tenant = Some(invite.tenant_id);
    match db::accounts::insert_user(&mut *tx, user_id, tenant, &email, &hash, invite.role).await {
        Ok(()) => {}
        Err(e) if db::accounts::is_email_taken(&e) => {
            return Err(ApiError::Conflict {
                code: "email_taken",
                detail: "an account with this email exists already".into(),
            });
        }
        Err(e) => return Err(e.into()),
    }
    db::accounts::set_language(&mut *tx, user_id, visitor.language.tag()).await?;
    db::invites::mark_accepted(&mut tx, invite.id, user_id).await?;
    joined_address(&mut tx, state, visitor, &invite, user_id, &email).await?;
    let event = db::audit::AuditEvent {
        tenant_id: tenant,
        actor_user_id: Some(user_id),
        ..visitor.audit(AuditAction::MemberJoined)
    };
    let event = event
        .target(email.as_str())
        .detail(serde_json::json!({ "role": invite.role }));
    db::audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    let session = identity::start_session(state, visitor, user_id, tenant, invite.role).await?;
    Ok(SignedIn {
        tenant: accounts::organisation(state, tenant).await?,
        user_id,
        email: email.to_string(),
        role: invite.role,
        session,
    })
}

/// The new member's address: verified when they joined through the link
/// mailed to it (it proves they read that mailbox); otherwise a
/// verification link is mailed to it, as at sign-up.
async fn joined_address(
    tx: &mut sqlx::PgConnection,
    state: &AppState,
    visitor: &Visitor,
    invite: &db::invites::ClaimedInvite,
    user_id: UserId,
    email: &Email,
) -> Result<(), ApiError> {
    if invite.by_mail && db::accounts::mark_verified(&mut *tx, user_id, email.as_str()).await? {
        let event = db::audit::AuditEvent {
            tenant_id: Some(invite.tenant_id),
            actor_user_id: Some(user_id),
            ..visitor.audit(AuditAction::EmailVerified)
        };
        let event = event
            .target(email.as_str())
            .detail(serde_json::json!({ "by": "invite_mail" }));
        db::audit::record(&mut *tx, event).await?;
        return Ok(());
    }
    super::verification::queue(tx, state, user_id, email, visitor.language).await
}
