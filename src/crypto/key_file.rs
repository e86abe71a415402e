//! The key file: where a key ring is read from, and the private file a
//! first start generates in the data directory.

use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::{CryptoError, KeyRing, KeyRingError, generate_entry};

/// Where the key ring came from, for messages that tell the operator what to edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `TOKENVAULT_MASTER_KEYS`.
    Setting,
    /// A key file named by `TOKENVAULT_MASTER_KEY_FILE`.
    File(PathBuf),
    /// The key file in the data directory (generated on first run).
    DataDir(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Setting => f.write_str("TOKENVAULT_MASTER_KEYS"),
            Self::File(path) => write!(
                f,
                "the key file {} (TOKENVAULT_MASTER_KEY_FILE)",
                path.display()
            ),
            Self::DataDir(path) => write!(f, "the key file {}", path.display()),
        }
    }
}

/// Why the key ring could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyLoadError {
    /// A key file could not be read.
    #[error("cannot read {source_name}: {error}")]
    Read {
        /// The key source.
        source_name: KeySource,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A key file's content is not a valid key ring.
    #[error("{source_name}: {error}")]
    Invalid {
        /// The key source.
        source_name: KeySource,
        /// What is wrong.
        error: KeyRingError,
    },
    /// A key file is open to its group or to others.
    #[error(
        "the key file {path} is accessible by other users (mode {mode:04o}): tokenvault refuses \
         to start with a key ring others may read. Run `chmod 600 {path}`"
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key file could not be written.
    #[error("cannot write the new key file {path}: {error}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// No randomness for a new key.
    #[error("cannot generate a master key: {0}")]
    Generate(#[from] CryptoError),
}

/// Read and validate a key file (`id:base64key` per line, `#` comments).
pub fn read_key_file(
    path: &Path,
    source_name: KeySource,
    active: Option<&str>,
) -> Result<KeyRing, KeyLoadError> {
    // As ssh does with a private key: a key ring others may read is refused.
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyLoadError::Exposed {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|error| KeyLoadError::Read {
                source_name: source_name.clone(),
                error,
            })?,
        );
    KeyRing::parse_with_active(&text, active)
        .map_err(|error| KeyLoadError::Invalid { source_name, error })
}

/// Write a new key file with one random key at `path`, mode 0600; an existing
/// file is never replaced (a concurrent start that wrote one first wins).
pub fn generate_key_file(path: &Path) -> Result<(), KeyLoadError> {
    let id = chrono::Utc::now().format("k%Y%m%d").to_string();
    let entry = generate_entry(&id)?;
    let content = Zeroizing::new(format!(
        "# tokenvault master key ring, generated {}.\n\
         # BACK THIS FILE UP: without it the appsecrets and tokens stored in the database are lost.\n\
         # One `id:base64key` per line; the first is active unless TOKENVAULT_ACTIVE_KEY_ID names another.\n\
         {}\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC"),
        entry.as_str()
    ));
    let write_err = |error| KeyLoadError::Write {
        path: path.to_path_buf(),
        error,
    };
    // Write a private temporary file, then link it into place: readers never
    // see a half-written key file, and an existing one is never overwritten.
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(content.as_bytes())?;
        file.sync_all()?;
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.exists() => Ok(()),
        Err(e) => Err(write_err(e)),
    }
}
