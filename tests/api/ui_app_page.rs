//! The app page over plain HTTP: every action of it by the API's rules,
//! and a form posted after the session expired signs in again and comes
//! back to it.

use crate::apps::{APPID, OTHER_SECRET, SECRET};
use crate::helpers::{PASSWORD, post_signed_out_form};
use crate::ui::{csrf_of, page};

#[tokio::test]
async fn manage_an_app_from_its_page() {
    let (_sim, app, owner) = crate::apps::with_owner_and_app("Acme", "o@acme.test").await;
    let b = &owner.client;
    let url = |p: &str| format!("{}{p}", app.address);
    let (status, html) = page(b.get(url(&format!("/apps/{APPID}"))).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(html.contains("Manage"));
    let csrf = csrf_of(&html);
    let post = |action: &str, fields: Vec<(&'static str, String)>| {
        let mut form = vec![("csrf_token", csrf.clone())];
        form.extend(fields);
        b.post(url(&format!("/apps/{APPID}/{action}")))
            .form(&form)
            .send()
    };
    // Post an action and read the page it lands on.
    let act = |action: &'static str, fields: Vec<(&'static str, String)>| {
        let sent = post(action, fields);
        async move { page(sent.await.unwrap()).await }
    };
    let edits = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from audit_log where action = 'app.edited'")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };

    // Bad secrets: the error next to the field, never the secret, nothing stored.
    let (status, html) = act("secret", vec![("secret", "not-a-secret-<x>".into())]).await;
    assert_eq!(status, 422);
    assert!(html.contains("id=\"e-secret\""));
    assert!(!html.contains("not-a-secret"));
    let (status, html) = act("secondary", vec![("secondary_secret", "short".into())]).await;
    assert_eq!(status, 422);
    assert!(html.contains("id=\"e-secondary_secret\""));
    assert!(!html.contains("value=\"short\""));
    assert_eq!(edits().await, 0);

    // The secondary secret first: with a valid primary the refresher never
    // promotes it, so the page shows what was set.
    let (status, html) = act("secondary", vec![("secondary_secret", OTHER_SECRET.into())]).await;
    assert_eq!(status, 200);
    assert!(html.contains("Secondary AppSecret set for"));
    assert!(html.contains("A secondary AppSecret is set."));
    assert!(!html.contains(OTHER_SECRET));
    let (_, html) = act("secondary", vec![("clear", "1".into())]).await;
    assert!(html.contains("Secondary AppSecret cleared for"));
    assert!(html.contains("No secondary AppSecret."));
    let (status, html) = act("secret", vec![("secret", OTHER_SECRET.into())]).await;
    assert_eq!(status, 200);
    assert!(html.contains("AppSecret replaced for"));
    assert!(!html.contains(OTHER_SECRET));
    let (_, html) = act("enabled", vec![("enabled", "false".into())]).await;
    assert!(html.contains("Refreshing switched off for"));
    assert!(html.contains("Switch refreshing on"));
    let (_, html) = act("enabled", vec![("enabled", "true".into())]).await;
    assert!(html.contains("Refreshing switched on for"));
    assert_eq!(edits().await, 5);

    // A viewer sees no actions and cannot delete; a stale form deletes nothing.
    let viewer = app.invite_and_join(&owner, "viewer", "v@acme.test").await;
    let (_, html) = page(
        viewer
            .client
            .get(url(&format!("/apps/{APPID}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(!html.contains("/delete\""));
    let res = viewer
        .client
        .post(url(&format!("/apps/{APPID}/delete")))
        .form(&[("csrf_token", viewer.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = b
        .post(url(&format!("/apps/{APPID}/delete")))
        .form(&[("csrf_token", "stale")])
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains("out of date"));
    for bad in ["wx0000000000000000", "%3Cx%3E"] {
        let res = b
            .post(url(&format!("/apps/{bad}/delete")))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{bad}");
    }

    let (status, html) = page(post("delete", vec![]).await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(html.contains("App deleted"));
    let res = b.get(url(&format!("/apps/{APPID}"))).send().await.unwrap();
    assert_eq!(res.status(), 404);
}

/// An expired session: back to sign-in with a clear message, then back to
/// the page the form was on; `next` is only ever a path on this site.
#[tokio::test]
async fn an_expired_session_signs_in_again_and_comes_back() {
    let (_sim, app, _owner) = crate::apps::with_owner_and_app("Back Co", "o@back.test").await;
    let no_redirects = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = |p: &str| format!("{}{p}", app.address);
    let sign_in = |next: Option<&'static str>| {
        let mut fields = vec![("email", "o@back.test"), ("password", PASSWORD)];
        if let Some(n) = next {
            fields.push(("next", n));
        }
        let (client, address) = (&no_redirects, &app.address);
        async move {
            let res = post_signed_out_form(client, address, "/forgot", "/login", &fields).await;
            Ok::<_, std::convert::Infallible>(res)
        }
    };
    let location = |res: &reqwest::Response| {
        res.headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string())
    };

    let res = sign_in(None).await.unwrap();
    assert_eq!(location(&res).as_deref(), Some("/dashboard"));
    let (_, html) = page(no_redirects.get(url("/apps/new")).send().await.unwrap()).await;
    let csrf = csrf_of(&html);

    // The session expires while the form is open.
    sqlx::query("update sessions set expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    let res = no_redirects
        .post(url("/apps/new"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("appid", "wx0000000000000001"),
            ("secret", SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res).as_deref(), Some("/login?next=%2Fapps%2Fnew"));
    let (status, html) = page(
        no_redirects
            .get(url("/login?next=%2Fapps%2Fnew"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("session has expired"), "{html}");
    assert!(
        html.contains("name=\"next\" value=\"&#x2f;apps&#x2f;new\""),
        "{html}"
    );
    let apps: i64 = sqlx::query_scalar("select count(*) from apps")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(apps, 1, "nothing stored by the refused form");
    // Signing in goes back to the form.
    let res = sign_in(Some("/apps/new")).await.unwrap();
    assert_eq!(location(&res).as_deref(), Some("/apps/new"));

    // A page opened while signed out comes back after signing in too.
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = anonymous
        .get(url(&format!("/apps/{APPID}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&res),
        Some(format!("/login?next=%2Fapps%2F{APPID}"))
    );

    // `next` never leaves the site nor splits a header.
    for evil in [
        "//evil.test/x",
        "https://evil.test/",
        "/\\evil.test",
        "/a\r\nSet-Cookie: x=1",
        "javascript:alert(1)",
        "/a b",
    ] {
        // (Signing in is throttled per account: two evil values suffice.)
        if evil.starts_with("//") || evil.contains('\r') {
            let res = sign_in(Some(evil)).await.unwrap();
            assert_eq!(res.status(), 303, "{evil:?}");
            assert_eq!(location(&res).as_deref(), Some("/dashboard"), "{evil:?}");
        }
        let (status, html) = page(
            anonymous
                .get(url("/login"))
                .query(&[("next", evil)])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{evil:?}");
        assert!(!html.contains("name=\"next\""), "{evil:?}: {html}");
        let res = anonymous
            .get(url("/lang/en"))
            .query(&[("back", evil)])
            .send()
            .await
            .unwrap();
        assert_eq!(location(&res).as_deref(), Some("/"), "{evil:?}");
    }
}
