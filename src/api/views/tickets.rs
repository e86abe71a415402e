//! JS-SDK tickets and page signatures as the API answers them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::TicketType;
use crate::refresh::tickets::ValidTicket;
use crate::service::tickets::PageSignature;

/// A valid JS-SDK ticket (a secret: keep it on the server).
#[derive(Serialize, ToSchema)]
pub struct TicketView {
    /// WeChat AppID, or a WeCom app's `{corpid}-{agentid}`.
    pub appid: String,
    /// The ticket type.
    #[serde(rename = "type")]
    pub ticket_type: TicketType,
    /// The ticket.
    pub ticket: String,
    /// Seconds left.
    pub expires_in: i64,
    /// When it expires (tokenvault's clock, from the first fetch).
    pub expires_at: DateTime<Utc>,
    /// When it was fetched.
    pub fetched_at: DateTime<Utc>,
}

impl std::fmt::Debug for TicketView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketView")
            .field("appid", &self.appid)
            .field("ticket_type", &self.ticket_type)
            .field("ticket", &crate::secret::MASK)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl TicketView {
    /// The body for `t`, an `appid` ticket of `ticket_type`, at `now`.
    pub fn of(appid: &str, ticket_type: TicketType, t: &ValidTicket, now: DateTime<Utc>) -> Self {
        Self {
            appid: appid.to_string(),
            ticket_type,
            ticket: t.ticket.expose_secret().to_string(),
            expires_in: (t.expires_at - now).num_seconds().max(0),
            expires_at: t.expires_at,
            fetched_at: t.fetched_at,
        }
    }
}

/// What the JS-SDK's `wx.config` takes for a page (the ticket stays in the vault).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignatureView {
    /// The app's AppID; for a WeCom app its corpid (what `wx.config` and
    /// `wx.agentConfig` take as `appId` / `corpid`).
    pub app_id: String,
    /// A WeCom app's `AgentId`, when signed with its `agent_config` ticket
    /// (for `wx.agentConfig`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agentid: Option<String>,
    /// Seconds since the epoch, as signed.
    pub timestamp: i64,
    /// The random string signed.
    pub nonce_str: String,
    /// `sha1("jsapi_ticket=…&noncestr=…&timestamp=…&url=…")`, lowercase hex.
    pub signature: String,
}

impl From<&PageSignature> for SignatureView {
    fn from(s: &PageSignature) -> Self {
        let agentid = (s.ticket_type == TicketType::AgentConfig)
            .then(|| s.appid.agentid().map(str::to_string))
            .flatten();
        Self {
            app_id: s.appid.corpid().unwrap_or(s.appid.as_str()).to_string(),
            agentid,
            timestamp: s.timestamp,
            nonce_str: s.nonce_str.clone(),
            signature: s.signature.clone(),
        }
    }
}

/// A ticket in WeChat's shape (the WeChat-compatible `getticket`).
#[derive(Serialize, ToSchema)]
pub struct WeChatTicketAnswer {
    /// Always 0.
    pub errcode: i64,
    /// Always `ok`.
    pub errmsg: &'static str,
    /// The ticket.
    pub ticket: String,
    /// Seconds left.
    pub expires_in: i64,
}

/// What the WeChat-compatible `getticket` answers (always HTTP 200): the
/// ticket, or WeChat's error shape.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum GetTicketAnswer {
    /// Success.
    Ticket(WeChatTicketAnswer),
    /// Failure, with WeChat's own errcode (41001, 40014, 42001, 40097, …).
    Error {
        /// WeChat errcode.
        errcode: i64,
        /// WeChat errmsg.
        errmsg: String,
    },
}

impl std::fmt::Debug for WeChatTicketAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeChatTicketAnswer")
            .field("ticket", &crate::secret::MASK)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}
