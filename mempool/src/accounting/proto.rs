//! Protocol classes and their accounts: the kernel's `memory_allocated`, `memory_pressure`
//! and `tcp_mem` for each [`Proto`], with per-lcore batching of the global counter.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

use super::{AccountingError, LcoreSlot};

/// A transport protocol class: what the parser classifies a packet as, what the mirror
/// selects and what each memory account (the kernel's `struct proto`) is kept for. The one
/// type for the concept across the workspace (`dataplane::net::Proto` is this).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Proto {
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (IP protocol 17).
    Udp,
    /// ICMP and ICMPv6 (IP protocols 1 and 58).
    Icmp,
    /// Everything else, non-IP included.
    #[default]
    Other,
}

impl Proto {
    /// How many classes there are.
    pub const COUNT: usize = 4;
    /// Every class, in [`Proto::index`] order.
    pub const ALL: [Proto; Proto::COUNT] = [Proto::Tcp, Proto::Udp, Proto::Icmp, Proto::Other];

    /// Position in [`Proto::ALL`] and in per-protocol arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name, as used in stats and config keys.
    pub const fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
            Proto::Other => "other",
        }
    }

    /// The class of IP protocol number `protocol` (IPv4 protocol, IPv6 next header) carried
    /// over IPv4 (`v6 == false`) or IPv6: ICMP is 1 over IPv4 and 58 (ICMPv6) over IPv6.
    pub const fn from_ip(protocol: u8, v6: bool) -> Proto {
        match (protocol, v6) {
            (6, _) => Proto::Tcp,
            (17, _) => Proto::Udp,
            (1, false) | (58, true) => Proto::Icmp,
            _ => Proto::Other,
        }
    }

    /// The class named `name` ([`Proto::name`]), if any.
    pub fn from_name(name: &str) -> Option<Proto> {
        Proto::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A protocol's three limits in pages, like `net.ipv4.tcp_mem` (`sk_prot_mem_limits(sk, 0..=2)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtoLimits {
    /// At or below this a charge leaves memory pressure (`tcp_mem[0]`).
    pub min: u64,
    /// Above this a charge enters memory pressure (`tcp_mem[1]`).
    pub pressure: u64,
    /// Above this a charge fails (`tcp_mem[2]`).
    pub max: u64,
}

impl ProtoLimits {
    /// 16 MiB, 24 MiB, 32 MiB in 4 KiB pages: the same 2:3:4 spread as the kernel's
    /// default `tcp_mem`, sized for a forwarder whose pools hold tens of MiB.
    pub const DEFAULT: ProtoLimits = ProtoLimits { min: 4096, pressure: 6144, max: 8192 };

    /// Checks `min <= pressure <= max <= i64::MAX`.
    ///
    /// # Errors
    ///
    /// [`AccountingError::InvalidLimits`] naming `proto` when the order does not hold.
    pub fn check(&self, proto: Proto) -> Result<(), AccountingError> {
        if self.min <= self.pressure && self.pressure <= self.max && self.max <= i64::MAX as u64 {
            Ok(())
        } else {
            Err(AccountingError::InvalidLimits { proto, limits: *self })
        }
    }
}

impl Default for ProtoLimits {
    fn default() -> Self {
        ProtoLimits::DEFAULT
    }
}

/// One lcore's share of a protocol account (the kernel's `proto->per_cpu_fw_alloc` plus the
/// per-lcore halves of the counters). 128-byte aligned so two lcores never share a line, nor
/// a pair of lines fetched together by the adjacent-line prefetcher (crossbeam's `CachePadded`
/// does the same on x86_64).
#[repr(align(128))]
#[derive(Debug, Default)]
struct LcoreCell {
    /// Pages charged or uncharged on this lcore and not yet folded into `allocated`.
    pages: AtomicI64,
    /// Successful raises done on this lcore.
    charges: AtomicU64,
    /// Raises refused at `max` on this lcore.
    failures: AtomicU64,
}

/// The shared part of an account: written only when a cell is folded in (at most once per
/// `batch` pages per lcore) and when pressure flips.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Global {
    /// `memory_allocated`: pages, as folded in so far. Can dip below zero while pages charged
    /// on one lcore and returned on another have not all been folded.
    allocated: AtomicI64,
    /// `memory_pressure`.
    pressure: AtomicBool,
    /// Entries into pressure (`LINUX_MIB_TCPMEMORYPRESSURES`).
    pressure_entries: AtomicU64,
}

/// The memory account of one [`Proto`]: pages in use, limits, pressure flag and counters.
///
/// The global page count is fed from per-lcore cells in batches, like the kernel's
/// `sk_memory_allocated_add()` / `sk_memory_allocated_sub()` over `per_cpu_fw_alloc` with
/// `net.core.mem_pcpu_rsv`: a change goes into the caller's cell, and the cell is folded into
/// the global counter when it would exceed `batch` pages either way. So between changes every
/// cell holds at most `batch` pages either way, and [`pages`](Self::pages), the value limits
/// are checked against, differs from the exact usage by at most `lcores * batch` pages
/// ([`error_bound_pages`](Self::error_bound_pages)). With `batch = 0` every change reaches the
/// global counter and it is exact.
///
/// The bound assumes each [`LcoreSlot`] is used by one thread at a time. Sharing a slot stays
/// correct (every change lands exactly once, all updates are atomic read-modify-writes); only
/// the bound can be exceeded while two threads race on the same cell. While an lcore is in the
/// middle of a fold (between taking its cell and adding it to the global counter) the pages it
/// moves are in neither place for those few instructions.
#[derive(Debug)]
pub struct ProtoAccount {
    proto: Proto,
    /// min, pressure, max: atomics so the control thread can change them while lcores charge
    /// (`sysctl net.ipv4.tcp_mem` on a live system).
    limits: [AtomicU64; 3],
    batch: i64,
    global: Global,
    cells: Box<[LcoreCell]>,
}

impl ProtoAccount {
    pub(crate) fn new(proto: Proto, limits: ProtoLimits, batch_pages: u32, lcores: usize) -> Self {
        ProtoAccount {
            proto,
            limits: [AtomicU64::new(limits.min), AtomicU64::new(limits.pressure), AtomicU64::new(limits.max)],
            batch: i64::from(batch_pages),
            global: Global::default(),
            cells: (0..lcores).map(|_| LcoreCell::default()).collect(),
        }
    }

    /// The protocol class.
    pub fn proto(&self) -> Proto {
        self.proto
    }

    /// The limits, in pages.
    pub fn limits(&self) -> ProtoLimits {
        let [min, pressure, max] = &self.limits;
        ProtoLimits { min: min.load(Relaxed), pressure: pressure.load(Relaxed), max: max.load(Relaxed) }
    }

    /// Changes the limits while the account is in use; a charge racing with the change sees
    /// each limit old or new.
    ///
    /// # Errors
    ///
    /// [`AccountingError::InvalidLimits`] when they are out of order; nothing changes then.
    pub fn set_limits(&self, limits: ProtoLimits) -> Result<(), AccountingError> {
        limits.check(self.proto)?;
        for (a, v) in self.limits.iter().zip([limits.min, limits.pressure, limits.max]) {
            a.store(v, Relaxed);
        }
        Ok(())
    }

    /// The global estimate of pages in use (`sk_memory_allocated()`), the value limits are
    /// checked against: within [`error_bound_pages`](Self::error_bound_pages) of the exact use.
    pub fn pages(&self) -> i64 {
        self.global.allocated.load(Relaxed)
    }

    /// Pages still sitting in the per-lcore cells.
    pub fn unflushed_pages(&self) -> i64 {
        self.cells.iter().map(|c| c.pages.load(Relaxed)).sum()
    }

    /// Pages sitting in one lcore's cell: within `-batch..=batch` whenever that lcore is not in
    /// the middle of a change.
    ///
    /// # Panics
    ///
    /// If `slot` is not below the configured number of lcores.
    pub fn slot_pages(&self, slot: LcoreSlot) -> i64 {
        self.cell(slot).pages.load(Relaxed)
    }

    /// [`pages`](Self::pages) plus [`unflushed_pages`](Self::unflushed_pages): exact whenever
    /// no change is in flight (the cells and the global counter are read one after another).
    pub fn exact_pages(&self) -> i64 {
        self.pages() + self.unflushed_pages()
    }

    /// How far [`pages`](Self::pages) can be from the exact use: `lcores * batch` pages.
    pub fn error_bound_pages(&self) -> u64 {
        self.cells.len() as u64 * self.batch as u64
    }

    /// The memory-pressure flag (`*sk->sk_prot->memory_pressure`).
    pub fn under_pressure(&self) -> bool {
        self.global.pressure.load(Relaxed)
    }

    /// How many times the account entered pressure.
    pub fn pressure_entries(&self) -> u64 {
        self.global.pressure_entries.load(Relaxed)
    }

    /// Successful raises of this account (each one a consumer taking whole pages from it;
    /// charges served from a consumer's forward allocation do not touch the account).
    pub fn charges(&self) -> u64 {
        self.cells.iter().map(|c| c.charges.load(Relaxed)).sum()
    }

    /// Raises refused because the estimate went above `max`.
    pub fn failures(&self) -> u64 {
        self.cells.iter().map(|c| c.failures.load(Relaxed)).sum()
    }

    /// Folds one lcore's cell into the global counter (`proto_memory_pcpu_drain()`). Safe to
    /// call from any thread at any time.
    ///
    /// Unlike the kernel's drain, it then applies the uncharge rule: if the account is under
    /// pressure and the now sharper estimate is below `min`, it leaves pressure. Otherwise an
    /// account drained while pages sat in cells could show pressure until the next raise.
    ///
    /// # Panics
    ///
    /// If `slot` is not below the configured number of lcores.
    pub fn flush(&self, slot: LcoreSlot) {
        Self::fold(&self.global, self.cell(slot));
        self.after_reduce();
    }

    /// Folds every cell into the global counter; afterwards, with no change in flight,
    /// [`pages`](Self::pages) is exact.
    pub fn flush_all(&self) {
        for cell in self.cells.iter() {
            Self::fold(&self.global, cell);
        }
        self.after_reduce();
    }

    fn fold(global: &Global, cell: &LcoreCell) {
        let pages = cell.pages.swap(0, Relaxed);
        if pages != 0 {
            global.allocated.fetch_add(pages, Relaxed);
        }
    }

    fn cell(&self, slot: LcoreSlot) -> &LcoreCell {
        match self.cells.get(slot.0) {
            Some(cell) => cell,
            None => slot_out_of_range(slot, self.cells.len()),
        }
    }

    /// Adds `delta` pages on `slot`: `sk_memory_allocated_add()` / `_sub()`. The change goes
    /// into the cell unless that would take the cell beyond `batch` pages either way; then the
    /// cell's content and the change go to the global counter together and the cell is left at
    /// zero. Each page lands in exactly one place even if threads share the slot.
    pub(crate) fn add(&self, slot: LcoreSlot, delta: i64) {
        let cell = self.cell(slot);
        let next = cell.pages.load(Relaxed) + delta;
        if next > self.batch || next < -self.batch {
            let pages = cell.pages.swap(0, Relaxed) + delta;
            self.global.allocated.fetch_add(pages, Relaxed);
        } else {
            cell.pages.fetch_add(delta, Relaxed);
        }
    }

    /// Adds `delta` pages straight to the global counter, for changes made outside any lcore
    /// (a consumer dropped by the control thread).
    pub(crate) fn add_global(&self, delta: i64) {
        self.global.allocated.fetch_add(delta, Relaxed);
    }

    /// The kernel's verdict on a raise, from `__sk_mem_raise_allocated()` in net/core/sock.c.
    /// `allocated` is the global estimate read right after the raise was added to the account
    /// (`sk_memory_allocated_add(sk, amt); allocated = sk_memory_allocated(sk);`):
    ///
    /// 1. `allocated <= min`: the raise succeeds and the account leaves pressure
    ///    (`sk_leave_memory_pressure()`).
    /// 2. `allocated > pressure`: the account enters pressure (`sk_enter_memory_pressure()`;
    ///    counted on the transition only, like `tcp_enter_memory_pressure()` counts
    ///    `LINUX_MIB_TCPMEMORYPRESSURES` after its `cmpxchg`).
    /// 3. `allocated > max`: the raise fails (`goto suppress_allocation`); the caller takes
    ///    the pages back out (`sk_memory_allocated_sub()`) and undoes its group charge
    ///    (`mem_cgroup_sk_uncharge()`). The pressure entered in step 2 stays.
    /// 4. Otherwise the raise succeeds; between `min` and `pressure` the flag keeps whatever
    ///    value it had (the hysteresis of tcp_mem).
    ///
    /// Left out on purpose: the kernel's exceptions between `pressure` and `max` (the
    /// `sk_rmem0`/`sk_wmem0` minimum-buffer guarantee and the fair-share test against
    /// `sockets_allocated`) and the forced charge of a stream socket's send queue. Here a raise
    /// at or below `max` always succeeds; consumers moderate themselves by reading
    /// [`Consumer::under_pressure`](super::Consumer::under_pressure) instead.
    pub(crate) fn admit(&self, slot: LcoreSlot, allocated: i64) -> bool {
        if allocated <= self.limits[0].load(Relaxed) as i64 {
            self.leave_pressure();
            self.cell(slot).charges.fetch_add(1, Relaxed);
            return true;
        }
        if allocated > self.limits[1].load(Relaxed) as i64 {
            self.enter_pressure();
        }
        if allocated > self.limits[2].load(Relaxed) as i64 {
            self.cell(slot).failures.fetch_add(1, Relaxed);
            return false;
        }
        self.cell(slot).charges.fetch_add(1, Relaxed);
        true
    }

    /// The pressure rule after pages went back, from `__sk_mem_reduce_allocated()`: if the
    /// account is under pressure and the estimate is now strictly below `min`, it leaves.
    pub(crate) fn after_reduce(&self) {
        if self.under_pressure() && self.pages() < self.limits[0].load(Relaxed) as i64 {
            self.leave_pressure();
        }
    }

    fn enter_pressure(&self) {
        if !self.global.pressure.load(Relaxed) && self.global.pressure.compare_exchange(false, true, Relaxed, Relaxed).is_ok() {
            self.global.pressure_entries.fetch_add(1, Relaxed);
        }
    }

    fn leave_pressure(&self) {
        // Read before writing, as sk_leave_memory_pressure() does, so the common case does not
        // dirty the shared line.
        if self.global.pressure.load(Relaxed) {
            self.global.pressure.store(false, Relaxed);
        }
    }
}

#[cold]
#[inline(never)]
fn slot_out_of_range(slot: LcoreSlot, lcores: usize) -> ! {
    panic!("{slot} is out of range: the accounting was configured for {lcores} lcores")
}

#[cfg(test)]
mod tests {
    use super::*;

    const S0: LcoreSlot = LcoreSlot(0);
    const S1: LcoreSlot = LcoreSlot(1);

    fn account(batch: u32, lcores: usize) -> ProtoAccount {
        ProtoAccount::new(Proto::Tcp, ProtoLimits { min: 10, pressure: 20, max: 30 }, batch, lcores)
    }

    #[test]
    fn proto_indices_names_and_ip_numbers() {
        for (i, p) in Proto::ALL.iter().enumerate() {
            assert_eq!(p.index(), i);
        }
        assert_eq!(Proto::ALL.map(Proto::name), ["tcp", "udp", "icmp", "other"]);
        assert_eq!(Proto::Icmp.to_string(), "icmp");
        assert_eq!(Proto::from_ip(6, false), Proto::Tcp);
        assert_eq!(Proto::from_ip(17, true), Proto::Udp);
        assert_eq!(Proto::from_ip(1, false), Proto::Icmp);
        assert_eq!(Proto::from_ip(58, true), Proto::Icmp);
        assert_eq!(Proto::from_ip(58, false), Proto::Other);
        assert_eq!(Proto::from_ip(1, true), Proto::Other);
        assert_eq!(Proto::from_ip(47, false), Proto::Other);
        assert_eq!(Proto::from_name("udp"), Some(Proto::Udp));
        assert_eq!(Proto::from_name("any"), None);
    }

    #[test]
    fn limits_must_be_ordered() {
        assert!(ProtoLimits::DEFAULT.check(Proto::Tcp).is_ok());
        assert!(ProtoLimits { min: 5, pressure: 5, max: 5 }.check(Proto::Tcp).is_ok());
        assert!(ProtoLimits { min: 0, pressure: 0, max: 0 }.check(Proto::Tcp).is_ok());
        let bad = ProtoLimits { min: 6, pressure: 5, max: 9 };
        assert_eq!(bad.check(Proto::Udp), Err(AccountingError::InvalidLimits { proto: Proto::Udp, limits: bad }));
        assert!(ProtoLimits { min: 1, pressure: 9, max: 8 }.check(Proto::Tcp).is_err());
        assert!(ProtoLimits { min: 1, pressure: 2, max: u64::MAX }.check(Proto::Tcp).is_err());
    }

    #[test]
    fn cells_are_on_their_own_lines() {
        assert_eq!(std::mem::align_of::<LcoreCell>(), 128);
        assert_eq!(std::mem::size_of::<LcoreCell>(), 128);
        assert_eq!(std::mem::align_of::<Global>(), 128);
    }

    #[test]
    fn batch_zero_folds_every_change() {
        let a = account(0, 2);
        a.add(S0, 3);
        assert_eq!((a.pages(), a.unflushed_pages()), (3, 0));
        a.add(S1, -1);
        assert_eq!((a.pages(), a.unflushed_pages()), (2, 0));
        assert_eq!(a.error_bound_pages(), 0);
    }

    #[test]
    fn changes_stay_local_up_to_the_batch_then_fold_together() {
        let a = account(4, 2);
        assert_eq!(a.error_bound_pages(), 8);
        a.add(S0, 3);
        a.add(S0, 1);
        assert_eq!((a.pages(), a.slot_pages(S0)), (0, 4), "exactly batch stays local");
        a.add(S0, 1);
        assert_eq!((a.pages(), a.slot_pages(S0)), (5, 0), "cell and change fold together");
        a.add(S1, -4);
        assert_eq!((a.pages(), a.slot_pages(S1)), (5, -4));
        a.add(S1, -2);
        assert_eq!((a.pages(), a.slot_pages(S1)), (-1, 0), "negative side folds too");
        assert_eq!(a.exact_pages(), -1);
    }

    #[test]
    fn flush_moves_a_cell_and_keeps_the_total() {
        let a = account(8, 2);
        a.add(S0, 5);
        a.add(S1, 2);
        assert_eq!((a.pages(), a.exact_pages()), (0, 7));
        a.flush(S0);
        assert_eq!((a.pages(), a.slot_pages(S0), a.slot_pages(S1)), (5, 0, 2));
        a.flush_all();
        assert_eq!((a.pages(), a.unflushed_pages()), (7, 0));
    }

    #[test]
    fn admit_follows_the_kernel_rules() {
        let a = account(0, 1);
        // Between min and pressure: succeeds, no pressure.
        assert!(a.admit(S0, 15));
        assert!(!a.under_pressure());
        // Above pressure: succeeds and enters pressure, counted once.
        assert!(a.admit(S0, 21));
        assert!(a.admit(S0, 25));
        assert!(a.under_pressure());
        assert_eq!(a.pressure_entries(), 1);
        // Between min and pressure again: pressure stays (hysteresis).
        assert!(a.admit(S0, 15));
        assert!(a.under_pressure());
        // Exactly max: still allowed.
        assert!(a.admit(S0, 30));
        // Above max: refused, pressure stays, counted as a failure.
        assert!(!a.admit(S0, 31));
        assert!(a.under_pressure());
        assert_eq!((a.charges(), a.failures()), (5, 1));
        // At min: succeeds and leaves pressure.
        assert!(a.admit(S0, 10));
        assert!(!a.under_pressure());
        // A new entry is counted again.
        assert!(!a.admit(S0, 40));
        assert!(a.under_pressure());
        assert_eq!(a.pressure_entries(), 2);
    }

    #[test]
    fn reduce_leaves_pressure_only_strictly_below_min() {
        let a = account(0, 1);
        a.add(S0, 25);
        assert!(a.admit(S0, a.pages()));
        assert!(a.under_pressure());
        a.add(S0, -15);
        a.after_reduce();
        assert!(a.under_pressure(), "at min (10) an uncharge does not leave");
        a.add(S0, -1);
        a.after_reduce();
        assert!(!a.under_pressure(), "below min it does");
    }

    #[test]
    fn a_flush_that_brings_the_estimate_below_min_leaves_pressure() {
        let a = account(8, 2);
        a.add(S0, 25);
        assert!(a.admit(S0, a.pages()));
        assert!(a.under_pressure());
        a.add(S1, -8);
        a.add(S0, -8);
        a.after_reduce();
        assert_eq!((a.pages(), a.exact_pages()), (25, 9));
        assert!(a.under_pressure(), "the estimate (25) still hides the returned pages");
        a.flush(S1);
        assert!(a.under_pressure(), "17 is not below min");
        a.flush_all();
        assert_eq!(a.pages(), 9);
        assert!(!a.under_pressure());
    }

    #[test]
    #[should_panic(expected = "slot2 is out of range")]
    fn slot_out_of_range_panics_with_a_clear_message() {
        account(0, 2).add(LcoreSlot(2), 1);
    }
}
