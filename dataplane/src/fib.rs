//! The forwarding information base: every route, its next hop and its origin, in one owner
//! that is the only writer of the LPM tables and the next-hop table.
//!
//! [`Fib`] lives behind a mutex that only non-worker threads take (the control socket's
//! client threads, later the FPM thread and the slow path); workers never lock: they read
//! through a [`FibReader`] and their [`QsbrReader`] ([`FibView`]). One [`Fib::apply`] is one
//! change of any number of routes, all or none:
//!
//! 1. each route's next hop gets its id first ([`NextHops::acquire`]: shared by routes with
//!    the same port and gateway, filled before anything points at it);
//! 2. IPv4 changes go to `rte_lpm` one by one (a replace is an in-place `rte_lpm_add`);
//!    IPv6 changes go to the `rte_lpm6` pair as one batch ([`Lpm6::apply`]);
//! 3. if any change fails (table full, no such route), everything done so far is undone and
//!    the error names the change; otherwise the next hops the old routes used are released,
//!    to be reused after a grace period.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::forward::{NextHop, NextHops as NextHopSource, Routes};
use crate::lpm::{Change6, Lpm4, Lpm4Reader, Lpm6, Lpm6Reader, LpmError};
use crate::net::MacAddr;
use crate::nexthop::{GroupError, GroupInfo, GroupsFull, NextHopInfo, NextHopKey, NextHopTable, NextHops, NextHopsFull};
use crate::rcu::{Qsbr, QsbrReader};
use mempool::{DpdkError, SocketId};

/// Where a route came from, shown by `ctl show routes`: the forwarder's own sources, and
/// the FRR protocols whose routes zebra streams over FPM (from each route's netlink
/// `rtm_protocol`, FRR's numbers in `zebra/rt_netlink.h`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, strum::IntoStaticStr, strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Origin {
    /// The config file (`[[route]]`) at start-up or by `ctl apply`.
    Config,
    /// `ctl route add` / `replace`.
    Ctl,
    /// The connected subnet of a port's own address (`ipv4`, `ipv6`): on-link, like the
    /// kernel's `proto kernel scope link` routes.
    Connected,
    /// A host route the slow path installs for a resolved neighbour on a connected subnet,
    /// so workers find its MAC with one lookup; removed when the neighbour entry goes.
    Neighbour,
    /// FRR staticd (`RTPROT_ZSTATIC`, 196).
    Static,
    /// FRR bgpd (`RTPROT_BGP`, 186).
    Bgp,
    /// FRR ospfd and ospf6d (188).
    Ospf,
    /// FRR isisd (187).
    Isis,
    /// FRR ripd (189).
    Rip,
    /// FRR ripngd (190).
    Ripng,
    /// FRR eigrpd (192).
    Eigrp,
    /// FRR nhrpd (191).
    Nhrp,
    /// FRR ldpd (193).
    Ldp,
    /// FRR babeld (`RTPROT_BABEL`, 42).
    Babel,
    /// FRR sharpd (194).
    Sharp,
    /// FRR pbrd (195).
    Pbr,
    /// FRR fabricd (197).
    Openfabric,
    /// Any other protocol zebra installs routes for.
    Zebra,
}

impl Origin {
    /// Every origin.
    pub const ALL: &'static [Origin] = <Self as strum::VariantArray>::VARIANTS;

    /// Its name: `config`, `ctl`, `connected`, `neighbour`, `static`, `bgp`, ...
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The origin of a route zebra sent with `rtm_protocol` = `protocol`.
    pub fn from_rtm_protocol(protocol: u8) -> Origin {
        match protocol {
            196 => Origin::Static,
            186 => Origin::Bgp,
            188 => Origin::Ospf,
            187 => Origin::Isis,
            189 => Origin::Rip,
            190 => Origin::Ripng,
            192 => Origin::Eigrp,
            191 => Origin::Nhrp,
            193 => Origin::Ldp,
            42 => Origin::Babel,
            194 => Origin::Sharp,
            195 => Origin::Pbr,
            197 => Origin::Openfabric,
            _ => Origin::Zebra,
        }
    }

    /// Whether the route came from zebra (FPM): only those are zebra's to delete.
    pub fn is_zebra(self) -> bool {
        !matches!(self, Origin::Config | Origin::Ctl | Origin::Connected | Origin::Neighbour)
    }
}

/// Where a route sends what it matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Hop {
    /// One next hop: port and gateway.
    One(NextHopKey),
    /// ECMP: at least two next hops, each with its weight; each flow takes one
    /// ([`crate::ecmp`]).
    Multi(Arc<[(NextHopKey, u16)]>),
    /// Nowhere: what it matches is dropped (`no_route`), instead of falling to a shorter
    /// prefix. FRR's blackhole and unreachable routes, and routes none of whose next hops
    /// maps onto a port.
    Drop,
}

impl Hop {
    /// The hop for these weighted paths: [`Hop::One`] for one, [`Hop::Multi`] for more,
    /// [`Hop::Drop`] for none.
    pub fn paths(paths: Vec<(NextHopKey, u16)>) -> Hop {
        match paths.len() {
            0 => Hop::Drop,
            1 => Hop::One(paths[0].0),
            _ => Hop::Multi(paths.into()),
        }
    }

    /// Its next hops with their weights (one of weight 1 for [`Hop::One`]).
    pub fn keys(&self) -> Vec<(NextHopKey, u16)> {
        match self {
            Hop::One(k) => vec![(*k, 1)],
            Hop::Multi(p) => p.to_vec(),
            Hop::Drop => Vec::new(),
        }
    }
}

impl From<NextHopKey> for Hop {
    fn from(k: NextHopKey) -> Hop {
        Hop::One(k)
    }
}

/// A route: packets to `prefix` leave by `next_hop`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The destination, host bits zero.
    pub prefix: IpNet,
    /// Port and gateway, several of them, or none.
    pub next_hop: Hop,
    /// Who installed it.
    pub origin: Origin,
}

/// One change of a [`Fib::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteChange {
    /// Add the route, or replace the one with the same prefix.
    Set(Route),
    /// Delete the route with this prefix.
    Delete(IpNet),
}

impl RouteChange {
    /// The prefix it changes.
    pub fn prefix(&self) -> IpNet {
        match self {
            RouteChange::Set(r) => r.prefix,
            RouteChange::Delete(p) => *p,
        }
    }
}

/// The capacities of the tables (`[fib]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FibCapacity {
    /// IPv4 routes (`rte_lpm` rules).
    pub ipv4_max_routes: u32,
    /// IPv4 tbl8 groups (one per /24 that holds a longer prefix).
    pub ipv4_tbl8_groups: u32,
    /// IPv6 routes (`rte_lpm6` rules, in each of the two tables).
    pub ipv6_max_routes: u32,
    /// IPv6 tbl8 groups (in each of the two tables).
    pub ipv6_tbl8_groups: u32,
    /// Next hops (distinct port and gateway pairs).
    pub max_next_hops: u32,
}

impl FibCapacity {
    /// Memory the tables take from EAL's heap, in bytes (rte_lpm: 64 MiB + 8 B a rule + 1 KiB
    /// a tbl8 group + its defer queue; each rte_lpm6: 64 MiB + 1 KiB a group + about 64 B a
    /// rule for its rules hash).
    pub fn memory_bytes(&self) -> u64 {
        let (r4, g4, r6, g6) = (
            u64::from(self.ipv4_max_routes),
            u64::from(self.ipv4_tbl8_groups),
            u64::from(self.ipv6_max_routes),
            u64::from(self.ipv6_tbl8_groups),
        );
        let v4 = (64 << 20) + 8 * r4 + 1024 * g4 + 12 * g4.next_power_of_two();
        let v6 = (64 << 20) + 1032 * g6 + 64 * r6;
        v4 + 2 * v6
    }
}

/// A port as the FIB sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FibPort {
    /// Config name.
    pub name: String,
    /// Its MAC: the source of packets routed out of it.
    pub mac: MacAddr,
    /// Whether every worker has a TX queue on it (else routes to it are refused).
    pub routable: bool,
}

/// Why a route change was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FibError {
    /// Delete of a prefix with no route.
    #[error("no route for {0}")]
    NoSuchRoute(IpNet),
    /// The table is full (its `max_routes`, or its tbl8 groups).
    #[error("table full: {0}")]
    TableFull(String),
    /// Every next-hop id is in use.
    #[error(transparent)]
    NextHopsFull(#[from] NextHopsFull),
    /// Every ECMP group slot is in use.
    #[error(transparent)]
    GroupsFull(#[from] GroupsFull),
    /// A port index outside the config's ports.
    #[error("port[{0}] does not exist")]
    NoSuchPort(u16),
    /// The workers have no TX queue on the port.
    #[error("port {port:?} has fewer TX queues than there are workers; routes to it need a restart with port.tx_queues >= the number of workers")]
    PortNotRoutable {
        /// Its name.
        port: String,
    },
    /// A DPDK call failed otherwise.
    #[error(transparent)]
    Lpm(#[from] LpmError),
    /// The tables could not be created.
    #[error("{what}: {error}")]
    Create {
        /// Which table, with its size.
        what: String,
        /// What DPDK said.
        error: DpdkError,
    },
}

impl FibError {
    /// A short machine-readable code (`no_such_route`, `table_full`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            FibError::NoSuchRoute(_) => "not_found",
            FibError::TableFull(_) | FibError::NextHopsFull(_) | FibError::GroupsFull(_) => "table_full",
            FibError::NoSuchPort(_) | FibError::PortNotRoutable { .. } => "invalid",
            FibError::Lpm(_) | FibError::Create { .. } => "internal",
        }
    }
}

impl From<GroupError> for FibError {
    fn from(e: GroupError) -> FibError {
        match e {
            GroupError::NextHops(e) => e.into(),
            GroupError::Groups(e) => e.into(),
        }
    }
}

/// A route in the table.
#[derive(Debug, Clone)]
struct Installed {
    key: Hop,
    id: u32,
    origin: Origin,
}

/// Counts by family and origin, for `ctl show` and the metrics endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FibSummary {
    /// IPv4 routes (the default route included).
    pub ipv4_routes: usize,
    /// IPv6 routes (the default route included).
    pub ipv6_routes: usize,
    /// Routes by origin name.
    pub by_origin: BTreeMap<String, usize>,
    /// Next-hop ids in use (ECMP groups included).
    pub next_hops: usize,
    /// ECMP groups in use.
    #[serde(default)]
    pub ecmp_groups: usize,
    /// Next-hop ids waiting for a grace period before reuse.
    pub next_hops_retired: usize,
    /// Capacity: IPv4 routes, IPv6 routes, next hops.
    pub ipv4_max_routes: u32,
    /// See above.
    pub ipv6_max_routes: u32,
    /// See above.
    pub max_next_hops: u32,
}

/// The workers' handles: lock-free reads through their [`QsbrReader`].
#[derive(Debug, Clone)]
pub struct FibReader {
    v4: Lpm4Reader,
    v6: Lpm6Reader,
    hops: Arc<NextHopTable>,
}

impl FibReader {
    /// The tables as seen inside `rcu`'s read-side section.
    ///
    /// # Panics
    /// If `rcu` reports to another QS variable than the tables' (checked here once, not on
    /// every IPv4 lookup through the view).
    #[inline]
    pub fn view<'a>(&'a self, rcu: &'a QsbrReader) -> FibView<'a> {
        assert!(self.v4.checks(rcu) && self.v6.checks(rcu), "FIB lookups through a reader of another QS variable");
        FibView { fib: self, rcu, rss: None }
    }
}

/// Lookups for one worker while it holds its reader: implements the per-packet traits.
#[derive(Clone, Copy)]
pub struct FibView<'a> {
    fib: &'a FibReader,
    /// The reader view() checked, borrowed for as long as the view lives: every lookup
    /// through the view runs inside its read-side section.
    rcu: &'a QsbrReader,
    rss: Option<u32>,
}

impl FibView<'_> {
    /// The same view, with the packet's RSS hash (`Mbuf::rss_hash`): ECMP then uses it
    /// instead of hashing the 5-tuple.
    #[inline]
    pub fn with_rss(self, rss: Option<u32>) -> Self {
        FibView { rss, ..self }
    }

    /// What a packet routed to `id` leads to ([`NextHopSource::lookup`]) and the id it
    /// takes: `id` itself, or for an ECMP group the member the RSS hash (else `flow`) picks.
    /// The packet is counted for it.
    #[inline]
    pub fn route(&self, id: u32, flow: impl FnOnce() -> u32) -> (u32, crate::forward::Hop) {
        let rss = self.rss;
        self.fib.hops.route(id, self.rcu.id(), || rss.unwrap_or_else(flow))
    }

    /// Whether routes may lead to an ECMP group ([`NextHopTable::has_groups`]): only then
    /// does routing a packet need its flow hash.
    #[inline]
    pub fn has_groups(&self) -> bool {
        self.fib.hops.has_groups()
    }

    /// Counts `packets` more routed to next hop `id` through this view's reader, as each
    /// lookup through the view counts its packet ([`NextHopTable::count`]).
    #[inline]
    pub fn count(&self, id: u32, packets: u64) {
        self.fib.hops.count(id, self.rcu.id(), packets);
    }
}

impl Routes for FibView<'_> {
    #[inline(always)]
    fn lookup_v4(&self, dst: std::net::Ipv4Addr) -> Option<u32> {
        // view() checked the reader; it stays borrowed while the view lives.
        self.fib.v4.lookup_checked(dst)
    }
    #[inline(always)]
    fn lookup_v6(&self, dst: std::net::Ipv6Addr) -> Option<u32> {
        // view() checked the reader; it stays borrowed while the view lives.
        self.fib.v6.lookup_checked(dst)
    }
}

impl NextHopSource for FibView<'_> {
    #[inline(always)]
    fn next_hop(&self, id: u32) -> Option<NextHop> {
        self.fib.hops.get(id)
    }

    /// ECMP groups resolved by the RSS hash, else by `flow` (the 5-tuple hash); the packet
    /// counted for the next hop it takes.
    #[inline]
    fn lookup(&self, id: u32, flow: impl FnOnce() -> u32) -> crate::forward::Hop {
        self.route(id, flow).1
    }
}

/// Names of the LPM tables: unique per process (DPDK refuses a second table of a name).
fn table_names() -> (String, String) {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    (format!("fib4_{n}"), format!("fib6_{n}"))
}

/// The route table's owner. See the module docs.
#[derive(Debug)]
pub struct Fib {
    v4: Lpm4,
    v6: Lpm6,
    hops: NextHops,
    qsbr: Arc<Qsbr>,
    ports: Vec<FibPort>,
    routes: BTreeMap<IpNet, Installed>,
    capacity: FibCapacity,
    counts: [usize; 2],
    /// The id [`Hop::Drop`] routes point at, never valid: taken with the first such route.
    drop_id: Option<u32>,
}

impl Fib {
    /// Creates empty tables of `capacity` on `socket`, protected by `qsbr`, for `ports`,
    /// counting packets per next hop for each reader id in `readers` (the workers' lcores).
    ///
    /// # Errors
    /// [`FibError::Create`] when DPDK cannot create a table (ENOMEM: give EAL more memory
    /// with `-m`, or lower the `[fib]` capacities).
    pub fn new(
        capacity: FibCapacity,
        ports: Vec<FibPort>,
        qsbr: &Arc<Qsbr>,
        socket: SocketId,
        readers: &[u32],
    ) -> Result<(Fib, FibReader), FibError> {
        let (n4, n6) = table_names();
        let c = capacity;
        let v4 = Lpm4::create(&n4, c.ipv4_max_routes, c.ipv4_tbl8_groups, socket, qsbr).map_err(|error| FibError::Create {
            what: format!(
                "fib: the IPv4 table (fib.ipv4_max_routes = {}, fib.ipv4_tbl8_groups = {}, {} MiB; with --no-huge, raise EAL's -m)",
                c.ipv4_max_routes,
                c.ipv4_tbl8_groups,
                (64 << 20) / (1 << 20) + (8 * u64::from(c.ipv4_max_routes) + 1024 * u64::from(c.ipv4_tbl8_groups)) / (1 << 20)
            ),
            error,
        })?;
        let v6 = Lpm6::create(&n6, c.ipv6_max_routes, c.ipv6_tbl8_groups, socket, qsbr).map_err(|error| FibError::Create {
            what: format!(
                "fib: the two IPv6 tables (fib.ipv6_max_routes = {}, fib.ipv6_tbl8_groups = {}, {} MiB each; with --no-huge, raise EAL's -m)",
                c.ipv6_max_routes,
                c.ipv6_tbl8_groups,
                64 + (1032 * u64::from(c.ipv6_tbl8_groups) + 64 * u64::from(c.ipv6_max_routes)) / (1 << 20)
            ),
            error,
        })?;
        let hops = NextHops::with_table(Arc::new(NextHopTable::counting(c.max_next_hops, readers)), qsbr.clone());
        let reader = FibReader { v4: v4.reader(), v6: v6.reader(), hops: hops.table().clone() };
        let fib =
            Fib { v4, v6, hops, qsbr: qsbr.clone(), ports, routes: BTreeMap::new(), capacity, counts: [0, 0], drop_id: None };
        Ok((fib, reader))
    }

    /// The key of next-hop id `id`, if in use (the slow path: what a packet it was handed
    /// for resolution was routed to).
    pub fn next_hop_key(&self, id: u32) -> Option<NextHopKey> {
        self.hops.key(id)
    }

    /// Sets (or invalidates) the neighbour MAC of the next hop to gateway `addr` out of
    /// `port`, if a route uses one; returns whether one does. Workers see it at once.
    pub fn set_neighbour(&self, port: crate::port::PortIdx, addr: IpAddr, mac: Option<MacAddr>) -> bool {
        let key = NextHopKey { port, via: crate::nexthop::Via::Gateway(addr) };
        match self.hops.id(&key) {
            Some(id) => {
                self.hops.table().set_neighbour(id, mac);
                true
            }
            None => false,
        }
    }

    /// Whether a worker sent to gateway `addr` out of `port` since the last call.
    pub fn take_used(&self, port: crate::port::PortIdx, addr: IpAddr) -> bool {
        let key = NextHopKey { port, via: crate::nexthop::Via::Gateway(addr) };
        self.hops.id(&key).is_some_and(|id| self.hops.table().take_used(id))
    }

    /// The route for exactly `prefix`.
    pub fn get(&self, prefix: &IpNet) -> Option<Route> {
        self.routes.get(prefix).map(|i| Route { prefix: *prefix, next_hop: i.key.clone(), origin: i.origin })
    }

    /// Every route with its next-hop id, by prefix (IPv4 first).
    pub fn routes(&self) -> impl Iterator<Item = (Route, u32)> + '_ {
        self.routes.iter().map(|(p, i)| (Route { prefix: *p, next_hop: i.key.clone(), origin: i.origin }, i.id))
    }

    /// Every next hop in use, with the packets routed to it.
    pub fn next_hops(&self) -> Vec<NextHopInfo> {
        self.hops.list()
    }

    /// Every ECMP group in use.
    pub fn ecmp_groups(&self) -> Vec<GroupInfo> {
        self.hops.groups()
    }

    /// The ports.
    pub fn ports(&self) -> &[FibPort] {
        &self.ports
    }

    /// The capacities.
    pub fn capacity(&self) -> FibCapacity {
        self.capacity
    }

    /// Counts by family and origin, and next hops.
    pub fn summary(&self) -> FibSummary {
        let mut by_origin: BTreeMap<String, usize> = Origin::ALL.iter().map(|o| (o.name().to_owned(), 0)).collect();
        for i in self.routes.values() {
            *by_origin.entry(i.origin.name().to_owned()).or_default() += 1;
        }
        FibSummary {
            ipv4_routes: self.counts[0],
            ipv6_routes: self.counts[1],
            by_origin,
            next_hops: self.hops.in_use(),
            ecmp_groups: self.hops.groups().len(),
            next_hops_retired: self.hops.retired(),
            ipv4_max_routes: self.capacity.ipv4_max_routes,
            ipv6_max_routes: self.capacity.ipv6_max_routes,
            max_next_hops: self.capacity.max_next_hops,
        }
    }

    /// Adds a route; refuses to replace one.
    ///
    /// # Errors
    /// `Err(Some(existing))` when a route for the prefix exists; else as [`Fib::apply`].
    pub fn add(&mut self, route: Route) -> Result<(), (Option<Route>, Option<FibError>)> {
        if let Some(r) = self.get(&route.prefix) {
            return Err((Some(r), None));
        }
        self.apply(&[RouteChange::Set(route)]).map(drop).map_err(|(_, e)| (None, Some(e)))
    }

    /// Applies `changes` in order, all or none (see the module docs), and returns the
    /// changes that undo them (for a caller that applies a large change in slices).
    ///
    /// # Errors
    /// The index of the change refused and why; nothing changed.
    pub fn apply(&mut self, changes: &[RouteChange]) -> Result<Vec<RouteChange>, (usize, FibError)> {
        // (prefix, what it was) for each change made, and the ids to release on success.
        let mut undo: Vec<(IpNet, Option<Installed>)> = Vec::with_capacity(changes.len());
        let mut acquired: Vec<u32> = Vec::new();
        let mut batch6: Vec<(Change6, usize)> = Vec::new();
        let mut failed = None;
        for (i, change) in changes.iter().enumerate() {
            if let Err(e) = self.apply_one(change, &mut undo, &mut acquired, &mut batch6, i) {
                failed = Some((i, e));
                break;
            }
        }
        if failed.is_none() && !batch6.is_empty() {
            let c6: Vec<Change6> = batch6.iter().map(|(c, _)| *c).collect();
            if let Err((k, e)) = self.v6.apply(&c6) {
                failed = Some((batch6[k].1, lpm_error(e, "IPv6", &self.capacity)));
                batch6.clear(); // nothing of it was applied
            }
        }
        if let Some(err) = failed {
            // Undo in reverse: the model, and rte_lpm (IPv6 was not touched).
            for (prefix, prev) in undo.into_iter().rev() {
                self.restore(prefix, prev);
            }
            for id in acquired {
                self.release(id);
            }
            return Err(err);
        }
        // Committed: the old routes' next hops lose a reference each (after the LPM stopped
        // pointing at them, so the retire token covers every worker that saw them).
        let mut reverse = Vec::with_capacity(undo.len());
        for (prefix, prev) in undo.into_iter().rev() {
            if let Some(p) = &prev {
                self.release(p.id);
            }
            reverse.push(match prev {
                Some(p) => RouteChange::Set(Route { prefix, next_hop: p.key, origin: p.origin }),
                None => RouteChange::Delete(prefix),
            });
        }
        Ok(reverse)
    }

    fn apply_one(
        &mut self,
        change: &RouteChange,
        undo: &mut Vec<(IpNet, Option<Installed>)>,
        acquired: &mut Vec<u32>,
        batch6: &mut Vec<(Change6, usize)>,
        index: usize,
    ) -> Result<(), FibError> {
        let prefix = change.prefix();
        let prev = self.routes.get(&prefix).cloned();
        let fam = usize::from(prefix.addr().is_ipv6());
        match change {
            RouteChange::Set(r) => {
                for (k, _) in r.next_hop.keys() {
                    let port = self.ports.get(k.port.index()).ok_or(FibError::NoSuchPort(k.port.0))?;
                    if !port.routable {
                        return Err(FibError::PortNotRoutable { port: port.name.clone() });
                    }
                }
                let max = if fam == 0 { self.capacity.ipv4_max_routes } else { self.capacity.ipv6_max_routes };
                if prev.is_none() && prefix.prefix_len() > 0 && self.lpm_rules(fam) >= max as usize {
                    return Err(FibError::TableFull(format!(
                        "{} routes (fib.{}_max_routes)",
                        max,
                        if fam == 0 { "ipv4" } else { "ipv6" }
                    )));
                }
                let id = self.acquire(&r.next_hop)?;
                match prefix {
                    IpNet::V4(p) => {
                        if let Err(e) = self.add4(p.addr(), p.prefix_len(), id) {
                            self.release(id);
                            return Err(lpm_error(e, "IPv4", &self.capacity));
                        }
                    }
                    IpNet::V6(p) => batch6.push((Change6 { addr: p.addr(), depth: p.prefix_len(), next_hop: Some(id) }, index)),
                }
                acquired.push(id);
                self.routes.insert(prefix, Installed { key: r.next_hop.clone(), id, origin: r.origin });
                if prev.is_none() {
                    self.counts[fam] += 1;
                }
            }
            RouteChange::Delete(_) => {
                if prev.is_none() {
                    return Err(FibError::NoSuchRoute(prefix));
                }
                match prefix {
                    IpNet::V4(p) => self.v4.delete(p.addr(), p.prefix_len())?,
                    IpNet::V6(p) => batch6.push((Change6 { addr: p.addr(), depth: p.prefix_len(), next_hop: None }, index)),
                }
                self.routes.remove(&prefix);
                self.counts[fam] -= 1;
            }
        }
        undo.push((prefix, prev));
        Ok(())
    }

    /// The id a route with `hop` points at: a next hop's, an ECMP group's, or the drop id.
    fn acquire(&mut self, hop: &Hop) -> Result<u32, FibError> {
        let mac = |p: crate::port::PortIdx| self.ports.get(p.index()).map_or(MacAddr([0; 6]), |p| p.mac);
        match hop {
            Hop::One(k) => Ok(self.hops.acquire(*k, mac(k.port))?),
            Hop::Multi(paths) => {
                let macs: Vec<MacAddr> = self.ports.iter().map(|p| p.mac).collect();
                Ok(self.hops.acquire_group(paths, &|p| macs.get(p.index()).copied().unwrap_or(MacAddr([0; 6])))?)
            }
            Hop::Drop => match self.drop_id {
                Some(id) => Ok(id),
                None => {
                    let id = self.hops.reserve()?;
                    self.drop_id = Some(id);
                    Ok(id)
                }
            },
        }
    }

    /// Gives back what [`Fib::acquire`] took (nothing for the drop id).
    fn release(&mut self, id: u32) {
        if Some(id) != self.drop_id {
            self.hops.release(id);
        }
    }

    /// Rules in the DPDK table of a family (the default route is kept outside it).
    fn lpm_rules(&self, fam: usize) -> usize {
        let default = IpNet::new(if fam == 0 { IpAddr::from([0u8; 4]) } else { IpAddr::from([0u8; 16]) }, 0).expect("length 0");
        self.counts[fam] - usize::from(self.routes.contains_key(&default))
    }

    /// `rte_lpm_add`, retried once after a grace period when it finds no free tbl8 group:
    /// groups freed by recent deletes wait in the defer queue until every worker passed a
    /// quiescent state.
    fn add4(&mut self, addr: std::net::Ipv4Addr, depth: u8, id: u32) -> Result<(), LpmError> {
        match self.v4.add(addr, depth, id) {
            Err(e) if e.is_full() => {
                self.qsbr.synchronize();
                self.v4.add(addr, depth, id)
            }
            r => r,
        }
    }

    /// Puts `prefix` back as it was before a change of this batch (IPv4 table and model).
    fn restore(&mut self, prefix: IpNet, prev: Option<Installed>) {
        let fam = usize::from(prefix.addr().is_ipv6());
        let now = self.routes.contains_key(&prefix);
        if let IpNet::V4(p) = prefix {
            let r = match &prev {
                Some(i) => self.add4(p.addr(), p.prefix_len(), i.id),
                None => self.v4.delete(p.addr(), p.prefix_len()),
            };
            if let Err(e) = r {
                eprintln!("fib: cannot undo the change of {prefix}: {e}");
            }
        }
        match prev {
            Some(i) => {
                self.routes.insert(prefix, i);
                if !now {
                    self.counts[fam] += 1;
                }
            }
            None => {
                self.routes.remove(&prefix);
                if now {
                    self.counts[fam] -= 1;
                }
            }
        }
    }
}

/// A table's error, with `-ENOSPC` turned into [`FibError::TableFull`].
fn lpm_error(e: LpmError, family: &str, c: &FibCapacity) -> FibError {
    if e.is_full() {
        let (key, groups) = if family == "IPv4" { ("ipv4", c.ipv4_tbl8_groups) } else { ("ipv6", c.ipv6_tbl8_groups) };
        FibError::TableFull(format!("the {family} table has no room left ({groups} tbl8 groups, fib.{key}_tbl8_groups)"))
    } else {
        FibError::Lpm(e)
    }
}
