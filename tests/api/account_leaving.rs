//! People who leave: removing or demoting an admin withdraws the invites
//! they created (audited); API keys show who created them; the members
//! page offers to revoke a removed person's keys, listing them first.

use serde_json::{Value, json};

use crate::helpers::{Browser, PASSWORD, TestApp, get_with_key, spawn_app};

async fn invite(by: &Browser) -> String {
    let res = by
        .post_json("/api/v1/invites", &json!({ "role": "viewer" }))
        .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    body["token"].as_str().unwrap().to_string()
}

async fn open_invites(owner: &Browser) -> usize {
    let body: Value = owner.get("/api/v1/invites").await.json().await.unwrap();
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["accepted_at"].is_null())
        .count()
}

async fn accept(app: &TestApp, token: &str, email: &str) -> u16 {
    Browser::new(&app.address)
        .post_json(
            "/api/v1/invites/accept",
            &json!({ "token": token, "email": email, "password": PASSWORD }),
        )
        .await
        .status()
        .as_u16()
}

async fn audit(owner: &Browser) -> Vec<Value> {
    let log: Value = owner
        .get("/api/v1/audit-log?limit=200")
        .await
        .json()
        .await
        .unwrap();
    log["items"].as_array().unwrap().clone()
}

async fn member_id(owner: &Browser, email: &str) -> String {
    let body: Value = owner.get("/api/v1/members").await.json().await.unwrap();
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == email)
        .and_then(|m| m["id"].as_str())
        .unwrap()
        .to_string()
}

async fn keys(owner: &Browser) -> Vec<Value> {
    let body: Value = owner.get("/api/v1/api-keys").await.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_admin_who_leaves_takes_their_invites_and_their_keys_can_be_revoked() {
    let app = spawn_app().await;
    let owner = app.signup("Leaving Org", "owner@leave.test").await;
    let admin = app
        .invite_and_join(&owner, "admin", "admin@leave.test")
        .await;
    let demoted = app
        .invite_and_join(&owner, "admin", "demoted@leave.test")
        .await;
    invite(&owner).await;
    let admin_invites = [invite(&admin).await, invite(&admin).await];
    let demoted_invite = invite(&demoted).await;
    assert_eq!(open_invites(&owner).await, 4);
    let owner_key = owner.create_key(json!({ "name": "owner build" })).await;
    let admin_keys = [
        admin.create_key(json!({ "name": "admin ci" })).await,
        admin.create_key(json!({ "name": "admin laptop" })).await,
    ];

    // Keys show who created them.
    let admin_id = member_id(&owner, "admin@leave.test").await;
    for k in keys(&owner).await {
        let mine = k["name"] == "owner build";
        let email = if mine {
            "owner@leave.test"
        } else {
            "admin@leave.test"
        };
        assert_eq!(k["created_by_email"], email, "{k}");
        if !mine {
            assert_eq!(k["created_by"], admin_id.as_str());
        }
    }
    let html = owner.get("/keys").await.text().await.unwrap();
    assert!(html.contains("Created by") && html.contains("admin@leave.test"));

    // Demoting an admin to viewer withdraws their open invites.
    let demoted_id = member_id(&owner, "demoted@leave.test").await;
    let res = owner
        .patch_json(
            &format!("/api/v1/members/{demoted_id}"),
            &json!({ "role": "viewer" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(open_invites(&owner).await, 3);
    assert_eq!(accept(&app, &demoted_invite, "late@leave.test").await, 404);

    // Removing an admin withdraws theirs; their keys still work until revoked.
    let res = owner.delete(&format!("/api/v1/members/{admin_id}")).await;
    assert_eq!(res.status(), 204);
    assert_eq!(open_invites(&owner).await, 1, "only the owner's is left");
    for token in &admin_invites {
        assert_eq!(accept(&app, token, "late@leave.test").await, 404);
    }
    let withdrawn: Vec<Value> = audit(&owner)
        .await
        .into_iter()
        .filter(|e| e["action"] == "invite.withdrawn")
        .collect();
    assert_eq!(withdrawn.len(), 3, "{withdrawn:?}");
    let reasons: Vec<&str> = withdrawn
        .iter()
        .map(|e| e["detail"]["reason"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        reasons.iter().filter(|r| **r == "inviter_removed").count(),
        2
    );
    assert_eq!(
        reasons.iter().filter(|r| **r == "inviter_demoted").count(),
        1
    );
    let admin_key = admin_keys[0]["key"].as_str().unwrap();
    assert_eq!(
        get_with_key(&app.address, "/api/v1/apps", admin_key)
            .await
            .status(),
        200
    );
    let left: Vec<Value> = keys(&owner)
        .await
        .into_iter()
        .filter(|k| k["created_by_email"] == "admin@leave.test")
        .collect();
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|k| k["created_by"].is_null()));

    // The members page lists them under the person who left, behind a
    // confirmation step; confirming revokes exactly those.
    let html = owner.get("/members").await.text().await.unwrap();
    assert!(html.contains("API keys of people who left"), "{html}");
    assert!(html.contains("admin@leave.test: 2 live keys"));
    for k in &admin_keys {
        assert!(html.contains(k["prefix"].as_str().unwrap()));
    }
    assert!(!html.contains(owner_key["prefix"].as_str().unwrap()));
    let res = owner
        .client
        .post(format!("{}/members/departed-keys/revoke", owner.address))
        .form(&[
            ("csrf_token", owner.csrf.as_str()),
            ("email", "admin@leave.test"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Keys revoked: <code>2</code>"), "{html}");
    assert!(!html.contains("API keys of people who left"));
    for k in &admin_keys {
        let key = k["key"].as_str().unwrap();
        let status = get_with_key(&app.address, "/api/v1/apps", key)
            .await
            .status();
        assert_eq!(status, 401);
    }
    let owner_key = owner_key["key"].as_str().unwrap();
    assert_eq!(
        get_with_key(&app.address, "/api/v1/apps", owner_key)
            .await
            .status(),
        200
    );
    let revoked = audit(&owner)
        .await
        .into_iter()
        .filter(|e| e["action"] == "api_key.revoked")
        .count();
    assert_eq!(revoked, 2);

    // A member's email revokes nothing; viewers cannot.
    let res = owner
        .client
        .post(format!("{}/members/departed-keys/revoke", owner.address))
        .form(&[
            ("csrf_token", owner.csrf.as_str()),
            ("email", "owner@leave.test"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Keys revoked: <code>0</code>")
    );
    let viewer = app
        .invite_and_join(&owner, "viewer", "viewer@leave.test")
        .await;
    let res = viewer
        .client
        .post(format!("{}/members/departed-keys/revoke", viewer.address))
        .form(&[
            ("csrf_token", viewer.csrf.as_str()),
            ("email", "admin@leave.test"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}
