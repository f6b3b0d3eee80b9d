//! The forwarder in this process on two net_ring ports built on rings the test
//! owns, so the test can feed exact packets in and read exactly what came out.
//!
//! ```text
//!   a.rx --RX--> net_ring_a --forward--> net_ring_b --TX--> b.tx   (N packets)
//!   a.tx <--TX-- net_ring_a <--forward-- net_ring_b <--RX-- b.rx   (M packets)
//! ```
//! Every packet must come out once, in order, byte for byte; the lanes and the
//! devices must have counted exactly that; and at the end the forwarder's pools
//! and the test's own pool must be full.
//!
//! EAL starts once in this binary (`--no-huge`, `--no-pci`, a per-pid file
//! prefix), so it holds a single test; if EAL cannot start, the test fails.
//! Drop order matters: the ports keep pointers to the rings, so the rings live
//! until the forwarder has stopped and closed the ports; the test pool and the
//! rings go before EAL is cleaned up.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::RingPort;
use dataplane::eal::Eal;
use dataplane::port::PortIdx;
use dataplane::{Config, Forwarder};

/// Packets sent a -> b.
const N: u32 = 1000;
/// Packets sent b -> a.
const M: u32 = 500;
/// Every ring holds all the packets of either direction at once (capacity - 1).
const RING_CAPACITY: u32 = 2048;
/// Stream tags written into the frames, so the two directions never look alike.
const A_TO_B: u8 = 0xab;
const B_TO_A: u8 = 0xba;

fn config(prefix: &str) -> Config {
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}"
args = {args}

[forward]
pairs = [["a", "b"]]

[[port]]
name = "a"
device = "net_ring_a"

[[port]]
name = "b"
device = "net_ring_b"

[[worker]]
lcore = 1
rx = [{{ port = "a", queue = 0 }}, {{ port = "b", queue = 0 }}]
"#,
        args = common::eal_args_toml()
    );
    Config::from_toml_str(&text).unwrap_or_else(|e| panic!("test config refused: {e}\n{text}"))
}

/// The frames of one direction, as the test expects to read them back.
fn frames(stream: u8, count: u32) -> Vec<Vec<u8>> {
    (0..count).map(|seq| common::frame(stream, seq, common::frame_len(seq))).collect()
}

#[test]
fn ring_ports_forward_exact_packets_in_order() {
    let prefix = common::unique_prefix("ring");
    let _runtime_dir = common::RuntimeDir(prefix.clone());
    let config = config(&prefix);
    let args = config.eal_args("ring_forwarding", &[]);
    assert!(args.iter().any(|a| a == "--no-pci"), "vdev-only config must run EAL with --no-pci: {args:?}");
    let eal = Eal::init(&args).unwrap_or_else(|e| panic!("EAL did not start ({e}); arguments: {args:?}"));

    // Declared before the forwarder, so that on a panic they drop after it.
    let a = RingPort::create("a", RING_CAPACITY);
    let b = RingPort::create("b", RING_CAPACITY);
    let test_pool = common::test_pool("t_ring_pkts", 2048);
    assert!(u64::from(N + M) <= u64::from(test_pool.size()));

    let fwd = Forwarder::start(&eal, &config, Arc::new(AtomicBool::new(false)))
        .unwrap_or_else(|e| panic!("forwarder did not start: {e}"));

    let a_to_b = frames(A_TO_B, N);
    let b_to_a = frames(B_TO_A, M);
    common::send_frames(&test_pool, &a.rx, &a_to_b);
    common::send_frames(&test_pool, &b.rx, &b_to_a);

    // Wait (bounded) until everything went through; the checks below say what
    // was missing if it did not.
    let deadline = Instant::now() + Duration::from_secs(10);
    while (b.tx.len() < N as usize || a.tx.len() < M as usize) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let report = fwd.stop();
    let snap = &report.snapshot;

    // Nothing left behind on the RX side, exactly everything on the TX side.
    assert_eq!(a.rx.len(), 0, "packets left unread in a.rx");
    assert_eq!(b.rx.len(), 0, "packets left unread in b.rx");
    let got_b = common::drain_frames(&b.tx);
    let got_a = common::drain_frames(&a.tx);
    assert_eq!(got_b.len(), N as usize, "a -> b: wrong number of packets out of net_ring_b");
    assert_eq!(got_a.len(), M as usize, "b -> a: wrong number of packets out of net_ring_a");
    if let Some(diff) = common::first_difference(&got_b, &a_to_b) {
        panic!("a -> b: {diff}");
    }
    if let Some(diff) = common::first_difference(&got_a, &b_to_a) {
        panic!("b -> a: {diff}");
    }
    drop((got_a, got_b));

    // The lanes and the devices counted exactly those packets.
    assert!(report.worker_errors.is_empty(), "worker errors: {:?}", report.worker_errors);
    assert!(report.port_errors.is_empty(), "port errors: {:?}", report.port_errors);
    let t = snap.total();
    assert_eq!(t.dropped(), 0, "{t:?}");
    for (i, p) in snap.ports.iter().enumerate() {
        // Port a receives the N packets of a.rx and sends the M for a.tx; b the reverse.
        let (rx, tx) = if p.name == "a" { (N, M) } else { (M, N) };
        assert_eq!((snap.port_rx(PortIdx(i as u16)), t.port_tx[i]), (u64::from(rx), u64::from(tx)), "{}", p.name);
    }
    for p in &snap.ports {
        assert_eq!(p.driver, "net_ring", "{}", p.name);
        // Port a receives the N packets of a_rx and sends the M for a_tx; b the reverse.
        let (id, rx, tx) = if p.name == "a" { (a.id, N, M) } else { (b.id, M, N) };
        assert_eq!(p.id, id, "{}", p.name);
        assert_eq!((p.stats.ipackets, p.stats.opackets), (u64::from(rx), u64::from(tx)), "{}: {:?}", p.name, p.stats);
        assert_eq!(p.stats.oerrors, 0, "{}: {:?}", p.name, p.stats);
    }

    // Every mbuf is back: the forwarder's pools (checked after the ports
    // closed) and the test's pool (now that the rings are drained).
    assert!(!snap.pools.is_empty(), "no pool in the report");
    for pool in &snap.pools {
        assert_eq!(pool.stats.in_use, 0, "pool {} leaked: {:?}", pool.name, pool.stats);
        assert_eq!(pool.stats.available, pool.stats.size, "pool {}: {:?}", pool.name, pool.stats);
    }
    assert!(report.is_clean(), "{report:?}");
    let stats = test_pool.stats();
    assert_eq!((stats.in_use, stats.available), (0, stats.size), "test pool not full: {stats:?}");

    // The ports are closed, so the rings may go; then the pool; EAL last.
    drop((a.rx, a.tx, b.rx, b.tx));
    assert!(test_pool.is_full());
    drop(test_pool);
    drop(eal);
}
