//! Unverified people see a banner on every signed-in page, with a "send
//! again" button that is throttled; the banner goes once the mailed link
//! is used. Over real HTTP, PostgreSQL and a real SMTP server.

use serde_json::json;

use crate::account_security::{app_with_sink, link_token};
use crate::helpers::Browser;

const BANNER: &str = "is not verified yet";

async fn page(b: &Browser, path: &str) -> String {
    let res = b.get(path).await;
    assert_eq!(res.status(), 200, "{path}");
    res.text().await.unwrap()
}

/// Press the banner's button; the page it leads to (the account page).
async fn send_again(b: &Browser) -> String {
    let res = b
        .client
        .post(format!("{}/account/verification", b.address))
        .form(&[("csrf_token", b.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.url().path(), "/account");
    res.text().await.unwrap()
}

#[tokio::test]
async fn unverified_people_see_a_banner_until_they_use_the_mailed_link() {
    let Some((sink, app)) = app_with_sink().await else {
        return;
    };
    let owner = app.signup("Banner Org", "owner@banner.test").await;
    sink.wait_for(1).await;

    for path in ["/dashboard", "/keys", "/members", "/status", "/audit"] {
        let html = page(&owner, path).await;
        assert!(html.contains(BANNER), "no banner on {path}");
        assert!(html.contains("owner@banner.test is not verified yet"));
        assert!(html.contains("action=\"/account/verification\""));
    }
    // The account page says it in its own section instead.
    let html = page(&owner, "/account").await;
    assert!(!html.contains(BANNER));
    assert!(html.contains("Not verified"));

    // "Send again" mails a new link, then is throttled (three an hour,
    // the sign-up's included), without mailing more.
    let html = send_again(&owner).await;
    assert!(
        html.contains("a new verification link is on its way"),
        "{html}"
    );
    send_again(&owner).await;
    let mails = sink.wait_for(3).await;
    let html = send_again(&owner).await;
    assert!(
        html.contains("Several verification mails were sent this hour"),
        "{html}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(sink.received().len(), 3, "throttled: nothing more mailed");
    // A stale form (another session's token) mails nothing.
    let res = owner
        .client
        .post(format!("{}/account/verification", owner.address))
        .form(&[("csrf_token", "not this session's token")])
        .send()
        .await
        .unwrap();
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("This form was out of date")
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(sink.received().len(), 3);

    // The latest link verifies the address: no banner any more.
    let token = link_token(&mails[2], "verify-email");
    let res = app
        .browser()
        .post_json(
            "/api/v1/email-verification/confirm",
            &json!({ "token": token }),
        )
        .await;
    assert_eq!(res.status(), 204);
    let html = page(&owner, "/dashboard").await;
    assert!(!html.contains(BANNER));
    assert!(!html.contains("action=\"/account/verification\""));
    let html = page(&owner, "/account").await;
    assert!(html.contains("Verified"));
}
