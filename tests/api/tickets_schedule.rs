//! Tickets on their own clock: the scheduler renews a ticket an app keeps
//! without any read, a read then finds it fresh, and a failed renewal is in
//! the app's refresh log with the ticket named.

use std::time::Duration;

use serde_json::{Value, json};
use tokenvault::upstream::simulator::{SimConfig, WeChatSimulator};

use crate::apps::{APPID, SECRET};
use crate::helpers::{get_with_key, spawn_app_with_sim};
use crate::refresh::{json_of, register};

#[tokio::test]
async fn the_scheduler_renews_tickets_and_logs_their_failures() {
    // Tickets live 4 s (renewed in their last second); WeChat allows the app
    // three ticket calls today.
    let sim = WeChatSimulator::start(SimConfig {
        ticket_lifetime: Duration::from_secs(4),
        ticket_daily_quota: 3,
        ..SimConfig::default()
    })
    .unwrap();
    sim.add_app(APPID, SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Pages Co", "o@pages.test").await;
    let key = owner.create_key(json!({ "name": "web" })).await;
    let key = key["key"].as_str().unwrap().to_string();
    register(&owner, json!({ "appid": APPID, "secret": SECRET })).await;
    let path = format!("/api/v1/apps/{APPID}/tickets/jsapi");
    let first = json_of(get_with_key(&app.address, &path, &key).await).await;
    assert_eq!(sim.stats(APPID).ticket_calls, 1);

    // No reads for 6 s: in its last second the scheduler asks again (the
    // same ticket), and a second after it expired fetches the next one.
    tokio::time::sleep(Duration::from_millis(5800)).await;
    assert_eq!(sim.stats(APPID).ticket_calls, 3, "renewed without reads");
    let second = json_of(get_with_key(&app.address, &path, &key).await).await;
    assert_ne!(second["ticket"], first["ticket"]);
    assert!(second["expires_in"].as_i64().unwrap() >= 2, "{second}");
    assert_eq!(sim.stats(APPID).ticket_calls, 3, "the read found it fresh");

    // The next renewal is refused (45009, the day's ticket quota): logged
    // with the ticket named, retried on the next quota day only.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sim.stats(APPID).ticket_calls, 4);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sim.stats(APPID).ticket_calls, 4, "no retry before tomorrow");
    let log = json_of(
        owner
            .get(&format!("/api/v1/apps/{APPID}/refresh-log"))
            .await,
    )
    .await;
    let items = log["items"].as_array().unwrap();
    let of = |credential: &str| -> Vec<&Value> {
        items
            .iter()
            .filter(|e| e["credential"] == credential)
            .collect()
    };
    let tickets = of("jsapi_ticket");
    let outcomes: Vec<&str> = tickets
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["failure", "success", "unchanged", "success"],
        "{log}"
    );
    let failure = tickets[0];
    assert_eq!(failure["errcode"], 45009);
    assert_eq!(failure["error_class"], "quota");
    assert_eq!(failure["trigger"], "schedule");
    assert_eq!(tickets[3]["trigger"], "on_demand");
    assert!(!of("access_token").is_empty(), "the token's own attempts");
    assert!(of("wx_card_ticket").is_empty(), "never turned on");
    sim.stop().await;
}
