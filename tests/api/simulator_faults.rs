//! The WeChat simulator's errors over real HTTP: WeChat's errcodes for bad
//! requests, injected errcodes and faults, the IP whitelist, exact counters
//! under concurrency and the control API.

use crate::simulator::{
    APPID, SECRET, assert_error_shape, classic, classic_with, stable, stable_with, start, token,
};
use reqwest::Client;
use serde_json::{Value, json};
use std::net::IpAddr;
use std::time::{Duration, Instant};
use tokenvault::upstream::simulator::{
    AppStats, Fault, SimConfig, TokenKind, WeChatSimulator, errcode,
};

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
            ticket_calls: 0,
            ticket_ok: 0,
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
