//! Zero-copy packet parsing: header views over byte buffers and the one-pass classifier
//! the forwarder runs on every frame; and the emit side ([`emit`]) that builds whole frames
//! with valid lengths and checksums for the slow path's tests and fuzz seeds.
//!
//! # Contract
//!
//! - **Checked once, no panics after.** Each header view ([`EthernetFrame`], [`ArpPacket`],
//!   [`Ipv4Packet`], [`Ipv6Packet`], [`TcpHeader`], [`UdpHeader`], [`IcmpHeader`]) wraps any
//!   `T: AsRef<[u8]>` (`&[u8]`, `&mut [u8]`, an mbuf's data). `new_checked` validates
//!   every length the view relies on; after it succeeds no getter or setter can panic.
//!   Setters never touch a length field (IHL, total length, payload length, data
//!   offset), so a checked view stays valid for as long as it lives.
//!   `new_unchecked` skips the check: its getters may panic on a short buffer, so use
//!   it only on bytes already accepted by `new_checked` or by [`parse`].
//! - **[`parse`] never panics**, whatever the input, and never allocates. It reads
//!   each header once and returns the offsets and the protocol class in [`Parsed`], or
//!   the first problem found as a [`ParseError`].
//! - Checksums are not verified by `new_checked` or [`parse`]: call
//!   [`Ipv4Packet::verify_checksum`] if you want to count bad ones separately.
//! - Nothing here allocates, logs or uses `unsafe`.
//!
//! # Use in the forwarder
//!
//! ```
//! # use dataplane::net::{parse, Ipv4Packet, L3, ParseError};
//! # let mut frame = [0u8; 10];
//! let mut drops = [0u64; ParseError::COUNT];
//! match parse(&frame) {
//!     Ok(p) if p.l3 == L3::Ipv4 => {
//!         // `parse` has validated the header, so this cannot fail.
//!         let l3 = usize::from(p.l3_offset);
//!         if let Ok(mut ip) = Ipv4Packet::new_checked(&mut frame[l3..]) {
//!             ip.decrement_ttl();
//!         }
//!     }
//!     Ok(_) => {}
//!     Err(e) => drops[e.index()] += 1,
//! }
//! # assert_eq!(drops[ParseError::Truncated.index()], 1);
//! ```

pub mod arp;
pub mod checksum;
pub mod emit;
mod error;
pub mod ethernet;
pub mod ipv4;
pub mod ipv6;
pub mod l4;
pub mod ndisc;
mod parse;
#[cfg(test)]
pub(crate) mod testdata;

pub use arp::{ArpPacket, ArpRepr};
pub use error::ParseError;
pub use ethernet::{EthernetFrame, MacAddr, MacParseError};
pub use ipv4::Ipv4Packet;
pub use ipv6::Ipv6Packet;
pub use l4::{IcmpHeader, TcpHeader, UdpHeader};
pub use parse::{parse, parse_packet, Parsed, Proto, L3};

/// IP protocol numbers (IPv4 protocol, IPv6 next header) used by this module.
pub mod ip_proto {
    /// IPv6 Hop-by-Hop Options.
    pub const HOP_BY_HOP: u8 = 0;
    /// ICMP for IPv4.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 Routing header.
    pub const IPV6_ROUTING: u8 = 43;
    /// IPv6 Fragment header.
    pub const IPV6_FRAGMENT: u8 = 44;
    /// Authentication Header.
    pub const AH: u8 = 51;
    /// ICMP for IPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 No Next Header.
    pub const IPV6_NO_NEXT: u8 = 59;
    /// IPv6 Destination Options.
    pub const IPV6_DEST_OPTS: u8 = 60;
}

/// Byte ranges of header fields, shared by the per-header `field` modules.
type Field = core::ops::Range<usize>;

/// Reads the big-endian `u16` at `f` (two bytes). Panics only if `data` is shorter
/// than `f.end`, which the views rule out in `new_checked`.
#[inline]
fn read_u16(data: &[u8], f: Field) -> u16 {
    // One bounds check and one two-byte load.
    let bytes: &[u8; 2] = data[f.start..].first_chunk().expect("a view's field lies within its buffer");
    u16::from_be_bytes(*bytes)
}

/// Writes `value` big-endian at `f` (two bytes); same precondition as [`read_u16`].
#[inline]
fn write_u16(data: &mut [u8], f: Field, value: u16) {
    let bytes: &mut [u8; 2] = data[f.start..].first_chunk_mut().expect("a view's field lies within its buffer");
    *bytes = value.to_be_bytes();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u16_helpers_are_big_endian() {
        let mut d = [0u8; 4];
        write_u16(&mut d, 1..3, 0xabcd);
        assert_eq!(d, [0x00, 0xab, 0xcd, 0x00]);
        assert_eq!(read_u16(&d, 1..3), 0xabcd);
    }

    #[test]
    fn drops_count_by_reason() {
        let mut drops = [0u64; ParseError::COUNT];
        for frame in [&[0u8; 10][..], &testdata::VLAN_IPV4_TCP[..57], &testdata::ARP_REQUEST] {
            if let Err(e) = parse(frame) {
                drops[e.index()] += 1;
            }
        }
        assert_eq!(drops[ParseError::Truncated.index()], 2);
        assert_eq!(drops.iter().sum::<u64>(), 2);
    }
}
