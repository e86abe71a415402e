//! Every page has labels, names, one h1, a main landmark and a viewport;
//! the check itself is tested too.

use super::*;

/// What keeps a page from being usable with a screen reader, a keyboard or
/// on a phone; empty when nothing does.
fn accessibility_problems(html: &str) -> Vec<String> {
    use scraper::{ElementRef, Html, Selector};
    let doc = Html::parse_document(html);
    let all =
        |css: &str| -> Vec<ElementRef<'_>> { doc.select(&Selector::parse(css).unwrap()).collect() };
    let text = |el: &ElementRef| el.text().collect::<String>().trim().to_string();
    let attr = |el: &ElementRef, name: &str| el.value().attr(name).map(str::trim).map(String::from);
    let ancestors = |el: &ElementRef| -> Vec<String> {
        el.ancestors()
            .filter_map(ElementRef::wrap)
            .map(|a| a.value().name().to_string())
            .collect()
    };
    let mut problems = Vec::new();
    let ids: Vec<String> = all("[id]").iter().filter_map(|e| attr(e, "id")).collect();
    let has_id = |id: &str| ids.iter().any(|i| i == id);
    let mut seen = std::collections::BTreeSet::new();
    for id in &ids {
        if !seen.insert(id) {
            problems.push(format!("id {id} is used twice"));
        }
    }

    if all("html[lang]")
        .iter()
        .all(|h| attr(h, "lang").unwrap_or_default().is_empty())
    {
        problems.push("html has no lang".into());
    }
    if !all("meta[name=viewport]").iter().any(|m| {
        attr(m, "content")
            .unwrap_or_default()
            .contains("width=device-width")
    }) {
        problems.push("no viewport meta tag".into());
    }
    let h1 = all("h1").len();
    if h1 != 1 {
        problems.push(format!("{h1} h1 elements"));
    }
    let main = all("main, [role=main]").len();
    if main != 1 {
        problems.push(format!("{main} main landmarks"));
    }
    for el in all("[tabindex]") {
        if attr(&el, "tabindex")
            .and_then(|t| t.parse::<i32>().ok())
            .unwrap_or(0)
            > 0
        {
            problems.push(format!("positive tabindex: {}", el.html()));
        }
    }
    // Every reference names an element that exists.
    for el in all("[aria-describedby], [aria-labelledby], label[for]") {
        for name in ["aria-describedby", "aria-labelledby", "for"] {
            for id in attr(&el, name).unwrap_or_default().split_whitespace() {
                if !has_id(id) {
                    problems.push(format!("{name}={id} names nothing"));
                }
            }
        }
    }
    let labelled_by_aria = |el: &ElementRef| {
        attr(el, "aria-label").is_some_and(|l| !l.is_empty())
            || attr(el, "aria-labelledby").is_some_and(|l| !l.is_empty())
    };
    for el in all("input, select, textarea") {
        let kind = attr(&el, "type").unwrap_or_default().to_ascii_lowercase();
        if el.value().name() == "input"
            && matches!(kind.as_str(), "hidden" | "submit" | "button" | "reset")
        {
            continue;
        }
        let by_for = attr(&el, "id").is_some_and(|id| {
            all("label[for]")
                .iter()
                .any(|l| attr(l, "for").as_deref() == Some(id.as_str()) && !text(l).is_empty())
        });
        let wrapped = ancestors(&el).iter().any(|a| a == "label");
        if !(by_for || wrapped || labelled_by_aria(&el)) {
            problems.push(format!("no label: {}", el.html()));
        }
    }
    for el in all("img") {
        if attr(&el, "alt").is_none() {
            problems.push(format!("no alt: {}", el.html()));
        }
    }
    for el in all("a[href], button, summary") {
        let named = !text(&el).is_empty()
            || labelled_by_aria(&el)
            || el
                .select(&Selector::parse("img[alt]").unwrap())
                .any(|i| attr(&i, "alt").is_some_and(|a| !a.is_empty()));
        if !named {
            problems.push(format!("no accessible name: {}", el.html()));
        }
    }
    for el in all("button") {
        let in_form = ancestors(&el).iter().any(|a| a == "form") || attr(&el, "form").is_some();
        if !in_form && attr(&el, "type").as_deref() != Some("button") {
            problems.push(format!(
                "a button outside a form without type=button: {}",
                el.html()
            ));
        }
    }
    problems
}

/// GET or POST `path` as `b` (HTML wanted) and collect the page's problems.
async fn audit_page(
    b: &Browser,
    what: &str,
    path: &str,
    form: Option<&[(&str, &str)]>,
    status: u16,
    problems: &mut Vec<String>,
) {
    let url = format!("{}{path}", b.address);
    let req = match form {
        Some(fields) => {
            // As a browser sends it: with the pre-session token its pages show.
            let token = signed_out_token(&b.client, &b.address).await;
            let mut fields = fields.to_vec();
            fields.push(("login_token", token.as_str()));
            b.client.post(url).form(&fields)
        }
        None => b.client.get(url),
    };
    let res = req.header("Accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), status, "{what}: {path}");
    let html = res.text().await.unwrap();
    for p in accessibility_problems(&html) {
        problems.push(format!("{what} {path}: {p}"));
    }
}

#[tokio::test]
async fn every_page_has_labels_names_one_h1_a_main_landmark_and_a_viewport() {
    let sim = simulator();
    let failing = "wx00000000000000f1";
    sim.add_app(failing, OTHER_SECRET);
    let app = spawn(&sim).await;
    let (owner, ctx) = owner_with_everything(&app).await;
    // A second app whose secret WeChat refuses: the app page explains it.
    let res = owner
        .post_json(
            "/api/v1/apps",
            &serde_json::json!({ "appid": failing, "secret": SECRET, "name": "Broken <app>" }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let viewer = app.login("viewer@forms.test", PASSWORD).await;
    let operator = crate::ui_ops::create_operator(&app, "ops@forms.test").await;
    let newcomer = app.signup("Empty Co", "empty@forms.test").await;
    let anonymous = Browser::new(&app.address);
    let invite_path = ctx.fill("{invite_path}", 0);
    let app_page = format!("/apps/{APPID}");
    let failing_page = format!("/apps/{failing}");
    let csrf = owner.csrf.as_str();
    let secret_path = format!("/apps/{APPID}/secret");

    let mut problems = Vec::new();
    let a = &anonymous;
    for (b, what, path, form, status) in [
        (a, "anonymous", "/login", None, 200),
        (a, "anonymous", "/signup", None, 200),
        (a, "anonymous", invite_path.as_str(), None, 200),
        (a, "anonymous", "/invite/nope", None, 404),
        (a, "anonymous", "/invite", None, 404),
        (a, "anonymous", "/no-such-page", None, 404),
        (a, "anonymous", "/api/docs", None, 200),
        (
            a,
            "anonymous, errors",
            "/signup",
            Some(&[("organization", ""), ("email", "x"), ("password", "")][..]),
            422,
        ),
        (
            a,
            "anonymous, errors",
            "/login",
            Some(&[("email", "x"), ("password", "")][..]),
            422,
        ),
        (
            a,
            "anonymous, errors",
            invite_path.as_str(),
            Some(&[("email", "invited@forms.test"), ("password", "")][..]),
            422,
        ),
    ] {
        audit_page(b, what, path, form, status, &mut problems).await;
    }
    let o = &owner;
    for (b, what, path, form, status) in [
        (o, "owner", "/dashboard", None, 200),
        (o, "owner", "/apps/new", None, 200),
        (o, "owner", app_page.as_str(), None, 200),
        (o, "owner", failing_page.as_str(), None, 200),
        (o, "owner", "/keys", None, 200),
        (o, "owner", "/members", None, 200),
        (o, "owner", "/audit", None, 200),
        (o, "owner", "/audit?action=nope", None, 422),
        (o, "owner", "/status", None, 200),
        (o, "owner", "/operator", None, 403),
        (o, "owner", "/apps/wx0000000000000000", None, 404),
        (
            o,
            "owner, errors",
            "/apps/new",
            Some(
                &[
                    ("csrf_token", csrf),
                    ("appid", "x"),
                    ("secret", ""),
                    ("token_mode", "x"),
                ][..],
            ),
            422,
        ),
        (
            o,
            "owner, errors",
            secret_path.as_str(),
            Some(&[("csrf_token", csrf), ("secret", "x")][..]),
            422,
        ),
        (
            o,
            "owner, errors",
            "/keys",
            Some(&[("csrf_token", csrf), ("name", ""), ("apps", "wxnope")][..]),
            422,
        ),
        (
            o,
            "owner, key shown",
            "/keys",
            Some(&[("csrf_token", csrf), ("name", "ci")][..]),
            201,
        ),
        (
            o,
            "owner, invite shown",
            "/members/invite",
            Some(
                &[
                    ("csrf_token", csrf),
                    ("email", "x@forms.test"),
                    ("role", "admin"),
                ][..],
            ),
            201,
        ),
        (&newcomer, "owner, no apps", "/dashboard", None, 200),
        (&viewer, "viewer", "/dashboard", None, 200),
        (&viewer, "viewer", app_page.as_str(), None, 200),
        (&viewer, "viewer", failing_page.as_str(), None, 200),
        (&viewer, "viewer", "/members", None, 200),
        (&viewer, "viewer", "/status", None, 200),
        (&viewer, "viewer", "/keys", None, 403),
        (&operator, "operator", "/operator", None, 200),
        (&operator, "operator", "/status", None, 200),
        (&operator, "operator", "/no-such-page", None, 404),
    ] {
        audit_page(b, what, path, form, status, &mut problems).await;
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The check itself sees each problem it looks for.
#[test]
fn the_accessibility_check_sees_each_problem() {
    let good = r##"<!doctype html><html lang="en"><head>
        <meta name="viewport" content="width=device-width, initial-scale=1"></head><body>
        <a class="skip" href="#main">Skip</a><main id="main"><h1>Title</h1>
        <form><label for="f-a">A</label><input id="f-a" aria-describedby="h-a"><p id="h-a">hint</p>
        <label><input type="checkbox" name="c"> C</label><input type="hidden" name="csrf_token">
        <select aria-label="Role"><option>x</option></select><button>Send</button></form>
        <button type="button">Copy</button><img src="x.png" alt=""></main></body></html>"##;
    assert_eq!(accessibility_problems(good), Vec::<String>::new());
    let bad = r#"<!doctype html><html><head></head><body>
        <h1>One</h1><h1>Two</h1><div tabindex="3">x</div>
        <form><input id="f-a" aria-describedby="e-a"><textarea></textarea></form>
        <p id="dup"></p><p id="dup"></p><img src="x.png"><a href="/x"> </a>
        <button>Copy</button><summary></summary></body></html>"#;
    let found = accessibility_problems(bad).join("\n");
    for expected in [
        "html has no lang",
        "no viewport meta tag",
        "2 h1 elements",
        "0 main landmarks",
        "positive tabindex",
        "aria-describedby=e-a names nothing",
        "no label: <input",
        "no label: <textarea",
        "id dup is used twice",
        "no alt",
        "no accessible name: <a",
        "no accessible name: <summary",
        "a button outside a form without type=button",
    ] {
        assert!(found.contains(expected), "{expected} not seen in:\n{found}");
    }
}
