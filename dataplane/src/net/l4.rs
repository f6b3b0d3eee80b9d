//! Minimal TCP, UDP and ICMP/ICMPv6 header views: what a forwarder classifies on.
//!
//! Each view's `new_checked` guarantees its fixed header (and, for TCP, the options the
//! data offset announces; for UDP, the length it declares). Hand them the IP payload
//! (`Ipv4Packet::payload`, or the IPv6 payload from the upper-layer offset), not the
//! rest of the frame, so that Ethernet padding is not mistaken for header bytes.
//! Checksums are not verified.

use super::{checksum, read_u16, write_u16, ParseError};

/// TCP flag bits, as returned by [`TcpHeader::flags`].
pub mod tcp_flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronise sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer field significant.
    pub const URG: u8 = 0x20;
    /// ECN-Echo.
    pub const ECE: u8 = 0x40;
    /// Congestion Window Reduced.
    pub const CWR: u8 = 0x80;
}

/// ICMP (IPv4) message types (RFC 792).
pub mod icmp_type {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
}

/// ICMPv6 message types (RFC 4443, RFC 4861).
pub mod icmpv6_type {
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Neighbor solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbor advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

mod field {
    use crate::net::Field;

    // TCP, UDP: the ports.
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;

    // TCP.
    pub const TCP_DATA_OFF: usize = 12;
    pub const TCP_FLAGS: usize = 13;
    pub const TCP_CHECKSUM: Field = 16..18;

    // UDP.
    pub const UDP_LENGTH: Field = 4..6;
    pub const UDP_CHECKSUM: Field = 6..8;

    // ICMP and ICMPv6.
    pub const ICMP_TYPE: usize = 0;
    pub const ICMP_CODE: usize = 1;
    pub const ICMP_CHECKSUM: Field = 2..4;
    pub const ICMP_REST: Field = 4..8;
}

/// Length of a TCP header without options.
pub const TCP_MIN_HEADER_LEN: usize = 20;
/// Length of a UDP header.
pub const UDP_HEADER_LEN: usize = 8;
/// Length of an ICMP or ICMPv6 header: type, code, checksum and 4 type-specific bytes.
pub const ICMP_HEADER_LEN: usize = 8;

/// Generates the constructors shared by the three views.
macro_rules! constructors {
    ($name:ident) => {
        /// Wraps `buffer` without checking it.
        ///
        /// # Panics
        /// Getters may panic unless the buffer would pass
        /// [`check_len`](Self::check_len).
        #[inline]
        pub const fn new_unchecked(buffer: T) -> Self {
            $name { buffer }
        }

        /// Wraps `buffer` after [`check_len`](Self::check_len).
        ///
        /// # Errors
        /// As [`check_len`](Self::check_len).
        #[inline]
        pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
            let header = Self::new_unchecked(buffer);
            header.check_len()?;
            Ok(header)
        }

        /// Unwraps the buffer.
        #[inline]
        pub fn into_inner(self) -> T {
            self.buffer
        }
    };
}

/// A view of a TCP header.
#[derive(Debug, Clone)]
pub struct TcpHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpHeader<T> {
    constructors!(TcpHeader);

    /// Checks the fixed header and the data offset.
    ///
    /// # Errors
    /// In this order:
    /// - [`ParseError::Truncated`]: fewer than 20 bytes.
    /// - [`ParseError::BadL4Header`]: data offset below 5.
    /// - [`ParseError::Truncated`]: fewer bytes than the data offset announces.
    pub fn check_len(&self) -> Result<(), ParseError> {
        let len = self.buffer.as_ref().len();
        if len < TCP_MIN_HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        let header_len = self.header_len();
        if header_len < TCP_MIN_HEADER_LEN {
            return Err(ParseError::BadL4Header);
        }
        if len < header_len {
            return Err(ParseError::Truncated);
        }
        Ok(())
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Header length in bytes (data offset * 4), options included: 20 to 60.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::TCP_DATA_OFF] >> 4) * 4
    }

    /// The flag byte; test it against [`tcp_flags`].
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::TCP_FLAGS]
    }

    /// Checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::TCP_CHECKSUM)
    }
}

/// A view of a UDP header.
#[derive(Debug, Clone)]
pub struct UdpHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpHeader<T> {
    constructors!(UdpHeader);

    /// Checks the header and its length field.
    ///
    /// # Errors
    /// In this order:
    /// - [`ParseError::Truncated`]: fewer than 8 bytes.
    /// - [`ParseError::BadL4Header`]: length field below 8.
    /// - [`ParseError::Truncated`]: fewer bytes than the length field says.
    pub fn check_len(&self) -> Result<(), ParseError> {
        self.check_len_within(self.buffer.as_ref().len())
    }

    /// As [`check_len`](Self::check_len), with the length field checked against
    /// `available` bytes of datagram (the buffer may hold only the first of them: the
    /// first segment of an mbuf chain); the 8-byte header must be in the buffer.
    ///
    /// # Errors
    /// As [`check_len`](Self::check_len).
    pub fn check_len_within(&self, available: usize) -> Result<(), ParseError> {
        let len = self.buffer.as_ref().len();
        if len < UDP_HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        let udp_len = usize::from(self.length());
        if udp_len < UDP_HEADER_LEN {
            return Err(ParseError::BadL4Header);
        }
        if available.max(len) < udp_len {
            return Err(ParseError::Truncated);
        }
        Ok(())
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Length field: header and data, at least 8 once checked.
    #[inline]
    pub fn length(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::UDP_LENGTH)
    }

    /// Checksum as stored (0 in IPv4 means none).
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::UDP_CHECKSUM)
    }
}

/// A view of an ICMP or ICMPv6 header (the two share this layout).
#[derive(Debug, Clone)]
pub struct IcmpHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpHeader<T> {
    constructors!(IcmpHeader);

    /// Checks the header length.
    ///
    /// # Errors
    /// [`ParseError::Truncated`]: fewer than 8 bytes.
    pub fn check_len(&self) -> Result<(), ParseError> {
        if self.buffer.as_ref().len() < ICMP_HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        Ok(())
    }

    /// Message type (echo request is 8 in ICMP, 128 in ICMPv6).
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::ICMP_TYPE]
    }

    /// Message code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::ICMP_CODE]
    }

    /// Checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ICMP_CHECKSUM)
    }

    /// Echo request and reply: the identifier.
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ICMP_REST.start..field::ICMP_REST.start + 2)
    }

    /// Echo request and reply: the sequence number.
    #[inline]
    pub fn echo_seq(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ICMP_REST.start + 2..field::ICMP_REST.end)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpHeader<T> {
    /// Changes the message type (a request into its reply), updating the checksum
    /// incrementally (RFC 1624): the rest of the message, and for ICMPv6 the
    /// pseudo-header, is unchanged.
    #[inline]
    pub fn set_msg_type(&mut self, ty: u8) {
        let data = self.buffer.as_mut();
        let old = read_u16(data, field::ICMP_TYPE..field::ICMP_CODE + 1);
        data[field::ICMP_TYPE] = ty;
        let new = read_u16(data, field::ICMP_TYPE..field::ICMP_CODE + 1);
        let hc = read_u16(data, field::ICMP_CHECKSUM);
        write_u16(data, field::ICMP_CHECKSUM, checksum::update(hc, old, new));
    }

    /// Stores `checksum`.
    #[inline]
    pub fn set_checksum(&mut self, checksum: u16) {
        write_u16(self.buffer.as_mut(), field::ICMP_CHECKSUM, checksum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::testdata::*;

    #[test]
    fn tcp_without_options() {
        let t = TcpHeader::new_checked(&VLAN_IPV4_TCP[38..]).unwrap();
        assert_eq!((t.src_port(), t.dst_port()), (49152, 80));
        assert_eq!(t.header_len(), 20);
        assert_eq!(t.flags(), tcp_flags::SYN);
        assert_eq!(t.checksum(), 0);
    }

    #[test]
    fn tcp_with_options() {
        let t = TcpHeader::new_checked(&IPV4_TCP_OPTS[34..]).unwrap();
        assert_eq!(t.header_len(), 24);
        assert_eq!(t.flags(), tcp_flags::SYN | tcp_flags::ACK);
        // The MSS option is announced: 23 bytes are not enough.
        assert_eq!(TcpHeader::new_checked(&IPV4_TCP_OPTS[34..57]).err(), Some(ParseError::Truncated));
    }

    #[test]
    fn tcp_errors() {
        let good = &VLAN_IPV4_TCP[38..];
        for len in 0..good.len() {
            assert_eq!(TcpHeader::new_checked(&good[..len]).err(), Some(ParseError::Truncated));
        }
        for data_off in 0..5u8 {
            let mut d = good.to_vec();
            d[12] = data_off << 4;
            assert_eq!(TcpHeader::new_checked(d).err(), Some(ParseError::BadL4Header));
        }
        let mut d = good.to_vec();
        d[12] = 0xf0; // 60 bytes announced, 20 there
        assert_eq!(TcpHeader::new_checked(d).err(), Some(ParseError::Truncated));
    }

    #[test]
    fn udp_fields_and_errors() {
        let datagram = &IPV4_UDP_PADDED[34..46];
        let u = UdpHeader::new_checked(datagram).unwrap();
        assert_eq!((u.src_port(), u.dst_port(), u.length(), u.checksum()), (1234, 5678, 12, 0));
        for len in 0..datagram.len() {
            assert_eq!(UdpHeader::new_checked(&datagram[..len]).err(), Some(ParseError::Truncated));
        }
        let mut d = datagram.to_vec();
        d[5] = 7;
        assert_eq!(UdpHeader::new_checked(d).err(), Some(ParseError::BadL4Header));
    }

    #[test]
    fn icmp_and_icmpv6() {
        let i = IcmpHeader::new_checked(&QINQ_IPV4_OPTS_ICMP[46..]).unwrap();
        assert_eq!((i.msg_type(), i.code(), i.checksum()), (8, 0, 0xf7fd));
        let i = IcmpHeader::new_checked(&VLAN_IPV6_ICMPV6[58..]).unwrap();
        assert_eq!((i.msg_type(), i.code()), (128, 0));
        for len in 0..ICMP_HEADER_LEN {
            assert_eq!(IcmpHeader::new_checked(&VLAN_IPV6_ICMPV6[58..58 + len]).err(), Some(ParseError::Truncated));
        }
    }
}
