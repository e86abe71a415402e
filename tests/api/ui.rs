//! The web UI over plain HTTP: forms validate with the API's rules, keep
//! what was typed (never secrets), escape everything, store nothing
//! half-way, and refuse stale CSRF tokens without losing the input.

use tokenvault::upstream::simulator::{SimConfig, WeChatSimulator};

use crate::apps::{APPID, OTHER_SECRET, SECRET};
use crate::helpers::{PASSWORD, get_with_key, spawn_app_with_sim};

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client")
}

pub(crate) async fn page(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    (status, res.text().await.expect("body"))
}

/// Post the sign-up form as a browser does (with the pre-session token of
/// the page); its status and page.
async fn post_signup(
    client: &reqwest::Client,
    address: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    page(crate::helpers::post_signed_out_form(client, address, "/signup", "/signup", fields).await)
        .await
}

/// Post a form; its status and page.
async fn post_form(
    client: &reqwest::Client,
    url: String,
    fields: &[(&str, &str)],
) -> (u16, String) {
    page(client.post(url).form(fields).send().await.expect("request")).await
}

pub(crate) fn csrf_of(html: &str) -> String {
    let (_, rest) = html
        .split_once("name=\"csrf_token\" value=\"")
        .expect("a csrf_token field");
    rest.split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn sign_up_register_an_app_and_see_a_failure_explained() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let b = browser();
    let url = |p: &str| format!("{}{p}", app.address);

    // Signed out, the start page is the sign-in form.
    let (status, html) = page(b.get(url("/")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(html.contains("action=\"/login\""));

    // Bad sign-up: every field wrong, the input escaped and kept (not the password).
    let evil = "<script>alert('x')</script>";
    let (status, html) = post_signup(
        &b,
        &app.address,
        &[
            ("organization", evil),
            ("email", "not an email"),
            ("password", "short"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(!html.contains(evil), "output is escaped");
    assert!(html.contains("&lt;script&gt;"));
    assert!(html.contains("value=\"not an email\""));
    assert!(
        !html.contains("value=\"short\""),
        "a password is never sent back"
    );
    assert!(html.contains("Enter an email address"));
    let tenants: i64 = sqlx::query_scalar("select count(*) from tenants")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(tenants, 0, "nothing stored half-way");

    // Good sign-up: the dashboard's empty state teaches the next step.
    let (status, html) = post_signup(
        &b,
        &app.address,
        &[
            ("organization", "Acme 小程序"),
            ("email", "owner@acme.test"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Welcome!"));
    assert!(html.contains("No mini-programs or official accounts yet"));
    assert!(html.contains("href=\"/apps/new\""));

    // Register: field errors next to the fields, typed values kept, not the secret.
    let (_, form) = page(b.get(url("/apps/new")).send().await.unwrap()).await;
    let csrf = csrf_of(&form);
    let long = "名".repeat(10_000);
    let (status, html) = post_form(
        &b,
        url("/apps/new"),
        &[
            ("csrf_token", csrf.as_str()),
            ("appid", "wx-not-an-appid"),
            ("secret", "bad secret 🙂"),
            ("name", long.as_str()),
            ("token_mode", "stable"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("id=\"e-appid\""));
    assert!(html.contains("id=\"e-secret\""));
    assert!(html.contains("id=\"e-name\""));
    assert!(html.contains("value=\"wx-not-an-appid\""));
    assert!(!html.contains("bad secret"), "a secret is never sent back");

    // A stale CSRF token: back to the form, input kept, nothing stored.
    let (status, html) = post_form(
        &b,
        url("/apps/new"),
        &[
            ("csrf_token", "stale"),
            ("appid", APPID),
            ("secret", SECRET),
            ("name", "Shop"),
            ("token_mode", "stable"),
        ],
    )
    .await;
    assert_eq!(status, 403);
    assert!(html.contains("out of date"));
    assert!(html.contains(&format!("value=\"{APPID}\"")));
    let apps: i64 = sqlx::query_scalar("select count(*) from apps")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(apps, 0);

    // Register for real: the app page, healthy, and the dashboard's summary.
    let (status, html) = post_form(
        &b,
        url("/apps/new"),
        &[
            ("csrf_token", csrf.as_str()),
            ("appid", APPID),
            ("secret", SECRET),
            ("name", "Shop <b>"),
            ("token_mode", "stable"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("WeChat accepted the credentials"));
    assert!(html.contains("badge-healthy"));
    assert!(html.contains("Shop &lt;b&gt;"));
    assert!(!html.contains(SECRET));
    let (_, html) = page(b.get(url("/dashboard")).send().await.unwrap()).await;
    assert!(html.contains("1 app: 1 healthy"), "{html}");
    assert!(html.contains("class=\"countdown\""));

    // The secret changes at WeChat: refresh now shows 40001 explained, in both languages.
    sim.add_app(APPID, OTHER_SECRET);
    let (status, html) = post_form(
        &b,
        url(&format!("/apps/{APPID}/refresh")),
        &[("csrf_token", csrf.as_str())],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("The refresh failed"));
    assert!(html.contains("errcode 40001"));
    assert!(html.contains("What to do:"));
    let (_, html) = page(
        b.get(url(&format!("/lang/zh-CN?back=/apps/{APPID}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(html.contains("lang=\"zh-CN\""));
    assert!(html.contains("处理方法："));
    assert!(html.contains("立即刷新"));

    // Signing out needs the token too; afterwards the dashboard asks to sign in.
    let (_, html) = post_form(&b, url("/logout"), &[("csrf_token", csrf.as_str())]).await;
    assert!(html.contains("action=\"/login\""));
    let (_, html) = page(b.get(url("/dashboard")).send().await.unwrap()).await;
    assert!(html.contains("请先登录") || html.contains("Sign in to continue"));
}

#[tokio::test]
async fn pages_answer_in_the_browsers_language_and_unknown_apps_are_404() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let b = browser();
    let res = b
        .get(format!("{}/login", app.address))
        .header("Accept-Language", "zh-CN,zh;q=0.9,en;q=0.5")
        .send()
        .await
        .unwrap();
    let (_, html) = page(res).await;
    assert!(html.contains("<html lang=\"zh-CN\">"));
    assert!(html.contains("登录"));

    crate::helpers::post_signed_out_form(
        &b,
        &app.address,
        "/signup",
        "/signup",
        &[
            ("organization", "Acme"),
            ("email", "o@acme.test"),
            ("password", PASSWORD),
        ],
    )
    .await;
    for path in ["/apps/wx0000000000000000", "/apps/%3Cscript%3E"] {
        let (status, html) = page(
            b.get(format!("{}{path}", app.address))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 404, "{path}");
        assert!(!html.contains("<script>"));
    }
    let res = b
        .get(format!("{}/static/app.css", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
}

#[tokio::test]
async fn a_sign_up_posted_from_another_site_is_refused() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let res = browser()
        .post(format!("{}/signup", app.address))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[
            ("organization", "Acme"),
            ("email", "o@acme.test"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let tenants: i64 = sqlx::query_scalar("select count(*) from tenants")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(tenants, 0);
}

/// As the templates escape it.
fn escaped(s: &str) -> String {
    s.replace('&', "&amp;").replace('/', "&#x2f;")
}

fn key_of(html: &str) -> String {
    let (_, rest) = html
        .split_once("id=\"new-key\">")
        .expect("the new key is shown");
    rest.split('<').next().unwrap().to_string()
}

async fn count_keys(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from api_keys")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn create_a_key_on_the_keys_page_use_it_and_revoke_it() {
    let (_sim, app, owner) = crate::apps::with_owner_and_app("Acme", "o@acme.test").await;
    let b = &owner.client;
    let url = |p: &str| format!("{}{p}", app.address);

    let (status, html) = page(b.get(url("/keys")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(html.contains("href=\"/keys\""), "in the nav");
    assert!(html.contains("No API keys yet"));
    let csrf = csrf_of(&html);

    // A missing name: the field error, nothing stored.
    let (status, html) = post_form(
        b,
        url("/keys"),
        &[("csrf_token", csrf.as_str()), ("name", "  ")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("This field is required"));
    assert_eq!(count_keys(&app.pool).await, 0);

    // A stale form token stores nothing.
    let res = b
        .post(url("/keys"))
        .form(&[("csrf_token", "stale"), ("name", "ci")])
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains("out of date"));
    assert_eq!(count_keys(&app.pool).await, 0);

    // Created: the key shown once, escaped, with snippets and copy buttons.
    let (status, html) = post_form(
        b,
        url("/keys"),
        &[
            ("csrf_token", csrf.as_str()),
            ("name", "<b>ci</b>"),
            ("read_only", "1"),
        ],
    )
    .await;
    assert_eq!(status, 201);
    assert!(!html.contains("<b>ci</b>"));
    assert!(html.contains("&lt;b&gt;ci&lt;&#x2f;b&gt;") || html.contains("&lt;b&gt;ci&lt;/b&gt;"));
    let key = key_of(&html);
    assert!(key.starts_with("tvk_"), "{key}");
    assert!(html.contains("data-copy=\"new-key\""));
    assert!(html.contains(&format!("Authorization: Bearer {key}")));
    assert!(html.contains(&escaped(&format!("/api/v1/apps/{APPID}/token"))));
    assert!(html.contains(&escaped(&format!(
        "/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={key}"
    ))));
    assert!(!html.contains("<script>"), "no inline script");
    let res = get_with_key(&app.address, &format!("/api/v1/apps/{APPID}/token"), &key).await;
    assert_eq!(res.status(), 200);

    // Listed without the key; read-only shown.
    let (_, html) = page(b.get(url("/keys")).send().await.unwrap()).await;
    assert!(!html.contains(&key), "the key is shown only once");
    let prefix = &key[..12];
    assert!(html.contains(prefix));
    assert!(html.contains("read-only"));
    let id: uuid::Uuid = sqlx::query_scalar("select id from api_keys")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    // A viewer gets the 403 page and cannot create or revoke.
    let viewer = app.invite_and_join(&owner, "viewer", "v@acme.test").await;
    let (status, html) = page(viewer.client.get(url("/keys")).send().await.unwrap()).await;
    assert_eq!(status, 403);
    assert!(!html.contains(prefix));
    let res = viewer
        .client
        .post(url("/keys"))
        .form(&[("csrf_token", viewer.csrf.as_str()), ("name", "mine")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = viewer
        .client
        .post(url(&format!("/keys/{id}/revoke")))
        .form(&[("csrf_token", viewer.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(count_keys(&app.pool).await, 1);

    // Unknown or malformed ids are 404, never 500.
    for bad in ["nope", "00000000-0000-0000-0000-000000000000"] {
        let res = b
            .post(url(&format!("/keys/{bad}/revoke")))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{bad}");
    }

    // Revoked after the confirmation step: the key stops working.
    let (status, html) = post_form(
        b,
        url(&format!("/keys/{id}/revoke")),
        &[("csrf_token", csrf.as_str())],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("Key revoked"));
    assert!(html.contains("revoked <time class=\"when\" datetime=\"20"));
    let res = get_with_key(&app.address, &format!("/api/v1/apps/{APPID}/token"), &key).await;
    assert_eq!(res.status(), 401);
}
