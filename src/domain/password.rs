use std::collections::HashSet;
use std::io::Read as _;
use std::sync::LazyLock;

use secrecy::{ExposeSecret as _, SecretString};

use super::FieldError;

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest accepted password, in characters: long passphrases are welcome
/// (argon2 would take more, but a cap keeps hashing cost bounded).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Common patterns of this service's users (Chinese number phrases among them).
const COMMON: &str = include_str!("common_passwords.txt");

/// The 100,000 most common breached passwords, gzip-compressed; source and
/// licence in `BREACHED_PASSWORDS.md` beside this file.
const BREACHED_GZ: &[u8] = include_bytes!("breached_passwords.txt.gz");

/// The breached passwords long enough to pass the length rule, lowercased;
/// decompressed on first use.
static BREACHED: LazyLock<HashSet<Box<str>>> = LazyLock::new(|| {
    let mut text = String::new();
    // The embedded file is checked by a test; a failure here leaves the
    // list short, never the service down.
    if let Err(e) = flate2::read::GzDecoder::new(BREACHED_GZ).read_to_string(&mut text) {
        tracing::error!(error = %e, "the embedded breached-password list does not decompress");
    }
    text.lines()
        .filter(|p| p.chars().count() >= MIN_PASSWORD_CHARS)
        .map(|p| p.to_lowercase().into_boxed_str())
        .collect()
});

/// A password chosen by a person (sign-up, invite, reset), checked against
/// the rules. The text is a secret: it prints masked and is zeroized on drop.
#[derive(Debug)]
pub struct NewPassword(SecretString);

impl NewPassword {
    /// Check `raw` for field `field`; `email` is refused as a password.
    pub fn parse(field: &'static str, raw: SecretString, email: &str) -> Result<Self, FieldError> {
        let p = raw.expose_secret();
        let chars = p.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(FieldError::new(
                field,
                "too_short",
                format!(
                    "use at least {MIN_PASSWORD_CHARS} characters; a short phrase is easy to remember"
                ),
            ));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(FieldError::new(
                field,
                "too_long",
                format!("use at most {MAX_PASSWORD_CHARS} characters"),
            ));
        }
        if is_common(p) || p.eq_ignore_ascii_case(email) {
            return Err(FieldError::new(
                field,
                "too_common",
                "this password is among the most common ones; choose another",
            ));
        }
        Ok(Self(raw))
    }

    /// The secret, for hashing.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

fn is_common(p: &str) -> bool {
    let lower = p.to_lowercase();
    let mut chars = lower.chars();
    let first = chars.next();
    let one_char = chars.all(|c| Some(c) == first);
    let sequence = [
        "01234567890123456789",
        "98765432109876543210",
        "abcdefghijklmnopqrstuvwxyz",
        "qwertyuiopasdfghjklzxcvbnm",
    ]
    .iter()
    .any(|run| run.contains(lower.as_str()));
    one_char || sequence || COMMON.lines().any(|c| c == lower) || BREACHED.contains(lower.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(p: &str) -> Result<NewPassword, FieldError> {
        NewPassword::parse("password", SecretString::from(p), "me@example.com")
    }

    #[test]
    fn rules() {
        assert!(parse("correct horse battery").is_ok());
        assert_eq!(parse("short").unwrap_err().code, "too_short");
        assert_eq!(parse(&"x1".repeat(129)).unwrap_err().code, "too_long");
        // Long passphrases are welcome: 128 characters and more.
        let passphrase = "the quick brown fox jumps over the lazy dog again and again ".repeat(4);
        assert!(passphrase.chars().count() > 200);
        assert!(parse(&passphrase).is_ok());
        for common in [
            "Password123",
            "qwertyuiop",
            "1234567890",
            "aaaaaaaaaaaa",
            "ME@example.com",
            "woaini1314",
            // From the breached-password list, caught by no other rule.
            "4815162342",
            "nuttertools",
            "Manchester",
            "cosmopolitan",
            "OlCRackMaster",
        ] {
            let err = NewPassword::parse("password", SecretString::from(common), "me@example.com")
                .unwrap_err();
            assert_eq!(err.code, "too_common", "{common}");
        }
    }

    #[test]
    fn the_breached_list_is_the_top_100k() {
        let mut text = String::new();
        flate2::read::GzDecoder::new(BREACHED_GZ)
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text.lines().count(), 100_000);
        assert_eq!(text.lines().next(), Some("123456"));
        assert!(BREACHED.len() > 2000, "{}", BREACHED.len());
    }

    #[test]
    fn debug_is_masked() {
        let p = parse("correct horse battery").unwrap();
        assert!(!format!("{p:?}").contains("horse"));
    }
}
