//! Memory accounting on a real path: a port whose TX ring nobody reads (a net_ring port
//! with a small ring) fills its backlog, whose ICMP charges reach the protocol's `max`
//! until packets are dropped as `proto_mem`; echo requests to the forwarder itself are
//! still answered during that pressure, because the slow path's consumer bypasses the
//! protocol account (sk_bypass_prot_mem). Once the ring is read again the backlog
//! drains, and at shutdown every account reads zero and every pool is full.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use common::RingPort;
use dataplane::eal::Eal;
use dataplane::forward::DropReason;
use dataplane::forwarder::Forwarder;
use dataplane::stats::Counter;
use dataplane::Config;
use mempool::accounting::Proto;

const HOST: [u8; 6] = [2, 0, 0, 0, 0, 0x99];
const MAC_A: [u8; 6] = [2, 0, 0, 0, 0xa, 1];

fn echo(dst: [u8; 4], seq: u16) -> Vec<u8> {
    common::icmp_echo_request(MAC_A, HOST, dst, 9, seq, 20)
}

#[test]
fn backlog_pressure_drops_proto_mem_while_the_slow_path_still_answers() {
    let prefix = common::unique_prefix("mem");
    let _runtime = common::RuntimeDir(prefix.clone());
    let config = Config::from_toml_str(&format!(
        r#"
[eal]
file_prefix = "{prefix}"
args = {}
[forward]
mode = "l3fwd"
[accounting]
batch_pages = 0
backlog = 512
backlog_under_pressure = 512
icmp = {{ min = 2, pressure = 4, max = 8 }}
[[port]]
name = "a"
device = "net_ring_ma"
ipv4 = "10.0.0.1/24"
[[port]]
name = "b"
device = "net_ring_mb"
[[route]]
prefix = "10.0.1.0/24"
port = "b"
via_mac = "02:00:00:00:0b:02"
[[worker]]
lcore = 1
rx = [{{ port = "a", queue = 0 }}, {{ port = "b", queue = 0 }}]
"#,
        common::eal_args_toml_with_memory(1024)
    ))
    .unwrap();
    let eal = Eal::init(&config.eal_args("memory", &[])).expect("EAL starts");
    let a = RingPort::create("ma", 1024).with_mac(MAC_A);
    // Nobody reads port b's TX ring until later: it holds 31 packets.
    let b = RingPort::with_capacities("mb", 64, 32);
    let pool = common::test_pool("mem_test", 512);
    let fwd = Forwarder::start(&eal, &config, Arc::new(AtomicBool::new(false))).expect("forwarder starts");

    // 120 echo requests routed towards b: 31 fit its ring, the rest wait in the backlog
    // until ICMP's max (8 pages, ~14 packets of 2304 bytes) refuses them.
    let routed: Vec<Vec<u8>> = (0..120).map(|i| echo([10, 0, 1, 5], i)).collect();
    common::send_frames(&pool, &a.rx, &routed);
    assert!(
        common::wait_for(Duration::from_secs(10), || fwd.snapshot().total().drops[DropReason::ProtoMem.index()] > 0),
        "no proto_mem drops: {:?}",
        fwd.snapshot().total()
    );
    let snap = fwd.snapshot();
    let icmp = snap.memory.as_ref().unwrap().proto(Proto::Icmp);
    assert!(icmp.under_pressure, "ICMP under pressure: {icmp:?}");
    assert!(icmp.failures > 0 && icmp.pages as u64 <= icmp.limits.max, "{icmp:?}");

    // Pings to the forwarder itself still get answers: the slow path bypasses ICMP's account.
    let pings: Vec<Vec<u8>> = (0..5).map(|i| echo([10, 0, 0, 1], 1000 + i)).collect();
    common::send_frames(&pool, &a.rx, &pings);
    assert!(common::wait_for(Duration::from_secs(10), || a.tx.len() >= 5), "replies: {}", a.tx.len());
    let replies = common::drain_frames(&a.tx);
    assert_eq!(replies.len(), 5);
    assert!(replies.iter().all(|r| r[34] == 0 && r[26..30] == [10, 0, 0, 1]), "echo replies from 10.0.0.1");
    let t = fwd.snapshot().total();
    assert_eq!(t[Counter::Punted], 5);
    assert_eq!(t[DropReason::ProtoMem] + t[Counter::Backlogged] + 31, 120, "{t:?}");

    // Read port b's ring again: the backlog drains out, in order, behind the first 31.
    let mut out = Vec::new();
    assert!(
        common::wait_for(Duration::from_secs(10), || {
            out.extend(common::drain_frames(&b.tx));
            out.len() as u64 == 31 + t[Counter::Backlogged]
        }),
        "got {} of {}",
        out.len(),
        31 + t[Counter::Backlogged]
    );
    let seqs: Vec<u16> = out.iter().map(|f| u16::from_be_bytes([f[40], f[41]])).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    let report = fwd.stop();
    let t = report.snapshot.total();
    assert_eq!(t[Counter::BacklogSent], t[Counter::Backlogged]);
    let memory = report.snapshot.memory.as_ref().unwrap();
    assert!(memory.is_drained(), "every account back at zero: {memory:?}");
    // Per consumer class: the backlog went through ICMP's account, the slow path bypassed it.
    let backlog = memory.class("tx_backlog").expect("the TX backlogs' class");
    assert!(!backlog.bypass_prot_mem && backlog.total_bytes_charged > 0 && backlog.total_bytes_bypassed == 0, "{backlog:?}");
    assert_eq!(backlog.total_bytes_charged, t[Counter::Backlogged] * 2304, "each backlogged packet's truesize");
    assert!(backlog.peak_bytes >= 2304 && backlog.peak_bytes <= backlog.total_bytes_charged, "{backlog:?}");
    let slow = memory.class("slow_path").expect("the slow path's class");
    assert!(slow.bypass_prot_mem && slow.total_bytes_bypassed == 5 * 2304 && slow.total_bytes_charged == 0, "{slow:?}");
    let json = dataplane::report::memory_json(&report.snapshot);
    assert_eq!(json["consumers"]["slow_path"]["bypass_prot_mem"], true, "{json}");
    assert_eq!(json["consumers"]["tx_backlog"]["bypass_prot_mem"], false, "{json}");
    assert_eq!(json["consumers"]["tx_backlog"]["bytes_charged"], 0, "{json}");
    assert!(report.is_clean(), "{report:?}");
    drop((a.rx, a.tx, b.rx, b.tx));
    assert!(pool.is_full());
}
