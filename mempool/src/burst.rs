//! [`Burst`]: a fixed-capacity array of owned mbufs, reused round after round.
//!
//! It never allocates: the storage is an inline array. The first `len` slots hold owned
//! mbufs; the rest are uninitialised. DPDK's burst functions fill it directly
//! ([`Burst::fill_raw`]) and take from its front ([`Burst::give_raw`]); whatever is left when
//! it is cleared or dropped is freed in one `rte_pktmbuf_free_bulk` call, after releasing
//! the packets' extensions ([`crate::ext`]). A TX path calls [`Burst::release_extensions`]
//! before handing the burst to `rte_eth_tx_burst`.

use std::mem::MaybeUninit;

use dpdk_sys::rte_mbuf;

use crate::mbuf::Mbuf;

/// The largest burst the forwarder uses, and the default capacity.
pub const MAX_BURST: usize = 32;

/// Up to `N` owned mbufs.
pub struct Burst<const N: usize = MAX_BURST> {
    len: usize,
    slots: [MaybeUninit<Mbuf>; N],
}

impl<const N: usize> Default for Burst<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> std::fmt::Debug for Burst<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Burst").field("len", &self.len).field("capacity", &N).finish()
    }
}

impl<const N: usize> Burst<N> {
    const FITS_U16: () = assert!(N > 0 && N <= u16::MAX as usize, "a burst holds 1..=65535 mbufs");

    /// An empty burst.
    pub fn new() -> Self {
        let () = Self::FITS_U16;
        Burst { len: 0, slots: [const { MaybeUninit::uninit() }; N] }
    }

    /// Number of mbufs held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no mbuf is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many mbufs fit.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Free slots left.
    pub fn spare(&self) -> usize {
        N - self.len
    }

    /// Adds an mbuf at the end, or hands it back when the burst is full.
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == N {
            return Err(m);
        }
        self.slots[self.len].write(m);
        self.len += 1;
        Ok(())
    }

    /// Removes the last mbuf.
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: slot `len` was initialised and is now outside the initialised prefix, so it
        // is read exactly once.
        Some(unsafe { self.slots[self.len].assume_init_read() })
    }

    /// The mbufs held.
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: the first len slots are initialised; MaybeUninit<Mbuf> has Mbuf's layout.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr().cast(), self.len) }
    }

    /// The mbufs held, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: as in as_slice, and &mut self makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.slots.as_mut_ptr().cast(), self.len) }
    }

    /// Keeps the mbufs for which `keep` is true, in order, and hands each other one to
    /// `reject` (which may drop it, count it, or pass it on).
    pub fn retain(&mut self, mut keep: impl FnMut(&mut Mbuf) -> bool, mut reject: impl FnMut(Mbuf)) {
        let len = self.len;
        // While compacting, mark the burst empty so a panic in a callback leaks at worst
        // instead of freeing twice.
        self.len = 0;
        let mut kept = 0;
        for i in 0..len {
            // SAFETY: slot i < len is initialised and read once; it is either written back to
            // slot `kept` (<= i) or given to `reject`.
            let mut m = unsafe { self.slots[i].assume_init_read() };
            if keep(&mut m) {
                self.slots[kept].write(m);
                kept += 1;
            } else {
                reject(m);
            }
        }
        self.len = kept;
    }

    /// Takes every mbuf out, front to back. Those the iterator has not yielded when it is
    /// dropped are freed.
    pub fn drain(&mut self) -> Drain<'_, N> {
        let end = self.len;
        // The burst is empty from now on; the Drain owns slots 0..end.
        self.len = 0;
        Drain { burst: self, next: 0, end }
    }

    /// Moves as many mbufs as fit from the front of `other` to the end of this burst, in
    /// order; returns how many.
    pub fn move_from<const M: usize>(&mut self, other: &mut Burst<M>) -> usize {
        let n = self.spare().min(other.len);
        if n == 0 {
            return 0;
        }
        // SAFETY: the first n slots of `other` are initialised and are copied bitwise into
        // our n free slots; `other` then shifts its remaining mbufs over them, so each mbuf
        // is owned by exactly one burst afterwards.
        unsafe {
            let src = other.slots.as_ptr();
            std::ptr::copy_nonoverlapping(src, self.slots.as_mut_ptr().add(self.len), n);
            self.len += n;
            let rest = other.len - n;
            std::ptr::copy(src.add(n), other.slots.as_mut_ptr(), rest);
            other.len = rest;
        }
        n
    }

    /// Frees every mbuf held, in one bulk call (releasing their extensions first).
    pub fn clear(&mut self) {
        if self.len == 0 {
            return;
        }
        crate::ext::release_all(self.as_mut_slice());
        // SAFETY: the first len slots are owned mbuf pointers (Mbuf is repr(transparent));
        // rte_pktmbuf_free_bulk drops one reference on each; len is reset so none is reused.
        unsafe { dpdk_sys::rte_pktmbuf_free_bulk(self.slots.as_mut_ptr().cast(), self.len as u32) };
        self.len = 0;
    }

    /// Releases the extensions of every mbuf held (masks become 0; areas are freed with
    /// their last reference). Call it right before giving the burst to code that frees the
    /// mbufs in C, above all `rte_eth_tx_burst`: the PMD frees them after TX completion with
    /// plain `rte_pktmbuf_free`. Costs one static load while the framework has not started,
    /// one bit test per packet without extensions.
    #[inline]
    pub fn release_extensions(&mut self) {
        crate::ext::release_all(self.as_mut_slice());
    }

    /// Lets a DPDK function write mbuf pointers into the free slots: `f(slots, room)` must
    /// store `n <= room` owned mbuf pointers at `slots[0..n]` and return `n`.
    ///
    /// # Safety
    /// `f` must honour that contract: every pointer it reports is a valid mbuf whose one
    /// reference passes to this burst.
    pub unsafe fn fill_raw(&mut self, f: impl FnOnce(*mut *mut rte_mbuf, u16) -> u16) -> usize {
        let room = (N - self.len) as u16;
        let slots = self.slots.as_mut_ptr().add(self.len).cast::<*mut rte_mbuf>();
        let n = usize::from(f(slots, room)).min(usize::from(room));
        self.len += n;
        n
    }

    /// Offers the held mbufs to a DPDK function that takes ownership of a prefix of them:
    /// `f(mbufs, len)` returns how many, `n`, it took from the front. The rest move to the
    /// front and stay in the burst. Extensions go along; if `f` frees the mbufs in C (a TX
    /// queue), call [`Burst::release_extensions`] first.
    ///
    /// # Safety
    /// `f` must take ownership of exactly the first `n` pointers it reports and must not keep
    /// or free any other.
    pub unsafe fn give_raw(&mut self, f: impl FnOnce(*mut *mut rte_mbuf, u16) -> u16) -> usize {
        if self.len == 0 {
            return 0;
        }
        let ptr = self.slots.as_mut_ptr().cast::<*mut rte_mbuf>();
        let n = usize::from(f(ptr, self.len as u16)).min(self.len);
        let rest = self.len - n;
        if rest > 0 && n > 0 {
            // The taken slots are no longer ours: move the remaining pointers over them.
            std::ptr::copy(ptr.add(n), ptr, rest);
        }
        self.len = rest;
        n
    }
}

/// The iterator of [`Burst::drain`].
pub struct Drain<'a, const N: usize> {
    burst: &'a mut Burst<N>,
    next: usize,
    end: usize,
}

impl<const N: usize> Iterator for Drain<'_, N> {
    type Item = Mbuf;

    #[inline]
    fn next(&mut self) -> Option<Mbuf> {
        if self.next == self.end {
            return None;
        }
        // SAFETY: slots next..end are initialised and owned by the Drain; each is read once.
        let m = unsafe { self.burst.slots[self.next].assume_init_read() };
        self.next += 1;
        Some(m)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.end - self.next, Some(self.end - self.next))
    }
}

impl<const N: usize> Drop for Drain<'_, N> {
    fn drop(&mut self) {
        let rest = self.end - self.next;
        if rest > 0 {
            // SAFETY: slots next..end are owned mbufs not yet yielded (initialised, with
            // Mbuf's layout); they are released and then freed once here.
            unsafe {
                let first = self.burst.slots.as_mut_ptr().add(self.next);
                crate::ext::release_all(std::slice::from_raw_parts_mut(first.cast::<Mbuf>(), rest));
                dpdk_sys::rte_pktmbuf_free_bulk(first.cast(), rest as u32)
            };
        }
    }
}

impl<const N: usize> Drop for Burst<N> {
    fn drop(&mut self) {
        self.clear();
    }
}

impl<const N: usize> Extend<Mbuf> for Burst<N> {
    /// Pushes until full; mbufs that do not fit are dropped (freed).
    fn extend<I: IntoIterator<Item = Mbuf>>(&mut self, iter: I) {
        for m in iter {
            if self.push(m).is_err() {
                break;
            }
        }
    }
}
