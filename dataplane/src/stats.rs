//! Counters written by one worker lcore and read by the control thread.
//!
//! Each RX lane (one polled RX queue and the TX queue its packets leave by) has its own
//! cache-line-aligned block of counters. Only the owning worker writes it, with relaxed
//! stores of values it keeps locally, so no counter update is a read-modify-write on a
//! shared line; the control thread reads with relaxed loads and may see a value one burst
//! old. Sums across lanes give per-lcore and per-port figures.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::eal::LcoreId;
use crate::port::{PortId, QueueId};

/// The counters of one lane, on a cache line of their own.
#[repr(align(64))]
#[derive(Debug, Default)]
pub struct LaneCounters {
    rx_packets: AtomicU64,
    tx_packets: AtomicU64,
    tx_dropped: AtomicU64,
    rx_bursts: AtomicU64,
}

/// The worker's private running totals for one lane, published with [`LaneCounters::publish`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LaneTotals {
    /// Packets received on the lane's RX queue.
    pub rx_packets: u64,
    /// Packets the TX queue accepted.
    pub tx_packets: u64,
    /// Packets the TX queue refused (ring full), freed and counted.
    pub tx_dropped: u64,
    /// Non-empty RX bursts.
    pub rx_bursts: u64,
}

impl LaneCounters {
    /// Stores the worker's totals (owner only).
    #[inline]
    pub fn publish(&self, t: &LaneTotals) {
        self.rx_packets.store(t.rx_packets, Relaxed);
        self.tx_packets.store(t.tx_packets, Relaxed);
        self.tx_dropped.store(t.tx_dropped, Relaxed);
        self.rx_bursts.store(t.rx_bursts, Relaxed);
    }

    /// Reads the last published totals.
    pub fn read(&self) -> LaneTotals {
        LaneTotals {
            rx_packets: self.rx_packets.load(Relaxed),
            tx_packets: self.tx_packets.load(Relaxed),
            tx_dropped: self.tx_dropped.load(Relaxed),
            rx_bursts: self.rx_bursts.load(Relaxed),
        }
    }
}

/// Where a lane's packets come from and go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneId {
    /// Worker lcore.
    pub lcore: LcoreId,
    /// RX port.
    pub rx_port: PortId,
    /// RX queue.
    pub rx_queue: QueueId,
    /// TX port.
    pub tx_port: PortId,
    /// TX queue.
    pub tx_queue: QueueId,
}

/// A lane's identity and its totals at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneSnapshot {
    /// Which lane.
    pub id: LaneId,
    /// Its totals.
    pub totals: LaneTotals,
}

impl std::ops::AddAssign for LaneTotals {
    fn add_assign(&mut self, o: LaneTotals) {
        self.rx_packets += o.rx_packets;
        self.tx_packets += o.tx_packets;
        self.tx_dropped += o.tx_dropped;
        self.rx_bursts += o.rx_bursts;
    }
}

/// Sums the totals of the lanes that `pick` selects.
pub fn sum_lanes(lanes: &[LaneSnapshot], pick: impl Fn(&LaneId) -> bool) -> LaneTotals {
    let mut t = LaneTotals::default();
    for l in lanes.iter().filter(|l| pick(&l.id)) {
        t += l.totals;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_sit_on_their_own_cache_line() {
        assert_eq!(std::mem::align_of::<LaneCounters>(), 64);
        assert_eq!(std::mem::size_of::<LaneCounters>(), 64);
    }

    #[test]
    fn publish_then_read_and_sum() {
        let c = LaneCounters::default();
        let t = LaneTotals { rx_packets: 10, tx_packets: 8, tx_dropped: 2, rx_bursts: 1 };
        c.publish(&t);
        assert_eq!(c.read(), t);
        let id = |p| LaneId { lcore: LcoreId(1), rx_port: PortId(p), rx_queue: QueueId(0), tx_port: PortId(1 - p), tx_queue: QueueId(0) };
        let lanes = [LaneSnapshot { id: id(0), totals: t }, LaneSnapshot { id: id(1), totals: t }];
        assert_eq!(sum_lanes(&lanes, |_| true).rx_packets, 20);
        assert_eq!(sum_lanes(&lanes, |l| l.tx_port == PortId(1)).tx_dropped, 2);
    }
}
