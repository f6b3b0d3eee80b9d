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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
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
    BadVersion,
    /// IPv4 IHL below 5.
    #[error("IPv4 header length (IHL) below 5")]
    BadHeaderLen,
    /// IPv4 total length smaller than the header length.
    #[error("IPv4 total length smaller than the header length")]
    BadTotalLen,
    /// An IPv6 extension-header chain longer than [`MAX_EXT_HEADERS`](super::ipv6::MAX_EXT_HEADERS).
    #[error("too many IPv6 extension headers")]
    TooManyExtHeaders,
    /// An invalid L4 header field: TCP data offset below 5, UDP length below 8.
    #[error("invalid TCP or UDP header")]
    BadL4Header,
}

// `index` is the discriminant: keep `BadL4Header` last, or update this and `ALL`.
const _: () = assert!(ParseError::BadL4Header as usize + 1 == ParseError::COUNT);

impl ParseError {
    /// Number of variants: the length of a counter array indexed by [`index`](Self::index).
    pub const COUNT: usize = 7;

    /// Every variant, in [`index`](Self::index) order.
    pub const ALL: [ParseError; Self::COUNT] = [
        ParseError::Truncated,
        ParseError::TooManyVlanTags,
        ParseError::BadVersion,
        ParseError::BadHeaderLen,
        ParseError::BadTotalLen,
        ParseError::TooManyExtHeaders,
        ParseError::BadL4Header,
    ];

    /// Position in [`ALL`](Self::ALL), always below [`COUNT`](Self::COUNT).
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A stable snake_case name, for counter labels.
    pub const fn name(&self) -> &'static str {
        match self {
            ParseError::Truncated => "truncated",
            ParseError::TooManyVlanTags => "too_many_vlan_tags",
            ParseError::BadVersion => "bad_ip_version",
            ParseError::BadHeaderLen => "bad_ipv4_header_len",
            ParseError::BadTotalLen => "bad_ipv4_total_len",
            ParseError::TooManyExtHeaders => "too_many_ipv6_ext_headers",
            ParseError::BadL4Header => "bad_l4_header",
        }
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
        let names = ParseError::ALL.map(|e| e.name());
        for (i, n) in names.iter().enumerate() {
            assert!(!n.is_empty());
            assert!(n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{n}");
            assert!(!names[..i].contains(n), "duplicate name {n}");
        }
    }

    #[test]
    fn display_is_one_line() {
        for e in ParseError::ALL {
            let s = e.to_string();
            assert!(!s.is_empty() && !s.contains('\n'), "{s:?}");
        }
    }
}
