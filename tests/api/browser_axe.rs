//! WCAG 2.1 AA on every main page, checked by axe-core in a real headless
//! Chromium: each page signed out, as an owner (with a failing app) and as
//! the operator, in English and in Chinese, at desktop and at phone width,
//! with zero violations. On the sign-in page, the dashboard and an app page,
//! the rules behind Lighthouse's accessibility audits (lang, title, names,
//! labels, contrast, heading order, text for the charts) must each apply
//! and pass. Every page names the embedded favicon, and the
//! browser can load it (no `/favicon.ico` 404 in the console).
//!
//! axe-core is the npm package pinned in `tests/a11y/package.json`
//! (`.ci/run` installs it with `npm ci`); its script is injected into each
//! page through the browser driver. Without it the test is skipped, except under
//! `CI=true`, where it fails.

use std::path::PathBuf;

use fantoccini::Client;
use serde_json::{Value, json};
use tokenvault::upstream::simulator::{SimConfig, WeChatSimulator};

use crate::apps::{APPID, OTHER_SECRET, SECRET};
use crate::browser::{fill, start_browser, submit, text_when};
use crate::helpers::{PASSWORD, spawn_app_with_sim};
use crate::ui_ops::create_operator;

/// A common phone's viewport in CSS pixels.
const PHONE: (u32, u32) = (390, 844);
/// The desktop window `start_browser` opens.
const DESKTOP: (u32, u32) = (1200, 900);

/// axe-core's script, or `None` (skip) when it is not installed outside CI.
fn axe_source() -> Option<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/a11y/node_modules/axe-core/axe.min.js");
    match std::fs::read_to_string(&path) {
        Ok(source) => Some(source),
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but {} is missing ({e}): run `npm ci --prefix tests/a11y`",
                path.display()
            );
            eprintln!("skipping the axe-core test: run `npm ci --prefix tests/a11y`");
            None
        }
    }
}

/// Run axe-core on the page shown, for WCAG 2.0/2.1 A and AA and axe's best
/// practices; returns the violations, each with up to three offending nodes.
async fn violations(client: &Client, axe: &str) -> Vec<Value> {
    client.execute(axe, vec![]).await.expect("inject axe-core");
    let found = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { runOnly: { type: 'tag', values:
                   ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } })
               .then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact,
                   help: v.help, nodes: v.nodes.slice(0, 3).map(n =>
                       n.target.join(' ') + ' — ' + n.failureSummary) }))))
               .catch(e => done([{ id: 'axe-error', help: String(e) }]));",
            vec![],
        )
        .await
        .expect("run axe-core");
    found.as_array().cloned().unwrap_or_default()
}

/// Lighthouse's accessibility audits that can be checked offline, through
/// the axe-core rules they are built on: `lang`, a title, a viewport that
/// allows zooming, one `h1`, headings in order, contrast, names of links,
/// buttons and form fields, text for images (the charts). Each of `rules`
/// must have been applied to the page shown (not inapplicable) and passed.
async fn assert_lighthouse_points(client: &Client, axe: &str, page: &str, rules: &[&str]) {
    client.goto(page).await.unwrap();
    text_when(client, "html[lang='en'] main h1").await;
    client.execute(axe, vec![]).await.expect("inject axe-core");
    let found = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { runOnly: { type: 'rule', values: arguments[0] } })
               .then(r => done({ passes: r.passes.map(p => p.id),
                                 violations: r.violations.map(v => v.id + ': ' + v.help) }))
               .catch(e => done({ passes: [], violations: [String(e)] }));",
            vec![json!(rules)],
        )
        .await
        .expect("run axe-core");
    assert_eq!(found["violations"], json!([]), "{page}: {found}");
    let passed: Vec<&str> = found["passes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let missing: Vec<&&str> = rules.iter().filter(|r| !passed.contains(r)).collect();
    assert!(
        missing.is_empty(),
        "{page}: not applied: {missing:?} ({found})"
    );
}

/// The rules behind Lighthouse's accessibility audits every page meets.
const EVERY_PAGE: [&str; 8] = [
    "html-has-lang",
    "html-lang-valid",
    "document-title",
    "meta-viewport",
    "page-has-heading-one",
    "color-contrast",
    "link-name",
    "button-name",
];

/// The page names the favicon, and the browser loads it.
async fn assert_favicon(client: &Client, what: &str) {
    let status = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const link = document.querySelector('link[rel=icon]');
             if (!link) { done('no link rel=icon'); return; }
             fetch(link.href).then(r => done(r.status + ' ' + r.headers.get('content-type')),
                                   e => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, json!("200 image/svg+xml"), "{what}: the favicon");
}

/// Check each page at desktop and phone width in both languages.
async fn check_pages(client: &Client, base: &str, axe: &str, pages: &[(String, &str)]) {
    let mut failures = Vec::new();
    for (lang, size) in [
        ("en", DESKTOP),
        ("en", PHONE),
        ("zh-CN", PHONE),
        ("zh-CN", DESKTOP),
    ] {
        client.set_window_size(size.0, size.1).await.unwrap();
        for (path, ready) in pages {
            client
                .goto(&format!("{base}/lang/{lang}?back={path}"))
                .await
                .unwrap();
            text_when(client, &format!("html[lang='{lang}'] {ready}")).await;
            let what = format!("{path} ({lang}, {} px)", size.0);
            assert_favicon(client, &what).await;
            let found = violations(client, axe).await;
            if !found.is_empty() {
                failures.push(format!("{what}: {}", Value::Array(found)));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "axe-core violations:\n{}",
        failures.join("\n")
    );
}

/// The app page's latency chart: one bar per attempt (registration, the
/// refused refresh, the retries), coloured by outcome, each with its details as a
/// tooltip; a title and a text equivalent.
async fn assert_latency_chart(client: &Client, page: &str) {
    client.goto(page).await.unwrap();
    text_when(client, "html[lang='en'] svg#latency-chart").await;
    let chart = client
        .execute(
            "const svg = document.getElementById('latency-chart');
             return { role: svg.getAttribute('role'),
                      title: svg.querySelector(':scope > title').textContent,
                      desc: svg.querySelector(':scope > desc').textContent,
                      bars: [...svg.querySelectorAll('rect')].map(r =>
                          [r.getAttribute('class'), r.querySelector('title').textContent,
                           Number(r.getAttribute('height'))]),
                      summary: document.querySelector('#latency-chart ~ .chart-summary').textContent };",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(chart["role"], "img", "{chart}");
    assert_eq!(chart["title"], "Latency of the last 100 attempts");
    assert_eq!(chart["desc"], chart["summary"]);
    // The refused secret is retried by the scheduler: at least two attempts.
    let bars = chart["bars"].as_array().unwrap();
    assert!(bars.len() >= 2, "{chart}");
    let failed = bars.iter().filter(|b| b[0] == "chart-failure").count();
    let desc = chart["desc"].as_str().unwrap();
    assert!(
        desc.starts_with(&format!("{} attempts that called WeChat", bars.len())),
        "{desc}"
    );
    assert!(desc.contains(&format!("{failed} failed")), "{desc}");
    assert_eq!(bars[0][0], "chart-success", "oldest first: {chart}");
    assert!(
        bars[0][1].as_str().unwrap().contains("registration"),
        "{chart}"
    );
    assert!(
        bars.iter().any(|b| b[0] == "chart-failure"
            && b[1].as_str().unwrap().contains("manual")
            && b[1].as_str().unwrap().contains("errcode 40001")),
        "{chart}"
    );
    assert!(
        bars.iter().all(|b| b[2].as_f64().unwrap() >= 2.0),
        "{chart}"
    );
}

#[tokio::test]
async fn every_main_page_passes_axe_core_in_both_languages_at_desktop_and_phone_width() {
    let Some(axe) = axe_source() else { return };
    let Some((_driver, client, _profile)) = start_browser().await else {
        return;
    };
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let base = app.address.clone();
    let url = |p: &str| format!("{base}{p}");

    // Signed out.
    let signed_out = [
        ("/login".to_string(), "form[action='/login']"),
        ("/signup".to_string(), "form[action='/signup']"),
        ("/no-such-page".to_string(), "main h1"),
    ];
    check_pages(&client, &base, &axe, &signed_out).await;
    let with = |more: &[&'static str]| [&EVERY_PAGE[..], more].concat();
    let sign_in = with(&["label"]);
    assert_lighthouse_points(&client, &axe, &url("/lang/en?back=/login"), &sign_in).await;

    // An owner with a failing app (the app page's widest state).
    client.goto(&url("/signup")).await.unwrap();
    fill(&client, "f-organization", "Acme Mini Shop").await;
    fill(&client, "f-email", "owner@acme.test").await;
    fill(&client, "f-password", PASSWORD).await;
    submit(&client, "/signup").await;
    text_when(&client, ".empty").await;
    client.goto(&url("/apps/new")).await.unwrap();
    fill(&client, "f-appid", APPID).await;
    fill(&client, "f-secret", SECRET).await;
    fill(&client, "f-name", "Acme Shop 小程序").await;
    submit(&client, "/apps/new").await;
    text_when(&client, ".flash").await;
    sim.add_app(APPID, OTHER_SECRET);
    submit(&client, &format!("/apps/{APPID}/refresh")).await;
    text_when(&client, ".problem").await;
    client.goto(&url("/keys")).await.unwrap();
    fill(&client, "f-name", "build server").await;
    submit(&client, "/keys").await;
    text_when(&client, "#new-key").await;
    let owner_pages = [
        ("/dashboard".to_string(), "#summary"),
        (format!("/apps/{APPID}"), ".problem"),
        ("/apps/new".to_string(), "main h1"),
        ("/keys".to_string(), "main h1"),
        ("/alerts".to_string(), "main h1"),
        ("/members".to_string(), "main h1"),
        ("/members/invite".to_string(), "main h1"),
        ("/audit".to_string(), "main h1"),
        ("/account/two-factor".to_string(), "main h1"),
        ("/status".to_string(), "main h1"),
        ("/account".to_string(), "#sessions"),
    ];
    check_pages(&client, &base, &axe, &owner_pages).await;
    assert_latency_chart(&client, &url(&format!("/lang/en?back=/apps/{APPID}"))).await;
    let charts = with(&["svg-img-alt", "heading-order"]);
    assert_lighthouse_points(&client, &axe, &url("/dashboard"), &charts).await;
    let app_page = with(&["svg-img-alt", "heading-order", "label"]);
    let app_url = url(&format!("/apps/{APPID}"));
    assert_lighthouse_points(&client, &axe, &app_url, &app_page).await;

    // The operator.
    create_operator(&app, "ops@service.test").await;
    client.delete_all_cookies().await.unwrap();
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
    text_when(&client, "#ops-summary").await;
    check_pages(
        &client,
        &base,
        &axe,
        &[("/operator".to_string(), "#ops-summary")],
    )
    .await;
    client.close().await.unwrap();
}
