//! Passwords: reset by a mailed one-use link (valid an hour, only to a
//! verified address), and change by the signed-in person.

use std::time::Duration;

use chrono::Utc;
use secrecy::SecretString;
use sqlx::PgConnection;

use super::{Actor, Visitor, accounts};
use crate::db;
use crate::db::email_links::Purpose;
use crate::domain::FieldError;
use crate::domain::credential as token;
use crate::domain::{AuditAction, Email, NewPassword, UserId};
use crate::error::ApiError;
use crate::mail::{self, Language, Mail};
use crate::state::AppState;

/// How long a reset link works.
const RESET_LINK_LIFETIME: chrono::Duration = chrono::Duration::hours(1);
/// Reset mails one account gets per hour at most.
const RESETS_PER_HOUR: i64 = 3;
/// A reset request answers no sooner than this, whatever it found: the
/// time tells nothing about whether the email has an account.
const RESET_ANSWER_TIME: Duration = Duration::from_millis(400);

/// The answer to a bad, expired, used or foreign link.
pub(super) fn invalid_link() -> ApiError {
    ApiError::BadRequest {
        code: "invalid_token",
        detail: "this link is not valid: it may have expired or been used already. \
                 Ask for a new one"
            .into(),
    }
}

/// Ask for a reset mail for `email`. Answers the same, in the same time,
/// whether or not the email has an account: the mail goes out only to a
/// verified address of an account that is not disabled, at most
/// [`RESETS_PER_HOUR`] times an hour.
pub async fn request_reset(
    state: &AppState,
    visitor: &Visitor,
    email: &str,
) -> Result<(), ApiError> {
    let started = tokio::time::Instant::now();
    accounts::throttle(state, visitor, None)?;
    let email = Email::parse("email", email)?;
    let queued = queue_reset(state, visitor, &email).await;
    tokio::time::sleep_until(started + RESET_ANSWER_TIME).await;
    queued
}

async fn queue_reset(state: &AppState, visitor: &Visitor, email: &Email) -> Result<(), ApiError> {
    let Some(user) = db::accounts::user_by_email(&state.pool, email).await? else {
        return Ok(());
    };
    let Some(credentials) = db::accounts::credentials(&state.pool, user.id).await? else {
        return Ok(());
    };
    if user.disabled_at.is_some() || credentials.email_verified_at.is_none() {
        return Ok(());
    }
    let hour_ago = Utc::now() - chrono::Duration::hours(1);
    let mut tx = state.pool.begin().await?;
    if db::email_links::count_since(&mut *tx, user.id, Purpose::ResetPassword, hour_ago).await?
        >= RESETS_PER_HOUR
    {
        return Ok(());
    }
    let link = new_link(&mut tx, user.id, Purpose::ResetPassword, email.as_str()).await?;
    let url = format!("{}/reset?token={link}", state.settings.public_base());
    let lang = Language::from_tag(&credentials.language);
    let rendered = mail::render("password_reset", lang, &minijinja::context! { link => url })?;
    mail::enqueue_in(
        &mut tx,
        &state.crypto,
        &Mail::new(email.clone(), "password.reset", rendered),
    )
    .await?;
    let event = db::audit::AuditEvent {
        tenant_id: user.tenant_id,
        actor_user_id: Some(user.id),
        ..visitor.audit(AuditAction::PasswordResetRequested)
    };
    db::audit::record(&mut *tx, event.target(email.as_str())).await?;
    tx.commit().await?;
    Ok(())
}

/// A new one-use link of `purpose` for `user_id`, mailed to `email`: its
/// token (only the hash is stored).
pub(super) async fn new_link(
    conn: &mut PgConnection,
    user_id: UserId,
    purpose: Purpose,
    email: &str,
) -> Result<String, ApiError> {
    let lifetime = match purpose {
        Purpose::ResetPassword => RESET_LINK_LIFETIME,
        Purpose::VerifyEmail => super::verification::LINK_LIFETIME,
    };
    let link = token::random_token(32);
    db::email_links::insert(
        &mut *conn,
        &token::hash(&link),
        user_id,
        purpose,
        email,
        Utc::now() + lifetime,
    )
    .await?;
    Ok(link)
}

/// Choose a new password with a reset link: every session of the person
/// ends, their other reset links die, and the address counts as verified
/// (the link reached it).
pub async fn confirm_reset(
    state: &AppState,
    visitor: &Visitor,
    link: &str,
    password: SecretString,
) -> Result<(), ApiError> {
    accounts::throttle(state, visitor, None)?;
    let mut tx = state.pool.begin().await?;
    let Some(row) =
        db::email_links::take(&mut tx, &token::hash(link.trim()), Purpose::ResetPassword).await?
    else {
        return Err(invalid_link());
    };
    if !row.email.eq_ignore_ascii_case(&row.current_email) {
        return Err(invalid_link());
    }
    let password = NewPassword::parse("password", password, &row.current_email)?;
    let hash = state.auth.passwords.hash(password.secret().clone()).await?;
    db::accounts::set_password_hash(&mut *tx, row.user_id, &hash).await?;
    db::email_links::spend_all(&mut *tx, row.user_id, Purpose::ResetPassword).await?;
    db::accounts::mark_verified(&mut *tx, row.user_id, &row.email).await?;
    let ended = db::sessions::delete_for_user(&mut *tx, row.user_id, None).await?;
    let event = db::audit::AuditEvent {
        tenant_id: row.tenant_id,
        actor_user_id: Some(row.user_id),
        ..visitor.audit(AuditAction::PasswordReset)
    };
    let event = event
        .target(row.current_email.as_str())
        .detail(serde_json::json!({ "sessions_ended": ended }));
    db::audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(())
}

/// The signed-in person changes their password, giving the current one;
/// their other sessions end (the one whose cookie is `session_cookie`
/// stays).
pub async fn change(
    state: &AppState,
    actor: &Actor,
    session_cookie: Option<&str>,
    current: SecretString,
    new: SecretString,
) -> Result<(), ApiError> {
    let me = actor.require_session()?;
    state
        .auth
        .throttle
        .check(actor.client, Some(me.email.as_str()))
        .map_err(ApiError::TooManyRequests)?;
    let stored = db::accounts::credentials(&state.pool, me.user_id)
        .await?
        .ok_or(ApiError::Unauthenticated("the account no longer exists"))?;
    let new = NewPassword::parse("new_password", new, &stored.email);
    let right = state
        .auth
        .passwords
        .verify(current, Some(stored.password_hash))
        .await?;
    let mut errors = Vec::new();
    if !right {
        errors.push(FieldError::new(
            "current_password",
            "wrong_password",
            "this is not your current password",
        ));
    }
    let new = match new {
        Ok(new) if errors.is_empty() => new,
        Ok(_) => return Err(ApiError::Validation(errors)),
        Err(e) => {
            errors.push(e);
            return Err(ApiError::Validation(errors));
        }
    };
    let hash = state.auth.passwords.hash(new.secret().clone()).await?;
    let keep = session_cookie.map(token::hash);
    let mut tx = state.pool.begin().await?;
    db::accounts::set_password_hash(&mut *tx, me.user_id, &hash).await?;
    let ended = db::sessions::delete_for_user(
        &mut *tx,
        me.user_id,
        keep.as_ref().map(<[u8; 32]>::as_slice),
    )
    .await?;
    let event = actor
        .audit(AuditAction::PasswordChanged)
        .target(me.email.as_str())
        .detail(serde_json::json!({ "sessions_ended": ended }));
    db::audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(())
}
