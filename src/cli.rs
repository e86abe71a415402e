//! The command line: `tokenvault [serve]`, `tokenvault migrate`.

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::db::{self, Database};
use crate::startup::{self, Application};
use crate::telemetry;

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
    /// Manage the operators of the service itself.
    #[command(subcommand)]
    Operator(OperatorCommand),
}

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
}

/// Run the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.settings;
    telemetry::init(&settings.log, settings.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => migrate(settings).await,
        Command::Operator(OperatorCommand::Create { email }) => {
            create_operator(settings, &email).await
        }
    }
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let database = Database::open(&settings).await?;
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
    let database = Database::open(&settings).await?;
    let result = async {
        db::migrate(&database.pool).await?;
        let id = uuid::Uuid::new_v4();
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
                action: "operator.created",
                target: Some(email.to_string()),
                ..Default::default()
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

async fn serve(settings: Settings) -> anyhow::Result<()> {
    // Bind first: a taken port is reported before anything else starts.
    let listener = startup::bind(settings.bind)?;
    let database = Database::open(&settings).await?;
    let result = serve_on(settings, &database, listener).await;
    let closed = database.close().await;
    result.and(closed)
}

async fn serve_on(
    settings: Settings,
    database: &Database,
    listener: std::net::TcpListener,
) -> anyhow::Result<()> {
    db::migrate(&database.pool).await?;
    let addr = listener.local_addr()?;
    let app = Application::build(settings, database.pool.clone(), listener)?;
    let handle = app.handle();
    let mut server = tokio::spawn(app.run_until_stopped());
    tracing::info!("tokenvault is serving on http://{addr}");
    tokio::select! {
        signal = shutdown_signal() => {
            tracing::info!("{signal} received: shutting down gracefully");
            handle.stop(true).await;
            server.await.context("HTTP server task failed")??;
        }
        result = &mut server => {
            tracing::error!("HTTP server stopped unexpectedly");
            result.context("HTTP server task failed")??;
        }
    }
    Ok(())
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let terminate = async {
        match term.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        () = terminate => "SIGTERM",
    }
}
