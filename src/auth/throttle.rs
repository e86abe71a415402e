//! Throttles (`governor`): sign-in attempts, and failed API key
//! authentications. Every per-address count is kept per [`ThrottleKey`]
//! (an IPv4 address, or an IPv6 /64).
//!
//! Sign-in is limited so that nobody can lock someone else out:
//!
//! - per client address: at most `per_address` attempts a minute (sign-in,
//!   sign-up, joining), then 429;
//! - per account *and* client address: at most `per_account` attempts a
//!   minute, then 429 — a stranger guessing someone's password from one
//!   address runs into this, the owner at another address does not;
//! - per account from everywhere: past `per_account` attempts a minute,
//!   each further attempt is *slowed down* (by at most
//!   [`MAX_SIGNIN_DELAY`]) instead of refused, so the owner with the right
//!   password still gets in while a distributed guesser is held back.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock as _, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use prometheus_client::metrics::counter::Counter;

pub use crate::domain::client::ThrottleKey;

/// Longest delay a sign-in gets for its account's attempts from everywhere.
pub const MAX_SIGNIN_DELAY: Duration = Duration::from_secs(2);

/// Limits on sign-in (and sign-up) attempts.
pub struct LoginThrottle {
    per_address: DefaultKeyedRateLimiter<ThrottleKey>,
    per_account_address: DefaultKeyedRateLimiter<(String, Option<ThrottleKey>)>,
    per_account: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginThrottle")
    }
}

impl LoginThrottle {
    /// At most `per_account` attempts a minute for one email from one
    /// client address (and that many before slowing down from everywhere),
    /// and `per_address` a minute from one client address.
    pub fn new(per_account: NonZeroU32, per_address: NonZeroU32) -> Self {
        Self {
            per_address: RateLimiter::keyed(Quota::per_minute(per_address)),
            per_account_address: RateLimiter::keyed(Quota::per_minute(per_account)),
            per_account: RateLimiter::keyed(Quota::per_minute(per_account)),
            clock: DefaultClock::default(),
        }
    }

    /// Count an attempt against the hard limits (the address, and the
    /// account from this address); `Err(seconds)` when it must wait that long.
    pub fn check(&self, address: Option<IpAddr>, account: Option<&str>) -> Result<(), u64> {
        let wait = |nu: governor::NotUntil<_>| nu.wait_time_from(self.clock.now()).as_secs() + 1;
        let address = address.map(ThrottleKey::from);
        if let Some(key) = &address {
            self.per_address.check_key(key).map_err(wait)?;
        }
        if let Some(account) = account {
            self.per_account_address
                .check_key(&(account.to_string(), address))
                .map_err(wait)?;
        }
        Ok(())
    }

    /// How long an attempt on `account` is held back because of the
    /// account's attempts from every address (zero within its quota;
    /// never more than [`MAX_SIGNIN_DELAY`]). Counts the attempt.
    pub fn account_delay(&self, account: &str) -> Duration {
        match self.per_account.check_key(&account.to_string()) {
            Ok(()) => Duration::ZERO,
            Err(nu) => nu.wait_time_from(self.clock.now()).min(MAX_SIGNIN_DELAY),
        }
    }

    /// Wait out [`Self::account_delay`].
    pub async fn slow_down(&self, account: &str) {
        let delay = self.account_delay(account);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }

    /// Forget keys that are back to a full quota (bounded memory).
    pub fn prune(&self) {
        self.per_address.retain_recent();
        self.per_account_address.retain_recent();
        self.per_account.retain_recent();
    }
}

/// Most client addresses remembered as blocked at once.
const MAX_BLOCKED: usize = 100_000;

/// Failed API key authentications per client address. An address that used
/// up its budget is refused *before* the key is looked at, so a flood of
/// made-up keys costs neither database lookups nor hashing.
pub struct KeyAuthThrottle {
    failures: RateLimiter<
        ThrottleKey,
        governor::state::keyed::DefaultKeyedStateStore<ThrottleKey>,
        DefaultClock,
        StateInformationMiddleware,
    >,
    /// Addresses out of budget, and until when.
    blocked: Mutex<HashMap<ThrottleKey, Instant>>,
    /// Requests refused for it (metric).
    pub refused: Counter,
}

impl std::fmt::Debug for KeyAuthThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyAuthThrottle")
    }
}

impl KeyAuthThrottle {
    /// At most `per_minute` failures a minute from one client address.
    pub fn new(per_minute: NonZeroU32) -> Self {
        Self {
            failures: RateLimiter::keyed(Quota::per_minute(per_minute))
                .with_middleware::<StateInformationMiddleware>(),
            blocked: Mutex::new(HashMap::new()),
            refused: Counter::default(),
        }
    }

    /// `Err(seconds to wait)` when `address` has no failures left; nothing
    /// is counted.
    pub fn admit(&self, address: Option<IpAddr>) -> Result<(), u64> {
        let Some(key) = address.map(ThrottleKey::from) else {
            return Ok(());
        };
        let now = Instant::now();
        let until = self
            .blocked
            .lock()
            .ok()
            .and_then(|blocked| blocked.get(&key).copied())
            .filter(|until| *until > now);
        match until {
            Some(until) => {
                self.refused.inc();
                Err(seconds_until(until, now))
            }
            None => Ok(()),
        }
    }

    /// Count a failed authentication from `address`; once its budget is
    /// used up, the address is refused by [`Self::admit`] until a failure
    /// is allowed again.
    pub fn record_failure(&self, address: Option<IpAddr>) {
        let Some(key) = address.map(ThrottleKey::from) else {
            return;
        };
        let now = Instant::now();
        let until = match self.failures.check_key(&key) {
            Ok(state) if state.remaining_burst_capacity() == 0 => {
                now + state.quota().replenish_interval()
            }
            Ok(_) => return,
            Err(nu) => now + nu.wait_time_from(DefaultClock::default().now()),
        };
        if let Ok(mut blocked) = self.blocked.lock() {
            if blocked.len() >= MAX_BLOCKED {
                blocked.retain(|_, t| *t > now);
            }
            if blocked.len() < MAX_BLOCKED {
                blocked.insert(key, until);
            }
        }
    }

    /// Forget what is over (bounded memory).
    pub fn prune(&self) {
        self.failures.retain_recent();
        let now = Instant::now();
        if let Ok(mut blocked) = self.blocked.lock() {
            blocked.retain(|_, t| *t > now);
        }
    }
}

fn seconds_until(until: Instant, now: Instant) -> u64 {
    let left = until.duration_since(now);
    let whole = left.as_secs();
    (whole + u64::from(left.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn limits_each_address_and_each_account_per_address() {
        let t = LoginThrottle::new(NonZeroU32::new(2).unwrap(), NonZeroU32::new(3).unwrap());
        let a = Some(ip("192.0.2.1"));
        assert!(t.check(a, Some("a@x.io")).is_ok());
        assert!(t.check(a, Some("a@x.io")).is_ok());
        let wait = t.check(a, Some("a@x.io")).unwrap_err();
        assert!((1..=31).contains(&wait), "{wait}");
        // The address has used its 3 attempts.
        assert!(t.check(a, Some("b@x.io")).is_err());
        // The same account from elsewhere is not locked out.
        let b = Some(ip("192.0.2.2"));
        assert!(t.check(b, Some("a@x.io")).is_ok());
        assert!(t.check(b, Some("b@x.io")).is_ok());
    }

    #[test]
    fn ipv6_addresses_of_one_64_share_a_budget() {
        let t = LoginThrottle::new(NonZeroU32::new(100).unwrap(), NonZeroU32::new(2).unwrap());
        assert!(t.check(Some(ip("2001:db8::1")), None).is_ok());
        assert!(t.check(Some(ip("2001:db8::2")), None).is_ok());
        assert!(t.check(Some(ip("2001:db8::ffff:3")), None).is_err());
        assert!(t.check(Some(ip("2001:db8:0:1::1")), None).is_ok());
    }

    #[test]
    fn the_account_from_everywhere_is_slowed_down_not_refused() {
        let t = LoginThrottle::new(NonZeroU32::new(2).unwrap(), NonZeroU32::new(100).unwrap());
        assert_eq!(t.account_delay("a@x.io"), Duration::ZERO);
        assert_eq!(t.account_delay("a@x.io"), Duration::ZERO);
        let delay = t.account_delay("a@x.io");
        assert!(
            delay > Duration::ZERO && delay <= MAX_SIGNIN_DELAY,
            "{delay:?}"
        );
        assert_eq!(t.account_delay("b@x.io"), Duration::ZERO);
    }

    #[test]
    fn failed_key_authentications_block_the_address_after_the_budget() {
        let t = KeyAuthThrottle::new(NonZeroU32::new(3).unwrap());
        let a = Some(ip("198.51.100.7"));
        for _ in 0..3 {
            assert!(t.admit(a).is_ok());
            t.record_failure(a);
        }
        let wait = t.admit(a).unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert_eq!(t.refused.get(), 1);
        // Admitting counts nothing: still blocked, not longer.
        assert!(t.admit(a).unwrap_err() <= wait);
        assert!(t.admit(Some(ip("198.51.100.8"))).is_ok());
        // One /64 is one address.
        let v6 = Some(ip("2001:db8::1"));
        for _ in 0..3 {
            t.record_failure(v6);
        }
        assert!(t.admit(Some(ip("2001:db8::abcd"))).is_err());
        assert!(t.admit(None).is_ok());
        t.prune();
        assert!(t.admit(a).is_err(), "pruning keeps live blocks");
    }
}
