//! The vocabulary of alerts: where they go (channel kinds), what they say
//! (event types) and how a delivery stands.

use serde::{Deserialize, Serialize};

/// Where an alert channel sends its messages.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum ChannelKind {
    /// A signed JSON POST to any HTTPS endpoint.
    Webhook,
    /// A WeCom (企业微信) group robot.
    Wecom,
    /// A Feishu custom bot.
    Feishu,
    /// A DingTalk custom robot.
    Dingtalk,
    /// Mail through the service's mailer, to the organisation's verified
    /// owners and admins or to one address.
    Email,
}

impl ChannelKind {
    /// The name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Wecom => "wecom",
            Self::Feishu => "feishu",
            Self::Dingtalk => "dingtalk",
            Self::Email => "email",
        }
    }

    /// Every kind, in the order forms offer them.
    pub const ALL: [Self; 5] = [
        Self::Webhook,
        Self::Wecom,
        Self::Feishu,
        Self::Dingtalk,
        Self::Email,
    ];

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// What happened, as alerts name it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "text")]
pub enum EventType {
    /// An app's health turned failing.
    #[serde(rename = "app.failing")]
    #[sqlx(rename = "app.failing")]
    AppFailing,
    /// A failing app works again.
    #[serde(rename = "app.recovered")]
    #[sqlx(rename = "app.recovered")]
    AppRecovered,
    /// The valid token ends soon and the last attempts failed.
    #[serde(rename = "app.token_expiring")]
    #[sqlx(rename = "app.token_expiring")]
    AppTokenExpiring,
    /// The primary secret was rejected and the secondary one took over.
    #[serde(rename = "app.secret_promoted")]
    #[sqlx(rename = "app.secret_promoted")]
    AppSecretPromoted,
    /// A test sent by a person.
    #[serde(rename = "test")]
    #[sqlx(rename = "test")]
    Test,
}

impl EventType {
    /// Every type.
    pub const ALL: [Self; 5] = [
        Self::AppFailing,
        Self::AppRecovered,
        Self::AppTokenExpiring,
        Self::AppSecretPromoted,
        Self::Test,
    ];

    /// The name as stored, sent and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AppFailing => "app.failing",
            Self::AppRecovered => "app.recovered",
            Self::AppTokenExpiring => "app.token_expiring",
            Self::AppSecretPromoted => "app.secret_promoted",
            Self::Test => "test",
        }
    }

    /// The type named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// How a delivery stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Not delivered yet; tried again at its next attempt time.
    Pending,
    /// The target accepted it.
    Delivered,
    /// Retries gave up (24 hours of failures, or the answer can never change).
    Dead,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in ChannelKind::ALL {
            assert_eq!(ChannelKind::parse(kind.as_str()), Some(kind));
        }
        for event in EventType::ALL {
            assert_eq!(EventType::parse(event.as_str()), Some(event));
            let json = serde_json::to_string(&event).unwrap();
            assert_eq!(json, format!("\"{}\"", event.as_str()));
        }
        assert_eq!(ChannelKind::parse("sms"), None);
    }
}
