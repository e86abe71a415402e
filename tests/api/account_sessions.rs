//! The account page and one's own sessions, over real HTTP and PostgreSQL:
//! the list (current one marked, browser and address), ending one session
//! (only one's own: someone else's id is a 404), ending all the others,
//! and changing the password on the page.

use serde_json::{Value, json};

use crate::helpers::{Browser, PASSWORD, TestApp, spawn_app};

const CURL: &str = "curl/8.5.0";
const FIREFOX: &str =
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";

/// Sign `email` in from a client that sends `user_agent`.
async fn login_as(app: &TestApp, email: &str, user_agent: &str) -> Browser {
    let mut b = Browser::new(&app.address);
    b.client = reqwest::Client::builder()
        .cookie_store(true)
        .user_agent(user_agent)
        .build()
        .expect("client");
    let res = b
        .post_json(
            "/api/v1/login",
            &json!({ "email": email, "password": PASSWORD }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    b.csrf = body["csrf_token"].as_str().expect("csrf").to_string();
    b
}

async fn sessions(b: &Browser) -> Vec<Value> {
    let res = b.get("/api/v1/account/sessions").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    body["items"].as_array().expect("items").clone()
}

async fn signed_in(b: &Browser) -> bool {
    b.get("/api/v1/session").await.status() == 200
}

async fn audit_actions(owner: &Browser) -> Vec<String> {
    let log: Value = owner
        .get("/api/v1/audit-log?limit=100")
        .await
        .json()
        .await
        .expect("log");
    log["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// POST a page form with the session's CSRF field.
async fn post_form(b: &Browser, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![("csrf_token", b.csrf.as_str())];
    form.extend_from_slice(fields);
    b.client
        .post(format!("{}{path}", b.address))
        .form(&form)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn people_list_and_end_their_own_sessions_and_no_one_elses() {
    let app = spawn_app().await;
    let owner = login_as_new_owner(&app).await;
    let curl = login_as(&app, "owner@sessions.test", CURL).await;
    let firefox = login_as(&app, "owner@sessions.test", FIREFOX).await;

    let list = sessions(&firefox).await;
    assert_eq!(list.len(), 3, "{list:?}");
    assert_eq!(list[0]["current"], true, "the current one comes first");
    assert_eq!(list[0]["browser"], "Firefox on Linux");
    assert!(list[1..].iter().all(|s| s["current"] == false));
    assert!(list.iter().any(|s| s["browser"] == "curl"), "{list:?}");
    assert!(list.iter().all(|s| s["address"] == "127.0.0.1"), "{list:?}");
    assert!(list.iter().all(|s| s["created_at"].is_string()));
    assert!(list.iter().all(|s| s["last_seen_at"].is_string()));
    let curl_id = list
        .iter()
        .find(|s| s["browser"] == "curl")
        .and_then(|s| s["id"].as_str())
        .expect("curl's session id")
        .to_string();

    // Someone else (another organisation) cannot see or end it.
    let stranger = app.signup("Other Org", "stranger@other.test").await;
    assert_eq!(sessions(&stranger).await.len(), 1);
    let res = stranger
        .delete(&format!("/api/v1/account/sessions/{curl_id}"))
        .await;
    assert_eq!(res.status(), 404);
    assert!(signed_in(&curl).await, "a stranger ended nothing");
    let res = owner.delete("/api/v1/account/sessions/not-a-uuid").await;
    assert_eq!(res.status(), 404);
    // Without the CSRF header nothing ends.
    let res = owner
        .client
        .delete(format!(
            "{}/api/v1/account/sessions/{curl_id}",
            owner.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(signed_in(&curl).await);

    // The owner ends the curl session from another one.
    let res = owner
        .delete(&format!("/api/v1/account/sessions/{curl_id}"))
        .await;
    assert_eq!(res.status(), 204);
    assert!(!signed_in(&curl).await, "the ended session is signed out");
    assert!(signed_in(&owner).await && signed_in(&firefox).await);
    let res = owner
        .delete(&format!("/api/v1/account/sessions/{curl_id}"))
        .await;
    assert_eq!(res.status(), 404, "ended once");
    assert_eq!(sessions(&owner).await.len(), 2);

    // An API key is not a person with sessions.
    let key = owner.create_key(json!({ "name": "ci" })).await;
    let res = reqwest::Client::new()
        .get(format!("{}/api/v1/account/sessions", app.address))
        .bearer_auth(key["key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // "End all other sessions" on the page keeps only the one asking.
    let res = post_form(&owner, "/account/sessions/end-others", &[]).await;
    assert!(res.status().is_success() || res.status().is_redirection());
    assert!(!signed_in(&firefox).await);
    let left = sessions(&owner).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["current"], true);
    let actions = audit_actions(&owner).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "session.ended").count(),
        2,
        "{actions:?}"
    );
}

/// A new organisation whose owner is `owner@sessions.test`, signed in.
async fn login_as_new_owner(app: &TestApp) -> Browser {
    app.signup("Sessions Org", "owner@sessions.test").await
}

#[tokio::test]
async fn the_account_page_shows_the_person_and_changes_the_password() {
    let app = spawn_app().await;
    let owner = login_as_new_owner(&app).await;
    let other = login_as(&app, "owner@sessions.test", CURL).await;

    let page = owner.get("/account").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("owner@sessions.test"), "{html}");
    assert!(html.contains("Not verified"));
    assert!(html.contains("Send the verification mail again"));
    assert!(html.contains("This session"));
    assert!(html.contains("action=\"/account/sessions/end-others\""));
    assert!(html.contains("href=\"/account\""), "the header links to it");

    // A wrong current password and an empty new one: field errors, nothing changed.
    let res = post_form(
        &owner,
        "/account/password",
        &[
            ("current_password", "not my password at all"),
            ("new_password", ""),
        ],
    )
    .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("This field is required."), "{html}");
    let res = post_form(
        &owner,
        "/account/password",
        &[
            ("current_password", "not my password at all"),
            ("new_password", "a brand new passphrase 42"),
        ],
    )
    .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("This is not your current password."),
        "{html}"
    );
    assert!(signed_in(&other).await);

    // The right one: changed, the other session ended, this one stays.
    let res = post_form(
        &owner,
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "a brand new passphrase 42"),
        ],
    )
    .await;
    assert!(res.status().is_success(), "{}", res.status());
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Your password is changed, and your other sessions have ended."),
        "{html}"
    );
    assert!(!signed_in(&other).await);
    assert!(signed_in(&owner).await);
    let res = Browser::new(&app.address)
        .post_json(
            "/api/v1/login",
            &json!({ "email": "owner@sessions.test", "password": "a brand new passphrase 42" }),
        )
        .await;
    assert_eq!(res.status(), 200);

    // Signed out, the page asks to sign in.
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/account", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
}
