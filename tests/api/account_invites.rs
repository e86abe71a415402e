//! Invites by mail: an invite created with an email is mailed to it, with
//! a link of its own; joining through that link verifies the address, and
//! joining through the link shown to the inviter does not (a verification
//! mail goes out instead). Over real HTTP, PostgreSQL and a real SMTP
//! server.

use serde_json::{Value, json};

use crate::account_security::app_with_sink;
use crate::helpers::{Browser, PASSWORD, TestApp};

const BANNER: &str = "is not verified yet";

/// The token of the `http://vault.test/invite/…` link in `message`.
fn invite_token(message: &str) -> String {
    let text = message.replace("=\r\n", "").replace("=3D", "=");
    let marker = "http://vault.test/invite/";
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("no invite link in {text}"))
        + marker.len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

async fn invite(owner: &Browser, email: &str) -> String {
    let res = owner
        .post_json(
            "/api/v1/invites",
            &json!({ "role": "viewer", "email": email }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    body["token"].as_str().expect("token").to_string()
}

async fn join(app: &TestApp, token: &str, email: &str) -> (u16, Browser) {
    let mut b = Browser::new(&app.address);
    let res = b
        .post_json(
            "/api/v1/invites/accept",
            &json!({ "token": token, "email": email, "password": PASSWORD }),
        )
        .await;
    let status = res.status().as_u16();
    if status == 201 {
        let body: Value = res.json().await.unwrap();
        b.csrf = body["csrf_token"].as_str().unwrap().to_string();
    }
    (status, b)
}

async fn dashboard(b: &Browser) -> String {
    let res = b.get("/dashboard").await;
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

#[tokio::test]
async fn only_the_mailed_invite_link_verifies_the_address() {
    let Some((sink, app)) = app_with_sink().await else {
        return;
    };
    let owner = app.signup("Invite Org", "owner@invite.test").await;
    sink.wait_for(1).await;

    // An invite with an email is mailed, with a link other than the one shown.
    let shown = invite(&owner, "mailed@invite.test").await;
    let mails = sink.wait_for(2).await;
    let mail = &mails[1].replace("=\r\n", "");
    assert!(mail.contains("X-Envelope-To: mailed@invite.test"), "{mail}");
    assert!(mail.contains("Invite Org"), "{mail}");
    assert!(mail.contains("owner@invite.test"), "the inviter is named");
    let mailed = invite_token(mail);
    assert!(mailed.len() >= 32);
    assert_ne!(mailed, shown, "the mailed link is not the one shown");
    assert!(!mail.contains(&shown));

    // Joining through the mailed link verifies the address.
    let (status, member) = join(&app, &mailed, "mailed@invite.test").await;
    assert_eq!(status, 201);
    assert!(!dashboard(&member).await.contains(BANNER));
    let (status, _) = join(&app, &shown, "mailed@invite.test").await;
    assert_eq!(status, 404, "one invite, one join, whichever link");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(sink.received().len(), 2, "no verification mail needed");

    // Joining through the shown (copied) link leaves the address unverified,
    // and mails a verification link to it.
    let shown = invite(&owner, "copied@invite.test").await;
    sink.wait_for(3).await;
    let (status, _) = join(&app, &shown, "someone.else@invite.test").await;
    assert_eq!(status, 422, "an invite bound to an email takes no other");
    let (status, member) = join(&app, &shown, "copied@invite.test").await;
    assert_eq!(status, 201);
    assert!(dashboard(&member).await.contains(BANNER));
    let mails = sink.wait_for(4).await;
    assert!(mails[3].contains("X-Envelope-To: copied@invite.test"));
    assert!(mails[3].contains("/verify-email?token"), "{}", mails[3]);

    // An invite without an email mails nothing.
    let res = owner
        .post_json("/api/v1/invites", &json!({ "role": "viewer" }))
        .await;
    assert_eq!(res.status(), 201);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(sink.received().len(), 4);

    let log: Value = owner
        .get("/api/v1/audit-log?limit=100")
        .await
        .json()
        .await
        .unwrap();
    let verified: Vec<&Value> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "email.verified")
        .collect();
    assert_eq!(verified.len(), 1, "{verified:?}");
    assert_eq!(verified[0]["target"], "mailed@invite.test");
}

#[tokio::test]
async fn the_members_page_says_the_invite_was_mailed() {
    let Some((sink, app)) = app_with_sink().await else {
        return;
    };
    let owner = app.signup("Invite Page Org", "owner@invitepage.test").await;
    let res = owner
        .client
        .post(format!("{}/members/invite", owner.address))
        .form(&[
            ("csrf_token", owner.csrf.as_str()),
            ("email", "new@invitepage.test"),
            ("role", "admin"),
        ])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let html = res.text().await.unwrap();
    assert!(
        html.contains("We also mailed an invitation to new@invitepage.test"),
        "{html}"
    );
    let mails = sink.wait_for(2).await;
    let mail = mails
        .iter()
        .find(|m| m.contains("X-Envelope-To: new@invitepage.test"))
        .expect("the invite mail")
        .replace("=\r\n", "");
    assert!(mail.contains("as admin"), "{mail}");
}
