//! The page templates, embedded in the binary with `include_str!`.
//!
//! Why minijinja rather than askama: templates are plain Jinja files in
//! `web/templates/` that a designer can edit without touching Rust types,
//! a change to one does not recompile the crate's derive macros, and it
//! escapes every `{{ … }}` in `.html` templates by default (auto-escape is
//! chosen by file name). Templates are parsed once, at first use.

use std::sync::LazyLock;

use minijinja::Environment;

/// Every template: name and source.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../web/templates/base.html")),
    (
        "macros.html",
        include_str!("../../web/templates/macros.html"),
    ),
    (
        "signup.html",
        include_str!("../../web/templates/signup.html"),
    ),
    ("login.html", include_str!("../../web/templates/login.html")),
    (
        "login_totp.html",
        include_str!("../../web/templates/login_totp.html"),
    ),
    (
        "two_factor.html",
        include_str!("../../web/templates/two_factor.html"),
    ),
    (
        "recovery.html",
        include_str!("../../web/templates/recovery.html"),
    ),
    (
        "dashboard.html",
        include_str!("../../web/templates/dashboard.html"),
    ),
    (
        "app_new.html",
        include_str!("../../web/templates/app_new.html"),
    ),
    ("app.html", include_str!("../../web/templates/app.html")),
    (
        "app_tickets.html",
        include_str!("../../web/templates/app_tickets.html"),
    ),
    (
        "app_charts.html",
        include_str!("../../web/templates/app_charts.html"),
    ),
    (
        "activity_charts.html",
        include_str!("../../web/templates/activity_charts.html"),
    ),
    ("error.html", include_str!("../../web/templates/error.html")),
    ("keys.html", include_str!("../../web/templates/keys.html")),
    (
        "alerts.html",
        include_str!("../../web/templates/alerts.html"),
    ),
    (
        "alert_channel.html",
        include_str!("../../web/templates/alert_channel.html"),
    ),
    (
        "status.html",
        include_str!("../../web/templates/status.html"),
    ),
    (
        "operator.html",
        include_str!("../../web/templates/operator.html"),
    ),
    (
        "notfound.html",
        include_str!("../../web/templates/notfound.html"),
    ),
    (
        "members.html",
        include_str!("../../web/templates/members.html"),
    ),
    (
        "invite.html",
        include_str!("../../web/templates/invite.html"),
    ),
    (
        "invite_closed.html",
        include_str!("../../web/templates/invite_closed.html"),
    ),
    ("audit.html", include_str!("../../web/templates/audit.html")),
    (
        "time_zone_form.html",
        include_str!("../../web/templates/time_zone_form.html"),
    ),
    (
        "account.html",
        include_str!("../../web/templates/account.html"),
    ),
];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name} does not parse: {e}"));
    }
    env
});

/// Render template `name` with `ctx`.
pub fn render(name: &str, ctx: minijinja::Value) -> Result<String, minijinja::Error> {
    ENV.get_template(name)?.render(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::i18n::Lang;

    #[test]
    fn every_template_parses() {
        for (name, _) in TEMPLATES {
            assert!(ENV.get_template(name).is_ok(), "{name}");
        }
    }

    /// Every `t.key` a template uses is in the catalogue (the two catalogues
    /// have the same keys, tested in `i18n`).
    #[test]
    fn every_message_a_template_uses_exists() {
        let messages = Lang::En.messages();
        for (name, source) in TEMPLATES {
            let mut rest = *source;
            while let Some(i) = rest.find("t.") {
                let before = rest[..i].chars().last();
                rest = &rest[i + 2..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                    continue;
                }
                let key: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    messages.contains_key(&key),
                    "{name} uses t.{key}, missing from web/i18n/en.json"
                );
            }
        }
    }

    #[test]
    fn output_is_escaped() {
        let html = render(
            "error.html",
            minijinja::context! {
                t => Lang::En.messages(),
                lang => "en",
                message => "<script>alert(1)</script>",
                status => 400,
            },
        )
        .unwrap();
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&lt;script&gt;"));
    }
}
