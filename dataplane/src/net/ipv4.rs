//! IPv4 headers, options allowed.
//!
//! [`Ipv4Packet::new_checked`] checks the version, the IHL, the total length and that
//! the buffer holds the whole datagram (it may hold more: Ethernet padding). It does
//! not check the header checksum; [`Ipv4Packet::verify_checksum`] does.

use std::net::Ipv4Addr;

use super::{checksum, read_u16, write_u16, ParseError};

mod field {
    use crate::net::Field;

    pub const VER_IHL: usize = 0;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    /// TTL and protocol, the 16-bit word the checksum sees change on a TTL decrement.
    pub const TTL_PROTO: Field = 8..10;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = 20;

const FLAG_MORE_FRAGS: u16 = 0x2000;
const FLAG_DONT_FRAG: u16 = 0x4000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 datagram.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` without checking it.
    ///
    /// # Panics
    /// Getters and setters may panic unless the buffer would pass
    /// [`check_len`](Self::check_len).
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
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
    /// - [`ParseError::Truncated`]: fewer than 20 bytes.
    /// - [`ParseError::BadVersion`]: version is not 4.
    /// - [`ParseError::BadHeaderLen`]: IHL below 5.
    /// - [`ParseError::BadTotalLen`]: total length below IHL * 4.
    /// - [`ParseError::Truncated`]: fewer bytes than the total length (and so,
    ///   possibly, than IHL * 4).
    pub fn check_len(&self) -> Result<(), ParseError> {
        self.check_len_within(self.buffer.as_ref().len())
    }

    /// Wraps `buffer`, the first bytes of a datagram of which `available` bytes exist in
    /// all (the first segment of an mbuf chain: `available` counts the later segments
    /// too), after [`check_len_within`](Self::check_len_within).
    ///
    /// # Errors
    /// As [`check_len_within`](Self::check_len_within).
    #[inline]
    pub fn new_checked_within(buffer: T, available: usize) -> Result<Self, ParseError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len_within(available)?;
        Ok(packet)
    }

    /// As [`check_len`](Self::check_len), with the total length checked against
    /// `available` bytes (at least the buffer's) and the header, options included,
    /// required in the buffer. [`payload`](Self::payload) then gives the part of the
    /// payload in the buffer.
    ///
    /// # Errors
    /// As [`check_len`](Self::check_len), then [`ParseError::Truncated`] if the header does
    /// not fit in the buffer.
    pub fn check_len_within(&self, available: usize) -> Result<(), ParseError> {
        let len = self.buffer.as_ref().len();
        let available = available.max(len);
        if len < MIN_HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        if self.version() != 4 {
            return Err(ParseError::BadVersion);
        }
        let header_len = self.header_len();
        if header_len < MIN_HEADER_LEN {
            return Err(ParseError::BadHeaderLen);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len {
            return Err(ParseError::BadTotalLen);
        }
        if available < total_len || len < header_len {
            return Err(ParseError::Truncated);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version (4 once checked).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4), options included: 20 to 60.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Total length of the datagram, header included.
    #[inline]
    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// Don't Fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_DONT_FRAG != 0
    }

    /// More Fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_MORE_FRAGS != 0
    }

    /// Fragment offset in bytes (the field times 8).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (read_u16(self.buffer.as_ref(), field::FLG_OFF) & FRAG_OFFSET_MASK) << 3
    }

    /// Whether this datagram is a fragment: MF set or a non-zero offset.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF) & (FLAG_MORE_FRAGS | FRAG_OFFSET_MASK) != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol number of the payload (see [`ip_proto`](super::ip_proto)).
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        let mut a = [0; 4];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC_ADDR]);
        Ipv4Addr::from(a)
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        let mut a = [0; 4];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST_ADDR]);
        Ipv4Addr::from(a)
    }

    /// The header, options included.
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// The payload: from the end of the header to the total length (so without any
    /// Ethernet padding that follows the datagram), or to the end of the buffer for a view
    /// checked within a longer packet ([`check_len_within`](Self::check_len_within)).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[self.header_len()..usize::from(self.total_len()).min(b.len())]
    }

    /// Whether the header checksum is correct (the header, options included, sums to
    /// `0xffff`; a stored `0xffff` where `0x0000` is due is accepted, as RFC 1624 allows).
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(self.header()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the TTL without touching the checksum.
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Stores `checksum` as the header checksum.
    #[inline]
    pub fn set_checksum(&mut self, checksum: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, checksum);
    }

    /// Recomputes and stores the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::checksum(self.header());
        self.set_checksum(sum);
    }

    /// Decrements the TTL and updates the checksum incrementally (RFC 1624 eqn. 3), as
    /// a router does; the result equals a full recomputation.
    ///
    /// Returns the new TTL, or `None`, leaving the header untouched, if the TTL was
    /// already 0. A router drops the datagram when this returns `Some(0)` or `None`.
    #[inline]
    pub fn decrement_ttl(&mut self) -> Option<u8> {
        let ttl = self.ttl().checked_sub(1)?;
        let data = self.buffer.as_mut();
        let old = read_u16(data, field::TTL_PROTO);
        data[field::TTL] = ttl;
        let new = read_u16(data, field::TTL_PROTO);
        let hc = read_u16(data, field::CHECKSUM);
        write_u16(data, field::CHECKSUM, checksum::update(hc, old, new));
        Some(ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{ip_proto, testdata::*};

    fn ip(frame: &[u8], l3: usize) -> Ipv4Packet<&[u8]> {
        Ipv4Packet::new_checked(&frame[l3..]).unwrap()
    }

    #[test]
    fn fields_without_options() {
        let p = ip(&VLAN_IPV4_TCP, 18);
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 40);
        assert_eq!(p.ident(), 1);
        assert!(!p.dont_frag() && !p.more_frags() && !p.is_fragment());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), ip_proto::TCP);
        assert_eq!(p.checksum(), 0xf97b);
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 168, 0, 2));
        assert_eq!(p.payload().len(), 20);
        assert!(p.verify_checksum());
    }

    #[test]
    fn options_and_padding() {
        let p = ip(&QINQ_IPV4_OPTS_ICMP, 22);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.header()[20..], [0x94, 0x04, 0x00, 0x00]);
        assert_eq!(p.payload().len(), 8);
        assert!(p.verify_checksum());

        // 46 bytes after the Ethernet header, of which the datagram is 32.
        let p = ip(&IPV4_UDP_PADDED, 14);
        assert_eq!(p.total_len(), 32);
        assert_eq!(p.payload(), &IPV4_UDP_PADDED[34..46]);
        assert!(p.verify_checksum());
    }

    #[test]
    fn fragment_fields() {
        let p = ip(&IPV4_LATER_FRAGMENT, 14);
        assert!(p.is_fragment() && !p.more_frags());
        assert_eq!(p.frag_offset(), 1480);
        let p = ip(&IPV4_FIRST_FRAGMENT, 14);
        assert!(p.is_fragment() && p.more_frags());
        assert_eq!(p.frag_offset(), 0);
    }

    #[test]
    fn check_len_errors() {
        let good = &VLAN_IPV4_TCP[18..];
        for len in 0..good.len() {
            assert_eq!(Ipv4Packet::new_checked(&good[..len]).err(), Some(ParseError::Truncated), "prefix {len}");
        }
        let with = |at: usize, value: u8| {
            let mut d = good.to_vec();
            d[at] = value;
            Ipv4Packet::new_checked(d).err()
        };
        assert_eq!(with(0, 0x65), Some(ParseError::BadVersion));
        assert_eq!(with(0, 0x45 ^ 0x20), Some(ParseError::BadVersion)); // version 6
        assert_eq!(with(0, 0x44), Some(ParseError::BadHeaderLen));
        assert_eq!(with(0, 0x40), Some(ParseError::BadHeaderLen));
        // IHL 15 = 60 bytes > total length 40.
        assert_eq!(with(0, 0x4f), Some(ParseError::BadTotalLen));
        // Total length 19 < 20, and 41 > the 40 bytes there are.
        assert_eq!(with(3, 19), Some(ParseError::BadTotalLen));
        assert_eq!(with(3, 41), Some(ParseError::Truncated));
        // Options announced (IHL 6) but the buffer stops after 22 bytes.
        let opts = &QINQ_IPV4_OPTS_ICMP[22..];
        assert_eq!(Ipv4Packet::new_checked(&opts[..22]).err(), Some(ParseError::Truncated));
    }

    #[test]
    fn fill_and_verify_checksum() {
        let mut d = QINQ_IPV4_OPTS_ICMP[22..].to_vec();
        let stored = Ipv4Packet::new_checked(&d[..]).unwrap().checksum();
        let mut p = Ipv4Packet::new_checked(&mut d[..]).unwrap();
        p.set_checksum(0x1234);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert_eq!(p.checksum(), stored);
        assert!(p.verify_checksum());
    }

    #[test]
    fn decrement_ttl_at_the_edges() {
        let mut d = IPV4_TCP_OPTS[14..].to_vec();
        let mut p = Ipv4Packet::new_checked(&mut d[..]).unwrap();
        assert_eq!(p.ttl(), 1);
        assert_eq!(p.decrement_ttl(), Some(0));
        assert!(p.verify_checksum());
        let before = p.checksum();
        assert_eq!(p.decrement_ttl(), None);
        assert_eq!((p.ttl(), p.checksum()), (0, before));
    }

    /// A 20-byte header with the given TTL and identification, checksum filled in.
    fn header(ttl: u8, ident: u16) -> [u8; 20] {
        let mut h = [0u8; 20];
        h.copy_from_slice(&VLAN_IPV4_TCP[18..38]);
        let mut p = Ipv4Packet::new_unchecked(&mut h[..]);
        p.set_ttl(ttl);
        write_u16(p.buffer, field::IDENT, ident);
        p.fill_checksum();
        h
    }

    /// Decrements the TTL of `h` incrementally and compares with a full recompute.
    fn assert_incremental_equals_full(mut h: [u8; 20]) {
        let mut p = Ipv4Packet::new_unchecked(&mut h[..]);
        let ttl = p.ttl();
        assert_eq!(p.decrement_ttl(), Some(ttl - 1));
        let incremental = p.checksum();
        p.fill_checksum();
        assert_eq!(incremental, p.checksum(), "ttl {ttl}, header {h:02x?}");
        assert!(Ipv4Packet::new_unchecked(&h[..]).verify_checksum());
    }

    #[test]
    fn rfc1624_incremental_ttl_equals_full_recompute() {
        // Every TTL against identifications that sweep the checksum through its range.
        for ttl in 1..=255u8 {
            for ident in (0..=0xffffu16).step_by(31) {
                assert_incremental_equals_full(header(ttl, ident));
            }
        }
    }

    #[test]
    fn rfc1624_checksum_zero_and_its_0xffff_twin() {
        // For each TTL, find the identification whose full checksum is 0x0000 (the
        // sum of the other words is 0xffff), then also its twin 0xffff as stored
        // checksum, which verifies too.
        for ttl in 1..=255u8 {
            let base = header(ttl, 0);
            let sum_without_ident = checksum::sum(&{
                let mut h = base;
                h[10..12].fill(0);
                h
            });
            let ident = !sum_without_ident;
            let h = header(ttl, ident);
            assert_eq!(read_u16(&h, field::CHECKSUM), 0x0000, "ttl {ttl}");
            assert_incremental_equals_full(h);

            let mut twin = h;
            twin[10..12].copy_from_slice(&[0xff, 0xff]);
            assert!(Ipv4Packet::new_unchecked(&twin[..]).verify_checksum());
            assert_incremental_equals_full(twin);

            // And the header whose checksum after the decrement is 0x0000, where
            // RFC 1141's eqn. 2 would give 0xffff.
            let ident = !checksum::sum(&{
                let mut h = header(ttl - 1, 0);
                h[10..12].fill(0);
                h
            });
            let h = header(ttl, ident);
            let mut p = Ipv4Packet::new_unchecked(h);
            p.decrement_ttl();
            assert_eq!(p.checksum(), 0x0000, "ttl {ttl}");
            assert_incremental_equals_full(header(ttl, ident));
        }
    }

    #[test]
    fn rfc1624_section_4_example() {
        // RFC 1624 section 4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 gives HC' = 0x0000.
        assert_eq!(checksum::update(0xdd2f, 0x5555, 0x3285), 0x0000);
    }
}
