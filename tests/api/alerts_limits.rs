//! A mail channel cannot be turned on a stranger: a channel to an address
//! that is no verified member's gets one confirmation mail and nothing else
//! (no alert, no test) until its recipient confirms with the one-use link;
//! and "send test" is limited per channel and per organisation (429 with
//! `Retry-After`, in the API and on the page).

use std::time::Duration;

use serde_json::json;
use tokenvault::upstream::simulator::{SimConfig, WeChatSimulator};

use crate::alerts::{Receiver, alert_settings};
use crate::alerts_email::{alert_mails, settings};
use crate::apps::{APPID, OTHER_SECRET, SECRET};
use crate::helpers::{Browser, SmtpSink, post_signed_out_form, spawn_app_with_settings};
use crate::refresh::{json_of, register};

/// The token of the confirmation link in a mail.
fn confirm_token(mail: &str) -> String {
    let text = mail.replace("=\r\n", "").replace("=3D", "=");
    let marker = "/confirm-alert-mail?token=";
    let start = text.find(marker).expect("a confirmation link") + marker.len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

async fn test_status(owner: &Browser, id: &str) -> (u16, serde_json::Value) {
    let res = owner
        .post_json(&format!("/api/v1/alert-channels/{id}/test"), &json!({}))
        .await;
    (res.status().as_u16(), json_of(res).await)
}

#[tokio::test]
async fn a_mail_channel_to_a_stranger_sends_nothing_until_the_address_confirms() {
    let Some(sink) = SmtpSink::start(0, 0) else {
        return;
    };
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    let mut s = alert_settings(&sim.base_url());
    let mail = settings(&sink.url());
    s.mail = mail.mail;
    s.alerts.summary_gather_seconds = 0;
    let app = spawn_app_with_settings(s).await;
    let owner = app.signup("Confirm Co", "owner@confirm.test").await;
    let body = json!({ "kind": "email", "name": "Stranger", "to": "someone@elsewhere.test" });
    let res = owner.post_json("/api/v1/alert-channels", &body).await;
    assert_eq!(res.status(), 201);
    let channel = json_of(res).await;
    assert_eq!(channel["confirmed"], false, "{channel}");
    let id = channel["id"].as_str().unwrap().to_string();

    // Only the confirmation mail; no test, no alert.
    let (status, problem) = test_status(&owner, &id).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "channel_unconfirmed");
    let mails = sink.wait_for(2).await;
    let confirmation: Vec<&String> = mails
        .iter()
        .filter(|m| m.contains("X-Envelope-To: someone@elsewhere.test"))
        .collect();
    assert_eq!(confirmation.len(), 1, "{mails:?}");
    assert!(
        confirmation[0].contains("owner@confirm.test"),
        "names who asked"
    );
    let token = confirm_token(confirmation[0]);
    register(&owner, json!({ "appid": APPID, "secret": OTHER_SECRET })).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let queued: i64 =
        sqlx::query_scalar("select count(*) from alert_deliveries where channel_id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(queued, 0, "no alert for an unconfirmed channel");
    assert_eq!(
        sink.received().len(),
        2,
        "the sign-up's and the confirmation"
    );
    let page = owner.get("/alerts").await.text().await.unwrap();
    assert!(
        page.contains("waiting for confirmation"),
        "the page says so"
    );
    assert!(
        !page.contains(&format!("/alerts/{id}/test")),
        "no test button"
    );

    // Opening the link shows a button; its POST confirms, once.
    let visitor = app.browser();
    let path = format!("/confirm-alert-mail?token={token}");
    let html = visitor.get(&path).await.text().await.unwrap();
    assert!(html.contains("Send me these alerts"), "{html}");
    let fields = [("token", token.as_str())];
    let confirm = || {
        post_signed_out_form(
            &visitor.client,
            &visitor.address,
            &path,
            "/confirm-alert-mail",
            &fields,
        )
    };
    let res = confirm().await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Alert mails confirmed"));
    let res = confirm().await;
    assert_eq!(res.status(), 400, "one use");
    let audit: i64 = sqlx::query_scalar(
        "select count(*) from audit_log where action = 'alert_channel.confirmed' and target = 'Stranger'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(audit, 1);

    // Confirmed: tests and alerts reach the address.
    let (status, test) = test_status(&owner, &id).await;
    assert_eq!(status, 200, "{test}");
    assert_eq!(test["status"], "delivered");
    // The app recovers, then fails again (each change seen before the
    // next: under load a refresh with the right secret may come after the
    // second edit, and the app would never have recovered).
    for (secret, health) in [(SECRET, "healthy"), (OTHER_SECRET, "failing")] {
        let res = owner
            .patch_json(
                &format!("/api/v1/apps/{APPID}"),
                &json!({ "secret": secret }),
            )
            .await;
        assert_eq!(res.status(), 200);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while json_of(owner.get(&format!("/api/v1/apps/{APPID}")).await).await["health"] != health {
            assert!(std::time::Instant::now() < deadline, "the app is {health}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let mails = alert_mails(&sink, 2).await;
    assert!(mails[1].contains("is failing"), "{}", mails[1]);
    assert!(
        mails
            .iter()
            .all(|m| m.contains("X-Envelope-To: someone@elsewhere.test")),
        "{mails:?}"
    );

    // Confirmation mails are limited per organisation and hour.
    for i in 0..4 {
        let body = json!({ "kind": "email", "name": format!("s{i}"), "to": format!("s{i}@elsewhere.test") });
        let res = owner.post_json("/api/v1/alert-channels", &body).await;
        assert_eq!(res.status(), 201);
    }
    let body = json!({ "kind": "email", "name": "s5", "to": "s5@elsewhere.test" });
    let res = owner.post_json("/api/v1/alert-channels", &body).await;
    assert_eq!(res.status(), 429);
    assert_eq!(json_of(res).await["code"], "too_many_confirmations");
    // A verified member's address needs no confirmation, so no limit.
    let body = json!({ "kind": "email", "name": "me", "to": "owner@confirm.test" });
    sqlx::query("update users set email_verified_at = now() where email = 'owner@confirm.test'")
        .execute(&app.pool)
        .await
        .unwrap();
    let res = owner.post_json("/api/v1/alert-channels", &body).await;
    assert_eq!(res.status(), 201);
    assert_eq!(json_of(res).await["confirmed"], true);
}

#[tokio::test]
async fn send_test_is_limited_per_channel_and_per_organisation() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    let receiver = Receiver::start();
    let app = spawn_app_with_settings(alert_settings(&sim.base_url())).await;
    let owner = app.signup("Test Co", "o@tests.test").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let body = json!({ "kind": "webhook", "name": format!("h{i}"),
                           "url": format!("{}/h{i}", receiver.base) });
        let res = owner.post_json("/api/v1/alert-channels", &body).await;
        assert_eq!(res.status(), 201);
        ids.push(json_of(res).await["id"].as_str().unwrap().to_string());
    }
    for _ in 0..3 {
        assert_eq!(test_status(&owner, &ids[0]).await.0, 200);
    }
    let res = owner
        .post_json(
            &format!("/api/v1/alert-channels/{}/test", ids[0]),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=61).contains(&wait), "{wait}");
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let problem = json_of(res).await;
    assert_eq!(problem["code"], "too_many_tests");
    assert_eq!(
        receiver.got("/h0").len(),
        3,
        "the refused test was not sent"
    );

    // The organisation's limit: 10 a minute over all its channels.
    for id in &ids[1..3] {
        for _ in 0..3 {
            assert_eq!(test_status(&owner, id).await.0, 200);
        }
    }
    assert_eq!(test_status(&owner, &ids[3]).await.0, 200);
    let (status, problem) = test_status(&owner, &ids[3]).await;
    assert_eq!(status, 429, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("per organisation")
    );

    // The page shows the refusal.
    let form = [("csrf_token", owner.csrf.as_str())];
    let res = owner
        .client
        .post(format!("{}/alerts/{}/test", owner.address, ids[3]))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let html = res.text().await.unwrap();
    assert!(
        html.contains("id=\"test-refused\"") && html.contains("Too many tests"),
        "{html}"
    );
    assert_eq!(receiver.got("/h3").len(), 1);
}

#[tokio::test]
async fn a_mail_channel_to_a_member_who_leaves_stops_until_created_again() {
    let Some(sink) = SmtpSink::start(0, 0) else {
        return;
    };
    let app = spawn_app_with_settings(settings(&sink.url())).await;
    let owner = app.signup("Leavers Co", "owner@leave.test").await;
    let admin = app.invite_and_join(&owner, "admin", "ops@leave.test").await;
    sqlx::query("update users set email_verified_at = now() where email = 'ops@leave.test'")
        .execute(&app.pool)
        .await
        .unwrap();
    drop(admin);
    let body = json!({ "kind": "email", "name": "Ops", "to": "OPS@leave.test" });
    let res = owner.post_json("/api/v1/alert-channels", &body).await;
    assert_eq!(res.status(), 201);
    let channel = json_of(res).await;
    assert_eq!(channel["confirmed"], true, "a verified member's address");
    let id = channel["id"].as_str().unwrap().to_string();

    // The member is removed: their address is a stranger's now.
    let members = json_of(owner.get("/api/v1/members").await).await;
    let member = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "ops@leave.test")
        .unwrap_or_else(|| panic!("{members}"))
        .clone();
    let res = owner
        .delete(&format!(
            "/api/v1/members/{}",
            member["id"].as_str().unwrap()
        ))
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    let channels = json_of(owner.get("/api/v1/alert-channels").await).await;
    let after = channels["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{channels}"))
        .clone();
    assert_eq!(after["confirmed"], false, "{after}");
    let (status, problem) = test_status(&owner, &id).await;
    assert_eq!(status, 409);
    assert_eq!(problem["code"], "channel_unconfirmed");
    let detail: serde_json::Value = sqlx::query_scalar(
        "select detail from audit_log where action = 'member.removed' order by created_at desc limit 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(detail["alert_channels_paused"], 1, "{detail}");
}
