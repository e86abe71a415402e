//! Secure by default: revoked keys refused on every replica even when the
//! revocation races verifications in flight; replicas' host names for
//! operators only.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokenvault::upstream::simulator::{SimConfig, WeChatSimulator};

use crate::apps::{APPID, SECRET, json_of};
use crate::helpers::{
    PASSWORD, Sandbox, get_with_key, settings_from, sim_settings, spawn_app,
    spawn_app_with_settings,
};
use crate::ui_ops::create_operator;

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

/// A replica whose id names its host (as a configured id may): tenants see
/// only an opaque label in the refresh log and the service health; the
/// operator sees the id and the host name.
#[tokio::test]
async fn tenants_see_an_opaque_replica_label_and_operators_the_host() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    let mut settings = sim_settings(&sim.base_url());
    settings.replica_id = Some("db-host-7.internal-1234".into());
    let app = spawn_app_with_settings(settings).await;
    let owner = app.signup("Label Co", "l@label.test").await;
    let res = owner
        .post_json("/api/v1/apps", &json!({ "appid": APPID, "secret": SECRET }))
        .await;
    assert_eq!(res.status(), 201);
    let host = tokenvault::startup::hostname();
    let log = json_of(
        owner
            .get(&format!("/api/v1/apps/{APPID}/refresh-log"))
            .await,
    )
    .await;
    let entries = log["items"].as_array().unwrap();
    assert!(!entries.is_empty(), "{log}");
    for entry in entries {
        let replica = entry["replica"].as_str().unwrap();
        assert!(replica.starts_with("replica-"), "{entry}");
    }
    let for_tenant = owner
        .get("/api/v1/service-health")
        .await
        .text()
        .await
        .unwrap();
    assert!(!for_tenant.contains("db-host-7"), "{for_tenant}");
    assert!(!for_tenant.contains(&format!("\"{host}\"")), "{for_tenant}");
    let for_tenant: Value = serde_json::from_str(&for_tenant).unwrap();
    let label = for_tenant["answered_by"].as_str().unwrap();
    assert!(label.starts_with("replica-"), "{for_tenant}");
    assert_eq!(label, entries[0]["replica"].as_str().unwrap());

    let operator = create_operator(&app, "op@label.test").await;
    let for_operator = json_of(operator.get("/api/v1/service-health").await).await;
    assert_eq!(for_operator["answered_by"], "db-host-7.internal-1234");
    let item = &for_operator["replicas"]["items"][0];
    assert_eq!(item["id"], "db-host-7.internal-1234", "{for_operator}");
    assert_eq!(item["host"], host.as_str());
    assert_eq!(item["label"], label);
}

/// The default replica id names no host.
#[test]
fn the_default_replica_id_names_no_host() {
    let id = tokenvault::startup::replica_id(None);
    assert!(!id.contains(&tokenvault::startup::hostname()), "{id}");
    assert_ne!(id, tokenvault::startup::replica_id(None));
}

/// Sign up with a plain client; the answer.
async fn signup_answer(address: &str, email: &str) -> reqwest::Response {
    let body = json!({ "organization": "Https Co", "email": email, "password": PASSWORD });
    reqwest::Client::new()
        .post(format!("{address}/api/v1/signup"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Served at an `https://` public URL, tokenvault marks its session cookie
/// `Secure` and sends HSTS (the token read's fast path too) with nothing
/// else set; at no public URL, neither.
#[tokio::test]
async fn an_https_public_url_gives_secure_cookies_and_hsts() {
    let app = spawn_app_with_settings(settings_from(&[
        "--public-url",
        "https://vault.example.com",
    ]))
    .await;
    let res = signup_answer(&app.address, "h@https.test").await;
    assert_eq!(res.status(), 201);
    let hsts = res.headers().get("strict-transport-security").unwrap();
    assert_eq!(hsts, "max-age=31536000");
    let cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(
        cookie.contains("; Secure") || cookie.contains(";Secure"),
        "{cookie}"
    );
    let health = app.get("/healthz").await;
    assert!(health.headers().contains_key("strict-transport-security"));

    let plain = spawn_app().await;
    let res = signup_answer(&plain.address, "p@plain.test").await;
    assert_eq!(res.status(), 201);
    assert!(!res.headers().contains_key("strict-transport-security"));
    let cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(!cookie.contains("Secure"), "{cookie}");
}

/// Sign up with a plain client sending `header`; the answer.
async fn signup_with(address: &str, email: &str, header: (&str, &str)) -> reqwest::Response {
    let body = json!({ "organization": "Proxy Co", "email": email, "password": PASSWORD });
    reqwest::Client::new()
        .post(format!("{address}/api/v1/signup"))
        .header(header.0, header.1)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Whether an answer has a `Secure` session cookie and HSTS (both or neither).
fn secure_and_hsts(res: &reqwest::Response) -> bool {
    let cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap();
    let secure = cookie.split(';').any(|p| p.trim() == "Secure");
    let hsts = res.headers().contains_key("strict-transport-security");
    assert_eq!(secure, hsts, "{cookie}");
    secure
}

/// Behind a trusted proxy that says the request came over HTTPS
/// (`X-Forwarded-Proto` or `Forwarded`), the session cookie is `Secure` and
/// HSTS is sent, with no public URL set; the same headers from a peer that
/// is not a trusted proxy change nothing.
#[tokio::test]
async fn a_trusted_proxy_saying_https_gives_secure_cookies_and_hsts() {
    let app = spawn_app_with_settings(settings_from(&["--trusted-proxies", "127.0.0.1"])).await;
    let a = &app.address;
    let res = signup_with(a, "x@proxy.test", ("x-forwarded-proto", "https")).await;
    assert_eq!(res.status(), 201);
    assert!(secure_and_hsts(&res));
    let res = signup_with(
        a,
        "f@proxy.test",
        ("forwarded", "for=192.0.2.1;proto=https"),
    )
    .await;
    assert!(secure_and_hsts(&res));
    let res = signup_with(a, "h@proxy.test", ("x-forwarded-proto", "http")).await;
    assert!(!secure_and_hsts(&res));
    let health = reqwest::Client::new()
        .get(format!("{a}/healthz"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(health.headers().contains_key("strict-transport-security"));
    assert!(
        !app.get("/healthz")
            .await
            .headers()
            .contains_key("strict-transport-security")
    );

    // The same headers from an untrusted peer: ignored.
    let untrusted =
        spawn_app_with_settings(settings_from(&["--trusted-proxies", "10.0.0.0/8"])).await;
    let u = &untrusted.address;
    let res = signup_with(u, "x@untrusted.test", ("x-forwarded-proto", "https")).await;
    assert_eq!(res.status(), 201);
    assert!(!secure_and_hsts(&res));
    let res = signup_with(u, "f@untrusted.test", ("forwarded", "proto=https")).await;
    assert!(!secure_and_hsts(&res));
}

/// An `http://` WeChat API base off this machine stops the start (the
/// appsecret would cross the network in clear text), unless allowed
/// explicitly; a database password in the URL's query is never shown.
#[test]
fn a_clear_text_upstream_stops_the_start_unless_allowed() {
    let sandbox = Sandbox::new();
    let out = sandbox
        .tokenvault()
        .args(["--wechat-api-base", "http://api.weixin.qq.com", "migrate"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("TOKENVAULT_INSECURE_UPSTREAM"), "{stderr}");
    // WeCom's API base, which carries the WeCom apps' secrets, likewise.
    let out = sandbox
        .tokenvault()
        .args(["--wecom-api-base", "http://qyapi.weixin.qq.com", "migrate"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("TOKENVAULT_WECOM_API_BASE"), "{stderr}");

    // Allowed explicitly, the start goes on to the next problem: a
    // database that is not there, named without its password.
    let out = sandbox
        .tokenvault()
        .args([
            "--wechat-api-base",
            "http://api.weixin.qq.com",
            "--insecure-upstream",
            "true",
        ])
        .args([
            "--database-url",
            "postgres://u@127.0.0.1:1/x?password=hunter2",
            "migrate",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(!stderr.contains("TOKENVAULT_INSECURE_UPSTREAM"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");

    // A password file that cannot be read is named.
    let out = sandbox
        .tokenvault()
        .args(["--database-url", "postgres://u@127.0.0.1:1/x"])
        .args([
            "--database-password-file",
            "/nonexistent/db-password",
            "migrate",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("TOKENVAULT_DATABASE_PASSWORD_FILE"),
        "{stderr}"
    );
}

/// One rule for the secret's hint: owners and admins signed in see it; no
/// API key does, read-only or not.
#[tokio::test]
async fn the_secret_hint_is_for_people_never_for_keys() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    let app = spawn_app_with_settings(sim_settings(&sim.base_url())).await;
    let owner = app.signup("Hint Co", "h@hint.test").await;
    let res = owner
        .post_json("/api/v1/apps", &json!({ "appid": APPID, "secret": SECRET }))
        .await;
    assert_eq!(res.status(), 201);
    let path = format!("/api/v1/apps/{APPID}");
    let shown = json_of(owner.get(&path).await).await;
    assert_eq!(shown["secret_hint"], "***cdef");
    for read_only in [false, true] {
        let key = owner
            .create_key(json!({ "name": format!("k{read_only}"), "read_only": read_only }))
            .await;
        let res = get_with_key(&app.address, &path, key["key"].as_str().unwrap()).await;
        assert_eq!(res.status(), 200);
        let shown: Value = res.json().await.unwrap();
        assert!(
            shown.get("secret_hint").is_none(),
            "read_only {read_only}: {shown}"
        );
    }
}
