//! The token read: one use case behind the three ways a token is read —
//! `GET /api/v1/apps/{appid}/token` (from memory before the router, or the
//! long way through it) and the WeChat-compatible `/cgi-bin/token` and
//! `/cgi-bin/stable_token`. A rule added here holds for all of them.
//!
//! In order: the key's read rate, the app (of the caller's organisation,
//! and one the key may use), then the engine, whose gate decides whether
//! WeChat may be asked when no stored token lives long enough.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::{AppId, AppUuid, TenantId};

use crate::auth::{KeyPrincipal, Principal, TenantScope};
use crate::db;
use crate::domain::Role;
use crate::error::ApiError;
use crate::refresh::engine::{EngineError, TokenError};
use crate::refresh::token::{Unavailable, ValidToken};
use crate::state::AppState;

/// The longest `min_ttl` a reader may ask for: WeChat tokens live 7200 s.
pub const MAX_MIN_TTL: u64 = 7000;

/// Who may read tokens (and report them rejected): any API key of the
/// organisation (read-only included), and signed-in owners and admins;
/// never viewers.
pub fn require_reader(principal: &Principal) -> Result<TenantScope, ApiError> {
    match principal {
        Principal::ApiKey(_) => principal.require(Role::Viewer),
        Principal::Session(_) => principal.require(Role::Admin),
    }
}

/// Who reads.
#[derive(Debug, Clone, Copy)]
pub enum Reader<'a> {
    /// A tenant server with an API key.
    Key(&'a KeyPrincipal),
    /// A signed-in owner or admin (roles are checked by the caller).
    Person(&'a TenantScope),
}

impl Reader<'_> {
    pub(super) fn tenant_id(&self) -> TenantId {
        match self {
            Self::Key(k) => k.tenant_id,
            Self::Person(s) => s.tenant_id,
        }
    }
}

/// Why a read got no token.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// No such app in the reader's organisation (or a malformed AppID).
    #[error("no such app")]
    NotFound,
    /// The key is limited to other apps.
    #[error("this API key is limited to other apps")]
    KeyLimited,
    /// The key reads faster than its rate limit; retry after this long.
    #[error("this API key reads tokens faster than allowed")]
    RateLimited(Duration),
    /// No valid token can be had now.
    #[error("{}", .0.reason)]
    Unavailable(Unavailable),
    /// The database or the key ring failed.
    #[error(transparent)]
    Internal(anyhow::Error),
}

/// The read answered from this replica's memory, or `None` when anything
/// it needs is not there (then [`read`] answers every case). Never touches
/// the database; counts the read when it answers.
pub fn from_memory(
    state: &AppState,
    key: &KeyPrincipal,
    appid: &AppId,
    min_ttl: Duration,
) -> Option<Arc<ValidToken>> {
    let app_id = state.engine.cache.app_id(key.tenant_id, appid.as_str())?;
    if !key.allows_app(app_id) {
        return None;
    }
    let token = state.engine.cache.token(app_id, min_ttl)?;
    key.admit_read().ok()?;
    state.engine.metrics.count_read_from_memory();
    key.count_token_read();
    Some(token)
}

/// A token of `appid` valid for at least `min_ttl`, for `reader`.
pub async fn read(
    state: &AppState,
    reader: Reader<'_>,
    appid: &AppId,
    min_ttl: Duration,
) -> Result<Arc<ValidToken>, ReadError> {
    if let Reader::Key(key) = reader {
        key.admit_read().map_err(ReadError::RateLimited)?;
    }
    read_admitted(state, reader, appid, min_ttl).await
}

/// [`read`] once the key's rate admitted the read.
async fn read_admitted(
    state: &AppState,
    reader: Reader<'_>,
    appid: &AppId,
    min_ttl: Duration,
) -> Result<Arc<ValidToken>, ReadError> {
    let tenant_id = reader.tenant_id();
    let app_id = cached_app_id(state, tenant_id, appid)
        .await
        .map_err(|e| ReadError::Internal(e.into()))?
        .ok_or(ReadError::NotFound)?;
    if let Reader::Key(key) = reader
        && !key.allows_app(app_id)
    {
        return Err(ReadError::KeyLimited);
    }
    match state.engine.token(tenant_id, app_id, min_ttl).await {
        Ok(t) => {
            state.engine.metrics.count_read(true);
            if let Reader::Key(key) = reader {
                key.count_token_read();
            }
            Ok(t)
        }
        Err(TokenError::Unavailable(u)) => {
            state.engine.metrics.count_read(false);
            Err(ReadError::Unavailable(u))
        }
        // Deleted between the lookup and the read.
        Err(TokenError::Engine(EngineError::Gone)) => {
            state.engine.cache.forget(Some(app_id));
            Err(ReadError::NotFound)
        }
        Err(TokenError::Engine(e)) => Err(ReadError::Internal(e.into())),
    }
}

/// The token of the one WeCom app of company `corpid` that `key` is
/// limited to (the WeCom-compatible `gettoken` names the company only; its
/// "secret" is a key limited to exactly one app), with the app's id. The
/// key's rate is checked first, the app found in the replica's cache (the
/// database on a miss), and the token read like every other: from the
/// engine's cache when it holds one. `KeyLimited` for a key open to every
/// app or limited to several, `NotFound` when that app is not a WeCom app
/// of `corpid`.
pub async fn read_wecom(
    state: &AppState,
    key: &KeyPrincipal,
    corpid: &str,
) -> Result<(AppId, Arc<ValidToken>), ReadError> {
    let [app_id] = key.app_ids.as_ref() else {
        return Err(ReadError::KeyLimited);
    };
    if !key.limited {
        return Err(ReadError::KeyLimited);
    }
    key.admit_read().map_err(ReadError::RateLimited)?;
    let cached = state.engine.cache.appid_of(key.tenant_id, *app_id);
    let appid = if let Some(appid) = cached {
        appid
    } else {
        let appid = db::apps::appid_of(state.engine.pool(), key.tenant_id, *app_id)
            .await
            .map_err(|e| ReadError::Internal(e.into()))?
            .ok_or(ReadError::NotFound)?;
        state
            .engine
            .cache
            .put_app_id(key.tenant_id, &appid, *app_id);
        appid
    };
    let appid = AppId::parse("appid", &appid).map_err(|_| ReadError::NotFound)?;
    if appid.corpid() != Some(corpid.trim().to_ascii_lowercase().as_str()) {
        return Err(ReadError::NotFound);
    }
    let token = read_admitted(state, Reader::Key(key), &appid, Duration::ZERO).await?;
    Ok((appid, token))
}
/// The internal id of `appid` in `tenant_id`, from the replica's cache
/// when it can be (the engine's connections otherwise: a read never waits
/// for the pool of the web UI).
pub async fn cached_app_id(
    state: &AppState,
    tenant_id: TenantId,
    appid: &AppId,
) -> Result<Option<AppUuid>, sqlx::Error> {
    if let Some(id) = state.engine.cache.app_id(tenant_id, appid.as_str()) {
        return Ok(Some(id));
    }
    let id = db::apps::id_of(state.engine.pool(), tenant_id, appid.as_str()).await?;
    if let Some(id) = id {
        state.engine.cache.put_app_id(tenant_id, appid.as_str(), id);
    }
    Ok(id)
}
