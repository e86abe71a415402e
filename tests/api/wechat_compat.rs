//! The WeChat-compatible token endpoints over real HTTP: the managed token in
//! WeChat's success shape, WeChat's errcodes for bad requests, nothing that
//! tells tenants apart, and never a secret in an answer.

use std::time::Duration;

use serde_json::{Value, json};
use tokenvault::upstream::simulator::{Fault, SimConfig, WeChatSimulator};

use crate::helpers::{Browser, TestApp, get_with_key, spawn_app_with_sim};

const APPID: &str = "wx00000000000c0a01";
const OTHER_APPID: &str = "wx00000000000c0a02";
const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// What a request gets wrong, its query, and WeChat's errcode for it.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, i64);

/// Tokens that live long enough not to roll over during a test.
fn sim_config() -> SimConfig {
    SimConfig {
        token_lifetime: Duration::from_secs(120),
        ..SimConfig::fast()
    }
}

async fn register(owner: &Browser, appid: &str) -> Value {
    let res = owner
        .post_json("/api/v1/apps", &json!({ "appid": appid, "secret": SECRET }))
        .await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

async fn new_key(owner: &Browser, body: Value) -> String {
    owner.create_key(body).await["key"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `GET /cgi-bin/token` with these query pairs; checks the transport parts
/// every answer shares and returns the body.
async fn classic(app: &TestApp, query: &[(&str, &str)]) -> Value {
    let res = app
        .client
        .get(format!("{}/cgi-bin/token", app.address))
        .query(query)
        .send()
        .await
        .unwrap();
    wechat_answer(res).await
}

/// `POST /cgi-bin/stable_token` with this raw body.
async fn stable_raw(app: &TestApp, body: impl Into<reqwest::Body>) -> Value {
    let res = app
        .client
        .post(format!("{}/cgi-bin/stable_token", app.address))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    wechat_answer(res).await
}

async fn stable(app: &TestApp, body: &Value) -> Value {
    stable_raw(app, body.to_string()).await
}

async fn wechat_answer(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), 200, "WeChat answers errors with HTTP 200 too");
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = res.json().await.unwrap();
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert!(
        keys == ["access_token", "expires_in"] || keys == ["errcode", "errmsg"],
        "exactly WeChat's fields: {body}"
    );
    body
}

fn errcode(body: &Value) -> i64 {
    body["errcode"]
        .as_i64()
        .unwrap_or_else(|| panic!("an errcode answer: {body}"))
}

/// The token tokenvault's REST API hands out for `appid`.
async fn managed_token(app: &TestApp, key: &str, appid: &str) -> String {
    let res = get_with_key(&app.address, &format!("/api/v1/apps/{appid}/token"), key).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn both_endpoints_answer_the_managed_token_in_wechats_shape() {
    let sim = WeChatSimulator::start(sim_config()).unwrap();
    sim.add_app(APPID, SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Compat Co", "o@compat.test").await;
    register(&owner, APPID).await;
    let key = new_key(&owner, json!({ "name": "sdk" })).await;
    let managed = managed_token(&app, &key, APPID).await;

    let body = classic(
        &app,
        &[
            ("grant_type", "client_credential"),
            ("appid", APPID),
            ("secret", &key),
        ],
    )
    .await;
    assert_eq!(body["access_token"], managed.as_str(), "{body}");
    let expires_in = body["expires_in"].as_i64().unwrap();
    assert!(
        (1..=120).contains(&expires_in),
        "remaining seconds: {expires_in}"
    );

    for force_refresh in [json!(false), json!(true), Value::Null] {
        let mut req = json!({ "grant_type": "client_credential", "appid": APPID, "secret": key });
        if !force_refresh.is_null() {
            req["force_refresh"] = force_refresh;
        }
        let body = stable(&app, &req).await;
        assert_eq!(body["access_token"], managed.as_str(), "{body}");
        assert!(body["expires_in"].as_i64().unwrap() >= 1);
    }
    assert_eq!(
        sim.stats(APPID).stable_calls,
        1,
        "only registration asked WeChat; force_refresh does not reach it"
    );

    // The token works against WeChat's business APIs.
    let check: Value = reqwest::get(format!(
        "{}/cgi-bin/getcallbackip?access_token={managed}",
        sim.base_url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(check["ip_list"].is_array(), "{check}");

    // Read-only keys read tokens too.
    let ro = new_key(&owner, json!({ "name": "ro", "read_only": true })).await;
    let body = classic(
        &app,
        &[
            ("grant_type", "client_credential"),
            ("appid", APPID),
            ("secret", &ro),
        ],
    )
    .await;
    assert_eq!(body["access_token"], managed.as_str());
}

#[tokio::test]
async fn bad_requests_get_wechats_errcodes_and_never_a_secret() {
    let sim = WeChatSimulator::start(sim_config()).unwrap();
    sim.add_app(APPID, SECRET);
    sim.add_app(OTHER_APPID, SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Bad Input Co", "o@bad.test").await;
    register(&owner, APPID).await;
    register(&owner, OTHER_APPID).await;
    let key = new_key(&owner, json!({ "name": "sdk" })).await;
    let limited = new_key(&owner, json!({ "name": "one app", "apps": [OTHER_APPID] })).await;
    let revoked = owner.create_key(json!({ "name": "old" })).await;
    let res = owner
        .delete(&format!(
            "/api/v1/api-keys/{}",
            revoked["id"].as_str().unwrap()
        ))
        .await;
    assert!(res.status().is_success());
    let revoked = revoked["key"].as_str().unwrap().to_string();
    // A key of another organisation, whose own app is registered there too.
    let stranger = app.signup("Other Org", "o@other.test").await;
    let foreign_appid = "wx00000000000c0a03";
    sim.add_app(foreign_appid, SECRET);
    register(&stranger, foreign_appid).await;
    let foreign_key = new_key(&stranger, json!({ "name": "theirs" })).await;
    // Well-formed, never issued.
    let forged = format!("tvk_abcdefgh_{}", "a".repeat(43));

    let gt = ("grant_type", "client_credential");
    let cases: Vec<Case> = vec![
        (
            "no grant_type",
            vec![("appid", APPID), ("secret", &key)],
            40002,
        ),
        (
            "wrong grant_type",
            vec![
                ("grant_type", "password"),
                ("appid", APPID),
                ("secret", &key),
            ],
            40002,
        ),
        ("no appid", vec![gt, ("secret", &key)], 41002),
        (
            "empty appid",
            vec![gt, ("appid", ""), ("secret", &key)],
            41002,
        ),
        ("no secret", vec![gt, ("appid", APPID)], 41004),
        (
            "empty secret",
            vec![gt, ("appid", APPID), ("secret", "")],
            41004,
        ),
        (
            "malformed appid",
            vec![gt, ("appid", "not-an-appid"), ("secret", &key)],
            40013,
        ),
        (
            "unknown appid",
            vec![gt, ("appid", "wx00000000000c0aff"), ("secret", &key)],
            40013,
        ),
        (
            "another tenant's appid",
            vec![gt, ("appid", foreign_appid), ("secret", &key)],
            40013,
        ),
        (
            "our appid with another tenant's key",
            vec![gt, ("appid", APPID), ("secret", &foreign_key)],
            40013,
        ),
        (
            "an app the limited key may not use",
            vec![gt, ("appid", APPID), ("secret", &limited)],
            40013,
        ),
        (
            "a WeChat appsecret instead of a key",
            vec![gt, ("appid", APPID), ("secret", SECRET)],
            40125,
        ),
        (
            "a forged key",
            vec![gt, ("appid", APPID), ("secret", &forged)],
            40125,
        ),
        (
            "a revoked key",
            vec![gt, ("appid", APPID), ("secret", &revoked)],
            40125,
        ),
    ];
    let secrets = [
        key.as_str(),
        &limited,
        &revoked,
        &foreign_key,
        &forged,
        SECRET,
    ];
    let mut unknown_answer = None;
    for (what, query, expected) in &cases {
        let body = classic(&app, query).await;
        assert_eq!(errcode(&body), *expected, "{what}: {body}");
        let text = body.to_string();
        for s in secrets {
            assert!(
                !text.contains(&s[4..]),
                "{what}: a secret was echoed: {text}"
            );
        }
        if *what == "unknown appid" {
            unknown_answer = Some(body["errmsg"].clone());
        }
        if *what == "another tenant's appid" {
            assert_eq!(
                Some(body["errmsg"].clone()),
                unknown_answer,
                "another tenant's app looks exactly like an unknown one"
            );
        }
    }

    // The limited key still reads its own app.
    let body = classic(&app, &[gt, ("appid", OTHER_APPID), ("secret", &limited)]).await;
    assert_eq!(
        body["access_token"],
        managed_token(&app, &key, OTHER_APPID).await.as_str()
    );

    // The same mapping on the stable endpoint, plus its own body rules.
    let body = stable(&app, &json!({ "appid": APPID, "secret": key })).await;
    assert_eq!(errcode(&body), 40002);
    let body = stable(
        &app,
        &json!({ "grant_type": "client_credential", "secret": key }),
    )
    .await;
    assert_eq!(errcode(&body), 41002);
    let body = stable(
        &app,
        &json!({ "grant_type": "client_credential", "appid": APPID }),
    )
    .await;
    assert_eq!(errcode(&body), 41004);
    let body = stable(
        &app,
        &json!({ "grant_type": "client_credential", "appid": foreign_appid, "secret": key }),
    )
    .await;
    assert_eq!(errcode(&body), 40013);
    let body = stable(
        &app,
        &json!({ "grant_type": "client_credential", "appid": APPID, "secret": revoked }),
    )
    .await;
    assert_eq!(errcode(&body), 40125);
    assert!(!body.to_string().contains(&revoked[4..]));
    for bad in [
        format!("grant_type=client_credential&appid={APPID}&secret={key}"),
        String::new(),
        "[]".into(),
        json!({ "grant_type": "client_credential", "appid": APPID, "secret": key, "force_refresh": "yes" })
            .to_string(),
        json!({ "grant_type": "client_credential", "appid": 1, "secret": key }).to_string(),
    ] {
        let body = stable_raw(&app, bad.clone()).await;
        assert_eq!(errcode(&body), 47001, "{bad}: {body}");
        assert!(!body.to_string().contains(&key[4..]));
    }
    let res = app
        .client
        .get(format!(
            "{}/cgi-bin/stable_token?grant_type=client_credential&appid={APPID}&secret={key}",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(errcode(&wechat_answer(res).await), 43002);
}

#[tokio::test]
async fn a_token_that_cannot_be_had_answers_wechats_code_so_sdks_react_as_usual() {
    let sim = WeChatSimulator::start(sim_config()).unwrap();
    let whitelisted = "wx00000000000c0a04";
    let broken = "wx00000000000c0a05";
    sim.add_app(whitelisted, SECRET);
    sim.add_app(broken, SECRET);
    sim.inject_errcode(whitelisted, 40164, 1000).unwrap();
    sim.inject(broken, Fault::BadJson { times: None }).unwrap();
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Failing Co", "o@failing-compat.test").await;
    let key = new_key(&owner, json!({ "name": "sdk" })).await;
    for appid in [whitelisted, broken] {
        let body = register(&owner, appid).await;
        assert_eq!(body["verification"]["ok"], false, "{body}");
    }

    let body = classic(
        &app,
        &[
            ("grant_type", "client_credential"),
            ("appid", whitelisted),
            ("secret", &key),
        ],
    )
    .await;
    assert_eq!(errcode(&body), 40164, "WeChat's own code: {body}");
    assert!(body["errmsg"].as_str().unwrap().contains("whitelist"));

    // A failure with no WeChat errcode (a malformed answer) is -1: retry later.
    let body = stable(
        &app,
        &json!({ "grant_type": "client_credential", "appid": broken, "secret": key }),
    )
    .await;
    assert_eq!(errcode(&body), -1, "{body}");
    assert!(!body.to_string().contains(&key[4..]));
    assert!(!body.to_string().contains(SECRET));
}
