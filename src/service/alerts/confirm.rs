//! Mail channels do not mail strangers: a channel to an address that is
//! not a verified member's is created unconfirmed, gets nothing but one
//! confirmation mail (a one-use link, only its SHA-256 stored, at most
//! [`MAILS_PER_HOUR`] such mails an hour per organisation) until its
//! recipient opens the link and confirms; and "send test" is limited per
//! channel and per organisation (counted in the database, so the limits
//! hold across replicas).

use chrono::{TimeDelta, Utc};
use sqlx::PgConnection;

use super::super::{Actor, Visitor};
use crate::auth::Principal;
use crate::db;
use crate::db::alert_confirmations::Confirmed;
use crate::domain::credential as token;
use crate::domain::{AlertChannelId, AuditAction, Email, TenantId};
use crate::error::ApiError;
use crate::mail::{self, Language, Mail};
use crate::state::AppState;

/// How long a confirmation link works.
pub const LINK_LIFETIME: TimeDelta = TimeDelta::hours(48);
/// Confirmation mails one organisation may have sent per hour.
pub const MAILS_PER_HOUR: i64 = 5;
/// Tests one channel may be sent per minute.
pub const TESTS_PER_CHANNEL: i64 = 3;
/// Tests one organisation may send per minute (all channels).
pub const TESTS_PER_ORGANISATION: i64 = 10;

/// For a mail channel to `address` just stored in `tx`: when the address is
/// no verified member's, leave the channel unconfirmed and mail its
/// recipient the link (in `tx`). Whether a confirmation was mailed.
pub(super) async fn require(
    tx: &mut PgConnection,
    state: &AppState,
    actor: &Actor,
    tenant_id: TenantId,
    channel: (AlertChannelId, &str),
    address: &str,
) -> Result<bool, ApiError> {
    if db::alert_confirmations::is_verified_member(&mut *tx, tenant_id, address).await? {
        return Ok(false);
    }
    let hour_ago = Utc::now() - TimeDelta::hours(1);
    if db::alert_confirmations::mailed_since(&mut *tx, tenant_id, hour_ago).await? >= MAILS_PER_HOUR
    {
        return Err(ApiError::RateLimited {
            code: "too_many_confirmations",
            detail: format!(
                "at most {MAILS_PER_HOUR} mail channels to addresses outside the organisation \
                 may be created per hour: try again later, or mail a verified member"
            ),
            retry_after: 3600,
        });
    }
    let link = token::random_token(32);
    let expires = Utc::now() + LINK_LIFETIME;
    db::alert_confirmations::await_confirmation(tx, channel.0, &token::hash(&link), expires)
        .await?;
    let (lang, inviter) = match &actor.principal {
        Principal::Session(s) => {
            let lang = db::accounts::credentials(&mut *tx, s.user_id)
                .await?
                .map_or(Language::En, |c| Language::from_tag(&c.language));
            (lang, s.email.clone())
        }
        Principal::ApiKey(_) => (Language::En, "An API key".to_string()),
    };
    let organization = db::accounts::tenant_name(&mut *tx, tenant_id)
        .await?
        .unwrap_or_default();
    let url = format!(
        "{}/confirm-alert-mail?token={link}",
        state.settings.public_base()
    );
    let ctx = minijinja::context! { link => url, inviter, organization, channel => channel.1 };
    let rendered = mail::render("alert_confirm", lang, &ctx)?;
    let to = Email::parse("to", address)?;
    mail::enqueue_in(tx, &state.crypto, &Mail::new(to, "alert.confirm", rendered)).await?;
    Ok(true)
}

/// Confirm the mail channel of a confirmation link (opened by its
/// recipient, who need not have an account); the channel.
pub async fn confirm(
    state: &AppState,
    visitor: &Visitor,
    link: &str,
) -> Result<Confirmed, ApiError> {
    super::super::accounts::throttle(state, visitor, None)?;
    let mut tx = state.pool.begin().await?;
    let Some(channel) =
        db::alert_confirmations::confirm(&mut tx, &token::hash(link.trim())).await?
    else {
        return Err(ApiError::BadRequest {
            code: "invalid_token",
            detail: "this link is not valid: it may have expired or been used already".into(),
        });
    };
    let event = db::audit::AuditEvent {
        tenant_id: Some(channel.tenant_id),
        ..visitor.audit(AuditAction::AlertChannelConfirmed)
    };
    let detail = serde_json::json!({ "channel": channel.id, "address": channel.address });
    db::audit::record(&mut *tx, event.target(&channel.name).detail(detail)).await?;
    tx.commit().await?;
    Ok(channel)
}

/// Refuse a test beyond [`TESTS_PER_CHANNEL`] a minute for the channel or
/// [`TESTS_PER_ORGANISATION`] for the organisation (429 with the seconds
/// until one frees up). Holds the organisation's test lock in `tx`.
pub(super) async fn limit_tests(
    tx: &mut PgConnection,
    tenant_id: TenantId,
    channel_id: AlertChannelId,
) -> Result<(), ApiError> {
    db::alert_confirmations::lock_tests(tx, tenant_id).await?;
    let now = Utc::now();
    let window = TimeDelta::minutes(1);
    let counts =
        db::alert_confirmations::tests_since(tx, tenant_id, channel_id, now - window).await?;
    let full = if counts.channel >= TESTS_PER_CHANNEL {
        Some((
            counts.channel_oldest,
            format!("{TESTS_PER_CHANNEL} tests a minute per channel"),
        ))
    } else if counts.organisation >= TESTS_PER_ORGANISATION {
        Some((
            counts.organisation_oldest,
            format!("{TESTS_PER_ORGANISATION} tests a minute per organisation"),
        ))
    } else {
        None
    };
    let Some((oldest, limit)) = full else {
        return Ok(());
    };
    let free = oldest.map_or(window, |at| at + window - now);
    let retry_after = u64::try_from(free.num_seconds()).unwrap_or(0).clamp(1, 60) + 1;
    Err(ApiError::RateLimited {
        code: "too_many_tests",
        detail: format!("at most {limit}: try again in {retry_after} seconds"),
        retry_after: retry_after.min(60),
    })
}
