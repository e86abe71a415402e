//! One's own sessions: list them and end one — thin handlers over
//! `crate::service::account`.

use actix_web::{HttpResponse, web};

use super::views::account::{SessionList, SessionView};
use crate::domain::SessionId;
use crate::error::ApiError;
use crate::mail::Language;
use crate::service::{Actor, Visitor, account};
use crate::state::AppState;

/// GET /api/v1/account/sessions: the signed-in person's live sessions.
#[utoipa::path(
    get,
    path = "/api/v1/account/sessions",
    tag = "accounts",
    security(("session" = [])),
    responses(
        (status = 200, description = "Live sessions, the current one first and marked `current`", body = SessionList),
    ),
)]
pub async fn list_sessions(
    state: web::Data<AppState>,
    actor: Actor,
    visitor: Visitor,
) -> Result<web::Json<SessionList>, ApiError> {
    let items = account::list(&state, &actor, visitor.session_cookie.as_deref()).await?;
    Ok(web::Json(SessionList {
        items: items.into_iter().map(SessionView::from).collect(),
    }))
}

/// DELETE /api/v1/account/sessions/{id}: end one of one's sessions (the
/// current one signs out). Audited.
#[utoipa::path(
    delete,
    path = "/api/v1/account/sessions/{id}",
    tag = "accounts",
    params(("id" = Uuid, Path, description = "Session id, from the list")),
    security(("session" = [], "csrf" = [])),
    responses(
        (status = 204, description = "The session ended"),
        (status = 404, description = "No such session of the signed-in person (`not_found`)", body = crate::api::views::problem::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn end_session(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<SessionId>,
) -> Result<HttpResponse, ApiError> {
    account::end(&state, &actor, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `visitor`, reading `language` if the body named one.
pub(super) fn speaking(visitor: Visitor, language: Option<Language>) -> Visitor {
    match language {
        Some(l) => Visitor {
            language: l,
            ..visitor
        },
        None => visitor,
    }
}
