//! Packets addressed to the forwarder itself: which ones it answers, and the answers.
//!
//! In l3fwd mode a port may carry the forwarder's own IPv4 and IPv6 addresses
//! (`[[port]] ipv4`, `ipv6`). The workers recognise, with [`classify`], the requests hosts
//! send to their router: ARP requests and IPv6 neighbour solicitations for those
//! addresses, and ICMP / ICMPv6 echo requests to them. Such packets are punted to the
//! slow path, which turns each into its reply in place with [`answer`] and sends it back
//! out of the port it came in on. Everything here is a pure function over bytes.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::net::arp::{self, ArpPacket, ArpRepr};
use crate::net::l4::{icmp_type, icmpv6_type};
use crate::net::{checksum, ip_proto, ipv6};
use crate::net::{parse, EthernetFrame, IcmpHeader, Ipv4Packet, Ipv6Packet, MacAddr, Parsed, Proto, L3};

/// The forwarder's own addresses on one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Local {
    /// The port's MAC.
    pub mac: MacAddr,
    /// Its IPv4 address, if any.
    pub ipv4: Option<Ipv4Addr>,
    /// Its IPv6 address, if any.
    pub ipv6: Option<Ipv6Addr>,
}

/// A request the forwarder answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// ARP who-has for our IPv4 address.
    Arp,
    /// ICMP echo request to our IPv4 address.
    Echo,
    /// ICMPv6 echo request to our IPv6 address.
    Echo6,
    /// IPv6 neighbour solicitation for our IPv6 address.
    NeighborSolicit,
}

/// Whether `frame` (already parsed as `p`) is a request to `local` that the forwarder
/// answers itself.
pub fn classify(frame: &[u8], p: &Parsed, local: &Local) -> Option<Request> {
    let l3 = usize::from(p.l3_offset);
    let l4 = usize::from(p.l4_offset);
    match p.l3 {
        L3::Arp => {
            let a = ArpRepr::parse(&ArpPacket::new_checked(frame.get(l3..)?).ok()?)?;
            (a.oper == arp::oper::REQUEST && Some(a.tpa) == local.ipv4).then_some(Request::Arp)
        }
        L3::Ipv4 if p.proto == Proto::Icmp && !p.fragment => {
            let ip = Ipv4Packet::new_checked(&frame[l3..]).ok()?;
            (Some(ip.dst_addr()) == local.ipv4 && frame.get(l4) == Some(&icmp_type::ECHO_REQUEST)).then_some(Request::Echo)
        }
        L3::Ipv6 if p.proto == Proto::Icmp && !p.fragment => {
            let ip = Ipv6Packet::new_checked(&frame[l3..]).ok()?;
            let ours = local.ipv6?;
            // The ICMPv6 message runs from l4 to the end of the datagram (not of the
            // frame, which may carry padding).
            let end = l3 + ipv6::HEADER_LEN + usize::from(ip.payload_len());
            let icmp = frame.get(l4..end)?;
            match *icmp.first()? {
                icmpv6_type::ECHO_REQUEST if ip.dst_addr() == ours => Some(Request::Echo6),
                icmpv6_type::NEIGHBOR_SOLICIT if icmp.get(8..24)? == ours.octets() && ip.hop_limit() == 255 => {
                    Some(Request::NeighborSolicit)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether an IP packet is addressed to one of `local`'s addresses.
pub fn is_for(frame: &[u8], p: &Parsed, local: &Local) -> bool {
    let l3 = usize::from(p.l3_offset);
    match p.l3 {
        L3::Ipv4 => {
            local.ipv4.is_some() && Ipv4Packet::new_checked(&frame[l3..]).is_ok_and(|ip| Some(ip.dst_addr()) == local.ipv4)
        }
        L3::Ipv6 => {
            local.ipv6.is_some() && Ipv6Packet::new_checked(&frame[l3..]).is_ok_and(|ip| Some(ip.dst_addr()) == local.ipv6)
        }
        _ => false,
    }
}

/// Rewrites a request that [`classify`] accepted into its reply, in place, to be sent out
/// of the port it arrived on. Returns `false` (and leaves nothing half-done that matters:
/// the caller drops the frame) if the frame is not a request it can answer after all.
pub fn answer(frame: &mut [u8], local: &Local) -> bool {
    let Ok(p) = parse(frame) else { return false };
    let Some(req) = classify(frame, &p, local) else { return false };
    let l3 = usize::from(p.l3_offset);
    let l4 = usize::from(p.l4_offset);
    let peer = match EthernetFrame::new_checked(&frame[..]) {
        Ok(eth) => eth.src(),
        Err(_) => return false,
    };
    match req {
        Request::Arp => {
            // `classify` read it as an Ethernet/IPv4 request for our address.
            let Some(request) = ArpPacket::new_checked(&frame[l3..]).ok().as_ref().and_then(ArpRepr::parse) else {
                return false;
            };
            request.reply(local.mac).emit(&mut frame[l3..l3 + arp::LEN]);
        }
        Request::Echo => {
            let len = match Ipv4Packet::new_checked(&frame[l3..]) {
                Ok(ip) => ip.header_len(),
                Err(_) => return false,
            };
            let hdr = &mut frame[l3..l3 + len];
            let (src, dst) = (copy4(&hdr[12..]), copy4(&hdr[16..]));
            hdr[12..16].copy_from_slice(&dst);
            hdr[16..20].copy_from_slice(&src);
            hdr[8] = 64;
            hdr[10..12].fill(0);
            let c = checksum::checksum(hdr);
            hdr[10..12].copy_from_slice(&c.to_be_bytes());
            set_icmp_type(&mut frame[l4..], icmp_type::ECHO_REPLY);
        }
        Request::Echo6 => {
            swap_ipv6_addrs(&mut frame[l3..]);
            frame[l3 + 7] = 64;
            set_icmp_type(&mut frame[l4..], icmpv6_type::ECHO_REPLY);
        }
        Request::NeighborSolicit => {
            let ours = local.ipv6.map_or([0; 16], |a| a.octets());
            let ip = &mut frame[l3..];
            let src = copy16(&ip[8..]);
            if src == [0; 16] {
                return false; // duplicate address detection: not ours to answer
            }
            ip[24..40].copy_from_slice(&src);
            ip[8..24].copy_from_slice(&ours);
            ip[7] = 255;
            // `classify` checked that the message holds 24 bytes and ends inside the frame.
            let end = l3 + ipv6::HEADER_LEN + usize::from(read16(ip, 4));
            let icmp = &mut frame[l4..end];
            icmp[0] = icmpv6_type::NEIGHBOR_ADVERT;
            icmp[1] = 0;
            // Router, Solicited, Override.
            icmp[4..8].copy_from_slice(&[0xe0, 0, 0, 0]);
            // The source link-layer option (type 1), if present, becomes the target
            // link-layer option (type 2) carrying our MAC; any other options are cleared.
            let opts = &mut icmp[24..];
            if opts.len() >= 8 && opts[0] == 1 && opts[1] == 1 {
                opts[0] = 2;
                opts[2..8].copy_from_slice(&local.mac.0);
                opts[8..].fill(0);
            } else {
                opts.fill(0);
            }
            icmp[2..4].fill(0);
            let c = checksum::pseudo_header_checksum(
                ip6(&frame[l3 + 8..]),
                ip6(&frame[l3 + 24..]),
                ip_proto::ICMPV6,
                &frame[l4..end],
            );
            frame[l4 + 2..l4 + 4].copy_from_slice(&c.to_be_bytes());
        }
    }
    if let Ok(mut eth) = EthernetFrame::new_checked(&mut frame[..]) {
        eth.set_dst(peer);
        eth.set_src(local.mac);
    }
    true
}

/// Changes an ICMP/ICMPv6 type from a request to its reply (the checksum is updated
/// incrementally: the pseudo-header of ICMPv6 is unchanged by swapping addresses).
fn set_icmp_type(icmp: &mut [u8], ty: u8) {
    if let Ok(mut h) = IcmpHeader::new_checked(icmp) {
        h.set_msg_type(ty);
    }
}

/// The IPv6 address in the first 16 bytes of `b`.
fn ip6(b: &[u8]) -> std::net::IpAddr {
    std::net::IpAddr::V6(Ipv6Addr::from(copy16(b)))
}

fn swap_ipv6_addrs(ip: &mut [u8]) {
    let (src, dst) = (copy16(&ip[8..]), copy16(&ip[24..]));
    ip[8..24].copy_from_slice(&dst);
    ip[24..40].copy_from_slice(&src);
}

fn read16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn copy4(b: &[u8]) -> [u8; 4] {
    [b[0], b[1], b[2], b[3]]
}

fn copy16(b: &[u8]) -> [u8; 16] {
    let mut a = [0; 16];
    a.copy_from_slice(&b[..16]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::arp::ArpRepr;
    use crate::net::emit::{self, echo_rest, Ipv4Repr, Ipv6Repr};
    use crate::net::ethernet::ethertype;

    const OUR_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const HOST_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x99]);
    const HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn local() -> Local {
        Local { mac: OUR_MAC, ipv4: Some(Ipv4Addr::new(10, 0, 0, 1)), ipv6: Some(v6("2001:db8::1")) }
    }

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn arp_request(tpa: [u8; 4]) -> Vec<u8> {
        let req = ArpRepr { oper: arp::oper::REQUEST, sha: HOST_MAC, spa: HOST, tha: MacAddr::default(), tpa: tpa.into() };
        emit::ethernet(MacAddr::BROADCAST, HOST_MAC, &[], ethertype::ARP, &emit::arp(&req))
    }

    fn echo4(dst: [u8; 4]) -> Vec<u8> {
        let icmp = emit::icmp(icmp_type::ECHO_REQUEST, 0, [0x12, 0x34, 0, 1], &[0xde, 0xad, 0xbe, 0xef]);
        emit::ethernet(OUR_MAC, HOST_MAC, &[], ethertype::IPV4, &Ipv4Repr::new(HOST, dst.into(), ip_proto::ICMP).emit(&icmp))
    }

    /// An ICMPv6 message (`ty`, zero code and rest, then `body`) from `src` to `dst`.
    fn icmpv6(ty: u8, hops: u8, src: &str, dst: &str, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
        let msg = emit::icmpv6(v6(src), v6(dst), ty, 0, rest, body);
        let ip = Ipv6Repr { hop_limit: hops, ..Ipv6Repr::new(v6(src), v6(dst), ip_proto::ICMPV6) }.emit(&msg);
        emit::ethernet(OUR_MAC, HOST_MAC, &[], ethertype::IPV6, &ip)
    }

    fn icmpv6_valid(frame: &[u8]) -> bool {
        checksum::pseudo_header_checksum(ip6(&frame[22..]), ip6(&frame[38..]), ip_proto::ICMPV6, &frame[54..]) == 0
    }

    #[test]
    fn arp_request_for_us_becomes_a_reply() {
        let mut f = arp_request([10, 0, 0, 1]);
        let p = parse(&f).unwrap();
        assert_eq!(classify(&f, &p, &local()), Some(Request::Arp));
        assert!(answer(&mut f, &local()));
        assert_eq!(&f[0..6], &HOST_MAC.0);
        assert_eq!(&f[6..12], &OUR_MAC.0);
        let a = ArpRepr::parse(&ArpPacket::new_checked(&f[14..]).unwrap()).unwrap();
        assert_eq!(
            a,
            ArpRepr { oper: arp::oper::REPLY, sha: OUR_MAC, spa: Ipv4Addr::new(10, 0, 0, 1), tha: HOST_MAC, tpa: HOST }
        );
    }

    #[test]
    fn requests_for_others_are_not_ours() {
        let f = arp_request([10, 0, 0, 7]);
        assert_eq!(classify(&f, &parse(&f).unwrap(), &local()), None);
        let g = echo4([10, 0, 1, 9]);
        assert_eq!(classify(&g, &parse(&g).unwrap(), &local()), None);
        let no_v4 = Local { ipv4: None, ..local() };
        let h = echo4([10, 0, 0, 1]);
        assert_eq!(classify(&h, &parse(&h).unwrap(), &no_v4), None);
    }

    #[test]
    fn echo_request_becomes_a_valid_reply() {
        let mut f = echo4([10, 0, 0, 1]);
        assert_eq!(classify(&f, &parse(&f).unwrap(), &local()), Some(Request::Echo));
        assert!(answer(&mut f, &local()));
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.src_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(ip.dst_addr(), HOST);
        assert_eq!(f[34], icmp_type::ECHO_REPLY);
        assert_eq!(checksum::sum(ip.payload()), 0xffff, "ICMP checksum valid");
        assert_eq!(&f[38..46], &[0x12, 0x34, 0, 1, 0xde, 0xad, 0xbe, 0xef], "id, sequence and data kept");
        assert_eq!(&f[0..6], &HOST_MAC.0);
    }

    #[test]
    fn icmpv6_echo_and_neighbour_solicitation() {
        let mut f = icmpv6(icmpv6_type::ECHO_REQUEST, 64, "2001:db8::2", "2001:db8::1", echo_rest(7, 1), &[1, 2, 3, 4]);
        assert_eq!(classify(&f, &parse(&f).unwrap(), &local()), Some(Request::Echo6));
        assert!(answer(&mut f, &local()));
        assert_eq!(f[54], icmpv6_type::ECHO_REPLY);
        assert!(icmpv6_valid(&f));
        assert_eq!(Ipv6Packet::new_checked(&f[14..]).unwrap().dst_addr(), v6("2001:db8::2"));

        let ns = emit::neighbor_solicit_body(v6("2001:db8::1"), Some(HOST_MAC));
        let solicit = |hops| icmpv6(icmpv6_type::NEIGHBOR_SOLICIT, hops, "2001:db8::2", "ff02::1:ff00:1", [0; 4], &ns);
        let mut f = solicit(255);
        assert_eq!(classify(&f, &parse(&f).unwrap(), &local()), Some(Request::NeighborSolicit));
        assert!(answer(&mut f, &local()));
        assert_eq!(f[54], icmpv6_type::NEIGHBOR_ADVERT);
        assert_eq!(&f[54 + 4..54 + 8], &[0xe0, 0, 0, 0]);
        assert_eq!(&f[54 + 24..54 + 26], &[2, 1]);
        assert_eq!(&f[54 + 26..54 + 32], &OUR_MAC.0);
        assert!(icmpv6_valid(&f));
        let ip = Ipv6Packet::new_checked(&f[14..]).unwrap();
        assert_eq!(ip.src_addr(), v6("2001:db8::1"));
        assert_eq!(ip.dst_addr(), v6("2001:db8::2"));
        assert_eq!(ip.hop_limit(), 255);

        // A solicitation that did not come from a neighbour (hop limit not 255) is ignored.
        let g = solicit(64);
        assert_eq!(classify(&g, &parse(&g).unwrap(), &local()), None);
    }

    #[test]
    fn no_input_panics() {
        let base = echo4([10, 0, 0, 1]);
        for len in 0..=base.len() {
            for i in 0..len {
                for v in [0u8, 0xff, 1, 8, 0x45] {
                    let mut f = base[..len].to_vec();
                    f[i] = v;
                    let _ = answer(&mut f, &local());
                }
            }
        }
        let arp = arp_request([10, 0, 0, 1]);
        for len in 0..=arp.len() {
            let _ = answer(&mut arp[..len].to_vec(), &local());
        }
    }
}
