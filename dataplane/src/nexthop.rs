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
//! path; an ECMP group is an id whose entry names a range of member ids (a flag in `port`).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
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
}

impl NextHopTable {
    /// A table of `capacity` invalid entries.
    pub fn new(capacity: u32) -> NextHopTable {
        NextHopTable { entries: (0..capacity).map(|_| Entry::default()).collect() }
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
        Some(NextHop {
            port: PortIdx(e.port.load(Ordering::Relaxed) as u16),
            src: word_mac(e.src.load(Ordering::Relaxed)),
            dst: word_mac(dst),
        })
    }

    /// What id `id` leads to. A send through a resolved entry marks it used (one atomic
    /// OR, only when the mark is clear: at most once per collection by the slow path).
    #[inline]
    pub fn lookup(&self, id: u32) -> Hop {
        let Some(e) = self.entries.get(id as usize) else { return Hop::Missing };
        // Acquire: `port` and `src` were written before `dst` was stored with Release.
        let dst = e.dst.load(Ordering::Acquire);
        let port = PortIdx(e.port.load(Ordering::Relaxed) as u16);
        if dst & VALID != 0 {
            if dst & (RESOLVE | USED) == RESOLVE {
                e.dst.fetch_or(USED, Ordering::Relaxed);
            }
            Hop::Ready(NextHop { port, src: word_mac(e.src.load(Ordering::Relaxed)), dst: word_mac(dst) })
        } else if dst & RESOLVE != 0 {
            Hop::Resolve(port)
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
    /// Routes pointing at it.
    pub refs: u32,
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
}

impl NextHops {
    /// `capacity` ids (at most 2^21, the largest IPv6 next hop `rte_lpm6` keeps), protected
    /// by `qsbr`'s grace periods.
    pub fn new(capacity: u32, qsbr: Arc<Qsbr>) -> NextHops {
        NextHops {
            table: Arc::new(NextHopTable::new(capacity)),
            qsbr,
            by_key: HashMap::new(),
            slots: vec![None; capacity as usize],
            free: (0..capacity).rev().collect(),
            pending: VecDeque::new(),
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
        self.reclaim(false);
        if self.free.is_empty() && !self.pending.is_empty() {
            self.reclaim(true);
        }
        let id = self.free.pop().ok_or(NextHopsFull { capacity: self.table.capacity() })?;
        let (dst, resolve) = match key.via {
            Via::Mac(m) | Via::Static(_, m) => (Some(m), false),
            Via::Gateway(_) | Via::Connected => (None, true),
        };
        self.table.fill(id, key.port, src, dst, resolve);
        self.slots[id as usize] = Some(Slot { key, refs: 1 });
        self.by_key.insert(key, id);
        Ok(id)
    }

    /// Drops one reference to `id`; the last one retires it: call only once no route points
    /// at it any more (the LPM change is made), so the token taken here covers every worker
    /// that could have read it.
    pub fn release(&mut self, id: u32) {
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

    /// Ids in use.
    pub fn in_use(&self) -> usize {
        self.by_key.len()
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
            .filter_map(|(id, s)| s.map(|s| NextHopInfo { id: id as u32, key: s.key, refs: s.refs }))
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
        assert_eq!(t.lookup(0), Hop::Resolve(PortIdx(3)), "to be resolved");
        t.set_neighbour(0, Some(G2));
        assert_eq!(t.get(0), Some(NextHop { port: PortIdx(3), src: A, dst: G2 }));
        assert!(!t.take_used(0));
        assert_eq!(t.lookup(0), Hop::Ready(NextHop { port: PortIdx(3), src: A, dst: G2 }));
        assert!(t.take_used(0), "a send marks it used");
        assert!(!t.take_used(0), "taking clears the mark");
        assert_eq!(t.lookup(0), Hop::Ready(NextHop { port: PortIdx(3), src: A, dst: G2 }), "the mark is not the MAC");
        t.set_neighbour(0, None);
        assert_eq!(t.lookup(0), Hop::Resolve(PortIdx(3)), "invalidated: back to the slow path");
        assert_eq!(t.get(1), None, "out of range");
        assert_eq!(t.lookup(1), Hop::Missing);
        let s = NextHopTable::new(1);
        s.fill(0, PortIdx(1), A, Some(G1), false);
        assert_eq!(s.lookup(0), Hop::Ready(NextHop { port: PortIdx(1), src: A, dst: G1 }));
        assert!(!s.take_used(0), "static next hops are not marked");
    }
}
