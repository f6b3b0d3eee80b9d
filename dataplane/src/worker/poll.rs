//! The poll loop's rounds, NAPI-style: `net_rx_action` (net/core/dev.c) and mlx5's
//! `mlx5e_napi_poll` (drivers/net/ethernet/mellanox/mlx5/core/en_txrx.c).
//!
//! Each round:
//!
//! 1. TX first: every TX buffer whose oldest packet waited the drain time is sent, the
//!    [`Stage`] gets its turn ([`Stage::start_round`]: the slow path's replies), and the
//!    backlogs are retried.
//! 2. RX under a budget: the lanes are polled in turn, a burst each, starting after the
//!    lane where the previous round ran out of budget, until every lane returned less than
//!    a full burst (drained), or the round's packet budget (`poll.budget`, like
//!    net.core.netdev_budget) or time budget (`poll.budget_usecs`, like
//!    netdev_budget_usecs) is spent. Spent budget while the last lane polled still returned
//!    a full burst counts one `time_squeeze`, as in softnet_stat.
//! 3. Each received burst goes to the [`Stage`], which moves every packet into TX buffers
//!    or drops it.
//!
//! A round that found nothing is idle; [`idle_action`] says how to back off. The loop is
//! generic over [`Queues`], so all of this is tested below on fake queues and a fake clock.

use std::time::Duration;

use crate::config::IdleBackoff;
use crate::stats::Counter;

use super::queues::{PacketBurst, Queues};
use super::tx::Worker;
use super::Budget;

/// What a worker does with the packets it receives.
pub trait Stage<Q: Queues> {
    /// At the start of each round, after the due TX buffers were sent and before the
    /// backlogs are retried.
    fn start_round(&mut self, _w: &mut Worker<Q>) {}
    /// A burst received on lane `lane` by the RX call at `rx_tsc` (0: not timed): move
    /// every packet into TX buffers (or send the burst whole) or drop it. `rx` is empty
    /// afterwards (what is left is freed).
    fn forward(&mut self, lane: usize, rx: &mut Q::Burst, rx_tsc: u64, w: &mut Worker<Q>);
}

/// The round state of one worker.
pub struct Poller<Q: Queues> {
    /// What the steps share.
    pub w: Worker<Q>,
    rx: Q::Burst,
    lanes: usize,
    burst: u16,
    budget: Budget,
    /// The lane the next round polls first.
    next_lane: usize,
    /// Polls until the next timed one (`u32::MAX`: timing off).
    sample_in: u32,
}

impl<Q: Queues> Poller<Q> {
    /// Takes a new budget (`ctl apply` of `[poll]`), keeping the round state.
    pub fn set_budget(&mut self, budget: Budget) {
        self.w.set_drain_cycles(budget.drain_cycles);
        self.sample_in = match budget.sample_every {
            0 => u32::MAX,
            n => self.sample_in.min(n - 1),
        };
        self.budget = budget;
    }

    /// A poller over `lanes` lanes asking for bursts of `burst` packets (at most the burst
    /// type's capacity).
    pub fn new(w: Worker<Q>, lanes: usize, burst: u16, budget: Budget) -> Self {
        let burst = burst.min(Q::Burst::CAPACITY as u16).max(1);
        let sample_in = if budget.sample_every == 0 { u32::MAX } else { 0 };
        Poller { w, rx: Q::Burst::default(), lanes, burst, budget, next_lane: 0, sample_in }
    }

    /// One round; returns whether it received anything.
    pub fn round<S: Stage<Q>>(&mut self, stage: &mut S) -> bool {
        let w = &mut self.w;
        let start = w.io.now();
        w.now = start;
        w.totals[Counter::Rounds] += 1;
        w.flush_due();
        stage.start_round(w);
        w.retry_backlogs();

        // As net_rx_action: every poll asks for a whole burst, and the budget may be
        // overdrawn by less than one burst.
        let burst = self.burst;
        let lanes = self.lanes;
        let mut left = i64::from(self.budget.packets);
        let mut work = 0u64;
        'round: loop {
            let mut any_full = false;
            // Like NAPI's poll list, start after the lane where the last round ran out of
            // budget, so that lane is not always first.
            let mut lane = self.next_lane;
            for _ in 0..lanes {
                // One poll in `sample_every` is timed (counting empty polls too, so an
                // idle worker does not read the TSC on every poll).
                let t0 = match self.sample_in {
                    0 => {
                        self.sample_in = self.budget.sample_every - 1;
                        self.w.io.now()
                    }
                    u32::MAX => 0,
                    _ => {
                        self.sample_in -= 1;
                        0
                    }
                };
                let n = self.w.io.rx_burst(lane, &mut self.rx, burst);
                let this = lane;
                lane = if lane + 1 == lanes { 0 } else { lane + 1 };
                if n == 0 {
                    continue;
                }
                let lane = this;
                self.w.totals.lane_rx[lane] += n as u64;
                self.w.totals.lane_bursts[lane] += 1;
                stage.forward(lane, &mut self.rx, t0, &mut self.w);
                if !self.rx.is_empty() {
                    debug_assert!(false, "a stage left packets in the RX burst");
                    self.rx.clear();
                }
                if t0 != 0 {
                    let now = self.w.io.now();
                    self.w.hist.burst_cycles.saturating_record(now.wrapping_sub(t0).max(1));
                }
                work += n as u64;
                left -= n as i64;
                let full = n == usize::from(burst);
                any_full |= full;
                if left <= 0 {
                    self.next_lane = if lane + 1 == lanes { 0 } else { lane + 1 };
                    self.w.totals[Counter::TimeSqueeze] += u64::from(full);
                    break 'round;
                }
            }
            if !any_full {
                break;
            }
            // netdev_budget_usecs: checked once per pass over the lanes.
            if self.w.io.now().wrapping_sub(start) >= self.budget.cycles {
                self.w.totals[Counter::TimeSqueeze] += 1;
                break;
            }
        }
        if work == 0 {
            self.w.totals[Counter::IdleRounds] += 1;
            return false;
        }
        let now = self.w.io.now();
        self.w.totals[Counter::BusyCycles] += now.wrapping_sub(start);
        true
    }
}

/// What an idle worker does after `idle_streak` idle rounds in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Poll again at once.
    Spin,
    /// `rte_pause()`, then poll.
    Pause,
    /// Sleep this long, then poll.
    Sleep(Duration),
}

/// The idle back-off of `[poll.idle_backoff]` (none: always [`Idle::Spin`]).
pub fn idle_action(backoff: Option<&IdleBackoff>, idle_streak: u32) -> Idle {
    match backoff {
        Some(b) if idle_streak >= b.sleep_after => Idle::Sleep(Duration::from_micros(u64::from(b.sleep_usecs))),
        Some(b) if idle_streak >= b.pause_after => Idle::Pause,
        _ => Idle::Spin,
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::{budget, freed, FakeQueues, ToPort};
    use super::*;
    use crate::port::PortIdx;

    fn poller(lanes: usize, b: Budget) -> Poller<FakeQueues> {
        let w = Worker::new(FakeQueues::new(lanes, 2), lanes, 2, b.drain_cycles, None);
        Poller::new(w, lanes, 32, b)
    }

    fn to_p1() -> ToPort {
        ToPort { port: PortIdx(1), whole: true }
    }

    #[test]
    fn packet_budget_ends_the_round_with_a_squeeze() {
        let mut p = poller(1, budget(300, u64::MAX, 0));
        p.w.io.arrive(0, 0..1000);
        assert!(p.round(&mut to_p1()));
        // net_rx_action: whole bursts until the budget is spent, overdrawn by less than one.
        assert_eq!(p.w.totals.lane_rx[0], 320);
        assert_eq!(p.w.totals.lane_bursts[0], 10);
        assert_eq!(p.w.totals[Counter::TimeSqueeze], 1, "the last burst was full");
        assert_eq!(p.w.io.sent(1), (0..320).collect::<Vec<_>>());
    }

    #[test]
    fn a_drained_lane_ends_the_round_without_a_squeeze() {
        let mut p = poller(1, budget(300, u64::MAX, 0));
        p.w.io.arrive(0, 0..40);
        assert!(p.round(&mut to_p1()));
        assert_eq!(p.w.io.polls, [0, 0], "a full burst, then 8 < 32: drained");
        assert_eq!(p.w.totals[Counter::TimeSqueeze], 0);
        assert!(!p.round(&mut to_p1()), "nothing left: idle");
        assert_eq!((p.w.totals[Counter::Rounds], p.w.totals[Counter::IdleRounds]), (2, 1));
        // Spending the budget on exactly the last packets, with a burst not full: no squeeze.
        let mut p = poller(1, budget(40, u64::MAX, 0));
        p.w.io.arrive(0, 0..40);
        p.round(&mut to_p1());
        assert_eq!(p.w.totals[Counter::TimeSqueeze], 0);
    }

    #[test]
    fn the_next_round_starts_after_the_lane_that_ran_out() {
        let mut p = poller(3, budget(40, u64::MAX, 0));
        for lane in 0..3 {
            p.w.io.arrive(lane, (0..1000).map(|i| lane as u32 * 1000 + i));
        }
        p.round(&mut to_p1());
        assert_eq!(p.w.io.polls, [0, 1], "32 + 32 >= 40");
        p.round(&mut to_p1());
        assert_eq!(p.w.io.polls, [0, 1, 2, 0]);
        p.round(&mut to_p1());
        assert_eq!(p.w.io.polls, [0, 1, 2, 0, 1, 2]);
        assert_eq!(p.w.totals[Counter::TimeSqueeze], 3);
    }

    #[test]
    fn time_budget_is_checked_once_per_pass() {
        let mut p = poller(2, budget(u32::MAX, 2500, 0));
        p.w.io.poll_cycles = 1000;
        p.w.io.arrive(0, 0..1000);
        p.round(&mut to_p1());
        // Passes of two polls (lane 1 is empty): after the first 2000 cycles, after the
        // second 4000 >= 2500.
        assert_eq!(p.w.io.polls, [0, 1, 0, 1]);
        assert_eq!(p.w.totals[Counter::TimeSqueeze], 1);
        assert_eq!(p.w.totals[Counter::BusyCycles], 4000);
    }

    #[test]
    fn sampled_polls_feed_the_histograms() {
        let mut b = budget(300, u64::MAX, 0);
        b.sample_every = 2;
        let mut p = poller(1, b);
        p.w.io.clock = 1000;
        p.w.io.poll_cycles = 10;
        p.w.io.arrive(0, 0..64);
        p.round(&mut to_p1());
        // Polls 1 and 3 of 3 are timed; the third found nothing.
        assert_eq!(p.w.hist.burst_cycles.len(), 1);
        assert_eq!(p.w.hist.latency_cycles.len(), 32, "each packet of the timed burst");
    }

    #[test]
    fn every_packet_is_sent_or_freed_once() {
        let before = freed();
        let mut p = poller(2, budget(64, u64::MAX, 0));
        p.w.io.set_room(1, 100);
        p.w.io.arrive(0, 0..150);
        p.w.io.arrive(1, 1000..1150);
        while p.round(&mut to_p1()) {}
        p.w.finish();
        let t = &p.w.totals;
        assert_eq!(t.processed(), 300);
        assert_eq!(t.tx_packets(), 100);
        assert_eq!(t[crate::forward::DropReason::TxFull], 200);
        assert_eq!(freed() - before, 200);
    }

    #[test]
    fn idle_back_off_pauses_then_sleeps() {
        let b = IdleBackoff { pause_after: 2, sleep_after: 4, sleep_usecs: 50 };
        let got: Vec<Idle> = (1..=5).map(|n| idle_action(Some(&b), n)).collect();
        let sleep = Idle::Sleep(Duration::from_micros(50));
        assert_eq!(got, [Idle::Spin, Idle::Pause, Idle::Pause, sleep, sleep]);
        assert_eq!(idle_action(None, u32::MAX), Idle::Spin);
    }
}
