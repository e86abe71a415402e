//! API keys: generation, verification with a per-replica cache, and
//! last-use recording without a database write per request.
//!
//! A key looks like `tvk_<8 chars>_<43 chars>`. The first part is the prefix,
//! shown in lists and used to find the row; the whole key is verified against
//! its SHA-256. Verified keys are cached for a short while; revocation evicts
//! them on every replica through LISTEN/NOTIFY, and the cache is cleared
//! whenever the notification connection is lost (both by the key-revocation
//! job, `crate::jobs`), so correctness never rests on the cache.
//!
//! A verification reads the key's row, then caches it. A revocation that
//! commits between the two would be evicted before the entry exists, and
//! the revoked key would keep working from the cache. So every eviction
//! bumps a generation counter under the cache's lock, and a verification
//! caches its row only if no eviction happened since it started to read:
//! otherwise it answers this one request (its read came first) and leaves
//! the next to the database.
//!
//! Keys found unknown or revoked are remembered too, for a short while and
//! in bounded memory ([`RefusedKeys`]), so repeating a bad key costs no
//! database lookup. A remembered refusal can only refuse: a key is admitted
//! only by the positive cache or the database. Malformed keys are refused
//! by their shape, before either cache.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use prometheus_client::metrics::counter::Counter;
use rand::Rng as _;
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::PgPool;

use crate::db;
use crate::domain::credential as token;
use crate::domain::{ApiKeyId, AppUuid, AuditAction, TenantId};

/// Channel on which revocations are announced to every replica.
pub const REVOCATION_CHANNEL: &str = "tokenvault_api_keys";
/// How long a verified key is trusted without asking the database again
/// (a backstop: revocations arrive by notification well before).
const CACHE_TTL: Duration = Duration::from_secs(60);
/// Largest number of cached keys.
const CACHE_CAPACITY: usize = 100_000;

/// An authenticated API key.
#[derive(Debug, Clone)]
pub struct KeyPrincipal {
    /// Key id.
    pub key_id: ApiKeyId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Read-only keys may not change anything.
    pub read_only: bool,
    /// Whether the key is limited to `app_ids` (then possibly to none, when
    /// its apps were deleted) rather than open to every app of the tenant.
    pub limited: bool,
    /// App ids it is limited to.
    pub app_ids: Arc<[AppUuid]>,
    /// Token reads made with this key since they were last written to the
    /// audit log (shared by every clone of the cached principal).
    pub token_reads: Arc<AtomicU64>,
    /// The key's token-read rate limit (one bucket per key on this replica).
    pub read_limit: Arc<DefaultDirectRateLimiter>,
    /// Invalidation reports refused since they were last written to the
    /// audit log (aggregated like reads: a looping client writes one row a minute).
    pub refused_reports: Arc<AtomicU64>,
}

impl KeyPrincipal {
    /// Count a token read for the audit log (aggregated, not a row per read).
    pub fn count_token_read(&self) {
        self.token_reads.fetch_add(1, Ordering::Relaxed);
    }

    /// Take one token read from the key's rate limit; `Err` with the time
    /// to wait when the key reads faster than allowed.
    pub fn admit_read(&self) -> Result<(), Duration> {
        self.read_limit
            .check()
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Count an invalidation report the gate refused, for the audit log.
    pub fn count_refused_report(&self) {
        self.refused_reports.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the key may use app `app_id`.
    pub fn allows_app(&self, app_id: AppUuid) -> bool {
        !self.limited || self.app_ids.contains(&app_id)
    }
}

/// A freshly generated key: shown once, then only its hash is kept.
pub struct NewKey {
    /// The whole key (secret).
    pub key: SecretString,
    /// Its visible prefix.
    pub prefix: String,
    /// SHA-256 of the whole key.
    pub hash: [u8; 32],
}

/// Generate a new key.
pub fn generate() -> NewKey {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    let tag: String = (0..8)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    let prefix = format!("tvk_{tag}");
    let key = format!("{prefix}_{}", token::random_token(32));
    let hash = token::hash(&key);
    NewKey {
        key: SecretString::from(key),
        prefix,
        hash,
    }
}

/// The prefix of a well-formed key, or `None` for anything else.
fn prefix_of(key: &str) -> Option<&str> {
    let prefix = key.get(..12)?;
    let rest = key.get(12..)?;
    let well_formed = prefix.starts_with("tvk_")
        && prefix[4..].bytes().all(|b| b.is_ascii_alphanumeric())
        && rest.len() == 44
        && rest.starts_with('_')
        && rest[1..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then_some(prefix)
}

struct CachedKey {
    principal: KeyPrincipal,
    verified_at: Instant,
    /// Unix seconds of the last use, and of the last use written to the database.
    last_used: AtomicI64,
    flushed: AtomicI64,
}

/// Token-read rate limits per key: one bucket per key id, kept when the
/// key is verified again, so re-verification never refills it.
pub struct ReadLimits {
    quota: Quota,
    buckets: Mutex<HashMap<ApiKeyId, Arc<DefaultDirectRateLimiter>>>,
}

impl ReadLimits {
    /// `per_second` reads a second per key, twice as many in a burst.
    pub fn new(per_second: NonZeroU32) -> Self {
        let burst = per_second.saturating_mul(NonZeroU32::MIN.saturating_add(1));
        Self {
            quota: Quota::per_second(per_second).allow_burst(burst),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The bucket of `key_id`.
    fn bucket(&self, key_id: ApiKeyId) -> Arc<DefaultDirectRateLimiter> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= CACHE_CAPACITY {
            // Bounded: keep the buckets of keys still cached.
            buckets.retain(|_, b| Arc::strong_count(b) > 1);
        }
        Arc::clone(
            buckets
                .entry(key_id)
                .or_insert_with(|| Arc::new(RateLimiter::direct(self.quota))),
        )
    }
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self::new(NonZeroU32::new(500).unwrap_or(NonZeroU32::MIN))
    }
}

/// Verifies keys, caching the verified ones.
#[derive(Default)]
pub struct KeyVerifier {
    /// Token-read rate limits per key.
    pub reads: ReadLimits,
    cache: RwLock<HashMap<[u8; 32], Arc<CachedKey>>>,
    /// Evictions so far: bumped under the cache's write lock by
    /// [`Self::evict`] and [`Self::clear`], read before a database lookup.
    generation: AtomicU64,
    /// Keys recently found unknown or revoked.
    pub refused: RefusedKeys,
    /// Keys looked up in the database (metric).
    pub lookups: Counter,
}

impl std::fmt::Debug for KeyVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyVerifier")
    }
}

impl KeyVerifier {
    /// A verifier whose keys may each read `per_second` tokens a second.
    pub fn with_read_rate(per_second: NonZeroU32) -> Self {
        Self {
            reads: ReadLimits::new(per_second),
            ..Self::default()
        }
    }

    /// The principal for `key`, or `None` if it is malformed, unknown or revoked.
    pub async fn verify(
        &self,
        pool: &PgPool,
        key: &SecretString,
    ) -> Result<Option<KeyPrincipal>, sqlx::Error> {
        let key = key.expose_secret();
        if let Some(hit) = self.verify_cached(key) {
            return Ok(Some(hit));
        }
        let Some(prefix) = prefix_of(key) else {
            return Ok(None);
        };
        let hash = token::hash(key);
        if self.refused.contains(&hash) {
            return Ok(None);
        }
        let now = Utc::now().timestamp();
        self.lookups.inc();
        // Read before the row: an eviction after this point forbids caching it.
        let generation = self.generation();
        let Some(row) = db::api_keys::by_prefix(pool, prefix).await? else {
            self.refused.insert(hash);
            return Ok(None);
        };
        if row.revoked_at.is_some() || !token::constant_time_eq(&row.key_hash, &hash) {
            self.refused.insert(hash);
            return Ok(None);
        }
        let principal = KeyPrincipal {
            key_id: row.id,
            tenant_id: row.tenant_id,
            read_only: row.read_only,
            limited: row.limited_to_apps,
            app_ids: row.app_ids.into(),
            token_reads: Arc::new(AtomicU64::new(0)),
            read_limit: self.reads.bucket(row.id),
            refused_reports: Arc::new(AtomicU64::new(0)),
        };
        self.remember(hash, principal.clone(), now, generation);
        Ok(Some(principal))
    }

    /// The eviction generation now: pass it to [`Self::remember`] after
    /// reading a key's row.
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Cache a principal read from the database when the generation was
    /// `seen`, unless a key was evicted since (then the row may predate a
    /// revocation, and it is not cached); whether it was cached.
    fn remember(&self, hash: [u8; 32], principal: KeyPrincipal, now: i64, seen: u64) -> bool {
        let entry = Arc::new(CachedKey {
            principal,
            verified_at: Instant::now(),
            last_used: AtomicI64::new(now),
            flushed: AtomicI64::new(0),
        });
        let Ok(mut cache) = self.cache.write() else {
            return false;
        };
        // Evictions bump the generation while holding this lock, so no
        // eviction can slip between this check and the insert.
        if self.generation.load(Ordering::Acquire) != seen {
            return false;
        }
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(hash, entry);
        true
    }

    /// The principal for `key` if it was verified recently (no database);
    /// `None` says nothing about the key: ask [`Self::verify`].
    pub fn verify_cached(&self, key: &str) -> Option<KeyPrincipal> {
        prefix_of(key)?;
        let hit = self.cached(&token::hash(key))?;
        hit.last_used
            .fetch_max(Utc::now().timestamp(), Ordering::Relaxed);
        Some(hit.principal.clone())
    }

    fn cached(&self, hash: &[u8; 32]) -> Option<Arc<CachedKey>> {
        let cache = self.cache.read().ok()?;
        let hit = cache.get(hash)?;
        (hit.verified_at.elapsed() < CACHE_TTL).then(|| Arc::clone(hit))
    }

    /// Forget a key (it was revoked or changed).
    pub fn evict(&self, key_id: ApiKeyId) {
        let mut cache = self
            .cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        cache.retain(|_, v| v.principal.key_id != key_id);
    }

    /// Forget every key (notifications may have been missed).
    pub fn clear(&self) {
        let mut cache = self
            .cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        cache.clear();
    }

    /// Write one `token.read` audit entry per key with the number of token
    /// reads since the previous call, and one `token.invalidate_refused`
    /// with the number of refused invalidation reports (keeps the audit log
    /// small however often a client loops); `period_seconds` is how often
    /// this is called.
    pub async fn flush_token_reads(
        &self,
        pool: &PgPool,
        period_seconds: u64,
    ) -> Result<(), sqlx::Error> {
        let counts: Vec<(ApiKeyId, TenantId, u64, u64)> = match self.cache.read() {
            Ok(cache) => cache
                .values()
                .map(|e| {
                    let p = &e.principal;
                    (
                        p.key_id,
                        p.tenant_id,
                        p.token_reads.swap(0, Ordering::Relaxed),
                        p.refused_reports.swap(0, Ordering::Relaxed),
                    )
                })
                .filter(|c| c.2 > 0 || c.3 > 0)
                .collect(),
            Err(_) => return Ok(()),
        };
        for (key_id, tenant_id, reads, refused) in counts {
            for (action, count) in [
                (AuditAction::TokenRead, reads),
                (AuditAction::TokenInvalidateRefused, refused),
            ] {
                if count == 0 {
                    continue;
                }
                db::audit::record(
                    pool,
                    db::audit::AuditEvent {
                        tenant_id: Some(tenant_id),
                        actor_api_key_id: Some(key_id),
                        detail: serde_json::json!({ "count": count, "period_seconds": period_seconds }),
                        ..db::audit::AuditEvent::new(action)
                    },
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Write the last-use times gathered since the previous flush.
    pub async fn flush_last_used(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let pending: Vec<(ApiKeyId, i64, Arc<CachedKey>)> = match self.cache.read() {
            Ok(cache) => cache
                .values()
                .filter_map(|e| {
                    let used = e.last_used.load(Ordering::Relaxed);
                    (used > e.flushed.load(Ordering::Relaxed))
                        .then(|| (e.principal.key_id, used, Arc::clone(e)))
                })
                .collect(),
            Err(_) => return Ok(()),
        };
        if pending.is_empty() {
            return Ok(());
        }
        let ids: Vec<ApiKeyId> = pending.iter().map(|p| p.0).collect();
        let times: Vec<DateTime<Utc>> = pending
            .iter()
            .map(|p| DateTime::from_timestamp(p.1, 0).unwrap_or_else(Utc::now))
            .collect();
        db::api_keys::record_last_used(pool, &ids, &times).await?;
        for (_, used, entry) in pending {
            entry.flushed.fetch_max(used, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// How long a refused key is remembered.
const REFUSED_TTL: Duration = Duration::from_secs(30);
/// Most refused keys remembered.
const REFUSED_CAPACITY: usize = 50_000;

/// Keys recently found unknown or revoked (by SHA-256, never the key):
/// bounded, short-lived, and only ever a reason to refuse.
#[derive(Default)]
pub struct RefusedKeys {
    entries: std::sync::Mutex<HashMap<[u8; 32], Instant>>,
    /// Refusals answered from here (metric).
    pub hits: Counter,
}

impl RefusedKeys {
    /// Whether the key with this hash was refused within the TTL.
    pub fn contains(&self, hash: &[u8; 32]) -> bool {
        let hit = self
            .entries
            .lock()
            .ok()
            .and_then(|entries| entries.get(hash).copied())
            .is_some_and(|at| at.elapsed() < REFUSED_TTL);
        if hit {
            self.hits.inc();
        }
        hit
    }

    /// Remember a refused key; when full, expired entries go first, and
    /// if none has expired, all of them (memory stays bounded).
    pub fn insert(&self, hash: [u8; 32]) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= REFUSED_CAPACITY {
                entries.retain(|_, at| at.elapsed() < REFUSED_TTL);
                if entries.len() >= REFUSED_CAPACITY {
                    entries.clear();
                }
            }
            entries.insert(hash, Instant::now());
        }
    }

    /// Drop expired entries.
    pub fn prune(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, at| at.elapsed() < REFUSED_TTL);
        }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_hash() {
        let k = generate();
        let key = k.key.expose_secret();
        assert_eq!(prefix_of(key), Some(k.prefix.as_str()));
        assert_eq!(token::hash(key), k.hash);
        assert!(!format!("{:?}", k.key).contains(&key[12..]));
    }

    #[test]
    fn malformed_keys_have_no_prefix() {
        for bad in [
            "",
            "tvk_",
            "Bearer x",
            "tvk_abcdefgh",
            "tvk_abcdefgh_short",
            "xxx_abcdefgh_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "tvk_abcdefgh_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'",
        ] {
            assert_eq!(prefix_of(bad), None, "{bad:?}");
        }
        // Multi-byte input must not panic on slicing.
        assert_eq!(prefix_of("tvk_ééééé_x"), None);
    }

    fn principal(verifier: &KeyVerifier, key_id: ApiKeyId) -> KeyPrincipal {
        KeyPrincipal {
            key_id,
            tenant_id: TenantId::from(uuid::Uuid::new_v4()),
            read_only: false,
            limited: false,
            app_ids: Arc::from(Vec::new()),
            token_reads: Arc::default(),
            read_limit: verifier.reads.bucket(key_id),
            refused_reports: Arc::default(),
        }
    }

    /// The race: a verification reads the row (not yet revoked), the
    /// revocation commits and its notification evicts the key, and only
    /// then does the verification cache what it read. The stale row must
    /// not be cached, or the revoked key works until the entry expires.
    #[test]
    fn a_row_read_before_a_revocation_is_not_cached_after_its_eviction() {
        let verifier = KeyVerifier::default();
        let key = generate();
        let id = ApiKeyId::from(uuid::Uuid::new_v4());
        let seen = verifier.generation();
        // ... the database answers with the row, then the key is revoked:
        verifier.evict(id);
        let cached = verifier.remember(key.hash, principal(&verifier, id), 0, seen);
        assert!(!cached, "a row read before an eviction was cached after it");
        assert!(verifier.verify_cached(key.key.expose_secret()).is_none());

        // Without an eviction in between, the row is cached as before.
        let seen = verifier.generation();
        assert!(verifier.remember(key.hash, principal(&verifier, id), 0, seen));
        assert!(verifier.verify_cached(key.key.expose_secret()).is_some());
        // Clearing (notifications missed) counts as an eviction too.
        let seen = verifier.generation();
        verifier.clear();
        assert!(!verifier.remember(key.hash, principal(&verifier, id), 0, seen));
    }

    #[test]
    fn refused_keys_are_remembered_within_bounds() {
        let refused = RefusedKeys::default();
        let a = token::hash("a");
        assert!(!refused.contains(&a));
        refused.insert(a);
        assert!(refused.contains(&a));
        assert_eq!(refused.hits.get(), 1);
        for i in 0..REFUSED_CAPACITY + 10 {
            refused.insert(token::hash(&i.to_string()));
        }
        assert!(refused.len() <= REFUSED_CAPACITY, "{}", refused.len());
    }
}
