//! Per-protocol memory accounting with a bypass, after the kernel's socket memory accounting
//! (net/core/sock.c, include/net/proto_memory.h) and `sk_bypass_prot_mem`.
//!
//! Pure bookkeeping in safe Rust: it counts bytes and pages, it allocates nothing per packet
//! and never calls DPDK. The lcore a call runs on is passed in as an [`LcoreSlot`].
//!
//! | here | kernel |
//! |---|---|
//! | [`ProtoAccount`] per [`Proto`], [`ProtoAccount::pages`] | `proto->memory_allocated`, `sk_memory_allocated()` |
//! | [`ProtoLimits`] `min` / `pressure` / `max` | `net.ipv4.tcp_mem` (`sysctl_mem[0..=2]`) |
//! | [`ProtoAccount::under_pressure`] | `*proto->memory_pressure` |
//! | per-lcore cells, `batch_pages` | `proto->per_cpu_fw_alloc`, `net.core.mem_pcpu_rsv` |
//! | [`Group`] | memcg socket memory, `mem_cgroup_charge_skmem()` |
//! | [`Consumer`], [`Consumer::forward_alloc_bytes`] | a socket, `sk_forward_alloc` |
//! | [`Consumer::charge`] / [`Consumer::uncharge`] | `sk_mem_schedule()` + `sk_mem_charge()` / `sk_mem_uncharge()` + `sk_mem_reclaim()` |
//! | `bypass_prot_mem` | `sk->sk_bypass_prot_mem` |
//!
//! # The rules
//!
//! A consumer charges from its forward allocation; when that is short, it raises whole pages:
//! first into its protocol account (unless it bypasses it), then from its group, then the
//! protocol verdict on the global estimate `allocated` (see `ProtoAccount::admit`):
//!
//! - `allocated <= min`: succeeds, the account leaves pressure;
//! - `allocated > pressure`: the account enters pressure (a queue reading
//!   [`Consumer::under_pressure`] shortens itself);
//! - `allocated > max`: fails; the pages are taken back out of the account and the group.
//! - A group without room refuses the charge and the protocol pages are taken back out.
//!
//! Uncharging returns whole free pages (keeping less than one page of forward allocation);
//! if the account is under pressure and its estimate is now below `min`, it leaves pressure.
//!
//! A consumer with `bypass_prot_mem` does all of that without its protocol account: no counter
//! traffic, no limits, never under pressure. Its group still charges and refuses.
//!
//! # Approximation
//!
//! Each protocol's global page count is fed from per-lcore cells folded in when they would
//! exceed `batch_pages` either way, so cores do not fight over one cache line. The global
//! value (what limits are checked against) is off by at most `lcores * batch_pages` pages
//! whenever no change is in flight; `batch_pages = 0` makes it exact. [`Accounting::flush_all`]
//! folds every cell (and leaves pressure if the sharper estimate is below `min`). Everything returns to exactly zero once all consumers have uncharged (or
//! been dropped) and the cells are folded.

mod class;
mod consumer;
mod group;
mod proto;

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

pub use class::{ClassSnapshot, ConsumerClass};
pub use consumer::Consumer;
pub use group::Group;
pub use proto::{Proto, ProtoAccount, ProtoLimits};

/// The accounting quantum: 4 KiB, like the kernel's `PAGE_SIZE` on x86_64.
pub const PAGE_SIZE: u64 = 4096;

/// Index of the calling lcore's per-lcore cells, `0..lcores`: the forwarder passes its worker
/// index (nothing here asks DPDK).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LcoreSlot(pub usize);

impl fmt::Display for LcoreSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "slot{}", self.0)
    }
}

/// Limits, batching and the number of lcores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountingConfig {
    /// Limits of each protocol, indexed by [`Proto::index`].
    pub limits: [ProtoLimits; Proto::COUNT],
    /// Pages an lcore may hold back from each global counter before folding them in.
    pub batch_pages: u32,
    /// Number of lcore slots (at least 1).
    pub lcores: usize,
}

impl AccountingConfig {
    /// 64 pages (256 KiB) per lcore and protocol: a few bursts of packets between folds. The
    /// kernel's default `mem_pcpu_rsv` is 1 MiB, against limits a hundred times larger.
    pub const DEFAULT_BATCH_PAGES: u32 = 64;

    /// Default limits and batch for `lcores` slots.
    pub fn new(lcores: usize) -> Self {
        AccountingConfig { limits: [ProtoLimits::DEFAULT; Proto::COUNT], batch_pages: Self::DEFAULT_BATCH_PAGES, lcores }
    }
}

/// A configuration or registration refused by [`Accounting`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountingError {
    /// The limits are not ordered `min <= pressure <= max` (or `max` exceeds `i64::MAX`).
    #[error(
        "{proto} memory limits: need min <= pressure <= max, got min {} pressure {} max {} pages",
        limits.min, limits.pressure, limits.max
    )]
    InvalidLimits {
        /// The protocol whose limits are wrong.
        proto: Proto,
        /// The limits given.
        limits: ProtoLimits,
    },
    /// `lcores` was zero.
    #[error("memory accounting needs at least one lcore slot")]
    NoLcores,
    /// A group of that name exists already.
    #[error("memory group {name:?} exists already")]
    DuplicateGroup {
        /// The name asked for.
        name: String,
    },
    /// A consumer class of that name exists already.
    #[error("consumer class {name:?} exists already")]
    DuplicateClass {
        /// The name asked for.
        name: String,
    },
}

/// Why a charge was refused; nothing was taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChargeError {
    /// The protocol account's estimate went above `max` (kernel: `__sk_mem_raise_allocated()`
    /// returning 0; the forwarder drops the packet with reason `proto_mem`).
    #[error("{proto} memory: {allocated} pages with this charge of {pages} is above max {max}")]
    ProtoMax {
        /// The protocol.
        proto: Proto,
        /// Pages the charge needed.
        pages: u64,
        /// The global estimate including those pages.
        allocated: i64,
        /// The limit exceeded.
        max: u64,
    },
    /// The group's budget had no room (kernel: `mem_cgroup_charge_skmem()` failing).
    #[error("group {group}: {usage} bytes in use, {bytes} more would exceed its limit of {limit}")]
    GroupLimit {
        /// The group's name.
        group: Arc<str>,
        /// Bytes the charge needed (whole pages).
        bytes: u64,
        /// The group's usage when it refused.
        usage: u64,
        /// Its limit.
        limit: u64,
    },
}

/// The protocol accounts and the groups. Shared by all lcores (`Sync`); consumers hold an
/// `Arc` of it.
#[derive(Debug)]
pub struct Accounting {
    accounts: [ProtoAccount; Proto::COUNT],
    lcores: usize,
    batch_pages: u32,
    groups: Mutex<Vec<Arc<Group>>>,
    classes: Mutex<Vec<Arc<ConsumerClass>>>,
}

impl Accounting {
    /// Checks `config` and builds empty accounts.
    ///
    /// # Errors
    ///
    /// [`AccountingError::InvalidLimits`] for the first protocol whose limits are out of order,
    /// [`AccountingError::NoLcores`] for `lcores = 0`.
    pub fn new(config: AccountingConfig) -> Result<Self, AccountingError> {
        for proto in Proto::ALL {
            config.limits[proto.index()].check(proto)?;
        }
        if config.lcores == 0 {
            return Err(AccountingError::NoLcores);
        }
        let accounts = Proto::ALL.map(|p| ProtoAccount::new(p, config.limits[p.index()], config.batch_pages, config.lcores));
        Ok(Accounting {
            accounts,
            lcores: config.lcores,
            batch_pages: config.batch_pages,
            groups: Mutex::default(),
            classes: Mutex::default(),
        })
    }

    /// Creates a group with a budget of `limit_bytes` ([`Group::UNLIMITED`] for none), listed
    /// in snapshots from now on. Not for the hot path: it takes a lock and allocates.
    ///
    /// # Errors
    ///
    /// [`AccountingError::DuplicateGroup`] if `name` is taken.
    pub fn group(&self, name: &str, limit_bytes: u64) -> Result<Arc<Group>, AccountingError> {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        if groups.iter().any(|g| g.name() == name) {
            return Err(AccountingError::DuplicateGroup { name: name.to_owned() });
        }
        let group = Arc::new(Group::new(name, limit_bytes));
        groups.push(Arc::clone(&group));
        Ok(group)
    }

    /// Registers a kind of consumer (TX backlog, neighbour queue, slow path), listed in
    /// snapshots from now on; [`Consumer::in_class`] makes its consumers. Not for the hot
    /// path: it takes a lock and allocates.
    ///
    /// # Errors
    ///
    /// [`AccountingError::DuplicateClass`] if `name` is taken.
    pub fn class(&self, name: &str, bypass_prot_mem: bool) -> Result<Arc<ConsumerClass>, AccountingError> {
        let mut classes = self.classes.lock().unwrap_or_else(PoisonError::into_inner);
        if classes.iter().any(|c| c.name() == name) {
            return Err(AccountingError::DuplicateClass { name: name.to_owned() });
        }
        let class = Arc::new(ConsumerClass::new(name, bypass_prot_mem));
        classes.push(Arc::clone(&class));
        Ok(class)
    }

    /// The account of `proto`.
    pub fn account(&self, proto: Proto) -> &ProtoAccount {
        &self.accounts[proto.index()]
    }

    /// Number of lcore slots.
    pub fn lcores(&self) -> usize {
        self.lcores
    }

    /// Pages an lcore may hold back per protocol.
    pub fn batch_pages(&self) -> u32 {
        self.batch_pages
    }

    /// How far any protocol's global estimate can be from its exact use: `lcores * batch_pages`.
    pub fn error_bound_pages(&self) -> u64 {
        self.lcores as u64 * u64::from(self.batch_pages)
    }

    /// Folds lcore `slot`'s cells of every protocol into the global counters. Any thread may
    /// call it at any time, e.g. a worker when it goes idle.
    ///
    /// # Panics
    ///
    /// If `slot` is not below [`lcores`](Self::lcores).
    pub fn flush(&self, slot: LcoreSlot) {
        for account in &self.accounts {
            account.flush(slot);
        }
    }

    /// Folds every lcore's cells into the global counters.
    pub fn flush_all(&self) {
        for account in &self.accounts {
            account.flush_all();
        }
    }

    /// A copy of every counter, for stats, the JSON report and telemetry. Allocates; not for
    /// the hot path. Counters are read one by one, so a snapshot taken while lcores charge is
    /// not one instant.
    pub fn snapshot(&self) -> AccountingSnapshot {
        let protos = self.accounts.each_ref().map(|a| ProtoSnapshot {
            proto: a.proto(),
            pages: a.pages(),
            unflushed_pages: a.unflushed_pages(),
            under_pressure: a.under_pressure(),
            limits: a.limits(),
            charges: a.charges(),
            failures: a.failures(),
            pressure_entries: a.pressure_entries(),
        });
        let groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        let groups = groups
            .iter()
            .map(|g| GroupSnapshot {
                name: g.name().to_owned(),
                bytes: g.usage_bytes(),
                limit_bytes: g.limit_bytes(),
                failures: g.failures(),
            })
            .collect();
        let classes = self.classes.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|c| c.snapshot()).collect();
        AccountingSnapshot { lcores: self.lcores, batch_pages: self.batch_pages, protos, groups, classes }
    }
}

/// Every counter of an [`Accounting`] at one time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountingSnapshot {
    /// Number of lcore slots.
    pub lcores: usize,
    /// Pages an lcore may hold back per protocol.
    pub batch_pages: u32,
    /// One per protocol, in [`Proto::ALL`] order.
    pub protos: [ProtoSnapshot; Proto::COUNT],
    /// One per group, in creation order.
    pub groups: Vec<GroupSnapshot>,
    /// One per consumer class, in creation order.
    pub classes: Vec<ClassSnapshot>,
}

impl AccountingSnapshot {
    /// The snapshot of `proto`.
    pub fn proto(&self, proto: Proto) -> &ProtoSnapshot {
        &self.protos[proto.index()]
    }

    /// Whether nothing is charged anywhere: every protocol's pages (folded or not), every
    /// group's and every consumer class's bytes are zero.
    pub fn is_drained(&self) -> bool {
        self.protos.iter().all(|p| p.pages + p.unflushed_pages == 0)
            && self.groups.iter().all(|g| g.bytes == 0)
            && self.classes.iter().all(|c| c.bytes() == 0)
    }

    /// The snapshot of the class named `name`.
    pub fn class(&self, name: &str) -> Option<&ClassSnapshot> {
        self.classes.iter().find(|c| c.name == name)
    }
}

/// One protocol account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtoSnapshot {
    /// The protocol.
    pub proto: Proto,
    /// Global estimate of pages in use (`memory_allocated`), as limits see it.
    pub pages: i64,
    /// Pages in per-lcore cells not yet folded into `pages`.
    pub unflushed_pages: i64,
    /// The pressure flag (`memory_pressure`).
    pub under_pressure: bool,
    /// The limits (`tcp_mem`).
    pub limits: ProtoLimits,
    /// Successful raises of the account.
    pub charges: u64,
    /// Raises refused above `max`.
    pub failures: u64,
    /// Entries into pressure.
    pub pressure_entries: u64,
}

/// One group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSnapshot {
    /// Its name.
    pub name: String,
    /// Bytes charged.
    pub bytes: u64,
    /// Its budget.
    pub limit_bytes: u64,
    /// Charges refused.
    pub failures: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_checked() {
        let mut config = AccountingConfig::new(2);
        config.limits[Proto::Icmp.index()] = ProtoLimits { min: 3, pressure: 2, max: 1 };
        assert!(matches!(Accounting::new(config.clone()), Err(AccountingError::InvalidLimits { proto: Proto::Icmp, .. })));
        let message = Accounting::new(config).unwrap_err().to_string();
        assert_eq!(message, "icmp memory limits: need min <= pressure <= max, got min 3 pressure 2 max 1 pages");
        assert_eq!(Accounting::new(AccountingConfig::new(0)).unwrap_err(), AccountingError::NoLcores);
        let ok = Accounting::new(AccountingConfig::new(3)).unwrap();
        assert_eq!((ok.lcores(), ok.batch_pages(), ok.error_bound_pages()), (3, 64, 192));
    }

    #[test]
    fn groups_are_unique_and_listed() {
        let acc = Accounting::new(AccountingConfig::new(1)).unwrap();
        let g = acc.group("port0", 1 << 20).unwrap();
        assert_eq!((g.name(), g.limit_bytes()), ("port0", 1 << 20));
        assert_eq!(acc.group("port0", 5).unwrap_err(), AccountingError::DuplicateGroup { name: "port0".to_owned() });
        acc.group("tenant-a", Group::UNLIMITED).unwrap();
        let snap = acc.snapshot();
        let names: Vec<_> = snap.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["port0", "tenant-a"]);
        assert!(snap.is_drained());
    }

    #[test]
    fn classes_count_what_their_consumers_hold() {
        let acc = Arc::new(Accounting::new(AccountingConfig::new(1)).unwrap());
        let g = acc.group("g", Group::UNLIMITED).unwrap();
        let backlog = acc.class("tx_backlog", false).unwrap();
        let slow = acc.class("slow_path", true).unwrap();
        assert_eq!(acc.class("slow_path", false).unwrap_err(), AccountingError::DuplicateClass { name: "slow_path".to_owned() });
        let slot = LcoreSlot(0);
        let mut a = Consumer::in_class(&acc, Proto::Udp, g.clone(), &backlog);
        let mut b = Consumer::in_class(&acc, Proto::Tcp, g.clone(), &backlog);
        let mut s = Consumer::in_class(&acc, Proto::Icmp, g.clone(), &slow);
        assert!(!a.bypass_prot_mem() && s.bypass_prot_mem(), "the class decides");
        a.charge(slot, 1000).unwrap();
        b.charge(slot, 3000).unwrap();
        s.charge(slot, 500).unwrap();
        a.uncharge(slot, 1000);
        let snap = acc.snapshot();
        let c = snap.class("tx_backlog").unwrap();
        assert_eq!((c.bytes_charged, c.bytes_bypassed, c.peak_bytes, c.total_bytes_charged, c.charges), (3000, 0, 4000, 4000, 2));
        let c = snap.class("slow_path").unwrap();
        assert_eq!((c.bypass_prot_mem, c.bytes_charged, c.bytes_bypassed, c.total_bytes_bypassed), (true, 0, 500, 500));
        assert_eq!(snap.proto(Proto::Icmp).pages, 0, "the bypassing class left the protocol account alone");
        assert!(!snap.is_drained());
        drop(b);
        s.uncharge(slot, 500);
        drop(a);
        drop(s);
        acc.flush_all();
        let snap = acc.snapshot();
        assert!(snap.is_drained(), "{snap:?}");
        assert_eq!(snap.class("tx_backlog").unwrap().peak_bytes, 4000, "the peak stays");
    }

    #[test]
    fn accounting_is_shareable() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Accounting>();
        send_sync::<Group>();
        send_sync::<Consumer>();
        send_sync::<ConsumerClass>();
    }

    #[test]
    fn slot_prints_like_an_id() {
        assert_eq!(LcoreSlot(3).to_string(), "slot3");
    }
}
