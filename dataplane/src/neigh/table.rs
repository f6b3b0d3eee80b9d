//! The neighbour table and its state machine, after the Linux kernel's `net/core/neighbour.c`
//! (`__neigh_event_send`, `neigh_timer_handler`, `__neigh_update`, `neigh_forced_gc`,
//! `neigh_periodic_work`) and the callers in `net/ipv4/arp.c` (`arp_process`) and
//! `net/ipv6/ndisc.c` (`ndisc_recv_ns`, `ndisc_recv_na`).
//!
//! Pure and single-threaded: every call takes the time (`now`, a [`Duration`] since any fixed
//! epoch: the slow path's monotonic clock, or a fake one in tests) and appends what must
//! happen to an [`Event`] list: solicitations to send, held packets to send or drop, and
//! changes of what the workers may use ([`Event::Publish`]). Held packets are any `T`
//! (mbufs in the forwarder, numbers in the tests).

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use super::params::NeighParams;
use crate::net::MacAddr;
use crate::port::PortIdx;

/// Whom an entry is for: an IPv4 or IPv6 address on one port (the kernel's `(dev, key)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NeighKey {
    /// The port the neighbour is on.
    pub port: PortIdx,
    /// Its address.
    pub addr: IpAddr,
}

/// An entry's state (`NUD_*`), named as `ip neigh` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::EnumCount, strum::VariantArray, strum::IntoStaticStr)]
#[strum(serialize_all = "UPPERCASE")]
pub enum NeighState {
    /// Solicitations sent, no answer yet; packets are held.
    Incomplete,
    /// Confirmed within `reachable_time`.
    Reachable,
    /// The address is known but unconfirmed; the next packet starts a check (DELAY).
    Stale,
    /// Used while stale: packets go to the cached address while a confirmation may still
    /// arrive on its own.
    Delay,
    /// Unicast probes to the cached address.
    Probe,
    /// Resolution failed; the next packet starts over.
    Failed,
    /// Static (`via_mac`): never changed by what is received, never collected.
    Permanent,
}

impl NeighState {
    /// Every state.
    pub const ALL: &'static [NeighState] = <Self as strum::VariantArray>::VARIANTS;

    /// `NUD_VALID`: the cached address may be used.
    pub const fn valid(self) -> bool {
        matches!(self, Self::Reachable | Self::Stale | Self::Delay | Self::Probe | Self::Permanent)
    }

    /// `NUD_CONNECTED`: confirmed (or static).
    pub const fn connected(self) -> bool {
        matches!(self, Self::Reachable | Self::Permanent)
    }

    /// `NUD_IN_TIMER`: the state has a timer running.
    pub const fn in_timer(self) -> bool {
        matches!(self, Self::Incomplete | Self::Reachable | Self::Delay | Self::Probe)
    }

    /// Whether the workers may send to the cached address without asking the slow path:
    /// every valid state but STALE, whose first use must start a check.
    pub const fn usable(self) -> bool {
        self.valid() && !matches!(self, Self::Stale)
    }

    /// The name `ip neigh` prints: `REACHABLE`, `STALE`, ...
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// Why a held packet (or the packet that would have been held) is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::EnumCount, strum::VariantArray, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum NeighDrop {
    /// Resolution failed (`SKB_DROP_REASON_NEIGH_FAILED`, statistic `res_failed`).
    NeighFailed,
    /// The entry's queue was full: the oldest packet made room
    /// (`SKB_DROP_REASON_NEIGH_QUEUEFULL`, statistic `unres_discards`).
    NeighQueueFull,
    /// The table is at `gc_thresh3` and nothing could be collected
    /// (`SKB_DROP_REASON_NEIGH_CREATEFAIL`, "neighbour table overflow", `table_fulls`).
    NeighTableFull,
}

impl NeighDrop {
    /// Every reason.
    pub const ALL: &'static [NeighDrop] = <Self as strum::VariantArray>::VARIANTS;
    /// Number of reasons.
    pub const COUNT: usize = <Self as strum::EnumCount>::COUNT;

    /// The counter name.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// Something the owner of the table must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<T> {
    /// Send a solicitation for `key` (ARP request, neighbour solicitation): unicast to the
    /// cached address when `unicast` is given (PROBE), else broadcast / to the
    /// solicited-node multicast address.
    Solicit { key: NeighKey, unicast: Option<MacAddr> },
    /// Send `packet` to `mac` now: a packet given to [`NeighTable::hold`] for a usable entry,
    /// or a held one once its entry resolved (in the order they were held).
    Send { key: NeighKey, mac: MacAddr, packet: T },
    /// Drop `packet`.
    Drop { key: NeighKey, packet: T, reason: NeighDrop },
    /// What the workers may use for `key` changed: `Some(mac)` to send to directly,
    /// `None` to hand the packet to the slow path (no entry, or one not [`usable`](NeighState::usable)).
    Publish { key: NeighKey, mac: Option<MacAddr> },
}

/// How [`NeighTable::update`] may change an entry (`NEIGH_UPDATE_F_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UpdateFlags(u8);

impl UpdateFlags {
    /// A different link-layer address replaces the cached one.
    pub const OVERRIDE: UpdateFlags = UpdateFlags(1);
    /// Without OVERRIDE, a different address makes a REACHABLE entry STALE (keeping the
    /// cached address) instead of being ignored.
    pub const WEAK_OVERRIDE: UpdateFlags = UpdateFlags(2);
    /// The update says whether the neighbour is a router ([`Self::ISROUTER`]).
    pub const OVERRIDE_ISROUTER: UpdateFlags = UpdateFlags(4);
    /// The neighbour is a router (NA with R = 1).
    pub const ISROUTER: UpdateFlags = UpdateFlags(8);
    /// An administrative change (config): may change a PERMANENT entry.
    pub const ADMIN: UpdateFlags = UpdateFlags(16);

    /// Whether every flag of `f` is set.
    pub const fn has(self, f: UpdateFlags) -> bool {
        self.0 & f.0 == f.0
    }
}

impl std::ops::BitOr for UpdateFlags {
    type Output = UpdateFlags;
    fn bitor(self, o: UpdateFlags) -> UpdateFlags {
        UpdateFlags(self.0 | o.0)
    }
}

/// An ARP message as the table needs it (see [`NeighTable::arp_input`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpInput {
    /// A request (`true`) or a reply.
    pub request: bool,
    /// Sender hardware address.
    pub sha: MacAddr,
    /// Sender protocol address.
    pub spa: std::net::Ipv4Addr,
    /// Target protocol address.
    pub tpa: std::net::Ipv4Addr,
    /// The target is one of our addresses on the port.
    pub for_us: bool,
    /// The frame was addressed to our MAC (`PACKET_HOST`), not broadcast.
    pub unicast: bool,
}

/// Counters of one table, as `ip -s ntable` shows them (`struct neigh_statistics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NeighStats {
    /// Entries created.
    pub allocs: u64,
    /// Entries removed.
    pub destroys: u64,
    /// Resolutions that failed.
    pub res_failed: u64,
    /// Held packets dropped because the queue was full.
    pub unres_discards: u64,
    /// Entries refused at `gc_thresh3`.
    pub table_fulls: u64,
    /// Periodic collections that ran (at or above `gc_thresh1`).
    pub periodic_gc_runs: u64,
    /// Collections forced by a new entry above `gc_thresh2`.
    pub forced_gc_runs: u64,
}

/// One entry as shown to users (`ip neigh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighView {
    /// Whom it is for.
    pub key: NeighKey,
    /// Its state.
    pub state: NeighState,
    /// The cached link-layer address, once known.
    pub mac: Option<MacAddr>,
    /// The neighbour said it is a router (NA with R = 1).
    pub router: bool,
    /// Packets held.
    pub queued: usize,
    /// Solicitations sent in the current INCOMPLETE or PROBE round.
    pub probes: u32,
    /// Time since the last confirmation, use and change (`ip -s neigh`'s `used` triple).
    pub confirmed_ago: Duration,
    /// Time since the entry was last used to send.
    pub used_ago: Duration,
    /// Time since the state or address last changed.
    pub updated_ago: Duration,
}

/// The kernel's timer granularity floor for re-armed timers (`HZ / 100`).
const MIN_TIMER: Duration = Duration::from_millis(10);
/// `reachable_time` is drawn again this often (`neigh_periodic_work`).
const REDRAW_REACHABLE: Duration = Duration::from_secs(300);
/// A forced collection is not repeated within this (and spares entries updated within it).
const FORCED_GC_SPACING: Duration = Duration::from_secs(5);

struct Entry<T> {
    state: NeighState,
    mac: Option<MacAddr>,
    updated: Duration,
    confirmed: Duration,
    used: Duration,
    probes: u32,
    timer: Option<Duration>,
    router: bool,
    queue: VecDeque<T>,
    /// What the workers were last told ([`Event::Publish`]).
    published: Option<MacAddr>,
}

/// A neighbour table: entries by [`NeighKey`], their timers, held packets and collection.
pub struct NeighTable<T> {
    params: NeighParams,
    entries: BTreeMap<NeighKey, Entry<T>>,
    reachable_time: Duration,
    next_redraw: Duration,
    next_gc: Duration,
    last_forced_gc: Duration,
    rng: fastrand::Rng,
    stats: NeighStats,
    due: Vec<NeighKey>,
}

impl<T> std::fmt::Debug for NeighTable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NeighTable").field("entries", &self.entries.len()).field("stats", &self.stats).finish_non_exhaustive()
    }
}

impl<T> NeighTable<T> {
    /// An empty table with `params`, starting at `now`; `seed` seeds the draw of
    /// `reachable_time` (tests pass a fixed one).
    pub fn new(params: NeighParams, seed: u64, now: Duration) -> Self {
        let mut t = NeighTable {
            params,
            entries: BTreeMap::new(),
            reachable_time: Duration::ZERO,
            next_redraw: now + REDRAW_REACHABLE,
            next_gc: now,
            last_forced_gc: now,
            rng: fastrand::Rng::with_seed(seed),
            stats: NeighStats::default(),
            due: Vec::new(),
        };
        t.reachable_time = t.draw_reachable_time();
        t.next_gc = now + t.gc_interval();
        t
    }

    /// The knobs.
    pub fn params(&self) -> &NeighParams {
        &self.params
    }

    /// The current `reachable_time` (uniform in [base / 2, 3 base / 2]).
    pub fn reachable_time(&self) -> Duration {
        self.reachable_time
    }

    /// The counters.
    pub fn stats(&self) -> NeighStats {
        self.stats
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Packets held over all entries.
    pub fn held(&self) -> usize {
        self.entries.values().map(|e| e.queue.len()).sum()
    }

    /// The entry for `key`, as users see it.
    pub fn get(&self, key: NeighKey, now: Duration) -> Option<NeighView> {
        self.entries.get(&key).map(|e| view(key, e, now))
    }

    /// Every entry, by port then address.
    pub fn entries(&self, now: Duration) -> impl Iterator<Item = NeighView> + '_ {
        self.entries.iter().map(move |(k, e)| view(*k, e, now))
    }

    /// The earliest time [`tick`](Self::tick) has something to do.
    pub fn next_deadline(&self) -> Duration {
        self.entries.values().filter_map(|e| e.timer).fold(self.next_gc.min(self.next_redraw), Duration::min)
    }

    fn draw_reachable_time(&mut self) -> Duration {
        // neigh_rand_reach_time: base/2 + uniform [0, base).
        let base = self.params.base_reachable_time.as_millis() as u64;
        Duration::from_millis(base / 2 + if base == 0 { 0 } else { self.rng.u64(0..base) })
    }

    /// Periodic collection runs every base_reachable_time / 2 (`neigh_periodic_work`).
    fn gc_interval(&self) -> Duration {
        (self.params.base_reachable_time / 2).max(MIN_TIMER)
    }

    /// A packet to send to `key` (`neigh_event_send`). Where the entry is usable (or STALE,
    /// which then moves to DELAY) the packet is sent at once ([`Event::Send`]). Otherwise
    /// it is held, at most `qlen` per entry (the oldest is dropped to make room; pass
    /// `unres_qlen`, or `unres_qlen_under_pressure` under memory pressure), and a missing or
    /// FAILED entry starts resolution with an immediate solicitation. A new entry the table
    /// has no room for drops the packet ([`NeighDrop::NeighTableFull`]).
    pub fn hold(&mut self, key: NeighKey, packet: T, now: Duration, qlen: u32, out: &mut Vec<Event<T>>) {
        if !self.entries.contains_key(&key) && !self.create(key, now) {
            out.push(Event::Drop { key, packet, reason: NeighDrop::NeighTableFull });
            return;
        }
        let params = &self.params;
        let Some(e) = self.entries.get_mut(&key) else { return };
        e.used = now;
        let mut immediate_probe = false;
        match e.state {
            NeighState::Failed => {
                if params.mcast_solicit == 0 {
                    // Nothing may be sent: fail at once (no solicitation can resolve it).
                    e.updated = now;
                    out.push(Event::Drop { key, packet, reason: NeighDrop::NeighFailed });
                    return;
                }
                e.probes = params.ucast_solicit;
                e.state = NeighState::Incomplete;
                e.updated = now;
                e.timer = Some(now + params.retrans_time.max(MIN_TIMER));
                immediate_probe = true;
            }
            NeighState::Stale => {
                e.state = NeighState::Delay;
                e.updated = now;
                e.timer = Some(now + params.delay_first_probe_time);
            }
            _ => {}
        }
        if e.state == NeighState::Incomplete {
            let limit = qlen.max(1) as usize;
            while e.queue.len() >= limit {
                let Some(old) = e.queue.pop_front() else { break };
                self.stats.unres_discards += 1;
                out.push(Event::Drop { key, packet: old, reason: NeighDrop::NeighQueueFull });
            }
            e.queue.push_back(packet);
        } else if let Some(mac) = e.mac {
            out.push(Event::Send { key, mac, packet });
        } else {
            // A valid state always has an address; count it as a failure rather than panic.
            out.push(Event::Drop { key, packet, reason: NeighDrop::NeighFailed });
        }
        if immediate_probe {
            probe(params, key, e, out);
        }
        self.publish(key, out);
    }

    /// Notes that the workers sent to `key` directly (the slow path collects their "used"
    /// marks): REACHABLE then moves to DELAY rather than STALE when it expires, and the
    /// entry is not collected.
    pub fn touch(&mut self, key: NeighKey, now: Duration) {
        if let Some(e) = self.entries.get_mut(&key) {
            e.used = e.used.max(now);
        }
    }

    /// Adds or replaces a static entry (`via_mac`): PERMANENT, never changed by what is
    /// received, never collected, held packets released.
    pub fn add_permanent(&mut self, key: NeighKey, mac: MacAddr, now: Duration, out: &mut Vec<Event<T>>) {
        if !self.entries.contains_key(&key) {
            // Static entries are not subject to the thresholds (NTF_PERMANENT entries are
            // left off the kernel's gc_list).
            self.insert(key, now);
        }
        self.update(key, Some(mac), NeighState::Permanent, UpdateFlags::OVERRIDE | UpdateFlags::ADMIN, now, out);
    }

    /// Runs due timers and, when due, periodic collection. Call it at least every
    /// [`next_deadline`](Self::next_deadline); calling it more often is harmless.
    pub fn tick(&mut self, now: Duration, out: &mut Vec<Event<T>>) {
        let mut due = std::mem::take(&mut self.due);
        due.clear();
        due.extend(self.entries.iter().filter(|(_, e)| e.timer.is_some_and(|t| t <= now)).map(|(k, _)| *k));
        for &key in &due {
            self.timer(key, now, out);
        }
        self.due = due;
        if now >= self.next_redraw {
            self.reachable_time = self.draw_reachable_time();
            self.next_redraw = now + REDRAW_REACHABLE;
        }
        if now >= self.next_gc {
            self.periodic_gc(now, out);
            self.next_gc = now + self.gc_interval();
        }
    }

    /// `neigh_timer_handler`.
    fn timer(&mut self, key: NeighKey, now: Duration, out: &mut Vec<Event<T>>) {
        let (params, reachable_time) = (&self.params, self.reachable_time);
        let Some(e) = self.entries.get_mut(&key) else { return };
        if !e.state.in_timer() {
            e.timer = None;
            return;
        }
        let mut next = now + Duration::from_secs(1);
        match e.state {
            NeighState::Reachable => {
                if now <= e.confirmed + reachable_time {
                    next = e.confirmed + reachable_time;
                } else if now <= e.used + params.delay_first_probe_time {
                    e.state = NeighState::Delay;
                    e.updated = now;
                    next = now + params.delay_first_probe_time;
                } else {
                    e.state = NeighState::Stale;
                    e.updated = now;
                }
            }
            NeighState::Delay => {
                if now <= e.confirmed + params.delay_first_probe_time {
                    e.state = NeighState::Reachable;
                    e.updated = now;
                    next = e.confirmed + reachable_time;
                } else {
                    e.state = NeighState::Probe;
                    e.updated = now;
                    e.probes = 0;
                    next = now + params.retrans_time.max(MIN_TIMER);
                }
            }
            _ => next = now + params.retrans_time,
        }
        let probing = matches!(e.state, NeighState::Incomplete | NeighState::Probe);
        if probing && e.probes >= params.max_probes(e.state == NeighState::Probe) {
            e.state = NeighState::Failed;
            e.updated = now;
            e.timer = None;
            self.stats.res_failed += 1;
            for packet in e.queue.drain(..) {
                out.push(Event::Drop { key, packet, reason: NeighDrop::NeighFailed });
            }
        } else {
            e.timer = e.state.in_timer().then(|| next.max(now + MIN_TIMER));
            if probing {
                probe(params, key, e, out);
            }
        }
        self.publish(key, out);
    }

    /// `__neigh_update`: what an ARP message or a neighbour advertisement tells about
    /// `key`. `mac` is the link-layer address it carries (if any), `new` the state it
    /// proposes (REACHABLE for a confirmation, STALE otherwise). Returns whether the entry
    /// took it (its state or address may still be unchanged); nothing happens without an
    /// entry.
    pub fn update(
        &mut self,
        key: NeighKey,
        mac: Option<MacAddr>,
        new: NeighState,
        flags: UpdateFlags,
        now: Duration,
        out: &mut Vec<Event<T>>,
    ) -> bool {
        let reachable_time = self.reachable_time;
        let base = self.params.base_reachable_time;
        let Some(e) = self.entries.get_mut(&key) else { return false };
        let old = e.state;
        let mut new = new;
        if !flags.has(UpdateFlags::ADMIN) && old == NeighState::Permanent {
            return false;
        }
        if !new.valid() {
            e.timer = None;
            e.state = new;
            if matches!(old, NeighState::Incomplete | NeighState::Probe) && new == NeighState::Failed {
                self.stats.res_failed += 1;
                for packet in e.queue.drain(..) {
                    out.push(Event::Drop { key, packet, reason: NeighDrop::NeighFailed });
                }
            }
            self.publish(key, out);
            return true;
        }
        // The address to keep: the proposed one, or the cached one when none is proposed
        // (and then there must be one).
        let proposed = match (mac, old.valid()) {
            (Some(m), _) => m,
            (None, true) => match e.mac {
                Some(m) => m,
                None => return false,
            },
            (None, false) => return false,
        };
        if new.connected() {
            e.confirmed = now;
        }
        let mut update_isrouter = flags.has(UpdateFlags::OVERRIDE_ISROUTER);
        let mut lladdr = proposed;
        if old.valid() {
            if Some(lladdr) != e.mac && !flags.has(UpdateFlags::OVERRIDE) {
                update_isrouter = false;
                if flags.has(UpdateFlags::WEAK_OVERRIDE) && old.connected() {
                    lladdr = e.mac.unwrap_or(lladdr);
                    new = NeighState::Stale;
                } else {
                    return false;
                }
            } else if Some(lladdr) == e.mac && new == NeighState::Stale && !flags.has(UpdateFlags::ADMIN) {
                new = old;
            }
        }
        let changed_mac = Some(lladdr) != e.mac;
        if new != old || changed_mac {
            e.updated = now;
        }
        if new != old {
            if new == NeighState::Probe {
                e.probes = 0;
            }
            e.timer = new.in_timer().then(|| now + if new == NeighState::Reachable { reachable_time } else { Duration::ZERO });
            e.state = new;
        }
        if changed_mac {
            e.mac = Some(lladdr);
            if !new.connected() {
                e.confirmed = now.saturating_sub(base * 2);
            }
        }
        if update_isrouter {
            e.router = flags.has(UpdateFlags::ISROUTER);
        }
        if new != old && !old.valid() {
            for packet in e.queue.drain(..) {
                out.push(Event::Send { key, mac: lladdr, packet });
            }
        }
        self.publish(key, out);
        true
    }

    /// An ARP message received on `port` (`arp_process`, with `arp_accept = 0`): a request
    /// for one of our addresses creates or refreshes the sender's entry (STALE, OVERRIDE:
    /// `neigh_event_ns`); any other ARP message from a sender we have an entry for updates
    /// it, to REACHABLE for a reply sent to us, to STALE otherwise (gratuitous ARP
    /// included); none creates an entry. A sender address 0.0.0.0 (an RFC 5227 probe)
    /// teaches nothing. Returns whether an entry took it.
    pub fn arp_input(&mut self, port: PortIdx, msg: ArpInput, now: Duration, out: &mut Vec<Event<T>>) -> bool {
        if msg.spa.is_unspecified() {
            return false;
        }
        let key = NeighKey { port, addr: IpAddr::V4(msg.spa) };
        if msg.request && msg.for_us {
            if !self.entries.contains_key(&key) && !self.create(key, now) {
                return false;
            }
            return self.update(key, Some(msg.sha), NeighState::Stale, UpdateFlags::OVERRIDE, now, out);
        }
        let state = if !msg.request && msg.unicast { NeighState::Reachable } else { NeighState::Stale };
        self.update(key, Some(msg.sha), state, UpdateFlags::OVERRIDE, now, out)
    }

    /// A neighbour solicitation from `src` (not the unspecified address) received on
    /// `port` (`ndisc_recv_ns`): with a source link-layer address option it creates or
    /// updates the sender's entry, STALE with OVERRIDE and WEAK_OVERRIDE (a changed address
    /// replaces the cached one; the same address leaves a REACHABLE entry alone). Returns
    /// whether an entry took it.
    pub fn ns_input(
        &mut self,
        port: PortIdx,
        src: std::net::Ipv6Addr,
        sllao: Option<MacAddr>,
        now: Duration,
        out: &mut Vec<Event<T>>,
    ) -> bool {
        let Some(mac) = sllao else { return false };
        let key = NeighKey { port, addr: IpAddr::V6(src) };
        if !self.entries.contains_key(&key) && !self.create(key, now) {
            return false;
        }
        self.update(key, Some(mac), NeighState::Stale, UpdateFlags::OVERRIDE | UpdateFlags::WEAK_OVERRIDE, now, out)
    }

    /// A neighbour advertisement for `target` received on `port` (`ndisc_recv_na`, RFC 4861
    /// 7.2.5): ignored without an entry (RFC 4861; no RFC 9131 `accept_untracked_na`) or
    /// for a FAILED one; otherwise the proposed state is REACHABLE if Solicited, else
    /// STALE, with WEAK_OVERRIDE, OVERRIDE if the Override flag is set, and the Router
    /// flag recorded. An INCOMPLETE entry needs the target link-layer address option.
    /// Returns whether an entry took it.
    #[allow(clippy::too_many_arguments)]
    pub fn na_input(
        &mut self,
        port: PortIdx,
        target: std::net::Ipv6Addr,
        tlla: Option<MacAddr>,
        router: bool,
        solicited: bool,
        override_: bool,
        now: Duration,
        out: &mut Vec<Event<T>>,
    ) -> bool {
        let key = NeighKey { port, addr: IpAddr::V6(target) };
        if self.entries.get(&key).is_none_or(|e| e.state == NeighState::Failed) {
            return false;
        }
        let new = if solicited { NeighState::Reachable } else { NeighState::Stale };
        let mut flags = UpdateFlags::WEAK_OVERRIDE | UpdateFlags::OVERRIDE_ISROUTER;
        if override_ {
            flags = flags | UpdateFlags::OVERRIDE;
        }
        if router {
            flags = flags | UpdateFlags::ISROUTER;
        }
        self.update(key, tlla, new, flags, now, out)
    }

    /// Removes `key`'s entry (an administrative delete), dropping what it holds as
    /// [`NeighDrop::NeighFailed`].
    pub fn remove(&mut self, key: NeighKey, out: &mut Vec<Event<T>>) -> bool {
        let Some(e) = self.entries.remove(&key) else { return false };
        self.stats.destroys += 1;
        for packet in e.queue {
            out.push(Event::Drop { key, packet, reason: NeighDrop::NeighFailed });
        }
        if e.published.is_some() {
            out.push(Event::Publish { key, mac: None });
        }
        true
    }

    /// Empties the table (at shutdown): every held packet is handed back.
    pub fn clear(&mut self) -> Vec<(NeighKey, T)> {
        let mut held = Vec::new();
        for (k, e) in std::mem::take(&mut self.entries) {
            self.stats.destroys += 1;
            held.extend(e.queue.into_iter().map(|p| (k, p)));
        }
        held
    }

    /// Creates an empty entry (NONE, which behaves as FAILED: the first packet starts
    /// resolution), applying the thresholds (`neigh_alloc`). Returns `false` if the table is
    /// full.
    fn create(&mut self, key: NeighKey, now: Duration) -> bool {
        let n = self.entries.len() as u64;
        let (t2, t3) = (u64::from(self.params.gc_thresh2), u64::from(self.params.gc_thresh3));
        if n >= t3 || (n >= t2 && now > self.last_forced_gc + FORCED_GC_SPACING) {
            let shrunk = self.forced_gc(now);
            if shrunk == 0 && n >= t3 {
                self.stats.table_fulls += 1;
                return false;
            }
        }
        self.insert(key, now);
        true
    }

    fn insert(&mut self, key: NeighKey, now: Duration) {
        self.stats.allocs += 1;
        let confirmed = now.saturating_sub(self.params.base_reachable_time * 2);
        self.entries.insert(
            key,
            Entry {
                state: NeighState::Failed,
                mac: None,
                updated: now,
                confirmed,
                used: now,
                probes: 0,
                timer: None,
                router: false,
                queue: VecDeque::new(),
                published: None,
            },
        );
    }

    /// `neigh_forced_gc`: removes, least recently updated first, entries without a timer
    /// (so nothing held) that are not PERMANENT and are FAILED or unchanged for 5 s, until
    /// the table is down to `gc_thresh2`. Returns how many went.
    fn forced_gc(&mut self, now: Duration) -> usize {
        self.stats.forced_gc_runs += 1;
        self.last_forced_gc = now;
        let max_clean = self.entries.len().saturating_sub(self.params.gc_thresh2 as usize);
        let mut victims: Vec<(Duration, NeighKey)> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                e.state != NeighState::Permanent
                    && e.timer.is_none()
                    && e.queue.is_empty()
                    && (e.state == NeighState::Failed || e.updated + FORCED_GC_SPACING < now)
            })
            .map(|(k, e)| (e.updated, *k))
            .collect();
        victims.sort();
        victims.truncate(max_clean.max(1));
        for (_, k) in &victims {
            self.entries.remove(k);
            self.stats.destroys += 1;
        }
        victims.len()
    }

    /// `neigh_periodic_work`: at or above `gc_thresh1` entries, removes those without a
    /// timer, not PERMANENT, that are FAILED or unused for `gc_stale_time`.
    fn periodic_gc(&mut self, now: Duration, out: &mut Vec<Event<T>>) {
        if self.entries.len() < self.params.gc_thresh1 as usize {
            return;
        }
        self.stats.periodic_gc_runs += 1;
        let stale = self.params.gc_stale_time;
        let mut gone = Vec::new();
        for (k, e) in &mut self.entries {
            if e.state == NeighState::Permanent || e.state.in_timer() || !e.queue.is_empty() {
                continue;
            }
            if e.used < e.confirmed && e.confirmed <= now {
                e.used = e.confirmed;
            }
            if e.state == NeighState::Failed || now >= e.used + stale {
                gone.push(*k);
            }
        }
        for k in gone {
            self.remove(k, out);
        }
    }

    /// Tells the workers when what they may use for `key` changed.
    fn publish(&mut self, key: NeighKey, out: &mut Vec<Event<T>>) {
        let Some(e) = self.entries.get_mut(&key) else { return };
        let now = if e.state.usable() { e.mac } else { None };
        if now != e.published {
            e.published = now;
            out.push(Event::Publish { key, mac: now });
        }
    }
}

/// `neigh_probe` with `arp_solicit` / `ndisc_solicit`: the first `ucast_solicit` probes of a
/// round go unicast to the cached address (a round in INCOMPLETE starts past them), the rest
/// multicast.
fn probe<T>(params: &NeighParams, key: NeighKey, e: &mut Entry<T>, out: &mut Vec<Event<T>>) {
    let unicast = if e.probes < params.ucast_solicit { e.mac } else { None };
    e.probes += 1;
    out.push(Event::Solicit { key, unicast });
}

fn view<T>(key: NeighKey, e: &Entry<T>, now: Duration) -> NeighView {
    NeighView {
        key,
        state: e.state,
        mac: e.mac,
        router: e.router,
        queued: e.queue.len(),
        probes: e.probes,
        confirmed_ago: now.saturating_sub(e.confirmed),
        used_ago: now.saturating_sub(e.used),
        updated_ago: now.saturating_sub(e.updated),
    }
}
