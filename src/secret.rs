//! Secret values: appsecrets, access tokens, API keys and passwords.
//!
//! Each is a newtype over [`secrecy::SecretString`]: zeroized on drop, printed
//! as a mask by `Debug` and `Display`, and without `Serialize`, so putting one
//! into a log line, an error or a JSON response by accident prints `***` or
//! does not compile. The plaintext is reached only through `expose_secret`,
//! at the one place that needs it.
//!
//! ```compile_fail
//! let secret = tokenvault::secret::AppSecret::from("s3cret".to_string());
//! let _ = serde_json::to_string(&secret); // AppSecret is not Serialize
//! ```

use std::fmt;

use secrecy::{ExposeSecret as _, SecretString};

/// What `Debug` and `Display` print instead of a secret.
pub const MASK: &str = "***";

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// The plaintext, for the one place that needs it.
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }

            /// A mask that shows at most the last 4 characters, and only of
            /// values long enough that 4 characters give little away.
            pub fn hint(&self) -> String {
                masked_hint(self.expose_secret())
            }

            /// The secret as a [`SecretString`], for code that takes one.
            pub fn into_secret(self) -> SecretString {
                self.0
            }
        }

        /// Empty: what a form posts when the field is left out.
        impl Default for $name {
            fn default() -> Self {
                Self(SecretString::from(String::new()))
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(SecretString::from(value))
            }
        }

        impl From<SecretString> for $name {
            fn from(value: SecretString) -> Self {
                Self(value)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), MASK)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(MASK)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                SecretString::deserialize(d).map(Self)
            }
        }
    };
}

secret_type!(
    /// A mini-program's appsecret, as entered by its owner.
    AppSecret
);
secret_type!(
    /// A WeChat `access_token`.
    AccessToken
);
secret_type!(
    /// A JS-SDK ticket (`jsapi`, `wx_card`).
    Ticket
);
secret_type!(
    /// A tenant API key in full (only its hash is stored).
    ApiKeySecret
);
secret_type!(
    /// A person's password (only its argon2 hash is stored).
    Password
);
secret_type!(
    /// The signing secret of an alert channel (stored under the key ring).
    SigningSecret
);
secret_type!(
    /// A one-time token or code as a person sends it back: an invite's
    /// token, a mailed link's token, a one-time sign-in code.
    OneTimeToken
);

/// `***` followed by the last 4 characters of values of 16 characters or more.
fn masked_hint(value: &str) -> String {
    let chars = value.chars().count();
    if chars < 16 {
        return MASK.to_string();
    }
    let tail: String = value.chars().skip(chars - 4).collect();
    format!("{MASK}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_mask_the_value() {
        let secret = AppSecret::from("0123456789abcdef0123456789abcdef".to_string());
        assert_eq!(format!("{secret:?}"), "AppSecret(***)");
        assert_eq!(format!("{secret}"), "***");
        let token = AccessToken::from("tok-very-secret".to_string());
        let in_struct = format!("{:?}", (Some(&token), vec![token.clone()]));
        assert!(!in_struct.contains("very-secret"), "{in_struct}");
        let err = anyhow::anyhow!("failed with {token} / {token:?}").to_string();
        assert!(!err.contains("very-secret"), "{err}");
        assert_eq!(secret.expose_secret(), "0123456789abcdef0123456789abcdef");
    }

    #[test]
    fn hint_shows_at_most_four_characters() {
        assert_eq!(
            AppSecret::from("0123456789abcdef0123456789abcdef".to_string()).hint(),
            "***cdef"
        );
        assert_eq!(Password::from("short-pw".to_string()).hint(), "***");
        assert_eq!(ApiKeySecret::from(String::new()).hint(), "***");
    }

    #[test]
    fn deserializes_from_json() {
        let pw: Password = serde_json::from_str(r#""hunter2""#).unwrap();
        assert_eq!(pw.expose_secret(), "hunter2");
        assert_eq!(format!("{pw:?}"), "Password(***)");
    }
}
