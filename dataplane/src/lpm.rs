//! Longest-prefix-match route tables over DPDK's `rte_lpm` (IPv4) and `rte_lpm6` (IPv6),
//! changed by one writer while every worker keeps looking up, with no lock.
//!
//! A table maps prefixes to *next-hop ids*: small integers that index the forwarder's
//! next-hop table ([`crate::nexthop`]), not addresses. DPDK stores them in bit-fields, so an
//! IPv4 next hop must fit in 24 bits and an IPv6 one in 21; `add` refuses larger values
//! instead of letting DPDK truncate them silently.
//!
//! Byte order: IPv4 addresses cross the FFI in host order (`u32::from(Ipv4Addr)`), which is
//! what `rte_lpm` expects, so a packet's destination read from the wire must be converted
//! with `u32::from_be_bytes` first. IPv6 addresses cross as their 16 bytes in network order
//! (`Ipv6Addr::octets`), as on the wire.
//!
//! DPDK's tables cannot hold a depth-0 prefix, so the default route (`0.0.0.0/0`, `::/0`) is
//! kept here, in an atomic, and returned by every lookup that matches nothing else.
//!
//! # One writer, many readers
//!
//! Each table is split in two handles: a unique writer ([`Lpm4`], [`Lpm6`]: not `Clone`,
//! `add`/`delete` take `&mut self`) held by the control side, and shared readers
//! ([`Lpm4Reader`], [`Lpm6Reader`]: `Clone`) held by the workers, whose lookups take the
//! worker's [`QsbrReader`], so a lookup outside a read-side critical section cannot be
//! written. The DPDK table is freed when the last handle drops.
//!
//! - **IPv4** (`rte_lpm`): the table is attached to the forwarder's QS variable with
//!   `rte_lpm_rcu_qsbr_add` in defer-queue mode (`RTE_LPM_QSBR_MODE_DQ`). `rte_lpm` writes
//!   every entry with one 32-bit atomic store (a tbl8 group is filled before the tbl24 entry
//!   that points to it), so a lookup during `add` or `delete` sees the old or the new next
//!   hop, never a torn one; re-adding a prefix replaces its next hop in place, with no gap.
//!   A tbl8 group freed by `delete` goes to the defer queue and is reused by a later `add`
//!   only once every online worker has passed a quiescent state.
//! - **IPv6** (`rte_lpm6`): DPDK 22.11 has no RCU hook for it, and `rte_lpm6_delete` puts a
//!   freed tbl8 group back on its free list at once, where the next `add` may reinitialise
//!   it under a worker still inside it. So there are two identical tables behind an atomic
//!   index: a batch of changes ([`Lpm6::apply`]) goes to the spare table (no worker reads
//!   it), the spare is published, the writer waits for a grace period (now no worker reads
//!   the old one), and the same batch goes to the old table. Twice the memory and twice the
//!   writes, one grace period per batch, and no reliance on `rte_lpm6`'s internals.

use std::ffi::CString;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

use dpdk_sys::{rte_lpm, rte_lpm6};
use mempool::{DpdkError, SocketId};

use crate::rcu::{Qsbr, QsbrReader};

/// Addresses looked up per DPDK bulk call; bounds the stack arrays used for the raw results
/// (and the variable-length array `rte_lpm_lookup_bulk` puts on the C stack).
const BULK_CHUNK: usize = 64;

/// `EINVAL`, for names DPDK cannot take.
const EINVAL: i32 = 22;
/// `ENOENT`, which `rte_lpm6_delete` returns for a prefix it does not hold.
const ENOENT: i32 = 2;
/// `ENOSPC`: the rules or the tbl8 groups are used up.
pub const ENOSPC: i32 = 28;

/// The default route's atomic when there is none (next hops are below 2^24).
const NO_DEFAULT: u32 = u32::MAX;

/// A route table failure.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
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

impl LpmError {
    /// Whether the table is full (`-ENOSPC`: no rule slot or no tbl8 group left).
    pub fn is_full(&self) -> bool {
        matches!(self, LpmError::Dpdk(e) if e.errno == ENOSPC)
    }
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

fn load_default(d: &AtomicU32) -> Option<u32> {
    match d.load(Ordering::Acquire) {
        NO_DEFAULT => None,
        nh => Some(nh),
    }
}

/// Checks that `reader` reports to the QS variable that protects a table.
#[inline]
fn same_qsbr(reader: &QsbrReader, qsbr: &Arc<Qsbr>) {
    assert!(Arc::ptr_eq(reader.qsbr(), qsbr), "LPM lookup through a reader of another QS variable");
}

// --- IPv4 ------------------------------------------------------------------------------

/// The `rte_lpm` both IPv4 handles share; freed when the last one drops.
struct Table4 {
    raw: NonNull<rte_lpm>,
    name: String,
    default: AtomicU32,
    qsbr: Arc<Qsbr>,
}

// SAFETY: the table lives in DPDK's shared heap, not in any thread's storage; rte_lpm_free may
// run on any thread (it takes the tailq lock and calls rte_free).
unsafe impl Send for Table4 {}
// SAFETY: shared access is lookups (rte_lpm_lookup, rte_lpm_lookup_bulk: plain reads of
// entries DPDK writes with single atomic stores) from any number of threads, and writes from
// the one `Lpm4` writer (`&mut`), which rte_lpm with RCU supports; freed tbl8 groups are
// reused only after a grace period of the QS variable every reader reports to.
unsafe impl Sync for Table4 {}

impl Drop for Table4 {
    fn drop(&mut self) {
        // No handle is left, so no lookup runs. Wait for a grace period first so that the
        // defer queue's pending groups can all be reclaimed (rte_rcu_qsbr_dq_delete).
        self.qsbr.synchronize();
        // SAFETY: the last handle is gone; the table was created by rte_lpm_create.
        unsafe { dpdk_sys::rte_lpm_free(self.raw.as_ptr()) }
    }
}

/// The writer of an IPv4 route table (`rte_lpm`): unique, for the control side.
pub struct Lpm4 {
    t: Arc<Table4>,
}

/// A reader of an IPv4 route table: any number, one per worker.
#[derive(Clone)]
pub struct Lpm4Reader {
    t: Arc<Table4>,
}

impl Lpm4 {
    /// The longest prefix length.
    pub const MAX_DEPTH: u8 = 32;
    /// The largest next-hop index: `rte_lpm` keeps 24 bits of it.
    pub const MAX_NEXT_HOP: u32 = (1 << 24) - 1;

    /// Creates an empty table (`rte_lpm_create`) that holds up to `max_rules` prefixes and
    /// `number_tbl8s` groups of 256 entries for prefixes longer than /24 (each /25../32
    /// prefix under a new /24 takes one), and attaches it to `qsbr` in defer-queue mode
    /// (`rte_lpm_rcu_qsbr_add`). Memory: 64 MiB (the 2^24-entry first level), 8 B per rule,
    /// 1 KiB per tbl8 group and 12 B per group for the defer queue. Keep the name to 20
    /// characters: the defer queue's ring is named after it.
    ///
    /// # Errors
    /// EEXIST when a table of that name exists, EINVAL for `max_rules == 0` or a name with a
    /// NUL, ENOMEM when the socket's memory is short.
    pub fn create(name: &str, max_rules: u32, number_tbl8s: u32, socket: SocketId, qsbr: &Arc<Qsbr>) -> Result<Lpm4, DpdkError> {
        let cname = c_name("rte_lpm_create", name)?;
        let config = dpdk_sys::rte_lpm_config { max_rules, number_tbl8s, flags: 0 };
        // SAFETY: cname and config outlive the call; DPDK copies the name and the numbers and
        // returns a table we own, or NULL with rte_errno set.
        let raw = unsafe { dpdk_sys::rte_lpm_create(cname.as_ptr(), socket.0, &config) };
        let raw = NonNull::new(raw).ok_or_else(|| DpdkError::last("rte_lpm_create"))?;
        let mut rcu = dpdk_sys::rte_lpm_rcu_config {
            v: qsbr.as_ptr(),
            mode: dpdk_sys::rte_lpm_qsbr_mode_RTE_LPM_QSBR_MODE_DQ,
            ..Default::default()
        };
        // SAFETY: raw is a fresh table nobody else knows; the QS variable outlives it (Table4
        // holds the Arc and frees the table first); DPDK copies the config.
        if unsafe { dpdk_sys::rte_lpm_rcu_qsbr_add(raw.as_ptr(), &mut rcu) } != 0 {
            let e = DpdkError::last("rte_lpm_rcu_qsbr_add");
            // SAFETY: created above and never shared.
            unsafe { dpdk_sys::rte_lpm_free(raw.as_ptr()) };
            return Err(e);
        }
        let t = Table4 { raw, name: name.to_owned(), default: AtomicU32::new(NO_DEFAULT), qsbr: qsbr.clone() };
        Ok(Lpm4 { t: Arc::new(t) })
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.t.name
    }

    /// A reader for a worker.
    pub fn reader(&self) -> Lpm4Reader {
        Lpm4Reader { t: self.t.clone() }
    }

    /// Routes `addr/depth` to `next_hop`, replacing the next hop of an existing route in
    /// place (lookups see the old or the new one, never none). Host bits of `addr` past
    /// `depth` are ignored; depth 0 sets the default route.
    ///
    /// # Errors
    /// [`LpmError::BadDepth`] above 32 and [`LpmError::NextHopTooLarge`] above
    /// [`Lpm4::MAX_NEXT_HOP`], both before DPDK is called; [`LpmError::Dpdk`] with ENOSPC
    /// when the rules or tbl8 groups are used up (the table is then unchanged).
    pub fn add(&mut self, addr: Ipv4Addr, depth: u8, next_hop: u32) -> Result<(), LpmError> {
        check(depth, Self::MAX_DEPTH, next_hop, Self::MAX_NEXT_HOP)?;
        if depth == 0 {
            self.t.default.store(next_hop, Ordering::Release);
            return Ok(());
        }
        // SAFETY: the table is valid; &mut self on the unique writer serialises writes, which
        // rte_lpm allows concurrently with lookups; depth and next_hop are in range.
        ret("rte_lpm_add", unsafe { dpdk_sys::rte_lpm_add(self.t.raw.as_ptr(), u32::from(addr), depth, next_hop) })
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
            return match self.t.default.swap(NO_DEFAULT, Ordering::AcqRel) {
                NO_DEFAULT => Err(missing),
                _ => Ok(()),
            };
        }
        let ip = u32::from(addr);
        let mut next_hop = 0u32;
        // SAFETY: a read of the rules list, which only the writer (us, &mut self) changes;
        // next_hop is written on a hit only.
        let present = unsafe { dpdk_sys::rte_lpm_is_rule_present(self.t.raw.as_ptr(), ip, depth, &mut next_hop) };
        match present {
            0 => Err(missing),
            p if p < 0 => ret("rte_lpm_is_rule_present", p),
            // SAFETY: as in add; the rule exists, so DPDK's only "not found" case cannot occur.
            _ => ret("rte_lpm_delete", unsafe { dpdk_sys::rte_lpm_delete(self.t.raw.as_ptr(), ip, depth) }),
        }
    }
}

impl Lpm4Reader {
    /// The next hop of the longest prefix that covers `addr`, else the default route's.
    ///
    /// `rte_lpm_lookup`, which is static inline in C, done inline here: one load from the
    /// first-level table (`tbl24`), and a second from a `tbl8` group for an address under
    /// a prefix longer than /24.
    ///
    /// # Panics
    /// If `rcu` reports to another QS variable than the table's.
    #[inline]
    pub fn lookup(&self, rcu: &QsbrReader, addr: Ipv4Addr) -> Option<u32> {
        same_qsbr(rcu, &self.t.qsbr);
        self.lookup_checked(addr)
    }

    /// [`Lpm4Reader::lookup`] for a caller that has checked its reader's QS variable with
    /// [`Lpm4Reader::checks`] and holds the reader borrowed for as long as it looks up.
    #[inline(always)]
    pub(crate) fn lookup_checked(&self, addr: Ipv4Addr) -> Option<u32> {
        let entry = self.entry(u32::from(addr));
        if entry & dpdk_sys::RTE_LPM_LOOKUP_SUCCESS != 0 {
            Some(entry & Lpm4::MAX_NEXT_HOP)
        } else {
            load_default(&self.t.default)
        }
    }

    /// Whether `rcu` reports to this table's QS variable (what [`Lpm4Reader::lookup`]
    /// asserts on every call).
    #[inline]
    pub(crate) fn checks(&self, rcu: &QsbrReader) -> bool {
        Arc::ptr_eq(rcu.qsbr(), &self.t.qsbr)
    }

    /// The table entry for `ip` (host order), as `rte_lpm_lookup` reads it. The caller is
    /// inside a read-side section of the table's QS variable.
    #[inline(always)]
    fn entry(&self, ip: u32) -> u32 {
        let lpm = self.t.raw.as_ptr();
        let load = |p: *const dpdk_sys::rte_lpm_tbl_entry| {
            // SAFETY: p points at a 4-byte, 4-aligned entry inside the table's memory (see
            // below). DPDK's writer stores whole 32-bit entries while lookups run (rte_lpm
            // with RCU), so the entry is read as one relaxed atomic load, as C's plain load.
            unsafe { (*p.cast::<std::sync::atomic::AtomicU32>()).load(Ordering::Relaxed) }
        };
        // SAFETY: the table is valid while self lives; tbl24 has 2^24 entries and
        // ip >> 8 < 2^24, so the address computed is inside it (no reference is made).
        let mut entry =
            load(unsafe { std::ptr::addr_of!((*lpm).tbl24).cast::<dpdk_sys::rte_lpm_tbl_entry>().add((ip >> 8) as usize) });
        if entry & dpdk_sys::RTE_LPM_VALID_EXT_ENTRY_BITMASK == dpdk_sys::RTE_LPM_VALID_EXT_ENTRY_BITMASK {
            // An extended entry holds the index of an allocated tbl8 group of 256 entries
            // (DPDK's invariant for valid_group entries), which the address's last byte
            // indexes. Inside the read-side section, the group is not reused under us.
            let index =
                (ip & 0xff) as usize + (entry & Lpm4::MAX_NEXT_HOP) as usize * dpdk_sys::RTE_LPM_TBL8_GROUP_NUM_ENTRIES as usize;
            // SAFETY: tbl8 points at the table's groups and `index` lies in an allocated
            // group (above); the table is valid while self lives.
            entry = load(unsafe { (*lpm).tbl8.add(index) });
        }
        entry
    }

    /// Looks up every address of `addrs` (host order, `u32::from(Ipv4Addr)`) and writes the
    /// result for `addrs[i]` to `out[i]`, as [`Lpm4Reader::lookup`] would (and, like it,
    /// inline rather than through `rte_lpm_lookup_bulk`). Allocates nothing.
    ///
    /// # Panics
    /// When `out` and `addrs` differ in length, or `rcu` reports to another QS variable.
    #[inline]
    pub fn lookup_bulk(&self, rcu: &QsbrReader, addrs: &[u32], out: &mut [Option<u32>]) {
        assert_eq!(addrs.len(), out.len(), "lookup_bulk: addrs and out differ in length");
        same_qsbr(rcu, &self.t.qsbr);
        let default = load_default(&self.t.default);
        for (&ip, hop) in addrs.iter().zip(out) {
            let entry = self.entry(ip);
            *hop = if entry & dpdk_sys::RTE_LPM_LOOKUP_SUCCESS != 0 { Some(entry & Lpm4::MAX_NEXT_HOP) } else { default };
        }
    }

    /// [`Lpm4Reader::lookup_bulk`] through DPDK's `rte_lpm_lookup_bulk` (via the C shim): the
    /// reference the tests hold the inline lookups to.
    ///
    /// # Panics
    /// As [`Lpm4Reader::lookup_bulk`].
    pub fn lookup_bulk_dpdk(&self, rcu: &QsbrReader, addrs: &[u32], out: &mut [Option<u32>]) {
        assert_eq!(addrs.len(), out.len(), "lookup_bulk: addrs and out differ in length");
        same_qsbr(rcu, &self.t.qsbr);
        let default = load_default(&self.t.default);
        let mut raw = [0u32; BULK_CHUNK];
        for (ips, hops) in addrs.chunks(BULK_CHUNK).zip(out.chunks_mut(BULK_CHUNK)) {
            // SAFETY: ips has ips.len() readable entries and raw at least as many writable
            // ones; the read-side section holds as in lookup. The return is -EINVAL for NULL
            // pointers only, which these are not.
            unsafe { dpdk_sys::dp_lpm_lookup_bulk(self.t.raw.as_ptr(), ips.as_ptr(), raw.as_mut_ptr(), ips.len() as u32) };
            for (hop, &entry) in hops.iter_mut().zip(&raw) {
                *hop = if entry & dpdk_sys::RTE_LPM_LOOKUP_SUCCESS != 0 { Some(entry & Lpm4::MAX_NEXT_HOP) } else { default };
            }
        }
    }
}

impl fmt::Debug for Lpm4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lpm4").field("name", &self.t.name).field("default", &load_default(&self.t.default)).finish()
    }
}

impl fmt::Debug for Lpm4Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lpm4Reader").field("name", &self.t.name).finish()
    }
}

// --- IPv6 ------------------------------------------------------------------------------

/// One change of a batch for [`Lpm6::apply`]: `next_hop` `Some` adds or replaces the route
/// `addr/depth`, `None` deletes it. Depth 0 is the default route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change6 {
    /// The prefix's address (host bits past `depth` are ignored).
    pub addr: Ipv6Addr,
    /// The prefix length, 0..=128.
    pub depth: u8,
    /// The new next hop, or `None` to delete.
    pub next_hop: Option<u32>,
}

/// One `rte_lpm6`, freed on drop.
struct One6 {
    raw: NonNull<rte_lpm6>,
}

impl One6 {
    fn create(name: &str, max_rules: u32, number_tbl8s: u32, socket: SocketId) -> Result<One6, DpdkError> {
        let cname = c_name("rte_lpm6_create", name)?;
        let config = dpdk_sys::rte_lpm6_config { max_rules, number_tbl8s, flags: 0 };
        // SAFETY: cname and config outlive the call; DPDK copies what it keeps and returns a
        // table we own, or NULL with rte_errno set.
        let raw = unsafe { dpdk_sys::rte_lpm6_create(cname.as_ptr(), socket.0, &config) };
        Ok(One6 { raw: NonNull::new(raw).ok_or_else(|| DpdkError::last("rte_lpm6_create"))? })
    }

    /// The next hop of exactly `addr/depth`, if the table holds that rule. Writer only.
    fn rule(&self, addr: &[u8; 16], depth: u8) -> Option<u32> {
        let mut nh = 0u32;
        // SAFETY: reads the rules hash of a table only the writer changes (the caller is it);
        // addr is 16 readable bytes, nh a valid out pointer.
        let r = unsafe { dpdk_sys::rte_lpm6_is_rule_present(self.raw.as_ptr(), addr.as_ptr(), depth, &mut nh) };
        (r == 1).then_some(nh)
    }

    /// Sets or deletes one rule (depth 1..=128). Writer only, on a table no worker reads.
    fn set(&self, addr: &[u8; 16], depth: u8, next_hop: Option<u32>) -> Result<(), LpmError> {
        match next_hop {
            // SAFETY: as in rule; no worker reads this table while it is the spare, and
            // rte_lpm6_add validates depth and copies the address.
            Some(nh) => ret("rte_lpm6_add", unsafe { dpdk_sys::rte_lpm6_add(self.raw.as_ptr(), addr.as_ptr(), depth, nh) }),
            None => {
                // SAFETY: as above. -ENOENT: the rule was not there.
                let r = unsafe { dpdk_sys::rte_lpm6_delete(self.raw.as_ptr(), addr.as_ptr(), depth) };
                if r == -ENOENT {
                    return Err(LpmError::NoSuchRoute { prefix: Ipv6Addr::from(*addr).into(), depth });
                }
                ret("rte_lpm6_delete", r)
            }
        }
    }
}

impl Drop for One6 {
    fn drop(&mut self) {
        // SAFETY: dropped with the last handle of the pair: nothing reads or writes it.
        unsafe { dpdk_sys::rte_lpm6_free(self.raw.as_ptr()) }
    }
}

/// The two `rte_lpm6` tables the IPv6 handles share, and which one the workers read.
struct Tables6 {
    tables: [One6; 2],
    /// The table workers read: 0 or 1.
    active: AtomicUsize,
    default: AtomicU32,
    name: String,
    qsbr: Arc<Qsbr>,
}

// SAFETY: both tables live in DPDK's shared heap; rte_lpm6_free may run on any thread.
unsafe impl Send for Tables6 {}
// SAFETY: readers only look up (rte_lpm6_lookup, rte_lpm6_lookup_bulk_func) in the active
// table. The one writer (`Lpm6`, `&mut self`) changes only the table no reader can be in: the
// spare, which no reader has seen since a grace period ended (see Lpm6::apply).
unsafe impl Sync for Tables6 {}

/// The writer of an IPv6 route table (a pair of `rte_lpm6`): unique, for the control side.
pub struct Lpm6 {
    t: Arc<Tables6>,
}

/// A reader of an IPv6 route table: any number, one per worker.
#[derive(Clone)]
pub struct Lpm6Reader {
    t: Arc<Tables6>,
}

impl Lpm6 {
    /// The longest prefix length.
    pub const MAX_DEPTH: u8 = 128;
    /// The largest next-hop index: `rte_lpm6` keeps 21 bits of it.
    pub const MAX_NEXT_HOP: u32 = (1 << 21) - 1;

    /// Creates two empty `rte_lpm6` tables (`<name>_a`, `<name>_b`), each holding up to
    /// `max_rules` prefixes and `number_tbl8s` groups of 256 entries (a prefix longer than
    /// /24 takes one group per further byte where it does not share a path with an earlier
    /// prefix). Memory, twice: 64 MiB (the first level) + 1 KiB per tbl8 group + the rules
    /// hash. Keep the name to 18 characters: DPDK derives other object names from it.
    ///
    /// # Errors
    /// EEXIST when a table of that name exists, EINVAL for `max_rules == 0` or a name with a
    /// NUL, ENOMEM when the socket's memory is short.
    pub fn create(name: &str, max_rules: u32, number_tbl8s: u32, socket: SocketId, qsbr: &Arc<Qsbr>) -> Result<Lpm6, DpdkError> {
        let a = One6::create(&format!("{name}_a"), max_rules, number_tbl8s, socket)?;
        let b = One6::create(&format!("{name}_b"), max_rules, number_tbl8s, socket)?;
        let t = Tables6 {
            tables: [a, b],
            active: AtomicUsize::new(0),
            default: AtomicU32::new(NO_DEFAULT),
            name: name.to_owned(),
            qsbr: qsbr.clone(),
        };
        Ok(Lpm6 { t: Arc::new(t) })
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.t.name
    }

    /// A reader for a worker.
    pub fn reader(&self) -> Lpm6Reader {
        Lpm6Reader { t: self.t.clone() }
    }

    /// Routes `addr/depth` to `next_hop` (replacing an existing route's): [`Lpm6::apply`] of
    /// one change.
    ///
    /// # Errors
    /// As [`Lpm6::apply`].
    pub fn add(&mut self, addr: Ipv6Addr, depth: u8, next_hop: u32) -> Result<(), LpmError> {
        self.apply(&[Change6 { addr, depth, next_hop: Some(next_hop) }]).map_err(|(_, e)| e)
    }

    /// Removes the route `addr/depth`: [`Lpm6::apply`] of one change.
    ///
    /// # Errors
    /// As [`Lpm6::apply`].
    pub fn delete(&mut self, addr: Ipv6Addr, depth: u8) -> Result<(), LpmError> {
        self.apply(&[Change6 { addr, depth, next_hop: None }]).map_err(|(_, e)| e)
    }

    /// Applies `changes` in order, all or none: to the spare table, which is then published
    /// to the workers; after a grace period (no worker reads the old table any more) to the
    /// old one, which becomes the spare. Blocks for about one poll round of every online
    /// worker. Workers see the whole batch at once.
    ///
    /// # Errors
    /// The index of the first change that failed and why: [`LpmError::BadDepth`],
    /// [`LpmError::NextHopTooLarge`] (checked before any change), [`LpmError::NoSuchRoute`]
    /// for a delete of a missing prefix, [`LpmError::Dpdk`] with ENOSPC when the rules or
    /// the tbl8 groups are used up. Nothing changed then.
    pub fn apply(&mut self, changes: &[Change6]) -> Result<(), (usize, LpmError)> {
        for (i, c) in changes.iter().enumerate() {
            check(c.depth, Self::MAX_DEPTH, c.next_hop.unwrap_or(0), Self::MAX_NEXT_HOP).map_err(|e| (i, e))?;
        }
        let active = self.t.active.load(Ordering::Acquire);
        let spare = &self.t.tables[1 - active];
        // What each change replaced, to undo the batch if a later change fails.
        let mut undo: Vec<(usize, Option<u32>)> = Vec::with_capacity(changes.len());
        let mut default = load_default(&self.t.default);
        let mut failed = None;
        for (i, c) in changes.iter().enumerate() {
            let addr = c.addr.octets();
            if c.depth == 0 {
                if c.next_hop.is_none() && default.is_none() {
                    failed = Some((i, LpmError::NoSuchRoute { prefix: c.addr.into(), depth: 0 }));
                    break;
                }
                default = c.next_hop;
                continue;
            }
            let old = spare.rule(&addr, c.depth);
            match spare.set(&addr, c.depth, c.next_hop) {
                Ok(()) => undo.push((i, old)),
                Err(e) => {
                    failed = Some((i, e));
                    break;
                }
            }
        }
        if let Some(err) = failed {
            for &(i, old) in undo.iter().rev() {
                let c = &changes[i];
                // Restores what was there: a rule that existed fits again, and a delete
                // cannot fail.
                let _ = spare.set(&c.addr.octets(), c.depth, old);
            }
            return Err(err);
        }
        self.t.active.store(1 - active, Ordering::Release);
        self.t.default.store(default.unwrap_or(NO_DEFAULT), Ordering::Release);
        self.t.qsbr.synchronize();
        // No worker reads the old table now: bring it up to date. It held the same rules as
        // the spare before the batch, with the same capacity, so every change fits again.
        let old = &self.t.tables[active];
        for c in changes.iter().filter(|c| c.depth > 0) {
            if let Err(e) = old.set(&c.addr.octets(), c.depth, c.next_hop) {
                eprintln!("lpm6 {}: the second table refused {}/{}: {e}", self.t.name, c.addr, c.depth);
            }
        }
        Ok(())
    }
}

impl Lpm6Reader {
    #[inline]
    fn active(&self) -> *mut rte_lpm6 {
        self.t.tables[self.t.active.load(Ordering::Acquire)].raw.as_ptr()
    }

    /// The next hop of the longest prefix that covers `addr`, else the default route's.
    ///
    /// # Panics
    /// If `rcu` reports to another QS variable than the table's.
    #[inline]
    pub fn lookup(&self, rcu: &QsbrReader, addr: Ipv6Addr) -> Option<u32> {
        same_qsbr(rcu, &self.t.qsbr);
        self.lookup_checked(addr)
    }

    /// Whether `rcu` reports to this table's QS variable (what [`Lpm6Reader::lookup`]
    /// asserts on every call).
    #[inline]
    pub(crate) fn checks(&self, rcu: &QsbrReader) -> bool {
        Arc::ptr_eq(rcu.qsbr(), &self.t.qsbr)
    }

    /// [`Lpm6Reader::lookup`] for a caller that has checked its reader's QS variable with
    /// [`Lpm6Reader::checks`] and holds the reader borrowed for as long as it looks up.
    #[inline(always)]
    pub(crate) fn lookup_checked(&self, addr: Ipv6Addr) -> Option<u32> {
        let ip = addr.octets();
        let mut next_hop = 0u32;
        // SAFETY: ip is 16 readable bytes, next_hop a valid out pointer; the active table is
        // not written while rcu's read-side section (borrowed here) lasts (see Sync).
        let r = unsafe { dpdk_sys::rte_lpm6_lookup(self.active(), ip.as_ptr(), &mut next_hop) };
        if r == 0 {
            Some(next_hop)
        } else {
            load_default(&self.t.default)
        }
    }

    /// Looks up every address of `addrs` (16 bytes each, network order, as in the IPv6
    /// header) and writes the result for `addrs[i]` to `out[i]`, as [`Lpm6Reader::lookup`]
    /// would. Uses `rte_lpm6_lookup_bulk_func` on chunks of 64; allocates nothing.
    ///
    /// # Panics
    /// When `out` and `addrs` differ in length, or `rcu` reports to another QS variable.
    #[inline]
    pub fn lookup_bulk(&self, rcu: &QsbrReader, addrs: &[[u8; 16]], out: &mut [Option<u32>]) {
        assert_eq!(addrs.len(), out.len(), "lookup_bulk: addrs and out differ in length");
        same_qsbr(rcu, &self.t.qsbr);
        let table = self.active();
        let default = load_default(&self.t.default);
        let mut raw = [0i32; BULK_CHUNK];
        for (ips, hops) in addrs.chunks(BULK_CHUNK).zip(out.chunks_mut(BULK_CHUNK)) {
            // SAFETY: ips has ips.len() readable addresses and raw at least as many writable
            // entries. DPDK declares ips non-const but only reads it, so the cast from a shared
            // slice is sound. The table is not written meanwhile (see lookup); the return is
            // -EINVAL for NULL pointers only, which these are not.
            unsafe { dpdk_sys::rte_lpm6_lookup_bulk_func(table, ips.as_ptr().cast_mut(), raw.as_mut_ptr(), ips.len() as u32) };
            for (hop, &entry) in hops.iter_mut().zip(&raw) {
                // A miss is -1; a hit is the next hop, which is below 2^21 and so never negative.
                *hop = u32::try_from(entry).ok().or(default);
            }
        }
    }
}

impl fmt::Debug for Lpm6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lpm6")
            .field("name", &self.t.name)
            .field("active", &self.t.active.load(Ordering::Relaxed))
            .field("default", &load_default(&self.t.default))
            .finish()
    }
}

impl fmt::Debug for Lpm6Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lpm6Reader").field("name", &self.t.name).finish()
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
        assert!(LpmError::Dpdk(DpdkError { op: "rte_lpm_add", errno: ENOSPC }).is_full());
    }
}
