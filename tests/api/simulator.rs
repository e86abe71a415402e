//! The WeChat simulator over real HTTP: token semantics, errcodes, faults,
//! counters, the control API and the `wechat-sim` command.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::Client;
use serde_json::{Value, json};
use tokenvault::upstream::simulator::{SimConfig, SimHandle, TokenKind, WeChatSimulator};

pub(crate) const APPID: &str = "wx0123456789abcdef";
pub(crate) const SECRET: &str = "0123456789abcdef0123456789abcdef";

pub(crate) fn start(config: SimConfig) -> SimHandle {
    let sim = WeChatSimulator::start(config).expect("start the simulator");
    sim.add_app(APPID, SECRET);
    sim
}

pub(crate) async fn classic_with(client: &Client, sim: &SimHandle, query: &str) -> Value {
    client
        .get(format!("{}/cgi-bin/token?{query}", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub(crate) async fn classic(client: &Client, sim: &SimHandle) -> Value {
    classic_with(
        client,
        sim,
        &format!("grant_type=client_credential&appid={APPID}&secret={SECRET}"),
    )
    .await
}

pub(crate) async fn stable_with(client: &Client, sim: &SimHandle, body: &Value) -> Value {
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

pub(crate) async fn stable(client: &Client, sim: &SimHandle, force_refresh: bool) -> Value {
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

pub(crate) fn token(v: &Value) -> String {
    v["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a token, got {v}"))
        .to_string()
}

pub(crate) fn code(v: &Value) -> i64 {
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
pub(crate) fn assert_error_shape(v: &Value, expected: i32) {
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
