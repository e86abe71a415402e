//! The service health of a replica that has just started: it counts as
//! alive at once, not only after its first tick.

use std::time::{Duration, Instant};

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_replica_counts_as_alive_right_after_it_starts() {
    let app = spawn_app().await;
    let owner = app.signup("Alive", "o@alive.test").await;
    let started = Instant::now();
    let mut last = serde_json::Value::Null;
    // Well under the first tick (5 s by default).
    while started.elapsed() < Duration::from_secs(2) {
        let res = owner.get("/api/v1/service-health").await;
        assert_eq!(res.status(), 200);
        last = res.json().await.unwrap();
        if last["replicas"]["alive"].as_u64() == Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["replicas"]["alive"], 1, "{last}");
    let me = &last["answered_by"];
    let items = last["replicas"]["items"].as_array().unwrap();
    assert!(
        items.iter().any(|r| &r["id"] == me && r["alive"] == true),
        "{last}"
    );
    assert_ne!(last["status"], "down", "{last}");
}
