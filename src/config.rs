//! Configuration: every setting has a command-line flag and an environment
//! variable, is validated when the command line is parsed (a bad value stops
//! the start with one line naming the setting), and secrets print masked.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

pub mod alerts;
pub mod intervals;
pub use alerts::AlertSettings;
pub mod transport;
pub use intervals::JobIntervals;
pub mod mail;
pub use mail::{MailSettings, SmtpUrl};

use crate::crypto::{self, KeyRing};
use crate::domain::client::TrustedProxies;

/// Every setting of every command. Each can be given as a flag (before or
/// after the subcommand) or through its environment variable.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address and port to listen on.
    #[arg(long = "bind", env = "TOKENVAULT_BIND", default_value = "127.0.0.1:8080",
          value_name = "ADDR", value_parser = parse_bind, global = true)]
    pub bind: SocketAddr,

    /// Directory for tokenvault's own files: the embedded PostgreSQL cluster
    /// and the generated key file. Created if missing.
    #[arg(
        long = "data-dir",
        env = "TOKENVAULT_DATA_DIR",
        default_value = "./.tokenvault",
        value_name = "DIR",
        global = true
    )]
    pub data_dir: PathBuf,

    /// PostgreSQL server to use instead of the embedded one, e.g.
    /// `postgres://user:password@host:5432/tokenvault`
    #[arg(long = "database-url", env = "DATABASE_URL", value_name = "URL",
          value_parser = parse_database_url, global = true, hide_env_values = true)]
    pub database_url: Option<DatabaseUrl>,

    /// File holding the password of `DATABASE_URL`'s user (a Docker secret), so the
    /// URL itself carries none.
    #[arg(
        long = "database-password-file",
        env = "TOKENVAULT_DATABASE_PASSWORD_FILE",
        value_name = "FILE",
        global = true
    )]
    pub database_password_file: Option<PathBuf>,

    /// Largest number of database connections this replica opens.
    #[arg(long = "db-max-connections", env = "TOKENVAULT_DB_MAX_CONNECTIONS", default_value_t = 20,
          value_name = "N", value_parser = clap::value_parser!(u32).range(2..=1000), global = true)]
    pub db_max_connections: u32,

    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `tokenvault=debug,info`.
    #[arg(long = "log", env = "TOKENVAULT_LOG", default_value = "info", value_name = "FILTER",
          value_parser = parse_log_filter, global = true)]
    pub log: String,

    /// Log format: human-readable text or one JSON object per line.
    #[arg(
        long = "log-format",
        env = "TOKENVAULT_LOG_FORMAT",
        default_value = "text",
        value_name = "FORMAT",
        global = true
    )]
    pub log_format: LogFormat,

    /// The URL users reach tokenvault at (`http://` or `https://`, no query); `https://`
    /// makes session cookies `Secure` and sends HSTS.
    #[arg(long = "public-url", env = "TOKENVAULT_PUBLIC_URL", value_name = "URL",
          value_parser = transport::parse_public_url, global = true)]
    pub public_url: Option<url::Url>,

    /// Mark the session cookie `Secure` even without an `https://` public URL.
    #[arg(long = "secure-cookies", env = "TOKENVAULT_SECURE_COOKIES", default_value_t = false,
          action = clap::ArgAction::Set, value_name = "BOOL", global = true)]
    pub secure_cookies: bool,

    /// A session ends after this many minutes without a request.
    #[arg(long = "session-idle-minutes", env = "TOKENVAULT_SESSION_IDLE_MINUTES", default_value_t = 720,
          value_name = "MINUTES", value_parser = clap::value_parser!(u32).range(1..=43_200), global = true)]
    pub session_idle_minutes: u32,

    /// A session ends this many hours after sign-in, however active.
    #[arg(long = "session-max-hours", env = "TOKENVAULT_SESSION_MAX_HOURS", default_value_t = 168,
          value_name = "HOURS", value_parser = clap::value_parser!(u32).range(1..=8_760), global = true)]
    pub session_max_hours: u32,

    /// Sign-in attempts allowed per account per minute.
    #[arg(long = "login-attempts-per-account", env = "TOKENVAULT_LOGIN_ATTEMPTS_PER_ACCOUNT",
          default_value_t = 5, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000),
          global = true)]
    pub login_attempts_per_account: u32,

    /// Sign-in and sign-up attempts allowed per client address per minute.
    #[arg(long = "login-attempts-per-address", env = "TOKENVAULT_LOGIN_ATTEMPTS_PER_ADDRESS",
          default_value_t = 30, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000),
          global = true)]
    pub login_attempts_per_address: u32,

    /// Base URL of WeChat's API (point it at `tokenvault wechat-sim` to test offline).
    #[arg(long = "wechat-api-base", env = "TOKENVAULT_WECHAT_API_BASE", default_value = "https://api.weixin.qq.com",
          value_name = "URL", value_parser = parse_http_url, global = true)]
    pub wechat_api_base: String,

    // --- WeCom (tickets/WeCom) ---
    /// Base URL of WeCom's API (企业微信; point it at `tokenvault wechat-sim`,
    /// which serves WeCom's `gettoken` too, to test offline).
    #[arg(long = "wecom-api-base", env = "TOKENVAULT_WECOM_API_BASE", default_value = "https://qyapi.weixin.qq.com",
          value_name = "URL", value_parser = parse_http_url, global = true)]
    pub wecom_api_base: String,
    // --- end WeCom ---
    /// Allow an `http://` WeChat API base that is not a loopback address (a simulator on
    /// another machine): the appsecret then crosses the network in clear text.
    #[arg(long = "insecure-upstream", env = "TOKENVAULT_INSECURE_UPSTREAM", default_value_t = false,
          value_name = "BOOL", action = clap::ArgAction::Set, global = true)]
    pub insecure_upstream: bool,

    /// Timeout of a whole token request to WeChat, in seconds (connecting gets at most 5 s of it).
    #[arg(long = "upstream-timeout", env = "TOKENVAULT_UPSTREAM_TIMEOUT", default_value_t = 10,
          value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=30), global = true)]
    pub upstream_timeout: u64,

    /// Token refreshes in flight at once on this replica (each holds a database connection).
    #[arg(long = "refresh-concurrency", env = "TOKENVAULT_REFRESH_CONCURRENCY", default_value_t = 8,
          value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256), global = true)]
    pub refresh_concurrency: u32,

    /// Seconds between scheduler ticks (a safety net: changes wake the refresher at once).
    #[arg(long = "refresh-tick", env = "TOKENVAULT_REFRESH_TICK", default_value_t = 5,
          value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub refresh_tick: u64,

    /// Classic tokens are refreshed when this fraction of their life is left (0.05-0.9).
    #[arg(long = "refresh-margin", env = "TOKENVAULT_REFRESH_MARGIN", default_value_t = 0.2,
          value_name = "FRACTION", value_parser = parse_margin, global = true)]
    pub refresh_margin: f64,

    /// Random spread of refresh times, as a fraction of the token lifetime (0-0.5).
    #[arg(long = "refresh-jitter", env = "TOKENVAULT_REFRESH_JITTER", default_value_t = 0.05,
          value_name = "FRACTION", value_parser = parse_jitter, global = true)]
    pub refresh_jitter: f64,

    /// WeChat renews a stable token only in its last this-many seconds; stable refreshes happen inside it.
    #[arg(long = "stable-renew-window", env = "TOKENVAULT_STABLE_RENEW_WINDOW", default_value_t = 300,
          value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=7200), global = true)]
    pub stable_renew_window: u64,

    /// First retry delay after a passing failure (network, WeChat busy); doubles per failure, up to 5 minutes.
    #[arg(long = "retry-base", env = "TOKENVAULT_RETRY_BASE", default_value_t = 2.0,
          value_name = "SECONDS", value_parser = parse_positive_seconds, global = true)]
    pub retry_base: f64,

    /// Retry delay after a configuration error (wrong secret, IP not whitelisted).
    #[arg(long = "config-retry", env = "TOKENVAULT_CONFIG_RETRY", default_value_t = 600.0,
          value_name = "SECONDS", value_parser = parse_positive_seconds, global = true)]
    pub config_retry: f64,

    /// Seconds WeChat keeps a replaced classic token alive (WeChat: 300). After a
    /// classic call whose answer was lost, the stored token is trusted only this long.
    #[arg(long = "classic-overlap", env = "TOKENVAULT_CLASSIC_OVERLAP", default_value_t = 300,
          value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub classic_overlap: u64,

    /// Upstream calls per app per WeChat quota day (midnight Beijing time); WeChat allows 2000 classic calls.
    #[arg(long = "daily-upstream-budget", env = "TOKENVAULT_DAILY_UPSTREAM_BUDGET", default_value_t = 2000,
          value_name = "N", value_parser = clap::value_parser!(u32).range(10..=500_000), global = true)]
    pub daily_upstream_budget: u32,

    /// Of the daily budget, the last this many calls only scheduled refreshes may make.
    #[arg(long = "scheduler-reserve", env = "TOKENVAULT_SCHEDULER_RESERVE", default_value_t = 200,
          value_name = "N", value_parser = clap::value_parser!(u32).range(1..=500_000), global = true)]
    pub scheduler_reserve: u32,

    /// An invalidation report refreshes only a token at least this many seconds old.
    #[arg(long = "invalidate-min-age", env = "TOKENVAULT_INVALIDATE_MIN_AGE", default_value_t = 60,
          value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(0..=7200), global = true)]
    pub invalidate_min_age: u64,

    /// Refreshes per app per hour that invalidation reports may cause.
    #[arg(long = "invalidates-per-hour", env = "TOKENVAULT_INVALIDATES_PER_HOUR", default_value_t = 3,
          value_name = "N", value_parser = clap::value_parser!(u32).range(1..=60), global = true)]
    pub invalidates_per_hour: u32,

    /// "Refresh now" may go past a failure's retry time once per app per this many seconds.
    #[arg(long = "refresh-now-cooldown", env = "TOKENVAULT_REFRESH_NOW_COOLDOWN", default_value_t = 60,
          value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400), global = true)]
    pub refresh_now_cooldown: u64,

    /// Token reads that refresh on demand, in flight at once on this replica (each holds a database connection).
    #[arg(long = "on-demand-concurrency", env = "TOKENVAULT_ON_DEMAND_CONCURRENCY", default_value_t = 8,
          value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256), global = true)]
    pub on_demand_concurrency: u32,

    /// Of those, at most this many for one organisation.
    #[arg(long = "on-demand-per-tenant", env = "TOKENVAULT_ON_DEMAND_PER_TENANT", default_value_t = 2,
          value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256), global = true)]
    pub on_demand_per_tenant: u32,

    /// Database connections kept for token reads, beside those of the refreshes.
    #[arg(long = "db-read-connections", env = "TOKENVAULT_DB_READ_CONNECTIONS", default_value_t = 4,
          value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256), global = true)]
    pub db_read_connections: u32,

    /// Token reads per second one API key may make (twice as many in a burst); more get 429.
    #[arg(long = "key-read-rate", env = "TOKENVAULT_KEY_READ_RATE", default_value_t = 500,
          value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000_000), global = true)]
    pub key_read_rate: u32,

    /// Refresh log entries older than this many days are deleted.
    #[arg(long = "refresh-log-days", env = "TOKENVAULT_REFRESH_LOG_DAYS", default_value_t = 30,
          value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650), global = true)]
    pub refresh_log_days: u32,

    /// This replica's id, shown to operators with its host name; tenants see an opaque label derived from it (default: random).
    #[arg(
        long = "replica-id",
        env = "TOKENVAULT_REPLICA_ID",
        value_name = "NAME",
        global = true
    )]
    pub replica_id: Option<String>,

    /// Master keys that encrypt appsecrets and tokens at rest: comma-separated
    /// `id:base64key` entries (32-byte keys; `tokenvault keys generate` makes
    /// one). The first is active unless `TOKENVAULT_ACTIVE_KEY_ID` names another.
    #[arg(long = "master-keys", env = "TOKENVAULT_MASTER_KEYS", value_name = "KEYS",
          value_parser = MasterKeysParser, global = true, hide_env_values = true)]
    pub master_keys: Option<KeyRing>,

    /// File with the master keys, one `id:base64key` per line (`#` comments);
    /// used when `TOKENVAULT_MASTER_KEYS` is unset. Default: `master.key` in
    /// the data directory, generated on first run with the embedded database.
    #[arg(
        long = "master-key-file",
        env = "TOKENVAULT_MASTER_KEY_FILE",
        value_name = "FILE",
        global = true
    )]
    pub master_key_file: Option<PathBuf>,

    /// Id of the master key that encrypts new secrets (default: the first key).
    #[arg(long = "active-key-id", env = "TOKENVAULT_ACTIVE_KEY_ID", value_name = "ID",
          value_parser = parse_active_key_id, global = true)]
    pub active_key_id: Option<String>,

    /// Reverse proxies whose `X-Forwarded-For` is believed: comma-separated
    /// CIDRs or addresses, e.g. `10.0.0.0/8,192.0.2.7`. Empty: the TCP peer
    /// is the client, whatever the header says.
    #[arg(long = "trusted-proxies", env = "TOKENVAULT_TRUSTED_PROXIES", default_value = "",
          value_name = "CIDRS", value_parser = parse_trusted_proxies, global = true)]
    pub trusted_proxies: TrustedProxies,

    /// Failed API key authentications allowed per client address (IPv6: per /64) per minute;
    /// past it, 429 before any database lookup.
    #[arg(long = "failed-key-auth-per-minute", env = "TOKENVAULT_FAILED_KEY_AUTH_PER_MINUTE",
          default_value_t = 30, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000),
          global = true)]
    pub failed_key_auth_per_minute: u32,

    /// Password hashes and checks (argon2, about 19 MiB each) running at once on this replica.
    #[arg(long = "password-hash-concurrency", env = "TOKENVAULT_PASSWORD_HASH_CONCURRENCY",
          default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64),
          global = true)]
    pub password_hash_concurrency: u32,

    /// How long a sign-in, sign-up or invite waits for a free password hasher
    /// before it is answered 503 `busy`, in milliseconds.
    #[arg(long = "password-hash-wait-ms", env = "TOKENVAULT_PASSWORD_HASH_WAIT_MS",
          default_value_t = 3000, value_name = "MS", value_parser = clap::value_parser!(u64).range(10..=60_000),
          global = true)]
    pub password_hash_wait_ms: u64,

    /// `/metrics` and `/api/v1/service-health` are measured in the database at most once per this many seconds.
    #[arg(long = "stats-cache-seconds", env = "TOKENVAULT_STATS_CACHE_SECONDS", default_value_t = 5,
          value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub stats_cache_seconds: u64,

    /// When set, `/metrics` answers only requests with `Authorization: Bearer <token>`
    /// (16 to 256 printable characters, no spaces).
    #[arg(long = "metrics-token", env = "TOKENVAULT_METRICS_TOKEN", value_name = "TOKEN",
          value_parser = MetricsTokenParser, global = true, hide_env_values = true)]
    pub metrics_token: Option<MetricsToken>,

    /// Apps an organisation may register, unless an operator set its own limit
    /// (`tokenvault operator app-limit`).
    #[arg(long = "max-apps-per-tenant", env = "TOKENVAULT_MAX_APPS_PER_TENANT", default_value_t = 1000,
          value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000), global = true)]
    pub max_apps_per_tenant: u32,

    /// How often each background job runs.
    #[command(flatten)]
    #[allow(missing_docs)]
    pub intervals: JobIntervals,

    /// How alerts are delivered.
    #[command(flatten)]
    #[allow(missing_docs)]
    pub alerts: AlertSettings,

    /// How mail is sent.
    #[command(flatten)]
    #[allow(missing_docs)]
    pub mail: MailSettings,
}

impl Settings {
    /// Whether users reach tokenvault over HTTPS by its public URL (an
    /// `https://` one): then every answer carries HSTS. A trusted proxy can
    /// say so for one request too (`http::identity::over_https`).
    pub fn served_over_https(&self) -> bool {
        self.public_url
            .as_ref()
            .is_some_and(|u| u.scheme() == "https")
    }

    /// The address links in mails start with: `TOKENVAULT_PUBLIC_URL`, or
    /// this replica's own address (the loopback one for a wildcard bind).
    pub fn public_base(&self) -> String {
        if let Some(url) = &self.public_url {
            return url.as_str().trim_end_matches('/').to_string();
        }
        let ip = match self.bind.ip() {
            std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
                std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
            }
            std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
                std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
            }
            ip => ip,
        };
        format!("http://{}", std::net::SocketAddr::new(ip, self.bind.port()))
    }

    /// The link to an app's page, when the public address is known (alerts
    /// link there).
    pub fn app_page(&self, appid: &str) -> Option<String> {
        self.public_url
            .as_ref()
            .map(|base| format!("{}/apps/{appid}", base.as_str().trim_end_matches('/')))
    }

    /// Checks across settings, made before anything starts.
    pub fn check(&self) -> Result<(), String> {
        if let Some(url) = &self.database_url {
            url.validate()?;
        }
        transport::check_upstream(&self.wechat_api_base, self.insecure_upstream)?;
        transport::check_upstream_named(
            "TOKENVAULT_WECOM_API_BASE",
            &self.wecom_api_base,
            self.insecure_upstream,
        )
    }
}

/// The bearer token that `/metrics` asks for; never printed.
#[derive(Clone)]
pub struct MetricsToken(secrecy::SecretString);

impl MetricsToken {
    /// Whether `sent` is the token (compared in constant time, over hashes
    /// of equal length, so neither content nor length leaks).
    pub fn matches(&self, sent: &str) -> bool {
        use secrecy::ExposeSecret as _;
        let expected = crate::domain::credential::hash(self.0.expose_secret());
        crate::domain::credential::constant_time_eq(
            &expected,
            &crate::domain::credential::hash(sent),
        )
    }
}

impl fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MetricsToken(***)")
    }
}

fn parse_metrics_token(value: &str) -> Result<MetricsToken, String> {
    let ok = (16..=256).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(MetricsToken(value.to_string().into()))
    } else {
        Err("expected 16 to 256 printable ASCII characters without spaces (TOKENVAULT_METRICS_TOKEN)".into())
    }
}

/// Parses `TOKENVAULT_METRICS_TOKEN` with an error that never repeats the value.
#[derive(Debug, Clone, Copy)]
struct MetricsTokenParser;

impl clap::builder::TypedValueParser for MetricsTokenParser {
    type Value = MetricsToken;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<MetricsToken, clap::Error> {
        let fail = |message: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("{message}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value
            .to_str()
            .ok_or_else(|| fail("not UTF-8 text (TOKENVAULT_METRICS_TOKEN)".into()))?;
        parse_metrics_token(text).map_err(fail)
    }
}

fn parse_trusted_proxies(value: &str) -> Result<TrustedProxies, String> {
    value.parse()
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// A database URL whose password never prints.
#[derive(Clone)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL with its password, for the one place that connects.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&transport::mask_database_url(&self.0))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

fn parse_bind(value: &str) -> Result<SocketAddr, String> {
    value.parse().map_err(|_| {
        "expected an IP address and port such as 127.0.0.1:8080 or [::]:8080 (TOKENVAULT_BIND)"
            .into()
    })
}

/// Accepts any text: a URL is checked by [`DatabaseUrl::validate`] instead,
/// because clap repeats a refused value in its error, password and all.
#[allow(clippy::unnecessary_wraps)]
fn parse_database_url(value: &str) -> Result<DatabaseUrl, String> {
    Ok(DatabaseUrl(value.to_string()))
}

impl DatabaseUrl {
    /// Check the URL, with an error that names the setting and masks the password.
    pub fn validate(&self) -> Result<(), String> {
        let value = &self.0;
        if !(value.starts_with("postgres://") || value.starts_with("postgresql://")) {
            return Err(format!("DATABASE_URL ({self}) must start with postgres://"));
        }
        value
            .parse::<sqlx::postgres::PgConnectOptions>()
            .map(|_| ())
            .map_err(|e| format!("DATABASE_URL ({self}) is not a valid PostgreSQL URL: {e}"))
    }
}

fn parse_http_url(value: &str) -> Result<String, String> {
    let ok = (value.starts_with("http://") || value.starts_with("https://"))
        && value.len() > "https://".len()
        && !value.contains(char::is_whitespace);
    if ok {
        Ok(value.trim_end_matches('/').to_string())
    } else {
        Err(
            "expected an http:// or https:// URL (TOKENVAULT_WECHAT_API_BASE, TOKENVAULT_WECOM_API_BASE)"
                .into(),
        )
    }
}

fn parse_fraction(value: &str, min: f64, max: f64, name: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(format!("expected a number from {min} to {max} ({name})")),
    }
}

fn parse_margin(value: &str) -> Result<f64, String> {
    parse_fraction(value, 0.05, 0.9, "TOKENVAULT_REFRESH_MARGIN")
}

fn parse_jitter(value: &str) -> Result<f64, String> {
    parse_fraction(value, 0.0, 0.5, "TOKENVAULT_REFRESH_JITTER")
}

fn parse_positive_seconds(value: &str) -> Result<f64, String> {
    parse_fraction(value, 0.05, 86_400.0, "seconds")
}

fn parse_log_filter(value: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(value)
        .map(|_| value.to_string())
        .map_err(|e| format!("{e} (TOKENVAULT_LOG)"))
}

fn parse_master_keys(value: &str) -> Result<KeyRing, String> {
    KeyRing::parse(value).map_err(|e| format!("{e} (TOKENVAULT_MASTER_KEYS)"))
}

/// Parses `TOKENVAULT_MASTER_KEYS` with an error that, unlike clap's usual
/// "invalid value '...'", never repeats the value: it holds keys.
#[derive(Debug, Clone, Copy)]
struct MasterKeysParser;

impl clap::builder::TypedValueParser for MasterKeysParser {
    type Value = KeyRing;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<KeyRing, clap::Error> {
        let fail = |message: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("{message}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value
            .to_str()
            .ok_or_else(|| fail("not UTF-8 text (TOKENVAULT_MASTER_KEYS)".into()))?;
        parse_master_keys(text).map_err(fail)
    }
}

fn parse_active_key_id(value: &str) -> Result<String, String> {
    if crypto::is_valid_key_id(value) {
        Ok(value.to_string())
    } else {
        Err(
            "a key id must be 1 to 16 characters of a-z, 0-9 and '-' (TOKENVAULT_ACTIVE_KEY_ID)"
                .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_masks_password() {
        let url = DatabaseUrl("postgres://app:hunter2@db:5432/tv".into());
        assert_eq!(url.to_string(), "postgres://app:***@db:5432/tv");
        assert!(!format!("{url:?}").contains("hunter2"));
        let no_password = DatabaseUrl("postgres://app@db/tv".into());
        assert_eq!(no_password.to_string(), "postgres://app@db/tv");
    }

    #[test]
    fn bad_values_name_the_setting() {
        assert!(
            parse_bind("localhost")
                .unwrap_err()
                .contains("TOKENVAULT_BIND")
        );
        let bad = parse_database_url("mysql://u:hunter2@x/db").unwrap();
        let err = bad.validate().unwrap_err();
        assert!(
            err.contains("DATABASE_URL") && !err.contains("hunter2"),
            "{err}"
        );
        assert!(
            parse_margin("0.99")
                .unwrap_err()
                .contains("TOKENVAULT_REFRESH_MARGIN")
        );
        assert!(
            parse_http_url("ftp://x")
                .unwrap_err()
                .contains("TOKENVAULT_WECHAT_API_BASE")
        );
        assert!(
            parse_log_filter("info,[")
                .unwrap_err()
                .contains("TOKENVAULT_LOG")
        );
        assert!(
            parse_master_keys("k1:short")
                .unwrap_err()
                .contains("TOKENVAULT_MASTER_KEYS")
        );
        assert!(
            parse_active_key_id("K1")
                .unwrap_err()
                .contains("TOKENVAULT_ACTIVE_KEY_ID")
        );
        assert!(parse_bind("0.0.0.0:9000").is_ok());
        assert!(
            parse_trusted_proxies("10.0.0.0/8,nonsense")
                .unwrap_err()
                .contains("TOKENVAULT_TRUSTED_PROXIES")
        );
        assert!(parse_trusted_proxies("").unwrap().is_empty());
        let err = parse_metrics_token("short secret").unwrap_err();
        assert!(
            err.contains("TOKENVAULT_METRICS_TOKEN") && !err.contains("short secret"),
            "{err}"
        );
    }

    #[test]
    fn the_metrics_token_matches_only_itself_and_never_prints() {
        let token = parse_metrics_token("metrics-token-0123456789").unwrap();
        assert!(token.matches("metrics-token-0123456789"));
        assert!(!token.matches("metrics-token-012345678"));
        assert!(!token.matches(""));
        assert!(!format!("{token:?}").contains("0123456789"));
    }
}
