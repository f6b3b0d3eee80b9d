//! Longest-prefix-match route tables over DPDK's `rte_lpm` (IPv4) and `rte_lpm6` (IPv6).
//!
//! A table maps prefixes to *next-hop indexes*: small integers that index the forwarder's
//! own next-hop table (output port, MAC addresses), not addresses. DPDK stores them in
//! bit-fields, so an IPv4 next hop must fit in 24 bits and an IPv6 one in 21; [`Lpm4::add`]
//! and [`Lpm6::add`] refuse larger values instead of letting DPDK truncate them silently.
//!
//! Byte order: IPv4 addresses cross the FFI in host order (`u32::from(Ipv4Addr)`), which is
//! what `rte_lpm` expects, so a packet's destination read from the wire must be converted
//! with `u32::from_be_bytes` first. IPv6 addresses cross as their 16 bytes in network order
//! (`Ipv6Addr::octets`), as on the wire.
//!
//! DPDK's tables cannot hold a depth-0 prefix, so the default route (`0.0.0.0/0`, `::/0`) is
//! kept here and returned by every lookup that matches nothing else.
//!
//! Tables are built by the control thread before the workers start and are read-only
//! afterwards: lookups take `&self` and may run on every lcore at once, while `add` and
//! `delete` take `&mut self`, so the borrow checker rules out a write during a lookup.
//! Changing routes under traffic would need RCU (`rte_lpm_rcu_qsbr_add`), which this module
//! does not offer.

use std::ffi::CString;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ptr::NonNull;

use dpdk_sys::{rte_lpm, rte_lpm6};
use mempool::{DpdkError, SocketId};

/// Addresses looked up per DPDK bulk call; bounds the stack arrays used for the raw results
/// (and the variable-length array `rte_lpm_lookup_bulk` puts on the C stack).
const BULK_CHUNK: usize = 64;

/// `EINVAL`, for names DPDK cannot take.
const EINVAL: i32 = 22;
/// `ENOENT`, which `rte_lpm6_delete` returns for a prefix it does not hold.
const ENOENT: i32 = 2;

/// A route table failure.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LpmError {
    /// The prefix length is longer than the address.
    #[error("prefix length {depth} is above the maximum of {max}")]
    BadDepth {
        /// The length asked for.
        depth: u8,
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
    },
    /// The next-hop index does not fit DPDK's bit-field.
    #[error("next hop {next_hop} does not fit: the largest is {max}")]
    NextHopTooLarge {
        /// The next hop asked for.
        next_hop: u32,
        /// 2^24 - 1 for IPv4, 2^21 - 1 for IPv6.
        max: u32,
    },
    /// `delete` of a prefix the table does not hold.
    #[error("no route for {prefix}/{depth}")]
    NoSuchRoute {
        /// The address given (host bits as given).
        prefix: IpAddr,
        /// The prefix length.
        depth: u8,
    },
    /// A DPDK call failed (ENOSPC when the rules or tbl8 groups are used up).
    #[error(transparent)]
    Dpdk(#[from] DpdkError),
}

fn check(depth: u8, max_depth: u8, next_hop: u32, max_next_hop: u32) -> Result<(), LpmError> {
    if depth > max_depth {
        return Err(LpmError::BadDepth { depth, max: max_depth });
    }
    if next_hop > max_next_hop {
        return Err(LpmError::NextHopTooLarge { next_hop, max: max_next_hop });
    }
    Ok(())
}

fn c_name(op: &'static str, name: &str) -> Result<CString, DpdkError> {
    CString::new(name).map_err(|_| DpdkError { op, errno: EINVAL })
}

fn ret(op: &'static str, ret: i32) -> Result<(), LpmError> {
    if ret < 0 {
        Err(DpdkError::from_ret(op, ret).into())
    } else {
        Ok(())
    }
}

/// An IPv4 route table (`rte_lpm`), freed on drop.
pub struct Lpm4 {
    raw: NonNull<rte_lpm>,
    name: String,
    default: Option<u32>,
}

// SAFETY: the table lives in DPDK's shared heap, not in any thread's storage, and
// rte_lpm_free may run on any thread (it takes the tailq lock and calls rte_free).
unsafe impl Send for Lpm4 {}
// SAFETY: the &self methods only read the table (rte_lpm_lookup, rte_lpm_lookup_bulk), and
// concurrent readers of an rte_lpm are safe. Every write (add, delete) takes &mut self, so
// no lookup can run while the table changes.
unsafe impl Sync for Lpm4 {}

impl Lpm4 {
    /// The longest prefix length.
    pub const MAX_DEPTH: u8 = 32;
    /// The largest next-hop index: `rte_lpm` keeps 24 bits of it.
    pub const MAX_NEXT_HOP: u32 = (1 << 24) - 1;

    /// Creates an empty table (`rte_lpm_create`) that holds up to `max_rules` prefixes and
    /// `number_tbl8s` groups of 256 entries for prefixes longer than /24 (each /25../32
    /// prefix under a new /24 takes one). The 2^24-entry first level takes 64 MiB.
    ///
    /// # Errors
    /// EEXIST when a table of that name exists, EINVAL for `max_rules == 0` or a name with a
    /// NUL, ENOMEM when the socket's memory is short.
    pub fn create(name: &str, max_rules: u32, number_tbl8s: u32, socket: SocketId) -> Result<Lpm4, DpdkError> {
        let cname = c_name("rte_lpm_create", name)?;
        let config = dpdk_sys::rte_lpm_config { max_rules, number_tbl8s, flags: 0 };
        // SAFETY: cname and config outlive the call; DPDK copies the name and the numbers and
        // returns a table we own, or NULL with rte_errno set.
        let raw = unsafe { dpdk_sys::rte_lpm_create(cname.as_ptr(), socket.0, &config) };
        let raw = NonNull::new(raw).ok_or_else(|| DpdkError::last("rte_lpm_create"))?;
        Ok(Lpm4 { raw, name: name.to_owned(), default: None })
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Routes `addr/depth` to `next_hop`, replacing the next hop of an existing route.
    /// Host bits of `addr` past `depth` are ignored; depth 0 sets the default route.
    ///
    /// # Errors
    /// [`LpmError::BadDepth`] above 32 and [`LpmError::NextHopTooLarge`] above
    /// [`Lpm4::MAX_NEXT_HOP`], both before DPDK is called; [`LpmError::Dpdk`] with ENOSPC
    /// when the rules or tbl8 groups are used up.
    pub fn add(&mut self, addr: Ipv4Addr, depth: u8, next_hop: u32) -> Result<(), LpmError> {
        check(depth, Self::MAX_DEPTH, next_hop, Self::MAX_NEXT_HOP)?;
        if depth == 0 {
            self.default = Some(next_hop);
            return Ok(());
        }
        // SAFETY: the table is valid and &mut self keeps every reader out while it changes;
        // depth and next_hop are in range.
        ret("rte_lpm_add", unsafe { dpdk_sys::rte_lpm_add(self.raw.as_ptr(), u32::from(addr), depth, next_hop) })
    }

    /// Removes the route `addr/depth`; addresses it covered fall back to the next shorter
    /// prefix. Depth 0 removes the default route.
    ///
    /// # Errors
    /// [`LpmError::BadDepth`] above 32, [`LpmError::NoSuchRoute`] when the table does not
    /// hold the prefix.
    pub fn delete(&mut self, addr: Ipv4Addr, depth: u8) -> Result<(), LpmError> {
        check(depth, Self::MAX_DEPTH, 0, Self::MAX_NEXT_HOP)?;
        let missing = LpmError::NoSuchRoute { prefix: addr.into(), depth };
        if depth == 0 {
            return match self.default.take() {
                Some(_) => Ok(()),
                None => Err(missing),
            };
        }
        let ip = u32::from(addr);
        let mut next_hop = 0u32;
        // SAFETY: a read of the rules list of a valid table; next_hop is written on a hit only.
        let present = unsafe { dpdk_sys::rte_lpm_is_rule_present(self.raw.as_ptr(), ip, depth, &mut next_hop) };
        match present {
            0 => Err(missing),
            p if p < 0 => ret("rte_lpm_is_rule_present", p),
            // SAFETY: as in add; the rule exists, so DPDK's only "not found" case cannot occur.
            _ => ret("rte_lpm_delete", unsafe { dpdk_sys::rte_lpm_delete(self.raw.as_ptr(), ip, depth) }),
        }
    }

    /// The next hop of the longest prefix that covers `addr`, else the default route's.
    ///
    /// `rte_lpm_lookup`, which is static inline in C, done inline here: one load from the
    /// first-level table (`tbl24`), and a second from a `tbl8` group for an address under
    /// a prefix longer than /24.
    #[inline(always)]
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<u32> {
        let entry = self.entry(u32::from(addr));
        if entry & dpdk_sys::RTE_LPM_LOOKUP_SUCCESS != 0 {
            Some(entry & Self::MAX_NEXT_HOP)
        } else {
            self.default
        }
    }

    /// The table entry for `ip` (host order), as `rte_lpm_lookup` reads it.
    #[inline(always)]
    fn entry(&self, ip: u32) -> u32 {
        let lpm = self.raw.as_ptr();
        let load = |p: *const dpdk_sys::rte_lpm_tbl_entry| {
            // SAFETY: p points at a 4-byte, 4-aligned entry inside the table's memory (see the
            // callers). DPDK's writers store whole 32-bit entries (with RCU, while lookups
            // run), so the entry is read as one relaxed atomic load, as C's plain load is.
            unsafe { (*p.cast::<std::sync::atomic::AtomicU32>()).load(std::sync::atomic::Ordering::Relaxed) }
        };
        // SAFETY: the table is valid while &self is held; tbl24 has 2^24 entries and
        // ip >> 8 < 2^24, so the address computed is inside it (no reference is made).
        let mut entry =
            load(unsafe { std::ptr::addr_of!((*lpm).tbl24).cast::<dpdk_sys::rte_lpm_tbl_entry>().add((ip >> 8) as usize) });
        if entry & dpdk_sys::RTE_LPM_VALID_EXT_ENTRY_BITMASK == dpdk_sys::RTE_LPM_VALID_EXT_ENTRY_BITMASK {
            // An extended entry holds the index of an allocated tbl8 group of 256 entries
            // (DPDK's invariant for valid_group entries), which the address's last byte
            // indexes.
            let index =
                (ip & 0xff) as usize + (entry & Self::MAX_NEXT_HOP) as usize * dpdk_sys::RTE_LPM_TBL8_GROUP_NUM_ENTRIES as usize;
            // SAFETY: tbl8 points at the table's groups and `index` lies in an allocated
            // group (above); the table is valid while &self is held.
            entry = load(unsafe { (*lpm).tbl8.add(index) });
        }
        entry
    }

    /// Looks up every address of `addrs` (host order, `u32::from(Ipv4Addr)`) and writes the
    /// result for `addrs[i]` to `out[i]`, as [`Lpm4::lookup`] would (and, like it, inline
    /// rather than through `rte_lpm_lookup_bulk`). Allocates nothing.
    ///
    /// # Panics
    /// When `out` and `addrs` differ in length.
    #[inline]
    pub fn lookup_bulk(&self, addrs: &[u32], out: &mut [Option<u32>]) {
        assert_eq!(addrs.len(), out.len(), "lookup_bulk: addrs and out differ in length");
        for (&ip, hop) in addrs.iter().zip(out) {
            let entry = self.entry(ip);
            *hop = if entry & dpdk_sys::RTE_LPM_LOOKUP_SUCCESS != 0 { Some(entry & Self::MAX_NEXT_HOP) } else { self.default };
        }
    }

    /// [`Lpm4::lookup_bulk`] through DPDK's `rte_lpm_lookup_bulk` (via the C shim), for
    /// comparison in tests and benchmarks.
    pub fn lookup_bulk_dpdk(&self, addrs: &[u32], out: &mut [Option<u32>]) {
        assert_eq!(addrs.len(), out.len(), "lookup_bulk: addrs and out differ in length");
        let mut raw = [0u32; BULK_CHUNK];
        for (ips, hops) in addrs.chunks(BULK_CHUNK).zip(out.chunks_mut(BULK_CHUNK)) {
            // SAFETY: ips has ips.len() readable entries and raw at least as many writable
            // ones; the table is only read (see Sync). The return is -EINVAL for NULL
            // pointers only, which these are not.
            unsafe { dpdk_sys::dp_lpm_lookup_bulk(self.raw.as_ptr(), ips.as_ptr(), raw.as_mut_ptr(), ips.len() as u32) };
            for (hop, &entry) in hops.iter_mut().zip(&raw) {
                *hop =
                    if entry & dpdk_sys::RTE_LPM_LOOKUP_SUCCESS != 0 { Some(entry & Self::MAX_NEXT_HOP) } else { self.default };
            }
        }
    }
}

impl fmt::Debug for Lpm4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lpm4").field("name", &self.name).field("default", &self.default).finish()
    }
}

impl Drop for Lpm4 {
    fn drop(&mut self) {
        // SAFETY: we own the table and &mut self means no lookup is running on it.
        unsafe { dpdk_sys::rte_lpm_free(self.raw.as_ptr()) }
    }
}

/// An IPv6 route table (`rte_lpm6`), freed on drop.
pub struct Lpm6 {
    raw: NonNull<rte_lpm6>,
    name: String,
    default: Option<u32>,
}

// SAFETY: as for Lpm4: the table and its rules hash live in DPDK's shared heap, and
// rte_lpm6_free may run on any thread.
unsafe impl Send for Lpm6 {}
// SAFETY: the &self methods only read the table (rte_lpm6_lookup, rte_lpm6_lookup_bulk_func
// read tbl24 and tbl8 and never touch the rules hash); every write takes &mut self.
unsafe impl Sync for Lpm6 {}

impl Lpm6 {
    /// The longest prefix length.
    pub const MAX_DEPTH: u8 = 128;
    /// The largest next-hop index: `rte_lpm6` keeps 21 bits of it.
    pub const MAX_NEXT_HOP: u32 = (1 << 21) - 1;

    /// Creates an empty table (`rte_lpm6_create`) that holds up to `max_rules` prefixes and
    /// `number_tbl8s` groups of 256 entries (a prefix longer than /24 takes one group per
    /// further byte where it does not share a path with an earlier prefix). The first level
    /// takes 64 MiB. Keep the name to 20 characters: DPDK derives other object names from it.
    ///
    /// # Errors
    /// EEXIST when a table of that name exists, EINVAL for `max_rules == 0` or a name with a
    /// NUL, ENOMEM when the socket's memory is short.
    pub fn create(name: &str, max_rules: u32, number_tbl8s: u32, socket: SocketId) -> Result<Lpm6, DpdkError> {
        let cname = c_name("rte_lpm6_create", name)?;
        let config = dpdk_sys::rte_lpm6_config { max_rules, number_tbl8s, flags: 0 };
        // SAFETY: cname and config outlive the call; DPDK copies what it keeps and returns a
        // table we own, or NULL with rte_errno set.
        let raw = unsafe { dpdk_sys::rte_lpm6_create(cname.as_ptr(), socket.0, &config) };
        let raw = NonNull::new(raw).ok_or_else(|| DpdkError::last("rte_lpm6_create"))?;
        Ok(Lpm6 { raw, name: name.to_owned(), default: None })
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Routes `addr/depth` to `next_hop`, replacing the next hop of an existing route.
    /// Host bits of `addr` past `depth` are ignored; depth 0 sets the default route.
    ///
    /// # Errors
    /// [`LpmError::BadDepth`] above 128 and [`LpmError::NextHopTooLarge`] above
    /// [`Lpm6::MAX_NEXT_HOP`], both before DPDK is called; [`LpmError::Dpdk`] with ENOSPC
    /// when the rules or tbl8 groups are used up.
    pub fn add(&mut self, addr: Ipv6Addr, depth: u8, next_hop: u32) -> Result<(), LpmError> {
        check(depth, Self::MAX_DEPTH, next_hop, Self::MAX_NEXT_HOP)?;
        if depth == 0 {
            self.default = Some(next_hop);
            return Ok(());
        }
        let ip = addr.octets();
        // SAFETY: ip is 16 readable bytes (DPDK copies and masks them); the table is valid and
        // &mut self keeps every reader out while it changes; depth and next_hop are in range.
        ret("rte_lpm6_add", unsafe { dpdk_sys::rte_lpm6_add(self.raw.as_ptr(), ip.as_ptr(), depth, next_hop) })
    }

    /// Removes the route `addr/depth`; addresses it covered fall back to the next shorter
    /// prefix. Depth 0 removes the default route.
    ///
    /// # Errors
    /// [`LpmError::BadDepth`] above 128, [`LpmError::NoSuchRoute`] when the table does not
    /// hold the prefix.
    pub fn delete(&mut self, addr: Ipv6Addr, depth: u8) -> Result<(), LpmError> {
        check(depth, Self::MAX_DEPTH, 0, Self::MAX_NEXT_HOP)?;
        let missing = LpmError::NoSuchRoute { prefix: addr.into(), depth };
        if depth == 0 {
            return match self.default.take() {
                Some(_) => Ok(()),
                None => Err(missing),
            };
        }
        let ip = addr.octets();
        // SAFETY: as in add. -ENOENT means the rule was not there; the other error, EINVAL,
        // needs a NULL table or a bad depth, which the checks above exclude.
        let r = unsafe { dpdk_sys::rte_lpm6_delete(self.raw.as_ptr(), ip.as_ptr(), depth) };
        if r == -ENOENT {
            return Err(missing);
        }
        ret("rte_lpm6_delete", r)
    }

    /// The next hop of the longest prefix that covers `addr`, else the default route's.
    #[inline]
    pub fn lookup(&self, addr: Ipv6Addr) -> Option<u32> {
        let ip = addr.octets();
        let mut next_hop = 0u32;
        // SAFETY: ip is 16 readable bytes, next_hop a valid out pointer; the table is valid
        // and nobody writes it while &self is held (see Sync).
        let r = unsafe { dpdk_sys::rte_lpm6_lookup(self.raw.as_ptr(), ip.as_ptr(), &mut next_hop) };
        if r == 0 {
            Some(next_hop)
        } else {
            self.default
        }
    }

    /// Looks up every address of `addrs` (16 bytes each, network order, as in the IPv6
    /// header) and writes the result for `addrs[i]` to `out[i]`, as [`Lpm6::lookup`] would.
    /// Uses `rte_lpm6_lookup_bulk_func` on chunks of 64; allocates nothing.
    ///
    /// # Panics
    /// When `out` and `addrs` differ in length.
    #[inline]
    pub fn lookup_bulk(&self, addrs: &[[u8; 16]], out: &mut [Option<u32>]) {
        assert_eq!(addrs.len(), out.len(), "lookup_bulk: addrs and out differ in length");
        let mut raw = [0i32; BULK_CHUNK];
        for (ips, hops) in addrs.chunks(BULK_CHUNK).zip(out.chunks_mut(BULK_CHUNK)) {
            // SAFETY: ips has ips.len() readable addresses and raw at least as many writable
            // entries. DPDK declares ips non-const but only reads it, so the cast from a shared
            // slice is sound. The table is only read (see Sync); the return is -EINVAL for NULL
            // pointers only, which these are not.
            unsafe {
                dpdk_sys::rte_lpm6_lookup_bulk_func(
                    self.raw.as_ptr(),
                    ips.as_ptr().cast_mut(),
                    raw.as_mut_ptr(),
                    ips.len() as u32,
                )
            };
            for (hop, &entry) in hops.iter_mut().zip(&raw) {
                // A miss is -1; a hit is the next hop, which is below 2^21 and so never negative.
                *hop = u32::try_from(entry).ok().or(self.default);
            }
        }
    }
}

impl fmt::Debug for Lpm6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lpm6").field("name", &self.name).field("default", &self.default).finish()
    }
}

impl Drop for Lpm6 {
    fn drop(&mut self) {
        // SAFETY: we own the table and &mut self means no lookup is running on it.
        unsafe { dpdk_sys::rte_lpm6_free(self.raw.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_come_before_dpdk() {
        assert_eq!(check(33, 32, 0, Lpm4::MAX_NEXT_HOP), Err(LpmError::BadDepth { depth: 33, max: 32 }));
        assert_eq!(
            check(24, 32, 1 << 24, Lpm4::MAX_NEXT_HOP),
            Err(LpmError::NextHopTooLarge { next_hop: 1 << 24, max: (1 << 24) - 1 })
        );
        assert_eq!(check(0, 128, Lpm6::MAX_NEXT_HOP, Lpm6::MAX_NEXT_HOP), Ok(()));
        assert_eq!(check(128, 128, 0, Lpm6::MAX_NEXT_HOP), Ok(()));
    }

    #[test]
    fn errors_print_on_one_line() {
        let e = LpmError::NoSuchRoute { prefix: Ipv4Addr::new(10, 1, 0, 0).into(), depth: 16 };
        assert_eq!(e.to_string(), "no route for 10.1.0.0/16");
        let e = LpmError::BadDepth { depth: 129, max: 128 };
        assert_eq!(e.to_string(), "prefix length 129 is above the maximum of 128");
    }
}
