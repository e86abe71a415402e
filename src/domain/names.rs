//! The names of the small enums stored as text, sent in bodies and shown on
//! pages, written once per enum: [`names!`] gives each `ALL`, `as_str`,
//! `FromStr` and `Display`. The enums keep their serde and sqlx derives
//! (which spell the same names by `rename_all`); the test below holds the
//! two spellings together.

/// `ALL`, `as_str`, `FromStr` (`Err = ()`) and `Display` for `$ty`, whose
/// variants are named `$name`.
macro_rules! names {
    ($ty:ident { $($variant:ident = $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The name as stored, sent and shown.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }
        }

        impl std::str::FromStr for $ty {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s {
                    $($name => Ok(Self::$variant),)+
                    _ => Err(()),
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use std::fmt::Display;
    use std::str::FromStr;

    use crate::domain::{
        AccountType, AppKind, Credential, ErrorClass, Health, RefreshOutcome, Role, TicketType,
        TokenMode, Trigger,
    };

    /// Every variant's name is what serde sends, parses back to it, and is
    /// what `Display` shows.
    fn round_trip<T>(all: &[T], as_str: fn(T) -> &'static str)
    where
        T: Copy + PartialEq + std::fmt::Debug + serde::Serialize + FromStr<Err = ()> + Display,
    {
        assert!(!all.is_empty());
        for &v in all {
            let name = as_str(v);
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(name));
            assert_eq!(name.parse::<T>(), Ok(v));
            assert_eq!(v.to_string(), name);
        }
        assert!("".parse::<T>().is_err());
    }

    #[test]
    fn names_agree_with_serde_and_parse_back() {
        round_trip(AccountType::ALL, AccountType::as_str);
        round_trip(Role::ALL, Role::as_str);
        round_trip(TokenMode::ALL, TokenMode::as_str);
        round_trip(ErrorClass::ALL, ErrorClass::as_str);
        round_trip(Trigger::ALL, Trigger::as_str);
        round_trip(RefreshOutcome::ALL, RefreshOutcome::as_str);
        round_trip(Health::ALL, Health::as_str);
        round_trip(AppKind::ALL, AppKind::as_str);
        round_trip(TicketType::ALL, TicketType::as_str);
        round_trip(Credential::ALL, Credential::as_str);
        assert_eq!(Role::ALL.len(), 4);
        assert_eq!(Trigger::ALL.len(), 5);
    }
}
