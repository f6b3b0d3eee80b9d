//! zebra's table as the FPM side knows it, and what each frame changes in it.
//!
//! [`Rib`] holds every route zebra sent that it has not deleted, each stamped with the
//! session (generation) that last sent it. Its rules:
//!
//! - A frame is applied as one step: its messages are folded per key first, so zebra's
//!   `RTM_DELROUTE` + `RTM_NEWROUTE` of one prefix becomes a single replace and the route
//!   is never absent in between.
//! - An upsert of the route exactly as held is no change (a replay re-sends every route):
//!   it only renews the stamp, so nothing is re-installed and nothing is duplicated.
//! - When zebra (re)connects, a new generation starts and the previous routes stay in
//!   place. Once the session is at least `sweep_after` old **and** its stream has been
//!   quiet for `replay_quiet` (zebra sends no end-of-replay marker), the routes the new
//!   session has not re-sent are removed (mark and sweep). A session that ends earlier
//!   sweeps nothing: the forwarder keeps its last table until a session completes.
//!
//! Time is a parameter (`Instant`), so the rules are tested on a fake clock.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::wire::{Message, Protocol, Route, RouteKey};

/// One change to pass on to the forwarding table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Install, or replace the route of the same key.
    Upsert(Route),
    /// Remove the route of this key.
    Delete(RouteKey),
}

/// When stale routes are swept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepTiming {
    /// Least age of a session before it may sweep.
    pub sweep_after: Duration,
    /// How long its stream must have been quiet.
    pub replay_quiet: Duration,
}

/// What one frame (or a sweep) did, for the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Routes installed or replaced.
    pub upserts: u64,
    /// Routes removed.
    pub deletes: u64,
    /// Upserts of a route exactly as held (replays).
    pub unchanged: u64,
    /// Deletes of a key not held.
    pub unknown_deletes: u64,
    /// Messages that were not routes the forwarder takes.
    pub skipped: u64,
}

#[derive(Debug)]
struct Held {
    route: Route,
    generation: u64,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    since: Instant,
    last: Instant,
}

/// The routes zebra has installed, with the session bookkeeping around them.
#[derive(Debug, Default)]
pub struct Rib {
    routes: BTreeMap<RouteKey, Held>,
    by_protocol: BTreeMap<Protocol, usize>,
    generation: u64,
    /// The current session, until it swept (`None` when no session runs or it has swept).
    pending: Option<Pending>,
}

impl Rib {
    /// An empty table.
    pub fn new() -> Rib {
        Rib::default()
    }

    /// Routes held.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether no route is held.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Routes held per protocol (origin).
    pub fn by_protocol(&self) -> &BTreeMap<Protocol, usize> {
        &self.by_protocol
    }

    /// The route held for `key`.
    pub fn get(&self, key: &RouteKey) -> Option<&Route> {
        self.routes.get(key).map(|h| &h.route)
    }

    /// Every route held, in key order.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.values().map(|h| &h.route)
    }

    /// A session started (zebra connected and is about to replay its table).
    pub fn connected(&mut self, now: Instant) {
        self.generation += 1;
        self.pending = Some(Pending { since: now, last: now });
    }

    /// The session ended; nothing is swept and every route stays.
    pub fn disconnected(&mut self) {
        self.pending = None;
    }

    /// Applies one frame's messages, in order, as one step, appending the net changes to
    /// `out`.
    pub fn apply_frame(&mut self, messages: Vec<Message>, now: Instant, out: &mut Vec<Change>) -> Applied {
        let mut applied = Applied::default();
        if let Some(p) = &mut self.pending {
            p.last = now;
        }
        // Net effect per key: the last message wins (DEL then NEW = NEW; NEW then DEL = DEL).
        let mut net: Vec<(RouteKey, Option<Route>)> = Vec::with_capacity(messages.len());
        for m in messages {
            let (key, route) = match m {
                Message::Upsert(r) => (r.key, Some(r)),
                Message::Delete(k) => (k, None),
                Message::Skipped(_) => {
                    applied.skipped += 1;
                    continue;
                }
            };
            match net.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = route,
                None => net.push((key, route)),
            }
        }
        for (key, route) in net {
            match route {
                Some(r) => self.upsert(r, out, &mut applied),
                None => self.delete(key, out, &mut applied),
            }
        }
        applied
    }

    fn upsert(&mut self, route: Route, out: &mut Vec<Change>, applied: &mut Applied) {
        let generation = self.generation;
        match self.routes.entry(route.key) {
            Entry::Occupied(mut e) => {
                let held = e.get_mut();
                held.generation = generation;
                if held.route == route {
                    applied.unchanged += 1;
                    return;
                }
                let old = held.route.protocol;
                held.route = route.clone();
                count(&mut self.by_protocol, old, -1);
            }
            Entry::Vacant(e) => {
                e.insert(Held { route: route.clone(), generation });
            }
        }
        count(&mut self.by_protocol, route.protocol, 1);
        applied.upserts += 1;
        out.push(Change::Upsert(route));
    }

    fn delete(&mut self, key: RouteKey, out: &mut Vec<Change>, applied: &mut Applied) {
        match self.routes.remove(&key) {
            Some(held) => {
                count(&mut self.by_protocol, held.route.protocol, -1);
                applied.deletes += 1;
                out.push(Change::Delete(key));
            }
            None => applied.unknown_deletes += 1,
        }
    }

    /// Whether the current session should sweep now.
    pub fn sweep_due(&self, now: Instant, timing: SweepTiming) -> bool {
        self.pending.is_some_and(|p| {
            now.saturating_duration_since(p.since) >= timing.sweep_after
                && now.saturating_duration_since(p.last) >= timing.replay_quiet
        })
    }

    /// Removes every route the current session has not sent (appending the deletes to
    /// `out`) and ends its replay; later calls do nothing until the next session.
    pub fn sweep(&mut self, out: &mut Vec<Change>) -> Applied {
        let mut applied = Applied::default();
        if self.pending.take().is_none() {
            return applied;
        }
        let generation = self.generation;
        let stale: Vec<RouteKey> = self.routes.iter().filter(|(_, h)| h.generation != generation).map(|(k, _)| *k).collect();
        for key in stale {
            self.delete(key, out, &mut applied);
        }
        applied
    }
}

fn count(map: &mut BTreeMap<Protocol, usize>, p: Protocol, delta: isize) {
    let n = map.entry(p).or_insert(0);
    *n = n.saturating_add_signed(delta);
    if *n == 0 {
        map.remove(&p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fpm::wire::tests::{key, via4, STATIC_ECMP};
    use crate::fpm::wire::{decode_stream, RouteKind};

    const TIMING: SweepTiming = SweepTiming { sweep_after: Duration::from_secs(10), replay_quiet: Duration::from_secs(1) };

    fn route(prefix: &str, gw: [u8; 4], proto: u8) -> Route {
        Route { key: key(prefix), protocol: Protocol(proto), kind: RouteKind::Unicast, next_hops: vec![via4(gw, 10)] }
    }

    fn frame(rib: &mut Rib, msgs: Vec<Message>, now: Instant) -> (Vec<Change>, Applied) {
        let mut out = Vec::new();
        let a = rib.apply_frame(msgs, now, &mut out);
        (out, a)
    }

    #[test]
    fn delete_and_new_in_one_frame_is_one_replace() {
        let (mut rib, t0) = (Rib::new(), Instant::now());
        rib.connected(t0);
        let a = route("10.9.0.0/16", [10, 0, 2, 2], 196);
        let b = route("10.9.0.0/16", [10, 0, 3, 2], 196);
        frame(&mut rib, vec![Message::Upsert(a)], t0);
        let (changes, applied) = frame(&mut rib, vec![Message::Delete(key("10.9.0.0/16")), Message::Upsert(b.clone())], t0);
        assert_eq!(changes, [Change::Upsert(b.clone())]);
        assert_eq!((applied.upserts, applied.deletes), (1, 0));
        assert_eq!(rib.get(&key("10.9.0.0/16")), Some(&b));
        // NEW then DEL of one key in one frame: the route is gone, never installed.
        let c = route("10.7.0.0/16", [10, 0, 2, 2], 196);
        let (changes, _) = frame(&mut rib, vec![Message::Upsert(c), Message::Delete(key("10.7.0.0/16"))], t0);
        assert_eq!(changes, []);
        assert_eq!(rib.len(), 1);
    }

    #[test]
    fn replay_changes_nothing_and_sweeps_what_was_not_resent() {
        let (mut rib, t0) = (Rib::new(), Instant::now());
        rib.connected(t0);
        let keep = route("10.9.0.0/16", [10, 0, 2, 2], 196);
        let moved = route("10.8.0.0/16", [10, 0, 2, 2], 196);
        let gone = route("198.51.100.0/24", [10, 0, 2, 2], 186);
        for r in [&keep, &moved, &gone] {
            frame(&mut rib, vec![Message::Upsert(r.clone())], t0);
        }
        assert!(!rib.sweep_due(t0 + Duration::from_secs(9), TIMING));
        assert!(rib.sweep_due(t0 + Duration::from_secs(10), TIMING));
        assert_eq!(rib.sweep(&mut Vec::new()), Applied::default(), "a first session has nothing stale");
        assert!(!rib.sweep_due(t0 + Duration::from_secs(60), TIMING), "a session sweeps once");
        assert_eq!(rib.by_protocol()[&Protocol::STATIC], 2);

        // zebra restarts: a new session re-sends two of the three, one of them changed.
        let t1 = t0 + Duration::from_secs(100);
        rib.disconnected();
        rib.connected(t1);
        let (changes, applied) = frame(&mut rib, vec![Message::Upsert(keep.clone())], t1);
        assert_eq!((changes, applied.unchanged), (vec![], 1));
        let moved2 = route("10.8.0.0/16", [10, 0, 3, 2], 196);
        let (changes, _) = frame(&mut rib, vec![Message::Upsert(moved2.clone())], t1 + Duration::from_millis(9_800));
        assert_eq!(changes, [Change::Upsert(moved2)]);
        assert_eq!(rib.len(), 3, "nothing leaves before the sweep");
        // Old enough, but the stream was busy a moment ago.
        assert!(!rib.sweep_due(t1 + Duration::from_millis(10_500), TIMING));
        assert!(rib.sweep_due(t1 + Duration::from_secs(11), TIMING));
        let mut out = Vec::new();
        let applied = rib.sweep(&mut out);
        assert_eq!((out, applied.deletes), (vec![Change::Delete(gone.key)], 1));
        assert_eq!(rib.by_protocol().get(&Protocol::BGP), None);
        assert_eq!(rib.len(), 2);
    }

    #[test]
    fn a_session_that_ends_before_its_sweep_removes_nothing() {
        let (mut rib, t0) = (Rib::new(), Instant::now());
        rib.connected(t0);
        frame(&mut rib, vec![Message::Upsert(route("10.9.0.0/16", [10, 0, 2, 2], 196))], t0);
        rib.disconnected();
        rib.connected(t0 + Duration::from_secs(1));
        rib.disconnected();
        assert!(!rib.sweep_due(t0 + Duration::from_secs(60), TIMING));
        assert_eq!(rib.sweep(&mut Vec::new()).deletes, 0);
        assert_eq!(rib.len(), 1);
    }

    #[test]
    fn unknown_deletes_and_skipped_messages_are_counted() {
        let (mut rib, t0) = (Rib::new(), Instant::now());
        let (changes, applied) = frame(
            &mut rib,
            vec![Message::Delete(key("10.1.0.0/16")), Message::Skipped(crate::fpm::wire::Skipped::Family(28))],
            t0,
        );
        assert_eq!(changes, []);
        assert_eq!((applied.unknown_deletes, applied.skipped), (1, 1));
    }

    /// The captured staticd stream, replayed twice as zebra does after a reconnect: the
    /// second pass changes nothing and the sweep removes nothing.
    #[test]
    fn captured_stream_replayed() {
        let (mut rib, t0) = (Rib::new(), Instant::now());
        let mut first = Vec::new();
        rib.connected(t0);
        for f in decode_stream(STATIC_ECMP) {
            rib.apply_frame(f.unwrap(), t0, &mut first);
        }
        let held: Vec<Route> = rib.routes().cloned().collect();
        assert_eq!(held.len(), 11);
        assert_eq!(rib.by_protocol()[&Protocol::KERNEL], 6);

        // A replay sends the final table.
        rib.disconnected();
        rib.connected(t0);
        let mut changes = Vec::new();
        let mut unchanged = 0;
        for r in &held {
            unchanged += rib.apply_frame(vec![Message::Upsert(r.clone())], t0, &mut changes).unchanged;
        }
        assert_eq!((changes.len(), unchanged), (0, 11));
        assert_eq!(rib.sweep(&mut changes).deletes, 0);
    }
}
