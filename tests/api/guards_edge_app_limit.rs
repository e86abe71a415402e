//! The per-organisation app limit: it holds, also against concurrent
//! registrations, and an operator changes it from the command line and the
//! operator page.

use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::guards_edge::{body, spawn};
use crate::helpers::{Browser, PASSWORD, TestApp};

fn appid(n: usize) -> String {
    format!("wx{n:016x}")
}

async fn register(owner: &Browser, n: usize) -> (u16, Value) {
    let res = owner
        .post_json(
            "/api/v1/apps",
            &json!({ "appid": appid(n), "secret": "0123456789abcdef0123456789abcdef", "verify": false }),
        )
        .await;
    (res.status().as_u16(), body(res).await)
}

fn cli(app: &TestApp, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokenvault"));
    for var in [
        "TOKENVAULT_BIND",
        "TOKENVAULT_DATA_DIR",
        "TOKENVAULT_LOG",
        "TOKENVAULT_MASTER_KEYS",
        "TOKENVAULT_MASTER_KEY_FILE",
        "TOKENVAULT_ACTIVE_KEY_ID",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("DATABASE_URL", app.db.url())
        .env("TOKENVAULT_MAX_APPS_PER_TENANT", "2")
        .args(["operator", "app-limit"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run tokenvault")
}

#[tokio::test]
async fn the_app_limit_holds_and_an_operator_changes_it_from_the_cli_and_the_page() {
    let app = spawn(&["--max-apps-per-tenant", "2"]).await;
    let owner = app.signup("Limit Co", "o@limit.test").await;
    let other = app.signup("Other Co", "o@other.test").await;
    assert_eq!(register(&owner, 1).await.0, 201);
    assert_eq!(register(&owner, 2).await.0, 201);
    let (status, problem) = register(&owner, 3).await;
    assert_eq!(status, 409);
    assert_eq!(problem["code"], "app_limit_reached");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("limit of 2 apps") && detail.contains("operator"),
        "{detail}"
    );
    assert_eq!(
        register(&other, 1).await.0,
        201,
        "limits are per organisation"
    );

    // The registration page says so, in both languages.
    for (lang, text) in [
        ("en", "Your organisation has reached its limit of 2 apps."),
        ("zh-CN", "你的组织已达到 2 个小程序或公众号的上限。"),
    ] {
        let res = owner
            .client
            .post(format!("{}/apps/new", app.address))
            .header("Accept-Language", lang)
            .form(&[
                ("csrf_token", owner.csrf.as_str()),
                ("appid", &appid(3)),
                ("secret", "0123456789abcdef0123456789abcdef"),
                ("name", ""),
                ("token_mode", "stable"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 409);
        let page = res.text().await.unwrap();
        assert!(page.contains(text), "{lang}: {page}");
    }

    // An operator raises it from the command line, by the exact name.
    let out = cli(&app, &["--tenant", "Limit Co", "3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("may now register 3 apps"));
    assert_eq!(register(&owner, 3).await.0, 201);
    assert_eq!(register(&owner, 4).await.0, 409);
    // Bad input is one clear line, and changes nothing.
    for (args, expected) in [
        (&["--tenant", "No Such Co", "5"][..], "no organisation"),
        (&["--tenant", "Limit Co", "2000000"][..], "default"),
        (&["--tenant", "Limit Co", "many"][..], "default"),
    ] {
        let out = cli(&app, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr.contains(expected) && !stderr.contains("panicked"),
            "{stderr}"
        );
    }
    let tenant_id: Uuid = sqlx::query_scalar("select id from tenants where name = 'Limit Co'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // Back to the default, by id: 3 apps registered, 2 allowed.
    let out = cli(&app, &["--tenant", &tenant_id.to_string(), "default"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(register(&owner, 5).await.0, 409);

    // The operator page shows the limit and sets it.
    let operator = crate::ui_ops::create_operator(&app, "ops@limit.test").await;
    let page = operator
        .client
        .get(format!("{}/operator", app.address))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!(
            "action=\"/operator/tenants/{tenant_id}/app-limit\""
        )),
        "{page}"
    );
    assert!(page.contains("default: 2"));
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let op = Browser {
        address: app.address.clone(),
        client: no_redirect,
        csrf: String::new(),
    };
    let op = {
        let res = op
            .client
            .post(format!("{}/api/v1/login", app.address))
            .json(&json!({
                "email": "ops@limit.test",
                "password": PASSWORD,
                "totp": crate::helpers::totp::next_code(&app.pool, "ops@limit.test").await,
            }))
            .send()
            .await
            .unwrap();
        let csrf = body(res).await["csrf_token"].as_str().unwrap().to_string();
        Browser { csrf, ..op }
    };
    let post = |value: &str| {
        op.client
            .post(format!(
                "{}/operator/tenants/{tenant_id}/app-limit",
                app.address
            ))
            .form(&[("csrf_token", op.csrf.as_str()), ("app_limit", value)])
            .send()
    };
    let res = post("10").await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/operator");
    assert_eq!(register(&owner, 5).await.0, 201);
    let res = post("lots").await.unwrap();
    assert_eq!(res.status(), 303);
    let limit: Option<i32> = sqlx::query_scalar("select app_limit from tenants where id = $1")
        .bind(tenant_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(limit, Some(10), "a bad value changes nothing");
    // A tenant's owner may not.
    let res = owner
        .client
        .post(format!(
            "{}/operator/tenants/{tenant_id}/app-limit",
            app.address
        ))
        .form(&[("csrf_token", owner.csrf.as_str()), ("app_limit", "1000")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // Every change is in the audit log: who, from what to what, and how.
    let changes: Vec<(Option<Uuid>, Value)> = sqlx::query_as(
        "select actor_user_id, detail from audit_log
          where action = 'tenant.app_limit_changed' and tenant_id = $1 order by id",
    )
    .bind(tenant_id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let details: Vec<&Value> = changes.iter().map(|c| &c.1).collect();
    assert_eq!(
        details,
        [
            &json!({ "from": null, "to": 3, "via": "cli" }),
            &json!({ "from": 3, "to": null, "via": "cli" }),
            &json!({ "from": null, "to": 10, "via": "page" }),
        ]
    );
    assert!(changes[2].0.is_some(), "the operator is named");
}

#[tokio::test]
async fn concurrent_registrations_at_the_limit_cannot_both_pass() {
    let app = spawn(&["--max-apps-per-tenant", "3"]).await;
    let owner = app.signup("Race Co", "o@race.test").await;
    for round in 0..3 {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let client = owner.client.clone();
                let csrf = owner.csrf.clone();
                let url = format!("{}/api/v1/apps", app.address);
                tokio::spawn(async move {
                    let res = client
                        .post(url)
                        .header("X-CSRF-Token", csrf)
                        .json(&json!({ "appid": appid(100 * round + i), "secret": "0123456789abcdef0123456789abcdef", "verify": false }))
                        .send()
                        .await
                        .unwrap();
                    let status = res.status().as_u16();
                    (status, body(res).await["code"].clone())
                })
            })
            .collect();
        let mut created = 0;
        for t in tasks {
            match t.await.unwrap() {
                (201, _) => created += 1,
                (409, code) => assert_eq!(code, "app_limit_reached"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(created, if round == 0 { 3 } else { 0 }, "round {round}");
    }
    let count: i64 = sqlx::query_scalar("select count(*) from apps")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 3);
}
