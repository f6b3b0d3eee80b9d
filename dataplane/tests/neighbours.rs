//! Neighbour resolution through ring ports, the test playing the hosts: no MAC of any host
//! in the forwarder's config. Packets to a host on a port's own subnet (a connected route)
//! and to a gateway (`via`) wait while the slow path solicits (broadcast ARP, multicast NS),
//! leave in order to the MAC the host answered with, and later ones go straight from the
//! workers; a host that never answers ends FAILED with its packets dropped and counted; a
//! queue beyond `unres_qlen` drops its oldest; a host that changes its MAC is followed. At
//! the end every counter adds up, every account is zero and every pool full.

mod common;

use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::RingPort;
use dataplane::eal::Eal;
use dataplane::forwarder::{Forwarder, Snapshot};
use dataplane::neigh::{NeighDrop, NeighState};
use dataplane::net::arp::{self, ArpRepr};
use dataplane::net::ethernet::ethertype;
use dataplane::net::ndisc::{self, NaFlags, NdiscRepr};
use dataplane::net::{emit, ip_proto, parse, Ipv4Packet, Ipv6Packet, MacAddr, L3};
use dataplane::stats::Counter;
use dataplane::Config;
use mempool::{MbufRing, Pool};

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0xa, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0xb, 1];
const SENDER: MacAddr = MacAddr([2, 0, 0, 0, 0xa, 2]);
const H2: MacAddr = MacAddr([2, 0, 0, 0, 0xb, 2]);
const H2_NEW: MacAddr = MacAddr([2, 0, 0, 0, 0xb, 0x22]);

fn v4(a: [u8; 4]) -> Ipv4Addr {
    a.into()
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// A UDP datagram from the host on a (10.0.1.2) to `dst`, its sequence number in the payload.
fn udp4(dst: Ipv4Addr, seq: u32) -> Vec<u8> {
    let src = v4([10, 0, 1, 2]);
    let udp = emit::udp(src.into(), dst.into(), 1000, 2000, &seq.to_be_bytes());
    let ip = emit::Ipv4Repr::new(src, dst, ip_proto::UDP).emit(&udp);
    emit::ethernet(MacAddr(MAC_A), SENDER, &[], ethertype::IPV4, &ip)
}

fn udp6(dst: Ipv6Addr, seq: u32) -> Vec<u8> {
    let src = v6("2001:db8:1::2");
    let udp = emit::udp(src.into(), dst.into(), 1000, 2000, &seq.to_be_bytes());
    let ip = emit::Ipv6Repr::new(src, dst, ip_proto::UDP).emit(&udp);
    emit::ethernet(MacAddr(MAC_A), SENDER, &[], ethertype::IPV6, &ip)
}

/// The sequence number a test datagram carries, and where it was sent.
fn seq_of(f: &[u8]) -> (u32, MacAddr) {
    let p = parse(f).unwrap();
    let l4 = usize::from(p.l4_offset);
    (u32::from_be_bytes(f[l4 + 8..l4 + 12].try_into().unwrap()), MacAddr(f[0..6].try_into().unwrap()))
}

/// The hosts on port b: 10.0.2.2 / 2001:db8:2::2 answer solicitations with `mac`; every
/// other address stays silent. Collects what else leaves b, and the solicitations seen.
struct HostsOnB<'a> {
    rx: &'a MbufRing,
    tx: &'a MbufRing,
    pool: &'a Pool,
    mac: MacAddr,
    data: VecDeque<Vec<u8>>,
    arp_requests: Vec<(Ipv4Addr, MacAddr)>,
    solicitations: Vec<(Ipv6Addr, MacAddr)>,
}

impl HostsOnB<'_> {
    /// Reads what left port b, answering for our host.
    fn poll(&mut self) {
        let mut answers = Vec::new();
        for f in common::drain_frames(self.tx) {
            let p = parse(&f).unwrap();
            let l3 = usize::from(p.l3_offset);
            let dst = MacAddr(f[0..6].try_into().unwrap());
            match p.l3 {
                L3::Arp => {
                    let a = ArpRepr::check(&f[l3..]).expect("a valid ARP request");
                    assert_eq!((a.oper, a.sha, a.spa), (arp::oper::REQUEST, MacAddr(MAC_B), v4([10, 0, 2, 1])));
                    self.arp_requests.push((a.tpa, dst));
                    if a.tpa == v4([10, 0, 2, 2]) {
                        let reply = ArpRepr { oper: arp::oper::REPLY, sha: self.mac, spa: a.tpa, tha: a.sha, tpa: a.spa };
                        answers.push(emit::ethernet(a.sha, self.mac, &[], ethertype::ARP, &emit::arp(&reply)));
                    }
                }
                L3::Ipv6 if f[usize::from(p.l4_offset)] == 135 => {
                    let ip = Ipv6Packet::new_checked(&f[l3..]).unwrap();
                    let msg = NdiscRepr::parse(ip.src_addr(), ip.dst_addr(), ip.hop_limit(), ip.payload()).expect("valid NS");
                    let NdiscRepr::Solicit { target, sllao } = msg else { panic!("{msg:?}") };
                    assert_eq!((ip.src_addr(), sllao), (v6("2001:db8:2::1"), Some(MacAddr(MAC_B))));
                    self.solicitations.push((target, dst));
                    if target == v6("2001:db8:2::2") {
                        // As a Linux host answers: Solicited, Override, our address.
                        let flags = NaFlags { router: false, solicited: true, override_: true };
                        answers.push(ndisc::advert_frame(self.mac, target, flags, MacAddr(MAC_B), ip.src_addr()));
                    }
                }
                _ => self.data.push_back(f),
            }
        }
        common::send_frames(self.pool, self.rx, &answers);
    }

    /// Polls until `n` data frames arrived (at most 10 s).
    fn wait_data(&mut self, n: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.data.len() < n && Instant::now() < deadline {
            self.poll();
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(self.data.len() >= n, "{} of {n} frames out of b", self.data.len());
        self.data.drain(..n).collect()
    }

    /// Polls for `d`.
    fn run_for(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.poll();
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn neighbour(s: &Snapshot, addr: &str) -> Option<(NeighState, Option<MacAddr>)> {
    let n = &s.slow_path.as_ref()?.neighbours;
    n.entries.iter().find(|e| e.key.addr.to_string() == addr).map(|e| (e.state, e.mac))
}

#[test]
fn hosts_are_resolved_held_packets_sent_in_order_failures_counted() {
    let prefix = common::unique_prefix("neigh");
    let _runtime = common::RuntimeDir(prefix.clone());
    // Short timers so that the whole life of an entry fits in a few seconds.
    let config = Config::from_toml_str(&format!(
        r#"
[eal]
file_prefix = "{prefix}"
args = {}
[forward]
mode = "l3fwd"
[accounting]
[neighbour]
base_reachable_time_ms = 1000
retrans_time_ms = 100
delay_first_probe_time = 1
unres_qlen = 8
[[port]]
name = "a"
device = "net_ring_na"
ipv4 = "10.0.1.1/24"
ipv6 = "2001:db8:1::1/64"
[[port]]
name = "b"
device = "net_ring_nb"
ipv4 = "10.0.2.1/24"
ipv6 = "2001:db8:2::1/64"
[[route]]
prefix = "10.9.0.0/16"
port = "b"
via = "10.0.2.2"
[[worker]]
lcore = 1
rx = [{{ port = "a", queue = 0 }}, {{ port = "b", queue = 0 }}]
"#,
        common::eal_args_toml_with_memory(1024)
    ))
    .unwrap();
    assert!(config.routes.iter().all(|r| r.via_mac.is_none()), "no host MAC in the config");
    let eal = Eal::init(&config.eal_args("neighbours", &[])).expect("EAL starts");
    let a = RingPort::create("na", 1024).with_mac(MAC_A);
    let b = RingPort::create("nb", 1024).with_mac(MAC_B);
    let pool = common::test_pool("neigh_test", 1024);
    let fwd = Forwarder::start(&eal, &config, Arc::new(AtomicBool::new(false))).expect("forwarder starts");
    let mut hosts = HostsOnB {
        rx: &b.rx,
        tx: &b.tx,
        pool: &pool,
        mac: H2,
        data: VecDeque::new(),
        arp_requests: vec![],
        solicitations: vec![],
    };

    // 1. A host on b's own subnet: the first packets wait for ARP, then leave in order.
    let t0 = Instant::now();
    common::send_frames(&pool, &a.rx, &(0..5).map(|i| udp4(v4([10, 0, 2, 2]), i)).collect::<Vec<_>>());
    let out = hosts.wait_data(5);
    let resolved_in = t0.elapsed();
    assert_eq!(out.iter().map(|f| seq_of(f)).collect::<Vec<_>>(), (0..5).map(|i| (i, H2)).collect::<Vec<_>>(), "in order, to H2");
    assert_eq!(hosts.arp_requests, [(v4([10, 0, 2, 2]), MacAddr::BROADCAST)], "one broadcast request");
    let ip = Ipv4Packet::new_checked(&out[0][14..]).unwrap();
    assert_eq!((ip.ttl(), ip.verify_checksum(), &out[0][6..12]), (63, true, &MAC_B[..]));
    eprintln!("resolution of 10.0.2.2 through ring ports: first packet out after {resolved_in:?}");
    // Once resolved, packets go straight from the workers (the host route).
    assert!(common::wait_for(Duration::from_secs(5), || neighbour(&fwd.snapshot(), "10.0.2.2")
        == Some((NeighState::Reachable, Some(H2)))));
    let taken = fwd.snapshot().slow_path.unwrap().resolution.taken;
    common::send_frames(&pool, &a.rx, &(5..10).map(|i| udp4(v4([10, 0, 2, 2]), i)).collect::<Vec<_>>());
    assert_eq!(hosts.wait_data(5).iter().map(|f| seq_of(f).0).collect::<Vec<_>>(), (5..10).collect::<Vec<_>>());
    assert_eq!(fwd.snapshot().slow_path.unwrap().resolution.taken, taken, "no longer through the slow path");
    let fib = fwd.snapshot().fib.unwrap();
    assert_eq!(fib.by_origin.get("neighbour"), Some(&1), "a host route for 10.0.2.2: {fib:?}");

    // 2. The same over IPv6: one multicast solicitation to the solicited-node group.
    common::send_frames(&pool, &a.rx, &(0..3).map(|i| udp6(v6("2001:db8:2::2"), i)).collect::<Vec<_>>());
    let out = hosts.wait_data(3);
    assert_eq!(out.iter().map(|f| seq_of(f)).collect::<Vec<_>>(), (0..3).map(|i| (i, H2)).collect::<Vec<_>>());
    assert_eq!(hosts.solicitations, [(v6("2001:db8:2::2"), ndisc::multicast_mac(v6("ff02::1:ff00:2")))]);
    assert_eq!(out[0][14 + 7], 63, "hop limit decremented");

    // 3. A route through a gateway: its next hop takes the MAC the table has.
    common::send_frames(&pool, &a.rx, &[udp4(v4([10, 9, 7, 7]), 42)]);
    assert_eq!(seq_of(&hosts.wait_data(1)[0]), (42, H2));

    // 4. A host that never answers: three solicitations, then FAILED; its packets dropped.
    let dead: Vec<Vec<u8>> = (0..5).map(|i| udp4(v4([10, 0, 2, 3]), i)).collect();
    common::send_frames(&pool, &a.rx, &dead);
    hosts.run_for(Duration::from_millis(600));
    assert_eq!(neighbour(&fwd.snapshot(), "10.0.2.3"), Some((NeighState::Failed, None)));
    let dead_requests = hosts.arp_requests.iter().filter(|(t, _)| *t == v4([10, 0, 2, 3])).count();
    assert_eq!(dead_requests, 3, "mcast_solicit = 3");
    // 5. More than unres_qlen (8) for another silent host: the oldest go first.
    common::send_frames(&pool, &a.rx, &(0..11).map(|i| udp4(v4([10, 0, 2, 4]), i)).collect::<Vec<_>>());
    hosts.run_for(Duration::from_millis(600));
    let r = fwd.snapshot().slow_path.unwrap().resolution;
    assert_eq!(r.drops[NeighDrop::NeighQueueFull as usize], 3);
    assert_eq!(r.drops[NeighDrop::NeighFailed as usize], 5 + 8);

    // 6. The host moves to another MAC and says so (gratuitous ARP): traffic follows.
    hosts.mac = H2_NEW;
    let garp = ArpRepr::request(H2_NEW, v4([10, 0, 2, 2]), v4([10, 0, 2, 2]));
    common::send_frames(&pool, &b.rx, &[emit::ethernet(MacAddr::BROADCAST, H2_NEW, &[], ethertype::ARP, &emit::arp(&garp))]);
    assert!(
        common::wait_for(Duration::from_secs(5), || neighbour(&fwd.snapshot(), "10.0.2.2").and_then(|n| n.1) == Some(H2_NEW)),
        "{:?}",
        neighbour(&fwd.snapshot(), "10.0.2.2")
    );
    common::send_frames(&pool, &a.rx, &[udp4(v4([10, 0, 2, 2]), 77)]);
    assert_eq!(seq_of(&hosts.wait_data(1)[0]), (77, H2_NEW));
    // Re-probed (DELAY, then a unicast request to the new MAC) and confirmed.
    hosts.run_for(Duration::from_millis(1500));
    assert!(hosts.arp_requests.iter().any(|&(t, d)| t == v4([10, 0, 2, 2]) && d == H2_NEW), "{:?}", hosts.arp_requests);
    assert_eq!(neighbour(&fwd.snapshot(), "10.0.2.2").map(|n| n.1), Some(Some(H2_NEW)));

    let report = fwd.stop();
    hosts.poll();
    let t = report.snapshot.total();
    let sp = report.snapshot.slow_path.clone().unwrap();
    let r = sp.resolution;
    // Every packet handed over for resolution came out once.
    assert_eq!(t[Counter::Resolving], r.taken);
    assert_eq!(r.taken, r.sent + r.dropped() + r.held_at_exit + r.send_full, "{r:?}");
    assert_eq!(t.processed() + t[Counter::Injected], t.tx_packets() + t.dropped() + t[Counter::Punted], "{t:?}");
    assert_eq!(t[Counter::Punted], r.taken + sp.answered + sp.ignored + sp.discarded());
    let memory = report.snapshot.memory.as_ref().unwrap();
    let neigh = memory.class("neigh_queue").expect("the neighbour queue's class");
    assert!(!neigh.bypass_prot_mem && neigh.total_bytes_charged > 0, "{neigh:?}");
    assert!(memory.is_drained(), "{memory:?}");
    assert!(report.is_clean(), "{report:?}");
    drop(hosts);
    drop((a, b));
    assert!(pool.is_full());
}
