//! /healthz, /readyz and the shape of errors.

use crate::helpers::{TestDatabase, spawn_app, spawn_app_on};

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readyz_is_ready_on_a_migrated_database() {
    let app = spawn_app().await;
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["migrations"], "ok");
}

#[tokio::test]
async fn readyz_is_not_ready_before_migrations() {
    let app = spawn_app_on(TestDatabase::create_empty().await).await;
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["migrations"], "pending");
}

#[tokio::test]
async fn readyz_reports_a_lost_database() {
    let app = spawn_app().await;
    app.pool.close().await;
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_ne!(body["checks"]["database"], "ok");
}

#[tokio::test]
async fn unknown_paths_answer_problem_json() {
    let app = spawn_app().await;
    let res = app.get("/no/such/thing").await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
    assert_eq!(body["status"], 404);
}

#[tokio::test]
async fn every_response_carries_security_headers() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz", "/missing"] {
        let res = app.get(path).await;
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert!(h.contains_key("referrer-policy"), "{path}");
    }
}

#[tokio::test]
async fn schema_keeps_tenant_rows_consistent() {
    // A token_state row cannot point at an app of another tenant: the
    // composite foreign keys refuse it.
    let app = spawn_app().await;
    let (t1, t2, a1) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    for t in [t1, t2] {
        sqlx::query("insert into tenants (id, name) values ($1, 'org')")
            .bind(t)
            .execute(&app.pool)
            .await
            .unwrap();
    }
    sqlx::query(
        "insert into apps (id, tenant_id, appid, name, secret_ciphertext) values ($1, $2, 'wx0123456789abcdef', 'a', '\\x00')",
    )
    .bind(a1)
    .bind(t1)
    .execute(&app.pool)
    .await
    .unwrap();
    let cross = sqlx::query("insert into token_state (app_id, tenant_id) values ($1, $2)")
        .bind(a1)
        .bind(t2)
        .execute(&app.pool)
        .await;
    assert!(
        cross.is_err(),
        "a token row in another tenant must be refused"
    );
    let bad_appid = sqlx::query(
        "insert into apps (id, tenant_id, appid, name, secret_ciphertext) values ($1, $2, 'not-an-appid', 'a', '\\x00')",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(t1)
    .execute(&app.pool)
    .await;
    assert!(
        bad_appid.is_err(),
        "a malformed appid must be refused by the schema"
    );
    sqlx::query("insert into token_state (app_id, tenant_id) values ($1, $2)")
        .bind(a1)
        .bind(t1)
        .execute(&app.pool)
        .await
        .unwrap();
}
