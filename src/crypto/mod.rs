//! Secrets at rest: a ring of AES-256-GCM master keys with short ids, and a
//! versioned, self-describing ciphertext bound to the row and field it
//! belongs to.
//!
//! Ciphertext layout: `[version = 1][key id length][key id][nonce: 12][ciphertext + tag: 16]`.
//! The associated data is `b"tokenvault/v1\0" + key id + b"\0" + tenant uuid
//! (16 bytes) + row uuid (16 bytes) + field name`, so a ciphertext copied to
//! another field, row or tenant does not decrypt.

use std::fmt;

use crate::domain::{AlertChannelId, AppUuid, TenantId, TicketType, UserId};
use aes_gcm::aead::{Aead as _, Payload};
use aes_gcm::{Aes256Gcm, KeyInit as _, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::RngCore as _;
use secrecy::SecretString;
use uuid::Uuid;
use zeroize::Zeroizing;

mod key_file;
mod tags;

pub use key_file::{KeyLoadError, KeySource, generate_key_file, read_key_file};

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
    /// `alert_channels.secret_ciphertext`.
    AlertSecret,
    /// `alert_channels.url_ciphertext`.
    AlertUrl,
    /// `app_tickets.ticket_ciphertext` of a `jsapi` ticket.
    JsapiTicket,
    /// `app_tickets.ticket_ciphertext` of a `wx_card` ticket.
    WxCardTicket,
    /// `app_tickets.ticket_ciphertext` of a WeCom `agent_config` ticket.
    AgentConfigTicket,
    /// `mail_outbox.body_ciphertext` (a queued mail's bodies: one-use links).
    MailBody,
    /// `user_totp.secret_ciphertext` (a person's two-factor secret).
    TotpSecret,
}

impl SecretField {
    /// The stable name used in the associated data (never change one).
    pub fn name(self) -> &'static str {
        match self {
            Self::AppSecret => "apps.secret",
            Self::SecondaryAppSecret => "apps.secondary_secret",
            Self::AccessToken => "token_state.access_token",
            Self::KeyCheck => "key_checks.check",
            Self::AlertSecret => "alert_channels.secret",
            Self::AlertUrl => "alert_channels.url",
            Self::JsapiTicket => "app_tickets.jsapi",
            Self::WxCardTicket => "app_tickets.wx_card",
            Self::AgentConfigTicket => "app_tickets.agent_config",
            Self::MailBody => "mail_outbox.body",
            Self::TotpSecret => "user_totp.secret",
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

    /// The signing secret of alert channel `channel_id`.
    pub fn alert_secret(tenant_id: TenantId, channel_id: AlertChannelId) -> Self {
        Self {
            tenant_id: tenant_id.uuid(),
            row_id: channel_id.uuid(),
            field: SecretField::AlertSecret,
        }
    }

    /// The target URL of alert channel `channel_id`.
    pub fn alert_url(tenant_id: TenantId, channel_id: AlertChannelId) -> Self {
        Self {
            tenant_id: tenant_id.uuid(),
            row_id: channel_id.uuid(),
            field: SecretField::AlertUrl,
        }
    }

    /// The ticket of type `ticket_type` of app `app_id`.
    pub fn ticket(tenant_id: TenantId, app_id: AppUuid, ticket_type: TicketType) -> Self {
        Self {
            tenant_id: tenant_id.uuid(),
            row_id: app_id.uuid(),
            field: match ticket_type {
                TicketType::Jsapi => SecretField::JsapiTicket,
                TicketType::WxCard => SecretField::WxCardTicket,
                TicketType::AgentConfig => SecretField::AgentConfigTicket,
            },
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

    /// The bodies of queued mail `mail_id` (not tied to a tenant).
    pub fn mail_body(mail_id: Uuid) -> Self {
        Self {
            tenant_id: Uuid::nil(),
            row_id: mail_id,
            field: SecretField::MailBody,
        }
    }

    /// The two-factor (TOTP) secret of person `user_id` (operators have no
    /// tenant, so it is bound to the person and the field).
    pub fn totp_secret(user_id: UserId) -> Self {
        Self {
            tenant_id: Uuid::nil(),
            row_id: user_id.uuid(),
            field: SecretField::TotpSecret,
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

    /// Keyed hashes of `value` for a lookup index, one per key of the ring
    /// (`(key id, HMAC-SHA256)`, the active key first): an index row stores
    /// the active key's, and a lookup tries them all, so rows made before a
    /// rotation are found while their key is in the ring. The HMAC key is
    /// derived from the master key for this one purpose, never the
    /// encryption key itself.
    pub fn index_hashes(&self, value: &[u8]) -> Vec<(String, [u8; 32])> {
        use hmac::Mac as _;
        use sha2::Digest as _;
        let order =
            std::iter::once(self.active).chain((0..self.keys.len()).filter(|&i| i != self.active));
        order
            .map(|i| {
                let k = &self.keys[i];
                let mut derive = sha2::Sha256::new();
                derive.update(b"tokenvault/index/v1\0");
                derive.update(k.key.as_slice());
                let subkey = Zeroizing::new(<[u8; 32]>::from(derive.finalize()));
                let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&*subkey)
                    .expect("HMAC takes keys of any length");
                mac.update(value);
                (k.id.clone(), <[u8; 32]>::from(mac.finalize().into_bytes()))
            })
            .collect()
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

#[cfg(test)]
mod tests;
