//! Making and checking the cluster's directories, binaries and processes:
//! the steps `EmbeddedPostgres::start` takes, each on its own.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::Read as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::unistd::{Gid, Uid, User};

use super::{EmbeddedError, MAX_SOCKET_PATH, STOP_TIMEOUT, SUPERUSER, io_err};

pub(super) fn log_tail(path: &Path) -> String {
    let mut text = String::new();
    if File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .is_err()
    {
        return format!("(no server log at {})", path.display());
    }
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    let tail: Vec<&str> = lines.into_iter().rev().collect();
    format!("{} (full log: {})", tail.join(" | "), path.display())
}

pub(super) trait OpenOptionsExt600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl OpenOptionsExt600 for OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

/// The directory with `initdb` and `postgres`: PATH first, then Debian's
/// versioned directories, newest first.
pub(super) fn find_bin_dir() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_both(&dir) {
                // Resolve links so that postgres finds its own share/ and lib/.
                let real = dir.join("postgres").canonicalize().ok()?;
                return real.parent().map(Path::to_path_buf);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, e.path().join("bin")))
        })
        .filter(|(_, bin)| has_both(bin))
        .collect();
    versions.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
    versions.into_iter().next().map(|(_, bin)| bin)
}

pub(super) fn lock_data_dir(data_dir: &Path) -> Result<File, EmbeddedError> {
    let path = data_dir.join("tokenvault.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode_0600()
        .open(&path)
        .map_err(io_err("open lock file", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(EmbeddedError::Busy(data_dir.to_path_buf())),
        Err(fs::TryLockError::Error(source)) => Err(io_err("lock", &path)(source)),
    }
}

pub(super) fn unprivileged_user() -> Result<Option<User>, EmbeddedError> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    let name = "postgres";
    match User::from_name(name) {
        Ok(Some(user)) => Ok(Some(user)),
        _ => Err(EmbeddedError::NoUnprivilegedUser(name.into())),
    }
}

/// Every directory from `/` down to `dir` must be searchable by `user`.
pub(super) fn check_reachable(dir: &Path, user: &User) -> Result<(), EmbeddedError> {
    let groups = nix::unistd::getgrouplist(
        &std::ffi::CString::new(user.name.as_str()).unwrap_or_default(),
        user.gid,
    )
    .unwrap_or_else(|_| vec![user.gid]);
    for ancestor in dir.ancestors() {
        let meta = fs::metadata(ancestor).map_err(io_err("inspect", ancestor))?;
        let mode = meta.mode();
        let searchable = if meta.uid() == user.uid.as_raw() {
            mode & 0o100 != 0
        } else if groups.contains(&Gid::from_raw(meta.gid())) {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !searchable {
            return Err(EmbeddedError::Unreachable {
                user: user.name.clone(),
                path: ancestor.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// `<data_dir>/run`, or a short directory under the temp dir when that path
/// would be too long for a unix socket name.
pub(super) fn socket_dir_for(data_dir: &Path) -> PathBuf {
    let preferred = data_dir.join("run");
    let socket_len = preferred.as_os_str().len() + "/.s.PGSQL.5432.lock".len();
    if socket_len <= MAX_SOCKET_PATH {
        return preferred;
    }
    // Stable per data directory, so restarts reuse it.
    let hash = data_dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    std::env::temp_dir().join(format!("tokenvault-{hash:016x}"))
}

pub(super) fn make_private_dir(dir: &Path, owner: Option<&User>) -> Result<(), EmbeddedError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err("create directory", dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(io_err("set permissions on", dir))?;
    if let Some(user) = owner {
        nix::unistd::chown(dir, Some(user.uid), Some(user.gid))
            .map_err(|e| io_err("change owner of", dir)(e.into()))?;
    }
    Ok(())
}

pub(super) fn run_as_user(cmd: &mut Command, user: Option<&User>) {
    if let Some(user) = user {
        cmd.uid(user.uid.as_raw())
            .gid(user.gid.as_raw())
            .env("HOME", &user.dir)
            .env("USER", &user.name)
            .env("LOGNAME", &user.name);
    }
}

pub(super) fn major_version_of_binaries(bin_dir: &Path) -> Result<String, EmbeddedError> {
    let out = Command::new(bin_dir.join("postgres"))
        .arg("--version")
        .output()
        .map_err(io_err("run", &bin_dir.join("postgres")))?;
    // "postgres (PostgreSQL) 15.18 (Debian ...)"
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_string();
    Ok(version.split('.').next().unwrap_or_default().to_string())
}

pub(super) fn check_version(bin_dir: &Path, cluster_dir: &Path) -> Result<(), EmbeddedError> {
    let path = cluster_dir.join("PG_VERSION");
    let cluster = fs::read_to_string(&path)
        .map_err(io_err("read", &path))?
        .trim()
        .to_string();
    let binaries = major_version_of_binaries(bin_dir)?;
    if cluster == binaries {
        Ok(())
    } else {
        Err(EmbeddedError::VersionMismatch {
            path: cluster_dir.to_path_buf(),
            cluster,
            binaries,
        })
    }
}

/// `initdb` into a scratch directory, then rename: an interrupted first start
/// leaves no half-made cluster behind.
pub(super) fn init_cluster(
    bin_dir: &Path,
    data_dir: &Path,
    cluster_dir: &Path,
    run_as: Option<&User>,
) -> Result<(), EmbeddedError> {
    let scratch = data_dir.join("pg.initdb");
    if scratch.exists() {
        fs::remove_dir_all(&scratch).map_err(io_err("remove", &scratch))?;
    }
    make_private_dir(&scratch, run_as)?;
    tracing::info!(cluster = %cluster_dir.display(), "creating the embedded PostgreSQL cluster (first start)");
    let mut cmd = Command::new(bin_dir.join("initdb"));
    cmd.arg("-D")
        .arg(&scratch)
        .args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
        ])
        .arg("--no-instructions")
        .stdin(Stdio::null())
        .env_remove("PGDATA");
    run_as_user(&mut cmd, run_as);
    let out = cmd
        .output()
        .map_err(io_err("run", &bin_dir.join("initdb")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(EmbeddedError::Command {
            program: "initdb".into(),
            detail: format!("{}: {}", out.status, stderr.trim()),
        });
    }
    fs::rename(&scratch, cluster_dir).map_err(io_err("rename", &scratch))?;
    Ok(())
}

/// Deal with a postmaster.pid left by a crash: remove it when its process is
/// gone (or is not a postgres any more); wait for a previous server that is
/// still shutting down (its watchdog saw our predecessor die).
pub(super) fn clear_stale_postmaster(cluster_dir: &Path) -> Result<(), EmbeddedError> {
    let pid_file = cluster_dir.join("postmaster.pid");
    let Ok(text) = fs::read_to_string(&pid_file) else {
        return Ok(());
    };
    let Some(pid) = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<i32>().ok())
    else {
        tracing::warn!(file = %pid_file.display(), "removing an unreadable postmaster.pid");
        return fs::remove_file(&pid_file).map_err(io_err("remove", &pid_file));
    };
    let deadline = Instant::now() + STOP_TIMEOUT;
    let mut asked = false;
    while is_postgres_for(pid, cluster_dir) {
        if Instant::now() > deadline {
            return Err(EmbeddedError::Command {
                program: "postgres".into(),
                detail: format!(
                    "a server (pid {pid}) is still running in {} and did not stop",
                    cluster_dir.display()
                ),
            });
        }
        if !asked && Instant::now() + STOP_TIMEOUT / 2 > deadline {
            // Still up after a while: a leftover without a watchdog. Ask it to stop.
            tracing::warn!(pid, "asking a leftover PostgreSQL server to stop");
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGINT,
            );
            asked = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if pid_file.exists() {
        tracing::warn!(
            pid,
            "removing a stale postmaster.pid left by a server that did not shut down cleanly"
        );
        fs::remove_file(&pid_file).map_err(io_err("remove", &pid_file))?;
    }
    Ok(())
}

/// Is `pid` a running postgres serving `cluster_dir`?
pub(super) fn is_postgres_for(pid: i32, cluster_dir: &Path) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<OsString> = cmdline
        .split(|b| *b == 0)
        .map(|a| OsString::from(String::from_utf8_lossy(a).into_owned()))
        .collect();
    let is_postgres = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .is_some_and(|n| n == "postgres");
    is_postgres && args.iter().any(|a| Path::new(a) == cluster_dir)
}
