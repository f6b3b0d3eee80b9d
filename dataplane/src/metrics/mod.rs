//! `/metrics`: the forwarder's counters for Prometheus, served over HTTP by a thread of
//! its own (`[metrics] listen`).
//!
//! # Where the figures come from
//!
//! Workers are never asked anything for a scrape. The control thread (main.rs) already
//! takes a [`Snapshot`] and merges the workers' histograms every 250 ms for DPDK telemetry;
//! it hands the same figures to [`Published::new`] and [`MetricsSlot::publish`]. A scrape
//! encodes the latest [`Published`], so what Prometheus sees is at most 250 ms old and a
//! scrape costs the workers nothing, however many come.
//!
//! # Format
//!
//! `prometheus-client` encodes: the OpenMetrics text format (1.0.0) when the request's
//! `Accept` names `application/openmetrics-text` (Prometheus does), the Prometheus text
//! format 0.0.4 otherwise (curl, `promtool check metrics`). Every name starts `dataplane_`,
//! counters end `_total`, and names carry their unit (`_packets`, `_bytes`, `_seconds`,
//! `_pages`). The families and their labels are listed in [`families`]; the README's
//! "Metrics: Prometheus and Grafana" has the table.
//!
//! # RX-to-TX latency buckets
//!
//! `dataplane_rx_to_tx_latency_seconds` is a classic histogram whose buckets are read
//! off the merged hdrhistogram (cumulative since start, like the histogram itself) at
//! publication: fixed upper bounds [`LATENCY_BOUNDS_SECONDS`], 250 ns to 100 ms in 1-2.5-5
//! steps, plus `+Inf`. A value counts in the first bucket whose bound is at or above the
//! lowest value of its hdrhistogram bucket: a value at or below a bound always counts in
//! it, and, as hdrhistogram keeps 2 significant digits, one up to 1% above it may too.
//! `_sum` adds each recorded value's median equivalent.
//!
//! # HTTP
//!
//! See [`http`]: `GET` (or `HEAD`) `/metrics` only; bounded connections and timeouts; one
//! OS thread.

use std::sync::{Arc, Mutex, PoisonError};

use hdrhistogram::Histogram;

use crate::forwarder::Snapshot;

pub mod families;
pub mod http;

pub use http::{MetricsListener, MetricsServer};

/// Upper bounds (`le`) of the RX-to-TX latency histogram's buckets, in seconds; `+Inf`
/// follows. From 250 ns (a burst through net_null) to 100 ms (far past any sane TX
/// backlog), 1-2.5-5 per decade.
pub const LATENCY_BOUNDS_SECONDS: [f64; 18] = [
    250e-9, 500e-9, 1e-6, 2.5e-6, 5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3,
    100e-3,
];

/// A histogram in Prometheus's shape: observations per bucket (not cumulative; the
/// encoder accumulates), their count and their sum.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    /// Observations per bucket: one per [`LATENCY_BOUNDS_SECONDS`] entry, then `+Inf`.
    pub counts: [u64; LATENCY_BOUNDS_SECONDS.len() + 1],
    /// Every observation.
    pub count: u64,
    /// Their sum in seconds.
    pub sum_seconds: f64,
}

impl Buckets {
    /// Reads a histogram of TSC cycles into seconds buckets (see the module's "RX-to-TX
    /// latency buckets"). A `tsc_hz` of 0 is taken as 1.
    pub fn from_cycles(h: &Histogram<u64>, tsc_hz: u64) -> Buckets {
        let hz = tsc_hz.max(1) as f64;
        let mut b = Buckets { counts: [0; LATENCY_BOUNDS_SECONDS.len() + 1], count: 0, sum_seconds: 0.0 };
        for v in h.iter_recorded() {
            let n = v.count_at_value();
            let lowest = h.lowest_equivalent(v.value_iterated_to()) as f64 / hz;
            b.counts[LATENCY_BOUNDS_SECONDS.partition_point(|&le| le < lowest)] += n;
            b.count += n;
            b.sum_seconds += h.median_equivalent(v.value_iterated_to()) as f64 / hz * n as f64;
        }
        b
    }
}

/// What one scrape shows: the control thread's latest snapshot and the latency buckets
/// read off the workers' merged histograms.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// Ports, workers, pools, memory accounts.
    pub snapshot: Snapshot,
    /// RX-to-TX latency.
    pub latency: Buckets,
}

impl Published {
    /// From a snapshot and the merged RX-to-TX latency histogram (TSC cycles).
    pub fn new(snapshot: Snapshot, latency_cycles: &Histogram<u64>) -> Published {
        let latency = Buckets::from_cycles(latency_cycles, snapshot.tsc_hz);
        Published { snapshot, latency }
    }
}

/// The hand-off between the control thread (writer, a few times a second) and the metrics
/// thread (reader, once per scrape): the latest [`Published`] behind a mutex held only to
/// swap or clone an `Arc`.
#[derive(Debug, Clone, Default)]
pub struct MetricsSlot(Arc<Mutex<Option<Arc<Published>>>>);

impl MetricsSlot {
    /// Replaces what scrapes show.
    pub fn publish(&self, p: Published) {
        let old = self.0.lock().unwrap_or_else(PoisonError::into_inner).replace(Arc::new(p));
        drop(old); // freed outside the lock
    }

    /// The latest publication, `None` before the first.
    pub fn latest(&self) -> Option<Arc<Published>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values: &[(u64, u64)]) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 1 << 40, 2).unwrap();
        for &(v, n) in values {
            h.record_n(v, n).unwrap();
        }
        h
    }

    #[test]
    fn bounds_rise() {
        assert!(LATENCY_BOUNDS_SECONDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn buckets_from_cycles() {
        // At 1 GHz one cycle is 1 ns: 400 ns (bucket 500 ns), 3 us (5 us), 2 s (+Inf).
        let b = Buckets::from_cycles(&hist(&[(400, 10), (3_000, 5), (2_000_000_000, 1)]), 1_000_000_000);
        assert_eq!(b.count, 16);
        let mut want = [0; LATENCY_BOUNDS_SECONDS.len() + 1];
        want[1] = 10;
        want[4] = 5;
        want[LATENCY_BOUNDS_SECONDS.len()] = 1;
        assert_eq!(b.counts, want);
        let exact = 10.0 * 400e-9 + 5.0 * 3e-6 + 2.0;
        assert!((b.sum_seconds - exact).abs() / exact < 0.01, "{} vs {exact}", b.sum_seconds);
        // A value exactly on a bound counts in that bound's bucket.
        let on = Buckets::from_cycles(&hist(&[(1_000, 1)]), 1_000_000_000);
        assert_eq!(on.counts[2], 1, "{:?}", on.counts);
        assert_eq!(Buckets::from_cycles(&hist(&[]), 0).count, 0);
    }

    #[test]
    fn slot_keeps_the_latest() {
        let slot = MetricsSlot::default();
        assert!(slot.latest().is_none());
        let snap = |tsc_hz| Snapshot {
            workers: vec![],
            ports: vec![],
            pools: vec![],
            tsc_hz,
            slow_path: None,
            memory: None,
            fib: None,
            fpm: None,
        };
        slot.publish(Published::new(snap(1), &hist(&[])));
        slot.publish(Published::new(snap(2), &hist(&[])));
        assert_eq!(slot.clone().latest().unwrap().snapshot.tsc_hz, 2);
    }
}
