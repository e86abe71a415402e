//! Verified addresses: a one-use link mailed at sign-up (and on request),
//! confirmed by the person who received it.

use chrono::Utc;
use sqlx::PgConnection;

use super::passwords::{invalid_link, new_link};
use super::{Actor, Visitor, accounts};
use crate::db;
use crate::db::email_links::Purpose;
use crate::domain::credential as token;
use crate::domain::{AuditAction, Email, UserId};
use crate::error::ApiError;
use crate::mail::{self, Language, Mail};
use crate::state::AppState;

/// How long a verification link works.
pub(super) const LINK_LIFETIME: chrono::Duration = chrono::Duration::hours(48);
/// Verification mails one account gets per hour at most.
const MAILS_PER_HOUR: i64 = 3;

/// Queue a verification mail for `email` of `user_id` on `conn` (the
/// caller's transaction).
pub(super) async fn queue(
    conn: &mut PgConnection,
    state: &AppState,
    user_id: UserId,
    email: &Email,
    lang: Language,
) -> Result<(), ApiError> {
    let link = new_link(conn, user_id, Purpose::VerifyEmail, email.as_str()).await?;
    let url = format!("{}/verify-email?token={link}", state.settings.public_base());
    let rendered = mail::render("verify_email", lang, &minijinja::context! { link => url })?;
    mail::enqueue_in(
        conn,
        &state.crypto,
        &Mail::new(email.clone(), "email.verify", rendered),
    )
    .await?;
    Ok(())
}

/// Mail the signed-in person a new verification link (unless their address
/// is verified already); at most [`MAILS_PER_HOUR`] an hour.
pub async fn resend(state: &AppState, actor: &Actor) -> Result<(), ApiError> {
    let me = actor.require_session()?;
    let Some(stored) = db::accounts::credentials(&state.pool, me.user_id).await? else {
        return Err(ApiError::Unauthenticated("the account no longer exists"));
    };
    if stored.email_verified_at.is_some() {
        return Ok(());
    }
    let email = Email::parse("email", &stored.email)?;
    let hour_ago = Utc::now() - chrono::Duration::hours(1);
    let mut tx = state.pool.begin().await?;
    if db::email_links::count_since(&mut *tx, me.user_id, Purpose::VerifyEmail, hour_ago).await?
        >= MAILS_PER_HOUR
    {
        return Err(ApiError::RateLimited {
            code: "too_many_mails",
            detail: "a verification mail was sent several times this hour: look for it, or try again later".into(),
            retry_after: 3600,
        });
    }
    queue(
        &mut tx,
        state,
        me.user_id,
        &email,
        Language::from_tag(&stored.language),
    )
    .await?;
    let event = actor
        .audit(AuditAction::EmailVerificationSent)
        .target(email.as_str());
    db::audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(())
}

/// Verify the address a verification link was mailed to, if it is still
/// the person's address.
pub async fn confirm(state: &AppState, visitor: &Visitor, link: &str) -> Result<(), ApiError> {
    accounts::throttle(state, visitor, None)?;
    let mut tx = state.pool.begin().await?;
    let Some(row) =
        db::email_links::take(&mut tx, &token::hash(link.trim()), Purpose::VerifyEmail).await?
    else {
        return Err(invalid_link());
    };
    if !db::accounts::mark_verified(&mut *tx, row.user_id, &row.email).await? {
        return Err(invalid_link());
    }
    let event = db::audit::AuditEvent {
        tenant_id: row.tenant_id,
        actor_user_id: Some(row.user_id),
        ..visitor.audit(AuditAction::EmailVerified)
    };
    db::audit::record(&mut *tx, event.target(row.email.as_str())).await?;
    tx.commit().await?;
    Ok(())
}
