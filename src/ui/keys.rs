//! The API keys page: list, create (shown once with snippets), revoke.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use minijinja::value::Serde;
use secrecy::ExposeSecret as _;
use serde::Serialize;

use super::pages::{CsrfForm, FieldErrors, admin_scope, field_errors, form_user, when};
use super::{Page, redirect_with_flash};
use crate::domain::ApiKeyId;
use crate::error::ApiError;
use crate::service::Actor;
use crate::service::keys::{self, ApiKeyRow, CreatedKey, NewKey};
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
    /// Who created it (their email), and whether they have left.
    created_by: Option<String>,
    creator_left: bool,
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

/// Render the keys page with the tenant's keys and apps to limit a new key to.
async fn keys_page(
    page: &Page,
    state: &AppState,
    actor: &Actor,
    status: StatusCode,
    form: &NewKeyForm,
    errors: &FieldErrors,
    shown: Option<&ShownKey>,
) -> HttpResponse {
    let (rows, apps) = match keys::page(state, actor).await {
        Ok(loaded) => loaded,
        Err(e) => return page.error(&e),
    };
    let apps: Vec<AppChoice> = apps
        .into_iter()
        .map(|a| AppChoice {
            appid: a.appid,
            name: a.name,
        })
        .collect();
    let keys: Vec<KeyLine> = rows.into_iter().map(KeyLine::of).collect();
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

/// An app a new key can be limited to.
#[derive(Serialize)]
struct AppChoice {
    appid: String,
    name: String,
}

impl KeyLine {
    fn of(k: ApiKeyRow) -> Self {
        Self {
            id: k.id.to_string(),
            name: k.name,
            prefix: k.prefix,
            read_only: k.read_only,
            limited: k.limited_to_apps,
            apps: k.apps,
            created_at: when(k.created_at),
            last_used_at: k.last_used_at.map(when),
            revoked_at: k.revoked_at.map(when),
            creator_left: k.created_by.is_none() && k.created_by_email.is_some(),
            created_by: k.created_by_email,
        }
    }
}

/// GET /keys: the organisation's API keys (owners and admins).
pub async fn keys(req: HttpRequest, page: Page, state: web::Data<AppState>) -> HttpResponse {
    match admin_scope(&page).and_then(|_| page.actor(&req)) {
        Ok(actor) => {
            keys_page(
                &page,
                &state,
                &actor,
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

/// The page for a key just created: shown once, with snippets that read a
/// token of an app the key may read.
async fn created_page(
    page: &Page,
    state: &AppState,
    actor: &Actor,
    created: CreatedKey,
    limited_to: &[String],
) -> HttpResponse {
    let appid = match keys::sample_appid(state, actor, limited_to).await {
        Ok(appid) => appid,
        Err(e) => return page.error(&e),
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
        page,
        state,
        actor,
        StatusCode::CREATED,
        &NewKeyForm::default(),
        &FieldErrors::new(),
        Some(&shown),
    )
    .await
}

/// POST /keys: create a key with the API's rules; the answer shows it once.
pub async fn create_key(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let form = NewKeyForm::from_pairs(form.into_inner());
    if let Err(refused) = form_user(&page, &form.csrf_token, "/keys") {
        return refused;
    }
    let actor = match admin_scope(&page).and_then(|_| page.actor(&req)) {
        Ok(actor) => actor,
        Err(e) => return page.error(&e),
    };
    let input = NewKey {
        name: &form.name,
        appids: &form.apps,
        read_only: form.read_only,
    };
    match keys::create(&state, &actor, &input).await {
        Ok(created) => created_page(&page, &state, &actor, created, &form.apps).await,
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
                &actor,
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
    if let Err(refused) = form_user(&page, &form.csrf_token, "/keys") {
        return refused;
    }
    let result = async {
        admin_scope(&page)?;
        let actor = page.actor(&req)?;
        let id = path
            .parse::<ApiKeyId>()
            .map_err(|_| ApiError::NotFound("API key"))?;
        keys::revoke(&state, &actor, id).await
    }
    .await;
    match result {
        Ok(key) => redirect_with_flash("/keys", "ok", "flash_key_revoked", &key.prefix),
        Err(e) => page.error(&e),
    }
}
