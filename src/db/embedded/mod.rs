//! The embedded default database: a private PostgreSQL cluster under the data
//! directory, made and run with the machine's own `initdb` and `postgres`.
//!
//! The cluster listens on a unix socket in a private directory only (no TCP)
//! and admits only its superuser with its own SCRAM password ([`password`]).
//! `postgres` runs under a tiny `sh` watchdog whose standard input is a pipe
//! held by this process: when tokenvault exits for any reason, even `kill -9`,
//! the pipe closes, the watchdog sees end-of-file and asks PostgreSQL for a
//! fast shutdown. So no server outlives the service, and the next start finds
//! a cleanly stopped cluster.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::unistd::User;
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::postgres::PgConnectOptions;

mod cluster;
mod password;

pub use password::{PASSWORD_FILE, read_password};

use cluster::{
    OpenOptionsExt600 as _, check_reachable, check_version, clear_stale_postmaster, find_bin_dir,
    init_cluster, lock_data_dir, log_tail, make_private_dir, run_as_user, socket_dir_for,
    unprivileged_user,
};

/// Port number used in the socket file name. The socket directory is private,
/// so a fixed number cannot collide with another server.
const SOCKET_PORT: u16 = 5432;
/// Database superuser created by `initdb`.
const SUPERUSER: &str = "tokenvault";
/// Longest unix socket path the kernel accepts (`sun_path` is 108 bytes).
const MAX_SOCKET_PATH: usize = 107;
/// How long a start may take before we give up and show the server log.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a clean stop may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The watchdog: run postgres in the background, wait for stdin to close,
/// then request a fast shutdown and wait for it.
const WATCHDOG: &str = r#""$@" </dev/null &
pg=$!
cat >/dev/null
kill -INT "$pg" 2>/dev/null
wait "$pg""#;

/// Why the embedded cluster could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// No `initdb`/`postgres` binaries on this machine.
    #[error(
        "no PostgreSQL server binaries found (looked for initdb and postgres on PATH and in \
         /usr/lib/postgresql/*/bin): install them (Debian/Ubuntu: apt-get install postgresql) \
         or set DATABASE_URL to an existing PostgreSQL server"
    )]
    NoBinaries,
    /// Running as root without an unprivileged user to hand PostgreSQL to.
    #[error(
        "tokenvault runs as root and PostgreSQL refuses to run as root, but there is no \
         '{0}' system user to run it as: create one (apt-get install postgresql does), \
         run tokenvault as an ordinary user, or set DATABASE_URL"
    )]
    NoUnprivilegedUser(String),
    /// The unprivileged user cannot reach the data directory.
    #[error(
        "PostgreSQL runs as system user '{user}', which cannot enter {path}: set \
         TOKENVAULT_DATA_DIR to a directory that user can reach (for example under /var/lib), \
         or set DATABASE_URL"
    )]
    Unreachable {
        /// The unprivileged user.
        user: String,
        /// The directory it cannot search.
        path: PathBuf,
    },
    /// Another tokenvault holds the data directory.
    #[error(
        "another tokenvault process is already using data directory {0}: stop it, choose \
         another TOKENVAULT_DATA_DIR, or run several replicas against one server with DATABASE_URL"
    )]
    Busy(PathBuf),
    /// A file system operation failed.
    #[error("cannot {what} {path}: {source}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A PostgreSQL program failed.
    #[error("{program} failed: {detail}")]
    Command {
        /// The program.
        program: String,
        /// Its exit status and the end of its output.
        detail: String,
    },
    /// The cluster was made by another major version.
    #[error(
        "the embedded cluster in {path} was made by PostgreSQL {cluster}, but the binaries found \
         are version {binaries}: install PostgreSQL {cluster} or move {path} aside"
    )]
    VersionMismatch {
        /// The cluster directory.
        path: PathBuf,
        /// Its major version.
        cluster: String,
        /// The binaries' major version.
        binaries: String,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> EmbeddedError + 'a {
    move |source| EmbeddedError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Knobs for the embedded cluster.
#[derive(Debug, Clone, Default)]
pub struct EmbeddedOptions {
    /// Trade durability for speed (fsync off): for throw-away test clusters only.
    pub ephemeral: bool,
    /// `max_connections` for the server; `None` keeps PostgreSQL's default.
    pub max_connections: Option<u32>,
}

/// A running embedded cluster. Stop it with [`EmbeddedPostgres::stop`]; if it
/// is dropped or the process dies instead, the watchdog stops it anyway.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    cluster_dir: PathBuf,
    socket_dir: PathBuf,
    log_path: PathBuf,
    /// The superuser's password (see [`PASSWORD_FILE`]).
    password: SecretString,
    watchdog: Child,
    // Held for the life of the cluster: one tokenvault per data directory.
    _lock: File,
}

impl EmbeddedPostgres {
    /// Make (on first use) and start the cluster under `data_dir`, and wait
    /// until it accepts connections. Blocking: call from a blocking context.
    pub fn start(data_dir: &Path, options: &EmbeddedOptions) -> Result<Self, EmbeddedError> {
        let bin_dir = find_bin_dir().ok_or(EmbeddedError::NoBinaries)?;
        let (data_dir, lock, run_as) = prepare_data_dir(data_dir)?;
        let cluster_dir = data_dir.join("pg");
        let log_path = data_dir.join("postgres.log");
        let socket_dir = socket_dir_for(&data_dir);
        make_private_dir(&socket_dir, run_as.as_ref())?;

        let fresh = !cluster_dir.join("PG_VERSION").exists();
        if fresh {
            init_cluster(&bin_dir, &data_dir, &cluster_dir, run_as.as_ref())?;
        } else {
            check_version(&bin_dir, &cluster_dir)?;
        }
        clear_stale_postmaster(&cluster_dir)?;
        let password =
            password::ensure_password(&bin_dir, &data_dir, &cluster_dir, run_as.as_ref(), fresh)?;

        let (log, log_err) = open_server_log(&log_path, run_as.as_ref())?;
        let mut cmd = server_command(&bin_dir, &cluster_dir, &socket_dir, options);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        run_as_user(&mut cmd, run_as.as_ref());

        tracing::info!(cluster = %cluster_dir.display(), "starting embedded PostgreSQL");
        let started = Instant::now();
        let watchdog = cmd.spawn().map_err(|source| EmbeddedError::Io {
            what: "start",
            path: bin_dir.join("postgres"),
            source,
        })?;
        let mut pg = Self {
            cluster_dir,
            socket_dir,
            log_path,
            password,
            watchdog,
            _lock: lock,
        };
        pg.wait_ready()?;
        tracing::info!(
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            socket = %pg.socket_dir.display(),
            "embedded PostgreSQL is ready"
        );
        Ok(pg)
    }

    /// Connection options for `database` on this cluster.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(SOCKET_PORT)
            .username(SUPERUSER)
            .password(self.password.expose_secret())
            .database(database)
    }

    /// A `postgres://` URL for `database`, for tools and child processes.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@localhost/{database}?host={}&port={SOCKET_PORT}",
            self.password.expose_secret(),
            self.socket_dir.display()
        )
    }

    /// The private directory of the cluster's unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The cluster's data directory.
    pub fn cluster_dir(&self) -> &Path {
        &self.cluster_dir
    }

    /// Ask for a fast shutdown and wait until the server has stopped.
    pub fn stop(mut self) -> Result<(), EmbeddedError> {
        tracing::info!("stopping embedded PostgreSQL");
        drop(self.watchdog.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.watchdog.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => {
                    return Err(EmbeddedError::Command {
                        program: "postgres".into(),
                        detail: format!(
                            "did not stop within {} s; see {}",
                            STOP_TIMEOUT.as_secs(),
                            self.log_path.display()
                        ),
                    });
                }
                Err(source) => return Err(io_err("wait for", &self.cluster_dir)(source)),
            }
        }
        tracing::info!("embedded PostgreSQL stopped");
        Ok(())
    }

    /// Wait until `postmaster.pid` says "ready" (PostgreSQL 10+ writes its
    /// status there), failing early if the server exits.
    fn wait_ready(&mut self) -> Result<(), EmbeddedError> {
        let pid_file = self.cluster_dir.join("postmaster.pid");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.watchdog.try_wait() {
                return Err(EmbeddedError::Command {
                    program: "postgres".into(),
                    detail: format!("exited during start-up ({status}): {}", self.log_tail()),
                });
            }
            if let Ok(text) = fs::read_to_string(&pid_file) {
                // Line 8 is the status; the socket line tells us where to connect.
                if text.lines().nth(7).is_some_and(|s| s.trim() == "ready") {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(EmbeddedError::Command {
                    program: "postgres".into(),
                    detail: format!(
                        "not ready after {} s: {}",
                        START_TIMEOUT.as_secs(),
                        self.log_tail()
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn log_tail(&self) -> String {
        log_tail(&self.log_path)
    }
}

/// Create (mode 0700) and lock the data directory; when running as root,
/// the unprivileged user the server runs as, after making sure it can pass
/// through the directory. Returns the canonical path.
fn prepare_data_dir(data_dir: &Path) -> Result<(PathBuf, File, Option<User>), EmbeddedError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(io_err("create data directory", data_dir))?;
    let data_dir = data_dir
        .canonicalize()
        .map_err(io_err("open data directory", data_dir))?;
    let lock = lock_data_dir(&data_dir)?;

    let run_as = unprivileged_user()?;
    if let Some(user) = &run_as {
        tracing::info!(
            user = %user.name,
            "tokenvault runs as root; running the embedded PostgreSQL as system user '{}'",
            user.name
        );
        // The server must be able to enter the data directory; 0711 lets it
        // pass through without listing or reading anything else in it.
        fs::set_permissions(&data_dir, fs::Permissions::from_mode(0o711))
            .map_err(io_err("set permissions on", &data_dir))?;
        check_reachable(&data_dir, user)?;
    }
    Ok((data_dir, lock, run_as))
}

/// The server log (mode 0600, owned by the server's user), opened twice:
/// for the server's standard output and error.
fn open_server_log(log_path: &Path, run_as: Option<&User>) -> Result<(File, File), EmbeddedError> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode_0600()
        .open(log_path)
        .map_err(io_err("open server log", log_path))?;
    let log_err = log
        .try_clone()
        .map_err(io_err("open server log", log_path))?;
    if let Some(user) = run_as {
        // The log is written by the server process.
        nix::unistd::chown(log_path, Some(user.uid), Some(user.gid))
            .map_err(|e| io_err("change owner of", log_path)(e.into()))?;
    }
    Ok((log, log_err))
}

/// The watchdog running `postgres` on the private socket only, in a
/// process group of its own (a Ctrl-C in the terminal reaches tokenvault,
/// which stops the server itself after draining requests).
fn server_command(
    bin_dir: &Path,
    cluster_dir: &Path,
    socket_dir: &Path,
    options: &EmbeddedOptions,
) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(WATCHDOG)
        .arg("tokenvault-postgres")
        .arg(bin_dir.join("postgres"))
        .arg("-D")
        .arg(cluster_dir)
        .arg("-k")
        .arg(socket_dir)
        .arg("-p")
        .arg(SOCKET_PORT.to_string())
        .args(["-c", "listen_addresses="])
        .args(["-c", "unix_socket_permissions=0700"])
        .args(["-c", "logging_collector=off"]);
    if let Some(n) = options.max_connections {
        cmd.arg("-c").arg(format!("max_connections={n}"));
    }
    if options.ephemeral {
        cmd.args(["-c", "fsync=off"])
            .args(["-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off"]);
    }
    cmd.process_group(0).env_remove("PGDATA");
    cmd
}

/// Connection options for the cluster a running tokenvault holds in
/// `data_dir` (canonical path), through its private socket.
/// The password comes from the data directory's [`PASSWORD_FILE`].
pub fn running_connect_options(data_dir: &Path, database: &str) -> PgConnectOptions {
    let options = PgConnectOptions::new()
        .socket(socket_dir_for(data_dir))
        .port(SOCKET_PORT)
        .username(SUPERUSER)
        .database(database);
    match read_password(data_dir) {
        Ok(Some(password)) => options.password(password.expose_secret()),
        Ok(None) => options,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the embedded PostgreSQL's password file: connecting without it");
            options
        }
    }
}
