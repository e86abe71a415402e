//! The app registry against the WeChat simulator: register (verified), list,
//! show, edit, delete; secrets never come back; bad input is refused.

use serde_json::{Value, json};
use tokenvault::upstream::simulator::{SimConfig, SimHandle, TokenKind, WeChatSimulator};

use crate::helpers::{Browser, TestApp, get_with_key, spawn_app_with_sim};

pub const APPID: &str = "wx1234567890abcdef";
pub const SECRET: &str = "0123456789abcdef0123456789abcdef";
pub const OTHER_SECRET: &str = "fedcba9876543210fedcba9876543210";

pub(crate) async fn json_of(res: reqwest::Response) -> Value {
    res.json().await.expect("json body")
}

/// A simulator that knows `APPID` with `SECRET`, the service talking to it,
/// and the owner of a new organisation, signed in.
pub(crate) async fn with_owner(
    config: SimConfig,
    org: &str,
    email: &str,
) -> (SimHandle, TestApp, Browser) {
    let sim = WeChatSimulator::start(config).unwrap();
    sim.add_app(APPID, SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup(org, email).await;
    (sim, app, owner)
}

/// As [`with_owner`] (fast simulator), with `APPID` registered and verified.
pub async fn with_owner_and_app(org: &str, email: &str) -> (SimHandle, TestApp, Browser) {
    let (sim, app, owner) = with_owner(SimConfig::fast(), org, email).await;
    let res = owner
        .post_json("/api/v1/apps", &json!({ "appid": APPID, "secret": SECRET }))
        .await;
    assert_eq!(
        res.status(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
    (sim, app, owner)
}

#[tokio::test]
async fn register_a_mini_program_and_see_it_verified() {
    let (sim, _app, owner) = with_owner(SimConfig::fast(), "Mini Co", "o@mini.test").await;

    let res = owner
        .post_json(
            "/api/v1/apps",
            &json!({ "appid": APPID, "secret": SECRET, "name": "商城小程序" }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let text = res.text().await.unwrap();
    assert!(!text.contains(SECRET), "the secret never comes back");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["verification"]["ok"], true, "{body}");
    assert_eq!(body["health"], "healthy");
    assert_eq!(body["token_mode"], "stable");
    assert!(body["token"]["expires_in"].as_i64().unwrap() > 0);

    let shown = json_of(owner.get(&format!("/api/v1/apps/{APPID}")).await).await;
    assert_eq!(shown["secret_hint"], "***cdef");
    assert_eq!(shown["name"], "商城小程序");
    let list = json_of(owner.get("/api/v1/apps").await).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // The token the owner reads is the one WeChat issued.
    let token = json_of(owner.get(&format!("/api/v1/apps/{APPID}/token")).await).await;
    assert_eq!(
        token["access_token"].as_str().unwrap(),
        sim.current_token(APPID, TokenKind::Stable).unwrap()
    );
    let stats = sim.stats(APPID);
    assert_eq!(stats.stable_calls, 1, "registration fetched exactly once");

    // Registering the same appid again is a clear conflict.
    let res = owner
        .post_json("/api/v1/apps", &json!({ "appid": APPID, "secret": SECRET }))
        .await;
    assert_eq!(res.status(), 409);
    assert_eq!(json_of(res).await["code"], "app_exists");
}

#[tokio::test]
async fn a_wrong_secret_is_reported_with_wechats_errcode_explained() {
    let (_sim, _app, owner) = with_owner(SimConfig::fast(), "Wrong Co", "o@wrong.test").await;
    let res = owner
        .post_json(
            "/api/v1/apps",
            &json!({ "appid": APPID, "secret": OTHER_SECRET, "token_mode": "classic" }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let body = json_of(res).await;
    let v = &body["verification"];
    assert_eq!(v["ok"], false);
    assert_eq!(v["errcode"], 40001);
    assert_eq!(v["class"], "configuration");
    assert!(
        v["explanation"]["fix_zh"]
            .as_str()
            .unwrap()
            .contains("AppSecret")
    );
    assert!(
        v["explanation"]["fix_en"]
            .as_str()
            .unwrap()
            .contains("AppSecret")
    );
    assert_eq!(body["health"], "failing");
    assert_eq!(body["last_error"]["errcode"], 40001);

    // The token read says why there is none.
    let res = owner.get(&format!("/api/v1/apps/{APPID}/token")).await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let problem = json_of(res).await;
    assert_eq!(problem["code"], "token_unavailable");
    assert_eq!(problem["errcode"], 40001);

    // Fixing the secret makes it healthy again.
    let res = owner
        .client
        .patch(format!("{}/api/v1/apps/{APPID}", owner.address))
        .header("X-CSRF-Token", &owner.csrf)
        .json(&json!({ "secret": SECRET }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = owner
        .post_json(&format!("/api/v1/apps/{APPID}/refresh"), &json!({}))
        .await;
    let body = json_of(res).await;
    assert_eq!(body["refresh"]["ok"], true, "{body}");
    assert_eq!(body["health"], "healthy");
}

#[tokio::test]
async fn edit_disable_enable_and_delete() {
    let (sim, app, owner) = with_owner(SimConfig::fast(), "Edit Co", "o@edit.test").await;
    owner
        .post_json(
            "/api/v1/apps",
            &json!({ "appid": APPID, "secret": SECRET, "verify": false }),
        )
        .await;
    let edit = |body: Value| {
        owner
            .client
            .patch(format!("{}/api/v1/apps/{APPID}", owner.address))
            .header("X-CSRF-Token", &owner.csrf)
            .json(&body)
            .send()
    };
    let res = edit(json!({ "name": "Renamed", "secondary_secret": OTHER_SECRET }))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = json_of(res).await;
    assert_eq!(body["name"], "Renamed");
    assert_eq!(body["has_secondary_secret"], true);
    let body = json_of(edit(json!({ "secondary_secret": null })).await.unwrap()).await;
    assert_eq!(body["has_secondary_secret"], false);

    let body = json_of(edit(json!({ "enabled": false })).await.unwrap()).await;
    assert_eq!(body["health"], "disabled");
    let calls_when_disabled = sim.stats(APPID).stable_calls;
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert_eq!(
        sim.stats(APPID).stable_calls,
        calls_when_disabled,
        "a disabled app is not refreshed"
    );
    let body = json_of(edit(json!({ "enabled": true })).await.unwrap()).await;
    assert_eq!(body["enabled"], true);

    let res = edit(json!({ "appid": "wx0000000000000000" }))
        .await
        .unwrap();
    assert_eq!(res.status(), 422, "appid cannot be edited");
    let res = edit(json!({ "secret": "not-hex" })).await.unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(json_of(res).await["errors"][0]["field"], "secret");

    assert_eq!(
        owner
            .delete(&format!("/api/v1/apps/{APPID}"))
            .await
            .status(),
        204
    );
    assert_eq!(
        owner.get(&format!("/api/v1/apps/{APPID}")).await.status(),
        404
    );
    let rows: i64 = sqlx::query_scalar("select count(*) from token_state")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "the token row went with the app");
}

#[tokio::test]
async fn bad_registrations_are_refused_with_field_errors() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Bad Co", "o@bad.test").await;
    let cases = [
        (json!({ "appid": "wx123", "secret": SECRET }), vec!["appid"]),
        (json!({ "appid": APPID, "secret": "short" }), vec!["secret"]),
        (
            json!({ "appid": "nope", "secret": "nope", "name": "" }),
            vec!["appid", "secret", "name"],
        ),
        (
            json!({ "appid": APPID, "secret": SECRET, "secondary_secret": "x" }),
            vec!["secondary_secret"],
        ),
        (
            json!({ "appid": APPID, "secret": SECRET, "name": "<script>\u{202E}" }),
            vec!["name"],
        ),
    ];
    for (body, fields) in cases {
        let res = owner.post_json("/api/v1/apps", &body).await;
        assert_eq!(res.status(), 422, "{body}");
        let problem = json_of(res).await;
        let got: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(got, fields, "{body}");
        assert!(!problem.to_string().contains(SECRET));
    }
    for body in [
        json!({ "appid": APPID }),
        json!({ "appid": APPID, "secret": SECRET, "extra": 1 }),
        json!({ "appid": APPID, "secret": SECRET, "token_mode": "fast" }),
    ] {
        let res = owner.post_json("/api/v1/apps", &body).await;
        assert_eq!(res.status(), 422, "{body}");
    }
    let apps: i64 = sqlx::query_scalar("select count(*) from apps")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(apps, 0);
    assert_eq!(owner.get("/api/v1/apps/not-an-appid").await.status(), 404);
    assert_eq!(
        owner.get("/api/v1/apps/wx0000000000000000").await.status(),
        404
    );
    assert_eq!(
        owner
            .get(&format!("/api/v1/apps/{APPID}/token?min_ttl=-1"))
            .await
            .status(),
        400
    );
    assert_eq!(
        owner
            .get(&format!("/api/v1/apps/{APPID}/token?min_ttl=abc"))
            .await
            .status(),
        400
    );
    assert_eq!(
        owner
            .get(&format!(
                "/api/v1/apps/{APPID}/token?min_ttl=99999999999999999999"
            ))
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn long_tokens_are_kept_whole_and_nothing_secret_is_stored_in_plain_text() {
    let sim = WeChatSimulator::start(SimConfig {
        token_length: 4096,
        ..SimConfig::fast()
    })
    .unwrap();
    sim.add_app(APPID, SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Long Co", "o@long.test").await;
    let key = owner.create_key(json!({ "name": "server" })).await;
    owner
        .post_json(
            "/api/v1/apps",
            &json!({ "appid": APPID, "secret": SECRET, "token_mode": "classic" }),
        )
        .await;
    let res = get_with_key(
        &app.address,
        &format!("/api/v1/apps/{APPID}/token"),
        key["key"].as_str().unwrap(),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let token = json_of(res).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(token.len(), 4096);
    assert_eq!(token, sim.current_token(APPID, TokenKind::Classic).unwrap());

    // Nothing in the database holds the secret or the token in plain text.
    let dump: Vec<String> = sqlx::query_scalar(
        "select row_to_json(t)::text from (select * from apps) t
         union all select row_to_json(t)::text from (select * from token_state) t
         union all select row_to_json(t)::text from (select * from refresh_log) t
         union all select row_to_json(t)::text from (select * from audit_log) t",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let dump = dump.join("\n");
    // bytea prints as hex: look for both forms.
    for needle in [
        SECRET.to_string(),
        hex::encode(SECRET),
        token[..64].to_string(),
        hex::encode(&token[..64]),
    ] {
        assert!(!dump.contains(&needle), "found {needle} in the database");
    }
}
