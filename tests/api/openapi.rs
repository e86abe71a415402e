//! The OpenAPI document and the reference page describe every route.

use std::collections::BTreeSet;

use crate::helpers::spawn_app;

/// Every (method, path) that `src/api/mod.rs` registers, read from its
/// source, so a route added without documentation fails this test.
fn registered_routes() -> BTreeSet<(String, String)> {
    let source = include_str!("../../src/api/mod.rs");
    let compact: String = source.chars().filter(|c| !c.is_whitespace()).collect();
    // Byte ranges of `.service(web::scope("P")...)` calls and their prefixes.
    let mut scopes = Vec::new();
    let mut from = 0;
    while let Some(i) = compact[from..].find(".service(web::scope(\"") {
        let start = from + i;
        let prefix_start = start + ".service(web::scope(\"".len();
        let prefix_end = prefix_start + compact[prefix_start..].find('"').unwrap();
        let open = start + ".service".len();
        let mut depth = 0;
        let mut end = compact.len();
        for (k, c) in compact[open..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k;
                        break;
                    }
                }
                _ => {}
            }
        }
        scopes.push((start, end, compact[prefix_start..prefix_end].to_owned()));
        from = prefix_end;
    }
    // `.route("P", web::m()...)` registers one route; `resource("P")`
    // followed by `.route(web::m()...)` calls registers one per method.
    let mut routes = BTreeSet::new();
    let mut resource: Option<(usize, String)> = None;
    let mut at = 0;
    while at < compact.len() {
        let rest = &compact[at..];
        let prefix = |pos: usize| {
            scopes
                .iter()
                .find(|(s, e, _)| (*s..*e).contains(&pos))
                .map_or(String::new(), |(_, _, p)| p.clone())
        };
        if let Some(tail) = rest.strip_prefix("resource(\"") {
            let path = &tail[..tail.find('"').unwrap()];
            resource = Some((at, format!("{}{path}", prefix(at))));
            at += "resource(\"".len() + path.len();
        } else if let Some(tail) = rest.strip_prefix(".route(\"") {
            let path = &tail[..tail.find('"').unwrap()];
            let after = &tail[path.len()..];
            let m_start = after.find("web::").unwrap() + "web::".len();
            let method = &after[m_start..m_start + after[m_start..].find('(').unwrap()];
            // web::route() accepts any method; the WeChat endpoint answers POST.
            let method = if method == "route" { "post" } else { method };
            routes.insert((method.to_owned(), format!("{}{path}", prefix(at))));
            at += ".route(\"".len() + path.len();
        } else if let Some(tail) = rest.strip_prefix(".route(web::") {
            let method = &tail[..tail.find('(').unwrap()];
            if let Some((_, path)) = &resource {
                routes.insert((method.to_owned(), path.clone()));
            }
            at += ".route(web::".len();
        } else {
            at += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    routes
}

#[tokio::test]
async fn the_document_lists_every_route() {
    let app = spawn_app().await;
    let res = app.get("/api/openapi.json").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc: serde_json::Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["info"]["title"], "tokenvault");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    for scheme in ["api_key", "session", "csrf"] {
        assert!(
            doc["components"]["securitySchemes"][scheme].is_object(),
            "security scheme {scheme} missing"
        );
    }

    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                documented.insert((method.clone(), path.clone()));
            }
        }
    }
    let registered = registered_routes();
    assert!(registered.len() >= 30, "parsed only {registered:?}");
    assert!(registered.contains(&("get".into(), "/api/v1/apps/{appid}/token".into())));
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the OpenAPI document: {undocumented:?}"
    );
    let unrouted: Vec<_> = documented.difference(&registered).collect();
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );

    // Every operation describes its errors as problem+json.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                op["responses"]["404"]["content"]["application/problem+json"].is_object(),
                "{method} {path} lacks its problem+json 404"
            );
        }
    }
}

#[tokio::test]
async fn the_reference_page_shows_every_path() {
    let app = spawn_app().await;
    let doc: serde_json::Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let res = app.get("/api/docs").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = res.text().await.unwrap();
    for path in doc["paths"].as_object().unwrap().keys() {
        assert!(
            page.contains(&format!("<code>{path}</code>")),
            "{path} missing"
        );
    }
    // No script, no inline style, nothing from another origin.
    assert!(!page.contains("<script"));
    assert!(!page.contains("<style"));
    assert!(!page.contains("style="));
    assert!(!page.contains("https://cdn"));
    assert!(page.contains("href=\"/api/docs.css\""));

    let css = app.get("/api/docs.css").await;
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

#[test]
fn the_page_escapes_text() {
    // The page is a template: whatever text the document holds is escaped.
    let mut doc = tokenvault::api::openapi::document();
    doc.info.description = Some("<a href=\"x\">'&'</a>".into());
    let page = tokenvault::api::docs_page::render(&doc);
    assert!(page.contains("&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;&#x2f;a&gt;"));
    assert!(!page.contains("<a href=\"x\">"));
}

/// Inputs the schema check found answering 500 once; each must be a 4xx now.
#[tokio::test]
async fn inputs_the_schema_check_found_answer_with_a_client_error() {
    let app = spawn_app().await;
    let owner = app.signup("Fuzzed", "fuzz@example.com").await;
    for path in [
        "/api/v1/apps?after=%00",
        "/api/v1/apps?after=%C2%B0%F0%B3%BA%AE%C3%A4%000",
    ] {
        let res = owner.get(path).await;
        assert_eq!(res.status(), 400, "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["code"], "invalid_query", "{path}");
    }
    let res = owner.get("/api/v1/apps?after=wx0123456789abcdef").await;
    assert_eq!(res.status(), 200);
}

/// Every property the `Problem` schema names, following `allOf` and
/// references (the token fields are flattened into it).
fn problem_properties(doc: &serde_json::Value) -> Vec<String> {
    fn walk(doc: &serde_json::Value, schema: &serde_json::Value, out: &mut Vec<String>) {
        if let Some(r) = schema["$ref"].as_str() {
            let name = r.rsplit('/').next().unwrap();
            walk(doc, &doc["components"]["schemas"][name], out);
        }
        if let Some(props) = schema["properties"].as_object() {
            out.extend(props.keys().cloned());
        }
        for key in ["allOf", "oneOf", "anyOf"] {
            for part in schema[key].as_array().into_iter().flatten() {
                walk(doc, part, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(doc, &doc["components"]["schemas"]["Problem"], &mut out);
    out
}

/// The error bodies are written by the type the document describes: each
/// field an answer carries is one the `Problem` schema names, and the
/// problem type is `about:blank` (the `code` says what went wrong).
#[tokio::test]
async fn error_answers_are_what_the_problem_schema_describes() {
    let app = spawn_app().await;
    let doc: serde_json::Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let known = problem_properties(&doc);
    for field in [
        "type", "title", "status", "code", "detail", "errors", "reason", "errcode",
    ] {
        assert!(known.iter().any(|k| k == field), "{field} not in {known:?}");
    }
    let invalid = app
        .client
        .post(format!("{}/api/v1/signup", app.address))
        .json(&serde_json::json!({ "organization": "", "email": "not an email", "password": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 422);
    let missing = app.get("/api/v1/no-such-thing").await;
    for res in [invalid, missing] {
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["type"], "about:blank", "{body}");
        for key in body.as_object().unwrap().keys() {
            assert!(known.contains(key), "{key} of {body} is not in the schema");
        }
    }
}
