//! The UI on a phone and from the keyboard, in a real headless Chromium:
//! at 390×844 the dashboard and the app page (with a failure explained)
//! (and the other pages) do not scroll sideways, and Tab from the top of the page reaches the
//! skip link first, then the navigation. Screenshots: `phone-dashboard`
//! and `phone-app` (see `browser.rs` for where).

use fantoccini::Client;
use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
use fantoccini::key::Key;
use serde_json::Value;
use tokenvault::upstream::simulator::{SimConfig, WeChatSimulator};

use crate::apps::{APPID, OTHER_SECRET, SECRET};
use crate::browser::{fill, shot, start_browser, submit, text_when};
use crate::helpers::{PASSWORD, spawn_app_with_sim};

/// A common phone's viewport in CSS pixels.
const PHONE: (u32, u32) = (390, 844);

/// Press Tab once.
async fn tab(client: &Client) {
    let press = KeyActions::new("keyboard".into())
        .then(KeyAction::Down {
            value: Key::Tab.into(),
        })
        .then(KeyAction::Up {
            value: Key::Tab.into(),
        });
    client.perform_actions(press).await.unwrap();
}

/// What has the focus: its tag, class, href and whether it is in the nav.
async fn focused(client: &Client) -> Value {
    client
        .execute(
            "const e = document.activeElement;
             return { tag: e.tagName.toLowerCase(), class: e.className,
                      href: e.getAttribute('href'), in_nav: e.closest('nav') !== null };",
            vec![],
        )
        .await
        .unwrap()
}

/// The page is as wide as the window: nothing to scroll sideways.
async fn assert_fits(client: &Client, what: &str) {
    let widths = client
        .execute(
            "const wide = [...document.querySelectorAll('body *')]
                 .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                 .slice(0, 5).map(e => e.tagName + '.' + e.className);
             return [document.documentElement.scrollWidth, window.innerWidth, wide];",
            vec![],
        )
        .await
        .unwrap();
    let scroll = widths[0].as_u64().unwrap();
    let inner = widths[1].as_u64().unwrap();
    assert!(
        inner <= u64::from(PHONE.0),
        "{what}: the window is {inner} px wide"
    );
    assert!(
        scroll <= inner,
        "{what}: {scroll} px of page in {inner} px; too wide: {}",
        widths[2]
    );
}

/// From the top of the page, Tab reaches the skip link, then the nav's links.
async fn assert_tab_order(client: &Client, what: &str) {
    client
        .execute(
            "document.activeElement.blur(); window.scrollTo(0, 0);",
            vec![],
        )
        .await
        .unwrap();
    tab(client).await;
    let first = focused(client).await;
    assert_eq!(first["class"], "skip", "{what}: first Tab: {first}");
    assert_eq!(first["href"], "#main");
    let mut nav = Vec::new();
    for _ in 0..8 {
        tab(client).await;
        let now = focused(client).await;
        if now["in_nav"] == true {
            nav.push(now["href"].as_str().unwrap_or_default().to_string());
        }
    }
    for link in ["/dashboard", "/apps/new", "/keys"] {
        assert!(
            nav.iter().any(|h| h == link),
            "{what}: Tab never reached {link}: {nav:?}"
        );
    }
}

#[tokio::test]
async fn on_a_phone_nothing_scrolls_sideways_and_tab_reaches_the_skip_link_then_the_nav() {
    let Some((_driver, client, _profile)) = start_browser().await else {
        return;
    };
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let url = |p: &str| format!("{}{p}", app.address);

    client.goto(&url("/signup")).await.unwrap();
    fill(&client, "f-organization", "Acme Mini Shop").await;
    fill(&client, "f-email", "owner@acme.test").await;
    fill(&client, "f-password", PASSWORD).await;
    submit(&client, "/signup").await;
    text_when(&client, ".empty").await;
    client.goto(&url("/apps/new")).await.unwrap();
    fill(&client, "f-appid", APPID).await;
    fill(&client, "f-secret", SECRET).await;
    fill(&client, "f-name", "Acme Shop 小程序").await;
    submit(&client, "/apps/new").await;
    text_when(&client, ".flash").await;
    // A refused secret: the app page explains the failure, the widest content.
    sim.add_app(APPID, OTHER_SECRET);
    submit(&client, &format!("/apps/{APPID}/refresh")).await;
    text_when(&client, ".problem").await;

    client.set_window_size(PHONE.0, PHONE.1).await.unwrap();
    let app_page = format!("/apps/{APPID}");
    for (path, name, ready) in [
        ("/dashboard", "phone-dashboard", "#summary"),
        (app_page.as_str(), "phone-app", ".problem"),
    ] {
        client.goto(&url(path)).await.unwrap();
        text_when(&client, ready).await;
        assert_fits(&client, path).await;
        shot(&client, name).await;
        assert_tab_order(&client, path).await;
    }
    // The other pages fit too (no screenshots: the two above show the layout).
    for path in [
        "/apps/new",
        "/keys",
        "/alerts",
        "/members",
        "/audit",
        "/status",
    ] {
        client.goto(&url(path)).await.unwrap();
        text_when(&client, "main h1").await;
        assert_fits(&client, path).await;
    }
    // A new key with its long usage snippets, and a new invite link.
    client.goto(&url("/keys")).await.unwrap();
    fill(&client, "f-name", "build server").await;
    submit(&client, "/keys").await;
    text_when(&client, "#new-key").await;
    assert_fits(&client, "/keys, a key shown").await;
    client.goto(&url("/members")).await.unwrap();
    fill(
        &client,
        "f-email",
        "a.rather.long.address@example-company.test",
    )
    .await;
    submit(&client, "/members/invite").await;
    text_when(&client, "#invite-link").await;
    assert_fits(&client, "/members, an invite shown").await;
    client.close().await.unwrap();
}
