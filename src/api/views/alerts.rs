//! Bodies about alerts: channels (never their secrets; robot URLs with
//! their keys masked) and their delivery logs.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{
    AlertChannelId, AlertDeliveryId, AlertSummaryId, ChannelKind, DeliveryStatus, EventType,
};
use crate::service::alerts::{ChannelRow, DeliveryRow};

/// An alert channel.
#[derive(Serialize, ToSchema)]
pub struct ChannelView {
    /// Channel id.
    pub id: AlertChannelId,
    /// Where it sends.
    pub kind: ChannelKind,
    /// Its name.
    pub name: String,
    /// The target, with the credentials robots carry in their URLs masked.
    pub url: String,
    /// Whether messages are signed (the secret is never shown again).
    pub signed: bool,
    /// The events it receives.
    pub events: Vec<EventType>,
    /// `AppIDs` it is limited to; empty: every app.
    pub apps: Vec<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Whether alerts are sent to it: `false` for a mail channel to an
    /// address that is no verified member's until its recipient confirms
    /// with the link mailed to it.
    pub confirmed: bool,
}

impl From<ChannelRow> for ChannelView {
    fn from(c: ChannelRow) -> Self {
        Self {
            id: c.id,
            url: c.url,
            kind: c.kind,
            name: c.name,
            signed: c.has_secret,
            events: c
                .events
                .iter()
                .filter_map(|e| EventType::parse(e))
                .collect(),
            apps: c.appids,
            created_at: c.created_at,
            confirmed: c.confirmed,
        }
    }
}

/// The organisation's alert channels.
#[derive(Serialize, ToSchema)]
pub struct ChannelList {
    /// Oldest first.
    pub items: Vec<ChannelView>,
}

/// One delivery of an event to a channel.
#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    /// Delivery id (`X-Tokenvault-Delivery`; stable across retries).
    pub id: AlertDeliveryId,
    /// The event.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The app's `AppID` (absent for tests).
    pub appid: Option<String>,
    /// `pending` (retried at `next_attempt_at`), `delivered` or `dead`.
    pub status: DeliveryStatus,
    /// Attempts so far.
    pub attempts: i32,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// The last attempt.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The next attempt, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The target's last HTTP status.
    pub http_status: Option<i32>,
    /// The last attempt's latency in milliseconds.
    pub latency_ms: Option<i32>,
    /// The start of the target's last answer (at most 500 characters).
    pub answer: Option<String>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// The summary this delivery was sent in (with the other apps that
    /// changed at the same time), if it was: the id the receiver got.
    pub summary_id: Option<AlertSummaryId>,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(d: DeliveryRow) -> Self {
        Self {
            id: d.id,
            event_type: d.event_type,
            appid: d.appid,
            next_attempt_at: (d.status == DeliveryStatus::Pending).then_some(d.next_attempt_at),
            status: d.status,
            attempts: d.attempts,
            created_at: d.created_at,
            last_attempt_at: d.last_attempt_at,
            http_status: d.http_status,
            latency_ms: d.latency_ms,
            answer: d.answer,
            error: d.error,
            summary_id: d.summary_id,
        }
    }
}

/// A channel's deliveries.
#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    /// Newest first.
    pub items: Vec<DeliveryView>,
}
