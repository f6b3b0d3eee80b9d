//! [`MbufRing`]: an `rte_ring` that carries owned mbufs between lcores or into ring ports.
//!
//! Enqueue moves mbufs out of a [`Burst`] into the ring; dequeue moves them back. Dropping
//! the ring frees whatever it still holds, then the ring.

use std::ffi::CString;
use std::ptr::NonNull;

use dpdk_sys::rte_ring;

use crate::burst::Burst;
use crate::error::{DpdkError, RingError};
use crate::pool::SocketId;

/// A multi-producer, multi-consumer ring of mbufs.
pub struct MbufRing {
    raw: NonNull<rte_ring>,
    name: String,
}

// SAFETY: the ring is created without RING_F_SP_ENQ / RING_F_SC_DEQ, so DPDK makes enqueue
// and dequeue safe from any number of threads at once.
unsafe impl Send for MbufRing {}
// SAFETY: as above.
unsafe impl Sync for MbufRing {}

impl MbufRing {
    /// Creates a ring holding up to `capacity - 1` mbufs (`capacity` a power of two).
    ///
    /// # Errors
    /// [`RingError::Invalid`] for a bad name or capacity, [`RingError::Dpdk`] when DPDK fails.
    pub fn create(name: &str, capacity: u32, socket: SocketId) -> Result<MbufRing, RingError> {
        let invalid = |reason: &'static str| RingError::Invalid { ring: name.to_owned(), reason };
        if !capacity.is_power_of_two() {
            return Err(invalid("ring capacity must be a power of two"));
        }
        let cname = CString::new(name).map_err(|_| invalid("name contains NUL"))?;
        // SAFETY: cname outlives the call; flags 0 = MP/MC. Returns an owned ring or NULL.
        let raw = unsafe { dpdk_sys::rte_ring_create(cname.as_ptr(), capacity, socket.0, 0) };
        let raw = NonNull::new(raw)
            .ok_or_else(|| RingError::Dpdk { ring: name.to_owned(), error: DpdkError::last("rte_ring_create") })?;
        Ok(MbufRing { raw, name: name.to_owned() })
    }

    /// The ring's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The raw ring, for DPDK calls such as `rte_eth_from_rings`. It stays owned here, and
    /// must outlive any port built on it.
    pub fn as_ptr(&self) -> *mut rte_ring {
        self.raw.as_ptr()
    }

    /// Mbufs in the ring now.
    pub fn len(&self) -> usize {
        // SAFETY: a read of the ring's head and tail indexes.
        unsafe { dpdk_sys::dp_ring_count(self.raw.as_ptr()) as usize }
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves as many mbufs as fit from the front of `burst` into the ring; returns how many.
    /// Those that did not fit stay in the burst.
    pub fn enqueue<const N: usize>(&self, burst: &mut Burst<N>) -> usize {
        // SAFETY: enqueue_burst stores the first n pointers and so takes their ownership;
        // give_raw forgets exactly those.
        unsafe {
            burst.give_raw(|ptr, len| {
                dpdk_sys::dp_ring_enqueue_burst(self.raw.as_ptr(), ptr.cast(), u32::from(len), std::ptr::null_mut()) as u16
            })
        }
    }

    /// Moves up to the burst's spare room of mbufs out of the ring; returns how many.
    pub fn dequeue<const N: usize>(&self, burst: &mut Burst<N>) -> usize {
        // SAFETY: dequeue_burst writes n <= room pointers that were enqueued as owned mbufs;
        // their ownership passes to the burst.
        unsafe {
            burst.fill_raw(|slots, room| {
                dpdk_sys::dp_ring_dequeue_burst(self.raw.as_ptr(), slots.cast(), u32::from(room), std::ptr::null_mut()) as u16
            })
        }
    }
}

impl std::fmt::Debug for MbufRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MbufRing").field("name", &self.name).field("len", &self.len()).finish()
    }
}

impl Drop for MbufRing {
    fn drop(&mut self) {
        let mut burst: Burst = Burst::new();
        while self.dequeue(&mut burst) > 0 {
            burst.clear();
        }
        // SAFETY: the ring is empty and owned; nothing else uses it after drop.
        unsafe { dpdk_sys::rte_ring_free(self.raw.as_ptr()) }
    }
}
