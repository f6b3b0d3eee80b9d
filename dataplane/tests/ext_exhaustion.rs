//! Extension-area exhaustion on a real path: with flow metadata on every packet and only
//! 64 areas, a flood of echo requests to the forwarder holds areas while the requests wait
//! for the slow path, so later packets find none. Each such failure is counted
//! (`ext_failures`) and the packet goes on without its extension: every request is still
//! answered, and at shutdown every area and every mbuf is back.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use common::RingPort;
use dataplane::eal::Eal;
use dataplane::forwarder::Forwarder;
use dataplane::stats::Counter;
use dataplane::Config;

const HOST: [u8; 6] = [2, 0, 0, 0, 0, 0x99];
const MAC_A: [u8; 6] = [2, 0, 0, 0, 0xa, 1];
const REQUESTS: u16 = 600;

fn echo_to_router(seq: u16) -> Vec<u8> {
    common::icmp_echo_request(MAC_A, HOST, [10, 0, 0, 1], 3, seq, 0)
}

#[test]
fn too_few_areas_are_counted_and_nothing_leaks() {
    let prefix = common::unique_prefix("extx");
    let _runtime = common::RuntimeDir(prefix.clone());
    let config = Config::from_toml_str(&format!(
        r#"
[eal]
file_prefix = "{prefix}"
args = {}
[forward]
mode = "l3fwd"
[extensions]
flow = true
areas = 64
[[port]]
name = "a"
device = "net_ring_xa"
ipv4 = "10.0.0.1/24"
[[worker]]
lcore = 1
rx = [{{ port = "a", queue = 0 }}]
"#,
        common::eal_args_toml_with_memory(1024)
    ))
    .unwrap();
    let eal = Eal::init(&config.eal_args("ext_exhaustion", &[])).expect("EAL starts");
    let a = RingPort::create("xa", 1024).with_mac(MAC_A);
    let pool = common::test_pool("extx_test", 1024);
    let fwd = Forwarder::start(&eal, &config, Arc::new(AtomicBool::new(false))).expect("forwarder starts");

    let frames: Vec<Vec<u8>> = (0..REQUESTS).map(echo_to_router).collect();
    common::send_frames(&pool, &a.rx, &frames);
    assert!(
        common::wait_for(Duration::from_secs(10), || a.tx.len() >= usize::from(REQUESTS)),
        "{} of {REQUESTS} replies",
        a.tx.len()
    );
    let report = fwd.stop();
    let replies = common::drain_frames(&a.tx);
    assert_eq!(replies.len(), usize::from(REQUESTS), "every request answered, with or without its extension");
    assert!(replies.iter().all(|r| r[34] == 0), "echo replies");
    let t = report.snapshot.total();
    assert!(t[Counter::ExtFailures] > 0, "64 areas should run out under this flood: {t:?}");
    assert_eq!(t[Counter::Punted], u64::from(REQUESTS));
    let areas = report.snapshot.pools.iter().find(|p| p.name == "ext_areas").expect("the area pool is reported");
    assert_eq!((areas.stats.in_use, areas.stats.size), (0, 64), "every area back: {:?}", areas.stats);
    assert!(report.is_clean(), "{report:?}");
    drop((a.rx, a.tx));
    assert!(pool.is_full());
}
