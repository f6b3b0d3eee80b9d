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

use crate::forward::NextHop;
use crate::net::MacAddr;
use crate::port::PortIdx;
use crate::rcu::{Qsbr, Token};

/// The bit of an entry's `dst` word that says the MAC in its low 48 bits is valid.
const VALID: u64 = 1 << 63;

fn mac_word(mac: MacAddr) -> u64 {
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(&mac.0);
    u64::from_be_bytes(b)
}

fn word_mac(w: u64) -> MacAddr {
    let b = w.to_be_bytes();
    MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// How a next hop's destination MAC is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Via {
    /// Configured statically (a route's `via_mac`): a static neighbour.
    Mac(MacAddr),
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Via::Mac(m) => write!(f, "{m}"),
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
    /// The gateway's MAC in the low 48 bits, and [`VALID`].
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

    /// The next hop with id `id`, if that entry is valid (its MAC known).
    #[inline]
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

    /// Fills entry `id` (writer only, while no route points at it).
    fn fill(&self, id: u32, port: PortIdx, src: MacAddr, dst: Option<MacAddr>) {
        let e = &self.entries[id as usize];
        e.port.store(u32::from(port.0), Ordering::Relaxed);
        e.src.store(mac_word(src), Ordering::Relaxed);
        e.dst.store(dst.map_or(0, |m| mac_word(m) | VALID), Ordering::Release);
    }

    /// Sets (or, with `None`, invalidates) the gateway MAC of entry `id` in place: for the
    /// neighbour resolution that fills next hops given by address. Workers see the old or
    /// the new MAC, never a mix (one atomic store).
    ///
    /// # Panics
    /// If `id` is not below the capacity.
    pub fn set_neighbour(&self, id: u32, mac: Option<MacAddr>) {
        self.entries[id as usize].dst.store(mac.map_or(0, |m| mac_word(m) | VALID), Ordering::Release);
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
        let dst = match key.via {
            Via::Mac(m) => Some(m),
        };
        self.table.fill(id, key.port, src, dst);
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
        t.fill(0, PortIdx(3), A, None);
        assert_eq!(t.get(0), None, "no MAC yet");
        t.set_neighbour(0, Some(G2));
        assert_eq!(t.get(0), Some(NextHop { port: PortIdx(3), src: A, dst: G2 }));
        assert_eq!(t.get(1), None, "out of range");
    }
}
