//! The operator overview and the live service health page in a real
//! headless Chromium: an operator signs in, sees every tenant, opens the
//! health page and watches WeChat's error count rise without a reload.
//! Screenshots: `operator.png`, `service-health.png` (see `browser.rs`).

use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::json;
use tokenvault::upstream::simulator::{Fault, SimConfig, WeChatSimulator};

use crate::apps::{APPID, OTHER_SECRET, SECRET};
use crate::browser::{click_link, fill, shot, start_browser, submit, text_when};
use crate::helpers::{PASSWORD, spawn_app_with_sim};
use crate::ui_ops::create_operator;

const FAILING_APPID: &str = "wx00000000000000f1";

async fn text_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Wait (at most 20 s) until the text of `css` satisfies `check`.
async fn text_becomes(client: &Client, css: &str, check: impl Fn(&str) -> bool) -> String {
    for _ in 0..100 {
        let text = text_of(client, css).await;
        if check(&text) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "{css} never changed as expected: {}",
        text_of(client, css).await
    );
}

#[tokio::test]
async fn an_operator_watches_the_service_live() {
    let Some((_driver, client, _profile)) = start_browser().await else {
        return;
    };
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    sim.add_app(FAILING_APPID, SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Acme Mini Shop", "owner@acme.test").await;
    for (appid, secret, mode) in [
        (APPID, SECRET, "classic"),
        (FAILING_APPID, OTHER_SECRET, "stable"),
    ] {
        let res = owner
            .post_json(
                "/api/v1/apps",
                &json!({ "appid": appid, "secret": secret, "token_mode": mode }),
            )
            .await;
        assert_eq!(res.status(), 201);
    }
    app.signup("蓝鲸小程序工作室", "owner@lanjing.test").await;
    create_operator(&app, "ops@service.test").await;
    let url = |p: &str| format!("{}{p}", app.address);

    // The operator signs in and lands on the overview.
    client.goto(&url("/login")).await.unwrap();
    fill(&client, "f-email", "ops@service.test").await;
    fill(&client, "f-password", PASSWORD).await;
    submit(&client, "/login").await;
    // Operators sign in with two factors: the code on a second step.
    // (The sign-in throttle slows an account's repeated sign-ins down: wait longer.)
    client
        .wait()
        .at_most(std::time::Duration::from_secs(30))
        .for_element(fantoccini::Locator::Css("form[action='/login/two-factor']"))
        .await
        .unwrap();
    let code = crate::helpers::totp::next_code(&app.pool, "ops@service.test").await;
    fill(&client, "f-code", &code).await;
    submit(&client, "/login/two-factor").await;
    let text = text_when(&client, "#ops-summary").await;
    assert!(
        text.contains("Organisations: 2 · Apps: 2 (1 healthy, 1 failing)"),
        "{text}"
    );
    assert!(text.contains("Acme Mini Shop") && text.contains("蓝鲸小程序工作室"));
    assert!(text.contains(FAILING_APPID));
    assert!(
        text.contains("errcode 40001") || text.contains("errcode 40125"),
        "{text}"
    );
    assert!(!text.contains(SECRET) && !text.contains(OTHER_SECRET));
    assert_eq!(
        client.current_url().await.unwrap().path(),
        "/operator",
        "operators land on their overview"
    );
    shot(&client, "operator").await;

    // The health page, from the nav, updates in place.
    click_link(&client, "Service health").await;
    text_when(&client, "#health-live").await;
    text_becomes(&client, "#replica-rows", |t| t.contains("alive")).await;
    client
        .execute("window.tvNotReloaded = true;", vec![])
        .await
        .unwrap();
    let checked = text_of(&client, "[data-field='checked_at']").await;
    let errors = text_of(&client, "[data-field='upstream.upstream_errors']").await;
    assert_eq!(errors, "0", "nothing failed yet");

    // WeChat's gateway starts failing; the page shows it without a reload.
    sim.inject(
        APPID,
        Fault::HttpStatus {
            status: 502,
            times: None,
        },
    )
    .unwrap();
    for _ in 0..3 {
        let res = crate::helpers::refresh_now(&owner, APPID).await;
        assert!(res.status().is_success());
    }
    text_becomes(&client, "[data-field='upstream.upstream_errors']", |t| {
        t.parse::<u32>().is_ok_and(|n| n >= 3)
    })
    .await;
    text_becomes(&client, "[data-field='upstream.status']", |t| {
        t == "failing"
    })
    .await;
    let now = text_of(&client, "[data-field='checked_at']").await;
    assert_ne!(now, checked, "the check time moves on");
    let kept = client
        .execute("return window.tvNotReloaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(kept, json!(true), "updated in place, not reloaded");
    let rate = text_of(&client, "[data-field='upstream.upstream_error_rate']").await;
    assert!(rate.ends_with('%') && rate != "0.0 %", "{rate}");
    let status = text_of(&client, "h1 + .badge").await;
    assert_eq!(status, "degraded");
    // Operators see where each replica runs.
    let rows = text_of(&client, "#replica-rows").await;
    assert!(rows.contains(env!("CARGO_PKG_VERSION")), "{rows}");
    shot(&client, "service-health").await;
    client
        .execute("document.getElementById('rate').scrollIntoView();", vec![])
        .await
        .unwrap();
    shot(&client, "service-charts").await;

    // In Chinese, the live values come with Chinese labels.
    click_link(&client, "中文").await;
    let text = text_when(&client, "html[lang='zh-CN'] #health-live").await;
    assert!(
        text.contains("服务状态") && text.contains("微信接口"),
        "{text}"
    );
    client
        .execute("window.tvNotReloaded = true;", vec![])
        .await
        .unwrap();
    let checked = text_of(&client, "[data-field='checked_at']").await;
    text_becomes(&client, "[data-field='checked_at']", |t| t != checked).await;
    assert_eq!(
        text_of(&client, "[data-field='upstream.status']").await,
        "异常"
    );
    assert_eq!(
        text_of(&client, "[data-field='database.reachable']").await,
        "运行正常"
    );
    let kept = client
        .execute("return window.tvNotReloaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(kept, json!(true));
    shot(&client, "service-health-zh").await;

    // The owner limits a new key to one app with a tick on the keys page.
    client.delete_all_cookies().await.unwrap();
    client.goto(&url("/lang/en?back=/login")).await.unwrap();
    fill(&client, "f-email", "owner@acme.test").await;
    fill(&client, "f-password", PASSWORD).await;
    submit(&client, "/login").await;
    text_when(&client, "#summary").await;
    client.goto(&url("/keys")).await.unwrap();
    text_when(&client, "form[action='/keys']").await;
    fill(&client, "f-name", "shop server").await;
    client
        .find(Locator::Css(&format!("input[name=apps][value='{APPID}']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    shot(&client, "key-limit-form").await;
    submit(&client, "/keys").await;
    text_when(&client, "#new-key").await;
    let key = text_of(&client, "#new-key").await;
    let row = text_of(&client, "table.keys tbody tr").await;
    assert!(row.contains("shop server") && row.contains(APPID), "{row}");
    let read = |appid: &str| {
        reqwest::Client::new()
            .get(url(&format!("/api/v1/apps/{appid}/token")))
            .bearer_auth(&key)
            .send()
    };
    assert_eq!(read(FAILING_APPID).await.unwrap().status(), 403);

    client.close().await.unwrap();
}
