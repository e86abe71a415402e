//! What happened to an app, for its charts: its attempts over a window
//! grouped by time and outcome, its token's validity, its calls to WeChat
//! today; and the organisation's last 24 hours per app (the dashboard's
//! sparklines). Aggregates only, each bounded.

use chrono::{DateTime, Duration, Utc};

use super::{Actor, find};
use crate::db;
use crate::db::apps::AppRow;
use crate::db::history::{AppHour, Bucket, Validity};
use crate::domain::Role;
use crate::error::ApiError;
use crate::refresh::policy;
use crate::state::AppState;

/// The window of an app's refresh timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Span {
    /// The last 24 hours, in 5-minute buckets.
    #[default]
    Day,
    /// The last 7 days, in 30-minute buckets.
    Week,
}

impl Span {
    /// The span named `name` (`24h` or `7d`).
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "24h" => Some(Self::Day),
            "7d" => Some(Self::Week),
            _ => None,
        }
    }

    /// Its name in a URL.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "24h",
            Self::Week => "7d",
        }
    }

    /// How long it is.
    #[must_use]
    pub fn length(self) -> Duration {
        match self {
            Self::Day => Duration::hours(24),
            Self::Week => Duration::days(7),
        }
    }

    /// How long one bucket of it is.
    #[must_use]
    pub fn stride(self) -> Duration {
        match self {
            Self::Day => Duration::minutes(5),
            Self::Week => Duration::minutes(30),
        }
    }

    /// How many buckets it has.
    #[must_use]
    pub fn buckets(self) -> i64 {
        self.length().num_seconds() / self.stride().num_seconds()
    }
}

/// Most validity changes read for one timeline.
pub const MAX_VALIDITY_CHANGES: i64 = 2000;
/// Outcomes an attempt can have (the rows of one bucket at most).
const OUTCOMES: i64 = 4;

/// An app's history over a window.
#[derive(Debug)]
pub struct AppHistory {
    /// The window.
    pub span: Span,
    /// Where the window starts.
    pub since: DateTime<Utc>,
    /// Where it ends.
    pub now: DateTime<Utc>,
    /// Attempts per bucket and outcome, oldest first.
    pub buckets: Vec<Bucket>,
    /// The token's validity: the last change before the window, then the
    /// changes within it, oldest first.
    pub validity: Vec<Validity>,
    /// Where WeChat's quota day (midnight in Beijing) began.
    pub quota_day_start: DateTime<Utc>,
    /// Attempts that called WeChat today, per hour, oldest first.
    pub calls_per_hour: Vec<(DateTime<Utc>, i64)>,
}

/// The history of `app` over `span` (the caller found the app for the
/// actor: viewers and up).
pub async fn history(state: &AppState, app: &AppRow, span: Span) -> Result<AppHistory, ApiError> {
    let now = Utc::now();
    let since = now - span.length();
    let quota_day_start = policy::next_quota_day(now) - Duration::days(1);
    let stride = f64::from(i32::try_from(span.stride().num_seconds()).unwrap_or(300));
    let pool = &state.pool;
    let (buckets, (mut changes, before), calls_per_hour) = tokio::try_join!(
        db::history::app_buckets(pool, app.id, since, stride, span.buckets() * OUTCOMES),
        db::history::app_validity(pool, app.id, since, MAX_VALIDITY_CHANGES),
        db::history::app_calls_per_hour(pool, app.id, quota_day_start),
    )?;
    // When the window holds more changes than are read, what came before
    // the oldest one read is not known: no band there rather than a wrong one.
    let truncated = changes.len() >= usize::try_from(MAX_VALIDITY_CHANGES).unwrap_or(usize::MAX);
    changes.reverse();
    let mut validity: Vec<Validity> = before.filter(|_| !truncated).into_iter().collect();
    validity.extend(changes);
    Ok(AppHistory {
        span,
        since,
        now,
        buckets,
        validity,
        quota_day_start,
        calls_per_hour,
    })
}

/// The app `appid` with its history over `span` (viewers and up).
pub async fn show_history(
    state: &AppState,
    actor: &Actor,
    appid: &str,
    span: Span,
) -> Result<(AppRow, AppHistory), ApiError> {
    let (_, app) = find(state, actor, Role::Viewer, appid).await?;
    let history = history(state, &app, span).await?;
    Ok((app, history))
}

/// Most apps the dashboard draws a sparkline for (a page of apps).
const SPARKLINE_APPS: i64 = 200;

/// The organisation's attempts of the last 24 hours per app, hour and
/// outcome (viewers and up), and where that window starts.
pub async fn last_day_per_app(
    state: &AppState,
    actor: &Actor,
) -> Result<(DateTime<Utc>, Vec<AppHour>), ApiError> {
    let scope = actor.require(Role::Viewer)?;
    let since = Utc::now() - Duration::hours(24);
    let rows = db::history::tenant_hours(
        &state.pool,
        scope.tenant_id,
        since,
        SPARKLINE_APPS * 24 * OUTCOMES,
    )
    .await?;
    Ok((since, rows))
}
