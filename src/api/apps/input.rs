//! What the apps and tokens endpoints take: request bodies and queries,
//! turned into the use cases' typed input.

use std::time::Duration;

use serde::{Deserialize, Deserializer};
use utoipa::{IntoParams, ToSchema};

use crate::domain::{AccountType, AppId, AppKind, FieldError, TokenMode};
use crate::error::ApiError;
use crate::secret::{AccessToken, AppSecret};
use crate::service::apps::{AppChanges, NewAppInput};
use crate::service::token_read::MAX_MIN_TTL;

/// Body of POST /api/v1/apps.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAppRequest {
    /// `wechat` (default: a mini-program or an official account) or `wecom`
    /// (a WeCom self-built app).
    #[serde(default)]
    kind: Option<AppKind>,
    /// WeChat AppID, e.g. `wx0123456789abcdef` (WeChat apps only).
    #[serde(default)]
    appid: Option<String>,
    /// WeCom corpid, e.g. `ww0123456789abcdef` (WeCom apps only).
    #[serde(default)]
    corpid: Option<String>,
    /// WeCom `AgentId`, e.g. `1000002` (WeCom apps only); the app's id is
    /// then `{corpid}-{agentid}`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    agentid: Option<AgentId>,
    /// The AppSecret (WeChat: 32 hex characters) or the WeCom app's Secret;
    /// never shown again.
    #[schema(value_type = String, format = Password)]
    secret: AppSecret,
    /// Display name (default: the AppID).
    #[serde(default)]
    name: Option<String>,
    /// `stable` (default) or `classic` (WeChat apps only).
    #[serde(default)]
    token_mode: Option<TokenMode>,
    /// `mini_program` (default) or `official_account` (WeChat apps only):
    /// both use the same token endpoints; the label tells them apart.
    #[serde(default)]
    account_type: Option<AccountType>,
    /// A second AppSecret, tried when the first is rejected (during a secret reset).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    secondary_secret: Option<AppSecret>,
    /// Check the credentials with WeChat now (default true).
    #[serde(default)]
    verify: Option<bool>,
}

impl CreateAppRequest {
    /// The registration, every field checked.
    pub fn new_app(&self) -> Result<NewAppInput, ApiError> {
        let misplaced = |field: &'static str, kind: &str| {
            FieldError::new(
                field,
                "not_for_this_kind",
                format!("{field} is not a field of a {kind} app"),
            )
        };
        match self.kind.unwrap_or_default() {
            AppKind::Wechat => {
                let extra: Vec<FieldError> = [
                    self.corpid.as_ref().map(|_| misplaced("corpid", "WeChat")),
                    self.agentid
                        .as_ref()
                        .map(|_| misplaced("agentid", "WeChat")),
                ]
                .into_iter()
                .flatten()
                .collect();
                if !extra.is_empty() {
                    return Err(ApiError::Validation(extra));
                }
                NewAppInput::parse(
                    self.appid.as_deref().unwrap_or_default(),
                    &self.secret,
                    self.name.as_deref(),
                    self.token_mode,
                    self.account_type,
                    self.secondary_secret.as_ref(),
                )
            }
            AppKind::Wecom => {
                let extra: Vec<FieldError> = [
                    self.appid.as_ref().map(|_| misplaced("appid", "WeCom")),
                    self.token_mode.map(|_| misplaced("token_mode", "WeCom")),
                    self.account_type
                        .map(|_| misplaced("account_type", "WeCom")),
                ]
                .into_iter()
                .flatten()
                .collect();
                if !extra.is_empty() {
                    return Err(ApiError::Validation(extra));
                }
                NewAppInput::parse_wecom(
                    self.corpid.as_deref().unwrap_or_default(),
                    self.agentid.as_ref().map_or("", |a| a.0.as_str()),
                    &self.secret,
                    self.name.as_deref(),
                    self.secondary_secret.as_ref(),
                )
            }
        }
    }

    /// Whether to check the credentials with WeChat now.
    pub fn verify(&self) -> bool {
        self.verify.unwrap_or(true)
    }
}

/// A WeCom `AgentId` as sent: a string or a number (WeCom shows a number).
#[derive(Debug)]
pub struct AgentId(String);

impl<'de> Deserialize<'de> for AgentId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(u64),
        }
        Ok(Self(match Raw::deserialize(d)? {
            Raw::Text(s) => s,
            Raw::Number(n) => n.to_string(),
        }))
    }
}

/// Body of PATCH /api/v1/apps/{appid}; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(
    clippy::option_option,
    reason = "PATCH tells an absent field from an explicit null"
)]
#[serde(deny_unknown_fields)]
pub struct EditAppRequest {
    /// New display name.
    #[serde(default)]
    name: Option<String>,
    /// New AppSecret.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    secret: Option<AppSecret>,
    /// New secondary AppSecret; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = Password)]
    secondary_secret: Option<Option<AppSecret>>,
    /// `stable` or `classic`.
    #[serde(default)]
    token_mode: Option<TokenMode>,
    /// `mini_program` or `official_account` (WeChat apps only).
    #[serde(default)]
    account_type: Option<AccountType>,
    /// Switch refreshing on or off.
    #[serde(default)]
    enabled: Option<bool>,
}

impl EditAppRequest {
    /// The changes asked for.
    pub fn changes(&self) -> AppChanges<'_> {
        AppChanges {
            name: self.name.as_deref(),
            secret: self.secret.as_ref(),
            secondary_secret: self.secondary_secret.as_ref().map(Option::as_ref),
            token_mode: self.token_mode,
            account_type: self.account_type,
            enabled: self.enabled,
        }
    }
}

/// Distinguish an absent field (`None`) from an explicit `null` (`Some(None)`).
#[allow(clippy::option_option)]
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Query of GET /api/v1/apps.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// Apps after this AppID (`next_after` of the previous page).
    #[param(pattern = "^wx[0-9a-fA-F]{16}$")]
    after: Option<String>,
}

impl ListQuery {
    /// The cursor: an AppID; anything else (a NUL byte, say) never reaches SQL.
    pub fn after(&self) -> Result<Option<AppId>, ApiError> {
        self.after
            .as_deref()
            .map(|a| AppId::parse("after", a))
            .transpose()
            .map_err(|_| ApiError::BadRequest {
                code: "invalid_query",
                detail: "after must be an AppID: the next_after of the previous page".into(),
            })
    }
}

/// Query of the refresh-log endpoints.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// `failure` for failures only, `all` (default) for every attempt.
    #[param(pattern = "^(failure|all)$")]
    outcome: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// Entries older than this id (`next_before` of the previous page).
    pub before: Option<i64>,
}

impl LogQuery {
    /// Whether only failures are asked for.
    pub fn failures_only(&self) -> Result<bool, ApiError> {
        match self.outcome.as_deref() {
            None | Some("all") => Ok(false),
            Some("failure") => Ok(true),
            Some(_) => Err(ApiError::BadRequest {
                code: "invalid_query",
                detail: "outcome must be 'failure' or 'all'".into(),
            }),
        }
    }
}

/// Query of GET /api/v1/apps/{appid}/token.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// The token must stay valid at least this many seconds (0 to 7000, default 0).
    #[param(value_type = Option<u64>, minimum = 0, maximum = 7000)]
    min_ttl: Option<String>,
}

impl TokenQuery {
    /// How long the token must stay valid.
    pub fn min_ttl(&self) -> Result<Duration, ApiError> {
        let Some(raw) = self.min_ttl.as_deref() else {
            return Ok(Duration::ZERO);
        };
        match raw.parse::<u64>() {
            Ok(s) if s <= MAX_MIN_TTL => Ok(Duration::from_secs(s)),
            _ => Err(ApiError::BadRequest {
                code: "invalid_min_ttl",
                detail: format!(
                    "min_ttl must be a whole number of seconds from 0 to {MAX_MIN_TTL}"
                ),
            }),
        }
    }
}

/// Body of POST /api/v1/apps/{appid}/token/invalidate.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvalidateRequest {
    /// The token WeChat rejected (`40001`/`42001`).
    #[schema(value_type = String, format = Password)]
    pub access_token: AccessToken,
}
