//! Unknown pages: HTML in the visitor's language for browsers, problem+json for the API.

use super::*;

#[tokio::test]
async fn unknown_pages_answer_html_in_the_visitors_language_and_the_api_problem_json() {
    let sim = sim_with_apps();
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let anonymous = app.browser();
    let res = anonymous
        .client
        .get(format!("{}/no/such/page", app.address))
        .header("Accept", "text/html")
        .header("Accept-Language", "zh-CN,zh;q=0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = res.text().await.unwrap();
    assert!(page.contains("<html lang=\"zh-CN\">"));
    assert!(page.contains("找不到该页面"), "{page}");
    assert!(page.contains("href=\"/login\""));

    let owner = app.signup("Lost Co", "lost@t.test").await;
    for path in [
        "/no/such/page",
        "/apps/wx0000000000000000",
        "/apps/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/keys/extra/segments/here",
    ] {
        let (status, page) = html(&owner, path).await;
        assert_eq!(status, 404, "{path}");
        assert!(page.contains("Page not found"), "{path}: {page}");
        assert!(page.contains("href=\"/dashboard\""), "{path}");
        assert!(!page.contains("<script>alert"), "{path}");
    }
    // Another tenant's app is as unknown as a missing one.
    let other = app.signup("Other Co", "other@t.test").await;
    register(&other, APPID_C, SECRET, "stable").await;
    let (status, page) = html(&owner, &format!("/apps/{APPID_C}")).await;
    assert_eq!(status, 404);
    assert!(page.contains("Page not found"));

    // The API and machine clients keep problem+json, whatever they accept.
    for (path, accept) in [
        ("/api/v1/no-such-endpoint", "text/html"),
        ("/api/v1/apps/x/y/z", "text/html"),
        ("/cgi-bin/nothing", "text/html"),
        ("/no/such/page", "application/json"),
        ("/no/such/page", "*/*"),
    ] {
        let res = owner
            .client
            .get(format!("{}{path}", app.address))
            .header("Accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{path} {accept}"
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "not_found");
    }
}
