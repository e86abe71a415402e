//! JS-SDK tickets: the types an app can keep.

use serde::{Deserialize, Serialize};

use super::AppKind;

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
    /// `agent_config`: a WeCom app's own ticket (`wx.agentConfig`). For a
    /// WeCom app, `jsapi` is its company's ticket (`wx.config`).
    AgentConfig,
}

names!(TicketType {
    Jsapi = "jsapi",
    WxCard = "wx_card",
    AgentConfig = "agent_config",
});

impl TicketType {
    /// The types an app of `kind` keeps: WeChat's `jsapi` and `wx_card`;
    /// WeCom's company ticket (`jsapi`) and app ticket (`agent_config`).
    pub fn of_kind(kind: AppKind) -> &'static [Self] {
        match kind {
            AppKind::Wechat => &[Self::Jsapi, Self::WxCard],
            AppKind::Wecom => &[Self::Jsapi, Self::AgentConfig],
        }
    }

    /// Whether an app of `kind` can keep this type.
    pub fn fits(self, kind: AppKind) -> bool {
        Self::of_kind(kind).contains(&self)
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
    /// A WeCom app's own ticket (`agent_config`).
    AgentConfigTicket,
}

names!(Credential {
    AccessToken = "access_token",
    JsapiTicket = "jsapi_ticket",
    WxCardTicket = "wx_card_ticket",
    AgentConfigTicket = "agent_config_ticket",
});

impl From<TicketType> for Credential {
    fn from(t: TicketType) -> Self {
        match t {
            TicketType::Jsapi => Self::JsapiTicket,
            TicketType::WxCard => Self::WxCardTicket,
            TicketType::AgentConfig => Self::AgentConfigTicket,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ticket_is_a_credential_of_its_own() {
        let names: Vec<_> = TicketType::ALL
            .iter()
            .map(|&t| Credential::from(t).as_str())
            .collect();
        assert_eq!(
            names,
            ["jsapi_ticket", "wx_card_ticket", "agent_config_ticket"]
        );
        assert_eq!(Credential::ALL.len(), 4);
    }

    #[test]
    fn names_round_trip_and_nothing_else_parses() {
        for &t in TicketType::ALL {
            assert_eq!(t.as_str().parse::<TicketType>(), Ok(t));
        }
        for bad in ["", "JSAPI", "wx-card", "agent-config", "jsapi "] {
            assert!(bad.parse::<TicketType>().is_err(), "{bad}");
        }
    }

    #[test]
    fn each_kind_keeps_its_own_tickets() {
        assert!(TicketType::WxCard.fits(AppKind::Wechat));
        assert!(!TicketType::WxCard.fits(AppKind::Wecom));
        assert!(TicketType::AgentConfig.fits(AppKind::Wecom));
        assert!(!TicketType::AgentConfig.fits(AppKind::Wechat));
        assert!(TicketType::Jsapi.fits(AppKind::Wechat) && TicketType::Jsapi.fits(AppKind::Wecom));
    }
}
