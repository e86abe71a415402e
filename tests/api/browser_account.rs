//! The account page in a real headless Chromium: the owner signs up, a
//! second session signs in over HTTP, the owner sees both sessions on the
//! account page, ends the other one, then changes the password. Screenshot:
//! `account` (see `browser.rs` for where).

use fantoccini::Locator;

use crate::browser::{click_link, fill, shot, start_browser, submit, text_when, text_with};
use crate::helpers::{PASSWORD, spawn_app};

const NEW_PASSWORD: &str = "a brand new passphrase 42";

#[tokio::test]
async fn an_owner_ends_another_session_and_changes_the_password_in_the_browser() {
    let Some((_driver, client, _profile)) = start_browser().await else {
        return;
    };
    let app = spawn_app().await;
    let url = |p: &str| format!("{}{p}", app.address);

    client.goto(&url("/signup")).await.unwrap();
    fill(&client, "f-organization", "Acme Mini Shop").await;
    fill(&client, "f-email", "owner@acme.test").await;
    fill(&client, "f-password", PASSWORD).await;
    submit(&client, "/signup").await;
    text_when(&client, ".empty").await;

    // A second session, over HTTP.
    let other = app.login("owner@acme.test", PASSWORD).await;
    assert_eq!(other.get("/api/v1/session").await.status(), 200);

    // The account page from the header: both sessions, this one marked.
    click_link(&client, "Account").await;
    let text = text_when(&client, "#sessions").await;
    assert!(text.contains("owner@acme.test"), "{text}");
    assert!(text.contains("Not verified"), "{text}");
    assert!(text.contains("This session"), "{text}");
    assert!(text.contains("Chrome on Linux"), "{text}");
    assert!(text.contains("Unknown browser"), "the HTTP client: {text}");
    let rows = client
        .find_all(Locator::Css("#sessions tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    shot(&client, "account").await;

    // End the other one.
    let other_row = client
        .find(Locator::Css("#sessions tbody tr:not(.current)"))
        .await
        .unwrap();
    let id = other_row
        .attr("data-session")
        .await
        .unwrap()
        .expect("session id");
    submit(&client, &format!("/account/sessions/{id}/end")).await;
    text_with(&client, "The session has ended.").await;
    let rows = client
        .find_all(Locator::Css("#sessions tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(other.get("/api/v1/session").await.status(), 401);

    // A wrong current password says so by the field.
    fill(&client, "f-current_password", "not my password").await;
    fill(&client, "f-new_password", NEW_PASSWORD).await;
    submit(&client, "/account/password").await;
    text_when(&client, "#e-current_password").await;
    let error = client
        .find(Locator::Id("e-current_password"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(error, "This is not your current password.");

    // The right one changes it; this session stays signed in.
    fill(&client, "f-current_password", PASSWORD).await;
    fill(&client, "f-new_password", NEW_PASSWORD).await;
    submit(&client, "/account/password").await;
    text_with(&client, "Your password is changed").await;
    let again = app.login("owner@acme.test", NEW_PASSWORD).await;
    assert_eq!(again.get("/api/v1/session").await.status(), 200);
    client.close().await.unwrap();
}
