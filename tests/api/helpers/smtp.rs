//! A real SMTP server for the tests: `tests/mail/smtp_sink.py` (aiosmtpd)
//! in a process of its own, writing every message it accepts to a
//! directory. `.ci/run` installs aiosmtpd in `tests/mail/.venv`; elsewhere a
//! `python3` with aiosmtpd will do.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use super::Sandbox;

/// A running SMTP sink; killed when dropped.
pub struct SmtpSink {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    out: PathBuf,
    _sandbox: Sandbox,
}

/// The Python to run the sink with: the CI virtualenv's, else `python3`;
/// `None` (and the test skipped) when none has aiosmtpd, except under
/// `CI=true`, where that fails the test.
fn python() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mail/.venv/bin/python");
    let candidates = [venv, PathBuf::from("python3")];
    for python in candidates {
        let ok = std::process::Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(python);
        }
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "aiosmtpd is required under CI=true (.ci/run installs it in tests/mail/.venv)"
    );
    eprintln!("skipped: no python with aiosmtpd (pip install -r tests/mail/requirements.txt)");
    None
}

impl SmtpSink {
    /// A sink on a free port, or on `port`; the first `reject` messages get
    /// a temporary failure (451).
    pub fn start(port: u16, reject: u32) -> Option<Self> {
        let python = python()?;
        let sandbox = Sandbox::new();
        let out = sandbox.path().join("received");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mail/smtp_sink.py");
        let mut child = sandbox
            .command(python)
            .arg(script)
            .arg(&out)
            .args(["--port", &port.to_string(), "--reject", &reject.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SMTP sink");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the sink's first line");
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the SMTP sink did not start: {line:?}"));
        Some(Self {
            child,
            port,
            out,
            _sandbox: sandbox,
        })
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages received so far, in order, as text.
    pub fn received(&self) -> Vec<String> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .map(|dir| {
                dir.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        paths.sort();
        paths
            .iter()
            .map(|p| std::fs::read_to_string(p).expect("read a received mail"))
            .collect()
    }

    /// Wait up to 30 s until `n` messages have arrived; them.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        for _ in 0..300 {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{} of {n} mails arrived within 30 s", self.received().len());
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
