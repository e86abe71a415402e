//! The simulator's state: apps, issued tokens, quotas, faults and counters.
//!
//! One `std::sync::Mutex` guards apps and tokens; it is taken for a few
//! microseconds per request and never across an await, so latency faults and
//! thousands of concurrent calls do not serialise on it. Counters are atomics
//! reachable without the lock, so an in-flight guard can be dropped anywhere.
//!
//! Here: the apps and the control API (faults, quotas, counters); the token
//! endpoints' work is in `tokens`, the counters in `counters`.

mod counters;
mod tickets;
mod tokens;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{AppStats, Fault, SimConfig, SimError, TokenKind, errcode};
use counters::Counters;
pub(super) use counters::InFlight;
use tokens::TokenRecord;
pub(super) use tokens::{Credentials, Issued, TokenCheck, WxError};

/// Shared state of one simulator: the HTTP handlers and the in-process handle
/// both work on it.
#[derive(Debug)]
pub(super) struct SimState {
    pub(super) config: SimConfig,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    apps: HashMap<String, App>,
    tokens: HashMap<String, TokenRecord>,
}

#[derive(Debug)]
struct App {
    secret: String,
    whitelist: Option<Vec<IpAddr>>,
    faults: Vec<ActiveFault>,
    /// Injected answers for the next token calls: (errcode, calls left).
    errcodes: VecDeque<(i32, u32)>,
    classic: ClassicState,
    stable: StableState,
    /// The current ticket of each type (`jsapi`, `wx_card`).
    tickets: HashMap<String, tickets::TicketRecord>,
    /// Ticket calls today.
    ticket_daily: DailyCount,
    /// Every token issued for this app, oldest first, for eviction.
    history: VecDeque<String>,
    counters: Arc<Counters>,
    /// Wakes the app's hanging calls when its faults are cleared, so they
    /// stop counting as in flight.
    release: Arc<tokio::sync::Notify>,
}

#[derive(Debug, Default)]
struct ClassicState {
    current: Option<String>,
    daily: DailyCount,
}

#[derive(Debug, Default)]
struct StableState {
    current: Option<String>,
    daily: DailyCount,
    /// (minute number since the epoch, calls in that minute).
    minute: (u64, u32),
    force_daily: DailyCount,
    last_force: Option<Instant>,
}

/// Calls made on one day; WeChat's day starts at midnight Beijing time.
#[derive(Debug, Default)]
struct DailyCount {
    day: i64,
    used: u32,
}

impl DailyCount {
    fn today(&mut self) -> &mut u32 {
        let today = beijing_day();
        if self.day != today {
            self.day = today;
            self.used = 0;
        }
        &mut self.used
    }
}

fn beijing_day() -> i64 {
    (chrono::Utc::now().timestamp() + 8 * 3600).div_euclid(86_400)
}

fn current_minute() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp().div_euclid(60)).unwrap_or(0)
}

#[derive(Debug)]
struct ActiveFault {
    fault: Fault,
    /// Calls left; `None` until cleared.
    left: Option<u32>,
}

/// What an injected failure makes a token call do instead of its real work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mishap {
    /// Never answer (until the client gives up or `hang` passes).
    Hang,
    /// Answer this HTTP status with a gateway's HTML page.
    HttpStatus(u16),
    /// Answer 200 with a body that is not JSON.
    BadJson,
    /// Drop the connection without an answer.
    Close,
    /// Answer this WeChat errcode (-1 for busy).
    Errcode(i32),
}

/// How a token call starts: the in-flight guard, the latency to sleep first
/// (outside the lock) and, if injected, what to do instead of the real work.
#[derive(Debug)]
pub(super) struct CallStart {
    pub(super) guard: Option<InFlight>,
    pub(super) latency: Duration,
    pub(super) mishap: Option<Mishap>,
    /// Notified when the app's faults are cleared (ends a hang early).
    pub(super) release: Option<Arc<tokio::sync::Notify>>,
}

impl SimState {
    pub(super) fn new(config: SimConfig) -> Self {
        Self {
            config,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // No code path panics while holding the lock; if one ever did, the
        // data is still consistent enough for a test double to carry on.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Add an app, or change the secret and whitelist of an existing one
    /// (its tokens, quotas and counters are kept).
    pub(super) fn put_app(&self, appid: &str, secret: &str, whitelist: Option<Vec<IpAddr>>) {
        let mut inner = self.lock();
        let whitelist = whitelist.map(|l| l.into_iter().map(|ip| ip.to_canonical()).collect());
        match inner.apps.get_mut(appid) {
            Some(app) => {
                app.secret = secret.to_string();
                app.whitelist = whitelist;
            }
            None => {
                inner.apps.insert(
                    appid.to_string(),
                    App {
                        secret: secret.to_string(),
                        whitelist,
                        faults: Vec::new(),
                        errcodes: VecDeque::new(),
                        classic: ClassicState::default(),
                        stable: StableState::default(),
                        tickets: HashMap::new(),
                        ticket_daily: DailyCount::default(),
                        history: VecDeque::new(),
                        counters: Arc::default(),
                        release: Arc::default(),
                    },
                );
            }
        }
    }

    /// The app's whitelist (`None` for an unknown app or one without).
    pub(super) fn whitelist(&self, appid: &str) -> Option<Vec<IpAddr>> {
        self.lock().apps.get(appid)?.whitelist.clone()
    }

    fn with_app<T>(&self, appid: &str, f: impl FnOnce(&mut App) -> T) -> Result<T, SimError> {
        let mut inner = self.lock();
        inner
            .apps
            .get_mut(appid)
            .map(f)
            .ok_or_else(|| SimError::UnknownApp(appid.to_string()))
    }

    pub(super) fn set_whitelist(
        &self,
        appid: &str,
        whitelist: Option<Vec<IpAddr>>,
    ) -> Result<(), SimError> {
        let whitelist = whitelist.map(|l| l.into_iter().map(|ip| ip.to_canonical()).collect());
        self.with_app(appid, |app| app.whitelist = whitelist)
    }

    pub(super) fn inject(&self, appid: &str, fault: Fault) -> Result<(), SimError> {
        fault.validate()?;
        self.with_app(appid, |app| {
            if matches!(fault, Fault::Latency { .. }) {
                // One latency at a time: a new one replaces the old.
                app.faults
                    .retain(|f| !matches!(f.fault, Fault::Latency { .. }));
            }
            let left = fault.times();
            app.faults.push(ActiveFault { fault, left });
        })
    }

    pub(super) fn clear_faults(&self, appid: &str) -> Result<(), SimError> {
        self.with_app(appid, |app| {
            app.faults.clear();
            app.errcodes.clear();
            app.release.notify_waiters();
        })
    }

    pub(super) fn inject_errcode(
        &self,
        appid: &str,
        code: i32,
        times: u32,
    ) -> Result<(), SimError> {
        if !errcode::INJECTABLE.contains(&code) {
            return Err(SimError::UnknownErrcode(code));
        }
        self.with_app(appid, |app| {
            if times > 0 {
                app.errcodes.push_back((code, times));
            }
        })
    }

    pub(super) fn stats(&self, appid: &str) -> Option<AppStats> {
        let inner = self.lock();
        inner.apps.get(appid).map(|a| a.counters.snapshot())
    }

    pub(super) fn all_stats(&self) -> BTreeMap<String, AppStats> {
        let inner = self.lock();
        inner
            .apps
            .iter()
            .map(|(id, a)| (id.clone(), a.counters.snapshot()))
            .collect()
    }

    pub(super) fn reset_quota(&self, appid: &str) -> Result<(), SimError> {
        self.with_app(appid, |app| {
            app.classic.daily.used = 0;
            app.stable.daily.used = 0;
            app.stable.minute = (0, 0);
            app.stable.force_daily.used = 0;
            app.ticket_daily.used = 0;
        })
    }

    pub(super) fn current_token(&self, appid: &str, kind: TokenKind) -> Option<String> {
        let inner = self.lock();
        let app = inner.apps.get(appid)?;
        let token = match kind {
            TokenKind::Classic => app.classic.current.as_ref()?,
            TokenKind::Stable => app.stable.current.as_ref()?,
        };
        let now = Instant::now();
        let record = inner.tokens.get(token)?;
        (record.check(now) == TokenCheck::Valid).then(|| token.clone())
    }

    /// Forget every token, quota, fault and counter; keep the apps.
    pub(super) fn reset(&self) {
        let mut inner = self.lock();
        inner.tokens.clear();
        for app in inner.apps.values_mut() {
            app.release.notify_waiters();
            app.faults.clear();
            app.errcodes.clear();
            app.classic = ClassicState::default();
            app.stable = StableState::default();
            app.history.clear();
            app.tickets.clear();
            app.ticket_daily = DailyCount::default();
            app.counters.reset();
        }
    }

    /// Count a token call, start its in-flight guard and pick the fault it
    /// suffers. Unknown appids are neither counted nor faulted: they get their
    /// 40013 (or earlier error) from the real work.
    pub(super) fn begin_call(
        &self,
        appid: Option<&str>,
        kind: TokenKind,
        force: bool,
    ) -> CallStart {
        let mut inner = self.lock();
        let Some(app) = appid.and_then(|id| inner.apps.get_mut(id)) else {
            return CallStart {
                guard: None,
                latency: Duration::ZERO,
                mishap: None,
                release: None,
            };
        };
        let counters = &app.counters;
        match kind {
            TokenKind::Classic => &counters.classic_calls,
            TokenKind::Stable => &counters.stable_calls,
        }
        .fetch_add(1, Ordering::SeqCst);
        if force {
            counters.force_refresh_calls.fetch_add(1, Ordering::SeqCst);
        }
        let guard = Some(InFlight::start(Arc::clone(counters), kind));
        let latency = app
            .faults
            .iter()
            .find_map(|f| match f.fault {
                Fault::Latency { ms } => Some(Duration::from_millis(ms)),
                _ => None,
            })
            .unwrap_or_default();
        let mishap = app.take_mishap();
        CallStart {
            guard,
            latency,
            mishap,
            release: Some(Arc::clone(&app.release)),
        }
    }
}

impl App {
    /// The fault or injected errcode this call suffers, consuming one use.
    fn take_mishap(&mut self) -> Option<Mishap> {
        let index = self
            .faults
            .iter()
            .position(|f| !matches!(f.fault, Fault::Latency { .. }));
        if let Some(i) = index {
            let fault = &mut self.faults[i];
            let mishap = match fault.fault {
                Fault::Latency { .. } => None,
                Fault::Timeout { .. } => Some(Mishap::Hang),
                Fault::HttpStatus { status, .. } => Some(Mishap::HttpStatus(status)),
                Fault::BadJson { .. } => Some(Mishap::BadJson),
                Fault::Busy { .. } => Some(Mishap::Errcode(errcode::BUSY)),
                Fault::Close { .. } => Some(Mishap::Close),
            };
            if let Some(left) = &mut fault.left {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    self.faults.remove(i);
                }
            }
            return mishap;
        }
        let (code, left) = self.errcodes.front_mut()?;
        let code = *code;
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.errcodes.pop_front();
        }
        Some(Mishap::Errcode(code))
    }
}
