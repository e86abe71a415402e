//! The command line: `tokenvault [serve]`, `tokenvault migrate`, `tokenvault keys ...`,
//! `tokenvault wechat-sim`.

use std::ops::ControlFlow;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::db::{self, Database};
use crate::keys::{self, KeysCommand};
use crate::telemetry;

mod serve;

/// tokenvault keeps the `access_token`s of WeChat mini-programs fresh for many
/// organisations and hands them to their servers over authenticated REST.
///
/// Every flag can also be set through the environment variable shown with it.
/// Without `DATABASE_URL`, tokenvault runs its own PostgreSQL cluster under the
/// data directory, using the PostgreSQL binaries installed on this machine.
#[derive(Debug, Parser)]
#[command(
    name = "tokenvault",
    version,
    about,
    long_about,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub settings: Settings,

    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: HTTP API, web UI and token refresher (the default).
    Serve,
    /// Apply pending database migrations and exit (serve also applies them at start).
    Migrate,
    /// Manage the master keys that encrypt appsecrets and tokens at rest.
    Keys {
        /// What to do with the keys.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage the operators of the service itself.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Run a WeChat API simulator (token endpoints, quotas, faults, control
    /// API under /sim/) for tests and offline demos; uses no database.
    WechatSim(WechatSimArgs),
}

/// `tokenvault wechat-sim ...`: every flag also reads `TOKENVAULT_SIM_*`.
#[derive(Debug, Clone, clap::Args)]
pub struct WechatSimArgs {
    /// Address and port the simulator listens on (port 0: any free port).
    // Same id as the global `--bind`, so clap lets this one take its place
    // in this subcommand, with the simulator's own default and variable.
    #[arg(
        id = "bind",
        long = "bind",
        env = "TOKENVAULT_SIM_BIND",
        default_value = "127.0.0.1:9100",
        value_name = "ADDR"
    )]
    pub bind: std::net::SocketAddr,
    /// JSON file of apps: `[{"appid": "wx…", "secret": "…", "ip_whitelist": ["127.0.0.1"]}]`.
    #[arg(
        long = "apps-file",
        env = "TOKENVAULT_SIM_APPS_FILE",
        value_name = "FILE"
    )]
    pub apps_file: Option<std::path::PathBuf>,
    /// Lifetime of every token, in seconds.
    #[arg(long = "token-lifetime", env = "TOKENVAULT_SIM_TOKEN_LIFETIME", default_value_t = 7200,
          value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub token_lifetime: u64,
    /// Seconds a classic token stays valid after a newer one is issued.
    #[arg(
        long = "overlap",
        env = "TOKENVAULT_SIM_OVERLAP",
        default_value_t = 300,
        value_name = "SECS"
    )]
    pub overlap: u64,
    /// Seconds before expiry from which a stable-token call returns a new token.
    #[arg(
        long = "stable-renew-window",
        env = "TOKENVAULT_SIM_STABLE_RENEW_WINDOW",
        default_value_t = 300,
        value_name = "SECS"
    )]
    pub stable_renew_window: u64,
    /// Classic token calls allowed per appid per day.
    #[arg(
        long = "daily-quota",
        env = "TOKENVAULT_SIM_DAILY_QUOTA",
        default_value_t = 2000,
        value_name = "N"
    )]
    pub daily_quota: u32,
    /// Stable token calls allowed per appid per minute.
    #[arg(
        long = "minute-quota",
        env = "TOKENVAULT_SIM_MINUTE_QUOTA",
        default_value_t = 10_000,
        value_name = "N"
    )]
    pub minute_quota: u32,
    /// Characters in each token (16 to 65536).
    #[arg(long = "token-length", env = "TOKENVAULT_SIM_TOKEN_LENGTH", default_value_t = 157,
          value_name = "N", value_parser = clap::value_parser!(u64).range(16..=65_536))]
    pub token_length: u64,
    /// Add a demo mini-program, for trying tokenvault offline: AppID
    /// `wx0de0de0de0de0de0`, AppSecret `de0de0de0de0de0de0de0de0de0de0de`
    /// (both also logged at start).
    #[arg(long = "demo", env = "TOKENVAULT_SIM_DEMO", action = clap::ArgAction::SetTrue)]
    pub demo: bool,
}

/// AppID of the demo mini-program of `wechat-sim --demo`.
pub const DEMO_APPID: &str = "wx0de0de0de0de0de0";
/// AppSecret of the demo mini-program of `wechat-sim --demo`.
pub const DEMO_SECRET: &str = "de0de0de0de0de0de0de0de0de0de0de";

/// corpid of the demo WeCom company of `wechat-sim --demo`.
pub const DEMO_CORPID: &str = "ww0de0de0de0de0de0";
/// Secret of the demo WeCom app (`AgentId` 1000002) of `wechat-sim --demo`.
pub const DEMO_WECOM_SECRET: &str = "demo-wecom-secret-de0de0de0de0de0de0de0de0d";

/// `tokenvault operator ...`
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Create an operator account: sees every tenant's health, never a secret.
    /// The password is read from `TOKENVAULT_OPERATOR_PASSWORD` or, if unset,
    /// from the first line of standard input.
    Create {
        /// The operator's email (their sign-in name).
        #[arg(long)]
        email: String,
    },
    /// Set how many apps one organisation may register, or give it the
    /// service's default again (`TOKENVAULT_MAX_APPS_PER_TENANT`).
    AppLimit {
        /// The organisation: its id, or its exact name.
        #[arg(long)]
        tenant: String,
        /// The limit (0 to 1000000), or `default`.
        #[arg(value_name = "N|default", value_parser = parse_app_limit)]
        limit: AppLimit,
    },
}

/// An operator's app limit for one organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppLimit {
    /// This many apps.
    Apps(i32),
    /// The service's default.
    Default,
}

fn parse_app_limit(value: &str) -> Result<AppLimit, String> {
    if value.eq_ignore_ascii_case("default") {
        return Ok(AppLimit::Default);
    }
    match value.parse::<i32>() {
        Ok(n) if (0..=db::app_limits::MAX_APP_LIMIT).contains(&n) => Ok(AppLimit::Apps(n)),
        _ => Err(format!(
            "expected a whole number from 0 to {} or `default`",
            db::app_limits::MAX_APP_LIMIT
        )),
    }
}

/// Run the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.settings;
    settings.check().map_err(anyhow::Error::msg)?;
    telemetry::init(&settings.log, settings.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::serve(settings).await,
        Command::Migrate => migrate(settings).await,
        Command::Operator(OperatorCommand::Create { email }) => {
            create_operator(settings, &email).await
        }
        Command::Operator(OperatorCommand::AppLimit { tenant, limit }) => {
            set_app_limit(settings, &tenant, limit).await
        }
        Command::Keys { command } => run_keys(settings, command).await,
        Command::WechatSim(args) => wechat_sim(args).await,
    }
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let database = Database::open_beside_service(&settings).await?;
    let result = db::migrate(&database.pool).await;
    database.close().await?;
    result?;
    tracing::info!("database migrations are up to date");
    Ok(())
}

async fn create_operator(settings: Settings, email: &str) -> anyhow::Result<()> {
    use crate::domain::{Email, NewPassword, Role};
    let email = Email::parse("email", email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let password = if let Ok(p) = std::env::var("TOKENVAULT_OPERATOR_PASSWORD") {
        p
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    let password = NewPassword::parse("password", password.into(), email.as_str())
        .map_err(|e| anyhow::anyhow!("password: {e}"))?;
    let hash = crate::auth::password::hash(password.secret().clone()).await?;
    let database = Database::open_beside_service(&settings).await?;
    let result = async {
        db::migrate(&database.pool).await?;
        let id = crate::domain::UserId::new();
        match db::accounts::insert_user(&database.pool, id, None, &email, &hash, Role::Operator)
            .await
        {
            Err(e) if db::accounts::is_email_taken(&e) => {
                anyhow::bail!("an account with email {email} exists already")
            }
            other => other?,
        }
        db::audit::record(
            &database.pool,
            db::audit::AuditEvent {
                actor_user_id: Some(id),
                target: Some(email.to_string()),
                ..db::audit::AuditEvent::new(crate::domain::AuditAction::OperatorCreated)
            },
        )
        .await?;
        tracing::info!(%email, "operator created");
        Ok(())
    }
    .await;
    database.close().await?;
    result
}

async fn set_app_limit(settings: Settings, tenant: &str, limit: AppLimit) -> anyhow::Result<()> {
    let database = Database::open_beside_service(&settings).await?;
    let result = async {
        if !db::migrations_applied(&database.pool).await? {
            anyhow::bail!("the database schema is not up to date: run `tokenvault migrate` first");
        }
        let found = crate::service::tenants::find(&database.pool, tenant).await?;
        let target = match found.as_slice() {
            [] => anyhow::bail!("no organisation has the id or the exact name {tenant:?}"),
            [one] => one,
            several => anyhow::bail!(
                "{} organisations are named {tenant:?}: name one by its id ({})",
                several.len(),
                several
                    .iter()
                    .map(|t| t.id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let new = match limit {
            AppLimit::Apps(n) => Some(n),
            AppLimit::Default => None,
        };
        let by = crate::service::tenants::LimitSetter::CommandLine;
        if crate::service::tenants::set_app_limit(&database.pool, by, target.id, new)
            .await?
            .is_none()
        {
            anyhow::bail!("the organisation {tenant:?} was deleted meanwhile");
        }
        let default = settings.max_apps_per_tenant;
        match new {
            Some(n) => println!("{} ({}) may now register {n} apps", target.name, target.id),
            None => println!(
                "{} ({}) now has the default limit ({default} apps, TOKENVAULT_MAX_APPS_PER_TENANT)",
                target.name, target.id
            ),
        }
        Ok(())
    }
    .await;
    let closed = database.close().await;
    result.and(closed)
}

async fn run_keys(settings: Settings, command: KeysCommand) -> anyhow::Result<()> {
    let rotate_batch = match command {
        KeysCommand::Generate { id } => {
            let id = id.unwrap_or_else(|| chrono::Utc::now().format("k%Y%m%d").to_string());
            println!("{}", crate::crypto::generate_entry(&id)?.as_str());
            return Ok(());
        }
        KeysCommand::Status => None,
        KeysCommand::Rotate { batch_size } => Some(batch_size),
    };
    let database = Database::open_beside_service(&settings).await?;
    let result = async {
        if !db::migrations_applied(&database.pool).await? {
            anyhow::bail!("the database schema is not up to date: run `tokenvault migrate` first");
        }
        match rotate_batch {
            None => keys_status(&settings, &database.pool).await,
            Some(batch_size) => keys_rotate(&settings, &database.pool, batch_size).await,
        }
    }
    .await;
    let closed = database.close().await;
    result.and(closed)
}

async fn keys_status(settings: &Settings, pool: &sqlx::PgPool) -> anyhow::Result<()> {
    // Status reads key ids only: it works even when keys are missing.
    let ring = keys::load_configured(settings)?.map(|(ring, _)| ring);
    let usage = db::secrets::key_usage(pool).await?;
    let checked: Vec<String> = db::secrets::key_checks(pool)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    print!("{}", keys::status_table(&usage, &checked, ring.as_ref()));
    Ok(())
}

async fn keys_rotate(
    settings: &Settings,
    pool: &sqlx::PgPool,
    batch_size: u32,
) -> anyhow::Result<()> {
    let ring = keys::open_key_ring(settings, pool).await?;
    let report = keys::rotate(pool, &ring, batch_size, |progress| {
        eprintln!("{progress}");
        ControlFlow::Continue(())
    })
    .await?;
    for failure in &report.failures {
        eprintln!("cannot rotate {failure}");
    }
    for id in &report.released {
        eprintln!(
            "master key '{id}' protects no rows any more: it can be removed from the key ring"
        );
    }
    if !report.failures.is_empty() {
        anyhow::bail!(
            "{} rows could not be decrypted and are still under their old key (listed above); \
             every other row is under '{}'",
            report.failures.len(),
            ring.active_id()
        );
    }
    eprintln!(
        "every stored secret and token is under master key '{}'",
        ring.active_id()
    );
    Ok(())
}

async fn wechat_sim(args: WechatSimArgs) -> anyhow::Result<()> {
    use crate::upstream::simulator::{AppSpec, SimConfig, WeChatSimulator, load_apps_file};
    use std::time::Duration;
    use tokio::signal::unix::{SignalKind, signal};
    let mut apps = match &args.apps_file {
        Some(path) => load_apps_file(path).context("--apps-file (TOKENVAULT_SIM_APPS_FILE)")?,
        None => Vec::new(),
    };
    let from_file = apps.len();
    if args.demo {
        apps.push(AppSpec {
            appid: DEMO_APPID.into(),
            secret: DEMO_SECRET.into(),
            ip_whitelist: None,
        });
    }
    let config = SimConfig {
        token_lifetime: Duration::from_secs(args.token_lifetime),
        classic_overlap: Duration::from_secs(args.overlap),
        stable_renew_window: Duration::from_secs(args.stable_renew_window),
        daily_quota: args.daily_quota,
        stable_minute_quota: args.minute_quota,
        token_length: usize::try_from(args.token_length).unwrap_or(157),
        ..SimConfig::default()
    };
    // Signal handlers first: a SIGTERM sent as soon as the address is
    // logged must stop the simulator cleanly, not kill it.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let listener = std::net::TcpListener::bind(args.bind).with_context(|| {
        format!(
            "cannot listen on {} (TOKENVAULT_SIM_BIND); choose another address with --bind",
            args.bind
        )
    })?;
    let sim = WeChatSimulator::start_with_listener(config, listener)?;
    for app in &apps {
        sim.put_app(app);
    }
    if let Some(path) = &args.apps_file {
        tracing::info!("loaded {from_file} apps from {}", path.display());
    }
    tracing::info!("WeChat simulator listening on {}", sim.base_url());
    if args.demo {
        tracing::info!(
            "demo mini-program: AppID {DEMO_APPID}, AppSecret {DEMO_SECRET} (register it in tokenvault)"
        );
        tracing::info!(
            "point tokenvault at this simulator: TOKENVAULT_WECHAT_API_BASE={}",
            sim.base_url()
        );
        sim.wecom().add(DEMO_CORPID, DEMO_WECOM_SECRET);
        tracing::info!(
            "demo WeCom app: corpid {DEMO_CORPID}, AgentId 1000002, Secret {DEMO_WECOM_SECRET} (register it in tokenvault; TOKENVAULT_WECOM_API_BASE={})",
            sim.base_url()
        );
    }
    let received = tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    };
    tracing::info!("{received} received: stopping the WeChat simulator");
    sim.stop().await;
    Ok(())
}
