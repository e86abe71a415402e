//! The members page's section on people who left: the live API keys they
//! created, listed per person, with a confirmation step that revokes them.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::pages::{admin_scope, form_user, when};
use super::{Page, redirect_with_flash};
use crate::error::ApiError;
use crate::service::Actor;
use crate::service::keys;
use crate::state::AppState;

/// Register the section's form.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/members/departed-keys/revoke",
        web::post().to(revoke_departed_keys),
    );
}

/// A key of someone who left, as the section lists it.
#[derive(Serialize)]
pub(super) struct DepartedKey {
    name: String,
    prefix: String,
    created_at: String,
    last_used_at: Option<String>,
}

/// The live keys one person who left created.
#[derive(Serialize)]
pub(super) struct DepartedGroup {
    email: String,
    keys: Vec<DepartedKey>,
}

/// The keys of people who left, grouped by person (owners and admins).
pub(super) async fn groups(
    state: &AppState,
    actor: &Actor,
) -> Result<Vec<DepartedGroup>, ApiError> {
    let mut groups: Vec<DepartedGroup> = Vec::new();
    for k in keys::of_departed(state, actor).await? {
        let email = k.created_by_email.clone().unwrap_or_default();
        let key = DepartedKey {
            name: k.name,
            prefix: k.prefix,
            created_at: when(k.created_at),
            last_used_at: k.last_used_at.map(when),
        };
        match groups.iter_mut().find(|g| g.email == email) {
            Some(g) => g.keys.push(key),
            None => groups.push(DepartedGroup {
                email,
                keys: vec![key],
            }),
        }
    }
    Ok(groups)
}

/// The confirmation form as posted.
#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
}

/// POST /members/departed-keys/revoke: revoke every live key the person
/// who left with `email` created.
pub async fn revoke_departed_keys(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    form: web::Form<RevokeForm>,
) -> HttpResponse {
    if let Err(refused) = form_user(&page, &form.csrf_token, "/members") {
        return refused;
    }
    let result = match admin_scope(&page).and_then(|_| page.actor(&req)) {
        Ok(actor) => keys::revoke_departed(&state, &actor, &form.email).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(revoked) => redirect_with_flash(
            "/members",
            "ok",
            "departed_keys_revoked",
            &revoked.len().to_string(),
        ),
        Err(e) => page.error(&e),
    }
}
