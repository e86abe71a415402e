//! What kind of WeChat account an app is: a mini-program or an official
//! account. Both read their token from the same endpoints, so the label
//! changes nothing in how tokens are kept; it tells people which is which.

use serde::{Deserialize, Serialize};

/// A WeChat app's label (WeCom apps have none).
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
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum AccountType {
    /// A mini-program (小程序).
    #[default]
    MiniProgram,
    /// An official account (公众号).
    OfficialAccount,
}

names!(AccountType {
    MiniProgram = "mini_program",
    OfficialAccount = "official_account",
});

#[cfg(test)]
mod tests {
    use super::AccountType;

    #[test]
    fn names_round_trip() {
        for t in [AccountType::MiniProgram, AccountType::OfficialAccount] {
            assert_eq!(t.as_str().parse::<AccountType>(), Ok(t));
            assert_eq!(
                serde_json::to_value(t).unwrap(),
                serde_json::json!(t.as_str())
            );
        }
        assert!("official-account".parse::<AccountType>().is_err());
        assert_eq!(AccountType::default(), AccountType::MiniProgram);
    }
}
