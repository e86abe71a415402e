//! The refresh engine when things happen at once, with two replicas
//! against the simulator: a burst of invalidations, readers needing a fresh
//! token together, apps deleted or disabled mid-refresh, caches following a
//! refresh on another replica, and the database dropping every connection.

use crate::apps::{APPID, SECRET};
use crate::helpers::{Browser, get_with_key, spawn_app_with_sim};
use crate::refresh::{appid, json_of, register, wechat_accepts};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokenvault::upstream::simulator::{Fault, SimConfig, SimHandle, TokenKind, WeChatSimulator};

/// Two replicas over one database and a simulator whose tokens live
/// `lifetime` seconds, with an organisation, its owner, an API key and the
/// app `APPID` registered in `mode`.
struct TwoReplicas {
    sim: SimHandle,
    app: crate::helpers::TestApp,
    other: String,
    owner: Browser,
    key: String,
}

async fn two_replicas(lifetime: u64, mode: &str) -> TwoReplicas {
    let sim = WeChatSimulator::start(SimConfig {
        token_lifetime: Duration::from_secs(lifetime),
        ..SimConfig::fast()
    })
    .unwrap();
    sim.add_app(APPID, SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let other = app.spawn_sim_replica(&sim.base_url()).await;
    let owner = app.signup("Replicas Co", "o@replicas.test").await;
    let key = owner.create_key(json!({ "name": "k" })).await["key"]
        .as_str()
        .unwrap()
        .to_string();
    register(
        &owner,
        json!({ "appid": APPID, "secret": SECRET, "token_mode": mode }),
    )
    .await;
    TwoReplicas {
        sim,
        app,
        other,
        owner,
        key,
    }
}

#[tokio::test]
async fn a_burst_of_invalidations_causes_one_refresh() {
    let TwoReplicas {
        sim,
        app,
        other,
        owner: _owner,
        key,
    } = two_replicas(60, "stable").await;
    let old =
        json_of(get_with_key(&app.address, &format!("/api/v1/apps/{APPID}/token"), &key).await)
            .await;
    let old = old["access_token"].as_str().unwrap().to_string();

    let reports = (0..100).map(|i| {
        let address = if i % 2 == 0 {
            app.address.clone()
        } else {
            other.clone()
        };
        let (key, old) = (key.clone(), old.clone());
        tokio::spawn(async move {
            let res = reqwest::Client::new()
                .post(format!("{address}/api/v1/apps/{APPID}/token/invalidate"))
                .bearer_auth(key)
                .json(&json!({ "access_token": old }))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()["refreshed"]
                .as_bool()
                .unwrap()
        })
    });
    let mut refreshed = 0;
    for r in reports.collect::<Vec<_>>() {
        refreshed += usize::from(r.await.unwrap());
    }
    assert_eq!(
        refreshed, 1,
        "one report refreshes, the rest find the token already replaced"
    );
    let stats = sim.stats(APPID);
    assert_eq!(
        stats.force_refresh_calls, 1,
        "stable mode uses force_refresh once"
    );
    let new =
        json_of(get_with_key(&other, &format!("/api/v1/apps/{APPID}/token"), &key).await).await;
    assert_ne!(new["access_token"].as_str().unwrap(), old);
    assert_eq!(
        wechat_accepts(&sim, &old).await["errcode"],
        40001,
        "the old token is dead at WeChat"
    );
}

#[tokio::test]
async fn concurrent_readers_needing_a_fresh_token_share_one_refresh() {
    let TwoReplicas {
        sim,
        app,
        other,
        owner: _owner,
        key,
    } = two_replicas(20, "classic").await;
    sim.inject(APPID, Fault::Latency { ms: 300 }).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = sim.stats(APPID).classic_calls;

    // Every reader wants 19 s of life: the 18 s left is not enough.
    let readers = (0..50).map(|i| {
        let address = if i % 2 == 0 {
            app.address.clone()
        } else {
            other.clone()
        };
        let key = key.clone();
        tokio::spawn(async move {
            let res = get_with_key(
                &address,
                &format!("/api/v1/apps/{APPID}/token?min_ttl=19"),
                &key,
            )
            .await;
            assert_eq!(res.status(), 200);
            let body: Value = res.json().await.unwrap();
            assert!(body["expires_in"].as_i64().unwrap() >= 19);
            body["access_token"].as_str().unwrap().to_string()
        })
    });
    let mut tokens = Vec::new();
    for r in readers.collect::<Vec<_>>() {
        tokens.push(r.await.unwrap());
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "every reader got the one new token");
    assert_eq!(
        tokens[0],
        sim.current_token(APPID, TokenKind::Classic).unwrap()
    );
    assert_eq!(
        sim.stats(APPID).classic_calls,
        before + 1,
        "one upstream call for 50 readers on 2 replicas"
    );
    assert_eq!(sim.stats(APPID).max_in_flight, 1);
}

#[tokio::test]
async fn apps_deleted_or_disabled_mid_refresh_leave_no_stuck_state() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    sim.add_app(&appid(9), SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Churn Co", "o@churn.test").await;
    sim.inject(APPID, Fault::Latency { ms: 1500 }).unwrap();
    register(
        &owner,
        json!({ "appid": APPID, "secret": SECRET, "verify": false }),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.stats(APPID).in_flight == 0 {
        assert!(Instant::now() < deadline, "never called");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Deleting waits for the refresh to finish with its row, then goes through.
    let res = owner.delete(&format!("/api/v1/apps/{APPID}")).await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        owner.get(&format!("/api/v1/apps/{APPID}")).await.status(),
        404
    );
    // The engine carries on with other apps.
    let body = register(&owner, json!({ "appid": appid(9), "secret": SECRET })).await;
    assert_eq!(body["health"], "healthy");
    // A disabled app answers 503 with a reason, and no call is made for it.
    let res = owner
        .client
        .patch(format!("{}/api/v1/apps/{}", owner.address, appid(9)))
        .header("X-CSRF-Token", &owner.csrf)
        .json(&json!({ "enabled": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let before = sim.stats(&appid(9)).stable_calls;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(sim.stats(&appid(9)).stable_calls, before);
    let res = owner.get(&format!("/api/v1/apps/{}/token", appid(9))).await;
    assert_eq!(res.status(), 503);
}

#[tokio::test]
async fn cached_tokens_follow_a_refresh_on_another_replica_within_a_second() {
    let TwoReplicas {
        sim,
        app: _app,
        other,
        owner,
        key,
    } = two_replicas(60, "classic").await;
    let path = format!("/api/v1/apps/{APPID}/token");
    let first = json_of(get_with_key(&other, &path, &key).await).await["access_token"].clone();
    // Served again from the other replica's cache.
    assert_eq!(
        json_of(get_with_key(&other, &path, &key).await).await["access_token"],
        first
    );
    let res = owner
        .post_json(&format!("/api/v1/apps/{APPID}/refresh"), &json!({}))
        .await;
    assert_eq!(json_of(res).await["refresh"]["outcome"], "success");
    let new = sim.current_token(APPID, TokenKind::Classic).unwrap();
    let refreshed_at = Instant::now();
    loop {
        let served = json_of(get_with_key(&other, &path, &key).await).await["access_token"].clone();
        if served == new.as_str() {
            break;
        }
        assert!(
            refreshed_at.elapsed() < Duration::from_secs(1),
            "the other replica still serves the old token"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A deleted app is gone from every cache: 404, not a stale token.
    assert_eq!(
        owner
            .delete(&format!("/api/v1/apps/{APPID}"))
            .await
            .status(),
        204
    );
    let deleted_at = Instant::now();
    while get_with_key(&other, &path, &key).await.status() != 404 {
        assert!(
            deleted_at.elapsed() < Duration::from_secs(1),
            "deleted app still served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_engine_recovers_when_the_database_drops_every_connection() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    sim.add_app(&appid(7), SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Restart Co", "o@restart.test").await;
    register(
        &owner,
        json!({ "appid": APPID, "secret": SECRET, "token_mode": "classic" }),
    )
    .await;
    // What a database restart does to every client: all connections cut,
    // the refresher's and the listeners' included.
    let mut admin = sqlx::ConnectOptions::connect(&app.db.options)
        .await
        .unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "select pg_terminate_backend(pid) from pg_stat_activity
          where datname = current_database() and pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(killed.len() >= 2, "the service's connections were cut");
    // Scheduled refreshes carry on (4 s tokens: two more cycles within 8 s)...
    let before = sim.stats(APPID).classic_calls;
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(
        sim.stats(APPID).classic_calls >= before + 2,
        "the refresher did not recover"
    );
    // ...the listener is back (a new app is fetched without waiting for a tick)...
    let body = register(
        &owner,
        json!({ "appid": appid(7), "secret": SECRET, "verify": false }),
    )
    .await;
    assert_eq!(body["verification"]["outcome"], "not_checked");
    let registered = Instant::now();
    while sim.stats(&appid(7)).stable_calls == 0 {
        assert!(
            registered.elapsed() < Duration::from_secs(3),
            "new app not refreshed after the cut"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...and tokens are served.
    assert_eq!(
        owner
            .get(&format!("/api/v1/apps/{APPID}/token"))
            .await
            .status(),
        200
    );
}
