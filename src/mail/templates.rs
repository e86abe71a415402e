//! Mail templates (`web/mail/`), embedded in the binary: per language, a
//! plain-text template `<name>.txt` whose first line is `Subject: …`, and
//! an HTML template `<name>.html` that extends `layout.html` (auto-escaped).

use std::sync::LazyLock;

use minijinja::Environment;
use secrecy::SecretString;

use crate::error::ApiError;

/// Every mail template: name and source.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../web/mail/layout.html")),
    (
        "en/password_reset.txt",
        include_str!("../../web/mail/en/password_reset.txt"),
    ),
    (
        "en/password_reset.html",
        include_str!("../../web/mail/en/password_reset.html"),
    ),
    (
        "zh-CN/password_reset.txt",
        include_str!("../../web/mail/zh-CN/password_reset.txt"),
    ),
    (
        "zh-CN/password_reset.html",
        include_str!("../../web/mail/zh-CN/password_reset.html"),
    ),
    (
        "en/verify_email.txt",
        include_str!("../../web/mail/en/verify_email.txt"),
    ),
    (
        "en/verify_email.html",
        include_str!("../../web/mail/en/verify_email.html"),
    ),
    (
        "zh-CN/verify_email.txt",
        include_str!("../../web/mail/zh-CN/verify_email.txt"),
    ),
    (
        "zh-CN/verify_email.html",
        include_str!("../../web/mail/zh-CN/verify_email.html"),
    ),
    (
        "en/invite.txt",
        include_str!("../../web/mail/en/invite.txt"),
    ),
    (
        "en/invite.html",
        include_str!("../../web/mail/en/invite.html"),
    ),
    (
        "zh-CN/invite.txt",
        include_str!("../../web/mail/zh-CN/invite.txt"),
    ),
    (
        "zh-CN/invite.html",
        include_str!("../../web/mail/zh-CN/invite.html"),
    ),
    ("en/alert.txt", include_str!("../../web/mail/en/alert.txt")),
    (
        "en/alert.html",
        include_str!("../../web/mail/en/alert.html"),
    ),
    (
        "zh-CN/alert.txt",
        include_str!("../../web/mail/zh-CN/alert.txt"),
    ),
    (
        "zh-CN/alert.html",
        include_str!("../../web/mail/zh-CN/alert.html"),
    ),
    (
        "en/alert_summary.txt",
        include_str!("../../web/mail/en/alert_summary.txt"),
    ),
    (
        "en/alert_summary.html",
        include_str!("../../web/mail/en/alert_summary.html"),
    ),
    (
        "zh-CN/alert_summary.txt",
        include_str!("../../web/mail/zh-CN/alert_summary.txt"),
    ),
    (
        "zh-CN/alert_summary.html",
        include_str!("../../web/mail/zh-CN/alert_summary.html"),
    ),
    (
        "en/alert_confirm.txt",
        include_str!("../../web/mail/en/alert_confirm.txt"),
    ),
    (
        "en/alert_confirm.html",
        include_str!("../../web/mail/en/alert_confirm.html"),
    ),
    (
        "zh-CN/alert_confirm.txt",
        include_str!("../../web/mail/zh-CN/alert_confirm.txt"),
    ),
    (
        "zh-CN/alert_confirm.html",
        include_str!("../../web/mail/zh-CN/alert_confirm.html"),
    ),
];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("mail template {name}: {e}"));
    }
    env
});

/// The language of a person's mails (`users.language`; `en` or `zh-CN` in
/// request bodies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = MailLanguage)]
pub enum Language {
    /// English.
    #[default]
    #[serde(rename = "en")]
    En,
    /// Simplified Chinese.
    #[serde(rename = "zh-CN")]
    ZhCn,
}

impl Language {
    /// The stored tag: `en` or `zh-CN`.
    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::ZhCn => "zh-CN",
        }
    }

    /// The language of a stored tag (English for anything else).
    pub fn from_tag(tag: &str) -> Self {
        if tag.eq_ignore_ascii_case("zh-CN") {
            Self::ZhCn
        } else {
            Self::En
        }
    }
}

/// A rendered mail: subject and both bodies.
pub struct Rendered {
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: SecretString,
    /// HTML body.
    pub html: SecretString,
}

/// Render mail template `name` (e.g. `password_reset`) in `lang` with
/// `context` (whatever the template uses: `minijinja::context! { link }`).
pub fn render(
    name: &str,
    lang: Language,
    context: &minijinja::Value,
) -> Result<Rendered, ApiError> {
    let fail =
        |e: minijinja::Error| ApiError::Internal(anyhow::anyhow!("mail template {name}: {e}"));
    let text = ENV
        .get_template(&format!("{}/{name}.txt", lang.tag()))
        .and_then(|t| t.render(context))
        .map_err(fail)?;
    let html = ENV
        .get_template(&format!("{}/{name}.html", lang.tag()))
        .and_then(|t| t.render(context))
        .map_err(fail)?;
    let (first, body) = text.split_once('\n').unwrap_or((&text, ""));
    let subject = first
        .strip_prefix("Subject:")
        .ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("mail template {name}: no Subject line"))
        })?
        .trim()
        .to_string();
    Ok(Rendered {
        subject,
        text: SecretString::from(body.trim_start_matches('\n').to_string()),
        html: SecretString::from(html),
    })
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    #[test]
    fn every_template_renders_in_both_languages_and_escapes_html() {
        for (lang, name) in [Language::En, Language::ZhCn].into_iter().flat_map(|l| {
            [
                "password_reset",
                "verify_email",
                "invite",
                "alert",
                "alert_confirm",
            ]
            .map(|n| (l, n))
        }) {
            let link = "https://vault.example.com/reset?token=a&b=<c>";
            let mail = render(name, lang, &minijinja::context! { link }).expect("renders");
            assert!(!mail.subject.is_empty() && !mail.subject.contains('\n'));
            assert!(mail.text.expose_secret().contains(link));
            assert!(
                mail.html
                    .expose_secret()
                    .contains("token=a&amp;b=&lt;c&gt;")
            );
            assert!(!mail.html.expose_secret().contains("<c>"));
        }
        assert_eq!(Language::from_tag("zh-cn"), Language::ZhCn);
        assert_eq!(Language::from_tag("fr"), Language::En);
    }
}
