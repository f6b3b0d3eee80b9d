//! The unsafe core of packet extensions: the mbuf dynamic field, the area pool, the
//! refcount, and the hooks that [`Mbuf`], [`Burst`](crate::Burst) and
//! [`MbufRing`](crate::MbufRing) call on every clone, copy and free.
//!
//! Two facts carry every `unsafe` block here:
//! - **Field**: once [`DYN_OFFSET`] is non-negative it is the offset DPDK gave for a 16-byte,
//!   8-aligned dynamic field, so `mbuf + offset` is an [`ExtField`] inside every `rte_mbuf`.
//!   An [`Mbuf`] owns its header and is not `Sync`, so its field is only touched by the
//!   thread holding it, and no Rust reference to those bytes outlives a function here.
//! - **Reference**: a packet whose `active` mask is non-zero holds exactly one counted
//!   reference to the area in its `area` pointer; with mask 0 the pointer means nothing.
//!   An area's bytes are written only by a packet that holds the sole reference
//!   (refcount 1), so a shared area is read-only; every writer copies it first.

use std::ffi::{c_uint, c_void, CString};
use std::mem::{align_of, size_of};
use std::ptr::{self, NonNull};
use std::sync::atomic::{fence, AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::OnceLock;

use dpdk_sys::{rte_mbuf, rte_mempool};

use super::{ExtError, ExtId, ExtInfo, ExtParams, AREA_HEADER_SIZE, DYNFIELD_NAME};
use crate::error::DpdkError;
use crate::mbuf::Mbuf;
use crate::pool::PoolStats;

/// Offset of the extension field in `rte_mbuf`; -1 until the framework has started. This
/// is the one static every hook loads.
static DYN_OFFSET: AtomicI32 = AtomicI32::new(-1);
/// Serial of the started registry; 0 until then. Ids of other registries see nothing.
static LIVE_SERIAL: AtomicU32 = AtomicU32::new(0);
/// Set by the first `start` to get through, cleared again only if that start fails.
static CLAIMED: AtomicBool = AtomicBool::new(false);
/// The started framework. Set once, before `DYN_OFFSET` and `LIVE_SERIAL` are published.
static STATE: OnceLock<State> = OnceLock::new();

struct State {
    pool: NonNull<rte_mempool>,
    pool_name: String,
    area_size: usize,
    dynfield_offset: usize,
    types: Vec<ExtInfo>,
}

// SAFETY: the pool is an rte_mempool with a multi-producer/multi-consumer ring and per-lcore
// caches, usable from any thread; the rest is immutable after start.
unsafe impl Send for State {}
// SAFETY: as above.
unsafe impl Sync for State {}

/// The head of every area; the registered types follow at their offsets.
#[repr(C)]
struct AreaHeader {
    refcnt: AtomicU32,
    _pad: u32,
}

/// The mbuf dynamic field (see the table in the module docs of `ext`).
#[repr(C, align(8))]
struct ExtField {
    area: *mut AreaHeader,
    active: u16,
    _pad: [u16; 3],
}

const _: () = assert!(size_of::<AreaHeader>() == AREA_HEADER_SIZE);
const _: () = assert!(size_of::<ExtField>() == 16 && align_of::<ExtField>() == 8);

#[inline(always)]
fn dyn_offset() -> Option<usize> {
    let off = DYN_OFFSET.load(Ordering::Relaxed);
    if off < 0 {
        None
    } else {
        Some(off as usize)
    }
}

/// `RTE_MBUF_DYNFIELD(m, off, struct ExtField *)`: plain address arithmetic.
#[inline(always)]
fn field(m: *mut rte_mbuf, off: usize) -> *mut ExtField {
    m.cast::<u8>().wrapping_add(off).cast()
}

/// The dynfield offset if `id` belongs to the started registry.
#[inline(always)]
fn live<T>(id: ExtId<T>) -> Option<usize> {
    // Acquire pairs with start's Release: STATE and DYN_OFFSET are visible from here on.
    if id.serial() != LIVE_SERIAL.load(Ordering::Acquire) {
        return None;
    }
    dyn_offset()
}

#[inline(always)]
fn slot<T>(area: *mut AreaHeader, id: ExtId<T>) -> *mut T {
    area.cast::<u8>().wrapping_add(id.offset()).cast()
}

fn state() -> &'static State {
    // A set mask or a live id implies a completed start, which set STATE first.
    STATE.get().expect("extension state used before the framework started")
}

/// Takes a fresh area with refcount 1, or `NoArea`.
fn alloc_area(st: &State) -> Result<*mut AreaHeader, ExtError> {
    let mut obj: *mut c_void = ptr::null_mut();
    // SAFETY: the pool lives for the rest of the process; get_bulk writes one element
    // pointer and returns 0, or writes nothing and returns non-zero.
    if unsafe { dpdk_sys::dp_mempool_get_bulk(st.pool.as_ptr(), &mut obj, 1) } != 0 {
        return Err(ExtError::NoArea);
    }
    let area = obj.cast::<AreaHeader>();
    // SAFETY: a free element of area_size >= 8 bytes, aligned for every registered type
    // (checked at start); it is ours alone until published in a packet's field.
    unsafe { area.write(AreaHeader { refcnt: AtomicU32::new(1), _pad: 0 }) };
    Ok(area)
}

/// Drops one reference; frees the area with the last one.
///
/// # Safety
/// The caller holds a reference to `area` and gives it up: it must not touch the area again.
unsafe fn put_ref(area: *mut AreaHeader) {
    // SAFETY: the caller's reference keeps the area allocated until this point.
    let rc = unsafe { &(*area).refcnt };
    // A count of 1 is our own reference: no other packet can take one (that needs a
    // reference to clone from), so the area is ours to free without a read-modify-write.
    // Acquire makes the last other holder's accesses (its Release decrement) happen before.
    if rc.load(Ordering::Acquire) != 1 {
        if rc.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
    }
    let obj = area.cast::<c_void>();
    // SAFETY: no reference is left, so nothing reads the area any more; it goes back to the
    // pool it came from.
    unsafe { dpdk_sys::dp_mempool_put_bulk(state().pool.as_ptr(), &obj, 1) };
}

/// Makes the packet's area its own (copy-on-write) and returns it. On `NoArea` the
/// packet is unchanged.
///
/// # Safety
/// `f` is the field of a packet the caller holds exclusively, with a non-zero mask.
unsafe fn make_exclusive(st: &State, f: *mut ExtField) -> Result<*mut AreaHeader, ExtError> {
    // SAFETY: (Field) and (Reference): the mask is set, so `old` is a live area we hold.
    let old = unsafe { (*f).area };
    // SAFETY: as above. Acquire: see put_ref.
    if unsafe { (*old).refcnt.load(Ordering::Acquire) } == 1 {
        return Ok(old);
    }
    let new = alloc_area(st)?;
    // SAFETY: both areas are area_size bytes; the old one is shared and so read-only
    // (Reference), the new one is ours alone. Inactive slots are copied as plain bytes.
    unsafe {
        ptr::copy_nonoverlapping(
            old.cast::<u8>().add(AREA_HEADER_SIZE),
            new.cast::<u8>().add(AREA_HEADER_SIZE),
            st.area_size - AREA_HEADER_SIZE,
        );
        (*f).area = new;
        put_ref(old);
    }
    Ok(new)
}

/// The value of extension `id` on `m`, if active.
#[inline]
pub fn get<T>(m: &Mbuf, id: ExtId<T>) -> Option<&T> {
    let off = dyn_offset()?;
    // SAFETY: (Field).
    let (active, area) = unsafe {
        let f = field(m.as_ptr(), off);
        ((*f).active, (*f).area)
    };
    if active & id.bit() == 0 || id.serial() != LIVE_SERIAL.load(Ordering::Relaxed) {
        return None;
    }
    // SAFETY: the bit is set, so (Reference) the packet holds `area`, where a T was written
    // at the id's aligned offset when the bit was set. Nobody writes it while the borrow of
    // `m` lasts: other holders copy first, and this packet's own writes need `&mut Mbuf`.
    Some(unsafe { &*slot(area, id) })
}

/// Whether extension `id` is active on `m`.
#[inline]
pub fn has<T>(m: &Mbuf, id: ExtId<T>) -> bool {
    get(m, id).is_some()
}

/// The mask of `m`'s active extensions (0 when the framework has not started).
#[inline]
pub fn active(m: &Mbuf) -> u16 {
    match dyn_offset() {
        // SAFETY: (Field).
        Some(off) => unsafe { (*field(m.as_ptr(), off)).active },
        None => 0,
    }
}

/// How many packets share `m`'s extension area (0 when it has none). For tests and
/// diagnostics: another lcore may change it at any moment.
pub fn area_refcnt(m: &Mbuf) -> u32 {
    let Some(off) = dyn_offset() else { return 0 };
    // SAFETY: (Field), then (Reference): the area is live while the mask is set.
    unsafe {
        let f = field(m.as_ptr(), off);
        if (*f).active == 0 {
            return 0;
        }
        (*(*f).area).refcnt.load(Ordering::Relaxed)
    }
}

/// The value of extension `id` on `m`, writable; the area is copied first if it is shared
/// with a clone. `Ok(None)` when the extension is not active (nothing is copied then).
///
/// # Errors
/// [`ExtError::NoArea`] when the copy cannot be allocated; the packet is unchanged.
#[inline]
pub fn get_mut<T>(m: &mut Mbuf, id: ExtId<T>) -> Result<Option<&mut T>, ExtError> {
    let Some(off) = live(id) else { return Ok(None) };
    let f = field(m.as_ptr(), off);
    // SAFETY: (Field); `&mut Mbuf` makes the packet ours alone.
    if unsafe { (*f).active } & id.bit() == 0 {
        return Ok(None);
    }
    // SAFETY: mask set, packet held exclusively.
    let area = unsafe { make_exclusive(state(), f)? };
    // SAFETY: the area is this packet's alone (refcount 1) and holds a T at the id's offset;
    // the result borrows `m` mutably, so no other access to it exists while it lives.
    Ok(Some(unsafe { &mut *slot(area, id) }))
}

/// Activates extension `id` on `m` with `T::default()` and returns its value. If it was
/// already active, returns the current value unchanged. Allocates an area for a packet
/// that has none; copies a shared one first.
///
/// # Errors
/// [`ExtError::NoArea`] when no area can be allocated (the packet is unchanged);
/// [`ExtError::NotStarted`] when `id`'s registry is not the started framework.
#[inline]
pub fn add<T: Copy + Default>(m: &mut Mbuf, id: ExtId<T>) -> Result<&mut T, ExtError> {
    activate(m, id, T::default(), false)
}

/// Activates extension `id` on `m` (if needed) and sets its value.
///
/// # Errors
/// As [`add`].
#[inline]
pub fn set<T: Copy>(m: &mut Mbuf, id: ExtId<T>, value: T) -> Result<&mut T, ExtError> {
    activate(m, id, value, true)
}

fn activate<T: Copy>(m: &mut Mbuf, id: ExtId<T>, value: T, overwrite: bool) -> Result<&mut T, ExtError> {
    let off = live(id).ok_or(ExtError::NotStarted)?;
    let st = state();
    let f = field(m.as_ptr(), off);
    // SAFETY: (Field), packet held exclusively through `&mut Mbuf`. Nothing in the field
    // changes before the area is secured, so an error leaves the packet as it was.
    unsafe {
        let active = (*f).active;
        let area = if active == 0 { alloc_area(st)? } else { make_exclusive(st, f)? };
        let p = slot(area, id);
        if active & id.bit() == 0 || overwrite {
            // The area is ours alone; the offset is aligned for T and inside the area.
            p.write(value);
        }
        (*f).area = area;
        (*f).active = active | id.bit();
        // Ours alone, initialised, borrowed from `m` mutably.
        Ok(&mut *p)
    }
}

/// Extension areas taken from the pool in one bulk get (`rte_mempool_get_bulk`, as a burst
/// of mbufs is allocated), for the packets of one burst: [`AreaBatch::set`] gives one to a
/// packet that has none. The areas not given out go back in one put when the batch is
/// dropped. Not `Send`: it belongs to the lcore that took it, like the pool cache it came
/// from.
pub struct AreaBatch {
    areas: [*mut c_void; 32],
    next: usize,
    len: usize,
}

impl std::fmt::Debug for AreaBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AreaBatch").field("left", &(self.len - self.next)).finish()
    }
}

impl Default for AreaBatch {
    fn default() -> Self {
        AreaBatch { areas: [ptr::null_mut(); 32], next: 0, len: 0 }
    }
}

impl AreaBatch {
    /// `n` areas (at most 32), or none when the framework has not started or the pool
    /// cannot give `n` at once; [`AreaBatch::set`] then takes areas one at a time.
    #[inline]
    pub fn take(n: usize) -> AreaBatch {
        let mut b = AreaBatch::default();
        b.refill(n);
        b
    }

    /// Makes sure `n` areas (at most 32) are at hand, taking the shortfall in one bulk get
    /// (nothing when the pool cannot give it at once, or the framework has not started).
    /// A batch kept from burst to burst only goes to the pool when it runs short.
    #[inline]
    pub fn refill(&mut self, n: usize) {
        let n = n.min(32);
        let left = self.len - self.next;
        if left >= n || dyn_offset().is_none() {
            return;
        }
        // Keep what is left at the front, and get enough to make 32 at once (the next
        // bursts then need no get).
        self.areas.copy_within(self.next..self.len, 0);
        self.next = 0;
        self.len = left;
        let want = 32 - left;
        // SAFETY: the framework started (DYN_OFFSET is set after STATE), so its pool lives
        // for the rest of the process; get_bulk writes `want` element pointers after the
        // ones kept and returns 0, or writes nothing and returns non-zero (all or nothing).
        if unsafe { dpdk_sys::dp_mempool_get_bulk(state().pool.as_ptr(), self.areas[left..].as_mut_ptr(), want as u32) } == 0 {
            self.len = 32;
        }
    }

    /// [`set`]: activates extension `id` on `m` with `value`, using an area of the batch
    /// when the packet has none (else as `set` does: its own area, copied first if shared).
    ///
    /// # Errors
    /// As [`set`]; the packet is then unchanged.
    #[inline(always)]
    pub fn set<T: Copy>(&mut self, m: &mut Mbuf, id: ExtId<T>, value: T) -> Result<(), ExtError> {
        let Some(off) = live(id) else { return Err(ExtError::NotStarted) };
        let f = field(m.as_ptr(), off);
        // SAFETY: (Field); the packet is held exclusively through `&mut Mbuf`.
        if self.next == self.len || unsafe { (*f).active } != 0 {
            return set_slow(m, id, value);
        }
        let area = self.areas[self.next].cast::<AreaHeader>();
        self.next += 1;
        // SAFETY: a free element of the pool that this batch owned and now gives away (see
        // alloc_area: area_size bytes, aligned for every type); the packet has no area
        // (mask 0), so it takes this one with the one bit set (Reference).
        unsafe {
            area.write(AreaHeader { refcnt: AtomicU32::new(1), _pad: 0 });
            slot(area, id).write(value);
            (*f).area = area;
            (*f).active = id.bit();
        }
        Ok(())
    }
}

impl AreaBatch {
    /// [`AreaBatch::set`] of the same `value` on each packet of `ms` (at most 32) whose bit
    /// is set in `which`; returns the bits of the packets that could not be set.
    ///
    /// # Panics
    /// When `ms` holds more than 32 packets.
    #[inline]
    pub fn set_each<T: Copy>(&mut self, ms: &mut [Mbuf], which: u32, id: ExtId<T>, value: T) -> u32 {
        assert!(ms.len() <= 32, "set_each takes at most 32 packets");
        let Some(off) = live(id) else { return which };
        let mut failed = 0;
        for i in Bits(which) {
            let Some(m) = ms.get_mut(i) else { break };
            let f = field(m.as_ptr(), off);
            // SAFETY: (Field); the packet is held exclusively through `&mut [Mbuf]`.
            if self.next == self.len || unsafe { (*f).active } != 0 {
                failed |= u32::from(set_slow(m, id, value).is_err()) << i;
                continue;
            }
            let area = self.areas[self.next].cast::<AreaHeader>();
            self.next += 1;
            // SAFETY: as in AreaBatch::set.
            unsafe {
                area.write(AreaHeader { refcnt: AtomicU32::new(1), _pad: 0 });
                slot(area, id).write(value);
                (*f).area = area;
                (*f).active = id.bit();
            }
        }
        failed
    }
}

#[cold]
#[inline(never)]
fn set_slow<T: Copy>(m: &mut Mbuf, id: ExtId<T>, value: T) -> Result<(), ExtError> {
    activate(m, id, value, true).map(drop)
}

impl Drop for AreaBatch {
    fn drop(&mut self) {
        let left = self.len - self.next;
        if left > 0 {
            // SAFETY: the areas not given out are still this batch's, free elements of the
            // pool they came from, which lives for the rest of the process.
            unsafe { dpdk_sys::dp_mempool_put_bulk(state().pool.as_ptr(), self.areas[self.next..].as_ptr(), left as u32) };
        }
    }
}

/// [`set`] on each packet of `ms` whose bit is set in `which` (bit `i` for `ms[i]`; `ms`
/// holds at most 32 packets), with the value `value(i, packet)`, the areas the packets lack
/// taken in one [`AreaBatch`]. Returns the bits of the packets that could not be set (no
/// area; unchanged), or all of `which` when `id`'s registry is not the started framework.
///
/// # Panics
/// When `ms` holds more than 32 packets.
#[inline]
pub fn set_bulk<T: Copy>(ms: &mut [Mbuf], which: u32, id: ExtId<T>, mut value: impl FnMut(usize, &Mbuf) -> T) -> u32 {
    assert!(ms.len() <= 32, "set_bulk takes at most 32 packets");
    let which = if ms.len() == 32 { which } else { which & ((1u32 << ms.len()) - 1) };
    if which == 0 {
        return 0;
    }
    let Some(off) = live(id) else { return which };
    let fresh = Bits(which)
        // SAFETY: (Field).
        .filter(|&i| unsafe { (*field(ms[i].as_ptr(), off)).active } == 0)
        .count();
    let mut batch = AreaBatch::take(fresh);
    let mut failed = 0u32;
    for i in Bits(which) {
        let v = value(i, &ms[i]);
        if batch.set(&mut ms[i], id, v).is_err() {
            failed |= 1 << i;
        }
    }
    failed
}

/// The positions of the set bits of a mask, lowest first.
struct Bits(u32);

impl Iterator for Bits {
    type Item = usize;
    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let i = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(i)
    }
}

/// Deactivates extension `id` on `m`: clears its bit, nothing else, so it cannot fail even
/// on a shared area. The packet's area reference goes with its last extension.
#[inline]
pub fn del<T>(m: &mut Mbuf, id: ExtId<T>) {
    let Some(off) = live(id) else { return };
    let f = field(m.as_ptr(), off);
    // SAFETY: (Field), packet held exclusively; with the last bit goes the (Reference).
    unsafe {
        let active = (*f).active;
        if active & id.bit() == 0 {
            return;
        }
        (*f).active = active & !id.bit();
        if (*f).active == 0 {
            put_ref((*f).area);
        }
    }
}

/// Releases all of `m`'s extensions and its area reference (mask 0 afterwards). Call it
/// before `m` goes, as a raw pointer, to C code that frees it.
#[inline]
pub fn release(m: &mut Mbuf) {
    release_one(m.as_ptr());
}

#[cold]
#[inline(never)]
unsafe fn release_slow(f: *mut ExtField) {
    // SAFETY: the caller checked the mask (Reference) and holds the packet exclusively;
    // the mask is cleared before the reference is given up.
    unsafe {
        (*f).active = 0;
        put_ref((*f).area);
    }
}

/// Hook: the packet `m` leaves Rust (freed, or handed to C): drop its area reference.
/// One static load while not started, then one bit test.
#[inline(always)]
pub(crate) fn release_one(m: *mut rte_mbuf) {
    let Some(off) = dyn_offset() else { return };
    let f = field(m, off);
    // SAFETY: (Field); the caller owns `m` and is giving it up.
    unsafe {
        if (*f).active != 0 {
            release_slow(f);
        }
    }
}

/// Hook: every packet of `ms` leaves Rust. Areas whose last reference goes go back to the
/// pool in bulk (`rte_mempool_put_bulk`), 32 at a time.
#[inline]
pub(crate) fn release_all(ms: &mut [Mbuf]) {
    let Some(off) = dyn_offset() else { return };
    for chunk in ms.chunks_mut(32) {
        let mut which = 0u32;
        for (i, m) in chunk.iter().enumerate() {
            // SAFETY: (Field).
            which |= u32::from(unsafe { (*field(m.as_ptr(), off)).active } != 0) << i;
        }
        if which != 0 {
            release_masked(chunk, which, off);
        }
    }
}

/// Releases the extensions of the packets of `ms` (at most 32) whose bit is set in
/// `which` (those without any are skipped), as [`release`] does for each, with the areas
/// freed in one bulk put. Call it before the packets go to C code that frees them.
///
/// # Panics
/// When `ms` holds more than 32 packets.
#[inline]
pub fn release_bulk(ms: &mut [Mbuf], which: u32) {
    assert!(ms.len() <= 32, "release_bulk takes at most 32 packets");
    let Some(off) = dyn_offset() else { return };
    let which = if ms.len() == 32 { which } else { which & ((1u32 << ms.len()) - 1) };
    if which != 0 {
        release_masked(ms, which, off);
    }
}

#[cold]
fn release_masked(ms: &mut [Mbuf], which: u32, off: usize) {
    let mut free = [ptr::null_mut::<c_void>(); 32];
    let mut n = 0;
    for i in Bits(which) {
        let f = field(ms[i].as_ptr(), off);
        // SAFETY: (Field), each packet held exclusively through the slice; a set mask
        // means the packet holds a reference to `area` (Reference), given up here after
        // the mask is cleared. A count of 1 is ours alone (see put_ref): the area joins the
        // bulk put; a shared one drops our reference.
        unsafe {
            if (*f).active == 0 {
                continue;
            }
            (*f).active = 0;
            let area = (*f).area;
            if (*area).refcnt.load(Ordering::Acquire) == 1 {
                free[n] = area.cast();
                n += 1;
            } else {
                put_ref(area);
            }
        }
    }
    if n > 0 {
        // SAFETY: n areas nobody references any more, back to their pool at once.
        unsafe { dpdk_sys::dp_mempool_put_bulk(state().pool.as_ptr(), free.as_ptr(), n as u32) };
    }
}

/// Hook around `rte_pktmbuf_clone(src)`: the clone shares `src`'s area (refcount + 1) and
/// inherits its mask.
///
/// The mask is hidden while DPDK runs: a clone of a chain that fails half-way frees its
/// partial head, which carries a copy of `src`'s field, and it must reach the pool with
/// mask 0 (the pool invariant). The clone's field is then written here, not left to
/// DPDK's header copy.
#[inline(always)]
pub(crate) fn around_clone(src: *mut rte_mbuf, clone: impl FnOnce() -> *mut rte_mbuf) -> *mut rte_mbuf {
    let Some(off) = dyn_offset() else { return clone() };
    let f = field(src, off);
    // SAFETY: (Field); the caller owns `src` and nobody else reads its header meanwhile
    // (Mbuf is not Sync, and no Rust reference to the field is alive).
    if unsafe { (*f).active } == 0 {
        return clone();
    }
    // SAFETY: as above, mask set.
    unsafe { clone_slow(f, off, clone) }
}

#[cold]
unsafe fn clone_slow(f: *mut ExtField, off: usize, clone: impl FnOnce() -> *mut rte_mbuf) -> *mut rte_mbuf {
    // SAFETY: see around_clone. The new reference is taken while `src` still holds its
    // own, so the area cannot go away; Relaxed suffices for an increment (as Arc::clone).
    unsafe {
        let (active, area) = ((*f).active, (*f).area);
        (*f).active = 0;
        let c = clone();
        (*f).active = active;
        if !c.is_null() {
            let cf = field(c, off);
            (*area).refcnt.fetch_add(1, Ordering::Relaxed);
            (*cf).area = area;
            (*cf).active = active;
        }
        c
    }
}

/// Hook around `rte_pktmbuf_copy(src)` when the copy replaces `src` (unshare): the area
/// reference moves to the copy and `src` is left with mask 0; no refcount changes. If the
/// copy fails, `src` is restored.
#[inline(always)]
pub(crate) fn around_copy(src: *mut rte_mbuf, copy: impl FnOnce() -> *mut rte_mbuf) -> *mut rte_mbuf {
    let Some(off) = dyn_offset() else { return copy() };
    let f = field(src, off);
    // SAFETY: (Field); see around_clone.
    unsafe {
        let active = (*f).active;
        if active == 0 {
            return copy();
        }
        (*f).active = 0;
        let c = copy();
        if c.is_null() {
            (*f).active = active;
        } else {
            let cf = field(c, off);
            (*cf).area = (*f).area;
            (*cf).active = active;
        }
        c
    }
}

/// Whether a `start` has claimed the framework (registration is closed).
pub(super) fn claimed() -> bool {
    CLAIMED.load(Ordering::Acquire)
}

/// The started framework: the area pool and the layout. A cheap `Copy` handle; the
/// framework itself lives until the process exits (dynamic fields cannot be unregistered,
/// and areas may still be out).
#[derive(Clone, Copy)]
pub struct Extensions {
    st: &'static State,
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extensions")
            .field("pool", &self.st.pool_name)
            .field("area_size", &self.st.area_size)
            .field("dynfield_offset", &self.st.dynfield_offset)
            .field("types", &self.st.types)
            .finish()
    }
}

impl Extensions {
    /// The framework, if one has started in this process.
    pub fn current() -> Option<Extensions> {
        STATE.get().map(|st| Extensions { st })
    }

    /// Bytes per area, header included.
    pub fn area_size(&self) -> usize {
        self.st.area_size
    }

    /// The registered types.
    pub fn types(&self) -> &'static [ExtInfo] {
        &self.st.types
    }

    /// Where the extension field sits in `rte_mbuf`.
    pub fn dynfield_offset(&self) -> usize {
        self.st.dynfield_offset
    }

    /// The area pool's name.
    pub fn pool_name(&self) -> &'static str {
        &self.st.pool_name
    }

    /// The raw area pool (for telemetry); it stays owned here.
    pub fn pool_ptr(&self) -> *mut rte_mempool {
        self.st.pool.as_ptr()
    }

    /// Occupancy of the area pool: `in_use` is the number of live areas.
    pub fn stats(&self) -> PoolStats {
        let mp = self.st.pool.as_ptr();
        // SAFETY: the pool lives for the rest of the process; these are reads of its size
        // and of ring and cache counts (avail_count walks them without locking).
        let (size, available) = unsafe { ((*mp).size, dpdk_sys::rte_mempool_avail_count(mp)) };
        let available = available.min(size);
        // SAFETY: as above; the pool's own fields are not written after creation.
        let raw = unsafe { &*mp };
        let cached = if raw.cache_size == 0 || raw.local_cache.is_null() {
            0
        } else {
            (0..dpdk_sys::RTE_MAX_LCORE as usize)
                .map(|i| {
                    // SAFETY: local_cache points at RTE_MAX_LCORE caches when cache_size > 0;
                    // a racy but harmless read of a length another lcore may be updating.
                    unsafe { ptr::read_volatile(&(*raw.local_cache.add(i)).len) }
                })
                .sum()
        };
        PoolStats { size, available, in_use: size - available, cached }
    }
}

/// Creates the pool and the field, then publishes them. See [`super::ExtRegistry::start`].
pub(super) fn start(
    serial: u32,
    area_size: usize,
    max_align: usize,
    types: Vec<ExtInfo>,
    params: &ExtParams,
) -> Result<Extensions, ExtError> {
    if CLAIMED.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return Err(ExtError::AlreadyStarted);
    }
    let (pool, dynfield_offset) = match create(area_size, max_align, params) {
        Ok(made) => made,
        Err(e) => {
            CLAIMED.store(false, Ordering::Release);
            return Err(e);
        }
    };
    let st = State { pool, pool_name: params.name.clone(), area_size, dynfield_offset, types };
    if STATE.set(st).is_err() {
        // CLAIMED lets one start through, and a successful one never clears it.
        unreachable!("extension framework started twice");
    }
    DYN_OFFSET.store(dynfield_offset as i32, Ordering::Release);
    LIVE_SERIAL.store(serial, Ordering::Release);
    Ok(Extensions { st: state() })
}

unsafe extern "C" fn count_misaligned(_mp: *mut rte_mempool, opaque: *mut c_void, obj: *mut c_void, _idx: c_uint) {
    // SAFETY: `opaque` is the (align, misaligned) pair passed by create(), alive for the
    // whole rte_mempool_obj_iter call.
    let (align, bad) = unsafe { &mut *opaque.cast::<(usize, usize)>() };
    if !(obj as usize).is_multiple_of(*align) {
        *bad += 1;
    }
}

fn create(area_size: usize, max_align: usize, params: &ExtParams) -> Result<(NonNull<rte_mempool>, usize), ExtError> {
    let name =
        CString::new(params.name.as_str()).map_err(|_| ExtError::InvalidParams { reason: "pool name contains NUL".into() })?;
    // SAFETY: `name` outlives the call; the numbers were checked by ExtParams::check. No
    // constructors. DPDK copies the name and returns a pool we own, or NULL with rte_errno.
    let raw = unsafe {
        dpdk_sys::rte_mempool_create(
            name.as_ptr(),
            params.areas,
            area_size as u32,
            params.cache,
            0,
            None,
            ptr::null_mut(),
            None,
            ptr::null_mut(),
            params.socket.0,
            0,
        )
    };
    let pool = NonNull::new(raw).ok_or_else(|| DpdkError::last("rte_mempool_create"))?;
    let free = |e: ExtError| {
        // SAFETY: nothing has been taken from the pool yet.
        unsafe { dpdk_sys::rte_mempool_free(pool.as_ptr()) };
        Err(e)
    };

    // Elements are cache-line aligned without RTE_MEMPOOL_F_NO_CACHE_ALIGN; make sure,
    // since every typed access relies on it.
    let mut check = (max_align, 0usize);
    // SAFETY: the callback only reads the element address and writes `check`, which
    // outlives the call.
    unsafe { dpdk_sys::rte_mempool_obj_iter(pool.as_ptr(), Some(count_misaligned), ptr::addr_of_mut!(check).cast()) };
    if check.1 > 0 {
        return free(ExtError::InvalidParams { reason: format!("{} areas are not {max_align}-byte aligned", check.1) });
    }

    let mut desc =
        dpdk_sys::rte_mbuf_dynfield { size: size_of::<ExtField>(), align: align_of::<ExtField>(), ..Default::default() };
    for (d, s) in desc.name.iter_mut().zip(DYNFIELD_NAME.bytes()) {
        *d = s as std::ffi::c_char;
    }
    // SAFETY: `desc` is a valid, NUL-terminated description that DPDK copies.
    let off = unsafe { dpdk_sys::rte_mbuf_dynfield_register(&desc) };
    if off < 0 {
        return free(DpdkError::last("rte_mbuf_dynfield_register").into());
    }
    Ok((pool, off as usize))
}
