//! Counters written by one worker lcore and read by the control thread.
//!
//! Each worker has one [`WorkerCounters`]: its softnet_stat-like totals (rounds, idle
//! rounds, time_squeeze, busy cycles, drops by reason), RX per lane (polled queue) and
//! TX per out port. Only the worker writes them, with relaxed stores of totals it keeps
//! locally, once per round, so no update is a read-modify-write on a shared line; the
//! control thread reads with relaxed loads and may see a value one round old. Each
//! worker's counters start on a cache line of their own.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::eal::LcoreId;
use crate::forward::DropReason;
use crate::port::{PortId, QueueId};

/// A value on a cache line of its own.
#[repr(align(64))]
#[derive(Debug, Default)]
struct Line<T>(T);

/// A worker's running totals, kept in plain integers on its stack and published with
/// [`WorkerCounters::publish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerTotals {
    /// Poll rounds.
    pub rounds: u64,
    /// Rounds that found no packet on any queue.
    pub idle_rounds: u64,
    /// Rounds that ended with budget (packets or time) spent while a queue still returned
    /// a full burst: /proc/net/softnet_stat's third column.
    pub time_squeeze: u64,
    /// TSC cycles spent in rounds that found packets.
    pub busy_cycles: u64,
    /// Drops by [`DropReason::index`].
    pub drops: [u64; DropReason::COUNT],
    /// Requests to the forwarder itself handed to the slow path.
    pub punted: u64,
    /// Replies from the slow path this worker sent (they count in `port_tx` too).
    pub injected: u64,
    /// Mirror copies made (they count in `port_tx` of the mirror port too).
    pub mirrored: u64,
    /// Extensions that could not be attached (no free area); the packets went on without.
    pub ext_failures: u64,
    /// Packets the NIC refused that waited in a TX backlog.
    pub backlogged: u64,
    /// Backlogged packets later sent (they count in `port_tx` too).
    pub backlog_sent: u64,
    /// Per lane (index into the worker's lanes): packets received.
    pub lane_rx: Vec<u64>,
    /// Per lane: non-empty RX bursts.
    pub lane_bursts: Vec<u64>,
    /// Per port (index into the config's ports): packets handed to its TX queue.
    pub port_tx: Vec<u64>,
}

impl WorkerTotals {
    /// Zeroed totals for `lanes` lanes and `ports` ports.
    pub fn new(lanes: usize, ports: usize) -> Self {
        WorkerTotals {
            rounds: 0,
            idle_rounds: 0,
            time_squeeze: 0,
            busy_cycles: 0,
            drops: [0; DropReason::COUNT],
            punted: 0,
            injected: 0,
            mirrored: 0,
            ext_failures: 0,
            backlogged: 0,
            backlog_sent: 0,
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
}

/// The published copy of a worker's totals.
#[derive(Debug)]
pub struct WorkerCounters {
    core: Line<[AtomicU64; 10]>,
    drops: Line<[AtomicU64; DropReason::COUNT]>,
    lane_rx: Box<[AtomicU64]>,
    lane_bursts: Box<[AtomicU64]>,
    port_tx: Box<[AtomicU64]>,
}

fn zeros(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

impl WorkerCounters {
    /// Counters for a worker with `lanes` lanes, sending to `ports` ports.
    pub fn new(lanes: usize, ports: usize) -> Self {
        WorkerCounters {
            core: Line::default(),
            drops: Line::default(),
            lane_rx: zeros(lanes),
            lane_bursts: zeros(lanes),
            port_tx: zeros(ports),
        }
    }

    /// Stores the worker's totals (owner only).
    #[inline]
    pub fn publish(&self, t: &WorkerTotals) {
        let [rounds, idle, squeeze, busy, punted, injected, mirrored, ext_failures, backlogged, backlog_sent] = &self.core.0;
        backlogged.store(t.backlogged, Relaxed);
        backlog_sent.store(t.backlog_sent, Relaxed);
        mirrored.store(t.mirrored, Relaxed);
        ext_failures.store(t.ext_failures, Relaxed);
        punted.store(t.punted, Relaxed);
        injected.store(t.injected, Relaxed);
        rounds.store(t.rounds, Relaxed);
        idle.store(t.idle_rounds, Relaxed);
        squeeze.store(t.time_squeeze, Relaxed);
        busy.store(t.busy_cycles, Relaxed);
        for (a, v) in self.drops.0.iter().zip(&t.drops) {
            a.store(*v, Relaxed);
        }
        for (a, v) in self.lane_rx.iter().zip(&t.lane_rx) {
            a.store(*v, Relaxed);
        }
        for (a, v) in self.lane_bursts.iter().zip(&t.lane_bursts) {
            a.store(*v, Relaxed);
        }
        for (a, v) in self.port_tx.iter().zip(&t.port_tx) {
            a.store(*v, Relaxed);
        }
    }

    /// Reads the last published totals.
    pub fn read(&self) -> WorkerTotals {
        let load = |a: &[AtomicU64]| a.iter().map(|x| x.load(Relaxed)).collect::<Vec<_>>();
        let [rounds, idle, squeeze, busy, punted, injected, mirrored, ext_failures, backlogged, backlog_sent] = &self.core.0;
        let mut drops = [0; DropReason::COUNT];
        for (d, a) in drops.iter_mut().zip(&self.drops.0) {
            *d = a.load(Relaxed);
        }
        WorkerTotals {
            rounds: rounds.load(Relaxed),
            idle_rounds: idle.load(Relaxed),
            time_squeeze: squeeze.load(Relaxed),
            busy_cycles: busy.load(Relaxed),
            drops,
            punted: punted.load(Relaxed),
            injected: injected.load(Relaxed),
            mirrored: mirrored.load(Relaxed),
            ext_failures: ext_failures.load(Relaxed),
            backlogged: backlogged.load(Relaxed),
            backlog_sent: backlog_sent.load(Relaxed),
            lane_rx: load(&self.lane_rx),
            lane_bursts: load(&self.lane_bursts),
            port_tx: load(&self.port_tx),
        }
    }
}

/// Where a lane's packets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneId {
    /// RX port (index into the config's ports).
    pub port: usize,
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
        assert_eq!(std::mem::align_of::<Line<[AtomicU64; 10]>>(), 64);
        assert_eq!(std::mem::align_of::<WorkerCounters>(), 64);
    }

    #[test]
    fn publish_then_read() {
        let c = WorkerCounters::new(2, 3);
        let mut t = WorkerTotals::new(2, 3);
        t.rounds = 7;
        t.time_squeeze = 2;
        t.drops[DropReason::NoRoute.index()] = 5;
        t.lane_rx = vec![10, 20];
        t.port_tx = vec![1, 2, 3];
        c.publish(&t);
        let r = c.read();
        assert_eq!(r, t);
        assert_eq!(r.processed(), 30);
        assert_eq!(r.tx_packets(), 6);
        assert_eq!(r.dropped(), 5);
    }
}
