//! Talking to token providers: the client (WeChat first, behind a small trait
//! so WeCom and others fit later), the errcode table, and the simulator.

pub mod errcodes;
pub mod simulator;
pub mod wechat;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use secrecy::SecretString;

pub use errcodes::ErrorClass;

use crate::domain::{AppId, AppKind, TicketType, TokenMode};

/// What to fetch.
#[derive(Debug)]
pub struct FetchRequest<'a> {
    /// The app.
    pub appid: &'a AppId,
    /// Its secret.
    pub secret: &'a SecretString,
    /// Stable or classic endpoint.
    pub mode: TokenMode,
    /// Stable mode only: invalidate the current token and get a new one.
    pub force_refresh: bool,
}

/// A token as the provider issued it.
#[derive(Debug)]
pub struct FreshToken {
    /// The token (secret).
    pub access_token: SecretString,
    /// Its remaining lifetime as the provider reported it.
    pub expires_in: Duration,
}

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchFailure {
    /// How to handle it.
    pub class: ErrorClass,
    /// The provider's errcode, when it answered with one.
    pub errcode: Option<i64>,
    /// The provider's errmsg, or what went wrong on the way (never a secret).
    pub errmsg: String,
    /// The request may have reached the provider and been served although
    /// no answer arrived (a timeout or a connection lost after sending): a
    /// new classic token may exist that nobody stored.
    pub outcome_unknown: bool,
    /// The platform asked (its table explains the errcode).
    pub platform: AppKind,
}

impl FetchFailure {
    /// The same failure, of a call to `platform`.
    #[must_use]
    pub fn of(self, platform: AppKind) -> Self {
        Self { platform, ..self }
    }
}

/// The outcome of one upstream call.
pub type FetchOutcome = Result<FreshToken, FetchFailure>;

/// A boxed future, for the object-safe provider trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A ticket as the provider issued it.
#[derive(Debug)]
pub struct FreshTicket {
    /// The ticket (secret).
    pub ticket: SecretString,
    /// Its lifetime as the provider reported it (WeChat always says the
    /// full 7200 s, even for a ticket it fetched earlier: the caller keeps
    /// its own clock from the first fetch).
    pub expires_in: Duration,
}

/// The outcome of one ticket call.
pub type TicketOutcome = Result<FreshTicket, FetchFailure>;

/// A source of access tokens and of the tickets derived from them.
pub trait TokenProvider: Send + Sync + std::fmt::Debug {
    /// Fetch a token; every outcome, including network trouble, is classified.
    fn fetch<'a>(&'a self, request: FetchRequest<'a>) -> BoxFuture<'a, FetchOutcome>;

    /// Fetch the ticket of `ticket_type` with `access_token` of an app of
    /// `app` (WeChat's `getticket`; WeCom's `get_jsapi_ticket` for the
    /// company ticket, `ticket/get?type=agent_config` for the app's); a
    /// rejected token answers its errcode (see [`errcodes::rejects_token_for`]).
    fn fetch_ticket<'a>(
        &'a self,
        access_token: &'a SecretString,
        ticket_type: TicketType,
        app: AppKind,
    ) -> BoxFuture<'a, TicketOutcome>;
}
