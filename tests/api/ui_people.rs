//! The members page over plain HTTP: the same rules as the JSON API (each
//! role sees what it may do, roles change by the last-owner rule), other
//! tenants' ids 404. The helpers here serve the invite and audit page tests
//! too.

use reqwest::redirect::Policy;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{Browser, PASSWORD, TestApp, spawn_app};

pub(crate) async fn page(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    (status, res.text().await.expect("body"))
}

pub(crate) fn csrf_of(html: &str) -> String {
    let (_, rest) = html
        .split_once("name=\"csrf_token\" value=\"")
        .expect("a csrf_token field");
    rest.split('"').next().unwrap().to_string()
}

/// As the templates escape text.
pub(crate) fn escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

/// The rows of a page's table (not the filter's options above it).
pub(crate) fn rows(html: &str) -> &str {
    html.split_once("<tbody>").map_or("", |(_, rows)| rows)
}

/// A browser that does not follow redirects (to see where a post leads).
pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

pub(crate) async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

pub(crate) async fn user_id(pool: &PgPool, email: &str) -> Uuid {
    sqlx::query_scalar("select id from users where email = $1")
        .bind(email)
        .fetch_one(pool)
        .await
        .unwrap()
}

pub(crate) async fn role_of(pool: &PgPool, email: &str) -> String {
    sqlx::query_scalar("select role from users where email = $1")
        .bind(email)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The invite link a members page shows once.
pub(crate) fn link_of(html: &str) -> String {
    let (_, rest) = html
        .split_once("id=\"invite-link\">")
        .expect("the invite link is shown");
    rest.split('<').next().unwrap().replace("&#x2f;", "/")
}

/// POST a form as `b`; a join form (`/invite/…`) with the pre-session
/// token its page shows, as a browser sends it.
pub(crate) async fn post(b: &Browser, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let mut form = form.to_vec();
    let token = if path.starts_with("/invite/") {
        let (_, html) = get(b, path).await;
        html.split_once("name=\"login_token\" value=\"")
            .map(|(_, rest)| rest.split('"').next().unwrap().to_string())
    } else {
        None
    };
    if let Some(token) = &token {
        form.push(("login_token", token));
    }
    page(
        b.client
            .post(format!("{}{path}", b.address))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

pub(crate) async fn get(b: &Browser, path: &str) -> (u16, String) {
    page(b.get(path).await).await
}

/// Create an invite on the members page; returns the link's path.
pub(crate) async fn invite_on_page(b: &Browser, email: &str, role: &str) -> String {
    let (status, html) = post(
        b,
        "/members/invite",
        &[("csrf_token", &b.csrf), ("email", email), ("role", role)],
    )
    .await;
    assert_eq!(status, 201, "{html}");
    let link = link_of(&html);
    let path = link
        .strip_prefix(&b.address)
        .unwrap_or_else(|| panic!("{link} is on this service"));
    path.to_string()
}

pub(crate) async fn owner_with_team(app: &TestApp) -> (Browser, Browser, Browser) {
    let owner = app.signup("Acme", "owner@acme.test").await;
    let admin = app
        .invite_and_join(&owner, "admin", "admin@acme.test")
        .await;
    let viewer = app
        .invite_and_join(&owner, "viewer", "viewer@acme.test")
        .await;
    (owner, admin, viewer)
}

#[tokio::test]
async fn members_page_shows_each_role_what_it_may_do() {
    let app = spawn_app().await;
    let (owner, admin, viewer) = owner_with_team(&app).await;
    let owner_id = user_id(&app.pool, "owner@acme.test").await;
    let viewer_id = user_id(&app.pool, "viewer@acme.test").await;

    // The owner manages everyone; the nav leads to members and the audit log.
    let (status, html) = get(&owner, "/members").await;
    assert_eq!(status, 200);
    for email in ["owner@acme.test", "admin@acme.test", "viewer@acme.test"] {
        assert!(html.contains(email), "{email}");
    }
    assert!(html.contains("href=\"/members\" aria-current=\"page\""));
    assert!(html.contains("href=\"/audit\""));
    assert!(html.contains(&format!("action=\"/members/{viewer_id}/role\"")));
    assert!(html.contains(&format!("action=\"/members/{viewer_id}/remove\"")));
    assert!(html.contains("action=\"/members/invite\""));
    assert!(html.contains("<option value=\"owner\""));
    assert!(
        html.contains("The only owner"),
        "the last-owner rule is explained"
    );
    assert!(
        !html.contains(&format!("action=\"/members/{owner_id}/")),
        "no form offers what the last-owner rule refuses"
    );
    assert!(html.contains("(you)"));
    assert_eq!(
        csrf_of(&html),
        owner.csrf,
        "forms carry the session's token"
    );

    // An admin manages admins and viewers but not the owner, and cannot offer the owner role.
    let (status, html) = get(&admin, "/members").await;
    assert_eq!(status, 200);
    assert!(!html.contains(&format!("action=\"/members/{owner_id}/role\"")));
    assert!(!html.contains(&format!("action=\"/members/{owner_id}/remove\"")));
    assert!(html.contains(&format!("action=\"/members/{viewer_id}/role\"")));
    assert!(!html.contains("<option value=\"owner\""));
    assert!(html.contains("Only an owner can change this"));

    // A viewer sees the list read-only (as GET /api/v1/members allows), no audit link.
    let (status, html) = get(&viewer, "/members").await;
    assert_eq!(status, 200);
    assert!(html.contains("owner@acme.test"));
    assert!(html.contains("Only owners and admins can change roles"));
    assert!(!html.contains("action=\"/members/"), "no forms for viewers");
    assert!(!html.contains("Pending invites"));
    assert!(!html.contains("href=\"/audit\""));
    assert_eq!(get(&viewer, "/audit").await.0, 403);

    // …and every form refuses them, storing nothing.
    let invites = count(&app.pool, "select count(*) from invites").await;
    let (status, _) = post(
        &viewer,
        "/members/invite",
        &[
            ("csrf_token", &viewer.csrf),
            ("email", "x@acme.test"),
            ("role", "viewer"),
        ],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        count(&app.pool, "select count(*) from invites").await,
        invites
    );
    let (status, _) = post(
        &viewer,
        &format!("/members/{owner_id}/role"),
        &[("csrf_token", &viewer.csrf), ("role", "viewer")],
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = post(
        &viewer,
        &format!("/members/{owner_id}/remove"),
        &[("csrf_token", &viewer.csrf)],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(role_of(&app.pool, "owner@acme.test").await, "owner");

    // An admin who tries anyway gets the reason next to the row.
    let (status, html) = post(
        &admin,
        &format!("/members/{viewer_id}/role"),
        &[("csrf_token", &admin.csrf), ("role", "owner")],
    )
    .await;
    assert_eq!(status, 403);
    assert!(html.contains(&format!("id=\"e-row-{viewer_id}\"")));
    assert!(html.contains("Only an owner can give or take the owner role"));
    let (status, _) = post(
        &admin,
        &format!("/members/{owner_id}/remove"),
        &[("csrf_token", &admin.csrf)],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(role_of(&app.pool, "viewer@acme.test").await, "viewer");
    assert_eq!(
        count(&app.pool, "select count(*) from users").await,
        3,
        "nobody removed"
    );

    // Signed out, every page and form leads to sign-in.
    let anon = no_redirects();
    for path in ["/members", "/audit"] {
        let res = anon
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "{path}");
        // Back to this page once signed in.
        assert_eq!(
            res.headers()["location"],
            format!("/login?next=%2F{}", &path[1..]).as_str()
        );
    }
    let res = anon
        .post(format!("{}/members/invite", app.address))
        .form(&[
            ("csrf_token", "x"),
            ("email", "a@b.test"),
            ("role", "viewer"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login?next=%2Fmembers");
}

#[tokio::test]
async fn roles_change_and_members_go_by_the_last_owner_rule() {
    let app = spawn_app().await;
    let (owner, admin, _viewer) = owner_with_team(&app).await;
    let owner_id = user_id(&app.pool, "owner@acme.test").await;
    let admin_id = user_id(&app.pool, "admin@acme.test").await;
    let viewer_id = user_id(&app.pool, "viewer@acme.test").await;

    // The only owner can neither step down nor leave: the reason next to the row.
    let (status, html) = post(
        &owner,
        &format!("/members/{owner_id}/role"),
        &[("csrf_token", &owner.csrf), ("role", "admin")],
    )
    .await;
    assert_eq!(status, 409);
    assert!(html.contains(&format!("id=\"e-row-{owner_id}\"")));
    assert!(html.contains("An organisation needs at least one owner"));
    let (status, html) = post(
        &owner,
        &format!("/members/{owner_id}/remove"),
        &[("csrf_token", &owner.csrf)],
    )
    .await;
    assert_eq!(status, 409);
    assert!(html.contains("An organisation needs at least one owner"));
    assert_eq!(role_of(&app.pool, "owner@acme.test").await, "owner");

    // Roles no form offers: an error next to the row, nothing changed.
    let long = "x".repeat(10_000);
    for bad in [
        "<script>alert(1)</script>",
        "operator",
        "",
        "👑",
        "'; update users set role='owner'; --",
        long.as_str(),
    ] {
        let (status, html) = post(
            &owner,
            &format!("/members/{viewer_id}/role"),
            &[("csrf_token", &owner.csrf), ("role", bad)],
        )
        .await;
        assert_eq!(status, 422, "{bad:.40}");
        assert!(html.contains(&format!("id=\"e-row-{viewer_id}\"")));
        assert!(!html.contains("<script>alert"));
    }
    assert_eq!(role_of(&app.pool, "viewer@acme.test").await, "viewer");
    // A stale form changes nothing.
    let (_, html) = post(
        &owner,
        &format!("/members/{viewer_id}/role"),
        &[("csrf_token", "stale"), ("role", "admin")],
    )
    .await;
    assert!(html.contains("out of date"));
    assert_eq!(role_of(&app.pool, "viewer@acme.test").await, "viewer");

    // An admin promotes the viewer; their sessions end so the role applies at once.
    let (status, html) = post(
        &admin,
        &format!("/members/{viewer_id}/role"),
        &[("csrf_token", &admin.csrf), ("role", "admin")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("Now an admin:"));
    assert_eq!(role_of(&app.pool, "viewer@acme.test").await, "admin");

    // A second owner; then the first may step down and is asked to sign in again.
    let (_, html) = post(
        &owner,
        &format!("/members/{admin_id}/role"),
        &[("csrf_token", &owner.csrf), ("role", "owner")],
    )
    .await;
    assert!(html.contains("Now an owner:"));
    let (_, html) = post(
        &owner,
        &format!("/members/{owner_id}/role"),
        &[("csrf_token", &owner.csrf), ("role", "viewer")],
    )
    .await;
    assert!(html.contains("Your role changed. Sign in again"), "{html}");
    assert!(html.contains("action=\"/login\""));
    assert_eq!(role_of(&app.pool, "owner@acme.test").await, "viewer");

    // Removing after the confirmation step: a stale form removes nothing.
    let new_owner = app.login("admin@acme.test", PASSWORD).await;
    let (_, html) = post(
        &new_owner,
        &format!("/members/{viewer_id}/remove"),
        &[("csrf_token", "stale")],
    )
    .await;
    assert!(html.contains("out of date"));
    assert_eq!(count(&app.pool, "select count(*) from users").await, 3);
    let (_, html) = get(&new_owner, "/members").await;
    assert!(
        html.contains("Remove viewer@acme.test?"),
        "the confirmation step"
    );
    let (status, html) = post(
        &new_owner,
        &format!("/members/{viewer_id}/remove"),
        &[("csrf_token", &new_owner.csrf)],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("Member removed:"));
    assert!(html.contains("<code>viewer@acme.test</code>"));
    assert_eq!(count(&app.pool, "select count(*) from users").await, 2);
    let (_, html) = get(&new_owner, "/audit").await;
    assert!(rows(&html).contains(">Member removed<"));
    assert!(rows(&html).contains(">Role changed<"));
    assert!(rows(&html).contains("from: Owner"));
}

#[tokio::test]
async fn another_tenants_members_and_invites_are_404() {
    let app = spawn_app().await;
    let alice = app.signup("Alice Co", "alice@a.test").await;
    let alice_viewer = app.invite_and_join(&alice, "viewer", "av@a.test").await;
    drop(alice_viewer);
    invite_on_page(&alice, "pending@a.test", "viewer").await;
    let bob = app.signup("Bob Co", "bob@b.test").await;
    let member = user_id(&app.pool, "av@a.test").await;
    let invite: Uuid = sqlx::query_scalar("select id from invites where email = 'pending@a.test'")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    let (_, html) = get(&bob, "/members").await;
    assert!(!html.contains("a.test"), "only Bob's own people");
    let tries = [
        (format!("/members/{member}/role"), vec![("role", "owner")]),
        (format!("/members/{member}/remove"), vec![]),
        (format!("/members/invites/{invite}/revoke"), vec![]),
        ("/members/nope/role".to_string(), vec![("role", "owner")]),
        ("/members/nope/remove".to_string(), vec![]),
        ("/members/invites/nope/revoke".to_string(), vec![]),
    ];
    for (path, fields) in tries {
        let mut form = vec![("csrf_token", bob.csrf.as_str())];
        form.extend(fields);
        let (status, html) = post(&bob, &path, &form).await;
        assert_eq!(status, 404, "{path}");
        assert!(!html.contains("av@a.test"));
    }
    assert_eq!(role_of(&app.pool, "av@a.test").await, "viewer");
    assert_eq!(
        count(
            &app.pool,
            "select count(*) from invites where email = 'pending@a.test'"
        )
        .await,
        1
    );
    let (_, html) = get(&bob, "/audit").await;
    assert!(!html.contains("a.test"), "only Bob's own log");
    assert!(rows(&html).contains(">Organisation created<"));
}
