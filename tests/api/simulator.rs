//! The WeChat simulator over real HTTP: token semantics, errcodes, faults,
//! counters, the control API and the `wechat-sim` command.

use std::io::{BufRead as _, BufReader};
use std::net::IpAddr;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::Client;
use serde_json::{Value, json};
use tokenvault::upstream::simulator::{
    AppStats, Fault, SimConfig, SimHandle, TokenKind, WeChatSimulator, errcode,
};

const APPID: &str = "wx0123456789abcdef";
const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn start(config: SimConfig) -> SimHandle {
    let sim = WeChatSimulator::start(config).expect("start the simulator");
    sim.add_app(APPID, SECRET);
    sim
}

async fn classic_with(client: &Client, sim: &SimHandle, query: &str) -> Value {
    client
        .get(format!("{}/cgi-bin/token?{query}", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn classic(client: &Client, sim: &SimHandle) -> Value {
    classic_with(
        client,
        sim,
        &format!("grant_type=client_credential&appid={APPID}&secret={SECRET}"),
    )
    .await
}

async fn stable_with(client: &Client, sim: &SimHandle, body: &Value) -> Value {
    client
        .post(format!("{}/cgi-bin/stable_token", sim.base_url()))
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn stable(client: &Client, sim: &SimHandle, force_refresh: bool) -> Value {
    let body = json!({
        "grant_type": "client_credential",
        "appid": APPID,
        "secret": SECRET,
        "force_refresh": force_refresh,
    });
    stable_with(client, sim, &body).await
}

/// The errcode the token-checking business API answers (0: valid).
async fn check(client: &Client, sim: &SimHandle, token: &str) -> i64 {
    let v: Value = client
        .get(format!("{}/cgi-bin/getcallbackip", sim.base_url()))
        .query(&[("access_token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    if v["ip_list"].is_array() {
        0
    } else {
        v["errcode"].as_i64().expect("an errcode or an ip_list")
    }
}

fn token(v: &Value) -> String {
    v["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a token, got {v}"))
        .to_string()
}

fn code(v: &Value) -> i64 {
    v["errcode"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected an errcode, got {v}"))
}

/// A success has exactly `access_token` and `expires_in`, as WeChat sends it.
fn assert_token_shape(v: &Value, expires_in: u64) {
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 2, "{v}");
    assert_eq!(v["expires_in"].as_u64(), Some(expires_in), "{v}");
    let t = token(v);
    assert!(
        t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    );
}

/// An error is `{"errcode", "errmsg"}` with the errmsg ending in ` rid: …`.
fn assert_error_shape(v: &Value, expected: i32) {
    assert_eq!(code(v), i64::from(expected), "{v}");
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 2, "{v}");
    let msg = v["errmsg"].as_str().unwrap();
    let (text, rid) = msg.rsplit_once(" rid: ").expect("errmsg ends with a rid");
    assert!(!text.is_empty());
    assert_eq!(rid.len(), 26, "{msg}");
}

#[tokio::test]
async fn classic_tokens_overlap_then_the_old_one_dies() {
    let sim = start(SimConfig {
        token_lifetime: Duration::from_secs(4),
        classic_overlap: Duration::from_secs(1),
        ..SimConfig::default()
    });
    let c = Client::new();
    let first = classic(&c, &sim).await;
    assert_token_shape(&first, 4);
    let second = classic(&c, &sim).await;
    let (t1, t2) = (token(&first), token(&second));
    assert_ne!(t1, t2, "every classic call issues a new token");
    assert_eq!(t1.len(), 157);
    assert_eq!(
        sim.current_token(APPID, TokenKind::Classic),
        Some(t2.clone())
    );
    assert_eq!(check(&c, &sim, &t1).await, 0, "valid during the overlap");
    assert_eq!(check(&c, &sim, &t2).await, 0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(check(&c, &sim, &t1).await, 40001, "superseded after it");
    assert_eq!(check(&c, &sim, &t2).await, 0);
    // Never issued, or no token at all.
    assert_eq!(check(&c, &sim, "86_not-a-real-token").await, 40014);
    let v: Value = c
        .get(format!("{}/cgi-bin/getcallbackip", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_error_shape(&v, 41001);

    let stats = sim.stats(APPID);
    assert_eq!(
        (stats.classic_calls, stats.classic_ok, stats.issued_tokens),
        (2, 2, 2)
    );
    assert_eq!(stats.check_calls, 4);
    sim.stop().await;
}

#[tokio::test]
async fn tokens_expire_with_42001_and_keep_any_length_whole() {
    let sim = start(SimConfig {
        token_lifetime: Duration::from_secs(1),
        token_length: 4096,
        ..SimConfig::default()
    });
    let c = Client::new();
    let t = token(&classic(&c, &sim).await);
    assert_eq!(t.len(), 4096);
    assert_eq!(check(&c, &sim, &t).await, 0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(check(&c, &sim, &t).await, 42001);
    assert_eq!(sim.current_token(APPID, TokenKind::Classic), None);
    sim.stop().await;
}

#[tokio::test]
async fn stable_token_is_the_same_until_the_renew_window_and_independent_of_classic() {
    let sim = start(SimConfig {
        token_lifetime: Duration::from_secs(3),
        stable_renew_window: Duration::from_secs(1),
        classic_overlap: Duration::from_secs(1),
        ..SimConfig::default()
    });
    let c = Client::new();
    let first = stable(&c, &sim, false).await;
    assert_token_shape(&first, 3);
    let s1 = token(&first);

    // Classic calls neither change nor kill the stable token.
    let classic_token = token(&classic(&c, &sim).await);
    token(&classic(&c, &sim).await);
    let again = stable(&c, &sim, false).await;
    assert_eq!(token(&again), s1, "same token while valid");
    assert!(again["expires_in"].as_u64().unwrap() <= 3);

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let renewed = stable(&c, &sim, false).await;
    let s2 = token(&renewed);
    assert_ne!(s2, s1, "a new token inside the renew window");
    assert_eq!(renewed["expires_in"], 3);
    assert_eq!(check(&c, &sim, &s1).await, 0, "the old one lives on");
    assert_eq!(token(&stable(&c, &sim, false).await), s2);
    assert_eq!(
        check(&c, &sim, &classic_token).await,
        40001,
        "superseded by the second classic call, not by stable calls"
    );

    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(check(&c, &sim, &s1).await, 42001, "until its own expiry");
    assert_eq!(check(&c, &sim, &s2).await, 0);
    assert_eq!(sim.current_token(APPID, TokenKind::Stable), Some(s2));

    let stats = sim.stats(APPID);
    assert_eq!((stats.stable_calls, stats.stable_ok), (4, 4));
    assert_eq!(stats.issued_tokens, 4, "2 classic + 2 stable");
    sim.stop().await;
}

#[tokio::test]
async fn force_refresh_kills_the_old_token_and_has_limits() {
    let sim = start(SimConfig {
        force_refresh_daily: 3,
        ..SimConfig::fast()
    });
    let c = Client::new();
    let s1 = token(&stable(&c, &sim, false).await);
    let f1 = token(&stable(&c, &sim, true).await);
    assert_ne!(f1, s1);
    assert_eq!(check(&c, &sim, &s1).await, 40001, "invalidated at once");
    assert_eq!(check(&c, &sim, &f1).await, 0);
    token(&stable(&c, &sim, true).await);
    let f3 = token(&stable(&c, &sim, true).await);
    assert_error_shape(&stable(&c, &sim, true).await, 45009);
    assert_eq!(
        check(&c, &sim, &f3).await,
        0,
        "a refused force changes nothing"
    );
    assert_eq!(token(&stable(&c, &sim, false).await), f3);
    assert_eq!(sim.stats(APPID).force_refresh_calls, 4);
    sim.stop().await;

    // Sooner than the minimum interval: the current token, unchanged.
    let sim = start(SimConfig {
        force_refresh_min_interval: Duration::from_secs(30),
        ..SimConfig::fast()
    });
    let f1 = token(&stable(&c, &sim, true).await);
    let f2 = token(&stable(&c, &sim, true).await);
    assert_eq!(f2, f1, "no refresh within 30 s");
    assert_eq!(check(&c, &sim, &f1).await, 0);
    assert_eq!(sim.stats(APPID).issued_tokens, 1);
    sim.stop().await;
}

#[tokio::test]
async fn quotas_run_out_and_clear_quota_resets_them() {
    let sim = start(SimConfig {
        daily_quota: 3,
        stable_minute_quota: 2,
        ..SimConfig::fast()
    });
    let c = Client::new();
    for _ in 0..3 {
        token(&classic(&c, &sim).await);
    }
    assert_error_shape(&classic(&c, &sim).await, 45009);
    assert_eq!(sim.stats(APPID).classic_calls, 4);
    assert_eq!(sim.stats(APPID).classic_ok, 3);

    for _ in 0..2 {
        token(&stable(&c, &sim, false).await);
    }
    assert_error_shape(&stable(&c, &sim, false).await, 45011);

    let clear = |appid: &str| {
        c.post(format!("{}/cgi-bin/clear_quota", sim.base_url()))
            .json(&json!({ "appid": appid }))
            .send()
    };
    let v: Value = clear(APPID).await.unwrap().json().await.unwrap();
    assert_eq!(v, json!({"errcode": 0, "errmsg": "ok"}));
    token(&classic(&c, &sim).await);
    token(&stable(&c, &sim, false).await);
    let v: Value = clear("wxunknown").await.unwrap().json().await.unwrap();
    assert_error_shape(&v, 40013);

    // The in-process handle does the same.
    token(&classic(&c, &sim).await);
    token(&classic(&c, &sim).await);
    assert_error_shape(&classic(&c, &sim).await, 45009);
    sim.reset_quota(APPID).unwrap();
    token(&classic(&c, &sim).await);
    sim.stop().await;
}

#[tokio::test]
async fn request_errors_answer_wechats_errcodes() {
    let sim = start(SimConfig::fast());
    let c = Client::new();
    let cases = [
        ("appid=wx1&secret=x", 40002),
        ("grant_type=password&appid=wx1&secret=x", 40002),
        ("grant_type=client_credential&secret=x", 41002),
        ("grant_type=client_credential&appid=&secret=x", 41002),
        ("grant_type=client_credential&appid=wx1", 41004),
        ("grant_type=client_credential&appid=wxnone&secret=x", 40013),
        (
            &format!("grant_type=client_credential&appid={APPID}&secret=short"),
            40125,
        ),
        (
            &format!(
                "grant_type=client_credential&appid={APPID}&secret=ffffffffffffffffffffffffffffffff"
            ),
            40001,
        ),
        ("%%%&&==&grant_type=%zz", 40002),
    ];
    for (query, expected) in cases {
        let res = c
            .get(format!("{}/cgi-bin/token?{query}", sim.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_error_shape(&res.json().await.unwrap(), expected);
    }

    // Stable token: POST JSON only.
    let url = format!("{}/cgi-bin/stable_token", sim.base_url());
    let v: Value = c.get(&url).send().await.unwrap().json().await.unwrap();
    assert_error_shape(&v, errcode::REQUIRE_POST);
    for body in [
        "not json",
        "[1,2]",
        r#"{"appid": 5}"#,
        r#"{"force_refresh": "yes"}"#,
    ] {
        let v: Value = c
            .post(&url)
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_error_shape(&v, 47001);
    }
    let v = stable_with(
        &c,
        &sim,
        &json!({"grant_type": "client_credential", "appid": APPID}),
    )
    .await;
    assert_error_shape(&v, 41004);
    let v = stable_with(
        &c,
        &sim,
        &json!({"grant_type": "client_credential", "appid": "wxnone", "secret": SECRET}),
    )
    .await;
    assert_error_shape(&v, 40013);
    let v: Value = c
        .get(format!("{}/cgi-bin/no_such_api", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_error_shape(&v, errcode::INVALID_URL);
    sim.stop().await;
}

#[tokio::test]
async fn every_errcode_of_api_md_can_be_injected() {
    let sim = start(SimConfig::fast());
    let c = Client::new();
    for code in errcode::INJECTABLE {
        let res = c
            .post(format!("{}/sim/apps/{APPID}/errcode", sim.base_url()))
            .json(&json!({"errcode": code, "times": 2}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204);
        let res = c
            .get(format!(
                "{}/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}",
                sim.base_url()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_error_shape(&res.json().await.unwrap(), code);
        assert_error_shape(&stable(&c, &sim, false).await, code);
    }
    // Each injection lasted exactly its two calls.
    token(&classic(&c, &sim).await);
    let stats = sim.stats(APPID);
    assert_eq!(stats.classic_calls, 18);
    assert_eq!(stats.classic_ok, 1);

    sim.inject_errcode(APPID, 40164, 1).unwrap();
    let v = classic(&c, &sim).await;
    assert!(
        v["errmsg"]
            .as_str()
            .unwrap()
            .starts_with("invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist rid: ")
    );
    let res = c
        .post(format!("{}/sim/apps/{APPID}/errcode", sim.base_url()))
        .json(&json!({"errcode": 12345}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    sim.stop().await;
}

#[tokio::test]
async fn the_ip_whitelist_answers_40164() {
    let sim = start(SimConfig::fast());
    let c = Client::new();
    let other: IpAddr = "10.1.2.3".parse().unwrap();
    sim.set_whitelist(APPID, Some(vec![other])).unwrap();
    for v in [classic(&c, &sim).await, stable(&c, &sim, false).await] {
        assert_error_shape(&v, 40164);
        assert!(
            v["errmsg"]
                .as_str()
                .unwrap()
                .starts_with("invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist rid: "),
            "{v}"
        );
    }
    // A wrong secret is reported before the address.
    let v = classic_with(
        &c,
        &sim,
        &format!("grant_type=client_credential&appid={APPID}&secret=short"),
    )
    .await;
    assert_error_shape(&v, 40125);
    sim.set_whitelist(APPID, Some(vec![other, "127.0.0.1".parse().unwrap()]))
        .unwrap();
    token(&classic(&c, &sim).await);
    sim.set_whitelist(APPID, None).unwrap();
    token(&stable(&c, &sim, false).await);
    assert!(sim.set_whitelist("wxnone", None).is_err());
    sim.stop().await;
}

#[tokio::test]
async fn faults_are_seen_by_clients() {
    let sim = start(SimConfig::fast());
    let c = Client::new();
    let url = format!(
        "{}/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}",
        sim.base_url()
    );

    sim.inject(APPID, Fault::Latency { ms: 300 }).unwrap();
    let started = Instant::now();
    token(&classic(&c, &sim).await);
    assert!(started.elapsed() >= Duration::from_millis(300));
    sim.clear_faults(APPID).unwrap();

    sim.inject(
        APPID,
        Fault::HttpStatus {
            status: 503,
            times: Some(1),
        },
    )
    .unwrap();
    let res = c.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("503 Service Unavailable")
    );
    token(&classic(&c, &sim).await);

    sim.inject(APPID, Fault::BadJson { times: Some(1) })
        .unwrap();
    let res = c.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.json::<Value>().await.is_err(), "not parseable");

    sim.inject(APPID, Fault::Busy { times: Some(2) }).unwrap();
    assert_error_shape(&classic(&c, &sim).await, -1);
    assert_error_shape(&stable(&c, &sim, false).await, -1);
    token(&classic(&c, &sim).await);

    sim.inject(APPID, Fault::Close { times: Some(1) }).unwrap();
    let err = c.get(&url).send().await.unwrap_err();
    assert!(!err.is_timeout(), "{err}");
    token(&classic(&c, &sim).await);

    sim.inject(APPID, Fault::Timeout { times: None }).unwrap();
    let impatient = Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = impatient.get(&url).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // The server does not notice the client leaving; clearing ends the hang.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sim.stats(APPID).in_flight, 1, "still hanging on the server");
    sim.clear_faults(APPID).unwrap();
    token(&classic(&c, &sim).await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(sim.stats(APPID).in_flight, 0);
    sim.inject(APPID, Fault::Timeout { times: Some(1) })
        .unwrap();
    impatient.get(&url).send().await.unwrap_err();

    assert!(
        sim.inject(
            APPID,
            Fault::HttpStatus {
                status: 200,
                times: None
            }
        )
        .is_err()
    );
    assert!(sim.inject("wxnone", Fault::Busy { times: None }).is_err());
    // Stopping does not wait for the hanging request.
    let started = Instant::now();
    sim.stop().await;
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn counters_and_max_in_flight_are_exact_under_concurrency() {
    let sim = start(SimConfig::fast());
    sim.inject(APPID, Fault::Latency { ms: 200 }).unwrap();
    let c = Client::new();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (c, url) = (c.clone(), sim.base_url());
        calls.spawn(async move {
            let res = if i % 2 == 0 {
                c.get(format!(
                    "{url}/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}"
                ))
                .send()
                .await
            } else {
                c.post(format!("{url}/cgi-bin/stable_token"))
                    .json(&json!({"grant_type": "client_credential", "appid": APPID, "secret": SECRET}))
                    .send()
                    .await
            };
            res.unwrap().json::<Value>().await.unwrap()
        });
    }
    let started = Instant::now();
    let mut stable_tokens = std::collections::HashSet::new();
    while let Some(v) = calls.join_next().await {
        let v = v.unwrap();
        if v.get("access_token").is_some() {
            stable_tokens.insert(token(&v));
        }
    }
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "latency must not serialise calls"
    );
    let stats = sim.stats(APPID);
    assert_eq!(
        stats,
        AppStats {
            classic_calls: 10,
            classic_ok: 10,
            stable_calls: 10,
            stable_ok: 10,
            force_refresh_calls: 0,
            check_calls: 0,
            in_flight: 0,
            max_in_flight: 20,
            issued_tokens: 11,
        }
    );
    assert_eq!(stable_tokens.len(), 11, "10 classic + one shared stable");
    sim.stop().await;
}

#[tokio::test]
async fn the_http_control_api_matches_the_handle() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    let c = Client::new();
    let base = sim.base_url();
    let res = c
        .put(format!("{base}/sim/apps/{APPID}"))
        .json(&json!({"secret": SECRET, "ip_whitelist": ["10.0.0.1"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_error_shape(&classic(&c, &sim).await, 40164);
    c.put(format!("{base}/sim/apps/{APPID}"))
        .json(&json!({"secret": SECRET}))
        .send()
        .await
        .unwrap();
    token(&classic(&c, &sim).await);

    let res = c
        .post(format!("{base}/sim/apps/{APPID}/faults"))
        .json(&json!({"kind": "busy", "times": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_error_shape(&classic(&c, &sim).await, -1);
    c.post(format!("{base}/sim/apps/{APPID}/faults"))
        .json(&json!({"kind": "busy"}))
        .send()
        .await
        .unwrap();
    assert_error_shape(&classic(&c, &sim).await, -1);
    let res = c
        .delete(format!("{base}/sim/apps/{APPID}/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    token(&classic(&c, &sim).await);

    let over_http: AppStats = c
        .get(format!("{base}/sim/apps/{APPID}/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http, sim.stats(APPID));
    assert_eq!(over_http.classic_calls, 5);
    assert_eq!(over_http.classic_ok, 2);
    let all: Value = c
        .get(format!("{base}/sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["apps"][APPID]["classic_calls"], 5);

    for (method, path, body, status) in [
        ("GET", "/sim/apps/wxnone/stats", Value::Null, 404),
        (
            "POST",
            "/sim/apps/wxnone/faults",
            json!({"kind": "busy"}),
            404,
        ),
        (
            "POST",
            &format!("/sim/apps/{APPID}/faults"),
            json!({"kind": "meteor"}),
            400,
        ),
        (
            "POST",
            &format!("/sim/apps/{APPID}/faults"),
            json!({"kind": "http_status", "status": 99}),
            400,
        ),
        ("PUT", "/sim/apps/wx2", json!({"no_secret": 1}), 400),
        ("GET", "/sim/nothing", Value::Null, 404),
    ] {
        let res = c
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{method} {path}");
        let v: Value = res.json().await.unwrap();
        assert!(v["error"].is_string());
    }

    let res = c.post(format!("{base}/sim/reset")).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(sim.stats(APPID), AppStats::default());
    assert_eq!(sim.current_token(APPID, TokenKind::Classic), None);
    token(&classic(&c, &sim).await);
    sim.stop().await;
}

#[tokio::test]
async fn the_wechat_sim_command_answers_curl_like_wechat() {
    let dir = tempfile::tempdir().unwrap();
    let apps = dir.path().join("apps.json");
    std::fs::write(
        &apps,
        json!([{"appid": APPID, "secret": SECRET}, {"appid": "wx2", "secret": SECRET}]).to_string(),
    )
    .unwrap();
    let sandbox = crate::helpers::Sandbox::new();
    let mut child = sandbox
        .tokenvault()
        .args(["wechat-sim", "--bind", "127.0.0.1:0", "--apps-file"])
        .arg(&apps)
        .args(["--token-lifetime", "60", "--demo"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let base = loop {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) else {
            panic!("wechat-sim did not start within 20 s; its log: {log:#?}");
        };
        log.push(line.clone());
        if let Some(addr) = line.split("WeChat simulator listening on ").nth(1) {
            break addr.trim().to_string();
        }
    };
    assert!(
        log.iter().any(|l| l.contains("loaded 2 apps from")),
        "the log names how many apps were loaded: {log:#?}"
    );
    // --demo: a mini-program to try tokenvault with, named in the log.
    let demo = loop {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) else {
            panic!("no demo app in the log: {log:#?}");
        };
        log.push(line.clone());
        if line.contains("demo mini-program:") {
            break line;
        }
    };
    let (demo_appid, demo_secret) = (tokenvault::cli::DEMO_APPID, tokenvault::cli::DEMO_SECRET);
    assert!(
        demo.contains(&format!("AppID {demo_appid}, AppSecret {demo_secret}")),
        "{demo}"
    );

    let c = Client::new();
    let v: Value = c
        .get(format!(
            "{base}/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_token_shape(&v, 60);
    let stable = |secret: &str| {
        c.post(format!("{base}/cgi-bin/stable_token"))
            .json(
                &json!({"grant_type": "client_credential", "appid": demo_appid, "secret": secret}),
            )
            .send()
    };
    let v: Value = stable(demo_secret).await.unwrap().json().await.unwrap();
    assert_token_shape(&v, 60);
    let v: Value = stable(SECRET).await.unwrap().json().await.unwrap();
    assert_eq!(v["errcode"], 40001, "{v}");

    kill(
        Pid::from_raw(i32::try_from(child.id()).unwrap()),
        Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
}
