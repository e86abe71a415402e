//! Page handlers: each extracts typed input, calls the same functions as
//! the JSON API, and renders a template or redirects with a flash message.

use std::collections::BTreeMap;

use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use minijinja::context;
use minijinja::value::Serde;
use serde::{Deserialize, Serialize};

use super::i18n::{self, Lang};
use super::{Page, redirect, redirect_with_flash};
use crate::api::apps::{self as api_apps, NewAppInput};
use crate::auth::{Principal, SessionPrincipal};
use crate::db;
use crate::db::apps::AppRow;
use crate::domain::{Role, TokenMode};
use crate::error::ApiError;
use crate::refresh::engine::AttemptOutcome;
use crate::refresh::gate::RefusalReason;
use crate::refresh::policy::Health;
use crate::secret::AppSecret;
use crate::state::AppState;
use crate::upstream::errcodes::{self, Errcode};

/// Field errors of a form: field name to catalogue key (or message).
pub(super) type FieldErrors = BTreeMap<&'static str, String>;

/// The field errors of a validation failure, as catalogue keys
/// (`err_<code>`), falling back to the API's English sentence.
pub(super) fn field_errors(lang: Lang, errors: &[crate::domain::FieldError]) -> FieldErrors {
    errors
        .iter()
        .map(|e| {
            let key = format!("err_{}", e.code);
            let text = lang.text(&key);
            let text = if text.is_empty() {
                e.message.clone()
            } else {
                text.to_string()
            };
            (e.field, text)
        })
        .collect()
}

/// GET /: the dashboard for a signed-in person, else sign-in.
pub async fn home(page: Page) -> HttpResponse {
    if let Some(res) = super::ops::operator_home(&page) {
        return res;
    }
    redirect(if page.user.is_some() {
        "/dashboard"
    } else {
        "/login"
    })
}

/// Query of the language switch.
#[derive(Debug, Deserialize)]
pub struct SwitchQuery {
    #[serde(default)]
    back: String,
}

/// GET /lang/{tag}: remember the language and go back to the page.
pub async fn switch_language(
    path: web::Path<String>,
    query: web::Query<SwitchQuery>,
) -> HttpResponse {
    let lang = Lang::from_tag(&path).unwrap_or(Lang::En);
    // Only a path on this site: never an open redirect.
    let back = super::local_path(&query.back).unwrap_or("/");
    let cookie = Cookie::build(i18n::COOKIE, lang.tag())
        .path("/")
        .same_site(actix_web::cookie::SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::days(365))
        .finish();
    let mut res = redirect(back);
    let _ = res.add_cookie(&cookie);
    res
}

pub(super) fn one(field: &'static str, text: &str) -> FieldErrors {
    FieldErrors::from([(field, text.to_string())])
}

/// A form that only carries the CSRF token (buttons: sign out, refresh now).
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub(super) csrf_token: String,
}

/// Why a form post of a signed-in person cannot go ahead.
pub(super) enum FormRefusal {
    /// No live session: sign in again.
    SignedOut,
    /// The token is stale (another session, an old tab).
    Stale,
}

/// Back to sign-in, saying the session expired; then back to `page` (where
/// the form was) once signed in again.
pub(super) fn signed_out(page: &str) -> HttpResponse {
    super::sign_in_then(page, "flash_session_expired")
}

/// The signed-in person posting a form with a matching CSRF token.
pub(super) fn form_session<'a>(
    page: &'a Page,
    sent: &str,
) -> Result<&'a SessionPrincipal, FormRefusal> {
    match &page.user {
        None => Err(FormRefusal::SignedOut),
        Some(user) if user.csrf_matches(sent) => Ok(user),
        Some(_) => Err(FormRefusal::Stale),
    }
}

/// The signed-in person posting a form of the page at `page_path`, or the
/// answer for a refused post: sign-in (coming back to the page) for an
/// expired session, the page with "form out of date" for a stale token.
#[allow(
    clippy::result_large_err,
    reason = "the refusal is the response, sent at once"
)]
pub(super) fn form_user<'a>(
    page: &'a Page,
    sent: &str,
    page_path: &str,
) -> Result<&'a SessionPrincipal, HttpResponse> {
    form_session(page, sent).map_err(|refusal| match refusal {
        FormRefusal::SignedOut => signed_out(page_path),
        FormRefusal::Stale => redirect_with_flash(page_path, "error", "flash_stale_form", ""),
    })
}

/// An app as the pages show it: never its secret, never its token.
#[derive(Serialize)]
struct AppCard {
    appid: String,
    name: String,
    health: &'static str,
    mode: String,
    enabled: bool,
    expires_at: Option<String>,
    expires_epoch: Option<i64>,
    seconds_left: Option<i64>,
    fetched_at: Option<String>,
    last_success_at: Option<String>,
    last_attempt_at: Option<String>,
    next_refresh_at: Option<String>,
    failures_24h: i64,
    upstream_calls_today: i64,
    failure_streak: i32,
    last_errcode: Option<i32>,
    last_errmsg: Option<String>,
    explanation: Option<&'static Errcode>,
}

pub(super) fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

impl AppCard {
    fn of(app: &AppRow) -> Self {
        let now = Utc::now();
        let health = api_apps::app_health(app);
        let live = app.expires_at.filter(|e| *e > now);
        let failing = app.failure_streak > 0;
        Self {
            appid: app.appid.clone(),
            name: app.name.clone(),
            health: health.as_str(),
            mode: app.token_mode.clone(),
            enabled: app.enabled,
            expires_at: live.map(when),
            expires_epoch: live.map(|e| e.timestamp()),
            seconds_left: live.map(|e| (e - now).num_seconds()),
            fetched_at: app.fetched_at.map(when),
            last_success_at: app.last_success_at.map(when),
            last_attempt_at: app.last_attempt_at.map(when),
            next_refresh_at: app.enabled.then(|| when(app.next_refresh_at)),
            failures_24h: app.failures_24h,
            upstream_calls_today: app.upstream_calls_today,
            failure_streak: app.failure_streak,
            last_errcode: app.last_errcode.filter(|_| failing),
            last_errmsg: app.last_errmsg.clone().filter(|_| failing),
            explanation: app
                .last_errcode
                .filter(|_| failing)
                .and_then(|c| errcodes::explain(i64::from(c))),
        }
    }
}

/// The tenant of a signed-in person, or the page that says why not.
pub(super) fn tenant_scope(page: &Page) -> Result<(Principal, crate::auth::TenantScope), ApiError> {
    let user = page
        .user
        .clone()
        .ok_or(ApiError::Unauthenticated("sign in"))?;
    let principal = Principal::Session(user);
    let scope = principal.require(Role::Viewer)?;
    Ok((principal, scope))
}

/// GET /dashboard: every app with its health, and a one-line summary.
pub async fn dashboard(page: Page, state: web::Data<AppState>) -> HttpResponse {
    if let Some(res) = super::ops::operator_home(&page) {
        return res;
    }
    let (_, scope) = match tenant_scope(&page) {
        Ok(s) => s,
        Err(e) => return page.error(&e),
    };
    let apps = match db::apps::list(
        &state.pool,
        scope.tenant_id,
        None,
        None,
        crate::api::MAX_PAGE,
    )
    .await
    {
        Ok(apps) => apps,
        Err(e) => return page.error(&e.into()),
    };
    let cards: Vec<AppCard> = apps.iter().map(AppCard::of).collect();
    let count = |h: Health| cards.iter().filter(|c| c.health == h.as_str()).count();
    let summary = context! {
        total => cards.len(),
        healthy => count(Health::Healthy),
        refreshing => count(Health::Refreshing),
        degraded => count(Health::Degraded),
        failing => count(Health::Failing),
        disabled => count(Health::Disabled),
    };
    page.render(
        StatusCode::OK,
        "dashboard.html",
        context! { apps => Serde(&cards), summary, can_edit => scope.role.at_least(Role::Admin) },
    )
}

/// The registration form as posted (the secret is never sent back).
#[derive(Deserialize)]
pub struct NewAppForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    appid: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    token_mode: String,
}

/// GET /apps/new: owners and admins only (viewers get the refusal page).
pub async fn new_app_form(page: Page) -> HttpResponse {
    if let Err(e) = admin_scope(&page) {
        return page.error(&e);
    }
    page.render(
        StatusCode::OK,
        "app_new.html",
        context! { form => context! { token_mode => "stable" }, errors => FieldErrors::new() },
    )
}

/// POST /apps/new: register with the API's rules, then the app's page.
pub async fn register_app(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<NewAppForm>,
) -> HttpResponse {
    let NewAppForm {
        csrf_token,
        appid,
        secret,
        name,
        token_mode,
    } = form.into_inner();
    let again = |errors: FieldErrors, status| {
        page.render(
            status,
            "app_new.html",
            context! { form => context! { appid => appid.as_str(), name => name.as_str(), token_mode => token_mode.as_str() }, errors },
        )
    };
    match form_session(&page, &csrf_token) {
        Ok(_) => {}
        Err(FormRefusal::SignedOut) => return signed_out("/apps/new"),
        Err(FormRefusal::Stale) => {
            return again(
                one("form", page.lang.text("flash_stale_form")),
                StatusCode::FORBIDDEN,
            );
        }
    }
    let (principal, scope) = match tenant_scope(&page) {
        Ok(s) => s,
        Err(e) => return page.error(&e),
    };
    if let Err(e) = principal.require(Role::Admin) {
        return page.error(&e);
    }
    let mode = token_mode.parse::<TokenMode>();
    let name_given = Some(name.trim()).filter(|n| !n.is_empty());
    let parsed = NewAppInput::parse_fields(
        &appid,
        &AppSecret::from(secret),
        name_given,
        mode.ok(),
        None,
    );
    let new = match (parsed, mode) {
        (Ok(new), Ok(_)) => new,
        (Err(ApiError::Validation(errors)), _) => {
            return again(
                field_errors(page.lang, &errors),
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
        (Ok(_), Err(())) => {
            return again(
                one("token_mode", page.lang.text("err_invalid_mode")),
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
        (Err(e), _) => return page.error(&e),
    };
    match api_apps::register(&req, &state, &scope, new, true).await {
        Ok((app, outcome)) => {
            let (kind, key) = registered_flash(outcome.as_ref());
            redirect_with_flash(&format!("/apps/{}", app.appid), kind, key, &app.appid)
        }
        Err(ApiError::Conflict {
            code: "app_limit_reached",
            ..
        }) => {
            let limit = crate::db::app_limits::effective(
                &state.pool,
                scope.tenant_id,
                state.settings.max_apps_per_tenant,
            )
            .await;
            match limit {
                Ok(limit) => again(
                    one(
                        "form",
                        &page
                            .lang
                            .text("err_app_limit")
                            .replace("{limit}", &limit.to_string()),
                    ),
                    StatusCode::CONFLICT,
                ),
                Err(e) => page.error(&e.into()),
            }
        }
        Err(ApiError::Conflict { .. }) => again(
            one("appid", page.lang.text("err_app_exists")),
            StatusCode::CONFLICT,
        ),
        Err(ApiError::Validation(errors)) => again(
            field_errors(page.lang, &errors),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(e) => page.error(&e),
    }
}

/// The flash after a registration: kind and message key.
fn registered_flash(outcome: Option<&AttemptOutcome>) -> (&'static str, &'static str) {
    match outcome {
        Some(AttemptOutcome::Failed(_)) => ("error", "flash_app_registered_failing"),
        Some(AttemptOutcome::Refused(_)) => ("error", "flash_app_registered_unchecked"),
        _ => ("ok", "flash_app_registered"),
    }
}

/// One refresh attempt as the app page lists it.
#[derive(Serialize)]
struct LogLine {
    when: String,
    trigger: String,
    outcome: String,
    errcode: Option<i32>,
    errmsg: Option<String>,
    latency_ms: Option<i32>,
    explanation: Option<&'static Errcode>,
}

/// GET /apps/{appid}: token status (never the token), refresh history,
/// failures explained in both languages.
pub async fn app_page(
    page: Page,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let (principal, scope) = match tenant_scope(&page) {
        Ok(s) => s,
        Err(e) => return page.error(&e),
    };
    let app = match api_apps::find_app(&state, &principal, &scope, &path).await {
        Ok(app) => app,
        Err(e) => return page.error(&e),
    };
    render_app_page(
        &page,
        &state,
        &scope,
        &app,
        StatusCode::OK,
        &FieldErrors::new(),
    )
    .await
}

/// Render the app page, with field errors of its forms.
async fn render_app_page(
    page: &Page,
    state: &AppState,
    scope: &crate::auth::TenantScope,
    app: &AppRow,
    status: StatusCode,
    errors: &FieldErrors,
) -> HttpResponse {
    let rows =
        match db::tokens::list_log(&state.pool, scope.tenant_id, Some(app.id), false, None, 50)
            .await
        {
            Ok(rows) => rows,
            Err(e) => return page.error(&e.into()),
        };
    let log: Vec<LogLine> = rows
        .into_iter()
        .map(|r| LogLine {
            when: when(r.created_at),
            explanation: r.errcode.and_then(|c| errcodes::explain(i64::from(c))),
            trigger: r.trigger,
            outcome: r.outcome,
            errcode: r.errcode,
            errmsg: r.errmsg,
            latency_ms: r.latency_ms,
        })
        .collect();
    page.render(
        status,
        "app.html",
        context! {
            app => Serde(AppCard::of(app)),
            log => Serde(&log),
            can_edit => scope.role.at_least(Role::Admin),
            // How to read this app's token, for those who may create keys.
            snippets => Serde(scope.role.at_least(Role::Admin)
                .then(|| super::snippets::Snippets::new(&page.base_url, &app.appid, None))),
            has_secondary => app.has_secondary_secret,
            budget => context! {
                daily => state.engine.config().limits.daily_calls,
                reserve => state.engine.config().limits.scheduler_reserve,
            },
            errors => Serde(errors),
        },
    )
}

/// POST /apps/{appid}/refresh: refresh now, then back to the app page.
pub async fn refresh_app(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let back = format!("/apps/{}", path.trim().to_ascii_lowercase());
    if let Err(refused) = form_user(&page, &form.csrf_token, &back) {
        return refused;
    }
    let (principal, scope) = match tenant_scope(&page) {
        Ok(s) => s,
        Err(e) => return page.error(&e),
    };
    let result = async {
        let scope = principal.require(Role::Admin).map(|_| scope)?;
        let app = api_apps::find_app(&state, &principal, &scope, &path).await?;
        api_apps::refresh_app(&req, &state, &scope, &app).await
    }
    .await;
    match result {
        Ok((app, outcome)) => {
            let (kind, key) = match outcome {
                AttemptOutcome::Refreshed | AttemptOutcome::Unchanged => ("ok", "flash_refreshed"),
                AttemptOutcome::Disabled => ("error", "flash_refresh_disabled"),
                AttemptOutcome::Failed(_) => ("error", "flash_refresh_failed"),
                AttemptOutcome::Refused(r) if r.reason == RefusalReason::BudgetSpent => {
                    ("error", "flash_refresh_budget")
                }
                AttemptOutcome::Refused(_) => ("error", "flash_refresh_cooldown"),
            };
            redirect_with_flash(&format!("/apps/{}", app.appid), kind, key, &app.appid)
        }
        Err(e) => page.error(&e),
    }
}

/// The owner or admin of a tenant, or the page that says why not.
pub(super) fn admin_scope(page: &Page) -> Result<crate::auth::TenantScope, ApiError> {
    let (principal, _) = tenant_scope(page)?;
    principal.require(Role::Admin)
}

/// The secret forms of the app page (never sent back).
#[derive(Deserialize)]
pub struct SecretForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    secondary_secret: String,
    #[serde(default)]
    clear: Option<String>,
    #[serde(default)]
    enabled: Option<String>,
}

/// Which action of the app page a post is.
#[derive(Clone, Copy)]
enum AppAction {
    Secret,
    Secondary,
    Enabled,
    Delete,
}

impl AppAction {
    /// The action named by the last path segment.
    fn parse(name: &str) -> Option<Self> {
        match name {
            "secret" => Some(Self::Secret),
            "secondary" => Some(Self::Secondary),
            "enabled" => Some(Self::Enabled),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }
}

/// POST /apps/{appid}/{secret|secondary|enabled|delete}: one action of the
/// app page, by the API's rules, then a flash and redirect; a bad secret
/// shows the app page with the error next to its field.
pub async fn app_action(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: web::Form<SecretForm>,
) -> HttpResponse {
    let (appid, action) = path.into_inner();
    let Some(action) = AppAction::parse(&action) else {
        return page.error(&ApiError::NotFound("page"));
    };
    let form = form.into_inner();
    let back = format!("/apps/{}", appid.trim().to_ascii_lowercase());
    if let Err(refused) = form_user(&page, &form.csrf_token, &back) {
        return refused;
    }
    let (principal, _) = match tenant_scope(&page) {
        Ok(s) => s,
        Err(e) => return page.error(&e),
    };
    let found = async {
        let scope = principal.require(Role::Admin)?;
        let app = api_apps::find_app(&state, &principal, &scope, &appid).await?;
        Ok::<_, ApiError>((scope, app))
    }
    .await;
    let (scope, app) = match found {
        Ok(found) => found,
        Err(e) => return page.error(&e),
    };
    let back = format!("/apps/{}", app.appid);
    if matches!(action, AppAction::Delete) {
        return match api_apps::remove_app(&req, &state, &scope, &app).await {
            Ok(()) => redirect_with_flash("/dashboard", "ok", "flash_app_deleted", &app.appid),
            Err(e) => page.error(&e),
        };
    }
    let secret = AppSecret::from(form.secret);
    let secondary = AppSecret::from(form.secondary_secret);
    let (changes, flash) = match action {
        AppAction::Secret => (
            api_apps::AppChanges {
                secret: Some(&secret),
                ..Default::default()
            },
            "flash_secret_replaced",
        ),
        AppAction::Secondary if form.clear.is_some() => (
            api_apps::AppChanges {
                secondary_secret: Some(None),
                ..Default::default()
            },
            "flash_secondary_cleared",
        ),
        AppAction::Secondary => (
            api_apps::AppChanges {
                secondary_secret: Some(Some(&secondary)),
                ..Default::default()
            },
            "flash_secondary_set",
        ),
        AppAction::Enabled | AppAction::Delete => {
            // The form sends `true` or `false`; anything else changes nothing.
            let on = match form.enabled.as_deref() {
                Some("true") => true,
                Some("false") => false,
                _ => {
                    return page.error(&ApiError::BadRequest {
                        code: "invalid_field",
                        detail: "enabled must be true or false".into(),
                    });
                }
            };
            (
                api_apps::AppChanges {
                    enabled: Some(on),
                    ..Default::default()
                },
                if on {
                    "flash_enabled"
                } else {
                    "flash_disabled"
                },
            )
        }
    };
    match api_apps::edit_app(&req, &state, &scope, &app, &changes).await {
        Ok(app) => redirect_with_flash(&back, "ok", flash, &app.appid),
        Err(ApiError::Validation(errors)) => {
            render_app_page(
                &page,
                &state,
                &scope,
                &app,
                StatusCode::UNPROCESSABLE_ENTITY,
                &field_errors(page.lang, &errors),
            )
            .await
        }
        Err(e) => page.error(&e),
    }
}
