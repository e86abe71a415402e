//! The API reference page (served at `/api/docs` by
//! `super::openapi::reference_page`): plain HTML rendered on the server from
//! the OpenAPI document through the template `web/templates/api_docs.html`
//! (minijinja, which escapes every value it writes), with its stylesheet at
//! `/api/docs.css` (no script, no inline style, nothing from a CDN). This
//! module turns a document into the template's context.

use actix_web::HttpResponse;
use actix_web::http::header::{self, HeaderValue};
use minijinja::Environment;
use minijinja::value::Serde;
use serde::Serialize;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ArrayItems, Schema};
use utoipa::openapi::{OpenApi, RefOr, Required};

const STYLESHEET: &str = include_str!("../../web/static/api-docs.css");
const TEMPLATE: &str = include_str!("../../web/templates/api_docs.html");

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

/// Render the whole reference page of `doc`.
pub fn render(doc: &OpenApi) -> String {
    let mut env = Environment::new();
    // Auto-escaping is chosen by the name: `.html` escapes everything.
    let rendered = env
        .add_template("api_docs.html", TEMPLATE)
        .and_then(|()| env.get_template("api_docs.html"))
        .and_then(|template| template.render(Serde(Reference::of(doc))));
    rendered.unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot render the API reference page");
        "The API reference page cannot be shown; see /api/openapi.json.".into()
    })
}

/// The page's context: the document, in the order and shape it is shown.
#[derive(Serialize)]
struct Reference<'a> {
    title: &'a str,
    version: &'a str,
    description: Option<&'a str>,
    operations: Vec<OperationView<'a>>,
    security: Vec<SchemeView>,
    schemas: Vec<SchemaView<'a>>,
}

/// One operation.
#[derive(Serialize)]
struct OperationView<'a> {
    anchor: String,
    method: &'static str,
    /// The path's segments (the template joins them with `/`).
    path: Vec<&'a str>,
    summary: Option<&'a str>,
    description: Option<&'a str>,
    auth: String,
    parameters: Vec<ParameterView<'a>>,
    request: Vec<BodyView<'a>>,
    responses: Vec<ResponseView<'a>>,
}

#[derive(Serialize)]
struct ParameterView<'a> {
    name: &'a str,
    location: &'static str,
    type_name: String,
    required: bool,
    description: &'a str,
}

/// A body of one media type.
#[derive(Serialize)]
struct BodyView<'a> {
    media: &'a str,
    schema: Vec<TypePart>,
}

#[derive(Serialize)]
struct ResponseView<'a> {
    status: &'a str,
    description: &'a str,
    bodies: Vec<BodyView<'a>>,
}

/// A security scheme.
#[derive(Serialize)]
struct SchemeView {
    name: String,
    description: String,
}

/// A named schema: a table of fields, a list of values, or a type.
#[derive(Serialize)]
struct SchemaView<'a> {
    name: &'a str,
    description: Option<&'a str>,
    fields: Vec<FieldView<'a>>,
    values: Vec<String>,
    schema: Vec<TypePart>,
}

#[derive(Serialize)]
struct FieldView<'a> {
    name: &'a str,
    schema: Vec<TypePart>,
    required: bool,
    description: String,
}

/// A piece of a type as shown: text, or a link to a named schema.
#[derive(Serialize)]
struct TypePart {
    text: String,
    link: Option<String>,
}

impl TypePart {
    fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            link: None,
        }
    }

    fn link(name: &str) -> Self {
        Self {
            text: String::new(),
            link: Some(name.to_owned()),
        }
    }
}

impl<'a> Reference<'a> {
    fn of(doc: &'a OpenApi) -> Self {
        let operations = collect(doc)
            .into_iter()
            .map(|(method, path, op)| OperationView::of(method, path, op))
            .collect();
        Self {
            title: &doc.info.title,
            version: &doc.info.version,
            description: doc.info.description.as_deref(),
            operations,
            security: security(doc),
            schemas: schemas(doc),
        }
    }
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

impl<'a> OperationView<'a> {
    fn of(method: &'static str, path: &'a str, op: &'a Operation) -> Self {
        let request = op.request_body.as_ref().map_or_else(Vec::new, |body| {
            body.content
                .iter()
                .map(|(media, c)| BodyView::of(media, c.schema.as_ref()))
                .collect()
        });
        let responses = op
            .responses
            .responses
            .iter()
            .filter_map(|(status, response)| match response {
                RefOr::T(response) => Some(ResponseView {
                    status,
                    description: &response.description,
                    bodies: response
                        .content
                        .iter()
                        .map(|(media, c)| BodyView::of(media, c.schema.as_ref()))
                        .collect(),
                }),
                RefOr::Ref(_) => None,
            })
            .collect();
        Self {
            anchor: anchor(method, path),
            method,
            path: path.split('/').skip(1).collect(),
            summary: op.summary.as_deref(),
            description: op.description.as_deref(),
            auth: auth(op),
            parameters: parameters(op),
            request,
            responses,
        }
    }
}

impl<'a> BodyView<'a> {
    fn of(media: &'a str, schema: Option<&RefOr<Schema>>) -> Self {
        Self {
            media,
            schema: schema.map(type_parts).unwrap_or_default(),
        }
    }
}

/// The security requirements of `op`, as names joined by "+" and "or".
fn auth(op: &Operation) -> String {
    let names: Vec<String> = op
        .security
        .iter()
        .flatten()
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

fn parameters(op: &Operation) -> Vec<ParameterView<'_>> {
    op.parameters
        .iter()
        .flatten()
        .map(|p| ParameterView {
            name: &p.name,
            location: match p.parameter_in {
                ParameterIn::Path => "path",
                ParameterIn::Query => "query",
                ParameterIn::Header => "header",
                ParameterIn::Cookie => "cookie",
            },
            type_name: p.schema.as_ref().map(type_name).unwrap_or_default(),
            required: matches!(p.required, Required::True),
            description: p.description.as_deref().unwrap_or_default(),
        })
        .collect()
}

fn security(doc: &OpenApi) -> Vec<SchemeView> {
    let Some(components) = &doc.components else {
        return Vec::new();
    };
    components
        .security_schemes
        .iter()
        .map(|(name, scheme)| SchemeView {
            name: name.clone(),
            description: serde_json::to_value(scheme)
                .ok()
                .and_then(|v| v.get("description")?.as_str().map(String::from))
                .unwrap_or_default(),
        })
        .collect()
}

fn schemas(doc: &OpenApi) -> Vec<SchemaView<'_>> {
    let Some(components) = &doc.components else {
        return Vec::new();
    };
    components
        .schemas
        .iter()
        .map(|(name, schema)| SchemaView::of(name, schema))
        .collect()
}

impl<'a> SchemaView<'a> {
    fn of(name: &'a str, schema: &'a RefOr<Schema>) -> Self {
        let mut view = Self {
            name,
            description: None,
            fields: Vec::new(),
            values: Vec::new(),
            schema: Vec::new(),
        };
        let RefOr::T(Schema::Object(obj)) = schema else {
            view.schema = type_parts(schema);
            return view;
        };
        view.description = obj.description.as_deref();
        if obj.properties.is_empty() {
            view.values = obj
                .enum_values
                .iter()
                .flatten()
                .map(ToString::to_string)
                .collect();
            if view.values.is_empty() {
                view.schema = type_parts(schema);
            }
            return view;
        }
        view.fields = obj
            .properties
            .iter()
            .map(|(field, prop)| FieldView {
                name: field,
                schema: type_parts(prop),
                required: obj.required.contains(field),
                description: match prop {
                    RefOr::T(Schema::Object(o)) => o.description.clone().unwrap_or_default(),
                    _ => String::new(),
                },
            })
            .collect();
        view
    }
}

fn ref_name(r: &utoipa::openapi::Ref) -> &str {
    r.ref_location.rsplit('/').next().unwrap_or(&r.ref_location)
}

/// A schema's type as shown, with links to named schemas.
fn type_parts(schema: &RefOr<Schema>) -> Vec<TypePart> {
    match schema {
        RefOr::Ref(r) => vec![TypePart::link(ref_name(r))],
        RefOr::T(Schema::Array(a)) => match &a.items {
            ArrayItems::RefOrSchema(item) => {
                let mut parts = vec![TypePart::text("array of ")];
                parts.extend(type_parts(item));
                parts
            }
            ArrayItems::False => vec![TypePart::text("array")],
        },
        RefOr::T(Schema::OneOf(o)) => joined(&o.items, " or "),
        RefOr::T(Schema::AnyOf(o)) => joined(&o.items, " or "),
        RefOr::T(Schema::AllOf(o)) => joined(&o.items, " and "),
        other @ RefOr::T(_) => vec![TypePart::text(type_name(other))],
    }
}

fn joined(items: &[RefOr<Schema>], separator: &str) -> Vec<TypePart> {
    let mut parts = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            parts.push(TypePart::text(separator));
        }
        parts.extend(type_parts(item));
    }
    parts
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_of_this_services_document_renders() {
        let doc = crate::api::openapi::document();
        let page = render(&doc);
        assert!(page.starts_with("<!doctype html>"), "{page}");
        assert!(page.contains("<code>/api/v1/apps/{appid}/token</code>"));
        assert!(page.contains("id=\"schema-Problem\""));
        assert_eq!(page.matches("<h1>").count(), 1);
    }
}
