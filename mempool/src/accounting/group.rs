//! [`Group`]: a byte budget shared by consumers of one port or tenant (the memcg analogue).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use super::ChargeError;

/// The usage counter on a line of its own: the group's consumers on different lcores write
/// it, nobody else should pay for that.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Usage {
    bytes: AtomicU64,
}

/// A byte budget (a memory cgroup's socket memory, `mem_cgroup_charge_skmem()`): every charge
/// of its consumers must fit, whether or not they bypass their protocol account.
///
/// Charged in the same page quanta as the protocol accounts, so usage is a multiple of
/// [`PAGE_SIZE`](super::PAGE_SIZE). The limit is exact: a charge succeeds only if usage plus
/// the charge stays at or below it at that moment, and usage never exceeds it. Usage is one
/// shared counter; give each port or tenant its own group rather than one group to all lcores.
/// Created by [`Accounting::group`](super::Accounting::group), which lists it in snapshots.
#[derive(Debug)]
pub struct Group {
    name: Arc<str>,
    limit: AtomicU64,
    usage: Usage,
    failures: AtomicU64,
}

impl Group {
    /// A limit that never refuses.
    pub const UNLIMITED: u64 = u64::MAX;

    pub(crate) fn new(name: &str, limit_bytes: u64) -> Self {
        Group { name: name.into(), limit: AtomicU64::new(limit_bytes), usage: Usage::default(), failures: AtomicU64::new(0) }
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The budget in bytes.
    pub fn limit_bytes(&self) -> u64 {
        self.limit.load(Relaxed)
    }

    /// Changes the budget while the group is in use (memcg's `memory.max` written live): a
    /// charge racing with the change sees the old or the new one; usage above a lowered
    /// budget stays until it is uncharged.
    pub fn set_limit_bytes(&self, limit_bytes: u64) {
        self.limit.store(limit_bytes, Relaxed);
    }

    /// Bytes charged now.
    pub fn usage_bytes(&self) -> u64 {
        self.usage.bytes.load(Relaxed)
    }

    /// Charges refused because they did not fit.
    pub fn failures(&self) -> u64 {
        self.failures.load(Relaxed)
    }

    /// Takes `bytes` if they fit under the limit; otherwise takes nothing and counts a failure.
    pub(crate) fn try_charge(&self, bytes: u64) -> Result<(), ChargeError> {
        let limit = self.limit.load(Relaxed);
        let fits = |usage: u64| usage.checked_add(bytes).filter(|&total| total <= limit);
        match self.usage.bytes.fetch_update(Relaxed, Relaxed, fits) {
            Ok(_) => Ok(()),
            Err(usage) => {
                self.failures.fetch_add(1, Relaxed);
                Err(ChargeError::GroupLimit { group: self.name.clone(), bytes, usage, limit })
            }
        }
    }

    /// Gives back `bytes` taken by [`try_charge`](Self::try_charge).
    pub(crate) fn uncharge(&self, bytes: u64) {
        let before = self.usage.bytes.fetch_sub(bytes, Relaxed);
        debug_assert!(before >= bytes, "group {}: uncharged {bytes} bytes with {before} charged", self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_up_to_the_limit_exactly() {
        let g = Group::new("port0", 10_000);
        g.try_charge(4096).unwrap();
        g.try_charge(4096).unwrap();
        let err = g.try_charge(4096).unwrap_err();
        assert_eq!(err, ChargeError::GroupLimit { group: "port0".into(), bytes: 4096, usage: 8192, limit: 10_000 });
        assert_eq!((g.usage_bytes(), g.failures()), (8192, 1), "a refused charge takes nothing");
        g.try_charge(10_000 - 8192).unwrap();
        assert_eq!(g.usage_bytes(), 10_000, "a charge landing exactly on the limit fits");
        g.uncharge(10_000);
        assert_eq!(g.usage_bytes(), 0);
    }

    #[test]
    fn unlimited_never_refuses_and_never_overflows() {
        let g = Group::new("any", Group::UNLIMITED);
        g.try_charge(u64::MAX - 1).unwrap();
        assert!(g.try_charge(2).is_err(), "an overflowing charge is refused, not wrapped");
        assert_eq!(g.usage_bytes(), u64::MAX - 1);
    }

    #[test]
    fn usage_is_on_its_own_line() {
        assert_eq!(std::mem::align_of::<Usage>(), 128);
    }
}
