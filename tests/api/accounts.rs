//! Sign-up, sessions, CSRF, throttling, roles, API keys, audit, operators.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, get_with_key, spawn_app};

async fn json_of(res: reqwest::Response) -> Value {
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
async fn roles_allow_and_refuse() {
    let app = spawn_app().await;
    let owner = app.signup("Roles Co", "owner@roles.test").await;
    let admin = app
        .invite_and_join(&owner, "admin", "admin@roles.test")
        .await;
    let viewer = app
        .invite_and_join(&owner, "viewer", "viewer@roles.test")
        .await;

    // Viewers see members, nothing else of the management surface.
    assert_eq!(viewer.get("/api/v1/members").await.status(), 200);
    assert_eq!(viewer.get("/api/v1/api-keys").await.status(), 403);
    assert_eq!(viewer.get("/api/v1/audit-log").await.status(), 403);
    let res = viewer
        .post_json("/api/v1/api-keys", &json!({ "name": "k" }))
        .await;
    assert_eq!(res.status(), 403);
    assert_eq!(
        viewer
            .post_json("/api/v1/invites", &json!({ "role": "viewer" }))
            .await
            .status(),
        403
    );

    // Admins manage keys and non-owners, but not owners.
    admin.create_key(json!({ "name": "admin key" })).await;
    assert_eq!(admin.get("/api/v1/audit-log").await.status(), 200);
    let members = json_of(owner.get("/api/v1/members").await).await;
    let id_of = |email: &str| {
        members["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["email"] == email)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (owner_id, admin_id, viewer_id) = (
        id_of("owner@roles.test"),
        id_of("admin@roles.test"),
        id_of("viewer@roles.test"),
    );
    let res = admin
        .patch_json(
            &format!("/api/v1/members/{owner_id}"),
            &json!({ "role": "viewer" }),
        )
        .await;
    assert_eq!(res.status(), 403);
    let res = admin
        .patch_json(
            &format!("/api/v1/members/{viewer_id}"),
            &json!({ "role": "owner" }),
        )
        .await;
    assert_eq!(res.status(), 403);
    let res = admin
        .post_json("/api/v1/invites", &json!({ "role": "owner" }))
        .await;
    assert_eq!(res.status(), 422);
    let res = admin
        .patch_json(
            &format!("/api/v1/members/{viewer_id}"),
            &json!({ "role": "admin" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    // A changed role ends that member's sessions.
    assert_eq!(viewer.get("/api/v1/members").await.status(), 401);

    // The role a member already has: nothing changes, nobody is signed out,
    // nothing is audited.
    let changes = || async {
        json_of(
            owner
                .get("/api/v1/audit-log?action=member.role_changed")
                .await,
        )
        .await["items"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = changes().await;
    let res = owner
        .patch_json(
            &format!("/api/v1/members/{owner_id}"),
            &json!({ "role": "owner" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(owner.get("/api/v1/session").await.status(), 200);
    assert_eq!(changes().await, before);

    // The last owner cannot be demoted or removed.
    let res = owner
        .patch_json(
            &format!("/api/v1/members/{owner_id}"),
            &json!({ "role": "admin" }),
        )
        .await;
    assert_eq!(res.status(), 409);
    assert_eq!(json_of(res).await["code"], "last_owner");
    assert_eq!(
        owner
            .delete(&format!("/api/v1/members/{owner_id}"))
            .await
            .status(),
        409
    );
    // With a second owner, the first may step down.
    let res = owner
        .patch_json(
            &format!("/api/v1/members/{admin_id}"),
            &json!({ "role": "owner" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = owner
        .patch_json(
            &format!("/api/v1/members/{owner_id}"),
            &json!({ "role": "admin" }),
        )
        .await;
    assert_eq!(res.status(), 200);

    // The audit log saw all of it.
    let new_owner = app.login("admin@roles.test", PASSWORD).await;
    let log = json_of(new_owner.get("/api/v1/audit-log?limit=200").await).await;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "tenant.created",
        "invite.created",
        "member.joined",
        "api_key.created",
        "member.role_changed",
        "signin",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
}

#[tokio::test]
async fn read_only_and_foreign_keys_are_refused() {
    let app = spawn_app().await;
    let owner = app.signup("Keys Co", "o@keys.test").await;
    let ro = owner
        .create_key(json!({ "name": "ro", "read_only": true }))
        .await;
    assert_eq!(ro["read_only"], true);
    // Keys cannot manage keys or members, read-only or not.
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/api-keys", app.address))
        .bearer_auth(ro["key"].as_str().unwrap())
        .json(&json!({ "name": "escalate" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Unknown apps in the limit list are refused with the field named.
    let res = owner
        .post_json(
            "/api/v1/api-keys",
            &json!({ "name": "x", "apps": ["wx0000000000000000"] }),
        )
        .await;
    assert_eq!(res.status(), 422);
    let body = json_of(res).await;
    assert_eq!(body["errors"][0]["field"], "apps");
    // Malformed credentials are rejected, never treated as anonymous.
    for header in [
        "Bearer nonsense",
        "Basic dXNlcjpwYXNz",
        "Bearer tvk_aaaaaaaa_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        let res = reqwest::Client::new()
            .get(format!("{}/api/v1/session", app.address))
            .header("Authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{header}");
        assert!(res.headers().contains_key("www-authenticate"));
    }
}

#[tokio::test]
async fn key_use_is_recorded_without_a_write_per_request() {
    let app = spawn_app().await;
    let owner = app.signup("Usage Co", "u@usage.test").await;
    let key = owner.create_key(json!({ "name": "k" })).await;
    let secret = key["key"].as_str().unwrap();
    for _ in 0..20 {
        assert_eq!(
            get_with_key(&app.address, "/api/v1/session", secret)
                .await
                .status(),
            200
        );
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let used: Option<chrono::DateTime<chrono::Utc>> =
            sqlx::query_scalar("select last_used_at from api_keys")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        if used.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "last_used_at never recorded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_revoked_key_stops_working_on_every_replica_within_a_second() {
    let app = spawn_app().await;
    let other_replica = app.spawn_replica().await;
    let owner = app.signup("Replica Co", "r@replica.test").await;
    let key = owner.create_key(json!({ "name": "k" })).await;
    let secret = key["key"].as_str().unwrap();
    // Both replicas have the key cached.
    assert_eq!(
        get_with_key(&app.address, "/api/v1/session", secret)
            .await
            .status(),
        200
    );
    assert_eq!(
        get_with_key(&other_replica, "/api/v1/session", secret)
            .await
            .status(),
        200
    );
    let res = owner
        .delete(&format!("/api/v1/api-keys/{}", key["id"].as_str().unwrap()))
        .await;
    assert_eq!(res.status(), 204);
    let revoked_at = Instant::now();
    loop {
        let status = get_with_key(&other_replica, "/api/v1/session", secret)
            .await
            .status();
        if status == 401 {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "other replica still accepts the revoked key"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn tenants_cannot_see_or_touch_each_other() {
    let app = spawn_app().await;
    let alice = app.signup("Alice Org", "alice@a.test").await;
    let bob = app.signup("Bob Org", "bob@b.test").await;
    let alice_key = alice.create_key(json!({ "name": "alice key" })).await;
    let alice_invite = json_of(
        alice
            .post_json("/api/v1/invites", &json!({ "role": "viewer" }))
            .await,
    )
    .await;
    let alice_members = json_of(alice.get("/api/v1/members").await).await;
    let alice_id = alice_members["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let missing = uuid::Uuid::new_v4();

    // Every endpoint that takes an id answers another tenant's id exactly as a missing one.
    let cases = [
        (
            "DELETE",
            format!("/api/v1/api-keys/{}", alice_key["id"].as_str().unwrap()),
            format!("/api/v1/api-keys/{missing}"),
        ),
        (
            "DELETE",
            format!("/api/v1/invites/{}", alice_invite["id"].as_str().unwrap()),
            format!("/api/v1/invites/{missing}"),
        ),
        (
            "PATCH",
            format!("/api/v1/members/{alice_id}"),
            format!("/api/v1/members/{missing}"),
        ),
        (
            "DELETE",
            format!("/api/v1/members/{alice_id}"),
            format!("/api/v1/members/{missing}"),
        ),
    ];
    for (method, foreign, absent) in cases {
        let call = |path: String| {
            let bob = &bob;
            async move {
                let res = match method {
                    "PATCH" => bob.patch_json(&path, &json!({ "role": "viewer" })).await,
                    _ => bob.delete(&path).await,
                };
                (res.status(), json_of(res).await)
            }
        };
        let (s1, mut b1) = call(foreign.clone()).await;
        let (s2, mut b2) = call(absent).await;
        assert_eq!(s1, 404, "{method} {foreign}");
        b1["detail"] = Value::Null;
        b2["detail"] = Value::Null;
        assert_eq!(
            (s1, b1),
            (s2, b2),
            "{method} {foreign} differs from a missing id"
        );
    }
    // Nothing changed on Alice's side.
    let who = get_with_key(
        &app.address,
        "/api/v1/session",
        alice_key["key"].as_str().unwrap(),
    )
    .await;
    assert_eq!(who.status(), 200);
    let members = json_of(alice.get("/api/v1/members").await).await;
    assert_eq!(members["items"][0]["role"], "owner");
    let invites = json_of(alice.get("/api/v1/invites").await).await;
    assert_eq!(invites["items"].as_array().unwrap().len(), 1);

    // Lists and logs show only one's own.
    let bob_view = [
        bob.get("/api/v1/api-keys").await.text().await.unwrap(),
        bob.get("/api/v1/members").await.text().await.unwrap(),
        bob.get("/api/v1/invites").await.text().await.unwrap(),
        bob.get("/api/v1/audit-log").await.text().await.unwrap(),
    ]
    .join("\n");
    for alices in [
        "alice@a.test",
        "Alice Org",
        alice_key["prefix"].as_str().unwrap(),
        alice_invite["id"].as_str().unwrap(),
    ] {
        assert!(!bob_view.contains(alices), "Bob sees {alices}");
    }
    // Alice's key acts only in Alice's tenant.
    let who = json_of(
        get_with_key(
            &app.address,
            "/api/v1/session",
            alice_key["key"].as_str().unwrap(),
        )
        .await,
    )
    .await;
    assert_eq!(who["tenant"]["name"], "Alice Org");
}

#[tokio::test]
async fn bad_input_gets_problem_json_and_stores_nothing() {
    let app = spawn_app().await;
    let url = format!("{}/api/v1/signup", app.address);
    let send = |body: String, content_type: &'static str| {
        app.client
            .post(url.clone())
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    let cases: Vec<(String, &str, u16, &str)> = vec![
        ("{not json".into(), "application/json", 400, "invalid_json"),
        (r#"{"organization":"x","email":"a@b.co","password":"correct horse battery"}"#.into(), "text/plain", 415, "unsupported_media_type"),
        (format!(r#"{{"organization":"{}","email":"a@b.co","password":"correct horse battery"}}"#, "x".repeat(70_000)), "application/json", 413, "body_too_large"),
        (r#"{"organization":"x","email":"a@b.co"}"#.into(), "application/json", 422, "invalid_field"),
        (r#"{"organization":"x","email":"a@b.co","password":"correct horse battery","admin":true}"#.into(), "application/json", 422, "invalid_field"),
        (r#"{"organization":"x","email":"not-an-email","password":"correct horse battery"}"#.into(), "application/json", 422, "validation_failed"),
        (format!(r#"{{"organization":"{}","email":"a@b.co","password":"correct horse battery"}}"#, "x".repeat(101)), "application/json", 422, "validation_failed"),
        ("{\"organization\":\"evil\u{202E}gpj\",\"email\":\"a@b.co\",\"password\":\"correct horse battery\"}".into(), "application/json", 422, "validation_failed"),
        (r#"{"organization":"x","email":"a@b.co","password":"password123"}"#.into(), "application/json", 422, "validation_failed"),
        (r#"{"organization":"","email":"","password":""}"#.into(), "application/json", 422, "validation_failed"),
    ];
    for (body, ct, status, code) in cases {
        let res = send(body.clone(), ct).await.unwrap();
        assert_eq!(
            res.status().as_u16(),
            status,
            "{}",
            &body[..body.len().min(80)]
        );
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let problem = json_of(res).await;
        assert_eq!(problem["code"], code, "{problem}");
    }
    // Every invalid field is named at once.
    let res = send(
        r#"{"organization":"","email":"","password":""}"#.into(),
        "application/json",
    )
    .await
    .unwrap();
    let fields: Vec<String> = json_of(res).await["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fields, ["organization", "email", "password"]);
    let tenants: i64 = sqlx::query_scalar("select count(*) from tenants")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(tenants, 0, "nothing stored half-way");

    // Markup and SQL are kept as text, exactly.
    let tricky = "<script>alert(1)</script>'; drop table tenants; --";
    let b = app.signup(tricky, "tricky@x.test").await;
    let me = json_of(b.get("/api/v1/session").await).await;
    assert_eq!(me["tenant"]["name"], tricky);
    // A second sign-up with the same email (any case) is a clear conflict.
    let res = app
        .client
        .post(url.clone())
        .json(&json!({ "organization": "Again", "email": "TRICKY@x.test", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    assert_eq!(json_of(res).await["code"], "email_taken");
    let tenants: i64 = sqlx::query_scalar("select count(*) from tenants")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(tenants, 1);
    // Ids that do not parse are simply not found.
    assert_eq!(b.delete("/api/v1/api-keys/not-a-uuid").await.status(), 404);
    assert_eq!(b.get("/api/v1/audit-log?limit=0").await.status(), 400);
    assert_eq!(b.get("/api/v1/audit-log?limit=abc").await.status(), 400);
    // NUL bytes and other non-names never reach the database (found by the
    // schema check's session pass: they were 500s).
    for action in ["%00", "member.joined%00", "A", "x%20y", ""] {
        let res = b.get(&format!("/api/v1/audit-log?action={action}")).await;
        assert_eq!(res.status(), 400, "{action:?}");
        assert_eq!(json_of(res).await["code"], "invalid_query");
    }
    assert_eq!(
        b.get("/api/v1/audit-log?action=member.joined")
            .await
            .status(),
        200
    );
    let keys_before = json_of(b.get("/api/v1/api-keys").await).await["items"]
        .as_array()
        .unwrap()
        .len();
    for apps in [
        json!(["\u{0}C"]),
        json!(["wx0123456789abcdef", "<b>"]),
        json!([""]),
    ] {
        let res = b
            .post_json("/api/v1/api-keys", &json!({ "name": "k", "apps": apps }))
            .await;
        assert_eq!(res.status(), 422, "{apps}");
        let problem = json_of(res).await;
        assert_eq!(problem["errors"][0]["field"], "apps", "{problem}");
        assert_eq!(problem["errors"][0]["code"], "invalid_appid", "{problem}");
    }
    let keys_after = json_of(b.get("/api/v1/api-keys").await).await["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(keys_before, keys_after, "no key created");
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

    let ops = app.login("ops@service.test", PASSWORD).await;
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
