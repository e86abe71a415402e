//! People in a real headless Chromium: an owner signs up, registers an app
//! against the simulator and invites a viewer on the members page; the
//! viewer accepts the invite in the browser and sees the dashboard and the
//! app page without any secret; the owner finds the invite in the audit
//! log. Screenshots: `members` and `audit` (see `browser.rs` for where).

use fantoccini::{Client, Locator};
use tokenvault::upstream::simulator::{SimConfig, TokenKind, WeChatSimulator};

use crate::apps::APPID;
use crate::browser::{click_link, fill, shot, start_browser, submit, text_when};
use crate::helpers::{PASSWORD, spawn_app_with_sim};

/// This test's AppSecret: its last four characters appear nowhere else on
/// the pages, so a leaked hint (`***b1a0`) would be seen.
const SECRET: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a0";

async fn source(client: &Client) -> String {
    client.source().await.expect("page source")
}

#[tokio::test]
async fn an_invited_viewer_joins_in_the_browser_and_sees_no_secrets() {
    let Some((_driver, client, _profile)) = start_browser().await else {
        return;
    };
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let url = |p: &str| format!("{}{p}", app.address);

    // The owner signs up and registers an app.
    client.goto(&url("/signup")).await.unwrap();
    fill(&client, "f-organization", "Acme Mini Shop").await;
    fill(&client, "f-email", "owner@acme.test").await;
    fill(&client, "f-password", PASSWORD).await;
    submit(&client, "/signup").await;
    text_when(&client, ".empty").await;
    client.goto(&url("/apps/new")).await.unwrap();
    fill(&client, "f-appid", APPID).await;
    fill(&client, "f-secret", SECRET).await;
    fill(&client, "f-name", "Acme Shop").await;
    submit(&client, "/apps/new").await;
    let text = text_when(&client, ".flash").await;
    assert!(text.contains("WeChat accepted the credentials"), "{text}");

    // Members page from the nav: alone, so it teaches how to invite.
    click_link(&client, "Members").await;
    let text = text_when(&client, "form[action='/members/invite']").await;
    assert!(text.contains("You are the only member so far"), "{text}");
    assert!(text.contains("No pending invites"), "{text}");
    fill(&client, "f-email", "viewer@acme.test").await;
    client
        .find(Locator::Id("f-role"))
        .await
        .unwrap()
        .select_by_value("viewer")
        .await
        .unwrap();
    submit(&client, "/members/invite").await;
    let text = text_when(&client, "#invite-link").await;
    assert!(text.contains("shown only this once"), "{text}");
    let link = client
        .find(Locator::Id("invite-link"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(link.starts_with(&url("/invite/")), "{link}");
    client
        .find(Locator::Css("button.copy[data-copy='invite-link']"))
        .await
        .expect("a copy button");
    assert!(text.contains("viewer@acme.test"));
    shot(&client, "members").await;

    // The owner signs out; the viewer opens the link in the same browser.
    submit(&client, "/logout").await;
    text_when(&client, "form[action='/login']").await;
    client.goto(&link).await.unwrap();
    let text = text_when(&client, "#f-password").await;
    assert!(text.contains("Acme Mini Shop"), "{text}");
    let email = client.find(Locator::Id("f-email")).await.unwrap();
    assert_eq!(
        email.attr("value").await.unwrap().as_deref(),
        Some("viewer@acme.test")
    );
    assert!(email.attr("readonly").await.unwrap().is_some());
    fill(&client, "f-password", PASSWORD).await;
    let action = link.strip_prefix(&app.address).unwrap().to_string();
    submit(&client, &action).await;
    let text = text_when(&client, ".flash").await;
    assert!(text.contains("You joined as a viewer"), "{text}");
    assert!(
        text.contains("Acme Shop"),
        "the dashboard lists the app: {text}"
    );

    // Nothing secret anywhere the viewer can go.
    let token = sim
        .current_token(APPID, TokenKind::Stable)
        .expect("the app has a token");
    let hint = &SECRET[SECRET.len() - 4..];
    let assert_no_secrets = |html: &str, page: &str| {
        assert!(!html.contains(SECRET), "{page}: the AppSecret");
        assert!(!html.contains(hint), "{page}: a hint of the AppSecret");
        assert!(!html.contains(&token), "{page}: the access token");
        assert!(!html.contains("href=\"/keys\""), "{page}: the keys page");
        assert!(
            !html.contains("/secret\""),
            "{page}: the replace-secret form"
        );
        assert!(!html.contains("name=\"secret\""), "{page}: a secret field");
        assert!(
            !html.contains("name=\"secondary_secret\""),
            "{page}: a secondary secret field"
        );
    };
    assert_no_secrets(&source(&client).await, "dashboard");
    client
        .find(Locator::Css(&format!("a[href='/apps/{APPID}']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let text = text_when(&client, "#token-h").await;
    assert!(text.contains("Acme Shop"), "{text}");
    let html = source(&client).await;
    assert_no_secrets(&html, "app page");
    assert!(
        !html.contains("/refresh\""),
        "no refresh button for viewers"
    );
    assert!(!html.contains("/delete\""), "no delete for viewers");
    client.goto(&url("/keys")).await.unwrap();
    let html = source(&client).await;
    assert!(html.contains("403"), "the keys page is refused");
    assert_no_secrets(&html, "keys");

    // The viewer sees the members read-only, and no audit log.
    click_link(&client, "Members").await;
    let text = text_when(&client, "table.members").await;
    assert!(text.contains("owner@acme.test") && text.contains("viewer@acme.test"));
    let html = source(&client).await;
    assert!(!html.contains("action=\"/members/"), "read-only");
    assert!(!html.contains("href=\"/audit\""));
    assert_no_secrets(&html, "members");

    // The owner finds the invite and the join in the audit log.
    submit(&client, "/logout").await;
    text_when(&client, "form[action='/login']").await;
    fill(&client, "f-email", "owner@acme.test").await;
    fill(&client, "f-password", PASSWORD).await;
    submit(&client, "/login").await;
    text_when(&client, "#summary").await;
    click_link(&client, "Audit log").await;
    text_when(&client, "table.audit").await;
    // The table's own text: the filter above it names every action too.
    let text = client
        .find(Locator::Css("table.audit tbody"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("Invite created"), "{text}");
    assert!(text.contains("Member joined"), "{text}");
    assert!(text.contains("viewer@acme.test"), "{text}");
    assert!(!source(&client).await.contains(&token));
    shot(&client, "audit").await;

    client.close().await.unwrap();
}
