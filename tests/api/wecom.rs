//! WeCom apps: registered by corpid and agentid, their tokens read over REST
//! and through the WeCom-compatible `gettoken` with a key limited to the app,
//! one token per agent secret, one upstream call per token lifetime across
//! three replicas, and bad input refused clearly.

use std::time::Duration;

use serde_json::{Value, json};
use tokenvault::upstream::simulator::{SimConfig, WeChatSimulator};

use crate::helpers::{get_with_key, spawn_app_with_sim};
use crate::refresh::{json_of, register};

const CORP: &str = "ww0123456789abcdef";
const SECRET_A: &str = "Ab3dEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd";
const SECRET_B: &str = "Zz9yXwVuTsRqPoNmLkJiHgFeDcBa9876543210_-zyx";

async fn compat(address: &str, query: &str) -> Value {
    json_of(
        reqwest::get(format!("{address}/cgi-bin/gettoken?{query}"))
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn wecom_apps_keep_one_token_per_secret_across_replicas() {
    let sim = WeChatSimulator::start(SimConfig {
        token_lifetime: Duration::from_secs(6),
        workers: 2,
        ..SimConfig::default()
    })
    .unwrap();
    sim.wecom().add(CORP, SECRET_A);
    sim.wecom().add(CORP, SECRET_B);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Work Co", "o@work.test").await;
    let a = register(
        &owner,
        json!({ "kind": "wecom", "corpid": CORP, "agentid": 1_000_002, "secret": SECRET_A }),
    )
    .await;
    assert_eq!(a["appid"], format!("{CORP}-1000002"), "{a}");
    assert_eq!(a["kind"], "wecom");
    assert_eq!(a["verification"]["ok"], true, "{a}");
    let b = register(
        &owner,
        json!({ "kind": "wecom", "corpid": CORP, "agentid": "1000003", "secret": SECRET_B,
                "name": "Approvals" }),
    )
    .await;
    assert_eq!(b["name"], "Approvals");
    let (id_a, id_b) = (format!("{CORP}-1000002"), format!("{CORP}-1000003"));
    let open = owner.create_key(json!({ "name": "all" })).await;
    let open = open["key"].as_str().unwrap().to_string();
    let limited = owner
        .create_key(json!({ "name": "a only", "apps": [id_a] }))
        .await;
    let limited = limited["key"].as_str().unwrap().to_string();
    let replicas = [
        app.address.clone(),
        app.spawn_sim_replica(&sim.base_url()).await,
        app.spawn_sim_replica(&sim.base_url()).await,
    ];

    // REST, on every replica: each agent has its own token, WeCom's current one.
    let mut tokens_a = Vec::new();
    for replica in &replicas {
        for (id, tokens) in [(&id_a, &mut tokens_a)] {
            for _ in 0..5 {
                let res = get_with_key(replica, &format!("/api/v1/apps/{id}/token"), &open).await;
                assert_eq!(res.status(), 200);
                let body = json_of(res).await;
                assert_eq!(body["appid"], id.as_str());
                tokens.push(body["access_token"].as_str().unwrap().to_string());
            }
        }
    }
    let token_b =
        json_of(get_with_key(&replicas[1], &format!("/api/v1/apps/{id_b}/token"), &open).await)
            .await;
    let current_a = sim.wecom().current_token(CORP, SECRET_A).unwrap();
    assert!(tokens_a.iter().all(|t| *t == current_a));
    assert_eq!(
        token_b["access_token"],
        sim.wecom().current_token(CORP, SECRET_B).unwrap()
    );
    assert_ne!(
        token_b["access_token"],
        current_a.as_str(),
        "never keyed on corpid alone"
    );
    assert_eq!(
        sim.wecom().stats(CORP, SECRET_A).gettoken_calls,
        1,
        "15 reads, one call"
    );
    assert_eq!(sim.wecom().stats(CORP, SECRET_B).gettoken_calls, 1);

    // The WeCom-compatible endpoint, with the key limited to app A.
    let ok = compat(&replicas[2], &format!("corpid={CORP}&corpsecret={limited}")).await;
    assert_eq!(ok["errcode"], 0, "{ok}");
    assert_eq!(ok["errmsg"], "ok");
    assert_eq!(ok["access_token"], current_a.as_str());
    assert!(ok["expires_in"].as_i64().unwrap() > 0);
    // A key open to every app names no single app; another corp; a bad key.
    let cases = [
        (format!("corpid={CORP}&corpsecret={open}"), 40013),
        (
            format!("corpid=ww00000000000000ff&corpsecret={limited}"),
            40013,
        ),
        (format!("corpid={CORP}&corpsecret=tv_nope"), 40001),
        (format!("corpsecret={limited}"), 41002),
        (format!("corpid={CORP}"), 41004),
    ];
    for (query, errcode) in cases {
        let body = compat(&replicas[0], &query).await;
        assert_eq!(body["errcode"], errcode, "{query}: {body}");
        assert!(body.get("access_token").is_none());
    }
    // The WeChat-compatible endpoints do not serve WeCom apps: no token, no
    // WeChat ticket (a WeCom token is never sent to WeChat).
    let wx = compat_wechat(&replicas[0], &id_a, &open).await;
    assert_eq!(wx["errcode"], 40013, "{wx}");
    let res = get_with_key(
        &replicas[0],
        &format!("/api/v1/apps/{id_a}/tickets/wx_card"),
        &open,
    )
    .await;
    assert_eq!(res.status(), 400);
    assert_eq!(json_of(res).await["code"], "ticket_type_not_for_wecom");
    let ticket = json_of(
        reqwest::get(format!(
            "{}/cgi-bin/ticket/getticket?access_token={current_a}&type=jsapi",
            replicas[0]
        ))
        .await
        .unwrap(),
    )
    .await;
    assert_ne!(ticket["errcode"], 0, "{ticket}");
    assert!(ticket.get("ticket").is_none());
    assert_eq!(sim.wecom().stats(CORP, SECRET_A).gettoken_calls, 1);
    // A secret is replaced in WeCom's form (a WeChat AppSecret's is refused).
    let res = owner
        .patch_json(
            &format!("/api/v1/apps/{id_b}"),
            &json!({ "secret": "0123456789abcdef0123456789abcdef!" }),
        )
        .await;
    assert_eq!(res.status(), 422);
    let res = owner
        .patch_json(
            &format!("/api/v1/apps/{id_b}"),
            &json!({ "secret": SECRET_B }),
        )
        .await;
    assert_eq!(res.status(), 200);

    // Over a few lifetimes the scheduler renews each secret's token: WeCom
    // answers the same token while it lives, a new one once it ended; every
    // replica serves it, and WeCom issued one token per lifetime.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let renewed =
        json_of(get_with_key(&replicas[2], &format!("/api/v1/apps/{id_a}/token"), &open).await)
            .await;
    assert_ne!(renewed["access_token"], current_a.as_str());
    let stats = sim.wecom().stats(CORP, SECRET_A);
    assert_eq!(stats.issued_tokens, 2, "{stats:?}");
    sim.stop().await;
}

async fn compat_wechat(address: &str, appid: &str, key: &str) -> Value {
    json_of(
        reqwest::get(format!(
            "{address}/cgi-bin/token?grant_type=client_credential&appid={appid}&secret={key}"
        ))
        .await
        .unwrap(),
    )
    .await
}

#[tokio::test]
async fn bad_wecom_registrations_are_refused_clearly() {
    let sim = WeChatSimulator::start(SimConfig::default()).unwrap();
    sim.wecom().add(CORP, SECRET_A);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Work Co", "o@work.test").await;
    let refused = [
        (
            json!({ "kind": "wecom", "corpid": "ww0123", "agentid": "0", "secret": "short" }),
            vec!["corpid", "agentid", "secret"],
        ),
        (
            json!({ "kind": "wecom", "corpid": CORP, "agentid": "1000002", "secret": SECRET_A,
                    "appid": "wx0123456789abcdef", "token_mode": "classic" }),
            vec!["appid", "token_mode"],
        ),
        (
            json!({ "appid": "wx0123456789abcdef", "secret": "0123456789abcdef0123456789abcdef",
                    "corpid": CORP }),
            vec!["corpid"],
        ),
        (
            json!({ "appid": format!("{CORP}-1000002"), "secret": "0123456789abcdef0123456789abcdef" }),
            vec!["appid"],
        ),
    ];
    for (body, fields) in refused {
        let res = owner.post_json("/api/v1/apps", &body).await;
        assert_eq!(res.status(), 422, "{body}");
        let problem = json_of(res).await;
        let named: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{problem}"))
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(named, fields, "{problem}");
        assert!(!problem.to_string().contains("short"), "no secret echoed");
    }
    let body = json!({ "kind": "wecom", "corpid": CORP, "agentid": 1_000_002,
                       "secret": SECRET_A, "verify": false });
    register(&owner, body.clone()).await;
    let twice = owner.post_json("/api/v1/apps", &body).await;
    assert_eq!(twice.status(), 409);
    assert_eq!(json_of(twice).await["code"], "app_exists");
    // A wrong secret: WeCom's 40001, explained as WeCom's.
    let wrong = register(
        &owner,
        json!({ "kind": "wecom", "corpid": CORP, "agentid": 1_000_009,
                "secret": "Wrong0000000000000000000000000000000000000" }),
    )
    .await;
    assert_eq!(wrong["verification"]["ok"], false, "{wrong}");
    assert_eq!(wrong["verification"]["errcode"], 40001, "{wrong}");
    let page = owner.get(&format!("/api/v1/apps/{CORP}-1000009")).await;
    let shown = json_of(page).await;
    assert!(
        shown["last_error"]["explanation"]["meaning_en"]
            .as_str()
            .unwrap_or_default()
            .contains("不合法的secret参数"),
        "{shown}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn wecoms_gettoken_checks_the_key_and_its_rate_before_anything_else() {
    let sim = WeChatSimulator::start(SimConfig::default()).unwrap();
    sim.wecom().add(CORP, SECRET_A);
    let mut settings = crate::helpers::sim_settings(&sim.base_url());
    settings.key_read_rate = 5;
    let app = crate::helpers::spawn_app_with_settings(settings).await;
    let owner = app.signup("Work Co", "o@work.test").await;
    register(
        &owner,
        json!({ "kind": "wecom", "corpid": CORP, "agentid": 1_000_002, "secret": SECRET_A }),
    )
    .await;
    let limited = owner
        .create_key(json!({ "name": "a only", "apps": [format!("{CORP}-1000002")] }))
        .await;
    let limited = limited["key"].as_str().unwrap().to_string();
    let ok = compat(&app.address, &format!("corpid={CORP}&corpsecret={limited}")).await;
    assert_eq!(ok["errcode"], 0, "{ok}");
    // A key reading too fast is refused with WeCom's frequency-limit errcode
    // before its app is looked up: the wrong corpid is not even noticed.
    let (mut refused, mut wrong_corp) = (0, 0);
    for _ in 0..30 {
        let body = compat(
            &app.address,
            &format!("corpid=ww00000000000000ff&corpsecret={limited}"),
        )
        .await;
        match body["errcode"].as_i64() {
            Some(45009) => refused += 1,
            Some(40013) => wrong_corp += 1,
            other => panic!("{other:?}: {body}"),
        }
    }
    assert!(
        refused >= 15,
        "{refused} of 30 refused at 5/s with a burst of 10"
    );
    assert!(
        wrong_corp >= 1,
        "the app is checked once the rate admits the read"
    );
    assert_eq!(
        sim.wecom().stats(CORP, SECRET_A).gettoken_calls,
        1,
        "one token"
    );
    sim.stop().await;
}
