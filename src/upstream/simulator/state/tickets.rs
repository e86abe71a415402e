//! `GET /cgi-bin/ticket/getticket`: JS-SDK tickets derived from a token.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::SimState;
use super::tokens::{TokenCheck, WxError, new_token};
use crate::upstream::simulator::errcode;

/// The ticket types WeChat issues from an official account's token.
pub(in crate::upstream::simulator) const TICKET_TYPES: [&str; 2] = ["jsapi", "wx_card"];

/// A ticket issued for one app and type, with when it dies.
#[derive(Debug)]
pub(super) struct TicketRecord {
    ticket: String,
    expires_at: Instant,
}

/// A ticket answer: the ticket and the `expires_in` WeChat reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::upstream::simulator) struct IssuedTicket {
    pub(in crate::upstream::simulator) ticket: String,
    pub(in crate::upstream::simulator) expires_in: u64,
}

impl SimState {
    /// WeChat's checks, in order: the token (41001 missing, 40014 unknown,
    /// 40001 superseded, 42001 expired), the type (40097), the daily quota
    /// (45009); then the app's current ticket of that type, or a new one.
    pub(in crate::upstream::simulator) fn ticket(
        &self,
        token: Option<&str>,
        kind: Option<&str>,
    ) -> Result<IssuedTicket, WxError> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(WxError::from(errcode::TOKEN_MISSING))?;
        let now = Instant::now();
        let cfg = &self.config;
        let mut inner = self.lock();
        let inner = &mut *inner;
        let record = inner
            .tokens
            .get(token)
            .ok_or(WxError::from(errcode::INVALID_TOKEN))?;
        let app = inner
            .apps
            .get_mut(&record.appid)
            .ok_or(WxError::from(errcode::INVALID_TOKEN))?;
        app.counters.ticket_calls.fetch_add(1, Ordering::SeqCst);
        if let TokenCheck::Invalid(code) = record.check(now) {
            return Err(code.into());
        }
        let kind = kind
            .filter(|k| TICKET_TYPES.contains(k))
            .ok_or(WxError::from(errcode::INVALID_ARGS))?;
        let used = app.ticket_daily.today();
        if *used >= cfg.ticket_daily_quota {
            return Err(errcode::DAILY_QUOTA.into());
        }
        *used += 1;
        let current = app
            .tickets
            .get(kind)
            .filter(|t| t.expires_at > now)
            .map(|t| t.ticket.clone());
        let ticket = current.unwrap_or_else(|| {
            let ticket = new_token(86);
            app.tickets.insert(
                kind.to_string(),
                TicketRecord {
                    ticket: ticket.clone(),
                    expires_at: now + cfg.ticket_lifetime,
                },
            );
            ticket
        });
        app.counters.ticket_ok.fetch_add(1, Ordering::SeqCst);
        Ok(IssuedTicket {
            ticket,
            expires_in: cfg.ticket_lifetime.as_secs(),
        })
    }
}
