//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).

use std::net::IpAddr;

/// The ones'-complement sum of `data` as big-endian 16-bit words, folded to 16 bits
/// and not complemented; an odd last byte is padded with a zero byte.
///
/// The sum of a non-empty run of words that are not all zero is never `0x0000`, so a
/// correct checksum over a header that includes its checksum field sums to `0xffff`.
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    // Four bytes at a time in native byte order: the ones'-complement sum is independent of
    // byte order up to a final swap (RFC 1071 section 2(B)), and a 32-bit word adds its two
    // 16-bit halves modulo 0xffff since 2^16 = 1 there.
    let mut words = data.chunks_exact(4);
    let mut acc: u64 = 0;
    for w in &mut words {
        acc += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    match *words.remainder() {
        [a, b, c] => acc += u64::from(u16::from_ne_bytes([a, b])) + u64::from(u16::from_ne_bytes([c, 0])),
        [a, b] => acc += u64::from(u16::from_ne_bytes([a, b])),
        [a] => acc += u64::from(u16::from_ne_bytes([a, 0])),
        _ => {}
    }
    u16::from_be(fold(acc))
}

/// [`sum`] of an IPv4 header without options (20 bytes), as two 8-byte words and a 4-byte
/// one: what l3fwd verifies on every packet the NIC has not (RFC 1812 section 5.2.2).
#[inline(always)]
pub fn ipv4_header_sum(h: &[u8; 20]) -> u16 {
    let a = u64::from_ne_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
    let b = u64::from_ne_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
    let c = u32::from_ne_bytes([h[16], h[17], h[18], h[19]]);
    // Five 32-bit words: their sum fits in 35 bits.
    let acc = (a & 0xffff_ffff) + (a >> 32) + (b & 0xffff_ffff) + (b >> 32) + u64::from(c);
    u16::from_be(fold(acc))
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

/// [`update`] for the IPv4 TTL going down by one, `TTL' = TTL - 1` with `TTL >= 1`: the
/// word TTL/protocol drops by `0x0100`, so `~m + m'` is the constant `0xfeff` (RFC 1624
/// eqn. 3 with that sum folded in; RFC 1141's shortcut without its `0xffff` corner case).
#[inline]
pub fn update_ttl_decrement(hc: u16) -> u16 {
    !fold(u64::from(!hc) + 0xfeff)
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

/// Folds a wide ones'-complement accumulator to 16 bits (end-around carry): 64 to 32 bits,
/// then 32 to 16, each an add whose carry is added back (which cannot carry again).
#[inline]
fn fold(acc: u64) -> u16 {
    let (lo, carry) = (acc as u32).overflowing_add((acc >> 32) as u32);
    let acc = lo.wrapping_add(u32::from(carry));
    let (lo, carry) = (acc as u16).overflowing_add((acc >> 16) as u16);
    lo.wrapping_add(u16::from(carry))
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

    /// The 20-byte header sum is the general one, on random headers and all-ones ones.
    #[test]
    fn ipv4_header_sum_is_sum() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for n in 0..100_000 {
            let mut h = [0u8; 20];
            for b in &mut h {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = if n % 7 == 0 { 0xff } else { x as u8 };
            }
            assert_eq!(ipv4_header_sum(&h), sum(&h), "{h:02x?}");
        }
        assert_eq!(ipv4_header_sum(&[0xff; 20]), sum(&[0xff; 20]));
        assert_eq!(ipv4_header_sum(&[0; 20]), 0);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(sum(&[]), 0);
    }

    #[test]
    fn fold_is_the_end_around_carry() {
        let slow = |mut acc: u64| {
            while acc > 0xffff {
                acc = (acc & 0xffff) + (acc >> 16);
            }
            acc as u16
        };
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for v in [0, 1, 0xffff, 0x1_0000, 0x1_ffff, 0xffff_ffff, 0x1_0000_0000, u64::MAX, u64::MAX - 1] {
            assert_eq!(fold(v), slow(v), "{v:#x}");
        }
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            assert_eq!(fold(x), slow(x), "{x:#x}");
            assert_eq!(fold(x >> 20), slow(x >> 20), "{:#x}", x >> 20);
        }
    }

    #[test]
    fn carries_wrap_around() {
        assert_eq!(sum(&[0xff, 0xff, 0x00, 0x01]), 0x0001);
        assert_eq!(sum(&[0xff; 1000]), 0xffff);
    }

    /// The word-at-a-time sum equals RFC 1071's big-endian 16-bit words with an odd byte
    /// padded, for every length and random data.
    #[test]
    fn sum_matches_the_definition() {
        let reference = |d: &[u8]| {
            let mut acc: u64 = d.chunks(2).map(|w| u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]))).sum();
            while acc > 0xffff {
                acc = (acc & 0xffff) + (acc >> 16);
            }
            acc as u16
        };
        let mut x: u32 = 1;
        let mut data = [0u8; 80];
        for round in 0..2000 {
            for b in data.iter_mut() {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *b = if round % 3 == 0 { 0xff } else { (x >> 24) as u8 };
            }
            let len = round % data.len();
            assert_eq!(sum(&data[..len]), reference(&data[..len]), "{:02x?}", &data[..len]);
        }
    }

    #[test]
    fn ttl_decrement_is_the_general_update() {
        for hc in (0..=0xffffu16).step_by(7).chain([0, 1, 0xfeff, 0xff00, 0xfffe, 0xffff]) {
            for ttl in [1u16, 2, 64, 128, 255] {
                for proto in [1u16, 6, 17, 255] {
                    let old = ttl << 8 | proto;
                    assert_eq!(update_ttl_decrement(hc), update(hc, old, old - 0x100), "hc {hc:#x} ttl {ttl}");
                }
            }
        }
    }

    #[test]
    fn update_of_unchanged_word_keeps_checksum_value() {
        for hc in [0x0000, 0x0001, 0x1234, 0xfffe] {
            assert_eq!(update(hc, 0xabcd, 0xabcd), hc);
        }
    }
}
