//! The test PostgreSQL server (the embedded cluster, or the server at
//! `TOKENVAULT_TEST_DATABASE_URL`), started once per test process, and a
//! fresh database per test, dropped with it.

use std::path::PathBuf;
use std::sync::OnceLock;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, PgPool};
use tokenvault::db::embedded::{EmbeddedOptions, EmbeddedPostgres};
use uuid::Uuid;

/// The server every test of this process creates its databases on.
enum TestServer {
    /// A private cluster; the watchdog stops it when this process exits.
    Embedded(EmbeddedPostgres),
    /// `TOKENVAULT_TEST_DATABASE_URL`: connection options for its maintenance database.
    External(Box<PgConnectOptions>),
}

/// The only variable that points the tests at an existing PostgreSQL server
/// (its role needs `CREATEDB`). `DATABASE_URL` is the service's setting, and
/// may be exported for anything: the tests never read it.
pub const TEST_DATABASE_URL: &str = "TOKENVAULT_TEST_DATABASE_URL";

static SERVER: OnceLock<TestServer> = OnceLock::new();

fn server() -> &'static TestServer {
    SERVER.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tokenvault::telemetry::init("info", tokenvault::config::LogFormat::Text);
        }
        if let Ok(url) = std::env::var(TEST_DATABASE_URL) {
            let options: PgConnectOptions = url
                .parse()
                .unwrap_or_else(|e| panic!("{TEST_DATABASE_URL} is not a PostgreSQL URL: {e}"));
            return TestServer::External(Box::new(options));
        }
        remove_dead_test_clusters();
        let dir = test_cluster_dir(std::process::id());
        let options = EmbeddedOptions {
            ephemeral: true,
            max_connections: Some(300),
        };
        TestServer::Embedded(
            EmbeddedPostgres::start(&dir, &options)
                .expect("cannot start the test PostgreSQL cluster"),
        )
    })
}

fn test_cluster_dir(pid: u32) -> PathBuf {
    std::env::temp_dir().join(format!("tokenvault-test-{pid}"))
}

/// Clusters of earlier test runs whose process is gone: their lock is free.
fn remove_dead_test_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with("tokenvault-test-") {
            continue;
        }
        let dir = entry.path();
        let Ok(lock) = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("tokenvault.lock"))
        else {
            continue;
        };
        if lock.try_lock().is_ok() && !dir.join("pg/postmaster.pid").exists() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

fn connect_options(database: &str) -> PgConnectOptions {
    match server() {
        TestServer::Embedded(pg) => pg.connect_options(database),
        TestServer::External(options) => (**options).clone().database(database),
    }
}

fn maintenance_options() -> PgConnectOptions {
    match server() {
        TestServer::Embedded(pg) => pg.connect_options("postgres"),
        TestServer::External(options) => (**options).clone(),
    }
}

/// A database of its own for one test, dropped with it.
pub struct TestDatabase {
    /// Its name.
    pub name: String,
    /// How to connect to it.
    pub options: PgConnectOptions,
}

impl TestDatabase {
    /// Create an empty database (no migrations applied).
    pub async fn create_empty() -> Self {
        let name = format!("tv_test_{}", Uuid::new_v4().simple());
        let mut admin = maintenance_options()
            .connect()
            .await
            .expect("connect to the test server");
        sqlx::query(&format!("create database \"{name}\""))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let options = connect_options(&name);
        Self { name, options }
    }

    /// Create a database with every migration applied.
    pub async fn create_migrated() -> Self {
        let db = Self::create_empty().await;
        let pool = db.pool(2).await;
        tokenvault::db::migrate(&pool)
            .await
            .expect("migrate test database");
        pool.close().await;
        db
    }

    /// A pool on this database, built the way the service builds its own.
    pub async fn pool(&self, max_connections: u32) -> PgPool {
        tokenvault::db::connect(self.options.clone(), max_connections)
            .await
            .expect("connect to test database")
    }

    /// A `postgres://` URL for this database, for child processes.
    pub fn url(&self) -> String {
        match server() {
            TestServer::Embedded(pg) => pg.url(&self.name),
            TestServer::External(_) => {
                let base = std::env::var(TEST_DATABASE_URL).expect(TEST_DATABASE_URL);
                replace_database(&base, &self.name)
            }
        }
    }
}

fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime: use a thread with its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let mut admin = maintenance_options().connect().await.ok()?;
                sqlx::query(&format!("drop database if exists \"{name}\" with (force)"))
                    .execute(&mut admin)
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

#[test]
fn replace_database_keeps_query() {
    assert_eq!(
        replace_database("postgres://u:p@h:5/db?sslmode=disable", "x"),
        "postgres://u:p@h:5/x?sslmode=disable"
    );
    assert_eq!(replace_database("postgres://u@h", "x"), "postgres://u@h/x");
}
