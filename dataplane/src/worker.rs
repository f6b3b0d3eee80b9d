//! The per-lcore poll loop.
//!
//! A worker owns a fixed list of lanes (an RX queue and the TX queue its packets leave by)
//! and one reusable [`Burst`]. Each round it polls every lane once: receive up to `burst`
//! packets, hand them to TX, free and count what TX refused. Nothing on this path
//! allocates, locks or logs; counters are published with relaxed stores.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use mempool::Burst;

use crate::port::{RxQueue, TxQueue};
use crate::stats::{LaneCounters, LaneTotals};

/// One polled RX queue and where its packets go.
#[derive(Debug, Clone, Copy)]
pub struct Lane {
    /// Where packets come from.
    pub rx: RxQueue,
    /// Where they go (`io` mode: the paired port).
    pub tx: TxQueue,
}

/// Everything one worker lcore needs.
#[derive(Debug)]
pub struct WorkerPlan {
    /// The lanes, polled in order.
    pub lanes: Vec<Lane>,
    /// Packets per RX burst.
    pub burst: u16,
    /// The lanes' published counters, index for index.
    pub counters: Arc<[LaneCounters]>,
    /// Set by the control thread (or a signal) to end the loop.
    pub stop: Arc<AtomicBool>,
}

/// `io` forwarding: packets leave untouched by the paired port. Returns when `stop` is set,
/// after freeing anything still held.
pub fn run_io(plan: WorkerPlan) {
    let WorkerPlan { lanes, burst: max, counters, stop } = plan;
    let mut totals = vec![LaneTotals::default(); lanes.len()];
    let mut burst: Burst = Burst::new();
    while !stop.load(Relaxed) {
        for (i, lane) in lanes.iter().enumerate() {
            let n = lane.rx.rx_burst(&mut burst, max);
            if n == 0 {
                continue;
            }
            let sent = lane.tx.tx_burst(&mut burst);
            let unsent = burst.len();
            burst.clear();
            let t = &mut totals[i];
            t.rx_packets += n as u64;
            t.tx_packets += sent as u64;
            t.tx_dropped += unsent as u64;
            t.rx_bursts += 1;
            counters[i].publish(t);
        }
    }
}
