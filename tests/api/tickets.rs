//! JS-SDK tickets: one fetch per ticket lifetime across replicas, a ticket
//! fetched again after its token was replaced behind tokenvault's back, the
//! page signature checked independently, and bad input.

use std::ops::ControlFlow;
use std::time::Duration;

use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use sha1::{Digest as _, Sha1};
use tokenvault::crypto::{Binding, KeyRing, KeySource, key_id_of};
use tokenvault::db::secrets;
use tokenvault::domain::{AppUuid, TenantId, TicketType};
use tokenvault::keys;
use tokenvault::upstream::simulator::{SimConfig, TokenKind, WeChatSimulator};
use uuid::Uuid;

use crate::apps::{APPID, SECRET};
use crate::helpers::{TEST_MASTER_KEYS, get_with_key, spawn_app_with_sim};
use crate::refresh::{appid, json_of, register};

pub(crate) async fn post_with_key(
    address: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{address}{path}"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("request")
}

/// Read `path` from every replica at once, `per_replica` times each.
pub(crate) async fn read_everywhere(
    replicas: &[String],
    path: &str,
    key: &str,
    per_replica: usize,
) -> Vec<Value> {
    let mut reads = Vec::new();
    for replica in replicas {
        for _ in 0..per_replica {
            let (replica, path, key) = (replica.clone(), path.to_string(), key.to_string());
            reads.push(tokio::spawn(async move {
                let res = get_with_key(&replica, &path, &key).await;
                assert_eq!(res.status(), 200);
                json_of(res).await
            }));
        }
    }
    let mut bodies = Vec::new();
    for r in reads {
        bodies.push(r.await.unwrap());
    }
    bodies
}

#[tokio::test]
async fn three_replicas_fetch_each_ticket_once_per_lifetime() {
    // Tokens live WeChat's 2 hours; tickets 4 s, renewed in their last second.
    let sim = WeChatSimulator::start(SimConfig {
        ticket_lifetime: Duration::from_secs(4),
        workers: 2,
        ..SimConfig::default()
    })
    .unwrap();
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Pages Co", "o@pages.test").await;
    let key = owner
        .create_key(json!({ "name": "web", "read_only": true }))
        .await;
    let key = key["key"].as_str().unwrap().to_string();
    let (a, b) = (appid(1), appid(2));
    for id in [&a, &b] {
        sim.add_app(id, SECRET);
        register(
            &owner,
            json!({ "appid": id, "secret": SECRET, "verify": false }),
        )
        .await;
    }
    let replicas = [
        app.address.clone(),
        app.spawn_sim_replica(&sim.base_url()).await,
        app.spawn_sim_replica(&sim.base_url()).await,
    ];

    // Off by default: nothing is fetched before the first read.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sim.stats(&a).ticket_calls, 0);

    let path = format!("/api/v1/apps/{a}/tickets/jsapi");
    let first = read_everywhere(&replicas, &path, &key, 10).await;
    let ticket = first[0]["ticket"].as_str().unwrap().to_string();
    for body in &first {
        assert_eq!(
            body["ticket"],
            ticket.as_str(),
            "every reader gets the one ticket"
        );
        assert_eq!(body["appid"], a.as_str());
        assert_eq!(body["type"], "jsapi");
        let left = body["expires_in"].as_i64().unwrap();
        assert!((1..=4).contains(&left), "{body}");
    }
    assert_eq!(
        sim.stats(&a).ticket_calls,
        1,
        "30 reads on 3 replicas, one fetch"
    );
    // It is the ticket WeChat holds for the app (asking again: the same one).
    let token = sim.current_token(&a, TokenKind::Stable).unwrap();
    let direct: Value = reqwest::get(format!(
        "{}/cgi-bin/ticket/getticket?access_token={token}&type=jsapi",
        sim.base_url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(direct["ticket"], ticket.as_str());
    assert_eq!(direct["expires_in"], 4);

    // In its last second the ticket is fetched once more, whoever reads:
    // WeChat answers the same ticket (with the full expires_in again), which
    // is kept with its first expiry and served until then, not fetched again.
    tokio::time::sleep(Duration::from_millis(3300)).await;
    let second = read_everywhere(&replicas, &path, &key, 10).await;
    for body in &second {
        assert_eq!(body["ticket"], ticket.as_str());
        assert_eq!(
            body["expires_at"], first[0]["expires_at"],
            "the first fetch's clock"
        );
        assert!(body["expires_in"].as_i64().unwrap() <= 1, "{body}");
    }
    assert_eq!(
        sim.stats(&a).ticket_calls,
        3,
        "the direct call and one renewal"
    );

    // Once it has expired: one fetch, a new ticket for everyone.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let third = read_everywhere(&replicas, &path, &key, 10).await;
    let renewed = third[0]["ticket"].as_str().unwrap();
    assert_ne!(renewed, ticket);
    assert!(third.iter().all(|b| b["ticket"] == renewed));
    assert_eq!(sim.stats(&a).ticket_calls, 4);

    // The wx_card ticket and the other app are kept apart.
    let card = read_everywhere(
        &replicas,
        &format!("/api/v1/apps/{a}/tickets/wx_card"),
        &key,
        3,
    )
    .await;
    assert_ne!(card[0]["ticket"], third[0]["ticket"]);
    assert_eq!(sim.stats(&a).ticket_calls, 5);
    assert_eq!(sim.stats(&b).ticket_calls, 0);
    sim.stop().await;
}

#[tokio::test]
async fn a_ticket_is_fetched_again_with_a_new_token_when_the_old_one_was_replaced() {
    let sim = WeChatSimulator::start(SimConfig {
        ticket_lifetime: Duration::from_secs(2),
        classic_overlap: Duration::from_secs(1),
        ..SimConfig::default()
    })
    .unwrap();
    sim.add_app(APPID, SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Pages Co", "o@pages.test").await;
    let key = owner.create_key(json!({ "name": "web" })).await;
    let key = key["key"].as_str().unwrap().to_string();
    register(
        &owner,
        json!({ "appid": APPID, "secret": SECRET, "token_mode": "classic" }),
    )
    .await;
    let path = format!("/api/v1/apps/{APPID}/tickets/jsapi");
    let first = json_of(get_with_key(&app.address, &path, &key).await).await;
    assert_eq!(sim.stats(APPID).ticket_calls, 1);

    // Someone else fetches a classic token: tokenvault's dies after the
    // overlap, and the ticket runs out too.
    let other: Value = reqwest::get(format!(
        "{}/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}",
        sim.base_url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(other["access_token"].is_string());
    tokio::time::sleep(Duration::from_millis(2200)).await;

    // The ticket call with the dead token (the scheduler's renewal in the
    // ticket's last quarter, or this read's) gets 40001; tokenvault
    // refreshes the token (compare-and-refresh, through the gate), then
    // fetches the ticket with the new one.
    let res = get_with_key(&app.address, &path, &key).await;
    assert_eq!(res.status(), 200);
    let second = json_of(res).await;
    assert_ne!(second["ticket"], first["ticket"]);
    let stats = sim.stats(APPID);
    // Once, or twice when this read queued behind the scheduler's rejected
    // call took the dead token before the scheduler reported it (the report
    // comes after the row's commit: it needs the budget row that call held).
    // Either way the token is refreshed once (compare-and-refresh).
    assert!(
        (1..=2).contains(&(stats.ticket_calls - stats.ticket_ok)),
        "rejected, then fetched: {stats:?}"
    );
    assert!(stats.ticket_ok >= 2, "{stats:?}");
    let token = sim.current_token(APPID, TokenKind::Classic).unwrap();
    assert_ne!(
        Some(&token),
        other["access_token"].as_str().map(str::to_string).as_ref()
    );
    let tv_token =
        json_of(get_with_key(&app.address, &format!("/api/v1/apps/{APPID}/token"), &key).await)
            .await;
    assert_eq!(
        tv_token["access_token"],
        token.as_str(),
        "the token was refreshed first"
    );
    sim.stop().await;
}

#[tokio::test]
async fn the_page_signature_is_wechats_and_bad_input_is_refused() {
    let sim = WeChatSimulator::start(SimConfig::default()).unwrap();
    sim.add_app(APPID, SECRET);
    let other_appid = appid(7);
    sim.add_app(&other_appid, SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Pages Co", "o@pages.test").await;
    register(&owner, json!({ "appid": APPID, "secret": SECRET })).await;
    let key = owner.create_key(json!({ "name": "web" })).await;
    let key = key["key"].as_str().unwrap().to_string();
    let url = "https://shop.example.com/pay?order=42&x=%E4%B8%AD";
    let res = post_with_key(
        &app.address,
        &format!("/api/v1/apps/{APPID}/jssdk-signature"),
        &key,
        &json!({ "url": url }),
    )
    .await;
    assert_eq!(res.status(), 200);
    let signed = json_of(res).await;
    assert_eq!(signed["appId"], APPID);
    let ticket = json_of(
        get_with_key(
            &app.address,
            &format!("/api/v1/apps/{APPID}/tickets/jsapi"),
            &key,
        )
        .await,
    )
    .await;
    assert_eq!(
        sim.stats(APPID).ticket_calls,
        1,
        "signing turned the ticket on"
    );
    let text = format!(
        "jsapi_ticket={}&noncestr={}&timestamp={}&url={url}",
        ticket["ticket"].as_str().unwrap(),
        signed["nonceStr"].as_str().unwrap(),
        signed["timestamp"].as_i64().unwrap(),
    );
    assert_eq!(
        signed["signature"],
        hex::encode(Sha1::digest(text.as_bytes()))
    );
    let now = chrono::Utc::now().timestamp();
    assert!((now - signed["timestamp"].as_i64().unwrap()).abs() < 10);
    assert_eq!(signed["nonceStr"].as_str().unwrap().len(), 16);

    let sign_path = format!("/api/v1/apps/{APPID}/jssdk-signature");
    for (body, code) in [
        (
            json!({ "url": "https://shop.example.com/#/cart" }),
            "fragment",
        ),
        (
            json!({ "url": "https://shop.example.com/a b" }),
            "invalid_characters",
        ),
        (json!({ "url": "/relative" }), "invalid_url"),
        (json!({ "url": "" }), "required"),
    ] {
        let res = post_with_key(&app.address, &sign_path, &key, &body).await;
        assert_eq!(res.status(), 422, "{body}");
        let problem = json_of(res).await;
        assert_eq!(problem["errors"][0]["code"], code, "{problem}");
    }
    let res = post_with_key(&app.address, &sign_path, &key, &json!({ "page": url })).await;
    assert!(res.status().is_client_error());

    let res = get_with_key(
        &app.address,
        &format!("/api/v1/apps/{APPID}/tickets/agent_config"),
        &key,
    )
    .await;
    assert_eq!(res.status(), 400);
    assert_eq!(json_of(res).await["code"], "ticket_type_not_for_wechat");
    let res = get_with_key(
        &app.address,
        &format!("/api/v1/apps/{APPID}/tickets/card"),
        &key,
    )
    .await;
    assert_eq!(res.status(), 400);
    assert_eq!(json_of(res).await["code"], "unknown_ticket_type");

    // Another organisation's app is no app; a key limited to another app is refused.
    let stranger = app.signup("Other Co", "o@other.test").await;
    register(&stranger, json!({ "appid": other_appid, "secret": SECRET })).await;
    let res = get_with_key(
        &app.address,
        &format!("/api/v1/apps/{other_appid}/tickets/jsapi"),
        &key,
    )
    .await;
    assert_eq!(res.status(), 404);
    assert_eq!(sim.stats(&other_appid).ticket_calls, 0);
    sim.stop().await;
}

#[tokio::test]
async fn key_rotation_reencrypts_tickets_and_counts_them() {
    let sim = WeChatSimulator::start(SimConfig::default()).unwrap();
    sim.add_app(APPID, SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Pages Co", "o@pages.test").await;
    register(&owner, json!({ "appid": APPID, "secret": SECRET })).await;
    let key = owner.create_key(json!({ "name": "web" })).await;
    let key = key["key"].as_str().unwrap().to_string();
    let path = format!("/api/v1/apps/{APPID}/tickets/jsapi");
    let ticket = json_of(get_with_key(&app.address, &path, &key).await).await["ticket"]
        .as_str()
        .unwrap()
        .to_string();
    let old = crate::helpers::test_key_ring();
    let usage = secrets::key_usage(&app.pool).await.unwrap();
    let under_old = usage.iter().find(|u| u.key_id == old.active_id()).unwrap();
    assert_eq!(under_old.tickets, 1);

    let new = KeyRing::parse(&format!(
        "{TEST_MASTER_KEYS},k9:QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8="
    ))
    .unwrap()
    .with_active("k9")
    .unwrap();
    keys::check_key_ring(&app.pool, &new, &KeySource::Setting)
        .await
        .unwrap();
    let report = keys::rotate(&app.pool, &new, 10, |_| ControlFlow::Continue(()))
        .await
        .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.progress.unwrap().tickets, 1);
    let usage = secrets::key_usage(&app.pool).await.unwrap();
    assert_eq!(usage.iter().find(|u| u.key_id == "k9").unwrap().tickets, 1);
    assert!(usage.iter().all(|u| u.key_id == "k9" || u.tickets == 0));

    let (tenant, id, ct): (Uuid, Uuid, Vec<u8>) = sqlx::query_as(
        "select tenant_id, app_id, ticket_ciphertext from app_tickets where ticket_type = 'jsapi'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(key_id_of(&ct).unwrap(), "k9");
    let binding = Binding::ticket(TenantId(tenant), AppUuid(id), TicketType::Jsapi);
    let plain = new.decrypt_text(&ct, &binding).unwrap();
    assert_eq!(plain.expose_secret(), ticket);
    assert!(
        !String::from_utf8_lossy(&ct).contains(&ticket),
        "encrypted at rest"
    );
    sim.stop().await;
}

async fn compat_ticket(address: &str, query: &str) -> Value {
    let res = reqwest::get(format!("{address}/cgi-bin/ticket/getticket?{query}"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "WeChat answers errors with 200");
    res.json().await.unwrap()
}

#[tokio::test]
async fn the_wechat_compatible_getticket_takes_any_token_tokenvault_served() {
    let sim = WeChatSimulator::start(SimConfig {
        classic_overlap: Duration::from_secs(1),
        ..SimConfig::default()
    })
    .unwrap();
    sim.add_app(APPID, SECRET);
    let other_appid = appid(9);
    sim.add_app(&other_appid, SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Pages Co", "o@pages.test").await;
    register(
        &owner,
        json!({ "appid": APPID, "secret": SECRET, "token_mode": "classic" }),
    )
    .await;
    let key = owner.create_key(json!({ "name": "web" })).await;
    let key = key["key"].as_str().unwrap().to_string();
    let token_path = format!("/api/v1/apps/{APPID}/token");
    let first = json_of(get_with_key(&app.address, &token_path, &key).await).await;
    let first = first["access_token"].as_str().unwrap().to_string();

    let got = compat_ticket(&app.address, &format!("access_token={first}&type=jsapi")).await;
    assert_eq!(got["errcode"], 0, "{got}");
    assert_eq!(got["errmsg"], "ok");
    let rest = json_of(
        get_with_key(
            &app.address,
            &format!("/api/v1/apps/{APPID}/tickets/jsapi"),
            &key,
        )
        .await,
    )
    .await;
    assert_eq!(got["ticket"], rest["ticket"]);
    assert!(got["expires_in"].as_i64().unwrap() > 7000);
    assert_eq!(sim.stats(APPID).ticket_calls, 1);

    for (query, code) in [
        ("type=jsapi".to_string(), 41001),
        ("access_token=&type=jsapi".to_string(), 41001),
        (format!("access_token={first}"), 40097),
        (format!("access_token={first}&type=agent_config"), 40097),
        (
            "access_token=not-a-token-we-served&type=jsapi".to_string(),
            40014,
        ),
    ] {
        let got = compat_ticket(&app.address, &query).await;
        assert_eq!(got["errcode"], code, "{query}: {got}");
        assert!(got.get("ticket").is_none());
    }

    // A new classic token: the replaced one works for WeChat's overlap, then not.
    assert_eq!(
        crate::helpers::refresh_now(&owner, APPID).await.status(),
        200
    );
    let second = json_of(get_with_key(&app.address, &token_path, &key).await).await;
    let second = second["access_token"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    for token in [&first, &second] {
        let got = compat_ticket(&app.address, &format!("access_token={token}&type=jsapi")).await;
        assert_eq!(got["ticket"], rest["ticket"], "{got}");
    }
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let got = compat_ticket(&app.address, &format!("access_token={first}&type=jsapi")).await;
    assert_eq!(got["errcode"], 42001, "{got}");
    let got = compat_ticket(&app.address, &format!("access_token={second}&type=wx_card")).await;
    assert_eq!(got["errcode"], 0, "{got}");
    assert_ne!(got["ticket"], rest["ticket"]);

    // Another organisation's token gets its own app's ticket, never ours.
    let stranger = app.signup("Other Co", "o@other.test").await;
    register(&stranger, json!({ "appid": other_appid, "secret": SECRET })).await;
    let their_key = stranger.create_key(json!({ "name": "theirs" })).await;
    let their_key = their_key["key"].as_str().unwrap();
    let theirs = json_of(
        get_with_key(
            &app.address,
            &format!("/api/v1/apps/{other_appid}/token"),
            their_key,
        )
        .await,
    )
    .await;
    let got = compat_ticket(
        &app.address,
        &format!(
            "access_token={}&type=jsapi",
            theirs["access_token"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(got["errcode"], 0, "{got}");
    assert_ne!(got["ticket"], rest["ticket"]);
    assert_eq!(sim.stats(&other_appid).ticket_calls, 1);
    // The index holds keyed hashes, never tokens.
    let stored: Vec<(Vec<u8>,)> = sqlx::query_as("select token_hash from served_tokens")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(stored.len() >= 3);
    assert!(
        stored
            .iter()
            .all(|(h,)| h.len() == 32 && h[..] != *first.as_bytes())
    );
    sim.stop().await;
}

#[tokio::test]
async fn every_replica_answers_the_same_instants() {
    // The replica that fetched a credential answers from what it fetched,
    // the others from the database: both must print the same instant
    // (Postgres keeps microseconds; a nanosecond clock must not leak out).
    let sim = WeChatSimulator::start(SimConfig::default()).unwrap();
    sim.add_app(APPID, SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Pages Co", "o@pages.test").await;
    let key = owner.create_key(json!({ "name": "web" })).await;
    let key = key["key"].as_str().unwrap().to_string();
    register(&owner, json!({ "appid": APPID, "secret": SECRET })).await;
    let other = app.spawn_sim_replica(&sim.base_url()).await;
    for path in [
        format!("/api/v1/apps/{APPID}/tickets/jsapi"),
        format!("/api/v1/apps/{APPID}/token"),
    ] {
        let here = json_of(get_with_key(&app.address, &path, &key).await).await;
        let there = json_of(get_with_key(&other, &path, &key).await).await;
        for field in ["expires_at", "fetched_at"] {
            assert!(here[field].is_string(), "{path}: {here}");
            assert_eq!(here[field], there[field], "{path} {field}");
        }
    }
    sim.stop().await;
}
