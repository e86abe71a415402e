//! Times in the viewer's time zone, in a real headless Chromium whose zone
//! is Asia/Shanghai (UTC+8): every `<time class="when">` carries the UTC
//! instant in `datetime` and as its tooltip, and shows the local time (eight
//! hours on) with a relative time beside it, in English and in Chinese.
//! Without JavaScript (a plain HTTP client) the page shows UTC. A zone the
//! person chose on the account page wins over the browser's.

use chrono::{DateTime, Duration, Utc};
use fantoccini::Client;
use serde_json::{Value, json};
use tokenvault::upstream::simulator::{SimConfig, WeChatSimulator};

use crate::apps::{APPID, SECRET};
use crate::browser::{fill, start_browser_in_zone, submit, text_when};
use crate::helpers::PASSWORD;
use crate::helpers::spawn_app_with_sim;

/// `[datetime, title, text]` of every time element once the script ran.
async fn times(client: &Client) -> Vec<Value> {
    client
        .wait()
        .at_most(std::time::Duration::from_secs(10))
        .for_element(fantoccini::Locator::Css("time.when[data-local]"))
        .await
        .expect("the script shows local times");
    let found = client
        .execute(
            "return [...document.querySelectorAll('time.when')].map(e =>
                 [e.getAttribute('datetime'), e.title, e.textContent]);",
            vec![],
        )
        .await
        .unwrap();
    found.as_array().cloned().unwrap_or_default()
}

/// Each time shows Shanghai's wall clock for its UTC instant, and a
/// relative time containing one of `relative`.
fn assert_local(found: &[Value], relative: &[&str], what: &str) {
    assert!(found.len() >= 2, "{what}: too few times: {found:?}");
    for t in found {
        let (iso, title, text) = (
            t[0].as_str().unwrap(),
            t[1].as_str().unwrap(),
            t[2].as_str().unwrap(),
        );
        let at: DateTime<Utc> = iso.parse().unwrap_or_else(|e| panic!("{iso}: {e}"));
        assert_eq!(
            title,
            at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            "{what}"
        );
        let shanghai = (at + Duration::hours(8)).format("%H:%M:%S").to_string();
        assert!(
            text.contains(&shanghai),
            "{what}: {text} is not {shanghai} in UTC+8"
        );
        assert!(!text.contains("UTC"), "{what}: {text}");
        assert!(
            relative.iter().any(|r| text.contains(r)),
            "{what}: no relative time in {text}"
        );
    }
}

/// The timeline's marks and band pieces are labelled in Shanghai's time
/// (tooltip, accessible name and readout), not in UTC.
async fn assert_chart_local(client: &Client) {
    client
        .wait()
        .at_most(std::time::Duration::from_secs(10))
        .for_element(fantoccini::Locator::Css(
            "#timeline-chart g.mark[data-local]",
        ))
        .await
        .expect("the script relabels the chart");
    let found = client
        .execute(
            "return [...document.querySelectorAll('#timeline-chart [data-from]')].map(e =>
                 [e.dataset.from, e.querySelector('title').textContent,
                  e.getAttribute('aria-label'), e.dataset.local]);",
            vec![],
        )
        .await
        .unwrap();
    let found = found.as_array().cloned().unwrap_or_default();
    assert!(
        found.iter().any(|f| f[2].is_string()),
        "a mark at least: {found:?}"
    );
    for f in &found {
        let at: DateTime<Utc> = f[0].as_str().unwrap().parse().unwrap();
        let shanghai = (at + Duration::hours(8)).format("%H:%M").to_string();
        let title = f[1].as_str().unwrap();
        assert!(
            title.contains(&shanghai),
            "{title} is not {shanghai} in UTC+8"
        );
        assert!(title.contains("GMT+8"), "{title}");
        assert!(!title.contains("UTC"), "{title}");
        if let Some(label) = f[2].as_str() {
            assert_eq!(label, title);
        }
        assert_eq!(f[3], "true");
    }
}

#[tokio::test]
async fn times_show_in_the_viewers_zone_with_relative_times_and_utc_without_javascript() {
    let Some((_driver, client, _profile)) = start_browser_in_zone(Some("Asia/Shanghai")).await
    else {
        return;
    };
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Acme Mini Shop", "owner@acme.test").await;
    let res = owner
        .post_json("/api/v1/apps", &json!({ "appid": APPID, "secret": SECRET }))
        .await;
    assert_eq!(res.status(), 201);
    let page = format!("/apps/{APPID}");

    // Without JavaScript: UTC, in <time> elements with the instant.
    let html = owner.get(&page).await.text().await.unwrap();
    assert!(html.contains("<time class=\"when\" datetime=\""), "{html}");
    assert!(html.contains(" UTC</time>"), "{html}");

    let url = |p: &str| format!("{}{p}", app.address);
    client.goto(&url("/login")).await.unwrap();
    fill(&client, "f-email", "owner@acme.test").await;
    fill(&client, "f-password", PASSWORD).await;
    submit(&client, "/login").await;
    text_when(&client, "#summary").await;
    assert_local(&times(&client).await, &["ago", "in ", "now"], "dashboard");
    client.goto(&url(&page)).await.unwrap();
    assert_local(&times(&client).await, &["ago", "in ", "now"], "app page");
    assert_chart_local(&client).await;
    client
        .goto(&url(&format!("/lang/zh-CN?back={page}")))
        .await
        .unwrap();
    text_when(&client, "html[lang='zh-CN'] main h1").await;
    assert_local(
        &times(&client).await,
        &["前", "后", "现在"],
        "app page, zh-CN",
    );

    // A zone chosen on the account page wins over the browser's: Kolkata
    // (UTC+5:30 all year).
    client.goto(&url("/lang/en?back=/account")).await.unwrap();
    text_when(&client, "html[lang='en'] #f-time_zone").await;
    fill(&client, "f-time_zone", "Asia/Kolkata").await;
    submit(&client, "/account/time-zone").await;
    text_when(&client, "html[data-time-zone='Asia/Kolkata'] .flash").await;
    client.goto(&url(&page)).await.unwrap();
    let found = times(&client).await;
    assert!(found.len() >= 2, "{found:?}");
    for t in &found {
        let at: DateTime<Utc> = t[0].as_str().unwrap().parse().unwrap();
        let text = t[2].as_str().unwrap();
        let kolkata = (at + Duration::minutes(330)).format("%H:%M:%S").to_string();
        assert!(
            text.contains(&kolkata),
            "{text} is not {kolkata} in Kolkata"
        );
    }
    client.close().await.unwrap();
}
