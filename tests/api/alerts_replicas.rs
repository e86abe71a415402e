//! A replica killed mid-delivery loses nothing: it claims a delivery and
//! sends it to a receiver that holds the request; the replica is killed
//! (jobs aborted, server stopped without finishing, its transaction gone
//! with it); another replica then delivers the same delivery (same id)
//! exactly once more, and the log counts one attempt.

use std::time::{Duration, Instant};

use serde_json::json;
use tokenvault::upstream::simulator::{SimConfig, WeChatSimulator};

use crate::alerts::{HOOK_SECRET, Receiver, alert_settings, assert_signed};
use crate::helpers::spawn_app_with_settings;
use crate::refresh::json_of;

async fn delivery_state(pool: &sqlx::PgPool) -> Vec<(String, i32)> {
    sqlx::query_as("select status, attempts from alert_deliveries")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_replica_killed_mid_delivery_loses_nothing_and_another_delivers_it_once() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    let receiver = Receiver::start();
    let mut app = spawn_app_with_settings(alert_settings(&sim.base_url())).await;
    let mut owner = app.signup("Crash Co", "o@crash.test").await;
    let res = owner
        .post_json(
            "/api/v1/alert-channels",
            &json!({ "kind": "webhook", "name": "hook",
                     "url": format!("{}/hooks/crash", receiver.base), "secret": HOOK_SECRET }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let channel = json_of(res).await;
    let id = channel["id"].as_str().unwrap().to_string();
    // The first replica stops; the victim is the only one running.
    app.shutdown().await;
    let victim = app
        .spawn_killable_replica(alert_settings(&sim.base_url()))
        .await;
    owner.address.clone_from(&victim.address);

    // The victim sends the test; the receiver holds the request.
    receiver.hold(1);
    let (client, csrf) = (owner.client.clone(), owner.csrf.clone());
    let url = format!("{}/api/v1/alert-channels/{id}/test", victim.address);
    let request = tokio::spawn(async move {
        let _ = client
            .post(url)
            .header("X-CSRF-Token", csrf)
            .json(&json!({}))
            .send()
            .await;
    });
    let got = receiver
        .wait_for("/hooks/crash", 1, Duration::from_secs(10))
        .await;
    assert_eq!(got.len(), 1, "the victim is sending");
    let delivery = got[0].header("X-Tokenvault-Delivery").unwrap().to_string();

    // Killed mid-send: nothing recorded, nothing lost.
    victim.kill().await;
    request.abort();
    let deadline = Instant::now() + Duration::from_secs(10);
    while delivery_state(&app.pool).await != [("pending".to_string(), 0)] {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            delivery_state(&app.pool).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Another replica delivers it: the same delivery id, once.
    app.spawn_replica_with(alert_settings(&sim.base_url()))
        .await;
    let got = receiver
        .wait_for("/hooks/crash", 2, Duration::from_secs(15))
        .await;
    assert_eq!(got.len(), 2, "delivered by the survivor");
    assert_eq!(
        got[1].header("X-Tokenvault-Delivery"),
        Some(delivery.as_str())
    );
    assert_eq!(got[1].json()["id"], delivery);
    assert_signed(&got[1], HOOK_SECRET);
    let deadline = Instant::now() + Duration::from_secs(10);
    while delivery_state(&app.pool).await != [("delivered".to_string(), 1)] {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            delivery_state(&app.pool).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.got("/hooks/crash").len(), 2, "and nothing after");
}
