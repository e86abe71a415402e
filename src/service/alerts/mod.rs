//! Alerts: the channels of an organisation (create, list, delete, send a
//! test, the delivery log) and the delivery of the outbox the refresh
//! engine fills (`deliver`). Owners and admins manage channels; viewers see
//! them, never a secret.

pub mod confirm;
pub mod deliver;
pub mod mail;
pub mod message;
pub mod summary;
pub mod target;

use super::Actor;
use crate::crypto::Binding;
use crate::db;
use crate::db::alerts::NewChannel as NewChannelRow;
pub use crate::db::alerts::{ChannelRow, DeliveryRow};
use crate::domain::{
    AlertChannelId, AppId, AuditAction, ChannelKind, EventType, FieldError, Name, Role, TenantId,
};
use crate::error::ApiError;
use crate::secret::SigningSecret;
use crate::state::AppState;

/// Most channels one organisation may have.
pub const MAX_CHANNELS: usize = 50;
/// Longest signing secret.
pub const MAX_SECRET_LEN: usize = 200;
/// Most apps a channel may be limited to.
const MAX_APPS: usize = 100;
/// Most apps the page offers to limit a channel to.
const MAX_APP_CHOICES: i64 = 200;

/// The events a channel gets when it names none: every app event.
pub const DEFAULT_EVENTS: [EventType; 4] = [
    EventType::AppFailing,
    EventType::AppRecovered,
    EventType::AppTokenExpiring,
    EventType::AppSecretPromoted,
];

/// A channel as asked for.
pub struct NewChannel<'a> {
    /// `webhook`, `wecom`, `feishu`, `dingtalk` or `email`.
    pub kind: &'a str,
    /// A name to recognise it by.
    pub name: &'a str,
    /// The target URL (not for `email`).
    pub url: &'a str,
    /// `email` only: `members` (or nothing) for the verified owners and
    /// admins, else one address.
    pub to: Option<&'a str>,
    /// The optional signing secret.
    pub secret: Option<&'a SigningSecret>,
    /// Event type names; `None`: [`DEFAULT_EVENTS`].
    pub events: Option<&'a [String]>,
    /// `AppIDs` to limit it to; `None` or empty: every app.
    pub apps: Option<&'a [String]>,
}

/// Validate and store a channel (owners and admins). Every field is
/// checked, so a form shows all its errors at once; the target's address
/// is checked like at every delivery.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    input: &NewChannel<'_>,
) -> Result<ChannelRow, ApiError> {
    let scope = actor.require(Role::Admin)?;
    let mut errors = Vec::new();
    let kind = ChannelKind::parse(input.kind);
    if kind.is_none() {
        errors.push(FieldError::new(
            "kind",
            "invalid_kind",
            "kind must be one of webhook, wecom, feishu, dingtalk, email",
        ));
    }
    let name = Name::parse("name", input.name)
        .map_err(|e| errors.push(e))
        .ok();
    let url = channel_target(state, kind, input)
        .await
        .map_err(|e| errors.push(e))
        .ok();
    let secret = input.secret.map(|s| s.expose_secret().trim().to_string());
    if let Some(e) = check_secret(kind, secret.as_deref()) {
        errors.push(e);
    }
    let events = parse_events(input.events).map_err(|e| errors.push(e)).ok();
    let apps = input.apps.unwrap_or_default();
    if let Some(e) = check_apps(state, scope.tenant_id, apps).await? {
        errors.push(e);
    }
    let (Some(kind), Some(name), Some(url), Some(events), true) =
        (kind, name, url, events, errors.is_empty())
    else {
        return Err(ApiError::Validation(errors));
    };
    check_room(state, scope.tenant_id).await?;
    let id = AlertChannelId::new();
    let (url_ciphertext, ciphertext) = seal(state, scope.tenant_id, id, &url, secret.as_deref())?;
    let events: Vec<String> = events.iter().map(|e| e.as_str().to_string()).collect();
    let mut tx = state.pool.begin().await?;
    let row = NewChannelRow {
        id,
        tenant_id: scope.tenant_id,
        kind,
        name: name.as_str(),
        url_ciphertext: &url_ciphertext,
        url_display: &if kind == ChannelKind::Email {
            url.clone()
        } else {
            target::masked(kind, &url)
        },
        secret_ciphertext: ciphertext.as_deref(),
        events: &events,
        appids: apps,
    };
    db::alerts::insert_channel(&mut tx, &row).await?;
    let mailed = kind == ChannelKind::Email
        && url != mail::MEMBERS
        && confirm::require(
            &mut tx,
            state,
            actor,
            scope.tenant_id,
            (id, name.as_str()),
            &url,
        )
        .await?;
    let event = actor
        .audit(AuditAction::AlertChannelCreated)
        .target(name.as_str())
        .detail(
            serde_json::json!({ "channel": id, "kind": kind.as_str(), "url": row.url_display,
                            "confirmation": if mailed { "mailed" } else { "none" } }),
        );
    db::audit::record(&mut *tx, event).await?;
    let stored = db::alerts::get_channel(&mut *tx, scope.tenant_id, id).await?;
    tx.commit().await?;
    stored.ok_or(ApiError::NotFound("alert channel"))
}

/// Refuse a channel beyond [`MAX_CHANNELS`].
async fn check_room(state: &AppState, tenant_id: TenantId) -> Result<(), ApiError> {
    if db::alerts::list_channels(&state.pool, tenant_id)
        .await?
        .len()
        >= MAX_CHANNELS
    {
        return Err(ApiError::Conflict {
            code: "too_many_channels",
            detail: format!("an organisation may have at most {MAX_CHANNELS} alert channels"),
        });
    }
    Ok(())
}

/// The stored target: a mail channel's recipient, else the URL as checked
/// by the URL and address rules.
async fn channel_target(
    state: &AppState,
    kind: Option<ChannelKind>,
    input: &NewChannel<'_>,
) -> Result<String, FieldError> {
    if kind != Some(ChannelKind::Email) {
        return check_target(state, input.url).await;
    }
    if !input.url.trim().is_empty() {
        return Err(FieldError::new(
            "url",
            "not_supported_email",
            "mail channels have no url: leave it empty and give `to` (an address, or `members`)",
        ));
    }
    mail::target(input.to)
}

/// The channel's URL and (non-empty) secret under the key ring.
fn seal(
    state: &AppState,
    tenant_id: TenantId,
    id: AlertChannelId,
    url: &str,
    secret: Option<&str>,
) -> Result<(Vec<u8>, Option<Vec<u8>>), ApiError> {
    let internal = |e: crate::crypto::CryptoError| ApiError::Internal(e.into());
    let url = state
        .crypto
        .encrypt(url.as_bytes(), &Binding::alert_url(tenant_id, id))
        .map_err(internal)?;
    let secret = secret
        .filter(|s| !s.is_empty())
        .map(|s| {
            state
                .crypto
                .encrypt(s.as_bytes(), &Binding::alert_secret(tenant_id, id))
        })
        .transpose()
        .map_err(internal)?;
    Ok((url, secret))
}

/// The URL rules, then the address rules (`target`).
async fn check_target(state: &AppState, raw: &str) -> Result<String, FieldError> {
    let url = target::parse_url(raw)?;
    let allow = state.settings.alerts.allow_private_targets;
    match target::resolve(&url, allow).await {
        Ok(_) => Ok(url.url.to_string()),
        Err(target::AddressError::Unresolvable) => Err(FieldError::new(
            "url",
            "unresolvable_host",
            "url's host name does not resolve",
        )),
        Err(e @ target::AddressError::Forbidden(_)) => {
            Err(FieldError::new("url", "forbidden_target", e.to_string()))
        }
    }
}

fn check_secret(kind: Option<ChannelKind>, secret: Option<&str>) -> Option<FieldError> {
    let secret = secret.filter(|s| !s.is_empty())?;
    if kind == Some(ChannelKind::Email) {
        return Some(FieldError::new(
            "secret",
            "not_supported_email",
            "mail alerts are not signed: leave secret empty",
        ));
    }
    if kind == Some(ChannelKind::Wecom) {
        return Some(FieldError::new(
            "secret",
            "not_supported",
            "WeCom group robots do not sign messages: leave secret empty (the key in the URL is the credential)",
        ));
    }
    if secret.chars().count() > MAX_SECRET_LEN {
        return Some(FieldError::new(
            "secret",
            "too_long",
            format!("secret must be at most {MAX_SECRET_LEN} characters"),
        ));
    }
    if secret.chars().any(char::is_control) {
        return Some(FieldError::new(
            "secret",
            "invalid_secret",
            "secret must not contain control characters",
        ));
    }
    None
}

fn parse_events(names: Option<&[String]>) -> Result<Vec<EventType>, FieldError> {
    let Some(names) = names else {
        return Ok(DEFAULT_EVENTS.to_vec());
    };
    let mut events = Vec::new();
    for name in names {
        match EventType::parse(name) {
            Some(EventType::Test) => {}
            Some(e) if !events.contains(&e) => events.push(e),
            Some(_) => {}
            None => {
                return Err(FieldError::new(
                    "events",
                    "invalid_event",
                    format!(
                        "unknown event '{}': use app.failing, app.recovered, app.token_expiring, app.secret_promoted",
                        name.chars().take(40).collect::<String>()
                    ),
                ));
            }
        }
    }
    if events.is_empty() {
        return Err(FieldError::new(
            "events",
            "required",
            "choose at least one event",
        ));
    }
    Ok(events)
}

async fn check_apps(
    state: &AppState,
    tenant_id: TenantId,
    appids: &[String],
) -> Result<Option<FieldError>, ApiError> {
    if appids.len() > MAX_APPS {
        let msg = format!("a channel may name at most {MAX_APPS} apps");
        return Ok(Some(FieldError::new("apps", "too_many", msg)));
    }
    if appids.iter().any(|a| AppId::parse("apps", a).is_err()) {
        return Ok(Some(FieldError::new(
            "apps",
            "invalid_appid",
            "every entry of apps must be an AppID such as wx0123456789abcdef",
        )));
    }
    let (_, missing) = db::api_keys::resolve_appids(&state.pool, tenant_id, appids).await?;
    Ok((!missing.is_empty()).then(|| {
        FieldError::new(
            "apps",
            "unknown_app",
            format!("no such app in this organisation: {}", missing.join(", ")),
        )
    }))
}

/// The organisation's channels (everyone in it; never a secret).
pub async fn list(state: &AppState, actor: &Actor) -> Result<Vec<ChannelRow>, ApiError> {
    let scope = actor.require(Role::Viewer)?;
    Ok(db::alerts::list_channels(&state.pool, scope.tenant_id).await?)
}

/// Delete a channel; its pending deliveries go with it. The channel's name.
pub async fn delete(
    state: &AppState,
    actor: &Actor,
    id: AlertChannelId,
) -> Result<String, ApiError> {
    let scope = actor.require(Role::Admin)?;
    let mut tx = state.pool.begin().await?;
    let Some(channel) = db::alerts::get_channel(&mut *tx, scope.tenant_id, id).await? else {
        return Err(ApiError::NotFound("alert channel"));
    };
    if !db::alerts::delete_channel(&mut tx, scope.tenant_id, id).await? {
        return Err(ApiError::NotFound("alert channel"));
    }
    let event = actor
        .audit(AuditAction::AlertChannelDeleted)
        .target(channel.name.as_str())
        .detail(serde_json::json!({ "channel": id, "kind": channel.kind.as_str() }));
    db::audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    Ok(channel.name)
}

/// Send a `test` event to a channel now; the delivery as it went (a
/// failed test is retried like any delivery). Not to a channel waiting for
/// its recipient's confirmation (409), nor beyond the limits of
/// `confirm::limit_tests` (429).
pub async fn send_test(
    state: &AppState,
    actor: &Actor,
    id: AlertChannelId,
) -> Result<DeliveryRow, ApiError> {
    let scope = actor.require(Role::Admin)?;
    let mut tx = state.pool.begin().await?;
    let Some(channel) = db::alerts::get_channel(&mut *tx, scope.tenant_id, id).await? else {
        return Err(ApiError::NotFound("alert channel"));
    };
    if !channel.confirmed {
        return Err(ApiError::Conflict {
            code: "channel_unconfirmed",
            detail: "the address has not confirmed this channel yet: nothing is sent to it \
                     before its recipient opens the confirmation link mailed to it"
                .into(),
        });
    }
    confirm::limit_tests(&mut tx, scope.tenant_id, id).await?;
    let delivery = db::alerts::record_test(&mut tx, scope.tenant_id, id).await?;
    let event = actor
        .audit(AuditAction::AlertChannelTested)
        .target(channel.name.as_str())
        .detail(serde_json::json!({ "channel": id, "kind": channel.kind.as_str(), "delivery": delivery }));
    db::audit::record(&mut *tx, event).await?;
    tx.commit().await?;
    deliver::deliver_now(state, scope.tenant_id, delivery).await?;
    db::alerts::get_delivery(&state.pool, scope.tenant_id, delivery)
        .await?
        .ok_or(ApiError::NotFound("alert delivery"))
}

/// A channel's deliveries, newest first (everyone in the organisation).
pub async fn deliveries(
    state: &AppState,
    actor: &Actor,
    id: AlertChannelId,
    limit: i64,
) -> Result<(ChannelRow, Vec<DeliveryRow>), ApiError> {
    let scope = actor.require(Role::Viewer)?;
    let Some(channel) = db::alerts::get_channel(&state.pool, scope.tenant_id, id).await? else {
        return Err(ApiError::NotFound("alert channel"));
    };
    let rows = db::alerts::list_deliveries(&state.pool, id, limit).await?;
    Ok((channel, rows))
}

/// What the alerts page shows: the channels, whether the person may manage
/// them, and (for those who may) the apps a new channel can be limited to.
pub async fn page(
    state: &AppState,
    actor: &Actor,
) -> Result<(Vec<ChannelRow>, bool, Vec<super::keys::AppChoice>), ApiError> {
    let scope = actor.require(Role::Viewer)?;
    let channels = db::alerts::list_channels(&state.pool, scope.tenant_id).await?;
    let manage = scope.role.at_least(Role::Admin);
    if !manage {
        return Ok((channels, false, Vec::new()));
    }
    let apps = db::apps::list(&state.pool, scope.tenant_id, None, None, MAX_APP_CHOICES).await?;
    let apps = apps
        .into_iter()
        .map(|a| super::keys::AppChoice {
            appid: a.appid,
            name: a.name,
        })
        .collect();
    Ok((channels, true, apps))
}
