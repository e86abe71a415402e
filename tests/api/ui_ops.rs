//! Pages about the service: the live health page and its JSON, the
//! operator overview, the HTML 404 page, and keys limited to apps from the
//! keys page.

use std::time::Duration;

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
    app.login(email, PASSWORD).await
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
    let h = health_when(&owner, "the replicas written to the database", |h| {
        h["replicas"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "gone-quiet")
    })
    .await;
    let ids: Vec<&str> = h["replicas"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"gone-quiet") && !ids.contains(&"long-gone"),
        "{ids:?}"
    );
    assert_eq!(h["replicas"]["stale"], 1);
    let (status, page) = html(&owner, "/status").await;
    assert_eq!(status, 200);
    assert!(page.contains(&format!("<code>{me}</code>")), "{page}");
    assert!(page.contains("<code>gone-quiet</code>"));
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

#[tokio::test]
async fn operators_see_every_tenant_and_failing_app_and_nobody_else_does() {
    let sim = sim_with_apps();
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let one = app.signup("<b>Evil</b> & Co", "one@t.test").await;
    register(&one, APPID, SECRET, "stable").await;
    // A wrong secret: registered, failing with WeChat's errcode.
    let failing = register(&one, APPID_B, OTHER_SECRET, "stable").await;
    assert_eq!(failing["health"], "failing", "{failing}");
    let key = one.create_key(json!({ "name": "k" })).await;
    let key = key["key"].as_str().unwrap().to_string();
    let two = app.signup("Tenant Two", "two@t.test").await;
    app.invite_and_join(&two, "viewer", "viewer@t.test").await;
    let errcode: i32 = sqlx::query_scalar(
        "select s.last_errcode from token_state s join apps a on a.id = s.app_id where a.appid = $1",
    )
    .bind(APPID_B)
    .fetch_one(&app.pool)
    .await
    .unwrap();

    let ops = create_operator(&app, "ops@service.test").await;
    let (status, page) = html(&ops, "/operator").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("&lt;b&gt;Evil"), "{page}");
    assert!(!page.contains("<b>Evil</b>"), "names are escaped");
    assert!(page.contains("Tenant Two"));
    assert!(
        page.contains("Organisations: 2 · Apps: 2 (1 healthy, 1 failing)"),
        "{page}"
    );
    // Tenant one: 1 member, 2 apps, one healthy and one failing; two: 2 members.
    assert!(page.contains("<span class=\"badge badge-healthy\">1 healthy</span>"));
    assert!(page.contains("<span class=\"badge badge-failing\">1 failing</span>"));
    assert!(page.contains("no apps yet"));
    // The failing app with its errcode, explained; nothing secret.
    assert!(page.contains(APPID_B));
    assert!(page.contains(&format!("errcode {errcode}")), "{page}");
    for secret in [
        SECRET,
        OTHER_SECRET,
        key.as_str(),
        "tvk_",
        "access_token\":",
    ] {
        assert!(!page.contains(secret), "{secret} on the operator page");
    }
    let token = sim
        .current_token(APPID, tokenvault::upstream::simulator::TokenKind::Stable)
        .unwrap();
    assert!(!page.contains(&token));
    // Operators land on their overview, and their nav has no tenant pages.
    assert!(page.contains("href=\"/operator\" aria-current=\"page\""));
    assert!(page.contains("href=\"/status\""));
    assert!(!page.contains("href=\"/keys\""));
    let res = ops.get("/dashboard").await;
    assert_eq!(res.url().path(), "/operator");
    let res = ops.get("/").await;
    assert_eq!(res.url().path(), "/operator");
    // Operators see replicas' host names on the health page.
    let h = health_when(&ops, "a replica", |h| {
        !h["replicas"]["items"].as_array().unwrap().is_empty()
    })
    .await;
    assert!(h["replicas"]["items"][0]["host"].is_string(), "{h}");

    // Owners and viewers are refused, with nothing of the overview.
    let viewer = app.login("viewer@t.test", PASSWORD).await;
    for (who, b) in [("owner", &one), ("viewer", &viewer)] {
        let (status, page) = html(b, "/operator").await;
        assert_eq!(status, 403, "{who}");
        assert!(!page.contains("ops-summary"), "{who}");
        assert!(!page.contains(APPID_B), "{who}");
        assert!(
            !page.contains("href=\"/operator\""),
            "no nav link for {who}"
        );
    }
    let (_, dashboard) = html(&one, "/dashboard").await;
    assert!(!dashboard.contains("href=\"/operator\""));
    assert!(dashboard.contains("href=\"/status\""));
    // An API key is no operator either.
    let res = get_with_key(&app.address, "/operator", &key).await;
    assert_eq!(res.url().path(), "/login", "sent to sign in");
}

#[tokio::test]
async fn unknown_pages_answer_html_in_the_visitors_language_and_the_api_problem_json() {
    let sim = sim_with_apps();
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let anonymous = app.browser();
    let res = anonymous
        .client
        .get(format!("{}/no/such/page", app.address))
        .header("Accept", "text/html")
        .header("Accept-Language", "zh-CN,zh;q=0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = res.text().await.unwrap();
    assert!(page.contains("<html lang=\"zh-CN\">"));
    assert!(page.contains("找不到该页面"), "{page}");
    assert!(page.contains("href=\"/login\""));

    let owner = app.signup("Lost Co", "lost@t.test").await;
    for path in [
        "/no/such/page",
        "/apps/wx0000000000000000",
        "/apps/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/keys/extra/segments/here",
    ] {
        let (status, page) = html(&owner, path).await;
        assert_eq!(status, 404, "{path}");
        assert!(page.contains("Page not found"), "{path}: {page}");
        assert!(page.contains("href=\"/dashboard\""), "{path}");
        assert!(!page.contains("<script>alert"), "{path}");
    }
    // Another tenant's app is as unknown as a missing one.
    let other = app.signup("Other Co", "other@t.test").await;
    register(&other, APPID_C, SECRET, "stable").await;
    let (status, page) = html(&owner, &format!("/apps/{APPID_C}")).await;
    assert_eq!(status, 404);
    assert!(page.contains("Page not found"));

    // The API and machine clients keep problem+json, whatever they accept.
    for (path, accept) in [
        ("/api/v1/no-such-endpoint", "text/html"),
        ("/api/v1/apps/x/y/z", "text/html"),
        ("/cgi-bin/nothing", "text/html"),
        ("/no/such/page", "application/json"),
        ("/no/such/page", "*/*"),
    ] {
        let res = owner
            .client
            .get(format!("{}{path}", app.address))
            .header("Accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{path} {accept}"
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "not_found");
    }
}

async fn key_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from api_keys")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Fields of a form post, in order.
type FormFields<'a> = Vec<(&'a str, &'a str)>;

async fn post_key_form(b: &Browser, fields: &[(&str, &str)]) -> (u16, String) {
    let mut form = vec![("csrf_token", b.csrf.as_str())];
    form.extend_from_slice(fields);
    let res = b
        .client
        .post(format!("{}/keys", b.address))
        .form(&form)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The shown-once key on the keys page after creating one.
fn shown_key(page: &str) -> String {
    let (_, rest) = page
        .split_once("id=\"new-key\">")
        .expect("the new key is shown");
    rest.split('<').next().unwrap().to_string()
}

#[tokio::test]
async fn a_key_limited_to_an_app_on_the_keys_page_reads_only_that_app() {
    let sim = sim_with_apps();
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Keys Co", "keys@t.test").await;
    register(&owner, APPID, SECRET, "stable").await;
    register(&owner, APPID_B, SECRET, "stable").await;
    let other = app.signup("Other Co", "other@t.test").await;
    register(&other, APPID_C, SECRET, "stable").await;

    let (status, page) = html(&owner, "/keys").await;
    assert_eq!(status, 200);
    assert!(page.contains(&format!("name=\"apps\" value=\"{APPID}\"")));
    assert!(page.contains(&format!("name=\"apps\" value=\"{APPID_B}\"")));
    assert!(!page.contains(APPID_C), "another tenant's app is no choice");
    assert!(page.contains("<legend>Apps this key may use</legend>"));

    // Bad input: field errors next to the fields, input kept and escaped,
    // no 500, nothing stored.
    let long = "x".repeat(10_000);
    let evil = "<script>alert('k')</script>";
    let sql = "'; drop table api_keys; --";
    let too_many: Vec<String> = (0..101).map(|i| format!("wx{i:016x}")).collect();
    let mut many: Vec<(&str, &str)> = vec![("name", "many")];
    many.extend(too_many.iter().map(|a| ("apps", a.as_str())));
    let cases: Vec<(&str, FormFields, &[&str])> = vec![
        (
            "another tenant's app",
            vec![("name", evil), ("apps", APPID_C)],
            &["e-apps"],
        ),
        (
            "SQL and an unknown app beside a good one",
            vec![("name", sql), ("apps", APPID), ("apps", "wx' or 1=1 --")],
            &["e-apps"],
        ),
        (
            "emoji and a 10,000-character app",
            vec![("name", "🔑 钥匙"), ("apps", long.as_str())],
            &["e-apps"],
        ),
        (
            "a 10,000-character name",
            vec![("name", long.as_str()), ("read_only", "1")],
            &["e-name"],
        ),
        ("nothing", vec![("name", "")], &["e-name"]),
        (
            "nothing and another tenant's app",
            vec![("name", "  "), ("apps", APPID_C)],
            &["e-name", "e-apps"],
        ),
        ("101 apps", many.clone(), &["e-apps"]),
    ];
    for (what, fields, errors) in &cases {
        let (status, page) = post_key_form(&owner, fields).await;
        assert_eq!(status, 422, "{what}: {page}");
        for e in *errors {
            assert!(page.contains(&format!("id=\"{e}\"")), "{what}: {e}");
        }
        assert!(!page.contains(evil), "{what}: escaped");
        assert!(!page.contains("id=\"new-key\""), "{what}: no key");
        assert!(!page.contains(APPID_C), "{what}: no other tenant's app");
    }
    assert_eq!(key_count(&app).await, 0, "nothing stored");
    // What was typed is kept: the escaped name, the ticked app, read-only.
    let (_, page) = post_key_form(&owner, &[("name", evil), ("apps", APPID_C)]).await;
    assert!(
        page.contains("value=\"&lt;script&gt;alert(&#x27;k&#x27;)&lt;&#x2f;script&gt;\""),
        "{page}"
    );
    assert!(page.contains("is no longer in your organisation"));
    let (_, page) = post_key_form(
        &owner,
        &[
            ("name", sql),
            ("apps", APPID),
            ("apps", "wxnope"),
            ("read_only", "1"),
        ],
    )
    .await;
    assert!(
        page.contains(&format!("value=\"{APPID}\" checked")),
        "{page}"
    );
    assert!(!page.contains(&format!("value=\"{APPID_B}\" checked")));
    assert!(page.contains("name=\"read_only\" value=\"1\" checked"));
    // In Chinese, the error is Chinese.
    let res = owner
        .client
        .post(format!("{}/keys", app.address))
        .header("Accept-Language", "zh-CN")
        .form(&[
            ("csrf_token", owner.csrf.as_str()),
            ("name", "k"),
            ("apps", APPID_C),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("所选的小程序已不在本组织中")
    );
    // A stale form: nothing stored, back to the page with a message.
    let res = owner
        .client
        .post(format!("{}/keys", app.address))
        .form(&[("csrf_token", "stale"), ("name", "k"), ("apps", APPID)])
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains("out of date"));
    assert_eq!(key_count(&app).await, 0);

    // A key limited to the first app, from the form.
    let (status, page) =
        post_key_form(&owner, &[("name", "shop server 🛒"), ("apps", APPID)]).await;
    assert_eq!(status, 201, "{page}");
    let key = shown_key(&page);
    assert!(key.starts_with("tvk_"));
    assert!(
        page.contains(&format!(
            "&#x2f;api&#x2f;v1&#x2f;apps&#x2f;{APPID}&#x2f;token"
        )),
        "the snippet reads an app the key may read"
    );
    let limited: (bool, bool, Vec<String>) = sqlx::query_as(
        "select k.limited_to_apps, k.read_only,
                array(select a.appid from api_key_apps ka join apps a on a.id = ka.app_id where ka.api_key_id = k.id)
           from api_keys k",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(limited, (true, false, vec![APPID.to_string()]));
    let path = |appid: &str| format!("/api/v1/apps/{appid}/token");
    assert_eq!(
        get_with_key(&app.address, &path(APPID), &key)
            .await
            .status(),
        200
    );
    assert_eq!(
        get_with_key(&app.address, &path(APPID_B), &key)
            .await
            .status(),
        403
    );
    assert_eq!(
        get_with_key(&app.address, &path(APPID_C), &key)
            .await
            .status(),
        404,
        "another tenant's app stays unknown"
    );
    // The list says what it is limited to; a key without apps reads every app.
    let (_, page) = html(&owner, "/keys").await;
    let row = page
        .split("<tr")
        .find(|r| r.contains("shop server"))
        .expect("the key's row");
    assert!(row.contains(&format!("<code>{APPID}</code>")), "{row}");
    assert!(!row.contains("all apps"));
    let (status, page) = post_key_form(&owner, &[("name", "everything"), ("read_only", "1")]).await;
    assert_eq!(status, 201);
    let all = shown_key(&page);
    assert_eq!(
        get_with_key(&app.address, &path(APPID_B), &all)
            .await
            .status(),
        200
    );
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/apps/{APPID_B}/refresh", app.address))
        .bearer_auth(&all)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "read-only");
    let (_, page) = html(&owner, "/keys").await;
    let row = page
        .split("<tr")
        .find(|r| r.contains("everything"))
        .unwrap();
    assert!(
        row.contains("all apps") && row.contains("read-only"),
        "{row}"
    );
    // Once its only app is deleted, the limited key stays limited, and says so.
    let res = owner.delete(&format!("/api/v1/apps/{APPID}")).await;
    assert!(res.status().is_success());
    let (_, page) = html(&owner, "/keys").await;
    let row = page
        .split("<tr")
        .find(|r| r.contains("shop server"))
        .unwrap();
    assert!(row.contains("none left"), "{row}");
    assert_eq!(
        get_with_key(&app.address, &path(APPID_B), &key)
            .await
            .status(),
        403
    );
}
