//! On-demand refreshes in flight: bounded per replica and per organisation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::domain::TenantId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bounds on on-demand refreshes: a replica-wide semaphore and one per
/// organisation, so a tenant whose apps all need refreshing (or all fail)
/// leaves slots, and database connections, to everyone else.
pub struct OnDemandSlots {
    replica: Arc<Semaphore>,
    per_tenant: usize,
    tenants: Mutex<HashMap<TenantId, Arc<Semaphore>>>,
}

/// A held on-demand slot (both permits), released on drop.
pub struct OnDemandSlot {
    _tenant: OwnedSemaphorePermit,
    _replica: OwnedSemaphorePermit,
}

impl OnDemandSlots {
    /// `replica` slots in all, `per_tenant` for one organisation.
    pub fn new(replica: usize, per_tenant: usize) -> Self {
        Self {
            replica: Arc::new(Semaphore::new(replica.max(1))),
            per_tenant: per_tenant.max(1),
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for `tenant_id`, waiting at most `wait`; `None` if none freed up.
    pub async fn acquire(&self, tenant_id: TenantId, wait: Duration) -> Option<OnDemandSlot> {
        let tenant = self.tenant(tenant_id);
        tokio::time::timeout(wait, async {
            let tenant = tenant.acquire_owned().await.ok()?;
            let replica = Arc::clone(&self.replica).acquire_owned().await.ok()?;
            Some(OnDemandSlot {
                _tenant: tenant,
                _replica: replica,
            })
        })
        .await
        .ok()
        .flatten()
    }

    fn tenant(&self, tenant_id: TenantId) -> Arc<Semaphore> {
        let mut tenants = self
            .tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if tenants.len() > 10_000 {
            // Bounded: forget organisations with nothing in flight.
            let full = self.per_tenant;
            tenants.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < full);
        }
        Arc::clone(
            tenants
                .entry(tenant_id)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_tenant_cannot_take_every_slot() {
        let slots = OnDemandSlots::new(3, 2);
        let (a, b) = (TenantId::new(), TenantId::new());
        let short = Duration::from_millis(20);
        let a1 = slots.acquire(a, short).await.expect("first");
        let _a2 = slots.acquire(a, short).await.expect("second");
        assert!(
            slots.acquire(a, short).await.is_none(),
            "a third for the same tenant waits"
        );
        let _b1 = slots
            .acquire(b, short)
            .await
            .expect("another tenant still gets one");
        assert!(
            slots.acquire(b, short).await.is_none(),
            "the replica's three are taken"
        );
        drop(a1);
        assert!(
            slots.acquire(b, short).await.is_some(),
            "freed slots come back"
        );
    }
}
