//! The apps of the web UI: the dashboard (every app with its health) and
//! registering an app. Each handler builds the actor from the page's
//! session, calls the use case of `crate::service::apps` and renders a
//! template or redirects with a flash message.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use minijinja::value::Serde;
use serde::Deserialize;

use super::pages::{
    AppCard, FieldErrors, FormRefusal, admin_scope, field_errors, form_session, one, signed_out,
};
use super::{Page, redirect_with_flash};
use crate::domain::{AccountType, Health, Role, TokenMode};
use crate::error::ApiError;
use crate::refresh::engine::AttemptOutcome;
use crate::secret::AppSecret;
use crate::service::apps::{self, NewAppInput};
use crate::state::AppState;

/// GET /dashboard: every app with its health, and a one-line summary.
pub async fn dashboard(req: HttpRequest, page: Page, state: web::Data<AppState>) -> HttpResponse {
    if let Some(res) = super::ops::operator_home(&page) {
        return res;
    }
    let listed = async {
        let actor = page.actor(&req)?;
        let list = apps::list(&state, &actor, None, crate::api::MAX_PAGE).await?;
        let day = apps::last_day_per_app(&state, &actor).await?;
        Ok::<_, ApiError>((actor, list, day))
    }
    .await;
    let (actor, list, (since, hours)) = match listed {
        Ok(listed) => listed,
        Err(e) => return page.error(&e),
    };
    let cards: Vec<AppCard> = list.apps.iter().map(AppCard::of).collect();
    let count = |h: Health| cards.iter().filter(|c| c.health == h.as_str()).count();
    let summary = context! {
        total => cards.len(),
        healthy => count(Health::Healthy),
        refreshing => count(Health::Refreshing),
        degraded => count(Health::Degraded),
        failing => count(Health::Failing),
        disabled => count(Health::Disabled),
    };
    let can_edit = actor.principal.role().at_least(Role::Admin);
    // Each listed app's sparkline, by AppID.
    let mut lines = super::activity::sparklines(since, &hours);
    let sparklines: HashMap<&str, super::activity::Sparkline> = list
        .apps
        .iter()
        .filter_map(|a| Some((a.appid.as_str(), lines.remove(&a.id)?)))
        .collect();
    page.render(
        StatusCode::OK,
        "dashboard.html",
        context! { apps => Serde(&cards), summary, can_edit, sparklines => Serde(&sparklines) },
    )
}

/// The registration form as posted (the secret is never sent back).
#[derive(Debug, Deserialize)]
pub struct NewAppForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    appid: String,
    /// Zeroized when dropped, masked in `Debug`.
    #[serde(default)]
    secret: AppSecret,
    #[serde(default)]
    name: String,
    #[serde(default)]
    token_mode: String,
    /// `mini_program` (default) or `official_account` (WeChat apps).
    #[serde(default)]
    account_type: String,
    /// `wechat` (default) or `wecom`.
    #[serde(default)]
    kind: String,
    #[serde(default)]
    corpid: String,
    #[serde(default)]
    agentid: String,
}

/// Why a form cannot be used.
enum FormError {
    /// Fields to show again with these errors.
    Fields(FieldErrors),
    /// Anything else: the error page.
    Other(ApiError),
}

impl NewAppForm {
    /// The registration with the API's rules; a bad mode is named only
    /// when every other field is right.
    fn new_app(&self, lang: super::i18n::Lang) -> Result<NewAppInput, FormError> {
        let mode = self.token_mode.parse::<TokenMode>();
        let name_given = Some(self.name.trim()).filter(|n| !n.is_empty());
        if self.kind == "wecom" {
            let parsed = NewAppInput::parse_wecom(
                &self.corpid,
                &self.agentid,
                &self.secret,
                name_given,
                None,
            );
            return match parsed {
                Ok(new) => Ok(new),
                Err(ApiError::Validation(errors)) => {
                    Err(FormError::Fields(field_errors(lang, &errors)))
                }
                Err(e) => Err(FormError::Other(e)),
            };
        }
        let label = match self.account_type.as_str() {
            "" => Ok(None),
            t => t.parse::<AccountType>().map(Some),
        };
        let parsed = NewAppInput::parse(
            &self.appid,
            &self.secret,
            name_given,
            mode.ok(),
            label.ok().flatten(),
            None,
        );
        match (parsed, mode) {
            (Ok(_), Ok(_)) if label.is_err() => Err(FormError::Fields(one(
                "account_type",
                lang.text("err_invalid_account_type"),
            ))),
            (Ok(new), Ok(_)) => Ok(new),
            (Err(ApiError::Validation(errors)), _) => {
                Err(FormError::Fields(field_errors(lang, &errors)))
            }
            (Ok(_), Err(())) => Err(FormError::Fields(one(
                "token_mode",
                lang.text("err_invalid_mode"),
            ))),
            (Err(e), _) => Err(FormError::Other(e)),
        }
    }
}

/// GET /apps/new: owners and admins only (viewers get the refusal page).
pub async fn new_app_form(page: Page) -> HttpResponse {
    if let Err(e) = admin_scope(&page) {
        return page.error(&e);
    }
    page.render(
        StatusCode::OK,
        "app_new.html",
        context! { form => context! { token_mode => "stable", account_type => "mini_program" }, errors => FieldErrors::new() },
    )
}

/// POST /apps/new: register with the API's rules, then the app's page.
pub async fn register_app(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<NewAppForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let again = |errors: FieldErrors, status| {
        page.render(
            status,
            "app_new.html",
            context! { form => context! { appid => form.appid.as_str(), name => form.name.as_str(), token_mode => form.token_mode.as_str(),
                account_type => form.account_type.as_str(), kind => form.kind.as_str(), corpid => form.corpid.as_str(), agentid => form.agentid.as_str() }, errors },
        )
    };
    match form_session(&page, &form.csrf_token) {
        Ok(_) => {}
        Err(FormRefusal::SignedOut) => return signed_out("/apps/new"),
        Err(FormRefusal::Stale) => {
            return again(
                one("form", page.lang.text("flash_stale_form")),
                StatusCode::FORBIDDEN,
            );
        }
    }
    let actor = match page
        .actor(&req)
        .and_then(|a| apps::may_register(&a).map(|_| a))
    {
        Ok(actor) => actor,
        Err(e) => return page.error(&e),
    };
    let new = match form.new_app(page.lang) {
        Ok(new) => new,
        Err(FormError::Fields(errors)) => return again(errors, StatusCode::UNPROCESSABLE_ENTITY),
        Err(FormError::Other(e)) => return page.error(&e),
    };
    match apps::register(&state, &actor, new, true).await {
        Ok(registered) => {
            let appid = &registered.app.appid;
            let (kind, key) = registered_flash(registered.verification.as_ref());
            redirect_with_flash(&format!("/apps/{appid}"), kind, key, appid)
        }
        Err(ApiError::Conflict {
            code: "app_limit_reached",
            ..
        }) => match apps::app_limit(&state, &actor).await {
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
            Err(e) => page.error(&e),
        },
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
