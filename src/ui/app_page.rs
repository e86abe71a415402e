//! An app's page in the web UI: its token's state (never the token), its
//! refresh history with failures explained in both languages, and its
//! actions (replace a secret, switch refreshing, delete; "refresh now" is
//! in `super::pages`), each a use case of `crate::service::apps`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use minijinja::value::Serde;
use serde::Serialize;

use super::pages::{AppCard, FieldErrors, SecretForm, field_errors, form_user, when};
use super::{Page, charts, redirect_with_flash, timeline};
use crate::domain::{Credential, RefreshOutcome, Role, Trigger};
use crate::error::ApiError;
use crate::secret::AppSecret;
use crate::service::Actor;
use crate::service::apps::{self, AppChanges, Span};
use crate::state::AppState;
use crate::upstream::errcodes::{self, Errcode};

/// Refresh attempts the page lists.
const LOG_ENTRIES: i64 = 50;

/// One refresh attempt as the app page lists it.
#[derive(Serialize)]
struct LogLine {
    when: String,
    credential: Credential,
    trigger: Trigger,
    outcome: RefreshOutcome,
    errcode: Option<i32>,
    errmsg: Option<String>,
    latency_ms: Option<i32>,
    explanation: Option<&'static Errcode>,
}

/// The app page's query: which span the timeline shows.
#[derive(serde::Deserialize)]
pub struct AppPageQuery {
    span: Option<String>,
}

/// GET /apps/{appid}?span=24h|7d: token status (never the token), the
/// refresh timeline of the span (24 hours unless asked), calls against the
/// budget, refresh history, failures explained in both languages.
pub async fn app_page(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<AppPageQuery>,
) -> HttpResponse {
    let actor = match page.actor(&req) {
        Ok(actor) => actor,
        Err(e) => return page.error(&e),
    };
    let span = match query.span.as_deref().map(Span::parse) {
        None => Span::default(),
        Some(Some(span)) => span,
        Some(None) => {
            return page.error(&ApiError::BadRequest {
                code: "invalid_query",
                detail: "span must be 24h or 7d".into(),
            });
        }
    };
    let shown = Shown {
        status: StatusCode::OK,
        errors: &FieldErrors::new(),
        span,
    };
    render(&page, &state, &actor, &path, &shown).await
}

/// How the page is shown: its status, its forms' errors, the timeline's span.
struct Shown<'a> {
    status: StatusCode,
    errors: &'a FieldErrors,
    span: Span,
}

/// Render the page of the app `appid`, with field errors of its forms.
async fn render(
    page: &Page,
    state: &AppState,
    actor: &Actor,
    appid: &str,
    how: &Shown<'_>,
) -> HttpResponse {
    // The table lists the newest LOG_ENTRIES; the latency chart draws more.
    let fetched =
        i64::try_from(charts::LATENCY_ATTEMPTS).map_or(LOG_ENTRIES, |n| n.max(LOG_ENTRIES));
    let shown = match apps::show_with_log(state, actor, appid, fetched).await {
        Ok(shown) => shown,
        Err(e) => return page.error(&e),
    };
    let history = match apps::history(state, &shown.app, how.span).await {
        Ok(history) => history,
        Err(e) => return page.error(&e),
    };
    let attempts: Vec<charts::Attempt> = shown
        .log
        .iter()
        .map(|r| charts::Attempt {
            when: when(r.created_at),
            trigger: r.trigger,
            outcome: r.outcome,
            errcode: r.errcode,
            latency_ms: r.latency_ms,
        })
        .collect();
    let latency_chart = charts::latency(&attempts);
    let log: Vec<LogLine> = shown
        .log
        .into_iter()
        .take(usize::try_from(LOG_ENTRIES).unwrap_or(50))
        .map(|r| LogLine {
            when: when(r.created_at),
            explanation: r
                .errcode
                .and_then(|c| errcodes::explain_for(errcodes::kind_of(&r.appid), i64::from(c))),
            credential: r.credential,
            trigger: r.trigger,
            outcome: r.outcome,
            errcode: r.errcode,
            errmsg: r.errmsg,
            latency_ms: r.latency_ms,
        })
        .collect();
    let app = &shown.app;
    let tickets = match super::app_tickets::lines(state, actor, &app.appid).await {
        Ok(lines) => lines,
        Err(e) => return page.error(&e),
    };
    let can_edit = actor.principal.role().at_least(Role::Admin);
    let limits = &state.engine.config().limits;
    let budget_chart = timeline::budget(
        &history,
        app.upstream_calls_today,
        i64::from(limits.daily_calls),
        i64::from(limits.scheduler_reserve),
    );
    page.render(
        how.status,
        "app.html",
        context! {
            app => Serde(AppCard::of(app)),
            log => Serde(&log),
            tickets => Serde(&tickets),
            app_kind => crate::upstream::errcodes::kind_of(&app.appid).as_str(),
            latency_chart => Serde(&latency_chart),
            timeline => Serde(timeline::timeline(&history)),
            budget_chart => Serde(&budget_chart),
            can_edit,
            // How to read this app's token, for those who may create keys.
            snippets => Serde(can_edit
                .then(|| super::snippets::Snippets::new(&page.base_url, &app.appid, None))),
            has_secondary => app.has_secondary_secret,
            budget => context! {
                daily => limits.daily_calls,
                reserve => limits.scheduler_reserve,
            },
            errors => Serde(how.errors),
        },
    )
}

/// Where a form of the app page `appid` goes back to.
fn back_to(appid: &str) -> String {
    format!("/apps/{}", appid.trim().to_ascii_lowercase())
}

/// Which action of the app page a post is.
#[derive(Clone, Copy)]
enum AppAction {
    Secret,
    Secondary,
    Enabled,
    Delete,
    AccountType,
}

impl AppAction {
    /// The action named by the last path segment.
    fn parse(name: &str) -> Option<Self> {
        match name {
            "secret" => Some(Self::Secret),
            "secondary" => Some(Self::Secondary),
            "enabled" => Some(Self::Enabled),
            "delete" => Some(Self::Delete),
            "account_type" => Some(Self::AccountType),
            _ => None,
        }
    }
}

/// The secrets a form sent, to be borrowed by the changes.
struct Sent {
    secret: AppSecret,
    secondary: AppSecret,
}

/// The changes an edit action of `form` asks for and the flash that says
/// they were made; a switch that is neither on nor off is a bad request.
fn changes<'a>(
    action: AppAction,
    form: &SecretForm,
    sent: &'a Sent,
) -> Result<(AppChanges<'a>, &'static str), ApiError> {
    Ok(match action {
        AppAction::Secret => (
            AppChanges {
                secret: Some(&sent.secret),
                ..Default::default()
            },
            "flash_secret_replaced",
        ),
        AppAction::Secondary if form.clear.is_some() => (
            AppChanges {
                secondary_secret: Some(None),
                ..Default::default()
            },
            "flash_secondary_cleared",
        ),
        AppAction::Secondary => (
            AppChanges {
                secondary_secret: Some(Some(&sent.secondary)),
                ..Default::default()
            },
            "flash_secondary_set",
        ),
        AppAction::AccountType => {
            let Some(label) = form.account_type.as_deref().and_then(|t| t.parse().ok()) else {
                return Err(ApiError::BadRequest {
                    code: "invalid_field",
                    detail: "account_type must be mini_program or official_account".into(),
                });
            };
            (
                AppChanges {
                    account_type: Some(label),
                    ..Default::default()
                },
                "flash_account_type_set",
            )
        }
        AppAction::Enabled | AppAction::Delete => {
            // The form sends `true` or `false`; anything else changes nothing.
            let on = match form.enabled.as_deref() {
                Some("true") => true,
                Some("false") => false,
                _ => {
                    return Err(ApiError::BadRequest {
                        code: "invalid_field",
                        detail: "enabled must be true or false".into(),
                    });
                }
            };
            let flash = if on {
                "flash_enabled"
            } else {
                "flash_disabled"
            };
            (
                AppChanges {
                    enabled: Some(on),
                    ..Default::default()
                },
                flash,
            )
        }
    })
}

/// `POST /apps/{appid}/{action}` (`secret`, `secondary`, `enabled`, `delete`,
/// `account_type`): one action of the app page, by the API's rules, then a
/// flash and redirect; a bad secret shows the app page with the error next
/// to its field.
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
    if let Err(refused) = form_user(&page, &form.csrf_token, &back_to(&appid)) {
        return refused;
    }
    // The app must be there and the person allowed to change it before
    // what the form asks for matters.
    let found = async {
        let actor = page.actor(&req)?;
        let app = apps::editable(&state, &actor, &appid).await?;
        Ok::<_, ApiError>((actor, app))
    }
    .await;
    let (actor, app) = match found {
        Ok(found) => found,
        Err(e) => return page.error(&e),
    };
    if matches!(action, AppAction::Delete) {
        return match apps::remove(&state, &actor, &app.appid).await {
            Ok(app) => redirect_with_flash("/dashboard", "ok", "flash_app_deleted", &app.appid),
            Err(e) => page.error(&e),
        };
    }
    let sent = Sent {
        secret: form.secret.clone(),
        secondary: form.secondary_secret.clone(),
    };
    let (changes, flash) = match changes(action, &form, &sent) {
        Ok(asked) => asked,
        Err(e) => return page.error(&e),
    };
    match apps::edit(&state, &actor, &app.appid, &changes).await {
        Ok(app) => redirect_with_flash(&format!("/apps/{}", app.appid), "ok", flash, &app.appid),
        Err(ApiError::Validation(errors)) => {
            let errors = field_errors(page.lang, &errors);
            let shown = Shown {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                errors: &errors,
                span: Span::default(),
            };
            render(&page, &state, &actor, &app.appid, &shown).await
        }
        Err(e) => page.error(&e),
    }
}
