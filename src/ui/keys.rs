//! The API keys page: list, create (shown once with snippets), revoke.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use minijinja::value::Serde;
use secrecy::ExposeSecret as _;
use serde::Serialize;

use super::pages::{CsrfForm, FieldErrors, admin_scope, field_errors, form_user, when};
use super::{Page, redirect_with_flash};
use crate::api::api_keys;
use crate::db;
use crate::domain::ApiKeyId;
use crate::error::ApiError;
use crate::state::AppState;

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
