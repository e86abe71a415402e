//! The alerts page over plain HTTP, with the default target rules (no
//! private targets): every bad input of the form gets a field error in the
//! visitor's language and a 4xx, never a 5xx; owners add and delete
//! channels; viewers see them without secrets or forms; the delivery log
//! answers 404 for another organisation's or a malformed id.

use uuid::Uuid;

use crate::helpers::spawn_app;
use crate::ui_people::{count, get, owner_with_team, post};

/// A public address written as a literal, so creating a channel needs no
/// DNS (nothing is sent to it in this test).
const PUBLIC_URL: &str = "https://93.184.215.14/hooks/tokenvault";
const SECRET: &str = "whsec-ui-page-5d1f";

#[tokio::test]
async fn the_alerts_form_refuses_bad_input_field_by_field() {
    let app = spawn_app().await;
    let owner = app.signup("Acme", "owner@acme.test").await;
    let (status, html) = get(&owner, "/alerts").await;
    assert_eq!(status, 200);
    assert!(html.contains("href=\"/alerts\" aria-current=\"page\""));
    assert!(html.contains("action=\"/alerts\""));

    let long = "s".repeat(201);
    let cases: [(&str, &str, &str, &str); 7] = [
        (
            "webhook",
            "http://127.0.0.1:8080/hook",
            "",
            "a loopback, private, link-local or metadata address",
        ),
        (
            "webhook",
            "http://169.254.169.254/latest/meta-data",
            "",
            "a loopback, private, link-local or metadata address",
        ),
        (
            "webhook",
            "http://[fd00::1]:8080/x",
            "",
            "a loopback, private, link-local or metadata address",
        ),
        (
            "webhook",
            "ftp://93.184.215.14/x",
            "",
            "The address must start with https:",
        ),
        (
            "webhook",
            "https://93.184.215.14:22/x",
            "",
            "The port must be 80, 443 or above 1023",
        ),
        ("webhook", PUBLIC_URL, &long, "at most 200 characters"),
        (
            "wecom",
            PUBLIC_URL,
            "a-secret",
            "WeCom group robots do not sign messages",
        ),
    ];
    for (kind, url, secret, expected) in cases {
        let form = [
            ("csrf_token", owner.csrf.as_str()),
            ("kind", kind),
            ("name", "Ops"),
            ("url", url),
            ("secret", secret),
            ("events", "app.failing"),
        ];
        let (status, html) = post(&owner, "/alerts", &form).await;
        assert_eq!(status, 422, "{url}");
        assert!(html.contains(expected), "{url}: {expected}");
        assert!(html.contains("class=\"field-error\""), "{url}");
        assert!(secret.is_empty() || !html.contains(secret), "secret echoed");
        assert!(html.contains("value=\"Ops\""), "the form keeps its fields");
    }
    // No event chosen, an unknown kind, an app of nobody's.
    let form = [
        ("csrf_token", owner.csrf.as_str()),
        ("kind", "pager"),
        ("name", "Ops"),
        ("url", PUBLIC_URL),
        ("apps", "wx0000000000000000"),
    ];
    let (status, html) = post(&owner, "/alerts", &form).await;
    assert_eq!(status, 422);
    assert!(html.contains("Choose at least one event."));
    assert!(html.contains("Choose one of the kinds offered."));
    assert!(html.contains("no longer in your organisation"));
    // In Chinese, for a Chinese visitor.
    get(&owner, "/lang/zh-CN?back=/alerts").await;
    let form = [
        ("csrf_token", owner.csrf.as_str()),
        ("kind", "webhook"),
        ("name", "运维"),
        ("url", "http://10.0.0.8:8080/hook"),
        ("events", "app.failing"),
    ];
    let (status, html) = post(&owner, "/alerts", &form).await;
    assert_eq!(status, 422);
    assert!(html.contains("回环、内网、链路本地或元数据地址"), "{html}");
    // A stale form is refused without storing anything.
    let form = [
        ("csrf_token", "stale"),
        ("kind", "webhook"),
        ("name", "x"),
        ("url", PUBLIC_URL),
    ];
    let (status, _) = post(&owner, "/alerts", &form).await;
    assert_eq!(
        status, 200,
        "back to the page with a 'form out of date' message"
    );
    assert_eq!(
        count(&app.pool, "select count(*) from alert_channels").await,
        0
    );
}

#[tokio::test]
async fn owners_add_and_delete_channels_and_viewers_only_see_them() {
    let app = spawn_app().await;
    let (owner, _admin, viewer) = owner_with_team(&app).await;
    let form = [
        ("csrf_token", owner.csrf.as_str()),
        ("kind", "webhook"),
        ("name", "Ops hook"),
        ("url", PUBLIC_URL),
        ("secret", SECRET),
        ("events", "app.failing"),
        ("events", "app.recovered"),
    ];
    let (status, html) = post(&owner, "/alerts", &form).await;
    assert_eq!(status, 200, "redirected back to the page");
    assert!(html.contains("Alert channel added:"), "{html}");
    assert!(html.contains("Ops hook"));
    assert!(!html.contains(SECRET));
    let id: Uuid = sqlx::query_scalar("select id from alert_channels")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    // The viewer: the channel, no secret, no form, no test or delete.
    let (status, html) = get(&viewer, "/alerts").await;
    assert_eq!(status, 200);
    assert!(html.contains("Ops hook") && html.contains("app.recovered"));
    assert!(!html.contains(SECRET));
    assert!(!html.contains("action=\"/alerts"), "no forms for viewers");
    assert!(!html.contains("name=\"secret\""));
    let (status, html) = get(&viewer, &format!("/alerts/{id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Nothing sent to this channel yet"), "{html}");
    let csrf = viewer.csrf.as_str();
    for path in [
        "/alerts".to_string(),
        format!("/alerts/{id}/test"),
        format!("/alerts/{id}/delete"),
    ] {
        let (status, _) = post(&viewer, &path, &[("csrf_token", csrf), ("kind", "webhook")]).await;
        assert_eq!(status, 403, "{path}");
    }

    // Unknown and malformed ids: not found, never a 5xx.
    let other = Uuid::new_v4();
    for path in [format!("/alerts/{other}"), "/alerts/nope".to_string()] {
        let (status, _) = get(&owner, &path).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = post(
        &owner,
        &format!("/alerts/{other}/delete"),
        &[("csrf_token", &owner.csrf)],
    )
    .await;
    assert_eq!(status, 404);

    // The owner deletes it.
    let (status, html) = post(
        &owner,
        &format!("/alerts/{id}/delete"),
        &[("csrf_token", &owner.csrf)],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("Alert channel deleted:"), "{html}");
    assert!(html.contains("No alert channels yet"));
    assert_eq!(
        count(&app.pool, "select count(*) from alert_channels").await,
        0
    );
    let audited = "select count(*) from audit_log where target = 'Ops hook'
                   and action in ('alert_channel.created', 'alert_channel.deleted')";
    assert_eq!(count(&app.pool, audited).await, 2);
}
