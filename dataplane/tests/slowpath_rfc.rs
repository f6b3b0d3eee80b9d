//! Issue 14 item 5 through real ring ports: the inputs the RFCs say to discard silently
//! (RFC 4861 7.1.1 for neighbour solicitations, RFC 1122 3.2.1.2 and RFC 4443 2.3 for
//! echo, RFC 826 for ARP), each sent to a running forwarder: no reply leaves, each is
//! counted once (as `punted` by the worker, under its reason by the slow path), the counter
//! identity holds, and every pool is full at the end.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use common::RingPort;
use dataplane::eal::Eal;
use dataplane::forwarder::Forwarder;
use dataplane::local::Discard;
use dataplane::net::arp::ArpRepr;
use dataplane::net::ethernet::ethertype;
use dataplane::net::l4::{icmp_type, icmpv6_type};
use dataplane::net::{emit, ip_proto, MacAddr};
use dataplane::stats::Counter;
use dataplane::Config;

const HOST: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x99]);
const MAC_A: [u8; 6] = [2, 0, 0, 0, 0xa, 1];
const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const SOLICITED_MAC: MacAddr = MacAddr([0x33, 0x33, 0xff, 0, 0, 1]);

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// A neighbour solicitation for 2001:db8::1 from `src`, broken by `edit` (applied to the
/// ICMPv6 message after its checksum was computed) or not.
fn ns(src: &str, hops: u8, code: u8, sllao: Option<MacAddr>, edit: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let (s, d) = (v6(src), v6("ff02::1:ff00:1"));
    let mut msg =
        emit::icmpv6(s, d, icmpv6_type::NEIGHBOR_SOLICIT, code, [0; 4], &emit::neighbor_solicit_body(v6("2001:db8::1"), sllao));
    edit(&mut msg);
    let ip = emit::Ipv6Repr { hop_limit: hops, ..emit::Ipv6Repr::new(s, d, ip_proto::ICMPV6) }.emit(&msg);
    emit::ethernet(SOLICITED_MAC, HOST, &[], ethertype::IPV6, &ip)
}

/// A neighbour solicitation whose option has length 0, with a valid checksum.
fn ns_zero_length_option() -> Vec<u8> {
    let (s, d) = (v6("2001:db8::2"), v6("ff02::1:ff00:1"));
    let mut body = emit::neighbor_solicit_body(v6("2001:db8::1"), Some(HOST));
    body[17] = 0;
    let msg = emit::icmpv6(s, d, icmpv6_type::NEIGHBOR_SOLICIT, 0, [0; 4], &body);
    let ip = emit::Ipv6Repr { hop_limit: 255, ..emit::Ipv6Repr::new(s, d, ip_proto::ICMPV6) }.emit(&msg);
    emit::ethernet(SOLICITED_MAC, HOST, &[], ethertype::IPV6, &ip)
}

fn echo4(edit: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let icmp = emit::icmp(icmp_type::ECHO_REQUEST, 0, emit::echo_rest(1, 1), b"ping");
    let mut ip = emit::Ipv4Repr::new(HOST_IP, Ipv4Addr::new(10, 0, 0, 1), ip_proto::ICMP).emit(&icmp);
    edit(&mut ip);
    emit::ethernet(MacAddr(MAC_A), HOST, &[], ethertype::IPV4, &ip)
}

fn echo6_bad_checksum() -> Vec<u8> {
    let (s, d) = (v6("2001:db8::2"), v6("2001:db8::1"));
    let mut msg = emit::icmpv6(s, d, icmpv6_type::ECHO_REQUEST, 0, emit::echo_rest(1, 1), b"ping");
    msg[2] ^= 0x10;
    let ip = emit::Ipv6Repr::new(s, d, ip_proto::ICMPV6).emit(&msg);
    emit::ethernet(MacAddr(MAC_A), HOST, &[], ethertype::IPV6, &ip)
}

/// An ARP request for 10.0.0.1 with byte `at` of the ARP body set to `v`.
fn arp_broken(at: usize, v: u8) -> Vec<u8> {
    let mut body = emit::arp(&ArpRepr::request(HOST, HOST_IP, Ipv4Addr::new(10, 0, 0, 1)));
    body[at] = v;
    emit::ethernet(MacAddr::BROADCAST, HOST, &[], ethertype::ARP, &body)
}

#[test]
fn the_slow_path_discards_what_the_rfcs_say() {
    let prefix = common::unique_prefix("slowrfc");
    let _runtime = common::RuntimeDir(prefix.clone());
    let config = Config::from_toml_str(&format!(
        r#"
[eal]
file_prefix = "{prefix}"
args = {}
[forward]
mode = "l3fwd"
[accounting]
[[port]]
name = "a"
device = "net_ring_ra"
ipv4 = "10.0.0.1/24"
ipv6 = "2001:db8::1/64"
[[worker]]
lcore = 1
rx = [{{ port = "a", queue = 0 }}]
"#,
        common::eal_args_toml_with_memory(1024)
    ))
    .unwrap();
    let eal = Eal::init(&config.eal_args("slowrfc", &[])).expect("EAL starts");
    let a = RingPort::create("ra", 1024).with_mac(MAC_A);
    let pool = common::test_pool("slowrfc_test", 256);
    let fwd = Forwarder::start(&eal, &config, Arc::new(AtomicBool::new(false))).expect("forwarder starts");

    let cases: Vec<(&str, Vec<u8>, Discard)> = vec![
        ("NS with a wrong ICMPv6 checksum", ns("2001:db8::2", 255, 0, Some(HOST), |m| m[2] ^= 0x55), Discard::Icmpv6BadChecksum),
        ("NS with ICMPv6 code 1", ns("2001:db8::2", 255, 1, Some(HOST), |_| {}), Discard::NdBadCode),
        ("NS with an option of length 0", ns_zero_length_option(), Discard::NdZeroLengthOption),
        ("NS with hop limit 64", ns("2001:db8::2", 64, 0, Some(HOST), |_| {}), Discard::NdBadHopLimit),
        ("NS from :: with a source link-layer option", ns("::", 255, 0, Some(HOST), |_| {}), Discard::NdDadWithSourceOption),
        ("echo with a wrong IPv4 header checksum", echo4(|ip| ip[10] ^= 0x01), Discard::Ipv4BadChecksum),
        ("ICMPv6 echo with a wrong checksum", echo6_bad_checksum(), Discard::Icmpv6BadChecksum),
        ("ARP with hardware type IEEE 802", arp_broken(1, 6), Discard::ArpBadHardwareType),
        ("ARP with protocol type IPv6", arp_broken(2, 0x86), Discard::ArpBadProtocolType),
        ("ARP with hardware length 8", arp_broken(4, 8), Discard::ArpBadAddressLength),
        ("ARP with operation 3 (RARP)", arp_broken(7, 3), Discard::ArpBadOperation),
    ];
    let frames: Vec<Vec<u8>> = cases.iter().map(|c| c.1.clone()).collect();
    common::send_frames(&pool, &a.rx, &frames);
    let n = cases.len() as u64;
    assert!(
        common::wait_for(Duration::from_secs(10), || fwd.snapshot().slow_path.is_some_and(|sp| sp.discarded() == n)),
        "{:?}",
        fwd.snapshot().slow_path
    );
    // And a good one afterwards, still answered.
    let good = ns("2001:db8::2", 255, 0, Some(HOST), |_| {});
    common::send_frames(&pool, &a.rx, &[good]);
    assert!(common::wait_for(Duration::from_secs(10), || !a.tx.is_empty()));
    let report = fwd.stop();
    let replies = common::drain_frames(&a.tx);
    assert_eq!(replies.len(), 1, "only the valid solicitation is answered: {replies:02x?}");
    assert_eq!(replies[0][54], icmpv6_type::NEIGHBOR_ADVERT);

    let sp = report.snapshot.slow_path.clone().expect("the slow path ran");
    let mut want = [0u64; Discard::COUNT];
    for (_, _, d) in &cases {
        want[d.index()] += 1;
    }
    for (name, _, d) in &cases {
        assert_eq!(sp.discards(*d), want[d.index()], "{name}: {:?}", sp.discards);
    }
    assert_eq!((sp.answered, sp.ignored, sp.discarded()), (1, 0, n));
    let t = report.snapshot.total();
    // Each request counted once by the worker (punted), once by the slow path.
    assert_eq!(t[Counter::Punted], n + 1);
    assert_eq!(t[Counter::Punted], sp.answered + sp.ignored + sp.discarded());
    assert_eq!(t.dropped(), 0, "{:?}", t.drops);
    assert_eq!(t.processed() + t[Counter::Injected] + t[Counter::Mirrored], t.tx_packets() + t.dropped() + t[Counter::Punted]);
    assert!(report.is_clean(), "{report:?}");
    drop(a);
    assert!(pool.is_full());
}
