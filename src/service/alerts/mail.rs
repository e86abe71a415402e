//! Mail alerts: a delivery to an `email` channel queues one mail per
//! recipient through the mailer (`crate::mail`) in the delivery's own
//! transaction, so the mails are queued exactly when the delivery is marked
//! delivered, once across replicas. Recipients: the organisation's
//! verified owners and admins (target `members`), each in their own
//! language, or one address (in the language of the member who has it,
//! else English).

use std::time::Instant;

use chrono::Utc;
use minijinja::context;
use secrecy::ExposeSecret as _;
use sqlx::PgConnection;

use super::deliver::Sent;
use super::message;
use super::summary::{self, Summary};
use crate::crypto::Binding;
use crate::db;
use crate::db::alerts::ClaimedDelivery;
use crate::domain::{Email, FieldError};
use crate::error::ApiError;
use crate::mail::{self, Language, Mail};
use crate::state::AppState;

/// The target of a channel that mails every verified owner and admin.
pub const MEMBERS: &str = "members";

/// The stored target of an `email` channel: [`MEMBERS`] for nothing or
/// `members`, else the one address (checked like every address).
pub fn target(to: Option<&str>) -> Result<String, FieldError> {
    let raw = to.unwrap_or_default().trim();
    if raw.is_empty() || raw == MEMBERS {
        return Ok(MEMBERS.into());
    }
    Email::parse("to", raw).map(|e| e.as_str().to_string())
}

/// Queue the mails of delivery `d` on `conn` (the delivery's transaction);
/// how it went. No recipient (nobody verified yet) is a failure that is
/// retried: someone may verify their address meanwhile.
pub async fn deliver(
    conn: &mut PgConnection,
    state: &AppState,
    d: &ClaimedDelivery,
    folded: Option<&message::Folded>,
) -> Result<Sent, ApiError> {
    let page = d.appid.as_deref().and_then(|a| state.settings.app_page(a));
    queue(conn, state, d, |lang| {
        render(d, lang, page.as_deref(), folded)
    })
    .await
}

/// Queue the mails of summary `s` (one per recipient, listing the apps).
pub async fn deliver_summary(
    conn: &mut PgConnection,
    state: &AppState,
    d: &ClaimedDelivery,
    s: &Summary,
) -> Result<Sent, ApiError> {
    let page = |appid: &str| state.settings.app_page(appid);
    queue(conn, state, d, |lang| render_summary(d, s, &page, lang)).await
}

/// Queue one mail per recipient of `d`'s channel, each rendered by
/// `render` in the recipient's language.
async fn queue(
    conn: &mut PgConnection,
    state: &AppState,
    d: &ClaimedDelivery,
    render: impl Fn(Language) -> Result<mail::Rendered, ApiError>,
) -> Result<Sent, ApiError> {
    let started = Instant::now();
    let Ok(to) = state.crypto.decrypt_text(
        &d.url_ciphertext,
        &Binding::alert_url(d.tenant_id, d.channel_id),
    ) else {
        let why = "the channel's recipient cannot be decrypted";
        return Ok(Sent::failed(why, true, started));
    };
    let to = to.expose_secret();
    let recipients = if to == MEMBERS {
        db::alerts::mail_members(&mut *conn, d.tenant_id).await
    } else {
        db::alerts::mail_language(&mut *conn, d.tenant_id, to)
            .await
            .map(|lang| vec![(to.to_string(), lang.unwrap_or_default())])
    };
    let recipients = recipients?;
    if recipients.is_empty() {
        let why = "the organisation has no verified owner or admin to mail yet";
        return Ok(Sent::failed(why, true, started));
    }
    // Every mail rendered before any is queued: a retry never queues one
    // of them twice.
    let mut mails = Vec::new();
    for (address, lang) in recipients {
        let Ok(email) = Email::parse("to", &address) else {
            continue;
        };
        let Ok(rendered) = render(Language::from_tag(&lang)) else {
            return Ok(Sent::failed("cannot write the alert mail", true, started));
        };
        mails.push((address, Mail::new(email, "alert", rendered)));
    }
    let mut sent_to = Vec::new();
    for (address, mail) in mails {
        mail::enqueue_in(&mut *conn, &state.crypto, &mail).await?;
        sent_to.push(address);
    }
    Ok(Sent {
        ok: true,
        http_status: None,
        latency: started.elapsed(),
        answer: Some(format!(
            "queued {} mail(s) to {}",
            sent_to.len(),
            sent_to.join(", ")
        )),
        error: None,
        retryable: false,
    })
}

/// The summary mail of `s` in `lang`: one entry per app (at most
/// [`summary::TEXT_MAX_APPS`], then how many more), each with what WeChat
/// answered, what it means, what to do and the app page's link.
fn render_summary(
    d: &ClaimedDelivery,
    s: &Summary,
    page: &dyn Fn(&str) -> Option<String>,
    lang: Language,
) -> Result<mail::Rendered, ApiError> {
    let zh_lang = lang == Language::ZhCn;
    let (en, zh) = summary::headline(s);
    let apps: Vec<_> = s
        .items
        .iter()
        .take(summary::TEXT_MAX_APPS)
        .map(|item| {
            let appid = item.appid.clone().unwrap_or_default();
            let e = super::message::explain(item.appid.as_deref(), item.errcode);
            context! {
                name => item.app_name.clone().unwrap_or_else(|| appid.clone()),
                link => page(&appid),
                appid,
                errcode => item.errcode,
                errmsg => &item.errmsg,
                meaning => e.as_ref().map(|e| if zh_lang { e.meaning_zh } else { e.meaning_en }),
                fix => e.as_ref().map(|e| if zh_lang { e.fix_zh } else { e.fix_en }),
            }
        })
        .collect();
    let ctx = context! {
        headline => if zh_lang { zh } else { en },
        event => s.type_name(),
        organization => &d.organization,
        count => s.items.len(),
        apps,
        more => s.items.len().saturating_sub(summary::TEXT_MAX_APPS),
        summary => s.id.to_string(),
        occurred_at => s.occurred_at().format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    };
    mail::render("alert_summary", lang, &ctx)
}

/// The alert mail of `d` in `lang`: which app, what WeChat answered, what
/// it means and what to do, the app page's link.
fn render(
    d: &ClaimedDelivery,
    lang: Language,
    page: Option<&str>,
    folded: Option<&message::Folded>,
) -> Result<mail::Rendered, crate::error::ApiError> {
    let (en, zh) = message::headline(d.event_type);
    let zh_lang = lang == Language::ZhCn;
    let app = match (&d.app_name, &d.appid) {
        (Some(name), Some(appid)) if name != appid => format!("{name} ({appid})"),
        (_, Some(appid)) => appid.clone(),
        _ => d.organization.clone(),
    };
    let explained = message::explanation(d);
    let (meaning, fix) = explained.map_or((None, None), |e| {
        if zh_lang {
            (Some(e.meaning_zh), Some(e.fix_zh))
        } else {
            (Some(e.meaning_en), Some(e.fix_en))
        }
    });
    let ctx = context! {
        headline => if zh_lang { zh } else { en },
        event => d.event_type.as_str(),
        app,
        organization => &d.organization,
        errcode => d.errcode,
        errmsg => &d.errmsg,
        meaning,
        fix,
        link => page,
        folded_failing => folded.map(|f| f.failing),
        folded_recovered => folded.map(|f| f.recovered),
        folded_since => folded.map(|f| f.since.format("%Y-%m-%d %H:%M UTC").to_string()),
        delivery => d.id.to_string(),
        occurred_at => d.occurred_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        sent_at => Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
    };
    mail::render("alert", lang, &ctx)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;
    use crate::domain::{AlertChannelId, AlertDeliveryId, ChannelKind, EventType, TenantId};

    fn failing() -> ClaimedDelivery {
        ClaimedDelivery {
            id: AlertDeliveryId::new(),
            attempts: 0,
            created_at: Utc::now(),
            tenant_id: TenantId::new(),
            organization: "Acme".into(),
            channel_id: AlertChannelId::new(),
            kind: ChannelKind::Email,
            url_ciphertext: Vec::new(),
            secret_ciphertext: None,
            event_type: EventType::AppFailing,
            occurred_at: Utc::now(),
            appid: Some("wx0123456789abcdef".into()),
            app_name: Some("Shop <b>".into()),
            errcode: Some(40125),
            errmsg: Some("invalid appsecret".into()),
            summary_id: None,
        }
    }

    #[test]
    fn a_failing_mail_says_which_app_what_wechat_answered_and_what_to_do() {
        let d = failing();
        let e =
            crate::upstream::errcodes::explanation_for(crate::domain::AppKind::Wechat, Some(40125))
                .expect("40125 is explained");
        let page = "https://vault.example.com/apps/wx0123456789abcdef";
        let since = chrono::DateTime::parse_from_rfc3339("2026-12-01T07:00:00Z").unwrap();
        let folded = message::Folded::from_counts(2, 1, Some(since.to_utc()));
        for (lang, meaning, fix, subject, fold) in [
            (
                Language::En,
                e.meaning_en,
                e.fix_en,
                "is failing",
                "2 more failing and 1 more recovered",
            ),
            (
                Language::ZhCn,
                e.meaning_zh,
                e.fix_zh,
                "令牌刷新失败",
                "另有 2 次失败、1 次恢复",
            ),
        ] {
            let plain = render(&d, lang, Some(page), None).unwrap();
            assert!(!plain.text.expose_secret().contains(fold));
            let mail = render(&d, lang, Some(page), folded.as_ref()).unwrap();
            assert!(mail.text.expose_secret().contains(fold), "{fold}");
            assert!(mail.html.expose_secret().contains(fold), "{fold}");
            assert!(mail.text.expose_secret().contains("2026-12-01 07:00 UTC"));
            assert!(mail.subject.contains("Shop <b> (wx0123456789abcdef)"));
            assert!(mail.subject.contains(subject), "{}", mail.subject);
            let text = mail.text.expose_secret();
            for needed in ["40125", "invalid appsecret", meaning, fix, page] {
                assert!(text.contains(needed), "{needed}: {text}");
            }
            let html = mail.html.expose_secret();
            assert!(html.contains("Shop &lt;b&gt;") && !html.contains("<b>"));
            assert!(html.contains("40125"));
        }
    }

    #[test]
    fn targets_are_members_or_one_address() {
        assert_eq!(target(None).unwrap(), MEMBERS);
        assert_eq!(target(Some(" members ")).unwrap(), MEMBERS);
        assert_eq!(
            target(Some("OnCall@Example.com")).unwrap(),
            "oncall@example.com"
        );
        assert_eq!(target(Some("nope")).unwrap_err().field, "to");
    }
}

#[cfg(test)]
mod summary_tests {
    use secrecy::ExposeSecret as _;

    use super::*;
    use crate::domain::ChannelKind;

    #[test]
    fn a_summary_mail_lists_the_apps_in_the_reader_language() {
        let (d, s) = super::summary::tests::summary_of(25, ChannelKind::Email);
        let page = |appid: &str| Some(format!("https://vault.example.com/apps/{appid}"));
        let e =
            crate::upstream::errcodes::explanation_for(crate::domain::AppKind::Wechat, Some(40125))
                .unwrap();
        for (lang, subject, meaning, more) in [
            (
                Language::En,
                "25 apps are failing",
                e.meaning_en,
                "and 5 more",
            ),
            (
                Language::ZhCn,
                "25 个应用令牌刷新失败",
                e.meaning_zh,
                "另有 5 个应用",
            ),
        ] {
            let mail = render_summary(&d, &s, &page, lang).unwrap();
            assert!(mail.subject.contains(subject), "{}", mail.subject);
            let text = mail.text.expose_secret();
            assert!(text.contains(meaning) && text.contains(more), "{text}");
            assert!(text.contains("https://vault.example.com/apps/wx0000000000000013"));
            assert!(!text.contains("wx0000000000000014"), "capped at 20");
            assert!(text.contains(&s.id.to_string()));
            let html = mail.html.expose_secret();
            assert!(html.contains("Shop &lt;3&gt;") && !html.contains("<3>"));
        }
    }
}
