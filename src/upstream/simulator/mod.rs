//! A faithful simulator of WeChat's token endpoints (`docs/WECHAT.md`),
//! run as `tokenvault wechat-sim` or in-process from tests through
//! [`WeChatSimulator::start`].
//!
//! The real WeChat API cannot be reached from our machines, so every test and
//! the offline demo exercise the real client against this server. It models:
//!
//! - `GET /cgi-bin/token` (classic): a new token on every call; the previous
//!   one stays valid for [`SimConfig::classic_overlap`], then answers 40001.
//!   Daily quota per appid (45009) until `POST /cgi-bin/clear_quota`.
//! - `POST /cgi-bin/stable_token` (JSON only): the same token with its
//!   remaining `expires_in` while valid, a new one inside the last
//!   [`SimConfig::stable_renew_window`] (the old one lives until its own
//!   expiry); `force_refresh` kills the current token at once, at most
//!   [`SimConfig::force_refresh_daily`] times a day and not sooner than
//!   [`SimConfig::force_refresh_min_interval`] after the last one (a call
//!   sooner gets the current token, unchanged). Per-minute (45011) and daily
//!   (45009) limits. Classic and stable tokens never affect each other.
//! - Errors as WeChat sends them: HTTP 200, `{"errcode": N, "errmsg": "… rid: …"}`,
//!   checked in WeChat's order (`grant_type` 40002, appid 41002, secret 41004,
//!   unknown appid 40013, malformed secret 40125, wrong secret 40001, caller
//!   IP not whitelisted 40164, quotas). Every errcode of API.md can be forced
//!   for the next N calls of an app.
//! - `GET /cgi-bin/getcallbackip?access_token=`: a business API that checks a
//!   token: 41001 missing, 40014 unknown, 40001 superseded or force-refreshed,
//!   42001 expired.
//! - `GET /cgi-bin/ticket/getticket?access_token=&type=jsapi|wx_card`: the
//!   token is checked first (41001, 40014, 40001, 42001), then the type
//!   (40097), then the app's daily ticket quota (45009); a valid app gets
//!   the same ticket of that type while it lives, always with `expires_in`
//!   equal to the full [`SimConfig::ticket_lifetime`] (as WeChat reports),
//!   and a new one afterwards. Injected errcodes and faults do not apply.
//! - Faults per appid ([`Fault`]): latency, hanging, HTTP 5xx with a gateway's
//!   HTML page, malformed JSON, busy (-1), dropped connections. A call slowed
//!   by latency completes even when its client gave up waiting, as at WeChat:
//!   a timed-out classic call still issues its new token (and so starts the
//!   old token's overlap), which nobody received.
//! - A control API under `/sim/` and exact per-appid counters, including the
//!   number of token calls in flight and its maximum.
//! - WeCom (企业微信), served beside WeChat: `gettoken` ([`wecom`]) and the
//!   company and app JS-SDK tickets with WeCom's hourly limits
//!   (`wecom_tickets`).
//!
//! Not modeled: the `clear_quota` API's own limits and its `access_token` (here
//! it takes just `{"appid"}`), the 89xxx IP-confirmation workflow (those
//! codes only come when injected), tokens growing over time, WeChat's
//! exact errmsg wording for every code (ours are close paraphrases), and
//! business APIs other than `getcallbackip`. Faults apply to the two token
//! endpoints only. Each app remembers its last 1024 tokens; older ones are
//! forgotten and answer 40014.

mod routes;
mod state;
pub mod wecom;
mod wecom_tickets;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::Path;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use serde::{Deserialize, Serialize};

use self::state::SimState;

/// The simulator's timings and limits. Defaults are WeChat's; tests shrink the
/// times (see [`SimConfig::fast`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Lifetime of every token (WeChat: 7200 s).
    pub token_lifetime: Duration,
    /// How long a classic token stays valid after a newer one is issued (300 s).
    pub classic_overlap: Duration,
    /// Stable tokens are renewed by a normal call in their last part of life (300 s).
    pub stable_renew_window: Duration,
    /// Classic token calls allowed per appid per day (2000).
    pub daily_quota: u32,
    /// Stable token calls allowed per appid per day (500,000).
    pub stable_daily_quota: u32,
    /// Stable token calls allowed per appid per minute (10,000).
    pub stable_minute_quota: u32,
    /// Force refreshes allowed per appid per day (20).
    pub force_refresh_daily: u32,
    /// Least time between two force refreshes (30 s).
    pub force_refresh_min_interval: Duration,
    /// Characters in each token (WeChat's are about 136–170; at least 16).
    pub token_length: usize,
    /// Lifetime of a JS-SDK ticket (7200 s).
    pub ticket_lifetime: Duration,
    /// Ticket calls allowed per appid per day, every type together (assumed
    /// 100,000; WeChat says only that they are "very limited").
    pub ticket_daily_quota: u32,
    /// How long the `timeout` fault holds a request before answering (1 h).
    pub hang: Duration,
    /// HTTP worker threads (2; the handlers are async, so a few suffice).
    pub workers: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            token_lifetime: Duration::from_secs(7200),
            classic_overlap: Duration::from_secs(300),
            stable_renew_window: Duration::from_secs(300),
            daily_quota: 2000,
            stable_daily_quota: 500_000,
            stable_minute_quota: 10_000,
            force_refresh_daily: 20,
            force_refresh_min_interval: Duration::from_secs(30),
            token_length: 157,
            ticket_lifetime: Duration::from_secs(7200),
            ticket_daily_quota: 100_000,
            hang: Duration::from_secs(3600),
            workers: 2,
        }
    }
}

impl SimConfig {
    /// WeChat's rules on a test's time scale: tokens live 4 s, the classic
    /// overlap and the stable renew window are 1 s, force refreshes have no
    /// minimum interval, and one worker thread serves.
    pub fn fast() -> Self {
        Self {
            token_lifetime: Duration::from_secs(4),
            classic_overlap: Duration::from_secs(1),
            stable_renew_window: Duration::from_secs(1),
            force_refresh_min_interval: Duration::ZERO,
            workers: 1,
            ..Self::default()
        }
    }
}

/// Which kind of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// From `GET /cgi-bin/token`.
    Classic,
    /// From `POST /cgi-bin/stable_token`.
    Stable,
}

/// A failure injected into an app's token calls. As JSON:
/// `{"kind": "latency", "ms": 100}`, `{"kind": "http_status", "status": 502, "times": 2}`.
/// `times` makes a fault apply to the next N calls only; absent, it lasts
/// until cleared. Latency adds to whatever else happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Every token call waits this long before being handled (counted in flight).
    Latency {
        /// Milliseconds to wait.
        ms: u64,
    },
    /// The call never answers (within [`SimConfig::hang`]): clients time out.
    Timeout {
        /// Calls affected; absent: until cleared.
        times: Option<u32>,
    },
    /// An HTTP error status with an HTML body, as a gateway in front of WeChat sends.
    HttpStatus {
        /// The status, 400–599 (e.g. 500, 502, 503).
        status: u16,
        /// Calls affected; absent: until cleared.
        times: Option<u32>,
    },
    /// HTTP 200 with a truncated, unparseable JSON body.
    BadJson {
        /// Calls affected; absent: until cleared.
        times: Option<u32>,
    },
    /// `{"errcode": -1, "errmsg": "system error"}`.
    Busy {
        /// Calls affected; absent: until cleared.
        times: Option<u32>,
    },
    /// The connection is dropped without an answer.
    Close {
        /// Calls affected; absent: until cleared.
        times: Option<u32>,
    },
}

impl Fault {
    fn times(&self) -> Option<u32> {
        match self {
            Self::Latency { .. } => None,
            Self::Timeout { times }
            | Self::HttpStatus { times, .. }
            | Self::BadJson { times }
            | Self::Busy { times }
            | Self::Close { times } => *times,
        }
    }

    fn validate(&self) -> Result<(), SimError> {
        match self {
            Self::HttpStatus { status, .. } if !(400..=599).contains(status) => Err(
                SimError::InvalidFault(format!("status {status} is not between 400 and 599")),
            ),
            Self::Latency { ms } if *ms > 3_600_000 => Err(SimError::InvalidFault(
                "latency above one hour: use the timeout fault".into(),
            )),
            _ if self.times() == Some(0) => {
                Err(SimError::InvalidFault("times must be at least 1".into()))
            }
            _ => Ok(()),
        }
    }
}

/// Counters of one app since start (or the last reset). Every call to a
/// token endpoint counts, failed or not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppStats {
    /// Calls to `GET /cgi-bin/token`.
    pub classic_calls: u64,
    /// Classic calls that answered a token.
    pub classic_ok: u64,
    /// Calls to `POST /cgi-bin/stable_token` (force refreshes included).
    pub stable_calls: u64,
    /// Stable calls that answered a token (new or the same).
    pub stable_ok: u64,
    /// Stable calls with `force_refresh: true`.
    pub force_refresh_calls: u64,
    /// Calls to the token-checking endpoint with one of this app's tokens.
    pub check_calls: u64,
    /// Token calls being handled right now.
    pub in_flight: u64,
    /// The most token calls ever handled at once.
    pub max_in_flight: u64,
    /// New tokens issued (classic and stable).
    pub issued_tokens: u64,
    /// Calls to `GET /cgi-bin/ticket/getticket` with one of this app's tokens.
    pub ticket_calls: u64,
    /// Ticket calls that answered a ticket.
    pub ticket_ok: u64,
}

/// One app of an apps file or of `PUT /sim/apps/{appid}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    /// The appid, e.g. `wx0123456789abcdef`.
    pub appid: String,
    /// The AppSecret (WeChat's are 32 hex characters).
    pub secret: String,
    /// Addresses allowed to fetch tokens; absent: any.
    #[serde(default)]
    pub ip_whitelist: Option<Vec<IpAddr>>,
}

/// Why the simulator refused a control request.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SimError {
    /// No app with this appid is configured.
    #[error("no app {0} is configured in the simulator")]
    UnknownApp(String),
    /// The fault makes no sense.
    #[error("invalid fault: {0}")]
    InvalidFault(String),
    /// Not one of the errcodes the simulator can produce.
    #[error("errcode {0} is not one the simulator can produce (see API.md)")]
    UnknownErrcode(i32),
}

/// Read an apps file: a JSON array of `{"appid", "secret", "ip_whitelist"?}`.
pub fn load_apps_file(path: &Path) -> anyhow::Result<Vec<AppSpec>> {
    use anyhow::Context as _;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the apps file {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "the apps file {} is not a JSON array of {{\"appid\", \"secret\", \"ip_whitelist\"?}}",
            path.display()
        )
    })
}

/// The WeChat simulator; [`WeChatSimulator::start`] runs one.
#[derive(Debug)]
pub struct WeChatSimulator;

impl WeChatSimulator {
    /// Run a simulator on 127.0.0.1 on a free port, on the current tokio runtime.
    pub fn start(config: SimConfig) -> std::io::Result<SimHandle> {
        Self::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Run a simulator on `addr` (port 0: any free port).
    pub fn start_on(config: SimConfig, addr: SocketAddr) -> std::io::Result<SimHandle> {
        Self::start_with_listener(config, TcpListener::bind(addr)?)
    }

    /// Run a simulator on a bound listener. Must be called inside a tokio
    /// runtime (an error otherwise); the server runs until [`SimHandle::stop`]
    /// or until the runtime ends.
    pub fn start_with_listener(
        config: SimConfig,
        listener: TcpListener,
    ) -> std::io::Result<SimHandle> {
        let runtime = tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
        let addr = listener.local_addr()?;
        let workers = config.workers.max(1);
        let wecom = web::Data::new(wecom::WecomSim::new(
            config.token_lifetime,
            config.token_length,
            config.ticket_lifetime,
        ));
        let state = web::Data::new(SimState::new(config));
        let data = state.clone();
        let wecom_data = wecom.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(wecom_data.clone())
                .configure(wecom::configure)
                .configure(routes::configure)
        })
        .workers(workers)
        .listen(listener)?
        .disable_signals()
        // Hanging requests (the timeout fault) must not delay a stop.
        .shutdown_timeout(1)
        .run();
        let server_handle = server.handle();
        let task = runtime.spawn(server);
        Ok(SimHandle {
            addr,
            state,
            wecom,
            server: server_handle,
            task,
        })
    }
}

/// A running simulator: its address and the in-process control API. Shares
/// its state with the HTTP control API under `/sim/`.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    state: web::Data<SimState>,
    wecom: web::Data<wecom::WecomSim>,
    server: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`, to use as the WeChat API base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the simulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The timings and limits it runs with.
    pub fn config(&self) -> &SimConfig {
        &self.state.config
    }

    /// Add an app, or change an existing app's secret (its tokens, quotas,
    /// counters and whitelist are kept).
    pub fn add_app(&self, appid: &str, secret: &str) {
        let whitelist = self.state.whitelist(appid);
        self.state.put_app(appid, secret, whitelist);
    }

    /// Add or change an app as an apps file describes it.
    pub fn put_app(&self, spec: &AppSpec) {
        self.state
            .put_app(&spec.appid, &spec.secret, spec.ip_whitelist.clone());
    }

    /// Restrict the addresses allowed to fetch the app's tokens (`None`: any).
    pub fn set_whitelist(&self, appid: &str, ips: Option<Vec<IpAddr>>) -> Result<(), SimError> {
        self.state.set_whitelist(appid, ips)
    }

    /// Inject a fault into the app's token calls.
    pub fn inject(&self, appid: &str, fault: Fault) -> Result<(), SimError> {
        self.state.inject(appid, fault)
    }

    /// Make the app's next `times` token calls answer `errcode` (any code of API.md).
    pub fn inject_errcode(&self, appid: &str, errcode: i32, times: u32) -> Result<(), SimError> {
        self.state.inject_errcode(appid, errcode, times)
    }

    /// Remove every fault and injected errcode of the app.
    pub fn clear_faults(&self, appid: &str) -> Result<(), SimError> {
        self.state.clear_faults(appid)
    }

    /// The app's counters (all zero for an unknown appid).
    pub fn stats(&self, appid: &str) -> AppStats {
        self.state.stats(appid).unwrap_or_default()
    }

    /// Every app's counters, by appid.
    pub fn all_stats(&self) -> BTreeMap<String, AppStats> {
        self.state.all_stats()
    }

    /// Reset the app's daily and per-minute quotas, as `clear_quota` does.
    pub fn reset_quota(&self, appid: &str) -> Result<(), SimError> {
        self.state.reset_quota(appid)
    }

    /// The app's latest token of this kind, if it is still valid.
    pub fn current_token(&self, appid: &str, kind: TokenKind) -> Option<String> {
        self.state.current_token(appid, kind)
    }

    /// WeCom's side: its apps' secrets, tokens, counters and faults.
    pub fn wecom(&self) -> &wecom::WecomSim {
        &self.wecom
    }

    /// Forget every token, quota, fault and counter; keep the apps.
    pub fn reset(&self) {
        self.state.reset();
    }

    /// Stop the server; requests still hanging are dropped after a second.
    pub async fn stop(self) {
        self.server.stop(true).await;
        let _ = self.task.await;
    }
}

/// WeChat's errcodes and their messages.
pub mod errcode {
    use std::net::IpAddr;

    /// System busy, retry later.
    pub const BUSY: i32 = -1;
    /// Wrong secret on fetch; a superseded token on use.
    pub const INVALID_CREDENTIAL: i32 = 40001;
    /// `grant_type` is not `client_credential`.
    pub const INVALID_GRANT_TYPE: i32 = 40002;
    /// Unknown appid.
    pub const INVALID_APPID: i32 = 40013;
    /// A token that was never issued (or is malformed).
    pub const INVALID_TOKEN: i32 = 40014;
    /// A secret that is not 32 hex characters.
    pub const INVALID_SECRET: i32 = 40125;
    /// Caller's IP not on the app's whitelist.
    pub const IP_NOT_WHITELISTED: i32 = 40164;
    /// `access_token` missing.
    pub const TOKEN_MISSING: i32 = 41001;
    /// `appid` missing.
    pub const APPID_MISSING: i32 = 41002;
    /// `secret` missing.
    pub const SECRET_MISSING: i32 = 41004;
    /// The token ran out.
    pub const TOKEN_EXPIRED: i32 = 42001;
    /// The endpoint needs POST.
    pub const REQUIRE_POST: i32 = 43002;
    /// Daily quota reached.
    pub const DAILY_QUOTA: i32 = 45009;
    /// Per-minute quota reached.
    pub const MINUTE_QUOTA: i32 = 45011;
    /// The body is not the JSON expected.
    pub const DATA_FORMAT: i32 = 47001;
    /// No such API.
    pub const INVALID_URL: i32 = 40066;
    /// An argument is invalid (e.g. an unknown ticket `type`).
    pub const INVALID_ARGS: i32 = 40097;

    /// Every errcode a token call can be made to answer (API.md's table).
    pub const INJECTABLE: [i32; 17] = [
        -1, 40001, 40002, 40013, 40125, 40164, 41002, 41004, 45009, 45011, 50004, 50007, 61024,
        89501, 89503, 89506, 89507,
    ];

    /// WeChat's message for `code` (without the ` rid: …` suffix). `ip` is
    /// the caller's address, named by 40164.
    pub fn message(code: i32, ip: Option<IpAddr>) -> String {
        let text = match code {
            BUSY => "system error",
            INVALID_CREDENTIAL => "invalid credential, access_token is invalid or not latest",
            INVALID_GRANT_TYPE => "invalid grant_type",
            INVALID_APPID => "invalid appid",
            INVALID_TOKEN => "invalid access_token",
            INVALID_URL => "invalid url",
            INVALID_ARGS => "invalid args",
            INVALID_SECRET => "invalid appsecret",
            IP_NOT_WHITELISTED => {
                let ip = ip.map_or_else(|| "0.0.0.0".to_string(), |ip| ip.to_string());
                return format!("invalid ip {ip} ipv6 ::ffff:{ip}, not in whitelist");
            }
            TOKEN_MISSING => "access_token missing",
            APPID_MISSING => "appid missing",
            SECRET_MISSING => "appsecret missing",
            TOKEN_EXPIRED => "access_token expired",
            REQUIRE_POST => "require POST method",
            DAILY_QUOTA => "reach max api daily quota limit",
            MINUTE_QUOTA => "api minute-quota reach limit  mustslower  retry next minute",
            DATA_FORMAT => "data format error",
            50004 => "api forbidden for irregularities, the token api of this account is disabled",
            50007 => "account freezed",
            61024 => "this api is for a third-party platform: use the component access token",
            89501 => "this ip is waiting for the administrator's confirmation",
            89503 => "this ip call requires administrator confirmation",
            89506 => "this ip was refused twice by the administrator within 24 hours",
            89507 => "this ip was refused by the administrator within 1 hour",
            _ => "system error",
        };
        text.to_string()
    }
}
