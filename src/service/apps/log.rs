//! The refresh log: every attempt to get a token from WeChat, of one app or
//! of the whole organisation, newest first.

use super::{Actor, find_in};
use crate::auth::Principal;
use crate::db;
use crate::db::tokens::LogRow;
use crate::domain::Role;
use crate::error::ApiError;
use crate::state::AppState;

/// Which entries of the refresh log.
#[derive(Debug, Clone, Copy)]
pub struct LogFilter<'a> {
    /// One app's entries, or (`None`) every app's.
    pub app: Option<&'a str>,
    /// Failures only.
    pub failures_only: bool,
    /// Entries older than this id (the previous page's `next_before`).
    pub before: Option<i64>,
    /// Page size.
    pub limit: i64,
}

/// A page of the refresh log.
#[derive(Debug)]
pub struct LogPage {
    /// Entries, newest first.
    pub entries: Vec<LogRow>,
    /// The id to continue before, when the page is full.
    pub next_before: Option<i64>,
}

/// A page of the refresh log (viewers and up). A key limited to some apps
/// reads the log of each of its apps, never the organisation's.
pub async fn refresh_log(
    state: &AppState,
    actor: &Actor,
    filter: LogFilter<'_>,
) -> Result<LogPage, ApiError> {
    let scope = actor.require(Role::Viewer)?;
    let app_id = if let Some(appid) = filter.app {
        Some(find_in(state, actor, &scope, appid).await?.id)
    } else {
        if let Principal::ApiKey(k) = &actor.principal
            && k.limited
        {
            return Err(ApiError::Forbidden(
                "this API key is limited to some apps: read each app's refresh log",
            ));
        }
        None
    };
    let entries = db::tokens::list_log(
        &state.pool,
        scope.tenant_id,
        app_id,
        filter.failures_only,
        filter.before,
        filter.limit,
    )
    .await?;
    let next_before = (entries.len() == usize::try_from(filter.limit).unwrap_or(usize::MAX))
        .then(|| entries.last().map(|r| r.id))
        .flatten();
    Ok(LogPage {
        entries,
        next_before,
    })
}
