//! The way back into an account, in a real headless Chromium against a real
//! SMTP server: a new owner signs up, sees the unverified banner, verifies
//! the address with the link from the mail, forgets the password, resets it
//! with the link from the next mail, and signs in with the new one.

use fantoccini::{Client, Locator};

use crate::account_security::{app_with_sink, link_token};
use crate::browser::{fill, start_browser, submit, text_when};
use crate::helpers::PASSWORD;

const EMAIL: &str = "owner@recovery.test";
const NEW_PASSWORD: &str = "a passphrase chosen after forgetting";

/// Whether an element matching `css` is on the page now.
async fn present(client: &Client, css: &str) -> bool {
    !client.find_all(Locator::Css(css)).await.unwrap().is_empty()
}

#[tokio::test]
async fn an_owner_verifies_the_address_and_resets_a_forgotten_password_by_mail() {
    let Some((_driver, client, _profile)) = start_browser().await else {
        return;
    };
    let Some((sink, app)) = app_with_sink().await else {
        panic!(
            "the SMTP test server (aiosmtpd in tests/mail/.venv) is missing: .ci/run installs it"
        );
    };
    let url = |p: &str| format!("{}{p}", app.address);

    // Sign up in the browser: the banner says the address is not verified.
    client.goto(&url("/signup")).await.unwrap();
    fill(&client, "f-organization", "Recovery Co").await;
    fill(&client, "f-email", EMAIL).await;
    fill(&client, "f-password", PASSWORD).await;
    submit(&client, "/signup").await;
    let text = text_when(&client, ".banner-unverified").await;
    assert!(text.contains(EMAIL), "{text}");

    // The link from the verification mail, opened in the same browser.
    let mails = sink.wait_for(1).await;
    assert!(mails[0].contains(&format!("X-Envelope-To: {EMAIL}")));
    let token = link_token(&mails[0], "verify-email");
    client
        .goto(&url(&format!("/verify-email?token={token}")))
        .await
        .unwrap();
    text_when(&client, "form[action='/verify-email']").await;
    submit(&client, "/verify-email").await;
    let text = text_when(&client, "#recovery-done").await;
    assert!(text.contains("Your email address is verified"), "{text}");
    client.goto(&url("/dashboard")).await.unwrap();
    text_when(&client, "main").await;
    assert!(!present(&client, ".banner-unverified").await, "banner gone");

    // Forgotten: sign out, ask for a reset link.
    submit(&client, "/logout").await;
    text_when(&client, "form[action='/login']").await;
    client.goto(&url("/forgot")).await.unwrap();
    text_when(&client, "form[action='/forgot']").await;
    fill(&client, "f-email", EMAIL).await;
    submit(&client, "/forgot").await;
    let text = text_when(&client, "#recovery-done").await;
    assert!(text.contains("a link to choose a new password"), "{text}");

    // The reset link from the second mail: choose the new password.
    let mails = sink.wait_for(2).await;
    let token = link_token(&mails[1], "reset");
    client
        .goto(&url(&format!("/reset?token={token}")))
        .await
        .unwrap();
    text_when(&client, "form[action='/reset']").await;
    fill(&client, "f-password", NEW_PASSWORD).await;
    submit(&client, "/reset").await;
    let text = text_when(&client, "#recovery-done").await;
    assert!(text.contains("Your new password is set"), "{text}");

    // The link works once.
    client
        .goto(&url(&format!("/reset?token={token}")))
        .await
        .unwrap();
    text_when(&client, "form[action='/reset']").await;
    fill(&client, "f-password", "yet another passphrase").await;
    submit(&client, "/reset").await;
    let text = text_when(&client, ".form-error").await;
    assert!(text.contains("This link is not valid"), "{text}");
    assert!(!present(&client, "#recovery-done").await, "{text}");

    // The old password no longer signs in; the new one does.
    client.goto(&url("/login")).await.unwrap();
    fill(&client, "f-email", EMAIL).await;
    fill(&client, "f-password", PASSWORD).await;
    submit(&client, "/login").await;
    let text = text_when(&client, ".form-error").await;
    assert!(!present(&client, ".empty").await, "{text}");
    fill(&client, "f-email", EMAIL).await;
    fill(&client, "f-password", NEW_PASSWORD).await;
    submit(&client, "/login").await;
    text_when(&client, ".empty").await;
    client.close().await.unwrap();
}
