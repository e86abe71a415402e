//! The operator overview: every tenant and failing app, for operators only.

use super::*;

#[tokio::test]
async fn operators_see_every_tenant_and_failing_app_and_nobody_else_does() {
    let sim = sim_with_apps();
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let one = app.signup("<b>Evil</b> & Co", "one@t.test").await;
    register(&one, APPID, SECRET, "stable").await;
    // A wrong secret: registered, failing with WeChat's errcode.
    let failing = register(&one, APPID_B, OTHER_SECRET, "stable").await;
    assert_eq!(failing["health"], "failing", "{failing}");
    let key = one.create_key(json!({ "name": "k" })).await;
    let key = key["key"].as_str().unwrap().to_string();
    let two = app.signup("Tenant Two", "two@t.test").await;
    app.invite_and_join(&two, "viewer", "viewer@t.test").await;
    let errcode: i32 = sqlx::query_scalar(
        "select s.last_errcode from token_state s join apps a on a.id = s.app_id where a.appid = $1",
    )
    .bind(APPID_B)
    .fetch_one(&app.pool)
    .await
    .unwrap();

    let ops = create_operator(&app, "ops@service.test").await;
    let (status, page) = html(&ops, "/operator").await;
    assert_eq!(status, 200, "{page}");
    // The title is text, and the outgoing-mail section is shown once, in the page.
    let title = &page[page.find("<title>").unwrap()..page.find("</title>").unwrap()];
    assert!(!title[7..].contains('<'), "{title}");
    assert_eq!(page.matches("id=\"mail-h\"").count(), 1);
    assert!(page.contains("&lt;b&gt;Evil"), "{page}");
    assert!(!page.contains("<b>Evil</b>"), "names are escaped");
    assert!(page.contains("Tenant Two"));
    assert!(
        page.contains("Organisations: 2 · Apps: 2 (1 healthy, 1 failing)"),
        "{page}"
    );
    // Tenant one: 1 member, 2 apps, one healthy and one failing; two: 2 members.
    assert!(page.contains("<span class=\"badge badge-healthy\">1 healthy</span>"));
    assert!(page.contains("<span class=\"badge badge-failing\">1 failing</span>"));
    assert!(page.contains("no apps yet"));
    // The failing app with its errcode, explained; nothing secret.
    assert!(page.contains(APPID_B));
    assert!(page.contains(&format!("errcode {errcode}")), "{page}");
    for secret in [
        SECRET,
        OTHER_SECRET,
        key.as_str(),
        "tvk_",
        "access_token\":",
    ] {
        assert!(!page.contains(secret), "{secret} on the operator page");
    }
    let token = sim
        .current_token(APPID, tokenvault::upstream::simulator::TokenKind::Stable)
        .unwrap();
    assert!(!page.contains(&token));
    // Operators land on their overview, and their nav has no tenant pages.
    assert!(page.contains("href=\"/operator\" aria-current=\"page\""));
    assert!(page.contains("href=\"/status\""));
    assert!(!page.contains("href=\"/keys\""));
    let res = ops.get("/dashboard").await;
    assert_eq!(res.url().path(), "/operator");
    let res = ops.get("/").await;
    assert_eq!(res.url().path(), "/operator");
    // Operators see replicas' host names on the health page.
    let h = health_when(&ops, "a replica", |h| {
        !h["replicas"]["items"].as_array().unwrap().is_empty()
    })
    .await;
    assert!(h["replicas"]["items"][0]["host"].is_string(), "{h}");

    // Owners and viewers are refused, with nothing of the overview.
    let viewer = app.login("viewer@t.test", PASSWORD).await;
    for (who, b) in [("owner", &one), ("viewer", &viewer)] {
        let (status, page) = html(b, "/operator").await;
        assert_eq!(status, 403, "{who}");
        assert!(!page.contains("ops-summary"), "{who}");
        assert!(!page.contains(APPID_B), "{who}");
        assert!(
            !page.contains("href=\"/operator\""),
            "no nav link for {who}"
        );
    }
    let (_, dashboard) = html(&one, "/dashboard").await;
    assert!(!dashboard.contains("href=\"/operator\""));
    assert!(dashboard.contains("href=\"/status\""));
    // An API key is no operator either.
    let res = get_with_key(&app.address, "/operator", &key).await;
    assert_eq!(res.url().path(), "/login", "sent to sign in");
}
