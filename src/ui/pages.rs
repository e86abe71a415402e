//! Page handlers and what pages share: each handler extracts typed input,
//! calls a use case (`crate::service`) and renders a template or redirects
//! with a flash message. The app pages are in `super::apps` and
//! `super::app_page`; the app card, "refresh now" and the app page's form
//! are here.

use std::collections::BTreeMap;

use actix_web::cookie::Cookie;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::i18n::{self, Lang};
use super::{Page, redirect, redirect_with_flash};
use crate::auth::{Principal, SessionPrincipal};
use crate::db::apps::AppRow;
use crate::domain::{Role, TokenMode};
use crate::error::ApiError;
use crate::refresh::engine::AttemptOutcome;
use crate::refresh::gate::RefusalReason;
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
pub(super) struct AppCard {
    appid: String,
    name: String,
    pub(super) health: &'static str,
    mode: TokenMode,
    /// `mini_program`, `official_account`, or `None` for a WeCom app.
    account_type: Option<&'static str>,
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
            account_type: app.account_type.map(crate::domain::AccountType::as_str),
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
                .and_then(|c| errcodes::explain_for(errcodes::kind_of(&app.appid), i64::from(c))),
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

/// The owner or admin of a tenant, or the page that says why not.
pub(super) fn admin_scope(page: &Page) -> Result<crate::auth::TenantScope, ApiError> {
    let (principal, _) = tenant_scope(page)?;
    principal.require(Role::Admin)
}

/// The secret forms of the app page (never sent back).
#[derive(Debug, Deserialize)]
pub struct SecretForm {
    #[serde(default)]
    pub(super) csrf_token: String,
    /// Zeroized when dropped, masked in `Debug`.
    #[serde(default)]
    pub(super) secret: AppSecret,
    /// Zeroized when dropped, masked in `Debug`.
    #[serde(default)]
    pub(super) secondary_secret: AppSecret,
    #[serde(default)]
    pub(super) clear: Option<String>,
    #[serde(default)]
    pub(super) enabled: Option<String>,
    /// `mini_program` or `official_account` (the label form).
    #[serde(default)]
    pub(super) account_type: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appsecrets posted by the app page land in the masked, zeroized type at once.
    #[test]
    fn posted_appsecrets_are_secrets_from_the_edge() {
        let form: SecretForm =
            serde_json::from_str(r#"{"secret":"0123456789abcdef0123456789abcdef"}"#).unwrap();
        assert_eq!(format!("{:?}", form.secret), "AppSecret(***)");
        assert_eq!(
            form.secret.expose_secret(),
            "0123456789abcdef0123456789abcdef"
        );
        assert!(form.secondary_secret.expose_secret().is_empty());
    }
}
