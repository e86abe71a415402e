//! The operator page's app-limit form: an operator sets one organisation's
//! own app limit, or gives it the service's default again.

use actix_web::{HttpRequest, HttpResponse, web};

use super::pages::{FormRefusal, form_session, signed_out};
use super::{Page, redirect_with_flash};
use crate::domain::{Role, TenantId};
use crate::error::ApiError;
use crate::state::AppState;

/// The app-limit form of one tenant on the operator page.
#[derive(serde::Deserialize)]
pub struct AppLimitForm {
    #[serde(default)]
    csrf_token: String,
    /// A number, or empty for the service's default.
    #[serde(default)]
    app_limit: String,
}

/// POST /operator/tenants/{id}/app-limit: an operator sets the tenant's
/// own app limit, or (empty) gives it the default again; audited.
pub async fn set_app_limit(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<AppLimitForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let operator = match form_session(&page, &form.csrf_token) {
        Ok(user) => user,
        Err(FormRefusal::SignedOut) => return signed_out("/operator"),
        Err(FormRefusal::Stale) => {
            return redirect_with_flash("/operator", "error", "flash_stale_form", "");
        }
    };
    if operator.role != Role::Operator {
        return page.error(&ApiError::Forbidden(
            "only operators of the service may see this",
        ));
    }
    let Ok(tenant_id) = path.parse::<TenantId>() else {
        return page.not_found();
    };
    let text = form.app_limit.trim();
    let limit = if text.is_empty() {
        None
    } else {
        match text.parse::<i32>() {
            Ok(n) if (0..=crate::service::tenants::MAX_APP_LIMIT).contains(&n) => Some(n),
            _ => return redirect_with_flash("/operator", "error", "ops_app_limit_invalid", ""),
        }
    };
    let actor = match page.actor(&req) {
        Ok(actor) => actor,
        Err(e) => return page.error(&e),
    };
    let by = crate::service::tenants::LimitSetter::Operator(&actor);
    match crate::service::tenants::set_app_limit(&state.pool, by, tenant_id, limit).await {
        Ok(Some(tenant)) => {
            redirect_with_flash("/operator", "ok", "ops_app_limit_set", &tenant.name)
        }
        Ok(None) => page.not_found(),
        Err(e) => page.error(&e),
    }
}
