//! The app page's ticket section (its own template, `app_tickets.html`):
//! which JS-SDK tickets the app keeps, their state and expiry (never the
//! ticket), and the owner's switch to turn one on or off.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::pages::{form_user, when};
use super::{Page, redirect_with_flash};
use crate::domain::{AppKind, TicketType};
use crate::error::ApiError;
use crate::service::Actor;
use crate::service::apps::{self, KeptTicket};
use crate::state::AppState;
use crate::upstream::errcodes::{self, Errcode};

/// One ticket type as the section shows it.
#[derive(Serialize)]
pub(super) struct TicketLine {
    ticket_type: TicketType,
    kept: bool,
    enabled: bool,
    fetched_at: Option<String>,
    expires_at: Option<String>,
    failure_streak: i32,
    last_errcode: Option<i32>,
    last_errmsg: Option<String>,
    explanation: Option<&'static Errcode>,
}

impl TicketLine {
    /// The line of `k`, a ticket of an app of `kind` (whose errcodes explain
    /// its failure).
    fn of(k: KeptTicket, kind: AppKind) -> Self {
        Self {
            ticket_type: k.ticket_type,
            kept: k.kept,
            enabled: k.enabled,
            fetched_at: k.fetched_at.map(when),
            expires_at: k.expires_at.map(when),
            failure_streak: k.failure_streak,
            explanation: k
                .last_errcode
                .filter(|_| k.failure_streak > 0)
                .and_then(|c| errcodes::explain_for(kind, i64::from(c))),
            last_errcode: k.last_errcode.filter(|_| k.failure_streak > 0),
            last_errmsg: k.last_errmsg.filter(|_| k.failure_streak > 0),
        }
    }
}

/// The section's lines for the app `appid` (WeChat's tickets, or a WeCom
/// app's company and app tickets).
pub(super) async fn lines(
    state: &AppState,
    actor: &Actor,
    appid: &str,
) -> Result<Vec<TicketLine>, ApiError> {
    let kind = errcodes::kind_of(appid);
    Ok(apps::kept_tickets(state, actor, appid)
        .await?
        .into_iter()
        .map(|k| TicketLine::of(k, kind))
        .collect())
}

/// The section's route (the switch).
pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/apps/{appid}/tickets/{type}", web::post().to(switch));
}

/// The switch's form.
#[derive(Deserialize)]
pub struct SwitchForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    enabled: String,
}

/// POST /apps/{appid}/tickets/{type}: turn the ticket on or off (owners
/// and admins), then back to the app page with a flash.
pub async fn switch(
    req: HttpRequest,
    page: Page,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: web::Form<SwitchForm>,
) -> HttpResponse {
    let (appid, raw_type) = path.into_inner();
    let back = format!("/apps/{}", appid.trim().to_ascii_lowercase());
    if let Err(refused) = form_user(&page, &form.csrf_token, &back) {
        return refused;
    }
    let done = async {
        let actor = page.actor(&req)?;
        let ticket_type = raw_type
            .parse::<TicketType>()
            .ok()
            .filter(|t| t.fits(errcodes::kind_of(appid.trim())))
            .ok_or(ApiError::NotFound("page"))?;
        let on = match form.enabled.as_str() {
            "true" => true,
            "false" => false,
            _ => {
                return Err(ApiError::BadRequest {
                    code: "invalid_field",
                    detail: "enabled must be true or false".into(),
                });
            }
        };
        apps::switch_ticket(&state, &actor, &appid, ticket_type, on).await?;
        Ok((ticket_type, on))
    }
    .await;
    match done {
        Ok((t, on)) => {
            let key = if on {
                "flash_ticket_on"
            } else {
                "flash_ticket_off"
            };
            redirect_with_flash(&back, "ok", key, t.as_str())
        }
        Err(e) => page.error(&e),
    }
}
