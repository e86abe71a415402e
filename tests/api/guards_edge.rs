//! The shared resources are guarded: client addresses behind trusted
//! proxies, failed-key throttling and the refused-key cache, bounded
//! password hashing, and a sign-in throttle that cannot lock an owner out.
//! The helpers here serve the other guard tests too.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, get_with_key, settings_from, spawn_app_with_settings};

/// A token for `/metrics` in these tests.
pub(crate) const METRICS_TOKEN: &str = "metrics-token-for-tests-0123";
/// A WeChat API base that refuses connections at once (nothing listens on
/// port 9): apps registered without verification never reach the internet.
pub(crate) const NO_WECHAT: &str = "http://127.0.0.1:9";

/// Start the service with these flags (beside a dead WeChat and the metrics token).
pub(crate) async fn spawn(args: &[&str]) -> TestApp {
    let mut all = vec![
        "--wechat-api-base",
        NO_WECHAT,
        "--metrics-token",
        METRICS_TOKEN,
    ];
    all.extend_from_slice(args);
    spawn_app_with_settings(settings_from(&all)).await
}

/// A made-up key of the right shape, different for each `n`.
pub(crate) fn bogus_key(n: usize) -> String {
    format!("tvk_bogus{:03}_{:0>43}", n % 1000, n)
}

/// The value of the metric line that starts with `series` (name and labels).
pub(crate) async fn metric(app: &TestApp, series: &str) -> f64 {
    let text = scrape(app).await;
    text.lines()
        .find_map(|line| {
            line.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

pub(crate) async fn scrape(app: &TestApp) -> String {
    let res = app
        .client
        .get(format!("{}/metrics", app.address))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

/// A request from `client`, as a proxy at 127.0.0.1 would forward it.
pub(crate) fn from(builder: reqwest::RequestBuilder, client: &str) -> reqwest::RequestBuilder {
    builder.header("X-Forwarded-For", client)
}

pub(crate) async fn body(res: reqwest::Response) -> Value {
    res.json().await.unwrap_or(Value::Null)
}

/// Sign up with `X-Forwarded-For: xff` (if any); returns the address the
/// audit log recorded for it.
pub(crate) async fn signup_address(app: &TestApp, email: &str, xff: Option<&[u8]>) -> String {
    let mut req = app
        .client
        .post(format!("{}/api/v1/signup", app.address))
        .json(&json!({ "organization": "Addr Co", "email": email, "password": PASSWORD }));
    if let Some(xff) = xff {
        req = req.header(
            "X-Forwarded-For",
            reqwest::header::HeaderValue::from_bytes(xff).unwrap(),
        );
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    sqlx::query_scalar(
        "select l.client_ip from audit_log l join users u on u.id = l.actor_user_id
          where l.action = 'tenant.created' and u.email = $1",
    )
    .bind(email)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
    let untrusted = spawn(&[]).await;
    assert_eq!(
        signup_address(&untrusted, "a@xff.test", Some(b"198.51.100.7")).await,
        "127.0.0.1",
        "a peer that is no trusted proxy is the client"
    );
    let trusted = spawn(&["--trusted-proxies", "127.0.0.1/32"]).await;
    assert_eq!(
        signup_address(&trusted, "b@xff.test", Some(b"198.51.100.7")).await,
        "198.51.100.7"
    );
    // The right-most address that is no trusted proxy: what a client
    // writes on the left changes nothing.
    assert_eq!(
        signup_address(
            &trusted,
            "c@xff.test",
            Some(b"203.0.113.1, 198.51.100.8, 127.0.0.1")
        )
        .await,
        "198.51.100.8"
    );
    assert_eq!(
        signup_address(&trusted, "d@xff.test", None).await,
        "127.0.0.1"
    );
    // An IPv6 client is recorded as itself (throttled per /64).
    assert_eq!(
        signup_address(&trusted, "e@xff.test", Some(b"2001:db8::5")).await,
        "2001:db8::5"
    );
}

#[tokio::test]
async fn garbage_forwarded_for_never_fails_the_request() {
    let app = spawn(&["--trusted-proxies", "127.0.0.1/32,10.0.0.0/8"]).await;
    let long_chain = format!("{}198.51.100.9", "1.2.3.4, ".repeat(500));
    let garbage: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"unknown".to_vec(),
        b", , ,".to_vec(),
        b"198.51.100.1, not-an-address".to_vec(),
        b"999.1.1.1".to_vec(),
        b"[::1".to_vec(),
        vec![0xff, 0xfe, 0x80],
        "x".repeat(6000).into_bytes(),
        long_chain.clone().into_bytes(),
        b"10.0.0.1, 10.0.0.2".to_vec(),
    ];
    for (i, xff) in garbage.iter().enumerate() {
        let value = reqwest::header::HeaderValue::from_bytes(xff).unwrap();
        for (method, path) in [
            ("GET", "/healthz"),
            ("GET", "/api/v1/apps"),
            ("POST", "/api/v1/login"),
        ] {
            let res = app
                .client
                .request(method.parse().unwrap(), format!("{}{path}", app.address))
                .header("X-Forwarded-For", value.clone())
                .header("Authorization", format!("Bearer {}", bogus_key(i)))
                .json(&json!({ "email": "nobody@xff.test", "password": "wrong password" }))
                .send()
                .await
                .unwrap();
            assert!(
                res.status().as_u16() < 500,
                "{method} {path} with X-Forwarded-For #{i}: {}",
                res.status()
            );
        }
    }
    // Garbage falls back to the trusted hop; a long chain is read from the right.
    let garbage_at = signup_address(&app, "g@xff.test", Some(b"198.51.100.1, junk")).await;
    assert_eq!(garbage_at, "127.0.0.1");
    let long_at = signup_address(&app, "l@xff.test", Some(long_chain.as_bytes())).await;
    assert_eq!(long_at, "198.51.100.9");
    let proxies_only = signup_address(&app, "p@xff.test", Some(b"10.0.0.1, 10.0.0.2")).await;
    assert_eq!(
        proxies_only, "10.0.0.1",
        "the left-most trusted hop reached"
    );
}

#[tokio::test]
async fn a_flood_of_bogus_keys_is_refused_before_the_database() {
    let app = spawn(&[
        "--trusted-proxies",
        "127.0.0.1/32",
        "--failed-key-auth-per-minute",
        "5",
    ])
    .await;
    let owner = app.signup("Flood Co", "o@flood.test").await;
    let key = owner.create_key(json!({ "name": "server" })).await;
    let key = key["key"].as_str().unwrap().to_string();
    // The good key, used once from the flooding address: it is now cached.
    let res = from(
        app.client
            .get(format!("{}/api/v1/apps", app.address))
            .bearer_auth(&key),
        "198.51.100.20",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let lookups_before = metric(&app, "tokenvault_api_key_lookups_total").await;

    let mut statuses = Vec::new();
    for n in 0..30 {
        let res = from(
            app.client
                .get(format!("{}/api/v1/apps", app.address))
                .bearer_auth(bogus_key(n)),
            "198.51.100.20",
        )
        .send()
        .await
        .unwrap();
        let status = res.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait: u64 = res.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&wait), "{wait}");
            let problem = body(res).await;
            assert_eq!(problem["code"], "too_many_failed_key_attempts", "{problem}");
        }
        statuses.push(status.as_u16());
    }
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    let lookups = metric(&app, "tokenvault_api_key_lookups_total").await - lookups_before;
    assert!(
        (lookups - 5.0).abs() < f64::EPSILON,
        "only the 5 failures within the budget reach the database: {lookups}"
    );
    assert!(metric(&app, "tokenvault_key_auth_throttled_total").await >= 25.0);
    // Malformed keys count too (they never reach the database).
    let mut malformed = Vec::new();
    for _ in 0..6 {
        let res = from(
            app.client
                .get(format!("{}/api/v1/apps", app.address))
                .bearer_auth("not-a-key"),
            "198.51.100.22",
        )
        .send()
        .await
        .unwrap();
        malformed.push(res.status().as_u16());
    }
    assert_eq!(malformed, [401, 401, 401, 401, 401, 429]);

    // The cached good key keeps working from the throttled address.
    let res = from(
        app.client
            .get(format!("{}/api/v1/apps", app.address))
            .bearer_auth(&key),
        "198.51.100.20",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    // Another address (another /64) is not throttled.
    let res = from(
        app.client
            .get(format!("{}/api/v1/apps", app.address))
            .bearer_auth(bogus_key(99)),
        "198.51.100.21",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 401);

    // The WeChat-compatible endpoint follows the same rule, in WeChat's shape.
    let mut codes = Vec::new();
    for n in 100..108 {
        let res = from(
            app.client.get(format!(
                "{}/cgi-bin/token?grant_type=client_credential&appid=wx0123456789abcdef&secret={}",
                app.address,
                bogus_key(n)
            )),
            "2001:db8:77::1",
        )
        .send()
        .await
        .unwrap();
        assert_eq!(res.status(), 200, "WeChat's shape: always HTTP 200");
        let answer = body(res).await;
        codes.push(answer["errcode"].as_i64().unwrap());
    }
    assert_eq!(&codes[..5], &[40125; 5], "{codes:?}");
    assert!(codes[5..].iter().all(|c| *c == 45011), "{codes:?}");
    // The same /64 is the same client.
    let res = from(
        app.client.post(format!("{}/cgi-bin/stable_token", app.address)),
        "2001:db8:77::abcd",
    )
    .json(&json!({ "grant_type": "client_credential", "appid": "wx0123456789abcdef", "secret": bogus_key(200) }))
    .send()
    .await
    .unwrap();
    let answer = body(res).await;
    assert_eq!(answer["errcode"], 45011, "{answer}");
    assert!(
        answer["errmsg"]
            .as_str()
            .unwrap()
            .contains("api minute-quota reach limit")
    );
}

#[tokio::test]
async fn a_refused_key_is_remembered_and_a_revoked_one_refused_at_once() {
    let app = spawn(&[]).await;
    let owner = app.signup("Cache Co", "o@cache.test").await;
    let before = metric(&app, "tokenvault_api_key_lookups_total").await;
    let unknown = bogus_key(1);
    for _ in 0..10 {
        let res = get_with_key(&app.address, "/api/v1/apps", &unknown).await;
        assert_eq!(res.status(), 401);
    }
    let lookups = metric(&app, "tokenvault_api_key_lookups_total").await - before;
    assert!(
        (lookups - 1.0).abs() < f64::EPSILON,
        "one lookup, nine refusals from memory: {lookups}"
    );
    assert!(metric(&app, "tokenvault_api_key_refusals_remembered_total").await >= 9.0);

    // A key in use, then revoked: refused at the next request.
    let created = owner.create_key(json!({ "name": "soon revoked" })).await;
    let key = created["key"].as_str().unwrap();
    assert_eq!(
        get_with_key(&app.address, "/api/v1/apps", key)
            .await
            .status(),
        200
    );
    let res = owner
        .delete(&format!(
            "/api/v1/api-keys/{}",
            created["id"].as_str().unwrap()
        ))
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = get_with_key(&app.address, "/api/v1/apps", key)
            .await
            .status();
        if status == 401 {
            break;
        }
        assert!(Instant::now() < deadline, "revoked key still admitted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And a remembered refusal never admits anything: a new key works.
    let fresh = owner.create_key(json!({ "name": "fresh" })).await;
    assert_eq!(
        get_with_key(&app.address, "/api/v1/apps", fresh["key"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_flood_of_sign_ins_waits_for_few_password_hashers_and_gets_busy_not_500() {
    let app = spawn(&[
        "--password-hash-concurrency",
        "1",
        "--password-hash-wait-ms",
        "100",
        "--login-attempts-per-address",
        "100000",
        "--login-attempts-per-account",
        "1000",
    ])
    .await;
    app.signup("Hash Co", "o@hash.test").await;
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let client = app.client.clone();
            let url = format!("{}/api/v1/login", app.address);
            tokio::spawn(async move {
                let res = client
                    .post(url)
                    .json(&json!({ "email": format!("u{i}@hash.test"), "password": "wrong password" }))
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                let retry = res.headers().get("retry-after").is_some();
                let code = body(res).await["code"].as_str().unwrap_or("").to_string();
                (status, retry, code)
            })
        })
        .collect();
    let mut busy = 0;
    for t in tasks {
        let (status, retry, code) = t.await.unwrap();
        match status {
            401 => {}
            503 => {
                assert_eq!(code, "busy");
                assert!(retry, "503 busy carries Retry-After");
                busy += 1;
            }
            other => panic!("unexpected {other} {code}"),
        }
    }
    assert!(busy > 0, "with one hasher and a 100 ms wait, some are busy");
    let max = metric(&app, "tokenvault_password_hashes_in_flight_max").await;
    assert!(
        (max - 1.0).abs() < f64::EPSILON,
        "never more than one hash at once: {max}"
    );
    assert!(metric(&app, "tokenvault_password_hash_busy_total").await >= f64::from(busy));
    // The flood over, sign-in works.
    app.login("o@hash.test", PASSWORD).await;
}

#[tokio::test]
async fn a_stranger_guessing_passwords_cannot_lock_the_owner_out() {
    // Default limits: 5 attempts per account a minute.
    let app = spawn(&["--trusted-proxies", "127.0.0.1/32"]).await;
    app.signup("Lock Co", "owner@lock.test").await;
    let login = |client: &str, password: &str| {
        from(
            app.client
                .post(format!("{}/api/v1/login", app.address))
                .json(&json!({ "email": "owner@lock.test", "password": password })),
            client,
        )
        .send()
    };
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(
            login("203.0.113.66", "wrong password")
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert!(
        statuses[5..].iter().all(|s| *s == 429),
        "the stranger's own address is held: {statuses:?}"
    );
    // The owner, elsewhere, with the right password: in, at most slowed down.
    let started = Instant::now();
    let res = login("198.51.100.5", PASSWORD).await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The stranger is still refused; the per-address limit still holds.
    let res = login("203.0.113.66", PASSWORD).await.unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
}
