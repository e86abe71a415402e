//! The members, invite and audit pages over plain HTTP: the same rules as
//! the JSON API, field errors for bad input with everything escaped and
//! nothing stored half-way, stale forms refused, other tenants' ids 404.

use reqwest::redirect::Policy;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{Browser, PASSWORD, TestApp, spawn_app};

async fn page(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    (status, res.text().await.expect("body"))
}

fn csrf_of(html: &str) -> String {
    let (_, rest) = html
        .split_once("name=\"csrf_token\" value=\"")
        .expect("a csrf_token field");
    rest.split('"').next().unwrap().to_string()
}

/// As the templates escape text.
fn escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

/// The rows of a page's table (not the filter's options above it).
fn rows(html: &str) -> &str {
    html.split_once("<tbody>").map_or("", |(_, rows)| rows)
}

/// A browser that does not follow redirects (to see where a post leads).
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn user_id(pool: &PgPool, email: &str) -> Uuid {
    sqlx::query_scalar("select id from users where email = $1")
        .bind(email)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn role_of(pool: &PgPool, email: &str) -> String {
    sqlx::query_scalar("select role from users where email = $1")
        .bind(email)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The invite link a members page shows once.
fn link_of(html: &str) -> String {
    let (_, rest) = html
        .split_once("id=\"invite-link\">")
        .expect("the invite link is shown");
    rest.split('<').next().unwrap().replace("&#x2f;", "/")
}

/// POST a form as `b`.
async fn post(b: &Browser, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    page(
        b.client
            .post(format!("{}{path}", b.address))
            .form(form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn get(b: &Browser, path: &str) -> (u16, String) {
    page(b.get(path).await).await
}

/// Create an invite on the members page; returns the link's path.
async fn invite_on_page(b: &Browser, email: &str, role: &str) -> String {
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

async fn owner_with_team(app: &TestApp) -> (Browser, Browser, Browser) {
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

/// Inputs no form field may take: HTML and script, SQL, emoji, 10,000
/// characters, nothing.
fn hostile_inputs() -> Vec<String> {
    vec![
        "<script>alert('x')</script>".into(),
        "'; drop table invites; --".into(),
        "🙂🙂@🙂.🙂🙂".into(),
        "a".repeat(10_000),
        "   ".into(),
        String::new(),
    ]
}

#[tokio::test]
async fn the_invite_form_refuses_bad_input_and_shows_the_link_once() {
    let app = spawn_app().await;
    let owner = app.signup("Acme", "owner@acme.test").await;
    let (status, html) = get(&owner, "/members").await;
    assert_eq!(status, 200);
    assert!(html.contains("You are the only member so far"));
    assert!(html.contains("No pending invites"));

    for bad in hostile_inputs() {
        let (status, html) = post(
            &owner,
            "/members/invite",
            &[
                ("csrf_token", &owner.csrf),
                ("email", &bad),
                ("role", "viewer"),
            ],
        )
        .await;
        assert_eq!(status, 422, "{bad:.40}");
        assert!(html.contains("id=\"e-email\""), "{bad:.40}");
        assert!(!html.contains("<script>alert"), "escaped");
        if !bad.trim().is_empty() && bad.len() < 1000 {
            assert!(
                html.contains(&format!("value=\"{}\"", escaped(&bad))),
                "kept: {bad}"
            );
        }
    }
    for bad_role in ["owner", "operator", "<b>x</b>", "", "管理员🙂"] {
        let (status, html) = post(
            &owner,
            "/members/invite",
            &[
                ("csrf_token", &owner.csrf),
                ("email", "new@acme.test"),
                ("role", bad_role),
            ],
        )
        .await;
        assert_eq!(status, 422, "{bad_role}");
        assert!(html.contains("id=\"e-role\""), "{bad_role}");
        assert!(html.contains("Choose admin or viewer"));
        assert!(html.contains("value=\"new@acme.test\""), "email kept");
        assert!(!html.contains("<b>x</b>"));
    }
    // Both fields wrong: both errors at once.
    let (status, html) = post(
        &owner,
        "/members/invite",
        &[("csrf_token", &owner.csrf), ("email", ""), ("role", "")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("id=\"e-email\"") && html.contains("id=\"e-role\""));

    // A stale form: back to the form, input kept, a clear message.
    let (status, html) = post(
        &owner,
        "/members/invite",
        &[
            ("csrf_token", "stale"),
            ("email", "new@acme.test"),
            ("role", "admin"),
        ],
    )
    .await;
    assert_eq!(status, 403);
    assert!(html.contains("out of date"));
    assert!(html.contains("value=\"new@acme.test\""));
    assert!(html.contains("<option value=\"admin\" selected>"));
    assert_eq!(count(&app.pool, "select count(*) from invites").await, 0);
    assert_eq!(
        count(
            &app.pool,
            "select count(*) from audit_log where action = 'invite.created'"
        )
        .await,
        0,
        "nothing stored half-way"
    );

    // A good invite: the link shown once, with a copy button.
    let (status, html) = post(
        &owner,
        "/members/invite",
        &[
            ("csrf_token", &owner.csrf),
            ("email", " New@Acme.test "),
            ("role", "admin"),
        ],
    )
    .await;
    assert_eq!(status, 201);
    let link = link_of(&html);
    assert!(
        link.starts_with(&format!("{}/invite/", app.address)),
        "{link}"
    );
    assert!(html.contains("data-copy=\"invite-link\""));
    assert!(html.contains("shown only this once"));
    assert!(html.contains("join as Admin"));
    let token = link.rsplit('/').next().unwrap().to_string();
    let (_, html) = get(&owner, "/members").await;
    assert!(!html.contains(&token), "the link is shown only once");
    assert!(html.contains("new@acme.test"), "listed with its email");
    assert!(html.contains("Pending invites"));
    let stored: (Option<String>, String) = sqlx::query_as("select email, role from invites")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, (Some("new@acme.test".into()), "admin".into()));

    // Revoking: a stale form changes nothing; then the link stops working.
    let id: Uuid = sqlx::query_scalar("select id from invites")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (_, html) = post(
        &owner,
        &format!("/members/invites/{id}/revoke"),
        &[("csrf_token", "stale")],
    )
    .await;
    assert!(html.contains("out of date"));
    assert_eq!(count(&app.pool, "select count(*) from invites").await, 1);
    let (status, html) = post(
        &owner,
        &format!("/members/invites/{id}/revoke"),
        &[("csrf_token", &owner.csrf)],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("Invite revoked for"));
    assert!(html.contains("No pending invites"));
    let (status, html) = page(
        Browser::new(&app.address)
            .get(&format!("/invite/{token}"))
            .await,
    )
    .await;
    assert_eq!(status, 404);
    assert!(html.contains("This invite link does not work"));
    let (status, _) = post(
        &owner,
        &format!("/members/invites/{id}/revoke"),
        &[("csrf_token", &owner.csrf)],
    )
    .await;
    assert_eq!(status, 404, "gone");
}

#[tokio::test]
async fn an_invite_accepted_through_the_form_signs_the_person_in_with_its_role() {
    let app = spawn_app().await;
    let owner = app.signup("Acme <小程序>", "owner@acme.test").await;
    let path = invite_on_page(&owner, "v@acme.test", "viewer").await;

    // The invitee opens the link: the organisation, the role, the email fixed.
    let invitee = Browser::new(&app.address);
    let (status, html) = get(&invitee, &path).await;
    assert_eq!(status, 200);
    assert!(html.contains("Acme &lt;小程序&gt;"), "escaped");
    assert!(html.contains("as Viewer"));
    assert!(html.contains("value=\"v@acme.test\" readonly"));
    assert!(html.contains("AppSecrets and tokens stay hidden"));

    // Bad input: field errors, the password never sent back, nothing stored.
    // (Any text can be a password: these are too short, too long, or the email.)
    let users = count(&app.pool, "select count(*) from users").await;
    let long = "密".repeat(10_000);
    for bad in ["", "   ", "<s>'🙂'", long.as_str(), "v@acme.test"] {
        let (status, html) = post(
            &invitee,
            &path,
            &[("email", "v@acme.test"), ("password", bad)],
        )
        .await;
        assert_eq!(status, 422, "{bad:.40}");
        assert!(html.contains("id=\"e-password\""), "{bad:.40}");
        assert!(html.contains("value=\"v@acme.test\" readonly"));
        if !bad.trim().is_empty() && bad != "v@acme.test" {
            assert!(!html.contains(&escaped(bad)), "a password is never echoed");
        }
    }
    // Someone else's address (a tampered form) is refused by the API's rule.
    let (status, html) = post(
        &invitee,
        &path,
        &[("email", "<x>@acme.test"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("id=\"e-email\""));
    assert!(!html.contains("<x>"));
    let (status, html) = post(
        &invitee,
        &path,
        &[("email", "other@acme.test"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("This invite is for another email address"));
    // Posted from another site: refused.
    let res = invitee
        .client
        .post(format!("{}{path}", app.address))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[("email", "v@acme.test"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(count(&app.pool, "select count(*) from users").await, users);
    assert_eq!(
        count(
            &app.pool,
            "select count(*) from invites where accepted_at is null"
        )
        .await,
        1,
        "the invite still works"
    );

    // Accepted: signed in as a viewer, welcomed on the dashboard.
    let (status, html) = post(
        &invitee,
        &path,
        &[("email", "v@acme.test"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("You joined as a viewer"));
    assert!(html.contains("v@acme.test"), "signed in");
    let session: serde_json::Value = invitee.get("/api/v1/session").await.json().await.unwrap();
    assert_eq!(session["user"]["role"], "viewer");
    assert_eq!(session["user"]["email"], "v@acme.test");
    assert_eq!(role_of(&app.pool, "v@acme.test").await, "viewer");

    // The link works once; then it says so and points to sign-in.
    let stranger = Browser::new(&app.address);
    let (status, html) = get(&stranger, &path).await;
    assert_eq!(status, 410);
    assert!(html.contains("This invite was used already"));
    assert!(html.contains("href=\"/login\""));
    let (status, _) = post(
        &stranger,
        &path,
        &[("email", "v@acme.test"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(status, 410);

    // An expired link names the organisation to ask for a new one.
    let path = invite_on_page(&owner, "late@acme.test", "admin").await;
    sqlx::query("update invites set expires_at = now() - interval '1 minute' where email = 'late@acme.test'")
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, html) = get(&stranger, &path).await;
    assert_eq!(status, 410);
    assert!(html.contains("This invite has expired"));
    assert!(html.contains("Ask an owner or admin of Acme &lt;小程序&gt;"));
    let (status, _) = post(
        &stranger,
        &path,
        &[("email", "late@acme.test"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(status, 410);
    assert_eq!(
        count(
            &app.pool,
            "select count(*) from users where email = 'late@acme.test'"
        )
        .await,
        0
    );
    let (_, html) = get(&owner, "/members").await;
    assert!(html.contains("badge-disabled\">expired"));

    // Unknown or mangled links: a clear page, escaped, never a 500.
    for bad in [
        "/invite/nope",
        "/invite/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/invite",
    ] {
        let (status, html) = get(&stranger, bad).await;
        assert_eq!(status, 404, "{bad}");
        assert!(html.contains("This invite link does not work"));
        assert!(!html.contains("<script>alert"));
    }

    // An email that has an account already: the reason, next to the field.
    let path = invite_on_page(&owner, "owner@acme.test", "viewer").await;
    let (status, html) = post(
        &stranger,
        &path,
        &[("email", "owner@acme.test"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(status, 409);
    assert!(html.contains("An account with this email exists already"));
    assert!(html.contains("id=\"e-email\""));

    // An invite made through the API without an email lets the invitee type one.
    let res = owner
        .post_json("/api/v1/invites", &json!({ "role": "admin" }))
        .await;
    let invite: serde_json::Value = res.json().await.unwrap();
    assert!(invite["email"].is_null());
    let path = invite["url"].as_str().unwrap().to_string();
    let (_, html) = get(&stranger, &path).await;
    assert!(html.contains("id=\"f-email\" name=\"email\" type=\"email\" value=\"\""));
    assert!(!html.contains("readonly"));
    for bad in hostile_inputs() {
        let (status, html) = post(
            &stranger,
            &path,
            &[("email", bad.as_str()), ("password", PASSWORD)],
        )
        .await;
        assert_eq!(status, 422, "{bad:.40}");
        assert!(html.contains("id=\"e-email\""), "{bad:.40}");
        assert!(!html.contains("<script>alert"));
        if !bad.trim().is_empty() && bad.len() < 1000 {
            assert!(
                html.contains(&format!("value=\"{}\"", escaped(&bad))),
                "kept: {bad}"
            );
        }
    }
    assert_eq!(
        count(&app.pool, "select count(*) from users where role = 'admin'").await,
        0,
        "nothing stored half-way"
    );
    let (status, html) = post(
        &stranger,
        &path,
        &[("email", "free@acme.test"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("You joined as an admin"));
    assert_eq!(role_of(&app.pool, "free@acme.test").await, "admin");
}

#[tokio::test]
async fn the_api_keeps_an_invite_to_its_email() {
    let app = spawn_app().await;
    let owner = app.signup("Acme", "owner@acme.test").await;
    let res = owner
        .post_json(
            "/api/v1/invites",
            &json!({ "role": "viewer", "email": "Named@Acme.test" }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let invite: serde_json::Value = res.json().await.unwrap();
    assert_eq!(invite["email"], "named@acme.test");
    let res = owner
        .post_json(
            "/api/v1/invites",
            &json!({ "role": "viewer", "email": "nope" }),
        )
        .await;
    assert_eq!(res.status(), 422);
    let accept =
        |email: &str| json!({ "token": invite["token"], "email": email, "password": PASSWORD });
    let anon = Browser::new(&app.address);
    let res = anon
        .post_json("/api/v1/invites/accept", &accept("other@acme.test"))
        .await;
    assert_eq!(res.status(), 422);
    let problem: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        problem["errors"][0]["code"], "invite_email_mismatch",
        "{problem}"
    );
    let res = anon
        .post_json("/api/v1/invites/accept", &accept("named@acme.test"))
        .await;
    assert_eq!(res.status(), 201);
    let list: serde_json::Value = owner.get("/api/v1/invites").await.json().await.unwrap();
    assert_eq!(list["items"][0]["email"], "named@acme.test");
    let log: serde_json::Value = owner
        .get("/api/v1/audit-log?action=member.joined")
        .await
        .json()
        .await
        .unwrap();
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{log}");
    assert_eq!(items[0]["target"], "named@acme.test");
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

#[tokio::test]
async fn the_audit_log_pages_newest_first_and_filters_by_action() {
    let app = spawn_app().await;
    let owner = app.signup("<b>Acme</b>", "owner@acme.test").await;
    let _admin = app
        .invite_and_join(&owner, "admin", "admin@acme.test")
        .await;
    let tenant: Uuid = sqlx::query_scalar("select id from tenants")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // Many token-read entries, as a busy key leaves them.
    sqlx::query(
        "insert into audit_log (tenant_id, action, detail)
         select $1, 'token.read', jsonb_build_object('count', n, 'period_seconds', 60)
           from generate_series(1, 120) n",
    )
    .bind(tenant)
    .execute(&app.pool)
    .await
    .unwrap();
    invite_on_page(&owner, "late@acme.test", "viewer").await;

    let (status, html) = get(&owner, "/audit").await;
    assert_eq!(status, 200);
    assert!(html.contains("href=\"/audit\" aria-current=\"page\""));
    assert_eq!(html.matches("<tr class=\"audit-").count(), 50, "one page");
    let first = rows(&html).find(">Invite created<").expect("newest first");
    let read = rows(&html).find(">Tokens read<").unwrap();
    assert!(first < read, "the newest entry is on top");
    assert!(
        html.contains("<code>late@acme.test</code>"),
        "the invite by its email"
    );
    assert!(html.contains("reads: 120"));
    assert!(
        !rows(&html).contains(">Organisation created<"),
        "not on the first page"
    );

    // Follow the pages down to the first entry; the last page has no "older".
    let mut next = html;
    let mut pages = 1;
    while let Some((_, rest)) = next.split_once("before=") {
        let before: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let (status, html) = get(&owner, &format!("/audit?before={before}")).await;
        assert_eq!(status, 200);
        assert!(html.contains("← Newest"));
        next = html;
        pages += 1;
        assert!(pages < 10, "paging ends");
    }
    assert_eq!(pages, 3);
    assert!(rows(&next).contains(">Organisation created<"));
    assert!(
        next.contains("<code>&lt;b&gt;Acme&lt;&#x2f;b&gt;</code>"),
        "escaped"
    );
    assert!(!next.contains("<b>Acme</b>"));

    // Filtered by action: only those entries, the filter kept in the pager.
    let (status, html) = get(&owner, "/audit?action=member.joined").await;
    assert_eq!(status, 200);
    assert_eq!(html.matches("<tr class=\"audit-").count(), 1);
    assert!(rows(&html).contains(">Member joined<"));
    assert!(html.contains("<option value=\"member.joined\" selected>"));
    let (_, html) = get(&owner, "/audit?action=token.read").await;
    assert_eq!(html.matches("<tr class=\"audit-token-read").count(), 50);
    assert!(html.contains("action=token.read&amp;before="));
    let (_, html) = get(&owner, "/audit?action=app.deleted").await;
    assert!(html.contains("No entries of this kind"));

    // Bad queries: a field error or a 400 page, escaped, never a 500.
    let (status, html) = get(&owner, "/audit?action=%3Cscript%3Ealert(1)%3C/script%3E").await;
    assert_eq!(status, 422);
    assert!(html.contains("id=\"e-action\""));
    assert!(!html.contains("<script>alert"));
    for bad in ["abc", "-1", "99999999999999999999999", "%F0%9F%99%82"] {
        let (status, _) = get(&owner, &format!("/audit?before={bad}")).await;
        assert_eq!(status, 400, "{bad}");
    }

    // In Chinese.
    let res = owner
        .client
        .get(format!("{}/audit", app.address))
        .header("Accept-Language", "zh-CN")
        .send()
        .await
        .unwrap();
    let (_, html) = page(res).await;
    assert!(html.contains("审计日志"));
    assert!(rows(&html).contains(">创建邀请<"));
    assert!(rows(&html).contains(">读取令牌<"));
}
