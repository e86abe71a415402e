//! Organisations apart over the JSON API: tenants cannot see each other,
//! bad input gets problem+json and stores nothing.

use serde_json::{Value, json};

use crate::accounts::json_of;
use crate::helpers::{PASSWORD, get_with_key, spawn_app};

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
