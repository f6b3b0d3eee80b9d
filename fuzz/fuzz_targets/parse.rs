//! `dataplane::net::parse` and every header view's `new_checked` on arbitrary bytes.
//!
//! The contract (dataplane/src/net/mod.rs): `parse` never panics; once `new_checked`
//! succeeds no getter or setter panics; offsets `parse` returns lie inside the frame and
//! agree with the views. And `parse_packet` on any first segment of the input (an mbuf
//! chain's) says what `parse` says of the whole, or `truncated` (a header was cut).

#![no_main]

use dataplane::net::{
    parse, parse_packet, EthernetFrame, IcmpHeader, Ipv4Packet, Ipv6Packet, ParseError, Proto, TcpHeader, UdpHeader, L3,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = parse(data);
    for cut in [data.len() / 2, data.len().saturating_sub(1), 64.min(data.len()), 100.min(data.len())] {
        let first = parse_packet(&data[..cut], data.len());
        assert!(first == parsed || first == Err(ParseError::Truncated), "cut at {cut}: {first:?} against {parsed:?}");
        if parsed == Err(ParseError::Truncated) {
            assert!(first.is_err(), "a first segment of a truncated packet parsed: {first:?}");
        }
    }
    if let Ok(p) = parsed {
        let (l2, l3, l4) = (usize::from(p.l2_len), usize::from(p.l3_offset), usize::from(p.l4_offset));
        assert!(matches!(l2, 14 | 18 | 22), "{p:?}");
        assert_eq!(l2, l3);
        assert!(l3 <= l4 && l4 <= data.len(), "{p:?} for {} bytes", data.len());
        match p.l3 {
            L3::Ipv4 => {
                let ip = Ipv4Packet::new_checked(&data[l3..]).expect("parse accepted this IPv4 header");
                assert_eq!(ip.header_len(), usize::from(p.l3_len));
                assert_eq!(l4, l3 + ip.header_len());
                assert_eq!(p.fragment, ip.is_fragment());
            }
            L3::Ipv6 => {
                let ip = Ipv6Packet::new_checked(&data[l3..]).expect("parse accepted this IPv6 header");
                assert_eq!(p.l3_len, 40);
                assert!(l4 >= l3 + 40);
                assert!(l4 <= l3 + 40 + usize::from(ip.payload_len()));
            }
            L3::Arp | L3::Other(_) => {
                assert_eq!(p.l3_len, 0);
                assert_eq!(l4, l3);
                assert_eq!((p.proto, p.ip_proto), (Proto::Other, 0));
            }
        }
    }

    // Every view on the whole input and at each offset a header could start at.
    let mut copy = data.to_vec();
    if let Ok(mut eth) = EthernetFrame::new_checked(&mut copy[..]) {
        let (d, s) = (eth.dst(), eth.src());
        let _ = (eth.ethertype(), eth.l2_info());
        eth.swap_macs();
        assert_eq!((eth.dst(), eth.src()), (s, d));
        eth.set_ethertype(0x0800);
        assert_eq!(eth.ethertype(), 0x0800);
    } else {
        assert!(parsed.is_err());
    }
    for start in [0usize, 14, 18, 22] {
        let Some(bytes) = data.get(start..) else { continue };
        let mut b = bytes.to_vec();
        if let Ok(mut ip) = Ipv4Packet::new_checked(&mut b[..]) {
            let _ = (ip.version(), ip.total_len(), ip.ident(), ip.dont_frag(), ip.more_frags(), ip.frag_offset());
            let _ = (ip.protocol(), ip.checksum(), ip.src_addr(), ip.dst_addr(), ip.header(), ip.payload());
            assert!(ip.header_len() >= 20 && ip.header().len() == ip.header_len());
            let ttl = ip.ttl();
            let valid = ip.verify_checksum();
            match ip.decrement_ttl() {
                Some(t) => {
                    assert_eq!(t, ttl - 1);
                    // RFC 1624: the incremental update keeps a valid checksum valid.
                    assert!(!valid || ip.verify_checksum(), "TTL decrement broke the checksum");
                }
                None => assert_eq!(ip.ttl(), ttl),
            }
            ip.set_ttl(ttl);
            ip.fill_checksum();
            assert!(ip.verify_checksum());
            let proto = ip.protocol();
            let payload = ip.payload().to_vec();
            let _ = l4_views(proto, &payload);
        }
        if let Ok(mut ip) = Ipv6Packet::new_checked(&mut b[..]) {
            let _ = (ip.version(), ip.payload_len(), ip.next_header(), ip.src_addr(), ip.dst_addr());
            assert_eq!(ip.payload().len(), usize::from(ip.payload_len()));
            if let Ok(u) = ip.upper_layer() {
                assert!(u.offset >= 40 && u.offset <= 40 + usize::from(ip.payload_len()), "{u:?}");
            }
            let hops = ip.hop_limit();
            if let Some(h) = ip.decrement_hop_limit() {
                assert_eq!(h, hops - 1);
            }
            ip.set_hop_limit(hops);
        }
        let _ = l4_views(6, bytes);
        let _ = l4_views(17, bytes);
        let _ = l4_views(1, bytes);
    }
});

fn l4_views(proto: u8, b: &[u8]) -> Option<()> {
    match proto {
        6 => {
            let t = TcpHeader::new_checked(b).ok()?;
            assert!(t.header_len() >= 20 && t.header_len() <= b.len());
            let _ = (t.src_port(), t.dst_port(), t.flags(), t.checksum());
        }
        17 => {
            let u = UdpHeader::new_checked(b).ok()?;
            assert!(u.length() >= 8);
            let _ = (u.src_port(), u.dst_port(), u.checksum());
        }
        _ => {
            let i = IcmpHeader::new_checked(b).ok()?;
            let _ = (i.msg_type(), i.code(), i.checksum());
        }
    }
    Some(())
}
