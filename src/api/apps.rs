//! Mini-programs: register (verified against WeChat), list with health,
//! show, edit, delete; refresh now; the refresh log; reading a token.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::{audit_event, page_limit};
use crate::auth::{Principal, TenantScope};
use crate::crypto::Binding;
use crate::db;
use crate::db::apps::AppRow;
use crate::domain::{AppId, AppUuid, FieldError, Name, Role, TokenMode, parse_app_secret};
use crate::error::ApiError;
use crate::refresh::engine::{AttemptOutcome, InvalidateOutcome, Trigger};
use crate::refresh::gate::{Limits, Refusal};
use crate::refresh::policy;
use crate::secret::AppSecret;
use crate::service::token_read::{self, ReadError, Reader};
use crate::state::AppState;
use crate::upstream::{ErrorClass, FetchFailure, errcodes};

/// Largest `min_ttl`: WeChat tokens live 7200 s.
pub(crate) const MAX_MIN_TTL: u64 = 7000;

/// Body of POST /api/v1/apps.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAppRequest {
    /// WeChat AppID, e.g. `wx0123456789abcdef`.
    appid: String,
    /// The AppSecret (32 hex characters); never shown again.
    #[schema(value_type = String, format = Password)]
    secret: AppSecret,
    /// Display name (default: the AppID).
    #[serde(default)]
    name: Option<String>,
    /// `stable` (default) or `classic`.
    #[serde(default)]
    token_mode: Option<TokenMode>,
    /// A second AppSecret, tried when the first is rejected (during a secret reset).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    secondary_secret: Option<AppSecret>,
    /// Check the credentials with WeChat now (default true).
    #[serde(default)]
    verify: Option<bool>,
}

/// Body of PATCH /api/v1/apps/{appid}; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(
    clippy::option_option,
    reason = "PATCH tells an absent field from an explicit null"
)]
#[serde(deny_unknown_fields)]
pub struct EditAppRequest {
    /// New display name.
    #[serde(default)]
    name: Option<String>,
    /// New AppSecret.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    secret: Option<AppSecret>,
    /// New secondary AppSecret; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = Password)]
    secondary_secret: Option<Option<AppSecret>>,
    /// `stable` or `classic`.
    #[serde(default)]
    token_mode: Option<TokenMode>,
    /// Switch refreshing on or off.
    #[serde(default)]
    enabled: Option<bool>,
}

/// Distinguish an absent field (`None`) from an explicit `null` (`Some(None)`).
#[allow(clippy::option_option)]
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The app of `appid` in the caller's tenant, or 404; 403 for a key limited to other apps.
pub async fn find_app(
    state: &AppState,
    principal: &Principal,
    scope: &TenantScope,
    appid: &str,
) -> Result<AppRow, ApiError> {
    let appid = AppId::parse("appid", appid).map_err(|_| ApiError::NotFound("app"))?;
    let app = db::apps::get(&state.pool, scope.tenant_id, appid.as_str())
        .await?
        .ok_or(ApiError::NotFound("app"))?;
    if let Principal::ApiKey(k) = principal
        && !k.allows_app(app.id)
    {
        return Err(ApiError::Forbidden("this API key is limited to other apps"));
    }
    Ok(app)
}

/// An errcode and what it means, for answers and pages.
pub fn explained(errcode: Option<i64>) -> Value {
    match errcode.and_then(errcodes::explain) {
        Some(e) => json!({
            "meaning_en": e.meaning_en, "meaning_zh": e.meaning_zh,
            "fix_en": e.fix_en, "fix_zh": e.fix_zh,
        }),
        None => Value::Null,
    }
}

/// An app's health now, from its row.
pub fn app_health(app: &AppRow) -> policy::Health {
    let valid = app.expires_at.is_some_and(|e| e > Utc::now());
    let class = app.last_error_class.as_deref().and_then(|c| match c {
        "transient" => Some(ErrorClass::Transient),
        "quota" => Some(ErrorClass::Quota),
        "configuration" => Some(ErrorClass::Configuration),
        "bug" => Some(ErrorClass::Bug),
        _ => None,
    });
    policy::health(app.enabled, valid, app.failure_streak, class)
}

fn app_view(app: &AppRow, secret_hint: Option<String>, limits: &Limits) -> Value {
    let now = Utc::now();
    let health = app_health(app);
    let token = match (app.fetched_at, app.expires_at) {
        (Some(f), Some(e)) if e > now => json!({
            "fetched_at": f, "expires_at": e, "expires_in": (e - now).num_seconds(),
        }),
        _ => Value::Null,
    };
    let last_error = if app.failure_streak > 0 {
        json!({
            "class": app.last_error_class, "errcode": app.last_errcode, "errmsg": app.last_errmsg,
            "explanation": explained(app.last_errcode.map(i64::from)),
        })
    } else {
        Value::Null
    };
    let mut view = json!({
        "appid": app.appid,
        "name": app.name,
        "token_mode": app.token_mode,
        "enabled": app.enabled,
        "health": health,
        "has_secondary_secret": app.has_secondary_secret,
        "token": token,
        "next_refresh_at": if app.enabled { json!(app.next_refresh_at) } else { Value::Null },
        "last_attempt_at": app.last_attempt_at,
        "last_success_at": app.last_success_at,
        "failure_streak": app.failure_streak,
        "failures_24h": app.failures_24h,
        "upstream_calls_today": app.upstream_calls_today,
        "upstream_budget": {
            "daily_calls": limits.daily_calls,
            "scheduler_reserve": limits.scheduler_reserve,
            "force_refreshes_today": app.force_refreshes_today,
            "force_refreshes_daily": limits.forced_daily,
        },
        "last_error": last_error,
        "created_at": app.created_at,
        "updated_at": app.updated_at,
    });
    if let (Some(hint), Some(obj)) = (secret_hint, view.as_object_mut()) {
        obj.insert("secret_hint".into(), json!(hint));
    }
    view
}

fn outcome_view(outcome: &AttemptOutcome) -> Value {
    match outcome {
        AttemptOutcome::Refreshed => json!({ "ok": true, "outcome": "success" }),
        AttemptOutcome::Unchanged => json!({ "ok": true, "outcome": "unchanged" }),
        AttemptOutcome::Disabled => json!({ "ok": false, "outcome": "disabled" }),
        AttemptOutcome::Refused(r) => json!({
            "ok": false, "outcome": "refused", "reason": r.reason,
            "detail": r.reason.explain(), "retry_after": r.retry_after.as_secs().max(1),
        }),
        AttemptOutcome::Failed(f) => failure_view(f),
    }
}

fn outcome_name(outcome: &AttemptOutcome) -> &'static str {
    match outcome {
        AttemptOutcome::Refreshed => "success",
        AttemptOutcome::Unchanged => "unchanged",
        AttemptOutcome::Disabled => "disabled",
        AttemptOutcome::Refused(_) => "refused",
        AttemptOutcome::Failed(_) => "failure",
    }
}

fn failure_view(f: &FetchFailure) -> Value {
    json!({
        "ok": false, "outcome": "failure", "class": f.class, "errcode": f.errcode, "errmsg": f.errmsg,
        "explanation": explained(f.errcode),
    })
}

/// A registration, checked field by field: the same rules for the JSON API
/// and the registration page.
pub struct NewAppInput {
    appid: AppId,
    secret: AppSecret,
    name: String,
    mode: TokenMode,
    secondary: Option<AppSecret>,
}

impl NewAppInput {
    fn parse(body: &CreateAppRequest) -> Result<Self, ApiError> {
        Self::parse_fields(
            &body.appid,
            &body.secret,
            body.name.as_deref(),
            body.token_mode,
            body.secondary_secret.as_ref(),
        )
    }

    /// Check every field; a validation error names each field that is wrong.
    pub fn parse_fields(
        appid: &str,
        secret: &AppSecret,
        name: Option<&str>,
        mode: Option<TokenMode>,
        secondary: Option<&AppSecret>,
    ) -> Result<Self, ApiError> {
        let checked = (
            AppId::parse("appid", appid),
            parse_app_secret("secret", secret),
            name.map(|n| Name::parse("name", n)).transpose(),
            secondary
                .map(|s| parse_app_secret("secondary_secret", s))
                .transpose(),
        );
        match checked {
            (Ok(appid), Ok(secret), Ok(name), Ok(secondary)) => Ok(Self {
                name: name.map_or_else(|| appid.to_string(), |n| n.to_string()),
                appid,
                secret,
                mode: mode.unwrap_or_default(),
                secondary,
            }),
            (a, s, n, s2) => Err(ApiError::Validation(
                [a.err(), s.err(), n.err(), s2.err()]
                    .into_iter()
                    .flatten()
                    .collect(),
            )),
        }
    }
}

/// Register an app in the caller's tenant, in one transaction (nothing is
/// stored half-way); with `verify`, fetch its first token at once and say
/// how that went. Shared by the JSON API and the registration page.
pub async fn register(
    req: &HttpRequest,
    state: &AppState,
    scope: &TenantScope,
    new: NewAppInput,
    verify: bool,
) -> Result<(AppRow, Option<AttemptOutcome>), ApiError> {
    let registered_at = Utc::now();
    let (appid, name, mode) = (new.appid, new.name, new.mode);
    let id = AppUuid::new();
    let secret_ct = state
        .crypto
        .encrypt(
            new.secret.expose_secret().as_bytes(),
            &Binding::app_secret(scope.tenant_id, id),
        )
        .map_err(anyhow::Error::from)?;
    let secondary_ct = new
        .secondary
        .map(|s| {
            state.crypto.encrypt(
                s.expose_secret().as_bytes(),
                &Binding::secondary_app_secret(scope.tenant_id, id),
            )
        })
        .transpose()
        .map_err(anyhow::Error::from)?;

    let mut tx = state.pool.begin().await?;
    // Room for one more app under the organisation's limit (its row stays
    // locked until this transaction ends: concurrent registrations take turns).
    db::app_limits::claim_app_slot(&mut tx, scope.tenant_id, state.settings.max_apps_per_tenant)
        .await??;
    let inserted = db::apps::insert(
        &mut tx,
        &db::apps::NewApp {
            id,
            tenant_id: scope.tenant_id,
            appid: appid.as_str(),
            name: &name,
            token_mode: mode.as_str(),
            secret_ciphertext: &secret_ct,
            secondary_secret_ciphertext: secondary_ct.as_deref(),
            // Verifying fetches the first token itself; the scheduler is the
            // fallback should that request die half-way.
            first_refresh_at: if verify {
                registered_at + chrono::Duration::seconds(30)
            } else {
                registered_at
            },
        },
    )
    .await;
    match inserted {
        Err(e) if db::apps::is_duplicate_appid(&e) => {
            return Err(ApiError::Conflict {
                code: "app_exists",
                detail: format!(
                    "{appid} is registered in this organisation already; edit it instead"
                ),
            });
        }
        other => other?,
    }
    db::audit::record(
        &mut *tx,
        db::audit::AuditEvent {
            actor_api_key_id: scope.api_key_id,
            detail: json!({ "name": name, "token_mode": mode }),
            ..audit_event(
                req,
                Some(scope.tenant_id),
                scope.user_id,
                crate::domain::AuditAction::AppRegistered,
                Some(appid.to_string()),
            )
        },
    )
    .await?;
    tx.commit().await?;

    let outcome = if verify {
        Some(
            state
                .engine
                .refresh_now(id, Trigger::Registration, registered_at)
                .await
                .map_err(anyhow::Error::from)?,
        )
    } else {
        None
    };
    let app = db::apps::get(&state.pool, scope.tenant_id, appid.as_str())
        .await?
        .ok_or(ApiError::NotFound("app"))?;
    Ok((app, outcome))
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
        (status = 201, description = "The registered app, without its secret, and whether WeChat accepted the credentials", body = crate::api::openapi::AppView),
        (status = 409, description = "The AppID is registered in this organisation already (`app_exists`), or the organisation has reached its app limit (`app_limit_reached`)", body = crate::api::openapi::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateAppRequest>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(Role::Admin)?;
    if let Principal::ApiKey(k) = &principal
        && k.limited
    {
        return Err(ApiError::Forbidden(
            "this API key is limited to some apps and cannot register new ones",
        ));
    }
    let body = body.into_inner();
    let new = NewAppInput::parse(&body)?;
    let verify = body.verify.unwrap_or(true);
    let (app, outcome) = register(&req, &state, &scope, new, verify).await?;
    let verification = match outcome {
        Some(outcome) => outcome_view(&outcome),
        None => json!({ "ok": null, "outcome": "not_checked" }),
    };
    let mut view = app_view(&app, None, &state.engine.config().limits);
    if let Some(obj) = view.as_object_mut() {
        obj.insert("verification".into(), verification);
    }
    Ok(HttpResponse::Created().json(view))
}

/// Query of GET /api/v1/apps.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// Apps after this AppID (`next_after` of the previous page).
    #[param(pattern = "^wx[0-9a-fA-F]{16}$")]
    after: Option<String>,
}

/// GET /api/v1/apps: the tenant's apps with their health, by AppID.
#[utoipa::path(
    get,
    path = "/api/v1/apps",
    tag = "apps",
    params(ListQuery),
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "The organisation's apps with their health, by AppID", body = crate::api::openapi::AppPage),
    ),
)]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(Role::Viewer)?;
    let limit = page_limit(query.limit)?;
    // The cursor is an AppID; anything else (a NUL byte, say) never reaches SQL.
    let after = query
        .after
        .as_deref()
        .map(|a| AppId::parse("after", a))
        .transpose()
        .map_err(|_| ApiError::BadRequest {
            code: "invalid_query",
            detail: "after must be an AppID: the next_after of the previous page".into(),
        })?;
    let only = match &principal {
        Principal::ApiKey(k) if k.limited => Some(k.app_ids.to_vec()),
        _ => None,
    };
    let apps = db::apps::list(
        &state.pool,
        scope.tenant_id,
        only.as_deref(),
        after.as_ref().map(AppId::as_str),
        limit,
    )
    .await?;
    let next = (apps.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| apps.last().map(|a| a.appid.clone()))
        .flatten();
    let items: Vec<Value> = apps
        .iter()
        .map(|a| app_view(a, None, &state.engine.config().limits))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items, "next_after": next })))
}

/// GET /api/v1/apps/{appid}
#[utoipa::path(
    get,
    path = "/api/v1/apps/{appid}",
    tag = "apps",
    params(("appid" = String, Path, description = "WeChat AppID of the mini-program, e.g. `wx0123456789abcdef`")),
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "The app, with the last 4 characters of its secret for owners and admins", body = crate::api::openapi::AppView),
    ),
)]
pub async fn show(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(Role::Viewer)?;
    let app = find_app(&state, &principal, &scope, &path).await?;
    // The last 4 characters of the secret, for owners and admins only.
    let hint = if scope.role.at_least(Role::Admin) {
        let ct: Vec<u8> = sqlx::query_scalar("select secret_ciphertext from apps where id = $1")
            .bind(app.id)
            .fetch_one(&state.pool)
            .await?;
        state
            .crypto
            .decrypt_text(&ct, &Binding::app_secret(app.tenant_id, app.id))
            .ok()
            .map(|s| AppSecret::from(s).hint())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(app_view(&app, hint, &state.engine.config().limits)))
}

/// PATCH /api/v1/apps/{appid}: rename, replace or set secrets, switch mode, enable/disable.
#[utoipa::path(
    patch,
    path = "/api/v1/apps/{appid}",
    tag = "apps",
    params(("appid" = String, Path, description = "WeChat AppID of the mini-program, e.g. `wx0123456789abcdef`")),
    request_body = EditAppRequest,
    security(("api_key" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The edited app", body = crate::api::openapi::AppView),
    ),
)]
pub async fn edit(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Json<EditAppRequest>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(Role::Admin)?;
    let app = find_app(&state, &principal, &scope, &path).await?;
    let body = body.into_inner();
    let changes = AppChanges {
        name: body.name.as_deref(),
        secret: body.secret.as_ref(),
        secondary_secret: body.secondary_secret.as_ref().map(Option::as_ref),
        token_mode: body.token_mode,
        enabled: body.enabled,
    };
    let app = edit_app(&req, &state, &scope, &app, &changes).await?;
    Ok(HttpResponse::Ok().json(app_view(&app, None, &state.engine.config().limits)))
}

/// Changes to an app; `None` leaves a field as it is.
#[derive(Default)]
#[allow(
    clippy::option_option,
    reason = "the secondary secret can be left alone, set or cleared"
)]
pub struct AppChanges<'a> {
    /// New display name.
    pub name: Option<&'a str>,
    /// New AppSecret.
    pub secret: Option<&'a AppSecret>,
    /// New secondary AppSecret; `Some(None)` clears it.
    pub secondary_secret: Option<Option<&'a AppSecret>>,
    /// New token mode.
    pub token_mode: Option<TokenMode>,
    /// Switch refreshing on or off.
    pub enabled: Option<bool>,
}

/// Validate and apply `changes` to `app` with its audit record (all or
/// nothing); the app as it is afterwards. Shared by the API and the app page.
pub async fn edit_app(
    req: &HttpRequest,
    state: &AppState,
    scope: &TenantScope,
    app: &AppRow,
    changes: &AppChanges<'_>,
) -> Result<AppRow, ApiError> {
    let checked = (
        changes.name.map(|n| Name::parse("name", n)).transpose(),
        changes
            .secret
            .map(|s| parse_app_secret("secret", s))
            .transpose(),
        changes
            .secondary_secret
            .map(|o| {
                o.map(|s| parse_app_secret("secondary_secret", s))
                    .transpose()
            })
            .transpose(),
    );
    let (name, secret, secondary) = match checked {
        (Ok(n), Ok(s), Ok(s2)) => (n, s, s2),
        (n, s, s2) => {
            return Err(ApiError::Validation(
                [n.err(), s.err(), s2.err()].into_iter().flatten().collect(),
            ));
        }
    };
    let encrypt = |plain: &AppSecret, binding: Binding| {
        state
            .crypto
            .encrypt(plain.expose_secret().as_bytes(), &binding)
            .map_err(anyhow::Error::from)
    };
    let secret_ct = secret
        .as_ref()
        .map(|s| encrypt(s, Binding::app_secret(app.tenant_id, app.id)))
        .transpose()?;
    let secondary_ct = match &secondary {
        Some(Some(s)) => Some(Some(encrypt(
            s,
            Binding::secondary_app_secret(app.tenant_id, app.id),
        )?)),
        Some(None) => Some(None),
        None => None,
    };
    let mode = changes.token_mode.map(TokenMode::as_str);
    let edit = db::apps::AppEdit {
        name: name.as_ref().map(Name::as_str),
        token_mode: mode,
        secret_ciphertext: secret_ct.as_deref(),
        secondary_secret_ciphertext: secondary_ct.as_ref().map(|o| o.as_deref()),
        enabled: changes.enabled,
    };
    let mut tx = state.pool.begin().await?;
    db::tokens::lock_state(&mut tx, app.id).await?;
    db::apps::lock(&mut tx, scope.tenant_id, &app.appid)
        .await?
        .ok_or(ApiError::NotFound("app"))?;
    db::apps::update(&mut tx, app.id, &edit).await?;
    let changed: Vec<&str> = [
        ("name", name.is_some()),
        ("secret", secret.is_some()),
        ("secondary_secret", secondary.is_some()),
        ("token_mode", mode.is_some()),
        ("enabled", changes.enabled.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, c)| c.then_some(f))
    .collect();
    db::audit::record(
        &mut *tx,
        db::audit::AuditEvent {
            actor_api_key_id: scope.api_key_id,
            detail: json!({ "changed": changed, "enabled": changes.enabled }),
            ..audit_event(
                req,
                Some(scope.tenant_id),
                scope.user_id,
                crate::domain::AuditAction::AppEdited,
                Some(app.appid.clone()),
            )
        },
    )
    .await?;
    tx.commit().await?;
    db::apps::get(&state.pool, scope.tenant_id, &app.appid)
        .await?
        .ok_or(ApiError::NotFound("app"))
}

/// DELETE /api/v1/apps/{appid}
#[utoipa::path(
    delete,
    path = "/api/v1/apps/{appid}",
    tag = "apps",
    params(("appid" = String, Path, description = "WeChat AppID of the mini-program, e.g. `wx0123456789abcdef`")),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 204, description = "Removed"),
    ),
)]
pub async fn remove(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(Role::Admin)?;
    let app = find_app(&state, &principal, &scope, &path).await?;
    remove_app(&req, &state, &scope, &app).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Delete `app` with its audit record. Shared by the API and the app page.
pub async fn remove_app(
    req: &HttpRequest,
    state: &AppState,
    scope: &TenantScope,
    app: &AppRow,
) -> Result<(), ApiError> {
    let mut tx = state.pool.begin().await?;
    db::tokens::lock_state(&mut tx, app.id).await?;
    if !db::apps::delete(&mut *tx, scope.tenant_id, &app.appid).await? {
        return Err(ApiError::NotFound("app"));
    }
    db::audit::record(
        &mut *tx,
        db::audit::AuditEvent {
            actor_api_key_id: scope.api_key_id,
            ..audit_event(
                req,
                Some(scope.tenant_id),
                scope.user_id,
                crate::domain::AuditAction::AppDeleted,
                Some(app.appid.clone()),
            )
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Refresh `app` now, audited; the app as it is afterwards and how the
/// attempt went. Shared by the JSON API and the app page.
pub async fn refresh_app(
    req: &HttpRequest,
    state: &AppState,
    scope: &TenantScope,
    app: &AppRow,
) -> Result<(AppRow, AttemptOutcome), ApiError> {
    let outcome = state
        .engine
        .refresh_now(app.id, Trigger::Manual, Utc::now())
        .await
        .map_err(anyhow::Error::from)?;
    audit_app(
        req,
        state,
        scope,
        crate::domain::AuditAction::AppRefreshed,
        &app.appid,
        json!({ "outcome": outcome_name(&outcome) }),
    )
    .await?;
    let app = db::apps::get(&state.pool, scope.tenant_id, &app.appid)
        .await?
        .ok_or(ApiError::NotFound("app"))?;
    Ok((app, outcome))
}

/// POST /api/v1/apps/{appid}/refresh: refresh now and say how it went.
#[utoipa::path(
    post,
    path = "/api/v1/apps/{appid}/refresh",
    tag = "apps",
    params(("appid" = String, Path, description = "WeChat AppID of the mini-program, e.g. `wx0123456789abcdef`")),
    security(("api_key" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "The app and how the refresh went (`refresh`)", body = crate::api::openapi::AppView),
        (status = 429, description = "The gate refused the call: `bypass_cooldown` (refresh now went past a retry time moments ago) or `budget_spent` (today's upstream calls are spent); see `Retry-After`", body = crate::api::openapi::Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
)]
pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(Role::Admin)?;
    let app = find_app(&state, &principal, &scope, &path).await?;
    let (app, outcome) = refresh_app(&req, &state, &scope, &app).await?;
    if let AttemptOutcome::Refused(r) = outcome {
        return Err(refused(r));
    }
    let mut view = app_view(&app, None, &state.engine.config().limits);
    if let Some(obj) = view.as_object_mut() {
        obj.insert("refresh".into(), outcome_view(&outcome));
    }
    Ok(HttpResponse::Ok().json(view))
}

/// Query of the refresh-log endpoints.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// `failure` for failures only, `all` (default) for every attempt.
    #[param(pattern = "^(failure|all)$")]
    outcome: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// Entries older than this id (`next_before` of the previous page).
    before: Option<i64>,
}

impl LogQuery {
    fn failures_only(&self) -> Result<bool, ApiError> {
        match self.outcome.as_deref() {
            None | Some("all") => Ok(false),
            Some("failure") => Ok(true),
            Some(_) => Err(ApiError::BadRequest {
                code: "invalid_query",
                detail: "outcome must be 'failure' or 'all'".into(),
            }),
        }
    }
}

fn log_view(rows: Vec<db::tokens::LogRow>, limit: i64) -> Value {
    let next = (rows.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let items: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let explanation = explained(r.errcode.map(i64::from));
            let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
            if let Some(obj) = v.as_object_mut() {
                obj.insert("explanation".into(), explanation);
            }
            v
        })
        .collect();
    json!({ "items": items, "next_before": next })
}

/// GET /api/v1/apps/{appid}/refresh-log
#[utoipa::path(
    get,
    path = "/api/v1/apps/{appid}/refresh-log",
    tag = "apps",
    params(("appid" = String, Path, description = "WeChat AppID of the mini-program, e.g. `wx0123456789abcdef`"), LogQuery),
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "Refresh attempts, newest first", body = crate::api::openapi::LogPage),
    ),
)]
pub async fn app_log(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(Role::Viewer)?;
    let app = find_app(&state, &principal, &scope, &path).await?;
    let limit = page_limit(query.limit)?;
    let rows = db::tokens::list_log(
        &state.pool,
        scope.tenant_id,
        Some(app.id),
        query.failures_only()?,
        query.before,
        limit,
    )
    .await?;
    Ok(HttpResponse::Ok().json(log_view(rows, limit)))
}

/// GET /api/v1/refresh-log: every app of the tenant.
#[utoipa::path(
    get,
    path = "/api/v1/refresh-log",
    tag = "apps",
    params(LogQuery),
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "Refresh attempts of every app, newest first", body = crate::api::openapi::LogPage),
    ),
)]
pub async fn tenant_log(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    let scope = principal.require(Role::Viewer)?;
    if let Principal::ApiKey(k) = &principal
        && k.limited
    {
        return Err(ApiError::Forbidden(
            "this API key is limited to some apps: read each app's refresh log",
        ));
    }
    let limit = page_limit(query.limit)?;
    let rows = db::tokens::list_log(
        &state.pool,
        scope.tenant_id,
        None,
        query.failures_only()?,
        query.before,
        limit,
    )
    .await?;
    Ok(HttpResponse::Ok().json(log_view(rows, limit)))
}

/// Query of GET /api/v1/apps/{appid}/token.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// The token must stay valid at least this many seconds (0 to 7000, default 0).
    #[param(value_type = Option<u64>, minimum = 0, maximum = 7000)]
    min_ttl: Option<String>,
}

/// Who may read tokens: any API key of the tenant (read-only included), and
/// signed-in owners and admins; never viewers.
fn require_token_reader(principal: &Principal) -> Result<TenantScope, ApiError> {
    match principal {
        Principal::ApiKey(_) => principal.require(Role::Viewer),
        Principal::Session(_) => principal.require(Role::Admin),
    }
}

fn parse_min_ttl(raw: Option<&str>) -> Result<Duration, ApiError> {
    let Some(raw) = raw else {
        return Ok(Duration::ZERO);
    };
    match raw.parse::<u64>() {
        Ok(s) if s <= MAX_MIN_TTL => Ok(Duration::from_secs(s)),
        _ => Err(ApiError::BadRequest {
            code: "invalid_min_ttl",
            detail: format!("min_ttl must be a whole number of seconds from 0 to {MAX_MIN_TTL}"),
        }),
    }
}

/// GET /api/v1/apps/{appid}/token: a token valid for at least `min_ttl`.
#[utoipa::path(
    get,
    path = "/api/v1/apps/{appid}/token",
    tag = "tokens",
    params(("appid" = String, Path, description = "WeChat AppID of the mini-program, e.g. `wx0123456789abcdef`"), TokenQuery),
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "A token valid for at least `min_ttl` seconds", body = crate::api::openapi::TokenView),
        (status = 429, description = "This API key reads faster than `TOKENVAULT_KEY_READ_RATE` allows (`key_read_rate`); see `Retry-After`", body = crate::api::openapi::Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "No valid token can be had now (`token_unavailable`, with `reason` and, when a failure is behind it, WeChat's `errcode`, `errmsg` and its explanation); see `Retry-After`", body = crate::api::openapi::Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
)]
pub async fn token(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    read_token(&state, &principal, &path, query.min_ttl.as_deref()).await
}

/// A token read: every case, from memory or the database (most reads are
/// answered before the router by [`super::token_fast_path`]).
async fn read_token(
    state: &AppState,
    principal: &Principal,
    appid: &str,
    min_ttl: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let scope = require_token_reader(principal)?;
    let min_ttl = parse_min_ttl(min_ttl)?;
    let appid = AppId::parse("appid", appid).map_err(|_| ApiError::NotFound("app"))?;
    let reader = match principal {
        Principal::ApiKey(k) => Reader::Key(k),
        Principal::Session(_) => Reader::Person(&scope),
    };
    match token_read::read(state, reader, &appid, min_ttl).await {
        Ok(t) => Ok(super::token_fast_path::token_response(&appid, &t)),
        Err(e) => Err(read_error(e)),
    }
}

/// The API's answer to a read that got no token.
pub fn read_error(e: ReadError) -> ApiError {
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

/// Body of POST /api/v1/apps/{appid}/token/invalidate.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvalidateRequest {
    /// The token WeChat rejected (`40001`/`42001`).
    #[schema(value_type = String, format = Password)]
    access_token: crate::secret::AccessToken,
}

/// POST /api/v1/apps/{appid}/token/invalidate: compare-and-refresh.
#[utoipa::path(
    post,
    path = "/api/v1/apps/{appid}/token/invalidate",
    tag = "tokens",
    params(("appid" = String, Path, description = "WeChat AppID of the mini-program, e.g. `wx0123456789abcdef`")),
    request_body = InvalidateRequest,
    security(("api_key" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 200, description = "Refreshed if the reported token is still the current one (compare-and-refresh)", body = crate::api::openapi::InvalidateView),
        (status = 429, description = "The gate refused the refresh: `token_too_young`, `invalidate_limit`, `force_refresh_limit`, `backoff` or `budget_spent`; see `Retry-After`", body = crate::api::openapi::Problem, content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
)]
pub async fn invalidate(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Json<InvalidateRequest>,
) -> Result<HttpResponse, ApiError> {
    let scope = require_token_reader(&principal)?;
    let app = find_app(&state, &principal, &scope, &path).await?;
    let reported = body.access_token.expose_secret();
    if reported.is_empty() || reported.len() > 16 * 1024 {
        return Err(FieldError::new(
            "access_token",
            "invalid_token",
            "send the token your WeChat call rejected",
        )
        .into());
    }
    let outcome = state
        .engine
        .invalidate(app.id, reported)
        .await
        .map_err(anyhow::Error::from)?;
    let body = match outcome {
        InvalidateOutcome::Stale => {
            json!({ "refreshed": false, "reason": "the reported token is no longer the current one; fetch the token again" })
        }
        InvalidateOutcome::Refreshed(AttemptOutcome::Refused(r)) => {
            // Refused reports are audited too: a key's, counted a minute at
            // a time (a looping client writes one row); a person's, each.
            match &principal {
                Principal::ApiKey(k) => k.count_refused_report(),
                Principal::Session(_) => {
                    audit_app(
                        &req,
                        &state,
                        &scope,
                        crate::domain::AuditAction::TokenInvalidateRefused,
                        &app.appid,
                        json!({ "reason": r.reason }),
                    )
                    .await?;
                }
            }
            return Err(refused(r));
        }
        InvalidateOutcome::Refreshed(o) => {
            audit_app(
                &req,
                &state,
                &scope,
                crate::domain::AuditAction::TokenInvalidated,
                &app.appid,
                json!({ "outcome": outcome_name(&o) }),
            )
            .await?;
            json!({ "refreshed": true, "refresh": outcome_view(&o) })
        }
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}

/// The answer to a call the gate refused: 429 with the rule as its code.
pub fn refused(r: Refusal) -> ApiError {
    ApiError::RateLimited {
        code: r.reason.as_str(),
        detail: r.reason.explain().into(),
        retry_after: r.retry_after.as_secs().max(1),
    }
}

/// Audit an action on an app by the caller of `scope`.
async fn audit_app(
    req: &HttpRequest,
    state: &AppState,
    scope: &TenantScope,
    action: crate::domain::AuditAction,
    appid: &str,
    detail: Value,
) -> Result<(), ApiError> {
    db::audit::record(
        &state.pool,
        db::audit::AuditEvent {
            actor_api_key_id: scope.api_key_id,
            detail,
            ..audit_event(
                req,
                Some(scope.tenant_id),
                scope.user_id,
                action,
                Some(appid.to_string()),
            )
        },
    )
    .await?;
    Ok(())
}
