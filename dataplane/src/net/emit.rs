//! The emit side of the header views: frames built from their parts, every length and
//! checksum filled in. For messages the forwarder writes itself and for tests and fuzz
//! seeds; each call allocates, so the per-packet path rewrites headers through the views
//! instead.
//!
//! Layers compose from the inside out:
//!
//! ```
//! # use std::net::Ipv4Addr;
//! use dataplane::net::{emit, ethernet::ethertype, parse, MacAddr, Proto};
//! let (src, dst) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 1, 0, 2));
//! let udp = emit::udp(src.into(), dst.into(), 1234, 53, b"query");
//! let ip = emit::Ipv4Repr::new(src, dst, 17).emit(&udp);
//! let frame = emit::ethernet(MacAddr([2, 0, 0, 0, 0, 2]), MacAddr([2, 0, 0, 0, 0, 1]), &[], ethertype::IPV4, &ip);
//! assert_eq!(parse(&frame).unwrap().proto, Proto::Udp);
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::arp::{self, ArpRepr};
use super::checksum;
use super::ip_proto;
use super::MacAddr;

/// The shortest Ethernet frame without its FCS (IEEE 802.3): what [`padded`] pads to.
pub const MIN_FRAME_LEN: usize = 60;

/// An Ethernet II frame: `dst`, `src`, the VLAN tags `(TPID, TCI)` outermost first, the
/// ethertype and `payload`, padded with zeros to [`MIN_FRAME_LEN`] (as a NIC sends it).
pub fn ethernet(dst: MacAddr, src: MacAddr, tags: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    padded(ethernet_unpadded(dst, src, tags, ethertype, payload), MIN_FRAME_LEN)
}

/// `frame` with zeros appended up to `min_len` bytes.
pub fn padded(mut frame: Vec<u8>, min_len: usize) -> Vec<u8> {
    if frame.len() < min_len {
        frame.resize(min_len, 0);
    }
    frame
}

/// [`ethernet`] without the padding: exactly the headers and `payload` (software rings and
/// files carry such frames; a wire does not).
pub fn ethernet_unpadded(dst: MacAddr, src: MacAddr, tags: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 4 * tags.len() + payload.len());
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    for &(tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 header's fields (RFC 791); no options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol of the payload ([`ip_proto`]).
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub ident: u16,
    /// Flags (DF 0x4000, MF 0x2000) and fragment offset in 8-byte units.
    pub flags_frag: u16,
}

impl Ipv4Repr {
    /// A header from `src` to `dst` carrying `protocol`, TTL 64, not a fragment.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8) -> Ipv4Repr {
        Ipv4Repr { src, dst, protocol, ttl: 64, ident: 1, flags_frag: 0 }
    }

    /// The datagram: this header (total length and checksum filled in), then `payload`.
    ///
    /// # Panics
    /// If the datagram would exceed 65,535 bytes.
    pub fn emit(&self, payload: &[u8]) -> Vec<u8> {
        let total = u16::try_from(20 + payload.len()).expect("an IPv4 datagram holds at most 65,535 bytes");
        let mut d = Vec::with_capacity(usize::from(total));
        d.extend_from_slice(&[0x45, 0]);
        d.extend_from_slice(&total.to_be_bytes());
        d.extend_from_slice(&self.ident.to_be_bytes());
        d.extend_from_slice(&self.flags_frag.to_be_bytes());
        d.extend_from_slice(&[self.ttl, self.protocol, 0, 0]);
        d.extend_from_slice(&self.src.octets());
        d.extend_from_slice(&self.dst.octets());
        let c = checksum::checksum(&d);
        d[10..12].copy_from_slice(&c.to_be_bytes());
        d.extend_from_slice(payload);
        d
    }
}

/// An IPv6 header's fields (RFC 8200).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next header ([`ip_proto`]).
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
}

impl Ipv6Repr {
    /// A header from `src` to `dst` carrying `next_header`, hop limit 64.
    pub fn new(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8) -> Ipv6Repr {
        Ipv6Repr { src, dst, next_header, hop_limit: 64 }
    }

    /// The packet: this header (payload length filled in), then `payload`.
    ///
    /// # Panics
    /// If the payload exceeds 65,535 bytes.
    pub fn emit(&self, payload: &[u8]) -> Vec<u8> {
        let len = u16::try_from(payload.len()).expect("an IPv6 payload holds at most 65,535 bytes");
        let mut d = Vec::with_capacity(40 + payload.len());
        d.extend_from_slice(&[0x60, 0, 0, 0]);
        d.extend_from_slice(&len.to_be_bytes());
        d.extend_from_slice(&[self.next_header, self.hop_limit]);
        d.extend_from_slice(&self.src.octets());
        d.extend_from_slice(&self.dst.octets());
        d.extend_from_slice(payload);
        d
    }
}

/// Stores the pseudo-header checksum of `msg` at `at` (the field is zero on entry); a
/// computed 0 is stored as 0xffff, as UDP requires.
fn fill_checksum(msg: &mut [u8], at: usize, src: IpAddr, dst: IpAddr, protocol: u8) {
    let c = match checksum::pseudo_header_checksum(src, dst, protocol, msg) {
        0 => 0xffff,
        c => c,
    };
    msg[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// A UDP datagram (RFC 768) from `src`:`sport` to `dst`:`dport`, checksum filled in.
pub fn udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).expect("a UDP datagram holds at most 65,535 bytes");
    let mut d = Vec::with_capacity(usize::from(len));
    d.extend_from_slice(&sport.to_be_bytes());
    d.extend_from_slice(&dport.to_be_bytes());
    d.extend_from_slice(&len.to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    fill_checksum(&mut d, 6, src, dst, ip_proto::UDP);
    d
}

/// A TCP segment (RFC 793) without options: `flags` ([`super::l4::tcp_flags`]),
/// sequence number `seq`, window 65,535, checksum filled in.
pub fn tcp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(20 + payload.len());
    d.extend_from_slice(&sport.to_be_bytes());
    d.extend_from_slice(&dport.to_be_bytes());
    d.extend_from_slice(&seq.to_be_bytes());
    d.extend_from_slice(&[0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    d.extend_from_slice(payload);
    fill_checksum(&mut d, 16, src, dst, ip_proto::TCP);
    d
}

/// An ICMP (IPv4) message: type, code, the four type-specific bytes `rest` and `data`,
/// checksum filled in (RFC 792).
pub fn icmp(ty: u8, code: u8, rest: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut d = vec![ty, code, 0, 0];
    d.extend_from_slice(&rest);
    d.extend_from_slice(data);
    let c = checksum::checksum(&d);
    d[2..4].copy_from_slice(&c.to_be_bytes());
    d
}

/// An ICMPv6 message from `src` to `dst`: type, code, the four type-specific bytes and
/// `body`, checksum over the pseudo-header filled in (RFC 4443 section 2.3).
pub fn icmpv6(src: Ipv6Addr, dst: Ipv6Addr, ty: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    let mut d = vec![ty, code, 0, 0];
    d.extend_from_slice(&rest);
    d.extend_from_slice(body);
    let c = checksum::pseudo_header_checksum(src.into(), dst.into(), ip_proto::ICMPV6, &d);
    d[2..4].copy_from_slice(&c.to_be_bytes());
    d
}

/// The four type-specific bytes of an echo request or reply.
pub fn echo_rest(ident: u16, seq: u16) -> [u8; 4] {
    let [a, b] = ident.to_be_bytes();
    let [c, d] = seq.to_be_bytes();
    [a, b, c, d]
}

/// An IPv6 neighbour solicitation body for `target` (RFC 4861 section 4.3), with the
/// source link-layer address option when `sll` is given; pass it to [`icmpv6`] with type
/// 135 and zero `rest`.
pub fn neighbor_solicit_body(target: Ipv6Addr, sll: Option<MacAddr>) -> Vec<u8> {
    let mut b = target.octets().to_vec();
    if let Some(mac) = sll {
        b.extend_from_slice(&[1, 1]);
        b.extend_from_slice(&mac.0);
    }
    b
}

/// An Ethernet/IPv4 ARP body (RFC 826).
pub fn arp(repr: &ArpRepr) -> Vec<u8> {
    let mut b = vec![0; arp::LEN];
    repr.emit(&mut b);
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::ethernet::ethertype;
    use crate::net::l4::{tcp_flags, IcmpHeader, TcpHeader, UdpHeader};
    use crate::net::testdata::*;
    use crate::net::{parse, Ipv4Packet, Proto, L3};

    const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    #[test]
    fn rebuilds_the_reference_frames() {
        let (s, d) = (Ipv4Addr::new(192, 168, 0, 1), Ipv4Addr::new(192, 168, 0, 2));
        // IPV4_UDP_PADDED: its UDP checksum is 0 (none), which emit always fills in.
        let mut u = udp(s.into(), d.into(), 1234, 5678, &[0xde, 0xad, 0xbe, 0xef]);
        u[6..8].fill(0);
        assert_eq!(ethernet(B, A, &[], ethertype::IPV4, &Ipv4Repr::new(s, d, 17).emit(&u)), IPV4_UDP_PADDED);
        let icmp = icmp(8, 0, echo_rest(1, 1), &[]);
        let ip = Ipv4Repr::new(s, d, 1).emit(&icmp);
        let f = ethernet(B, A, &[(0x88a8, 10), (0x8100, 20)], ethertype::IPV4, &ip);
        assert_eq!(parse(&f).map(|p| (p.l2_len, p.proto)), Ok((22, Proto::Icmp)));
        let arp_req = ArpRepr { oper: arp::oper::REQUEST, sha: A, spa: s, tha: MacAddr::default(), tpa: d };
        assert_eq!(ethernet(MacAddr::BROADCAST, A, &[], ethertype::ARP, &arp(&arp_req)), ARP_REQUEST);
    }

    #[test]
    fn checksums_verify() {
        let (s, d) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 1, 0, 2));
        let ip = Ipv4Repr::new(s, d, 6).emit(&tcp(s.into(), d.into(), 1000, 80, 7, tcp_flags::SYN, b"hi"));
        let p = Ipv4Packet::new_checked(&ip[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(checksum::pseudo_header_checksum(s.into(), d.into(), 6, p.payload()), 0, "TCP sums to zero");
        assert_eq!(TcpHeader::new_checked(p.payload()).unwrap().flags(), tcp_flags::SYN);
        let (s6, d6): (Ipv6Addr, Ipv6Addr) = ("2001:db8::2".parse().unwrap(), "2001:db8::1".parse().unwrap());
        let u = udp(s6.into(), d6.into(), 9, 9, &[1, 2, 3]);
        assert_eq!(checksum::pseudo_header_checksum(s6.into(), d6.into(), 17, &u), 0);
        assert_eq!(UdpHeader::new_checked(&u[..]).unwrap().length(), 11);
        let e = icmpv6(s6, d6, 128, 0, echo_rest(7, 1), &[1, 2]);
        assert_eq!(checksum::pseudo_header_checksum(s6.into(), d6.into(), 58, &e), 0);
        let f = ethernet(B, A, &[], ethertype::IPV6, &Ipv6Repr::new(s6, d6, 58).emit(&e));
        let p = parse(&f).unwrap();
        assert_eq!((p.l3, p.proto), (L3::Ipv6, Proto::Icmp));
        let h = IcmpHeader::new_checked(&f[54..]).unwrap();
        assert_eq!((h.echo_ident(), h.echo_seq()), (7, 1));
    }
}
