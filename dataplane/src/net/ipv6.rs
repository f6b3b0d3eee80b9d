//! IPv6 headers and the extension-header walk to the upper-layer protocol.
//!
//! [`Ipv6Packet::new_checked`] checks the version and that the buffer holds the
//! 40-byte header and the payload length (it may hold more: Ethernet padding).
//! [`Ipv6Packet::upper_layer`] then walks the extension headers inside the payload,
//! checking each one it reads. Jumbograms (payload length 0 with a Jumbo option) are
//! not supported: their payload is seen as empty.

use std::net::Ipv6Addr;

use super::{ip_proto, read_u16, ParseError};

mod field {
    use crate::net::Field;

    pub const VER_TC_FLOW: usize = 0;
    pub const LENGTH: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;

    // Within an extension header.
    pub const EXT_NXT_HDR: usize = 0;
    pub const EXT_LEN: usize = 1;
    /// Fragment header: offset (13 bits, in 8-byte units), 2 reserved bits, M flag.
    pub const FRAG_OFF_M: Field = 2..4;
    pub const FRAG_IDENT: Field = 4..8;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;
/// Most extension headers [`Ipv6Packet::upper_layer`] walks.
pub const MAX_EXT_HEADERS: usize = 8;
/// Length of a Fragment header.
pub const FRAGMENT_HEADER_LEN: usize = 8;

/// What a Fragment header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Fragment offset in bytes (the field times 8).
    pub offset: u16,
    /// M flag: more fragments follow.
    pub more: bool,
    /// Identification.
    pub ident: u32,
}

/// Where the extension-header chain ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// The upper-layer protocol (see [`ip_proto`]); `None` for No Next Header (59).
    /// For a non-first fragment, the Fragment header's next header, whose bytes are
    /// in an earlier fragment.
    pub protocol: Option<u8>,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    /// The Fragment header, if the chain has one.
    pub fragment: Option<Fragment>,
}

/// A view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps `buffer` without checking it.
    ///
    /// # Panics
    /// Getters and setters may panic unless the buffer would pass
    /// [`check_len`](Self::check_len).
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    ///
    /// # Errors
    /// As [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the fields every getter relies on, so that none can panic.
    ///
    /// # Errors
    /// In this order:
    /// - [`ParseError::Truncated`]: fewer than 40 bytes.
    /// - [`ParseError::BadVersion`]: version is not 6.
    /// - [`ParseError::Truncated`]: fewer than 40 + payload length bytes.
    pub fn check_len(&self) -> Result<(), ParseError> {
        self.check_len_within(self.buffer.as_ref().len())
    }

    /// Wraps `buffer`, the first bytes of a packet of which `available` bytes exist in all
    /// (the first segment of an mbuf chain), after
    /// [`check_len_within`](Self::check_len_within).
    ///
    /// # Errors
    /// As [`check_len_within`](Self::check_len_within).
    #[inline]
    pub fn new_checked_within(buffer: T, available: usize) -> Result<Self, ParseError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len_within(available)?;
        Ok(packet)
    }

    /// As [`check_len`](Self::check_len), with the payload length checked against
    /// `available` bytes (at least the buffer's); the fixed header must be in the buffer.
    /// [`payload`](Self::payload) then gives the part of the payload in the buffer, so
    /// [`upper_layer`](Self::upper_layer) finds the extension headers only there.
    ///
    /// # Errors
    /// As [`check_len`](Self::check_len).
    pub fn check_len_within(&self, available: usize) -> Result<(), ParseError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        if self.version() != 6 {
            return Err(ParseError::BadVersion);
        }
        if available.max(len) < HEADER_LEN + usize::from(self.payload_len()) {
            return Err(ParseError::Truncated);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version (6 once checked).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW] >> 4
    }

    /// Payload length: everything after the fixed header, extension headers included.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Next header of the fixed header: the first extension header or the upper layer.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC_ADDR]);
        Ipv6Addr::from(a)
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST_ADDR]);
        Ipv6Addr::from(a)
    }

    /// The payload (extension headers and upper layer), without any Ethernet padding.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[HEADER_LEN..(HEADER_LEN + usize::from(self.payload_len())).min(b.len())]
    }

    /// Walks the extension headers — Hop-by-Hop (0), Routing (43), Fragment (44),
    /// Destination Options (60) and AH (51) — to the upper-layer protocol and its offset.
    /// The walk stops at the first other next-header value, at No Next Header (59), and
    /// after the Fragment header of a non-first fragment (offset != 0), whose upper-layer
    /// header is in the first fragment.
    ///
    /// # Errors
    /// - [`ParseError::Truncated`]: an extension header runs past the payload length.
    /// - [`ParseError::TooManyExtHeaders`]: more than [`MAX_EXT_HEADERS`] of them.
    pub fn upper_layer(&self) -> Result<UpperLayer, ParseError> {
        let payload = self.payload();
        let mut next = self.next_header();
        let mut offset = 0;
        let mut fragment = None;
        let mut count = 0;
        loop {
            let len = match next {
                ip_proto::IPV6_NO_NEXT => return Ok(UpperLayer { protocol: None, offset: HEADER_LEN + offset, fragment }),
                ip_proto::HOP_BY_HOP
                | ip_proto::IPV6_ROUTING
                | ip_proto::IPV6_DEST_OPTS
                | ip_proto::AH
                | ip_proto::IPV6_FRAGMENT
                    if count == MAX_EXT_HEADERS =>
                {
                    return Err(ParseError::TooManyExtHeaders)
                }
                // (Hdr Ext Len + 1) 8-byte units.
                ip_proto::HOP_BY_HOP | ip_proto::IPV6_ROUTING | ip_proto::IPV6_DEST_OPTS => {
                    (usize::from(ext_len_byte(payload, offset)?) + 1) * 8
                }
                // (Payload Len + 2) 4-byte units.
                ip_proto::AH => (usize::from(ext_len_byte(payload, offset)?) + 2) * 4,
                ip_proto::IPV6_FRAGMENT => FRAGMENT_HEADER_LEN,
                upper => return Ok(UpperLayer { protocol: Some(upper), offset: HEADER_LEN + offset, fragment }),
            };
            count += 1;
            let header = payload.get(offset..offset + len).ok_or(ParseError::Truncated)?;
            let this = next;
            next = header[field::EXT_NXT_HDR]; // `len` >= 8
            offset += len;
            if this == ip_proto::IPV6_FRAGMENT {
                let off_m = read_u16(header, field::FRAG_OFF_M);
                let frag = Fragment {
                    offset: off_m & !0x7,
                    more: off_m & 0x1 != 0,
                    ident: u32::from_be_bytes([
                        header[field::FRAG_IDENT.start],
                        header[field::FRAG_IDENT.start + 1],
                        header[field::FRAG_IDENT.start + 2],
                        header[field::FRAG_IDENT.start + 3],
                    ]),
                };
                fragment = Some(frag);
                if frag.offset != 0 {
                    return Ok(UpperLayer { protocol: Some(next), offset: HEADER_LEN + offset, fragment });
                }
            }
        }
    }
}

/// The length byte of the extension header at `offset` in `payload`.
#[inline]
fn ext_len_byte(payload: &[u8], offset: usize) -> Result<u8, ParseError> {
    payload.get(offset + field::EXT_LEN).copied().ok_or(ParseError::Truncated)
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, hop_limit: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hop_limit;
    }

    /// Decrements the hop limit (IPv6 has no header checksum to update).
    ///
    /// Returns the new hop limit, or `None`, leaving the header untouched, if it was
    /// already 0. A router drops the packet when this returns `Some(0)` or `None`.
    #[inline]
    pub fn decrement_hop_limit(&mut self) -> Option<u8> {
        let hop_limit = self.hop_limit().checked_sub(1)?;
        self.set_hop_limit(hop_limit);
        Some(hop_limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::testdata::*;

    fn ip(frame: &[u8], l3: usize) -> Ipv6Packet<&[u8]> {
        Ipv6Packet::new_checked(&frame[l3..]).unwrap()
    }

    /// An IPv6 header with `next` and `payload` appended.
    fn packet(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut d = IPV6_EXT_CHAIN_UDP[14..54].to_vec();
        d[4..6].copy_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
        d[6] = next;
        d.extend_from_slice(payload);
        d
    }

    #[test]
    fn fixed_header_fields() {
        let p = ip(&VLAN_IPV6_ICMPV6, 18);
        assert_eq!(p.version(), 6);
        assert_eq!(p.payload_len(), 8);
        assert_eq!(p.next_header(), ip_proto::ICMPV6);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst_addr(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.payload(), &VLAN_IPV6_ICMPV6[58..]);
        assert_eq!(p.upper_layer(), Ok(UpperLayer { protocol: Some(ip_proto::ICMPV6), offset: 40, fragment: None }));
    }

    #[test]
    fn hbh_dest_fragment_chain() {
        let p = ip(&IPV6_EXT_CHAIN_UDP, 14);
        assert_eq!(p.next_header(), ip_proto::HOP_BY_HOP);
        assert_eq!(
            p.upper_layer(),
            Ok(UpperLayer {
                protocol: Some(ip_proto::UDP),
                offset: 40 + 8 + 8 + 8,
                fragment: Some(Fragment { offset: 0, more: true, ident: 42 }),
            })
        );
    }

    #[test]
    fn routing_and_ah() {
        let p = ip(&IPV6_ROUTING_AH_TCP, 14);
        assert_eq!(p.upper_layer(), Ok(UpperLayer { protocol: Some(ip_proto::TCP), offset: 40 + 24 + 24, fragment: None }));
    }

    #[test]
    fn non_first_fragment_stops_the_walk() {
        let p = ip(&IPV6_LATER_FRAGMENT, 14);
        assert_eq!(
            p.upper_layer(),
            Ok(UpperLayer {
                protocol: Some(ip_proto::UDP),
                offset: 48,
                fragment: Some(Fragment { offset: 1480, more: false, ident: 42 }),
            })
        );
    }

    #[test]
    fn no_next_header_and_padding() {
        // 46 bytes after the Ethernet header; the packet is the first 40.
        let p = ip(&IPV6_NO_NEXT_PADDED, 14);
        assert_eq!(p.payload_len(), 0);
        assert!(p.payload().is_empty());
        assert_eq!(p.upper_layer(), Ok(UpperLayer { protocol: None, offset: 40, fragment: None }));
    }

    #[test]
    fn check_len_errors() {
        let good = &IPV6_EXT_CHAIN_UDP[14..];
        for len in 0..good.len() {
            assert_eq!(Ipv6Packet::new_checked(&good[..len]).err(), Some(ParseError::Truncated), "prefix {len}");
        }
        let mut d = good.to_vec();
        d[0] = 0x40;
        assert_eq!(Ipv6Packet::new_checked(&d[..]).err(), Some(ParseError::BadVersion));
        let mut d = good.to_vec();
        d[5] += 1; // payload length one more than there is
        assert_eq!(Ipv6Packet::new_checked(&d[..]).err(), Some(ParseError::Truncated));
    }

    #[test]
    fn chain_running_off_the_end_is_truncated() {
        let hbh_then_dest = [ip_proto::IPV6_DEST_OPTS, 0, 1, 4, 0, 0, 0, 0];
        // Dest Options announced, nothing there.
        let d = packet(ip_proto::HOP_BY_HOP, &hbh_then_dest);
        assert_eq!(ip(&d, 0).upper_layer(), Err(ParseError::Truncated));
        // Dest Options whose length byte says 16 bytes, 8 there.
        let mut chain = hbh_then_dest.to_vec();
        chain.extend_from_slice(&[ip_proto::UDP, 1, 1, 4, 0, 0, 0, 0]);
        let d = packet(ip_proto::HOP_BY_HOP, &chain);
        assert_eq!(ip(&d, 0).upper_layer(), Err(ParseError::Truncated));
        // Only the next-header byte of a Routing header.
        let d = packet(ip_proto::IPV6_ROUTING, &[ip_proto::TCP]);
        assert_eq!(ip(&d, 0).upper_layer(), Err(ParseError::Truncated));
        // A Fragment header cut short.
        let d = packet(ip_proto::IPV6_FRAGMENT, &[ip_proto::UDP, 0, 0, 0]);
        assert_eq!(ip(&d, 0).upper_layer(), Err(ParseError::Truncated));
        // An AH of 4 * (1 + 2) = 12 bytes with 8 there.
        let d = packet(ip_proto::AH, &[ip_proto::TCP, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(ip(&d, 0).upper_layer(), Err(ParseError::Truncated));
        // The bytes exist in the buffer but past the payload length (padding).
        let mut d = packet(ip_proto::HOP_BY_HOP, &hbh_then_dest);
        d.extend_from_slice(&[ip_proto::UDP, 0, 1, 4, 0, 0, 0, 0]);
        assert_eq!(ip(&d, 0).upper_layer(), Err(ParseError::Truncated));
    }

    #[test]
    fn ext_header_cap() {
        let dest = |next| [next, 0, 1, 4, 0, 0, 0, 0];
        for n in [MAX_EXT_HEADERS, MAX_EXT_HEADERS + 1] {
            let mut chain = Vec::new();
            for i in 0..n {
                let next = if i + 1 == n { ip_proto::IPV6_NO_NEXT } else { ip_proto::IPV6_DEST_OPTS };
                chain.extend_from_slice(&dest(next));
            }
            let d = packet(ip_proto::IPV6_DEST_OPTS, &chain);
            let expected = if n == MAX_EXT_HEADERS {
                Ok(UpperLayer { protocol: None, offset: 40 + 8 * n, fragment: None })
            } else {
                Err(ParseError::TooManyExtHeaders)
            };
            assert_eq!(ip(&d, 0).upper_layer(), expected, "{n} headers");
        }
    }

    #[test]
    fn hop_limit_setters() {
        let mut d = IPV6_NO_NEXT_PADDED;
        let mut p = Ipv6Packet::new_checked(&mut d[14..]).unwrap();
        assert_eq!(p.hop_limit(), 1);
        assert_eq!(p.decrement_hop_limit(), Some(0));
        assert_eq!(p.decrement_hop_limit(), None);
        assert_eq!(p.hop_limit(), 0);
        p.set_hop_limit(255);
        assert_eq!(p.decrement_hop_limit(), Some(254));
        assert_eq!(d[21], 254);
    }
}
