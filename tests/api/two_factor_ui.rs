//! Two-factor sign-in in the pages, over HTTP: the second sign-in step,
//! the half-signed-in state (no session), and people who must enrol.

use crate::helpers::totp::next_code;
use crate::helpers::{PASSWORD, TestApp, login_token_of, spawn_app};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_string()
}

/// Post the sign-in form with `client`; the answer (not followed).
async fn sign_in(app: &TestApp, client: &reqwest::Client, email: &str) -> reqwest::Response {
    sign_in_to(app, client, email, "").await
}

/// Post the sign-in form (come back to `next` once signed in).
async fn sign_in_to(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    next: &str,
) -> reqwest::Response {
    let html = client
        .get(format!("{}/login", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = login_token_of(&html);
    client
        .post(format!("{}/login", app.address))
        .form(&[
            ("email", email),
            ("password", PASSWORD),
            ("login_token", &token),
            ("next", next),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_code_is_a_second_step_and_the_first_opens_no_session() {
    let app = spawn_app().await;
    let owner = app.signup("Steps Co", "o@steps.test").await;
    owner.enrol_totp().await;

    let b = client();
    let res = sign_in(&app, &b, "o@steps.test").await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/login/two-factor");
    assert!(
        res.cookies().all(|c| c.name() != "tv_session"),
        "no session yet"
    );
    // Half signed in: nothing else opens.
    let res = b
        .get(format!("{}/dashboard", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("/login"));
    let res = b
        .get(format!("{}/api/v1/apps", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let res = b
        .get(format!("{}/login/two-factor", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("action=\"/login/two-factor\""), "{html}");
    let token = login_token_of(&html);
    let post = |code: String| {
        let (b, token, url) = (
            &b,
            token.clone(),
            format!("{}/login/two-factor", app.address),
        );
        async move {
            b.post(url)
                .form(&[("code", code.as_str()), ("login_token", token.as_str())])
                .send()
                .await
                .unwrap()
        }
    };
    let res = post("000000".into()).await;
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("This code is wrong"));
    // Without the pre-session token: refused.
    let res = b
        .post(format!("{}/login/two-factor", app.address))
        .form(&[("code", next_code(&app.pool, "o@steps.test").await.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = post(next_code(&app.pool, "o@steps.test").await).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/dashboard");
    assert!(res.cookies().any(|c| c.name() == "tv_session"));
    let res = b
        .get(format!("{}/dashboard", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Without a pending first step, the code page sends back to sign-in.
    let res = client()
        .get(format!("{}/login/two-factor", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/login");
}

#[tokio::test]
async fn the_page_asked_for_before_sign_in_opens_after_the_code() {
    let app = spawn_app().await;
    let owner = app.signup("Steps Co", "o@steps.test").await;
    owner.enrol_totp().await;
    let b = client();
    let res = sign_in_to(&app, &b, "o@steps.test", "/keys?x=1&y=2").await;
    assert_eq!(res.status(), 303);
    let step = location(&res);
    assert_eq!(step, "/login/two-factor?next=%2Fkeys%3Fx%3D1%26y%3D2");
    let html = b
        .get(format!("{}{step}", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(r#"name="next" value="&#x2f;keys?x=1&amp;y=2""#),
        "{html}"
    );
    let code = next_code(&app.pool, "o@steps.test").await;
    let res = b
        .post(format!("{}/login/two-factor", app.address))
        .form(&[
            ("code", code.as_str()),
            ("login_token", login_token_of(&html).as_str()),
            ("next", "/keys?x=1&y=2"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/keys?x=1&y=2");

    // Never to another site.
    let b = client();
    let res = sign_in_to(&app, &b, "o@steps.test", "//evil.example/").await;
    assert_eq!(location(&res), "/login/two-factor");
}

#[tokio::test]
async fn members_who_must_enrol_reach_only_the_two_factor_page() {
    let app = spawn_app().await;
    let owner = app.signup("Must Co", "o@must.test").await;
    app.invite_and_join(&owner, "admin", "a@must.test").await;
    let res = owner
        .patch_json(
            "/api/v1/organization",
            &serde_json::json!({ "require_totp": true }),
        )
        .await;
    assert_eq!(res.status(), 200);

    let b = client();
    let res = sign_in(&app, &b, "a@must.test").await;
    assert_eq!(res.status(), 303);
    for path in ["/dashboard", "/keys", "/members", "/"] {
        let mut res = b
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        // (`/` goes to sign-in first, which sends on.)
        if location(&res) == "/login" {
            res = b
                .get(format!("{}/login", app.address))
                .send()
                .await
                .unwrap();
        }
        assert_eq!(res.status(), 303, "{path}");
        assert_eq!(location(&res), "/account/two-factor", "{path}");
    }
    let html = b
        .get(format!("{}/account/two-factor", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"totp-required\""), "{html}");
    assert!(html.contains("action=\"/account/two-factor/enrol\""));
}
