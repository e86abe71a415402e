//! The `tokenvault` binary as a user runs it: real processes, real signals.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::helpers::{Sandbox, TestDatabase};

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run tokenvault")
}

/// A failure is one clear line on stderr, a non-zero exit, and no panic.
fn assert_clean_failure(out: &Output, expected: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "expected failure, got success: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "panic on bad input: {stderr}");
    assert!(
        !stderr.contains("RUST_BACKTRACE"),
        "backtrace hint: {stderr}"
    );
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in: {stderr}"
    );
    stderr
}

#[test]
fn help_explains_commands_and_settings() {
    let out = run(Sandbox::new().tokenvault().arg("--help"));
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "serve",
        "migrate",
        "TOKENVAULT_BIND",
        "TOKENVAULT_DATA_DIR",
        "DATABASE_URL",
        "TOKENVAULT_LOG_FORMAT",
        "TOKENVAULT_MASTER_KEYS",
        "TOKENVAULT_MASTER_KEY_FILE",
        "TOKENVAULT_ACTIVE_KEY_ID",
    ] {
        assert!(help.contains(word), "--help lacks {word}: {help}");
    }
}

#[test]
fn unknown_subcommand_or_flag_fails_cleanly() {
    let sandbox = Sandbox::new();
    assert_clean_failure(&run(sandbox.tokenvault().arg("frobnicate")), "frobnicate");
    assert_clean_failure(
        &run(sandbox.tokenvault().arg("--no-such-flag")),
        "--no-such-flag",
    );
}

#[test]
fn invalid_settings_name_the_setting() {
    let sandbox = Sandbox::new();
    let tokenvault = || sandbox.tokenvault();
    let out = run(tokenvault().env("TOKENVAULT_BIND", "localhost"));
    assert_clean_failure(&out, "TOKENVAULT_BIND");
    let out = run(tokenvault().env("DATABASE_URL", "mysql://root:pw-never-shown@db/x"));
    let stderr = assert_clean_failure(&out, "DATABASE_URL");
    assert!(
        !stderr.contains("pw-never-shown"),
        "password leaked: {stderr}"
    );
    let out = run(tokenvault().env("TOKENVAULT_LOG_FORMAT", "xml"));
    assert_clean_failure(&out, "--log-format");
}

#[test]
fn unreachable_database_url_fails_with_one_line() {
    let out = run(Sandbox::new().tokenvault().env(
        "DATABASE_URL",
        "postgres://nobody:pw-never-shown@127.0.0.1:1/none",
    ));
    let stderr = assert_clean_failure(&out, "cannot connect to the database at DATABASE_URL");
    assert!(
        !stderr.contains("pw-never-shown"),
        "password leaked: {stderr}"
    );
}

#[test]
fn port_in_use_fails_with_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(Sandbox::new()
        .tokenvault()
        .env("TOKENVAULT_BIND", &addr)
        .env("DATABASE_URL", "postgres://u@127.0.0.1:1/none"));
    assert_clean_failure(&out, &format!("cannot listen on {addr}"));
}

#[test]
fn unusable_data_dir_fails_with_one_line() {
    let sandbox = Sandbox::new();
    let file = sandbox.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let out = run(sandbox
        .tokenvault()
        .env("TOKENVAULT_DATA_DIR", file.join("data")));
    assert_clean_failure(&out, "cannot create data directory");
}

#[tokio::test]
async fn migrate_command_applies_every_migration() {
    let db = TestDatabase::create_empty().await;
    let out = tokio::task::spawn_blocking({
        let url = db.url();
        move || {
            run(Sandbox::new()
                .tokenvault()
                .arg("migrate")
                .env("DATABASE_URL", url))
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pool = db.pool(2).await;
    assert!(tokenvault::db::migrations_applied(&pool).await.unwrap());
}

/// A running `tokenvault serve`.
struct Service {
    child: Child,
    address: String,
    /// Its log lines as they come.
    lines: mpsc::Receiver<String>,
    /// The lines read so far.
    log: Vec<String>,
}

impl Service {
    /// The first log line (read so far or to come) that contains `needle`.
    fn line_with(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(line) = self.log.iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.log.push(line),
                Err(e) => panic!("no log line with {needle:?} ({e}) in: {:#?}", self.log),
            }
        }
    }

    /// Every log line, once the process has exited.
    fn whole_log(&mut self) -> &[String] {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            self.log.push(line);
        }
        &self.log
    }
}

/// Start `tokenvault serve` in `sandbox`, on its data directory.
fn start_embedded(sandbox: &Sandbox) -> Service {
    start(&mut sandbox.tokenvault())
}

/// Start `cmd` (a `tokenvault serve`) and wait until it serves.
fn start(cmd: &mut Command) -> Service {
    let mut child = cmd
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tokenvault");
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut service = Service {
        child,
        address: String::new(),
        lines,
        log: Vec::new(),
    };
    let serving = service.line_with("serving on ");
    service.address = serving
        .split("serving on ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    service
}

fn readyz(address: &str) -> u16 {
    let url = format!("{address}/readyz");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { reqwest::get(&url).await.map_or(0, |r| r.status().as_u16()) })
}

fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "tokenvault did not exit within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Processes whose command line names the cluster directory.
fn postgres_processes_for(cluster: &Path) -> Vec<u32> {
    let needle = cluster.as_os_str().as_encoded_bytes();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.windows(needle.len()).any(|w| w == needle))
        })
        .collect()
}

fn wait_no_postgres(cluster: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !postgres_processes_for(cluster).is_empty() {
        assert!(Instant::now() < deadline, "postgres outlived tokenvault");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn embedded_database_survives_restarts_and_kill_9() {
    let sandbox = Sandbox::new();
    let data_dir = sandbox.data_dir();
    let cluster = data_dir
        .canonicalize()
        .unwrap_or(data_dir.clone())
        .join("pg");

    // First start creates the cluster; SIGTERM stops everything cleanly.
    let mut svc = start_embedded(&sandbox);
    assert_eq!(readyz(&svc.address), 200);
    kill(
        Pid::from_raw(i32::try_from(svc.child.id()).unwrap()),
        Signal::SIGTERM,
    )
    .unwrap();
    assert!(wait_exit(&mut svc.child, Duration::from_secs(30)).success());
    let cluster = cluster.canonicalize().unwrap_or(cluster);
    assert!(
        postgres_processes_for(&cluster).is_empty(),
        "postgres outlived a clean stop"
    );
    assert!(!cluster.join("postmaster.pid").exists());

    // A second start finds the cluster; kill -9 leaves no server behind.
    let mut svc = start_embedded(&sandbox);
    assert_eq!(readyz(&svc.address), 200);
    svc.child.kill().unwrap();
    svc.child.wait().unwrap();
    wait_no_postgres(&cluster, Duration::from_secs(30));

    // A crash of the server itself leaves a stale postmaster.pid: still starts.
    std::fs::write(cluster.join("postmaster.pid"), "999999\n").unwrap();
    let mut svc = start_embedded(&sandbox);
    assert_eq!(readyz(&svc.address), 200);

    // A second service on the same data directory is refused with a reason.
    let out = run(&mut sandbox.tokenvault());
    assert_clean_failure(&out, "already using data directory");

    kill(
        Pid::from_raw(i32::try_from(svc.child.id()).unwrap()),
        Signal::SIGINT,
    )
    .unwrap();
    assert!(wait_exit(&mut svc.child, Duration::from_secs(30)).success());
    wait_no_postgres(&cluster, Duration::from_secs(5));
}

#[test]
fn operator_commands_run_beside_a_serving_embedded_service() {
    let sandbox = Sandbox::new();
    let mut svc = start_embedded(&sandbox);
    // The service holds the data directory; the command connects to its cluster.
    let out = run(sandbox.tokenvault().arg("keys").arg("status"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("active"));
    let out = run(sandbox.tokenvault().arg("migrate"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(readyz(&svc.address), 200, "the service kept serving");
    kill(
        Pid::from_raw(i32::try_from(svc.child.id()).unwrap()),
        Signal::SIGTERM,
    )
    .unwrap();
    assert!(wait_exit(&mut svc.child, Duration::from_secs(30)).success());
}

#[test]
fn the_start_says_what_to_do_next_and_never_shows_a_key() {
    let sandbox = Sandbox::new();
    let mut svc = start_embedded(&sandbox);
    let data_dir = sandbox.data_dir().canonicalize().unwrap();
    let key_file = data_dir.join("master.key");
    let key = std::fs::read_to_string(&key_file).unwrap();
    let key = key
        .lines()
        .find_map(|l| l.split_once(':'))
        .map(|(_, key)| key.trim().to_string())
        .expect("a key in the generated key file");

    let open = svc.line_with("in a browser");
    assert!(
        open.contains(&format!("open {} in a browser to sign up", svc.address)),
        "{open}"
    );
    let data = svc.line_with("data directory: ");
    assert!(
        data.contains(&format!("data directory: {} ", data_dir.display())),
        "{data}"
    );
    let file = svc.line_with("master key file: ");
    assert!(
        file.ends_with(&format!("master key file: {}", key_file.display())),
        "{file}"
    );
    let backup = svc.line_with("back up ");
    assert!(
        backup.contains(&format!(
            "back up {} and keep it secret",
            key_file.display()
        )) && backup.contains("cannot be decrypted"),
        "{backup}"
    );
    assert_eq!(readyz(&svc.address), 200);
    kill(
        Pid::from_raw(i32::try_from(svc.child.id()).unwrap()),
        Signal::SIGTERM,
    )
    .unwrap();
    assert!(wait_exit(&mut svc.child, Duration::from_secs(30)).success());
    let log = svc.whole_log();
    assert!(
        log.iter()
            .any(|l| l.contains("embedded PostgreSQL stopped")),
        "{log:#?}"
    );
    assert!(
        log.iter().all(|l| !l.contains(&key)),
        "the master key is in the log: {log:#?}"
    );

    // Keys given as a setting: no file to name, the setting to keep safe.
    let other = Sandbox::new();
    let entry = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let mut svc = start(other.tokenvault().env("TOKENVAULT_MASTER_KEYS", entry));
    let keys = svc.line_with("master keys: ");
    assert!(
        keys.contains("from TOKENVAULT_MASTER_KEYS; keep a copy of them somewhere safe"),
        "{keys}"
    );
    assert!(!other.data_dir().join("master.key").exists());
    kill(
        Pid::from_raw(i32::try_from(svc.child.id()).unwrap()),
        Signal::SIGTERM,
    )
    .unwrap();
    assert!(wait_exit(&mut svc.child, Duration::from_secs(30)).success());
    let log = svc.whole_log();
    assert!(
        log.iter().all(|l| !l.contains("AAECAwQFBgcICQ")),
        "a master key is in the log: {log:#?}"
    );
}
