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
use dataplane::stats::sum_lanes;
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
        let both = snap.lanes.len() == 2 && snap.lanes.iter().all(|l| l.totals.tx_packets > 0);
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
    }
    let (id0, id1) = (snap.ports[0].id, snap.ports[1].id);

    // One lane per direction, each forwarding, nothing unaccounted for.
    assert_eq!(snap.lanes.len(), 2, "{:?}", snap.lanes);
    for l in &snap.lanes {
        let t = l.totals;
        assert!(t.tx_packets > 0, "lane {:?} forwarded nothing: {t:?}", l.id);
        assert_eq!(t.rx_packets, t.tx_packets + t.tx_dropped, "lane {:?}: rx != tx + tx_dropped", l.id);
        assert!(t.rx_bursts > 0 && t.rx_bursts <= t.rx_packets, "lane {:?}: {t:?}", l.id);
        let expected_out = if l.id.rx_port == id0 { id1 } else { id0 };
        assert_eq!(l.id.tx_port, expected_out, "lane {:?} does not send to the pair partner", l.id);
        assert_eq!(l.id.lcore.0, 1);
    }
    assert_ne!(snap.lanes[0].id.rx_port, snap.lanes[1].id.rx_port, "both lanes poll the same port");

    // The devices counted what the lanes counted: RX by the receiving port,
    // TX (accepted by the PMD) by the sending port.
    for p in &snap.ports {
        let rx = sum_lanes(&snap.lanes, |id| id.rx_port == p.id);
        let tx = sum_lanes(&snap.lanes, |id| id.tx_port == p.id);
        assert_eq!(p.stats.ipackets, rx.rx_packets, "{}: ipackets vs lane rx: {:?}", p.name, p.stats);
        assert_eq!(p.stats.opackets, tx.tx_packets, "{}: opackets vs lane tx: {:?}", p.name, p.stats);
        assert_eq!(p.stats.ierrors, 0, "{}: {:?}", p.name, p.stats);
    }

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
