//! `GET /api/v1/operator/tenants`: every organisation with its members,
//! apps and failing apps, for operators of the service.

use actix_web::{HttpResponse, web};

use super::views::ops::TenantHealthList;
use crate::error::ApiError;
use crate::service::{Actor, operator};
use crate::state::AppState;

/// GET /api/v1/operator/tenants: every tenant's health (operators only).
#[utoipa::path(
    get,
    path = "/api/v1/operator/tenants",
    tag = "members",
    operation_id = "operator_tenants",
    security(("session" = [])),
    responses(
        (status = 200, description = "Every organisation's health (operators only)", body = TenantHealthList),
    ),
)]
pub async fn tenants(state: web::Data<AppState>, actor: Actor) -> Result<HttpResponse, ApiError> {
    let tenants = operator::tenants(&state, &actor).await?;
    Ok(HttpResponse::Ok().json(TenantHealthList {
        items: tenants.into_iter().map(Into::into).collect(),
    }))
}
