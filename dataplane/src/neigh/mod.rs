//! Neighbour resolution: ARP (RFC 826) and IPv6 neighbour discovery (RFC 4861) with the
//! Linux kernel's neighbour state machine and knobs.
//!
//! - [`NeighParams`]: the knobs, with Linux's defaults; each field names its sysctl
//!   (`net.ipv4.neigh.default.*`, `net.ipv6.neigh.default.*`).
//! - [`NeighTable`]: entries per (port, address) in the states `ip neigh` shows (INCOMPLETE,
//!   REACHABLE, STALE, DELAY, PROBE, FAILED, PERMANENT), their timers, packets held while
//!   unresolved (bounded like `unres_qlen`) and garbage collection (`gc_thresh1..3`,
//!   `gc_stale_time`). Pure: it is driven by calls that carry the time and answers with
//!   [`Event`]s (solicit, send, drop, publish), so every transition is tested on a fake clock.
//!
//! - [`Resolver`]: the slow path's side: learning from received ARP / NS / NA, building
//!   the solicitations the table asks for from the port's own addresses, announcing our
//!   addresses at start.
//!
//! The slow path owns the one table (one writer); the workers only see what
//! [`Event::Publish`] tells them: for each neighbour, a MAC to send to, or none (then they
//! hand the packet to the slow path, which holds it and resolves).
//!
//! | here | Linux |
//! |---|---|
//! | [`NeighTable::hold`] | `neigh_event_send` (`__neigh_event_send`) |
//! | [`NeighTable::tick`] | `neigh_timer_handler`, `neigh_periodic_work` |
//! | [`NeighTable::update`] | `__neigh_update` and its `NEIGH_UPDATE_F_*` flags |
//! | [`NeighTable::arp_input`] | `arp_process` (`arp_accept = 0`) |
//! | [`NeighTable::ns_input`], [`NeighTable::na_input`] | `ndisc_recv_ns`, `ndisc_recv_na` |
//! | [`NeighStats`] | `struct neigh_statistics` (`ip -s ntable`) |
//! | [`NeighDrop`] | `SKB_DROP_REASON_NEIGH_{FAILED,QUEUEFULL,CREATEFAIL}` |

mod params;
mod resolver;
mod table;
#[cfg(test)]
mod tests;

pub use params::NeighParams;
pub use resolver::{Output, Resolver, ResolverStats};
pub use table::{ArpInput, Event, NeighDrop, NeighKey, NeighState, NeighStats, NeighTable, NeighView, UpdateFlags};
