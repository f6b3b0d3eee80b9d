//! ARP over Ethernet for IPv4 (RFC 826): the only kind the forwarder answers.
//!
//! [`ArpPacket::new_checked`] guarantees the 28-byte body, after which no getter or setter
//! can panic; [`ArpRepr`] is the parsed form and writes a whole body with
//! [`ArpRepr::emit`].

use std::net::Ipv4Addr;

use super::{read_u16, write_u16, MacAddr, ParseError};

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
