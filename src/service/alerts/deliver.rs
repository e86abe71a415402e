//! Delivering the outbox: claim a due delivery (`FOR UPDATE SKIP LOCKED`,
//! so each reaches its channel once across replicas), send it while the
//! row is held, store how it went in the same transaction.

use std::time::{Duration, Instant};

use chrono::Utc;
use secrecy::ExposeSecret as _;

use super::target::{self, TargetUrl};
use super::{message, summary};
use crate::crypto::Binding;
use crate::db;
use crate::db::alerts::{AttemptResult, ClaimedDelivery};
use crate::domain::{AlertDeliveryId, AlertSummaryId, ChannelKind, DeliveryStatus, TenantId};
use crate::error::ApiError;
use crate::state::AppState;

/// Most bytes of a target's answer read (the rest is not read).
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Most characters of the answer kept in the delivery log.
const ANSWER_EXCERPT: usize = 500;
/// How long a delivery is retried before it is marked dead.
const RETRY_FOR: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// How one attempt went.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Accepted by the target.
    pub ok: bool,
    /// The target's HTTP status, if it answered.
    pub http_status: Option<u16>,
    /// How long it took.
    pub latency: Duration,
    /// The start of its answer.
    pub answer: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Whether retrying can change the outcome.
    pub retryable: bool,
}

impl Sent {
    /// A failed attempt that got no answer.
    pub fn failed(error: impl Into<String>, retryable: bool, started: Instant) -> Self {
        Self {
            ok: false,
            http_status: None,
            latency: started.elapsed(),
            answer: None,
            error: Some(error.into()),
            retryable,
        }
    }
}

/// Deliver one due delivery, if there is one no other replica holds (or
/// the summary it is part of, `super::summary`); whether one was found.
pub async fn deliver_due(state: &AppState) -> Result<bool, ApiError> {
    let mut tx = state.pool.begin().await?;
    let Some(d) = db::alerts::claim_due(&mut tx).await? else {
        return Ok(false);
    };
    if let Some(s) = summary::group(&mut tx, state, &d).await? {
        let sent = if d.kind == ChannelKind::Email {
            super::mail::deliver_summary(&mut tx, state, &d, &s).await?
        } else {
            let page = |appid: &str| state.settings.app_page(appid);
            send_with(state, &d, |secret, now| {
                summary::build(&d, &s, &page, secret, now)
            })
            .await
        };
        store(&mut tx, state, &d, Some(s.id), &sent).await?;
    } else {
        let sent = attempt(&mut tx, state, &d).await?;
        store(&mut tx, state, &d, None, &sent).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Deliver one delivery of the organisation now (a test), waiting for a
/// replica that holds it; how it went.
pub async fn deliver_now(
    state: &AppState,
    tenant_id: TenantId,
    id: AlertDeliveryId,
) -> Result<Option<Sent>, ApiError> {
    let mut tx = state.pool.begin().await?;
    let Some(d) = db::alerts::claim_one(&mut tx, tenant_id, id).await? else {
        return Ok(None);
    };
    let sent = attempt(&mut tx, state, &d).await?;
    store(&mut tx, state, &d, None, &sent).await?;
    tx.commit().await?;
    Ok(Some(sent))
}

/// One attempt at `d`: mail channels queue their mails in the delivery's
/// transaction `tx`; the others are sent over HTTP. A database error ends
/// the transaction (nothing of the attempt is kept; the delivery is claimed
/// again later), never a "failed attempt" stored in a broken transaction.
async fn attempt(
    tx: &mut sqlx::PgConnection,
    state: &AppState,
    d: &ClaimedDelivery,
) -> Result<Sent, ApiError> {
    let folded = folded(tx, d).await?;
    if d.kind == crate::domain::ChannelKind::Email {
        super::mail::deliver(tx, state, d, folded.as_ref()).await
    } else {
        Ok(send(state, d, folded.as_ref()).await)
    }
}

/// The failing/recovered changes damping held back from `d`'s channel
/// since its previous message about `d`'s app (only for such messages).
async fn folded(
    tx: &mut sqlx::PgConnection,
    d: &ClaimedDelivery,
) -> Result<Option<message::Folded>, sqlx::Error> {
    use crate::domain::EventType;
    if d.appid.is_none()
        || !matches!(
            d.event_type,
            EventType::AppFailing | EventType::AppRecovered
        )
    {
        return Ok(None);
    }
    let (failing, recovered, since) = db::alerts::folded(tx, d.id).await?;
    Ok(message::Folded::from_counts(failing, recovered, since))
}

/// Store how the attempt went on `d`, or on every delivery of its summary.
async fn store(
    tx: &mut sqlx::PgConnection,
    state: &AppState,
    d: &ClaimedDelivery,
    summary: Option<AlertSummaryId>,
    sent: &Sent,
) -> Result<(), sqlx::Error> {
    let now = Utc::now();
    let attempts = u32::try_from(d.attempts).unwrap_or(0).saturating_add(1);
    let delay = state.settings.alerts.retry_delay(attempts);
    let next = now + chrono::TimeDelta::from_std(delay).unwrap_or(chrono::TimeDelta::hours(1));
    let status = if sent.ok {
        DeliveryStatus::Delivered
    } else if !sent.retryable || next > d.created_at + RETRY_FOR {
        DeliveryStatus::Dead
    } else {
        DeliveryStatus::Pending
    };
    let outcome = match status {
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Pending => "failed",
        DeliveryStatus::Dead => "dead",
    };
    state.stats.alerts.count_delivery(d.kind.as_str(), outcome);
    if !sent.ok {
        tracing::warn!(delivery = %d.id, summary = ?summary, channel = %d.channel_id, kind = d.kind.as_str(),
            status = ?sent.http_status, error = sent.error.as_deref().unwrap_or(""), outcome,
            "alert delivery failed");
    }
    let result = AttemptResult {
        status,
        next_attempt_at: next,
        http_status: sent.http_status.map(i32::from),
        latency_ms: i32::try_from(sent.latency.as_millis()).unwrap_or(i32::MAX),
        answer: sent.answer.as_deref(),
        error: sent.error.as_deref(),
    };
    match summary {
        Some(id) => db::alert_groups::finish(tx, id, &result).await.map(drop),
        None => db::alerts::finish(tx, d.id, &result).await,
    }
}

/// Send `d` to its target once; never fails, says how it went.
pub async fn send(state: &AppState, d: &ClaimedDelivery, folded: Option<&message::Folded>) -> Sent {
    let page = d.appid.as_deref().and_then(|a| state.settings.app_page(a));
    send_with(state, d, |secret, now| {
        message::build(d, secret, page.as_deref(), folded, now)
    })
    .await
}

/// Send the request `build` makes (given the channel's signing secret and
/// the signing time) to `d`'s channel once; never fails, says how it went.
async fn send_with(
    state: &AppState,
    d: &ClaimedDelivery,
    build: impl FnOnce(Option<&str>, chrono::DateTime<Utc>) -> message::Request,
) -> Sent {
    let started = Instant::now();
    let secret = match &d.secret_ciphertext {
        None => None,
        Some(ct) => match state
            .crypto
            .decrypt_text(ct, &Binding::alert_secret(d.tenant_id, d.channel_id))
        {
            Ok(s) => Some(s),
            Err(_) => {
                return Sent::failed(
                    "the channel's signing secret cannot be decrypted",
                    true,
                    started,
                );
            }
        },
    };
    let Ok(url) = state.crypto.decrypt_text(
        &d.url_ciphertext,
        &Binding::alert_url(d.tenant_id, d.channel_id),
    ) else {
        return Sent::failed("the channel's URL cannot be decrypted", true, started);
    };
    let target = match target::parse_url(url.expose_secret()) {
        Ok(t) => t,
        Err(e) => return Sent::failed(e.message, false, started),
    };
    let settings = &state.settings.alerts;
    let addr = match target::resolve(&target, settings.allow_private_targets).await {
        Ok(addr) => addr,
        Err(e) => return Sent::failed(e.to_string(), true, started),
    };
    let request = build(
        secret.as_ref().map(secrecy::ExposeSecret::expose_secret),
        Utc::now(),
    );
    post(&target, addr, request, settings.timeout(), d, started).await
}

async fn post(
    target: &TargetUrl,
    addr: std::net::SocketAddr,
    request: message::Request,
    timeout: Duration,
    d: &ClaimedDelivery,
    started: Instant,
) -> Sent {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .resolve(&target.host, addr)
        .user_agent("tokenvault-alerts")
        .build();
    let Ok(client) = client else {
        return Sent::failed("cannot build the HTTP client", true, started);
    };
    let mut url = target.url.clone();
    if !request.query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in &request.query {
            pairs.append_pair(k, v);
        }
    }
    let mut builder = client
        .post(url)
        .header("Content-Type", "application/json")
        .body(request.body);
    for (name, value) in request.headers {
        builder = builder.header(name, value);
    }
    let mut response = match builder.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Sent::failed("the target did not answer in time", true, started);
        }
        Err(e) if e.is_connect() => {
            return Sent::failed("cannot connect to the target", true, started);
        }
        Err(_) => return Sent::failed("the request to the target failed", true, started),
    };
    let status = response.status();
    let mut body = Vec::new();
    let mut cut = false;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_ANSWER_BYTES - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= MAX_ANSWER_BYTES {
                    cut = true;
                    break;
                }
            }
            Ok(None) => break,
            Err(_) => {
                cut = true;
                break;
            }
        }
    }
    let answer = message::truncate(&String::from_utf8_lossy(&body), ANSWER_EXCERPT);
    let mut sent = Sent {
        ok: false,
        http_status: Some(status.as_u16()),
        latency: started.elapsed(),
        answer: (!answer.is_empty()).then_some(answer),
        error: None,
        retryable: true,
    };
    if status.is_redirection() {
        sent.error = Some("the target answered a redirect; redirects are not followed".into());
    } else if !status.is_success() {
        sent.error = Some(format!("the target answered HTTP {}", status.as_u16()));
    } else if let Some(e) = (!cut)
        .then(|| message::robot_error(d.kind, &body))
        .flatten()
    {
        sent.error = Some(e);
    } else if cut && d.kind != crate::domain::ChannelKind::Webhook {
        sent.error = Some("the robot's answer is too large".into());
    } else {
        sent.ok = true;
    }
    sent
}
