//! Persistence: where the database is, the connection pool, and migrations.
//! Queries live in one file per table group beside this one.

pub mod accounts;
pub mod alert_confirmations;
pub mod alert_groups;
pub mod alerts;
pub mod api_keys;
pub mod app_limits;
pub mod apps;
pub mod audit;
pub mod budget;
pub mod email_links;
pub mod embedded;
pub mod history;
pub mod invites;
pub mod mail;
pub mod ops;
pub mod secrets;
pub mod served_tokens;
pub mod sessions;
pub mod tickets;
pub mod time_zones;
pub mod tokens;
pub mod totp;

use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions as _, PgPool};

use crate::config::Settings;
use embedded::{EmbeddedOptions, EmbeddedPostgres};

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Name of the database tokenvault uses on the embedded cluster.
pub const EMBEDDED_DATABASE: &str = "tokenvault";

/// The database the service runs on: an external server from `DATABASE_URL`,
/// or the embedded cluster, which this value owns and stops.
#[derive(Debug)]
pub struct Database {
    /// The connection pool.
    pub pool: PgPool,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Connect to `DATABASE_URL`, or start the embedded cluster.
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        Self::open_with(settings, false).await
    }

    /// Like [`Database::open`], for the commands an operator runs beside a
    /// serving tokenvault (migrate, keys, operator): when the service holds
    /// the embedded cluster, connect to it through its socket instead of
    /// failing, so key rotation runs online with the default set-up too.
    pub async fn open_beside_service(settings: &Settings) -> anyhow::Result<Self> {
        Self::open_with(settings, true).await
    }

    async fn open_with(settings: &Settings, attach: bool) -> anyhow::Result<Self> {
        let (options, embedded) = if let Some(url) = &settings.database_url {
            let options = url.expose().parse::<PgConnectOptions>().map_err(|e| {
                anyhow::anyhow!("DATABASE_URL ({url}) is not a valid PostgreSQL URL: {e}")
            })?;
            (with_password_file(options, settings)?, None)
        } else {
            let data_dir = settings.data_dir.clone();
            let started = tokio::task::spawn_blocking(move || {
                EmbeddedPostgres::start(&data_dir, &EmbeddedOptions::default())
            })
            .await
            .context("embedded PostgreSQL start-up task failed")?;
            match started {
                Ok(pg) => {
                    ensure_database(&pg, EMBEDDED_DATABASE).await?;
                    (pg.connect_options(EMBEDDED_DATABASE), Some(pg))
                }
                Err(embedded::EmbeddedError::Busy(dir)) if attach => {
                    tracing::info!(
                        data_dir = %dir.display(),
                        "a running tokenvault holds the embedded PostgreSQL; connecting to it"
                    );
                    (
                        embedded::running_connect_options(&dir, EMBEDDED_DATABASE),
                        None,
                    )
                }
                Err(e) => return Err(e.into()),
            }
        };
        let pool = connect(options, settings.db_max_connections)
            .await
            .map_err(|e| match &settings.database_url {
                Some(url) => anyhow::anyhow!(
                    "cannot connect to the database at DATABASE_URL ({url}): {e}; check that the \
                     server is running and the URL is right"
                ),
                None => anyhow::anyhow!("cannot connect to the embedded PostgreSQL: {e}"),
            })?;
        Ok(Self { pool, embedded })
    }

    /// Close the pool and stop the embedded cluster, if any.
    pub async fn close(self) -> anyhow::Result<()> {
        self.pool.close().await;
        if let Some(pg) = self.embedded {
            tokio::task::spawn_blocking(move || pg.stop())
                .await
                .context("embedded PostgreSQL stop task failed")??;
        }
        Ok(())
    }
}

/// A pool with timeouts that keep a stuck connection from hanging the service:
/// no statement or lock wait runs for ever, and an idle transaction is ended.
pub async fn connect(
    options: PgConnectOptions,
    max_connections: u32,
) -> Result<PgPool, sqlx::Error> {
    let options = options
        .application_name("tokenvault")
        .options([
            ("statement_timeout", "30s"),
            ("lock_timeout", "10s"),
            ("idle_in_transaction_session_timeout", "60s"),
        ])
        .log_statements(tracing::log::LevelFilter::Trace)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
    PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
}

/// A second pool of at most `max_connections` on the same database as
/// `pool`, with the same settings, opening connections as it needs them.
pub fn pool_beside(pool: &PgPool, max_connections: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(pool.connect_options().as_ref().clone())
}

/// Create `name` on the embedded cluster if it does not exist yet.
pub async fn ensure_database(pg: &EmbeddedPostgres, name: &str) -> anyhow::Result<()> {
    let mut conn = pg
        .connect_options("postgres")
        .connect()
        .await
        .context("cannot connect to the embedded PostgreSQL")?;
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        // Identifiers cannot be bound; `name` is ours, never user input.
        sqlx::query(&format!("create database \"{name}\""))
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}

/// Apply pending migrations.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("cannot apply database migrations")?;
    Ok(())
}

/// Whether every migration this binary knows has been applied successfully.
pub async fn migrations_applied(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let applied: Vec<(i64, bool)> =
        match sqlx::query_as("select version, success from _sqlx_migrations")
            .fetch_all(pool)
            .await
        {
            Ok(rows) => rows,
            // No migrations table yet: nothing applied.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => {
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
    Ok(MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .all(|m| applied.iter().any(|(v, ok)| *v == m.version && *ok)))
}

/// `options` with the password read from `TOKENVAULT_DATABASE_PASSWORD_FILE`
/// (its first line), when that is set.
fn with_password_file(
    options: PgConnectOptions,
    settings: &Settings,
) -> anyhow::Result<PgConnectOptions> {
    let Some(path) = &settings.database_password_file else {
        return Ok(options);
    };
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the database password file {} (TOKENVAULT_DATABASE_PASSWORD_FILE): {e}",
            path.display()
        )
    })?);
    let password = text.lines().next().unwrap_or_default();
    Ok(options.password(password))
}
