//! The slow path through real ring ports: in l3fwd mode with its own addresses, the
//! forwarder answers ARP requests, IPv6 neighbour solicitations and ICMP/ICMPv6 echo
//! requests to them out of the port they came in on, drops other traffic to itself, and
//! still routes the rest. Every pool is full at the end.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use common::RingPort;
use dataplane::eal::Eal;
use dataplane::forward::DropReason;
use dataplane::forwarder::Forwarder;
use dataplane::net::arp::{self, ArpRepr};
use dataplane::net::ethernet::ethertype;
use dataplane::net::l4::{icmp_type, icmpv6_type};
use dataplane::net::{checksum, emit, ip_proto, Ipv4Packet, MacAddr};
use dataplane::stats::Counter;
use dataplane::Config;

const HOST: [u8; 6] = [2, 0, 0, 0, 0, 0x99];
const MAC_A: [u8; 6] = [2, 0, 0, 0, 0xa, 1];

const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn arp_request(tpa: [u8; 4]) -> Vec<u8> {
    let req = ArpRepr { oper: arp::oper::REQUEST, sha: MacAddr(HOST), spa: HOST_IP, tha: MacAddr::default(), tpa: tpa.into() };
    emit::ethernet(MacAddr::BROADCAST, MacAddr(HOST), &[], ethertype::ARP, &emit::arp(&req))
}

fn ipv4(dst: [u8; 4], proto: u8, body: &[u8]) -> Vec<u8> {
    let ip = emit::Ipv4Repr { ident: 7, ..emit::Ipv4Repr::new(HOST_IP, dst.into(), proto) }.emit(body);
    emit::ethernet(MacAddr(MAC_A), MacAddr(HOST), &[], ethertype::IPV4, &ip)
}

fn echo_body() -> Vec<u8> {
    emit::icmp(icmp_type::ECHO_REQUEST, 0, emit::echo_rest(0x4242, 1), b"ping")
}

fn udp_body(dst: [u8; 4]) -> Vec<u8> {
    emit::udp(HOST_IP.into(), Ipv4Addr::from(dst).into(), 1, 2, &[])
}

/// An ICMPv6 message of type `ty` (code 0) from `src` to `dst` with hop limit `hops`.
fn icmpv6(src: &str, dst: &str, hops: u8, ty: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    let (s, d): (Ipv6Addr, Ipv6Addr) = (src.parse().unwrap(), dst.parse().unwrap());
    let msg = emit::icmpv6(s, d, ty, 0, rest, body);
    let ip = emit::Ipv6Repr { hop_limit: hops, ..emit::Ipv6Repr::new(s, d, ip_proto::ICMPV6) }.emit(&msg);
    emit::ethernet(MacAddr(MAC_A), MacAddr(HOST), &[], ethertype::IPV6, &ip)
}

#[test]
fn requests_to_the_forwarder_are_answered_and_the_rest_routed() {
    let prefix = common::unique_prefix("slow");
    let _runtime = common::RuntimeDir(prefix.clone());
    let config = Config::from_toml_str(&format!(
        r#"
[eal]
file_prefix = "{prefix}"
args = {}
[forward]
mode = "l3fwd"
[[port]]
name = "a"
device = "net_ring_sa"
ipv4 = "10.0.0.1/24"
ipv6 = "2001:db8::1/64"
[[port]]
name = "b"
device = "net_ring_sb"
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
    let eal = Eal::init(&config.eal_args("slowpath", &[])).expect("EAL starts");
    let a = RingPort::create("sa", 1024).with_mac(MAC_A);
    let b = RingPort::create("sb", 1024);
    let pool = common::test_pool("slow_test", 256);

    let fwd = Forwarder::start(&eal, &config, Arc::new(AtomicBool::new(false))).expect("forwarder starts");
    let ns = emit::neighbor_solicit_body("2001:db8::1".parse().unwrap(), Some(MacAddr(HOST)));
    let ns_dad = emit::neighbor_solicit_body("2001:db8::1".parse().unwrap(), None);
    let (ns_type, echo6) = (icmpv6_type::NEIGHBOR_SOLICIT, icmpv6_type::ECHO_REQUEST);
    let frames = vec![
        arp_request([10, 0, 0, 1]),                                                      // answered
        arp_request([10, 0, 0, 9]),                                                      // someone else's: ignored
        ipv4([10, 0, 0, 1], 1, &echo_body()),                                            // answered
        ipv4([10, 0, 0, 1], 17, &udp_body([10, 0, 0, 1])),                               // UDP to us: local_unhandled
        ipv4([10, 0, 1, 5], 17, &udp_body([10, 0, 1, 5])),                               // routed to b
        icmpv6("2001:db8::2", "2001:db8::1", 64, echo6, emit::echo_rest(1, 1), &[7, 7]), // answered
        icmpv6("2001:db8::2", "ff02::1:ff00:1", 255, ns_type, [0; 4], &ns),              // answered (NA)
        icmpv6("::", "ff02::1:ff00:1", 255, ns_type, [0; 4], &ns_dad),                   // duplicate address detection: defended
    ];
    common::send_frames(&pool, &a.rx, &frames);
    assert!(
        common::wait_for(Duration::from_secs(10), || a.tx.len() >= 5
            && !b.tx.is_empty()
            && fwd.snapshot().slow_path.is_some_and(|sp| sp.ignored == 1)),
        "replies: {} on a, routed: {} on b; {:?}",
        a.tx.len(),
        b.tx.len(),
        (fwd.snapshot().total(), fwd.snapshot().slow_path)
    );
    let report = fwd.stop();
    let replies = common::drain_frames(&a.tx);
    let routed = common::drain_frames(&b.tx);

    assert_eq!(routed.len(), 1);
    assert_eq!(&routed[0][0..6], &[2, 0, 0, 0, 0xb, 2]);
    assert_eq!(replies.len(), 5, "{replies:02x?}");
    for r in &replies {
        // The defence against duplicate address detection goes to all nodes.
        let dad = r[0..6] == [0x33, 0x33, 0, 0, 0, 1];
        assert!(r[0..6] == HOST || dad, "replies go back to the requester");
        assert_eq!(&r[6..12], &MAC_A, "from the port's own MAC");
    }
    let arp = replies.iter().find(|r| r[12..14] == [8, 6]).expect("an ARP reply");
    assert_eq!(&arp[20..22], &[0, 2], "ARP reply opcode");
    assert_eq!(&arp[22..28], &MAC_A, "sender hardware address is ours");
    assert_eq!(&arp[28..32], &[10, 0, 0, 1]);
    let echo = replies.iter().find(|r| r[12..14] == [8, 0]).expect("an echo reply");
    let ip = Ipv4Packet::new_checked(&echo[14..]).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!(ip.dst_addr().octets(), [10, 0, 0, 2]);
    assert_eq!(echo[34], 0, "echo reply type");
    assert_eq!(checksum::sum(&echo[34..]), 0xffff, "ICMP checksum valid");
    let v6: Vec<&Vec<u8>> = replies.iter().filter(|r| r[12..14] == [0x86, 0xdd]).collect();
    assert_eq!(v6.len(), 3);
    assert!(v6.iter().any(|r| r[54] == 129), "ICMPv6 echo reply");
    // R, S, O to the solicitation; R, O (not S) to all nodes against DAD.
    assert!(v6.iter().any(|r| r[54] == 136 && r[58] == 0xe0 && r[0..6] == HOST && r[54 + 26..54 + 32] == MAC_A));
    assert!(v6.iter().any(|r| r[54] == 136 && r[58] == 0xa0 && r[0..2] == [0x33, 0x33] && r[54 + 26..54 + 32] == MAC_A));

    let t = report.snapshot.total();
    // The ARP request for someone else came back over the slow path's returned ring, was
    // uncharged and freed: counted once, as punted, and not as a drop.
    assert_eq!(t[Counter::Punted], 6);
    assert_eq!(t[Counter::Injected], 5);
    assert_eq!(t[DropReason::LocalUnhandled], 1);
    assert_eq!(t.dropped(), 1);
    assert_eq!(t.processed() + t[Counter::Injected], t.tx_packets() + t.dropped() + t[Counter::Punted], "{t:?}");
    let sp = report.snapshot.slow_path.clone().expect("the slow path ran");
    assert_eq!((sp.answered, sp.ignored, sp.discarded(), sp.inject_full), (5, 1, 0, 0));
    assert!(report.is_clean(), "{report:?}");
    drop((a, b));
    assert!(pool.is_full());
}
