//! A person's time zone, chosen on the account page: the form
//! (`time_zone_form.html`, a partial any account page includes with
//! [`form_context`]) and its POST. Times are shown in the chosen zone
//! (`app.js`, from the page's `data-time-zone`), in the browser's own
//! zone when none is chosen.

use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use minijinja::value::Serde;

use super::pages::{FieldErrors, field_errors, form_user};
use super::{Page, redirect_with_flash};
use crate::error::ApiError;
use crate::service::time_zone;
use crate::state::AppState;

/// POST /account/time-zone (the form is on the account page).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/account/time-zone", web::post().to(set_time_zone));
}

/// The time-zone form as posted.
#[derive(serde::Deserialize)]
pub struct TimeZoneForm {
    #[serde(default)]
    csrf_token: String,
    /// An IANA name, or empty for the browser's zone.
    #[serde(default)]
    time_zone: String,
}

/// What `time_zone_form.html` reads (as `tz`): the zone chosen (or typed,
/// when it was refused), the names to suggest, the field's error.
pub async fn form_context(
    state: &AppState,
    page: &Page,
    typed: Option<&str>,
    errors: &FieldErrors,
) -> Result<minijinja::Value, ApiError> {
    let choices = time_zone::choices(state).await?;
    Ok(context! {
        current => page.time_zone.as_deref(),
        value => typed.or(page.time_zone.as_deref()).unwrap_or_default(),
        choices => Serde(choices),
        errors => Serde(errors),
    })
}

/// POST /account/time-zone: choose a time zone (empty: the browser's);
/// an unknown name shows the form again with the error beside the field.
pub async fn set_time_zone(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<TimeZoneForm>,
) -> HttpResponse {
    let form = form.into_inner();
    if let Err(refused) = form_user(&page, &form.csrf_token, "/account") {
        return refused;
    }
    let actor = match page.actor(&req) {
        Ok(actor) => actor,
        Err(e) => return page.error(&e),
    };
    match time_zone::choose(&state, &actor, &form.time_zone).await {
        Ok(Some(zone)) => redirect_with_flash("/account", "ok", "flash_time_zone_set", &zone),
        Ok(None) => redirect_with_flash("/account", "ok", "flash_time_zone_browser", ""),
        Err(ApiError::Validation(errors)) => {
            let errors = field_errors(page.lang, &errors);
            let typed = form.time_zone.chars().take(64).collect::<String>();
            super::account::time_zone_refused(&req, &page, &state, &actor, &typed, &errors).await
        }
        Err(e) => page.error(&e),
    }
}
