//! Two-factor sign-in in a real headless Chromium: an owner enrols (the
//! codes computed here with the same crate an authenticator app would
//! use), signs out, signs in with a code, then with a recovery code.

use std::time::Duration;

use fantoccini::{Client, Locator};

use crate::browser::{fill, start_browser, submit, text_when};
use crate::helpers::totp::{code_at_step, current_step, next_code};
use crate::helpers::{PASSWORD, spawn_app_with_settings};

/// The text of the element `css`.
async fn text_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Sign in with the form, then give `code` on the second step.
async fn sign_in_with(
    client: &Client,
    base: &str,
    code: impl std::future::Future<Output = String>,
) {
    client.goto(&format!("{base}/login")).await.unwrap();
    fill(client, "f-email", "owner@two.test").await;
    fill(client, "f-password", PASSWORD).await;
    submit(client, "/login").await;
    // (The sign-in throttle slows an account's repeated sign-ins down.)
    client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("form[action='/login/two-factor']"))
        .await
        .unwrap();
    fill(client, "f-code", &code.await).await;
    submit(client, "/login/two-factor").await;
    let signed_in = client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("#summary, .empty"))
        .await;
    if let Err(e) = signed_in {
        let page = client.source().await.unwrap_or_default();
        panic!("not signed in ({e}): {page}");
    }
}

#[tokio::test]
async fn an_owner_enrols_and_signs_in_with_a_code_then_a_recovery_code() {
    let Some((_driver, client, _profile)) = start_browser().await else {
        return;
    };
    // Every code typed counts against the sign-in throttle, like a password:
    // room for this story's sign-ins within a minute.
    let mut settings = crate::helpers::default_settings();
    settings.login_attempts_per_account = 100;
    let app = spawn_app_with_settings(settings).await;
    app.signup("Two Factor Co", "owner@two.test").await;
    let url = |p: &str| format!("{}{p}", app.address);

    client.goto(&url("/login")).await.unwrap();
    fill(&client, "f-email", "owner@two.test").await;
    fill(&client, "f-password", PASSWORD).await;
    submit(&client, "/login").await;
    text_when(&client, ".empty").await;

    // Enrol: a QR code drawn by the server, and the secret to type.
    client.goto(&url("/account/two-factor")).await.unwrap();
    text_when(&client, "form[action='/account/two-factor/enrol']").await;
    submit(&client, "/account/two-factor/enrol").await;
    text_when(&client, "figure.qr svg").await;
    let secret = text_of(&client, "#totp-secret").await;
    assert_eq!(secret.len(), 32, "{secret}");
    // A wrong code first: refused, the QR code shown again.
    fill(&client, "f-code", "000000").await;
    submit(&client, "/account/two-factor/confirm").await;
    let text = text_when(&client, "#f-code-e").await;
    assert!(text.contains("This code is wrong"), "{text}");
    assert_eq!(text_of(&client, "#totp-secret").await, secret);
    // The authenticator's code now turns it on; the recovery codes, once.
    fill(&client, "f-code", &code_at_step(&secret, current_step())).await;
    submit(&client, "/account/two-factor/confirm").await;
    text_when(&client, "#recovery-codes").await;
    let codes: Vec<String> = text_of(&client, "#recovery-codes")
        .await
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(codes.len(), 10, "{codes:?}");
    client.goto(&url("/account/two-factor")).await.unwrap();
    let text = text_when(&client, "#totp-state").await;
    assert!(text.contains("Unused recovery codes: 10"), "{text}");
    assert!(!text.contains(&codes[0]), "shown only once");

    // Sign out, then in with a code of the authenticator.
    submit(&client, "/logout").await;
    text_when(&client, "form[action='/login']").await;
    sign_in_with(
        &client,
        &app.address,
        next_code(&app.pool, "owner@two.test"),
    )
    .await;

    // Sign out, then in with a recovery code; it is spent.
    submit(&client, "/logout").await;
    text_when(&client, "form[action='/login']").await;
    let recovery = codes[0].clone();
    sign_in_with(&client, &app.address, async move { recovery }).await;
    client.goto(&url("/account/two-factor")).await.unwrap();
    let text = text_when(&client, "#totp-state").await;
    assert!(text.contains("Unused recovery codes: 9"), "{text}");
    let used: i64 = sqlx::query_scalar(
        "select count(*) from audit_log where action = 'totp.recovery_code_used'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(used, 1);
    client.close().await.unwrap();
}
