//! [`Mbuf`]: one owned DPDK packet buffer.
//!
//! An `Mbuf` owns exactly one reference to an `rte_mbuf` (a whole chain when segmented).
//! Dropping it frees it back to its pool; [`Mbuf::into_raw`] gives the reference away,
//! which is how TX takes ownership. Packet bytes are reached through [`Mbuf::data`] and
//! [`Mbuf::data_mut`], slices of the first segment's `data_len` bytes, so the borrow
//! checker guards every access.
//!
//! Packet extensions ([`crate::ext`]) hook in here: [`Mbuf::clone_in`] shares the area,
//! [`Mbuf::unshare`] moves it to the copy, and `Drop` releases it before the mbuf goes back
//! to its pool. Each hook costs one static load while the framework has not started, one
//! bit test for a packet without extensions.

use std::ptr::NonNull;
use std::slice;

use dpdk_sys::{rte_mbuf, RTE_MBUF_F_EXTERNAL, RTE_MBUF_F_INDIRECT};

use crate::error::{MbufError, PoolError};
use crate::pool::Pool;

/// An owned packet buffer. `repr(transparent)` over a non-null `rte_mbuf` pointer, so an
/// array of `Mbuf`s has the layout of the `struct rte_mbuf **` arrays that DPDK's burst
/// functions take.
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf(NonNull<rte_mbuf>);

// SAFETY: an Mbuf is the only handle to its reference; moving it to another lcore moves that
// ownership with it, and DPDK allows an mbuf to be freed to its pool from any thread.
// It is deliberately not Sync: one packet belongs to one lcore at a time, and DPDK's
// per-packet metadata (refcount, offload flags, dynamic fields) is written without locks.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes one mbuf from `pool`.
    ///
    /// # Errors
    /// [`PoolError::Exhausted`] when the pool (and this lcore's cache) is empty.
    pub fn alloc(pool: &Pool) -> Result<Mbuf, PoolError> {
        // SAFETY: the pool pointer is valid for the pool's lifetime; alloc returns an mbuf
        // with refcnt 1 that nobody else references, or NULL.
        let raw = unsafe { dpdk_sys::dp_pktmbuf_alloc(pool.as_ptr()) };
        NonNull::new(raw).map(Mbuf).ok_or_else(|| PoolError::Exhausted { pool: pool.name().to_owned(), wanted: 1 })
    }

    /// Wraps a raw mbuf, taking over one reference to it.
    ///
    /// # Safety
    /// `raw` must point to a valid mbuf whose reference the caller owns and gives up:
    /// nothing else may free it or use it through that reference afterwards.
    pub unsafe fn from_raw(raw: NonNull<rte_mbuf>) -> Mbuf {
        Mbuf(raw)
    }

    /// Gives the reference away without freeing it (to a TX queue, a ring, or C code).
    ///
    /// The packet's extensions go with it (it may come back through [`Mbuf::from_raw`]);
    /// call [`crate::ext::release`] first if the C code that receives it frees it.
    pub fn into_raw(self) -> NonNull<rte_mbuf> {
        let raw = self.0;
        std::mem::forget(self);
        raw
    }

    /// The underlying pointer, still owned by this `Mbuf`.
    #[inline]
    pub fn as_ptr(&self) -> *mut rte_mbuf {
        self.0.as_ptr()
    }

    /// `rte_pktmbuf_mtod`: the buffer address plus the data offset (inline, not through
    /// the C shim: it is on every packet's path).
    #[inline]
    fn data_ptr(&self) -> *mut u8 {
        let raw = self.raw();
        // SAFETY: buf_addr points at the mbuf's buffer and data_off is within it.
        unsafe { raw.buf_addr.cast::<u8>().add(usize::from(raw.data_off)) }
    }

    #[inline]
    fn raw(&self) -> &rte_mbuf {
        // SAFETY: the pointer is valid while self owns a reference to the mbuf.
        unsafe { self.0.as_ref() }
    }

    /// Bytes of packet data in the first segment.
    #[inline]
    pub fn data_len(&self) -> usize {
        usize::from(self.raw().data_len)
    }

    /// Bytes of packet data in all segments.
    #[inline]
    pub fn pkt_len(&self) -> usize {
        self.raw().pkt_len as usize
    }

    /// Number of segments in the chain.
    pub fn nb_segs(&self) -> u16 {
        self.raw().nb_segs
    }

    /// Whether the chain's lengths agree: `nb_segs` segments linked by `next`, whose
    /// `data_len`s add up to `pkt_len`. A PMD can build a chain that breaks this (DPDK
    /// 22.11's net_pcap truncates `pkt_len` to 16 bits for frames over 65,535 bytes), and a
    /// TX PMD that trusts `pkt_len` then reads past the chain (`rte_pktmbuf_read`): such a
    /// packet must be dropped before any TX queue sees it.
    ///
    /// A single segment costs three compares on the mbuf's first cache line and the `next`
    /// load; a chain is checked by DPDK's `rte_mbuf_check` (segment count, lengths, and each
    /// segment's buffer and refcount).
    #[inline]
    pub fn chain_is_consistent(&self) -> bool {
        let raw = self.raw();
        if raw.nb_segs == 1 && raw.next.is_null() {
            return raw.pkt_len == u32::from(raw.data_len);
        }
        self.check_chain()
    }

    #[cold]
    fn check_chain(&self) -> bool {
        let mut reason: *const std::ffi::c_char = std::ptr::null();
        // SAFETY: rte_mbuf_check only reads the chain this Mbuf owns, stops at nb_segs
        // segments (so a looping chain cannot keep it going), and writes a pointer to a
        // static string into `reason` when it fails.
        unsafe { dpdk_sys::rte_mbuf_check(self.as_ptr(), 1, &mut reason) == 0 }
    }

    /// Appends `tail` (a packet of one or more segments) to this packet's chain
    /// (`rte_pktmbuf_chain`): `nb_segs` and `pkt_len` grow by `tail`'s.
    ///
    /// # Errors
    /// `tail` back when the chain would exceed `RTE_MBUF_MAX_NB_SEGS` segments.
    pub fn chain(&mut self, tail: Mbuf) -> Result<(), Mbuf> {
        // Extensions belong to the head; the tail's go back with it now.
        crate::ext::release_one(tail.as_ptr());
        // SAFETY: both are valid packets this code owns; on success the head takes over the
        // tail's reference (it is freed with the chain), on failure nothing changed.
        if unsafe { dpdk_sys::dp_pktmbuf_chain(self.as_ptr(), tail.as_ptr()) } == 0 {
            std::mem::forget(tail);
            Ok(())
        } else {
            Err(tail)
        }
    }

    /// The input port DPDK recorded at RX.
    #[inline]
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// The RSS hash the NIC computed at RX (`hash.rss`), when the PMD set one
    /// (`RTE_MBUF_F_RX_RSS_HASH` in `ol_flags`, rte_mbuf_core.h); `None` otherwise.
    #[inline]
    pub fn rss_hash(&self) -> Option<u32> {
        let raw = self.raw();
        if raw.ol_flags & u64::from(dpdk_sys::RTE_MBUF_F_RX_RSS_HASH) == 0 {
            return None;
        }
        // SAFETY: a read of a u32 member of a union of plain integers and structs of them:
        // every bit pattern is a valid u32, and with the flag set the PMD wrote this member.
        Some(unsafe { raw.__bindgen_anon_2.hash.rss })
    }

    /// Records `port` as the packet's input port (PMDs set it at RX; software rings may
    /// not).
    pub fn set_port(&mut self, port: u16) {
        // SAFETY: &mut self is the only handle to this mbuf's metadata.
        unsafe { self.0.as_mut().port = port };
    }

    /// The offload flags (`ol_flags`, `RTE_MBUF_F_*`): what the PMD found at RX, such as
    /// the IP checksum status (`RTE_MBUF_F_RX_IP_CKSUM_*`) and whether `hash.rss` is set.
    #[inline]
    pub fn ol_flags(&self) -> u64 {
        self.raw().ol_flags
    }

    /// The packet type (`packet_type`, `RTE_PTYPE_*`): what the PMD (or a parser that
    /// stored its result with [`Mbuf::set_packet_type`]) found; 0 when unknown.
    #[inline]
    pub fn packet_type(&self) -> u32 {
        // SAFETY: packet_type is a plain u32 in a union of plain integers: every bit
        // pattern is valid.
        unsafe { self.raw().__bindgen_anon_1.packet_type }
    }

    /// Records what a parser found (`RTE_PTYPE_*` bits), as DPDK's software parsers do
    /// (`rte_net_get_ptype`); the field is reset when the mbuf goes back to its pool.
    #[inline]
    pub fn set_packet_type(&mut self, ptype: u32) {
        // SAFETY: &mut self is the only handle to this mbuf's metadata; any u32 is valid.
        unsafe { self.0.as_mut().__bindgen_anon_1.packet_type = ptype };
    }

    /// Asks the CPU to start loading the first cache line of the packet data
    /// (`rte_prefetch0(rte_pktmbuf_mtod(m, void *))`), for a packet that will be looked at
    /// soon. A hint: it never faults and changes nothing.
    #[inline(always)]
    pub fn prefetch_data(&self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: prefetching has no architectural effect and cannot fault on any address;
        // this one is inside the mbuf's buffer anyway.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(self.data_ptr().cast::<i8>())
        };
    }

    /// The application's 32-bit tag on the packet (`hash.usr`). It shares its bytes with
    /// the RSS hash a PMD may have written at RX, so it means something only once
    /// [`set_user_tag`](Self::set_user_tag) wrote it.
    #[inline]
    pub fn user_tag(&self) -> u32 {
        // SAFETY: every member of the hash union is plain integers, so any bit pattern is a
        // valid u32; the mbuf is valid while self owns it.
        unsafe { self.raw().__bindgen_anon_2.hash.usr }
    }

    /// Tags the packet with `tag` for a later stage of this application (`hash.usr`, as
    /// `rte_distributor` uses it); it overwrites the RSS hash.
    #[inline]
    pub fn set_user_tag(&mut self, tag: u32) {
        // SAFETY: &mut self is the only handle to this mbuf's metadata; writing a union's
        // integer member is always valid.
        unsafe { self.0.as_mut().__bindgen_anon_2.hash.usr = tag };
    }

    /// The number of references to this mbuf (more than one after [`Mbuf::clone_in`]).
    #[inline]
    pub fn refcnt(&self) -> u16 {
        // SAFETY: reads the refcount field of a valid mbuf.
        // (rte_mbuf_refcnt_read is a relaxed atomic load of this field; done here inline
        // rather than through the C shim, since it is on every packet's path.)
        unsafe {
            (*std::ptr::addr_of!((*self.as_ptr()).refcnt).cast::<std::sync::atomic::AtomicU16>())
                .load(std::sync::atomic::Ordering::Relaxed)
        }
    }

    /// Whether the data buffer is this mbuf's own and nobody else references it: only then
    /// may it be written.
    #[inline]
    pub fn is_exclusive(&self) -> bool {
        self.raw().ol_flags & (RTE_MBUF_F_INDIRECT | RTE_MBUF_F_EXTERNAL) == 0 && self.refcnt() == 1
    }

    /// The packet bytes of the first segment.
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: buf_addr + data_off points at data_len initialised bytes inside the mbuf's
        // buffer, which lives as long as this reference; shared reads are always allowed.
        unsafe { slice::from_raw_parts(self.data_ptr(), self.data_len()) }
    }

    /// The packet bytes of the first segment, writable; `None` when the buffer is shared
    /// with a clone (indirect or refcount above one), since writing would change the other
    /// packet too.
    #[inline]
    pub fn data_mut(&mut self) -> Option<&mut [u8]> {
        if !self.is_exclusive() {
            return None;
        }
        // SAFETY: as in data(); the buffer is exclusively ours (checked above) and &mut self
        // guarantees no other slice of it exists.
        Some(unsafe { slice::from_raw_parts_mut(self.data_ptr(), self.data_len()) })
    }

    /// The packet bytes of the first segment, writable, copying the packet into a new
    /// mbuf from `pool` first if its buffer is shared (copy-on-write, like the kernel's
    /// skb_unshare). A packet fresh from RX is normally exclusive and costs one check.
    ///
    /// # Errors
    /// [`PoolError::Exhausted`] when the copy cannot be allocated; the packet is unchanged.
    #[inline(always)]
    pub fn unshare(&mut self, pool: &Pool) -> Result<&mut [u8], PoolError> {
        if !self.is_exclusive() {
            self.copy_in(pool)?;
        }
        // SAFETY: exclusive now (checked, or a fresh copy); &mut self makes the slice unique.
        Ok(unsafe { slice::from_raw_parts_mut(self.data_ptr(), self.data_len()) })
    }

    /// Replaces this packet with an exclusive copy from `pool`: the rare half of
    /// [`Mbuf::unshare`].
    #[cold]
    #[inline(never)]
    fn copy_in(&mut self, pool: &Pool) -> Result<(), PoolError> {
        // SAFETY: copies the whole packet (offset 0, all bytes) into new mbufs from `pool`;
        // returns an owned, exclusive chain or NULL. The old reference is then dropped by
        // the assignment. The extension area moves to the copy.
        let copy = crate::ext::around_copy(self.as_ptr(), || unsafe {
            dpdk_sys::rte_pktmbuf_copy(self.as_ptr(), pool.as_ptr(), 0, u32::MAX)
        });
        let copy = NonNull::new(copy).ok_or_else(|| PoolError::Exhausted { pool: pool.name().to_owned(), wanted: 1 })?;
        *self = Mbuf(copy);
        Ok(())
    }

    /// Grows the packet by `len` bytes at the tail of the last segment and returns the new
    /// bytes (zeroed), or `None` if the tailroom is too small or the buffer is shared.
    pub fn append(&mut self, len: u16) -> Option<&mut [u8]> {
        if !self.is_exclusive() {
            return None;
        }
        // SAFETY: rte_pktmbuf_append checks the tailroom and returns NULL when it is short;
        // otherwise `len` bytes at the returned address belong to this packet's buffer.
        unsafe {
            let p = dpdk_sys::dp_pktmbuf_append(self.as_ptr(), len);
            if p.is_null() {
                return None;
            }
            let tail = slice::from_raw_parts_mut(p.cast::<u8>(), usize::from(len));
            tail.fill(0);
            Some(tail)
        }
    }

    /// Sets the packet to a copy of `bytes` (single segment).
    ///
    /// # Errors
    /// [`MbufError::Shared`] when the buffer is shared with a clone, [`MbufError::DoesNotFit`]
    /// when `bytes` is longer than the buffer after its headroom; the packet is unchanged.
    pub fn set_data(&mut self, bytes: &[u8]) -> Result<(), MbufError> {
        if !self.is_exclusive() {
            return Err(MbufError::Shared);
        }
        let too_big = MbufError::DoesNotFit { len: bytes.len() };
        let len = u16::try_from(bytes.len()).map_err(|_| too_big)?;
        let raw = self.raw();
        if usize::from(len) > usize::from(raw.buf_len) - usize::from(raw.data_off) {
            return Err(too_big);
        }
        let current = self.data_len() as u16;
        if current > 0 {
            // SAFETY: trims the whole data length of a valid mbuf that is exclusively ours.
            let ret = unsafe { dpdk_sys::dp_pktmbuf_trim(self.as_ptr(), current) };
            if ret != 0 {
                return Err(too_big);
            }
        }
        self.append(len).ok_or(too_big)?.copy_from_slice(bytes);
        Ok(())
    }

    /// A second packet sharing this one's data (`rte_pktmbuf_clone`): an indirect mbuf taken
    /// from `pool`, and one more reference on the data. Neither may then write the data.
    /// The clone inherits the packet's extensions and shares their area (copy-on-write).
    ///
    /// # Errors
    /// [`PoolError::Exhausted`] when `pool` is empty.
    pub fn clone_in(&self, pool: &Pool) -> Result<Mbuf, PoolError> {
        // SAFETY: self is a valid mbuf; rte_pktmbuf_clone returns a new mbuf (owned by us)
        // attached to the same data, or NULL with rte_errno set. The hook gives the clone
        // its own reference to the extension area.
        let raw =
            crate::ext::around_clone(self.as_ptr(), || unsafe { dpdk_sys::rte_pktmbuf_clone(self.as_ptr(), pool.as_ptr()) });
        NonNull::new(raw).map(Mbuf).ok_or_else(|| PoolError::Exhausted { pool: pool.name().to_owned(), wanted: 1 })
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // Extensions first: C's free knows nothing of them, and pooled mbufs keep mask 0.
        crate::ext::release_one(self.as_ptr());
        // SAFETY: self owns one reference; rte_pktmbuf_free drops it (and the whole chain,
        // returning each segment to its pool when its refcount reaches zero).
        unsafe { dpdk_sys::dp_pktmbuf_free(self.as_ptr()) }
    }
}
