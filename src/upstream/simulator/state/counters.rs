//! Per-app call counters, updated without the simulator's lock, and the
//! guard that counts a token call as in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::super::{AppStats, TokenKind};

/// Per-app counters, updated without the lock.
#[derive(Debug, Default)]
pub(in crate::upstream::simulator) struct Counters {
    pub(super) classic_calls: AtomicU64,
    pub(super) classic_ok: AtomicU64,
    pub(super) stable_calls: AtomicU64,
    pub(super) stable_ok: AtomicU64,
    pub(super) force_refresh_calls: AtomicU64,
    pub(super) check_calls: AtomicU64,
    pub(super) in_flight: AtomicU64,
    pub(super) max_in_flight: AtomicU64,
    pub(super) issued_tokens: AtomicU64,
    pub(super) ticket_calls: AtomicU64,
    pub(super) ticket_ok: AtomicU64,
}

impl Counters {
    pub(super) fn snapshot(&self) -> AppStats {
        let get = |c: &AtomicU64| c.load(Ordering::SeqCst);
        AppStats {
            classic_calls: get(&self.classic_calls),
            classic_ok: get(&self.classic_ok),
            stable_calls: get(&self.stable_calls),
            stable_ok: get(&self.stable_ok),
            force_refresh_calls: get(&self.force_refresh_calls),
            check_calls: get(&self.check_calls),
            in_flight: get(&self.in_flight),
            max_in_flight: get(&self.max_in_flight),
            issued_tokens: get(&self.issued_tokens),
            ticket_calls: get(&self.ticket_calls),
            ticket_ok: get(&self.ticket_ok),
        }
    }

    pub(super) fn reset(&self) {
        for c in [
            &self.classic_calls,
            &self.classic_ok,
            &self.stable_calls,
            &self.stable_ok,
            &self.force_refresh_calls,
            &self.check_calls,
            &self.issued_tokens,
            &self.ticket_calls,
            &self.ticket_ok,
        ] {
            c.store(0, Ordering::SeqCst);
        }
        // Requests still running keep their place in the in-flight count.
        self.max_in_flight
            .store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// Counts one token request as in flight until dropped, so a request whose
/// client went away (and whose future actix dropped) is uncounted too.
#[derive(Debug)]
pub(in crate::upstream::simulator) struct InFlight {
    counters: Arc<Counters>,
    kind: TokenKind,
}

impl InFlight {
    pub(super) fn start(counters: Arc<Counters>, kind: TokenKind) -> Self {
        let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        counters.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self { counters, kind }
    }

    /// Record that this call answered a token.
    pub(in crate::upstream::simulator) fn succeeded(&self) {
        let c = match self.kind {
            TokenKind::Classic => &self.counters.classic_ok,
            TokenKind::Stable => &self.counters.stable_ok,
        };
        c.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.counters.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
