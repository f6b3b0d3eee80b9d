//! Memory accounting under real contention: lcores are threads, each with its own
//! [`LcoreSlot`], charging and uncharging at random.
//!
//! - The global estimate never strays more than `lcores * batch` pages from the exact use, at
//!   every observation (taken between rounds, while every lcore waits at a barrier), and a
//!   flush makes it exact.
//! - Each lcore's cell stays within `batch` pages while everyone runs.
//! - Protocol limits hold up to that bound, group limits hold exactly, and after draining
//!   every counter is zero.
//!
//! No EAL: the accounting is plain Rust.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use mempool::accounting::{Accounting, AccountingConfig, ChargeError, Consumer, Group, LcoreSlot, Proto, ProtoLimits, PAGE_SIZE};

const LCORES: usize = 4;

/// xorshift64: deterministic per thread, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One lcore's consumers and the packet sizes each one holds.
struct Lcore {
    slot: LcoreSlot,
    rng: Rng,
    consumers: Vec<(Consumer, Vec<u32>)>,
    refused_proto: u64,
    refused_group: u64,
}

impl Lcore {
    /// A TCP and a UDP consumer in the lcore's own group, a bypassing ICMP consumer in the
    /// same group, and a TCP consumer in a group shared by all lcores.
    fn new(acc: &Arc<Accounting>, index: usize, own: Arc<Group>, shared: Arc<Group>) -> Self {
        let consumers = vec![
            (Consumer::new(acc, Proto::Tcp, Arc::clone(&own), false), Vec::new()),
            (Consumer::new(acc, Proto::Udp, Arc::clone(&own), false), Vec::new()),
            (Consumer::new(acc, Proto::Icmp, own, true), Vec::new()),
            (Consumer::new(acc, Proto::Tcp, shared, false), Vec::new()),
        ];
        Lcore { slot: LcoreSlot(index), rng: Rng::new(index as u64 + 1), consumers, refused_proto: 0, refused_group: 0 }
    }

    /// One random charge or uncharge; holds at most `cap` packets per consumer.
    fn step(&mut self, cap: usize) {
        let r = self.rng.below(self.consumers.len() as u64) as usize;
        let charge = self.rng.below(2) == 0;
        let bytes = 60 + self.rng.below(9000) as u32;
        let pick = self.rng.next() as usize;
        let (consumer, held) = &mut self.consumers[r];
        if (charge && held.len() < cap) || held.is_empty() {
            match consumer.charge(self.slot, bytes) {
                Ok(()) => held.push(bytes),
                Err(ChargeError::ProtoMax { .. }) => self.refused_proto += 1,
                Err(ChargeError::GroupLimit { .. }) => self.refused_group += 1,
            }
        } else {
            let bytes = held.swap_remove(pick % held.len());
            consumer.uncharge(self.slot, bytes);
        }
    }

    /// Exact pages this lcore holds in each protocol account.
    fn pages(&self) -> [i64; Proto::COUNT] {
        let mut pages = [0; Proto::COUNT];
        for (c, _) in self.consumers.iter().filter(|(c, _)| !c.bypass_prot_mem()) {
            pages[c.proto().index()] += c.reserved_pages() as i64;
        }
        pages
    }

    /// Bytes this lcore holds in `group`.
    fn group_bytes(&self, group: &Arc<Group>) -> u64 {
        self.consumers.iter().filter(|(c, _)| Arc::ptr_eq(c.group(), group)).map(|(c, _)| c.reserved_pages() * PAGE_SIZE).sum()
    }

    fn drain(&mut self) {
        for (consumer, held) in &mut self.consumers {
            for bytes in held.drain(..) {
                consumer.uncharge(self.slot, bytes);
            }
            assert_eq!((consumer.charged_bytes(), consumer.forward_alloc_bytes()), (0, 0));
        }
    }
}

/// What the lcores publish before each barrier, for the observer.
struct Board {
    pages: Vec<[AtomicI64; Proto::COUNT]>,
    shared_bytes: Vec<AtomicU64>,
}

impl Board {
    fn new() -> Self {
        Board {
            pages: (0..LCORES).map(|_| Default::default()).collect(),
            shared_bytes: (0..LCORES).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn publish(&self, lcore: &Lcore, shared: &Arc<Group>) {
        let i = lcore.slot.0;
        for (cell, pages) in self.pages[i].iter().zip(lcore.pages()) {
            cell.store(pages, Relaxed);
        }
        self.shared_bytes[i].store(lcore.group_bytes(shared), Relaxed);
    }

    fn exact(&self, proto: Proto) -> i64 {
        self.pages.iter().map(|p| p[proto.index()].load(Relaxed)).sum()
    }
}

/// Runs `rounds` rounds of `ops` random steps on every lcore; between rounds, with every lcore
/// parked at a barrier, lcore 0 calls `observe(round, board)`. Then every lcore drains and
/// `observe(rounds, board)` runs once more. Returns the lcores' refusal counts.
///
/// An assertion failing on any thread stops every thread at the next barrier (rather than
/// leaving the others waiting forever) and is re-raised here.
fn run_rounds(
    acc: &Arc<Accounting>,
    group_limit: u64,
    shared: &Arc<Group>,
    rounds: usize,
    ops: usize,
    cap: usize,
    observe: &(dyn Fn(usize, &Board) + Sync),
) -> (u64, u64) {
    let barrier = Barrier::new(LCORES);
    let board = Board::new();
    let refused = (AtomicU64::new(0), AtomicU64::new(0));
    let failure = Mutex::new(None);
    let guarded = |f: &mut dyn FnMut()| {
        if let Err(panic) = panic::catch_unwind(AssertUnwindSafe(f)) {
            failure.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(panic);
        }
    };
    let failed = || failure.lock().unwrap_or_else(PoisonError::into_inner).is_some();
    thread::scope(|s| {
        for i in 0..LCORES {
            let own = acc.group(&format!("lcore{i}"), group_limit).unwrap();
            let (barrier, board, refused, guarded, failed) = (&barrier, &board, &refused, &guarded, &failed);
            s.spawn(move || {
                let mut lcore = Lcore::new(acc, i, Arc::clone(&own), Arc::clone(shared));
                for round in 0..=rounds {
                    guarded(&mut || {
                        if round == rounds {
                            lcore.drain();
                        } else {
                            for _ in 0..ops {
                                lcore.step(cap);
                            }
                        }
                        // Only this lcore touches its own group: it must match exactly.
                        assert_eq!(own.usage_bytes(), lcore.group_bytes(&own));
                        assert!(own.usage_bytes() <= own.limit_bytes());
                        board.publish(&lcore, shared);
                    });
                    barrier.wait();
                    if i == 0 {
                        guarded(&mut || observe(round, board));
                    }
                    barrier.wait();
                    if failed() {
                        return;
                    }
                }
                refused.0.fetch_add(lcore.refused_proto, Relaxed);
                refused.1.fetch_add(lcore.refused_group, Relaxed);
            });
        }
    });
    if let Some(panic) = failure.into_inner().unwrap_or_else(PoisonError::into_inner) {
        panic::resume_unwind(panic);
    }
    (refused.0.into_inner(), refused.1.into_inner())
}

fn accounting(batch: u32, limits: ProtoLimits) -> Arc<Accounting> {
    let config = AccountingConfig { limits: [limits; Proto::COUNT], batch_pages: batch, lcores: LCORES };
    Arc::new(Accounting::new(config).unwrap())
}

/// Checks the batching bound at every observation and exactness after draining and a flush.
fn check_bound(batch: u32) {
    let acc = accounting(batch, ProtoLimits { min: 1 << 20, pressure: 1 << 21, max: 1 << 22 });
    let shared = acc.group("shared", Group::UNLIMITED).unwrap();
    let bound = acc.error_bound_pages() as i64;
    assert_eq!(bound, LCORES as i64 * i64::from(batch));
    let worst = AtomicI64::new(0);
    let observations = AtomicU64::new(0);
    let rounds = 400;
    let observe = |round: usize, board: &Board| {
        for proto in Proto::ALL {
            let account = acc.account(proto);
            let exact = board.exact(proto);
            let estimate = account.pages();
            let off = (estimate - exact).abs();
            assert!(off <= bound, "batch {batch}, round {round}, {proto}: estimate {estimate}, exact {exact}, bound {bound}");
            assert_eq!(account.exact_pages(), exact, "cells plus the global counter are exact");
            for slot in 0..LCORES {
                assert!(account.slot_pages(LcoreSlot(slot)).abs() <= i64::from(batch));
            }
            worst.fetch_max(off, Relaxed);
            observations.fetch_add(1, Relaxed);
        }
        assert_eq!(board.exact(Proto::Icmp), 0);
        assert_eq!(acc.account(Proto::Icmp).charges(), 0, "ICMP consumers bypass: no traffic at all");
        let shared_exact: u64 = board.shared_bytes.iter().map(|b| b.load(Relaxed)).sum();
        assert_eq!(shared.usage_bytes(), shared_exact);
        if round == rounds {
            // Drained: exact is zero, the estimate is within the bound, a flush makes it exact.
            for proto in Proto::ALL {
                assert!(acc.account(proto).pages().abs() <= bound);
            }
            acc.flush_all();
            for proto in Proto::ALL {
                assert_eq!(acc.account(proto).pages(), 0, "batch {batch}: exact after a flush");
            }
        }
    };
    let refused = run_rounds(&acc, Group::UNLIMITED, &shared, rounds, 50, 64, &observe);
    assert_eq!(refused, (0, 0), "roomy limits refuse nothing");
    assert_eq!(observations.load(Relaxed), (rounds as u64 + 1) * Proto::COUNT as u64);
    if batch == 0 {
        assert_eq!(worst.load(Relaxed), 0);
    } else {
        assert!(worst.load(Relaxed) > 0, "batch {batch}: the estimate should lag sometimes");
    }
    let snap = acc.snapshot();
    assert!(snap.is_drained(), "{snap:?}");
    assert!(snap.protos.iter().all(|p| p.pages == 0 && p.unflushed_pages == 0 && p.failures == 0));
    assert!(snap.protos[Proto::Tcp.index()].charges > 0);
}

#[test]
fn batch_zero_estimate_is_exact_at_every_observation() {
    check_bound(0);
}

#[test]
fn estimate_within_lcores_times_batch_of_one() {
    check_bound(1);
}

#[test]
fn estimate_within_lcores_times_batch_of_seven() {
    check_bound(7);
}

#[test]
fn estimate_within_lcores_times_batch_of_default() {
    check_bound(AccountingConfig::DEFAULT_BATCH_PAGES);
}

#[test]
fn cells_stay_within_the_batch_while_lcores_run() {
    const BATCH: u32 = 5;
    let acc = accounting(BATCH, ProtoLimits { min: 1 << 20, pressure: 1 << 21, max: 1 << 22 });
    let shared = acc.group("shared", Group::UNLIMITED).unwrap();
    let stop = AtomicBool::new(false);
    let samples = AtomicU64::new(0);
    let seen_full = AtomicBool::new(false);
    let steps = AtomicU64::new(0);
    thread::scope(|s| {
        let workers: Vec<_> = (0..LCORES)
            .map(|i| {
                let own = acc.group(&format!("lcore{i}"), Group::UNLIMITED).unwrap();
                let (acc, shared, stop, steps) = (&acc, &shared, &stop, &steps);
                s.spawn(move || {
                    let mut lcore = Lcore::new(acc, i, own, Arc::clone(shared));
                    while !stop.load(Relaxed) {
                        for _ in 0..64 {
                            lcore.step(32);
                        }
                        steps.fetch_add(64, Relaxed);
                    }
                    lcore.drain();
                })
            })
            .collect();
        // The observer samples every cell until it has seen one full (at +/- batch) and
        // plenty of samples, or for 10 s at most; then it stops the workers, even if one of
        // its assertions failed.
        let observed = panic::catch_unwind(AssertUnwindSafe(|| {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !(seen_full.load(Relaxed) && samples.load(Relaxed) >= 200_000) && Instant::now() < deadline {
                for proto in [Proto::Tcp, Proto::Udp] {
                    for slot in 0..LCORES {
                        let pages = acc.account(proto).slot_pages(LcoreSlot(slot));
                        assert!(pages.abs() <= i64::from(BATCH), "{proto} slot{slot}: {pages} pages in the cell");
                        if pages.abs() == i64::from(BATCH) {
                            seen_full.store(true, Relaxed);
                        }
                        samples.fetch_add(1, Relaxed);
                    }
                }
            }
        }));
        stop.store(true, Relaxed);
        let results: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
        for result in std::iter::once(observed).chain(results) {
            if let Err(panic) = result {
                panic::resume_unwind(panic);
            }
        }
    });
    assert!(samples.load(Relaxed) >= 200_000);
    assert!(steps.load(Relaxed) > 10_000, "the lcores ran while observed");
    assert!(seen_full.load(Relaxed), "cells should fill up to the batch at times");
    acc.flush_all();
    assert!(acc.snapshot().is_drained());
    assert_eq!(acc.account(Proto::Tcp).pages(), 0);
}

#[test]
fn limits_hold_under_contention_and_refusals_leave_nothing_behind() {
    const BATCH: u32 = 4;
    let limits = ProtoLimits { min: 12, pressure: 20, max: 28 };
    let acc = accounting(BATCH, limits);
    let shared = acc.group("shared", 20 * PAGE_SIZE).unwrap();
    let bound = acc.error_bound_pages() as i64;
    let rounds = 300;
    let pressure_seen = AtomicBool::new(false);
    let observe = |round: usize, board: &Board| {
        for proto in [Proto::Tcp, Proto::Udp] {
            let exact = board.exact(proto);
            assert!(
                exact <= limits.max as i64 + bound,
                "round {round}, {proto}: {exact} pages in use, max {} + bound {bound}",
                limits.max
            );
            assert_eq!(acc.account(proto).exact_pages(), exact);
            if acc.account(proto).under_pressure() {
                pressure_seen.store(true, Relaxed);
            }
        }
        assert!(shared.usage_bytes() <= shared.limit_bytes());
        let shared_exact: u64 = board.shared_bytes.iter().map(|b| b.load(Relaxed)).sum();
        assert_eq!(shared.usage_bytes(), shared_exact);
    };
    let (proto_refused, group_refused) = run_rounds(&acc, 16 * PAGE_SIZE, &shared, rounds, 40, 64, &observe);
    assert!(proto_refused > 0, "the protocol max must be hit");
    assert!(group_refused > 0, "group limits must be hit");
    assert!(pressure_seen.load(Relaxed));

    let snap = acc.snapshot();
    assert!(snap.is_drained(), "{snap:?}");
    let tcp = snap.proto(Proto::Tcp);
    assert!(tcp.failures > 0 && tcp.pressure_entries > 0);
    // Drained, the estimate may still hold up to lcores x batch (16) pages, above min (12):
    // pressure can stay set until a flush sharpens the estimate.
    acc.flush_all();
    assert!(!acc.account(Proto::Tcp).under_pressure(), "flushed to 0, below min");
    assert_eq!(snap.protos.iter().map(|p| p.failures).sum::<u64>(), proto_refused, "every protocol refusal is counted once");
    assert_eq!(snap.groups.iter().map(|g| g.failures).sum::<u64>(), group_refused);
    assert_eq!(snap.proto(Proto::Icmp).charges, 0);
    acc.flush_all();
    assert!(acc.snapshot().protos.iter().all(|p| p.pages == 0 && p.unflushed_pages == 0));
}
