use std::fmt;

use serde::{Deserialize, Serialize};

use super::FieldError;

/// An app's id in every path: a WeChat AppID (`wx` and 16 lower-case
/// hexadecimal digits), or a WeCom app's `{corpid}-{agentid}` (a corpid is
/// `ww` or `wx` and 16 hexadecimal digits; an agentid is a positive number).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppId(String);

/// `w` + `prefix` + 16 hexadecimal digits, lower-cased.
fn hex_id(s: &str, prefixes: &[&str]) -> Option<String> {
    let lower = s.to_ascii_lowercase();
    let ok = lower.len() == 18
        && prefixes.iter().any(|p| lower.starts_with(p))
        && lower[2..].bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(lower)
}

/// A WeCom agentid: 1 to 10 digits without a leading zero, at most `i32::MAX`.
fn agent_id(s: &str) -> Option<&str> {
    let ok = !s.is_empty()
        && s.len() <= 10
        && !s.starts_with('0')
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<i32>().is_ok();
    ok.then_some(s)
}

impl AppId {
    /// Parse `raw` as the value of field `field`: a WeChat AppID or a WeCom
    /// app's `{corpid}-{agentid}` (surrounding spaces and upper-case hex
    /// digits are forgiven; WeChat shows them lower-case).
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim();
        if let Some((corp, agent)) = s.split_once('-')
            && let (Some(corp), Some(agent)) = (hex_id(corp, &["ww", "wx"]), agent_id(agent))
        {
            return Ok(Self(format!("{corp}-{agent}")));
        }
        Self::parse_wechat(field, raw)
    }

    /// Parse `raw` as a WeChat AppID only (registering a WeChat app).
    pub fn parse_wechat(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim();
        if let Some(id) = hex_id(s, &["wx"]) {
            Ok(Self(id))
        } else if s.is_empty() {
            Err(FieldError::new(
                field,
                "required",
                "enter the mini-program's or official account's AppID",
            ))
        } else {
            Err(FieldError::new(
                field,
                "invalid_appid",
                "an AppID is 'wx' followed by 16 hexadecimal digits, e.g. wx1234567890abcdef; \
                 copy it from the WeChat console (开发管理 → 开发设置)",
            ))
        }
    }

    /// The id of the WeCom app `agentid` of the company `corpid`; each field
    /// that is wrong is named.
    pub fn wecom(corpid: &str, agentid: &str) -> Result<Self, Vec<FieldError>> {
        let corp = hex_id(corpid.trim(), &["ww", "wx"]).ok_or_else(|| {
            FieldError::new(
                "corpid",
                if corpid.trim().is_empty() {
                    "required"
                } else {
                    "invalid_corpid"
                },
                "a corpid is 'ww' (older companies: 'wx') followed by 16 hexadecimal digits; \
                 copy it from the WeCom admin console (我的企业 → 企业信息 → 企业ID)",
            )
        });
        let agent = agent_id(agentid.trim()).ok_or_else(|| {
            FieldError::new(
                "agentid",
                if agentid.trim().is_empty() {
                    "required"
                } else {
                    "invalid_agentid"
                },
                "an AgentId is the app's number, e.g. 1000002; copy it from the WeCom admin \
                 console (应用管理 → the app → AgentId)",
            )
        });
        match (corp, agent) {
            (Ok(corp), Ok(agent)) => Ok(Self(format!("{corp}-{agent}"))),
            (corp, agent) => Err([corp.err(), agent.err()].into_iter().flatten().collect()),
        }
    }

    /// Which platform the app belongs to.
    pub fn kind(&self) -> AppKind {
        if self.0.contains('-') {
            AppKind::Wecom
        } else {
            AppKind::Wechat
        }
    }

    /// A WeCom app's corpid (`None` for a WeChat app).
    pub fn corpid(&self) -> Option<&str> {
        self.0.split_once('-').map(|(corp, _)| corp)
    }

    /// A WeCom app's agentid (`None` for a WeChat app).
    pub fn agentid(&self) -> Option<&str> {
        self.0.split_once('-').map(|(_, agent)| agent)
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which platform an app belongs to (told by the form of its id).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AppKind {
    /// A WeChat mini-program or official account (`api.weixin.qq.com`).
    #[default]
    Wechat,
    /// A WeCom (企业微信) self-built app (`qyapi.weixin.qq.com`).
    Wecom,
}

names!(AppKind {
    Wechat = "wechat",
    Wecom = "wecom",
});

impl AppKind {
    /// The platform's name for people: "WeChat" or "WeCom".
    pub fn platform(self) -> &'static str {
        match self {
            Self::Wechat => "WeChat",
            Self::Wecom => "WeCom",
        }
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AppId({})", self.0)
    }
}

/// Which WeChat endpoint keeps an app's token.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    Default,
    sqlx::Type,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum TokenMode {
    /// `/cgi-bin/stable_token`: does not invalidate tokens other systems hold.
    #[default]
    Stable,
    /// `/cgi-bin/token`: every fetch invalidates the previous token after 5 minutes.
    Classic,
}

names!(TokenMode {
    Stable = "stable",
    Classic = "classic",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appids() {
        assert_eq!(
            AppId::parse("appid", " WX1234567890ABCDEF ")
                .unwrap()
                .as_str(),
            "wx1234567890abcdef"
        );
        for bad in [
            "",
            "wx123",
            "wx1234567890abcdeg",
            "ab1234567890abcdef",
            "wx1234567890abcdef0",
            "wx１２34567890abcdef",
        ] {
            assert!(AppId::parse("appid", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn wecom_ids() {
        let id = AppId::wecom(" WW0123456789ABCDEF ", "1000002").unwrap();
        assert_eq!(id.as_str(), "ww0123456789abcdef-1000002");
        assert_eq!(id.kind(), AppKind::Wecom);
        assert_eq!(id.corpid(), Some("ww0123456789abcdef"));
        assert_eq!(id.agentid(), Some("1000002"));
        assert_eq!(AppId::parse("appid", id.as_str()).unwrap(), id);
        let wx = AppId::parse("appid", "wx0123456789abcdef").unwrap();
        assert_eq!((wx.kind(), wx.corpid()), (AppKind::Wechat, None));
        assert!(AppId::parse_wechat("appid", id.as_str()).is_err());
        let errors = AppId::wecom("ww0123", "01").unwrap_err();
        let codes: Vec<_> = errors.iter().map(|e| (e.field, e.code)).collect();
        assert_eq!(
            codes,
            [("corpid", "invalid_corpid"), ("agentid", "invalid_agentid")]
        );
        for bad in [
            "ww0123456789abcdef-",
            "ww0123456789abcdef-0",
            "ww0123456789abcdef-99999999999",
            "ww0123456789abcdef-1-2",
            "ab0123456789abcdef-1000002",
            "ww0123456789abcdef-+1",
            "ww0123456789abcdef-１",
        ] {
            assert!(AppId::parse("appid", bad).is_err(), "{bad:?}");
        }
    }
}

/// Check an appsecret as entered: 32 hexadecimal characters (spaces around
/// it, from copying, are forgiven).
pub fn parse_app_secret(
    field: &'static str,
    raw: &crate::secret::AppSecret,
) -> Result<crate::secret::AppSecret, FieldError> {
    let s = raw.expose_secret().trim();
    if s.is_empty() {
        return Err(FieldError::new(
            field,
            "required",
            "enter the mini-program's AppSecret",
        ));
    }
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(FieldError::new(
            field,
            "invalid_secret",
            "an AppSecret is 32 hexadecimal characters; copy it from the WeChat console \
             (开发管理 → 开发设置 → AppSecret)",
        ));
    }
    Ok(crate::secret::AppSecret::from(s.to_string()))
}

/// Check a WeCom app's secret as entered: 16 to 128 characters of letters,
/// digits, `-` and `_` (WeCom shows 43; spaces around it are forgiven).
pub fn parse_wecom_secret(
    field: &'static str,
    raw: &crate::secret::AppSecret,
) -> Result<crate::secret::AppSecret, FieldError> {
    let s = raw.expose_secret().trim();
    if s.is_empty() {
        return Err(FieldError::new(
            field,
            "required",
            "enter the WeCom app's Secret",
        ));
    }
    let ok = (16..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(FieldError::new(
            field,
            "invalid_wecom_secret",
            "a WeCom Secret is about 43 letters, digits, '-' and '_'; copy it from the WeCom \
             admin console (应用管理 → the app → Secret)",
        ));
    }
    Ok(crate::secret::AppSecret::from(s.to_string()))
}

#[cfg(test)]
mod secret_tests {
    use super::parse_app_secret;
    use crate::secret::AppSecret;

    #[test]
    fn app_secrets() {
        let ok = AppSecret::from(" 0123456789abcdef0123456789ABCDEF\n".to_string());
        assert_eq!(
            parse_app_secret("secret", &ok)
                .unwrap()
                .expose_secret()
                .len(),
            32
        );
        for bad in [
            "",
            "abc",
            "0123456789abcdef0123456789abcdeg",
            "0123456789abcdef0123456789abcdef0",
        ] {
            let err = parse_app_secret("secret", &AppSecret::from(bad.to_string())).unwrap_err();
            assert!(
                !err.message.contains(bad) || bad.is_empty(),
                "the secret is not echoed"
            );
        }
    }
}
