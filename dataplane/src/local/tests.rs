//! Every request and its answer byte by byte, and every discard the RFCs ask for (issue 14
//! item 5: each of these was answered before).

use super::*;
use crate::net::arp::ArpRepr;
use crate::net::emit::{echo_rest, Ipv4Repr, Ipv6Repr};

const OUR_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const HOST_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x99]);
const OTHER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x77]);
const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn local() -> Local {
    Local { mac: OUR_MAC, ipv4: Some(US), ipv6: Some(v6("2001:db8::1")) }
}

fn arp_frame(oper: u16, sha: MacAddr, spa: Ipv4Addr, tpa: Ipv4Addr, dst: MacAddr) -> Vec<u8> {
    let a = ArpRepr { oper, sha, spa, tha: MacAddr::default(), tpa };
    emit::ethernet(dst, sha, &[], ethertype::ARP, &emit::arp(&a))
}

fn arp_request(tpa: Ipv4Addr) -> Vec<u8> {
    arp_frame(arp::oper::REQUEST, HOST_MAC, HOST, tpa, MacAddr::BROADCAST)
}

fn echo4(dst: Ipv4Addr) -> Vec<u8> {
    let icmp = emit::icmp(icmp_type::ECHO_REQUEST, 0, [0x12, 0x34, 0, 1], &[0xde, 0xad, 0xbe, 0xef]);
    emit::ethernet(OUR_MAC, HOST_MAC, &[], ethertype::IPV4, &Ipv4Repr::new(HOST, dst, ip_proto::ICMP).emit(&icmp))
}

/// An ICMPv6 message (type `ty`, code, rest, body) from `src` to `dst` with `hops`.
fn icmpv6(ty: u8, code: u8, hops: u8, (src, dst): (&str, &str), rest: [u8; 4], body: &[u8], to: MacAddr) -> Vec<u8> {
    let msg = emit::icmpv6(v6(src), v6(dst), ty, code, rest, body);
    let ip = Ipv6Repr { hop_limit: hops, ..Ipv6Repr::new(v6(src), v6(dst), ip_proto::ICMPV6) }.emit(&msg);
    emit::ethernet(to, HOST_MAC, &[], ethertype::IPV6, &ip)
}

fn ns(src: &str, hops: u8, code: u8, sllao: Option<MacAddr>) -> Vec<u8> {
    let body = emit::neighbor_solicit_body(v6("2001:db8::1"), sllao);
    icmpv6(
        icmpv6_type::NEIGHBOR_SOLICIT,
        code,
        hops,
        (src, "ff02::1:ff00:1"),
        [0; 4],
        &body,
        MacAddr([0x33, 0x33, 0xff, 0, 0, 1]),
    )
}

fn go(f: &[u8]) -> Result<Answer, Discard> {
    let p = parse(f).expect("test frames parse");
    assert!(classify(f, &p, &local()).is_some(), "the worker punts it");
    answer(f, &local())
}

fn reply(f: &[u8]) -> Vec<u8> {
    go(f).expect("answered").reply.expect("a reply")
}

/// The IPv6 source, destination, hop limit and ICMPv6 message of a reply.
fn split6(f: &[u8]) -> (Ipv6Addr, Ipv6Addr, u8, Vec<u8>) {
    let ip = Ipv6Packet::new_checked(&f[14..]).unwrap();
    (ip.src_addr(), ip.dst_addr(), ip.hop_limit(), ip.payload().to_vec())
}

#[test]
fn arp_request_for_us_is_answered_and_teaches_its_sender() {
    let a = go(&arp_request(US)).unwrap();
    let r = a.reply.unwrap();
    assert_eq!(r.len(), 60);
    assert_eq!(&r[0..6], &HOST_MAC.0);
    assert_eq!(&r[6..12], &OUR_MAC.0);
    let got = ArpRepr::check(&r[14..]).unwrap();
    assert_eq!(got, ArpRepr { oper: arp::oper::REPLY, sha: OUR_MAC, spa: US, tha: HOST_MAC, tpa: HOST });
    assert_eq!(
        a.learn,
        Some(Learn::Arp(ArpInput { request: true, sha: HOST_MAC, spa: HOST, tpa: US, for_us: true, unicast: false }))
    );
}

#[test]
fn other_arp_teaches_without_an_answer() {
    let a = go(&arp_request(Ipv4Addr::new(10, 0, 0, 7))).unwrap();
    assert_eq!(a.reply, None);
    assert!(matches!(a.learn, Some(Learn::Arp(ArpInput { for_us: false, .. }))));
    let a = go(&arp_frame(arp::oper::REPLY, HOST_MAC, HOST, US, OUR_MAC)).unwrap();
    assert_eq!(a.reply, None);
    assert!(matches!(a.learn, Some(Learn::Arp(ArpInput { request: false, unicast: true, .. }))));
    // An RFC 5227 probe for our address is answered (target 0.0.0.0), and teaches nothing
    // to the table (it ignores a 0.0.0.0 sender).
    let r = reply(&arp_frame(arp::oper::REQUEST, HOST_MAC, Ipv4Addr::UNSPECIFIED, US, MacAddr::BROADCAST));
    assert_eq!(ArpRepr::check(&r[14..]).unwrap().tpa, Ipv4Addr::UNSPECIFIED);
}

#[test]
fn arp_of_other_kinds_or_addresses_is_discarded() {
    let base = arp_request(US);
    let with = |at: usize, v: u8| {
        let mut f = base.clone();
        f[at] = v;
        f
    };
    assert_eq!(go(&with(15, 6)), Err(Discard::ArpBadHardwareType), "IEEE 802 hardware type");
    assert_eq!(go(&with(16, 0x86)), Err(Discard::ArpBadProtocolType));
    assert_eq!(go(&with(18, 8)), Err(Discard::ArpBadAddressLength));
    assert_eq!(go(&with(19, 16)), Err(Discard::ArpBadAddressLength));
    assert_eq!(go(&with(21, 3)), Err(Discard::ArpBadOperation));
    assert_eq!(go(&with(38, 224)), Err(Discard::ArpBadAddress));
    assert_eq!(go(&base[..40]), Err(Discard::ArpTruncated));
    // Someone else sending from our address.
    let dup = arp_frame(arp::oper::REQUEST, OTHER_MAC, US, HOST, MacAddr::BROADCAST);
    assert_eq!(go(&dup), Err(Discard::DuplicateAddress));
    // A unicast frame for another host.
    let other = arp_frame(arp::oper::REPLY, HOST_MAC, HOST, US, OTHER_MAC);
    assert_eq!(go(&other), Err(Discard::OtherHost));
}

#[test]
fn echo_request_becomes_a_valid_reply() {
    let f = echo4(US);
    let r = reply(&f);
    let ip = Ipv4Packet::new_checked(&r[14..]).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!((ip.src_addr(), ip.dst_addr(), ip.ttl()), (US, HOST, 64));
    assert_eq!(r[34], icmp_type::ECHO_REPLY);
    assert_eq!(checksum::sum(ip.payload()), 0xffff, "ICMP checksum valid");
    assert_eq!(&r[38..46], &[0x12, 0x34, 0, 1, 0xde, 0xad, 0xbe, 0xef], "id, sequence and data kept");
    assert_eq!((&r[0..6], &r[6..12]), (&HOST_MAC.0[..], &OUR_MAC.0[..]));
}

/// RFC 1122 3.2.1.2: the punt path must check the IPv4 header checksum the routing path
/// checks; and the ICMP checksum.
#[test]
fn echo_with_a_bad_checksum_is_discarded() {
    let mut f = echo4(US);
    f[24] ^= 0x40; // IPv4 header checksum
    assert_eq!(go(&f), Err(Discard::Ipv4BadChecksum));
    let mut f = echo4(US);
    f[45] ^= 1; // ICMP data
    assert_eq!(go(&f), Err(Discard::IcmpBadChecksum));
}

#[test]
fn icmpv6_echo_is_answered_and_a_bad_checksum_discarded() {
    let f = icmpv6(icmpv6_type::ECHO_REQUEST, 0, 64, ("2001:db8::2", "2001:db8::1"), echo_rest(7, 1), &[1, 2, 3, 4], OUR_MAC);
    let r = reply(&f);
    let (s, d, h, icmp) = split6(&r);
    assert_eq!((s, d, h), (v6("2001:db8::1"), v6("2001:db8::2"), 64));
    assert_eq!(icmp[0], icmpv6_type::ECHO_REPLY);
    assert_eq!(checksum::pseudo_header_checksum(s.into(), d.into(), 58, &icmp), 0);
    let mut bad = f.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert_eq!(go(&bad), Err(Discard::Icmpv6BadChecksum));
}

/// The answer to a solicitation for our address: an advertisement unicast to the sender,
/// Router, Solicited and Override set, our link-layer address, hop limit 255.
#[test]
fn neighbour_solicitation_is_answered_with_r_s_o() {
    let a = go(&ns("2001:db8::2", 255, 0, Some(HOST_MAC))).unwrap();
    let r = a.reply.unwrap();
    assert_eq!((&r[0..6], &r[6..12]), (&HOST_MAC.0[..], &OUR_MAC.0[..]));
    let (s, d, h, icmp) = split6(&r);
    assert_eq!((s, d, h), (v6("2001:db8::1"), v6("2001:db8::2"), 255));
    let flags = NaFlags { router: true, solicited: true, override_: true };
    assert_eq!(NdiscRepr::parse(s, d, h, &icmp), Ok(NdiscRepr::Advert { flags, target: v6("2001:db8::1"), tlla: Some(OUR_MAC) }));
    assert_eq!(icmp[4], 0xe0);
    assert_eq!(a.learn, Some(Learn::Solicit { src: v6("2001:db8::2"), sllao: Some(HOST_MAC) }));
    // A solicitation for another address: nothing.
    let body = emit::neighbor_solicit_body(v6("2001:db8::5"), Some(HOST_MAC));
    let f = icmpv6(135, 0, 255, ("2001:db8::2", "ff02::1:ff00:5"), [0; 4], &body, MacAddr([0x33, 0x33, 0xff, 0, 0, 5]));
    assert_eq!(go(&f), Ok(Answer::default()));
}

/// RFC 4861 7.2.4 and Linux: duplicate address detection for an address we hold is
/// defended, with an advertisement to all nodes, Solicited clear, Override set.
#[test]
fn dad_for_our_address_is_defended_to_all_nodes() {
    let a = go(&ns("::", 255, 0, None)).unwrap();
    assert_eq!(a.learn, None);
    let r = a.reply.unwrap();
    assert_eq!(&r[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
    let (s, d, h, icmp) = split6(&r);
    assert_eq!((s, d), (v6("2001:db8::1"), ndisc::ALL_NODES));
    let flags = NaFlags { router: true, solicited: false, override_: true };
    assert_eq!(NdiscRepr::parse(s, d, h, &icmp), Ok(NdiscRepr::Advert { flags, target: v6("2001:db8::1"), tlla: Some(OUR_MAC) }));
}

/// Issue 14 item 5: each of these was answered; RFC 4861 7.1.1 says discard.
#[test]
fn solicitations_the_rfc_discards() {
    let mut bad_sum = ns("2001:db8::2", 255, 0, Some(HOST_MAC));
    bad_sum[56] ^= 0x55;
    assert_eq!(go(&bad_sum), Err(Discard::Icmpv6BadChecksum));
    assert_eq!(go(&ns("2001:db8::2", 255, 1, Some(HOST_MAC))), Err(Discard::NdBadCode));
    assert_eq!(go(&ns("2001:db8::2", 64, 0, Some(HOST_MAC))), Err(Discard::NdBadHopLimit));
    assert_eq!(go(&ns("::", 255, 0, Some(HOST_MAC))), Err(Discard::NdDadWithSourceOption));
    // An option whose length byte is 0 (checksum valid).
    let mut body = emit::neighbor_solicit_body(v6("2001:db8::1"), Some(HOST_MAC));
    body[17] = 0;
    let f = icmpv6(135, 0, 255, ("2001:db8::2", "ff02::1:ff00:1"), [0; 4], &body, MacAddr([0x33, 0x33, 0xff, 0, 0, 1]));
    assert_eq!(go(&f), Err(Discard::NdZeroLengthOption));
}

#[test]
fn advertisements_teach_or_reveal_a_duplicate() {
    let na = |target: &str, tlla: MacAddr, f: u8| {
        let mut body = v6(target).octets().to_vec();
        body.extend_from_slice(&[2, 1]);
        body.extend_from_slice(&tlla.0);
        icmpv6(136, 0, 255, (target, "2001:db8::1"), [f, 0, 0, 0], &body, OUR_MAC)
    };
    let a = go(&na("2001:db8::2", HOST_MAC, 0x60)).unwrap();
    let flags = NaFlags { router: false, solicited: true, override_: true };
    assert_eq!(a, Answer { reply: None, learn: Some(Learn::Advert { target: v6("2001:db8::2"), tlla: Some(HOST_MAC), flags }) });
    assert_eq!(go(&na("2001:db8::1", OTHER_MAC, 0x20)), Err(Discard::DuplicateAddress));
}

#[test]
fn replies_keep_the_request_s_vlan_tags() {
    let a = ArpRepr::request(HOST_MAC, HOST, US);
    let f = emit::ethernet(MacAddr::BROADCAST, HOST_MAC, &[(0x8100, 42)], ethertype::ARP, &emit::arp(&a));
    let r = reply(&f);
    assert_eq!(&r[12..18], &[0x81, 0x00, 0x00, 42, 0x08, 0x06]);
    assert_eq!(ArpRepr::check(&r[18..]).unwrap().oper, arp::oper::REPLY);
}

#[test]
fn what_the_workers_punt() {
    let c = |f: &[u8], l: &Local| classify(f, &parse(f).unwrap(), l);
    assert_eq!(c(&arp_request(Ipv4Addr::new(10, 9, 9, 9)), &local()), Some(Request::Arp), "every ARP message");
    let no_v4 = Local { ipv4: None, ..local() };
    assert_eq!(c(&arp_request(US), &no_v4), None);
    assert_eq!(c(&echo4(US), &no_v4), None);
    assert_eq!(c(&echo4(Ipv4Addr::new(10, 0, 1, 9)), &local()), None, "echo for someone else is routed");
    let n = ns("2001:db8::2", 64, 0, None);
    assert_eq!(c(&n, &local()), Some(Request::Ndisc), "the slow path judges the hop limit");
    assert_eq!(c(&n, &Local { ipv6: None, ..local() }), None);
}

#[test]
fn no_input_panics() {
    for base in [echo4(US), arp_request(US), ns("2001:db8::2", 255, 0, Some(HOST_MAC)), ns("::", 255, 0, None)] {
        for len in 0..=base.len() {
            for i in 0..len {
                for v in [0u8, 0xff, 1, 8, 0x45, 135, 136] {
                    let mut f = base[..len].to_vec();
                    f[i] = v;
                    let _ = answer(&f, &local());
                }
            }
        }
    }
}
