//! zebra's routes into the forwarding table: the [`RouteSink`] of a forwarder in l3fwd.
//!
//! Each batch of changes the FPM thread hands over ([`super::plan`] per route) becomes one
//! [`Fib::apply`] (the same RCU path as `ctl route add`), under the FIB's lock, so workers
//! see each route change whole and never a gap between zebra's delete and add of a changed
//! route. If the batch is refused (a table full), its changes are applied one at a time so
//! that everything that fits goes in; the others are counted and logged by the FPM thread.
//!
//! - A route's origin is its `rtm_protocol` ([`Origin::from_rtm_protocol`]).
//! - One route per prefix: zebra's upsert replaces whatever route the prefix has (the last
//!   change wins, as `ctl route replace` does); zebra's delete removes the prefix's route only
//!   if zebra made it ([`Origin::is_zebra`]), never a config or ctl route.
//! - Routes of tables other than main (VRFs) are not installed (counted).
//! - Paths: a gateway becomes a next hop by address (resolved by ARP/ND), no gateway an
//!   on-link next hop (the destination is the neighbour); several paths an ECMP group.

use std::collections::{HashMap, HashSet};

use ipnet::IpNet;
use std::sync::{Arc, Mutex, PoisonError};

use super::plan::{plan, Target};
use super::ports::{PortAddrs, PortMap};
use super::session::Change;
use super::wire::{RouteKey, MAIN_TABLE};
use super::RouteSink;
use crate::fib::{Fib, Hop, Origin, Route, RouteChange};
use crate::nexthop::{NextHopKey, Via};

/// What the sink did with zebra's routes, for the FPM status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkStatus {
    /// zebra's routes in the forwarding table now (unusable ones included).
    pub installed: usize,
    /// Of those, routes none of whose next hops maps onto a port: they drop what they
    /// match.
    pub unusable: usize,
    /// Paths (of routes installed, unusable ones included) that map onto no port, now.
    pub unmapped_paths: usize,
    /// zebra's connected routes, not installed (the ports' own addresses make those).
    pub connected: usize,
    /// Routes of tables other than main, not installed.
    pub other_tables: usize,
    /// Route changes the table refused (full), since start.
    pub refused: u64,
    /// Deletes of a prefix whose route is not zebra's (left alone), since start.
    pub not_zebras: u64,
}

/// The sink over a forwarder's [`Fib`].
#[derive(Debug)]
pub struct FibSink {
    fib: Arc<Mutex<Fib>>,
    ports: PortMap,
    /// Keys installed unusable, with their unmapped paths' count; keys of routes not
    /// installed by kind.
    unusable: HashSet<RouteKey>,
    unmapped: HashMap<RouteKey, usize>,
    connected: HashSet<RouteKey>,
    other_tables: HashSet<RouteKey>,
    installed: usize,
    refused: u64,
    not_zebras: u64,
}

impl FibSink {
    /// A sink into `fib`, next hops mapped onto `ports`.
    pub fn new(fib: Arc<Mutex<Fib>>, ports: Vec<PortAddrs>) -> FibSink {
        FibSink {
            fib,
            ports: PortMap::new(ports),
            unusable: HashSet::new(),
            unmapped: HashMap::new(),
            connected: HashSet::new(),
            other_tables: HashSet::new(),
            installed: 0,
            refused: 0,
            not_zebras: 0,
        }
    }

    /// The FIB's change for one of zebra's, given whether the prefix has a route now
    /// (`Some(true)`: zebra's), or `None` when nothing is to be changed; updates the
    /// bookkeeping of what is not installed.
    fn translate(&mut self, change: &Change, now: Option<bool>) -> Option<RouteChange> {
        let key = match change {
            Change::Upsert(r) => r.key,
            Change::Delete(k) => *k,
        };
        self.connected.remove(&key);
        self.other_tables.remove(&key);
        self.unusable.remove(&key);
        self.unmapped.remove(&key);
        let delete = |s: &mut FibSink| match now {
            Some(true) => Some(RouteChange::Delete(key.prefix)),
            Some(false) => {
                s.not_zebras += 1;
                None
            }
            None => None,
        };
        let route = match change {
            Change::Delete(_) if key.table != MAIN_TABLE => return None,
            Change::Delete(_) => return delete(self),
            Change::Upsert(r) => r,
        };
        if key.table != MAIN_TABLE {
            self.other_tables.insert(key);
            return None;
        }
        let origin = Origin::from_rtm_protocol(route.protocol.0);
        let hop = match plan(route, &mut self.ports) {
            Target::Connected => {
                // The port's own connected route (origin connected) stays; a route of
                // zebra's for the prefix goes.
                self.connected.insert(key);
                return (now == Some(true)).then_some(RouteChange::Delete(key.prefix));
            }
            Target::Drop(_) => Hop::Drop,
            Target::Unusable(unmapped) => {
                self.unusable.insert(key);
                self.unmapped.insert(key, unmapped.len());
                Hop::Drop
            }
            Target::Paths { paths, unmapped } => {
                if !unmapped.is_empty() {
                    self.unmapped.insert(key, unmapped.len());
                }
                Hop::paths(
                    paths
                        .iter()
                        .map(|p| {
                            let via = p.gateway.map_or(Via::Connected, Via::Gateway);
                            (NextHopKey { port: p.port, via }, p.weight)
                        })
                        .collect(),
                )
            }
        };
        Some(RouteChange::Set(Route { prefix: key.prefix, next_hop: hop, origin }))
    }

    /// What it did so far.
    pub fn status(&self) -> SinkStatus {
        SinkStatus {
            installed: self.installed,
            unusable: self.unusable.len(),
            unmapped_paths: self.unmapped.values().sum(),
            connected: self.connected.len(),
            other_tables: self.other_tables.len(),
            refused: self.refused,
            not_zebras: self.not_zebras,
        }
    }
}

impl RouteSink for FibSink {
    fn session_started(&mut self) {
        self.ports.forget_names();
    }

    fn apply(&mut self, changes: &[Change]) -> Vec<(RouteKey, String)> {
        let fib = self.fib.clone();
        let mut fib = fib.lock().unwrap_or_else(PoisonError::into_inner);
        // Each change, its key, and how it moves the count of zebra's routes in the table.
        let mut batch = Vec::with_capacity(changes.len());
        let mut meta = Vec::with_capacity(changes.len());
        // What the batch so far did to each prefix: a route of zebra's (true), or none.
        let mut overlay: HashMap<IpNet, bool> = HashMap::new();
        for c in changes {
            let key = match c {
                Change::Upsert(r) => r.key,
                Change::Delete(k) => *k,
            };
            let now = match overlay.get(&key.prefix) {
                Some(&ours) => ours.then_some(true),
                None => fib.get(&key.prefix).map(|r| r.origin.is_zebra()),
            };
            let was_ours = now == Some(true);
            if let Some(rc) = self.translate(c, now) {
                overlay.insert(key.prefix, matches!(rc, RouteChange::Set(_)));
                let delta: isize = match (&rc, was_ours) {
                    (RouteChange::Set(_), false) => 1,
                    (RouteChange::Delete(_), true) => -1,
                    _ => 0,
                };
                batch.push(rc);
                meta.push((key, delta));
            }
        }
        let mut failed = Vec::new();
        if fib.apply(&batch).is_ok() {
            for (_, d) in &meta {
                self.installed = self.installed.saturating_add_signed(*d);
            }
        } else {
            // All or nothing refused: one at a time, so that what fits goes in.
            for (rc, (key, d)) in batch.iter().zip(&meta) {
                match fib.apply(std::slice::from_ref(rc)) {
                    Ok(_) => self.installed = self.installed.saturating_add_signed(*d),
                    Err((_, e)) => {
                        self.refused += 1;
                        self.unusable.remove(key);
                        self.unmapped.remove(key);
                        failed.push((*key, e.to_string()));
                    }
                }
            }
        }
        failed
    }

    fn status(&self) -> Option<SinkStatus> {
        Some(FibSink::status(self))
    }
}
