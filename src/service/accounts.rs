//! Accounts: sign up (a new organisation and its owner), sign in (under the
//! throttle, with the bounded password hasher), sign out, and who am I.
//! The JSON API and the pages call these.

use secrecy::SecretString;

use super::{Actor, Visitor, identity, two_factor};
use crate::auth::Principal;
use crate::auth::session::StartedSession;
use crate::db;
use crate::domain::{AuditAction, Email, Name, NewPassword, Role, TenantId, UserId};
use crate::error::ApiError;
use crate::state::AppState;

/// An organisation, by id and name.
#[derive(Debug, Clone)]
pub struct Organisation {
    /// Tenant id.
    pub id: TenantId,
    /// Its name.
    pub name: String,
}

/// A person with a new session: just signed up, signed in, or joined.
pub struct SignedIn {
    /// The person.
    pub user_id: UserId,
    /// Their email.
    pub email: String,
    /// Their role.
    pub role: Role,
    /// Their organisation (`None` for operators).
    pub tenant: Option<Organisation>,
    /// The new session; its cookie must be set on the answer.
    pub session: StartedSession,
}

/// What signing up asks for, as typed.
pub struct SignUp<'a> {
    /// The organisation's name.
    pub organization: &'a str,
    /// The owner's email.
    pub email: &'a str,
    /// The owner's password.
    pub password: SecretString,
}

/// The sign-in throttle: per address, and per account from that address.
pub(super) fn throttle(
    state: &AppState,
    visitor: &Visitor,
    account: Option<&str>,
) -> Result<(), ApiError> {
    state
        .auth
        .throttle
        .check(visitor.client, account)
        .map_err(ApiError::TooManyRequests)
}

/// The organisation `tenant_id`, if it (still) exists.
pub(super) async fn organisation(
    state: &AppState,
    tenant_id: Option<TenantId>,
) -> Result<Option<Organisation>, ApiError> {
    let Some(id) = tenant_id else {
        return Ok(None);
    };
    let name = db::accounts::tenant_name(&state.pool, id).await?;
    Ok(name.map(|name| Organisation { id, name }))
}

/// Create an organisation and its owner and sign the owner in: the one way
/// to sign up. Every field is checked, so a form shows all its errors.
pub async fn sign_up(
    state: &AppState,
    visitor: &Visitor,
    input: SignUp<'_>,
) -> Result<SignedIn, ApiError> {
    throttle(state, visitor, None)?;
    let checked = (
        Name::parse("organization", input.organization),
        Email::parse("email", input.email),
        NewPassword::parse("password", input.password, input.email.trim()),
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
    let event = db::audit::AuditEvent {
        tenant_id: Some(tenant_id),
        actor_user_id: Some(user_id),
        ..visitor.audit(AuditAction::TenantCreated)
    };
    db::audit::record(&mut *tx, event.target(organization.as_str())).await?;
    db::accounts::set_language(&mut *tx, user_id, visitor.language.tag()).await?;
    super::verification::queue(&mut tx, state, user_id, &email, visitor.language).await?;
    tx.commit().await?;

    let session =
        identity::start_session(state, visitor, user_id, Some(tenant_id), Role::Owner).await?;
    Ok(SignedIn {
        user_id,
        email: email.to_string(),
        role: Role::Owner,
        tenant: Some(Organisation {
            id: tenant_id,
            name: organization.to_string(),
        }),
        session,
    })
}

/// Check an email and password and start a session: the same answer,
/// taking the same time, whether the email is unknown or the password
/// wrong. With two-factor sign-in on, `totp` must hold a code of the
/// authenticator or a recovery code (`ApiError::TotpRequired` without it).
pub async fn sign_in(
    state: &AppState,
    visitor: &Visitor,
    email: &str,
    password: SecretString,
    totp: Option<&str>,
) -> Result<SignedIn, ApiError> {
    let user = check_password(state, visitor, email, password).await?;
    if let Some(row) = two_factor::enabled(state, user.id).await? {
        let code = totp.ok_or(ApiError::TotpRequired)?;
        let audit = two_factor::visitor_audit(visitor, user.tenant_id, user.id);
        let who = (user.id, user.email.as_str());
        two_factor::verify(state, visitor.client, who, &row, code, audit).await?;
    }
    start(state, visitor, user).await
}

/// The second step of a sign-in whose password was checked a moment ago
/// (the page keeps that in a signed cookie naming `email`): the code.
pub async fn sign_in_second_step(
    state: &AppState,
    visitor: &Visitor,
    email: &str,
    code: &str,
) -> Result<SignedIn, ApiError> {
    let email = Email::parse("email", email)?;
    let user = db::accounts::user_by_email(&state.pool, &email)
        .await?
        .filter(|u| u.disabled_at.is_none())
        .ok_or(ApiError::Unauthenticated("wrong email or password"))?;
    let row = two_factor::enabled(state, user.id)
        .await?
        .ok_or(ApiError::Unauthenticated("wrong email or password"))?;
    let audit = two_factor::visitor_audit(visitor, user.tenant_id, user.id);
    let who = (user.id, user.email.as_str());
    two_factor::verify(state, visitor.client, who, &row, code, audit).await?;
    start(state, visitor, user).await
}

/// The person with this email if `password` is theirs (throttled; a
/// refusal is audited).
async fn check_password(
    state: &AppState,
    visitor: &Visitor,
    email: &str,
    password: SecretString,
) -> Result<db::accounts::UserRow, ApiError> {
    let email = Email::parse("email", email)?;
    // Hard limits per address and per account from this address; from
    // everywhere, an account's attempts are only slowed down, so a stranger
    // cannot lock its owner out.
    throttle(state, visitor, Some(email.as_str()))?;
    state.auth.throttle.slow_down(email.as_str()).await;

    let user = db::accounts::user_by_email(&state.pool, &email).await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let verified = state.auth.passwords.verify(password, stored).await?;
    match user {
        Some(u) if verified && u.disabled_at.is_none() => Ok(u),
        other => {
            let event = db::audit::AuditEvent {
                tenant_id: other.as_ref().and_then(|u| u.tenant_id),
                actor_user_id: other.as_ref().map(|u| u.id),
                ..visitor.audit(AuditAction::SignInFailed)
            };
            db::audit::record(&state.pool, event.target(email.as_str())).await?;
            Err(ApiError::Unauthenticated("wrong email or password"))
        }
    }
}

/// Start the session of `user`, who proved who they are: one that may
/// only enrol when they must have two-factor sign-in and have not.
async fn start(
    state: &AppState,
    visitor: &Visitor,
    user: db::accounts::UserRow,
) -> Result<SignedIn, ApiError> {
    let session =
        identity::start_session(state, visitor, user.id, user.tenant_id, user.role).await?;
    let event = db::audit::AuditEvent {
        tenant_id: user.tenant_id,
        actor_user_id: Some(user.id),
        ..visitor.audit(AuditAction::SignIn)
    };
    db::audit::record(&state.pool, event.target(user.email.as_str())).await?;
    Ok(SignedIn {
        tenant: organisation(state, user.tenant_id).await?,
        user_id: user.id,
        email: user.email,
        role: user.role,
        session,
    })
}

/// End the signed-in person's session (the one whose cookie value is
/// `session_cookie`) and record it. The session is gone once this
/// returns `Ok`; a sign-out the audit log failed to record is logged, not
/// refused (the person is signed out either way).
pub async fn sign_out(
    state: &AppState,
    actor: &Actor,
    session_cookie: Option<&str>,
) -> Result<(), ApiError> {
    actor.require_session()?;
    if let Some(cookie) = session_cookie {
        identity::end_session(state, cookie).await?;
    }
    if let Err(e) = db::audit::record(&state.pool, actor.audit(AuditAction::SignOut)).await {
        tracing::warn!(error = %e, "cannot record sign-out");
    }
    Ok(())
}

/// Who is calling, with their organisation.
pub struct WhoAmI {
    /// The signed-in person or the API key.
    pub principal: Principal,
    /// Their organisation (`None` for operators).
    pub tenant: Option<Organisation>,
}

/// Who `actor` is: the signed-in person or the API key, with the
/// organisation's name.
pub async fn who_am_i(state: &AppState, actor: &Actor) -> Result<WhoAmI, ApiError> {
    let tenant_id = match &actor.principal {
        Principal::Session(s) => s.tenant_id,
        Principal::ApiKey(k) => Some(k.tenant_id),
    };
    Ok(WhoAmI {
        tenant: organisation(state, tenant_id).await?,
        principal: actor.principal.clone(),
    })
}
