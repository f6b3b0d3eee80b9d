//! A flood of packets to thousands of unresolved addresses (issue 14): the packets waiting
//! for their neighbours are bounded (per neighbour by `unres_qlen`, in all by the neighbour
//! queue's memory budget, entries by `gc_thresh3`), so the mbuf pools are never exhausted;
//! meanwhile a real host on the same port is still resolved and reached, because ARP goes
//! through the slow path's own consumer and ring; afterwards every account drains to zero.
//! Prints the memory held at the worst of the flood.

mod common;

use std::net::Ipv4Addr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::RingPort;
use dataplane::eal::Eal;
use dataplane::forwarder::Forwarder;
use dataplane::neigh::{NeighDrop, NeighState};
use dataplane::net::arp::{self, ArpRepr};
use dataplane::net::ethernet::ethertype;
use dataplane::net::{emit, ip_proto, parse, MacAddr, L3};
use dataplane::stats::Counter;
use dataplane::Config;
use mempool::{Burst, Mbuf};

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0xa, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0xb, 1];
const HOST: MacAddr = MacAddr([2, 0, 0, 0, 0xb, 2]);
const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);

fn udp(dst: Ipv4Addr, seq: u32) -> Vec<u8> {
    let src = Ipv4Addr::new(10, 0, 1, 2);
    let udp = emit::udp(src.into(), dst.into(), 1000, 2000, &seq.to_be_bytes());
    let ip = emit::Ipv4Repr::new(src, dst, ip_proto::UDP).emit(&udp);
    emit::ethernet(MacAddr(MAC_A), MacAddr([2, 0, 0, 0, 0xa, 2]), &[], ethertype::IPV4, &ip)
}

#[test]
fn a_flood_to_unresolved_addresses_neither_exhausts_the_pool_nor_starves_resolution() {
    let prefix = common::unique_prefix("flood");
    let _runtime = common::RuntimeDir(prefix.clone());
    let config = Config::from_toml_str(&format!(
        r#"
[eal]
file_prefix = "{prefix}"
args = {}
[forward]
mode = "l3fwd"
[accounting]
[neighbour]
retrans_time_ms = 200
[[port]]
name = "a"
device = "net_ring_fa"
ipv4 = "10.0.1.1/24"
[[port]]
name = "b"
device = "net_ring_fb"
ipv4 = "10.1.0.1/16"
[[worker]]
lcore = 1
rx = [{{ port = "a", queue = 0 }}, {{ port = "b", queue = 0 }}]
"#,
        common::eal_args_toml_with_memory(1024)
    ))
    .unwrap();
    let eal = Eal::init(&config.eal_args("neigh_flood", &[])).expect("EAL starts");
    let a = RingPort::create("fa", 1024).with_mac(MAC_A);
    let b = RingPort::create("fb", 1024).with_mac(MAC_B);
    // The flood's own pool: what the forwarder holds of it is what the flood cannot send.
    let size = 8192;
    let pool = common::test_pool("flood_test", size);
    let fwd = Forwarder::start(&eal, &config, Arc::new(AtomicBool::new(false))).expect("forwarder starts");

    let (mut sent, mut alloc_failures, mut min_available, mut min_fwd_available) = (0u64, 0u64, size, u32::MAX);
    let (mut host_packets, mut arp_requests) = (0u64, 0u64);
    let mut peak_neigh_bytes = 0u64;
    let mut host_resolved_at: Option<Duration> = None;
    let mut out: Burst = Burst::new();
    let start = Instant::now();
    let mut i = 0u32;
    // Three seconds of 5,000 addresses in turn (10.1.1.0 up), and one packet in 64 to the
    // real host, whose ARP requests the test answers on b.
    while start.elapsed() < Duration::from_secs(3) {
        let mut burst: Burst = Burst::new();
        while burst.spare() > 0 {
            let dst =
                if i.is_multiple_of(64) { HOST_IP } else { Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 1, 1, 0)) + i % 5000) };
            let Ok(mut m) = Mbuf::alloc(&pool) else {
                alloc_failures += 1;
                break;
            };
            m.set_data(&udp(dst, i)).unwrap();
            let _ = burst.push(m);
            i += 1;
        }
        sent += a.rx.enqueue(&mut burst) as u64;
        burst.clear();
        // Port b: answer ARP for the real host, count what arrives for it.
        let mut answers = Vec::new();
        while b.tx.dequeue(&mut out) > 0 {
            for m in out.as_slice() {
                let f = m.data();
                let Ok(p) = parse(f) else { continue };
                match p.l3 {
                    L3::Arp => {
                        arp_requests += 1;
                        let a = ArpRepr::check(&f[14..]).unwrap();
                        if a.tpa == HOST_IP {
                            let r = ArpRepr { oper: arp::oper::REPLY, sha: HOST, spa: HOST_IP, tha: a.sha, tpa: a.spa };
                            answers.push(emit::ethernet(a.sha, HOST, &[], ethertype::ARP, &emit::arp(&r)));
                        }
                    }
                    L3::Ipv4 if f[30..34] == HOST_IP.octets() => {
                        assert_eq!(&f[0..6], &HOST.0, "to the host's MAC");
                        host_packets += 1;
                        host_resolved_at.get_or_insert(start.elapsed());
                    }
                    _ => {}
                }
            }
            out.clear();
        }
        common::send_frames(&pool, &b.rx, &answers);
        min_available = min_available.min(pool.stats().available);
        let snap = fwd.snapshot();
        min_fwd_available = snap.pools.iter().map(|p| p.stats.available).min().unwrap_or(0).min(min_fwd_available);
        if let Some(c) = snap.memory.as_ref().and_then(|m| m.class("neigh_queue")) {
            peak_neigh_bytes = peak_neigh_bytes.max(c.bytes());
        }
    }
    let during = fwd.snapshot();
    // The flood ends; what is held drains as its entries fail. A slow path that lags
    // behind the flood (a loaded machine) still solicits meanwhile: b's ring is emptied
    // until it has stopped, so that no request of the forwarder's pool waits there at exit.
    let mut drain_b = |arp_requests: &mut u64| {
        while b.tx.dequeue(&mut out) > 0 {
            *arp_requests += out.as_slice().iter().filter(|m| parse(m.data()).is_ok_and(|p| p.l3 == L3::Arp)).count() as u64;
            out.clear();
        }
    };
    assert!(
        common::wait_for(Duration::from_secs(15), || {
            drain_b(&mut arp_requests);
            fwd.snapshot().slow_path.is_some_and(|s| s.neighbours.held == 0)
        }),
        "held: {:?}",
        fwd.snapshot().slow_path.map(|s| s.neighbours.held)
    );
    let originated = || fwd.snapshot().slow_path.map_or(0, |s| s.resolution.originated);
    let mut last = (originated(), Instant::now());
    assert!(common::wait_for(Duration::from_secs(15), || {
        drain_b(&mut arp_requests);
        let now = originated();
        if now != last.0 {
            last = (now, Instant::now());
        }
        last.1.elapsed() > Duration::from_millis(500)
    }));
    drain_b(&mut arp_requests);
    assert!(common::wait_for(Duration::from_secs(5), || a.rx.is_empty()));
    let report = fwd.stop();
    drop(common::drain_frames(&a.tx));
    while b.tx.dequeue(&mut out) > 0 {
        out.clear();
    }

    let sp = report.snapshot.slow_path.clone().unwrap();
    let r = sp.resolution;
    let class = report.snapshot.memory.as_ref().unwrap().class("neigh_queue").unwrap().clone();
    let budget = 2u64 << 20;
    println!(
        "flood: {sent} packets in 3 s to 5000 unresolved addresses and a real host ({host_packets} of its packets delivered, \
         first at {host_resolved_at:?}); {arp_requests} ARP requests out of b; held at the worst {} bytes in the neighbour \
         queue ({} packets; budget {budget}), the class's own peak {} bytes; the flood's pool at least {min_available} of \
         {size} free, the forwarder's at least {min_fwd_available}; resolution {r:?}; table {:?}",
        peak_neigh_bytes,
        peak_neigh_bytes / 2304,
        class.peak_bytes,
        sp.neighbours.table
    );
    assert_eq!(alloc_failures, 0, "the flood's pool ran dry: the forwarder held it");
    assert!(min_available > size / 4, "at least a quarter of the pool free throughout: {min_available}");
    assert!(min_fwd_available > 0 && r.no_mbuf == 0, "the forwarder's pool was never empty");
    assert!(class.peak_bytes <= budget, "the neighbour queue stayed within its budget: {class:?}");
    assert!(host_packets > 0, "the real host was resolved and reached during the flood");
    let host = during.slow_path.unwrap().neighbours.entries.into_iter().find(|e| e.key.addr == std::net::IpAddr::V4(HOST_IP));
    assert!(host.is_some_and(|h| h.mac == Some(HOST) && h.state != NeighState::Failed), "{host:?}");
    let dropped_by_table = r.drops[NeighDrop::NeighTableFull as usize] + r.drops[NeighDrop::NeighFailed as usize];
    assert!(dropped_by_table + r.proto_mem > 0, "the flood was dropped by the table or the budget: {r:?}");
    let t = report.snapshot.total();
    assert_eq!(t[Counter::Resolving], r.taken);
    assert_eq!(r.taken, r.sent + r.dropped() + r.held_at_exit + r.send_full, "{r:?}");
    assert_eq!(t.processed() + t[Counter::Injected], t.tx_packets() + t.dropped() + t[Counter::Punted], "{t:?}");
    let memory = report.snapshot.memory.as_ref().unwrap();
    assert!(memory.is_drained(), "every account back at zero: {memory:?}");
    assert!(report.is_clean(), "{report:?}");
    drop((a, b));
    assert!(pool.is_full());
}
