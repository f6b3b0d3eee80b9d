//! The forwarder in this process on two net_null ports, one worker on lcore 1.
//!
//! net_null makes packets up on RX and frees them on TX, so after a short run
//! both lanes must have forwarded something, every received packet must be
//! accounted for as sent or dropped, the devices' counters must agree with the
//! lanes', and every mbuf must be back in its pool once the ports are closed.
//!
//! EAL starts once in this binary (`--no-huge`, `--no-pci`, a per-pid file
//! prefix), so it holds a single test; if EAL cannot start, the test fails.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::eal::Eal;
use dataplane::port::PortIdx;
use dataplane::stats::Counter;
use dataplane::{Config, Forwarder};

fn config(prefix: &str) -> Config {
    let text = format!(
        r#"
[eal]
main_lcore = 0
file_prefix = "{prefix}"
args = {args}

[forward]
mode = "io"
pairs = [["null0", "null1"]]

[[port]]
name = "null0"
device = "net_null0"
args = "size=64,copy=0"

[[port]]
name = "null1"
device = "net_null1"
args = "size=64,copy=0"

[[worker]]
lcore = 1
rx = [{{ port = "null0", queue = 0 }}, {{ port = "null1", queue = 0 }}]
"#,
        args = common::eal_args_toml()
    );
    Config::from_toml_str(&text).unwrap_or_else(|e| panic!("test config refused: {e}\n{text}"))
}

#[test]
fn null_ports_forward_both_ways_and_every_mbuf_comes_back() {
    let prefix = common::unique_prefix("null");
    let _runtime_dir = common::RuntimeDir(prefix.clone());
    let config = config(&prefix);
    let args = config.eal_args("null_forwarding", &[]);
    assert!(args.iter().any(|a| a == "--no-pci"), "vdev-only config must run EAL with --no-pci: {args:?}");

    let eal = Eal::init(&args).unwrap_or_else(|e| panic!("EAL did not start ({e}); arguments: {args:?}"));
    let fwd = Forwarder::start(&eal, &config, Arc::new(AtomicBool::new(false)))
        .unwrap_or_else(|e| panic!("forwarder did not start: {e}"));

    // Run about a second, and in any case until both lanes forwarded something
    // (bounded, so a stuck worker fails the test instead of hanging it).
    let started = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let snap = fwd.snapshot();
        let t = snap.total();
        let both = t.port_tx.len() == 2 && t.port_tx.iter().all(|&n| n > 0);
        if (both && started.elapsed() >= Duration::from_secs(1)) || started.elapsed() >= Duration::from_secs(10) {
            break;
        }
    }
    let report = fwd.stop();
    let snap = &report.snapshot;

    assert!(report.worker_errors.is_empty(), "worker errors: {:?}", report.worker_errors);
    assert!(report.port_errors.is_empty(), "port errors: {:?}", report.port_errors);

    // Two ports, both net_null, in config order.
    let names: Vec<&str> = snap.ports.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["null0", "null1"]);
    for p in &snap.ports {
        assert_eq!(p.driver, "net_null", "{}", p.name);
        assert_eq!(p.rx_buffer, "per_packet", "{}: the config's default RX buffer model", p.name);
        assert!(p.link.up, "{}: {}", p.name, p.link.text);
    }

    // One worker, one lane per port, each forwarding, nothing unaccounted for.
    assert_eq!(snap.workers.len(), 1);
    let w = &snap.workers[0];
    assert_eq!(w.lcore.0, 1);
    assert_eq!(w.lanes.len(), 2, "{:?}", w.lanes);
    assert_ne!(w.lanes[0].port_id, w.lanes[1].port_id, "both lanes poll the same port");
    let t = &w.totals;
    for (l, (&rx, &bursts)) in w.lanes.iter().zip(t.lane_rx.iter().zip(&t.lane_bursts)) {
        assert!(rx > 0, "lane {l:?} received nothing");
        assert!(bursts > 0 && bursts <= rx, "lane {l:?}: {bursts} bursts for {rx} packets");
    }
    assert_eq!(t.processed(), t.tx_packets() + t.dropped(), "rx != tx + dropped: {t:?}");
    assert!(t[Counter::Rounds] > 0 && t[Counter::BusyCycles] > 0, "{t:?}");

    // The devices counted what the worker counted: each port received what its lane
    // received and sent what its pair partner received (io mode).
    for (i, p) in snap.ports.iter().enumerate() {
        let partner = 1 - i;
        assert_eq!(p.stats.ipackets, snap.port_rx(PortIdx(i as u16)), "{}: ipackets vs lane rx: {:?}", p.name, p.stats);
        assert_eq!(p.stats.opackets, t.port_tx[i], "{}: opackets vs worker tx: {:?}", p.name, p.stats);
        assert_eq!(t.port_tx[i], snap.port_rx(PortIdx(partner as u16)), "{}: io sends what the partner received", p.name);
        assert_eq!(p.stats.ierrors, 0, "{}: {:?}", p.name, p.stats);
    }
    assert!(!report.histograms.burst_cycles.is_empty(), "timed bursts were recorded");

    // Every mbuf is back once the workers stopped and the ports closed.
    assert!(!snap.pools.is_empty(), "no pool in the report");
    for pool in &snap.pools {
        assert_eq!(pool.stats.in_use, 0, "pool {} leaked: {:?}", pool.name, pool.stats);
        assert_eq!(pool.stats.available, pool.stats.size, "pool {} not full: {:?}", pool.name, pool.stats);
    }
    assert!(report.is_clean(), "{report:?}");

    drop(report);
    drop(eal);
}
