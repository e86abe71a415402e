//! Sign-up, sessions, CSRF and sign-in throttling over the JSON API, and
//! operators, who see every tenant and nothing secret.

use std::time::Instant;

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, get_with_key, spawn_app};

/// A response's JSON body.
pub(crate) async fn json_of(res: reqwest::Response) -> Value {
    res.json().await.expect("json body")
}

#[tokio::test]
async fn signup_login_key_logout_flow() {
    let app = spawn_app().await;
    let owner = app.signup("Acme 小程序", "owner@acme.test").await;

    let me = json_of(owner.get("/api/v1/session").await).await;
    assert_eq!(me["user"]["email"], "owner@acme.test");
    assert_eq!(me["user"]["role"], "owner");
    assert_eq!(me["tenant"]["name"], "Acme 小程序");
    assert_eq!(me["csrf_token"], owner.csrf.as_str());

    let key = owner.create_key(json!({ "name": "ci server" })).await;
    let secret = key["key"].as_str().unwrap().to_string();
    assert!(secret.starts_with(key["prefix"].as_str().unwrap()));

    // The list shows the prefix, never the key.
    let list = owner.get("/api/v1/api-keys").await.text().await.unwrap();
    assert!(list.contains(key["prefix"].as_str().unwrap()));
    assert!(!list.contains(&secret));

    // The key authenticates as itself.
    let who = get_with_key(&app.address, "/api/v1/session", &secret).await;
    assert_eq!(who.status(), 200);
    let who = json_of(who).await;
    assert_eq!(who["api_key"]["id"], key["id"]);
    assert_eq!(who["tenant"]["name"], "Acme 小程序");

    // Sign out ends the session on the server; the cookie is useless after.
    let res = owner.post_json("/api/v1/logout", &json!({})).await;
    assert_eq!(res.status(), 204);
    assert_eq!(owner.get("/api/v1/session").await.status(), 401);

    // Sign in again, revoke the key: it stops working.
    let owner = app.login("OWNER@acme.test", PASSWORD).await;
    let res = owner
        .delete(&format!("/api/v1/api-keys/{}", key["id"].as_str().unwrap()))
        .await;
    assert_eq!(res.status(), 204);
    let res = get_with_key(&app.address, "/api/v1/session", &secret).await;
    assert_eq!(res.status(), 401);
    assert_eq!(json_of(res).await["code"], "unauthenticated");
}

#[tokio::test]
async fn session_cookie_is_httponly_and_samesite() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(format!("{}/api/v1/signup", app.address))
        .json(
            &json!({ "organization": "Cookie Co", "email": "c@cookie.test", "password": PASSWORD }),
        )
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("tv_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    // The database keeps a hash, not the cookie value.
    let value = cookie
        .trim_start_matches("tv_session=")
        .split(';')
        .next()
        .unwrap();
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("select id_hash from sessions")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], value.as_bytes());
}

#[tokio::test]
async fn state_changes_with_a_session_need_the_csrf_token() {
    let app = spawn_app().await;
    let mut owner = app.signup("Csrf Co", "o@csrf.test").await;
    let good = owner.csrf.clone();
    for bad in ["", "forged-token"] {
        owner.csrf = bad.to_string();
        let res = owner
            .post_json("/api/v1/api-keys", &json!({ "name": "k" }))
            .await;
        assert_eq!(res.status(), 403);
        assert_eq!(json_of(res).await["code"], "csrf_failed");
        let res = owner.post_json("/api/v1/logout", &json!({})).await;
        assert_eq!(res.status(), 403);
    }
    let keys: i64 = sqlx::query_scalar("select count(*) from api_keys")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(keys, 0, "nothing was created without the token");
    owner.csrf = good;
    let key = owner.create_key(json!({ "name": "k" })).await;
    // Requests made with an API key need no CSRF token.
    let res = reqwest::Client::new()
        .get(format!("{}/api/v1/session", app.address))
        .bearer_auth(key["key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn login_issues_a_fresh_session_id() {
    let app = spawn_app().await;
    app.signup("Fixation Co", "f@fix.test").await;
    // An attacker plants a session id in the victim's browser, then the victim signs in.
    let planted = "attacker-chosen-session-id";
    let res = app
        .client
        .post(format!("{}/api/v1/login", app.address))
        .header("Cookie", format!("tv_session={planted}"))
        .json(&json!({ "email": "f@fix.test", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(!cookie.contains(planted));
    // The planted id does not become a session.
    let res = app
        .client
        .get(format!("{}/api/v1/session", app.address))
        .header("Cookie", format!("tv_session={planted}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // Signing in again from the same browser replaces the old session.
    let b = app.login("f@fix.test", PASSWORD).await;
    let old_cookie = b.get("/api/v1/session").await;
    assert_eq!(old_cookie.status(), 200);
    let before: i64 = sqlx::query_scalar("select count(*) from sessions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let res = b
        .post_json(
            "/api/v1/login",
            &json!({ "email": "f@fix.test", "password": PASSWORD }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let after: i64 = sqlx::query_scalar("select count(*) from sessions")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(before, after, "the old session of this browser was ended");
}

#[tokio::test]
async fn login_does_not_reveal_which_emails_exist() {
    let app = spawn_app().await;
    app.signup("Oracle Co", "known@oracle.test").await;
    let attempt = |email: &'static str| {
        let client = app.client.clone();
        let url = format!("{}/api/v1/login", app.address);
        async move {
            let started = Instant::now();
            let res = client
                .post(url)
                .json(&json!({ "email": email, "password": "not the password at all" }))
                .send()
                .await
                .unwrap();
            (res.status(), res.text().await.unwrap(), started.elapsed())
        }
    };
    let (s1, b1, t_known) = attempt("known@oracle.test").await;
    let (s2, b2, t_unknown) = attempt("nobody@oracle.test").await;
    assert_eq!(s1, 401);
    assert_eq!(
        (s1, &b1),
        (s2, &b2),
        "same answer for unknown email and wrong password"
    );
    // Both verify an argon2 hash: the unknown email is not answered early.
    assert!(
        t_unknown * 10 >= t_known * 3,
        "unknown email answered in {t_unknown:?}, wrong password in {t_known:?}"
    );
    let failed: i64 =
        sqlx::query_scalar("select count(*) from audit_log where action = 'signin.failed'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(failed, 2);
}

#[tokio::test]
async fn login_is_throttled_per_account() {
    let app = spawn_app().await;
    app.signup("Throttle Co", "t@throttle.test").await;
    let try_login = || {
        app.client
            .post(format!("{}/api/v1/login", app.address))
            .json(&json!({ "email": "t@throttle.test", "password": "wrong password here" }))
            .send()
    };
    for _ in 0..5 {
        assert_eq!(try_login().await.unwrap().status(), 401);
    }
    let res = try_login().await.unwrap();
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(json_of(res).await["code"], "too_many_requests");
    // Even the right password waits: the throttle is per account.
    let res = app
        .client
        .post(format!("{}/api/v1/login", app.address))
        .json(&json!({ "email": "t@throttle.test", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
}

#[tokio::test]
async fn operators_see_every_tenant_and_nothing_secret() {
    let app = spawn_app().await;
    let owner = app.signup("Tenant One", "one@t.test").await;
    owner.create_key(json!({ "name": "k" })).await;
    app.signup("Tenant Two", "two@t.test").await;

    let out = tokio::task::spawn_blocking({
        let url = app.db.url();
        move || {
            crate::helpers::Sandbox::new()
                .tokenvault()
                .args(["operator", "create", "--email", "ops@service.test"])
                .env("DATABASE_URL", url)
                .env("TOKENVAULT_OPERATOR_PASSWORD", PASSWORD)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Operators must enrol in two-factor sign-in: until then their session
    // can do nothing else.
    let ops = app.login("ops@service.test", PASSWORD).await;
    let res = ops.get("/api/v1/operator/tenants").await;
    assert_eq!(res.status(), 403);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["code"], "totp_enrollment_required");
    ops.enrol_totp().await;
    let res = ops.get("/api/v1/operator/tenants").await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Tenant One", "Tenant Two"]);
    assert_eq!(body["items"][0]["members"], 1);
    assert!(!text.contains("tvk_"), "no keys in the operator view");
    // Operators do not act inside tenants; tenants do not see the operator view.
    assert_eq!(ops.get("/api/v1/members").await.status(), 403);
    assert_eq!(
        ops.post_json("/api/v1/api-keys", &json!({ "name": "x" }))
            .await
            .status(),
        403
    );
    assert_eq!(owner.get("/api/v1/operator/tenants").await.status(), 403);
}
