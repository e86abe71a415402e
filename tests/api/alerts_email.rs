//! Mail alerts through the service's one mailer, against the real SMTP
//! sink the mail tests use: a `members` channel mails every verified owner
//! and admin (each in their language; never a viewer or an unverified
//! address), an address channel mails that address; bad input is a field
//! error.

use serde_json::json;

use crate::helpers::{SmtpSink, settings_from, spawn_app_with_settings};
use crate::refresh::json_of;

pub(crate) fn settings(smtp: &str) -> tokenvault::config::Settings {
    let mut s = settings_from(&[
        "--smtp-url",
        smtp,
        "--mail-from",
        "tokenvault <noreply@vault.test>",
        "--mail-send-seconds",
        "1",
    ]);
    s.public_url = Some("https://vault.example.com".parse().unwrap());
    s
}

/// The alert mails the sink got (not the sign-up's verification mail nor
/// a channel's confirmation), once there are `n` (at most 30 s).
pub(crate) async fn alert_mails(sink: &SmtpSink, n: usize) -> Vec<String> {
    for _ in 0..300 {
        let alerts: Vec<String> = sink
            .received()
            .into_iter()
            .filter(|m| {
                let m = m.replace("=\r\n", "");
                !m.contains("verify-email?token") && !m.contains("confirm-alert-mail?token")
            })
            .collect();
        if alerts.len() >= n {
            return alerts;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("fewer than {n} alert mails arrived within 30 s");
}

#[tokio::test]
async fn mail_alerts_reach_verified_owners_and_admins_in_their_language() {
    let Some(sink) = SmtpSink::start(0, 0) else {
        return;
    };
    let app = spawn_app_with_settings(settings(&sink.url())).await;
    let owner = app.signup("Mail Co", "owner@mail.test").await;
    app.invite_and_join(&owner, "admin", "admin@mail.test")
        .await;
    app.invite_and_join(&owner, "admin", "late@mail.test").await;
    let viewer = app
        .invite_and_join(&owner, "viewer", "viewer@mail.test")
        .await;
    sqlx::query(
        "update users set email_verified_at = now()
         where email in ('owner@mail.test', 'admin@mail.test', 'viewer@mail.test')",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("update users set language = 'zh-CN' where email = 'admin@mail.test'")
        .execute(&app.pool)
        .await
        .unwrap();

    // Bad input: an address that is none, a secret, a viewer.
    for (body, field) in [
        (
            json!({ "kind": "email", "name": "m", "to": "not an address" }),
            "to",
        ),
        (
            json!({ "kind": "email", "name": "m", "secret": "s3cret" }),
            "secret",
        ),
        (
            json!({ "kind": "email", "name": "m", "url": "https://example.com/" }),
            "url",
        ),
    ] {
        let res = owner.post_json("/api/v1/alert-channels", &body).await;
        assert_eq!(res.status(), 422, "{body}");
        let problem = json_of(res).await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let body = json!({ "kind": "email", "name": "m" });
    let res = viewer.post_json("/api/v1/alert-channels", &body).await;
    assert_eq!(res.status(), 403);

    // To the members: the verified owner and admin, not the viewer, not
    // the unverified admin.
    let res = owner
        .post_json(
            "/api/v1/alert-channels",
            &json!({ "kind": "email", "name": "Team mail" }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let channel = json_of(res).await;
    assert_eq!(channel["kind"], "email");
    assert_eq!(channel["url"], "members");
    let id = channel["id"].as_str().unwrap();
    let res = owner
        .post_json(&format!("/api/v1/alert-channels/{id}/test"), &json!({}))
        .await;
    let test = json_of(res).await;
    assert_eq!(test["status"], "delivered", "{test}");
    let answer = test["answer"].as_str().unwrap();
    assert!(
        answer.contains("queued 2 mail(s)")
            && answer.contains("owner@mail.test")
            && answer.contains("admin@mail.test"),
        "{answer}"
    );
    let received = alert_mails(&sink, 2).await;
    let to: Vec<bool> = ["owner@mail.test", "admin@mail.test"]
        .iter()
        .map(|a| {
            received
                .iter()
                .any(|m| m.contains(&format!("X-Envelope-To: {a}")))
        })
        .collect();
    assert_eq!(to, [true, true], "{received:?}");
    assert!(!received.iter().any(|m| m.contains("viewer@mail.test")));
    assert!(!received.iter().any(|m| m.contains("late@mail.test")));
    // Each in their language (the subjects, as the outbox keeps them).
    let subjects: Vec<(String, String, String)> = sqlx::query_as(
        "select recipient, subject, kind from mail_outbox where kind = 'alert' order by recipient",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        subjects,
        [
            (
                "admin@mail.test".to_string(),
                "tokenvault：Mail Co 测试消息".to_string(),
                "alert".to_string()
            ),
            (
                "owner@mail.test".to_string(),
                "tokenvault: Mail Co test message".to_string(),
                "alert".to_string()
            ),
        ]
    );

    // To one address, a verified member's: confirmed at once (an address
    // outside the organisation must confirm first: `alerts_limits`).
    let body = json!({ "kind": "email", "name": "On call", "to": "Admin@Mail.test" });
    let res = owner.post_json("/api/v1/alert-channels", &body).await;
    assert_eq!(res.status(), 201);
    let channel = json_of(res).await;
    assert_eq!(channel["url"], "admin@mail.test");
    assert_eq!(channel["confirmed"], true);
    let id = channel["id"].as_str().unwrap();
    let res = owner
        .post_json(&format!("/api/v1/alert-channels/{id}/test"), &json!({}))
        .await;
    assert_eq!(json_of(res).await["status"], "delivered");
    let received = alert_mails(&sink, 3).await;
    assert!(
        received[2].contains("X-Envelope-To: admin@mail.test"),
        "{}",
        received[2]
    );
    assert!(received[2].contains("tokenvault"));
    // The log says what was queued.
    let res = owner
        .get(&format!("/api/v1/alert-channels/{id}/deliveries"))
        .await;
    let log = json_of(res).await;
    assert_eq!(log["items"][0]["type"], "test");
    assert_eq!(
        log["items"][0]["answer"],
        "queued 1 mail(s) to admin@mail.test"
    );
}
