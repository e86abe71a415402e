//! One message when many apps change at once: the `app.failing` (or
//! `app.recovered`) deliveries of a channel that wait together (each waits
//! `TOKENVAULT_ALERT_SUMMARY_GATHER_SECONDS` first) are sent as one summary
//! once there are more than `TOKENVAULT_ALERT_SUMMARY_THRESHOLD` of them.
//! The replica that claims one of them (holding the channel's row, so no
//! other replica sends to that channel meanwhile) locks the others, gives
//! them one summary id and sends one message listing the apps; every
//! delivery of the group gets that attempt's outcome. A retry sends the
//! same summary id and the same apps. `docs/ALERTS.md` has the formats.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::message::{self, Request};
use crate::db;
use crate::db::alert_groups::SummaryItem;
use crate::db::alerts::ClaimedDelivery;
use crate::domain::{AlertSummaryId, ChannelKind, EventType};
use crate::state::AppState;
use crate::upstream::errcodes::Explanation;

/// Most deliveries one summary takes (the rest make the next one).
const MAX_GROUP: i64 = 500;
/// Most apps a webhook summary lists (the rest are counted in `more`).
pub const WEBHOOK_MAX_APPS: usize = 100;
/// Most apps a robot or mail summary lists (then "and N more").
pub const TEXT_MAX_APPS: usize = 20;

/// A summary: one message for many deliveries of one channel.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Its id, the same on every retry.
    pub id: AlertSummaryId,
    /// `app.failing` or `app.recovered`.
    pub event_type: EventType,
    /// The apps, oldest change first.
    pub items: Vec<SummaryItem>,
}

impl Summary {
    /// The name of its message type: `app.failing.summary` or
    /// `app.recovered.summary`.
    pub fn type_name(&self) -> &'static str {
        if self.event_type == EventType::AppRecovered {
            "app.recovered.summary"
        } else {
            "app.failing.summary"
        }
    }

    /// When the first of its changes happened.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.items
            .iter()
            .map(|i| i.occurred_at)
            .min()
            .unwrap_or_else(Utc::now)
    }
}

/// The summary `d` is sent in, if any: the one it is part of already (a
/// retry: the same id and the same deliveries), else a new one when more
/// than the threshold of its channel's failing (or recovered) deliveries
/// wait together. `None`: `d` goes alone (also when it was already tried
/// alone: its retries keep its own delivery id).
pub async fn group(
    conn: &mut sqlx::PgConnection,
    state: &AppState,
    d: &ClaimedDelivery,
) -> Result<Option<Summary>, sqlx::Error> {
    if d.appid.is_none()
        || !matches!(
            d.event_type,
            EventType::AppFailing | EventType::AppRecovered
        )
    {
        return Ok(None);
    }
    let id = if let Some(id) = d.summary_id {
        id
    } else if d.attempts > 0 {
        return Ok(None);
    } else {
        let others = db::alert_groups::gather(conn, d, MAX_GROUP - 1).await?;
        let threshold = usize::try_from(state.settings.alerts.summary_threshold).unwrap_or(3);
        if others.len() < threshold {
            return Ok(None);
        }
        let id = AlertSummaryId::new();
        let mut ids = others;
        ids.push(d.id);
        db::alert_groups::form(conn, id, &ids).await?;
        tracing::info!(summary = %id, channel = %d.channel_id, deliveries = ids.len(),
            event = d.event_type.as_str(), "alert summary formed");
        id
    };
    let items = db::alert_groups::members(conn, id).await?;
    Ok(Some(Summary {
        id,
        event_type: d.event_type,
        items,
    }))
}

/// One app in a webhook summary.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SummaryApp {
    /// Its `AppID`.
    pub appid: String,
    /// Its name in tokenvault.
    pub name: String,
    /// WeChat's errcode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errcode: Option<i32>,
    /// WeChat's errmsg.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errmsg: Option<String>,
    /// What the errcode means and what to do, in English and Chinese.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
    /// The app's page (when `TOKENVAULT_PUBLIC_URL` is set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// When it changed.
    pub occurred_at: DateTime<Utc>,
    /// The delivery of this app's event (what a single message would have
    /// carried in `X-Tokenvault-Delivery`).
    pub delivery: String,
}

/// The JSON body of a webhook summary (`X-Tokenvault-Event:
/// app.failing.summary` or `app.recovered.summary`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SummaryBody {
    /// The summary id, stable across retries (also `X-Tokenvault-Delivery`).
    pub id: String,
    /// `app.failing.summary` or `app.recovered.summary`.
    #[serde(rename = "type")]
    pub summary_type: String,
    /// When the first of its changes happened.
    pub occurred_at: DateTime<Utc>,
    /// The organisation's name.
    pub organization: String,
    /// How many apps it is about.
    pub count: usize,
    /// The apps (at most 100), oldest change first.
    pub apps: Vec<SummaryApp>,
    /// Apps beyond those listed.
    pub more: usize,
}

fn name_of(item: &SummaryItem) -> (String, String) {
    let appid = item.appid.clone().unwrap_or_default();
    let name = item.app_name.clone().unwrap_or_else(|| appid.clone());
    (appid, name)
}

/// The request that sends summary `s` to `d`'s channel; `page` gives an
/// app's page.
pub fn build(
    d: &ClaimedDelivery,
    s: &Summary,
    page: &dyn Fn(&str) -> Option<String>,
    secret: Option<&str>,
    now: DateTime<Utc>,
) -> Request {
    if d.kind != ChannelKind::Webhook {
        let (en, _) = headline(s);
        let max = if d.kind == ChannelKind::Wecom {
            message::WECOM_MAX_BYTES
        } else {
            message::ROBOT_MAX_BYTES
        };
        return message::robot(d.kind, &en, &text(d, s, page, max), secret, now);
    }
    let apps = s
        .items
        .iter()
        .take(WEBHOOK_MAX_APPS)
        .map(|item| {
            let (appid, name) = name_of(item);
            SummaryApp {
                url: page(&appid),
                appid,
                name,
                errcode: item.errcode,
                errmsg: item.errmsg.clone(),
                explanation: super::message::explain(item.appid.as_deref(), item.errcode),
                occurred_at: item.occurred_at,
                delivery: item.delivery_id.to_string(),
            }
        })
        .collect::<Vec<_>>();
    let body = SummaryBody {
        id: s.id.to_string(),
        summary_type: s.type_name().to_string(),
        occurred_at: s.occurred_at(),
        organization: d.organization.clone(),
        count: s.items.len(),
        more: s.items.len() - apps.len(),
        apps,
    };
    let body = serde_json::to_vec(&body).expect("the summary body serialises");
    message::webhook(s.type_name(), &s.id.to_string(), body, secret, now)
}

/// The summary's headline in English and Chinese.
pub fn headline(s: &Summary) -> (String, String) {
    let n = s.items.len();
    if s.event_type == EventType::AppRecovered {
        (
            format!("tokenvault: {n} apps have recovered"),
            format!("{n} 个应用已恢复"),
        )
    } else {
        (
            format!("tokenvault: {n} apps are failing"),
            format!("{n} 个应用令牌刷新失败"),
        )
    }
}

/// The Markdown text of a robot summary: one line per app (at most
/// [`TEXT_MAX_APPS`], and only as many as fit in `max_bytes` with the rest
/// of the text; then "and N more"), then what its errcodes mean.
pub fn text(
    d: &ClaimedDelivery,
    s: &Summary,
    page: &dyn Fn(&str) -> Option<String>,
    max_bytes: usize,
) -> String {
    let (en, zh) = headline(s);
    let mut out = format!("**{en}**\n{zh}\norganization: {}\n", d.organization);
    // The first three errcodes, each with its platform (WeChat's and
    // WeCom's tables give the same number different meanings).
    let mut codes: Vec<(Option<&str>, i32)> = Vec::new();
    for item in &s.items {
        let Some(code) = item.errcode else { continue };
        let appid = item.appid.as_deref();
        let platform = super::message::platform_of(appid);
        let seen = codes
            .iter()
            .any(|&(a, c)| c == code && super::message::platform_of(a) == platform);
        if !seen && codes.len() < 3 {
            codes.push((appid, code));
        }
    }
    let mut tail = String::new();
    for (appid, code) in codes {
        if let Some(e) = super::message::explain(appid, Some(code)) {
            let _ = writeln!(
                tail,
                "> {code}: {} {}\n> {code}：{}{}",
                e.meaning_en, e.fix_en, e.meaning_zh, e.fix_zh
            );
        }
    }
    let _ = write!(tail, "summary {}", s.id);
    // Room for "and N more" besides the tail.
    let reserve = tail.len() + 64;
    let mut listed = 0;
    for item in s.items.iter().take(TEXT_MAX_APPS) {
        let (appid, name) = name_of(item);
        let mut line = if name == appid {
            format!("- {appid}")
        } else {
            format!("- {name} ({appid})")
        };
        if let Some(code) = item.errcode {
            let _ = write!(line, " errcode {code}");
        }
        if let Some(link) = page(&appid) {
            let _ = write!(line, " [→]({link})");
        }
        if out.len() + line.len() + 1 + reserve > max_bytes {
            break;
        }
        out.push_str(&line);
        out.push('\n');
        listed += 1;
    }
    let more = s.items.len() - listed;
    if more > 0 {
        let _ = writeln!(out, "… and {more} more / 另有 {more} 个");
    }
    out.push_str(&tail);
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::domain::{AlertChannelId, AlertDeliveryId, TenantId};

    /// A delivery of `kind` in summary `s`, and the summary of `n` failing apps.
    pub(crate) fn summary_of(n: usize, kind: ChannelKind) -> (ClaimedDelivery, Summary) {
        let id = AlertSummaryId::new();
        let items = (0..n)
            .map(|i| SummaryItem {
                delivery_id: AlertDeliveryId::new(),
                event_type: EventType::AppFailing,
                occurred_at: Utc::now(),
                appid: Some(format!("wx{i:016x}")),
                app_name: Some(format!("Shop <{i}>")),
                errcode: Some(40125),
                errmsg: Some("invalid appsecret".into()),
            })
            .collect();
        let d = ClaimedDelivery {
            id: AlertDeliveryId::new(),
            attempts: 0,
            created_at: Utc::now(),
            tenant_id: TenantId::new(),
            organization: "Acme".into(),
            channel_id: AlertChannelId::new(),
            kind,
            url_ciphertext: Vec::new(),
            secret_ciphertext: None,
            event_type: EventType::AppFailing,
            occurred_at: Utc::now(),
            appid: Some("wx0000000000000000".into()),
            app_name: None,
            errcode: Some(40125),
            errmsg: None,
            summary_id: Some(id),
        };
        let s = Summary {
            id,
            event_type: EventType::AppFailing,
            items,
        };
        (d, s)
    }

    const PAGE: &dyn Fn(&str) -> Option<String> =
        &|appid: &str| Some(format!("https://vault.example.com/apps/{appid}"));

    #[test]
    fn robot_summaries_fit_the_robot_and_say_how_many_more() {
        let (d, s) = summary_of(60, ChannelKind::Wecom);
        let body = text(&d, &s, PAGE, message::WECOM_MAX_BYTES);
        assert!(body.len() <= message::WECOM_MAX_BYTES, "{}", body.len());
        assert!(body.contains("60 apps are failing") && body.contains("60 个应用"));
        let listed = body.lines().filter(|l| l.starts_with("- ")).count();
        assert!((10..=TEXT_MAX_APPS).contains(&listed), "{listed}");
        let more = 60 - listed;
        assert!(
            body.contains(&format!("and {more} more / 另有 {more} 个")),
            "{body}"
        );
        let e =
            crate::upstream::errcodes::explanation_for(crate::domain::AppKind::Wechat, Some(40125))
                .unwrap();
        assert!(body.contains(e.meaning_en) && body.contains(e.fix_zh));
        assert!(body.ends_with(&format!("summary {}", s.id)));
        // A few apps: every one listed, no "more".
        let (d, s) = summary_of(4, ChannelKind::Dingtalk);
        let body = text(&d, &s, PAGE, message::ROBOT_MAX_BYTES);
        assert_eq!(body.lines().filter(|l| l.starts_with("- ")).count(), 4);
        assert!(!body.contains("more"));
        assert!(body.contains("(https://vault.example.com/apps/wx0000000000000003)"));
    }

    #[test]
    fn webhook_summaries_are_signed_and_list_at_most_a_hundred_apps() {
        let (d, s) = summary_of(120, ChannelKind::Webhook);
        let now = Utc::now();
        let r = build(&d, &s, PAGE, Some("s3cret"), now);
        let header = |n: &str| {
            r.headers
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            header("X-Tokenvault-Event").as_deref(),
            Some("app.failing.summary")
        );
        assert_eq!(header("X-Tokenvault-Delivery"), Some(s.id.to_string()));
        assert_eq!(
            header("X-Tokenvault-Signature"),
            Some(message::webhook_signature(
                "s3cret",
                now.timestamp(),
                &r.body
            ))
        );
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["type"], "app.failing.summary");
        assert_eq!(body["id"], s.id.to_string());
        assert_eq!(body["count"], 120);
        assert_eq!(body["more"], 20);
        assert_eq!(body["apps"].as_array().unwrap().len(), WEBHOOK_MAX_APPS);
        assert_eq!(body["apps"][0]["appid"], "wx0000000000000000");
        assert_eq!(body["apps"][0]["name"], "Shop <0>");
        assert_eq!(body["apps"][0]["errcode"], 40125);
        assert_eq!(
            body["apps"][0]["delivery"],
            s.items[0].delivery_id.to_string()
        );
        assert!(body["apps"][0]["explanation"]["fix_en"].is_string());
    }
}
