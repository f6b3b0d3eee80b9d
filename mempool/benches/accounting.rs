//! What `sk_bypass_prot_mem` saves (the kernel patch set's own microbenchmark, redone here): lcores (threads here) each
//! charge and uncharge 1500-byte packets on their own consumer of the same protocol, for a
//! fixed time, and we count charges per second:
//!
//! - with `batch = 0` every page raised or returned hits the protocol's global counter, one
//!   cache line both threads write;
//! - with the default batch the per-lcore cells absorb it;
//! - with `bypass_prot_mem` the protocol account is not touched at all (each thread's group,
//!   one per port as the forwarder has them, is the only counter left).
//!
//! Patterns: one packet charged then uncharged (each cycle raises and returns a page), and
//! a burst of 32 charged then uncharged (what a backlog holding one RX burst does).
//!
//! Run: `cargo bench -p mempool --bench accounting`; `ACCOUNTING_BENCH_SECS=0.2` for a quick
//! look. Threads are not pinned; on a loaded machine the figures move.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use mempool::accounting::{Accounting, AccountingConfig, Consumer, Group, LcoreSlot, Proto, ProtoLimits};

const PACKET: u32 = 1500;

/// Charge+uncharge cycles per second over all threads, and the protocol account's raises.
fn run(threads: usize, batch: u32, bypass: bool, burst: usize, secs: f64) -> (f64, u64) {
    let huge = ProtoLimits { min: 1 << 40, pressure: 1 << 40, max: 1 << 40 };
    let config = AccountingConfig { limits: [huge; Proto::COUNT], batch_pages: batch, lcores: threads };
    let acc = Arc::new(Accounting::new(config).expect("valid config"));
    let start = Barrier::new(threads + 1);
    let stop = AtomicBool::new(false);
    let (total, elapsed) = thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|i| {
                let group = acc.group(&format!("port{i}"), Group::UNLIMITED).expect("unique name");
                let mut consumer = Consumer::new(&acc, Proto::Udp, group, bypass);
                let (start, stop) = (&start, &stop);
                s.spawn(move || {
                    let slot = LcoreSlot(i);
                    let mut cycles = 0u64;
                    start.wait();
                    while !stop.load(Relaxed) {
                        for _ in 0..burst {
                            consumer.charge(slot, black_box(PACKET)).expect("unlimited");
                        }
                        for _ in 0..burst {
                            consumer.uncharge(slot, black_box(PACKET));
                        }
                        cycles += burst as u64;
                    }
                    cycles
                })
            })
            .collect();
        start.wait();
        let t0 = Instant::now();
        thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Relaxed);
        let total: u64 = workers.into_iter().map(|w| w.join().expect("worker")).sum();
        (total, t0.elapsed())
    });
    acc.flush_all();
    let snap = acc.snapshot();
    assert!(snap.is_drained() && snap.protos.iter().all(|p| p.pages == 0), "drained: {snap:?}");
    (total as f64 / elapsed.as_secs_f64(), snap.proto(Proto::Udp).charges)
}

fn main() {
    let secs: f64 = std::env::var("ACCOUNTING_BENCH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(1.0);
    let default_batch = AccountingConfig::DEFAULT_BATCH_PAGES;
    println!(
        "accounting: charge+uncharge of {PACKET}-byte packets, one UDP consumer and group per thread, {secs} s per cell, {} CPUs",
        thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "{:<9} {:>6} {:>7} | {:>15} | {:>15} {:>13} | {:>9}",
        "pattern", "batch", "bypass", "1 thread Mc/s", "2 threads Mc/s", "ns/charge/thr", "2 thr/1 thr"
    );
    println!("{}", "-".repeat(91));
    let mut two_threads = Vec::new();
    for (pattern, burst) in [("1 packet", 1), ("burst 32", 32)] {
        for batch in [0, default_batch] {
            for bypass in [false, true] {
                let (one, _) = run(1, batch, bypass, burst, secs);
                let (two, raises) = run(2, batch, bypass, burst, secs);
                println!(
                    "{:<9} {:>6} {:>7} | {:>15.1} | {:>15.1} {:>13.1} | {:>9.2}",
                    pattern,
                    batch,
                    if bypass { "yes" } else { "no" },
                    one / 1e6,
                    two / 1e6,
                    2.0 * 1e9 / two,
                    two / one
                );
                if bypass {
                    assert_eq!(raises, 0, "bypass must not touch the protocol account");
                }
                two_threads.push(((pattern, batch, bypass), two));
            }
        }
    }
    println!();
    println!("Mc/s: millions of charges (each followed by its uncharge) per second, all threads together.");
    let rate = |key| two_threads.iter().find(|(k, _)| *k == key).map(|(_, r)| *r).unwrap_or(f64::NAN);
    for (pattern, _) in [("1 packet", 1), ("burst 32", 32)] {
        let unbatched = rate((pattern, 0, false));
        let batched = rate((pattern, default_batch, false));
        let bypassed = rate((pattern, default_batch, true));
        println!(
            "{pattern}, 2 threads: batch {default_batch} vs 0: x{:.2}; bypass vs batch 0: x{:.2}; bypass vs batch {default_batch}: x{:.2}",
            batched / unbatched,
            bypassed / unbatched,
            bypassed / batched
        );
    }
}
