//! The invite form and the page an invite link opens, over plain HTTP:
//! field errors for bad input with everything escaped and nothing stored
//! half-way, the link shown once, joining signs in with the invite's role.

use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Browser, PASSWORD, spawn_app};
use crate::ui_people::{count, escaped, get, invite_on_page, link_of, page, post, role_of};

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
