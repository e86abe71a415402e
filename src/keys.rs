//! The master key life cycle: loading the key ring, the start-up key check,
//! rotation and status (`tokenvault keys ...`).

use std::fmt::Write as _;

use clap::Subcommand;
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::Settings;
use crate::crypto::{self, Binding, CryptoError, KEY_FILE_NAME, KeyLoadError, KeyRing, KeySource};
use crate::db::secrets::{self, KeyUsage, UNREADABLE};

mod alert_secrets;
mod rotation;
mod totp_secrets;

pub use rotation::rotate;

/// The plaintext of every key check value.
const CHECK_PLAINTEXT: &[u8] = b"tokenvault key check v1";

/// `tokenvault keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Re-encrypt every stored appsecret, token and queued mail under the active key, in
    /// batches, while the service keeps running; safe to interrupt and rerun.
    Rotate {
        /// Rows per transaction.
        #[arg(long = "batch-size", default_value_t = 500, value_name = "N",
              value_parser = clap::value_parser!(u32).range(1..=10_000))]
        batch_size: u32,
    },
    /// Show how many stored rows each master key id protects, and which keys
    /// can be removed from the key ring.
    Status,
    /// Print a new random key ring entry `id:base64key` to standard output.
    Generate {
        /// Id of the new key (1-16 of a-z, 0-9, '-'); default: k + today's date.
        #[arg(long = "id", value_name = "ID", value_parser = parse_key_id)]
        id: Option<String>,
    },
}

fn parse_key_id(value: &str) -> Result<String, String> {
    if crypto::is_valid_key_id(value) {
        Ok(value.to_string())
    } else {
        Err("a key id must be 1 to 16 characters of a-z, 0-9 and '-'".into())
    }
}

/// Why the key ring does not fit the database.
#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    /// Stored secrets name a key the ring lacks.
    #[error(
        "the database holds secrets under master key '{key_id}', which is not in {source_name}: \
         add it back (a key may be removed only once `tokenvault keys status` says it is safe)"
    )]
    MissingKey {
        /// The missing id.
        key_id: String,
        /// Where the ring came from.
        source_name: KeySource,
    },
    /// The ring has the id but not the key the database was written with.
    #[error(
        "master key '{key_id}' in {source_name} is not the key the database's secrets were \
         stored with (its key check value does not decrypt): restore the original key with that id"
    )]
    WrongKey {
        /// The id whose key is wrong.
        key_id: String,
        /// Where the ring came from.
        source_name: KeySource,
    },
    /// The check value could not be made.
    #[error("cannot create the key check value: {0}")]
    Crypto(#[from] CryptoError),
    /// The database failed.
    #[error("cannot read the stored key ids: {0}")]
    Database(#[from] sqlx::Error),
}

/// The key ring configured by the settings, or `None` if none is (and no key
/// file exists in the data directory). Never generates a key.
pub fn load_configured(settings: &Settings) -> Result<Option<(KeyRing, KeySource)>, KeyLoadError> {
    let active = settings.active_key_id.as_deref();
    if let Some(ring) = &settings.master_keys {
        let ring = match active {
            Some(id) => ring
                .with_active(id)
                .map_err(|error| KeyLoadError::Invalid {
                    source_name: KeySource::Setting,
                    error,
                })?,
            None => ring.clone(),
        };
        return Ok(Some((ring, KeySource::Setting)));
    }
    if let Some(path) = &settings.master_key_file {
        let source = KeySource::File(path.clone());
        return crypto::read_key_file(path, source.clone(), active).map(|r| Some((r, source)));
    }
    let path = settings.data_dir.join(KEY_FILE_NAME);
    if path.exists() {
        let source = KeySource::DataDir(path.clone());
        return crypto::read_key_file(&path, source.clone(), active).map(|r| Some((r, source)));
    }
    Ok(None)
}

/// The key ring for `serve` and `keys rotate`: configured, or generated in the
/// data directory for the embedded database; then checked against what the
/// database stores. Never returns a ring that would produce garbage.
pub async fn open_key_ring(settings: &Settings, pool: &PgPool) -> anyhow::Result<KeyRing> {
    let (ring, source) = if let Some(loaded) = load_configured(settings)? {
        loaded
    } else {
        if settings.database_url.is_some() {
            anyhow::bail!(
                "no master key configured: set TOKENVAULT_MASTER_KEYS (or TOKENVAULT_MASTER_KEY_FILE) \
                 to the key ring every replica shares; `tokenvault keys generate` prints a new key. \
                 tokenvault never generates a key of its own for a database given by DATABASE_URL"
            );
        }
        let path = settings.data_dir.join(KEY_FILE_NAME);
        let stored = stored_key_ids(pool).await?;
        if let Some(id) = stored.first() {
            anyhow::bail!(
                "the key file {} is missing but the database holds secrets under master key '{id}': \
                 restore the key file from your backup (or set TOKENVAULT_MASTER_KEYS)",
                path.display()
            );
        }
        crypto::generate_key_file(&path)?;
        let source = KeySource::DataDir(path.clone());
        let ring = crypto::read_key_file(&path, source.clone(), settings.active_key_id.as_deref())?;
        tracing::warn!(
            path = %path.display(),
            "generated a new master key file at {}: BACK IT UP — without it the stored appsecrets \
             and tokens are lost",
            path.display()
        );
        (ring, source)
    };
    check_key_ring(pool, &ring, &source).await?;
    tracing::info!(
        active = ring.active_id(),
        "master keys loaded from {source}: {}",
        ring.ids().collect::<Vec<_>>().join(", ")
    );
    Ok(ring)
}

/// Key ids named by key checks or by any stored ciphertext.
async fn stored_key_ids(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    let mut ids: Vec<String> = secrets::key_checks(pool)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    for usage in secrets::key_usage(pool).await? {
        if usage.key_id != UNREADABLE && !ids.contains(&usage.key_id) {
            ids.push(usage.key_id);
        }
    }
    Ok(ids)
}

/// Check that `ring` can decrypt everything the database stores, then record
/// a check value for the active key if it has none yet.
pub async fn check_key_ring(
    pool: &PgPool,
    ring: &KeyRing,
    source: &KeySource,
) -> Result<(), KeyCheckError> {
    let missing = |key_id: &str| KeyCheckError::MissingKey {
        key_id: key_id.to_string(),
        source_name: source.clone(),
    };
    let wrong = |key_id: &str| KeyCheckError::WrongKey {
        key_id: key_id.to_string(),
        source_name: source.clone(),
    };
    let verify = |key_id: &str, ciphertext: &[u8]| {
        if !ring.contains(key_id) {
            return Err(missing(key_id));
        }
        match ring.decrypt(ciphertext, &Binding::key_check()) {
            Ok(plain) if plain.as_slice() == CHECK_PLAINTEXT => Ok(()),
            _ => Err(wrong(key_id)),
        }
    };
    let checks = secrets::key_checks(pool).await?;
    for (key_id, ciphertext) in &checks {
        verify(key_id, ciphertext)?;
    }
    for usage in secrets::key_usage(pool).await? {
        if usage.key_id == UNREADABLE {
            tracing::warn!(
                rows = usage.total(),
                "some stored ciphertexts are corrupted; `tokenvault keys rotate` lists them"
            );
        } else if !ring.contains(&usage.key_id) {
            return Err(missing(&usage.key_id));
        }
    }
    let active = ring.active_id();
    if !checks.iter().any(|(id, _)| id == active) {
        let check = ring.encrypt(CHECK_PLAINTEXT, &Binding::key_check())?;
        secrets::insert_key_check(pool, active, &check).await?;
        // Another replica may have stored its own check for this id first.
        for (key_id, ciphertext) in secrets::key_checks(pool).await? {
            if key_id == active {
                verify(&key_id, &ciphertext)?;
            }
        }
    }
    Ok(())
}

/// Where a rotation stands, after each batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationProgress {
    /// Rows re-encrypted so far.
    pub done: u64,
    /// Rows that were under another key at the start.
    pub total: u64,
    /// App rows re-encrypted so far.
    pub apps: u64,
    /// Token rows re-encrypted so far.
    pub tokens: u64,
    /// Ticket rows re-encrypted so far.
    pub tickets: u64,
    /// Queued mails re-encrypted so far.
    pub mails: u64,
    /// Rows that could not be decrypted so far.
    pub failed: u64,
}

impl std::fmt::Display for RotationProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rotated {}/{} rows (apps {}, tokens {}",
            self.done, self.total, self.apps, self.tokens
        )?;
        if self.tickets > 0 {
            write!(f, ", tickets {}", self.tickets)?;
        }
        if self.mails > 0 {
            write!(f, ", mails {}", self.mails)?;
        }
        f.write_str(")")?;
        if self.failed > 0 {
            write!(f, ", {} failed", self.failed)?;
        }
        Ok(())
    }
}

/// A row rotation could not re-encrypt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFailure {
    /// The table (`apps`, `token_state`, `app_tickets`, `mail_outbox`,
    /// `alert_channels`, `user_totp`).
    pub table: &'static str,
    /// The row id (the app id for both tables).
    pub id: Uuid,
    /// The column.
    pub column: &'static str,
    /// Why.
    pub error: CryptoError,
}

impl std::fmt::Display for RowFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} ({}): {}",
            self.table, self.id, self.column, self.error
        )
    }
}

/// The outcome of [`rotate`].
#[derive(Debug, Clone, Default)]
pub struct RotationReport {
    /// The last progress reported.
    pub progress: Option<RotationProgress>,
    /// Rows left under other keys because they could not be decrypted.
    pub failures: Vec<RowFailure>,
    /// Whether the caller stopped it before the end.
    pub interrupted: bool,
    /// Old key ids whose check value was removed: they protect nothing now.
    pub released: Vec<String>,
}

/// The `keys status` table: per key id, whether it is active and in the
/// ring, the rows it protects, and what the operator may do with it.
pub fn status_table(usage: &[KeyUsage], checked_ids: &[String], ring: Option<&KeyRing>) -> String {
    let mut ids: Vec<&str> = Vec::new();
    if let Some(ring) = ring {
        ids.extend(ring.ids());
    }
    for id in usage
        .iter()
        .map(|u| u.key_id.as_str())
        .chain(checked_ids.iter().map(String::as_str))
    {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut out = format!(
        "{:<16}  {:<6}  {:<7}  {:>11}  {:>17}  {:>6}  {:>13}  {:>7}  {:>5}  {}\n",
        "key id",
        "active",
        "in ring",
        "app secrets",
        "secondary secrets",
        "tokens",
        "alert secrets",
        "tickets",
        "mails",
        "note"
    );
    for id in ids {
        let u = usage
            .iter()
            .find(|u| u.key_id == id)
            .cloned()
            .unwrap_or_default();
        let active = ring.is_some_and(|r| r.active_id() == id);
        let in_ring = match ring {
            Some(r) if id != UNREADABLE => {
                if r.contains(id) {
                    "yes"
                } else {
                    "no"
                }
            }
            _ => "-",
        };
        let note = if id == UNREADABLE {
            "corrupted ciphertexts: `keys rotate` lists them; re-enter those secrets"
        } else if active {
            "active: new secrets are encrypted with it"
        } else if u.total() == 0 {
            "safe to remove"
        } else if in_ring == "no" {
            "MISSING: add it back to the key ring, these rows cannot be decrypted"
        } else {
            "in use: run `tokenvault keys rotate`"
        };
        let _ = writeln!(
            out,
            "{:<16}  {:<6}  {:<7}  {:>11}  {:>17}  {:>6}  {:>13}  {:>7}  {:>5}  {}",
            id,
            if active { "yes" } else { "" },
            in_ring,
            u.app_secrets,
            u.secondary_secrets,
            u.tokens,
            u.alert_secrets,
            u.tickets,
            u.mails,
            note
        );
    }
    out
}
