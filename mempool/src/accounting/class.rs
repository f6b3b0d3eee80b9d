//! [`ConsumerClass`]: what every consumer of one kind (the TX backlogs, the neighbour queues,
//! the slow path) holds together, and whether that kind bypasses the protocol accounts.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A kind of [`Consumer`](super::Consumer): its name, whether its consumers bypass the
/// protocol accounts (`sk_bypass_prot_mem`), and the bytes they hold together now, at most,
/// and in total. Shared by every lcore (relaxed atomics, touched only when a consumer charges
/// or uncharges, which is off the forwarding fast path).
#[derive(Debug)]
pub struct ConsumerClass {
    name: String,
    bypass: bool,
    bytes: AtomicU64,
    peak_bytes: AtomicU64,
    total_bytes: AtomicU64,
    charges: AtomicU64,
    failures: AtomicU64,
}

impl ConsumerClass {
    pub(super) fn new(name: &str, bypass_prot_mem: bool) -> ConsumerClass {
        ConsumerClass {
            name: name.to_owned(),
            bypass: bypass_prot_mem,
            bytes: AtomicU64::new(0),
            peak_bytes: AtomicU64::new(0),
            total_bytes: AtomicU64::new(0),
            charges: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether its consumers skip the protocol accounts (their groups still apply).
    pub fn bypass_prot_mem(&self) -> bool {
        self.bypass
    }

    /// Bytes its consumers hold charged now.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Relaxed)
    }

    pub(super) fn charged(&self, bytes: u64) {
        let now = self.bytes.fetch_add(bytes, Relaxed) + bytes;
        self.peak_bytes.fetch_max(now, Relaxed);
        self.total_bytes.fetch_add(bytes, Relaxed);
        self.charges.fetch_add(1, Relaxed);
    }

    pub(super) fn uncharged(&self, bytes: u64) {
        self.bytes.fetch_sub(bytes, Relaxed);
    }

    pub(super) fn failed(&self) {
        self.failures.fetch_add(1, Relaxed);
    }

    /// A copy of its counters.
    pub fn snapshot(&self) -> ClassSnapshot {
        let bytes = self.bytes.load(Relaxed);
        let total = self.total_bytes.load(Relaxed);
        let (charged, bypassed) = if self.bypass { (0, bytes) } else { (bytes, 0) };
        let (charged_total, bypassed_total) = if self.bypass { (0, total) } else { (total, 0) };
        ClassSnapshot {
            name: self.name.clone(),
            bypass_prot_mem: self.bypass,
            bytes_charged: charged,
            bytes_bypassed: bypassed,
            peak_bytes: self.peak_bytes.load(Relaxed),
            total_bytes_charged: charged_total,
            total_bytes_bypassed: bypassed_total,
            charges: self.charges.load(Relaxed),
            failures: self.failures.load(Relaxed),
        }
    }
}

/// One [`ConsumerClass`]'s counters. Bytes a class holds are in its groups always, and in
/// the protocol accounts only when it does not bypass them: `bytes_charged` counts those,
/// `bytes_bypassed` the others (one of the two is always 0 for a class).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassSnapshot {
    /// The class's name.
    pub name: String,
    /// Whether it bypasses the protocol accounts.
    pub bypass_prot_mem: bool,
    /// Bytes held now through the protocol accounts.
    pub bytes_charged: u64,
    /// Bytes held now bypassing them (charged to groups only).
    pub bytes_bypassed: u64,
    /// The most bytes held at once since start.
    pub peak_bytes: u64,
    /// Bytes ever charged through the protocol accounts.
    pub total_bytes_charged: u64,
    /// Bytes ever charged bypassing them.
    pub total_bytes_bypassed: u64,
    /// Successful charges.
    pub charges: u64,
    /// Refused charges.
    pub failures: u64,
}

impl ClassSnapshot {
    /// Bytes held now, either way.
    pub fn bytes(&self) -> u64 {
        self.bytes_charged + self.bytes_bypassed
    }
}
