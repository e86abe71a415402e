//! JS-SDK tickets: reading an app's ticket (which turns it on for the app)
//! and signing a page for the JS-SDK without the ticket leaving the vault.
//! Who may: the same readers as tokens ([`token_read::require_reader`]),
//! with the same key rate and app limits.

use rand::Rng as _;
use rand::distributions::Alphanumeric;

use super::token_read::{self, ReadError, Reader};
use crate::domain::jssdk;
use crate::domain::{AppId, AppKind, TicketType};
use crate::refresh::engine::{EngineError, TokenError};
use crate::refresh::tickets::{TicketOwner, ValidTicket};
use crate::state::AppState;
use crate::upstream::errcodes;

/// A JS-SDK page signature: what `wx.config` (or, with a WeCom app's
/// `agent_config` ticket, `wx.agentConfig`) takes.
#[derive(Debug, Clone)]
pub struct PageSignature {
    /// The app's AppID (a WeCom app's `{corpid}-{agentid}`).
    pub appid: AppId,
    /// The ticket signed with.
    pub ticket_type: TicketType,
    /// Seconds since the epoch, as signed.
    pub timestamp: i64,
    /// The random string signed.
    pub nonce_str: String,
    /// The SHA-1 signature, lowercase hex.
    pub signature: String,
}

/// The app's ticket of `ticket_type`, for `reader`.
pub async fn read(
    state: &AppState,
    reader: Reader<'_>,
    appid: &AppId,
    ticket_type: TicketType,
) -> Result<ValidTicket, ReadError> {
    if let Reader::Key(key) = reader {
        key.admit_read().map_err(ReadError::RateLimited)?;
    }
    let tenant_id = reader.tenant_id();
    let app_id = token_read::cached_app_id(state, tenant_id, appid)
        .await
        .map_err(|e| ReadError::Internal(e.into()))?
        .ok_or(ReadError::NotFound)?;
    if let Reader::Key(key) = reader
        && !key.allows_app(app_id)
    {
        return Err(ReadError::KeyLimited);
    }
    let owner = TicketOwner {
        tenant_id,
        app_id,
        appid: appid.as_str(),
    };
    match state.engine.ticket(owner, ticket_type).await {
        Ok(t) => Ok(t),
        Err(TokenError::Unavailable(u)) => Err(ReadError::Unavailable(u)),
        Err(TokenError::Engine(EngineError::Gone)) => {
            state.engine.cache.forget(Some(app_id));
            Err(ReadError::NotFound)
        }
        Err(TokenError::Engine(e)) => Err(ReadError::Internal(e.into())),
    }
}

/// Sign `url` (already checked by [`jssdk::parse_page_url`]) with the app's
/// ticket of `ticket_type` (`jsapi`; a WeCom app's `agent_config` for
/// `wx.agentConfig`: WeCom signs both the same way).
pub async fn sign(
    state: &AppState,
    reader: Reader<'_>,
    appid: &AppId,
    url: &str,
    ticket_type: TicketType,
) -> Result<PageSignature, ReadError> {
    let ticket = read(state, reader, appid, ticket_type).await?;
    let nonce_str: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(16)
        .map(char::from)
        .collect();
    let timestamp = chrono::Utc::now().timestamp();
    let signature = jssdk::signature(ticket.ticket.expose_secret(), &nonce_str, timestamp, url);
    Ok(PageSignature {
        appid: appid.clone(),
        ticket_type,
        timestamp,
        nonce_str,
        signature,
    })
}

/// Why the WeChat-compatible getticket gives no ticket.
#[derive(Debug, thiserror::Error)]
pub enum ByTokenError {
    /// tokenvault never served this token.
    #[error("not a token tokenvault served")]
    Unknown,
    /// tokenvault served it, but WeChat no longer accepts it.
    #[error("the token has expired")]
    Expired,
    /// The ticket read failed.
    #[error(transparent)]
    Read(ReadError),
}

/// The ticket of the app `access_token` belongs to, for the holder of a
/// token tokenvault served (current, or a replaced one its platform still
/// accepts) for an app of `platform` (a token of the other platform's app
/// is unknown there, as it would be at WeChat or WeCom). The token is found
/// by its keyed hash, never by decrypting stored tokens; the ticket is
/// fetched with the app's current token.
pub async fn by_token(
    state: &AppState,
    access_token: &str,
    ticket_type: TicketType,
    platform: AppKind,
) -> Result<ValidTicket, ByTokenError> {
    let (key_ids, hashes): (Vec<String>, Vec<Vec<u8>>) = state
        .engine
        .key_ring()
        .index_hashes(access_token.as_bytes())
        .into_iter()
        .map(|(id, h)| (id, h.to_vec()))
        .unzip();
    let owner = crate::db::served_tokens::lookup(state.engine.pool(), &key_ids, &hashes)
        .await
        .map_err(|e| ByTokenError::Read(ReadError::Internal(e.into())))?
        .ok_or(ByTokenError::Unknown)?;
    if errcodes::kind_of(&owner.appid) != platform {
        return Err(ByTokenError::Unknown);
    }
    if owner.expires_at <= chrono::Utc::now() {
        return Err(ByTokenError::Expired);
    }
    let ticket_owner = TicketOwner {
        tenant_id: owner.tenant_id,
        app_id: owner.app_id,
        appid: &owner.appid,
    };
    match state.engine.ticket(ticket_owner, ticket_type).await {
        Ok(t) => Ok(t),
        Err(TokenError::Unavailable(u)) => Err(ByTokenError::Read(ReadError::Unavailable(u))),
        Err(TokenError::Engine(EngineError::Gone)) => Err(ByTokenError::Unknown),
        Err(TokenError::Engine(e)) => Err(ByTokenError::Read(ReadError::Internal(e.into()))),
    }
}
