//! `GET /metrics` (Prometheus), and the caches that keep it and the
//! service health from costing database work per request.
//!
//! Figures that need the database (apps by health, tokens expiring soon,
//! the service health) are measured at most once per
//! `TOKENVAULT_STATS_CACHE_SECONDS` by one request, while concurrent ones
//! wait for that measurement instead of starting their own ([`StatsCache`]).
//! Counters kept in memory (refreshes, token reads, the guards' counters)
//! are always current. With `TOKENVAULT_METRICS_TOKEN` set, `/metrics`
//! answers only `Authorization: Bearer <token>`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::domain::health::AppCounts;
use crate::error::ApiError;
use crate::refresh::metrics::HealthLabels;
use crate::refresh::policy;
use crate::state::AppState;
use crate::upstream::ErrorClass;

/// Measure the database figures of `/metrics`.
async fn measure_apps(state: &AppState) -> Result<AppCounts, sqlx::Error> {
    let rows: Vec<(bool, bool, i32, Option<String>, i64)> = sqlx::query_as(
        "select a.enabled, coalesce(s.expires_at > now(), false), least(s.failure_streak, 1), s.last_error_class, count(*)
           from apps a join token_state s on s.app_id = a.id group by 1, 2, 3, 4",
    )
    .fetch_all(&state.pool)
    .await?;
    let by_health = rows
        .into_iter()
        .map(|(enabled, valid, streak, class, n)| {
            let class = match class.as_deref() {
                Some("configuration") => Some(ErrorClass::Configuration),
                Some("bug") => Some(ErrorClass::Bug),
                Some("quota") => Some(ErrorClass::Quota),
                Some(_) => Some(ErrorClass::Transient),
                None => None,
            };
            (policy::health(enabled, valid, streak, class), n)
        })
        .collect();
    let expiring_soon: i64 = sqlx::query_scalar(
        "select count(*) from token_state s join apps a on a.id = s.app_id
          where a.enabled and s.expires_at between now() and now() + interval '5 minutes'",
    )
    .fetch_one(&state.pool)
    .await?;
    let limits = &state.engine.config().limits;
    let near = limits.daily_calls.saturating_sub(limits.scheduler_reserve) * 4 / 5;
    let near_budget = crate::db::budget::count_at_least(
        &state.pool,
        crate::refresh::policy::quota_day(chrono::Utc::now()),
        i32::try_from(near).unwrap_or(i32::MAX),
    )
    .await?;
    Ok(AppCounts {
        by_health,
        expiring_soon,
        near_budget,
    })
}

/// Whether the request may read `/metrics`.
fn authorized(req: &HttpRequest, state: &AppState) -> bool {
    let Some(token) = &state.settings.metrics_token else {
        return true;
    };
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|sent| token.matches(sent.trim()))
}

/// GET /metrics: Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    security((), ("metrics_token" = [])),
    responses(
        (status = 200, description = "Prometheus metrics (OpenMetrics text); database figures at most `TOKENVAULT_STATS_CACHE_SECONDS` old", body = String, content_type = "application/openmetrics-text"),
        (status = 401, description = "`TOKENVAULT_METRICS_TOKEN` is set and the request did not send it as `Authorization: Bearer` (`unauthenticated`)", body = crate::api::openapi::Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !authorized(&req, &state) {
        return Err(ApiError::Unauthenticated(
            "send the metrics token as 'Authorization: Bearer <token>' (TOKENVAULT_METRICS_TOKEN)",
        ));
    }
    let stats = state.stats.apps.get(|| measure_apps(&state)).await?;
    let m = &state.engine.metrics;
    for h in ["healthy", "refreshing", "degraded", "failing", "disabled"] {
        m.apps_by_health
            .get_or_create(&HealthLabels { health: h.into() })
            .set(0);
    }
    for (h, n) in &stats.by_health {
        m.apps_by_health
            .get_or_create(&HealthLabels {
                health: h.as_str().into(),
            })
            .inc_by(*n);
    }
    m.expiring_soon.set(stats.expiring_soon);
    m.apps_near_budget.set(stats.near_budget);
    // Two registries, one exposition: the first one's end marker goes.
    let mut body = m.encode();
    if let Some(kept) = body.strip_suffix("# EOF\n").map(str::len) {
        body.truncate(kept);
    }
    if prometheus_client::encoding::text::encode(&mut body, &state.stats.registry).is_err() {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "cannot encode the metrics"
        )));
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(body))
}
