//! Pages about the service itself: the live health page (everyone signed
//! in), the operator overview across tenants (operators only), and the
//! page for unknown paths.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest as _, HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use minijinja::context;
use minijinja::value::Serde;
use serde::Serialize;

use super::{Page, redirect};
use crate::auth::Principal;
use crate::domain::{ErrorClass, Role, TenantId};
use crate::error::ApiError;
use crate::http::identity::client_ip;
use crate::service::activity::{self, ServiceActivity};
use crate::service::operator::{self, FailingApp, HealthCounts, OutgoingMail, TenantOverview};
use crate::service::{Actor, health};
use crate::state::AppState;
use crate::upstream::errcodes::Errcode;

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn is_operator(page: &Page) -> bool {
    page.user.as_ref().is_some_and(|u| u.role == Role::Operator)
}

/// The signed-in person of `page`, acting from the request's address.
fn actor(req: &HttpRequest, page: &Page) -> Result<Actor, ApiError> {
    let user = page
        .user
        .clone()
        .ok_or(ApiError::Unauthenticated("sign in"))?;
    Ok(Actor {
        principal: Principal::Session(user),
        client: client_ip(req),
    })
}

/// GET /status: the service's health for anyone signed in, updated live
/// by `app.js` from `GET /api/v1/service-health`.
pub async fn status_page(req: HttpRequest, page: Page, state: web::Data<AppState>) -> HttpResponse {
    let health = match actor(&req, &page) {
        Ok(actor) => {
            async {
                let health = health::service_health(&state, &actor).await?;
                let activity = activity::last_day(&state, &actor).await?;
                Ok((health, activity))
            }
            .await
        }
        Err(e) => Err(e),
    };
    match health {
        Ok((health, activity)) => {
            let seen: Vec<_> = health
                .replicas
                .items
                .iter()
                .map(|r| context! { last_seen => when(r.last_seen_at), started => when(r.started_at) })
                .collect();
            page.render(
                StatusCode::OK,
                "status.html",
                context! {
                    h => Serde(&health),
                    checked => when(health.checked_at),
                    seen,
                    operator => is_operator(&page),
                    ..charts(&activity)
                },
            )
        }
        Err(e) => page.error(&e),
    }
}

/// The service's charts of the last 24 hours, for the templates.
fn charts(activity: &ServiceActivity) -> minijinja::Value {
    context! {
        rate_chart => Serde(super::activity::rate(activity.since, activity::STRIDE, &activity.buckets)),
        percentile_chart => Serde(super::activity::percentiles(activity.since, &activity.latency)),
    }
}

/// A tenant as the operator page lists it.
#[derive(Serialize)]
struct TenantLine {
    id: TenantId,
    app_limit: Option<i32>,
    name: String,
    created_at: String,
    members: i64,
    apps: i64,
    health: HealthCounts,
}

impl From<TenantOverview> for TenantLine {
    fn from(t: TenantOverview) -> Self {
        Self {
            id: t.tenant.id,
            app_limit: t.tenant.app_limit,
            name: t.tenant.name,
            created_at: when(t.tenant.created_at),
            members: t.tenant.members,
            apps: t.tenant.apps,
            health: t.health,
        }
    }
}

/// A failing app as the operator page lists it (no secret, no token).
#[derive(Serialize)]
struct FailingLine {
    tenant: String,
    appid: String,
    name: String,
    health: &'static str,
    failure_streak: i32,
    errcode: Option<i32>,
    error_class: Option<&'static str>,
    last_attempt_at: Option<String>,
    explanation: Option<&'static Errcode>,
}

impl From<FailingApp> for FailingLine {
    fn from(f: FailingApp) -> Self {
        Self {
            health: f.health.as_str(),
            explanation: f.explanation,
            tenant: f.app.tenant_name,
            appid: f.app.appid,
            name: f.app.name,
            failure_streak: f.app.failure_streak,
            errcode: f.app.last_errcode,
            error_class: f.app.last_error_class.map(ErrorClass::as_str),
            last_attempt_at: f.app.last_attempt_at.map(when),
        }
    }
}

/// An outgoing mail as the operator page lists it: headers only.
#[derive(Serialize)]
struct MailLine {
    recipient: String,
    subject: String,
    kind: String,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    created_at: String,
    sent_at: Option<String>,
}

impl From<OutgoingMail> for MailLine {
    fn from(m: OutgoingMail) -> Self {
        Self {
            recipient: m.recipient,
            subject: m.subject,
            kind: m.kind,
            status: m.status,
            attempts: m.attempts,
            last_error: m.last_error,
            created_at: when(m.created_at),
            sent_at: m.sent_at.map(when),
        }
    }
}

/// GET /operator: every tenant with its apps' health and the failing apps
/// across tenants, for operators of the service; refused to everyone else.
pub async fn operator_page(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
) -> HttpResponse {
    let overview = match actor(&req, &page) {
        Ok(actor) => {
            async {
                let overview = operator::overview(&state, &actor).await?;
                let activity = activity::last_day(&state, &actor).await?;
                Ok((overview, activity))
            }
            .await
        }
        Err(e) => Err(e),
    };
    let (overview, activity) = match overview {
        Ok(found) => found,
        Err(e) => return page.error(&e),
    };
    let lines: Vec<TenantLine> = overview.tenants.into_iter().map(Into::into).collect();
    let failing: Vec<FailingLine> = overview.failing.into_iter().map(Into::into).collect();
    let app_total: i64 = lines.iter().map(|t| t.apps).sum();
    let mails: Vec<MailLine> = overview.mails.into_iter().map(Into::into).collect();
    page.render(
        StatusCode::OK,
        "operator.html",
        context! {
            tenants => Serde(&lines),
            total => Serde(&overview.total),
            app_total,
            failing => Serde(&failing),
            failing_capped => overview.failing_capped,
            mails => Serde(&mails),
            default_app_limit => state.settings.max_apps_per_tenant,
            ..charts(&activity)
        },
    )
}

/// Paths that belong to the API and other machine clients: their unknown
/// paths answer problem+json whatever the client accepts.
fn is_api_path(path: &str) -> bool {
    ["/api/", "/cgi-bin/", "/static/"]
        .iter()
        .any(|p| path.starts_with(p))
        || matches!(path, "/api" | "/healthz" | "/readyz" | "/metrics")
}

/// Whether the client asked for a web page (browsers send `text/html`).
fn wants_html(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// Every unknown path: an HTML page in the visitor's language for
/// browsers, problem+json for the API and for clients that did not ask
/// for HTML.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    if is_api_path(req.path()) || !wants_html(&req) {
        return crate::api::not_found(&req);
    }
    match Page::extract(&req).await {
        Ok(page) => page.not_found(),
        Err(e) => actix_web::ResponseError::error_response(&e),
    }
}

/// GET / for operators and the dashboard they cannot use: their overview.
pub fn operator_home(page: &Page) -> Option<HttpResponse> {
    is_operator(page).then(|| redirect("/operator"))
}
