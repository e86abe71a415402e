//! The app page's ticket section: which tickets an app keeps, their state
//! and expiry (never the ticket), and the owner's switch — a ticket turned
//! on is fetched by the scheduler without any read, one turned off is left
//! alone; each switch is audited.

use std::time::Duration;

use serde_json::json;
use tokenvault::upstream::simulator::{SimConfig, WeChatSimulator};

use crate::apps::{APPID, SECRET};
use crate::helpers::{get_with_key, spawn_app_with_sim};
use crate::refresh::{json_of, register};
use crate::ui::{csrf_of, page};

#[tokio::test]
async fn the_owner_turns_tickets_on_and_off_on_the_app_page() {
    let sim = WeChatSimulator::start(SimConfig::default()).unwrap();
    sim.add_app(APPID, SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Pages Co", "o@pages.test").await;
    register(&owner, json!({ "appid": APPID, "secret": SECRET })).await;
    let url = |p: &str| format!("{}{p}", app.address);
    let app_page = || async {
        let (status, html) = page(
            owner
                .client
                .get(url(&format!("/apps/{APPID}")))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        html
    };
    let html = app_page().await;
    assert!(html.contains("JS-SDK tickets"));
    assert_eq!(
        html.matches("not kept (the first read turns it on)")
            .count(),
        2
    );
    let csrf = csrf_of(&html);

    // Turn jsapi on: the scheduler fetches it, with no read.
    let (status, html) = page(
        owner
            .client
            .post(url(&format!("/apps/{APPID}/tickets/jsapi")))
            .form(&[("csrf_token", csrf.as_str()), ("enabled", "true")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Ticket turned on:"));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(sim.stats(APPID).ticket_calls, 1, "fetched by the scheduler");
    let html = app_page().await;
    assert!(html.contains("kept fresh"), "{html}");
    assert!(html.contains("<time class=\"when\""));
    let key = owner.create_key(json!({ "name": "web" })).await;
    let ticket = json_of(
        get_with_key(
            &app.address,
            &format!("/api/v1/apps/{APPID}/tickets/jsapi"),
            key["key"].as_str().unwrap(),
        )
        .await,
    )
    .await;
    let ticket = ticket["ticket"].as_str().unwrap();
    assert!(!html.contains(ticket), "never the ticket");
    assert_eq!(sim.stats(APPID).ticket_calls, 1, "the read found it fresh");

    // Turn it off; a bad switch or ticket type changes nothing.
    for (path, enabled, status) in [
        ("jsapi", "maybe", 400),
        ("agent_config", "false", 404),
        ("jsapi", "false", 200),
    ] {
        let (got, _) = page(
            owner
                .client
                .post(url(&format!("/apps/{APPID}/tickets/{path}")))
                .form(&[("csrf_token", csrf.as_str()), ("enabled", enabled)])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(got, status, "{path} {enabled}");
    }
    let html = app_page().await;
    assert!(html.contains("off: not renewed"), "{html}");
    let audit = json_of(owner.get("/api/v1/audit-log").await).await;
    let switched = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "app.ticket_switched")
        .count();
    assert_eq!(switched, 2, "{audit}");
    sim.stop().await;
}
