//! Per-replica read cache: decrypted tokens by app, and apps by AppID, so a
//! token read with a cached key touches no database.
//!
//! Entries are dropped when PostgreSQL announces a change of the app's token
//! row (`tokenvault_tokens`), everything is dropped when the notification
//! connection was lost, and no entry is trusted for longer than
//! [`MAX_AGE`]: correctness never rests on the cache, only speed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;

use super::token::{Unavailable, ValidToken};
use crate::domain::{AppUuid, TenantId};

/// Longest time an entry is used without asking the database again.
pub const MAX_AGE: Duration = Duration::from_secs(10);
/// Largest number of entries per map before it is emptied.
const CAPACITY: usize = 200_000;

#[derive(Debug)]
struct Cached<T> {
    value: T,
    at: Instant,
}

/// The cache.
#[derive(Debug, Default)]
pub struct ReadCache {
    tokens: RwLock<HashMap<AppUuid, Cached<Arc<ValidToken>>>>,
    apps: RwLock<HashMap<TenantId, HashMap<String, Cached<AppUuid>>>>,
    /// Apps with no token to hand out until a known time (a failure's
    /// retry time): readers are answered without the database.
    unavailable: RwLock<HashMap<AppUuid, Cached<Unavailable>>>,
}

impl ReadCache {
    /// The cached token of `app_id`, if it lives at least `min_ttl` more.
    pub fn token(&self, app_id: AppUuid, min_ttl: Duration) -> Option<Arc<ValidToken>> {
        let tokens = self.tokens.read().ok()?;
        let hit = tokens.get(&app_id)?;
        let needed = Utc::now() + chrono::Duration::from_std(min_ttl).ok()?;
        (hit.at.elapsed() < MAX_AGE && hit.value.expires_at > needed)
            .then(|| Arc::clone(&hit.value))
    }

    /// Remember the token of `app_id`.
    pub fn put_token(&self, app_id: AppUuid, token: Arc<ValidToken>) {
        if let Ok(mut tokens) = self.tokens.write() {
            if tokens.len() >= CAPACITY {
                tokens.clear();
            }
            tokens.insert(
                app_id,
                Cached {
                    value: token,
                    at: Instant::now(),
                },
            );
        }
    }

    /// Why `app_id` has no token now, if that is known and still holds;
    /// `retry_after` counts down from when it was learnt.
    pub fn unavailable(&self, app_id: AppUuid) -> Option<Unavailable> {
        let map = self.unavailable.read().ok()?;
        let hit = map.get(&app_id)?;
        let age = hit.at.elapsed();
        if age >= MAX_AGE || age >= hit.value.retry_after {
            return None;
        }
        let mut u = hit.value.clone();
        u.retry_after = u
            .retry_after
            .saturating_sub(age)
            .max(Duration::from_secs(1));
        Some(u)
    }

    /// Remember that `app_id` has no token until `why.retry_after` from now.
    pub fn put_unavailable(&self, app_id: AppUuid, why: Unavailable) {
        if let Ok(mut map) = self.unavailable.write() {
            if map.len() >= CAPACITY {
                map.clear();
            }
            map.insert(
                app_id,
                Cached {
                    value: why,
                    at: Instant::now(),
                },
            );
        }
    }

    /// The app id of `appid` in `tenant_id`, if cached.
    pub fn app_id(&self, tenant_id: TenantId, appid: &str) -> Option<AppUuid> {
        let apps = self.apps.read().ok()?;
        let hit = apps.get(&tenant_id)?.get(appid)?;
        (hit.at.elapsed() < MAX_AGE).then_some(hit.value)
    }

    /// The `appid` of app `app_id` of `tenant_id`, if cached (a scan of the
    /// organisation's few apps).
    pub fn appid_of(&self, tenant_id: TenantId, app_id: AppUuid) -> Option<String> {
        let apps = self.apps.read().ok()?;
        apps.get(&tenant_id)?
            .iter()
            .find(|(_, hit)| hit.value == app_id && hit.at.elapsed() < MAX_AGE)
            .map(|(appid, _)| appid.clone())
    }

    /// Remember that `appid` of `tenant_id` is app `app_id`.
    pub fn put_app_id(&self, tenant_id: TenantId, appid: &str, app_id: AppUuid) {
        if let Ok(mut apps) = self.apps.write() {
            if apps.values().map(HashMap::len).sum::<usize>() >= CAPACITY {
                apps.clear();
            }
            apps.entry(tenant_id).or_default().insert(
                appid.to_string(),
                Cached {
                    value: app_id,
                    at: Instant::now(),
                },
            );
        }
    }

    /// Forget what is known of `app_id` (its token row changed or is gone),
    /// or everything when `None` (notifications may have been missed).
    pub fn forget(&self, app_id: Option<AppUuid>) {
        if let Some(id) = app_id {
            if let Ok(mut tokens) = self.tokens.write() {
                tokens.remove(&id);
            }
            if let Ok(mut unavailable) = self.unavailable.write() {
                unavailable.remove(&id);
            }
            if let Ok(mut apps) = self.apps.write() {
                for by_appid in apps.values_mut() {
                    by_appid.retain(|_, v| v.value != id);
                }
            }
        } else {
            if let Ok(mut tokens) = self.tokens.write() {
                tokens.clear();
            }
            if let Ok(mut apps) = self.apps.write() {
                apps.clear();
            }
            if let Ok(mut unavailable) = self.unavailable.write() {
                unavailable.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(expires_in: i64) -> Arc<ValidToken> {
        Arc::new(ValidToken::new(
            crate::secret::AccessToken::from("T".to_string()),
            Utc::now(),
            Utc::now() + chrono::Duration::seconds(expires_in),
            1,
        ))
    }

    #[test]
    fn serves_only_tokens_that_live_long_enough_and_forgets() {
        let cache = ReadCache::default();
        let (app, tenant) = (AppUuid::new(), TenantId::new());
        cache.put_token(app, token(100));
        assert!(cache.token(app, Duration::from_secs(10)).is_some());
        assert!(cache.token(app, Duration::from_secs(200)).is_none());
        cache.put_app_id(tenant, "wx1", app);
        assert_eq!(cache.app_id(tenant, "wx1"), Some(app));
        assert_eq!(cache.app_id(TenantId::new(), "wx1"), None);
        cache.forget(Some(app));
        assert!(cache.token(app, Duration::ZERO).is_none());
        assert_eq!(cache.app_id(tenant, "wx1"), None);
        cache.put_token(app, token(-1));
        assert!(
            cache.token(app, Duration::ZERO).is_none(),
            "expired tokens are never served"
        );
    }
}
