//! The per-lcore worker: a poll loop with a budget, TX buffers and backlogs, and the
//! per-feature steps, each in its own module.
//!
//! - [`poll`]: the rounds (TX first, then RX under a packet and time budget,
//!   `time_squeeze`), the idle back-off. Generic over [`queues::Queues`], the small RX/TX
//!   trait, and tested on fake queues.
//! - [`tx`]: the TX buffers with their drain timer, and [`backlog`]: what the NIC refused,
//!   held with its memory charged, sent first and in order.
//! - [`modes`]: what each forwarding mode does with a burst; [`extensions`] (trace, flow
//!   metadata, mirror) and [`slow`] (the hand-off to the slow path) are its steps.
//!
//! A worker owns a fixed list of lanes (RX queues), its own TX queue on each port it sends
//! to, one reusable RX burst, its counters and its histograms. [`run`] polls rounds until
//! the stop flag is set; after each round it publishes its counters and, after an idle one,
//! backs off. Nothing on the per-packet path allocates, locks or logs.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use hdrhistogram::Histogram;

use mempool::Pool;

use crate::config::IdleBackoff;
use crate::eal::{self, LcoreId};
use crate::fib::FibReader;
use crate::live::LiveCell;
use crate::local::Local;
use crate::net::MacAddr;
use crate::port::{PortIdx, RxQueue, TxQueue};
use crate::rcu::QsbrReader;
use crate::slowpath::SlowPathLink;
use crate::stats::{self, Counter, WorkerCounters};

mod backlog;
mod extensions;
#[cfg(test)]
mod fake;
mod modes;
mod poll;
mod queues;
mod route;
mod slow;
mod tx;

pub use backlog::WorkerMemory;
pub use extensions::WorkerExts;
pub use poll::{idle_action, Idle};

/// The environment variable that makes a worker panic, for testing how the forwarder
/// handles it: `LCORE:ROUNDS` (the worker on lcore LCORE panics after ROUNDS rounds, at
/// the next time it looks, within `stats::PUBLISH_EVERY` rounds).
pub const FAULT_ENV: &str = "DATAPLANE_FAULT_PANIC";

/// One polled RX queue and where its packets go.
#[derive(Debug)]
pub struct Lane {
    /// Where packets come from.
    pub rx: RxQueue,
    /// The RX port.
    pub port: PortIdx,
    /// Where its packets go, resolved once for the lane.
    pub dest: Dest,
    /// Check each received packet's mbuf chain (the RX port's `check_chains`).
    pub check_chains: bool,
}

/// Where a lane's packets go.
#[derive(Debug, Clone)]
pub enum Dest {
    /// Pair modes: every packet leaves by `out`, rewritten by `rewrite`.
    Pair {
        /// The pair partner of the lane's port.
        out: PortIdx,
        /// What is done to each packet.
        rewrite: Rewrite,
    },
    /// l3fwd: each packet is routed.
    Route {
        /// The routes.
        tables: Arc<L3Tables>,
        /// The forwarder's own addresses on the lane's port, if any (their requests are
        /// punted to the slow path).
        local: Option<Local>,
    },
}

/// What a pair mode does to each packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// `io`: nothing; whole bursts move untouched.
    None,
    /// `macswap`: source and destination MAC swapped.
    Macswap,
    /// `l2fwd`: source MAC = the out port's own, destination MAC = its peer's.
    L2fwd {
        /// The out port's MAC.
        src: MacAddr,
        /// The out port's `peer_mac`.
        dst: MacAddr,
    },
}

/// The routing tables every worker reads in l3fwd mode (lock-free, through its RCU reader).
#[derive(Debug)]
pub struct L3Tables {
    /// Routes and next hops.
    pub fib: FibReader,
}

/// The round's budget and back-off, in TSC cycles where they are times.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Packets per round.
    pub packets: u32,
    /// Cycles per round.
    pub cycles: u64,
    /// A partial TX buffer is flushed once its oldest packet is this many cycles old.
    pub drain_cycles: u64,
    /// Idle back-off, if any.
    pub idle: Option<IdleBackoff>,
    /// Time one RX poll in this many (the non-empty ones feed the histograms); 0 = never.
    pub sample_every: u32,
}

/// Latency and cost distributions of one worker, in TSC cycles.
#[derive(Debug, Clone)]
pub struct Histograms {
    /// Cycles from the RX call of a non-empty burst to its packets sitting in TX buffers.
    pub burst_cycles: Histogram<u64>,
    /// Per packet: cycles from its RX burst to its hand-off to the NIC (`tx_burst`).
    pub latency_cycles: Histogram<u64>,
}

impl Histograms {
    /// Empty histograms covering 1 cycle to about 5 minutes at 4 GHz, to 1% precision.
    pub fn new() -> Self {
        let h = || Histogram::new_with_bounds(1, 1 << 40, 2).expect("static histogram bounds are valid");
        Histograms { burst_cycles: h(), latency_cycles: h() }
    }

    /// Adds another worker's histograms into these.
    pub fn merge(&mut self, o: &Histograms) {
        // Same bounds everywhere (new()), so adding cannot fail.
        let _ = self.burst_cycles.add(&o.burst_cycles);
        let _ = self.latency_cycles.add(&o.latency_cycles);
    }
}

impl Default for Histograms {
    fn default() -> Self {
        Self::new()
    }
}

/// What a worker hands back when its loop ends.
#[derive(Debug)]
pub struct Finished {
    /// Its lcore.
    pub lcore: LcoreId,
    /// Its histograms.
    pub histograms: Histograms,
    /// Its RX queues, for the control thread to drain before the ports close.
    pub rx: Vec<RxQueue>,
    /// Its TX queues (dropping them lets the ports stop).
    pub tx: Vec<TxQueue>,
}

/// Requests the control thread sends to a running worker.
#[derive(Debug)]
pub enum Command {
    /// Reply with a copy of the histograms.
    Histograms(Sender<(LcoreId, Histograms)>),
    /// Send what the TX buffers hold, then zero the counters and histograms (`ctl clear
    /// counters`); reply when done.
    ClearCounters(Sender<LcoreId>),
}

/// Everything one worker lcore needs.
#[derive(Debug)]
pub struct WorkerPlan {
    /// Its lcore.
    pub lcore: LcoreId,
    /// The lanes, polled in order.
    pub lanes: Vec<Lane>,
    /// Per port ([`PortIdx`]): this worker's own TX queue on that port, for every port it
    /// may send to (the config guarantees one per worker there); `None` elsewhere.
    pub tx: Vec<Option<TxQueue>>,
    /// Packets per RX burst (at most [`mempool::MAX_BURST`]).
    pub burst: u16,
    /// The round's budget.
    pub budget: Budget,
    /// Where copies come from when a shared packet must be written.
    pub pool: Arc<Pool>,
    /// Published counters.
    pub counters: Arc<WorkerCounters>,
    /// Set by the control thread (or a signal) to end the loop.
    pub stop: Arc<AtomicBool>,
    /// Requests from the control thread.
    pub commands: Receiver<Command>,
    /// Where the final histograms and the queue handles go when the loop ends.
    pub done: Sender<Finished>,
    /// The rings to and from the slow path, when the forwarder answers requests itself.
    pub slow: Option<SlowPathLink>,
    /// Packet extensions to attach, when any feature uses them.
    pub exts: Option<WorkerExts>,
    /// Memory accounting of what the worker holds past a round, when configured.
    pub memory: Option<WorkerMemory>,
    /// Fault injection for tests: panic after this many rounds.
    pub panic_after: Option<u64>,
    /// This worker's RCU reader (thread id = its lcore id): reports a quiescent state
    /// once per round, offline while it sleeps.
    pub rcu: QsbrReader,
    /// Parameters that change while it runs, read once per round.
    pub live: Arc<LiveCell>,
}

/// Runs the poll loop until `stop` is set; then flushes and frees what it holds and sends
/// its histograms and queue handles on `done`.
pub fn run(plan: WorkerPlan) {
    let WorkerPlan {
        lcore,
        lanes,
        tx,
        burst,
        budget,
        pool,
        counters,
        stop,
        commands,
        done,
        slow,
        exts,
        memory,
        panic_after,
        rcu,
        live,
    } = plan;
    let ports = tx.len();
    let infos: Vec<modes::LaneInfo> = lanes
        .iter()
        .map(|l| modes::LaneInfo {
            from: (l.rx.port().0, l.rx.queue().0),
            port: l.port,
            dest: l.dest.clone(),
            check_chains: l.check_chains,
        })
        .collect();
    let io = queues::EalQueues {
        rx: lanes.into_iter().map(|l| l.rx).collect(),
        tx,
        exts: exts.map(|x| x.ids),
        traced: exts.is_some_and(|x| x.trace_every > 0),
    };
    let backlogs = memory.as_ref().map(|m| backlog::Backlogs::new(m, ports));
    let worker = tx::Worker::new(io, infos.len(), ports, budget.drain_cycles, backlogs);
    let mut idle = budget.idle.clone();
    let mut poller = poll::Poller::new(worker, infos.len(), burst, budget);
    let mut stage = modes::Pipeline {
        lanes: infos,
        pool,
        exts: exts.map(|x| extensions::Extensions::new(x, lcore)),
        slow: slow.map(|link| slow::SlowStep::new(link, memory.as_ref())),
        rcu,
    };
    let mut idle_streak = 0u32;
    let mut generation = u64::MAX;
    while !stop.load(Relaxed) {
        refresh(&live, &mut generation, &mut poller, &mut stage, &mut idle);
        let worked = poller.round(&mut stage);
        // Nothing read from the tables or the live cell is held past here.
        stage.rcu.quiescent();
        if worked {
            idle_streak = 0;
        } else {
            idle_streak = idle_streak.saturating_add(1);
            back_off(idle.as_ref(), idle_streak, &mut stage.rcu);
        }
        // Every few rounds, and at the first idle round after traffic: publish the counters,
        // and look at the control thread's requests and the fault injection.
        let w = &poller.w;
        if idle_streak == 1 || w.totals[Counter::Rounds] % stats::PUBLISH_EVERY == 0 {
            counters.publish(&w.totals);
            if panic_after.is_some_and(|n| w.totals[Counter::Rounds] >= n) {
                panic!("fault injection ({FAULT_ENV}): panicking after {} rounds", w.totals[Counter::Rounds]);
            }
            // Every request waiting (the channel holds a few).
            while let Ok(command) = commands.try_recv() {
                match command {
                    Command::Histograms(reply) => {
                        let _ = reply.send((lcore, poller.w.hist.clone()));
                    }
                    Command::ClearCounters(reply) => {
                        let w = &mut poller.w;
                        for p in PortIdx::all(w.totals.port_tx.len()) {
                            w.flush(p);
                        }
                        w.totals = crate::stats::WorkerTotals::new(w.totals.lane_rx.len(), w.totals.port_tx.len());
                        w.hist = Histograms::new();
                        counters.publish(&w.totals);
                        let _ = reply.send(lcore);
                    }
                }
            }
        }
    }
    // Unregistered: no writer waits for this worker any more.
    drop(stage);
    let mut w = poller.w;
    w.finish();
    counters.publish(&w.totals);
    let _ = done.send(Finished { lcore, histograms: w.hist, rx: w.io.rx, tx: w.io.tx.into_iter().flatten().collect() });
}

/// Backs off after `idle_streak` idle rounds in a row: the one place an idle worker waits,
/// offline for RCU while it sleeps (no writer waits for a sleeping worker).
fn back_off(backoff: Option<&IdleBackoff>, idle_streak: u32, rcu: &mut QsbrReader) {
    match idle_action(backoff, idle_streak) {
        Idle::Spin => {}
        Idle::Pause => eal::pause(),
        Idle::Sleep(d) => rcu.offline_while(|| std::thread::sleep(d)),
    }
}

/// Copies the live parameters into the loop's state if they changed since the last round.
fn refresh(
    live: &LiveCell,
    generation: &mut u64,
    poller: &mut poll::Poller<queues::EalQueues>,
    stage: &mut modes::Pipeline,
    idle: &mut Option<IdleBackoff>,
) {
    let l = live.read(&stage.rcu);
    if l.generation == *generation {
        return;
    }
    *generation = l.generation;
    poller.set_budget(l.budget.clone());
    idle.clone_from(&l.budget.idle);
    poller.w.set_backlog_limits(l.backlog.0, l.backlog.1);
    if let Some(x) = &mut stage.exts {
        x.set_mirror(l.mirror);
    }
    for lane in &mut stage.lanes {
        if let Dest::Route { local, .. } = &mut lane.dest {
            *local = l.locals.get(lane.port.index()).copied().flatten();
        }
    }
}
