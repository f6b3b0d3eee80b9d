//! [`Consumer`]: the socket analogue, holding packets beyond one poll round through a
//! forward allocation in page quanta (`sk_forward_alloc`).

use std::fmt;
use std::sync::Arc;

use super::{Accounting, ChargeError, ConsumerClass, Group, LcoreSlot, Proto, PAGE_SIZE};

/// Something that holds packets beyond one poll round (a TX backlog, a reassembly queue, the
/// punt path to the control plane, a capture): it charges a packet's truesize when it takes
/// the packet and uncharges it when it lets the packet go.
///
/// Charges go through a forward allocation, like a socket's `sk_forward_alloc`:
///
/// - [`charge`](Self::charge) (`sk_mem_schedule()` then `sk_mem_charge()`): a charge that fits
///   in the forward allocation takes it from there and touches no shared counter. Otherwise
///   the shortfall is rounded up to whole pages and raised from the group and the protocol
///   account (`__sk_mem_schedule()` / `__sk_mem_raise_allocated()`), then taken.
/// - [`uncharge`](Self::uncharge) (`sk_mem_uncharge()` then `sk_mem_reclaim()`): the bytes go
///   back to the forward allocation, and once it holds at least one page the whole pages are
///   returned (`__sk_mem_reclaim()` / `__sk_mem_reduce_allocated()`), keeping less than a page.
///
/// So `charged_bytes() + forward_alloc_bytes()` is always a whole number of pages, exactly
/// what this consumer holds in its group and (unless bypassing) in its protocol account.
///
/// With `bypass_prot_mem` (the kernel's `sk->sk_bypass_prot_mem`) raises and returns skip the
/// protocol account entirely: no counter traffic, no limits, no pressure. The group still
/// charges and enforces its budget: bypass never disables group accounting.
///
/// Used by one lcore at a time (`&mut self`); it may move between lcores as long as each call
/// names the lcore it runs on. Dropping it returns everything it still holds.
pub struct Consumer {
    accounting: Arc<Accounting>,
    group: Arc<Group>,
    /// The kind of consumer it is, counting what all of them hold.
    class: Option<Arc<ConsumerClass>>,
    proto: Proto,
    bypass: bool,
    /// `sk_forward_alloc`: bytes raised but not charged; below one page after every uncharge.
    forward_alloc: u64,
    /// Bytes charged and not yet uncharged.
    charged: u64,
    charges: u64,
    failures: u64,
}

impl Consumer {
    /// A consumer of `proto` memory in `group`, bypassing the protocol account if
    /// `bypass_prot_mem`.
    pub fn new(accounting: &Arc<Accounting>, proto: Proto, group: Arc<Group>, bypass_prot_mem: bool) -> Self {
        Consumer {
            accounting: Arc::clone(accounting),
            group,
            class: None,
            proto,
            bypass: bypass_prot_mem,
            forward_alloc: 0,
            charged: 0,
            charges: 0,
            failures: 0,
        }
    }

    /// A consumer of `proto` memory in `group`, of `class`: it bypasses the protocol account
    /// if the class does, and its charges count in the class's totals.
    pub fn in_class(accounting: &Arc<Accounting>, proto: Proto, group: Arc<Group>, class: &Arc<ConsumerClass>) -> Self {
        let mut c = Consumer::new(accounting, proto, group, class.bypass_prot_mem());
        c.class = Some(Arc::clone(class));
        c
    }

    /// Its class, if it has one.
    pub fn class(&self) -> Option<&Arc<ConsumerClass>> {
        self.class.as_ref()
    }

    /// Charges `bytes` (a packet's truesize) on lcore `slot`.
    ///
    /// # Errors
    ///
    /// Nothing is charged and [`failures`](Self::failures) counts one more when:
    /// - [`ChargeError::GroupLimit`]: the pages needed do not fit in the group's budget (the
    ///   protocol account, charged first as the kernel does, is rolled back);
    /// - [`ChargeError::ProtoMax`]: the protocol account's estimate went above `max` (the group
    ///   charge is rolled back too). Never for a bypassing consumer.
    ///
    /// # Panics
    ///
    /// If `slot` is not below the lcores the accounting was configured for.
    pub fn charge(&mut self, slot: LcoreSlot, bytes: u32) -> Result<(), ChargeError> {
        let bytes = u64::from(bytes);
        if bytes > self.forward_alloc {
            let pages = (bytes - self.forward_alloc).div_ceil(PAGE_SIZE);
            if let Err(err) = self.raise(slot, pages) {
                self.failures += 1;
                if let Some(c) = &self.class {
                    c.failed();
                }
                return Err(err);
            }
            self.forward_alloc += pages * PAGE_SIZE;
        }
        self.forward_alloc -= bytes;
        self.charged += bytes;
        self.charges += 1;
        if let Some(c) = &self.class {
            c.charged(bytes);
        }
        Ok(())
    }

    /// Uncharges `bytes` charged earlier, on lcore `slot`, and returns whole free pages.
    ///
    /// Uncharging more than is charged is a caller bug: debug builds panic, release builds
    /// uncharge only what is charged, so no account ever goes below zero.
    ///
    /// # Panics
    ///
    /// If `slot` is not below the lcores the accounting was configured for, and in debug
    /// builds on the bug above.
    pub fn uncharge(&mut self, slot: LcoreSlot, bytes: u32) {
        let bytes = u64::from(bytes);
        debug_assert!(bytes <= self.charged, "uncharge of {bytes} bytes with {} charged", self.charged);
        let bytes = bytes.min(self.charged);
        self.charged -= bytes;
        if let Some(c) = &self.class {
            c.uncharged(bytes);
        }
        self.forward_alloc += bytes;
        if self.forward_alloc >= PAGE_SIZE {
            let pages = self.forward_alloc / PAGE_SIZE;
            self.forward_alloc -= pages * PAGE_SIZE;
            self.reduce(slot, pages);
        }
    }

    /// Whether this consumer should moderate itself (shorten its queue), as
    /// `sk_under_memory_pressure()` tells a socket: its protocol account is under pressure,
    /// unless it bypasses the account (then never).
    pub fn under_pressure(&self) -> bool {
        !self.bypass && self.accounting.account(self.proto).under_pressure()
    }

    /// The protocol class charged.
    pub fn proto(&self) -> Proto {
        self.proto
    }

    /// The group charged.
    pub fn group(&self) -> &Arc<Group> {
        &self.group
    }

    /// Whether charges skip the protocol account.
    pub fn bypass_prot_mem(&self) -> bool {
        self.bypass
    }

    /// Bytes charged now.
    pub fn charged_bytes(&self) -> u64 {
        self.charged
    }

    /// Bytes raised but not charged (`sk_forward_alloc`).
    pub fn forward_alloc_bytes(&self) -> u64 {
        self.forward_alloc
    }

    /// Pages this consumer holds in its group and, unless bypassing, its protocol account.
    pub fn reserved_pages(&self) -> u64 {
        (self.charged + self.forward_alloc) / PAGE_SIZE
    }

    /// Successful charges.
    pub fn charges(&self) -> u64 {
        self.charges
    }

    /// Refused charges.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// Takes `pages` from the group and, unless bypassing, the protocol account, in the order
    /// of `__sk_mem_raise_allocated()`: protocol add, group charge, protocol verdict. Whatever
    /// was taken is given back if either refuses.
    fn raise(&self, slot: LcoreSlot, pages: u64) -> Result<(), ChargeError> {
        let bytes = pages * PAGE_SIZE;
        if self.bypass {
            return self.group.try_charge(bytes);
        }
        let account = self.accounting.account(self.proto);
        let delta = pages as i64;
        account.add(slot, delta);
        let allocated = account.pages();
        if let Err(err) = self.group.try_charge(bytes) {
            account.add(slot, -delta);
            return Err(err);
        }
        if account.admit(slot, allocated) {
            return Ok(());
        }
        account.add(slot, -delta);
        self.group.uncharge(bytes);
        Err(ChargeError::ProtoMax { proto: self.proto, pages, allocated, max: account.limits().max })
    }

    /// Returns `pages` to the group and, unless bypassing, the protocol account
    /// (`__sk_mem_reduce_allocated()`).
    fn reduce(&self, slot: LcoreSlot, pages: u64) {
        self.group.uncharge(pages * PAGE_SIZE);
        if self.bypass {
            return;
        }
        let account = self.accounting.account(self.proto);
        account.add(slot, -(pages as i64));
        account.after_reduce();
    }
}

impl Drop for Consumer {
    /// Returns what is still charged and the forward allocation. No lcore is known here, so
    /// the pages go straight to the global counter.
    fn drop(&mut self) {
        let bytes = self.charged + self.forward_alloc;
        debug_assert_eq!(bytes % PAGE_SIZE, 0, "a consumer holds whole pages");
        if let Some(c) = &self.class {
            c.uncharged(self.charged);
        }
        self.charged = 0;
        self.forward_alloc = 0;
        if bytes == 0 {
            return;
        }
        self.group.uncharge(bytes);
        if !self.bypass {
            let account = self.accounting.account(self.proto);
            account.add_global(-((bytes / PAGE_SIZE) as i64));
            account.after_reduce();
        }
    }
}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("proto", &self.proto)
            .field("group", &self.group.name())
            .field("bypass_prot_mem", &self.bypass)
            .field("charged", &self.charged)
            .field("forward_alloc", &self.forward_alloc)
            .field("charges", &self.charges)
            .field("failures", &self.failures)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AccountingConfig, ProtoLimits};
    use super::*;

    const S0: LcoreSlot = LcoreSlot(0);
    const S1: LcoreSlot = LcoreSlot(1);
    const PAGE: u32 = PAGE_SIZE as u32;

    /// Accounting with `batch` and every protocol limited to `limits`.
    fn accounting(batch: u32, limits: ProtoLimits) -> Arc<Accounting> {
        let config = AccountingConfig { limits: [limits; Proto::COUNT], batch_pages: batch, lcores: 2 };
        Arc::new(Accounting::new(config).unwrap())
    }

    fn roomy() -> ProtoLimits {
        ProtoLimits { min: 1000, pressure: 2000, max: 3000 }
    }

    /// Pages, folded or not, that the account of `proto` holds.
    fn held(acc: &Accounting, proto: Proto) -> i64 {
        acc.account(proto).exact_pages()
    }

    #[test]
    fn charges_raise_whole_pages_and_spend_the_forward_allocation_first() {
        let acc = accounting(0, roomy());
        let group = acc.group("port0", Group::UNLIMITED).unwrap();
        let mut c = Consumer::new(&acc, Proto::Udp, Arc::clone(&group), false);
        let account = acc.account(Proto::Udp);

        c.charge(S0, 1500).unwrap();
        assert_eq!((c.charged_bytes(), c.forward_alloc_bytes()), (1500, 4096 - 1500));
        assert_eq!((account.pages(), account.charges(), group.usage_bytes()), (1, 1, 4096));

        c.charge(S0, 1500).unwrap();
        assert_eq!(c.forward_alloc_bytes(), 4096 - 3000);
        assert_eq!(account.charges(), 1, "served from forward_alloc: the account is not touched");

        c.charge(S0, 1500).unwrap();
        assert_eq!(c.forward_alloc_bytes(), 2 * 4096 - 4500, "shortfall of 404 bytes rounds up to one page");
        assert_eq!((account.pages(), account.charges(), group.usage_bytes()), (2, 2, 8192));

        c.charge(S0, 10_000).unwrap();
        assert_eq!(account.pages(), 2 + 2, "10000 - 3692 = 6308 bytes short: two pages");
        assert_eq!(c.charged_bytes() + c.forward_alloc_bytes(), 4 * 4096);
        assert_eq!(c.reserved_pages(), 4);
        assert_eq!(c.charges(), 4);

        c.charge(S0, 0).unwrap();
        assert_eq!(account.pages(), 4, "an empty charge raises nothing");
        drop(c);
    }

    #[test]
    fn uncharges_return_whole_pages_and_keep_less_than_one() {
        let acc = accounting(0, roomy());
        let group = acc.group("port0", Group::UNLIMITED).unwrap();
        let mut c = Consumer::new(&acc, Proto::Tcp, Arc::clone(&group), false);
        let account = acc.account(Proto::Tcp);
        for _ in 0..10 {
            c.charge(S0, 1500).unwrap();
        }
        assert_eq!(account.pages(), 4, "15000 bytes in 4 pages");
        assert_eq!(c.forward_alloc_bytes(), 4 * 4096 - 15_000);

        c.uncharge(S0, 1500);
        assert_eq!((account.pages(), c.forward_alloc_bytes()), (4, 2884), "2884 bytes free: less than a page");
        c.uncharge(S0, 1500);
        assert_eq!((account.pages(), c.forward_alloc_bytes()), (3, 4384 - 4096), "one whole page returned");
        for _ in 0..8 {
            c.uncharge(S0, 1500);
            assert!(c.forward_alloc_bytes() < PAGE_SIZE);
            assert_eq!(account.pages() as u64, c.reserved_pages());
            assert_eq!(group.usage_bytes(), c.reserved_pages() * PAGE_SIZE);
        }
        assert_eq!((c.charged_bytes(), c.forward_alloc_bytes(), account.pages()), (0, 0, 0));
        assert_eq!(group.usage_bytes(), 0);
    }

    #[test]
    fn pressure_is_entered_above_pressure_and_left_below_min() {
        let acc = accounting(0, ProtoLimits { min: 2, pressure: 3, max: 5 });
        let group = acc.group("g", Group::UNLIMITED).unwrap();
        let mut c = Consumer::new(&acc, Proto::Tcp, group, false);
        let account = acc.account(Proto::Tcp);

        let mut expect = Vec::new();
        for _ in 0..5 {
            c.charge(S0, PAGE).unwrap();
            expect.push((account.pages(), c.under_pressure()));
        }
        assert_eq!(expect, [(1, false), (2, false), (3, false), (4, true), (5, true)]);
        assert_eq!(account.pressure_entries(), 1);

        let mut expect = Vec::new();
        for _ in 0..4 {
            c.uncharge(S0, PAGE);
            expect.push((account.pages(), c.under_pressure()));
        }
        assert_eq!(expect, [(4, true), (3, true), (2, true), (1, false)], "left strictly below min");

        // Climb back over pressure, then down to exactly min: pressure is kept.
        for _ in 0..3 {
            c.charge(S0, PAGE).unwrap();
        }
        assert!(c.under_pressure());
        assert_eq!(account.pressure_entries(), 2);
        c.uncharge(S0, PAGE);
        c.uncharge(S0, PAGE);
        assert_eq!((account.pages(), c.under_pressure()), (2, true), "at min an uncharge does not leave");
        c.charge(S0, PAGE).unwrap();
        assert_eq!((account.pages(), c.under_pressure()), (3, true), "between min and pressure the flag is kept");
    }

    #[test]
    fn a_raise_that_lands_at_min_leaves_pressure() {
        // Batch 1 lets a one-page raise stay in the lcore's cell, so the estimate it is judged
        // on can sit exactly at min while the flag is still set.
        let acc = accounting(1, ProtoLimits { min: 2, pressure: 3, max: 5 });
        let group = acc.group("g", Group::UNLIMITED).unwrap();
        let mut a = Consumer::new(&acc, Proto::Tcp, Arc::clone(&group), false);
        let mut b = Consumer::new(&acc, Proto::Tcp, group, false);
        let account = acc.account(Proto::Tcp);
        a.charge(S0, 4 * PAGE).unwrap();
        assert_eq!((account.pages(), a.under_pressure()), (4, true));
        a.uncharge(S0, 2 * PAGE);
        assert_eq!((account.pages(), a.under_pressure()), (2, true), "an uncharge to exactly min keeps pressure");
        b.charge(S0, PAGE).unwrap();
        assert_eq!((account.pages(), account.slot_pages(S0)), (2, 1));
        assert!(!b.under_pressure(), "a raise judged at min leaves pressure");
    }

    #[test]
    fn above_max_the_charge_fails_and_takes_nothing() {
        let acc = accounting(0, ProtoLimits { min: 1, pressure: 2, max: 3 });
        let group = acc.group("g", 100 * PAGE_SIZE).unwrap();
        let mut c = Consumer::new(&acc, Proto::Icmp, Arc::clone(&group), false);
        let account = acc.account(Proto::Icmp);
        c.charge(S0, 3 * PAGE - 100).unwrap();
        let before = (c.charged_bytes(), c.forward_alloc_bytes(), group.usage_bytes(), account.pages());

        let err = c.charge(S0, 200).unwrap_err();
        assert_eq!(err, ChargeError::ProtoMax { proto: Proto::Icmp, pages: 1, allocated: 4, max: 3 });
        assert_eq!(
            (c.charged_bytes(), c.forward_alloc_bytes(), group.usage_bytes(), account.pages()),
            before,
            "protocol pages and the group charge that had succeeded are both rolled back"
        );
        assert_eq!((c.charges(), c.failures()), (1, 1));
        assert_eq!((account.charges(), account.failures()), (1, 1));
        assert_eq!(group.failures(), 0, "the group did not refuse");
        assert!(c.under_pressure(), "the failed raise went above pressure on its way");

        c.charge(S0, 100).unwrap();
        assert_eq!(account.pages(), 3, "what still fits in forward_alloc is taken");
    }

    #[test]
    fn a_full_group_refuses_and_the_protocol_pages_are_rolled_back() {
        for batch in [0, 8] {
            let acc = accounting(batch, roomy());
            let group = acc.group("tenant", 2 * PAGE_SIZE).unwrap();
            let mut c = Consumer::new(&acc, Proto::Udp, Arc::clone(&group), false);
            let account = acc.account(Proto::Udp);
            c.charge(S0, 2 * PAGE).unwrap();

            let err = c.charge(S0, 1).unwrap_err();
            assert_eq!(
                err,
                ChargeError::GroupLimit { group: "tenant".into(), bytes: PAGE_SIZE, usage: 2 * PAGE_SIZE, limit: 2 * PAGE_SIZE }
            );
            assert_eq!(err.to_string(), "group tenant: 8192 bytes in use, 4096 more would exceed its limit of 8192");
            assert_eq!(held(&acc, Proto::Udp), 2, "batch {batch}: protocol pages rolled back");
            assert_eq!((account.charges(), account.failures()), (1, 0), "not a protocol failure");
            assert_eq!((group.usage_bytes(), group.failures()), (2 * PAGE_SIZE, 1));
            assert_eq!((c.charged_bytes(), c.failures()), (2 * PAGE_SIZE, 1));
            c.uncharge(S0, PAGE);
            c.charge(S0, PAGE).unwrap();
        }
    }

    #[test]
    fn groups_are_shared_across_protocols_and_consumers() {
        let acc = accounting(0, roomy());
        let group = acc.group("port1", 3 * PAGE_SIZE).unwrap();
        let mut tcp = Consumer::new(&acc, Proto::Tcp, Arc::clone(&group), false);
        let mut udp = Consumer::new(&acc, Proto::Udp, Arc::clone(&group), true);
        tcp.charge(S0, 2 * PAGE).unwrap();
        udp.charge(S1, PAGE).unwrap();
        assert!(matches!(udp.charge(S1, 1), Err(ChargeError::GroupLimit { .. })));
        assert!(matches!(tcp.charge(S0, 1), Err(ChargeError::GroupLimit { .. })));
        assert_eq!((held(&acc, Proto::Tcp), held(&acc, Proto::Udp)), (2, 0));
        tcp.uncharge(S0, PAGE);
        udp.charge(S1, 1).unwrap();
        assert_eq!(group.usage_bytes(), 3 * PAGE_SIZE);
    }

    #[test]
    fn bypass_skips_exactly_the_protocol_account() {
        // Limits of zero: any raise into the account would fail.
        let acc = accounting(0, ProtoLimits { min: 0, pressure: 0, max: 0 });
        let group = acc.group("control", 4 * PAGE_SIZE).unwrap();
        let mut punt = Consumer::new(&acc, Proto::Icmp, Arc::clone(&group), true);
        assert!(punt.bypass_prot_mem());
        let before = acc.snapshot();

        for _ in 0..6 {
            punt.charge(S0, 2000).unwrap();
        }
        assert_eq!((punt.charged_bytes(), punt.reserved_pages()), (12_000, 3));
        assert_eq!(group.usage_bytes(), 3 * PAGE_SIZE, "the group is charged in the same page quanta");
        let during = acc.snapshot();
        assert_eq!(during.protos, before.protos, "no protocol counter moved: pages, cells, charges, pressure");

        // The group still refuses.
        punt.charge(S0, 4000).unwrap();
        let err = punt.charge(S0, 4000).unwrap_err();
        assert!(matches!(err, ChargeError::GroupLimit { .. }));
        assert_eq!((punt.failures(), group.failures()), (1, 1));

        for _ in 0..6 {
            punt.uncharge(S0, 2000);
        }
        punt.uncharge(S0, 4000);
        assert_eq!(group.usage_bytes(), 0);
        assert_eq!(acc.snapshot().protos, before.protos);
    }

    #[test]
    fn bypass_ignores_pressure_while_others_see_it() {
        let acc = accounting(0, ProtoLimits { min: 1, pressure: 1, max: 2 });
        let group = acc.group("g", Group::UNLIMITED).unwrap();
        let mut data = Consumer::new(&acc, Proto::Tcp, Arc::clone(&group), false);
        let mut control = Consumer::new(&acc, Proto::Tcp, Arc::clone(&group), true);
        data.charge(S0, 2 * PAGE).unwrap();
        assert!(matches!(data.charge(S0, 1), Err(ChargeError::ProtoMax { .. })));
        assert!(data.under_pressure());
        assert!(!control.under_pressure(), "sk_under_memory_pressure() is false under bypass");
        control.charge(S1, 10 * PAGE).unwrap();
        assert_eq!(acc.account(Proto::Tcp).pages(), 2, "bypassed pages are not in the account");
        assert_eq!(group.usage_bytes(), 12 * PAGE_SIZE, "but they are in the group");
    }

    #[test]
    fn drop_returns_the_forward_allocation_and_what_is_still_charged() {
        let acc = accounting(4, ProtoLimits { min: 2, pressure: 3, max: 100 });
        let group = acc.group("g", Group::UNLIMITED).unwrap();
        let mut c = Consumer::new(&acc, Proto::Other, Arc::clone(&group), false);
        let mut b = Consumer::new(&acc, Proto::Other, Arc::clone(&group), true);
        c.charge(S1, 5 * PAGE + 7).unwrap();
        c.uncharge(S1, PAGE);
        b.charge(S0, 123).unwrap();
        assert!(c.under_pressure(), "6 pages folded (batch 4) is above pressure");
        assert_eq!(held(&acc, Proto::Other), 5);
        drop(c);
        drop(b);
        assert_eq!((held(&acc, Proto::Other), group.usage_bytes()), (0, 0));
        assert!(!acc.account(Proto::Other).under_pressure(), "drop follows the reduce rule");
        acc.flush_all();
        assert_eq!(acc.account(Proto::Other).pages(), 0);
        assert!(acc.snapshot().is_drained());
    }

    #[test]
    fn limits_see_the_batched_estimate_within_the_bound() {
        // One lcore, batch 8: up to 8 pages may sit in the cell where limits do not see them.
        let acc = accounting(8, ProtoLimits { min: 1, pressure: 2, max: 2 });
        let group = acc.group("g", Group::UNLIMITED).unwrap();
        let mut c = Consumer::new(&acc, Proto::Udp, group, false);
        let account = acc.account(Proto::Udp);
        for _ in 0..8 {
            c.charge(S0, PAGE).unwrap();
        }
        assert_eq!((account.pages(), account.slot_pages(S0)), (0, 8));
        assert!(!c.under_pressure(), "the estimate is still 0");
        assert!(account.exact_pages() as u64 <= account.limits().max + 2 * 8, "within lcores x batch");
        let err = c.charge(S0, PAGE).unwrap_err();
        assert_eq!(err, ChargeError::ProtoMax { proto: Proto::Udp, pages: 1, allocated: 9, max: 2 });
        assert_eq!((account.pages(), account.slot_pages(S0)), (9, -1), "the rollback stays in the cell");
        assert_eq!(account.exact_pages(), 8);
        assert!(c.under_pressure());
    }

    #[test]
    fn a_consumer_may_move_between_lcores() {
        let acc = accounting(4, roomy());
        let group = acc.group("g", Group::UNLIMITED).unwrap();
        let mut c = Consumer::new(&acc, Proto::Tcp, group, false);
        c.charge(S0, 3 * PAGE).unwrap();
        c.uncharge(S1, 3 * PAGE);
        let account = acc.account(Proto::Tcp);
        assert_eq!((account.slot_pages(S0), account.slot_pages(S1), account.exact_pages()), (3, -3, 0));
        acc.flush(S0);
        assert_eq!(account.pages(), 3);
        acc.flush(S1);
        assert_eq!(account.pages(), 0);
    }

    #[test]
    fn every_counter_returns_to_zero_after_draining() {
        let acc = accounting(3, ProtoLimits { min: 4, pressure: 8, max: 12 });
        let groups = [acc.group("a", 20 * PAGE_SIZE).unwrap(), acc.group("b", Group::UNLIMITED).unwrap()];
        let mut consumers: Vec<(Consumer, Vec<u32>)> = (0..8)
            .map(|i| {
                let c = Consumer::new(&acc, Proto::ALL[i % 4], Arc::clone(&groups[i % 2]), i % 3 == 0);
                (c, Vec::new())
            })
            .collect();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut ok, mut refused) = (0, 0);
        for _ in 0..20_000 {
            let r = next();
            let (c, held) = &mut consumers[(r % 8) as usize];
            let slot = LcoreSlot((r >> 8) as usize % 2);
            if r >> 16 & 1 == 0 || held.is_empty() {
                let bytes = 64 + (r >> 20) as u32 % 9000;
                match c.charge(slot, bytes) {
                    Ok(()) => {
                        held.push(bytes);
                        ok += 1;
                    }
                    Err(_) => refused += 1,
                }
            } else {
                let i = (r >> 32) as usize % held.len();
                c.uncharge(slot, held.swap_remove(i));
            }
            assert!(c.forward_alloc_bytes() < 2 * PAGE_SIZE);
        }
        assert!(ok > 1000 && refused > 100, "the walk must hit the limits: {ok} ok, {refused} refused");
        let mid = acc.snapshot();
        assert!(mid.protos.iter().any(|p| p.pressure_entries > 0 && p.failures > 0));

        for (c, held) in &mut consumers {
            for bytes in held.drain(..) {
                c.uncharge(LcoreSlot(1), bytes);
            }
            assert_eq!((c.charged_bytes(), c.forward_alloc_bytes()), (0, 0));
        }
        let snap = acc.snapshot();
        assert!(snap.is_drained(), "{snap:?}");
        acc.flush_all();
        for p in &acc.snapshot().protos {
            assert!(!p.under_pressure, "{}: flushed to 0 pages, below min", p.proto);
        }
        let snap = acc.snapshot();
        assert!(snap.protos.iter().all(|p| p.pages == 0 && p.unflushed_pages == 0));
        assert!(snap.groups.iter().all(|g| g.bytes == 0));
        drop(consumers);
        assert_eq!(acc.snapshot(), snap, "dropping drained consumers changes nothing");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "uncharge of 2 bytes with 1 charged")]
    fn uncharging_more_than_charged_is_caught_in_debug_builds() {
        let acc = accounting(0, roomy());
        let mut c = Consumer::new(&acc, Proto::Tcp, acc.group("g", Group::UNLIMITED).unwrap(), false);
        c.charge(S0, 1).unwrap();
        c.uncharge(S0, 2);
    }
}
