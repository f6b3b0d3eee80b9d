//! The round budget (`[poll] budget`, `budget_usecs`) and the `time_squeeze` counter,
//! on net_null ports, whose RX queues are never empty: every poll returns a full burst
//! of 32 (net_null allocates all 32 or none, and the pool never runs dry here).
//!
//! A round ends with a squeeze when its budget is spent while the last poll still
//! returned a full burst. So:
//!
//! - **budget = 1**: every round takes one full burst from one lane, overdraws the
//!   budget and squeezes. Exactly: squeezes = busy rounds, processed = 32 per squeeze,
//!   and the lanes take turns (NAPI's poll list starts after the lane that ran out).
//! - **budget = 1 000 000 packets and 1 000 000 us**: a round only ends when one of the
//!   two is spent. Each squeezed round therefore took at least 1 000 000 packets or at
//!   least a second, so however fast the machine, squeezes <= processed / 1 000 000 +
//!   seconds run (+1 for the TSC-versus-wall-clock rounding): a handful, about a million
//!   times fewer per packet than with budget = 1. Nothing here depends on the rate.
//!
//! - **budget = 1 on a net_ring port** fed 40 frames: a squeeze needs the last poll to
//!   have returned a *full* burst. The worker's first poll that finds anything takes a
//!   full 32 (the test enqueues 32, then 8, and an enqueue becomes visible at once), the
//!   second the remaining 8: exactly two bursts and exactly one squeeze.
//!
//! Each run has its own net_null devices (`net_null_sq*`, `net_null_big*`): stopping a
//! forwarder closes its ports, which releases the ethdevs while their vdevs stay on the
//! vdev bus, so the same name cannot be created again in this process.
//!
//! EAL starts once in this binary (`--no-huge`, `--no-pci`, a per-pid file prefix).

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::RingPort;
use dataplane::eal::Eal;
use dataplane::port::PortIdx;
use dataplane::stats::Counter;
use dataplane::{Config, Forwarder, Report};

/// Packets per RX burst (`forward.burst`), what net_null returns per poll.
const BURST: u64 = 32;
/// The large run's budgets.
const BIG_PACKETS: u64 = 1_000_000;
const BIG_USECS: u64 = 1_000_000;

fn config(prefix: &str, devices: &str, poll: &str) -> Config {
    let text = format!(
        r#"
[eal]
main_lcore = 0
file_prefix = "{prefix}"
args = {args}

[forward]
mode = "io"
burst = {BURST}
pairs = [["n0", "n1"]]

[poll]
{poll}

[[port]]
name = "n0"
device = "net_{devices}0"
args = "size=64,copy=0"

[[port]]
name = "n1"
device = "net_{devices}1"
args = "size=64,copy=0"

[[worker]]
lcore = 1
rx = [{{ port = "n0", queue = 0 }}, {{ port = "n1", queue = 0 }}]
"#,
        args = common::eal_args_toml()
    );
    Config::from_toml_str(&text).unwrap_or_else(|e| panic!("test config refused: {e}\n{text}"))
}

/// Runs the forwarder for `run_for` (then waits for the round in progress to end, which
/// `stop` does); returns the report and the wall time from before start to after stop,
/// an upper bound on the time the worker ran.
fn run(eal: &Eal, config: &Config, run_for: Duration) -> (Report, Duration) {
    let started = Instant::now();
    let fwd = Forwarder::start(eal, config, Arc::new(AtomicBool::new(false)))
        .unwrap_or_else(|e| panic!("forwarder did not start: {e}"));
    std::thread::sleep(run_for);
    let report = fwd.stop();
    (report, started.elapsed())
}

/// What both runs must show: packets went both ways, each was sent or dropped, the
/// devices agree with the worker, every pool is full.
fn check_common(name: &str, report: &Report) {
    assert!(report.worker_errors.is_empty(), "{name}: worker errors: {:?}", report.worker_errors);
    assert!(report.port_errors.is_empty(), "{name}: port errors: {:?}", report.port_errors);
    let snap = &report.snapshot;
    assert_eq!(snap.workers.len(), 1, "{name}");
    let t = snap.total();
    for (i, p) in snap.ports.iter().enumerate() {
        assert_eq!(p.driver, "net_null", "{name}: {}", p.name);
        assert!(snap.port_rx(PortIdx((i) as u16)) > 0, "{name}: {} received nothing", p.name);
        assert_eq!(p.stats.ipackets, snap.port_rx(PortIdx((i) as u16)), "{name}: {} ipackets vs lane rx", p.name);
        assert_eq!(p.stats.opackets, t.port_tx[i], "{name}: {} opackets vs worker tx", p.name);
        assert_eq!(t.port_tx[i], snap.port_rx(PortIdx((1 - i) as u16)), "{name}: {} sends what its partner received", p.name);
    }
    assert_eq!(t.processed(), t.tx_packets() + t.dropped(), "{name}: rx != tx + dropped: {t:?}");
    assert_eq!(t.dropped(), 0, "{name}: {t:?}");
    for pool in &snap.pools {
        assert_eq!(
            (pool.stats.in_use, pool.stats.available),
            (0, pool.stats.size),
            "{name}: pool {} not full: {:?}",
            pool.name,
            pool.stats
        );
    }
    assert!(report.is_clean(), "{name}: {report:?}");
}

#[test]
fn a_tiny_budget_squeezes_every_round_and_a_huge_one_almost_never() {
    let prefix = common::unique_prefix("budget");
    let _runtime_dir = common::RuntimeDir(prefix.clone());
    let tiny = config(&prefix, "null_sq", "budget = 1");
    let big = config(&prefix, "null_big", &format!("budget = {BIG_PACKETS}\nbudget_usecs = {BIG_USECS}"));
    assert_eq!((tiny.poll.budget, big.poll.budget, big.poll.budget_usecs), (1, BIG_PACKETS as u32, BIG_USECS as u32));
    let args = tiny.eal_args("budget", &[]);
    assert!(args.iter().any(|a| a == "--no-pci"), "vdev-only config must run EAL with --no-pci: {args:?}");
    let eal = Eal::init(&args).unwrap_or_else(|e| panic!("EAL did not start ({e}); arguments: {args:?}"));

    // budget = 1: one full burst per round, and every round squeezed.
    let (report, _) = run(&eal, &tiny, Duration::from_millis(500));
    check_common("budget = 1", &report);
    let w = &report.snapshot.workers[0].totals;
    let busy = w[Counter::Rounds] - w[Counter::IdleRounds];
    eprintln!(
        "budget = 1: {} rounds ({} idle), {} squeezed, {} packets",
        w[Counter::Rounds],
        w[Counter::IdleRounds],
        w[Counter::TimeSqueeze],
        w.processed()
    );
    assert!(w[Counter::TimeSqueeze] > 0, "{w:?}");
    assert_eq!(w[Counter::TimeSqueeze], busy, "every round that found packets must end squeezed: {w:?}");
    assert!(
        w[Counter::IdleRounds] * 100 <= w[Counter::Rounds],
        "net_null is never empty, yet {} of {} rounds were idle",
        w[Counter::IdleRounds],
        w[Counter::Rounds]
    );
    assert_eq!(w.processed(), BURST * w[Counter::TimeSqueeze], "one full burst per round: {w:?}");
    let bursts: Vec<u64> = w.lane_bursts.clone();
    assert_eq!(bursts.iter().sum::<u64>(), busy, "one poll per round: {w:?}");
    assert!(bursts[0].abs_diff(bursts[1]) <= 1, "the lanes must take turns: {bursts:?}");
    let tiny_processed = w.processed();
    let tiny_squeeze = w[Counter::TimeSqueeze];

    // budget = 1 000 000 packets / 1 s: a squeeze needs a million packets or a second.
    let (report, elapsed) = run(&eal, &big, Duration::from_millis(500));
    check_common("budget = 1000000", &report);
    let w = &report.snapshot.workers[0].totals;
    eprintln!(
        "budget = {BIG_PACKETS}: {} rounds ({} idle), {} squeezed, {} packets in {elapsed:?}",
        w[Counter::Rounds],
        w[Counter::IdleRounds],
        w[Counter::TimeSqueeze],
        w.processed()
    );
    let bound = w.processed() / BIG_PACKETS + elapsed.as_micros() as u64 / BIG_USECS + 1;
    assert!(
        w[Counter::TimeSqueeze] <= bound,
        "{} squeezes, but each needs {BIG_PACKETS} packets or {BIG_USECS} us: at most {bound} in {} packets and {elapsed:?}",
        w[Counter::TimeSqueeze],
        w.processed()
    );
    assert!(w[Counter::TimeSqueeze] <= w[Counter::Rounds], "{w:?}");
    // Per packet, at least three orders of magnitude below the tiny budget's 1/32.
    assert!(
        w[Counter::TimeSqueeze] * 1000 * tiny_processed <= tiny_squeeze * w.processed(),
        "squeezes per packet: {} / {} with the huge budget vs {tiny_squeeze} / {tiny_processed} with budget = 1",
        w[Counter::TimeSqueeze],
        w.processed()
    );

    drop(report);

    // budget = 1 on ring ports: only the full burst is a squeeze.
    partial_bursts_are_not_squeezed(&eal, &prefix);
    drop(eal);
}

fn partial_bursts_are_not_squeezed(eal: &Eal, prefix: &str) {
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}"
args = {args}

[forward]
mode = "io"
burst = {BURST}
pairs = [["a", "b"]]

[poll]
budget = 1

[[port]]
name = "a"
device = "net_ring_bud_a"

[[port]]
name = "b"
device = "net_ring_bud_b"

[[worker]]
lcore = 1
rx = [{{ port = "a", queue = 0 }}, {{ port = "b", queue = 0 }}]
"#,
        args = common::eal_args_toml()
    );
    let config = Config::from_toml_str(&text).unwrap_or_else(|e| panic!("test config refused: {e}\n{text}"));
    let (a, b) = (RingPort::create("bud_a", 256), RingPort::create("bud_b", 256));
    let pool = common::test_pool("t_bud_pkts", 256);

    let frames: Vec<Vec<u8>> = (0..40).map(|seq| common::frame(0xbd, seq, common::frame_len(seq))).collect();
    let fwd = Forwarder::start(eal, &config, Arc::new(AtomicBool::new(false)))
        .unwrap_or_else(|e| panic!("forwarder did not start: {e}"));
    common::send_frames(&pool, &a.rx, &frames); // enqueues 32, then 8
    let through = common::wait_for(Duration::from_secs(10), || b.tx.len() >= frames.len());
    let report = fwd.stop();
    assert!(through, "only {} of {} frames came out of b within 10 s", b.tx.len(), frames.len());
    let got = common::drain_frames(&b.tx);
    if let Some(diff) = common::first_difference(&got, &frames) {
        panic!("ring a -> b: {diff}");
    }
    assert!(a.tx.is_empty() && a.rx.is_empty() && b.rx.is_empty());

    let w = &report.snapshot.workers[0].totals;
    eprintln!(
        "budget = 1, 40 frames: {} rounds ({} idle), {} squeezed, bursts {:?}",
        w[Counter::Rounds],
        w[Counter::IdleRounds],
        w[Counter::TimeSqueeze],
        w.lane_bursts
    );
    assert_eq!(w.lane_rx, [40, 0], "{w:?}");
    assert_eq!(w.lane_bursts, [2, 0], "a full burst of 32, then 8: {w:?}");
    assert_eq!(w[Counter::TimeSqueeze], 1, "only the round that took a full burst is squeezed: {w:?}");
    assert_eq!(w[Counter::Rounds] - w[Counter::IdleRounds], 2, "{w:?}");
    assert_eq!(w.processed(), w.tx_packets() + w.dropped(), "{w:?}");
    assert!(report.is_clean(), "{report:?}");
    drop(got);
    assert!(pool.is_full(), "test pool: {:?}", pool.stats());
    drop((a, b));
}
