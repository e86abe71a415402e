//! Mail settings: where mails go (an SMTP server, or `.eml` files in the data
//! directory), who they are from, and the base of the links they hold.

use std::fmt;

use clap::Args;
use secrecy::{ExposeSecret as _, SecretString};

/// How tokenvault sends mail (`crate::mail`).
#[derive(Debug, Clone, Args)]
pub struct MailSettings {
    /// SMTP server for outgoing mail: `smtp://user:password@host:587` (STARTTLS
    /// whenever the server offers it) or `smtps://user:password@host:465` (TLS
    /// from the start). Unset: every mail is written as an `.eml` file under
    /// `DATA_DIR/outbox/`.
    #[arg(long = "smtp-url", env = "TOKENVAULT_SMTP_URL", value_name = "URL",
          value_parser = parse_smtp_url, global = true, hide_env_values = true)]
    pub smtp_url: Option<SmtpUrl>,

    /// Sender of every mail, e.g. `tokenvault <noreply@example.com>`.
    #[arg(long = "mail-from", env = "TOKENVAULT_MAIL_FROM", default_value = "tokenvault <tokenvault@localhost>",
          value_name = "MAILBOX", value_parser = parse_mailbox, global = true)]
    pub mail_from: String,
}

/// Where SMTP mail goes. Holds the server's password: printed masked.
#[derive(Clone)]
pub struct SmtpUrl {
    url: SecretString,
    /// TLS from the first byte (`smtps://`), else STARTTLS when offered.
    pub implicit_tls: bool,
    /// Host name (also the name TLS certificates are checked against).
    pub host: String,
    /// Port (default 465 for `smtps://`, 587 for `smtp://`).
    pub port: u16,
}

impl SmtpUrl {
    /// User name and password, percent-decoded, if the URL has them.
    pub fn credentials(&self) -> Option<(String, SecretString)> {
        let url = url::Url::parse(self.url.expose_secret()).ok()?;
        if url.username().is_empty() {
            return None;
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let password = decode(url.password().unwrap_or(""));
        Some((decode(url.username()), SecretString::from(password)))
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for SmtpUrl {
    /// Scheme, host and port: never the user or the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.implicit_tls { "smtps" } else { "smtp" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

fn parse_smtp_url(value: &str) -> Result<SmtpUrl, String> {
    let bad = |why: &str| {
        format!("{why} (TOKENVAULT_SMTP_URL: smtp://user:password@host:587 or smtps://…)")
    };
    let url = url::Url::parse(value).map_err(|_| bad("not a URL"))?;
    let implicit_tls = match url.scheme() {
        "smtps" => true,
        "smtp" => false,
        _ => return Err(bad("the scheme must be smtp or smtps")),
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port().unwrap_or(if implicit_tls { 465 } else { 587 });
    Ok(SmtpUrl {
        url: SecretString::from(value.to_string()),
        implicit_tls,
        host,
        port,
    })
}

fn parse_mailbox(value: &str) -> Result<String, String> {
    value
        .parse::<lettre::message::Mailbox>()
        .map(|_| value.to_string())
        .map_err(|_| {
            "expected a mailbox like `tokenvault <noreply@example.com>` (TOKENVAULT_MAIL_FROM)"
                .into()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_parse_and_print_without_credentials() {
        let url = parse_smtp_url("smtp://me%40x.org:p%40ss@mail.example.com").expect("parses");
        assert!(!url.implicit_tls);
        assert_eq!(url.port, 587);
        assert_eq!(url.to_string(), "smtp://mail.example.com:587");
        assert!(!format!("{url:?}").contains("ss"));
        let (user, password) = url.credentials().expect("credentials");
        assert_eq!(user, "me@x.org");
        assert_eq!(password.expose_secret(), "p@ss");
        let tls = parse_smtp_url("smtps://mail.example.com").expect("parses");
        assert!(tls.implicit_tls && tls.port == 465 && tls.credentials().is_none());
        assert!(parse_smtp_url("http://mail.example.com").is_err());
        assert!(parse_smtp_url("smtp://").is_err());
    }

    #[test]
    fn mailboxes_are_checked() {
        assert!(parse_mailbox("tokenvault <noreply@example.com>").is_ok());
        assert!(parse_mailbox("a\r\nBcc: x@y.z <a@b.c>").is_err());
    }
}
