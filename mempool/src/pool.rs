//! [`Pool`]: a pktmbuf pool on one NUMA socket, and how big it must be.
//!
//! Memory comes from EAL: hugepages (2 MiB or 1 GiB) normally, anonymous memory under
//! `--no-huge`. Each lcore keeps a cache of `cache` mbufs in front of the shared ring, so
//! most allocations and frees touch no shared cache line (like the kernel's per-CPU
//! napi_alloc_cache). A pool is freed only when every mbuf has come back: dropping a pool
//! that still has mbufs out leaks it on purpose rather than free memory still in use.

use std::ffi::{CStr, CString};
use std::fmt;
use std::ptr::NonNull;

use dpdk_sys::{rte_mempool, RTE_MEMPOOL_CACHE_MAX_SIZE, RTE_PKTMBUF_HEADROOM};

use crate::burst::Burst;
use crate::error::{DpdkError, PoolError};

/// A NUMA socket id as EAL numbers them; [`SocketId::ANY`] lets DPDK choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(pub i32);

impl SocketId {
    /// `SOCKET_ID_ANY`.
    pub const ANY: SocketId = SocketId(-1);
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == SocketId::ANY {
            f.write_str("socket-any")
        } else {
            write!(f, "socket{}", self.0)
        }
    }
}

/// What `rte_pktmbuf_pool_create` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolParams {
    /// Pool name, unique in the process (at most 25 characters).
    pub name: String,
    /// Number of mbufs.
    pub size: u32,
    /// Per-lcore cache size: at most 512 and at most size / 1.5.
    pub cache: u32,
    /// Application private area after each `rte_mbuf`, a multiple of 8.
    pub priv_size: u16,
    /// Data room per mbuf, headroom (128) included.
    pub data_room: u16,
    /// NUMA socket to allocate on.
    pub socket: SocketId,
}

impl PoolParams {
    /// Checks the parameters against the rules `rte_pktmbuf_pool_create` applies (name
    /// length, cache at most 512 and at most size / 1.5, `priv_size` a multiple of 8, room
    /// after the headroom), so a config can be refused before EAL starts.
    ///
    /// # Errors
    /// [`PoolError::Invalid`] saying which rule failed.
    pub fn check(&self) -> Result<(), PoolError> {
        let invalid = |reason: String| Err(PoolError::Invalid { pool: self.name.clone(), reason });
        if self.name.is_empty() || self.name.len() > 25 {
            return invalid(format!("name must be 1..=25 characters, got {}", self.name.len()));
        }
        if self.cache > RTE_MEMPOOL_CACHE_MAX_SIZE {
            return invalid(format!("cache {} is above {RTE_MEMPOOL_CACHE_MAX_SIZE}", self.cache));
        }
        if u64::from(self.cache) * 3 > u64::from(self.size) * 2 {
            return invalid(format!("cache {} is above size / 1.5 (size {})", self.cache, self.size));
        }
        if !self.priv_size.is_multiple_of(8) {
            return invalid(format!("priv_size {} is not a multiple of 8", self.priv_size));
        }
        if u32::from(self.data_room) <= RTE_PKTMBUF_HEADROOM {
            return invalid(format!(
                "data_room {} leaves no room after the {RTE_PKTMBUF_HEADROOM}-byte headroom",
                self.data_room
            ));
        }
        Ok(())
    }
}

/// The inputs of l3fwd's pool sizing formula.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSizing {
    /// Ports whose queues draw on the pool.
    pub ports: u32,
    /// RX queues per port.
    pub rx_queues: u32,
    /// RX descriptors per queue.
    pub rx_desc: u32,
    /// TX queues per port.
    pub tx_queues: u32,
    /// TX descriptors per queue.
    pub tx_desc: u32,
    /// Lcores that allocate from or free to the pool.
    pub lcores: u32,
    /// Mbufs in flight per lcore per port (the burst size).
    pub burst: u32,
    /// Per-lcore cache size.
    pub cache: u32,
}

/// The fewest mbufs [`mbufs_needed`] asks for.
pub const MIN_POOL_SIZE: u32 = 8192;

/// l3fwd's formula: every RX descriptor filled, every TX descriptor in flight, a burst per
/// lcore and port in hand, every lcore cache full; and never fewer than [`MIN_POOL_SIZE`].
pub fn mbufs_needed(s: PoolSizing) -> u32 {
    let n =
        s.ports * s.rx_queues * s.rx_desc + s.ports * s.lcores * s.burst + s.ports * s.tx_queues * s.tx_desc + s.lcores * s.cache;
    n.max(MIN_POOL_SIZE)
}

/// A snapshot of a pool's occupancy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Mbufs in the pool in all.
    pub size: u32,
    /// Free mbufs: in the shared ring plus in every lcore cache.
    pub available: u32,
    /// Mbufs out of the pool (`size - available`).
    pub in_use: u32,
    /// Free mbufs sitting in lcore caches.
    pub cached: u32,
}

/// A pktmbuf pool.
pub struct Pool {
    raw: NonNull<rte_mempool>,
    name: String,
    socket: SocketId,
}

// SAFETY: rte_mempool is built for concurrent use: its ring is multi-producer/multi-consumer
// and each EAL lcore has its own cache, indexed by the calling thread's lcore id.
unsafe impl Send for Pool {}
// SAFETY: as above; every method takes &self and DPDK synchronises the shared parts.
unsafe impl Sync for Pool {}

impl Pool {
    /// Creates a pool with `rte_pktmbuf_pool_create`.
    ///
    /// # Errors
    /// [`PoolError::Invalid`] for parameters DPDK would refuse, [`PoolError::Dpdk`] when DPDK
    /// fails (ENOMEM when the socket's memory is short, EEXIST for a duplicate name).
    pub fn create(p: &PoolParams) -> Result<Pool, PoolError> {
        p.check()?;
        let cname = CString::new(p.name.as_str())
            .map_err(|_| PoolError::Invalid { pool: p.name.clone(), reason: "name contains NUL".into() })?;
        // SAFETY: cname outlives the call; the numbers were checked above. DPDK copies the
        // name and returns a pool we own, or NULL with rte_errno set.
        let raw =
            unsafe { dpdk_sys::rte_pktmbuf_pool_create(cname.as_ptr(), p.size, p.cache, p.priv_size, p.data_room, p.socket.0) };
        let raw = NonNull::new(raw).ok_or_else(|| DpdkError::last("rte_pktmbuf_pool_create"))?;
        Ok(Pool { raw, name: p.name.clone(), socket: p.socket })
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The socket it was asked for.
    pub fn socket(&self) -> SocketId {
        self.socket
    }

    /// The raw pool, for DPDK calls such as `rte_eth_rx_queue_setup`. It stays owned here.
    pub fn as_ptr(&self) -> *mut rte_mempool {
        self.raw.as_ptr()
    }

    fn raw(&self) -> &rte_mempool {
        // SAFETY: valid from create() until drop.
        unsafe { self.raw.as_ref() }
    }

    /// Mbufs in the pool in all.
    pub fn size(&self) -> u32 {
        self.raw().size
    }

    /// Free mbufs (shared ring and all lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: a read-only walk of the pool's ring count and cache lengths.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// Whether every mbuf is back.
    pub fn is_full(&self) -> bool {
        self.available() == self.size()
    }

    /// Occupancy, including the mbufs parked in lcore caches.
    pub fn stats(&self) -> PoolStats {
        let size = self.size();
        let available = self.available().min(size);
        PoolStats { size, available, in_use: size - available, cached: self.cached() }
    }

    fn cached(&self) -> u32 {
        let raw = self.raw();
        if raw.cache_size == 0 || raw.local_cache.is_null() {
            return 0;
        }
        (0..dpdk_sys::RTE_MAX_LCORE as usize)
            .map(|i| {
                // SAFETY: local_cache points at RTE_MAX_LCORE caches when cache_size > 0; the
                // length is a racy but harmless read of a u32 another lcore may be updating.
                unsafe { std::ptr::read_volatile(&(*raw.local_cache.add(i)).len) }
            })
            .sum()
    }

    /// Fills `burst` with `n` new mbufs in one bulk call, or takes none.
    ///
    /// # Errors
    /// [`PoolError::Exhausted`] when fewer than `n` are free, or `n` exceeds the burst's room.
    pub fn alloc_bulk<const N: usize>(&self, burst: &mut Burst<N>, n: usize) -> Result<(), PoolError> {
        let exhausted = || PoolError::Exhausted { pool: self.name.clone(), wanted: n };
        if n > burst.spare() {
            return Err(exhausted());
        }
        let mut ok = true;
        // SAFETY: rte_pktmbuf_alloc_bulk writes exactly n owned, reset mbufs into the slots
        // and returns 0, or writes nothing and returns non-zero; fill_raw records n or 0.
        unsafe {
            burst.fill_raw(|slots, _room| {
                ok = dpdk_sys::dp_pktmbuf_alloc_bulk(self.raw.as_ptr(), slots, n as u32) == 0;
                if ok {
                    n as u16
                } else {
                    0
                }
            });
        }
        if ok {
            Ok(())
        } else {
            Err(exhausted())
        }
    }

    /// The name DPDK holds for this pool (for checking it is registered).
    pub fn dpdk_name(&self) -> String {
        // SAFETY: rte_mempool.name is a NUL-terminated array inside the pool.
        unsafe { CStr::from_ptr(self.raw().name.as_ptr()) }.to_string_lossy().into_owned()
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").field("name", &self.name).field("socket", &self.socket).finish()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if !self.is_full() {
            // Mbufs are still out: freeing the memory under them would be a use-after-free.
            // The caller reports the leak (see stats()); the pool memory goes with the process.
            return;
        }
        // SAFETY: every mbuf is back, so nothing points into the pool any more.
        unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l3fwd_formula() {
        let s =
            PoolSizing { ports: 2, rx_queues: 2, rx_desc: 2048, tx_queues: 2, tx_desc: 2048, lcores: 2, burst: 32, cache: 256 };
        assert_eq!(mbufs_needed(s), 2 * 2 * 2048 + 2 * 2 * 32 + 2 * 2 * 2048 + 2 * 256);
        let tiny = PoolSizing { ports: 1, rx_queues: 1, rx_desc: 64, tx_queues: 1, tx_desc: 64, lcores: 1, burst: 32, cache: 32 };
        assert_eq!(mbufs_needed(tiny), 8192);
    }

    #[test]
    fn params_checked_before_dpdk() {
        let ok = PoolParams { name: "p".into(), size: 4096, cache: 256, priv_size: 0, data_room: 2176, socket: SocketId::ANY };
        assert!(ok.check().is_ok());
        for (bad, what) in [
            (PoolParams { cache: 600, ..ok.clone() }, "above 512"),
            (PoolParams { size: 300, ..ok.clone() }, "size / 1.5"),
            (PoolParams { priv_size: 4, ..ok.clone() }, "multiple of 8"),
            (PoolParams { data_room: 128, ..ok.clone() }, "headroom"),
            (PoolParams { name: "x".repeat(26), ..ok.clone() }, "1..=25"),
        ] {
            let err = bad.check().unwrap_err().to_string();
            assert!(err.contains(what), "{err}");
        }
    }
}
