//! Pages about the service itself: the live health page (everyone signed
//! in), the operator overview across tenants (operators only), and the
//! page for unknown paths.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest as _, HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use minijinja::context;
use minijinja::value::Serde;
use serde::Serialize;

use super::{Page, redirect, redirect_with_flash};
use crate::api::service_health;
use crate::db;
use crate::domain::{Role, TenantId};
use crate::error::ApiError;
use crate::refresh::policy::{self, Health};
use crate::state::AppState;
use crate::upstream::ErrorClass;
use crate::upstream::errcodes::{self, Errcode};

/// Most failing apps the operator page lists.
const MAX_FAILING_LISTED: i64 = 200;

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn is_operator(page: &Page) -> bool {
    page.user.as_ref().is_some_and(|u| u.role == Role::Operator)
}

/// GET /status: the service's health for anyone signed in, updated live
/// by `app.js` from `GET /api/v1/service-health`.
pub async fn status_page(page: Page, state: web::Data<AppState>) -> HttpResponse {
    if page.user.is_none() {
        return page.error(&ApiError::Unauthenticated("sign in"));
    }
    let operator = is_operator(&page);
    match service_health::snapshot(&state, operator).await {
        Ok(health) => {
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
                    operator,
                },
            )
        }
        Err(e) => page.error(&e),
    }
}

/// Health counts of one tenant's apps.
#[derive(Debug, Default, Clone, Serialize)]
struct HealthCounts {
    healthy: i64,
    refreshing: i64,
    degraded: i64,
    failing: i64,
    disabled: i64,
}

impl HealthCounts {
    fn add(&mut self, health: Health, n: i64) {
        let slot = match health {
            Health::Healthy => &mut self.healthy,
            Health::Refreshing => &mut self.refreshing,
            Health::Degraded => &mut self.degraded,
            Health::Failing => &mut self.failing,
            Health::Disabled => &mut self.disabled,
        };
        *slot += n;
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

/// A failing app as the operator page lists it (no secret, no token).
#[derive(Serialize)]
struct FailingLine {
    tenant: String,
    appid: String,
    name: String,
    health: &'static str,
    failure_streak: i32,
    errcode: Option<i32>,
    error_class: Option<String>,
    last_attempt_at: Option<String>,
    explanation: Option<&'static Errcode>,
}

fn class_of(name: Option<&str>) -> Option<ErrorClass> {
    name.map(|c| match c {
        "quota" => ErrorClass::Quota,
        "configuration" => ErrorClass::Configuration,
        "bug" => ErrorClass::Bug,
        _ => ErrorClass::Transient,
    })
}

/// GET /operator: every tenant with its apps' health and the failing apps
/// across tenants, for operators of the service; refused to everyone else.
pub async fn operator_page(page: Page, state: web::Data<AppState>) -> HttpResponse {
    match &page.user {
        None => return page.error(&ApiError::Unauthenticated("sign in")),
        Some(u) if u.role != Role::Operator => {
            return page.error(&ApiError::Forbidden(
                "only operators of the service may see this",
            ));
        }
        Some(_) => {}
    }
    let loaded = tokio::try_join!(
        crate::service::tenants::health_rows(&state),
        db::ops::health_groups(&state.pool),
        db::ops::failing_apps(&state.pool, MAX_FAILING_LISTED),
    );
    let (tenants, groups, failing) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return page.error(&e.into()),
    };
    let mut counts: BTreeMap<TenantId, HealthCounts> = BTreeMap::new();
    let mut total = HealthCounts::default();
    for g in &groups {
        let health = policy::health(
            g.enabled,
            g.token_valid,
            g.failing,
            class_of(g.last_error_class.as_deref()),
        );
        counts.entry(g.tenant_id).or_default().add(health, g.apps);
        total.add(health, g.apps);
    }
    let lines: Vec<TenantLine> = tenants
        .into_iter()
        .map(|t| TenantLine {
            health: counts.remove(&t.id).unwrap_or_default(),
            id: t.id,
            app_limit: t.app_limit,
            name: t.name,
            created_at: when(t.created_at),
            members: t.members,
            apps: t.apps,
        })
        .collect();
    let failing: Vec<FailingLine> = failing
        .into_iter()
        .map(|a| {
            let class = class_of(a.last_error_class.as_deref());
            FailingLine {
                health: policy::health(true, a.token_valid, a.failure_streak, class).as_str(),
                tenant: a.tenant_name,
                appid: a.appid,
                name: a.name,
                failure_streak: a.failure_streak,
                explanation: a.last_errcode.and_then(|c| errcodes::explain(i64::from(c))),
                errcode: a.last_errcode,
                error_class: a.last_error_class,
                last_attempt_at: a.last_attempt_at.map(when),
            }
        })
        .collect();
    let app_total: i64 = lines.iter().map(|t| t.apps).sum();
    page.render(
        StatusCode::OK,
        "operator.html",
        context! {
            tenants => Serde(&lines),
            total => Serde(&total),
            app_total,
            failing => Serde(&failing),
            failing_capped => failing.len() >= usize::try_from(MAX_FAILING_LISTED).unwrap_or(usize::MAX),
            default_app_limit => state.settings.max_apps_per_tenant,
        },
    )
}

/// The app-limit form of one tenant on the operator page.
#[derive(serde::Deserialize)]
pub struct AppLimitForm {
    #[serde(default)]
    csrf_token: String,
    /// A number, or empty for the service's default.
    #[serde(default)]
    app_limit: String,
}

/// POST /operator/tenants/{id}/app-limit: an operator sets the tenant's
/// own app limit, or (empty) gives it the default again; audited.
pub async fn set_app_limit(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<AppLimitForm>,
) -> HttpResponse {
    use super::pages::{FormRefusal, form_session};
    let form = form.into_inner();
    let operator = match form_session(&page, &form.csrf_token) {
        Ok(user) => user,
        Err(FormRefusal::SignedOut) => return super::pages::signed_out("/operator"),
        Err(FormRefusal::Stale) => {
            return redirect_with_flash("/operator", "error", "flash_stale_form", "");
        }
    };
    if operator.role != Role::Operator {
        return page.error(&ApiError::Forbidden(
            "only operators of the service may see this",
        ));
    }
    let Ok(tenant_id) = path.parse::<TenantId>() else {
        return page.not_found();
    };
    let text = form.app_limit.trim();
    let limit = if text.is_empty() {
        None
    } else {
        match text.parse::<i32>() {
            Ok(n) if (0..=crate::service::tenants::MAX_APP_LIMIT).contains(&n) => Some(n),
            _ => return redirect_with_flash("/operator", "error", "ops_app_limit_invalid", ""),
        }
    };
    let actor = crate::service::Actor {
        principal: crate::auth::Principal::Session(operator.clone()),
        client: crate::http::identity::client_ip(&req),
    };
    let by = crate::service::tenants::LimitSetter::Operator(&actor);
    match crate::service::tenants::set_app_limit(&state.pool, by, tenant_id, limit).await {
        Ok(Some(tenant)) => {
            redirect_with_flash("/operator", "ok", "ops_app_limit_set", &tenant.name)
        }
        Ok(None) => page.not_found(),
        Err(e) => page.error(&e),
    }
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
