//! Ethernet II frames with up to two VLAN tags.
//!
//! [`EthernetFrame::new_checked`] guarantees the 14-byte header; the VLAN tags are
//! walked by [`EthernetFrame::l2_info`], which checks each tag it reads.

use core::fmt;

use super::{read_u16, write_u16, ParseError};

/// Ethertypes this module knows about.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// 802.1Q VLAN tag (C-tag).
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service tag (S-tag, QinQ outer).
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ outer tag (before 802.1ad; still sent by some switches), accepted
    /// like 0x88a8 and documented as such in the README.
    pub const QINQ_9100: u16 = 0x9100;

    /// Whether `ty` announces a VLAN tag.
    #[inline]
    pub const fn is_vlan_tag(ty: u16) -> bool {
        matches!(ty, VLAN | QINQ | QINQ_9100)
    }
}

mod field {
    use crate::net::Field;

    pub const DST: Field = 0..6;
    pub const SRC: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
}

/// Length of the untagged Ethernet header.
pub const HEADER_LEN: usize = 14;
/// Length of one VLAN tag (TPID and TCI; the TPID sits where the ethertype was).
pub const VLAN_TAG_LEN: usize = 4;
/// Most VLAN tags [`EthernetFrame::l2_info`] accepts.
pub const MAX_VLAN_TAGS: usize = 2;

/// A MAC address; displays as `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// Whether the group bit is set (multicast or broadcast).
    #[inline]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }
}

/// A string that is not six hex bytes separated by `:` or `-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a MAC address (expected six hex bytes like 02:00:00:00:00:01)")]
pub struct MacParseError;

impl core::str::FromStr for MacAddr {
    type Err = MacParseError;

    /// `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff`, either case, two digits a byte.
    fn from_str(s: &str) -> Result<MacAddr, MacParseError> {
        let mut mac = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for b in &mut mac {
            let part = parts.next().ok_or(MacParseError)?;
            if part.len() != 2 || !part.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(MacParseError);
            }
            *b = u8::from_str_radix(part, 16).map_err(|_| MacParseError)?;
        }
        match parts.next() {
            None => Ok(MacAddr(mac)),
            Some(_) => Err(MacParseError),
        }
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(bytes: [u8; 6]) -> MacAddr {
        MacAddr(bytes)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// What follows the MAC addresses: the ethertype after any VLAN tags, and where the L3
/// header starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2Info {
    /// The ethertype of the payload (after the last VLAN tag).
    pub ethertype: u16,
    /// Length of the L2 header, i.e. the L3 offset: 14, 18 or 22.
    pub l2_len: usize,
    /// Number of VLAN tags: 0, 1 or 2.
    pub vlan_tags: u8,
}

/// A view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buffer` without checking it.
    ///
    /// # Panics
    /// Getters and setters may panic if the buffer is shorter than [`HEADER_LEN`].
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    ///
    /// # Errors
    /// [`ParseError::Truncated`] if the buffer is shorter than [`HEADER_LEN`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks that the untagged header fits, so that no getter or setter can panic.
    ///
    /// # Errors
    /// [`ParseError::Truncated`] if the buffer is shorter than [`HEADER_LEN`].
    #[inline]
    pub fn check_len(&self) -> Result<(), ParseError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination MAC.
    #[inline]
    pub fn dst(&self) -> MacAddr {
        let mut mac = [0; 6];
        mac.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        MacAddr(mac)
    }

    /// Source MAC.
    #[inline]
    pub fn src(&self) -> MacAddr {
        let mut mac = [0; 6];
        mac.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        MacAddr(mac)
    }

    /// The ethertype field at bytes 12..14: a VLAN TPID if the frame is tagged.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// Walks up to [`MAX_VLAN_TAGS`] VLAN tags (0x8100, 0x88a8 or 0x9100, in any
    /// order) and returns the inner ethertype and the L3 offset.
    ///
    /// # Errors
    /// - [`ParseError::Truncated`] if a tag announced by a TPID does not fit.
    /// - [`ParseError::TooManyVlanTags`] if the ethertype after two tags is a TPID again.
    pub fn l2_info(&self) -> Result<L2Info, ParseError> {
        let data = self.buffer.as_ref();
        let mut ethertype = self.ethertype();
        let mut tags = 0;
        while ethertype::is_vlan_tag(ethertype) {
            if tags == MAX_VLAN_TAGS {
                return Err(ParseError::TooManyVlanTags);
            }
            // Tag `tags` holds its TCI at 14 + 4 * tags and the next ethertype 2 after.
            let next = HEADER_LEN + VLAN_TAG_LEN * tags + 2;
            let Some(&[hi, lo]) = data.get(next..next + 2) else {
                return Err(ParseError::Truncated);
            };
            ethertype = u16::from_be_bytes([hi, lo]);
            tags += 1;
        }
        Ok(L2Info {
            ethertype,
            l2_len: HEADER_LEN + VLAN_TAG_LEN * tags,
            // At most `MAX_VLAN_TAGS`.
            vlan_tags: tags as u8,
        })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC.
    #[inline]
    pub fn set_dst(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&mac.0);
    }

    /// Sets the source MAC.
    #[inline]
    pub fn set_src(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&mac.0);
    }

    /// Sets the ethertype field at bytes 12..14.
    #[inline]
    pub fn set_ethertype(&mut self, ty: u16) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, ty);
    }

    /// Swaps the source and destination MACs in place (l2fwd's "macswap").
    #[inline]
    pub fn swap_macs(&mut self) {
        let (dst, src) = self.buffer.as_mut()[..field::SRC.end].split_at_mut(field::SRC.start);
        dst.swap_with_slice(src);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::testdata::*;

    #[test]
    fn untagged_header_fields() {
        let f = EthernetFrame::new_checked(&IPV4_UDP_PADDED[..]).unwrap();
        assert_eq!(f.dst(), MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(f.src(), MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(f.ethertype(), ethertype::IPV4);
        assert_eq!(f.l2_info(), Ok(L2Info { ethertype: ethertype::IPV4, l2_len: 14, vlan_tags: 0 }));
    }

    #[test]
    fn one_vlan_tag() {
        let f = EthernetFrame::new_checked(&VLAN_IPV4_TCP[..]).unwrap();
        assert_eq!(f.ethertype(), ethertype::VLAN);
        assert_eq!(f.l2_info(), Ok(L2Info { ethertype: ethertype::IPV4, l2_len: 18, vlan_tags: 1 }));
    }

    #[test]
    fn qinq() {
        let f = EthernetFrame::new_checked(&QINQ_IPV4_OPTS_ICMP[..]).unwrap();
        assert_eq!(f.ethertype(), ethertype::QINQ);
        assert_eq!(f.l2_info(), Ok(L2Info { ethertype: ethertype::IPV4, l2_len: 22, vlan_tags: 2 }));
    }

    #[test]
    fn outer_0x9100_is_tolerated() {
        let mut frame = QINQ_IPV4_OPTS_ICMP;
        frame[12..14].copy_from_slice(&[0x91, 0x00]);
        let f = EthernetFrame::new_checked(&frame[..]).unwrap();
        assert_eq!(f.l2_info().map(|i| (i.ethertype, i.l2_len)), Ok((ethertype::IPV4, 22)));
    }

    #[test]
    fn three_tags_are_too_many() {
        let mut frame = QINQ_IPV4_OPTS_ICMP.to_vec();
        // Insert a third 802.1Q tag (VLAN 30) after the second one.
        frame.splice(22..22, [0x00, 0x1e, 0x81, 0x00]);
        frame[20..22].copy_from_slice(&[0x81, 0x00]);
        let f = EthernetFrame::new_checked(&frame[..]).unwrap();
        assert_eq!(f.l2_info(), Err(ParseError::TooManyVlanTags));
    }

    #[test]
    fn truncated_header_or_tag() {
        for len in 0..HEADER_LEN {
            assert_eq!(EthernetFrame::new_checked(&VLAN_IPV4_TCP[..len]).err(), Some(ParseError::Truncated));
        }
        for len in HEADER_LEN..18 {
            let f = EthernetFrame::new_checked(&VLAN_IPV4_TCP[..len]).unwrap();
            assert_eq!(f.l2_info(), Err(ParseError::Truncated), "len {len}");
        }
        for len in HEADER_LEN..22 {
            let f = EthernetFrame::new_checked(&QINQ_IPV4_OPTS_ICMP[..len]).unwrap();
            assert_eq!(f.l2_info(), Err(ParseError::Truncated), "len {len}");
        }
        let f = EthernetFrame::new_checked(&QINQ_IPV4_OPTS_ICMP[..22]).unwrap();
        assert_eq!(f.l2_info().map(|i| i.l2_len), Ok(22));
    }

    #[test]
    fn setters_and_macswap() {
        let mut frame = VLAN_IPV4_TCP;
        let mut f = EthernetFrame::new_checked(&mut frame[..]).unwrap();
        f.swap_macs();
        assert_eq!(f.dst(), MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(f.src(), MacAddr([2, 0, 0, 0, 0, 2]));
        f.set_dst(MacAddr::BROADCAST);
        f.set_src(MacAddr([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]));
        f.set_ethertype(ethertype::IPV6);
        assert_eq!(f.dst(), MacAddr::BROADCAST);
        assert_eq!(f.src().to_string(), "aa:bb:cc:dd:ee:ff");
        assert_eq!(f.ethertype(), ethertype::IPV6);
        // Nothing past the ethertype moved.
        assert_eq!(frame[14..], VLAN_IPV4_TCP[14..]);
    }

    #[test]
    fn mac_display_and_multicast() {
        assert_eq!(MacAddr([0, 1, 0x0a, 0xbc, 0xff, 0x10]).to_string(), "00:01:0a:bc:ff:10");
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(MacAddr([0x01, 0, 0x5e, 0, 0, 1]).is_multicast());
        assert!(!MacAddr([2, 0, 0, 0, 0, 1]).is_multicast());
        assert_eq!("02:00:0A:bc:ff:10".parse(), Ok(MacAddr([2, 0, 0x0a, 0xbc, 0xff, 0x10])));
        assert_eq!("02-00-00-00-00-01".parse(), Ok(MacAddr([2, 0, 0, 0, 0, 1])));
        for bad in ["", "02:00", "02:00:00:00:00:01:02", "2:00:00:00:00:01", "02:00:00:00:00:0g", "+2:00:00:00:00:01"] {
            assert_eq!(bad.parse::<MacAddr>(), Err(MacParseError), "{bad:?}");
        }
    }
}
