//! Apps (mini-programs, official accounts, WeCom apps) over the REST API: register (verified against WeChat),
//! list with health, show, edit, delete; refresh now; the refresh log;
//! reading a token and reporting one WeChat rejected. Each handler takes
//! typed input, calls its use case (`crate::service::apps`,
//! `crate::service::token_read`) and answers a view (`super::views`).

mod input;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chrono::Utc;

pub use input::{
    CreateAppRequest, EditAppRequest, InvalidateRequest, ListQuery, LogQuery, TokenQuery,
};

use super::page_limit;
use super::views::apps::{AppPage, AppView, AttemptView, LogPage};
use super::views::tokens::InvalidateView;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::refresh::engine::AttemptOutcome;
use crate::service::Actor;
use crate::service::apps::{self, LogFilter};
use crate::service::token_read::{self, ReadError, Reader};
use crate::state::AppState;

/// `app` as answered now.
fn view(state: &AppState, app: &crate::db::apps::AppRow) -> AppView {
    AppView::new(app, &state.engine.config().limits, Utc::now())
}

/// POST /api/v1/apps: register; by default the first token is fetched at
/// once and the answer says whether WeChat accepted the credentials.
#[utoipa::path(
    post,
    path = "/api/v1/apps",
    tag = "apps",
    request_body = CreateAppRequest,
    security(("api_key" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 201, description = "The registered app, without its secret, and whether WeChat accepted the credentials", body = AppView),
        (status = 409, description = "The AppID is registered in this organisation already (`app_exists`), or the organisation has reached its app limit (`app_limit_reached`)", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
    ),
)]
pub async fn create(
    state: web::Data<AppState>,
    actor: Actor,
    body: web::Json<CreateAppRequest>,
) -> Result<HttpResponse, ApiError> {
    // Who may register is checked before what they sent.
    apps::may_register(&actor)?;
    let new = body.new_app()?;
    let registered = apps::register(&state, &actor, new, body.verify()).await?;
    let mut answer = view(&state, &registered.app);
    answer.verification = Some(
        registered
            .verification
            .as_ref()
            .map_or_else(AttemptView::not_checked, AttemptView::of),
    );
    Ok(HttpResponse::Created().json(answer))
}

/// GET /api/v1/apps: the tenant's apps with their health, by AppID.
#[utoipa::path(
    get,
    path = "/api/v1/apps",
    tag = "apps",
    params(ListQuery),
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "The organisation's apps with their health, by AppID", body = AppPage),
    ),
)]
pub async fn list(
    state: web::Data<AppState>,
    actor: Actor,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page_limit(query.limit)?;
    let after = query.after()?;
    let list = apps::list(&state, &actor, after.as_ref(), limit).await?;
    let page = AppPage::new(&list, &state.engine.config().limits, Utc::now());
    Ok(HttpResponse::Ok().json(page))
}

/// GET /api/v1/apps/{appid}
#[utoipa::path(
    get,
    path = "/api/v1/apps/{appid}",
    tag = "apps",
    params(("appid" = String, Path, description = "The app's id: the AppID of a mini-program or official account, e.g. `wx0123456789abcdef`, or a WeCom app's `{corpid}-{agentid}`")),
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "The app, with the last 4 characters of its secret for owners and admins", body = AppView),
    ),
)]
pub async fn show(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let shown = apps::show(&state, &actor, &path).await?;
    let mut answer = view(&state, &shown.app);
    answer.secret_hint = shown.secret_hint;
    Ok(HttpResponse::Ok().json(answer))
}

/// PATCH /api/v1/apps/{appid}: rename, replace or set secrets, switch mode, enable/disable.
#[utoipa::path(
    patch,
    path = "/api/v1/apps/{appid}",
    tag = "apps",
    params(("appid" = String, Path, description = "The app's id: the AppID of a mini-program or official account, e.g. `wx0123456789abcdef`, or a WeCom app's `{corpid}-{agentid}`")),
    request_body = EditAppRequest,
    security(("api_key" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The edited app", body = AppView),
    ),
)]
pub async fn edit(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<String>,
    body: web::Json<EditAppRequest>,
) -> Result<HttpResponse, ApiError> {
    let app = apps::edit(&state, &actor, &path, &body.changes()).await?;
    Ok(HttpResponse::Ok().json(view(&state, &app)))
}

/// DELETE /api/v1/apps/{appid}
#[utoipa::path(
    delete,
    path = "/api/v1/apps/{appid}",
    tag = "apps",
    params(("appid" = String, Path, description = "The app's id: the AppID of a mini-program or official account, e.g. `wx0123456789abcdef`, or a WeCom app's `{corpid}-{agentid}`")),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Removed"),
    ),
)]
pub async fn remove(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    apps::remove(&state, &actor, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// POST /api/v1/apps/{appid}/refresh: refresh now and say how it went.
#[utoipa::path(
    post,
    path = "/api/v1/apps/{appid}/refresh",
    tag = "apps",
    params(("appid" = String, Path, description = "The app's id: the AppID of a mini-program or official account, e.g. `wx0123456789abcdef`, or a WeCom app's `{corpid}-{agentid}`")),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The app and how the refresh went (`refresh`)", body = AppView),
        (status = 429, description = "The gate refused the call: `bypass_cooldown` (refresh now went past a retry time moments ago) or `budget_spent` (today's upstream calls are spent); see `Retry-After`", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
)]
pub async fn refresh(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (app, outcome) = apps::refresh_now(&state, &actor, &path).await?;
    if let AttemptOutcome::Refused(r) = outcome {
        return Err(apps::refused(r));
    }
    let mut answer = view(&state, &app);
    answer.refresh = Some(AttemptView::of(&outcome));
    Ok(HttpResponse::Ok().json(answer))
}

/// GET /api/v1/apps/{appid}/refresh-log
#[utoipa::path(
    get,
    path = "/api/v1/apps/{appid}/refresh-log",
    tag = "apps",
    params(("appid" = String, Path, description = "The app's id: the AppID of a mini-program or official account, e.g. `wx0123456789abcdef`, or a WeCom app's `{corpid}-{agentid}`"), LogQuery),
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "Refresh attempts, newest first", body = LogPage),
    ),
)]
pub async fn app_log(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<String>,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    log(&state, &actor, Some(&path), &query).await
}

/// GET /api/v1/refresh-log: every app of the tenant.
#[utoipa::path(
    get,
    path = "/api/v1/refresh-log",
    tag = "apps",
    params(LogQuery),
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "Refresh attempts of every app, newest first", body = LogPage),
    ),
)]
pub async fn tenant_log(
    state: web::Data<AppState>,
    actor: Actor,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    log(&state, &actor, None, &query).await
}

/// A page of the refresh log of one app or every app.
async fn log(
    state: &AppState,
    actor: &Actor,
    app: Option<&str>,
    query: &LogQuery,
) -> Result<HttpResponse, ApiError> {
    let filter = LogFilter {
        app,
        failures_only: query.failures_only()?,
        before: query.before,
        limit: page_limit(query.limit)?,
    };
    let page = apps::refresh_log(state, actor, filter).await?;
    Ok(HttpResponse::Ok().json(LogPage::from(page)))
}

/// GET /api/v1/apps/{appid}/token: a token valid for at least `min_ttl`.
#[utoipa::path(
    get,
    path = "/api/v1/apps/{appid}/token",
    tag = "tokens",
    params(("appid" = String, Path, description = "The app's id: the AppID of a mini-program or official account, e.g. `wx0123456789abcdef`, or a WeCom app's `{corpid}-{agentid}`"), TokenQuery),
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "A token valid for at least `min_ttl` seconds", body = super::views::tokens::TokenView),
        (status = 429, description = "This API key reads faster than `TOKENVAULT_KEY_READ_RATE` allows (`key_read_rate`); see `Retry-After`", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "No valid token can be had now (`token_unavailable`, with `reason` and, when a failure is behind it, WeChat's `errcode`, `errmsg` and its explanation); see `Retry-After`", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
)]
pub async fn token(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    // Every case of the read (most reads are answered before the router,
    // from memory, by `super::token_fast_path`).
    let scope = token_read::require_reader(&principal)?;
    let min_ttl = query.min_ttl()?;
    let appid =
        crate::domain::AppId::parse("appid", &path).map_err(|_| ApiError::NotFound("app"))?;
    let reader = match &principal {
        Principal::ApiKey(k) => Reader::Key(k),
        Principal::Session(_) => Reader::Person(&scope),
    };
    match token_read::read(&state, reader, &appid, min_ttl).await {
        Ok(t) => Ok(super::token_fast_path::token_response(&appid, &t)),
        Err(e) => Err(read_error(e)),
    }
}

/// The API's answer to a read that got no token.
pub(super) fn read_error(e: ReadError) -> ApiError {
    match e {
        ReadError::NotFound => ApiError::NotFound("app"),
        ReadError::KeyLimited => ApiError::Forbidden("this API key is limited to other apps"),
        ReadError::RateLimited(wait) => ApiError::RateLimited {
            code: "key_read_rate",
            detail: "this API key reads tokens faster than TOKENVAULT_KEY_READ_RATE allows: \
                     keep the token until its expires_in instead of reading it for every call"
                .into(),
            retry_after: wait.as_secs().max(1),
        },
        ReadError::Unavailable(u) => ApiError::TokenUnavailable(u),
        ReadError::Internal(e) => ApiError::Internal(e),
    }
}

/// POST /api/v1/apps/{appid}/token/invalidate: compare-and-refresh.
#[utoipa::path(
    post,
    path = "/api/v1/apps/{appid}/token/invalidate",
    tag = "tokens",
    params(("appid" = String, Path, description = "The app's id: the AppID of a mini-program or official account, e.g. `wx0123456789abcdef`, or a WeCom app's `{corpid}-{agentid}`")),
    request_body = InvalidateRequest,
    security(("api_key" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "Refreshed if the reported token is still the current one (compare-and-refresh)", body = InvalidateView),
        (status = 429, description = "The gate refused the refresh: `token_too_young`, `invalidate_limit`, `force_refresh_limit`, `backoff` or `budget_spent`; see `Retry-After`", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
)]
pub async fn invalidate(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<String>,
    body: web::Json<InvalidateRequest>,
) -> Result<HttpResponse, ApiError> {
    let done = apps::invalidate(&state, &actor, &path, &body.access_token).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(InvalidateView::from(&done)))
}
