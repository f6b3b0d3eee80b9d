//! ARP over Ethernet for IPv4 (RFC 826): the only kind the forwarder answers or learns from.
//!
//! [`ArpPacket::new_checked`] guarantees the 28-byte body, after which no getter or setter
//! can panic; [`ArpRepr`] is the parsed form and writes a whole body with
//! [`ArpRepr::emit`]. [`ArpRepr::check`] is the slow path's validation: Ethernet/IPv4 only,
//! request or reply, addresses a neighbour may have ([`ArpError`]). [`request_frame`] and
//! [`ArpRepr::frame`] build what the forwarder sends.

use std::net::Ipv4Addr;

use super::ethernet::ethertype;
use super::{emit, read_u16, write_u16, MacAddr, ParseError};

mod field {
    use crate::net::Field;

    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
}

/// Length of an Ethernet/IPv4 ARP body.
pub const LEN: usize = 28;

/// ARP operation codes.
pub mod oper {
    /// Who has TPA? Tell SPA.
    pub const REQUEST: u16 = 1;
    /// SPA is at SHA.
    pub const REPLY: u16 = 2;
}

/// Hardware type Ethernet.
const HTYPE_ETHERNET: u16 = 1;

/// Why an ARP message is discarded (RFC 826 and Linux's `arp_rcv` / `arp_process`). Each is a
/// counter name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error, strum::EnumCount, strum::VariantArray, strum::IntoStaticStr,
)]
#[strum(serialize_all = "snake_case")]
pub enum ArpError {
    /// Shorter than the 28 bytes of an Ethernet/IPv4 message.
    #[error("shorter than an Ethernet/IPv4 ARP message")]
    ArpTruncated,
    /// Hardware type other than Ethernet (1).
    #[error("hardware type is not Ethernet")]
    ArpBadHardwareType,
    /// Protocol type other than IPv4 (0x0800).
    #[error("protocol type is not IPv4")]
    ArpBadProtocolType,
    /// Hardware length other than 6 or protocol length other than 4.
    #[error("address lengths are not 6 and 4")]
    ArpBadAddressLength,
    /// Operation other than request (1) or reply (2).
    #[error("operation is neither request nor reply")]
    ArpBadOperation,
    /// A target protocol address that is multicast, broadcast or loopback, or a sender
    /// that no neighbour can be: multicast, broadcast or loopback protocol address, or a
    /// multicast hardware address.
    #[error("an address no neighbour can have")]
    ArpBadAddress,
}

impl ArpError {
    /// Every reason.
    pub const ALL: &'static [ArpError] = <Self as strum::VariantArray>::VARIANTS;

    /// The counter name.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// A view of an ARP body (after the Ethernet header).
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps `buffer` after checking it holds [`LEN`] bytes.
    ///
    /// # Errors
    /// [`ParseError::Truncated`] when it is shorter.
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        if buffer.as_ref().len() < LEN {
            return Err(ParseError::Truncated);
        }
        Ok(ArpPacket { buffer })
    }

    /// Whether this is Ethernet/IPv4 ARP (hardware type 1, protocol 0x0800, lengths 6 and 4).
    pub fn is_ethernet_ipv4(&self) -> bool {
        let b = self.buffer.as_ref();
        read_u16(b, field::HTYPE) == HTYPE_ETHERNET
            && read_u16(b, field::PTYPE) == super::ethernet::ethertype::IPV4
            && b[field::HLEN] == 6
            && b[field::PLEN] == 4
    }

    /// The operation ([`oper`]).
    pub fn oper(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::OPER)
    }

    /// Sender hardware address.
    pub fn sha(&self) -> MacAddr {
        MacAddr(self.buffer.as_ref()[field::SHA].try_into().unwrap_or_default())
    }

    /// Sender protocol address.
    pub fn spa(&self) -> Ipv4Addr {
        ipv4(&self.buffer.as_ref()[field::SPA])
    }

    /// Target hardware address.
    pub fn tha(&self) -> MacAddr {
        MacAddr(self.buffer.as_ref()[field::THA].try_into().unwrap_or_default())
    }

    /// Target protocol address.
    pub fn tpa(&self) -> Ipv4Addr {
        ipv4(&self.buffer.as_ref()[field::TPA])
    }
}

fn ipv4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// An Ethernet/IPv4 ARP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    /// [`oper::REQUEST`] or [`oper::REPLY`].
    pub oper: u16,
    /// Sender hardware address.
    pub sha: MacAddr,
    /// Sender protocol address.
    pub spa: Ipv4Addr,
    /// Target hardware address (zero in a request).
    pub tha: MacAddr,
    /// Target protocol address.
    pub tpa: Ipv4Addr,
}

impl ArpRepr {
    /// Reads an Ethernet/IPv4 ARP body; `None` for another hardware or protocol type.
    pub fn parse<T: AsRef<[u8]>>(p: &ArpPacket<T>) -> Option<ArpRepr> {
        p.is_ethernet_ipv4().then(|| ArpRepr { oper: p.oper(), sha: p.sha(), spa: p.spa(), tha: p.tha(), tpa: p.tpa() })
    }

    /// Reads and validates the ARP body at the start of `body` (what follows the Ethernet
    /// header): Ethernet/IPv4, a request or a reply, and addresses a neighbour may have.
    /// A sender address 0.0.0.0 (an RFC 5227 probe) is valid.
    ///
    /// # Errors
    /// The first problem, in the order of [`ArpError`]'s variants.
    pub fn check(body: &[u8]) -> Result<ArpRepr, ArpError> {
        let p = ArpPacket::new_checked(body).map_err(|_| ArpError::ArpTruncated)?;
        let b = p.buffer;
        if read_u16(b, field::HTYPE) != HTYPE_ETHERNET {
            return Err(ArpError::ArpBadHardwareType);
        }
        if read_u16(b, field::PTYPE) != ethertype::IPV4 {
            return Err(ArpError::ArpBadProtocolType);
        }
        if b[field::HLEN] != 6 || b[field::PLEN] != 4 {
            return Err(ArpError::ArpBadAddressLength);
        }
        let r = ArpRepr { oper: p.oper(), sha: p.sha(), spa: p.spa(), tha: p.tha(), tpa: p.tpa() };
        if r.oper != oper::REQUEST && r.oper != oper::REPLY {
            return Err(ArpError::ArpBadOperation);
        }
        let martian = |a: Ipv4Addr| a.is_multicast() || a.is_broadcast() || a.is_loopback();
        if martian(r.tpa) || martian(r.spa) || r.sha.is_multicast() {
            return Err(ArpError::ArpBadAddress);
        }
        Ok(r)
    }

    /// A request from `sha` / `spa` for `tpa` (target hardware address zero).
    pub fn request(sha: MacAddr, spa: Ipv4Addr, tpa: Ipv4Addr) -> ArpRepr {
        ArpRepr { oper: oper::REQUEST, sha, spa, tha: MacAddr::default(), tpa }
    }

    /// This message in an Ethernet frame to `dst`, padded to the 60-byte minimum.
    pub fn frame(&self, dst: MacAddr) -> Vec<u8> {
        emit::ethernet(dst, self.sha, &[], ethertype::ARP, &emit::arp(self))
    }

    /// Writes the whole body into the first [`LEN`] bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`LEN`].
    pub fn emit(&self, buf: &mut [u8]) {
        write_u16(buf, field::HTYPE, HTYPE_ETHERNET);
        write_u16(buf, field::PTYPE, super::ethernet::ethertype::IPV4);
        buf[field::HLEN] = 6;
        buf[field::PLEN] = 4;
        write_u16(buf, field::OPER, self.oper);
        buf[field::SHA].copy_from_slice(&self.sha.0);
        buf[field::SPA].copy_from_slice(&self.spa.octets());
        buf[field::THA].copy_from_slice(&self.tha.0);
        buf[field::TPA].copy_from_slice(&self.tpa.octets());
    }

    /// The reply to this request from `mac`: who asked becomes the target.
    pub fn reply(&self, mac: MacAddr) -> ArpRepr {
        ArpRepr { oper: oper::REPLY, sha: mac, spa: self.tpa, tha: self.sha, tpa: self.spa }
    }
}

/// A request for `tpa` from our `mac` / `spa` (RFC 826; `arp_solicit`): broadcast, or
/// unicast to `probe` (a PROBE to the cached address). A gratuitous ARP is a broadcast
/// request for our own address (`spa == tpa`).
pub fn request_frame(mac: MacAddr, spa: Ipv4Addr, tpa: Ipv4Addr, probe: Option<MacAddr>) -> Vec<u8> {
    ArpRepr::request(mac, spa, tpa).frame(probe.unwrap_or(MacAddr::BROADCAST))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::testdata::ARP_REQUEST;

    #[test]
    fn request_fields_and_round_trip() {
        let p = ArpPacket::new_checked(&ARP_REQUEST[14..]).unwrap();
        let r = ArpRepr::parse(&p).unwrap();
        assert_eq!(r.oper, oper::REQUEST);
        assert_eq!(r.sha, MacAddr([2, 0, 0, 0, 0, 1]));
        let mut buf = [0u8; LEN];
        r.emit(&mut buf);
        assert_eq!(&buf[..], &ARP_REQUEST[14..14 + LEN]);
        let reply = r.reply(MacAddr([2, 0, 0, 0, 0, 9]));
        assert_eq!((reply.oper, reply.spa, reply.tpa, reply.tha), (oper::REPLY, r.tpa, r.spa, r.sha));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// What a Linux 6.18 host sent on a veth (02:00:00:00:00:01, 10.0.0.1 pinging
    /// 02:00:00:00:00:02, 10.0.0.2), captured with an AF_PACKET socket: 42 bytes, the NIC pads.
    const LINUX_REQUEST: &str = "ffffffffffff020000000001080600010800060400010200000000010a0000010000000000000a000002";
    const LINUX_REPLY: &str = "020000000001020000000002080600010800060400020200000000020a0000020200000000010a000001";

    #[test]
    fn request_and_reply_bytes_are_linux_s() {
        let (a, b) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]));
        let (ia, ib) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let req = request_frame(a, ia, ib, None);
        assert_eq!(req.len(), 60);
        assert_eq!(&req[..42], &hex(LINUX_REQUEST)[..]);
        assert!(req[42..].iter().all(|&x| x == 0), "zero padding");
        let parsed = ArpRepr::check(&req[14..]).unwrap();
        assert_eq!(parsed, ArpRepr::request(a, ia, ib));
        let reply = parsed.reply(b).frame(a);
        assert_eq!(&reply[..42], &hex(LINUX_REPLY)[..]);
        // A unicast probe; a gratuitous ARP.
        assert_eq!(&request_frame(a, ia, ib, Some(b))[0..6], &b.0);
        let garp = ArpRepr::check(&request_frame(a, ia, ia, None)[14..]).unwrap();
        assert_eq!((garp.spa, garp.tpa, garp.tha), (ia, ia, MacAddr::default()));
    }

    #[test]
    fn check_refuses_all_but_ethernet_ipv4() {
        let good = ARP_REQUEST[14..14 + LEN].to_vec();
        assert!(ArpRepr::check(&good).is_ok());
        let broken = |at: usize, v: u8| {
            let mut b = good.clone();
            b[at] = v;
            ArpRepr::check(&b)
        };
        assert_eq!(broken(1, 6), Err(ArpError::ArpBadHardwareType), "IEEE 802");
        assert_eq!(broken(0, 1), Err(ArpError::ArpBadHardwareType));
        assert_eq!(broken(2, 0x86), Err(ArpError::ArpBadProtocolType));
        assert_eq!(broken(4, 8), Err(ArpError::ArpBadAddressLength));
        assert_eq!(broken(5, 16), Err(ArpError::ArpBadAddressLength));
        assert_eq!(broken(7, 3), Err(ArpError::ArpBadOperation), "RARP request");
        assert_eq!(broken(7, 0), Err(ArpError::ArpBadOperation));
        assert_eq!(broken(24, 224), Err(ArpError::ArpBadAddress), "multicast target");
        assert_eq!(broken(24, 127), Err(ArpError::ArpBadAddress), "loopback target");
        assert_eq!(broken(14, 239), Err(ArpError::ArpBadAddress), "multicast sender");
        assert_eq!(broken(8, 1), Err(ArpError::ArpBadAddress), "multicast sender MAC");
        assert_eq!(ArpRepr::check(&good[..27]), Err(ArpError::ArpTruncated));
        let mut probe = good.clone();
        probe[14..18].fill(0);
        assert!(ArpRepr::check(&probe).is_ok(), "an RFC 5227 probe from 0.0.0.0");
        let names: Vec<&str> = ArpError::ALL.iter().map(|e| e.name()).collect();
        assert_eq!(
            names,
            [
                "arp_truncated",
                "arp_bad_hardware_type",
                "arp_bad_protocol_type",
                "arp_bad_address_length",
                "arp_bad_operation",
                "arp_bad_address"
            ]
        );
    }

    #[test]
    fn short_or_foreign_bodies() {
        for len in 0..LEN {
            assert!(ArpPacket::new_checked(&ARP_REQUEST[14..14 + len]).is_err());
        }
        let mut body = ARP_REQUEST[14..14 + LEN].to_vec();
        body[1] = 6; // hardware type 6 (IEEE 802)
        assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&body[..]).unwrap()), None);
    }
}
