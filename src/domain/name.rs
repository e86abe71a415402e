use std::fmt;

use super::{FieldError, has_deceptive_chars};

/// A display name (organisation, app, API key): 1 to 100 characters, trimmed,
/// no control or invisible direction-changing characters. Any script, emoji
/// and punctuation are welcome; output is always escaped where it is shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Name(String);

/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

impl Name {
    /// Parse `raw` as the value of field `field`.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(FieldError::new(field, "required", "enter a name"));
        }
        if s.chars().count() > MAX_NAME_CHARS {
            return Err(FieldError::new(
                field,
                "too_long",
                format!("a name has at most {MAX_NAME_CHARS} characters"),
            ));
        }
        if has_deceptive_chars(s) {
            return Err(FieldError::new(
                field,
                "invalid_characters",
                "remove control, zero-width and text-direction characters",
            ));
        }
        Ok(Self(s.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Name;

    #[test]
    fn keeps_any_script_and_markup_as_text() {
        for ok in [
            "腾讯小程序 🚀",
            "O'Brien & Sons",
            "<b>bold</b>",
            "'; drop table apps; --",
        ] {
            assert_eq!(Name::parse("name", ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_empty_long_and_deceptive() {
        assert_eq!(Name::parse("name", "   ").unwrap_err().code, "required");
        assert_eq!(
            Name::parse("name", &"x".repeat(101)).unwrap_err().code,
            "too_long"
        );
        assert!(Name::parse("name", &"é".repeat(100)).is_ok());
        for bad in [
            "evil\u{202E}gpj.exe",
            "zero\u{200B}width",
            "bell\u{7}",
            "new\nline",
        ] {
            assert_eq!(
                Name::parse("name", bad).unwrap_err().code,
                "invalid_characters",
                "{bad:?}"
            );
        }
    }
}
