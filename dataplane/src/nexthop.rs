//! Next hops: where a route sends a packet (out port, source and destination MAC), in a
//! fixed-capacity table indexed by the next-hop id the LPM tables return.
//!
//! - [`NextHopTable`]: the entries, shared by the workers (lock-free reads) and the writer.
//!   An entry is three atomics, so a read is never torn and needs no `unsafe`; the
//!   destination MAC and a *valid* bit share one `AtomicU64`, so the slow path can later
//!   update a neighbour's MAC in place ([`NextHopTable::set_neighbour`]) while workers read.
//! - [`NextHops`]: the writer's side (owned by [`crate::fib::Fib`]): which id holds which
//!   [`NextHopKey`], reference counts (routes with the same out port and gateway share one
//!   id), and the ids waiting for a grace period before reuse.
//!
//! The life of an id: allocated and filled *before* any route points at it; routes switch to
//! it (`rte_lpm_add` of the same prefix replaces in place); when the last route leaves it,
//! the writer takes a grace-period token ([`Qsbr::start`]) and the id is reused only once
//! [`Qsbr::check`] of that token passes, so an entry is never rewritten while a worker that
//! looked up an old route may still read it.
//!
//! Shaped for what comes next: a gateway given as an address (`via = "10.0.2.2"`, resolved
//! by ARP/ND) is another [`Via`] whose entry starts invalid and gets its MAC from the slow
//! path.
//!
//! **ECMP groups** ([`NextHops::acquire_group`]): a multipath route points at a group id
//! whose entry carries a flag in `port` and names a slot of the bucket table: up to
//! [`crate::ecmp::MAX_BUCKETS`] member ids, each path in as many buckets as its weight asks
//! ([`crate::ecmp::buckets`]). A worker picks the bucket of its packet's flow hash
//! ([`NextHopTable::route`]), so a flow always takes the same member. Members are ordinary
//! next-hop ids (shared with single-path routes, their MACs updated in place); a group holds
//! a reference to each. Routes with the same paths and weights share one group. A group's
//! buckets are written before its entry is valid and never change while a route points at
//! it: a route whose paths change moves to another group, and the old one is retired like
//! any id (its slot with it).
//!
//! **Counters**: packets routed to each id, per worker (each writes only its own array, with
//! no atomic read-modify-write), summed by [`NextHopTable::packets`]. An id's count starts
//! from what it held when it was (re)filled, so a reused id does not inherit its old count.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crate::forward::{Hop, NextHop};
use crate::net::MacAddr;
use crate::port::PortIdx;
use crate::rcu::{Qsbr, Token};

/// The bit of an entry's `dst` word that says the MAC in its low 48 bits is valid.
const VALID: u64 = 1 << 63;
/// The bit that says the entry's MAC comes from the neighbour table: while it is not
/// valid, packets go to the slow path to be resolved ([`Hop::Resolve`]).
const RESOLVE: u64 = 1 << 62;
/// Set by a worker that sent through a resolved entry, cleared by the slow path when it
/// collects it ([`NextHopTable::take_used`]): the neighbour's "used" time, which decides
/// whether an expiring REACHABLE entry is probed (DELAY) or left to go STALE.
const USED: u64 = 1 << 61;

/// The bit of an entry's `port` word that makes it an ECMP group: then the low 8 bits hold
/// its bucket count and `src` its slot in the bucket table.
const GROUP: u32 = 1 << 31;

/// How many ECMP groups a table of `capacity` next hops has room for: one per 16 ids, at
/// least 16 and at most 65536 (each takes 256 bytes of buckets).
pub fn group_capacity(capacity: u32) -> u32 {
    (capacity / 16).clamp(16, 1 << 16)
}

/// A MAC in the low 48 bits of a word, its bytes in memory order (little-endian), so that
/// reading it back is a store of the word's first six bytes.
#[inline(always)]
fn mac_word(mac: MacAddr) -> u64 {
    let mut b = [0u8; 8];
    b[..6].copy_from_slice(&mac.0);
    u64::from_le_bytes(b)
}

#[inline(always)]
fn word_mac(w: u64) -> MacAddr {
    let b = w.to_le_bytes();
    let (mac, _) = b.split_first_chunk::<6>().expect("8 bytes hold 6");
    MacAddr(*mac)
}

/// How a next hop's destination MAC is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Via {
    /// Configured statically (a route's `via_mac` alone): never resolved.
    Mac(MacAddr),
    /// A gateway with a static MAC (a route's `via` and `via_mac`): a static neighbour
    /// entry, never resolved.
    Static(std::net::IpAddr, MacAddr),
    /// A gateway by address (a route's `via`): the entry starts invalid and the slow path
    /// gives it the MAC its neighbour table has for the gateway on the port
    /// ([`NextHopTable::set_neighbour`]), a static one when the route also has `via_mac`.
    Gateway(std::net::IpAddr),
    /// On-link (the connected subnet of a port's own address, or a route with neither
    /// `via` nor `via_mac`): every destination is its own neighbour. The entry is never
    /// valid; packets that reach it go to the slow path, which resolves their destination
    /// and installs a host route to it (a `Gateway` next hop, origin `neighbour`).
    Connected,
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Via::Mac(m) => write!(f, "{m}"),
            Via::Static(a, m) => write!(f, "{a} ({m})"),
            Via::Gateway(a) => write!(f, "{a}"),
            Via::Connected => f.write_str("on-link"),
        }
    }
}

/// What identifies a next hop: routes with the same key share one id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NextHopKey {
    /// The out port.
    pub port: PortIdx,
    /// The gateway.
    pub via: Via,
}

/// One entry: written only while no route points at its id (and no worker may still hold
/// the id), except `dst`, which may be updated in place (one atomic store).
#[derive(Debug, Default)]
#[repr(align(32))]
struct Entry {
    /// The out port ([`PortIdx`]).
    port: AtomicU32,
    /// The out port's own MAC, in the low 48 bits.
    src: AtomicU64,
    /// The gateway's MAC in the low 48 bits, [`VALID`], [`RESOLVE`] and [`USED`].
    dst: AtomicU64,
}

/// The entries the workers read, indexed by next-hop id.
#[derive(Debug)]
pub struct NextHopTable {
    entries: Box<[Entry]>,
    /// ECMP groups' member ids: slot `k` at `k * MAX_BUCKETS ..`.
    buckets: Box<[AtomicU32]>,
    /// Packets routed to each id, one array per counting reader ([`NextHopTable::counting`]).
    counters: Box<[Box<[AtomicU64]>]>,
    /// For each reader id (lcore, below [`crate::config::MAX_LCORES`]): its counter array, or
    /// `u8::MAX` for none.
    counter_of: [u8; crate::config::MAX_LCORES as usize],
    /// Set once the first ECMP group is filled, never cleared: until then no packet needs a
    /// flow hash to be routed ([`NextHopTable::has_groups`]).
    grouped: AtomicBool,
}

impl NextHopTable {
    /// A table of `capacity` invalid entries, [`group_capacity`] groups, no counters.
    pub fn new(capacity: u32) -> NextHopTable {
        NextHopTable::counting(capacity, &[])
    }

    /// As [`NextHopTable::new`], with a counter array for each of `readers` (the RCU reader
    /// ids of the workers, below [`crate::config::MAX_LCORES`]; at most 254 of them).
    pub fn counting(capacity: u32, readers: &[u32]) -> NextHopTable {
        let mut counter_of = [u8::MAX; crate::config::MAX_LCORES as usize];
        let mut counters = Vec::new();
        for &r in readers.iter().take(usize::from(u8::MAX - 1)) {
            if let Some(slot) = counter_of.get_mut(r as usize) {
                if *slot == u8::MAX {
                    *slot = counters.len() as u8;
                    counters.push((0..capacity).map(|_| AtomicU64::new(0)).collect());
                }
            }
        }
        let buckets = group_capacity(capacity) as usize * crate::ecmp::MAX_BUCKETS;
        NextHopTable {
            entries: (0..capacity).map(|_| Entry::default()).collect(),
            buckets: (0..buckets).map(|_| AtomicU32::new(0)).collect(),
            counters: counters.into_boxed_slice(),
            counter_of,
            grouped: AtomicBool::new(false),
        }
    }

    /// Whether an ECMP group was ever filled in this table: a burst whose routes can reach
    /// none needs no flow hash (or RSS hash) for routing. One relaxed load.
    #[inline]
    pub fn has_groups(&self) -> bool {
        self.grouped.load(Ordering::Relaxed)
    }

    /// How many ids it holds.
    pub fn capacity(&self) -> u32 {
        self.entries.len() as u32
    }

    /// The next hop with id `id`, if that entry is valid (its MAC known). On every routed
    /// packet's path: inline.
    #[inline(always)]
    pub fn get(&self, id: u32) -> Option<NextHop> {
        let e = self.entries.get(id as usize)?;
        // Acquire: `port` and `src` were written before `dst` was stored with Release.
        let dst = e.dst.load(Ordering::Acquire);
        if dst & VALID == 0 {
            return None;
        }
        let port = e.port.load(Ordering::Relaxed);
        if port & GROUP != 0 {
            return None;
        }
        Some(NextHop { port: PortIdx(port as u16), src: word_mac(e.src.load(Ordering::Relaxed)), dst: word_mac(dst) })
    }

    /// What a packet routed to `id` leads to, and the id it takes: `id`'s own, or for an
    /// ECMP group the member in the bucket of `flow()` (the packet's flow hash, asked for
    /// only then). A packet that goes to a member ([`Hop::Ready`], or [`Hop::Resolve`]: to
    /// the slow path, which resolves that member's neighbour) is counted for it, for reader
    /// `reader` (its RCU reader id) when it counts.
    #[inline]
    pub fn route(&self, id: u32, reader: u32, flow: impl FnOnce() -> u32) -> (u32, Hop) {
        let Some(e) = self.entries.get(id as usize) else { return (id, Hop::Missing) };
        let port = e.port.load(Ordering::Relaxed);
        let id = if port & GROUP != 0 && e.dst.load(Ordering::Acquire) & VALID != 0 {
            let n = (port & 0xff) as usize;
            let slot = e.src.load(Ordering::Relaxed) as usize;
            let bucket = crate::ecmp::pick(crate::ecmp::mix(flow()), n);
            match self.buckets.get(slot * crate::ecmp::MAX_BUCKETS + bucket) {
                Some(b) => b.load(Ordering::Relaxed),
                None => return (id, Hop::Missing),
            }
        } else {
            id
        };
        let hop = self.lookup(id);
        if hop != Hop::Missing {
            self.count(id, reader, 1);
        }
        (id, hop)
    }

    /// Counts `packets` more routed to `id` by reader `reader` (when it counts): what
    /// [`NextHopTable::route`] does for one packet, for a caller that routed several to the
    /// same id without asking again.
    #[inline]
    pub fn count(&self, id: u32, reader: u32, packets: u64) {
        if let Some(c) = self.counter_of.get(reader as usize).and_then(|&k| self.counters.get(usize::from(k))) {
            if let Some(n) = c.get(id as usize) {
                // This reader is the only writer of its array: a plain load and store.
                n.store(n.load(Ordering::Relaxed) + packets, Ordering::Relaxed);
            }
        }
    }

    /// Packets every counting reader routed to `id` so far (since the table was made).
    pub fn packets(&self, id: u32) -> u64 {
        self.counters.iter().filter_map(|c| c.get(id as usize)).map(|n| n.load(Ordering::Relaxed)).sum()
    }

    /// The member ids in the buckets of group `id` (empty when `id` is not a valid group).
    pub fn group_buckets(&self, id: u32) -> Vec<u32> {
        let Some(e) = self.entries.get(id as usize) else { return Vec::new() };
        let port = e.port.load(Ordering::Relaxed);
        if port & GROUP == 0 || e.dst.load(Ordering::Acquire) & VALID == 0 {
            return Vec::new();
        }
        let start = e.src.load(Ordering::Relaxed) as usize * crate::ecmp::MAX_BUCKETS;
        self.buckets[start..start + (port & 0xff) as usize].iter().map(|b| b.load(Ordering::Relaxed)).collect()
    }

    /// Fills entry `id` as a group of `members` (bucket order) in bucket slot `slot` (writer
    /// only, while no route points at it): the buckets first, the entry valid last.
    fn fill_group(&self, id: u32, slot: u32, members: &[u32]) {
        let start = slot as usize * crate::ecmp::MAX_BUCKETS;
        for (b, m) in self.buckets[start..].iter().zip(members) {
            b.store(*m, Ordering::Relaxed);
        }
        let e = &self.entries[id as usize];
        self.grouped.store(true, Ordering::Relaxed);
        e.port.store(GROUP | members.len() as u32, Ordering::Relaxed);
        e.src.store(u64::from(slot), Ordering::Relaxed);
        e.dst.store(VALID, Ordering::Release);
    }

    /// What id `id` leads to. A send through a resolved entry marks it used (one atomic
    /// OR, only when the mark is clear: at most once per collection by the slow path).
    #[inline]
    pub fn lookup(&self, id: u32) -> Hop {
        let Some(e) = self.entries.get(id as usize) else { return Hop::Missing };
        // Acquire: `port` and `src` were written before `dst` was stored with Release.
        let dst = e.dst.load(Ordering::Acquire);
        let port = e.port.load(Ordering::Relaxed);
        if port & GROUP != 0 {
            // A group is resolved to a member first ([`NextHopTable::route`]).
            return Hop::Missing;
        }
        let port = PortIdx(port as u16);
        if dst & VALID != 0 {
            if dst & (RESOLVE | USED) == RESOLVE {
                e.dst.fetch_or(USED, Ordering::Relaxed);
            }
            Hop::Ready(NextHop { port, src: word_mac(e.src.load(Ordering::Relaxed)), dst: word_mac(dst) })
        } else if dst & RESOLVE != 0 {
            Hop::Resolve { port, next_hop: id }
        } else {
            Hop::Missing
        }
    }

    /// Fills entry `id` (writer only, while no route points at it): a known `dst`, or, with
    /// `resolve`, an entry whose MAC the slow path will set.
    fn fill(&self, id: u32, port: PortIdx, src: MacAddr, dst: Option<MacAddr>, resolve: bool) {
        let e = &self.entries[id as usize];
        e.port.store(u32::from(port.0), Ordering::Relaxed);
        e.src.store(mac_word(src), Ordering::Relaxed);
        let flag = if resolve { RESOLVE } else { 0 };
        e.dst.store(dst.map_or(0, |m| mac_word(m) | VALID) | flag, Ordering::Release);
    }

    /// Sets (or, with `None`, invalidates: packets then go to the slow path) the neighbour
    /// MAC of resolved entry `id` in place. Workers see the old or the new MAC, never a mix
    /// (one atomic store).
    ///
    /// # Panics
    /// If `id` is not below the capacity.
    pub fn set_neighbour(&self, id: u32, mac: Option<MacAddr>) {
        self.entries[id as usize].dst.store(mac.map_or(0, |m| mac_word(m) | VALID) | RESOLVE, Ordering::Release);
    }

    /// Whether a worker sent through resolved entry `id` since the last call (clears the
    /// mark).
    ///
    /// # Panics
    /// If `id` is not below the capacity.
    pub fn take_used(&self, id: u32) -> bool {
        self.entries[id as usize].dst.fetch_and(!USED, Ordering::Relaxed) & USED != 0
    }
}

/// All next-hop ids are in use (and none is waiting for a grace period).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("next-hop table full ({capacity} next hops; raise fib.max_next_hops)")]
pub struct NextHopsFull {
    /// The table's capacity.
    pub capacity: u32,
}

/// One id in use.
#[derive(Debug, Clone, Copy)]
struct Slot {
    key: NextHopKey,
    refs: u32,
}

/// A next hop as [`NextHops::list`] shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHopInfo {
    /// Its id.
    pub id: u32,
    /// Port and gateway.
    pub key: NextHopKey,
    /// Routes (and ECMP groups) pointing at it.
    pub refs: u32,
    /// Packets the workers routed to it since it was filled.
    pub packets: u64,
}

/// The paths of an ECMP group: each next hop with its weight, in the order given.
pub type Paths = Vec<(NextHopKey, u16)>;

/// An ECMP group as [`NextHops::groups`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// Its id (what the routes point at).
    pub id: u32,
    /// Each path, its member id and its weight.
    pub members: Vec<(NextHopKey, u32, u16)>,
    /// How many buckets each member has, in `members` order.
    pub buckets: Vec<u32>,
    /// Routes pointing at it.
    pub refs: u32,
}

/// Every ECMP group slot is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ECMP group table full ({capacity} groups, one per 16 of fib.max_next_hops)")]
pub struct GroupsFull {
    /// How many groups there is room for.
    pub capacity: u32,
}

/// Why a group could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// No id left for the group or a member.
    #[error(transparent)]
    NextHops(#[from] NextHopsFull),
    /// No bucket slot left.
    #[error(transparent)]
    Groups(#[from] GroupsFull),
}

/// A group in use.
#[derive(Debug, Clone)]
struct Group {
    paths: Paths,
    /// The member ids, in `paths` order (each holds one reference for the group).
    members: Vec<u32>,
    slot: u32,
    refs: u32,
}

/// The writer's side of the next hops: allocation, sharing, and reuse after a grace period.
#[derive(Debug)]
pub struct NextHops {
    table: Arc<NextHopTable>,
    qsbr: Arc<Qsbr>,
    by_key: HashMap<NextHopKey, u32>,
    slots: Vec<Option<Slot>>,
    /// Ids free for reuse now, lowest last.
    free: Vec<u32>,
    /// Ids no route points at any more, with the token taken then: free once it is acked.
    pending: VecDeque<(Token, u32)>,
    /// ECMP groups by id, and by their paths.
    groups: HashMap<u32, Group>,
    group_of: HashMap<Paths, u32>,
    /// Free bucket slots, lowest last; a retired group's slot waits with its id.
    free_slots: Vec<u32>,
    retired_slots: HashMap<u32, u32>,
    /// Each id's packet count when it was last filled.
    base: Vec<u64>,
}

impl NextHops {
    /// `capacity` ids (at most 2^21, the largest IPv6 next hop `rte_lpm6` keeps), protected
    /// by `qsbr`'s grace periods.
    pub fn new(capacity: u32, qsbr: Arc<Qsbr>) -> NextHops {
        NextHops::with_table(Arc::new(NextHopTable::new(capacity)), qsbr)
    }

    /// As [`NextHops::new`], over a table made by the caller ([`NextHopTable::counting`]),
    /// of its capacity.
    pub fn with_table(table: Arc<NextHopTable>, qsbr: Arc<Qsbr>) -> NextHops {
        let capacity = table.capacity();
        NextHops {
            table,
            qsbr,
            by_key: HashMap::new(),
            slots: vec![None; capacity as usize],
            free: (0..capacity).rev().collect(),
            pending: VecDeque::new(),
            groups: HashMap::new(),
            group_of: HashMap::new(),
            free_slots: (0..group_capacity(capacity)).rev().collect(),
            retired_slots: HashMap::new(),
            base: vec![0; capacity as usize],
        }
    }

    /// The table the workers read.
    pub fn table(&self) -> &Arc<NextHopTable> {
        &self.table
    }

    /// An id for `key`: the one already shared by other routes (reference count + 1), or a
    /// new one filled with `src` (the out port's MAC) before it is returned.
    ///
    /// # Errors
    /// [`NextHopsFull`] when every id is in use, even after waiting for a grace period.
    pub fn acquire(&mut self, key: NextHopKey, src: MacAddr) -> Result<u32, NextHopsFull> {
        if let Some(&id) = self.by_key.get(&key) {
            if let Some(slot) = &mut self.slots[id as usize] {
                slot.refs += 1;
            }
            return Ok(id);
        }
        let id = self.alloc()?;
        let (dst, resolve) = match key.via {
            Via::Mac(m) | Via::Static(_, m) => (Some(m), false),
            Via::Gateway(_) | Via::Connected => (None, true),
        };
        self.table.fill(id, key.port, src, dst, resolve);
        self.slots[id as usize] = Some(Slot { key, refs: 1 });
        self.by_key.insert(key, id);
        Ok(id)
    }

    /// A free id (after a grace period if none is free now), its count base set.
    fn alloc(&mut self) -> Result<u32, NextHopsFull> {
        self.reclaim(false);
        if self.free.is_empty() && !self.pending.is_empty() {
            self.reclaim(true);
        }
        let id = self.free.pop().ok_or(NextHopsFull { capacity: self.table.capacity() })?;
        self.base[id as usize] = self.table.packets(id);
        Ok(id)
    }

    /// An id of its own that stays invalid for ever: what routes that drop point at.
    ///
    /// # Errors
    /// [`NextHopsFull`] when no id is free.
    pub fn reserve(&mut self) -> Result<u32, NextHopsFull> {
        self.alloc()
    }

    /// An id for an ECMP group of `paths` (at least two; at most
    /// [`crate::ecmp::MAX_BUCKETS`] are used): the one already shared by other routes with
    /// the same paths and weights, or a new one whose members are acquired (`src_of` gives
    /// each port's MAC) and whose buckets are filled before it is returned.
    ///
    /// # Errors
    /// [`GroupError`] when no id or no bucket slot is left; nothing is held then.
    pub fn acquire_group(&mut self, paths: &[(NextHopKey, u16)], src_of: &dyn Fn(PortIdx) -> MacAddr) -> Result<u32, GroupError> {
        let paths: Paths = paths.iter().take(crate::ecmp::MAX_BUCKETS).copied().collect();
        if let Some(&id) = self.group_of.get(&paths) {
            if let Some(g) = self.groups.get_mut(&id) {
                g.refs += 1;
            }
            return Ok(id);
        }
        let mut members = Vec::with_capacity(paths.len());
        let undo = |nh: &mut NextHops, members: &[u32]| members.iter().for_each(|&m| nh.release(m));
        for (key, _) in &paths {
            match self.acquire(*key, src_of(key.port)) {
                Ok(m) => members.push(m),
                Err(e) => {
                    undo(self, &members);
                    return Err(e.into());
                }
            }
        }
        if self.free_slots.is_empty() && !self.retired_slots.is_empty() {
            self.reclaim(true);
        }
        let Some(slot) = self.free_slots.pop() else {
            undo(self, &members);
            return Err(GroupsFull { capacity: group_capacity(self.table.capacity()) }.into());
        };
        let id = match self.alloc() {
            Ok(id) => id,
            Err(e) => {
                self.free_slots.push(slot);
                undo(self, &members);
                return Err(e.into());
            }
        };
        let weights: Vec<u16> = paths.iter().map(|p| p.1).collect();
        let buckets: Vec<u32> = crate::ecmp::buckets(&weights).iter().map(|&i| members[usize::from(i)]).collect();
        self.table.fill_group(id, slot, &buckets);
        self.group_of.insert(paths.clone(), id);
        self.groups.insert(id, Group { paths, members, slot, refs: 1 });
        Ok(id)
    }

    /// Drops one reference to `id`; the last one retires it: call only once no route points
    /// at it any more (the LPM change is made), so the token taken here covers every worker
    /// that could have read it. A group's last reference releases its members too.
    pub fn release(&mut self, id: u32) {
        if let Some(g) = self.groups.get_mut(&id) {
            g.refs -= 1;
            if g.refs == 0 {
                let g = self.groups.remove(&id).expect("present above");
                self.group_of.remove(&g.paths);
                self.pending.push_back((self.qsbr.start(), id));
                self.retired_slots.insert(id, g.slot);
                for m in g.members {
                    self.release(m);
                }
            }
            return;
        }
        let Some(slot) = &mut self.slots[id as usize] else { return };
        slot.refs -= 1;
        if slot.refs == 0 {
            let key = slot.key;
            self.slots[id as usize] = None;
            self.by_key.remove(&key);
            self.pending.push_back((self.qsbr.start(), id));
        }
    }

    /// Frees the retired ids whose grace period is over (waiting for one first if `wait`).
    fn reclaim(&mut self, wait: bool) {
        if wait {
            self.qsbr.synchronize();
        }
        while let Some(&(token, id)) = self.pending.front() {
            if !self.qsbr.check(token) {
                break;
            }
            self.pending.pop_front();
            self.free.push(id);
            if let Some(slot) = self.retired_slots.remove(&id) {
                self.free_slots.push(slot);
            }
        }
    }

    /// The id of `key`, if in use.
    pub fn id(&self, key: &NextHopKey) -> Option<u32> {
        self.by_key.get(key).copied()
    }

    /// The key of id `id`, if in use.
    pub fn key(&self, id: u32) -> Option<NextHopKey> {
        self.slots.get(id as usize).copied().flatten().map(|s| s.key)
    }

    /// Ids in use (next hops and ECMP groups).
    pub fn in_use(&self) -> usize {
        self.by_key.len() + self.groups.len()
    }

    /// Every ECMP group in use, by id.
    pub fn groups(&self) -> Vec<GroupInfo> {
        let mut v: Vec<GroupInfo> = self
            .groups
            .iter()
            .map(|(&id, g)| {
                let buckets = self.table.group_buckets(id);
                GroupInfo {
                    id,
                    members: g.paths.iter().zip(&g.members).map(|(p, &m)| (p.0, m, p.1)).collect(),
                    buckets: g.members.iter().map(|m| buckets.iter().filter(|&&b| b == *m).count() as u32).collect(),
                    refs: g.refs,
                }
            })
            .collect();
        v.sort_by_key(|g| g.id);
        v
    }

    /// The paths of group `id`, if it is one.
    pub fn group(&self, id: u32) -> Option<&Paths> {
        self.groups.get(&id).map(|g| &g.paths)
    }

    /// Packets routed to `id` since it was filled.
    pub fn packets(&self, id: u32) -> u64 {
        self.table.packets(id).saturating_sub(self.base.get(id as usize).copied().unwrap_or(0))
    }

    /// Ids waiting for a grace period before reuse.
    pub fn retired(&self) -> usize {
        self.pending.len()
    }

    /// The capacity.
    pub fn capacity(&self) -> u32 {
        self.table.capacity()
    }

    /// Every id in use, by id.
    pub fn list(&self) -> Vec<NextHopInfo> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(id, s)| {
                s.map(|s| NextHopInfo { id: id as u32, key: s.key, refs: s.refs, packets: self.packets(id as u32) })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);
    const G1: MacAddr = MacAddr([2, 0, 0, 0, 1, 1]);
    const G2: MacAddr = MacAddr([2, 0, 0, 0, 2, 2]);

    fn key(port: u16, gw: MacAddr) -> NextHopKey {
        NextHopKey { port: PortIdx(port), via: Via::Mac(gw) }
    }

    #[test]
    fn mac_words_round_trip_and_never_look_valid_alone() {
        for m in [MacAddr([0; 6]), MacAddr([0xff; 6]), G1] {
            assert_eq!(word_mac(mac_word(m)), m);
            assert_eq!(mac_word(m) & VALID, 0);
        }
    }

    #[test]
    fn keys_are_shared_and_refcounted() {
        let q = Qsbr::new(2).unwrap();
        let mut nh = NextHops::new(4, q);
        let a = nh.acquire(key(0, G1), A).unwrap();
        let b = nh.acquire(key(0, G1), A).unwrap();
        let c = nh.acquire(key(1, G1), A).unwrap();
        assert_eq!(a, b, "same port and gateway: one id");
        assert_ne!(a, c);
        assert_eq!(nh.table().get(a), Some(NextHop { port: PortIdx(0), src: A, dst: G1 }));
        assert_eq!(nh.in_use(), 2);
        nh.release(a);
        assert_eq!(nh.key(a), Some(key(0, G1)), "one route still points at it");
        nh.release(a);
        assert_eq!((nh.key(a), nh.in_use(), nh.retired()), (None, 1, 1));
        assert_eq!(nh.table().get(a), Some(NextHop { port: PortIdx(0), src: A, dst: G1 }), "the entry is left alone");
    }

    #[test]
    fn a_retired_id_waits_for_a_grace_period() {
        let q = Qsbr::new(2).unwrap();
        let mut reader = q.register(0).unwrap();
        let mut nh = NextHops::new(2, q.clone());
        let a = nh.acquire(key(0, G1), A).unwrap();
        let _b = nh.acquire(key(0, G2), A).unwrap();
        nh.release(a);
        // The reader has not quiesced: the id cannot be reused, and with every other id in
        // use an acquire would wait for it. Let the reader report from another thread.
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            reader.quiescent();
            reader
        });
        let c = nh.acquire(key(1, G2), A).unwrap();
        assert_eq!(c, a, "reused after the grace period");
        assert_eq!(nh.table().get(c), Some(NextHop { port: PortIdx(1), src: A, dst: G2 }));
        drop(t.join().unwrap());
        assert_eq!(nh.acquire(key(1, G1), A), Err(NextHopsFull { capacity: 2 }));
    }

    #[test]
    fn neighbour_updates_are_in_place() {
        let t = NextHopTable::new(1);
        t.fill(0, PortIdx(3), A, None, true);
        assert_eq!(t.get(0), None, "no MAC yet");
        assert_eq!(t.lookup(0), Hop::Resolve { port: PortIdx(3), next_hop: 0 }, "to be resolved");
        t.set_neighbour(0, Some(G2));
        assert_eq!(t.get(0), Some(NextHop { port: PortIdx(3), src: A, dst: G2 }));
        assert!(!t.take_used(0));
        assert_eq!(t.lookup(0), Hop::Ready(NextHop { port: PortIdx(3), src: A, dst: G2 }));
        assert!(t.take_used(0), "a send marks it used");
        assert!(!t.take_used(0), "taking clears the mark");
        assert_eq!(t.lookup(0), Hop::Ready(NextHop { port: PortIdx(3), src: A, dst: G2 }), "the mark is not the MAC");
        t.set_neighbour(0, None);
        assert_eq!(t.lookup(0), Hop::Resolve { port: PortIdx(3), next_hop: 0 }, "invalidated: back to the slow path");
        assert_eq!(t.get(1), None, "out of range");
        assert_eq!(t.lookup(1), Hop::Missing);
        let s = NextHopTable::new(1);
        s.fill(0, PortIdx(1), A, Some(G1), false);
        assert_eq!(s.lookup(0), Hop::Ready(NextHop { port: PortIdx(1), src: A, dst: G1 }));
        assert!(!s.take_used(0), "static next hops are not marked");
    }

    #[test]
    fn groups_spread_flows_by_weight_and_count_per_member() {
        let q = Qsbr::new(4).unwrap();
        let table = Arc::new(NextHopTable::counting(64, &[1, 3]));
        let mut nh = NextHops::with_table(table.clone(), q);
        let src = |_| A;
        let single = nh.acquire(key(0, G1), A).unwrap();
        let g = nh.acquire_group(&[(key(0, G1), 1), (key(1, G2), 3)], &src).unwrap();
        assert_eq!(nh.acquire_group(&[(key(0, G1), 1), (key(1, G2), 3)], &src), Ok(g), "same paths: one group");
        assert_ne!(nh.acquire_group(&[(key(0, G1), 1), (key(1, G2), 1)], &src).unwrap(), g, "other weights: another");
        assert_eq!(table.get(g), None, "a group is no next hop by itself");
        let info = nh.groups().into_iter().find(|i| i.id == g).unwrap();
        assert_eq!(info.members[0].1, single, "the member is the id single-path routes share");
        assert_eq!((info.buckets.clone(), info.refs), (vec![1, 3], 2));
        // 4000 flows: each lands on one member, always the same; shares follow the weights.
        let mut per = HashMap::new();
        for flow in 0..4000u32 {
            let (m, hop) = table.route(g, 1, || flow);
            let Hop::Ready(hop) = hop else { panic!("{hop:?}") };
            assert_eq!(table.route(g, 3, || flow).0, m, "one flow, one member");
            *per.entry(hop.port.0).or_insert(0u32) += 1;
        }
        assert!(per[&0].abs_diff(1000) < 150 && per[&1].abs_diff(3000) < 150, "{per:?}");
        let second = info.members[1].1;
        assert_eq!((nh.packets(single), nh.packets(second)), (u64::from(per[&0]) * 2, u64::from(per[&1]) * 2));
        // A reader without counters, and a single id, resolve too; only counting readers count.
        assert_eq!(table.route(single, 2, || panic!("no hash for a single next hop")).0, single);
        assert_eq!(nh.packets(single), u64::from(per[&0]) * 2);
        assert_eq!(table.route(single, 1, || 0).1, Hop::Ready(NextHop { port: PortIdx(0), src: A, dst: G1 }));
        assert_eq!(nh.packets(single), u64::from(per[&0]) * 2 + 1);
    }

    #[test]
    fn a_group_releases_its_members_and_its_slot_after_a_grace_period() {
        let q = Qsbr::new(2).unwrap();
        let mut nh = NextHops::new(16, q);
        let src = |_| A;
        let g = nh.acquire_group(&[(key(0, G1), 1), (key(1, G2), 1)], &src).unwrap();
        assert_eq!((nh.in_use(), nh.groups().len()), (3, 1));
        nh.release(g);
        assert_eq!((nh.in_use(), nh.groups().len(), nh.retired()), (0, 0, 3), "group and both members retired");
        assert!(nh.group(g).is_none());
        // No reader is online: the grace period is over at once, ids and the slot come back.
        for _ in 0..group_capacity(16) + 2 {
            let g = nh.acquire_group(&[(key(0, G1), 1), (key(1, G2), 1)], &src).unwrap();
            nh.release(g);
        }
        assert!(nh.table().group_buckets(g).len() <= 2);
    }

    #[test]
    fn groups_full_holds_nothing() {
        let q = Qsbr::new(2).unwrap();
        let mut nh = NextHops::new(64, q);
        let src = |_| A;
        let mut held = Vec::new();
        let err = loop {
            let w = held.len() as u16 + 1;
            match nh.acquire_group(&[(key(0, G1), 1), (key(1, G2), w)], &src) {
                Ok(g) => held.push(g),
                Err(e) => break e,
            }
        };
        assert_eq!(err, GroupError::Groups(GroupsFull { capacity: group_capacity(64) }));
        assert_eq!(nh.in_use(), 2 + held.len(), "the failed group left no member reference behind");
        let single = nh.acquire(key(0, G1), A).unwrap();
        nh.release(single);
        assert_eq!(nh.list()[0].refs, held.len() as u32);
    }

    #[test]
    fn a_reused_id_starts_counting_from_zero() {
        let q = Qsbr::new(2).unwrap();
        let table = Arc::new(NextHopTable::counting(1, &[0]));
        let mut nh = NextHops::with_table(table.clone(), q);
        let a = nh.acquire(key(0, G1), A).unwrap();
        for _ in 0..5 {
            table.route(a, 0, || 0);
        }
        assert_eq!(nh.packets(a), 5);
        nh.release(a);
        let b = nh.acquire(key(1, G2), A).unwrap();
        assert_eq!((b, nh.packets(b)), (a, 0));
    }
}
