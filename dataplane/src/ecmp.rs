//! Equal-cost multipath: which path of a multipath route a packet takes.
//!
//! A group's paths are laid out in buckets, each path in as many buckets as its weight
//! asks (scaled down to at most [`MAX_BUCKETS`], every path keeping at least one). A packet
//! takes the bucket its flow hash falls in with RFC 2992's *hash-threshold* method: the
//! 32-bit hash space is cut into equal regions, one per bucket, so bucket = `hash * n >> 32`
//! (no division on the per-packet path). Every packet of a flow has the same hash and so
//! takes the same path; when a path is added or removed, only the flows of the regions that
//! move change path (RFC 2992 section 4), fewer than with a modulo.
//!
//! The hash is the NIC's RSS hash when the PMD set one (`Mbuf::rss_hash`), else
//! [`flow_hash`] over the 5-tuple; either is mixed with [`mix`] first, so that the high
//! bits hash-threshold reads are well spread.

use crate::net::{Parsed, Proto, L3};

/// The most buckets (and so paths) a group has.
pub const MAX_BUCKETS: usize = 64;

/// The buckets for paths of these weights: indexes into `weights`, each path
/// `round(weight / gcd-scaled)` times, in path order; at most [`MAX_BUCKETS`] in all, every
/// path at least once. Empty for no paths; paths past [`MAX_BUCKETS`] get none.
pub fn buckets(weights: &[u16]) -> Vec<u8> {
    let paths = weights.len().min(MAX_BUCKETS);
    if paths == 0 {
        return Vec::new();
    }
    let weights: Vec<u64> = weights[..paths].iter().map(|&w| u64::from(w.max(1))).collect();
    let total: u64 = weights.iter().sum();
    let room = MAX_BUCKETS as u64;
    // Exact when the weights fit; else scaled to the room, each path keeping one bucket.
    let counts: Vec<u64> = if total <= room {
        let g = weights.iter().fold(0, |g, &w| gcd(g, w));
        weights.iter().map(|w| w / g).collect()
    } else {
        let spare = room - paths as u64;
        weights.iter().map(|w| 1 + (w - 1) * spare / (total - paths as u64).max(1)).collect()
    };
    let mut out = Vec::with_capacity(MAX_BUCKETS);
    for (i, c) in counts.iter().enumerate() {
        out.extend(std::iter::repeat_n(i as u8, *c as usize));
    }
    out.truncate(MAX_BUCKETS);
    out
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The bucket of `hash` among `n` (hash-threshold, RFC 2992): `hash * n >> 32`, below `n`
/// for any `n > 0`.
#[inline]
pub fn pick(hash: u32, n: usize) -> usize {
    ((u64::from(hash) * n as u64) >> 32) as usize
}

/// MurmurHash3's 32-bit finaliser (`fmix32`): every input bit moves every output bit, so a
/// hash whose entropy sits in its low bits (FNV-1a, some NICs' RSS) spreads over the high
/// bits that [`pick`] reads.
#[inline]
pub fn mix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The flow hash of a packet that `p` describes: DPDK's CRC32-C (`rte_hash_crc`,
/// [`crate::hash`]) over its source and destination addresses, TCP/UDP ports (not for
/// fragments, which carry none after the first; zeros otherwise) and the IP protocol
/// number; 0 for a packet that is not IP. The same function the flow-metadata extension
/// records when the NIC gave no RSS hash.
#[inline]
pub fn flow_hash(frame: &[u8], p: &Parsed) -> u32 {
    let l3 = usize::from(p.l3_offset);
    let l4 = usize::from(p.l4_offset);
    let ports: [u8; 4] = match p.proto {
        Proto::Tcp | Proto::Udp if !p.fragment => frame.get(l4..).and_then(|b| b.first_chunk()).copied().unwrap_or_default(),
        _ => [0; 4],
    };
    match p.l3 {
        L3::Ipv4 => match frame.get(l3 + 12..).and_then(|b| b.first_chunk::<8>()) {
            Some(addrs) => crate::hash::crc_tuple(addrs, ports, p.ip_proto),
            None => 0,
        },
        L3::Ipv6 => match frame.get(l3 + 8..).and_then(|b| b.first_chunk::<32>()) {
            Some(addrs) => crate::hash::crc_tuple(addrs, ports, p.ip_proto),
            None => 0,
        },
        L3::Arp | L3::Other(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_the_weights() {
        assert_eq!(buckets(&[]), Vec::<u8>::new());
        assert_eq!(buckets(&[1]), [0]);
        assert_eq!(buckets(&[1, 1]), [0, 1]);
        assert_eq!(buckets(&[2, 2, 2]), [0, 1, 2], "scaled by the common divisor");
        assert_eq!(buckets(&[1, 3]), [0, 1, 1, 1]);
        assert_eq!(buckets(&[0, 1]), [0, 1], "weight 0 counts as 1");
        // Too many to spell out: scaled, every path kept, the total within the room.
        let b = buckets(&[1, 255, 255]);
        assert!(b.len() <= MAX_BUCKETS && b.contains(&0), "{b:?}");
        let ones = b.iter().filter(|&&i| i == 1).count();
        let twos = b.iter().filter(|&&i| i == 2).count();
        assert_eq!(ones, twos);
        let many: Vec<u16> = vec![1; 100];
        assert_eq!(buckets(&many).len(), MAX_BUCKETS, "paths past the room get none");
    }

    #[test]
    fn pick_is_hash_threshold() {
        for n in 1..=MAX_BUCKETS {
            assert_eq!(pick(0, n), 0);
            assert_eq!(pick(u32::MAX, n), n - 1);
        }
        assert_eq!(pick(0x7fff_ffff, 2), 0);
        assert_eq!(pick(0x8000_0000, 2), 1);
    }

    /// 10,000 flows (consecutive source ports, as one host opens them) over 2 and 3 paths:
    /// each path gets its share within 5%.
    #[test]
    fn flows_spread_evenly() {
        for paths in [2usize, 3, 4] {
            let mut seen = vec![0u32; paths];
            for port in 0..10_000u32 {
                let mut h: u32 = 0x811c_9dc5;
                for b in [10, 0, 1, 2, 10, 9, 1, 1].iter().chain(&port.to_be_bytes()[2..]).chain(&[17u8]) {
                    h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
                }
                seen[pick(mix(h), paths)] += 1;
            }
            let fair = 10_000 / paths as u32;
            assert!(seen.iter().all(|&n| n.abs_diff(fair) < fair / 20), "{paths} paths: {seen:?}");
        }
    }

    /// Hash-threshold: going from 4 paths to 3 moves only the flows of the regions that move.
    #[test]
    fn removing_a_path_moves_few_flows() {
        let hashes: Vec<u32> = (0..10_000u32).map(mix).collect();
        let moved = hashes.iter().filter(|&&h| pick(h, 4) != pick(h, 3)).count();
        let modulo = hashes.iter().filter(|&&h| h % 4 != h % 3).count();
        assert!(moved < modulo, "hash-threshold moved {moved}, modulo {modulo}");
    }
}
