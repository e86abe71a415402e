//! The alerts page: the organisation's channels (everyone; never a
//! secret), a form to add one, delete and "send test" with the target's
//! answer shown (owners and admins), and each channel's delivery log.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use minijinja::value::Serde;
use serde::Serialize;

use super::i18n::Lang;
use super::pages::{CsrfForm, FieldErrors, admin_scope, form_user, tenant_scope, when};
use super::{Page, redirect_with_flash};
use crate::domain::{AlertChannelId, ChannelKind, FieldError};
use crate::error::ApiError;
use crate::secret::SigningSecret;
use crate::service::Actor;
use crate::service::alerts::{self, ChannelRow, DEFAULT_EVENTS, DeliveryRow, NewChannel};
use crate::state::AppState;

/// Register the alerts pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/alerts")
            .route(web::get().to(alerts))
            .route(web::post().to(create_channel)),
    )
    .route("/alerts/{id}", web::get().to(channel_log))
    .route("/alerts/{id}/test", web::post().to(test_channel))
    .route("/alerts/{id}/delete", web::post().to(delete_channel));
}

/// Deliveries the log page shows.
const LOG_LINES: i64 = 100;

/// A channel as the page lists it (the URL with robot keys masked).
#[derive(Serialize)]
struct ChannelLine {
    id: String,
    kind: &'static str,
    name: String,
    url: String,
    signed: bool,
    events: Vec<String>,
    apps: Vec<String>,
    created_at: String,
    confirmed: bool,
}

impl ChannelLine {
    fn of(c: ChannelRow) -> Self {
        Self {
            id: c.id.to_string(),
            kind: c.kind.as_str(),
            name: c.name,
            url: c.url,
            signed: c.has_secret,
            events: c.events,
            apps: c.appids,
            created_at: when(c.created_at),
            confirmed: c.confirmed,
        }
    }
}

/// A delivery as the pages show it.
#[derive(Serialize)]
struct DeliveryLine {
    id: String,
    event: &'static str,
    appid: Option<String>,
    status: String,
    attempts: i32,
    created_at: String,
    last_attempt_at: Option<String>,
    next_attempt_at: Option<String>,
    http_status: Option<i32>,
    latency_ms: Option<i32>,
    answer: Option<String>,
    error: Option<String>,
    summary_id: Option<String>,
}

impl DeliveryLine {
    fn of(d: DeliveryRow) -> Self {
        let pending = d.status == crate::domain::DeliveryStatus::Pending;
        Self {
            id: d.id.to_string(),
            event: d.event_type.as_str(),
            appid: d.appid,
            status: serde_json::to_value(d.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            attempts: d.attempts,
            created_at: when(d.created_at),
            last_attempt_at: d.last_attempt_at.map(when),
            next_attempt_at: pending.then(|| when(d.next_attempt_at)),
            http_status: d.http_status,
            latency_ms: d.latency_ms,
            answer: d.answer,
            error: d.error,
            summary_id: d.summary_id.map(|s| s.to_string()),
        }
    }
}

/// The new-channel form as posted; `events` and `apps` repeat. The secret
/// is never shown again, not even after an error.
#[derive(Debug, Default, Serialize)]
pub struct ChannelForm {
    #[serde(skip)]
    csrf_token: String,
    kind: String,
    name: String,
    url: String,
    to: String,
    #[serde(skip)]
    secret: SigningSecret,
    events: Vec<String>,
    apps: Vec<String>,
}

impl ChannelForm {
    /// The form a page starts with: a webhook taking every app event.
    fn blank() -> Self {
        Self {
            kind: ChannelKind::Webhook.as_str().into(),
            events: DEFAULT_EVENTS.iter().map(|e| e.as_str().into()).collect(),
            ..Self::default()
        }
    }

    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut form = Self::default();
        for (field, value) in pairs {
            match field.as_str() {
                "csrf_token" => form.csrf_token = value,
                "kind" => form.kind = value,
                "name" => form.name = value,
                "url" => form.url = value,
                "to" => form.to = value,
                "secret" => form.secret = SigningSecret::from(value),
                "events" => form.events.push(value),
                "apps" => form.apps.push(value),
                _ => {}
            }
        }
        form
    }
}

/// The page's own words for a field error (`alerts_err_<field>_<code>`),
/// else the catalogue's general one (`err_<code>`), else the API's sentence.
fn field_errors(lang: Lang, errors: &[FieldError]) -> FieldErrors {
    errors
        .iter()
        .map(|e| {
            let own = lang.text(&format!("alerts_err_{}_{}", e.field, e.code));
            let text = if own.is_empty() {
                let general = lang.text(&format!("err_{}", e.code));
                if general.is_empty() || e.field != "name" {
                    e.message.clone()
                } else {
                    general.to_string()
                }
            } else {
                own.to_string()
            };
            (e.field, text)
        })
        .collect()
}

/// Everything the alerts page renders besides the channels.
struct Shown<'a> {
    form: &'a ChannelForm,
    errors: &'a FieldErrors,
    test: Option<(String, DeliveryLine)>,
    /// Why a test was not sent (unconfirmed channel, too many tests).
    refused: Option<String>,
}

async fn alerts_page(
    page: &Page,
    state: &AppState,
    actor: &Actor,
    status: StatusCode,
    shown: Shown<'_>,
) -> HttpResponse {
    let (channels, manage, apps) = match alerts::page(state, actor).await {
        Ok(loaded) => loaded,
        Err(e) => return page.error(&e),
    };
    let channels: Vec<ChannelLine> = channels.into_iter().map(ChannelLine::of).collect();
    let apps: Vec<(String, String)> = apps.into_iter().map(|a| (a.appid, a.name)).collect();
    let kinds: Vec<&str> = ChannelKind::ALL.iter().map(|k| k.as_str()).collect();
    let events: Vec<&str> = DEFAULT_EVENTS.iter().map(|e| e.as_str()).collect();
    let (test_channel, test) = shown.test.unzip();
    page.render(
        status,
        "alerts.html",
        context! {
            channels => Serde(&channels),
            manage,
            apps => Serde(&apps),
            kinds,
            events,
            form => Serde(shown.form),
            errors => Serde(shown.errors),
            test_channel,
            test => Serde(&test),
            test_refused => shown.refused,
        },
    )
}

fn page_actor(page: &Page, req: &HttpRequest, admin: bool) -> Result<Actor, ApiError> {
    if admin {
        admin_scope(page)?;
    } else {
        tenant_scope(page)?;
    }
    page.actor(req)
}

/// GET /alerts: the channels; the forms for owners and admins.
pub async fn alerts(req: HttpRequest, page: Page, state: web::Data<AppState>) -> HttpResponse {
    let actor = match page_actor(&page, &req, false) {
        Ok(actor) => actor,
        Err(e) => return page.error(&e),
    };
    let form = ChannelForm::blank();
    let shown = Shown {
        form: &form,
        errors: &FieldErrors::new(),
        test: None,
        refused: None,
    };
    alerts_page(&page, &state, &actor, StatusCode::OK, shown).await
}

/// POST /alerts: add a channel with the API's rules; field errors on the form.
pub async fn create_channel(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let form = ChannelForm::from_pairs(form.into_inner());
    if let Err(refused) = form_user(&page, &form.csrf_token, "/alerts") {
        return refused;
    }
    let actor = match page_actor(&page, &req, true) {
        Ok(actor) => actor,
        Err(e) => return page.error(&e),
    };
    let input = NewChannel {
        kind: &form.kind,
        name: &form.name,
        url: &form.url,
        to: Some(&form.to),
        secret: Some(&form.secret),
        events: Some(&form.events),
        apps: Some(&form.apps),
    };
    match alerts::create(&state, &actor, &input).await {
        Ok(channel) => redirect_with_flash("/alerts", "ok", "flash_channel_created", &channel.name),
        Err(ApiError::Validation(errors)) => {
            let errors = field_errors(page.lang, &errors);
            let shown = Shown {
                form: &form,
                errors: &errors,
                test: None,
                refused: None,
            };
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            alerts_page(&page, &state, &actor, status, shown).await
        }
        Err(e @ (ApiError::Conflict { .. } | ApiError::RateLimited { .. })) => {
            let (key, status) = if matches!(e, ApiError::RateLimited { .. }) {
                (
                    "alerts_too_many_confirmations",
                    StatusCode::TOO_MANY_REQUESTS,
                )
            } else {
                ("alerts_too_many", StatusCode::CONFLICT)
            };
            let errors = FieldErrors::from([("form", page.lang.text(key).into())]);
            let shown = Shown {
                form: &form,
                errors: &errors,
                test: None,
                refused: None,
            };
            alerts_page(&page, &state, &actor, status, shown).await
        }
        Err(e) => page.error(&e),
    }
}

fn channel_id(raw: &str) -> Result<AlertChannelId, ApiError> {
    raw.parse::<AlertChannelId>()
        .map_err(|_| ApiError::NotFound("alert channel"))
}

/// POST /alerts/{id}/delete: delete after the confirmation step.
pub async fn delete_channel(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    if let Err(refused) = form_user(&page, &form.csrf_token, "/alerts") {
        return refused;
    }
    let result = async {
        let actor = page_actor(&page, &req, true)?;
        alerts::delete(&state, &actor, channel_id(&path)?).await
    }
    .await;
    match result {
        Ok(name) => redirect_with_flash("/alerts", "ok", "flash_channel_deleted", &name),
        Err(e) => page.error(&e),
    }
}

/// POST /alerts/{id}/test: send a test now; the page shows the answer.
pub async fn test_channel(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    if let Err(refused) = form_user(&page, &form.csrf_token, "/alerts") {
        return refused;
    }
    let actor = match page_actor(&page, &req, true) {
        Ok(actor) => actor,
        Err(e) => return page.error(&e),
    };
    let sent = async {
        let id = channel_id(&path)?;
        let delivery = alerts::send_test(&state, &actor, id).await?;
        let (channel, _) = alerts::deliveries(&state, &actor, id, 1).await?;
        Ok::<_, ApiError>((channel.name, DeliveryLine::of(delivery)))
    }
    .await;
    match sent {
        Ok(test) => {
            let form = ChannelForm::blank();
            let shown = Shown {
                form: &form,
                errors: &FieldErrors::new(),
                test: Some(test),
                refused: None,
            };
            alerts_page(&page, &state, &actor, StatusCode::OK, shown).await
        }
        Err(e) => test_refused(&page, &state, &actor, &e).await,
    }
}

/// The alerts page saying why a test was not sent (at 409 or 429, with
/// `Retry-After`), or the error page.
async fn test_refused(page: &Page, state: &AppState, actor: &Actor, e: &ApiError) -> HttpResponse {
    let (status, text, wait) = match e {
        ApiError::RateLimited { retry_after, .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            page.lang
                .text("alerts_test_too_many")
                .replace("{seconds}", &retry_after.to_string()),
            Some(*retry_after),
        ),
        ApiError::Conflict {
            code: "channel_unconfirmed",
            ..
        } => (
            StatusCode::CONFLICT,
            page.lang.text("alerts_test_unconfirmed").to_string(),
            None,
        ),
        other => return page.error(other),
    };
    let form = ChannelForm::blank();
    let shown = Shown {
        form: &form,
        errors: &FieldErrors::new(),
        test: None,
        refused: Some(text),
    };
    let mut res = alerts_page(page, state, actor, status, shown).await;
    if let Some(wait) = wait {
        res.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from(wait),
        );
    }
    res
}

/// GET /alerts/{id}: a channel and its delivery log, newest first.
pub async fn channel_log(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let loaded = async {
        let actor = page_actor(&page, &req, false)?;
        alerts::deliveries(&state, &actor, channel_id(&path)?, LOG_LINES).await
    }
    .await;
    match loaded {
        Ok((channel, rows)) => {
            let deliveries: Vec<DeliveryLine> = rows.into_iter().map(DeliveryLine::of).collect();
            let channel = ChannelLine::of(channel);
            page.render(
                StatusCode::OK,
                "alert_channel.html",
                context! {
                    channel => Serde(&channel),
                    deliveries => Serde(&deliveries),
                },
            )
        }
        Err(e) => page.error(&e),
    }
}
