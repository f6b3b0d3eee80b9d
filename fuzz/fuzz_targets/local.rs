//! `dataplane::local::{classify, answer}` on arbitrary frames: what the workers punt and
//! what the slow path makes of it.
//!
//! Checked: nothing panics; `answer` answers only what `classify` punts; a reply parses,
//! comes from our MAC, goes back to the requester's MAC (its ARP sender hardware address;
//! or, defending an address against duplicate address detection, to all nodes), and is valid as what it is: an ARP reply
//! that passes `ArpRepr::check`, an echo reply with valid IPv4 and ICMP checksums, an
//! ICMPv6 reply with a valid checksum, a neighbour advertisement that passes every RFC 4861
//! 7.1.2 rule.

#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};

use dataplane::local::{answer, classify, is_for, Local, Request};
use dataplane::net::arp::ArpRepr;
use dataplane::net::ndisc::{self, NdiscRepr};
use dataplane::net::{checksum, parse, Ipv4Packet, Ipv6Packet, MacAddr, L3};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else { return };
    let local = Local {
        mac: MacAddr([2, 0, 0, 0, 0, 1]),
        ipv4: (sel & 1 == 0).then_some(Ipv4Addr::new(10, 0, 0, 1)),
        ipv6: (sel & 2 == 0).then(|| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
    };
    let request = parse(frame).ok().and_then(|p| {
        let _ = is_for(frame, &p, &local);
        classify(frame, &p, &local)
    });
    let outcome = answer(frame, &local);
    if request.is_none() {
        assert!(outcome.is_err(), "answered a frame classify refused");
    }
    let Ok(a) = outcome else { return };
    let Some(reply) = a.reply else { return };
    assert_eq!(&reply[6..12], &local.mac.0[..], "reply not from our MAC");
    let all_nodes = ndisc::multicast_mac(ndisc::ALL_NODES);
    let q = parse(&reply).expect("a reply parses");
    let l3 = usize::from(q.l3_offset);
    if q.l3 != L3::Arp {
        assert!(reply[..6] == frame[6..12] || reply[..6] == all_nodes.0, "reply not sent back to the requester");
    }
    match (request.unwrap(), q.l3) {
        (Request::Arp, L3::Arp) => {
            // To the requester's sender hardware address (as Linux's arp_send).
            let r = ArpRepr::check(&reply[l3..]).expect("a valid ARP reply");
            assert_eq!((r.oper, r.sha), (2, local.mac));
            assert_eq!(&reply[..6], &r.tha.0[..], "ARP reply not sent to the requester");
        }
        (Request::Echo, L3::Ipv4) => {
            let ip = Ipv4Packet::new_checked(&reply[l3..]).unwrap();
            assert!(ip.verify_checksum(), "echo reply with a bad IPv4 checksum");
            assert_eq!(checksum::sum(ip.payload()), 0xffff, "echo reply with a bad ICMP checksum");
        }
        (Request::Echo6 | Request::Ndisc, L3::Ipv6) => {
            let ip = Ipv6Packet::new_checked(&reply[l3..]).unwrap();
            let end = l3 + 40 + usize::from(ip.payload_len());
            let icmp = &reply[usize::from(q.l4_offset)..end];
            let (s, d) = (ip.src_addr(), ip.dst_addr());
            assert_eq!(checksum::pseudo_header_checksum(s.into(), d.into(), 58, icmp), 0, "bad ICMPv6 checksum");
            if icmp[0] == 136 {
                let na = NdiscRepr::parse(s, d, ip.hop_limit(), icmp).expect("a valid advertisement");
                assert!(matches!(na, NdiscRepr::Advert { tlla: Some(m), .. } if m == local.mac));
            }
        }
        (r, l) => panic!("a {r:?} answered with {l:?}"),
    }
});
