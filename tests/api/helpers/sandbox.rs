//! The sandbox every process a test starts runs in.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
