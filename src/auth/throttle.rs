//! Login throttling per account and per client address (`governor`).

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Limits on sign-in (and sign-up) attempts.
pub struct LoginThrottle {
    per_account: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginThrottle")
    }
}

impl LoginThrottle {
    /// At most `per_account` attempts a minute for one email and
    /// `per_address` a minute from one client address.
    pub fn new(per_account: NonZeroU32, per_address: NonZeroU32) -> Self {
        Self {
            per_account: RateLimiter::keyed(Quota::per_minute(per_account)),
            per_address: RateLimiter::keyed(Quota::per_minute(per_address)),
            clock: DefaultClock::default(),
        }
    }

    /// Count an attempt; `Err(seconds)` when it must wait that long.
    pub fn check(&self, address: Option<IpAddr>, account: Option<&str>) -> Result<(), u64> {
        let wait = |nu: governor::NotUntil<_>| nu.wait_time_from(self.clock.now()).as_secs() + 1;
        if let Some(ip) = address {
            self.per_address.check_key(&ip).map_err(wait)?;
        }
        if let Some(account) = account {
            self.per_account
                .check_key(&account.to_string())
                .map_err(wait)?;
        }
        Ok(())
    }

    /// Forget keys that are back to a full quota (bounded memory).
    pub fn prune(&self) {
        self.per_account.retain_recent();
        self.per_address.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_each_account_and_address() {
        let t = LoginThrottle::new(NonZeroU32::new(2).unwrap(), NonZeroU32::new(3).unwrap());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(t.check(Some(ip), Some("a@x.io")).is_ok());
        assert!(t.check(Some(ip), Some("a@x.io")).is_ok());
        let wait = t.check(Some(ip), Some("a@x.io")).unwrap_err();
        assert!((1..=31).contains(&wait), "{wait}");
        // The address has used its 3 attempts.
        assert!(t.check(Some(ip), Some("b@x.io")).is_err());
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(t.check(Some(other), Some("b@x.io")).is_ok());
    }
}
