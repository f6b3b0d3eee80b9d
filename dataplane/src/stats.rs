//! Counters written by one worker lcore and read by the control thread.
//!
//! Each worker has one [`WorkerCounters`]: its softnet_stat-like totals ([`Counter`]: rounds,
//! idle rounds, time_squeeze, busy cycles, ...; drops by [`DropReason`]), RX per lane (polled queue) and
//! TX per out port. Only the worker writes them, with relaxed stores of totals it keeps
//! locally, every [`PUBLISH_EVERY`] rounds, at the first idle round after traffic and at exit, so no
//! update is a read-modify-write on a shared line; the control thread reads with relaxed
//! loads and may see values that many rounds old (microseconds). Each worker's counters
//! start on a cache line of their own.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::eal::LcoreId;

/// A worker publishes its totals once in this many rounds (a round takes a few microseconds
/// at most, so readers lag by well under a millisecond), and at its first idle round after
/// traffic, so the final counts show at once when traffic stops.
pub const PUBLISH_EVERY: u64 = 16;
use crate::forward::DropReason;
use crate::port::{PortId, PortIdx, QueueId};

/// A value on a cache line of its own.
#[repr(align(64))]
#[derive(Debug, Default)]
struct Line<T>(T);

/// A worker's scalar counters. Each indexes [`WorkerTotals`] (`totals[Counter::Rounds]`)
/// and is named in reports, JSON and telemetry by its variant in snake_case.
///
/// To add a counter, add a variant: publishing, reading, summing and reporting follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::EnumCount, strum::VariantArray, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Counter {
    /// Poll rounds.
    Rounds,
    /// Rounds that found no packet on any queue.
    IdleRounds,
    /// Rounds that ended with budget (packets or time) spent while a queue still returned
    /// a full burst: /proc/net/softnet_stat's third column.
    TimeSqueeze,
    /// TSC cycles spent in rounds that found packets.
    BusyCycles,
    /// Requests to the forwarder itself handed to the slow path.
    Punted,
    /// Replies from the slow path this worker sent (they count in `port_tx` too).
    Injected,
    /// Mirror copies made (they count in `port_tx` of the mirror port too).
    Mirrored,
    /// Extensions that could not be attached (no free area); the packets went on without.
    ExtFailures,
    /// Packets the NIC refused that waited in a TX backlog.
    Backlogged,
    /// Backlogged packets later sent (they count in `port_tx` too).
    BacklogSent,
    /// Routed packets handed to the slow path to wait for their next hop's neighbour MAC
    /// (they count in `punted` too).
    Resolving,
}

impl Counter {
    /// Number of counters.
    pub const COUNT: usize = <Self as strum::EnumCount>::COUNT;

    /// Every counter, in declaration order.
    pub const ALL: &'static [Counter] = <Self as strum::VariantArray>::VARIANTS;

    /// The counter's name: the variant in snake_case.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// A worker's running totals, kept in plain integers on its stack and published with
/// [`WorkerCounters::publish`]. Indexed by [`Counter`] and by [`DropReason`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerTotals {
    /// By [`Counter`].
    pub counters: [u64; Counter::COUNT],
    /// Drops by [`DropReason`].
    pub drops: [u64; DropReason::COUNT],
    /// Per lane (index into the worker's lanes): packets received.
    pub lane_rx: Vec<u64>,
    /// Per lane: non-empty RX bursts.
    pub lane_bursts: Vec<u64>,
    /// Per port (config order): packets handed to its TX queue.
    pub port_tx: Vec<u64>,
}

impl std::ops::Index<Counter> for WorkerTotals {
    type Output = u64;
    #[inline]
    fn index(&self, c: Counter) -> &u64 {
        &self.counters[c as usize]
    }
}

impl std::ops::IndexMut<Counter> for WorkerTotals {
    #[inline]
    fn index_mut(&mut self, c: Counter) -> &mut u64 {
        &mut self.counters[c as usize]
    }
}

impl std::ops::Index<DropReason> for WorkerTotals {
    type Output = u64;
    #[inline]
    fn index(&self, r: DropReason) -> &u64 {
        &self.drops[r.index()]
    }
}

impl std::ops::IndexMut<DropReason> for WorkerTotals {
    #[inline]
    fn index_mut(&mut self, r: DropReason) -> &mut u64 {
        &mut self.drops[r.index()]
    }
}

impl WorkerTotals {
    /// Zeroed totals for `lanes` lanes and `ports` ports.
    pub fn new(lanes: usize, ports: usize) -> Self {
        WorkerTotals {
            counters: [0; Counter::COUNT],
            drops: [0; DropReason::COUNT],
            lane_rx: vec![0; lanes],
            lane_bursts: vec![0; lanes],
            port_tx: vec![0; ports],
        }
    }

    /// Packets received on all lanes (softnet_stat's `processed`).
    pub fn processed(&self) -> u64 {
        self.lane_rx.iter().sum()
    }

    /// Packets sent on all ports.
    pub fn tx_packets(&self) -> u64 {
        self.port_tx.iter().sum()
    }

    /// Packets dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Adds another worker's counters and drops, and its port TX counts, into these.
    /// Lanes are per worker and are not added.
    pub fn add(&mut self, o: &WorkerTotals) {
        for (a, b) in self.counters.iter_mut().zip(&o.counters) {
            *a += b;
        }
        for (a, b) in self.drops.iter_mut().zip(&o.drops) {
            *a += b;
        }
        for (a, b) in self.port_tx.iter_mut().zip(&o.port_tx) {
            *a += b;
        }
    }
}

/// The published copy of a worker's totals.
#[derive(Debug)]
pub struct WorkerCounters {
    counters: Line<[AtomicU64; Counter::COUNT]>,
    drops: Line<[AtomicU64; DropReason::COUNT]>,
    lane_rx: Box<[AtomicU64]>,
    lane_bursts: Box<[AtomicU64]>,
    port_tx: Box<[AtomicU64]>,
}

fn zeros(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

fn store(to: &[AtomicU64], from: &[u64]) {
    for (a, v) in to.iter().zip(from) {
        a.store(*v, Relaxed);
    }
}

fn load<const N: usize>(from: &[AtomicU64; N]) -> [u64; N] {
    std::array::from_fn(|i| from[i].load(Relaxed))
}

impl WorkerCounters {
    /// Counters for a worker with `lanes` lanes, sending to `ports` ports.
    pub fn new(lanes: usize, ports: usize) -> Self {
        WorkerCounters {
            counters: Line::default(),
            drops: Line::default(),
            lane_rx: zeros(lanes),
            lane_bursts: zeros(lanes),
            port_tx: zeros(ports),
        }
    }

    /// Stores the worker's totals (owner only).
    #[inline]
    pub fn publish(&self, t: &WorkerTotals) {
        store(&self.counters.0, &t.counters);
        store(&self.drops.0, &t.drops);
        store(&self.lane_rx, &t.lane_rx);
        store(&self.lane_bursts, &t.lane_bursts);
        store(&self.port_tx, &t.port_tx);
    }

    /// Reads the last published totals.
    pub fn read(&self) -> WorkerTotals {
        let load_all = |a: &[AtomicU64]| a.iter().map(|x| x.load(Relaxed)).collect::<Vec<_>>();
        WorkerTotals {
            counters: load(&self.counters.0),
            drops: load(&self.drops.0),
            lane_rx: load_all(&self.lane_rx),
            lane_bursts: load_all(&self.lane_bursts),
            port_tx: load_all(&self.port_tx),
        }
    }
}

/// Where a lane's packets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneId {
    /// RX port.
    pub port: PortIdx,
    /// Its ethdev id.
    pub port_id: PortId,
    /// RX queue.
    pub queue: QueueId,
}

/// One worker's identity, lanes and totals at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSnapshot {
    /// Its lcore.
    pub lcore: LcoreId,
    /// Its lanes, index for index with `totals.lane_rx`.
    pub lanes: Vec<LaneId>,
    /// Its totals.
    pub totals: WorkerTotals,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_worker_starts_on_its_own_cache_line() {
        assert_eq!(std::mem::align_of::<Line<[AtomicU64; Counter::COUNT]>>(), 64);
        assert_eq!(std::mem::align_of::<WorkerCounters>(), 64);
    }

    #[test]
    fn publish_then_read() {
        let c = WorkerCounters::new(2, 3);
        let mut t = WorkerTotals::new(2, 3);
        t[Counter::Rounds] = 7;
        t[Counter::TimeSqueeze] = 2;
        t[Counter::BacklogSent] = 1;
        t[DropReason::NoRoute] = 5;
        t.lane_rx = vec![10, 20];
        t.port_tx = vec![1, 2, 3];
        c.publish(&t);
        let r = c.read();
        assert_eq!(r, t);
        assert_eq!(r.processed(), 30);
        assert_eq!(r.tx_packets(), 6);
        assert_eq!(r.dropped(), 5);
        let mut sum = WorkerTotals::new(0, 3);
        sum.add(&r);
        sum.add(&r);
        assert_eq!((sum[Counter::Rounds], sum[DropReason::NoRoute], sum.tx_packets()), (14, 10, 12));
    }

    #[test]
    fn counter_names() {
        let names: Vec<&str> = Counter::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            [
                "rounds",
                "idle_rounds",
                "time_squeeze",
                "busy_cycles",
                "punted",
                "injected",
                "mirrored",
                "ext_failures",
                "backlogged",
                "backlog_sent",
                "resolving"
            ]
        );
    }
}
