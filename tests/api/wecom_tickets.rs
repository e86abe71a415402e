//! WeCom's JS-SDK tickets: the company's (`jsapi`) and the app's
//! (`agent_config`) kept by the same engine, one fetch per ticket lifetime
//! across three replicas, read over REST and through the WeCom-compatible
//! endpoints with a token tokenvault served, the page signature for
//! `wx.agentConfig` checked independently, WeCom's hourly limits refused
//! before WeCom would, and tickets of the other platform refused clearly.

use std::time::Duration;

use serde_json::{Value, json};
use sha1::{Digest as _, Sha1};
use tokenvault::ui::snippets::{KEY_ENV, Snippets};
use tokenvault::upstream::simulator::{SimConfig, SimHandle, WeChatSimulator};

use crate::apps::{APPID, SECRET};
use crate::helpers::{get_with_key, spawn_app_with_sim};
use crate::refresh::{json_of, register};
use crate::tickets::{post_with_key, read_everywhere};
use crate::ui_snippets::{PAGE_URL, jssdk_signature, missing, page, run, snippet};

const CORP: &str = "ww0123456789abcdef";
const SECRET_A: &str = "Ab3dEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd";
const SECRET_B: &str = "Zz9yXwVuTsRqPoNmLkJiHgFeDcBa9876543210_-zyx";

async fn get_json(url: String) -> Value {
    json_of(reqwest::get(url).await.unwrap()).await
}

#[tokio::test]
async fn three_replicas_fetch_each_wecom_ticket_once_per_lifetime() {
    let sim = WeChatSimulator::start(SimConfig {
        ticket_lifetime: Duration::from_secs(4),
        workers: 2,
        ..SimConfig::default()
    })
    .unwrap();
    sim.wecom().add(CORP, SECRET_A);
    sim.wecom().add(CORP, SECRET_B);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Work Co", "o@work.test").await;
    for (agent, secret) in [(1_000_002, SECRET_A), (1_000_003, SECRET_B)] {
        register(
            &owner,
            json!({ "kind": "wecom", "corpid": CORP, "agentid": agent, "secret": secret }),
        )
        .await;
    }
    let id_a = format!("{CORP}-1000002");
    let key = owner.create_key(json!({ "name": "pages" })).await;
    let key = key["key"].as_str().unwrap().to_string();
    let replicas = [
        app.address.clone(),
        app.spawn_sim_replica(&sim.base_url()).await,
        app.spawn_sim_replica(&sim.base_url()).await,
    ];

    let counts: [(&str, Counter); 2] = [("jsapi", company_calls), ("agent_config", agent_calls)];
    for (ticket, count) in counts {
        let path = format!("/api/v1/apps/{id_a}/tickets/{ticket}");
        let first = read_everywhere(&replicas, &path, &key, 10).await;
        let value = first[0]["ticket"].as_str().unwrap().to_string();
        assert!(
            first
                .iter()
                .all(|b| b["ticket"] == value.as_str() && b["type"] == ticket)
        );
        assert_eq!(
            count(&sim),
            1,
            "{ticket}: 30 reads on 3 replicas, one fetch"
        );
        // Renewed once in its last second (WeCom answers the same ticket),
        // fetched anew once it has expired.
        tokio::time::sleep(Duration::from_millis(3300)).await;
        let second = read_everywhere(&replicas, &path, &key, 10).await;
        assert!(second.iter().all(|b| b["ticket"] == value.as_str()));
        assert_eq!(count(&sim), 2, "{ticket}: one renewal");
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let third = read_everywhere(&replicas, &path, &key, 10).await;
        assert_ne!(third[0]["ticket"], value.as_str());
        assert!(third.iter().all(|b| b["ticket"] == third[0]["ticket"]));
        assert_eq!(count(&sim), 3, "{ticket}: one fetch for the new ticket");
    }
    // The other app was never asked for.
    let b = sim.wecom().stats(CORP, SECRET_B);
    assert_eq!((b.company_ticket_calls, b.agent_ticket_calls), (0, 0));

    // The WeCom-compatible endpoints, with the token tokenvault served for A.
    let token =
        json_of(get_with_key(&replicas[1], &format!("/api/v1/apps/{id_a}/token"), &key).await)
            .await["access_token"]
            .as_str()
            .unwrap()
            .to_string();
    let base = &replicas[2];
    let company = get_json(format!(
        "{base}/cgi-bin/get_jsapi_ticket?access_token={token}"
    ))
    .await;
    let rest =
        json_of(get_with_key(base, &format!("/api/v1/apps/{id_a}/tickets/jsapi"), &key).await)
            .await;
    assert_eq!(company["errcode"], 0, "{company}");
    assert_eq!(company["errmsg"], "ok");
    assert_eq!(company["ticket"], rest["ticket"]);
    assert!(company["expires_in"].as_i64().unwrap() > 0);
    let agent = get_json(format!(
        "{base}/cgi-bin/ticket/get?access_token={token}&type=agent_config"
    ))
    .await;
    assert_eq!(agent["errcode"], 0, "{agent}");
    assert_ne!(agent["ticket"], company["ticket"]);
    for (query, errcode) in [
        ("ticket/get?access_token=TOKEN&type=jsapi", 40058),
        ("ticket/get?access_token=TOKEN", 40058),
        ("get_jsapi_ticket", 41001),
        ("get_jsapi_ticket?access_token=never-served", 40014),
    ] {
        let body = get_json(format!("{base}/cgi-bin/{}", query.replace("TOKEN", &token))).await;
        assert_eq!(body["errcode"], errcode, "{query}: {body}");
        assert!(body.get("ticket").is_none());
    }
    // A WeCom token means nothing to WeChat's getticket, and the other way round.
    let wx = get_json(format!(
        "{base}/cgi-bin/ticket/getticket?access_token={token}&type=jsapi"
    ))
    .await;
    assert_eq!(wx["errcode"], 40014, "{wx}");
    sim.add_app(APPID, SECRET);
    register(&owner, json!({ "appid": APPID, "secret": SECRET })).await;
    let wx_token = json_of(get_with_key(base, &format!("/api/v1/apps/{APPID}/token"), &key).await)
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let wecom = get_json(format!(
        "{base}/cgi-bin/get_jsapi_ticket?access_token={wx_token}"
    ))
    .await;
    assert_eq!(wecom["errcode"], 40014, "{wecom}");
    assert_eq!(sim.stats(APPID).ticket_calls, 0);

    // A page signed for wx.agentConfig: the corpid, the agentid, WeCom's formula.
    let url = "https://work.example.com/approve?id=7";
    let res = post_with_key(
        base,
        &format!("/api/v1/apps/{id_a}/jssdk-signature"),
        &key,
        &json!({ "url": url, "ticket_type": "agent_config" }),
    )
    .await;
    assert_eq!(res.status(), 200);
    let signed = json_of(res).await;
    assert_eq!(signed["appId"], CORP);
    assert_eq!(signed["agentid"], "1000002");
    let text = format!(
        "jsapi_ticket={}&noncestr={}&timestamp={}&url={url}",
        agent["ticket"].as_str().unwrap(),
        signed["nonceStr"].as_str().unwrap(),
        signed["timestamp"].as_i64().unwrap(),
    );
    assert_eq!(
        signed["signature"],
        hex::encode(Sha1::digest(text.as_bytes()))
    );
    let plain = post_with_key(
        base,
        &format!("/api/v1/apps/{id_a}/jssdk-signature"),
        &key,
        &json!({ "url": url }),
    )
    .await;
    let plain = json_of(plain).await;
    assert_eq!(plain["appId"], CORP);
    assert!(
        plain.get("agentid").is_none(),
        "wx.config takes the company ticket"
    );

    // Tickets of the other platform are refused clearly.
    for (path, code) in [
        (
            format!("/api/v1/apps/{id_a}/tickets/wx_card"),
            "ticket_type_not_for_wecom",
        ),
        (
            format!("/api/v1/apps/{APPID}/tickets/agent_config"),
            "ticket_type_not_for_wechat",
        ),
        (
            format!("/api/v1/apps/{id_a}/tickets/agent-config"),
            "unknown_ticket_type",
        ),
    ] {
        let res = get_with_key(base, &path, &key).await;
        assert_eq!(res.status(), 400, "{path}");
        assert_eq!(json_of(res).await["code"], code, "{path}");
    }
    let res = post_with_key(
        base,
        &format!("/api/v1/apps/{APPID}/jssdk-signature"),
        &key,
        &json!({ "url": url, "ticket_type": "agent_config" }),
    )
    .await;
    assert_eq!(res.status(), 400);
    assert_eq!(json_of(res).await["code"], "ticket_type_not_for_wechat");
    sim.stop().await;
}

/// One of the WeCom app's ticket counters.
type Counter = fn(&SimHandle) -> u64;

fn company_calls(sim: &SimHandle) -> u64 {
    sim.wecom().stats(CORP, SECRET_A).company_ticket_calls
}

fn agent_calls(sim: &SimHandle) -> u64 {
    sim.wecom().stats(CORP, SECRET_A).agent_ticket_calls
}

#[tokio::test]
async fn wecoms_hourly_ticket_limits_are_refused_before_wecom_would() {
    let sim = WeChatSimulator::start(SimConfig::default()).unwrap();
    sim.wecom().add(CORP, SECRET_A);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Work Co", "o@work.test").await;
    register(
        &owner,
        json!({ "kind": "wecom", "corpid": CORP, "agentid": 1_000_002, "secret": SECRET_A }),
    )
    .await;
    let id = format!("{CORP}-1000002");
    let key = owner.create_key(json!({ "name": "pages" })).await;
    let key = key["key"].as_str().unwrap().to_string();
    // This hour, the app's 100 agent_config fetches and the company's 400
    // jsapi fetches are spent (by other replicas, other tenants, earlier).
    for (scope, calls) in [
        (format!("app:{id}:agent_config"), 100),
        (format!("wecom:{CORP}:jsapi"), 400),
    ] {
        sqlx::query(
            "insert into hourly_budget (scope, hour, calls)
             values ($1, date_trunc('hour', now()), $2)",
        )
        .bind(scope)
        .bind(calls)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    for ticket in ["agent_config", "jsapi"] {
        let res = get_with_key(
            &app.address,
            &format!("/api/v1/apps/{id}/tickets/{ticket}"),
            &key,
        )
        .await;
        assert_eq!(res.status(), 503, "{ticket}");
        let wait: u64 = res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=3600).contains(&wait), "{wait}");
        let problem = json_of(res).await;
        assert_eq!(problem["reason"], "hourly_limit", "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("an hour"),
            "{problem}"
        );
    }
    let stats = sim.wecom().stats(CORP, SECRET_A);
    assert_eq!(
        (stats.company_ticket_calls, stats.agent_ticket_calls),
        (0, 0),
        "WeCom never asked"
    );
    // The compatible endpoint answers WeCom's own frequency-limit errcode.
    let token = sim.wecom().current_token(CORP, SECRET_A).unwrap();
    let body = get_json(format!(
        "{}/cgi-bin/ticket/get?access_token={token}&type=agent_config",
        app.address
    ))
    .await;
    assert_eq!(body["errcode"], 45009, "{body}");
    // The count never passes the limit, and the last hour's count is not this hour's.
    sqlx::query("update hourly_budget set hour = hour - interval '1 hour'")
        .execute(&app.pool)
        .await
        .unwrap();
    let res = get_with_key(
        &app.address,
        &format!("/api/v1/apps/{id}/tickets/agent_config"),
        &key,
    )
    .await;
    assert_eq!(res.status(), 200);
    let calls: i32 = sqlx::query_scalar("select calls from hourly_budget where scope = $1")
        .bind(format!("app:{id}:agent_config"))
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(calls, 1);
    assert_eq!(sim.wecom().stats(CORP, SECRET_A).agent_ticket_calls, 1);
    sim.stop().await;
}

#[tokio::test]
async fn a_wecom_apps_page_shows_wecoms_snippets_and_they_run() {
    let sim = WeChatSimulator::start(SimConfig::default()).unwrap();
    sim.wecom().add(CORP, SECRET_A);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Work Co", "o@work.test").await;
    register(
        &owner,
        json!({ "kind": "wecom", "corpid": CORP, "agentid": 1_000_002, "secret": SECRET_A }),
    )
    .await;
    let id = format!("{CORP}-1000002");
    let key = owner
        .create_key(json!({ "name": "work", "apps": [id] }))
        .await;
    let key = key["key"].as_str().unwrap().to_string();
    let (status, html) = page(&owner, &format!("/apps/{id}")).await;
    assert_eq!(status, 200);
    let expected = Snippets::new(&app.address, &id, None);
    assert!(expected.wecom && expected.wechat.is_empty());
    for s in expected.all() {
        assert_eq!(snippet(&html, s.id), s.code, "{}", s.id);
    }
    assert!(
        !html.contains("id=\"snippet-curl_wechat\""),
        "no WeChat set-ups"
    );
    assert!(html.contains("WeCom (企业微信): token and JS-SDK tickets"));
    assert_eq!(
        snippet(&html, "curl_wecom"),
        format!(
            "curl \"{}/cgi-bin/gettoken?corpid={CORP}&corpsecret=${KEY_ENV}\"",
            app.address
        )
    );

    let rest = |path: String| {
        let (address, key) = (app.address.clone(), key.clone());
        async move { json_of(get_with_key(&address, &path, &key).await).await }
    };
    let python = format!(
        "{}\nprint(access_token, company_ticket, agent_ticket)",
        snippet(&html, "python_wecom")
    );
    match run("python3", &["-c", &python], &key).await {
        Some(out) => {
            let token = rest(format!("/api/v1/apps/{id}/token")).await;
            let company = rest(format!("/api/v1/apps/{id}/tickets/jsapi")).await;
            let agent = rest(format!("/api/v1/apps/{id}/tickets/agent_config")).await;
            let expected = [&token["access_token"], &company["ticket"], &agent["ticket"]]
                .map(|v| v.as_str().unwrap().to_string())
                .join(" ");
            assert_eq!(out, expected, "python_wecom");
        }
        None => missing("python3", true),
    }
    let node = format!(
        "const pageUrl = '{PAGE_URL}';\n{}\nconsole.log(JSON.stringify({{ appId, agentid, timestamp, nonceStr, signature }}));",
        snippet(&html, "node_wecom")
    );
    match run("node", &["--input-type=module", "-e", &node], &key).await {
        Some(out) => {
            let config: Value = serde_json::from_str(&out).unwrap();
            let agent = rest(format!("/api/v1/apps/{id}/tickets/agent_config")).await;
            assert_eq!(config["appId"], CORP);
            assert_eq!(config["agentid"], "1000002");
            let ticket = agent["ticket"].as_str().unwrap();
            assert_eq!(
                config["signature"],
                jssdk_signature(ticket, &config),
                "node_wecom"
            );
        }
        None => missing("node", true),
    }
    if run("curl", &["--version"], &key).await.is_some() {
        let line = snippet(&html, "curl_wecom");
        let out = run(
            "sh",
            &["-c", &format!("{line} --silent --show-error")],
            &key,
        )
        .await
        .expect("a shell");
        let body: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(body["errcode"], 0, "{body}");
        assert_eq!(
            body["access_token"],
            sim.wecom().current_token(CORP, SECRET_A).unwrap()
        );
    }
    sim.stop().await;
}

#[tokio::test]
async fn wecoms_errcodes_are_explained_by_wecoms_table_everywhere() {
    let sim = WeChatSimulator::start(SimConfig::default()).unwrap();
    sim.wecom().add(CORP, SECRET_A);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Work Co", "o@work.test").await;
    // Registration: a wrong secret (WeCom's 40001) and a wrong corpid (40013).
    let wrong_secret = register(
        &owner,
        json!({ "kind": "wecom", "corpid": CORP, "agentid": 1_000_002, "secret": SECRET_B }),
    )
    .await;
    let v = &wrong_secret["verification"];
    assert_eq!(
        (v["ok"].as_bool(), v["errcode"].as_i64()),
        (Some(false), Some(40001)),
        "{v}"
    );
    let meaning = v["explanation"]["meaning_en"].as_str().unwrap();
    assert!(
        meaning.starts_with("The Secret is wrong"),
        "WeCom's 40001: {v}"
    );
    let wrong_corp = register(
        &owner,
        json!({ "kind": "wecom", "corpid": "ww00000000000000ff", "agentid": 1_000_002,
                "secret": SECRET_A }),
    )
    .await;
    let v = &wrong_corp["verification"];
    assert_eq!(v["errcode"], 40013, "{v}");
    assert!(
        v["explanation"]["meaning_en"]
            .as_str()
            .unwrap()
            .starts_with("The corpid is wrong")
    );

    // A read of the failing app: the 503's reason and explanation are WeCom's.
    let key = owner.create_key(json!({ "name": "work" })).await;
    let key = key["key"].as_str().unwrap().to_string();
    let res = get_with_key(
        &app.address,
        &format!("/api/v1/apps/{CORP}-1000002/token"),
        &key,
    )
    .await;
    assert_eq!(res.status(), 503);
    let problem = json_of(res).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("WeCom refused the token request: The Secret is wrong"),
        "{problem}"
    );
    assert!(
        detail.contains("asks WeCom nothing before then"),
        "{problem}"
    );
    assert!(
        problem["explanation"]["meaning_en"]
            .as_str()
            .unwrap()
            .starts_with("The Secret is wrong"),
        "{problem}"
    );

    // A ticket WeCom refuses (its hourly limit, 45009 in WeCom's words).
    register(
        &owner,
        json!({ "kind": "wecom", "corpid": CORP, "agentid": 1_000_003, "secret": SECRET_A }),
    )
    .await;
    sim.wecom().set_ticket_limits(0, 0);
    let res = get_with_key(
        &app.address,
        &format!("/api/v1/apps/{CORP}-1000003/tickets/jsapi"),
        &key,
    )
    .await;
    assert_eq!(res.status(), 503);
    let problem = json_of(res).await;
    assert_eq!(problem["errcode"], 45009, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("WeCom refused the ticket request: WeCom's call limit"),
        "{problem}"
    );
    assert!(
        problem["explanation"]["meaning_en"]
            .as_str()
            .unwrap()
            .starts_with("WeCom's call limit"),
        "{problem}"
    );
    sim.stop().await;
}
