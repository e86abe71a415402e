//! Password hashing with argon2id, off the async threads.
//!
//! Each hash or check holds about 19 MiB and a core for tens of
//! milliseconds, so the service runs at most a few at once
//! ([`PasswordHasher`], `TOKENVAULT_PASSWORD_HASH_CONCURRENCY`): a request
//! waits a short while for its turn and is otherwise answered `busy`, so a
//! flood of sign-ins cannot exhaust memory or starve the token reads.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::Semaphore;

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hasher stayed busy for the whole wait: try again shortly.
    #[error("every password hasher is busy")]
    Busy,
    /// Hashing failed.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<HashError> for crate::error::ApiError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => Self::Busy(1),
            HashError::Failed(e) => Self::Internal(e),
        }
    }
}

/// The service's password hashing: at most `concurrency` at once; a
/// request waits at most `wait` for its turn.
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    wait: Duration,
    /// Hashes and checks running now (metric).
    pub in_flight: Gauge,
    /// The most ever running at once (metric; never above the concurrency).
    pub in_flight_max: Gauge,
    /// Requests answered `busy` (metric).
    pub busy: Counter,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHasher")
    }
}

impl PasswordHasher {
    /// At most `concurrency` hashes at once, each request waiting at most `wait`.
    pub fn new(concurrency: usize, wait: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            wait,
            in_flight: Gauge::default(),
            in_flight_max: Gauge::default(),
            busy: Counter::default(),
        }
    }

    /// Hash a password (see [`hash`]), in turn.
    pub async fn hash(&self, password: SecretString) -> Result<String, HashError> {
        self.run(move || hash_blocking(&password)).await
    }

    /// Verify a password (see [`verify`]), in turn.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        self.run(move || verify_blocking(&password, stored)).await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, HashError> {
        let Ok(Ok(permit)) =
            tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned()).await
        else {
            self.busy.inc();
            return Err(HashError::Busy);
        };
        let in_flight = self.in_flight.clone();
        let running = in_flight.inc() + 1;
        raise_to(&self.in_flight_max, running);
        // The permit goes with the work: it is released when hashing ends,
        // even if the request that asked for it is gone.
        tokio::task::spawn_blocking(move || {
            let result = work();
            in_flight.dec();
            drop(permit);
            result
        })
        .await
        .context("password hashing task failed")?
        .map_err(HashError::Failed)
    }
}

fn raise_to(gauge: &Gauge, value: i64) {
    let atomic: &AtomicI64 = gauge.inner();
    atomic.fetch_max(value, Ordering::Relaxed);
}

/// Hash a password (argon2id with the crate's recommended parameters, PHC
/// string), unbounded: for one-shot commands. The service hashes through
/// its [`PasswordHasher`].
pub async fn hash(password: SecretString) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .context("password hashing task failed")?
}

fn hash_blocking(password: &SecretString) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))
}

/// Verify `password` against `stored`; with no stored hash (unknown account),
/// verify against a dummy hash so the answer takes just as long.
pub async fn verify(password: SecretString, stored: Option<String>) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || verify_blocking(&password, stored))
        .await
        .context("password verification task failed")?
}

fn verify_blocking(password: &SecretString, stored: Option<String>) -> anyhow::Result<bool> {
    let known = stored.is_some();
    let phc = stored.unwrap_or_else(|| dummy_hash().to_string());
    let parsed = PasswordHash::new(&phc)
        .map_err(|e| anyhow::anyhow!("stored password hash is malformed: {e}"))?;
    let ok = Argon2::default()
        .verify_password(password.expose_secret().as_bytes(), &parsed)
        .is_ok();
    Ok(ok && known)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random: String = {
            use rand::Rng as _;
            rand::thread_rng()
                .sample_iter(&rand::distributions::Alphanumeric)
                .take(32)
                .map(char::from)
                .collect()
        };
        hash_blocking(&SecretString::from(random)).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash(SecretString::from("correct horse battery"))
            .await
            .unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(
            verify(SecretString::from("correct horse battery"), Some(h.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify(SecretString::from("wrong horse battery"), Some(h))
                .await
                .unwrap()
        );
        assert!(
            !verify(SecretString::from("anything at all"), None)
                .await
                .unwrap()
        );
    }
}
