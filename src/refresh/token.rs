//! A token as readers get it, and why a read can get none.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::gate::RefusalReason;
use crate::domain::AppId;
use crate::upstream::FetchFailure;

/// A token fit to hand out. Readers share one (`Arc`) per cached token.
#[derive(Debug)]
pub struct ValidToken {
    /// The token.
    pub access_token: crate::secret::AccessToken,
    /// When it was fetched.
    pub fetched_at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// Its version (for caches).
    pub version: i64,
    /// `"access_token":…,"expires_at":…,"fetched_at":…` as JSON, rendered
    /// once per token rather than once per read (secret: it holds the token).
    json_fields: crate::secret::AccessToken,
}

impl ValidToken {
    /// A token with its JSON fields rendered.
    pub fn new(
        access_token: crate::secret::AccessToken,
        fetched_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        version: i64,
    ) -> Self {
        #[derive(serde::Serialize)]
        struct Fields<'a> {
            access_token: &'a str,
            expires_at: DateTime<Utc>,
            fetched_at: DateTime<Utc>,
        }
        let object = serde_json::to_string(&Fields {
            access_token: access_token.expose_secret(),
            expires_at,
            fetched_at,
        })
        .unwrap_or_default();
        // Without the braces, to be spliced into a larger object.
        let fields = object
            .strip_prefix('{')
            .and_then(|o| o.strip_suffix('}'))
            .unwrap_or_default()
            .to_string();
        Self {
            access_token,
            fetched_at,
            expires_at,
            version,
            json_fields: crate::secret::AccessToken::from(fields),
        }
    }

    /// The token as the REST API answers it:
    /// `{"appid", "access_token", "expires_in", "expires_at", "fetched_at"}`.
    /// `appid` is a parsed [`AppId`] (nothing in it needs escaping).
    pub fn to_json(&self, appid: &AppId, now: DateTime<Utc>) -> String {
        let fields = self.json_fields.expose_secret();
        let mut body = String::with_capacity(fields.len() + appid.as_str().len() + 48);
        body.push_str("{\"appid\":\"");
        body.push_str(appid.as_str());
        body.push_str("\",\"expires_in\":");
        body.push_str(&(self.expires_at - now).num_seconds().to_string());
        body.push(',');
        body.push_str(fields);
        body.push('}');
        body
    }
}

/// Why no token can be handed out now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// What kept the token away.
    pub cause: Cause,
    /// The failure behind it, if there was one (the stored one, for a
    /// read that waits for its retry time).
    pub failure: Option<FetchFailure>,
    /// When trying again makes sense.
    pub retry_after: Duration,
    /// Why, for people.
    pub reason: String,
}

/// What kept a token away from a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The token request failed just now.
    Failed,
    /// The gate refused to call WeChat (see [`RefusalReason`]).
    Refused(RefusalReason),
    /// Refreshing is switched off for the app.
    Disabled,
    /// This replica's or this organisation's on-demand refreshes are all
    /// in flight, or another replica holds the app's row.
    Busy,
    /// The token got does not live as long as the reader asked.
    TooShort,
}

impl Cause {
    /// The stable machine-readable name (`reason` of the 503 answer).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failed => "failed",
            Self::Refused(r) => r.as_str(),
            Self::Disabled => "disabled",
            Self::Busy => "busy",
            Self::TooShort => "too_short",
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn the_rendered_body_is_the_json_of_the_token() {
        let fetched = Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap();
        let expires = fetched + chrono::Duration::seconds(7200);
        let t = ValidToken::new(
            crate::secret::AccessToken::from("sekr\"et\\/".to_string()),
            fetched,
            expires,
            3,
        );
        let appid = AppId::parse("appid", "wx0123456789abcdef").unwrap();
        let body: serde_json::Value =
            serde_json::from_str(&t.to_json(&appid, fetched + chrono::Duration::seconds(200)))
                .unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "appid": "wx0123456789abcdef",
                "access_token": "sekr\"et\\/",
                "expires_in": 7000,
                "expires_at": expires,
                "fetched_at": fetched,
            })
        );
        assert!(!format!("{t:?}").contains("sekr"), "{t:?}");
    }
}
