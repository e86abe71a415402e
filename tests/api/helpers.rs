//! Test harness: one PostgreSQL server per test process (the embedded cluster,
//! or the server at `TOKENVAULT_TEST_DATABASE_URL`), a fresh migrated
//! database per test, and the application on a random port. `TEST_LOG=1`
//! shows the service's logs.
//!
//! Nothing in the checkout or the shell reaches a test: in-process apps get
//! settings parsed without the environment ([`default_settings`]), and every
//! process a test starts gets a cleaned environment, a working directory and a
//! data directory of its own ([`Sandbox`]). A `DATABASE_URL` exported for some
//! other project is never used.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, PgPool};
use tokenvault::config::Settings;
use tokenvault::db::embedded::{EmbeddedOptions, EmbeddedPostgres};
use tokenvault::startup::Application;
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

/// The application under test, on a random port.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The application's pool.
    pub pool: PgPool,
    /// An HTTP client.
    pub client: reqwest::Client,
    /// The app's database (dropped with the app).
    pub db: TestDatabase,
}

/// Settings as the service would parse them from an empty environment.
pub fn default_settings() -> Settings {
    settings_from(&[])
}

/// Settings from the flags in `args` and the defaults, never from the
/// environment: the service's own command line with every argument's
/// environment variable unbound. Generic over the arguments, so a setting
/// added later cannot leak either. The data directory is one that does not
/// exist (in-process apps are given their pool and key ring; should anything
/// look there, it finds no leftover key file).
pub fn settings_from(args: &[&str]) -> Settings {
    use clap::builder::Resettable;
    use clap::{CommandFactory as _, FromArgMatches as _};
    let command = tokenvault::cli::Cli::command().mut_args(|arg| arg.env(Resettable::Reset));
    let no_data_dir = std::env::temp_dir().join("tokenvault-test-no-data-dir");
    let matches = command
        .try_get_matches_from(
            [
                "tokenvault".as_ref(),
                "--data-dir".as_ref(),
                no_data_dir.as_os_str(),
            ]
            .into_iter()
            .chain(args.iter().map(std::ffi::OsStr::new)),
        )
        .expect("test settings parse");
    tokenvault::cli::Cli::from_arg_matches(&matches)
        .expect("test settings parse")
        .settings
}

/// Fixed test master keys: `t1` (active) and `t2`.
pub const TEST_MASTER_KEYS: &str = "t1:dGVzdC1rZXktb25lLTMyLWJ5dGVzLWxvbmctLS0tLS0=,\
                                    t2:dGVzdC1rZXktdHdvLTMyLWJ5dGVzLWxvbmctLS0tLS0=";

/// The key ring every test app runs with.
pub fn test_key_ring() -> tokenvault::crypto::KeyRing {
    tokenvault::crypto::KeyRing::parse(TEST_MASTER_KEYS).expect("test keys parse")
}

/// Start the application on a fresh, migrated database.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(TestDatabase::create_migrated().await).await
}

/// Settings for a replica that talks to the simulator at `wechat`, on test
/// time scales (tokens of a few seconds, fast retries, 1 s ticks).
pub fn sim_settings(wechat: &str) -> Settings {
    settings_from(&[
        "--wechat-api-base",
        wechat,
        "--upstream-timeout",
        "2",
        "--refresh-tick",
        "1",
        "--stable-renew-window",
        "1",
        "--refresh-margin",
        "0.3",
        "--retry-base",
        "0.2",
        "--config-retry",
        "2",
        "--refresh-concurrency",
        "8",
        // The fast simulator's classic overlap.
        "--classic-overlap",
        "1",
        // Tokens live seconds here: reports of a fresh token are normal,
        // and "refresh now" may go past a retry time once a second.
        "--invalidate-min-age",
        "0",
        "--refresh-now-cooldown",
        "1",
    ])
}

/// Start the application on a fresh database, talking to the simulator.
pub async fn spawn_app_with_sim(wechat: &str) -> TestApp {
    let db = TestDatabase::create_migrated().await;
    let (address, pool) = start_server_with(&db, sim_settings(wechat)).await;
    TestApp {
        address,
        pool,
        client: reqwest::Client::new(),
        db,
    }
}

/// Start the application on `db` as it is, talking to the simulator.
pub async fn spawn_app_on_with_sim(db: TestDatabase, wechat: &str) -> TestApp {
    let (address, pool) = start_server_with(&db, sim_settings(wechat)).await;
    TestApp {
        address,
        pool,
        client: reqwest::Client::new(),
        db,
    }
}

/// Start the application on `db` as it is.
pub async fn spawn_app_on(db: TestDatabase) -> TestApp {
    let (address, pool) = start_server(&db).await;
    TestApp {
        address,
        pool,
        client: reqwest::Client::new(),
        db,
    }
}

async fn start_server(db: &TestDatabase) -> (String, PgPool) {
    start_server_with(db, default_settings()).await
}

async fn start_server_with(db: &TestDatabase, settings: Settings) -> (String, PgPool) {
    let pool = db.pool(12).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a random port");
    let app = Application::build(
        settings,
        pool.clone(),
        std::sync::Arc::new(test_key_ring()),
        listener,
    )
    .expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    (address, pool)
}

impl TestApp {
    /// Another replica of the service on the same database; returns its address.
    pub async fn spawn_replica(&self) -> String {
        start_server(&self.db).await.0
    }

    /// Another replica talking to the simulator at `wechat`; returns its address.
    pub async fn spawn_sim_replica(&self, wechat: &str) -> String {
        start_server_with(&self.db, sim_settings(wechat)).await.0
    }

    /// Another replica with `settings`; returns its address.
    pub async fn spawn_replica_with(&self, settings: Settings) -> String {
        start_server_with(&self.db, settings).await.0
    }

    /// A browser-like client: its own cookie jar, not signed in.
    pub fn browser(&self) -> Browser {
        Browser::new(&self.address)
    }

    /// Sign up a new organisation; returns its owner's browser, signed in.
    pub async fn signup(&self, org: &str, email: &str) -> Browser {
        signup_at(&self.address, org, email).await
    }

    /// Sign in an existing account in a new browser.
    pub async fn login(&self, email: &str, password: &str) -> Browser {
        let body = serde_json::json!({ "email": email, "password": password });
        self.browser()
            .start_session("/api/v1/login", &body, 200)
            .await
    }
}

/// Sign up a new organisation on the service at `address`; returns its
/// owner's browser, signed in.
pub async fn signup_at(address: &str, org: &str, email: &str) -> Browser {
    let body = serde_json::json!({ "organization": org, "email": email, "password": PASSWORD });
    Browser::new(address)
        .start_session("/api/v1/signup", &body, 201)
        .await
}

impl TestApp {
    /// Invite someone with `role` and have them join with `email`.
    pub async fn invite_and_join(&self, inviter: &Browser, role: &str, email: &str) -> Browser {
        let res = inviter
            .post_json("/api/v1/invites", &serde_json::json!({ "role": role }))
            .await;
        assert_eq!(
            res.status(),
            201,
            "invite failed: {}",
            res.text().await.unwrap_or_default()
        );
        let invite: serde_json::Value = res.json().await.expect("json");
        let body =
            serde_json::json!({ "token": invite["token"], "email": email, "password": PASSWORD });
        self.browser()
            .start_session("/api/v1/invites/accept", &body, 201)
            .await
    }
}

/// The password every test account uses.
pub const PASSWORD: &str = "correct horse battery staple";

/// A client with a cookie jar and the CSRF token of its session.
pub struct Browser {
    /// Base URL.
    pub address: String,
    /// The client (cookie store on).
    pub client: reqwest::Client,
    /// CSRF token of the current session.
    pub csrf: String,
}

impl Browser {
    /// A browser for the service at `address`: its own cookie jar, signed out.
    pub fn new(address: &str) -> Self {
        Self {
            address: address.to_string(),
            client: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .expect("client"),
            csrf: String::new(),
        }
    }

    /// POST `body` to a call that starts a session (sign-up, sign-in, joining),
    /// expect `status`, and keep the session's CSRF token.
    async fn start_session(mut self, path: &str, body: &serde_json::Value, status: u16) -> Self {
        let res = self.post_json(path, body).await;
        assert_eq!(
            res.status(),
            status,
            "{path} failed: {}",
            res.text().await.unwrap_or_default()
        );
        let answer: serde_json::Value = res.json().await.expect("json");
        self.csrf = answer["csrf_token"]
            .as_str()
            .expect("csrf token")
            .to_string();
        self
    }
    /// GET.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request")
    }

    /// A request with the session's CSRF header, as state changes need.
    fn with_csrf(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
            .header("X-CSRF-Token", &self.csrf)
    }

    /// POST JSON with the CSRF header.
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        let req = self.with_csrf(reqwest::Method::POST, path).json(body);
        req.send().await.expect("request")
    }

    /// PATCH JSON with the CSRF header.
    pub async fn patch_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        let req = self.with_csrf(reqwest::Method::PATCH, path).json(body);
        req.send().await.expect("request")
    }

    /// DELETE with the CSRF header.
    pub async fn delete(&self, path: &str) -> reqwest::Response {
        let req = self.with_csrf(reqwest::Method::DELETE, path);
        req.send().await.expect("request")
    }

    /// Create an API key; returns the JSON answer (with the key).
    pub async fn create_key(&self, body: serde_json::Value) -> serde_json::Value {
        let res = self.post_json("/api/v1/api-keys", &body).await;
        assert_eq!(
            res.status(),
            201,
            "create key: {}",
            res.text().await.unwrap_or_default()
        );
        res.json().await.expect("json")
    }
}

/// GET `path` on `address` with an API key.
pub async fn get_with_key(address: &str, path: &str, key: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{address}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .expect("request")
}

impl TestApp {
    /// GET a path on the app.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request")
    }
}

/// A process a test starts runs in a sandbox: a temporary directory of its
/// own as its working directory, with its data directory (`data/`) inside,
/// so that no `./.tokenvault` of the checkout and no data directory of a
/// running service is ever used. Removed when dropped.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    /// A new, empty sandbox.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tokenvault-child-")
            .tempdir()
            .expect("create a sandbox directory");
        // Tests run as root start PostgreSQL as the postgres user, which
        // must be able to pass through to the data directory.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("sandbox permissions");
        Self { dir }
    }

    /// The working directory of the processes started here.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Their data directory (`TOKENVAULT_DATA_DIR`), created by the service.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `program` in this sandbox: the test process's environment without any
    /// `TOKENVAULT_*` variable or `DATABASE_URL` (`PATH`, `HOME` and the rest
    /// are kept), this directory as its working directory, standard input
    /// closed.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        for (name, _) in std::env::vars_os() {
            let text = name.to_string_lossy();
            if text.starts_with("TOKENVAULT_") || text == "DATABASE_URL" {
                cmd.env_remove(&name);
            }
        }
        cmd.current_dir(self.path()).stdin(Stdio::null());
        cmd
    }

    /// The `tokenvault` binary in this sandbox, as [`Sandbox::command`], with
    /// `TOKENVAULT_DATA_DIR` set to [`Sandbox::data_dir`] and `TOKENVAULT_BIND`
    /// to `127.0.0.1:0` (never the 8080 of a service someone runs). Settings
    /// the test gives afterwards, as variables or flags, take precedence.
    pub fn tokenvault(&self) -> Command {
        let mut cmd = self.command(env!("CARGO_BIN_EXE_tokenvault"));
        cmd.env("TOKENVAULT_DATA_DIR", self.data_dir())
            .env("TOKENVAULT_BIND", "127.0.0.1:0");
        cmd
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

/// Start the application with `settings` on a fresh, migrated database.
pub async fn spawn_app_with_settings(settings: Settings) -> TestApp {
    let db = TestDatabase::create_migrated().await;
    let (address, pool) = start_server_with(&db, settings).await;
    TestApp {
        address,
        pool,
        client: reqwest::Client::new(),
        db,
    }
}

/// Ask for "refresh now" of `appid` until it is tried: a refusal (429, "refresh
/// now" went past a retry time moments ago) waits its `Retry-After`.
pub async fn refresh_now(owner: &Browser, appid: &str) -> reqwest::Response {
    loop {
        let res = owner
            .post_json(
                &format!("/api/v1/apps/{appid}/refresh"),
                &serde_json::json!({}),
            )
            .await;
        if res.status() != 429 {
            return res;
        }
        let wait: u64 = res.headers()["retry-after"]
            .to_str()
            .expect("Retry-After")
            .parse()
            .expect("seconds");
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    }
}
