//! The embedded cluster's own password. The cluster admits its superuser
//! only with a SCRAM password (`scram-sha-256` in `pg_hba.conf`) kept in
//! `DATA_DIR/pg.password`, mode 0600, owned by tokenvault's user: when
//! tokenvault runs as root and PostgreSQL as the shared `postgres` system
//! user, another process of that user can reach the socket but cannot
//! sign in. The password is made before the cluster first serves (right
//! after `initdb`), and once for a cluster made by an older tokenvault,
//! which trusted every connection on its socket: that upgrade is logged.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::unistd::User;
use rand::RngCore as _;
use secrecy::SecretString;

use super::cluster::{OpenOptionsExt600 as _, run_as_user};
use super::{EmbeddedError, SUPERUSER, io_err};

/// The password file's name in the data directory.
pub const PASSWORD_FILE: &str = "pg.password";

/// What `pg_hba.conf` says: the superuser, on the unix socket, with its
/// password; nothing else (the cluster listens on no TCP port).
const HBA: &str = "# Written by tokenvault: only its own superuser, on the private unix\n\
                   # socket, with the SCRAM password kept in the data directory's pg.password.\n\
                   local all tokenvault scram-sha-256\n";

/// The password of `data_dir`'s cluster, if its file is there.
///
/// # Errors
/// When the file exists but cannot be read.
pub fn read_password(data_dir: &Path) -> Result<Option<SecretString>, EmbeddedError> {
    let path = data_dir.join(PASSWORD_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(SecretString::from(text.trim().to_string()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", &path)(e)),
    }
}

/// The cluster's password: the file's for a cluster that was there, or a
/// new one — always for a `fresh` cluster, whose role has no password yet
/// even when a file was left behind by a removed cluster — set on the
/// (stopped) cluster with `pg_hba.conf` switched to SCRAM before the file
/// is written (an interrupted run starts over on the next start).
pub(super) fn ensure_password(
    bin_dir: &Path,
    data_dir: &Path,
    cluster_dir: &Path,
    run_as: Option<&User>,
    fresh: bool,
) -> Result<SecretString, EmbeddedError> {
    if !fresh && let Some(password) = read_password(data_dir)? {
        return Ok(password);
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let password = hex::encode(bytes);
    set_role_password(bin_dir, cluster_dir, run_as, &password)?;
    write_owned(&cluster_dir.join("pg_hba.conf"), HBA, run_as)?;
    let path = data_dir.join(PASSWORD_FILE);
    let scratch = data_dir.join("pg.password.new");
    write_owned(&scratch, &password, None)?;
    fs::rename(&scratch, &path).map_err(io_err("rename", &scratch))?;
    if !fresh {
        tracing::warn!(
            file = %path.display(),
            "upgraded the embedded PostgreSQL: it trusted every connection on its socket; \
             it now admits only its superuser with a SCRAM password kept in this file (mode 0600)"
        );
    }
    Ok(SecretString::from(password))
}

/// `ALTER ROLE … PASSWORD` in single-user mode (no connection, no
/// authentication; the password goes through a pipe, never an argument).
fn set_role_password(
    bin_dir: &Path,
    cluster_dir: &Path,
    run_as: Option<&User>,
    password: &str,
) -> Result<(), EmbeddedError> {
    let postgres = bin_dir.join("postgres");
    let mut cmd = Command::new(&postgres);
    cmd.arg("--single")
        .arg("-D")
        .arg(cluster_dir)
        .args(["-c", "password_encryption=scram-sha-256"])
        .arg("postgres")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("PGDATA");
    run_as_user(&mut cmd, run_as);
    let mut child = cmd.spawn().map_err(io_err("run", &postgres))?;
    if let Some(mut stdin) = child.stdin.take() {
        let statement = format!("ALTER ROLE {SUPERUSER} PASSWORD '{password}';\n");
        stdin
            .write_all(statement.as_bytes())
            .map_err(io_err("write to", &postgres))?;
    }
    let out = child.wait_with_output().map_err(io_err("run", &postgres))?;
    // PostgreSQL may echo the failed statement: never the password.
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .replace(password, crate::secret::MASK);
    if !out.status.success() || said.contains("ERROR") || said.contains("FATAL") {
        return Err(EmbeddedError::Command {
            program: "postgres --single".into(),
            detail: format!(
                "cannot set the cluster's password ({}): {}",
                out.status,
                said.trim()
            ),
        });
    }
    Ok(())
}

/// Write `text` to `path`, mode 0600, owned by `owner` when given.
fn write_owned(path: &PathBuf, text: &str, owner: Option<&User>) -> Result<(), EmbeddedError> {
    let _ = fs::remove_file(path);
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode_0600()
        .open(path)
        .map_err(io_err("create", path))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_err("write", path))?;
    if let Some(user) = owner {
        nix::unistd::chown(path.as_path(), Some(user.uid), Some(user.gid))
            .map_err(|e| io_err("change owner of", path)(e.into()))?;
    }
    Ok(())
}
