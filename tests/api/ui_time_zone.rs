//! A person's time zone over plain HTTP: the account page's form suggests
//! the zones the database knows; a name that is not a zone is refused next
//! to the field (nothing stored); a chosen zone is on every page for the
//! script (`data-time-zone`); empty goes back to the browser's zone; a
//! stale form changes nothing; signed out, the page asks to sign in. (The
//! templates escape `/` as `&#x2f;`, which browsers read as `/`.)

use crate::helpers::spawn_app;
use crate::ui::{csrf_of, page};

#[tokio::test]
async fn a_person_chooses_a_time_zone_and_every_page_carries_it() {
    let app = spawn_app().await;
    let owner = app.signup("Acme", "o@acme.test").await;
    let url = |p: &str| format!("{}{p}", app.address);
    let (status, html) = page(owner.get("/account").await).await;
    assert_eq!(status, 200);
    assert!(html.contains("action=\"/account/time-zone\""));
    assert!(html.contains("<option value=\"Asia&#x2f;Shanghai\">"));
    assert!(!html.contains("<option value=\"posix&#x2f;"));
    assert!(!html.contains("data-time-zone"));
    assert!(html.contains("Times are shown in this browser&#x27;s time zone"));
    let csrf = csrf_of(&html);
    let post = |zone: &str, csrf: &str| {
        owner
            .client
            .post(url("/account/time-zone"))
            .form(&[("csrf_token", csrf), ("time_zone", zone)])
            .send()
    };
    let stored = || async {
        sqlx::query_scalar::<_, Option<String>>(
            "select time_zone from users where email = 'o@acme.test'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };

    // Not zones: refused beside the field, what was typed kept (escaped).
    for bad in [
        "Mars/Olympus_Mons",
        "posix/Asia/Shanghai",
        "CST",
        "<b>x</b>",
        "+08:00",
    ] {
        let (status, html) = page(post(bad, &csrf).await.unwrap()).await;
        assert_eq!(status, 422, "{bad}");
        assert!(html.contains("id=\"e-time_zone\""), "{bad}");
        assert!(!html.contains("<b>x</b>"));
        assert_eq!(stored().await, None, "{bad}");
    }

    // A zone: stored, named on the page, and on every page for the script.
    let (status, html) = page(post(" Asia/Shanghai ", &csrf).await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Times are now shown in <code>Asia&#x2f;Shanghai</code>"),
        "{html}"
    );
    assert!(html.contains("Times are shown in Asia&#x2f;Shanghai."));
    assert_eq!(stored().await.as_deref(), Some("Asia/Shanghai"));
    let (_, html) = page(owner.get("/dashboard").await).await;
    assert!(html.contains("<html lang=\"en\" data-time-zone=\"Asia&#x2f;Shanghai\">"));
    let (_, html) = page(post("UTC", &csrf).await.unwrap()).await;
    assert!(html.contains("data-time-zone=\"UTC\""));

    // A stale form changes nothing.
    let (_, html) = page(post("Europe/Berlin", "not-the-token").await.unwrap()).await;
    assert!(html.contains("flash-error"), "{html}");
    assert_eq!(stored().await.as_deref(), Some("UTC"));

    // Empty: the browser's zone again.
    let (status, html) = page(post("", &csrf).await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(html.contains("Times are now shown in this browser&#x27;s time zone."));
    assert!(!html.contains("data-time-zone"));
    assert_eq!(stored().await, None);

    // Signed out: the sign-in page.
    let (status, html) = page(
        app.browser()
            .client
            .get(url("/account"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("action=\"/login"), "{html}");
}
