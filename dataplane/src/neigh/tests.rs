//! The state machine on a fake clock: every transition the kernel makes, the RFC 4861
//! 7.2.5 update rules for every state and input, held packets, timers, collection.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::*;
use crate::net::MacAddr;
use crate::port::PortIdx;

const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);
const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xb]);
const START: Duration = Duration::from_secs(1000);

fn k4(n: u8) -> NeighKey {
    NeighKey { port: PortIdx(0), addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)) }
}

fn k6(n: u16) -> NeighKey {
    NeighKey { port: PortIdx(1), addr: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n)) }
}

fn v6(k: NeighKey) -> Ipv6Addr {
    match k.addr {
        IpAddr::V6(a) => a,
        IpAddr::V4(_) => panic!("not IPv6"),
    }
}

fn v4(k: NeighKey) -> Ipv4Addr {
    match k.addr {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => panic!("not IPv4"),
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A table on a fake clock that checks, after every step, that what the workers were told
/// ([`Event::Publish`]) is what the entries say.
struct H {
    t: NeighTable<u32>,
    now: Duration,
    out: Vec<Event<u32>>,
    published: HashMap<NeighKey, Option<MacAddr>>,
}

impl H {
    fn new() -> H {
        H::with(NeighParams::default())
    }

    fn with(p: NeighParams) -> H {
        H { t: NeighTable::new(p, 7, START), now: START, out: Vec::new(), published: HashMap::new() }
    }

    /// Events since the last call, after checking the published view.
    fn take(&mut self) -> Vec<Event<u32>> {
        let ev = std::mem::take(&mut self.out);
        for e in &ev {
            if let Event::Publish { key, mac } = e {
                self.published.insert(*key, *mac);
            }
        }
        for v in self.t.entries(self.now) {
            let want = if v.state.usable() { v.mac } else { None };
            assert_eq!(self.published.get(&v.key).copied().flatten(), want, "published view of {:?} in {:?}", v.key, v.state);
        }
        ev
    }

    fn hold(&mut self, k: NeighKey, p: u32) -> Vec<Event<u32>> {
        let qlen = self.t.params().unres_qlen;
        self.t.hold(k, p, self.now, qlen, &mut self.out);
        self.take()
    }

    /// Advances the clock to `now + d`, ticking every 10 ms on the way.
    fn advance(&mut self, d: Duration) -> Vec<Event<u32>> {
        let end = self.now + d;
        while self.now < end {
            self.now = (self.now + ms(10)).min(end);
            self.t.tick(self.now, &mut self.out);
        }
        self.take()
    }

    fn state(&self, k: NeighKey) -> Option<(NeighState, Option<MacAddr>)> {
        self.t.get(k, self.now).map(|v| (v.state, v.mac))
    }

    fn na(&mut self, k: NeighKey, tlla: Option<MacAddr>, s: bool, o: bool) -> Vec<Event<u32>> {
        self.t.na_input(k.port, v6(k), tlla, true, s, o, self.now, &mut self.out);
        self.take()
    }

    fn arp(&mut self, k: NeighKey, sha: MacAddr, request: bool, for_us: bool, unicast: bool) -> Vec<Event<u32>> {
        let msg = ArpInput { request, sha, spa: v4(k), tpa: Ipv4Addr::new(10, 0, 0, 1), for_us, unicast };
        self.t.arp_input(k.port, msg, self.now, &mut self.out);
        self.take()
    }

    fn ns(&mut self, k: NeighKey, sllao: Option<MacAddr>) -> Vec<Event<u32>> {
        self.t.ns_input(k.port, v6(k), sllao, self.now, &mut self.out);
        self.take()
    }
}

fn solicits(ev: &[Event<u32>]) -> Vec<Option<MacAddr>> {
    ev.iter().filter_map(|e| if let Event::Solicit { unicast, .. } = e { Some(*unicast) } else { None }).collect()
}

fn sent(ev: &[Event<u32>]) -> Vec<(u32, MacAddr)> {
    ev.iter().filter_map(|e| if let Event::Send { packet, mac, .. } = e { Some((*packet, *mac)) } else { None }).collect()
}

fn dropped(ev: &[Event<u32>]) -> Vec<(u32, NeighDrop)> {
    ev.iter().filter_map(|e| if let Event::Drop { packet, reason, .. } = e { Some((*packet, *reason)) } else { None }).collect()
}

#[test]
fn defaults_are_linux() {
    let p = NeighParams::default();
    assert_eq!(p.base_reachable_time, Duration::from_secs(30));
    assert_eq!(p.retrans_time, Duration::from_secs(1));
    assert_eq!(p.delay_first_probe_time, Duration::from_secs(5));
    assert_eq!((p.mcast_solicit, p.ucast_solicit, p.mcast_resolicit), (3, 3, 0));
    assert_eq!(p.unres_qlen, 101);
    assert_eq!(p.gc_stale_time, Duration::from_secs(60));
    assert_eq!((p.gc_thresh1, p.gc_thresh2, p.gc_thresh3), (128, 512, 1024));
    let names: Vec<&str> = NeighState::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(names, ["INCOMPLETE", "REACHABLE", "STALE", "DELAY", "PROBE", "FAILED", "PERMANENT"]);
    let drops: Vec<&str> = NeighDrop::ALL.iter().map(|d| d.name()).collect();
    assert_eq!(drops, ["neigh_failed", "neigh_queue_full", "neigh_table_full"]);
}

#[test]
fn incomplete_solicits_three_times_then_fails_dropping_what_it_held() {
    let mut h = H::new();
    let ev = h.hold(k6(2), 1);
    assert_eq!(solicits(&ev), [None], "an immediate multicast solicitation");
    assert_eq!(h.state(k6(2)), Some((NeighState::Incomplete, None)));
    assert!(h.hold(k6(2), 2).is_empty(), "a second packet is held quietly");
    assert_eq!(h.t.get(k6(2), h.now).unwrap().queued, 2);
    // retrans_time 1 s: solicitations at 0, 1 and 2 s, FAILED at 3 s.
    assert_eq!(solicits(&h.advance(ms(990))), []);
    assert_eq!(solicits(&h.advance(ms(10))), [None]);
    assert_eq!(solicits(&h.advance(ms(1000))), [None]);
    assert_eq!(h.state(k6(2)).unwrap().0, NeighState::Incomplete);
    let ev = h.advance(ms(1000));
    assert_eq!(solicits(&ev), []);
    assert_eq!(dropped(&ev), [(1, NeighDrop::NeighFailed), (2, NeighDrop::NeighFailed)], "in order");
    assert_eq!(h.state(k6(2)), Some((NeighState::Failed, None)));
    assert_eq!(h.t.stats().res_failed, 1);
    assert!(h.advance(Duration::from_secs(10)).is_empty(), "FAILED has no timer");
    // The next packet starts over.
    let ev = h.hold(k6(2), 3);
    assert_eq!(solicits(&ev), [None]);
    assert_eq!(h.state(k6(2)).unwrap().0, NeighState::Incomplete);
}

#[test]
fn a_solicited_answer_releases_the_queue_in_order() {
    let mut h = H::new();
    for p in 1..=3 {
        h.hold(k6(2), p);
    }
    h.advance(ms(400));
    let ev = h.na(k6(2), Some(A), true, true);
    assert_eq!(sent(&ev), [(1, A), (2, A), (3, A)]);
    assert!(ev.contains(&Event::Publish { key: k6(2), mac: Some(A) }));
    assert_eq!(h.state(k6(2)), Some((NeighState::Reachable, Some(A))));
    assert!(h.t.get(k6(2), h.now).unwrap().router, "R flag recorded");
    // Now packets go straight out, and no solicitation follows.
    assert_eq!(sent(&h.hold(k6(2), 4)), [(4, A)]);
    assert_eq!(solicits(&h.advance(Duration::from_secs(5))), []);
}

#[test]
fn the_queue_drops_its_oldest_beyond_unres_qlen() {
    let mut h = H::with(NeighParams { unres_qlen: 3, ..NeighParams::default() });
    for p in 1..=5 {
        h.hold(k4(2), p);
    }
    assert_eq!(h.t.stats().unres_discards, 2);
    let ev = h.arp(k4(2), A, false, false, true);
    assert_eq!(sent(&ev), [(3, A), (4, A), (5, A)]);
    // A smaller limit (memory pressure) trims on the next packet, oldest first.
    let mut out = Vec::new();
    h.t.hold(k4(3), 10, h.now, 3, &mut out);
    h.t.hold(k4(3), 11, h.now, 3, &mut out);
    h.t.hold(k4(3), 12, h.now, 3, &mut out);
    h.t.hold(k4(3), 13, h.now, 1, &mut out);
    h.out = out;
    let ev = h.take();
    assert_eq!(dropped(&ev), [(10, NeighDrop::NeighQueueFull), (11, NeighDrop::NeighQueueFull), (12, NeighDrop::NeighQueueFull)]);
}

#[test]
fn reachable_time_is_drawn_from_half_to_one_and_a_half_base() {
    for seed in 0..200 {
        let t: NeighTable<u32> = NeighTable::new(NeighParams::default(), seed, START);
        let r = t.reachable_time();
        assert!(r >= Duration::from_secs(15) && r < Duration::from_secs(45), "{r:?}");
    }
    let mut h = H::new();
    let first = h.t.reachable_time();
    let mut seen = vec![first];
    for _ in 0..4 {
        h.advance(Duration::from_secs(300));
        seen.push(h.t.reachable_time());
    }
    assert!(seen.iter().any(|&r| r != first), "drawn again every 300 s: {seen:?}");
}

/// REACHABLE, unused: STALE at confirmed + reachable_time; then the next packet makes it
/// DELAY, DELAY without confirmation becomes PROBE after 5 s, three unicast probes to the
/// cached address one second apart, then FAILED.
#[test]
fn reachable_stale_delay_probe_failed() {
    let mut h = H::new();
    h.hold(k6(2), 1);
    h.na(k6(2), Some(A), true, true);
    let rt = h.t.reachable_time();
    h.advance(rt - ms(10));
    assert_eq!(h.state(k6(2)).unwrap().0, NeighState::Reachable);
    // Used only at the start (more than 5 s ago): STALE.
    let ev = h.advance(ms(20));
    assert_eq!(h.state(k6(2)).unwrap().0, NeighState::Stale);
    assert!(ev.contains(&Event::Publish { key: k6(2), mac: None }), "a STALE entry goes back to the slow path");
    assert!(h.advance(Duration::from_secs(20)).is_empty(), "STALE has no timer");
    // First use: DELAY, the packet goes to the cached address at once.
    let ev = h.hold(k6(2), 2);
    assert_eq!(sent(&ev), [(2, A)]);
    assert!(ev.contains(&Event::Publish { key: k6(2), mac: Some(A) }));
    assert_eq!(h.state(k6(2)).unwrap().0, NeighState::Delay);
    assert_eq!(solicits(&h.advance(ms(4990))), []);
    let ev = h.advance(ms(10));
    assert_eq!(h.state(k6(2)).unwrap().0, NeighState::Probe);
    assert_eq!(solicits(&ev), [Some(A)], "unicast probe to the cached MAC");
    assert_eq!(sent(&h.hold(k6(2), 3)), [(3, A)], "PROBE still sends to the cached address");
    assert_eq!(solicits(&h.advance(Duration::from_secs(1))), [Some(A)]);
    assert_eq!(solicits(&h.advance(Duration::from_secs(1))), [Some(A)]);
    let ev = h.advance(Duration::from_secs(1));
    assert_eq!(solicits(&ev), []);
    assert_eq!(h.state(k6(2)).unwrap().0, NeighState::Failed);
    assert!(ev.contains(&Event::Publish { key: k6(2), mac: None }));
}

#[test]
fn reachable_used_recently_goes_to_delay_and_a_confirmation_brings_it_back() {
    let mut h = H::new();
    h.hold(k4(2), 1);
    h.arp(k4(2), A, false, false, true);
    let rt = h.t.reachable_time();
    h.advance(rt - Duration::from_secs(2));
    h.t.touch(k4(2), h.now); // the workers sent to it
    h.advance(Duration::from_secs(3));
    assert_eq!(h.state(k4(2)).unwrap().0, NeighState::Delay, "used within delay_first_probe_time");
    // A unicast ARP reply during DELAY confirms it.
    h.arp(k4(2), A, false, false, true);
    assert_eq!(h.state(k4(2)).unwrap().0, NeighState::Reachable);
    // A confirmation while DELAY's timer is pending also ends it REACHABLE.
    let rt = h.t.reachable_time();
    h.advance(rt + Duration::from_secs(1));
    assert_eq!(h.state(k4(2)).unwrap().0, NeighState::Stale);
    h.hold(k4(2), 2);
    assert_eq!(h.state(k4(2)).unwrap().0, NeighState::Delay);
}

#[test]
fn probe_answered_becomes_reachable() {
    let mut h = H::new();
    h.hold(k6(2), 1);
    h.na(k6(2), Some(A), false, true);
    assert_eq!(h.state(k6(2)).unwrap().0, NeighState::Stale, "unsolicited: STALE");
    h.hold(k6(2), 2);
    let ev = h.advance(Duration::from_secs(5));
    assert_eq!(solicits(&ev), [Some(A)]);
    h.na(k6(2), Some(A), true, false);
    assert_eq!(h.state(k6(2)), Some((NeighState::Reachable, Some(A))));
}

#[test]
fn mcast_resolicit_multicasts_after_the_unicast_probes() {
    let mut h = H::with(NeighParams { mcast_resolicit: 2, ..NeighParams::default() });
    h.hold(k6(2), 1);
    h.na(k6(2), Some(A), false, true);
    h.hold(k6(2), 2);
    let ev = h.advance(Duration::from_secs(5) + Duration::from_secs(4) + ms(10));
    assert_eq!(solicits(&ev), [Some(A), Some(A), Some(A), None, None]);
    assert_eq!(h.state(k6(2)).unwrap().0, NeighState::Probe);
    // A host that changed its MAC answers the multicast one.
    h.na(k6(2), Some(B), true, true);
    assert_eq!(h.state(k6(2)), Some((NeighState::Reachable, Some(B))));
}

#[test]
fn short_timers_are_floored_at_ten_milliseconds() {
    let mut h = H::with(NeighParams { retrans_time: Duration::ZERO, ..NeighParams::default() });
    assert_eq!(solicits(&h.hold(k4(2), 1)), [None]);
    // Solicitations every 10 ms, never in a loop.
    assert_eq!(solicits(&h.advance(ms(20))), [None, None]);
    assert_eq!(h.state(k4(2)).unwrap().0, NeighState::Incomplete);
    h.advance(ms(10));
    assert_eq!(h.state(k4(2)).unwrap().0, NeighState::Failed);
}

#[test]
fn no_multicast_solicitation_fails_at_once() {
    let mut h = H::with(NeighParams { mcast_solicit: 0, ..NeighParams::default() });
    let ev = h.hold(k4(2), 1);
    assert_eq!(dropped(&ev), [(1, NeighDrop::NeighFailed)]);
    assert_eq!(solicits(&ev), []);
}

/// Each state against each input: the resulting state and address, by RFC 4861 7.2.5 and
/// `__neigh_update` (a different address without Override: REACHABLE becomes STALE and keeps
/// the old one, the other states ignore it; the same address proposing STALE changes
/// nothing; NA for a FAILED entry is ignored; PERMANENT ignores everything).
#[test]
fn every_state_against_every_input() {
    use NeighState::*;
    type Outcome = (NeighState, Option<MacAddr>);
    #[derive(Debug, Clone, Copy)]
    enum In {
        Na { tlla: Option<MacAddr>, s: bool, o: bool },
        ArpReply { sha: MacAddr, unicast: bool },
        ArpRequestForUs(MacAddr),
        ArpRequestForOther(MacAddr),
        Ns(MacAddr),
    }
    let inputs = [
        In::Na { tlla: Some(A), s: true, o: true },
        In::Na { tlla: Some(B), s: true, o: true },
        In::Na { tlla: Some(A), s: true, o: false },
        In::Na { tlla: Some(B), s: true, o: false },
        In::Na { tlla: Some(A), s: false, o: true },
        In::Na { tlla: Some(B), s: false, o: true },
        In::Na { tlla: Some(B), s: false, o: false },
        In::Na { tlla: None, s: true, o: false },
        In::ArpReply { sha: B, unicast: true },
        In::ArpReply { sha: B, unicast: false },
        In::ArpRequestForUs(A),
        In::ArpRequestForUs(B),
        In::ArpRequestForOther(B),
        In::Ns(A),
        In::Ns(B),
    ];
    // Per starting state, the expected (state, MAC) after each input, in `inputs` order.
    let s = |st, m| (st, m);
    let (a, b, n) = (Some(A), Some(B), None);
    let table: [(NeighState, [Outcome; 15]); 7] = [
        (
            Incomplete,
            [
                s(Reachable, a),
                s(Reachable, b),
                s(Reachable, a),
                s(Reachable, b),
                s(Stale, a),
                s(Stale, b),
                s(Stale, b),
                s(Incomplete, n),
                s(Reachable, b),
                s(Stale, b),
                s(Stale, a),
                s(Stale, b),
                s(Stale, b),
                s(Stale, a),
                s(Stale, b),
            ],
        ),
        (
            Reachable,
            [
                s(Reachable, a),
                s(Reachable, b),
                s(Reachable, a),
                s(Stale, a),
                s(Reachable, a),
                s(Stale, b),
                s(Stale, a),
                s(Reachable, a),
                s(Reachable, b),
                s(Stale, b),
                s(Reachable, a),
                s(Stale, b),
                s(Stale, b),
                s(Reachable, a),
                s(Stale, b),
            ],
        ),
        (
            Stale,
            [
                s(Reachable, a),
                s(Reachable, b),
                s(Reachable, a),
                s(Stale, a),
                s(Stale, a),
                s(Stale, b),
                s(Stale, a),
                s(Reachable, a),
                s(Reachable, b),
                s(Stale, b),
                s(Stale, a),
                s(Stale, b),
                s(Stale, b),
                s(Stale, a),
                s(Stale, b),
            ],
        ),
        (
            Delay,
            [
                s(Reachable, a),
                s(Reachable, b),
                s(Reachable, a),
                s(Delay, a),
                s(Delay, a),
                s(Stale, b),
                s(Delay, a),
                s(Reachable, a),
                s(Reachable, b),
                s(Stale, b),
                s(Delay, a),
                s(Stale, b),
                s(Stale, b),
                s(Delay, a),
                s(Stale, b),
            ],
        ),
        (
            Probe,
            [
                s(Reachable, a),
                s(Reachable, b),
                s(Reachable, a),
                s(Probe, a),
                s(Probe, a),
                s(Stale, b),
                s(Probe, a),
                s(Reachable, a),
                s(Reachable, b),
                s(Stale, b),
                s(Probe, a),
                s(Stale, b),
                s(Stale, b),
                s(Probe, a),
                s(Stale, b),
            ],
        ),
        (
            Failed,
            [
                s(Failed, n),
                s(Failed, n),
                s(Failed, n),
                s(Failed, n),
                s(Failed, n),
                s(Failed, n),
                s(Failed, n),
                s(Failed, n),
                s(Reachable, b),
                s(Stale, b),
                s(Stale, a),
                s(Stale, b),
                s(Stale, b),
                s(Stale, a),
                s(Stale, b),
            ],
        ),
        (Permanent, [s(Permanent, a); 15]),
    ];
    // Puts `k` in `state` with address A (none for INCOMPLETE and FAILED), holding packet 1
    // when INCOMPLETE.
    let setup = |h: &mut H, k: NeighKey, state: NeighState| {
        match state {
            Incomplete => {
                h.hold(k, 1);
            }
            Reachable => {
                h.hold(k, 1);
                h.t.update(k, Some(A), Reachable, UpdateFlags::OVERRIDE, h.now, &mut h.out);
            }
            Stale | Delay | Probe => {
                h.hold(k, 1);
                h.t.update(k, Some(A), Stale, UpdateFlags::OVERRIDE, h.now, &mut h.out);
                if state != Stale {
                    h.take();
                    h.hold(k, 2);
                }
                if state == Probe {
                    h.advance(Duration::from_secs(5));
                }
            }
            Failed => {
                h.hold(k, 1);
                h.advance(Duration::from_secs(3));
            }
            Permanent => {
                h.t.add_permanent(k, A, h.now, &mut h.out);
            }
        }
        h.take();
        assert_eq!(h.state(k).map(|s| s.0), Some(state), "setup of {state:?}");
    };
    for (start, expected) in table {
        for (i, (input, want)) in inputs.iter().zip(expected).enumerate() {
            let mut h = H::new();
            // NA and NS are IPv6, ARP is IPv4: the same story on each table.
            let k = match input {
                In::Na { .. } | In::Ns(_) => k6(2),
                _ => k4(2),
            };
            setup(&mut h, k, start);
            let ev = match *input {
                In::Na { tlla, s, o } => h.na(k, tlla, s, o),
                In::ArpReply { sha, unicast } => h.arp(k, sha, false, false, unicast),
                In::ArpRequestForUs(sha) => h.arp(k, sha, true, true, false),
                In::ArpRequestForOther(sha) => h.arp(k, sha, true, false, false),
                In::Ns(mac) => h.ns(k, Some(mac)),
            };
            assert_eq!(h.state(k), Some(want), "{start:?} + input {i} {input:?}");
            // What INCOMPLETE held leaves once the entry is valid, to its new address.
            if start == Incomplete && want.0.valid() {
                assert_eq!(sent(&ev), [(1, want.1.unwrap())], "{start:?} + {input:?}");
            }
        }
    }
}

#[test]
fn learning_creates_entries_only_where_linux_does() {
    let mut h = H::new();
    // ARP reply, gratuitous ARP, request for someone else: no entry (arp_accept = 0).
    h.arp(k4(2), A, false, false, true);
    h.arp(k4(3), A, true, false, false);
    let garp = ArpInput { request: true, sha: A, spa: v4(k4(4)), tpa: v4(k4(4)), for_us: false, unicast: false };
    h.t.arp_input(PortIdx(0), garp, h.now, &mut h.out);
    // NA without an entry (no accept_untracked_na); NS without a source link-layer option.
    h.na(k6(2), Some(A), true, true);
    h.ns(k6(3), None);
    // An ARP probe (sender 0.0.0.0) teaches nothing.
    let probe = ArpInput { request: true, sha: A, spa: Ipv4Addr::UNSPECIFIED, tpa: v4(k4(1)), for_us: true, unicast: false };
    h.t.arp_input(PortIdx(0), probe, h.now, &mut h.out);
    h.take();
    assert!(h.t.is_empty(), "{:?}", h.t.entries(h.now).collect::<Vec<_>>());
    // A request for us and a solicitation with SLLAO do create one, STALE.
    h.arp(k4(2), A, true, true, false);
    h.ns(k6(2), Some(B));
    assert_eq!(h.state(k4(2)), Some((NeighState::Stale, Some(A))));
    assert_eq!(h.state(k6(2)), Some((NeighState::Stale, Some(B))));
    // Gratuitous ARP updates an existing entry.
    let garp = ArpInput { request: true, sha: B, spa: v4(k4(2)), tpa: v4(k4(2)), for_us: false, unicast: false };
    h.t.arp_input(PortIdx(0), garp, h.now, &mut h.out);
    h.take();
    assert_eq!(h.state(k4(2)), Some((NeighState::Stale, Some(B))));
}

#[test]
fn a_changed_mac_is_followed_after_stale_and_reprobe() {
    let mut h = H::new();
    h.hold(k4(2), 1);
    h.arp(k4(2), A, false, false, true);
    // The host moves to B and says so in its own ARP request (its entry for us went stale).
    h.arp(k4(2), B, true, true, true);
    assert_eq!(h.state(k4(2)), Some((NeighState::Stale, Some(B))), "OVERRIDE from a request for us");
    let ev = h.hold(k4(2), 2);
    assert_eq!(sent(&ev), [(2, B)]);
    let ev = h.advance(Duration::from_secs(5));
    assert_eq!(solicits(&ev), [Some(B)], "re-probed at the new address");
    h.arp(k4(2), B, false, false, true);
    assert_eq!(h.state(k4(2)), Some((NeighState::Reachable, Some(B))));
}

#[test]
fn permanent_entries_send_and_are_never_collected() {
    let mut h = H::with(NeighParams { gc_thresh1: 0, ..NeighParams::default() });
    h.t.add_permanent(k4(9), A, h.now, &mut h.out);
    let ev = h.take();
    assert_eq!(ev, [Event::Publish { key: k4(9), mac: Some(A) }]);
    assert_eq!(sent(&h.hold(k4(9), 1)), [(1, A)]);
    assert!(h.advance(Duration::from_secs(600)).is_empty());
    assert_eq!(h.state(k4(9)), Some((NeighState::Permanent, Some(A))));
    // The config may change it.
    h.t.add_permanent(k4(9), B, h.now, &mut h.out);
    assert_eq!(h.take(), [Event::Publish { key: k4(9), mac: Some(B) }]);
}

#[test]
fn periodic_collection_removes_failed_and_long_unused_entries() {
    let p = NeighParams { gc_thresh1: 3, ..NeighParams::default() };
    let mut h = H::with(p);
    // Below gc_thresh1 nothing is collected.
    h.hold(k4(2), 1);
    h.advance(Duration::from_secs(20));
    assert_eq!(h.state(k4(2)).unwrap().0, NeighState::Failed);
    assert_eq!(h.t.len(), 1);
    h.arp(k4(3), A, true, true, false); // STALE, used now
    h.t.add_permanent(k4(4), A, h.now, &mut h.out);
    h.hold(k4(5), 5);
    h.arp(k4(5), B, false, false, true); // REACHABLE
    h.take();
    // At the next run (every 15 s) the FAILED one goes; the STALE one only once unused
    // for gc_stale_time (60 s); REACHABLE (a timer) and PERMANENT stay.
    h.advance(Duration::from_secs(15));
    assert_eq!(h.state(k4(2)), None);
    assert!(h.state(k4(3)).is_some());
    assert_eq!(h.t.stats().periodic_gc_runs, 1);
    h.advance(Duration::from_secs(45));
    assert!(h.state(k4(3)).is_some(), "unused for 55 s at the run at 75 s");
    h.advance(Duration::from_secs(15));
    assert_eq!(h.state(k4(3)), None, "unused for 70 s at the run at 90 s");
    assert_eq!(h.state(k4(5)), None, "went STALE when reachable_time ran out, unused since");
    assert!(h.state(k4(4)).is_some());
    assert_eq!(h.t.stats().destroys, 3);
}

#[test]
fn a_full_table_refuses_new_entries_until_collection_can_make_room() {
    let p = NeighParams { gc_thresh1: 1, gc_thresh2: 2, gc_thresh3: 4, ..NeighParams::default() };
    let mut h = H::with(p);
    for n in 2..=5 {
        h.hold(k4(n), u32::from(n));
    }
    assert_eq!(h.t.len(), 4);
    // Four INCOMPLETE entries (timers running): nothing can go.
    let ev = h.hold(k4(6), 6);
    assert_eq!(dropped(&ev), [(6, NeighDrop::NeighTableFull)]);
    assert_eq!(h.t.stats().table_fulls, 1);
    assert!(h.t.stats().forced_gc_runs >= 1);
    // Once they failed, a forced collection frees room down to gc_thresh2.
    h.advance(Duration::from_secs(3));
    let ev = h.hold(k4(6), 7);
    assert_eq!(solicits(&ev), [None]);
    assert_eq!(h.t.len(), 3, "collected down to gc_thresh2 (2), then the new one");
    // Permanent entries do not count against the table's room.
    for n in 10..20 {
        h.t.add_permanent(k4(n), A, h.now, &mut h.out);
    }
    h.take();
    assert_eq!(h.t.len(), 13);
}

#[test]
fn removing_and_clearing_hand_back_what_is_held() {
    let mut h = H::new();
    h.hold(k4(2), 1);
    h.hold(k4(2), 2);
    h.hold(k6(2), 3);
    let mut out = Vec::new();
    assert!(h.t.remove(k4(2), &mut out));
    assert_eq!(dropped(&out), [(1, NeighDrop::NeighFailed), (2, NeighDrop::NeighFailed)]);
    assert_eq!(h.t.held(), 1);
    assert_eq!(h.t.clear(), [(k6(2), 3)]);
    assert!(h.t.is_empty());
    assert!(h.t.next_deadline() > h.now);
}

/// Random events on a few neighbours: every packet handed to the table comes out exactly
/// once (sent or dropped), held packets leave in order, the workers' view always matches,
/// and nothing is held outside INCOMPLETE.
#[test]
fn random_sequences_keep_every_packet_and_the_published_view() {
    for seed in 0..300u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let p = NeighParams {
            base_reachable_time: ms(rng.u64(0..4000)),
            retrans_time: ms(rng.u64(0..500)),
            delay_first_probe_time: ms(rng.u64(0..2000)),
            mcast_solicit: rng.u32(0..4),
            ucast_solicit: rng.u32(0..4),
            mcast_resolicit: rng.u32(0..3),
            unres_qlen: rng.u32(1..5),
            gc_thresh1: rng.u32(0..4),
            gc_thresh2: 3,
            gc_thresh3: rng.u32(3..6),
            gc_stale_time: ms(rng.u64(0..5000)),
            ..NeighParams::default()
        };
        let mut h = H::with(p);
        let keys = [k6(2), k6(3), k6(4), k4(2), k4(3)];
        let mut next_packet = 0u32;
        let mut given = 0u32;
        let mut out_count = 0u32;
        let mut last_sent: HashMap<NeighKey, u32> = HashMap::new();
        for _ in 0..400 {
            let k = keys[rng.usize(..keys.len())];
            let mac = if rng.bool() { A } else { B };
            let ev = match rng.u8(0..8) {
                0..=2 => {
                    next_packet += 1;
                    given += 1;
                    let q = rng.u32(1..4);
                    h.t.hold(k, next_packet, h.now, q, &mut h.out);
                    h.take()
                }
                3 => h.advance(ms(rng.u64(0..3000))),
                4 if matches!(k.addr, IpAddr::V6(_)) => {
                    h.t.na_input(k.port, v6(k), rng.bool().then_some(mac), rng.bool(), rng.bool(), rng.bool(), h.now, &mut h.out);
                    h.take()
                }
                5 if matches!(k.addr, IpAddr::V6(_)) => h.ns(k, rng.bool().then_some(mac)),
                4 | 5 => h.arp(k, mac, rng.bool(), rng.bool(), rng.bool()),
                6 => {
                    h.t.touch(k, h.now);
                    h.take()
                }
                _ => {
                    if rng.u8(0..10) == 0 {
                        h.t.remove(k, &mut h.out);
                    }
                    h.take()
                }
            };
            for e in &ev {
                match e {
                    Event::Send { key, packet, mac } => {
                        out_count += 1;
                        assert!(*packet > last_sent.get(key).copied().unwrap_or(0), "seed {seed}: out of order");
                        last_sent.insert(*key, *packet);
                        assert_eq!(h.t.get(*key, h.now).and_then(|v| v.mac), Some(*mac), "seed {seed}: sent to the entry's MAC");
                    }
                    Event::Drop { .. } => out_count += 1,
                    _ => {}
                }
            }
            for v in h.t.entries(h.now) {
                assert!(v.queued == 0 || v.state == NeighState::Incomplete, "seed {seed}: {v:?}");
                assert!(v.state != NeighState::Incomplete || v.queued > 0 || v.probes > 0, "seed {seed}: {v:?}");
            }
        }
        out_count += h.t.clear().len() as u32;
        assert_eq!(given, out_count, "seed {seed}: every packet comes out once");
    }
}
