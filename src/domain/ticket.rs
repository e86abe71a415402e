//! JS-SDK tickets: the types an app can keep.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A ticket WeChat derives from an app's access token.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum TicketType {
    /// `jsapi`: signs JS-SDK page configurations.
    Jsapi,
    /// `wx_card`: signs card and coupon calls.
    WxCard,
}

impl TicketType {
    /// Every type, in display order.
    pub const ALL: [Self; 2] = [Self::Jsapi, Self::WxCard];

    /// The name as WeChat, the API and the database spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jsapi => "jsapi",
            Self::WxCard => "wx_card",
        }
    }
}

impl FromStr for TicketType {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|t| t.as_str() == s).ok_or(())
    }
}

/// A credential the engine keeps for an app, as the refresh log names it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Credential {
    /// The app's access token.
    AccessToken,
    /// The JS-SDK `jsapi` ticket.
    JsapiTicket,
    /// The card ticket (`wx_card`).
    WxCardTicket,
}

impl Credential {
    /// Every credential, in display order.
    pub const ALL: [Self; 3] = [Self::AccessToken, Self::JsapiTicket, Self::WxCardTicket];

    /// The name as the API, the metrics and the database spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::JsapiTicket => "jsapi_ticket",
            Self::WxCardTicket => "wx_card_ticket",
        }
    }
}

impl From<TicketType> for Credential {
    fn from(t: TicketType) -> Self {
        match t {
            TicketType::Jsapi => Self::JsapiTicket,
            TicketType::WxCard => Self::WxCardTicket,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ticket_is_a_credential_of_its_own() {
        let names: Vec<_> = TicketType::ALL
            .into_iter()
            .map(|t| Credential::from(t).as_str())
            .collect();
        assert_eq!(names, ["jsapi_ticket", "wx_card_ticket"]);
        assert_eq!(Credential::ALL.len(), 3);
    }

    #[test]
    fn names_round_trip_and_nothing_else_parses() {
        for t in TicketType::ALL {
            assert_eq!(t.as_str().parse::<TicketType>(), Ok(t));
        }
        for bad in ["", "JSAPI", "wx-card", "agent_config", "jsapi "] {
            assert!(bad.parse::<TicketType>().is_err(), "{bad}");
        }
    }
}
