//! The account page (`/account`): who the person is and whether their
//! address is verified (with "send the verification mail again"), the
//! password change form, and their sessions with "end" for each other one
//! and "end all other sessions". Every section is a block of its own in
//! `account.html`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use minijinja::value::Serde;
use serde::{Deserialize, Serialize};

use super::pages::{CsrfForm, FieldErrors, field_errors, form_user, one, when};
use super::{Page, redirect_with_flash};
use crate::domain::SessionId;
use crate::error::ApiError;
use crate::http::identity::{session_cookie, visitor};
use crate::mail::Language;
use crate::secret::Password;
use crate::service::account::{self, OwnSession};
use crate::service::{Actor, Visitor, passwords, verification};
use crate::state::AppState;

/// Where the page is.
const PATH: &str = "/account";

/// The password change form as posted (never shown again).
#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf_token: String,
    /// Zeroized when dropped, masked in `Debug`.
    #[serde(default)]
    current_password: Password,
    /// Zeroized when dropped, masked in `Debug`.
    #[serde(default)]
    new_password: Password,
}

/// A session as the page lists it.
#[derive(Serialize)]
struct SessionLine {
    id: String,
    current: bool,
    created_at: String,
    last_seen_at: String,
    address: Option<String>,
    browser: Option<String>,
    system: Option<String>,
}

impl From<OwnSession> for SessionLine {
    fn from(s: OwnSession) -> Self {
        Self {
            id: s.id.to_string(),
            current: s.current,
            created_at: when(s.created_at),
            last_seen_at: when(s.last_seen_at),
            address: s.address,
            browser: s.browser.browser,
            system: s.browser.system,
        }
    }
}

/// Register the account page's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/account", web::get().to(account))
        .route("/account/password", web::post().to(change_password))
        .route("/account/language", web::post().to(set_language))
        .route("/account/verification", web::post().to(resend_verification))
        .route(
            "/account/sessions/end-others",
            web::post().to(end_other_sessions),
        )
        .route("/account/sessions/{id}/end", web::post().to(end_session));
}

/// Render the page with the password form's `errors`.
async fn account_page(
    req: &HttpRequest,
    page: &Page,
    state: &AppState,
    actor: &Actor,
    status: StatusCode,
    errors: &FieldErrors,
) -> HttpResponse {
    let tz = super::time_zone::form_context(state, page, None, &FieldErrors::new()).await;
    render_account(req, page, state, actor, status, errors, tz).await
}

/// The page again after the time-zone form was refused: what was typed,
/// with the error beside the field.
pub(super) async fn time_zone_refused(
    req: &HttpRequest,
    page: &Page,
    state: &AppState,
    actor: &Actor,
    typed: &str,
    errors: &FieldErrors,
) -> HttpResponse {
    let tz = super::time_zone::form_context(state, page, Some(typed), errors).await;
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    render_account(req, page, state, actor, status, &FieldErrors::new(), tz).await
}

async fn render_account(
    req: &HttpRequest,
    page: &Page,
    state: &AppState,
    actor: &Actor,
    status: StatusCode,
    errors: &FieldErrors,
    tz: Result<minijinja::Value, ApiError>,
) -> HttpResponse {
    let cookie = session_cookie(req);
    let loaded = async {
        let tz = tz?;
        let profile = account::profile(state, actor).await?;
        let sessions = account::list(state, actor, cookie.as_deref()).await?;
        Ok::<_, ApiError>((profile, sessions, tz))
    }
    .await;
    let (profile, sessions, tz) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return page.error(&e),
    };
    let sessions: Vec<SessionLine> = sessions.into_iter().map(SessionLine::from).collect();
    let others = sessions.iter().filter(|s| !s.current).count();
    page.render(
        status,
        "account.html",
        context! {
            profile => context! {
                email => profile.email,
                display_name => profile.display_name,
                verified_at => profile.email_verified_at.map(when),
                language => profile.language,
            },
            sessions => Serde(&sessions),
            others,
            errors => Serde(errors),
            tz,
        },
    )
}

/// GET /account.
pub async fn account(req: HttpRequest, page: Page, state: web::Data<AppState>) -> HttpResponse {
    match page.actor(&req) {
        Ok(actor) => {
            account_page(
                &req,
                &page,
                &state,
                &actor,
                StatusCode::OK,
                &FieldErrors::new(),
            )
            .await
        }
        Err(e) => page.error(&e),
    }
}

/// POST /account/password: change the password with the current one; the
/// person's other sessions end.
pub async fn change_password(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<PasswordForm>,
) -> HttpResponse {
    let PasswordForm {
        csrf_token,
        current_password,
        new_password,
    } = form.into_inner();
    if let Err(refused) = form_user(&page, &csrf_token, PATH) {
        return refused;
    }
    let actor = match page.actor(&req) {
        Ok(actor) => actor,
        Err(e) => return page.error(&e),
    };
    let mut errors = FieldErrors::new();
    for (field, value) in [
        ("current_password", &current_password),
        ("new_password", &new_password),
    ] {
        if value.expose_secret().is_empty() {
            errors.insert(field, page.lang.text("err_required").to_string());
        }
    }
    if !errors.is_empty() {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return account_page(&req, &page, &state, &actor, status, &errors).await;
    }
    let cookie = session_cookie(&req);
    let changed = passwords::change(
        &state,
        &actor,
        cookie.as_deref(),
        current_password.into_secret(),
        new_password.into_secret(),
    )
    .await;
    let (status, errors) = match changed {
        Ok(()) => return redirect_with_flash(PATH, "ok", "account_flash_password_changed", ""),
        Err(ApiError::Validation(errors)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            field_errors(page.lang, &errors),
        ),
        Err(ApiError::TooManyRequests(_)) => (
            StatusCode::TOO_MANY_REQUESTS,
            one("form", page.lang.text("error_too_many")),
        ),
        Err(e) => return page.error(&e),
    };
    account_page(&req, &page, &state, &actor, status, &errors).await
}

/// POST /account/verification: mail the verification link again (a few an
/// hour at most), then to the account page, which says how it went (the
/// banner's button and the account page's).
pub async fn resend_verification(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let back = PATH;
    if let Err(refused) = form_user(&page, &form.csrf_token, back) {
        return refused;
    }
    let sent = match page.actor(&req) {
        Ok(actor) => verification::resend(&state, &actor).await,
        Err(e) => Err(e),
    };
    match sent {
        Ok(()) => redirect_with_flash(back, "ok", "account_flash_verification_sent", ""),
        Err(ApiError::RateLimited { .. }) => {
            redirect_with_flash(back, "error", "account_flash_verification_throttled", "")
        }
        Err(e) => page.error(&e),
    }
}

/// POST /account/sessions/{id}/end: end one of one's sessions.
pub async fn end_session(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    if let Err(refused) = form_user(&page, &form.csrf_token, PATH) {
        return refused;
    }
    let result = async {
        let actor = page.actor(&req)?;
        let id = path
            .parse::<SessionId>()
            .map_err(|_| ApiError::NotFound("session"))?;
        account::end(&state, &actor, id).await
    }
    .await;
    match result {
        Ok(()) => redirect_with_flash(PATH, "ok", "account_flash_session_ended", ""),
        Err(e) => page.error(&e),
    }
}

/// POST /account/sessions/end-others: end every session but this one.
pub async fn end_other_sessions(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    if let Err(refused) = form_user(&page, &form.csrf_token, PATH) {
        return refused;
    }
    let cookie = session_cookie(&req);
    let result = match page.actor(&req) {
        Ok(actor) => account::end_others(&state, &actor, cookie.as_deref()).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(n) => redirect_with_flash(PATH, "ok", "account_flash_sessions_ended", &n.to_string()),
        Err(e) => page.error(&e),
    }
}

/// The visitor of a page (signing up, joining): their mails will be in the
/// page's language.
pub(super) fn visitor_of(page: &Page, req: &HttpRequest) -> Visitor {
    Visitor {
        language: Language::from_tag(page.lang.tag()),
        ..visitor(req)
    }
}

/// The mail language form as posted.
#[derive(Deserialize)]
pub struct LanguageForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    language: String,
}

/// POST /account/language: the language of one's mails.
pub async fn set_language(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<LanguageForm>,
) -> HttpResponse {
    if let Err(refused) = form_user(&page, &form.csrf_token, PATH) {
        return refused;
    }
    let Some(language) = [Language::En, Language::ZhCn]
        .into_iter()
        .find(|l| l.tag() == form.language)
    else {
        return page.error(&ApiError::BadRequest {
            code: "invalid_language",
            detail: "choose en or zh-CN".into(),
        });
    };
    let result = match page.actor(&req) {
        Ok(actor) => account::set_language(&state, &actor, language).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => redirect_with_flash(PATH, "ok", "account_flash_language_set", ""),
        Err(e) => page.error(&e),
    }
}
