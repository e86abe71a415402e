//! Damped changes are folded, not lost: a flapping app sends one
//! failing/recovered pair per damping window to a real receiver, and the
//! next message about it counts the changes held back since the previous
//! one (`folded` in the webhook body, a bilingual line in the robot text).

use std::time::{Duration, Instant};

use serde_json::json;
use tokenvault::upstream::simulator::{SimConfig, WeChatSimulator};

use crate::alerts::{HOOK_SECRET, Receiver, alert_settings, assert_signed};
use crate::apps::{APPID, OTHER_SECRET, SECRET};
use crate::helpers::{Browser, spawn_app_with_settings};
use crate::refresh::{json_of, register};

/// Set the app's secret and wait until its health is `health`.
async fn set_secret(owner: &Browser, secret: &str, health: &str) {
    let res = owner
        .patch_json(
            &format!("/api/v1/apps/{APPID}"),
            &json!({ "secret": secret }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(15);
    while json_of(owner.get(&format!("/api/v1/apps/{APPID}")).await).await["health"] != health {
        assert!(Instant::now() < deadline, "the app turns {health}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_flapping_app_folds_the_damped_changes_into_the_next_message() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    let receiver = Receiver::start();
    let app = spawn_app_with_settings(alert_settings(&sim.base_url())).await;
    let owner = app.signup("Flap Co", "o@flap.test").await;
    for (kind, path) in [("webhook", "/hook"), ("wecom", "/wecom?key=k-1")] {
        let res = owner
            .post_json(
                "/api/v1/alert-channels",
                &json!({ "kind": kind, "name": kind, "url": format!("{}{path}", receiver.base),
                         "secret": if kind == "webhook" { Some(HOOK_SECRET) } else { None } }),
            )
            .await;
        assert_eq!(res.status(), 201);
    }
    let body = register(&owner, json!({ "appid": APPID, "secret": OTHER_SECRET })).await;
    assert_eq!(body["health"], "failing", "{body}");
    receiver.wait_for("/hook", 1, Duration::from_secs(10)).await;
    set_secret(&owner, SECRET, "healthy").await;
    let pair = receiver.wait_for("/hook", 2, Duration::from_secs(15)).await;
    assert_eq!(pair[1].json()["type"], "app.recovered");
    assert!(pair.iter().all(|r| r.json().get("folded").is_none()));
    let last_sent = pair[1].json()["occurred_at"].as_str().unwrap().to_string();

    // Flapping within the window: failing, recovered, failing, recovered —
    // all damped.
    for _ in 0..2 {
        set_secret(&owner, OTHER_SECRET, "failing").await;
        set_secret(&owner, SECRET, "healthy").await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.got("/hook").len(), 2, "damped");
    receiver.wait_for("/wecom", 2, Duration::from_secs(5)).await;
    assert_eq!(receiver.got("/wecom").len(), 2, "damped");

    // The window passes (the deliveries are made older), the app fails
    // again: one message, counting the four changes held back.
    sqlx::query("update alert_deliveries set created_at = created_at - interval '31 minutes'")
        .execute(&app.pool)
        .await
        .unwrap();
    set_secret(&owner, OTHER_SECRET, "failing").await;
    let all = receiver.wait_for("/hook", 3, Duration::from_secs(15)).await;
    assert_eq!(all.len(), 3);
    assert_signed(&all[2], HOOK_SECRET);
    let json = all[2].json();
    assert_eq!(json["type"], "app.failing");
    assert_eq!(json["folded"]["failing"], 2, "{json}");
    assert_eq!(json["folded"]["recovered"], 2, "{json}");
    let since = json["folded"]["since"].as_str().unwrap();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(since).unwrap(),
        chrono::DateTime::parse_from_rfc3339(&last_sent).unwrap(),
        "since the previous message"
    );
    let robot = receiver.wait_for("/wecom", 3, Duration::from_secs(5)).await;
    let text = robot[2].json()["markdown"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("2 more failing, 2 more recovered"), "{text}");
    assert!(text.contains("另有 2 次失败、2 次恢复"), "{text}");

    // Nothing held back since: the next change carries no `folded`.
    set_secret(&owner, SECRET, "healthy").await;
    let all = receiver.wait_for("/hook", 4, Duration::from_secs(15)).await;
    assert_eq!(all[3].json()["type"], "app.recovered");
    assert!(all[3].json().get("folded").is_none(), "{}", all[3].json());
}
