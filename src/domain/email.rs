use std::fmt;

use super::{FieldError, has_deceptive_chars};

/// An email address, trimmed and lower-cased (addresses are compared without case).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Parse `raw` as the value of field `field`.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(FieldError::new(field, "required", "enter an email address"));
        }
        if s.chars().count() > 254 {
            return Err(FieldError::new(
                field,
                "too_long",
                "an email address has at most 254 characters",
            ));
        }
        let invalid = || {
            FieldError::new(
                field,
                "invalid_email",
                "enter an email address like name@example.com",
            )
        };
        if has_deceptive_chars(s) || s.chars().any(char::is_whitespace) {
            return Err(invalid());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        // RFC 5322 "atext" and dots (quoted local parts are not accepted),
        // plus any non-ASCII letter (internationalised addresses).
        let local_ok = local.chars().all(|c| {
            !c.is_ascii() || c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c)
        }) && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        if local.is_empty() || local.len() > 64 || !local_ok || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(s.to_lowercase()))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn accepts_and_normalises() {
        assert_eq!(
            Email::parse("email", "  Dev@Example.COM ")
                .unwrap()
                .as_str(),
            "dev@example.com"
        );
        assert!(Email::parse("email", "张三@例子.中国").is_ok());
    }

    #[test]
    fn refuses_what_is_not_an_email() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a b@example.com",
            "a@exa mple.com",
            "a@.example.com",
            "a@example..com",
            "a@@example.com",
            "<script>@x.com",
            "a@x.com\u{202E}",
            "a\u{0}b@example.com",
        ] {
            assert!(Email::parse("email", bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse("email", &long).unwrap_err().code, "too_long");
    }
}
