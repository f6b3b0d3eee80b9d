//! DPDK's CRC32-C hash (`rte_hash_crc`, `rte_hash_crc.h`). DPDK's own l3fwd hashes flows
//! with it in its exact-match mode; the forwarder uses it for the flow extension's hash of
//! packets the NIC gave no RSS hash for.
//!
//! `rte_hash_crc` is static inline in C, with a branch on the CPU's abilities per step. Here
//! the same steps (8 bytes at a time, then 4, 2, 1, with SSE4.2's `crc32` instruction,
//! which every CPU DPDK runs on has: it is built for `-march=corei7`) are inline Rust, and
//! DPDK's function is kept behind the shim as the reference ([`crc_dpdk`]) the tests hold
//! them to, and for CPUs without SSE4.2.

/// The CRC32-C of `data`, starting from `init`: `rte_hash_crc(data, len, init)`. Generic
/// over the length, so each length gets its steps unrolled (the instruction-set switch
/// stops inlining at the call).
#[inline]
pub fn crc<const N: usize>(data: &[u8; N], init: u32) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sse4.2") {
        // SAFETY: the CPU has SSE4.2 (checked just above).
        return unsafe { crc_sse42(data, init) };
    }
    crc_dpdk(data, init)
}

/// The CRC32-C of a flow tuple, `addrs` (`N`, a multiple of 8: both addresses) then `ports`
/// then `proto`, from 0: `rte_hash_crc` of the tuple's `N + 5` bytes laid end to end, in
/// one function with its steps inline.
#[inline]
pub fn crc_tuple<const N: usize>(addrs: &[u8; N], ports: [u8; 4], proto: u8) -> u32 {
    const { assert!(N & 7 == 0, "addresses in 8-byte steps") };
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sse4.2") {
        // SAFETY: the CPU has SSE4.2 (checked just above).
        return unsafe { crc_tuple_sse42(addrs, ports, proto) };
    }
    let mut t = [0u8; 40];
    t[..N].copy_from_slice(addrs);
    t[N..N + 4].copy_from_slice(&ports);
    t[N + 4] = proto;
    crc_dpdk(&t[..N + 5], 0)
}

/// [`crc_tuple`] with the `crc32` instruction.
///
/// # Safety
/// The CPU must have SSE4.2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
#[inline]
unsafe fn crc_tuple_sse42<const N: usize>(addrs: &[u8; N], ports: [u8; 4], proto: u8) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u32, _mm_crc32_u64, _mm_crc32_u8};
    let mut crc = 0u32;
    for w in addrs.chunks_exact(8) {
        let w: [u8; 8] = w.try_into().expect("chunks of 8");
        crc = _mm_crc32_u64(u64::from(crc), u64::from_le_bytes(w)) as u32;
    }
    crc = _mm_crc32_u32(crc, u32::from_le_bytes(ports));
    _mm_crc32_u8(crc, proto)
}

/// `rte_hash_crc` through the C shim.
pub fn crc_dpdk(data: &[u8], init: u32) -> u32 {
    let len = u32::try_from(data.len()).expect("a slice shorter than 4 GiB");
    // SAFETY: rte_hash_crc reads exactly `len` bytes from `data`, which the slice holds
    // (unaligned reads are what it does on x86), and keeps no pointer.
    unsafe { dpdk_sys::dp_hash_crc(data.as_ptr().cast(), len, init) }
}

/// rte_hash_crc's steps with the `crc32` instruction.
///
/// # Safety
/// The CPU must have SSE4.2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
#[inline]
unsafe fn crc_sse42<const N: usize>(data: &[u8; N], init: u32) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u16, _mm_crc32_u32, _mm_crc32_u64, _mm_crc32_u8};
    let mut crc = init;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let w: [u8; 8] = w.try_into().expect("chunks of 8");
        crc = _mm_crc32_u64(u64::from(crc), u64::from_le_bytes(w)) as u32;
    }
    let mut rest = words.remainder();
    if let Some((w, r)) = rest.split_first_chunk::<4>() {
        crc = _mm_crc32_u32(crc, u32::from_le_bytes(*w));
        rest = r;
    }
    if let Some((w, r)) = rest.split_first_chunk::<2>() {
        crc = _mm_crc32_u16(crc, u16::from_le_bytes(*w));
        rest = r;
    }
    if let [b] = rest {
        crc = _mm_crc32_u8(crc, *b);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The CRC-32C (Castagnoli) check value: "123456789" from !0, complemented, is
        // 0xe3069283.
        assert_eq!(!crc(b"123456789", !0), 0xe306_9283);
        assert_eq!(!crc_dpdk(b"123456789", !0), 0xe306_9283);
        assert_eq!(crc(&[], 7), 7);
    }

    #[test]
    fn inline_steps_are_dpdks() {
        let mut x: u32 = 7;
        let mut data = [0u8; 64];
        for round in 0..3000 {
            for b in data.iter_mut() {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *b = (x >> 24) as u8;
            }
            let len = round % 4;
            let a: &[u8; 13] = data[len..].first_chunk().unwrap();
            let b: &[u8; 37] = data[len..].first_chunk().unwrap();
            let c: &[u8; 8] = data[len..].first_chunk().unwrap();
            assert_eq!(crc(a, x), crc_dpdk(a, x));
            assert_eq!(crc(b, x), crc_dpdk(b, x));
            assert_eq!(crc(c, x), crc_dpdk(c, x));
            let (addrs4, addrs6): (&[u8; 8], &[u8; 32]) = (data.first_chunk().unwrap(), data.first_chunk().unwrap());
            let ports: [u8; 4] = *data[40..].first_chunk().unwrap();
            let mut t = addrs4.to_vec();
            t.extend(ports);
            t.push(data[50]);
            assert_eq!(crc_tuple(addrs4, ports, data[50]), crc_dpdk(&t, 0));
            let mut t = addrs6.to_vec();
            t.extend(ports);
            t.push(data[50]);
            assert_eq!(crc_tuple(addrs6, ports, data[50]), crc_dpdk(&t, 0));
        }
    }
}
