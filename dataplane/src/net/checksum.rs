//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).

use std::net::IpAddr;

/// The ones'-complement sum of `data` as big-endian 16-bit words, folded to 16 bits
/// and not complemented; an odd last byte is padded with a zero byte.
///
/// The sum of a non-empty run of words that are not all zero is never `0x0000`, so a
/// correct checksum over a header that includes its checksum field sums to `0xffff`.
pub fn sum(data: &[u8]) -> u16 {
    let mut words = data.chunks_exact(2);
    let mut acc: u64 = 0;
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    fold(acc)
}

/// The checksum to store for `data` whose checksum field is zero: `!sum(data)`.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// RFC 1624 eqn. 3: the new checksum after one 16-bit word of the covered data
/// changes from `old` to `new`, `HC' = ~(~HC + ~m + m')`.
///
/// Equals a full recomputation for any header whose words are not all zero, including
/// when the stored checksum is `0xffff` (the other zero) or the result is `0x0000`.
#[inline]
pub fn update(hc: u16, old: u16, new: u16) -> u16 {
    let acc = u64::from(!hc) + u64::from(!old) + u64::from(new);
    !fold(acc)
}

/// The checksum to store in a TCP, UDP or ICMPv6 header: over the IP pseudo-header of
/// `src`, `dst`, the upper-layer length and `protocol` (RFC 768, RFC 793, RFC 8200 section
/// 8.1), then `body` (the whole upper-layer message with its checksum field zero).
/// Both addresses must be of one family.
pub fn pseudo_header_checksum(src: IpAddr, dst: IpAddr, protocol: u8, body: &[u8]) -> u16 {
    let mut acc = u64::from(sum(body));
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            acc += u64::from(sum(&s.octets())) + u64::from(sum(&d.octets()));
            acc += u64::from(protocol) + body.len() as u64;
        }
        (s, d) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V6(a) => a.octets(),
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            };
            acc += u64::from(sum(&v6(s))) + u64::from(sum(&v6(d)));
            acc += u64::from(sum(&(body.len() as u32).to_be_bytes())) + u64::from(protocol);
        }
    }
    !fold(acc)
}

/// Folds a wide ones'-complement accumulator to 16 bits (end-around carry).
#[inline]
fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // The loop leaves `acc <= 0xffff`.
    acc as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(sum(&[]), 0);
    }

    #[test]
    fn carries_wrap_around() {
        assert_eq!(sum(&[0xff, 0xff, 0x00, 0x01]), 0x0001);
        assert_eq!(sum(&[0xff; 1000]), 0xffff);
    }

    #[test]
    fn update_of_unchanged_word_keeps_checksum_value() {
        for hc in [0x0000, 0x0001, 0x1234, 0xfffe] {
            assert_eq!(update(hc, 0xabcd, 0xabcd), hc);
        }
    }
}
