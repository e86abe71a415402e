//! Secrets at rest: a ring of AES-256-GCM master keys with short ids, and a
//! versioned, self-describing ciphertext bound to the row and field it
//! belongs to.
//!
//! Ciphertext layout: `[version = 1][key id length][key id][nonce: 12][ciphertext + tag: 16]`.
//! The associated data is `b"tokenvault/v1\0" + key id + b"\0" + tenant uuid
//! (16 bytes) + row uuid (16 bytes) + field name`, so a ciphertext copied to
//! another field, row or tenant does not decrypt.

use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::domain::{AppUuid, TenantId};
use aes_gcm::aead::{Aead as _, Payload};
use aes_gcm::{Aes256Gcm, KeyInit as _, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::RngCore as _;
use secrecy::SecretString;
use uuid::Uuid;
use zeroize::Zeroizing;

/// The only ciphertext format version so far.
pub const FORMAT_VERSION: u8 = 1;
/// Length of a master key in bytes (AES-256).
pub const KEY_LEN: usize = 32;
/// Length of a GCM nonce in bytes.
pub const NONCE_LEN: usize = 12;
/// Length of a GCM authentication tag in bytes.
pub const TAG_LEN: usize = 16;
/// Longest key id.
pub const MAX_KEY_ID_LEN: usize = 16;
/// Name of the key file generated in the data directory.
pub const KEY_FILE_NAME: &str = "master.key";

const AAD_PREFIX: &[u8] = b"tokenvault/v1\0";

/// Which stored field a ciphertext belongs to; part of the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretField {
    /// `apps.secret_ciphertext`.
    AppSecret,
    /// `apps.secondary_secret_ciphertext`.
    SecondaryAppSecret,
    /// `token_state.access_token_ciphertext`.
    AccessToken,
    /// `key_checks.ciphertext`.
    KeyCheck,
}

impl SecretField {
    /// The stable name used in the associated data (never change one).
    pub fn name(self) -> &'static str {
        match self {
            Self::AppSecret => "apps.secret",
            Self::SecondaryAppSecret => "apps.secondary_secret",
            Self::AccessToken => "token_state.access_token",
            Self::KeyCheck => "key_checks.check",
        }
    }
}

/// Where a ciphertext belongs: its tenant, its row and its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The owning tenant (nil for key checks).
    pub tenant_id: Uuid,
    /// The row: the app id for app secrets and for tokens (nil for key checks).
    pub row_id: Uuid,
    /// The field.
    pub field: SecretField,
}

impl Binding {
    /// The primary appsecret of app `app_id`.
    pub fn app_secret(tenant_id: TenantId, app_id: AppUuid) -> Self {
        Self {
            tenant_id: tenant_id.uuid(),
            row_id: app_id.uuid(),
            field: SecretField::AppSecret,
        }
    }

    /// The secondary appsecret of app `app_id` (used while a secret is rotated at WeChat).
    pub fn secondary_app_secret(tenant_id: TenantId, app_id: AppUuid) -> Self {
        Self {
            tenant_id: tenant_id.uuid(),
            row_id: app_id.uuid(),
            field: SecretField::SecondaryAppSecret,
        }
    }

    /// The access token of app `app_id` (`token_state` is keyed by the app id).
    pub fn access_token(tenant_id: TenantId, app_id: AppUuid) -> Self {
        Self {
            tenant_id: tenant_id.uuid(),
            row_id: app_id.uuid(),
            field: SecretField::AccessToken,
        }
    }

    /// A key check value (not tied to any tenant or row).
    pub fn key_check() -> Self {
        Self {
            tenant_id: Uuid::nil(),
            row_id: Uuid::nil(),
            field: SecretField::KeyCheck,
        }
    }

    fn associated_data(&self, key_id: &str) -> Vec<u8> {
        let field = self.field.name().as_bytes();
        let mut aad = Vec::with_capacity(AAD_PREFIX.len() + key_id.len() + 33 + field.len());
        aad.extend_from_slice(AAD_PREFIX);
        aad.extend_from_slice(key_id.as_bytes());
        aad.push(0);
        aad.extend_from_slice(self.tenant_id.as_bytes());
        aad.extend_from_slice(self.row_id.as_bytes());
        aad.extend_from_slice(field);
        aad
    }
}

/// Why a ciphertext could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The ciphertext names a key that is not in the key ring.
    #[error(
        "the secret is encrypted under master key '{0}', which is not in the key ring: add that \
         key back to TOKENVAULT_MASTER_KEYS (or the key file)"
    )]
    UnknownKeyId(String),
    /// The ciphertext is shorter than its header says.
    #[error("the stored ciphertext is truncated or corrupted; the secret must be entered again")]
    Truncated,
    /// The ciphertext was written by a format this build does not know.
    #[error(
        "the stored ciphertext has format version {0}, which this tokenvault does not know; \
         run the newer tokenvault version that wrote it"
    )]
    UnsupportedVersion(u8),
    /// Authentication failed: wrong key, wrong row/field, or modified bytes.
    #[error(
        "the stored ciphertext does not decrypt: it was modified, copied from another row, or the \
         master key with its id is not the key it was written with"
    )]
    Tampered,
    /// The decrypted secret was expected to be text and is not.
    #[error("the decrypted secret is not UTF-8 text")]
    NotUtf8,
    /// The operating system gave no randomness for a nonce.
    #[error("cannot get random bytes from the operating system: {0}")]
    NoRandomness(String),
    /// The plaintext is too long for AES-GCM.
    #[error("the secret is too long to encrypt")]
    TooLong,
}

/// Why a key ring could not be built. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRingError {
    /// No entry at all.
    #[error(
        "no master key given: expected comma-separated `id:base64key` entries \
         (create one with `tokenvault keys generate`)"
    )]
    Empty,
    /// An entry without `:`.
    #[error("entry {0} is not of the form `id:base64key`")]
    NotAnEntry(usize),
    /// An id that is not 1-16 of `a-z0-9-`.
    #[error("entry {0}: a key id must be 1 to 16 characters of a-z, 0-9 and '-'")]
    BadId(usize),
    /// A key that is not standard base64.
    #[error("key '{0}' is not valid standard base64 (with padding)")]
    BadEncoding(String),
    /// A key that does not decode to 32 bytes.
    #[error(
        "key '{id}' is {len} bytes long; a master key must be exactly 32 bytes (256 bits), \
         e.g. from `tokenvault keys generate`"
    )]
    WrongLength {
        /// The key id.
        id: String,
        /// Its decoded length.
        len: usize,
    },
    /// The same id twice.
    #[error("key id '{0}' appears twice; every key needs its own id")]
    DuplicateId(String),
    /// The active id names no key of the ring.
    #[error("the active key id '{active}' is not in the key ring (ids: {ids})")]
    UnknownActive {
        /// The requested active id.
        active: String,
        /// The ids in the ring.
        ids: String,
    },
}

struct MasterKey {
    id: String,
    key: Zeroizing<[u8; KEY_LEN]>,
}

/// Master keys by id; one of them is active and used to encrypt.
/// `Debug` shows the ids only.
#[derive(Clone)]
pub struct KeyRing {
    // Few keys: a vector is simpler and as fast as a map.
    keys: std::sync::Arc<Vec<MasterKey>>,
    active: usize,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("active", &self.active_id())
            .field("ids", &self.ids().collect::<Vec<_>>())
            .finish()
    }
}

/// Whether `id` is a well-formed key id: 1-16 of `a-z0-9-`.
pub fn is_valid_key_id(id: &str) -> bool {
    (1..=MAX_KEY_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl KeyRing {
    /// Parse `id:base64key` entries separated by commas or new lines (`#`
    /// starts a comment line); the first entry is active.
    pub fn parse(text: &str) -> Result<Self, KeyRingError> {
        Self::parse_with_active(text, None)
    }

    /// Like [`KeyRing::parse`], with the active key named by `active` if given.
    pub fn parse_with_active(text: &str, active: Option<&str>) -> Result<Self, KeyRingError> {
        let entries = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.starts_with('#'))
            .flat_map(|line| line.split(','))
            .map(str::trim)
            .filter(|entry| !entry.is_empty());
        let mut keys: Vec<MasterKey> = Vec::new();
        for (index, entry) in entries.enumerate() {
            let number = index + 1;
            let (id, encoded) = entry
                .split_once(':')
                .ok_or(KeyRingError::NotAnEntry(number))?;
            let id = id.trim();
            if !is_valid_key_id(id) {
                return Err(KeyRingError::BadId(number));
            }
            let decoded = Zeroizing::new(
                BASE64
                    .decode(encoded.trim())
                    .map_err(|_| KeyRingError::BadEncoding(id.to_string()))?,
            );
            let mut key = Zeroizing::new([0u8; KEY_LEN]);
            if decoded.len() != KEY_LEN {
                return Err(KeyRingError::WrongLength {
                    id: id.to_string(),
                    len: decoded.len(),
                });
            }
            key.copy_from_slice(&decoded);
            if keys.iter().any(|k| k.id == id) {
                return Err(KeyRingError::DuplicateId(id.to_string()));
            }
            keys.push(MasterKey {
                id: id.to_string(),
                key,
            });
        }
        if keys.is_empty() {
            return Err(KeyRingError::Empty);
        }
        let active = match active {
            None => 0,
            Some(wanted) => keys.iter().position(|k| k.id == wanted).ok_or_else(|| {
                KeyRingError::UnknownActive {
                    active: wanted.to_string(),
                    ids: keys
                        .iter()
                        .map(|k| k.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            })?,
        };
        Ok(Self {
            keys: std::sync::Arc::new(keys),
            active,
        })
    }

    /// The same keys with `id` active.
    pub fn with_active(&self, id: &str) -> Result<Self, KeyRingError> {
        let active = self
            .position(id)
            .ok_or_else(|| KeyRingError::UnknownActive {
                active: id.to_string(),
                ids: self.ids().collect::<Vec<_>>().join(", "),
            })?;
        Ok(Self {
            keys: self.keys.clone(),
            active,
        })
    }

    /// The id of the key that encrypts.
    pub fn active_id(&self) -> &str {
        &self.keys[self.active].id
    }

    /// Every key id, active first then in the order given.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.active_id()).chain(
            self.keys
                .iter()
                .enumerate()
                .filter(move |(i, _)| *i != self.active)
                .map(|(_, k)| k.id.as_str()),
        )
    }

    /// Whether the ring holds key `id`.
    pub fn contains(&self, id: &str) -> bool {
        self.position(id).is_some()
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.keys.iter().position(|k| k.id == id)
    }

    /// Encrypt `plaintext` for `binding` under the active key.
    pub fn encrypt(&self, plaintext: &[u8], binding: &Binding) -> Result<Vec<u8>, CryptoError> {
        seal(&self.keys[self.active], plaintext, binding)
    }

    /// Encrypt under key `key_id` (key check values are made per key).
    pub fn encrypt_under(
        &self,
        key_id: &str,
        plaintext: &[u8],
        binding: &Binding,
    ) -> Result<Vec<u8>, CryptoError> {
        let index = self
            .position(key_id)
            .ok_or_else(|| CryptoError::UnknownKeyId(key_id.to_string()))?;
        seal(&self.keys[index], plaintext, binding)
    }

    /// Decrypt a ciphertext made for `binding`, with whichever key it names.
    pub fn decrypt(
        &self,
        ciphertext: &[u8],
        binding: &Binding,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let parts = Parts::split(ciphertext)?;
        let index = self
            .position(parts.key_id)
            .ok_or_else(|| CryptoError::UnknownKeyId(parts.key_id.to_string()))?;
        let cipher = Aes256Gcm::new(self.keys[index].key.as_ref().into());
        let aad = binding.associated_data(parts.key_id);
        cipher
            .decrypt(
                Nonce::from_slice(parts.nonce),
                Payload {
                    msg: parts.sealed,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Tampered)
    }

    /// Decrypt a ciphertext whose plaintext is text (appsecrets, tokens).
    pub fn decrypt_text(
        &self,
        ciphertext: &[u8],
        binding: &Binding,
    ) -> Result<SecretString, CryptoError> {
        let bytes = self.decrypt(ciphertext, binding)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| CryptoError::NotUtf8)?;
        Ok(SecretString::from(text))
    }
}

fn seal(key: &MasterKey, plaintext: &[u8], binding: &Binding) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng
        .try_fill_bytes(&mut nonce)
        .map_err(|e| CryptoError::NoRandomness(e.to_string()))?;
    let cipher = Aes256Gcm::new(key.key.as_ref().into());
    let aad = binding.associated_data(&key.id);
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| CryptoError::TooLong)?;
    let id = key.id.as_bytes();
    let mut out = Vec::with_capacity(2 + id.len() + NONCE_LEN + sealed.len());
    out.push(FORMAT_VERSION);
    // Ids are at most 16 bytes: the length always fits.
    out.push(u8::try_from(id.len()).map_err(|_| CryptoError::TooLong)?);
    out.extend_from_slice(id);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

struct Parts<'a> {
    key_id: &'a str,
    nonce: &'a [u8],
    sealed: &'a [u8],
}

impl<'a> Parts<'a> {
    fn split(ciphertext: &'a [u8]) -> Result<Self, CryptoError> {
        let (&version, rest) = ciphertext.split_first().ok_or(CryptoError::Truncated)?;
        if version != FORMAT_VERSION {
            return Err(CryptoError::UnsupportedVersion(version));
        }
        let (&id_len, rest) = rest.split_first().ok_or(CryptoError::Truncated)?;
        let id_len = usize::from(id_len);
        if rest.len() < id_len + NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Truncated);
        }
        let (id, rest) = rest.split_at(id_len);
        let key_id = std::str::from_utf8(id)
            .ok()
            .filter(|id| is_valid_key_id(id))
            .ok_or(CryptoError::Tampered)?;
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        Ok(Self {
            key_id,
            nonce,
            sealed,
        })
    }
}

/// The key id a ciphertext names, without decrypting it.
pub fn key_id_of(ciphertext: &[u8]) -> Result<&str, CryptoError> {
    Parts::split(ciphertext).map(|p| p.key_id)
}

/// A new random key ring entry `id:base64key`, for a key file or
/// `TOKENVAULT_MASTER_KEYS`.
pub fn generate_entry(id: &str) -> Result<Zeroizing<String>, CryptoError> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    rand::rngs::OsRng
        .try_fill_bytes(key.as_mut())
        .map_err(|e| CryptoError::NoRandomness(e.to_string()))?;
    Ok(Zeroizing::new(format!(
        "{id}:{}",
        BASE64.encode(key.as_ref())
    )))
}

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
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|error| KeyLoadError::Read {
                source_name: source_name.clone(),
                error,
            })?,
        );
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "the key file {} is readable by other users; restrict it with `chmod 600`",
            path.display()
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    fn ring() -> KeyRing {
        KeyRing::parse(&format!("{K1},{K2}")).unwrap()
    }

    fn binding() -> Binding {
        Binding::app_secret(TenantId(Uuid::from_u128(1)), AppUuid(Uuid::from_u128(2)))
    }

    #[test]
    fn round_trip_under_active_key() {
        let ring = ring();
        let ct = ring.encrypt(b"my appsecret", &binding()).unwrap();
        assert_eq!(key_id_of(&ct).unwrap(), "k1");
        assert_eq!(ct[0], FORMAT_VERSION);
        assert_eq!(
            ct.len(),
            2 + 2 + NONCE_LEN + b"my appsecret".len() + TAG_LEN
        );
        assert_eq!(&**ring.decrypt(&ct, &binding()).unwrap(), b"my appsecret");
        // Random nonces: the same plaintext never gives the same ciphertext.
        assert_ne!(ct, ring.encrypt(b"my appsecret", &binding()).unwrap());
    }

    #[test]
    fn older_keys_still_decrypt() {
        let ring = ring();
        let ct = ring.encrypt_under("k2", b"x", &binding()).unwrap();
        let rotated = ring.with_active("k2").unwrap();
        assert_eq!(rotated.active_id(), "k2");
        assert_eq!(&**ring.decrypt(&ct, &binding()).unwrap(), b"x");
        assert_eq!(&**rotated.decrypt(&ct, &binding()).unwrap(), b"x");
    }

    #[test]
    fn every_flipped_bit_fails() {
        let ring = ring();
        let ct = ring.encrypt(b"wx-secret-0123456789", &binding()).unwrap();
        for byte in 0..ct.len() {
            for bit in 0..8 {
                let mut bad = ct.clone();
                bad[byte] ^= 1 << bit;
                assert!(
                    ring.decrypt(&bad, &binding()).is_err(),
                    "flipping bit {bit} of byte {byte} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn truncated_ciphertext_fails() {
        let ring = ring();
        let ct = ring.encrypt(b"secret", &binding()).unwrap();
        for len in 0..ct.len() {
            assert!(
                ring.decrypt(&ct[..len], &binding()).is_err(),
                "length {len}"
            );
        }
        assert_eq!(ring.decrypt(&[], &binding()), Err(CryptoError::Truncated));
        assert_eq!(
            ring.decrypt(&ct[..10], &binding()),
            Err(CryptoError::Truncated)
        );
        let mut v2 = ct.clone();
        v2[0] = 2;
        assert_eq!(
            ring.decrypt(&v2, &binding()),
            Err(CryptoError::UnsupportedVersion(2))
        );
    }

    #[test]
    fn ciphertext_bound_to_tenant_row_and_field() {
        let ring = ring();
        let (tenant, app) = (TenantId(Uuid::from_u128(1)), AppUuid(Uuid::from_u128(2)));
        let ct = ring
            .encrypt(b"secret", &Binding::app_secret(tenant, app))
            .unwrap();
        for other in [
            Binding::app_secret(TenantId(Uuid::from_u128(9)), app),
            Binding::app_secret(tenant, AppUuid(Uuid::from_u128(9))),
            Binding::secondary_app_secret(tenant, app),
            Binding::access_token(tenant, app),
            Binding::key_check(),
        ] {
            assert_eq!(ring.decrypt(&ct, &other), Err(CryptoError::Tampered));
        }
    }

    #[test]
    fn unknown_key_id_is_named() {
        let ct = ring().encrypt_under("k2", b"s", &binding()).unwrap();
        let only_k1 = KeyRing::parse(K1).unwrap();
        let err = only_k1.decrypt(&ct, &binding()).unwrap_err();
        assert_eq!(err, CryptoError::UnknownKeyId("k2".into()));
        assert!(err.to_string().contains("'k2'"), "{err}");
    }

    #[test]
    fn same_key_under_another_id_does_not_decrypt() {
        // The id is authenticated: relabelling a key does not open old rows.
        let ct = KeyRing::parse(K1)
            .unwrap()
            .encrypt(b"s", &binding())
            .unwrap();
        let relabelled = KeyRing::parse(&K1.replace("k1:", "k9:")).unwrap();
        let mut moved = ct.clone();
        moved[3] = b'9';
        assert_eq!(
            relabelled.decrypt(&moved, &binding()),
            Err(CryptoError::Tampered)
        );
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let short = format!("k1:{}", BASE64.encode([7u8; 31]));
        let cases: Vec<(String, Option<&str>, &str)> = vec![
            (String::new(), None, "no master key"),
            (" , \n# comment\n".into(), None, "no master key"),
            ("k1".into(), None, "entry 1 is not of the form"),
            (format!("{K1},Bad_Id:AAAA"), None, "entry 2: a key id"),
            (format!(":{}", &K1[3..]), None, "entry 1: a key id"),
            (
                "k1:not base64!!".into(),
                None,
                "key 'k1' is not valid standard base64",
            ),
            (short, None, "key 'k1' is 31 bytes long"),
            (format!("{K1},{K2},{K1}"), None, "key id 'k1' appears twice"),
            (
                format!("{K1},{K2}"),
                Some("k3"),
                "active key id 'k3' is not in the key ring (ids: k1, k2)",
            ),
        ];
        for (text, active, expected) in cases {
            let err = KeyRing::parse_with_active(&text, active)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(!err.contains("AAECAw"), "key material in error: {err}");
        }
    }

    #[test]
    fn key_file_format_with_comments_and_active() {
        let text = format!("# keys\n{K1}\n\n  {K2}  \n");
        let ring = KeyRing::parse_with_active(&text, Some("k2")).unwrap();
        assert_eq!(ring.active_id(), "k2");
        assert_eq!(ring.ids().collect::<Vec<_>>(), ["k2", "k1"]);
    }

    #[test]
    fn debug_shows_ids_only() {
        let debug = format!("{:?}", ring());
        assert_eq!(debug, r#"KeyRing { active: "k1", ids: ["k1", "k2"] }"#);
    }

    #[test]
    fn generated_entries_parse_and_differ() {
        let a = generate_entry("new").unwrap();
        let b = generate_entry("new").unwrap();
        assert_ne!(*a, *b);
        assert_eq!(KeyRing::parse(&a).unwrap().active_id(), "new");
    }

    #[test]
    fn generated_key_file_is_private_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        generate_key_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let first = std::fs::read_to_string(&path).unwrap();
        assert!(first.contains("BACK THIS FILE UP"));
        generate_key_file(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
        let ring = read_key_file(&path, KeySource::DataDir(path.clone()), None).unwrap();
        assert!(ring.active_id().starts_with('k'));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    proptest! {
        #[test]
        fn round_trip_any_plaintext(plaintext in prop::collection::vec(any::<u8>(), 0..=4096)) {
            let ring = ring();
            let ct = ring.encrypt(&plaintext, &binding()).unwrap();
            prop_assert_eq!(&**ring.decrypt(&ct, &binding()).unwrap(), plaintext.as_slice());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            prop_assert!(ring().decrypt(&bytes, &binding()).is_err());
        }
    }

    #[test]
    fn edge_lengths_round_trip() {
        let ring = ring();
        for len in [0, 1, 4096] {
            let plaintext = vec![0xA5; len];
            let ct = ring.encrypt(&plaintext, &binding()).unwrap();
            assert_eq!(
                &**ring.decrypt(&ct, &binding()).unwrap(),
                plaintext.as_slice()
            );
        }
    }
}
