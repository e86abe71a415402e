//! The refresh engine's vocabulary as stored: why an attempt was made, how
//! it ended, and the class of a failure. Each is a `text` column with a
//! check constraint listing exactly these names, so a stored value is
//! always one of them: decoding anything else is an error, never a guess.

use serde::{Deserialize, Serialize};

/// How a failed fetch is handled (see `docs/WECHAT.md`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum ErrorClass {
    /// Network trouble, timeouts, 5xx, malformed answers, WeChat busy: retry soon with backoff.
    Transient,
    /// A call quota is used up: wait for the quota window.
    Quota,
    /// The app's credentials or WeChat settings are wrong: the owner must act.
    Configuration,
    /// tokenvault sent a request WeChat calls malformed: should never happen.
    Bug,
}

names!(ErrorClass {
    Transient = "transient",
    Quota = "quota",
    Configuration = "configuration",
    Bug = "bug",
});

/// What asked for an upstream call (stored in the refresh log).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Trigger {
    /// The scheduler found the token due (also after an edit made it due).
    Schedule,
    /// A reader found no token valid long enough.
    OnDemand,
    /// A person asked for it.
    Manual,
    /// A client reported the current token as bad.
    Invalidate,
    /// The app was just registered.
    Registration,
}

names!(Trigger {
    Schedule = "schedule",
    OnDemand = "on_demand",
    Manual = "manual",
    Invalidate = "invalidate",
    Registration = "registration",
});

/// How one attempt ended (stored in the refresh log).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum RefreshOutcome {
    /// A new token is stored.
    Success,
    /// WeChat answered the token already held.
    Unchanged,
    /// The call failed.
    Failure,
    /// No call was made: a guard refused it.
    Skipped,
}

names!(RefreshOutcome {
    Success = "success",
    Unchanged = "unchanged",
    Failure = "failure",
    Skipped = "skipped",
});

impl RefreshOutcome {}
