//! The dataplane: a DPDK poll-mode packet forwarder.
//!
//! - [`config`]: the TOML config, validated into typed form before EAL starts.
//! - [`eal`]: EAL start-up and clean-up, lcore ids, launching workers safely.
//! - [`port`]: ethdev set-up, counters, `PortIdx`/`PortId` and the `PortTable` between them,
//!   and the owned RX/TX queue handles.
//! - [`worker`]: the per-lcore worker: the budgeted poll loop (generic over a small RX/TX
//!   trait), TX buffers and backlogs, and each mode's and feature's step.
//! - [`report`]: the rate line, the final report, and their JSON form.
//! - [`stats`]: counters written by one worker and read by the control thread.
//! - [`exts`]: the packet extensions the forwarder attaches (trace, flow metadata).
//! - [`neigh`]: the neighbour state machine (ARP, neighbour discovery) with Linux's knobs.
//! - [`net`]: zero-copy header views, the one-pass packet classifier, and the emit side.
//! - [`lpm`]: DPDK's rte_lpm / rte_lpm6 routing tables, one writer and lock-free readers.
//! - [`nexthop`]: the next-hop table the LPM ids index, and its allocator.
//! - [`fib`]: the one owner of routes, next hops and origins; all-or-nothing changes.
//! - [`live`]: parameters the workers pick up once per round.
//! - [`hash`]: DPDK's CRC32-C hash (rte_hash_crc).
//! - [`rcu`]: DPDK's QSBR RCU: lock-free readers, grace periods for writers.
//! - [`ecmp`]: which path of a multipath route a flow takes (hash-threshold).
//! - [`forward`]: per-packet decisions of each mode, as pure functions over bytes.
//! - [`local`]: ARP, neighbour discovery and echo requests to the forwarder's own addresses.
//! - [`slowpath`]: the thread that answers requests to the forwarder's own addresses.
//! - [`telemetry`]: DPDK telemetry commands and rte_pdump for live observation.
//! - [`fpm`]: routes from FRR's zebra (its FPM stream over TCP).
//! - [`metrics`]: the OpenMetrics / Prometheus endpoint and the thread that serves it.
//! - [`forwarder`]: the lifecycle that ties them together.
//! - [`control`]: the control socket, its API and the `ctl` client.
//!
//! `unsafe` is confined to [`eal`], [`port`], [`lpm`], [`rcu`], [`hash`] and [`telemetry`], the
//! modules that call DPDK directly, and to the one `if_indextoname(3)` call in [`fpm::ports`];
//! every block there says why it holds.

#![deny(unsafe_code)]

pub mod config;
pub mod control;
#[allow(unsafe_code)]
pub mod eal;
pub mod ecmp;
pub mod exts;
pub mod fib;
pub mod forward;
pub mod forwarder;
pub mod fpm;
#[allow(unsafe_code)]
pub mod hash;
pub mod live;
pub mod local;
#[allow(unsafe_code)]
pub mod lpm;
pub mod metrics;
pub mod neigh;
pub mod net;
pub mod nexthop;
#[allow(unsafe_code)]
pub mod port;
#[allow(unsafe_code)]
pub mod rcu;
pub mod report;
pub mod slowpath;
pub mod stats;
#[allow(unsafe_code)]
pub mod telemetry;
pub mod worker;

pub use config::{Config, ConfigError, ConfigErrorKind};
pub use forwarder::{Forwarder, Report, Snapshot, StartError};
