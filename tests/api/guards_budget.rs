//! The guards that share WeChat fairly, proven by counting calls at the
//! simulator: one tenant's flood beside another's reads, the per-key read
//! rate and the daily budget with its scheduler reserve.

use crate::apps::{APPID, SECRET};
use crate::guards::{
    appid, compat_path, json_of, key, logged, refused_by_whitelist, register, wechat_verdict,
};
use crate::helpers::{get_with_key, sim_settings, spawn_app_with_settings, spawn_app_with_sim};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::time::{Duration, Instant};
use tokenvault::upstream::simulator::{SimConfig, WeChatSimulator};

#[tokio::test]
async fn one_tenants_flood_leaves_another_tenants_reads_and_refreshes_untouched() {
    const FAILING: usize = 8;
    let sim = WeChatSimulator::start(SimConfig {
        workers: 2,
        ..SimConfig::fast()
    })
    .unwrap();
    let quiet_appid = appid(100);
    sim.add_app(&quiet_appid, SECRET);
    for i in 0..FAILING {
        refused_by_whitelist(&sim, &appid(i));
    }
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let other = app.spawn_sim_replica(&sim.base_url()).await;
    let noisy = app.signup("Noisy Co", "o@noisy.test").await;
    let noisy_key = key(&noisy, true).await;
    for i in 0..FAILING {
        register(&noisy, json!({ "appid": appid(i), "secret": SECRET })).await;
    }
    let quiet = app.signup("Quiet Co", "o@quiet.test").await;
    let quiet_key = key(&quiet, true).await;
    register(
        &quiet,
        json!({ "appid": quiet_appid, "secret": SECRET, "token_mode": "classic" }),
    )
    .await;
    let quiet_calls = sim.stats(&quiet_appid).classic_calls;

    let deadline = Instant::now() + Duration::from_secs(8);
    let flood = (0..8).map(|i| {
        let address = if i % 2 == 0 {
            app.address.clone()
        } else {
            other.clone()
        };
        let key = noisy_key.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut n = 0;
            while Instant::now() < deadline {
                let target = appid(n % FAILING);
                let url = if n % 2 == 0 {
                    format!("{address}/api/v1/apps/{target}/token")
                } else {
                    format!("{address}{}", compat_path(&target, &key))
                };
                let res = client.get(url).bearer_auth(&key).send().await.unwrap();
                assert!(res.status() != 500, "{}", res.status());
                n += 1;
            }
            n
        })
    });
    let flood: Vec<_> = flood.collect();
    let mut latencies = Vec::new();
    let mut n = 0;
    while Instant::now() < deadline {
        let address = if n % 2 == 0 { &app.address } else { &other };
        let started = Instant::now();
        let res = get_with_key(
            address,
            &format!("/api/v1/apps/{quiet_appid}/token"),
            &quiet_key,
        )
        .await;
        latencies.push(started.elapsed());
        assert_eq!(
            res.status(),
            200,
            "the quiet tenant's read failed during the flood"
        );
        let token = json_of(res).await["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            wechat_verdict(&sim, &token).await,
            0,
            "a token WeChat takes"
        );
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut flooded = 0;
    for f in flood {
        flooded += f.await.unwrap();
    }
    assert!(flooded > 500, "the flood really ran: {flooded} requests");
    latencies.sort();
    let p95 = latencies[latencies.len() * 95 / 100];
    assert!(
        p95 < Duration::from_millis(500),
        "quiet reads p95 {p95:?} during the flood"
    );
    assert!(
        sim.stats(&quiet_appid).classic_calls >= quiet_calls + 2,
        "the quiet tenant's 4 s tokens kept being refreshed on schedule"
    );
    for i in 0..FAILING {
        let id = appid(i);
        assert_eq!(
            i64::try_from(sim.stats(&id).stable_calls).unwrap(),
            logged(&app, &id, None).await,
            "{id}: only logged attempts reached WeChat"
        );
        assert_eq!(logged(&app, &id, Some("on_demand")).await, 0);
    }
}

#[tokio::test]
async fn a_key_that_reads_too_fast_is_slowed_down_alone() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    let mut settings = sim_settings(&sim.base_url());
    settings.key_read_rate = 5;
    let app = spawn_app_with_settings(settings).await;
    let owner = app.signup("Fast Co", "o@fast.test").await;
    let (greedy, calm) = (key(&owner, true).await, key(&owner, true).await);
    register(&owner, json!({ "appid": APPID, "secret": SECRET })).await;
    let path = format!("/api/v1/apps/{APPID}/token");
    let mut limited = 0;
    for _ in 0..30 {
        let res = get_with_key(&app.address, &path, &greedy).await;
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
            assert_eq!(json_of(res).await["code"], "key_read_rate");
            limited += 1;
        } else {
            assert_eq!(res.status(), 200);
        }
    }
    assert!(
        limited >= 15,
        "{limited} of 30 limited at 5/s with a burst of 10"
    );
    let compat = json_of(
        reqwest::get(format!("{}{}", app.address, compat_path(APPID, &greedy)))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(compat["errcode"], 45011, "{compat}");
    assert_eq!(
        get_with_key(&app.address, &path, &calm).await.status(),
        200,
        "another key reads on"
    );
}

#[tokio::test]
async fn the_daily_budget_keeps_a_reserve_for_the_scheduler() {
    let sim = WeChatSimulator::start(SimConfig {
        token_lifetime: Duration::from_secs(60),
        ..SimConfig::fast()
    })
    .unwrap();
    sim.add_app(APPID, SECRET);
    let mut settings = sim_settings(&sim.base_url());
    settings.daily_upstream_budget = 10;
    settings.scheduler_reserve = 3;
    let app = spawn_app_with_settings(settings).await;
    let owner = app.signup("Budget Co", "o@budget.test").await;
    let key = key(&owner, true).await;
    register(
        &owner,
        json!({ "appid": APPID, "secret": SECRET, "token_mode": "classic" }),
    )
    .await;
    let refresh = format!("/api/v1/apps/{APPID}/refresh");
    for _ in 0..6 {
        let res = owner.post_json(&refresh, &json!({})).await;
        assert_eq!(json_of(res).await["refresh"]["outcome"], "success");
    }
    let res = owner.post_json(&refresh, &json!({})).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(json_of(res).await["code"], "budget_spent");
    let shown = json_of(owner.get(&format!("/api/v1/apps/{APPID}")).await).await;
    assert_eq!(shown["upstream_calls_today"], 7);
    assert_eq!(shown["upstream_budget"]["daily_calls"], 10);
    assert_eq!(shown["upstream_budget"]["scheduler_reserve"], 3);
    // A reader who needs more life than the token has may not spend the reserve.
    let res = get_with_key(
        &app.address,
        &format!("/api/v1/apps/{APPID}/token?min_ttl=100"),
        &key,
    )
    .await;
    assert_eq!(res.status(), 503);
    assert_eq!(json_of(res).await["reason"], "budget_spent");
    assert_eq!(sim.stats(APPID).classic_calls, 7);

    // The scheduler may: three more, then it waits for the next quota day.
    for (round, expected) in [8, 9, 10, 10].into_iter().enumerate() {
        sqlx::query("update token_state set next_refresh_at = now()")
            .execute(&app.pool)
            .await
            .unwrap();
        let waited = Instant::now();
        while logged(&app, APPID, Some("schedule")).await <= i64::try_from(round).unwrap() {
            assert!(
                waited.elapsed() < Duration::from_secs(5),
                "no scheduled attempt"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(sim.stats(APPID).classic_calls, expected);
    }
    let skipped: i64 =
        sqlx::query_scalar("select count(*) from refresh_log where outcome = 'skipped'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(skipped, 1);
    let next: DateTime<Utc> = sqlx::query_scalar("select next_refresh_at from token_state")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(
        next > Utc::now() + chrono::Duration::minutes(1),
        "waits for the next day: {next}"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("tokenvault_apps_near_upstream_budget 1"),
        "{metrics}"
    );
}
