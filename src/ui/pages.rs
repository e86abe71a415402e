//! Page handlers and what pages share: each handler extracts typed input,
//! calls a use case (`crate::service`) and renders a template or redirects
//! with a flash message. The app pages are in `super::apps` and
//! `super::app_page`; the app card, "refresh now" and the app page's form
//! are here.

use std::collections::BTreeMap;

use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use minijinja::context;
use minijinja::value::Serde;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

use super::i18n::{self, Lang};
use super::{Page, redirect, redirect_with_flash, same_origin};
use crate::api::{accounts, api_keys};
use crate::auth::{Principal, SessionPrincipal, session};
use crate::db;
use crate::db::apps::AppRow;
use crate::domain::{ApiKeyId, Role, TokenMode};
use crate::error::ApiError;
use crate::refresh::engine::AttemptOutcome;
use crate::refresh::gate::RefusalReason;
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

/// The sign-up form as posted.
#[derive(Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    organization: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// An empty sign-in or sign-up form; the signed-in go to their dashboard.
fn blank_form(page: &Page, template: &str) -> HttpResponse {
    if page.user.is_some() {
        return redirect("/dashboard");
    }
    page.render(
        StatusCode::OK,
        template,
        context! { form => context! {}, errors => FieldErrors::new() },
    )
}

/// GET /signup.
pub async fn signup_form(page: Page) -> HttpResponse {
    blank_form(&page, "signup.html")
}

/// POST /signup: a new organisation and its owner, signed in.
pub async fn signup(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<SignupForm>,
) -> HttpResponse {
    let SignupForm {
        organization,
        email,
        password,
    } = form.into_inner();
    let again = |errors: FieldErrors, status| {
        page.render(
            status,
            "signup.html",
            context! { form => context! { organization => organization.as_str(), email => email.as_str() }, errors },
        )
    };
    if !same_origin(&req) {
        return again(
            one("form", page.lang.text("err_cross_site")),
            StatusCode::FORBIDDEN,
        );
    }
    match accounts::create_account(
        &req,
        &state,
        &organization,
        &email,
        SecretString::from(password),
    )
    .await
    {
        Ok(account) => {
            let mut res = redirect_with_flash("/dashboard", "ok", "flash_welcome", "");
            let _ = res.add_cookie(&account.session.cookie);
            res
        }
        Err(ApiError::Validation(errors)) => again(
            field_errors(page.lang, &errors),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(ApiError::Conflict { .. }) => again(
            one("email", page.lang.text("err_email_taken")),
            StatusCode::CONFLICT,
        ),
        Err(ApiError::TooManyRequests(_)) => again(
            one("form", page.lang.text("error_too_many")),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(ApiError::Busy(_)) => again(
            one("form", page.lang.text("error_busy")),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        Err(e) => page.error(&e),
    }
}

pub(super) fn one(field: &'static str, text: &str) -> FieldErrors {
    FieldErrors::from([(field, text.to_string())])
}

/// The sign-in form as posted.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    /// Where to go once signed in (a path on this site).
    #[serde(default)]
    next: String,
}

/// Query of the sign-in page.
#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

/// GET /login: the form, remembering where to go back to.
pub async fn login_form(page: Page, query: web::Query<LoginQuery>) -> HttpResponse {
    let Some(next) = super::local_path(&query.next) else {
        return blank_form(&page, "login.html");
    };
    if page.user.is_some() {
        return redirect(next);
    }
    page.render(
        StatusCode::OK,
        "login.html",
        context! { form => context! { next }, errors => FieldErrors::new() },
    )
}

/// POST /login: the same message whether the email is unknown or the password wrong.
pub async fn login(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> HttpResponse {
    let LoginForm {
        email,
        password,
        next,
    } = form.into_inner();
    let next = super::local_path(&next);
    let again = |errors: FieldErrors, status| {
        page.render(
            status,
            "login.html",
            context! { form => context! { email => email.as_str(), next }, errors },
        )
    };
    if !same_origin(&req) {
        return again(
            one("form", page.lang.text("err_cross_site")),
            StatusCode::FORBIDDEN,
        );
    }
    // Nothing typed is a field error, not a wrong password (the API, which
    // has no fields to show, answers 401 alike).
    if password.is_empty() {
        let mut errors = one("password", page.lang.text("err_required"));
        if let Err(e) = crate::domain::Email::parse("email", &email) {
            errors.extend(field_errors(page.lang, &[e]));
        }
        return again(errors, StatusCode::UNPROCESSABLE_ENTITY);
    }
    match accounts::sign_in(&req, &state, &email, SecretString::from(password)).await {
        Ok(signed_in) => {
            let mut res = redirect(next.unwrap_or("/dashboard"));
            let _ = res.add_cookie(&signed_in.session.cookie);
            res
        }
        Err(ApiError::Validation(errors)) => again(
            field_errors(page.lang, &errors),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(ApiError::Unauthenticated(_)) => again(
            one("form", page.lang.text("err_wrong_login")),
            StatusCode::UNAUTHORIZED,
        ),
        Err(ApiError::TooManyRequests(_)) => again(
            one("form", page.lang.text("error_too_many")),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(ApiError::Busy(_)) => again(
            one("form", page.lang.text("error_busy")),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        Err(e) => page.error(&e),
    }
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

/// POST /logout.
pub async fn logout(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    match form_session(&page, &form.csrf_token) {
        Ok(user) => {
            if let Err(e) = crate::http::identity::end_session(&req, &state).await {
                return page.error(&ApiError::from(e));
            }
            let event =
                crate::api::audit_event(&req, user.tenant_id, Some(user.user_id), "signout", None);
            if let Err(e) = db::audit::record(&state.pool, event).await {
                tracing::warn!(error = %e, "cannot record sign-out");
            }
            let mut res = redirect_with_flash("/login", "ok", "flash_signed_out", "");
            let _ = res.add_cookie(&session::removal_cookie(state.settings.secure_cookies));
            res
        }
        Err(FormRefusal::SignedOut) => redirect("/login"),
        Err(FormRefusal::Stale) => {
            redirect_with_flash("/dashboard", "error", "flash_stale_form", "")
        }
    }
}

/// An app as the pages show it: never its secret, never its token.
#[derive(Serialize)]
pub(super) struct AppCard {
    appid: String,
    name: String,
    pub(super) health: &'static str,
    mode: TokenMode,
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
    /// The card of `app` as it is now.
    pub(super) fn of(app: &AppRow) -> Self {
        let now = Utc::now();
        let live = app.valid_until(now);
        let failing = app.failure_streak > 0;
        Self {
            appid: app.appid.clone(),
            name: app.name.clone(),
            health: app.health(now).as_str(),
            mode: app.token_mode,
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
    let result = async {
        let actor = page.actor(&req)?;
        crate::service::apps::refresh_now(&state, &actor, &path).await
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

/// An API key as the keys page lists it (never the key itself).
#[derive(Serialize)]
struct KeyLine {
    id: String,
    name: String,
    prefix: String,
    read_only: bool,
    /// Limited to `apps` (possibly none left, when they were deleted).
    limited: bool,
    apps: Vec<String>,
    created_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
}

/// The create-key form as posted; `apps` repeats, once per ticked app
/// (none: every app). Kept to show again after an error.
#[derive(Debug, Default, Serialize)]
pub struct NewKeyForm {
    #[serde(skip)]
    csrf_token: String,
    name: String,
    read_only: bool,
    apps: Vec<String>,
}

impl NewKeyForm {
    /// The form from its fields in order (a repeated field does not fit a struct).
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut form = Self::default();
        for (field, value) in pairs {
            match field.as_str() {
                "csrf_token" => form.csrf_token = value,
                "name" => form.name = value,
                "read_only" => form.read_only = !value.is_empty(),
                "apps" => form.apps.push(value),
                _ => {}
            }
        }
        form
    }
}

/// The owner or admin of a tenant, or the page that says why not.
pub(super) fn admin_scope(page: &Page) -> Result<crate::auth::TenantScope, ApiError> {
    let (principal, _) = tenant_scope(page)?;
    principal.require(Role::Admin)
}

/// A key just created, shown once with ready-to-use snippets.
#[derive(Serialize)]
struct ShownKey {
    name: String,
    prefix: String,
    key: String,
    /// The shell line that sets the key where the snippets read it.
    export: String,
    snippets: super::snippets::Snippets,
}

/// An app a new key can be limited to.
#[derive(Serialize)]
struct AppChoice {
    appid: String,
    name: String,
}

/// Render the keys page with the tenant's keys and apps to limit a new key to.
async fn keys_page(
    page: &Page,
    state: &AppState,
    scope: &crate::auth::TenantScope,
    status: StatusCode,
    form: &NewKeyForm,
    errors: &FieldErrors,
    shown: Option<&ShownKey>,
) -> HttpResponse {
    let loaded = tokio::try_join!(
        db::api_keys::list(&state.pool, scope.tenant_id),
        db::apps::list(
            &state.pool,
            scope.tenant_id,
            None,
            None,
            crate::api::MAX_PAGE
        ),
    );
    let (rows, apps) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return page.error(&e.into()),
    };
    let apps: Vec<AppChoice> = apps
        .into_iter()
        .map(|a| AppChoice {
            appid: a.appid,
            name: a.name,
        })
        .collect();
    let keys: Vec<KeyLine> = rows
        .into_iter()
        .map(|k| KeyLine {
            id: k.id.to_string(),
            name: k.name,
            prefix: k.prefix,
            read_only: k.read_only,
            limited: k.limited_to_apps,
            apps: k.apps,
            created_at: when(k.created_at),
            last_used_at: k.last_used_at.map(when),
            revoked_at: k.revoked_at.map(when),
        })
        .collect();
    page.render(
        status,
        "keys.html",
        context! {
            keys => Serde(&keys),
            apps => Serde(&apps),
            form => Serde(form),
            errors => Serde(errors),
            created => Serde(shown),
        },
    )
}

/// GET /keys: the organisation's API keys (owners and admins).
pub async fn keys(page: Page, state: web::Data<AppState>) -> HttpResponse {
    match admin_scope(&page) {
        Ok(scope) => {
            keys_page(
                &page,
                &state,
                &scope,
                StatusCode::OK,
                &NewKeyForm::default(),
                &FieldErrors::new(),
                None,
            )
            .await
        }
        Err(e) => page.error(&e),
    }
}

/// POST /keys: create a key with the API's rules; the answer shows it once.
pub async fn create_key(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let form = NewKeyForm::from_pairs(form.into_inner());
    let user = match form_user(&page, &form.csrf_token, "/keys") {
        Ok(user) => user.clone(),
        Err(refused) => return refused,
    };
    let scope = match admin_scope(&page) {
        Ok(scope) => scope,
        Err(e) => return page.error(&e),
    };
    match api_keys::create_key(
        &req,
        &state,
        user.user_id,
        &scope,
        &form.name,
        &form.apps,
        form.read_only,
    )
    .await
    {
        Ok(created) => {
            // The snippets read a token of an app the key may read.
            let first = match form.apps.first() {
                Some(appid) => Ok(Some(appid.clone())),
                None => db::apps::list(&state.pool, scope.tenant_id, None, None, 1)
                    .await
                    .map(|apps| apps.first().map(|a| a.appid.clone())),
            };
            let appid = match first {
                Ok(appid) => appid.unwrap_or_else(|| "wx0123456789abcdef".to_string()),
                Err(e) => return page.error(&e.into()),
            };
            let key = created.key.expose_secret().to_string();
            let shown = ShownKey {
                export: super::snippets::export_line(&key),
                snippets: super::snippets::Snippets::new(&page.base_url, &appid, Some(&key)),
                name: created.name,
                prefix: created.prefix,
                key,
            };
            keys_page(
                &page,
                &state,
                &scope,
                StatusCode::CREATED,
                &NewKeyForm::default(),
                &FieldErrors::new(),
                Some(&shown),
            )
            .await
        }
        Err(ApiError::Validation(errors)) => {
            let mut shown = field_errors(page.lang, &errors);
            // The API's sentence names what was sent; the page says what to do.
            for e in errors.iter().filter(|e| e.field == "apps") {
                let text = page.lang.text(&format!("keylimit_err_{}", e.code));
                if !text.is_empty() {
                    shown.insert("apps", text.to_string());
                }
            }
            keys_page(
                &page,
                &state,
                &scope,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                &shown,
                None,
            )
            .await
        }
        Err(e) => page.error(&e),
    }
}

/// POST /keys/{id}/revoke: revoke after the confirmation step.
pub async fn revoke_key(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let user = match form_user(&page, &form.csrf_token, "/keys") {
        Ok(user) => user.clone(),
        Err(refused) => return refused,
    };
    let result = async {
        let scope = admin_scope(&page)?;
        let id = path
            .parse::<ApiKeyId>()
            .map_err(|_| ApiError::NotFound("API key"))?;
        let key = db::api_keys::get(&state.pool, scope.tenant_id, id)
            .await?
            .ok_or(ApiError::NotFound("API key"))?;
        api_keys::revoke_key(&req, &state, user.user_id, &scope, id).await?;
        Ok::<_, ApiError>(key.prefix)
    }
    .await;
    match result {
        Ok(prefix) => redirect_with_flash("/keys", "ok", "flash_key_revoked", &prefix),
        Err(e) => page.error(&e),
    }
}

/// The secret forms of the app page (never sent back).
#[derive(Deserialize)]
pub struct SecretForm {
    #[serde(default)]
    pub(super) csrf_token: String,
    #[serde(default)]
    pub(super) secret: String,
    #[serde(default)]
    pub(super) secondary_secret: String,
    #[serde(default)]
    pub(super) clear: Option<String>,
    #[serde(default)]
    pub(super) enabled: Option<String>,
}
