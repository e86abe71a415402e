use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::FieldError;

/// A WeChat AppID: `wx` and 16 lower-case hexadecimal digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppId(String);

impl AppId {
    /// Parse `raw` as the value of field `field` (surrounding spaces and
    /// upper-case hex digits are forgiven; WeChat shows them lower-case).
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim();
        let lower = s.to_ascii_lowercase();
        let ok = lower.len() == 18
            && lower.starts_with("wx")
            && lower[2..].bytes().all(|b| b.is_ascii_hexdigit());
        if ok {
            Ok(Self(lower))
        } else if s.is_empty() {
            Err(FieldError::new(
                field,
                "required",
                "enter the mini-program's AppID",
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

    /// The AppID.
    pub fn as_str(&self) -> &str {
        &self.0
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

impl TokenMode {
    /// The name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stable => "stable",
            Self::Classic => "classic",
        }
    }
}

impl FromStr for TokenMode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "stable" => Ok(Self::Stable),
            "classic" => Ok(Self::Classic),
            _ => Err(()),
        }
    }
}

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
