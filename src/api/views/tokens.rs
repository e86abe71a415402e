//! Tokens as the API answers them: a token read (REST and WeChat's shapes)
//! and what a report of a rejected token caused.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::apps::AttemptView;
use crate::service::apps::Invalidated;

// Both token-read paths answer `crate::refresh::token::ValidToken::to_json`:
// this struct's JSON with the token's fields rendered once per token instead
// of once per read (the read is the hot path); a test below holds the two to
// the same body.
/// A valid access token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// WeChat AppID.
    pub appid: String,
    /// The access token.
    pub access_token: String,
    /// Seconds left.
    pub expires_in: i64,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// When it was fetched.
    pub fetched_at: DateTime<Utc>,
}

/// What a reported token caused.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvalidateView {
    /// Whether a refresh was made.
    pub refreshed: bool,
    /// Why not (when `refreshed` is false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How the refresh went (when `refreshed` is true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<AttemptView>,
}

impl From<&Invalidated> for InvalidateView {
    fn from(done: &Invalidated) -> Self {
        match done {
            Invalidated::Stale => Self {
                refreshed: false,
                reason: Some(
                    "the reported token is no longer the current one; fetch the token again".into(),
                ),
                refresh: None,
            },
            Invalidated::Refreshed(outcome) => Self {
                refreshed: true,
                reason: None,
                refresh: Some(AttemptView::of(outcome)),
            },
        }
    }
}

/// WeChat's answer shapes on the WeChat-compatible endpoints (always HTTP 200).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum WeChatAnswer {
    /// Success: the managed token and its remaining lifetime.
    Token {
        /// The access token.
        access_token: String,
        /// Seconds left.
        expires_in: i64,
    },
    /// Failure, with WeChat's own errcode (40002, 41002, 41004, 40013, 40125, 43002, 47001, -1, …).
    Error {
        /// WeChat errcode.
        errcode: i64,
        /// WeChat errmsg.
        errmsg: String,
    },
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;
    use crate::domain::AppId;
    use crate::refresh::token::ValidToken;
    use crate::secret::AccessToken;

    #[test]
    fn the_pre_rendered_token_body_is_the_token_view() {
        let fetched_at = Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap();
        let expires_at = fetched_at + chrono::Duration::seconds(7200);
        let token = "to\"k\\en/ü";
        let valid = ValidToken::new(
            AccessToken::from(token.to_string()),
            fetched_at,
            expires_at,
            1,
        );
        let appid = AppId::parse("appid", "wx0123456789abcdef").unwrap();
        let now = fetched_at + chrono::Duration::seconds(61);
        let rendered: serde_json::Value =
            serde_json::from_str(&valid.to_json(&appid, now)).unwrap();
        let view = TokenView {
            appid: appid.to_string(),
            access_token: token.to_string(),
            expires_in: 7139,
            expires_at,
            fetched_at,
        };
        assert_eq!(rendered, serde_json::to_value(&view).unwrap());
    }
}
