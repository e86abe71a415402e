//! Secure by default: revoked keys refused on every replica even when the
//! revocation races verifications in flight.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{get_with_key, settings_from, spawn_app_with_settings};

/// Revoke keys while both replicas verify them as fast as they can (each
/// key new to both, so the first verifications read the database while
/// the revocation commits): a second after the revocation answered, every
/// replica refuses the key, and keeps refusing it.
#[tokio::test]
async fn a_key_revoked_during_verifications_is_refused_everywhere_within_a_second() {
    // Refusals are many here: no 429 may stand in for the 401 looked for.
    let settings = || settings_from(&["--failed-key-auth-per-minute", "100000"]);
    let app = spawn_app_with_settings(settings()).await;
    let other = app.spawn_replica_with(settings()).await;
    let owner = app.signup("Race Co", "race@race.test").await;
    for round in 0..4 {
        let key = owner
            .create_key(json!({ "name": format!("k{round}") }))
            .await;
        let secret = key["key"].as_str().unwrap().to_string();
        let id = key["id"].as_str().unwrap().to_string();
        let mut hammers = Vec::new();
        for address in [app.address.clone(), other.clone()] {
            for _ in 0..3 {
                let (address, secret) = (address.clone(), secret.clone());
                hammers.push(tokio::spawn(async move {
                    let until = Instant::now() + Duration::from_millis(400);
                    while Instant::now() < until {
                        get_with_key(&address, "/api/v1/session", &secret).await;
                    }
                }));
            }
        }
        tokio::time::sleep(Duration::from_millis(5 * round)).await;
        let res = owner.delete(&format!("/api/v1/api-keys/{id}")).await;
        assert_eq!(res.status(), 204);
        let revoked = Instant::now();
        for hammer in hammers {
            hammer.await.unwrap();
        }
        let since = revoked.elapsed();
        if since < Duration::from_secs(1) {
            tokio::time::sleep(Duration::from_secs(1).saturating_sub(since)).await;
        }
        for _ in 0..3 {
            for address in [&app.address, &other] {
                let status = get_with_key(address, "/api/v1/session", &secret)
                    .await
                    .status();
                assert_eq!(
                    status, 401,
                    "round {round}: {address} accepts a revoked key"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
