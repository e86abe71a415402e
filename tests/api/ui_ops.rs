//! Pages about the service: the live health page and its JSON (here), the
//! operator overview (`ui_ops/operator.rs`), the HTML 404 page
//! (`ui_ops/not_found.rs`), and keys limited to apps from the keys page
//! (`ui_ops/keys.rs`).

mod keys;
mod not_found;
mod operator;

use std::time::Duration;
use tokenvault::domain::health::replica_label;

use secrecy::SecretString;
use serde_json::{Value, json};
use tokenvault::domain::{Email, Role};
use tokenvault::upstream::simulator::{Fault, SimConfig, SimHandle, WeChatSimulator};
use uuid::Uuid;

use crate::apps::{APPID, OTHER_SECRET, SECRET};
use crate::helpers::{Browser, PASSWORD, TestApp, get_with_key, spawn_app_with_sim};

/// A second and a third app of the simulator.
const APPID_B: &str = "wx00000000000000b2";
const APPID_C: &str = "wx00000000000000c3";

/// Create an operator with the database function the CLI uses, and sign
/// them in.
pub(crate) async fn create_operator(app: &TestApp, email: &str) -> Browser {
    let hash = tokenvault::auth::password::hash(SecretString::from(PASSWORD))
        .await
        .unwrap();
    let parsed = Email::parse("email", email).unwrap();
    tokenvault::db::accounts::insert_user(
        &app.pool,
        tokenvault::domain::UserId::new(),
        None,
        &parsed,
        &hash,
        Role::Operator,
    )
    .await
    .unwrap();
    // Operators must sign in with two factors: enrol at the first sign-in.
    let operator = app.login(email, PASSWORD).await;
    operator.enrol_totp().await;
    operator
}

/// Register an app through the JSON API; returns the answer.
async fn register(owner: &Browser, appid: &str, secret: &str, mode: &str) -> Value {
    let res = owner
        .post_json(
            "/api/v1/apps",
            &json!({ "appid": appid, "secret": secret, "token_mode": mode }),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json().await.unwrap()
}

async fn health_of(b: &Browser) -> Value {
    let res = b.get("/api/v1/service-health").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.json().await.unwrap()
}

async fn html(b: &Browser, path: &str) -> (u16, String) {
    let res = b
        .client
        .get(format!("{}{path}", b.address))
        .header("Accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Wait (at most 15 s) until `check` holds for the service health.
async fn health_when(b: &Browser, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..150 {
        let h = health_of(b).await;
        if check(&h) {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: never seen in {}", health_of(b).await);
}

fn sim_with_apps() -> SimHandle {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    sim.add_app(APPID_B, SECRET);
    sim.add_app(APPID_C, SECRET);
    sim
}

#[tokio::test]
async fn the_health_page_shows_replicas_lag_and_upstream_errors_as_they_are() {
    let sim = sim_with_apps();
    // The health is measured at most once per TOKENVAULT_STATS_CACHE_SECONDS:
    // the shortest, so that each change below shows within a second.
    let mut settings = crate::helpers::sim_settings(&sim.base_url());
    settings.stats_cache_seconds = 1;
    let app = crate::helpers::spawn_app_with_settings(settings).await;
    let owner = app.signup("Health Co", "h@health.test").await;
    let registered = register(&owner, APPID, SECRET, "classic").await;
    assert_eq!(registered["health"], "healthy");

    // This replica's heartbeat shows it alive; tenants do not see host names.
    let h = health_when(&owner, "an alive replica", |h| {
        h["replicas"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == h["answered_by"] && r["alive"] == true)
    })
    .await;
    let me = h["answered_by"].as_str().unwrap().to_string();
    let item = h["replicas"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == me.as_str())
        .unwrap()
        .clone();
    assert_eq!(item["version"], env!("CARGO_PKG_VERSION"));
    assert!(item["host"].is_null(), "host names are for operators");
    assert_eq!(h["database"]["reachable"], true);
    assert!(h["database"]["latency_ms"].as_f64().unwrap() >= 0.0);
    assert!(h["database"]["pool_max"].as_u64().unwrap() >= 1);
    assert_eq!(h["scheduler"]["overdue_apps"], 0);
    assert_eq!(h["status"], "ok", "{h}");

    // A replica that stopped heartbeating is listed as stale; one gone for
    // hours is not listed.
    sqlx::query(
        "insert into replicas (id, hostname, version, started_at, last_seen_at) values
           ('gone-quiet', 'host-q', '0.0.9', now() - interval '1 hour', now() - interval '10 minutes'),
           ('long-gone', 'host-l', '0.0.8', now() - interval '3 hours', now() - interval '2 hours')",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    // Tenants see replicas by their opaque labels, never by id or host.
    let gone_quiet = replica_label("gone-quiet");
    let long_gone = replica_label("long-gone");
    let h = health_when(&owner, "the replicas written to the database", |h| {
        h["replicas"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == gone_quiet.as_str())
    })
    .await;
    let ids: Vec<&str> = h["replicas"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&gone_quiet.as_str()) && !ids.contains(&long_gone.as_str()),
        "{ids:?}"
    );
    assert_eq!(h["replicas"]["stale"], 1);
    let (status, page) = html(&owner, "/status").await;
    assert_eq!(status, 200);
    assert!(page.contains(&format!("<code>{me}</code>")), "{page}");
    assert!(page.contains(&format!("<code>{gone_quiet}</code>")));
    assert!(!page.contains("gone-quiet"), "no replica ids for tenants");
    assert!(page.contains("0.0.9"));
    assert!(!page.contains("host-q"), "no host names for tenants");
    assert!(page.contains("data-source=\"/api/v1/service-health\""));
    assert!(!page.contains("<script>"), "no inline script");

    // A replica stuck on an app: the row is held (as a refresh in flight
    // holds it) and its refresh was due five minutes ago. Lag and the
    // overdue count show it; once it lets go, the app is refreshed and the
    // lag is gone.
    let app_id: Uuid = sqlx::query_scalar("select id from apps where appid = $1")
        .bind(APPID)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let mut stuck = app.pool.begin().await.unwrap();
    sqlx::query("select 1 from token_state where app_id = $1 for key share")
        .bind(app_id)
        .execute(&mut *stuck)
        .await
        .unwrap();
    sqlx::query(
        "update token_state set next_refresh_at = now() - interval '5 minutes' where app_id = $1",
    )
    .bind(app_id)
    .execute(&app.pool)
    .await
    .unwrap();
    let h = health_when(&owner, "the overdue app", |h| {
        h["scheduler"]["overdue_apps"] == 1
    })
    .await;
    assert_eq!(h["scheduler"]["overdue_apps"], 1, "{h}");
    assert_eq!(h["scheduler"]["due_apps"], 1);
    let lag = h["scheduler"]["lag_seconds"].as_f64().unwrap();
    assert!((299.0..400.0).contains(&lag), "{lag}");
    assert_eq!(h["scheduler"]["status"], "lagging");
    assert_eq!(h["status"], "degraded");
    let (_, page) = html(&owner, "/status").await;
    assert!(
        page.contains("data-field=\"scheduler.overdue_apps\">1<"),
        "{page}"
    );
    let shown: f64 = page
        .split_once("data-field=\"scheduler.lag_seconds\" data-format=\"s\">")
        .and_then(|(_, rest)| rest.split_once(" s<"))
        .map(|(n, _)| n.parse().unwrap())
        .expect("the lag on the page");
    assert!(shown >= 299.0, "{shown}");
    stuck.rollback().await.unwrap();
    health_when(&owner, "the lag gone after the row was let go", |h| {
        h["scheduler"]["overdue_apps"] == 0 && h["scheduler"]["lag_seconds"] == 0.0
    })
    .await;

    // WeChat's gateway fails: every refresh now is an upstream error.
    let before = health_of(&owner).await["upstream"].clone();
    let attempts_before = before["attempts"].as_i64().unwrap();
    assert!(attempts_before >= 1, "the registration counts: {before}");
    sim.inject(
        APPID,
        Fault::HttpStatus {
            status: 502,
            times: None,
        },
    )
    .unwrap();
    for _ in 0..4 {
        let res = crate::helpers::refresh_now(&owner, APPID).await;
        assert!(res.status().is_success(), "{}", res.status());
    }
    let h = health_when(&owner, "four upstream errors", |h| {
        h["upstream"]["upstream_errors"].as_i64().unwrap() >= 4
    })
    .await;
    let up = &h["upstream"];
    let logged: (i64, i64) = sqlx::query_as(
        "select count(*) filter (where outcome <> 'skipped'),
                count(*) filter (where error_class = 'transient') from refresh_log",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(up["attempts"], logged.0, "{up}");
    assert_eq!(up["upstream_errors"], logged.1);
    let rate = up["upstream_error_rate"].as_f64().unwrap();
    #[allow(clippy::cast_precision_loss)]
    let expected = logged.1 as f64 / logged.0 as f64;
    assert!((rate - expected).abs() < 0.001, "{rate} vs {expected}");
    assert!(rate >= 0.5, "{up}");
    assert!(up["failure_rate"].as_f64().unwrap() >= rate);
    assert!(up["p50_ms"].as_f64().is_some() && up["p95_ms"].as_f64().is_some());
    assert_eq!(up["status"], "failing");
    assert_eq!(h["status"], "degraded");
    let (_, page) = html(&owner, "/status").await;
    assert!(
        page.contains(&format!(
            "data-field=\"upstream.upstream_errors\">{}<",
            up["upstream_errors"]
        )),
        "{page}"
    );
    assert!(page.contains("data-field=\"upstream.status\" data-format=\"label\">failing<"));

    // Signed out: no health, neither page nor JSON.
    let anonymous = app.browser();
    assert_eq!(anonymous.get("/api/v1/service-health").await.status(), 401);
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/status", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login?next=%2Fstatus");
}
