//! The gate on upstream calls, proven by counting calls at the simulator:
//! a failing app read in a loop, a read-only key's invalidation loop, calls
//! of unknown outcome, one tenant's flood beside another's reads, the daily
//! budget and the per-key read rate.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokenvault::upstream::simulator::{AppSpec, Fault, SimConfig, SimHandle, WeChatSimulator};

use crate::apps::{APPID, SECRET};
use crate::helpers::{
    Browser, TestApp, get_with_key, sim_settings, spawn_app_with_settings, spawn_app_with_sim,
};

pub(crate) async fn json_of(res: reqwest::Response) -> Value {
    res.json().await.expect("json body")
}

pub(crate) fn appid(i: usize) -> String {
    format!("wx{:016x}", 0xa000 + i)
}

/// What the simulator's business endpoint says of `token` (0: accepted).
pub(crate) async fn wechat_verdict(sim: &SimHandle, token: &str) -> i64 {
    let v: Value = reqwest::get(format!(
        "{}/cgi-bin/getcallbackip?access_token={token}",
        sim.base_url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    v["errcode"].as_i64().unwrap_or(0)
}

pub(crate) async fn register(owner: &Browser, body: Value) -> Value {
    let res = owner.post_json("/api/v1/apps", &body).await;
    assert_eq!(res.status(), 201, "{body}");
    json_of(res).await
}

pub(crate) async fn key(owner: &Browser, read_only: bool) -> String {
    owner
        .create_key(json!({ "name": "k", "read_only": read_only }))
        .await["key"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Refresh-log entries of `appid` in `app`'s database, by trigger.
pub(crate) async fn logged(app: &TestApp, appid: &str, trigger: Option<&str>) -> i64 {
    sqlx::query_scalar(
        "select count(*) from refresh_log l join apps a on a.id = l.app_id
          where a.appid = $1 and ($2::text is null or l.trigger = $2)",
    )
    .bind(appid)
    .bind(trigger)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// An app WeChat refuses with 40164 (the caller is not on its whitelist).
pub(crate) fn refused_by_whitelist(sim: &SimHandle, appid: &str) {
    sim.put_app(&AppSpec {
        appid: appid.into(),
        secret: SECRET.into(),
        ip_whitelist: Some(vec!["10.9.9.9".parse().unwrap()]),
    });
}

pub(crate) fn compat_path(appid: &str, key: &str) -> String {
    format!("/cgi-bin/token?grant_type=client_credential&appid={appid}&secret={key}")
}

#[tokio::test]
async fn a_failing_app_read_in_a_loop_costs_wechat_only_the_schedulers_retries() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    refused_by_whitelist(&sim, APPID);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let other = app.spawn_sim_replica(&sim.base_url()).await;
    let owner = app.signup("Failing Co", "o@failing.test").await;
    let key = key(&owner, true).await;
    let created = register(&owner, json!({ "appid": APPID, "secret": SECRET })).await;
    assert_eq!(created["verification"]["errcode"], 40164);

    let deadline = Instant::now() + Duration::from_secs(5);
    let clients = (0..6).map(|i| {
        let address = if i % 2 == 0 {
            app.address.clone()
        } else {
            other.clone()
        };
        let key = key.clone();
        tokio::spawn(async move {
            let mut reads = 0;
            while Instant::now() < deadline {
                if i % 3 == 0 {
                    let res = reqwest::get(format!("{address}{}", compat_path(APPID, &key)))
                        .await
                        .unwrap();
                    // The stored failure, or the key's read rate (45011).
                    let errcode = json_of(res).await["errcode"].as_i64().unwrap();
                    assert!([40164, 45011].contains(&errcode), "{errcode}");
                } else {
                    let res =
                        get_with_key(&address, &format!("/api/v1/apps/{APPID}/token"), &key).await;
                    if res.status() == 429 {
                        assert_eq!(json_of(res).await["code"], "key_read_rate");
                        reads += 1;
                        continue;
                    }
                    assert_eq!(res.status(), 503);
                    let wait: u64 = res.headers()["retry-after"]
                        .to_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    assert!((1..=30).contains(&wait), "Retry-After {wait}");
                    let body = json_of(res).await;
                    assert_eq!(body["code"], "token_unavailable");
                    assert_eq!(body["errcode"], 40164, "{body}");
                    assert!(
                        ["backoff", "failed"].contains(&body["reason"].as_str().unwrap()),
                        "{body}"
                    );
                }
                reads += 1;
            }
            reads
        })
    });
    let mut reads = 0;
    for c in clients.collect::<Vec<_>>() {
        reads += c.await.unwrap();
    }
    assert!(reads > 200, "the clients really looped: {reads} reads");

    let calls = i64::try_from(sim.stats(APPID).stable_calls).unwrap();
    assert_eq!(
        calls,
        logged(&app, APPID, None).await,
        "every call to WeChat is a logged attempt of the registration or the scheduler"
    );
    assert_eq!(
        logged(&app, APPID, Some("on_demand")).await,
        0,
        "no reader called WeChat"
    );
    // Registration, then retries 2 s, 4 s, 8 s apart (±25 %): a handful in 5 s.
    assert!(calls <= 5, "{calls} calls for {reads} reads");
}

#[tokio::test]
async fn a_read_only_keys_invalidation_loop_causes_a_few_refreshes_an_hour() {
    let sim = WeChatSimulator::start(SimConfig {
        token_lifetime: Duration::from_secs(120),
        ..SimConfig::fast()
    })
    .unwrap();
    sim.add_app(APPID, SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Loop Co", "o@loop.test").await;
    let key = key(&owner, true).await;
    register(
        &owner,
        json!({ "appid": APPID, "secret": SECRET, "token_mode": "classic" }),
    )
    .await;
    let before = sim.stats(APPID).classic_calls;
    let token_path = format!("/api/v1/apps/{APPID}/token");
    let (mut refreshed, mut refused) = (0, 0);
    for _ in 0..20 {
        let token =
            json_of(get_with_key(&app.address, &token_path, &key).await).await["access_token"]
                .clone();
        let res = reqwest::Client::new()
            .post(format!(
                "{}/api/v1/apps/{APPID}/token/invalidate",
                app.address
            ))
            .bearer_auth(&key)
            .json(&json!({ "access_token": token }))
            .send()
            .await
            .unwrap();
        match res.status().as_u16() {
            200 => {
                assert_eq!(json_of(res).await["refreshed"], true);
                refreshed += 1;
            }
            429 => {
                assert!(res.headers().contains_key("retry-after"));
                let body = json_of(res).await;
                assert_eq!(body["code"], "invalidate_limit", "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((refreshed, refused), (3, 17));
    assert_eq!(
        sim.stats(APPID).classic_calls - before,
        3,
        "three new classic tokens, not twenty"
    );
    let audit = json_of(
        owner
            .get("/api/v1/audit-log?action=token.invalidated")
            .await,
    )
    .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 3, "{audit}");
}

#[tokio::test]
async fn invalidation_refuses_young_tokens_and_spaces_force_refreshes() {
    let sim = WeChatSimulator::start(SimConfig {
        token_lifetime: Duration::from_secs(120),
        ..SimConfig::fast()
    })
    .unwrap();
    sim.add_app(APPID, SECRET);
    sim.add_app(&appid(1), SECRET);
    let mut settings = sim_settings(&sim.base_url());
    settings.invalidates_per_hour = 10;
    let app = spawn_app_with_settings(settings.clone()).await;
    let mut strict = settings;
    strict.invalidate_min_age = 60;
    let strict = app.spawn_replica_with(strict).await;
    let owner = app.signup("Young Co", "o@young.test").await;
    let key = key(&owner, false).await;
    register(&owner, json!({ "appid": APPID, "secret": SECRET })).await;
    let report = |address: String, token: Value| {
        let key = key.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{address}/api/v1/apps/{APPID}/token/invalidate"))
                .bearer_auth(&key)
                .json(&json!({ "access_token": token }))
                .send()
                .await
                .unwrap()
        }
    };
    let token_path = format!("/api/v1/apps/{APPID}/token");
    let first =
        json_of(get_with_key(&app.address, &token_path, &key).await).await["access_token"].clone();
    // A replica with a minimum age of 60 s refuses a report of a fresh token.
    let res = report(strict, first.clone()).await;
    assert_eq!(res.status(), 429);
    assert_eq!(json_of(res).await["code"], "token_too_young");
    assert_eq!(sim.stats(APPID).force_refresh_calls, 0);
    // Stable: a force refresh, then none for 30 s (WeChat's spacing).
    let res = report(app.address.clone(), first).await;
    assert_eq!(json_of(res).await["refreshed"], true);
    let second =
        json_of(get_with_key(&app.address, &token_path, &key).await).await["access_token"].clone();
    let res = report(app.address.clone(), second).await;
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((25..=30).contains(&wait), "{wait}");
    assert_eq!(json_of(res).await["code"], "force_refresh_limit");
    assert_eq!(sim.stats(APPID).force_refresh_calls, 1);
}

/// A read of the app's token: the token and when tokenvault says it expires,
/// or `None` for a 503.
pub(crate) async fn read(address: &str, key: &str) -> Option<(String, DateTime<Utc>)> {
    let res = get_with_key(address, &format!("/api/v1/apps/{APPID}/token"), key).await;
    if res.status() == 503 {
        return None;
    }
    assert_eq!(res.status(), 200);
    let body = json_of(res).await;
    Some((
        body["access_token"].as_str().unwrap().to_string(),
        body["expires_at"].as_str().unwrap().parse().unwrap(),
    ))
}

/// A token call whose answer is lost (the simulator answers after the
/// client's 2 s timeout, and still issues the token): `mode`'s app, read
/// for a while afterwards. Returns the token before, the reads after.
async fn a_call_times_out(mode: &str) -> (SimHandle, TestApp, String, String, DateTime<Utc>) {
    let sim = WeChatSimulator::start(SimConfig {
        token_lifetime: Duration::from_secs(30),
        ..SimConfig::fast()
    })
    .unwrap();
    sim.add_app(APPID, SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Slow Co", &format!("o@slow-{mode}.test")).await;
    let key = key(&owner, false).await;
    register(
        &owner,
        json!({ "appid": APPID, "secret": SECRET, "token_mode": mode }),
    )
    .await;
    let (before, _) = read(&app.address, &key).await.expect("a token");
    sim.inject(APPID, Fault::Latency { ms: 3000 }).unwrap();
    let attempt = Utc::now();
    let res = owner
        .post_json(&format!("/api/v1/apps/{APPID}/refresh"), &json!({}))
        .await;
    let body = json_of(res).await;
    assert_eq!(body["refresh"]["outcome"], "failure", "{body}");
    // Only that call is slow; its answer still comes, to nobody, at +3 s.
    sim.clear_faults(APPID).unwrap();
    (sim, app, key, before, attempt)
}

#[tokio::test]
async fn after_a_classic_call_of_unknown_outcome_no_dead_token_is_served() {
    let (sim, app, key, before, attempt) = a_call_times_out("classic").await;
    let issued = sim.stats(APPID).issued_tokens;
    // Served (if at all: the overlap may be over) only until the overlap ends.
    if let Some((token, expires_at)) = read(&app.address, &key).await {
        assert_eq!(token, before);
        assert!(
            expires_at <= attempt + chrono::Duration::milliseconds(1500),
            "trusted only for the 1 s overlap after the attempt, not until {expires_at}"
        );
    }
    let until = Instant::now() + Duration::from_secs(8);
    let mut served = Vec::new();
    while Instant::now() < until {
        if let Some((token, expires_at)) = read(&app.address, &key).await {
            let verdict = wechat_verdict(&sim, &token).await;
            let margin = Utc::now() + chrono::Duration::milliseconds(300);
            assert!(
                verdict == 0 || expires_at < margin,
                "served a token WeChat rejects ({verdict}) as valid until {expires_at}"
            );
            served.push(token);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        sim.stats(APPID).issued_tokens > issued,
        "the slow call issued its token after the client gave up"
    );
    let last = served.last().expect("a token again after the retry");
    assert_ne!(last, &before);
    assert_eq!(wechat_verdict(&sim, last).await, 0);
}

#[tokio::test]
async fn a_stable_call_of_unknown_outcome_changes_nothing() {
    let (sim, app, key, before, _) = a_call_times_out("stable").await;
    let (token, expires_at) = read(&app.address, &key).await.expect("still served");
    assert_eq!(token, before);
    assert!(
        expires_at > Utc::now() + chrono::Duration::seconds(20),
        "the stable token keeps its life: {expires_at}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        wechat_verdict(&sim, &token).await,
        0,
        "and WeChat still takes it"
    );
}

#[tokio::test]
async fn the_simulator_finishes_a_call_whose_client_gave_up() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    sim.inject(APPID, Fault::Latency { ms: 800 }).unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let res = client
        .get(format!(
            "{}/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}",
            sim.base_url()
        ))
        .send()
        .await;
    assert!(res.is_err_and(|e| e.is_timeout()));
    assert_eq!(sim.stats(APPID).issued_tokens, 0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        sim.stats(APPID).issued_tokens,
        1,
        "the token was issued although nobody received it"
    );
}
