//! Email verification, password reset by mail and password change, over
//! real HTTP, PostgreSQL and a real SMTP server (aiosmtpd).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{
    Browser, PASSWORD, SmtpSink, TestApp, settings_from, spawn_app, spawn_app_with_settings,
};

const NEW_PASSWORD: &str = "a brand new passphrase 42";

/// The token of the first `{base}/{page}?token=…` link in `message`.
pub(crate) fn link_token(message: &str, page: &str) -> String {
    let text = message.replace("=\r\n", "").replace("=3D", "=");
    let marker = format!("http://vault.test/{page}?token=");
    let start = text
        .find(&marker)
        .unwrap_or_else(|| panic!("no {page} link in {text}"))
        + marker.len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

pub(crate) async fn app_with_sink() -> Option<(SmtpSink, TestApp)> {
    let sink = SmtpSink::start(0, 0)?;
    let app = spawn_app_with_settings(settings_from(&[
        "--smtp-url",
        &sink.url(),
        "--public-url",
        "http://vault.test",
        "--mail-send-seconds",
        "1",
    ]))
    .await;
    Some((sink, app))
}

async fn post(app: &TestApp, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let res = app.browser().post_json(path, body).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

async fn actions(owner: &Browser) -> Vec<String> {
    let log: serde_json::Value = owner
        .get("/api/v1/audit-log?limit=100")
        .await
        .json()
        .await
        .expect("log");
    log["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn verify_the_address_then_reset_the_forgotten_password_by_mail() {
    let Some((sink, app)) = app_with_sink().await else {
        return;
    };
    let owner = app.signup("Reset Org", "owner@example.com").await;
    let verify = sink.wait_for(1).await;
    assert!(verify[0].contains("X-Envelope-To: owner@example.com"));
    let verify_token = link_token(&verify[0], "verify-email");
    assert!(verify_token.len() >= 32, "{verify_token}");

    // Not verified yet: a reset request answers 202 and mails nothing.
    let (status, _) = post(
        &app,
        "/api/v1/password-reset",
        &json!({ "email": "owner@example.com" }),
    )
    .await;
    assert_eq!(status, 202);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        sink.received().len(),
        1,
        "a reset link to an unverified address"
    );

    // Tampered and foreign tokens are refused; the right one works once.
    for bad in ["", "nope", &format!("{verify_token}x")] {
        let (status, body) = post(
            &app,
            "/api/v1/email-verification/confirm",
            &json!({ "token": bad }),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid_token")),
            "{bad}"
        );
    }
    let (status, _) = post(
        &app,
        "/api/v1/email-verification/confirm",
        &json!({ "token": verify_token }),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = post(
        &app,
        "/api/v1/email-verification/confirm",
        &json!({ "token": verify_token }),
    )
    .await;
    assert_eq!(status, 400, "a verification link works once");

    // Same answer, same time, for an unknown email and a known one.
    let timed = |email: &'static str| {
        let app = &app;
        async move {
            let started = Instant::now();
            let (status, _) = post(app, "/api/v1/password-reset", &json!({ "email": email })).await;
            (status, started.elapsed())
        }
    };
    let (unknown, unknown_took) = timed("nobody@example.com").await;
    let (known, known_took) = timed("owner@example.com").await;
    assert_eq!((unknown, known), (202, 202));
    assert!(unknown_took >= Duration::from_millis(400) && known_took >= Duration::from_millis(400));
    let diff = unknown_took.abs_diff(known_took);
    assert!(
        diff < Duration::from_millis(250),
        "{unknown_took:?} vs {known_took:?}"
    );
    let reset = sink.wait_for(2).await;
    assert!(reset[1].contains("X-Envelope-To: owner@example.com"));
    let reset_token = link_token(&reset[1], "reset");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        sink.received().len(),
        2,
        "nothing mailed for the unknown email"
    );

    // A verification token is no reset token; a weak password is refused
    // and leaves the link usable.
    let confirm = |token: String, password: &'static str| {
        let app = &app;
        async move {
            post(
                app,
                "/api/v1/password-reset/confirm",
                &json!({ "token": token, "password": password }),
            )
            .await
        }
    };
    assert_eq!(confirm(verify_token.clone(), NEW_PASSWORD).await.0, 400);
    assert_eq!(
        confirm(format!("{reset_token}0"), NEW_PASSWORD).await.0,
        400
    );
    let (status, body) = confirm(reset_token.clone(), "short").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation_failed"))
    );
    assert_eq!(confirm(reset_token.clone(), NEW_PASSWORD).await.0, 204);
    assert_eq!(
        confirm(reset_token.clone(), "another new passphrase 43")
            .await
            .0,
        400,
        "used"
    );

    // Every session ended; the new password signs in, the old one not.
    assert_eq!(owner.get("/api/v1/session").await.status(), 401);
    let (status, _) = post(
        &app,
        "/api/v1/login",
        &json!({ "email": "owner@example.com", "password": PASSWORD }),
    )
    .await;
    assert_eq!(status, 401);
    let owner = app.login("owner@example.com", NEW_PASSWORD).await;
    let log = actions(&owner).await;
    for action in [
        "email.verified",
        "password.reset_requested",
        "password.reset",
    ] {
        assert!(log.iter().any(|a| a == action), "{action} not in {log:?}");
    }
}

#[tokio::test]
async fn reset_mails_are_throttled_per_account_and_expired_links_refused() {
    let Some((sink, app)) = app_with_sink().await else {
        return;
    };
    let _owner = app.signup("Throttle Org", "t@example.com").await;
    let token = link_token(&sink.wait_for(1).await[0], "verify-email");
    assert_eq!(
        post(
            &app,
            "/api/v1/email-verification/confirm",
            &json!({ "token": token })
        )
        .await
        .0,
        204
    );
    for _ in 0..5 {
        assert_eq!(
            post(
                &app,
                "/api/v1/password-reset",
                &json!({ "email": "T@Example.com" })
            )
            .await
            .0,
            202
        );
    }
    let received = sink.wait_for(4).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        sink.received().len(),
        4,
        "three reset mails an hour at most"
    );
    // An expired link is refused.
    let token = link_token(&received[3], "reset");
    sqlx::query("update email_links set expires_at = now() - interval '1 second' where purpose = 'reset_password'")
        .execute(&app.pool)
        .await
        .expect("expire");
    let (status, body) = post(
        &app,
        "/api/v1/password-reset/confirm",
        &json!({ "token": token, "password": NEW_PASSWORD }),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_token"))
    );
    // Malformed input is a clear client error.
    let (status, _) = post(
        &app,
        "/api/v1/password-reset",
        &json!({ "email": "not an email" }),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = post(&app, "/api/v1/password-reset", &json!({ "mail": "x" })).await;
    assert!((400..500).contains(&status));
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions_only() {
    let app = spawn_app().await;
    let here = app.signup("Change Org", "c@example.com").await;
    let elsewhere = app.login("c@example.com", PASSWORD).await;
    let change = |current: &'static str, new: &'static str| {
        let here = &here;
        async move {
            let res = here
                .post_json(
                    "/api/v1/account/password",
                    &json!({ "current_password": current, "new_password": new }),
                )
                .await;
            let status = res.status().as_u16();
            (
                status,
                res.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let (status, body) = change("wrong password here", NEW_PASSWORD).await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["field"], "current_password");
    let (status, body) = change(PASSWORD, "password").await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["field"], "new_password");
    assert_eq!(
        elsewhere.get("/api/v1/session").await.status(),
        200,
        "nothing changed yet"
    );
    assert_eq!(change(PASSWORD, NEW_PASSWORD).await.0, 204);
    assert_eq!(
        here.get("/api/v1/session").await.status(),
        200,
        "this session stays"
    );
    assert_eq!(
        elsewhere.get("/api/v1/session").await.status(),
        401,
        "the other one ended"
    );
    let again = app.login("c@example.com", NEW_PASSWORD).await;
    assert!(
        actions(&again)
            .await
            .iter()
            .any(|a| a == "password.changed")
    );
    // Without a session: refused.
    let (status, _) = post(
        &app,
        "/api/v1/account/password",
        &json!({ "current_password": NEW_PASSWORD, "new_password": PASSWORD }),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_pages_behind_the_mailed_links_verify_and_reset() {
    let Some((sink, app)) = app_with_sink().await else {
        return;
    };
    let _owner = app.signup("Pages Org", "pages@example.com").await;
    let token = link_token(&sink.wait_for(1).await[0], "verify-email");
    let browser = app.browser();
    let form = |path: &'static str, fields: Vec<(&'static str, String)>| {
        let browser = &browser;
        async move {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let res = crate::helpers::post_signed_out_form(
                &browser.client,
                &browser.address,
                "/forgot",
                path,
                &fields,
            )
            .await;
            (res.status().as_u16(), res.text().await.expect("page"))
        }
    };
    // Opening the link only shows a button; the POST verifies.
    let page = browser
        .get(&format!("/verify-email?token={token}"))
        .await
        .text()
        .await
        .expect("page");
    assert!(
        page.contains(&token) && page.contains("Verify my address"),
        "{page}"
    );
    let (status, page) = form("/verify-email", vec![("token", token.clone())]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Address verified"));
    let (status, page) = form("/verify-email", vec![("token", token.clone())]).await;
    assert_eq!(status, 400);
    assert!(page.contains("This link is not valid"));

    // Forgot: the same page whatever the email; the mail links to /reset.
    let login = browser.get("/login").await.text().await.expect("page");
    assert!(login.contains("href=\"/forgot\""));
    for email in ["nobody@example.com", "pages@example.com"] {
        let (status, page) = form("/forgot", vec![("email", email.to_string())]).await;
        assert_eq!(status, 200);
        assert!(page.contains("Check your mail"), "{page}");
    }
    let reset = link_token(&sink.wait_for(2).await[1], "reset");
    let page = browser
        .get(&format!("/reset?token={reset}"))
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("Choose a new password") && page.contains(&reset));
    let (status, page) = form(
        "/reset",
        vec![("token", reset.clone()), ("password", "short".into())],
    )
    .await;
    assert_eq!(status, 422, "{page}");
    let (status, page) = form(
        "/reset",
        vec![("token", reset.clone()), ("password", NEW_PASSWORD.into())],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Password changed"));
    app.login("pages@example.com", NEW_PASSWORD).await;
}
