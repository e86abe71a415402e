//! Roles and API keys over the JSON API: what each role may do,
//! read-only and foreign keys refused, key use recorded cheaply, revoked
//! keys refused on every replica.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::accounts::json_of;
use crate::helpers::{PASSWORD, get_with_key, spawn_app};

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
