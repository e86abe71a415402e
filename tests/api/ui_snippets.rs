//! Viewers are not offered to register apps and are refused the form;
//! a replica that has just started counts as alive at once.

use std::time::{Duration, Instant};

use crate::helpers::{Browser, spawn_app};

async fn page(b: &Browser, path: &str) -> (u16, String) {
    let res = b.get(path).await;
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn viewers_are_not_offered_to_register_apps_and_are_refused_the_form() {
    let app = spawn_app().await;
    let owner = app.signup("Roles", "o@roles.test").await;
    let admin = app.invite_and_join(&owner, "admin", "a@roles.test").await;
    let viewer = app.invite_and_join(&owner, "viewer", "v@roles.test").await;

    for (who, b) in [("owner", &owner), ("admin", &admin)] {
        let (status, html) = page(b, "/dashboard").await;
        assert_eq!(status, 200);
        assert!(html.contains("<a href=\"/apps/new\""), "{who}: in the nav");
        assert!(html.contains("Register your first mini-program"), "{who}");
        let (status, html) = page(b, "/apps/new").await;
        assert_eq!(status, 200, "{who}");
        assert!(html.contains("name=\"secret\""), "{who}: the form");
    }

    let (status, html) = page(&viewer, "/dashboard").await;
    assert_eq!(status, 200);
    assert!(!html.contains("/apps/new"), "no link to the form anywhere");
    assert!(!html.contains("Register your first mini-program"));
    assert!(!html.contains("Register an app"));
    assert!(html.contains("Owners and admins of your organisation register mini-programs"));

    // The same refusal as the keys page.
    let (keys_status, keys_page) = page(&viewer, "/keys").await;
    let (status, form) = page(&viewer, "/apps/new").await;
    assert_eq!((keys_status, status), (403, 403));
    let refusal = |html: &str| {
        let (_, main) = html.split_once("<main id=\"main\">").unwrap();
        main.split_once("</main>").unwrap().0.to_string()
    };
    assert_eq!(refusal(&form), refusal(&keys_page));
    assert!(form.contains("Your role does not allow this"));
    assert!(!form.contains("name=\"secret\""), "no form");
    assert!(!form.contains("/apps/new\""), "not in the nav either");

    // In Chinese too.
    let res = viewer
        .client
        .get(format!("{}/dashboard", app.address))
        .header("Accept-Language", "zh-CN")
        .send()
        .await
        .unwrap();
    let zh = res.text().await.unwrap();
    assert!(zh.contains("小程序由本组织的所有者和管理员接入"));
    assert!(!zh.contains("/apps/new"));
}

#[tokio::test]
async fn a_replica_counts_as_alive_right_after_it_starts() {
    let app = spawn_app().await;
    let owner = app.signup("Alive", "o@alive.test").await;
    let started = Instant::now();
    let mut last = serde_json::Value::Null;
    // Well under the first tick (5 s by default).
    while started.elapsed() < Duration::from_secs(2) {
        let res = owner.get("/api/v1/service-health").await;
        assert_eq!(res.status(), 200);
        last = res.json().await.unwrap();
        if last["replicas"]["alive"].as_u64() == Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["replicas"]["alive"], 1, "{last}");
    let me = &last["answered_by"];
    let items = last["replicas"]["items"].as_array().unwrap();
    assert!(
        items.iter().any(|r| &r["id"] == me && r["alive"] == true),
        "{last}"
    );
    assert_ne!(last["status"], "down", "{last}");
}
