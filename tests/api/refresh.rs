//! The refresh engine, proven with several replicas against the simulator:
//! one upstream call per app per cycle, never two in flight, no expired token
//! served, takeover after a replica dies, failure classes, secondary secrets,
//! compare-and-refresh and on-demand single flight.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokenvault::upstream::simulator::{Fault, SimConfig, SimHandle, WeChatSimulator};

use crate::apps::{APPID, OTHER_SECRET, SECRET};
use crate::helpers::{
    Browser, Sandbox, TEST_MASTER_KEYS, TestDatabase, get_with_key, spawn_app_with_sim,
};

pub(crate) async fn json_of(res: reqwest::Response) -> Value {
    res.json().await.expect("json body")
}

pub(crate) fn appid(i: usize) -> String {
    format!("wx{i:016x}")
}

/// Ask the simulator's business endpoint whether WeChat would accept `token`.
pub(crate) async fn wechat_accepts(sim: &SimHandle, token: &str) -> Value {
    reqwest::get(format!(
        "{}/cgi-bin/getcallbackip?access_token={token}",
        sim.base_url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap()
}

pub(crate) async fn register(owner: &Browser, body: Value) -> Value {
    let res = owner.post_json("/api/v1/apps", &body).await;
    assert_eq!(res.status(), 201, "{body}");
    json_of(res).await
}

#[tokio::test]
async fn three_replicas_refresh_each_app_once_per_cycle_and_never_serve_expired_tokens() {
    const APPS: usize = 200;
    let sim = WeChatSimulator::start(SimConfig {
        workers: 2,
        ..SimConfig::fast()
    })
    .unwrap();
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Fleet Co", "o@fleet.test").await;
    let key = owner
        .create_key(json!({ "name": "reader", "read_only": true }))
        .await;
    let key = key["key"].as_str().unwrap().to_string();
    for i in 0..APPS {
        sim.add_app(&appid(i), SECRET);
        register(&owner, json!({ "appid": appid(i), "secret": SECRET, "token_mode": "classic", "verify": false })).await;
    }
    let replicas = [
        app.address.clone(),
        app.spawn_sim_replica(&sim.base_url()).await,
        app.spawn_sim_replica(&sim.base_url()).await,
    ];

    // Readers on every replica check each token they get with WeChat.
    let started = Instant::now();
    let mut served = 0;
    let mut rejected = Vec::new();
    let mut i = 0usize;
    while started.elapsed() < Duration::from_secs(12) {
        let replica = &replicas[i % 3];
        let id = appid((i * 7) % APPS);
        i += 1;
        let res = get_with_key(replica, &format!("/api/v1/apps/{id}/token"), &key).await;
        if res.status() != 200 {
            // Before the first fetch an app has no token yet: 503 is honest.
            assert_eq!(res.status(), 503);
            continue;
        }
        let token = json_of(res).await["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        served += 1;
        let verdict = wechat_accepts(&sim, &token).await;
        if verdict.get("errcode").is_some() {
            rejected.push((id, verdict));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    assert!(served > 100, "only {served} tokens served");
    assert!(
        rejected.is_empty(),
        "WeChat rejected served tokens: {rejected:?}"
    );

    // Every call WeChat saw is one logged attempt; none overlapped; no app was
    // fetched more often than its lifetime allows.
    let stats = sim.all_stats();
    let log: Vec<(String, i64)> = sqlx::query_as(
        "select a.appid, count(*) from refresh_log l join apps a on a.id = l.app_id group by a.appid",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let log: HashMap<String, i64> = log.into_iter().collect();
    // Lifetime 4 s, margin 0.3, jitter 0.05: a refresh every 2.6-2.8 s.
    let max_cycles = u64::try_from(elapsed.as_millis() / 2600 + 2).unwrap();
    for i in 0..APPS {
        let s = stats[&appid(i)];
        assert_eq!(
            s.max_in_flight,
            1,
            "{}: two calls in flight at once",
            appid(i)
        );
        assert!(
            s.classic_calls >= 3,
            "{}: only {} calls in {elapsed:?}",
            appid(i),
            s.classic_calls
        );
        assert!(
            s.classic_calls <= max_cycles,
            "{}: {} calls in {elapsed:?}",
            appid(i),
            s.classic_calls
        );
        let logged = u64::try_from(log[&appid(i)]).unwrap();
        // A call may be in flight right now (counted, not yet logged).
        assert!(
            s.classic_calls == logged || s.classic_calls == logged + 1,
            "{}: {} calls, {logged} logged",
            appid(i),
            s.classic_calls
        );
    }
    // Consecutive refreshes of one app are a cycle apart, never a duplicate.
    let gaps: Vec<(String, f64)> = sqlx::query_as(
        "select a.appid, extract(epoch from l.created_at - lag(l.created_at) over (partition by l.app_id order by l.created_at))::float8
           from refresh_log l join apps a on a.id = l.app_id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .filter_map(|(a, g): (String, Option<f64>)| g.map(|g| (a, g)))
    .collect();
    let (worst_app, shortest) =
        gaps.iter().cloned().fold(
            (String::new(), f64::MAX),
            |m, g| if g.1 < m.1 { g } else { m },
        );
    assert!(
        shortest > 2.0,
        "{worst_app} was refreshed twice within {shortest} s"
    );
    let replicas_used: i64 = sqlx::query_scalar("select count(distinct replica) from refresh_log")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(replicas_used, 3, "every replica took part");
}

/// Start the real binary as a replica in `sandbox`; returns the child and its address.
fn start_replica_process(
    sandbox: &Sandbox,
    database_url: &str,
    wechat: &str,
) -> (std::process::Child, String) {
    let mut child = sandbox
        .tokenvault()
        .env("DATABASE_URL", database_url)
        .env("TOKENVAULT_MASTER_KEYS", TEST_MASTER_KEYS)
        .env("TOKENVAULT_WECHAT_API_BASE", wechat)
        .env("TOKENVAULT_REFRESH_TICK", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("serving on ").nth(1) {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let address = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("replica did not start");
    (child, address)
}

#[tokio::test]
async fn a_replica_killed_mid_refresh_is_taken_over() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    sim.inject(APPID, Fault::Timeout { times: None }).unwrap();
    let db = TestDatabase::create_migrated().await;
    let sandbox = std::sync::Arc::new(Sandbox::new());
    let (mut doomed, address) = tokio::task::spawn_blocking({
        let (url, wechat, sandbox) = (db.url(), sim.base_url(), sandbox.clone());
        move || start_replica_process(&sandbox, &url, &wechat)
    })
    .await
    .unwrap();

    // The only replica claims the new app and hangs in the upstream call.
    let owner = crate::helpers::signup_at(&address, "Doomed Co", "o@doomed.test").await;
    register(
        &owner,
        json!({ "appid": APPID, "secret": SECRET, "verify": false }),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.stats(APPID).in_flight == 0 {
        assert!(Instant::now() < deadline, "the replica never called WeChat");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    sim.clear_faults(APPID).unwrap();

    // Another replica takes the app over: the dead one's lock went with its connection.
    let survivor = crate::helpers::spawn_app_on_with_sim(db, &sim.base_url()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let fetched: Option<chrono::DateTime<chrono::Utc>> =
            sqlx::query_scalar("select fetched_at from token_state")
                .fetch_one(&survivor.pool)
                .await
                .unwrap();
        if fetched.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "no replica took the app over");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = sim.stats(APPID);
    assert_eq!(
        stats.stable_calls, 2,
        "the dead replica's call and the survivor's"
    );
    assert_eq!(stats.max_in_flight, 1);
}

#[tokio::test]
async fn failure_classes_set_state_log_and_backoff() {
    let sim = WeChatSimulator::start(SimConfig {
        token_lifetime: Duration::from_secs(30),
        ..SimConfig::fast()
    })
    .unwrap();
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Failing Co", "o@failing.test").await;
    // (appid index, errcode injected, expected class)
    let cases = [
        (1, -1, "transient"),
        (2, 45009, "quota"),
        (3, 40164, "configuration"),
        (4, 40002, "bug"),
    ];
    for (i, code, _) in cases {
        sim.add_app(&appid(i), SECRET);
        sim.inject_errcode(&appid(i), code, 1000).unwrap();
    }
    sim.add_app(&appid(5), SECRET);
    sim.inject(&appid(5), Fault::BadJson { times: None })
        .unwrap();
    for (i, code, class) in cases {
        let body = register(
            &owner,
            json!({ "appid": appid(i), "secret": SECRET, "verify": true }),
        )
        .await;
        assert_eq!(body["verification"]["errcode"], code, "{body}");
        assert_eq!(body["verification"]["class"], class, "{body}");
        assert_eq!(body["health"], "failing");
    }
    let body = register(&owner, json!({ "appid": appid(5), "secret": SECRET })).await;
    assert_eq!(body["verification"]["class"], "transient");
    assert!(
        body["verification"]["errmsg"]
            .as_str()
            .unwrap()
            .contains("malformed")
    );

    // Quotas wait for the next Beijing day; configuration errors retry slowly;
    // passing failures retry soon.
    let next = |i: usize| {
        let pool = app.pool.clone();
        async move {
            let at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
                "select s.next_refresh_at from token_state s join apps a on a.id = s.app_id where a.appid = $1",
            )
            .bind(appid(i))
            .fetch_one(&pool)
            .await
            .unwrap();
            (at - chrono::Utc::now()).num_milliseconds()
        }
    };
    assert!(
        next(2).await > 60_000 || chrono::Utc::now().timestamp() % 86_400 > 86_400 - 120,
        "quota waits for the next day"
    );
    assert!(next(3).await > 500, "configuration errors retry slowly");

    // The failure log tells the owner what went wrong and what to do.
    let log = json_of(
        owner
            .get(&format!(
                "/api/v1/apps/{}/refresh-log?outcome=failure",
                appid(3)
            ))
            .await,
    )
    .await;
    let items = log["items"].as_array().unwrap();
    let first = items.last().unwrap();
    assert_eq!(first["errcode"], 40164);
    assert_eq!(first["trigger"], "registration");
    assert!(
        items
            .iter()
            .all(|e| e["outcome"] == "failure" && e["errcode"] == 40164)
    );
    assert!(
        first["errmsg"]
            .as_str()
            .unwrap()
            .contains("not in whitelist")
    );
    assert!(
        first["explanation"]["fix_zh"]
            .as_str()
            .unwrap()
            .contains("白名单")
    );
    let all = json_of(
        owner
            .get("/api/v1/refresh-log?outcome=failure&limit=200")
            .await,
    )
    .await;
    assert!(all["items"].as_array().unwrap().len() >= 5);

    // A transient failure while a valid token is held: degraded, token still served.
    sim.add_app(&appid(6), SECRET);
    register(&owner, json!({ "appid": appid(6), "secret": SECRET })).await;
    sim.inject(&appid(6), Fault::Busy { times: None }).unwrap();
    let res = owner
        .post_json(&format!("/api/v1/apps/{}/refresh", appid(6)), &json!({}))
        .await;
    let body = json_of(res).await;
    assert_eq!(body["refresh"]["errcode"], -1);
    assert_eq!(body["health"], "degraded");
    let token = json_of(owner.get(&format!("/api/v1/apps/{}/token", appid(6))).await).await;
    let verdict = wechat_accepts(&sim, token["access_token"].as_str().unwrap()).await;
    assert!(
        verdict.get("ip_list").is_some(),
        "the valid token is kept: {verdict}"
    );

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("tokenvault_refreshes_total"), "{metrics}");
    assert!(metrics.contains("class=\"configuration\""));
    assert!(metrics.contains("tokenvault_apps{health=\"failing\"}"));
}

#[tokio::test]
async fn the_secondary_secret_takes_over_and_is_promoted() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Reset Co", "o@reset.test").await;
    // The owner reset the secret at WeChat: the old one is now wrong.
    let body = register(
        &owner,
        json!({ "appid": APPID, "secret": OTHER_SECRET, "secondary_secret": SECRET }),
    )
    .await;
    assert_eq!(body["verification"]["ok"], true, "{body}");
    assert_eq!(body["has_secondary_secret"], false, "promoted");
    let shown = json_of(owner.get(&format!("/api/v1/apps/{APPID}")).await).await;
    assert_eq!(shown["secret_hint"], "***cdef");
    let log = json_of(
        owner
            .get(&format!("/api/v1/apps/{APPID}/refresh-log"))
            .await,
    )
    .await;
    assert!(
        log["items"][0]["errmsg"]
            .as_str()
            .unwrap()
            .contains("secondary")
    );
}
