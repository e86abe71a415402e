//! Test harness: one PostgreSQL server per test process (the embedded cluster,
//! or the server at `TOKENVAULT_TEST_DATABASE_URL`), a fresh migrated
//! database per test, and the application on a random port, its server and
//! its background jobs started side by side as `tokenvault serve` starts
//! them. `TEST_LOG=1` shows the service's logs.
//!
//! Nothing in the checkout or the shell reaches a test: in-process apps get
//! settings parsed without the environment ([`default_settings`]), and every
//! process a test starts gets a cleaned environment, a working directory and a
//! data directory of its own ([`Sandbox`]). A `DATABASE_URL` exported for some
//! other project is never used.

mod browser;
mod database;
mod sandbox;
pub mod smtp;
pub mod totp;

use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use sqlx::PgPool;
use tokenvault::config::Settings;
use tokenvault::jobs::{self, Jobs, Stopped};
use tokenvault::startup::Application;

pub use browser::{
    Browser, PASSWORD, get_with_key, login_token_of, post_signed_out_form, refresh_now, signup_at,
};
pub use database::TestDatabase;
pub use sandbox::Sandbox;
pub use smtp::SmtpSink;

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
    /// The running replica: its server and its background jobs.
    running: Running,
    /// Replicas started beside it (`spawn_replica*`), stopped with it.
    replicas: Mutex<Vec<Running>>,
}

/// A replica's server and background jobs, started side by side.
struct Running {
    server: ServerHandle,
    jobs: Option<Jobs>,
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
        "--wecom-api-base",
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
    let started = start_server_with(&db, sim_settings(wechat)).await;
    TestApp::new(started, db)
}

/// Start the application on `db` as it is, talking to the simulator.
pub async fn spawn_app_on_with_sim(db: TestDatabase, wechat: &str) -> TestApp {
    let started = start_server_with(&db, sim_settings(wechat)).await;
    TestApp::new(started, db)
}

/// Start the application on `db` as it is.
pub async fn spawn_app_on(db: TestDatabase) -> TestApp {
    let started = start_server(&db).await;
    TestApp::new(started, db)
}

/// A replica the test kills (`TestApp::spawn_killable_replica`).
pub struct Replica {
    /// Its address.
    pub address: String,
    running: Running,
}

impl Replica {
    /// Kill it as a crashed process dies, mid-work: its background jobs
    /// aborted, its server stopped without finishing the requests in flight
    /// (their futures, transactions and connections dropped with the
    /// workers' runtimes).
    pub async fn kill(mut self) {
        drop(self.running.jobs.take());
        self.running.server.stop(false).await;
    }
}

/// A replica started on a test database: its address, its pool, and what runs.
struct Started {
    address: String,
    pool: PgPool,
    running: Running,
}

async fn start_server(db: &TestDatabase) -> Started {
    start_server_with(db, default_settings()).await
}

/// Build a replica and start its server and its background jobs side by
/// side, as `tokenvault serve` does.
async fn start_server_with(db: &TestDatabase, settings: Settings) -> Started {
    let pool = db.pool(12).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a random port");
    let app = Application::build(settings, pool.clone(), Arc::new(test_key_ring()), listener)
        .expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let jobs = jobs::start(&app.state());
    let server = app.handle();
    tokio::spawn(app.run_until_stopped());
    Started {
        address,
        pool,
        running: Running {
            server,
            jobs: Some(jobs),
        },
    }
}

impl TestApp {
    fn new(started: Started, db: TestDatabase) -> Self {
        Self {
            address: started.address,
            pool: started.pool,
            client: reqwest::Client::new(),
            db,
            running: started.running,
            replicas: Mutex::new(Vec::new()),
        }
    }

    /// Another replica of the service on the same database; returns its address.
    pub async fn spawn_replica(&self) -> String {
        self.keep(start_server(&self.db).await)
    }

    /// Another replica talking to the simulator at `wechat`; returns its address.
    pub async fn spawn_sim_replica(&self, wechat: &str) -> String {
        self.keep(start_server_with(&self.db, sim_settings(wechat)).await)
    }

    /// Another replica with `settings`; returns its address.
    pub async fn spawn_replica_with(&self, settings: Settings) -> String {
        self.keep(start_server_with(&self.db, settings).await)
    }

    /// Another replica with `settings` that the test can kill.
    pub async fn spawn_killable_replica(&self, settings: Settings) -> Replica {
        let started = start_server_with(&self.db, settings).await;
        Replica {
            address: started.address,
            running: started.running,
        }
    }

    /// Keep a replica running for as long as this app; its address.
    fn keep(&self, started: Started) -> String {
        self.replicas
            .lock()
            .expect("replicas")
            .push(started.running);
        started.address
    }

    /// The background jobs of this replica still running, by name.
    pub fn jobs_running(&self) -> Vec<&'static str> {
        self.running
            .jobs
            .as_ref()
            .map_or_else(Vec::new, Jobs::names)
    }

    /// Stop this replica as `tokenvault serve` stops on SIGTERM
    /// (`jobs::stop_replica`): the background jobs are cancelled and
    /// awaited, then the server finishes its requests; how the jobs ended.
    /// The database stays for the test to look at.
    pub async fn shutdown(&mut self) -> Stopped {
        let jobs = self.running.jobs.take().expect("shut down once");
        tokenvault::jobs::stop_replica(jobs, &self.running.server).await
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

/// Start the application with `settings` on a fresh, migrated database.
pub async fn spawn_app_with_settings(settings: Settings) -> TestApp {
    let db = TestDatabase::create_migrated().await;
    let started = start_server_with(&db, settings).await;
    TestApp::new(started, db)
}
