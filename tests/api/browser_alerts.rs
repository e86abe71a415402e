//! Alerts in a real headless Chromium, against receivers started by the
//! test: an owner opens the alerts page from the navigation, gets a field
//! error for a URL with credentials, adds a signed webhook channel and a
//! WeCom group-robot channel, sends a test to each and reads the target's
//! answer on the page (the robot's 200-with-errcode answer as a failure,
//! then delivered on retry in the delivery log). The secret never appears
//! on a page. Screenshot: `alerts` (see `browser.rs` for where).

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use tokenvault::upstream::simulator::{SimConfig, WeChatSimulator};

use crate::alerts::{HOOK_SECRET, Receiver, alert_settings, assert_signed};
use crate::browser::{click_link, fill, shot, start_browser, submit, text_when};
use crate::helpers::{PASSWORD, spawn_app_with_settings};

async fn source(client: &Client) -> String {
    client.source().await.expect("page source")
}

async fn choose_kind(client: &Client, kind: &str) {
    client
        .find(Locator::Id("f-kind"))
        .await
        .unwrap()
        .select_by_value(kind)
        .await
        .unwrap();
}

/// Press "Send test" on the row of channel `name`; the page's text after.
async fn send_test(client: &Client, name: &str) -> String {
    let row = client
        .find(Locator::XPath(&format!(
            "//table[contains(@class,'channels')]//tr[td/a[text()='{name}']]"
        )))
        .await
        .unwrap_or_else(|e| panic!("no row for {name}: {e}"));
    row.find(Locator::Css("form[action$='/test'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    text_when(client, "#test-result").await
}

#[tokio::test]
async fn an_owner_adds_a_webhook_and_a_wecom_robot_and_reads_their_answers() {
    let Some((_driver, client, _profile)) = start_browser().await else {
        return;
    };
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    let hook = Receiver::start();
    let robot = Receiver::start();
    let app = spawn_app_with_settings(alert_settings(&sim.base_url())).await;
    let url = |p: &str| format!("{}{p}", app.address);

    client.goto(&url("/signup")).await.unwrap();
    fill(&client, "f-organization", "Alerting Co").await;
    fill(&client, "f-email", "owner@alerting.test").await;
    fill(&client, "f-password", PASSWORD).await;
    submit(&client, "/signup").await;
    text_when(&client, ".empty").await;

    // From the navigation; no channel yet.
    click_link(&client, "Alerts").await;
    let text = text_when(&client, "form[action='/alerts']").await;
    assert!(text.contains("No alert channels yet"), "{text}");

    // A URL with credentials: a field error on the form, nothing stored.
    fill(&client, "f-name", "Ops hook").await;
    fill(&client, "f-url", "https://user:pw@hooks.example.com/x").await;
    submit(&client, "/alerts").await;
    let text = text_when(&client, "#e-url").await;
    assert!(text.contains("Remove the user name and password"), "{text}");
    assert!(text.contains("No alert channels yet"), "{text}");

    // A signed webhook.
    fill(&client, "f-name", "Ops hook").await;
    fill(&client, "f-url", &format!("{}/hooks/tokenvault", hook.base)).await;
    fill(&client, "f-secret", HOOK_SECRET).await;
    submit(&client, "/alerts").await;
    let text = text_when(&client, ".flash").await;
    assert!(text.contains("Alert channel added: Ops hook"), "{text}");

    // A WeCom group robot: its key is masked on the page.
    choose_kind(&client, "wecom").await;
    fill(&client, "f-name", "On-call group").await;
    let robot_url = format!("{}/cgi-bin/webhook/send?key=robot-key-0042", robot.base);
    fill(&client, "f-url", &robot_url).await;
    submit(&client, "/alerts").await;
    let text = text_when(&client, ".flash").await;
    assert!(
        text.contains("Alert channel added: On-call group"),
        "{text}"
    );
    assert!(text.contains("WeCom group robot"), "{text}");
    let html = source(&client).await;
    assert!(
        !html.contains("robot-key-0042"),
        "the robot's key is masked"
    );
    assert!(!html.contains(HOOK_SECRET), "the secret is never shown");

    // Test the webhook: the receiver's answer is on the page.
    hook.script(&[(200, r#"{"received":"tv-browser-check"}"#)]);
    let text = send_test(&client, "Ops hook").await;
    assert!(text.contains("Test sent to Ops hook"), "{text}");
    assert!(text.contains("delivered"), "{text}");
    assert!(text.contains("tv-browser-check"), "{text}");
    let got = hook.got("/hooks/tokenvault");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("X-Tokenvault-Event"), Some("test"));
    assert_signed(&got[0], HOOK_SECRET);
    shot(&client, "alerts").await;

    // Test the robot: its 200 with an errcode is a failed delivery, shown.
    robot.script(&[(200, r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#)]);
    let text = send_test(&client, "On-call group").await;
    assert!(text.contains("failed, will retry"), "{text}");
    assert!(text.contains("93000"), "{text}");
    let got = robot.got("/cgi-bin/webhook/send");
    assert_eq!(got[0].json()["msgtype"], "markdown");
    assert!(got[0].query.contains("key=robot-key-0042"));

    // The delivery log: the retry (after a second) is delivered, same id.
    click_link(&client, "On-call group").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = text_when(&client, "#log-h").await;
        if text.contains("delivered") {
            assert!(text.contains(r#"{"errcode":0,"errmsg":"ok"}"#), "{text}");
            assert!(text.contains("(2 attempts)"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "never delivered: {text}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        client.refresh().await.unwrap();
    }
    let got = robot.got("/cgi-bin/webhook/send");
    assert_eq!(got.len(), 2, "one retry, then nothing");
    assert_eq!(got[0].body, got[1].body);
    assert!(!source(&client).await.contains(HOOK_SECRET));

    // The audit log names both channels' creation and tests, never a secret.
    let audit: Vec<(String, String, String)> = sqlx::query_as(
        "select action, target, detail::text from audit_log
         where action like 'alert_channel.%' order by id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|(a, t, _)| (a.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("alert_channel.created", "Ops hook"),
            ("alert_channel.created", "On-call group"),
            ("alert_channel.tested", "Ops hook"),
            ("alert_channel.tested", "On-call group"),
        ]
    );
    for (_, _, detail) in &audit {
        assert!(
            !detail.contains(HOOK_SECRET) && !detail.contains("robot-key-0042"),
            "{detail}"
        );
    }

    client.close().await.unwrap();
}
