//! Many apps changing at once reach a channel as one summary: 20 apps of
//! one organisation failing together, with two replicas running, give
//! exactly one `app.failing.summary` request per channel carrying all 20
//! apps (a receiver failing twice gets the same summary id and the same
//! apps three times); their recoveries are summarised the same way; an
//! organisation with fewer apps than the threshold still gets single
//! messages.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use tokenvault::upstream::simulator::{SimConfig, WeChatSimulator};

use crate::alerts::{HOOK_SECRET, Received, Receiver, alert_settings, assert_signed};
use crate::apps::{OTHER_SECRET, SECRET};
use crate::helpers::{Browser, spawn_app_with_settings};
use crate::refresh::json_of;

const APPS: usize = 20;

fn appid(i: usize) -> String {
    format!("wx5a11{i:012x}")
}

fn settings(wechat: &str) -> tokenvault::config::Settings {
    let mut s = alert_settings(wechat);
    s.alerts.summary_gather_seconds = 4;
    s.alerts.summary_threshold = 3;
    s
}

async fn channel(owner: &Browser, body: Value) -> String {
    let res = owner.post_json("/api/v1/alert-channels", &body).await;
    assert_eq!(res.status(), 201, "{body}");
    json_of(res).await["id"].as_str().unwrap().to_string()
}

/// Register (or fix) the apps `ids` all at once.
async fn all_at_once(owner: &Browser, ids: &[String], secret: &str, register: bool) {
    let tasks: Vec<_> = ids
        .iter()
        .map(|id| {
            let (owner, id, secret) = (owner.clone(), id.clone(), secret.to_string());
            tokio::spawn(async move {
                let res = if register {
                    let body =
                        json!({ "appid": id, "name": format!("App {id}"), "secret": secret });
                    owner.post_json("/api/v1/apps", &body).await
                } else {
                    let path = format!("/api/v1/apps/{id}");
                    owner.patch_json(&path, &json!({ "secret": secret })).await
                };
                assert!(res.status().is_success(), "{id}: {}", res.status());
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

fn appids_of(summary: &Value) -> BTreeSet<String> {
    summary["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["appid"].as_str().unwrap().to_string())
        .collect()
}

fn check_webhook_summary(r: &Received, kind: &str, ids: &BTreeSet<String>) -> String {
    assert_signed(r, HOOK_SECRET);
    let body = r.json();
    assert_eq!(r.header("X-Tokenvault-Event"), Some(kind));
    assert_eq!(body["type"], kind);
    assert_eq!(body["id"].as_str(), r.header("X-Tokenvault-Delivery"));
    assert_eq!(body["organization"], "Many Co");
    assert_eq!(body["count"], APPS);
    assert_eq!(body["more"], 0);
    assert_eq!(&appids_of(&body), ids);
    body["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn many_apps_failing_at_once_give_one_summary_per_channel_and_few_stay_single() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    let ids: Vec<String> = (0..APPS).map(appid).collect();
    for id in &ids {
        sim.add_app(id, SECRET);
    }
    let hooks = Receiver::start();
    let robots = Receiver::start();
    let app = spawn_app_with_settings(settings(&sim.base_url())).await;
    app.spawn_replica_with(settings(&sim.base_url())).await;
    let owner = app.signup("Many Co", "o@many.test").await;
    let hook = channel(
        &owner,
        json!({ "kind": "webhook", "name": "hook", "url": format!("{}/hook", hooks.base),
                "secret": HOOK_SECRET }),
    )
    .await;
    channel(
        &owner,
        json!({ "kind": "wecom", "name": "group", "url": format!("{}/wecom?key=k", robots.base) }),
    )
    .await;
    channel(
        &owner,
        json!({ "kind": "dingtalk", "name": "ding", "url": format!("{}/ding?access_token=t", robots.base),
                "secret": "SEC0123" }),
    )
    .await;

    // The webhook receiver fails twice, then accepts.
    hooks.script(&[(500, "boom"), (503, "busy")]);
    all_at_once(&owner, &ids, OTHER_SECRET, true).await;
    let wanted: BTreeSet<String> = ids.iter().cloned().collect();
    let got = hooks.wait_for("/hook", 3, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 3, "two failures and the accepted retry");
    let summary = check_webhook_summary(&got[0], "app.failing.summary", &wanted);
    for retry in &got[1..] {
        assert_eq!(
            check_webhook_summary(retry, "app.failing.summary", &wanted),
            summary,
            "a retry sends the same summary id"
        );
    }
    let first = got[0].json();
    let one = &first["apps"][0];
    assert_eq!(one["errcode"], 40001, "{one}");
    assert!(one["explanation"]["fix_en"].is_string(), "{one}");
    assert!(
        one["url"]
            .as_str()
            .unwrap()
            .starts_with("https://vault.example.com/apps/wx5a11")
    );
    for (path, field) in [("/wecom", "content"), ("/ding", "text")] {
        let got = robots.wait_for(path, 1, Duration::from_secs(10)).await;
        assert_eq!(got.len(), 1, "{path}: one summary");
        let text = got[0].json()["markdown"][field]
            .as_str()
            .unwrap()
            .to_string();
        assert!(text.contains("20 apps are failing"), "{text}");
        assert!(ids.iter().all(|id| text.contains(id.as_str())), "{text}");
        // Each channel has its own summary (and id).
        assert!(text.contains("40001") && !text.contains(&summary), "{text}");
        assert!(text.contains("\nsummary "), "{text}");
    }
    assert!(robots.got("/ding")[0].query.contains("sign="));

    // Nothing more: every delivery of the group was marked with the outcome.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(hooks.got("/hook").len(), 3);
    assert_eq!(robots.got("/wecom").len(), 1);
    assert_eq!(robots.got("/ding").len(), 1);
    let log = json_of(
        owner
            .get(&format!("/api/v1/alert-channels/{hook}/deliveries"))
            .await,
    )
    .await;
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), APPS, "{log}");
    assert!(items.iter().all(|d| d["summary_id"] == summary.as_str()
        && d["status"] == "delivered"
        && d["attempts"] == 3
        && d["type"] == "app.failing"));
    let page = owner
        .get(&format!("/alerts/{hook}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(&summary), "the log page names the summary");

    // Fixed all at once: one recovery summary per channel.
    all_at_once(&owner, &ids, SECRET, false).await;
    let got = hooks.wait_for("/hook", 4, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 4);
    let recovered = check_webhook_summary(&got[3], "app.recovered.summary", &wanted);
    assert_ne!(recovered, summary);
    let text = robots.wait_for("/wecom", 2, Duration::from_secs(10)).await[1].json();
    assert!(
        text["markdown"]["content"]
            .as_str()
            .unwrap()
            .contains("20 apps have recovered"),
        "{text}"
    );

    // Another organisation with two failing apps: single messages.
    let few = app.signup("Few Co", "o@few.test").await;
    channel(
        &few,
        json!({ "kind": "webhook", "name": "hook", "url": format!("{}/few", hooks.base) }),
    )
    .await;
    let two: Vec<String> = (100..102).map(appid).collect();
    for id in &two {
        sim.add_app(id, SECRET);
    }
    all_at_once(&few, &two, OTHER_SECRET, true).await;
    let got = hooks.wait_for("/few", 2, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 2);
    let singles: BTreeSet<String> = got
        .iter()
        .map(|r| {
            let body = r.json();
            assert_eq!(body["type"], "app.failing", "{body}");
            body["app"]["appid"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(singles, two.iter().cloned().collect());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hooks.got("/few").len(), 2);
    assert_eq!(
        hooks.got("/hook").len(),
        4,
        "the first organisation heard nothing of it"
    );
}
