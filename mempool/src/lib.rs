//! Packet memory for the dataplane.
//!
//! - [`Pool`]: a pktmbuf pool on one NUMA socket (hugepages unless EAL runs `--no-huge`),
//!   with its statistics and the l3fwd-style sizing formula [`mbufs_needed`].
//! - [`Mbuf`]: one owned packet buffer; dropping it frees it, handing it to TX gives it away.
//! - [`Burst`]: a fixed array of up to `N` mbufs that never allocates and frees what is
//!   left in it when dropped.
//! - [`MbufRing`]: an `rte_ring` of mbufs that frees whatever it still holds when dropped.
//! - [`ext`]: packet extensions, refcounted typed metadata that travels with a packet and
//!   its clones (the kernel's `skb_ext`); every free path above releases them.
//! - [`accounting`]: per-protocol memory accounts with tcp_mem-style limits and pressure,
//!   per-lcore batching, group (memcg-like) budgets and the `bypass_prot_mem` consumer
//!   flag. Pure Rust, no DPDK.
//!
//! Every `unsafe` block in this crate sits in one of those modules (for `ext`, its `area`
//! submodule) and says why it holds.
//! EAL must be initialised before any of them is created.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod accounting;
#[allow(unsafe_code)]
mod burst;
mod error;
pub mod ext;
#[allow(unsafe_code)]
mod mbuf;
#[allow(unsafe_code)]
mod pool;
#[allow(unsafe_code)]
mod ring;

pub use burst::{Burst, Drain, MAX_BURST};
pub use error::{DpdkError, MbufError, PoolError, RingError};
pub use ext::{ExtError, ExtId, ExtInfo, ExtParams, ExtRegistry, Extensions};
pub use mbuf::Mbuf;
pub use pool::{mbufs_needed, Pool, PoolParams, PoolSizing, PoolStats, SocketId, MIN_POOL_SIZE};
pub use ring::MbufRing;
