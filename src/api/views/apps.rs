//! Apps as the API answers them: an app with its health and budget, how a
//! refresh went, pages of apps and of the refresh log.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::apps::AppRow;
use crate::db::tokens::LogRow;
use crate::domain::health::replica_label;
use crate::domain::{
    AccountType, AppKind, Credential, ErrorClass, Health, RefreshOutcome, TokenMode, Trigger,
};
use crate::refresh::engine::AttemptOutcome;
use crate::refresh::gate::{Limits, RefusalReason};
use crate::service::apps::{AppList, LogPage as LogEntries};
use crate::upstream::FetchFailure;
use crate::upstream::errcodes::{self, Explanation};

/// The current token's times (never the token).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenTimes {
    /// When it was fetched.
    pub fetched_at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// Seconds left.
    pub expires_in: i64,
}

/// The last refresh failure.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastError {
    /// Failure class.
    pub class: Option<ErrorClass>,
    /// WeChat errcode.
    pub errcode: Option<i64>,
    /// Message.
    pub errmsg: Option<String>,
    /// What the errcode means.
    pub explanation: Option<Explanation>,
}

/// How an attempt ended, as answers name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptResult {
    /// A new token is stored.
    Success,
    /// WeChat answered the token already held.
    Unchanged,
    /// Refreshing is switched off for the app.
    Disabled,
    /// The call failed.
    Failure,
    /// The gate refused the call.
    Refused,
    /// No check was asked for (registration with `verify: false`).
    NotChecked,
}

/// How a refresh (or the registration check) went.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RefreshOutcome)]
pub struct AttemptView {
    /// Whether it worked (`null`: not checked).
    pub ok: Option<bool>,
    /// `success`, `unchanged`, `disabled`, `failure`, `refused` or `not_checked`.
    #[schema(inline)]
    pub outcome: AttemptResult,
    /// Why no call was made (`refused` only): `backoff`, `bypass_cooldown`,
    /// `budget_spent`, `token_too_young`, `invalidate_limit`, `force_refresh_limit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<RefusalReason>,
    /// What the refusal means (`refused` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Seconds until asking again makes sense (`refused` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Failure class (failures only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<ErrorClass>,
    /// WeChat errcode (failures only; `null` for a network failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    pub errcode: Option<Option<i64>>,
    /// Message (failures only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errmsg: Option<String>,
    /// What the errcode means (failures only; `null` when unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Explanation>)]
    pub explanation: Option<Option<Explanation>>,
}

impl AttemptView {
    fn plain(ok: Option<bool>, outcome: AttemptResult) -> Self {
        Self {
            ok,
            outcome,
            reason: None,
            detail: None,
            retry_after: None,
            class: None,
            errcode: None,
            errmsg: None,
            explanation: None,
        }
    }

    /// The answer for a registration that did not check the credentials.
    pub fn not_checked() -> Self {
        Self::plain(None, AttemptResult::NotChecked)
    }

    /// How `outcome` went.
    pub fn of(outcome: &AttemptOutcome) -> Self {
        match outcome {
            AttemptOutcome::Refreshed => Self::plain(Some(true), AttemptResult::Success),
            AttemptOutcome::Unchanged => Self::plain(Some(true), AttemptResult::Unchanged),
            AttemptOutcome::Disabled => Self::plain(Some(false), AttemptResult::Disabled),
            AttemptOutcome::Refused(r) => Self {
                reason: Some(r.reason),
                detail: Some(r.reason.explain().into()),
                retry_after: Some(r.retry_after.as_secs().max(1)),
                ..Self::plain(Some(false), AttemptResult::Refused)
            },
            AttemptOutcome::Failed(f) => Self::failure(f),
        }
    }

    fn failure(f: &FetchFailure) -> Self {
        Self {
            class: Some(f.class),
            errcode: Some(f.errcode),
            errmsg: Some(f.errmsg.clone()),
            explanation: Some(errcodes::explanation_for(f.platform, f.errcode)),
            ..Self::plain(Some(false), AttemptResult::Failure)
        }
    }
}

/// An app (mini-program, official account or WeCom app) with its health;
/// never its secret or token.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppView {
    /// The app's id in every path: the WeChat AppID, or a WeCom app's
    /// `{corpid}-{agentid}`.
    pub appid: String,
    /// `wechat` or `wecom`.
    pub kind: AppKind,
    /// Display name.
    pub name: String,
    /// Which WeChat endpoint keeps the token.
    pub token_mode: TokenMode,
    /// `mini_program` or `official_account` (`null` for a WeCom app).
    pub account_type: Option<AccountType>,
    /// Whether refreshing is on.
    pub enabled: bool,
    /// Health.
    pub health: Health,
    /// Whether a secondary secret is set.
    pub has_secondary_secret: bool,
    /// The valid token's times, `null` when there is none.
    pub token: Option<TokenTimes>,
    /// Next scheduled refresh (`null` when disabled).
    pub next_refresh_at: Option<DateTime<Utc>>,
    /// Last refresh attempt.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// Last successful refresh.
    pub last_success_at: Option<DateTime<Utc>>,
    /// Failures in a row.
    pub failure_streak: i32,
    /// Failed attempts in the last 24 hours.
    pub failures_24h: i64,
    /// Calls to WeChat for this app today (WeChat's quota day, midnight Beijing time).
    pub upstream_calls_today: i64,
    /// The app's daily upstream budget.
    pub upstream_budget: UpstreamBudget,
    /// The last failure, while the streak lasts.
    pub last_error: Option<LastError>,
    /// Registered.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// The secret's last 4 characters (GET one app, owners and admins signed in; never for an API key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_hint: Option<String>,
    /// The registration check (POST /apps only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<AttemptView>,
    /// The refresh just made (POST /apps/{appid}/refresh only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<AttemptView>,
}

impl AppView {
    /// The app as it is at `now`, with the service's daily `limits`.
    pub fn new(app: &AppRow, limits: &Limits, now: DateTime<Utc>) -> Self {
        let token = match (app.fetched_at, app.valid_until(now)) {
            (Some(fetched_at), Some(expires_at)) => Some(TokenTimes {
                fetched_at,
                expires_at,
                expires_in: (expires_at - now).num_seconds(),
            }),
            _ => None,
        };
        let last_error = (app.failure_streak > 0).then(|| {
            let errcode = app.last_errcode.map(i64::from);
            LastError {
                class: app.last_error_class,
                errcode,
                errmsg: app.last_errmsg.clone(),
                explanation: errcodes::explanation_for(errcodes::kind_of(&app.appid), errcode),
            }
        });
        Self {
            appid: app.appid.clone(),
            kind: errcodes::kind_of(&app.appid),
            name: app.name.clone(),
            token_mode: app.token_mode,
            account_type: app.account_type,
            enabled: app.enabled,
            health: app.health(now),
            has_secondary_secret: app.has_secondary_secret,
            token,
            next_refresh_at: app.enabled.then_some(app.next_refresh_at),
            last_attempt_at: app.last_attempt_at,
            last_success_at: app.last_success_at,
            failure_streak: app.failure_streak,
            failures_24h: app.failures_24h,
            upstream_calls_today: app.upstream_calls_today,
            upstream_budget: UpstreamBudget {
                daily_calls: limits.daily_calls,
                scheduler_reserve: limits.scheduler_reserve,
                force_refreshes_today: app.force_refreshes_today,
                force_refreshes_daily: limits.forced_daily,
            },
            last_error,
            created_at: app.created_at,
            updated_at: app.updated_at,
            secret_hint: None,
            verification: None,
            refresh: None,
        }
    }
}

/// An app's daily upstream budget (the same for every app of the service).
#[derive(Debug, Serialize, ToSchema)]
pub struct UpstreamBudget {
    /// Calls to WeChat per app per day.
    pub daily_calls: u32,
    /// Of those, the last this many only scheduled refreshes may make.
    pub scheduler_reserve: u32,
    /// Stable-mode force refreshes made today (invalidation reports).
    pub force_refreshes_today: i64,
    /// Force refreshes allowed per day (WeChat: 20).
    pub force_refreshes_daily: u32,
}

/// A page of apps, by AppID.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppPage {
    /// Apps.
    pub items: Vec<AppView>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next_after: Option<String>,
}

impl AppPage {
    /// The page of `list` at `now`.
    pub fn new(list: &AppList, limits: &Limits, now: DateTime<Utc>) -> Self {
        Self {
            items: list
                .apps
                .iter()
                .map(|a| AppView::new(a, limits, now))
                .collect(),
            next_after: list.next_after.clone(),
        }
    }
}

/// A refresh log entry with its errcode explained.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogEntry {
    /// Entry id (for paging).
    pub id: i64,
    /// The app's AppID.
    pub appid: String,
    /// Which credential was fetched: `access_token`, `jsapi_ticket`, `wx_card_ticket`.
    #[schema(inline)]
    pub credential: Credential,
    /// What started it.
    pub trigger: Trigger,
    /// How it ended: `success`, `unchanged`, `failure` or `skipped` (no call: a guard refused it).
    #[schema(inline)]
    pub outcome: RefreshOutcome,
    /// Failure class (failures only).
    pub error_class: Option<ErrorClass>,
    /// WeChat errcode.
    pub errcode: Option<i32>,
    /// Message.
    pub errmsg: Option<String>,
    /// Upstream latency in milliseconds.
    pub latency_ms: Option<i32>,
    /// The opaque label of the replica that made the attempt.
    pub replica: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// What the errcode means.
    pub explanation: Option<Explanation>,
}

impl From<LogRow> for LogEntry {
    fn from(r: LogRow) -> Self {
        Self {
            explanation: errcodes::explanation_for(
                errcodes::kind_of(&r.appid),
                r.errcode.map(i64::from),
            ),
            id: r.id,
            appid: r.appid,
            credential: r.credential,
            trigger: r.trigger,
            outcome: r.outcome,
            error_class: r.error_class,
            errcode: r.errcode,
            errmsg: r.errmsg,
            latency_ms: r.latency_ms,
            replica: replica_label(&r.replica),
            created_at: r.created_at,
        }
    }
}

/// A page of the refresh log.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogPage {
    /// Attempts, newest first.
    pub items: Vec<LogEntry>,
    /// Pass as `before` for the next page; `null` on the last page.
    pub next_before: Option<i64>,
}

impl From<LogEntries> for LogPage {
    fn from(page: LogEntries) -> Self {
        Self {
            items: page.entries.into_iter().map(LogEntry::from).collect(),
            next_before: page.next_before,
        }
    }
}
