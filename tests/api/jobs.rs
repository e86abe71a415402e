//! The background jobs have one owner: started beside the server, and on
//! shutdown every one is cancelled and awaited — no heartbeat, no refresh,
//! no listening connection afterwards.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;
use tokenvault::upstream::simulator::{SimConfig, WeChatSimulator};

use crate::apps::{APPID, SECRET};
use crate::helpers::{sim_settings, spawn_app_with_settings};

/// This replica's last heartbeat (the test database has one replica).
async fn last_seen(pool: &PgPool) -> Option<DateTime<Utc>> {
    sqlx::query_scalar("select max(last_seen_at) from replicas")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Scheduled refreshes logged so far.
async fn scheduled_refreshes(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from refresh_log where trigger = 'schedule'")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Connections of this database whose last statement was a LISTEN.
async fn listening(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "select count(*) from pg_stat_activity
          where datname = current_database() and query like 'LISTEN %'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Wait (at most 15 s) until `check` holds.
async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < Duration::from_secs(15), "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn shutdown_cancels_and_awaits_every_background_job() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    let mut settings = sim_settings(&sim.base_url());
    settings.intervals.heartbeat_seconds = 1;
    let mut app = spawn_app_with_settings(settings).await;
    let owner = app.signup("Jobs Co", "o@jobs.test").await;
    let res = owner
        .post_json("/api/v1/apps", &json!({ "appid": APPID, "secret": SECRET }))
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());

    // Running: the three listeners connected (tokens, key revocations,
    // alert deliveries), the heartbeat moving, the engine
    // refreshing the app's four-second tokens on its schedule.
    let pool = app.pool.clone();
    eventually("three listening connections", || async {
        listening(&pool).await == 3
    })
    .await;
    let beat = last_seen(&pool).await.expect("a heartbeat at start");
    eventually("a later heartbeat", || async {
        last_seen(&pool).await > Some(beat)
    })
    .await;
    eventually("a scheduled refresh", || async {
        scheduled_refreshes(&pool).await > 0
    })
    .await;
    let running = app.jobs_running();
    for job in [
        "refresh engine",
        "token change listener",
        "key revocation listener",
        "heartbeat",
        "alert delivery",
    ] {
        assert!(running.contains(&job), "{job} not in {running:?}");
    }

    let started = Instant::now();
    let mut stopped = app.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(stopped.failed.is_empty(), "{stopped:?}");
    stopped.finished.sort_unstable();
    assert_eq!(stopped.finished, running, "every job ended by itself");
    assert!(app.jobs_running().is_empty());

    // Stopped: the listening connections are given back, and nothing beats
    // or refreshes any more while tokens expire.
    eventually("no listening connection", || async {
        listening(&pool).await == 0
    })
    .await;
    let (beat, refreshes) = (last_seen(&pool).await, scheduled_refreshes(&pool).await);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(last_seen(&pool).await, beat, "a heartbeat after shutdown");
    assert_eq!(
        scheduled_refreshes(&pool).await,
        refreshes,
        "a refresh after shutdown"
    );
}

/// Scheduled refreshes in flight when the replica stops (SIGTERM) are
/// stored before the replica ends: WeChat's answers are never thrown away.
/// Requests open the engine's connections on the HTTP workers' runtimes, so
/// stopping the server before the jobs broke those connections under the
/// in-flight refreshes, and their commits failed.
#[tokio::test]
async fn refreshes_in_flight_at_shutdown_are_stored() {
    use tokenvault::upstream::simulator::Fault;
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    let appids: Vec<String> = (0..4).map(|i| format!("wx00000000000d7a{i:02}")).collect();
    for appid in &appids {
        sim.add_app(appid, SECRET);
    }
    let mut app = spawn_app_with_settings(sim_settings(&sim.base_url())).await;
    let owner = app.signup("Drain Co", "o@drain.test").await;
    for appid in &appids {
        let res = owner
            .post_json("/api/v1/apps", &json!({ "appid": appid, "secret": SECRET }))
            .await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    }
    // Slow calls: manual refreshes of every app at once, each holding one
    // of the engine's connections, opened by the HTTP workers.
    for appid in &appids {
        sim.inject(appid, Fault::Latency { ms: 1500 }).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut refreshes = tokio::task::JoinSet::new();
    for appid in &appids {
        let owner = owner.clone();
        let path = format!("/api/v1/apps/{appid}/refresh");
        refreshes.spawn(async move { owner.post_json(&path, &json!({})).await });
    }
    while let Some(res) = refreshes.join_next().await {
        let res = res.unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }

    // Every app due now: the engine claims them on those connections; stop
    // the replica while WeChat is still answering.
    sqlx::query("update token_state set next_refresh_at = now()")
        .execute(&app.pool)
        .await
        .unwrap();
    let pool = app.pool.clone();
    // (At least one: under load the scheduler may claim them in two rounds,
    // and the first round's calls may end before the second's start.)
    eventually("a scheduled call in flight", || async {
        appids.iter().any(|a| sim.stats(a).in_flight == 1)
    })
    .await;
    let stopped = app.shutdown().await;
    assert!(stopped.failed.is_empty(), "{stopped:?}");

    let calls: u64 = appids
        .iter()
        .map(|a| {
            let s = sim.stats(a);
            s.classic_calls + s.stable_calls
        })
        .sum();
    let logged: i64 = sqlx::query_scalar("select count(*) from refresh_log")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        u64::try_from(logged).unwrap(),
        calls,
        "every call to WeChat has its logged attempt"
    );
}
