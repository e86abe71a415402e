//! The API reference page at `/api/docs`: plain HTML rendered on the server
//! from the same OpenAPI document, with its stylesheet at `/api/docs.css`
//! (no script, no inline style, nothing from a CDN).

use std::fmt::Write as _;
use std::sync::LazyLock;

use actix_web::HttpResponse;
use actix_web::http::header::{self, HeaderValue};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ArrayItems, Schema};
use utoipa::openapi::{OpenApi, RefOr, Required};

const STYLESHEET: &str = include_str!("../../web/static/api-docs.css");

static PAGE: LazyLock<String> = LazyLock::new(|| render(&super::openapi::document()));

/// The API reference, readable in a browser.
#[utoipa::path(
    get,
    path = "/api/docs",
    tag = "service",
    security(()),
    responses((status = 200, description = "The API reference page", content_type = "text/html", body = String)),
)]
pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ))
        .body(PAGE.as_str())
}

/// The reference page's stylesheet.
#[utoipa::path(
    get,
    path = "/api/docs.css",
    tag = "service",
    security(()),
    responses((status = 200, description = "The reference page's stylesheet", content_type = "text/css", body = String)),
)]
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        ))
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        ))
        .body(STYLESHEET)
}

/// Escape text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Render the whole reference page.
pub fn render(doc: &OpenApi) -> String {
    let mut html = String::new();
    let title = escape(&doc.info.title);
    let version = escape(&doc.info.version);
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} API reference</title>\n\
         <link rel=\"stylesheet\" href=\"/api/docs.css\">\n</head>\n<body>\n\
         <header><h1>{title} API reference <span class=\"version\">v{version}</span></h1>\n"
    );
    if let Some(description) = &doc.info.description {
        let _ = writeln!(html, "<p>{}</p>", escape(description));
    }
    html.push_str(
        "<p>Machine-readable: <a href=\"/api/openapi.json\">/api/openapi.json</a> (OpenAPI 3).</p>\n</header>\n",
    );

    let operations = collect(doc);
    html.push_str("<nav><h2>Endpoints</h2>\n<ul>\n");
    for (method, path, op) in &operations {
        let _ = writeln!(
            html,
            "<li><a href=\"#{anchor}\"><span class=\"method {m}\">{M}</span> <code>{path}</code></a> {summary}</li>",
            anchor = escape(&anchor(method, path)),
            m = escape(method),
            M = escape(&method.to_uppercase()),
            path = escape(path),
            summary = escape(op.summary.as_deref().unwrap_or_default()),
        );
    }
    html.push_str("</ul>\n</nav>\n<main>\n");
    security_section(&mut html, doc);
    for (method, path, op) in &operations {
        operation_section(&mut html, method, path, op);
    }
    schemas_section(&mut html, doc);
    html.push_str("</main>\n</body>\n</html>\n");
    html
}

fn collect(doc: &OpenApi) -> Vec<(&'static str, &str, &Operation)> {
    let mut out = Vec::new();
    for (path, item) in &doc.paths.paths {
        for (method, op) in [
            ("get", &item.get),
            ("post", &item.post),
            ("put", &item.put),
            ("patch", &item.patch),
            ("delete", &item.delete),
        ] {
            if let Some(op) = op {
                out.push((method, path.as_str(), op));
            }
        }
    }
    out
}

fn anchor(method: &str, path: &str) -> String {
    let mut a = format!("{method}-");
    for c in path.chars() {
        a.push(if c.is_ascii_alphanumeric() { c } else { '-' });
    }
    a
}

fn security_section(html: &mut String, doc: &OpenApi) {
    let Some(components) = &doc.components else {
        return;
    };
    html.push_str("<section id=\"authentication\"><h2>Authentication</h2>\n<dl>\n");
    for (name, scheme) in &components.security_schemes {
        let description = serde_json::to_value(scheme)
            .ok()
            .and_then(|v| {
                v.get("description")
                    .and_then(|d| d.as_str().map(String::from))
            })
            .unwrap_or_default();
        let _ = writeln!(
            html,
            "<dt><code>{}</code></dt><dd>{}</dd>",
            escape(name),
            escape(&description)
        );
    }
    html.push_str("</dl>\n</section>\n");
}

fn operation_section(html: &mut String, method: &str, path: &str, op: &Operation) {
    let _ = writeln!(
        html,
        "<section class=\"operation\" id=\"{anchor}\">\n<h2><span class=\"method {m}\">{M}</span> <code>{path}</code></h2>",
        anchor = escape(&anchor(method, path)),
        m = escape(method),
        M = escape(&method.to_uppercase()),
        path = escape(path),
    );
    if let Some(summary) = &op.summary {
        let _ = writeln!(html, "<p class=\"summary\">{}</p>", escape(summary));
    }
    if let Some(description) = &op.description {
        let _ = writeln!(html, "<p>{}</p>", escape(description));
    }
    let auth = match &op.security {
        Some(reqs) => {
            let names: Vec<String> = reqs
                .iter()
                .filter_map(|r| {
                    let v = serde_json::to_value(r).ok()?;
                    let keys: Vec<String> = v.as_object()?.keys().cloned().collect();
                    (!keys.is_empty()).then(|| keys.join(" + "))
                })
                .collect();
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(" or ")
            }
        }
        None => "none".to_owned(),
    };
    let _ = writeln!(
        html,
        "<p class=\"auth\">Authentication: {}</p>",
        escape(&auth)
    );

    parameters_table(html, op);

    if let Some(body) = &op.request_body {
        html.push_str("<h3>Request body</h3>\n<ul>\n");
        for (media, content) in &body.content {
            let _ = writeln!(
                html,
                "<li><code>{}</code>: {}</li>",
                escape(media),
                schema_link(content.schema.as_ref())
            );
        }
        html.push_str("</ul>\n");
    }

    html.push_str(
        "<h3>Responses</h3>\n<table>\n<tr><th>Status</th><th>Description</th><th>Body</th></tr>\n",
    );
    for (status, response) in &op.responses.responses {
        let RefOr::T(response) = response else {
            continue;
        };
        let bodies: Vec<String> = response
            .content
            .iter()
            .map(|(media, c)| {
                format!(
                    "<code>{}</code> {}",
                    escape(media),
                    schema_link(c.schema.as_ref())
                )
            })
            .collect();
        let _ = writeln!(
            html,
            "<tr><td class=\"status s{}\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(&status[..1]),
            escape(status),
            escape(&response.description),
            bodies.join("<br>"),
        );
    }
    html.push_str("</table>\n</section>\n");
}

fn parameters_table(html: &mut String, op: &Operation) {
    let Some(params) = op.parameters.as_ref().filter(|p| !p.is_empty()) else {
        return;
    };
    html.push_str("<h3>Parameters</h3>\n<table>\n<tr><th>Name</th><th>In</th><th>Type</th><th>Required</th><th>Description</th></tr>\n");
    for p in params {
        let location = match p.parameter_in {
            ParameterIn::Path => "path",
            ParameterIn::Query => "query",
            ParameterIn::Header => "header",
            ParameterIn::Cookie => "cookie",
        };
        let _ = writeln!(
            html,
            "<tr><td><code>{}</code></td><td>{location}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&p.name),
            escape(&p.schema.as_ref().map(type_name).unwrap_or_default()),
            if matches!(p.required, Required::True) {
                "yes"
            } else {
                "no"
            },
            escape(p.description.as_deref().unwrap_or_default()),
        );
    }
    html.push_str("</table>\n");
}

fn schemas_section(html: &mut String, doc: &OpenApi) {
    let Some(components) = &doc.components else {
        return;
    };
    html.push_str("<section id=\"schemas\"><h2>Schemas</h2>\n");
    for (name, schema) in &components.schemas {
        let _ = writeln!(
            html,
            "<section class=\"schema\" id=\"schema-{id}\"><h3>{name}</h3>",
            id = escape(name),
            name = escape(name),
        );
        match schema {
            RefOr::T(Schema::Object(obj)) if !obj.properties.is_empty() => {
                if let Some(d) = &obj.description {
                    let _ = writeln!(html, "<p>{}</p>", escape(d));
                }
                html.push_str("<table>\n<tr><th>Field</th><th>Type</th><th>Required</th><th>Description</th></tr>\n");
                for (field, prop) in &obj.properties {
                    let description = match prop {
                        RefOr::T(Schema::Object(o)) => o.description.clone().unwrap_or_default(),
                        _ => String::new(),
                    };
                    let _ = writeln!(
                        html,
                        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        escape(field),
                        type_html(prop),
                        if obj.required.contains(field) {
                            "yes"
                        } else {
                            "no"
                        },
                        escape(&description),
                    );
                }
                html.push_str("</table>\n");
            }
            RefOr::T(Schema::Object(obj)) => {
                if let Some(d) = &obj.description {
                    let _ = writeln!(html, "<p>{}</p>", escape(d));
                }
                let values: Vec<String> = obj
                    .enum_values
                    .iter()
                    .flatten()
                    .map(|v| format!("<code>{}</code>", escape(&v.to_string())))
                    .collect();
                if values.is_empty() {
                    let _ = writeln!(html, "<p>{}</p>", type_html(schema));
                } else {
                    let _ = writeln!(html, "<p>One of {}</p>", values.join(", "));
                }
            }
            other => {
                let _ = writeln!(html, "<p>{}</p>", type_html(other));
            }
        }
        html.push_str("</section>\n");
    }
    html.push_str("</section>\n");
}

fn ref_name(r: &utoipa::openapi::Ref) -> &str {
    r.ref_location.rsplit('/').next().unwrap_or(&r.ref_location)
}

fn schema_link(schema: Option<&RefOr<Schema>>) -> String {
    schema.map(type_html).unwrap_or_default()
}

/// A schema's type as HTML, with links to named schemas.
fn type_html(schema: &RefOr<Schema>) -> String {
    match schema {
        RefOr::Ref(r) => {
            let name = escape(ref_name(r));
            format!("<a href=\"#schema-{name}\">{name}</a>")
        }
        RefOr::T(Schema::Array(a)) => match &a.items {
            ArrayItems::RefOrSchema(item) => format!("array of {}", type_html(item)),
            ArrayItems::False => "array".to_owned(),
        },
        RefOr::T(Schema::OneOf(o)) => alternatives(&o.items),
        RefOr::T(Schema::AnyOf(o)) => alternatives(&o.items),
        RefOr::T(Schema::AllOf(o)) => o
            .items
            .iter()
            .map(type_html)
            .collect::<Vec<_>>()
            .join(" and "),
        other @ RefOr::T(_) => escape(&type_name(other)),
    }
}

fn alternatives(items: &[RefOr<Schema>]) -> String {
    items.iter().map(type_html).collect::<Vec<_>>().join(" or ")
}

/// A schema's type as plain text.
fn type_name(schema: &RefOr<Schema>) -> String {
    match schema {
        RefOr::Ref(r) => ref_name(r).to_owned(),
        RefOr::T(Schema::Object(o)) => {
            let v = serde_json::to_value(&o.schema_type).unwrap_or_default();
            let base = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(" or "),
                _ => "any".to_owned(),
            };
            match &o.format {
                Some(f) => {
                    let f = serde_json::to_value(f).unwrap_or_default();
                    format!("{base} ({})", f.as_str().unwrap_or_default())
                }
                None => base,
            }
        }
        RefOr::T(Schema::Array(_)) => "array".to_owned(),
        RefOr::T(_) => "any".to_owned(),
    }
}
