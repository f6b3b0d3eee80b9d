//! The one-pass classifier: [`parse`] turns a frame into offsets and a protocol class.

use super::ethernet::{ethertype, EthernetFrame};
use super::ipv4::Ipv4Packet;
use super::ipv6::{self, Ipv6Packet};
use super::l4::{IcmpHeader, TcpHeader, UdpHeader};
use super::{ip_proto, ParseError};

pub use mempool::accounting::Proto;

/// The network layer, from the (inner) ethertype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L3 {
    /// 0x0800.
    Ipv4,
    /// 0x86dd.
    Ipv6,
    /// 0x0806; the ARP body is not parsed.
    Arp,
    /// Any other ethertype; nothing after the L2 header is parsed.
    Other(u16),
}

/// What [`parse`] found. All offsets are from the start of the frame. (Aligned to 8 bytes
/// so that it moves as two words.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(align(8))]
pub struct Parsed {
    /// Ethernet header and VLAN tags: 14, 18 or 22.
    pub l2_len: u16,
    /// The network layer.
    pub l3: L3,
    /// Where the L3 header starts; equals `l2_len`.
    pub l3_offset: u16,
    /// IPv4 header length including options, 40 for IPv6 (extension headers not
    /// included), 0 if not IP.
    pub l3_len: u16,
    /// Where the upper-layer header starts: after the IPv4 header, or after the IPv6
    /// extension headers. For a non-first fragment, where its data starts. Equals
    /// `l3_offset` if not IP.
    pub l4_offset: u16,
    /// The transport class. For a non-first fragment it comes from the IP header (the
    /// IPv6 Fragment header's next header) and no L4 header was checked.
    pub proto: Proto,
    /// The IP protocol number `proto` was classified from (the IPv6 upper-layer next
    /// header, 59 for No Next Header); 0 for frames that are not IP.
    pub ip_proto: u8,
    /// IPv4 with MF set or a non-zero offset, or IPv6 with a Fragment header.
    pub fragment: bool,
}

/// Classifies one frame: L2 (with up to two VLAN tags), L3 and the L4 header, reading
/// each once.
///
/// IPv4 and IPv6 headers are checked as by their `new_checked`: the frame must hold
/// the whole datagram and may hold more (Ethernet padding), which is ignored. The L4
/// header (TCP, UDP, ICMP/ICMPv6) is checked inside the datagram, only for a datagram
/// that is not a fragment or is the first one (offset 0). Other ethertypes, ARP and
/// other IP protocols are accepted without looking further. Checksums are not verified.
///
/// Never panics, whatever `frame` holds, and never allocates.
///
/// # Errors
/// The first problem found, outermost layer first; see [`ParseError`].
#[inline]
pub fn parse(frame: &[u8]) -> Result<Parsed, ParseError> {
    parse_packet(frame, frame.len())
}

/// [`parse`] for a packet of `pkt_len` bytes of which `first` holds the first ones: the
/// first segment of an mbuf chain (a frame larger than one mbuf's data room, or scattered
/// RX). Every header (L2, L3 with its options or extension headers, L4) must be in
/// `first`, which is where PMDs put them; the lengths the headers declare (IPv4 total
/// length, IPv6 payload length, UDP length) are checked against `pkt_len`. So a frame is
/// `truncated` only if it really is shorter than its headers declare, or if its headers
/// do not fit in its first segment.
///
/// Never panics and never allocates.
///
/// # Errors
/// As [`parse`].
#[inline]
pub fn parse_packet(first: &[u8], pkt_len: usize) -> Result<Parsed, ParseError> {
    match parse_common(first) {
        Some(p) => Ok(p),
        None => parse_any(first, pkt_len),
    }
}

/// The common case, from fixed offsets: an untagged IPv4 datagram with a 20-byte header
/// that is not a fragment, or an untagged IPv6 datagram whose next header is TCP, UDP or
/// ICMPv6, each with a valid L4 header, all within `frame`. Returns what [`parse_any`]
/// returns for such a frame, whatever the packet's length beyond it (tested on every frame of the test set and on random ones), and `None` for any
/// other frame, valid or not.
#[inline(always)]
fn parse_common(frame: &[u8]) -> Option<Parsed> {
    let eth: &[u8; 14] = frame.first_chunk()?;
    let common = |l3, l3_len: u16, ip_proto, proto| Parsed {
        l2_len: 14,
        l3,
        l3_offset: 14,
        l3_len,
        l4_offset: 14 + l3_len,
        proto,
        ip_proto,
        fragment: false,
    };
    match u16::from_be_bytes([eth[12], eth[13]]) {
        ethertype::IPV4 => {
            let ip: &[u8; 20] = frame[14..].first_chunk()?;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            // Version 4 and IHL 5; neither MF nor an offset; the datagram within the frame.
            if ip[0] != 0x45 || ip[6] & 0x3f != 0 || ip[7] != 0 || total < 20 || 14 + total > frame.len() {
                return None;
            }
            let proto = Proto::from_ip(ip[9], false);
            check_l4(proto, &frame[34..14 + total], total - 20).ok()?;
            Some(common(L3::Ipv4, 20, ip[9], proto))
        }
        ethertype::IPV6 => {
            let ip: &[u8; 40] = frame[14..].first_chunk()?;
            let end = 54 + usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            if ip[0] >> 4 != 6 || end > frame.len() || !matches!(ip[6], ip_proto::TCP | ip_proto::UDP | ip_proto::ICMPV6) {
                return None;
            }
            let proto = Proto::from_ip(ip[6], true);
            check_l4(proto, &frame[54..end], end - 54).ok()?;
            Some(common(L3::Ipv6, 40, ip[6], proto))
        }
        _ => None,
    }
}

/// [`parse_packet`] for any frame: each layer through its view.
#[inline(never)]
fn parse_any(first: &[u8], pkt_len: usize) -> Result<Parsed, ParseError> {
    let frame = first;
    let l2 = EthernetFrame::new_checked(frame)?.l2_info()?;
    // `l2_info` has checked that the frame holds `l2_len` bytes.
    let l3_bytes = frame.get(l2.l2_len..).ok_or(ParseError::Truncated)?;
    let l3_available = pkt_len.max(frame.len()) - l2.l2_len;
    let mut parsed = Parsed {
        l2_len: offset(l2.l2_len),
        l3: L3::Other(l2.ethertype),
        l3_offset: offset(l2.l2_len),
        l3_len: 0,
        l4_offset: offset(l2.l2_len),
        proto: Proto::Other,
        ip_proto: 0,
        fragment: false,
    };
    match l2.ethertype {
        ethertype::IPV4 => {
            let ip = Ipv4Packet::new_checked_within(l3_bytes, l3_available)?;
            let proto = Proto::from_ip(ip.protocol(), false);
            parsed.ip_proto = ip.protocol();
            if ip.frag_offset() == 0 {
                check_l4(proto, ip.payload(), usize::from(ip.total_len()) - ip.header_len())?;
            }
            parsed.l3 = L3::Ipv4;
            parsed.l3_len = offset(ip.header_len());
            parsed.l4_offset = offset(l2.l2_len + ip.header_len());
            parsed.proto = proto;
            parsed.fragment = ip.is_fragment();
        }
        ethertype::IPV6 => {
            let ip = Ipv6Packet::new_checked_within(l3_bytes, l3_available)?;
            let upper = ip.upper_layer()?;
            parsed.ip_proto = upper.protocol.unwrap_or(ip_proto::IPV6_NO_NEXT);
            let proto = Proto::from_ip(parsed.ip_proto, true);
            if !matches!(upper.fragment, Some(f) if f.offset != 0) {
                // `upper_layer` has checked that `upper.offset` is within the payload.
                let at = upper.offset - ipv6::HEADER_LEN;
                let l4 = ip.payload().get(at..);
                let available = usize::from(ip.payload_len()).saturating_sub(at);
                check_l4(proto, l4.ok_or(ParseError::Truncated)?, available)?;
            }
            parsed.l3 = L3::Ipv6;
            parsed.l3_len = offset(ipv6::HEADER_LEN);
            parsed.l4_offset = offset(l2.l2_len + upper.offset);
            parsed.proto = proto;
            parsed.fragment = upper.fragment.is_some();
        }
        ethertype::ARP => parsed.l3 = L3::Arp,
        _ => {}
    }
    Ok(parsed)
}

/// Checks the L4 header at the start of `l4`, the part in the buffer of a datagram
/// payload of `available` bytes.
#[inline]
fn check_l4(proto: Proto, l4: &[u8], available: usize) -> Result<(), ParseError> {
    match proto {
        Proto::Tcp => TcpHeader::new_checked(l4).map(drop),
        Proto::Udp => UdpHeader::new_unchecked(l4).check_len_within(available),
        Proto::Icmp => IcmpHeader::new_checked(l4).map(drop),
        Proto::Other => Ok(()),
    }
}

/// An offset into the frame as `u16`.
///
/// Every offset `parse` returns is at most 22 (L2) plus 60 (IPv4 header), or 22 plus
/// 40 (IPv6 header) plus 8 extension headers of at most 2048 bytes each, which is
/// 16 446, so the conversion is exact.
#[inline]
fn offset(n: usize) -> u16 {
    debug_assert!(n <= usize::from(u16::MAX));
    n as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::testdata::*;

    /// Every valid frame, with what `parse` should say and the length of the frame
    /// up to the end of its datagram (shorter prefixes must be `Truncated`).
    fn valid_frames() -> Vec<(&'static str, &'static [u8], Parsed, usize)> {
        // `ip_proto` is the IP protocol number; the class follows from it.
        let ip = |l2: u16, l3: L3, l3_len: u16, l4: u16, ip_proto: u8, fragment| Parsed {
            l2_len: l2,
            l3,
            l3_offset: l2,
            l3_len,
            l4_offset: l4,
            proto: Proto::from_ip(ip_proto, l3 == L3::Ipv6),
            ip_proto,
            fragment,
        };
        vec![
            ("IPV4_UDP_PADDED", &IPV4_UDP_PADDED[..], ip(14, L3::Ipv4, 20, 34, 17, false), 46),
            ("VLAN_IPV4_TCP", &VLAN_IPV4_TCP[..], ip(18, L3::Ipv4, 20, 38, 6, false), 58),
            ("QINQ_IPV4_OPTS_ICMP", &QINQ_IPV4_OPTS_ICMP[..], ip(22, L3::Ipv4, 24, 46, 1, false), 54),
            ("IPV4_TCP_OPTS", &IPV4_TCP_OPTS[..], ip(14, L3::Ipv4, 20, 34, 6, false), 60),
            ("IPV4_LATER_FRAGMENT", &IPV4_LATER_FRAGMENT[..], ip(14, L3::Ipv4, 20, 34, 17, true), 37),
            ("IPV4_FIRST_FRAGMENT", &IPV4_FIRST_FRAGMENT[..], ip(14, L3::Ipv4, 20, 34, 17, true), 46),
            ("IPV6_EXT_CHAIN_UDP", &IPV6_EXT_CHAIN_UDP[..], ip(14, L3::Ipv6, 40, 14 + 40 + 24, 17, true), 94),
            ("VLAN_IPV6_ICMPV6", &VLAN_IPV6_ICMPV6[..], ip(18, L3::Ipv6, 40, 58, 58, false), 66),
            ("IPV6_ROUTING_AH_TCP", &IPV6_ROUTING_AH_TCP[..], ip(14, L3::Ipv6, 40, 14 + 40 + 48, 6, false), 122),
            ("IPV6_LATER_FRAGMENT", &IPV6_LATER_FRAGMENT[..], ip(14, L3::Ipv6, 40, 62, 17, true), 66),
            ("IPV6_NO_NEXT_PADDED", &IPV6_NO_NEXT_PADDED[..], ip(14, L3::Ipv6, 40, 54, 59, false), 54),
            ("ARP_REQUEST", &ARP_REQUEST[..], ip(14, L3::Arp, 0, 14, 0, false), 14),
        ]
    }

    #[test]
    fn valid_frames_parse() {
        for (name, frame, expected, whole) in valid_frames() {
            assert!(whole <= frame.len(), "{name}");
            assert_eq!(parse(frame), Ok(expected), "{name}");
            assert_eq!(parse_any(frame, frame.len()), Ok(expected), "{name}");
        }
    }

    /// The common-case path says what the general one says, or nothing, on every prefix
    /// and every single-byte change of the test frames, and on random frames.
    #[test]
    fn the_common_case_agrees_with_the_general_parser() {
        let agree = |f: &[u8]| {
            if let Some(p) = parse_common(f) {
                assert_eq!(parse_any(f, f.len()), Ok(p), "{f:02x?}");
            }
        };
        let mut taken = 0;
        let mut frames: Vec<Vec<u8>> = valid_frames().iter().map(|v| v.1.to_vec()).collect();
        frames.push(IPV4_UDP_PADDED[..42].to_vec());
        for f in &frames {
            for len in 0..=f.len() {
                agree(&f[..len]);
            }
            for i in 0..f.len() {
                for v in [0x00, 0x01, 0x05, 0x06, 0x11, 0x14, 0x3a, 0x45, 0x46, 0x60, 0x86, 0xdd, 0xff] {
                    let mut g = f.clone();
                    g[i] = v;
                    agree(&g);
                    taken += usize::from(parse_common(&g).is_some());
                }
            }
        }
        assert!(taken > 1000, "the common path takes most variants of the common frames ({taken})");
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut f = IPV4_UDP_PADDED.to_vec();
            for b in f.iter_mut().skip(14) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if x.is_multiple_of(5) {
                    *b = x as u8;
                }
            }
            agree(&f);
        }
    }

    /// The first segment of a chain: parsed as the whole frame as long as every header is
    /// in it, `truncated` once a header is cut or the packet is shorter than declared.
    #[test]
    fn first_segments_of_longer_packets() {
        for (name, frame, expected, whole) in valid_frames() {
            let l4_end = match expected.l3 {
                L3::Ipv4 | L3::Ipv6 if !expected.fragment || expected.l4_offset < whole as u16 => {
                    // The L4 header's fixed part (fragments may have none).
                    let l4 = usize::from(expected.l4_offset);
                    let fixed = match expected.proto {
                        Proto::Tcp => 20.max(usize::from(frame[l4 + 12] >> 4) * 4),
                        Proto::Udp | Proto::Icmp => 8,
                        Proto::Other => 0,
                    };
                    (l4 + fixed).min(whole)
                }
                _ => usize::from(expected.l4_offset),
            };
            for cut in l4_end..=frame.len() {
                assert_eq!(parse_packet(&frame[..cut], frame.len()), Ok(expected), "{name} cut at {cut}");
            }
            for cut in 0..l4_end.min(usize::from(expected.l4_offset)) {
                assert_eq!(parse_packet(&frame[..cut], frame.len()), Err(ParseError::Truncated), "{name} cut at {cut}");
            }
            if matches!(expected.l3, L3::Ipv4 | L3::Ipv6) && whole > l4_end {
                // Declared longer than the packet is.
                assert_eq!(parse_packet(&frame[..l4_end], whole - 1), Err(ParseError::Truncated), "{name}");
            }
        }
        // A 9000-byte IPv4/UDP datagram in a 2048-byte first segment.
        let mut big = IPV4_UDP_PADDED[..34].to_vec();
        big[16..18].copy_from_slice(&(9000u16 - 14).to_be_bytes());
        big.extend_from_slice(&[0x04, 0xd2, 0x16, 0x2e]);
        big.extend_from_slice(&(9000u16 - 34).to_be_bytes());
        big.extend_from_slice(&[0, 0]);
        big.resize(9000, 0xab);
        let p = parse_packet(&big[..2048], 9000).unwrap();
        assert_eq!((p.l3, p.proto, p.l4_offset), (L3::Ipv4, Proto::Udp, 34));
        assert_eq!(parse(&big[..2048]), Err(ParseError::Truncated), "alone, the segment is short");
        assert_eq!(parse_packet(&big[..2048], 8999), Err(ParseError::Truncated));
    }

    #[test]
    fn other_ethertype() {
        let mut frame = VLAN_IPV4_TCP;
        frame[16..18].copy_from_slice(&[0x88, 0xcc]); // LLDP
        let p = parse(&frame).unwrap();
        assert_eq!((p.l3, p.l3_offset, p.l4_offset), (L3::Other(0x88cc), 18, 18));
        assert_eq!((p.l3_len, p.proto, p.ip_proto, p.fragment), (0, Proto::Other, 0, false));
    }

    #[test]
    fn every_prefix_is_truncated_until_the_datagram_is_whole() {
        for (name, frame, expected, whole) in valid_frames() {
            for len in 0..=frame.len() {
                let got = parse(&frame[..len]);
                if len < whole {
                    assert_eq!(got, Err(ParseError::Truncated), "{name} prefix {len}");
                } else {
                    assert_eq!(got, Ok(expected), "{name} prefix {len}");
                }
            }
        }
    }

    fn edited(frame: &[u8], edits: &[(usize, u8)]) -> Vec<u8> {
        let mut d = frame.to_vec();
        for &(at, value) in edits {
            d[at] = value;
        }
        d
    }

    #[test]
    fn ipv4_errors() {
        let f = &VLAN_IPV4_TCP[..];
        let err = |edits: &[(usize, u8)]| parse(&edited(f, edits)).err();
        assert_eq!(err(&[(18, 0x65)]), Some(ParseError::BadVersion));
        assert_eq!(err(&[(18, 0x44)]), Some(ParseError::BadHeaderLen));
        assert_eq!(err(&[(18, 0x4f)]), Some(ParseError::BadTotalLen));
        // Total length 41: one byte more than the frame holds.
        assert_eq!(err(&[(21, 41)]), Some(ParseError::Truncated));
        // Total length 1500.
        assert_eq!(err(&[(20, 0x05), (21, 0xdc)]), Some(ParseError::Truncated));
        // Total length 19 and 0, below the header length.
        assert_eq!(err(&[(21, 19)]), Some(ParseError::BadTotalLen));
        assert_eq!(err(&[(21, 0)]), Some(ParseError::BadTotalLen));
        // Total length 39: the TCP header no longer fits in the datagram.
        assert_eq!(err(&[(21, 39)]), Some(ParseError::Truncated));
        // TCP data offset below 5.
        assert_eq!(err(&[(50, 0x40)]), Some(ParseError::BadL4Header));
        assert_eq!(err(&[(50, 0x00)]), Some(ParseError::BadL4Header));
        // IPv4 ethertype over an IPv6 header.
        let mut v6 = IPV6_NO_NEXT_PADDED;
        v6[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(parse(&v6), Err(ParseError::BadVersion));
    }

    #[test]
    fn padding_is_not_read_as_a_header() {
        // Total length 20: a UDP "datagram" with no UDP header, although the padding
        // bytes after it would fit one.
        let f = edited(&IPV4_UDP_PADDED, &[(17, 20)]);
        assert_eq!(parse(&f), Err(ParseError::Truncated));
        // Same over IPv6: payload length 0 with next header TCP and 6 bytes of padding.
        let f = edited(&IPV6_NO_NEXT_PADDED, &[(20, ip_proto::TCP)]);
        assert_eq!(parse(&f), Err(ParseError::Truncated));
    }

    #[test]
    fn non_first_fragments_skip_the_l4_check() {
        // The 3 data bytes of IPV4_LATER_FRAGMENT cannot be a UDP header; as a first
        // fragment they must be rejected.
        let first = edited(&IPV4_LATER_FRAGMENT, &[(20, 0x20), (21, 0x00)]);
        assert_eq!(parse(&first), Err(ParseError::Truncated));
        // Same for IPv6.
        let first = edited(&IPV6_LATER_FRAGMENT, &[(56, 0x00), (57, 0x01)]);
        assert_eq!(parse(&first), Err(ParseError::Truncated));
        // A first fragment's L4 header is checked: UDP length 7.
        let bad = edited(&IPV4_FIRST_FRAGMENT, &[(39, 7)]);
        assert_eq!(parse(&bad), Err(ParseError::BadL4Header));
    }

    #[test]
    fn ipv6_errors() {
        let f = &IPV6_EXT_CHAIN_UDP[..];
        assert_eq!(parse(&edited(f, &[(14, 0x40)])), Err(ParseError::BadVersion));
        // Payload length one more than the frame holds.
        assert_eq!(parse(&edited(f, &[(19, 41)])), Err(ParseError::Truncated));
        // Payload length 20: the chain (24 bytes) runs off the end of the payload.
        assert_eq!(parse(&edited(f, &[(19, 20)])), Err(ParseError::Truncated));
        // Payload length 30: the chain fits but not the UDP header.
        assert_eq!(parse(&edited(f, &[(19, 30)])), Err(ParseError::Truncated));
        // Hop-by-Hop length 200 (1608 bytes).
        assert_eq!(parse(&edited(f, &[(55, 200)])), Err(ParseError::Truncated));
        // Destination Options pointing to itself forever.
        let mut frame = f.to_vec();
        frame[54] = ip_proto::IPV6_DEST_OPTS;
        frame[62] = ip_proto::IPV6_DEST_OPTS;
        frame[70] = ip_proto::IPV6_DEST_OPTS;
        assert_eq!(parse(&frame), Err(ParseError::Truncated));
        // IPv6 ethertype over an IPv4 header.
        let mut v4 = IPV4_UDP_PADDED;
        v4[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(parse(&v4), Err(ParseError::BadVersion));
    }

    #[test]
    fn too_many_ipv6_ext_headers() {
        let mut frame = IPV6_EXT_CHAIN_UDP[..54].to_vec();
        frame[20] = ip_proto::IPV6_DEST_OPTS;
        for _ in 0..ipv6::MAX_EXT_HEADERS + 1 {
            frame.extend_from_slice(&[ip_proto::IPV6_DEST_OPTS, 0, 1, 4, 0, 0, 0, 0]);
        }
        let payload_len = (frame.len() - 54) as u16;
        frame[18..20].copy_from_slice(&payload_len.to_be_bytes());
        assert_eq!(parse(&frame), Err(ParseError::TooManyExtHeaders));
    }

    #[test]
    fn three_vlan_tags() {
        let mut frame = QINQ_IPV4_OPTS_ICMP.to_vec();
        frame.splice(20..20, [0x81, 0x00, 0x00, 0x1e]);
        assert_eq!(parse(&frame), Err(ParseError::TooManyVlanTags));
        // A third tag that is cut off is still one too many.
        assert_eq!(parse(&frame[..23]), Err(ParseError::TooManyVlanTags));
    }

    #[test]
    fn tcp_and_icmpv6_l4_errors() {
        // ICMPv6 with 7 bytes: payload length 7.
        let f = edited(&VLAN_IPV6_ICMPV6, &[(23, 7)]);
        assert_eq!(parse(&f[..65]), Err(ParseError::Truncated));
        // TCP data offset 15 over IPv6: 60 bytes announced, 20 there.
        let f = edited(&IPV6_ROUTING_AH_TCP, &[(14 + 40 + 48 + 12, 0xf0)]);
        assert_eq!(parse(&f), Err(ParseError::Truncated));
        let f = edited(&IPV6_ROUTING_AH_TCP, &[(14 + 40 + 48 + 12, 0x30)]);
        assert_eq!(parse(&f), Err(ParseError::BadL4Header));
    }

    #[test]
    fn single_byte_flips_never_panic() {
        let mut outcomes = [0usize; ParseError::COUNT + 1];
        for (_, frame, _, _) in valid_frames() {
            let mut f = frame.to_vec();
            for at in 0..f.len() {
                let orig = f[at];
                for value in [0x00, 0xff] {
                    f[at] = value;
                    match parse(&f) {
                        Ok(_) => outcomes[ParseError::COUNT] += 1,
                        Err(e) => outcomes[e.index()] += 1,
                    }
                }
                f[at] = orig;
            }
        }
        // Most flips land in addresses and payload and still parse.
        assert!(outcomes[ParseError::COUNT] > outcomes.iter().sum::<usize>() / 2, "{outcomes:?}");
    }

    /// xorshift64*, so the test needs no dependency and is reproducible.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[test]
    fn random_mutations_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15;
        let frames = valid_frames();
        let mut ok = 0;
        for _ in 0..200_000 {
            let (_, frame, _, _) = frames[next(&mut state) as usize % frames.len()];
            let mut f = frame.to_vec();
            for _ in 0..1 + next(&mut state) % 4 {
                let at = next(&mut state) as usize % f.len();
                f[at] = next(&mut state) as u8;
            }
            let len = if next(&mut state) & 3 == 0 { next(&mut state) as usize % (f.len() + 1) } else { f.len() };
            if let Ok(p) = parse(&f[..len]) {
                ok += 1;
                // Offsets are in order and inside the frame.
                assert!(p.l2_len == p.l3_offset && p.l3_offset <= p.l4_offset);
                assert!(usize::from(p.l4_offset) <= len, "{p:?}");
            }
        }
        assert!(ok > 0);
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state = 42;
        let mut buf = [0u8; 128];
        for i in 0..100_000u32 {
            for b in buf.iter_mut() {
                *b = next(&mut state) as u8;
            }
            // Steer some frames into the IP paths.
            match i % 4 {
                0 => buf[12..15].copy_from_slice(&[0x08, 0x00, 0x45]),
                1 => buf[12..15].copy_from_slice(&[0x86, 0xdd, 0x60]),
                2 => buf[12..17].copy_from_slice(&[0x81, 0x00, 0x00, 0x01, 0x86]),
                _ => {}
            }
            let len = next(&mut state) as usize % (buf.len() + 1);
            let _ = parse(&buf[..len]);
        }
    }
}
