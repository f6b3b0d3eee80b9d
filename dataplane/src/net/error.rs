//! Why a frame could not be parsed.
//!
//! One flat, `Copy` enum for every layer so that the forwarder can count drops in an
//! array indexed by [`ParseError::index`] and label the counters with
//! [`ParseError::name`].

/// Why [`parse`](super::parse) or a header view's `new_checked` rejected a buffer.
///
/// "Available bytes" means the frame for the Ethernet and IP headers, and the IP
/// datagram (up to the IPv4 total length or the IPv6 payload length) for what follows
/// the IP header, so Ethernet padding is never read as a header.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error, strum::EnumCount, strum::VariantArray, strum::IntoStaticStr,
)]
#[strum(serialize_all = "snake_case")]
pub enum ParseError {
    /// A header, or a length one declares (IHL, IPv4 total length, IPv6 payload length,
    /// an extension header's length, TCP data offset, UDP length), runs past the
    /// available bytes.
    #[error("truncated: a header or a declared length runs past the available bytes")]
    Truncated,
    /// More than two VLAN tags (802.1Q 0x8100, 802.1ad 0x88a8, or 0x9100).
    #[error("more than two VLAN tags")]
    TooManyVlanTags,
    /// The IP version nibble is not 4 (for ethertype 0x0800) or 6 (for 0x86dd).
    #[error("IP version does not match the ethertype")]
    #[strum(serialize = "bad_ip_version")]
    BadVersion,
    /// IPv4 IHL below 5.
    #[error("IPv4 header length (IHL) below 5")]
    #[strum(serialize = "bad_ipv4_header_len")]
    BadHeaderLen,
    /// IPv4 total length smaller than the header length.
    #[error("IPv4 total length smaller than the header length")]
    #[strum(serialize = "bad_ipv4_total_len")]
    BadTotalLen,
    /// An IPv6 extension-header chain longer than [`MAX_EXT_HEADERS`](super::ipv6::MAX_EXT_HEADERS).
    #[error("too many IPv6 extension headers")]
    #[strum(serialize = "too_many_ipv6_ext_headers")]
    TooManyExtHeaders,
    /// An invalid L4 header field: TCP data offset below 5, UDP length below 8.
    #[error("invalid TCP or UDP header")]
    BadL4Header,
}

impl ParseError {
    /// Number of variants: the length of a counter array indexed by [`index`](Self::index).
    pub const COUNT: usize = <Self as strum::EnumCount>::COUNT;

    /// Every variant, in [`index`](Self::index) order.
    pub const ALL: &'static [ParseError] = <Self as strum::VariantArray>::VARIANTS;

    /// Position in [`ALL`](Self::ALL), always below [`COUNT`](Self::COUNT).
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A stable snake_case name, for counter labels: the [`DropReason`](crate::forward::DropReason)
    /// it is counted as.
    pub fn name(&self) -> &'static str {
        self.into()
    }
}

#[cfg(test)]
mod tests {
    use super::ParseError;

    #[test]
    fn index_matches_position_in_all() {
        for (i, e) in ParseError::ALL.iter().enumerate() {
            assert_eq!(e.index(), i, "{e:?}");
        }
    }

    #[test]
    fn names_are_distinct_snake_case() {
        let names: Vec<&str> = ParseError::ALL.iter().map(|e| e.name()).collect();
        for (i, n) in names.iter().enumerate() {
            assert!(!n.is_empty());
            assert!(n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{n}");
            assert!(!names[..i].contains(n), "duplicate name {n}");
        }
    }

    #[test]
    fn display_is_one_line() {
        for e in ParseError::ALL.iter() {
            let s = e.to_string();
            assert!(!s.is_empty() && !s.contains('\n'), "{s:?}");
        }
    }
}
