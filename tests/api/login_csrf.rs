//! Login CSRF: the forms posted before a session exists are taken only with
//! the pre-session token of the browser that shows them.

use crate::helpers::{PASSWORD, login_token_of, post_signed_out_form, spawn_app};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn post(
    client: &reqwest::Client,
    url: String,
    fields: &[(&str, &str)],
) -> (u16, Option<String>, String) {
    let res = client.post(url).form(fields).send().await.unwrap();
    let status = res.status().as_u16();
    let session = res
        .cookies()
        .find(|c| c.name() == "tv_session")
        .map(|c| c.value().to_string());
    (status, session, res.text().await.unwrap())
}

#[tokio::test]
async fn signed_out_forms_need_this_browsers_pre_session_token() {
    let app = spawn_app().await;
    let _owner = app.signup("Csrf Co", "owner@csrf.test").await;
    let url = |p: &str| format!("{}{p}", app.address);
    let login = [("email", "owner@csrf.test"), ("password", PASSWORD)];

    // The attacker's browser shows a sign-in form: its token and its cookie.
    let attacker = client();
    let res = attacker.get(url("/login")).send().await.unwrap();
    assert!(
        res.cookies()
            .any(|c| c.name() == "tv_presession" && c.http_only()),
        "an HttpOnly pre-session cookie"
    );
    let foreign = login_token_of(&res.text().await.unwrap());

    // The victim's browser posts without any token (no Origin, no
    // Sec-Fetch-Site either): refused with a clear page, no session.
    let victim = client();
    let (status, session, html) = post(&victim, url("/login"), &login).await;
    assert_eq!(status, 403, "{html}");
    assert!(session.is_none(), "no session without the token");
    assert!(html.contains("This form has expired or was sent from another site"));
    // With the attacker's token: still refused (it is another browser's).
    let mut with_foreign = login.to_vec();
    with_foreign.push(("login_token", &foreign));
    let (status, session, _) = post(&victim, url("/login"), &with_foreign).await;
    assert_eq!(status, 403);
    assert!(session.is_none());
    // A forged token: refused.
    let mut forged = login.to_vec();
    forged.push(("login_token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    let (status, session, html) = post(&victim, url("/login"), &forged).await;
    assert_eq!(status, 403);
    assert!(session.is_none());
    // The refusal showed the form again with this browser's own token:
    // sending it once more signs in.
    let own = login_token_of(&html);
    let mut retry = login.to_vec();
    retry.push(("login_token", &own));
    let (status, session, _) = post(&victim, url("/login"), &retry).await;
    assert_eq!(status, 303);
    assert!(session.is_some(), "signed in with its own token");

    // A valid token from a page of another site (as the browser says): refused.
    let fresh = client();
    let token = login_token_of(
        &fresh
            .get(url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let res = fresh
        .post(url("/login"))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[login[0], login[1], ("login_token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // Sign-up, forgot and reset without the token: refused, nothing made.
    let signup = [
        ("organization", "Forced Org"),
        ("email", "forced@csrf.test"),
        ("password", PASSWORD),
    ];
    let (status, session, _) = post(&client(), url("/signup"), &signup).await;
    assert_eq!((status, session), (403, None));
    let (status, _, _) = post(&client(), url("/forgot"), &[("email", "owner@csrf.test")]).await;
    assert_eq!(status, 403);
    let (status, _, _) = post(
        &client(),
        url("/reset"),
        &[("token", "whatever"), ("password", "A new password 2026")],
    )
    .await;
    assert_eq!(status, 403);
    let tenants: i64 = sqlx::query_scalar("select count(*) from tenants")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        tenants, 1,
        "no organisation was made by the refused sign-up"
    );
    // With the token the same sign-up works.
    let res = post_signed_out_form(&client(), &app.address, "/signup", "/signup", &signup).await;
    assert_eq!(res.status(), 303);
}
