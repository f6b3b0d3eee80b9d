//! Packet extensions: typed, refcounted per-packet metadata, after the kernel's `skb_ext`.
//!
//! # Model
//!
//! - Extension types are registered once, at start-up, in an [`ExtRegistry`]: each gets a
//!   typed [`ExtId<T>`] (a bit in a 16-bit mask and a fixed, aligned offset inside one
//!   *extension area*). [`ExtRegistry::start`] then creates the area pool and registers the
//!   mbuf dynamic field; after that no type can be added, and there is one framework per
//!   process (dynamic fields are process-global).
//! - A packet carries its extension state in the mbuf itself, in one 16-byte DPDK dynamic
//!   field named [`DYNFIELD_NAME`] (8-byte aligned):
//!
//!   | bytes  | field    | meaning                                                       |
//!   |--------|----------|---------------------------------------------------------------|
//!   | 0..8   | `area`   | pointer to the packet's extension area; undefined when `active == 0` |
//!   | 8..10  | `active` | bitmask of the packet's active extensions (bit `i` = type `i`) |
//!   | 10..16 | padding  |                                                               |
//!
//!   Because the mask lives in the mbuf and not in the area, [`del`] only clears a bit and
//!   cannot fail, even when the area is shared with a clone.
//! - An area is one element of a dedicated `rte_mempool` (per-lcore cache, like the kernel's
//!   single `kmem_cache` for the whole `skb_ext`): an 8-byte header holding an atomic
//!   refcount, then every registered type at its offset.
//! - [`Mbuf::clone_in`](crate::Mbuf::clone_in) shares the area (refcount + 1) and the clone inherits the mask.
//!   [`Mbuf::unshare`](crate::Mbuf::unshare) moves the area to the copy. Writing ([`add`], [`set`], [`get_mut`]) to
//!   a shared area first copies it (copy-on-write) and drops one reference on the old one;
//!   if no area is free, [`ExtError::NoArea`] and the packet is unchanged.
//! - A packet's reference is released whenever it leaves Rust: dropping an [`Mbuf`](crate::Mbuf),
//!   [`Burst::clear`](crate::Burst::clear) and its drop, a dropped
//!   [`Drain`](crate::Drain), a dropped [`MbufRing`](crate::MbufRing), and
//!   [`Burst::release_extensions`](crate::Burst::release_extensions), which the TX path must
//!   call right before `rte_eth_tx_burst` (the PMD frees mbufs with plain C code after TX
//!   completion). Afterwards the mask is 0. Invariant: every mbuf sitting in a pool has mask
//!   0 (`rte_pktmbuf_init` zeroes new mbufs and every free path clears the mask), so a packet
//!   fresh from RX needs no initialisation.
//! - The last reference is released without an atomic read-modify-write (a load that sees
//!   1 means nobody else can hold it), as `skb_ext_put` does.
//! - Cost: a packet without extensions pays one bit test on clone, free and TX hand-off;
//!   while the framework has not started, every hook is one load of a static and a branch.
//!
//! # Example
//!
//! ```no_run
//! use mempool::{ext, ExtParams, ExtRegistry, Mbuf, Pool};
//!
//! /// RX timestamp and where the packet arrived.
//! #[derive(Clone, Copy, Default)]
//! struct Trace { tsc: u64, lcore: u16, queue: u16 }
//!
//! # fn demo(pool: &Pool, mut m: Mbuf) -> Result<(), Box<dyn std::error::Error>> {
//! // At start-up, after EAL, before the workers:
//! let mut registry = ExtRegistry::new();
//! let trace = registry.register::<Trace>("trace")?;
//! let exts = registry.start(&ExtParams::default())?;
//!
//! // On a worker:
//! ext::add(&mut m, trace)?.tsc = 12345;            // Default, then written
//! let mirror = m.clone_in(pool)?;                   // shares the area
//! ext::get_mut(&mut m, trace)?.unwrap().queue = 1;  // copies it first (COW)
//! assert_eq!(ext::get(&mirror, trace).unwrap().queue, 0);
//! ext::del(&mut m, trace);                          // clears a bit; cannot fail
//! drop((m, mirror));                                // areas go back with the packets
//! assert_eq!(exts.stats().in_use, 0);
//! # Ok(())
//! # }
//! ```
//!
//! # Limits and rules
//!
//! - At most [`MAX_TYPES`] types, each `Copy + Send + Sync + 'static` with an alignment of
//!   at most [`MAX_ALIGN`]; the area is at most [`MAX_AREA_SIZE`] bytes.
//! - Extension state lives in the first segment of a chain only.
//! - C code that copies mbuf headers (`rte_pktmbuf_clone`/`rte_pktmbuf_copy` outside
//!   [`Mbuf`](crate::Mbuf)) must only see packets whose extensions were released; [`Mbuf::into_raw`](crate::Mbuf::into_raw)
//!   keeps them (the pointer may come back through [`Mbuf::from_raw`](crate::Mbuf::from_raw)), so call [`release`]
//!   first when the packet goes to C code that frees it.
//!
//! # When an extension is the right tool
//!
//! As for `skb_ext`: when the data is tied to the packet's lifetime, should be freed with
//! it, is not needed by ordinary forwarding, and needs nothing more than a byte copy on
//! clone and nothing at all on free. A single flag is not worth an extension.

use std::fmt;
use std::marker::PhantomData;

use crate::error::DpdkError;
use crate::pool::SocketId;

#[allow(unsafe_code)]
mod area;
mod registry;

pub use area::{active, add, area_refcnt, del, get, get_mut, has, release, release_bulk, set, set_bulk, AreaBatch, Extensions};
pub(crate) use area::{around_clone, around_copy, release_all, release_one};
pub use registry::ExtRegistry;

/// The most extension types a process can register (the mask is a `u16`).
pub const MAX_TYPES: usize = 16;
/// The largest alignment an extension type may have (areas are cache-line aligned).
pub const MAX_ALIGN: usize = 64;
/// The largest extension area, header included: areas are copied whole on copy-on-write.
pub const MAX_AREA_SIZE: usize = 4096;
/// Bytes at the start of each area before the first extension (the refcount, padded).
pub const AREA_HEADER_SIZE: usize = 8;
/// The name of the mbuf dynamic field holding a packet's extension state.
pub const DYNFIELD_NAME: &str = "dataplane_ext";

/// Errors of the extension framework.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ExtError {
    /// The registry already holds [`MAX_TYPES`] types.
    #[error("at most {max} extension types can be registered")]
    TooManyTypes {
        /// The limit.
        max: usize,
    },
    /// The framework has started: no type can be registered and it cannot start again.
    #[error("the extension framework has already started")]
    AlreadyStarted,
    /// Two types registered under one name.
    #[error("extension type {name:?} is already registered")]
    Duplicate {
        /// The name.
        name: String,
    },
    /// A type that cannot go into an area.
    #[error("extension type {name:?}: {reason}")]
    BadType {
        /// The type's registered name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Area pool parameters that DPDK would refuse, caught before calling it.
    #[error("extension areas: {reason}")]
    InvalidParams {
        /// What is wrong.
        reason: String,
    },
    /// The id's registry is not the started framework (it has not started, or another
    /// registry did).
    #[error("the extension framework was not started with this id's registry")]
    NotStarted,
    /// No area could be allocated (area pool exhausted); the packet is unchanged.
    #[error("no free extension area")]
    NoArea,
    /// A DPDK call failed.
    #[error(transparent)]
    Dpdk(#[from] DpdkError),
}

/// The typed handle of one registered extension type: its bit and offset.
///
/// Only meaningful with the registry that minted it, once that registry has started;
/// with any other, operations see no extension (and [`add`] fails with
/// [`ExtError::NotStarted`]).
pub struct ExtId<T> {
    index: u8,
    offset: u16,
    serial: u32,
    _type: PhantomData<fn() -> T>,
}

impl<T> ExtId<T> {
    pub(crate) fn new(index: u8, offset: u16, serial: u32) -> Self {
        ExtId { index, offset, serial, _type: PhantomData }
    }

    /// The type's index: its bit in the active mask is `1 << index`.
    pub fn index(self) -> u8 {
        self.index
    }

    /// The type's bit in the active mask.
    pub fn bit(self) -> u16 {
        1 << self.index
    }

    /// The byte offset of the value inside an area.
    pub fn offset(self) -> usize {
        usize::from(self.offset)
    }

    pub(crate) fn serial(self) -> u32 {
        self.serial
    }
}

impl<T> Clone for ExtId<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for ExtId<T> {}

impl<T> PartialEq for ExtId<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.index, self.offset, self.serial) == (other.index, other.offset, other.serial)
    }
}

impl<T> Eq for ExtId<T> {}

impl<T> fmt::Debug for ExtId<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtId")
            .field("type", &std::any::type_name::<T>())
            .field("index", &self.index)
            .field("offset", &self.offset)
            .finish()
    }
}

impl<T> fmt::Display for ExtId<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ext{}", self.index)
    }
}

/// What a registered type looks like inside the area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtInfo {
    /// The name it was registered under.
    pub name: String,
    /// Its bit index.
    pub index: u8,
    /// Byte offset inside the area.
    pub offset: usize,
    /// `size_of::<T>()`.
    pub size: usize,
    /// `align_of::<T>()`.
    pub align: usize,
    /// `type_name::<T>()`, for reports.
    pub type_name: &'static str,
}

/// How to create the area pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtParams {
    /// Mempool name, unique in the process (1..=25 characters).
    pub name: String,
    /// Number of areas: how many packets (not counting clones sharing one) may carry
    /// extensions at once. A power of two minus one uses the pool's ring best.
    pub areas: u32,
    /// Per-lcore cache: at most 512 and at most `areas / 1.5`.
    pub cache: u32,
    /// NUMA socket to allocate on.
    pub socket: SocketId,
}

impl Default for ExtParams {
    fn default() -> Self {
        ExtParams { name: "ext_areas".into(), areas: 8191, cache: 256, socket: SocketId::ANY }
    }
}

impl ExtParams {
    /// Checks the parameters against the rules `rte_mempool_create` applies (name length,
    /// at least one area, cache at most 512 and at most areas / 1.5).
    ///
    /// # Errors
    /// [`ExtError::InvalidParams`] saying which rule failed.
    pub fn check(&self) -> Result<(), ExtError> {
        let invalid = |reason: String| Err(ExtError::InvalidParams { reason });
        if self.name.is_empty() || self.name.len() > 25 || self.name.contains('\0') {
            return invalid(format!("pool name must be 1..=25 characters without NUL, got {:?}", self.name));
        }
        if self.areas == 0 {
            return invalid("areas must be at least 1".into());
        }
        if self.cache > dpdk_sys::RTE_MEMPOOL_CACHE_MAX_SIZE {
            return invalid(format!("cache {} is above {}", self.cache, dpdk_sys::RTE_MEMPOOL_CACHE_MAX_SIZE));
        }
        if u64::from(self.cache) * 3 > u64::from(self.areas) * 2 {
            return invalid(format!("cache {} is above areas / 1.5 (areas {})", self.cache, self.areas));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_checked_before_dpdk() {
        let ok = ExtParams::default();
        assert!(ok.check().is_ok());
        for (bad, what) in [
            (ExtParams { cache: 600, areas: 100_000, ..ok.clone() }, "above 512"),
            (ExtParams { areas: 300, ..ok.clone() }, "areas / 1.5"),
            (ExtParams { areas: 0, ..ok.clone() }, "at least 1"),
            (ExtParams { name: "x".repeat(26), ..ok.clone() }, "1..=25"),
        ] {
            let err = bad.check().unwrap_err().to_string();
            assert!(err.contains(what), "{err}");
        }
    }

    #[test]
    fn ids_print_and_compare() {
        let a: ExtId<u32> = ExtId::new(3, 8, 1);
        assert_eq!(a.to_string(), "ext3");
        assert_eq!(a.bit(), 8);
        assert_eq!(a, a.clone());
        assert_ne!(a, ExtId::new(3, 8, 2));
        assert!(format!("{a:?}").contains("u32"));
    }
}
