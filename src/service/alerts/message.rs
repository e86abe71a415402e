//! What an alert says and how each kind of target wants it: the signed
//! JSON webhook, and the WeCom, Feishu and DingTalk group robots with
//! their own bodies and signatures (`docs/ALERTS.md` has the formats).

use std::fmt::Write as _;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::db::alerts::ClaimedDelivery;
use crate::domain::{AppKind, ChannelKind, EventType};
use crate::upstream::errcodes::{self, Explanation};

type HmacSha256 = Hmac<Sha256>;

/// Most bytes of a WeCom robot's Markdown (WeCom takes at most 4096).
pub const WECOM_MAX_BYTES: usize = 4000;
/// Most bytes of a summary's text for the other robots.
pub const ROBOT_MAX_BYTES: usize = 12_000;

/// The app an alert is about.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertApp {
    /// Its WeChat `AppID`.
    pub appid: String,
    /// Its name in tokenvault.
    pub name: String,
}

/// The failing/recovered changes of an app that damping held back from a
/// channel and folded into its next message about the app.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Folded {
    /// How many `app.failing` changes were not sent.
    pub failing: i64,
    /// How many `app.recovered` changes were not sent.
    pub recovered: i64,
    /// Since when: the channel's previous message about the app (else the
    /// first change held back).
    pub since: DateTime<Utc>,
}

impl Folded {
    /// The folded changes from their counts; `None` when there are none.
    pub fn from_counts(failing: i64, recovered: i64, since: Option<DateTime<Utc>>) -> Option<Self> {
        let since = since?;
        (failing + recovered > 0).then_some(Self {
            failing,
            recovered,
            since,
        })
    }
}

/// The JSON body of a webhook alert.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookBody {
    /// The delivery id, stable across retries (also `X-Tokenvault-Delivery`).
    pub id: String,
    /// The event type (also `X-Tokenvault-Event`).
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// The organisation's name.
    pub organization: String,
    /// The app (absent for `test`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<AlertApp>,
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
    /// The changes of the app damping held back since this channel's
    /// previous message about it (absent when there were none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folded: Option<Folded>,
}

/// One HTTP request to make.
#[derive(Debug)]
pub struct Request {
    /// Query parameters to append (DingTalk's signature).
    pub query: Vec<(&'static str, String)>,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body, exactly as sent (and signed).
    pub body: Vec<u8>,
}

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// `sha256=<hex>`: the webhook signature over `timestamp + "." + body`.
pub fn webhook_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &signed))
    )
}

/// Feishu's `sign`: base64 of HMAC-SHA256 with key `timestamp + "\n" +
/// secret` over an empty message; `timestamp` in seconds.
pub fn feishu_sign(secret: &str, timestamp: i64) -> String {
    let key = format!("{timestamp}\n{secret}");
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(key.as_bytes(), b""))
}

/// DingTalk's `sign` (before URL encoding): base64 of HMAC-SHA256 with key
/// `secret` over `timestamp + "\n" + secret`; `timestamp` in milliseconds.
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    let message = format!("{timestamp_ms}\n{secret}");
    base64::engine::general_purpose::STANDARD
        .encode(hmac_sha256(secret.as_bytes(), message.as_bytes()))
}

/// The platform of an alert's app (WeChat when it names none).
pub fn platform_of(appid: Option<&str>) -> AppKind {
    appid.map_or(AppKind::Wechat, errcodes::kind_of)
}

/// An alert's errcode explained by its app's platform (WeCom's table for
/// a WeCom app).
pub fn explain(appid: Option<&str>, errcode: Option<i32>) -> Option<Explanation> {
    errcodes::explanation_for(platform_of(appid), errcode.map(i64::from))
}

/// The delivery's errcode explained by its app's platform.
pub fn explanation(d: &ClaimedDelivery) -> Option<Explanation> {
    explain(d.appid.as_deref(), d.errcode)
}

/// The headline of an event, in English and Chinese.
pub fn headline(event: EventType) -> (&'static str, &'static str) {
    match event {
        EventType::AppFailing => ("is failing", "令牌刷新失败"),
        EventType::AppRecovered => ("has recovered", "已恢复"),
        EventType::AppTokenExpiring => ("token expires soon", "令牌即将过期"),
        EventType::AppSecretPromoted => (
            "primary secret rejected; the secondary secret is now the primary",
            "主密钥被拒绝，备用密钥已成为主密钥",
        ),
        EventType::Test => ("test message", "测试消息"),
    }
}

/// The text of a robot message (Markdown for WeCom and DingTalk; Feishu
/// shows it as plain text).
pub fn text(d: &ClaimedDelivery, page: Option<&str>, folded: Option<&Folded>) -> String {
    let (en, zh) = headline(d.event_type);
    let app = match (&d.app_name, &d.appid) {
        (Some(name), Some(appid)) => format!("{name} ({appid})"),
        (None, Some(appid)) => appid.clone(),
        _ => d.organization.clone(),
    };
    let mut out = format!("**tokenvault: {app} {en}**\n{app} {zh}\n");
    let _ = writeln!(out, "organization: {}", d.organization);
    if let Some(code) = d.errcode {
        let msg = d.errmsg.as_deref().unwrap_or("");
        let _ = writeln!(
            out,
            "> {}: errcode {code} {msg}",
            platform_of(d.appid.as_deref()).platform()
        );
    } else if let Some(msg) = &d.errmsg {
        let _ = writeln!(out, "> {msg}");
    }
    if let Some(e) = explanation(d) {
        let _ = writeln!(out, "{}\n{}", e.meaning_en, e.fix_en);
        let _ = writeln!(out, "{}\n{}", e.meaning_zh, e.fix_zh);
    }
    if let Some(f) = folded {
        let since = f.since.format("%Y-%m-%d %H:%M UTC");
        let _ = writeln!(
            out,
            "Also since {since}: {} more failing, {} more recovered (damped, folded into this message)",
            f.failing, f.recovered
        );
        let _ = writeln!(
            out,
            "自 {since} 以来另有 {} 次失败、{} 次恢复（已抑制，合并到本消息）",
            f.failing, f.recovered
        );
    }
    if let Some(page) = page {
        let _ = writeln!(out, "[Open the app page / 打开应用页面]({page})");
    }
    let _ = write!(out, "delivery {}", d.id);
    out
}

/// The request for delivery `d` to a channel of its kind, signed with
/// `secret` when the channel has one; `now` is the signing time; `folded`
/// the changes damping held back since the channel's previous message.
pub fn build(
    d: &ClaimedDelivery,
    secret: Option<&str>,
    page: Option<&str>,
    folded: Option<&Folded>,
    now: DateTime<Utc>,
) -> Request {
    if d.kind != ChannelKind::Webhook {
        let (en, _) = headline(d.event_type);
        return robot(
            d.kind,
            &format!("tokenvault: {en}"),
            &text(d, page, folded),
            secret,
            now,
        );
    }
    let body = WebhookBody {
        id: d.id.to_string(),
        event_type: d.event_type,
        occurred_at: d.occurred_at,
        organization: d.organization.clone(),
        app: d.appid.clone().map(|appid| AlertApp {
            name: d.app_name.clone().unwrap_or_else(|| appid.clone()),
            appid,
        }),
        errcode: d.errcode,
        errmsg: d.errmsg.clone(),
        explanation: explanation(d),
        url: page.map(str::to_string),
        folded: folded.cloned(),
    };
    let body = serde_json::to_vec(&body).expect("the webhook body serialises");
    webhook(d.event_type.as_str(), &d.id.to_string(), body, secret, now)
}

/// The webhook request carrying `body`: the four headers (event `event`,
/// delivery `id`, the timestamp `now`, the signature with `secret`).
pub fn webhook(
    event: &str,
    id: &str,
    body: Vec<u8>,
    secret: Option<&str>,
    now: DateTime<Utc>,
) -> Request {
    let ts = now.timestamp();
    let mut headers = vec![
        ("X-Tokenvault-Event", event.to_string()),
        ("X-Tokenvault-Delivery", id.to_string()),
        ("X-Tokenvault-Timestamp", ts.to_string()),
    ];
    if let Some(secret) = secret {
        headers.push((
            "X-Tokenvault-Signature",
            webhook_signature(secret, ts, &body),
        ));
    }
    Request {
        query: Vec::new(),
        headers,
        body,
    }
}

/// The request that posts `text` (Markdown) to a group robot of `kind`,
/// signed with `secret` as that robot wants; `title` is DingTalk's title.
pub fn robot(
    kind: ChannelKind,
    title: &str,
    text: &str,
    secret: Option<&str>,
    now: DateTime<Utc>,
) -> Request {
    let mut query = Vec::new();
    let body = match kind {
        ChannelKind::Wecom => serde_json::json!({
            "msgtype": "markdown",
            "markdown": { "content": truncate(text, WECOM_MAX_BYTES) },
        }),
        ChannelKind::Feishu => {
            let mut body = serde_json::json!({
                "msg_type": "text",
                "content": { "text": text },
            });
            if let Some(secret) = secret {
                let ts = now.timestamp();
                body["timestamp"] = ts.to_string().into();
                body["sign"] = feishu_sign(secret, ts).into();
            }
            body
        }
        ChannelKind::Dingtalk => {
            if let Some(secret) = secret {
                let ts = now.timestamp_millis();
                query.push(("timestamp", ts.to_string()));
                query.push(("sign", dingtalk_sign(secret, ts)));
            }
            serde_json::json!({
                "msgtype": "markdown",
                "markdown": { "title": title, "text": text },
            })
        }
        // Mail channels are not posted (`super::mail` queues mails) and
        // webhooks have their own body; this is what the request would carry.
        ChannelKind::Email | ChannelKind::Webhook => serde_json::json!({ "text": text }),
    };
    Request {
        query,
        headers: Vec::new(),
        body: serde_json::to_vec(&body).expect("a robot body serialises"),
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Whether a robot's 2xx answer reports an error (they answer 200 with an
/// error code): WeCom and DingTalk `errcode`, Feishu `code` or `StatusCode`
/// other than 0. A webhook's 2xx is always success.
pub fn robot_error(kind: ChannelKind, answer: &[u8]) -> Option<String> {
    if matches!(kind, ChannelKind::Webhook | ChannelKind::Email) {
        return None;
    }
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(answer) else {
        return Some("the robot's answer is not JSON".into());
    };
    let code = ["errcode", "code", "StatusCode"]
        .iter()
        .find_map(|k| json.get(*k).and_then(serde_json::Value::as_i64));
    match code {
        Some(0) => None,
        Some(code) => {
            let msg = ["errmsg", "msg", "StatusMessage"]
                .iter()
                .find_map(|k| json.get(*k).and_then(serde_json::Value::as_str))
                .unwrap_or("");
            Some(format!("the robot answered error {code}: {msg}"))
        }
        None => Some("the robot's answer has no error code".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_known_answers() {
        // RFC 4231, test case 2.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // The formats the readers check: what is signed, with which key.
        let b64 = |v: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(v);
        assert_eq!(
            webhook_signature("s3cret", 1_700_000_000, b"{}"),
            format!(
                "sha256={}",
                hex::encode(hmac_sha256(b"s3cret", b"1700000000.{}"))
            )
        );
        assert_eq!(feishu_sign("s", 1), b64(hmac_sha256(b"1\ns", b"")));
        assert_eq!(dingtalk_sign("s", 1), b64(hmac_sha256(b"s", b"1\ns")));
    }

    #[test]
    fn robot_errors_count_as_failures() {
        assert_eq!(
            robot_error(ChannelKind::Wecom, br#"{"errcode":0,"errmsg":"ok"}"#),
            None
        );
        assert!(
            robot_error(
                ChannelKind::Wecom,
                br#"{"errcode":93000,"errmsg":"invalid webhook url"}"#
            )
            .is_some()
        );
        assert_eq!(
            robot_error(ChannelKind::Feishu, br#"{"code":0,"msg":"success"}"#),
            None
        );
        assert!(
            robot_error(
                ChannelKind::Feishu,
                br#"{"code":19021,"msg":"sign match fail"}"#
            )
            .is_some()
        );
        assert!(
            robot_error(
                ChannelKind::Dingtalk,
                br#"{"errcode":310000,"errmsg":"sign not match"}"#
            )
            .is_some()
        );
        assert!(robot_error(ChannelKind::Dingtalk, b"<html>").is_some());
        assert_eq!(robot_error(ChannelKind::Webhook, b"anything"), None);
        assert_eq!(truncate("你好", 4), "你");
    }

    /// A failing event of the app `appid` with `errcode`.
    fn delivery(appid: &str, errcode: i32) -> ClaimedDelivery {
        ClaimedDelivery {
            id: crate::domain::AlertDeliveryId::from(uuid::Uuid::nil()),
            attempts: 0,
            created_at: Utc::now(),
            tenant_id: crate::domain::TenantId::from(uuid::Uuid::nil()),
            organization: "Work Co".into(),
            channel_id: crate::domain::AlertChannelId::from(uuid::Uuid::nil()),
            kind: ChannelKind::Webhook,
            url_ciphertext: Vec::new(),
            secret_ciphertext: None,
            event_type: EventType::AppFailing,
            occurred_at: Utc::now(),
            appid: Some(appid.into()),
            app_name: None,
            errcode: Some(errcode),
            errmsg: Some("invalid".into()),
            summary_id: None,
        }
    }

    #[test]
    fn a_wecom_apps_errcode_is_explained_by_wecom() {
        for (appid, code, platform, meaning) in [
            (
                "ww0123456789abcdef-1000002",
                40001,
                "WeCom",
                "The Secret is wrong",
            ),
            (
                "ww0123456789abcdef-1000002",
                40013,
                "WeCom",
                "The corpid is wrong",
            ),
            (
                "wx0123456789abcdef",
                40001,
                "WeChat",
                "The AppSecret is wrong",
            ),
        ] {
            let d = delivery(appid, code);
            let text = text(&d, None, None);
            assert!(
                text.contains(&format!("> {platform}: errcode {code}")),
                "{text}"
            );
            assert!(text.contains(meaning), "{appid} {code}: {text}");
            let webhook = build(&d, None, None, None, Utc::now());
            let body: serde_json::Value = serde_json::from_slice(&webhook.body).unwrap();
            let explained = body["explanation"]["meaning_en"].as_str().unwrap();
            assert!(explained.starts_with(meaning), "{body}");
        }
    }
}
