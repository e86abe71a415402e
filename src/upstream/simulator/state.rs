//! The simulator's state: apps, issued tokens, quotas, faults and counters.
//!
//! One `std::sync::Mutex` guards apps and tokens; it is taken for a few
//! microseconds per request and never across an await, so latency faults and
//! thousands of concurrent calls do not serialise on it. Counters are atomics
//! reachable without the lock, so an in-flight guard can be dropped anywhere.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rand::Rng as _;

use super::{AppStats, Fault, SimConfig, SimError, TokenKind, errcode};

/// Tokens remembered per app (for 40001 answers about superseded ones);
/// older ones are forgotten and then answer 40014 like any unknown string.
const TOKEN_HISTORY_PER_APP: usize = 1024;

/// Characters of a WeChat-shaped token body.
const TOKEN_ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-";

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

#[derive(Debug)]
struct TokenRecord {
    appid: String,
    expires_at: Instant,
    /// When a newer classic token or a force refresh killed this one early.
    dies_at: Option<Instant>,
}

/// Per-app counters, updated without the lock.
#[derive(Debug, Default)]
pub(super) struct Counters {
    classic_calls: AtomicU64,
    classic_ok: AtomicU64,
    stable_calls: AtomicU64,
    stable_ok: AtomicU64,
    force_refresh_calls: AtomicU64,
    check_calls: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    issued_tokens: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> AppStats {
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
        }
    }

    fn reset(&self) {
        for c in [
            &self.classic_calls,
            &self.classic_ok,
            &self.stable_calls,
            &self.stable_ok,
            &self.force_refresh_calls,
            &self.check_calls,
            &self.issued_tokens,
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
pub(super) struct InFlight {
    counters: Arc<Counters>,
    kind: TokenKind,
}

impl InFlight {
    fn start(counters: Arc<Counters>, kind: TokenKind) -> Self {
        let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        counters.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self { counters, kind }
    }

    /// Record that this call answered a token.
    pub(super) fn succeeded(&self) {
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

/// The credentials of a token request, as sent (absent fields are `None`).
#[derive(Debug, Default)]
pub(super) struct Credentials {
    pub(super) grant_type: Option<String>,
    pub(super) appid: Option<String>,
    pub(super) secret: Option<String>,
}

/// A token answer: the token and its remaining lifetime in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Issued {
    pub(super) access_token: String,
    pub(super) expires_in: u64,
}

/// A WeChat error answer: the errcode and, for 40164, the caller's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WxError {
    pub(super) code: i32,
    pub(super) ip: Option<IpAddr>,
}

impl From<i32> for WxError {
    fn from(code: i32) -> Self {
        Self { code, ip: None }
    }
}

/// What the token-checking endpoint concludes about a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenCheck {
    /// The token is valid.
    Valid,
    /// The token is not valid: answer this errcode.
    Invalid(i32),
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

    /// `GET /cgi-bin/token`: a new token on every call; the previous one dies
    /// `classic_overlap` later.
    pub(super) fn classic_token(&self, creds: &Credentials, ip: IpAddr) -> Result<Issued, WxError> {
        let cfg = &self.config;
        let mut inner = self.lock();
        let Inner { apps, tokens } = &mut *inner;
        let (appid, app) = authorize(apps, creds, ip)?;
        let used = app.classic.daily.today();
        if *used >= cfg.daily_quota {
            return Err(errcode::DAILY_QUOTA.into());
        }
        *used += 1;
        let now = Instant::now();
        if let Some(previous) = app.classic.current.take()
            && let Some(record) = tokens.get_mut(&previous)
        {
            record.kill_at(now + cfg.classic_overlap);
        }
        let issued = issue(cfg, tokens, &appid, app, now);
        app.classic.current = Some(issued.access_token.clone());
        Ok(issued)
    }

    /// `POST /cgi-bin/stable_token`: the same token while it is valid, a new
    /// one inside the renew window, and force refreshes within their limits.
    pub(super) fn stable_token(
        &self,
        creds: &Credentials,
        force: bool,
        ip: IpAddr,
    ) -> Result<Issued, WxError> {
        let cfg = &self.config;
        let mut inner = self.lock();
        let Inner { apps, tokens } = &mut *inner;
        let (appid, app) = authorize(apps, creds, ip)?;
        let minute = current_minute();
        if app.stable.minute.0 != minute {
            app.stable.minute = (minute, 0);
        }
        if app.stable.minute.1 >= cfg.stable_minute_quota {
            return Err(errcode::MINUTE_QUOTA.into());
        }
        let used = app.stable.daily.today();
        if *used >= cfg.stable_daily_quota {
            return Err(errcode::DAILY_QUOTA.into());
        }
        *used += 1;
        app.stable.minute.1 += 1;

        let now = Instant::now();
        let current = app
            .stable
            .current
            .as_ref()
            .and_then(|t| tokens.get(t).map(|r| (t, r)))
            .filter(|(_, r)| r.check(now) == TokenCheck::Valid)
            .map(|(t, r)| (t.clone(), r.expires_at.saturating_duration_since(now)));

        if force {
            let forced = app.stable.force_daily.today();
            if *forced >= cfg.force_refresh_daily {
                return Err(errcode::DAILY_QUOTA.into());
            }
            let too_soon = app
                .stable
                .last_force
                .is_some_and(|t| now.duration_since(t) < cfg.force_refresh_min_interval);
            if !too_soon {
                *forced += 1;
                app.stable.last_force = Some(now);
                if let Some((token, _)) = &current
                    && let Some(record) = tokens.get_mut(token)
                {
                    record.kill_at(now);
                }
                let issued = issue(cfg, tokens, &appid, app, now);
                app.stable.current = Some(issued.access_token.clone());
                return Ok(issued);
            }
            // Too soon after the last force refresh: WeChat does not refresh
            // and answers as in normal mode.
        }
        if let Some((token, remaining)) = current
            && remaining > cfg.stable_renew_window
        {
            return Ok(Issued {
                access_token: token,
                expires_in: remaining.as_secs(),
            });
        }
        // Inside the renew window (the old token lives on until its own
        // expiry) or no valid token at all.
        let issued = issue(cfg, tokens, &appid, app, now);
        app.stable.current = Some(issued.access_token.clone());
        Ok(issued)
    }

    /// `GET /cgi-bin/getcallbackip`: is this token usable now?
    pub(super) fn check_token(&self, token: &str) -> TokenCheck {
        let inner = self.lock();
        let Some(record) = inner.tokens.get(token) else {
            return TokenCheck::Invalid(errcode::INVALID_TOKEN);
        };
        if let Some(app) = inner.apps.get(&record.appid) {
            app.counters.check_calls.fetch_add(1, Ordering::SeqCst);
        }
        record.check(Instant::now())
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

impl TokenRecord {
    fn kill_at(&mut self, at: Instant) {
        self.dies_at = Some(self.dies_at.map_or(at, |d| d.min(at)));
    }

    fn check(&self, now: Instant) -> TokenCheck {
        // A token killed before its natural expiry answers 40001 ("not
        // latest"); one that simply ran out answers 42001.
        match self.dies_at {
            Some(d) if d < self.expires_at && now >= d => {
                TokenCheck::Invalid(errcode::INVALID_CREDENTIAL)
            }
            _ if now >= self.expires_at => TokenCheck::Invalid(errcode::TOKEN_EXPIRED),
            _ => TokenCheck::Valid,
        }
    }
}

/// WeChat's checks, in its order: grant type, presence, appid, secret, IP.
fn authorize<'a>(
    apps: &'a mut HashMap<String, App>,
    creds: &Credentials,
    ip: IpAddr,
) -> Result<(String, &'a mut App), WxError> {
    if creds.grant_type.as_deref() != Some("client_credential") {
        return Err(errcode::INVALID_GRANT_TYPE.into());
    }
    let appid = creds.appid.as_deref().filter(|s| !s.is_empty());
    let Some(appid) = appid else {
        return Err(errcode::APPID_MISSING.into());
    };
    let secret = creds.secret.as_deref().filter(|s| !s.is_empty());
    let Some(secret) = secret else {
        return Err(errcode::SECRET_MISSING.into());
    };
    let Some(app) = apps.get_mut(appid) else {
        return Err(errcode::INVALID_APPID.into());
    };
    if secret != app.secret {
        let well_formed = secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_hexdigit());
        return Err(if well_formed {
            errcode::INVALID_CREDENTIAL
        } else {
            errcode::INVALID_SECRET
        }
        .into());
    }
    let ip = ip.to_canonical();
    if let Some(list) = &app.whitelist
        && !list.contains(&ip)
    {
        return Err(WxError {
            code: errcode::IP_NOT_WHITELISTED,
            ip: Some(ip),
        });
    }
    Ok((appid.to_string(), app))
}

fn issue(
    cfg: &SimConfig,
    tokens: &mut HashMap<String, TokenRecord>,
    appid: &str,
    app: &mut App,
    now: Instant,
) -> Issued {
    let access_token = new_token(cfg.token_length);
    tokens.insert(
        access_token.clone(),
        TokenRecord {
            appid: appid.to_string(),
            expires_at: now + cfg.token_lifetime,
            dies_at: None,
        },
    );
    app.history.push_back(access_token.clone());
    while app.history.len() > TOKEN_HISTORY_PER_APP {
        if let Some(old) = app.history.pop_front() {
            tokens.remove(&old);
        }
    }
    app.counters.issued_tokens.fetch_add(1, Ordering::SeqCst);
    Issued {
        access_token,
        expires_in: cfg.token_lifetime.as_secs(),
    }
}

/// A token shaped like WeChat's: a two-digit generation, `_`, then random
/// characters of `[0-9A-Za-z_-]`, `length` characters in all (at least 16).
fn new_token(length: usize) -> String {
    let mut rng = rand::thread_rng();
    let mut token = format!("{}_", rng.gen_range(80..100));
    let body = length.max(16).saturating_sub(token.len());
    token.extend(
        (0..body).map(|_| char::from(TOKEN_ALPHABET[rng.gen_range(0..TOKEN_ALPHABET.len())])),
    );
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_requested_length_and_alphabet() {
        for len in [16, 157, 4096] {
            let t = new_token(len);
            assert_eq!(t.len(), len);
            assert!(t.bytes().all(|b| TOKEN_ALPHABET.contains(&b)));
        }
        assert_ne!(new_token(157), new_token(157));
    }

    #[test]
    fn a_token_killed_early_is_not_latest_and_one_run_out_is_expired() {
        let now = Instant::now();
        let mut r = TokenRecord {
            appid: "wx1".into(),
            expires_at: now + Duration::from_secs(10),
            dies_at: None,
        };
        assert_eq!(r.check(now), TokenCheck::Valid);
        assert_eq!(
            r.check(now + Duration::from_secs(10)),
            TokenCheck::Invalid(errcode::TOKEN_EXPIRED)
        );
        r.kill_at(now + Duration::from_secs(2));
        assert_eq!(r.check(now + Duration::from_secs(1)), TokenCheck::Valid);
        assert_eq!(
            r.check(now + Duration::from_secs(3)),
            TokenCheck::Invalid(errcode::INVALID_CREDENTIAL)
        );
        // An overlap past the natural expiry: it simply expires.
        r.dies_at = Some(now + Duration::from_secs(20));
        assert_eq!(
            r.check(now + Duration::from_secs(11)),
            TokenCheck::Invalid(errcode::TOKEN_EXPIRED)
        );
    }
}
