//! The TX side of a worker: one TX buffer per port with its drain timer, and the backlogs
//! of what the NIC refused, in a [`Worker`] that the loop and every step share.
//!
//! - A packet a step forwards goes into its out port's buffer ([`Worker::enqueue`]); a full
//!   buffer is sent at once, a partial one once its oldest packet waited the drain time
//!   ([`Worker::flush_due`], l2fwd's ~100 us `drain_tsc`).
//! - A whole burst for one port can skip the buffer ([`Worker::send`], testpmd's io engine).
//! - What `tx_burst` refuses is freed and counted `tx_full`, or, with accounting, waits in
//!   the port's backlog ([`super::backlog`]); while a backlog holds packets, everything for
//!   that port queues behind it, and the backlog is sent first, oldest first.
//! - Packets of timed RX bursts feed the RX-to-TX latency histogram when the NIC takes them.

use mempool::MAX_BURST;

use crate::forward::DropReason;
use crate::net::Proto;
use crate::port::PortIdx;
use crate::stats::{Counter, WorkerTotals};

use super::backlog::Backlogs;
use super::queues::{PacketBurst, Queues};
use super::Histograms;

/// Packets waiting for one port, and when they started waiting.
struct TxBuf<B> {
    burst: B,
    /// When the oldest packet waiting was buffered (TSC); `None` when empty.
    since: Option<u64>,
    /// Runs of buffered packets from timed RX bursts: (position of the run's first packet
    /// in `burst`, its RX TSC, count).
    timed: [(u8, u64, u8); MAX_BURST],
    ntimed: usize,
    /// A bit per buffered packet that needs the hand-off before TX (it carries extensions).
    ext_mask: u32,
}

impl<B: PacketBurst> TxBuf<B> {
    const FITS: () = assert!(B::CAPACITY <= MAX_BURST, "timed runs are indexed by u8 positions up to MAX_BURST");

    fn new() -> Self {
        let () = Self::FITS;
        TxBuf { burst: B::default(), since: None, timed: [(0, 0, 0); MAX_BURST], ntimed: 0, ext_mask: 0 }
    }

    /// Notes that the last `n` packets in the buffer came from an RX burst at `rx_tsc`
    /// (0 = not timed). `now` is a recent TSC reading for the drain timer.
    #[inline]
    fn note(&mut self, rx_tsc: u64, n: usize, now: u64) {
        if self.since.is_none() {
            self.since = Some(now);
        }
        if rx_tsc != 0 && n > 0 {
            match self.ntimed.checked_sub(1).map(|i| &mut self.timed[i]) {
                Some((_, tsc, count)) if *tsc == rx_tsc => *count += n as u8,
                _ => {
                    self.timed[self.ntimed] = ((self.burst.len() - n) as u8, rx_tsc, n as u8);
                    self.ntimed += 1;
                }
            }
        }
    }
}

/// What a worker's loop and its steps share: the queues, a TX buffer per port, the
/// backlogs, the counters and the histograms.
pub struct Worker<Q: Queues> {
    /// The queues and the clock.
    pub io: Q,
    /// Running totals, published every few rounds (`stats::PUBLISH_EVERY`).
    pub totals: WorkerTotals,
    /// Latency and cost distributions.
    pub hist: Histograms,
    /// TSC at the start of the current round.
    pub now: u64,
    bufs: Vec<TxBuf<Q::Burst>>,
    backlog: Option<Backlogs<Q::Pkt>>,
    drain_cycles: u64,
}

impl<Q: Queues> Worker<Q> {
    /// A worker with `lanes` RX lanes and `ports` ports, flushing partial TX buffers after
    /// `drain_cycles`; with `backlog`, what the NIC refuses waits there.
    pub fn new(io: Q, lanes: usize, ports: usize, drain_cycles: u64, backlog: Option<Backlogs<Q::Pkt>>) -> Self {
        Worker {
            io,
            totals: WorkerTotals::new(lanes, ports),
            hist: Histograms::new(),
            now: 0,
            bufs: (0..ports).map(|_| TxBuf::new()).collect(),
            backlog,
            drain_cycles,
        }
    }

    /// Changes the drain timer (`ctl apply` of `poll.tx_drain_usecs`).
    pub fn set_drain_cycles(&mut self, drain_cycles: u64) {
        self.drain_cycles = drain_cycles;
    }

    /// Changes the backlog limits (`ctl apply` of `[accounting]`), when there are backlogs.
    pub fn set_backlog_limits(&mut self, limit: u32, under_pressure: u32) {
        if let Some(b) = &mut self.backlog {
            b.set_limits(limit as usize, under_pressure as usize);
        }
    }

    /// Puts `p` (from an RX burst at `rx_tsc`, 0 = not timed) into `port`'s TX buffer, and
    /// sends the buffer when that filled it.
    #[inline]
    pub fn enqueue(&mut self, port: PortIdx, p: Q::Pkt, rx_tsc: u64) {
        let ext = self.io.needs_hand_off(&p);
        self.enqueue_with(port, p, rx_tsc, ext);
    }

    /// [`Worker::enqueue`] when the caller knows whether `p` carries extensions (`ext`).
    #[inline]
    pub fn enqueue_with(&mut self, port: PortIdx, p: Q::Pkt, rx_tsc: u64, ext: bool) {
        let buf = &mut self.bufs[port.index()];
        buf.ext_mask |= u32::from(ext) << buf.burst.len();
        // A full buffer was sent when it filled, so there is room.
        if buf.burst.push(p).is_ok() {
            buf.note(rx_tsc, 1, self.now);
        }
        if buf.burst.len() == Q::Burst::CAPACITY {
            self.flush(port);
        }
    }

    /// Hands a whole burst for one port (received at `rx_tsc`) to its TX queue, bypassing
    /// the buffer; what the NIC refuses goes to the backlog or is dropped. Leaves `burst`
    /// empty. The caller has done the hand-off of packets with extensions.
    #[inline(always)]
    pub fn send(&mut self, port: PortIdx, burst: &mut Q::Burst, rx_tsc: u64) {
        if self.backlogged(port) {
            // Packets already wait for this port: queue behind them, in order.
            self.hold_burst(port, burst);
            return;
        }
        let Some(sent) = self.io.tx_burst(port, burst) else {
            self.totals[DropReason::NoTxQueue] += burst.len() as u64;
            burst.clear();
            return;
        };
        if rx_tsc != 0 && sent > 0 {
            let now = self.io.now();
            self.hist.latency_cycles.saturating_record_n(now.wrapping_sub(rx_tsc).max(1), sent as u64);
        }
        self.totals.port_tx[port.index()] += sent as u64;
        self.refused(port, burst);
    }

    /// Moves a whole burst for one port (received at `rx_tsc`; `ext` has a bit for each
    /// packet that carries extensions): as [`Worker::send`] (after the hand-off) when that
    /// port's TX buffer is empty (to the NIC, or behind its backlog), else into the buffer
    /// behind what waits. Leaves `burst` empty.
    #[inline]
    pub fn forward_burst(&mut self, port: PortIdx, burst: &mut Q::Burst, rx_tsc: u64, ext: u32) {
        if self.bufs[port.index()].burst.is_empty() {
            self.io.hand_off(burst, ext, &mut self.hist.latency_cycles);
            self.send(port, burst, rx_tsc);
        } else {
            let mut i = 0;
            burst.drain_each(|p| {
                self.enqueue_with(port, p, rx_tsc, ext >> i & 1 != 0);
                i += 1;
            });
        }
    }

    /// Sends every TX buffer whose oldest packet waited the drain time (`now` is the
    /// round's start).
    pub fn flush_due(&mut self) {
        for p in PortIdx::all(self.bufs.len()) {
            if self.bufs[p.index()].since.is_some_and(|t| self.now.wrapping_sub(t) >= self.drain_cycles) {
                self.flush(p);
            }
        }
    }

    /// Sends what the backlogs hold, as far as the NIC takes it, and the buffers behind them.
    pub fn retry_backlogs(&mut self) {
        if self.backlog.is_none() {
            return;
        }
        for p in PortIdx::all(self.bufs.len()) {
            if self.backlogged(p) {
                self.flush(p);
            }
        }
    }

    /// At the end: sends every buffer, then frees (as `tx_full`) what still waits.
    pub fn finish(&mut self) {
        for p in PortIdx::all(self.bufs.len()) {
            self.flush(p);
        }
        if let Some(b) = &mut self.backlog {
            let totals = &mut self.totals;
            b.drain_all(|p| {
                totals[DropReason::TxFull] += 1;
                drop(p)
            });
        }
    }

    /// Sends what buffer `port` holds, behind its backlog; what the NIC refuses goes to the
    /// backlog or is dropped. Packets of timed bursts that were sent feed the RX-to-TX
    /// latency histogram.
    pub fn flush(&mut self, port: PortIdx) {
        let i = port.index();
        if self.backlogged(port) {
            self.drain_backlog(port);
        }
        let buf = &mut self.bufs[i];
        if buf.burst.is_empty() {
            buf.since = None;
            return;
        }
        buf.since = None;
        if buf.ext_mask != 0 {
            self.io.hand_off(&mut buf.burst, buf.ext_mask, &mut self.hist.latency_cycles);
            buf.ext_mask = 0;
        }
        if self.backlogged(port) {
            // The NIC still refuses the backlog: new packets wait behind it, in order.
            let mut b = std::mem::take(&mut self.bufs[i].burst);
            self.hold_burst(port, &mut b);
            let buf = &mut self.bufs[i];
            buf.burst = b;
            buf.ntimed = 0;
            return;
        }
        let buf = &mut self.bufs[i];
        let Some(sent) = self.io.tx_burst(port, &mut buf.burst) else {
            self.totals[DropReason::NoTxQueue] += buf.burst.len() as u64;
            buf.burst.clear();
            buf.ntimed = 0;
            return;
        };
        if buf.ntimed > 0 {
            let now = self.io.now();
            for &(first, tsc, count) in &buf.timed[..buf.ntimed] {
                let k = sent.saturating_sub(usize::from(first)).min(usize::from(count));
                if k > 0 {
                    self.hist.latency_cycles.saturating_record_n(now.wrapping_sub(tsc).max(1), k as u64);
                }
            }
            buf.ntimed = 0;
        }
        self.totals.port_tx[i] += sent as u64;
        if !buf.burst.is_empty() {
            let mut unsent = std::mem::take(&mut buf.burst);
            self.refused(port, &mut unsent);
            self.bufs[i].burst = unsent;
        }
    }

    /// What the NIC refused: into the backlog when there is one, else freed and counted
    /// `tx_full`.
    #[inline(always)]
    fn refused(&mut self, port: PortIdx, unsent: &mut Q::Burst) {
        if !unsent.is_empty() {
            self.refused_some(port, unsent);
        }
    }

    #[cold]
    #[inline(never)]
    fn refused_some(&mut self, port: PortIdx, unsent: &mut Q::Burst) {
        if self.backlog.is_some() {
            self.hold_burst(port, unsent);
        } else {
            self.totals[DropReason::TxFull] += unsent.len() as u64;
            unsent.clear();
        }
    }

    /// Whether packets wait in `port`'s backlog.
    #[inline]
    pub fn backlogged(&self, port: PortIdx) -> bool {
        self.backlog.as_ref().is_some_and(|b| b.is_held(port.index()))
    }

    /// Queues the packets of `burst` behind `port`'s backlog, in order, or drops them with
    /// the backlog's reason; a full backlog drops the whole burst at once (one bulk free,
    /// no per-packet look at its class). Leaves `burst` empty.
    fn hold_burst(&mut self, port: PortIdx, burst: &mut Q::Burst) {
        if self.backlog.as_ref().is_none_or(|b| b.is_full(port.index())) {
            self.totals[DropReason::TxFull] += burst.len() as u64;
            burst.clear();
            return;
        }
        burst.drain_each(|p| self.hold(port, p));
    }

    /// Queues a packet behind `port`'s backlog, or drops it with the backlog's reason.
    fn hold(&mut self, port: PortIdx, p: Q::Pkt) {
        let Some(b) = &mut self.backlog else {
            self.totals[DropReason::TxFull] += 1;
            return;
        };
        match b.hold(port.index(), p) {
            Ok(()) => self.totals[Counter::Backlogged] += 1,
            Err(r) => self.totals[r] += 1,
        }
    }

    /// Sends as much of `port`'s backlog as the NIC takes, oldest first, uncharging what
    /// leaves.
    fn drain_backlog(&mut self, port: PortIdx) {
        let i = port.index();
        let Some(backlog) = &mut self.backlog else { return };
        let mut protos = [Proto::Other; MAX_BURST];
        let protos = &mut protos[..Q::Burst::CAPACITY];
        loop {
            let mut b = Q::Burst::default();
            let n = backlog.take(i, &mut b, protos);
            if n == 0 {
                return;
            }
            let Some(sent) = self.io.tx_burst(port, &mut b) else {
                backlog.put_back(i, &mut b, &protos[..n]);
                return;
            };
            backlog.sent(i, &protos[..sent]);
            self.totals.port_tx[i] += sent as u64;
            self.totals[Counter::BacklogSent] += sent as u64;
            backlog.put_back(i, &mut b, &protos[..n]);
            if sent < n {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mempool::accounting::{Accounting, AccountingConfig, LcoreSlot, ProtoLimits};

    use super::super::backlog::WorkerMemory;
    use super::super::fake::{budget, freed, FakeQueues, Pkt, ToPort};
    use super::super::poll::Poller;
    use super::*;
    use crate::config::AccountingConf;

    const P1: PortIdx = PortIdx(1);

    fn worker(backlog: Option<Backlogs<Pkt>>) -> Worker<FakeQueues> {
        Worker::new(FakeQueues::new(1, 2), 1, 2, 100, backlog)
    }

    fn memory(backlog: u32, bypass: bool) -> (Arc<Accounting>, WorkerMemory) {
        let acct =
            Arc::new(Accounting::new(AccountingConfig { limits: [ProtoLimits::DEFAULT; 4], batch_pages: 0, lcores: 1 }).unwrap());
        let group = acct.group("port", u64::MAX).unwrap();
        let m = WorkerMemory {
            accounting: acct.clone(),
            slot: LcoreSlot(0),
            port_groups: vec![group.clone(), group.clone()],
            slow_group: group,
            backlog_class: acct.class("tx_backlog", bypass).unwrap(),
            slow_class: acct.class("slow_path", true).unwrap(),
            conf: AccountingConf {
                limits: [ProtoLimits::DEFAULT; 4],
                batch_pages: 0,
                backlog,
                backlog_under_pressure: backlog,
                backlog_bypass: bypass,
                punt_bypass: true,
                port_budget: 0,
                slow_path_budget: 0,
                neigh_queue_bypass: false,
                neigh_queue_budget: 0,
            },
            truesize: 2304,
        };
        (acct, m)
    }

    #[test]
    fn a_partial_buffer_waits_for_the_drain_timer() {
        let mut w = worker(None);
        w.now = 1000;
        for i in 0..5 {
            w.enqueue(P1, Pkt(i), 0);
        }
        w.now = 1099;
        w.flush_due();
        assert!(w.io.sent(1).is_empty(), "99 cycles < 100");
        w.now = 1100;
        w.flush_due();
        assert_eq!(w.io.sent(1), [0, 1, 2, 3, 4]);
        // Empty again: the timer starts with the next packet.
        w.now = 5000;
        w.enqueue(P1, Pkt(5), 0);
        w.now = 5050;
        w.flush_due();
        assert_eq!(w.io.sent(1).len(), 5);
    }

    #[test]
    fn a_full_buffer_goes_at_once() {
        let mut w = worker(None);
        for i in 0..33 {
            w.enqueue(P1, Pkt(i), 0);
        }
        assert_eq!(w.io.sent(1), (0..32).collect::<Vec<_>>());
        assert_eq!(w.totals.port_tx[1], 32);
        w.finish();
        assert_eq!(w.io.sent(1).len(), 33);
    }

    #[test]
    fn refused_packets_are_freed_as_tx_full_without_a_backlog() {
        let before = freed();
        let mut w = worker(None);
        w.io.set_room(1, 10);
        for i in 0..32 {
            w.enqueue(P1, Pkt(i), 0);
        }
        assert_eq!(w.io.sent(1).len(), 10);
        assert_eq!(w.totals[DropReason::TxFull], 22);
        assert_eq!(freed() - before, 22);
        // No TX queue on a port: counted, freed.
        w.io.tx[0] = None;
        w.enqueue(PortIdx(0), Pkt(99), 0);
        w.finish();
        assert_eq!(w.totals[DropReason::NoTxQueue], 1);
        assert_eq!(freed() - before, 23);
    }

    #[test]
    fn the_backlog_is_sent_first_and_in_order() {
        let before = freed();
        let (acct, m) = memory(512, false);
        let mut p = Poller::new(
            Worker::new(FakeQueues::new(1, 2), 1, 2, 100, Some(Backlogs::new(&m, 2))),
            1,
            32,
            budget(64, u64::MAX, 100),
        );
        let mut stage = ToPort { port: P1, whole: false };
        p.w.io.set_room(1, 10);
        p.w.io.arrive(0, 0..100);
        p.round(&mut stage);
        // 64 taken (budget): 32 sent at once (10 taken, 22 held), 32 more behind them.
        assert_eq!(p.w.io.sent(1).len(), 10);
        assert!(p.w.backlogged(P1));
        assert!(acct.account(Proto::Tcp).exact_pages() > 0, "held packets are charged");
        // The NIC takes 5 per round now: the backlog drains oldest first; new packets wait.
        for _ in 0..40 {
            p.w.io.set_room(1, 5);
            p.w.now += 1000;
            p.round(&mut stage);
        }
        p.w.io.set_room(1, usize::MAX);
        while p.round(&mut stage) {}
        p.w.now += 1000;
        p.round(&mut stage);
        p.w.finish();
        assert_eq!(p.w.io.sent(1), (0..100).collect::<Vec<_>>(), "sent once each, in arrival order");
        assert_eq!(p.w.totals[Counter::BacklogSent], p.w.totals[Counter::Backlogged], "every held packet was sent");
        assert!(p.w.totals[Counter::Backlogged] >= 54, "22 refused and 32 queued behind them in the first round");
        assert_eq!(p.w.totals.port_tx[1], 100);
        assert_eq!(freed() - before, 0);
        drop(p);
        acct.flush_all();
        assert!(acct.snapshot().is_drained(), "every charge returned");
    }

    #[test]
    fn a_full_backlog_drops_as_tx_full_and_frees_at_the_end() {
        let before = freed();
        for bypass in [false, true] {
            let (acct, m) = memory(8, bypass);
            let mut w = Worker::new(FakeQueues::new(1, 2), 1, 2, 100, Some(Backlogs::new(&m, 2)));
            w.io.set_room(1, 0);
            for i in 0..32 {
                w.enqueue(P1, Pkt(i), 0);
            }
            assert_eq!((w.totals[Counter::Backlogged], w.totals[DropReason::TxFull]), (8, 24));
            let charged = acct.account(Proto::Tcp).exact_pages();
            assert_eq!(charged > 0, !bypass, "bypass skips the protocol account");
            w.finish();
            assert_eq!(w.totals[DropReason::TxFull], 32);
            drop(w);
            acct.flush_all();
            assert!(acct.snapshot().is_drained());
        }
        assert_eq!(freed() - before, 64);
    }
}
