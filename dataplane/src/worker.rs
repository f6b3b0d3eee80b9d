//! The per-lcore poll loop, NAPI-style: `net_rx_action` (net/core/dev.c) and mlx5's
//! `mlx5e_napi_poll` (drivers/net/ethernet/mellanox/mlx5/core/en_txrx.c).
//!
//! A worker owns a fixed list of lanes (RX queues), one TX buffer per port (each on the
//! worker's own TX queue of that port), one reusable RX [`Burst`], its counters and its
//! histograms. Each round:
//!
//! 1. TX first: every TX buffer whose oldest packet waited `tx_drain_usecs` is flushed
//!    (mlx5e_napi_poll polls the TX completion queue before RX).
//! 2. RX under a budget: the lanes are polled in turn, a burst each, until every lane
//!    returned less than a full burst (drained), or the round's packet budget
//!    (`poll.budget`, like net.core.netdev_budget) or time budget (`poll.budget_usecs`,
//!    like netdev_budget_usecs) is spent. Spent budget while the last queue polled still
//!    returned a full burst counts one `time_squeeze`, as in softnet_stat.
//! 3. Each received burst is forwarded by the mode into the TX buffers; a full buffer is
//!    sent at once. What `rte_eth_tx_burst` refuses is freed and counted `tx_full`.
//! 4. Counters are published; a round that found nothing is idle and may back off.
//!
//! Nothing on this path allocates, locks or logs.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use hdrhistogram::Histogram;
use std::collections::VecDeque;

use mempool::accounting::{Accounting, Consumer, Group, LcoreSlot};
use mempool::{ext, Burst, Mbuf, Pool, MAX_BURST};

use crate::config::AccountingConf;
use crate::config::IdleBackoff;
use crate::eal::{self, LcoreId};
use crate::exts::{FlowMeta, PacketExts, Trace};
use crate::fib::FibReader;
use crate::forward::{self, Action, DropReason};
use crate::live::LiveCell;
use crate::local::Local;
use crate::net::MacAddr;
use crate::net::{parse, Proto};
use crate::port::{PortIdx, RxQueue, TxQueue};
use crate::rcu::QsbrReader;
use crate::slowpath::SlowPathLink;
use crate::stats::{Counter, WorkerCounters, WorkerTotals};

/// The environment variable that makes a worker panic, for testing how the forwarder
/// handles it: `LCORE:ROUNDS` (the worker on lcore LCORE panics after ROUNDS rounds).
pub const FAULT_ENV: &str = "DATAPLANE_FAULT_PANIC";

/// One polled RX queue and, in pair modes, where its packets go.
#[derive(Debug)]
pub struct Lane {
    /// Where packets come from.
    pub rx: RxQueue,
    /// The RX port.
    pub port: PortIdx,
    /// Pair modes: the out port's index. `None` in l3fwd, which routes per packet.
    pub out: Option<PortIdx>,
    /// Check each received packet's mbuf chain (the RX port's `check_chains`).
    pub check_chains: bool,
}

/// The routing tables every worker reads in l3fwd mode (lock-free, through its RCU reader).
#[derive(Debug)]
pub struct L3Tables {
    /// Routes and next hops.
    pub fib: FibReader,
}

/// What a worker does to each packet.
#[derive(Debug, Clone)]
pub enum Forwarding {
    /// Whole bursts to the pair port, untouched.
    Io,
    /// Swap MACs, then to the pair port.
    Macswap,
    /// Per out port: (its own MAC, its peer's MAC).
    L2fwd(Vec<(MacAddr, MacAddr)>),
    /// Route.
    L3fwd(Arc<L3Tables>),
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
    /// Packets per RX burst (at most [`MAX_BURST`]).
    pub burst: u16,
    /// The round's budget.
    pub budget: Budget,
    /// The mode.
    pub forwarding: Forwarding,
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

/// What a worker needs to account for the packets it holds: TX backlogs per port and
/// requests waiting for the slow path.
#[derive(Debug, Clone)]
pub struct WorkerMemory {
    /// The accounts.
    pub accounting: Arc<Accounting>,
    /// This worker's slot in the per-lcore batching.
    pub slot: LcoreSlot,
    /// Per port (config index): the group its backlogs charge.
    pub port_groups: Vec<Arc<Group>>,
    /// The slow path's group.
    pub slow_group: Arc<Group>,
    /// Limits and bypass choices.
    pub conf: AccountingConf,
    /// Bytes charged per packet: the mbuf, its private area and its data room.
    pub truesize: u32,
}

/// A packet waiting in a TX backlog, with what it was charged.
struct Held {
    m: Mbuf,
    proto: Proto,
}

/// A worker's consumers and backlogs.
struct Memory {
    slot: LcoreSlot,
    /// Per port, per protocol class.
    backlog: Vec<Vec<Consumer>>,
    /// Per protocol class.
    punt: Vec<Consumer>,
    /// Per port.
    held: Vec<VecDeque<Held>>,
    limit: usize,
    limit_under_pressure: usize,
    truesize: u32,
}

impl Memory {
    fn new(w: WorkerMemory, ports: usize) -> Memory {
        let consumers = |group: &Arc<Group>, bypass: bool| -> Vec<Consumer> {
            Proto::ALL.iter().map(|&p| Consumer::new(&w.accounting, p, group.clone(), bypass)).collect()
        };
        Memory {
            slot: w.slot,
            backlog: w.port_groups.iter().map(|g| consumers(g, w.conf.backlog_bypass)).collect(),
            punt: consumers(&w.slow_group, w.conf.punt_bypass),
            held: (0..ports).map(|_| VecDeque::with_capacity(w.conf.backlog as usize)).collect(),
            limit: w.conf.backlog as usize,
            limit_under_pressure: w.conf.backlog_under_pressure as usize,
            truesize: w.truesize,
        }
    }
}

/// The accounting class of a frame.
fn acct_proto(frame: &[u8]) -> Proto {
    parse(frame).map_or(Proto::Other, |p| p.proto)
}

/// What a worker does with packet extensions.
#[derive(Debug, Clone, Copy)]
pub struct WorkerExts {
    /// The framework and the ids.
    pub ids: PacketExts,
    /// One packet in this many gets a trace; 0 = none.
    pub trace_every: u32,
    /// Every packet gets flow metadata.
    pub flow: bool,
    /// Mirror: the port copies leave by, and which packets.
    pub mirror: Option<(PortIdx, Option<Proto>)>,
}

/// Which packets of an io burst got extensions.
enum Tagged {
    None,
    /// Bit `i` set: packet `i`.
    Some(u32),
    All,
}

/// A TX buffer: packets waiting for one port, and when they started waiting.
struct TxBuf {
    /// This worker's queue on the port; `None` on a port it never sends to.
    q: Option<TxQueue>,
    burst: Burst,
    /// When the oldest packet waiting was buffered (TSC); `None` when empty.
    since: Option<u64>,
    /// Runs of buffered packets from timed RX bursts: (position of the run's first
    /// packet in `burst`, its RX TSC, count).
    timed: [(u8, u64, u8); MAX_BURST],
    ntimed: usize,
    /// Whether a buffered packet carries extensions (then the flush walks the burst).
    has_ext: bool,
}

impl TxBuf {
    fn new(q: Option<TxQueue>) -> Self {
        TxBuf { q, burst: Burst::new(), since: None, timed: [(0, 0, 0); MAX_BURST], ntimed: 0, has_ext: false }
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

/// Runs the poll loop until `stop` is set; then flushes and frees what it holds and sends
/// its histograms on `done`.
pub fn run(plan: WorkerPlan) {
    let WorkerPlan {
        lcore,
        lanes,
        tx,
        burst,
        budget,
        forwarding,
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
    let mut w = Worker {
        lanes,
        txbufs: tx.into_iter().map(TxBuf::new).collect(),
        rx: Burst::new(),
        burst: burst.min(MAX_BURST as u16),
        budget,
        forwarding,
        pool,
        totals: WorkerTotals::new(0, 0),
        hist: Histograms::new(),
        next_lane: 0,
        sample_in: 0,
        round_start: 0,
        slow,
        punted: Burst::new(),
        exts,
        trace_in: 0,
        lcore,
        memory: memory.map(|m| Memory::new(m, ports)),
        rcu,
        live_gen: u64::MAX,
        locals: Arc::new(Vec::new()),
    };
    if w.budget.sample_every == 0 {
        w.sample_in = u32::MAX;
    }
    w.totals = WorkerTotals::new(w.lanes.len(), w.txbufs.len());
    let mut idle_streak = 0u32;
    while !stop.load(Relaxed) {
        w.refresh(&live);
        let worked = w.round();
        // Nothing read from the tables or the live cell is held past here.
        w.rcu.quiescent();
        if worked {
            idle_streak = 0;
        } else {
            idle_streak = idle_streak.saturating_add(1);
            w.back_off(idle_streak);
        }
        counters.publish(&w.totals);
        if panic_after.is_some_and(|n| w.totals[Counter::Rounds] >= n) {
            panic!("fault injection ({FAULT_ENV}): panicking after {} rounds", w.totals[Counter::Rounds]);
        }
        match commands.try_recv() {
            Ok(Command::Histograms(reply)) => {
                let _ = reply.send((lcore, w.hist.clone()));
            }
            Ok(Command::ClearCounters(reply)) => {
                for p in PortIdx::all(w.txbufs.len()) {
                    w.flush(p);
                }
                w.totals = WorkerTotals::new(w.lanes.len(), w.txbufs.len());
                w.hist = Histograms::new();
                counters.publish(&w.totals);
                let _ = reply.send(lcore);
            }
            Err(_) => {}
        }
    }
    for p in PortIdx::all(w.txbufs.len()) {
        w.flush(p);
    }
    w.free_backlogs();
    counters.publish(&w.totals);
    let Worker { lanes, txbufs, hist, rcu, .. } = w;
    // Unregistered: no writer waits for this worker any more.
    drop(rcu);
    let _ = done.send(Finished {
        lcore,
        histograms: hist,
        rx: lanes.into_iter().map(|l| l.rx).collect(),
        tx: txbufs.into_iter().filter_map(|b| b.q).collect(),
    });
}

struct Worker {
    lanes: Vec<Lane>,
    txbufs: Vec<TxBuf>,
    rx: Burst,
    burst: u16,
    budget: Budget,
    forwarding: Forwarding,
    pool: Arc<Pool>,
    totals: WorkerTotals,
    hist: Histograms,
    /// The lane the next round polls first.
    next_lane: usize,
    /// Polls until the next timed one (`u32::MAX`: timing off).
    sample_in: u32,
    /// TSC at the start of the current round.
    round_start: u64,
    /// Rings to and from the slow path, if it runs.
    slow: Option<SlowPathLink>,
    /// Requests from the current RX burst, waiting to be handed to the slow path.
    punted: Burst,
    /// Extensions to attach, if any.
    exts: Option<WorkerExts>,
    /// Packets until the next traced one.
    trace_in: u32,
    /// This worker's lcore (for traces).
    lcore: LcoreId,
    /// Accounting of held packets, if configured.
    memory: Option<Memory>,
    /// The RCU reader the table lookups borrow.
    rcu: QsbrReader,
    /// The generation of the live parameters last copied.
    live_gen: u64,
    /// Per port: the forwarder's own addresses there (from the live parameters).
    locals: Arc<Vec<Option<Local>>>,
}

impl Worker {
    /// Copies the live parameters if they changed since the last round.
    fn refresh(&mut self, live: &LiveCell) {
        let l = live.read(&self.rcu);
        if l.generation == self.live_gen {
            return;
        }
        self.live_gen = l.generation;
        self.budget = l.budget.clone();
        self.sample_in = match self.budget.sample_every {
            0 => u32::MAX,
            n => self.sample_in.min(n - 1),
        };
        if let Some(x) = &mut self.exts {
            x.mirror = l.mirror;
        }
        if let Some(m) = &mut self.memory {
            (m.limit, m.limit_under_pressure) = (l.backlog.0 as usize, l.backlog.1 as usize);
        }
        self.locals = l.locals.clone();
    }

    /// One round; returns whether it received anything.
    fn round(&mut self) -> bool {
        let start = eal::rdtsc();
        self.round_start = start;
        self.totals[Counter::Rounds] += 1;
        for p in PortIdx::all(self.txbufs.len()) {
            if self.txbufs[p.index()].since.is_some_and(|t| start.wrapping_sub(t) >= self.budget.drain_cycles) {
                self.flush(p);
            }
        }
        self.take_replies();
        if self.memory.is_some() {
            for p in PortIdx::all(self.txbufs.len()) {
                if self.backlogged(p) {
                    self.flush(p);
                }
            }
        }

        // As net_rx_action: every poll asks for a whole burst, and the budget may be
        // overdrawn by less than one burst.
        let burst = self.burst;
        let lanes = self.lanes.len();
        let mut left = i64::from(self.budget.packets);
        let mut work = 0u64;
        'round: loop {
            let mut any_full = false;
            for i in 0..lanes {
                // Like NAPI's poll list, start after the lane where the last round ran out
                // of budget, so that lane is not always first.
                let lane = (self.next_lane + i) % lanes;
                // One poll in `sample_every` is timed (counting empty polls too, so an
                // idle worker does not read the TSC on every poll).
                let t0 = match self.sample_in {
                    0 => {
                        self.sample_in = self.budget.sample_every - 1;
                        eal::rdtsc()
                    }
                    u32::MAX => 0,
                    _ => {
                        self.sample_in -= 1;
                        0
                    }
                };
                let n = self.lanes[lane].rx.rx_burst(&mut self.rx, burst);
                if n == 0 {
                    continue;
                }
                self.totals.lane_rx[lane] += n as u64;
                self.totals.lane_bursts[lane] += 1;
                if self.lanes[lane].check_chains {
                    self.drop_bad_chains();
                }
                self.forward(lane, t0);
                if t0 != 0 {
                    self.hist.burst_cycles.saturating_record(eal::rdtsc().wrapping_sub(t0).max(1));
                }
                work += n as u64;
                left -= n as i64;
                let full = n == usize::from(burst);
                any_full |= full;
                if left <= 0 {
                    self.next_lane = (lane + 1) % lanes;
                    self.totals[Counter::TimeSqueeze] += u64::from(full);
                    break 'round;
                }
            }
            if !any_full {
                break;
            }
            // netdev_budget_usecs: checked once per pass over the lanes.
            if eal::rdtsc().wrapping_sub(start) >= self.budget.cycles {
                self.totals[Counter::TimeSqueeze] += 1;
                break;
            }
        }
        if work == 0 {
            self.totals[Counter::IdleRounds] += 1;
            return false;
        }
        self.totals[Counter::BusyCycles] += eal::rdtsc().wrapping_sub(start);
        true
    }

    /// Moves the RX burst of `lane` (received at `rx_tsc`) into TX buffers or drops.
    #[inline]
    fn forward(&mut self, lane: usize, rx_tsc: u64) {
        let out = self.lanes[lane].out;
        match &self.forwarding {
            Forwarding::Io => {
                // A whole burst has one destination: hand it to the NIC as it is, as
                // testpmd's io engine does, with no copy into a TX buffer.
                let out = out.expect("pair modes have an out port");
                if self.exts.is_some() {
                    match self.attach_rx(lane, rx_tsc) {
                        Tagged::None => {}
                        Tagged::Some(mask) => self.hand_off_rx(mask),
                        Tagged::All => {
                            let mut rx = std::mem::take(&mut self.rx);
                            self.hand_off(&mut rx);
                            self.rx = rx;
                        }
                    }
                }
                self.send_rx(out, rx_tsc);
            }
            Forwarding::Macswap | Forwarding::L2fwd(_) if self.exts.is_none() => {
                // Pair modes send the whole burst to one port too: rewrite it in place,
                // drop what cannot be rewritten, and hand the rest over at once.
                let out = out.expect("pair modes have an out port");
                let Worker { rx, forwarding, pool, totals, lanes, rcu, locals, .. } = self;
                let in_port = lanes[lane].port;
                rx.retain(
                    |m| {
                        let action = match m.unshare(pool) {
                            Ok(data) => decide(forwarding, rcu, locals, data, in_port, Some(out)),
                            Err(_) => Action::Drop(DropReason::NoBufForCopy),
                        };
                        match action {
                            Action::Drop(r) => {
                                totals[r] += 1;
                                false
                            }
                            _ => true,
                        }
                    },
                    drop,
                );
                self.send_rx(out, rx_tsc);
            }
            Forwarding::Macswap | Forwarding::L2fwd(_) | Forwarding::L3fwd(_) => {
                let mut rx = std::mem::take(&mut self.rx);
                for mut m in rx.drain() {
                    let in_port = self.lanes[lane].port;
                    if self.exts.is_some() {
                        self.attach(lane, &mut m, rx_tsc);
                    }
                    let action = match self.writable(&mut m) {
                        Err(r) => Action::Drop(r),
                        Ok(data) => decide(&self.forwarding, &self.rcu, &self.locals, data, in_port, out),
                    };
                    match action {
                        Action::Tx(p) => {
                            self.mirror(&m, rx_tsc);
                            self.enqueue(p, m, rx_tsc)
                        }
                        Action::Drop(r) => {
                            self.totals[r] += 1;
                            drop(m);
                        }
                        Action::Punt => {
                            // The slow path answers out of the input port: make sure the
                            // mbuf says which one (not every PMD sets it).
                            m.set_port(self.lanes[lane].rx.port().0);
                            self.punt(m)
                        }
                    }
                }
                self.rx = rx;
                self.flush_punted();
            }
        }
    }

    /// Drops, counted as `bad_mbuf_chain`, every packet of the RX burst whose mbuf chain's
    /// lengths disagree, before any mode or TX queue looks at it.
    #[inline]
    fn drop_bad_chains(&mut self) {
        if self.rx.as_slice().iter().all(Mbuf::chain_is_consistent) {
            return;
        }
        let totals = &mut self.totals;
        self.rx.retain(
            |m| m.chain_is_consistent(),
            |m| {
                totals[DropReason::BadMbufChain] += 1;
                drop(m)
            },
        );
    }

    /// Attaches extensions to the whole io burst in `self.rx`, and says which packets may
    /// carry one: without flow metadata only the sampled packets are touched, and only
    /// they need the hand-off.
    fn attach_rx(&mut self, lane: usize, rx_tsc: u64) -> Tagged {
        let Some(x) = self.exts else { return Tagged::None };
        if x.flow || x.mirror.is_some() {
            let mut rx = std::mem::take(&mut self.rx);
            for m in rx.as_mut_slice() {
                self.attach(lane, m, rx_tsc);
            }
            self.rx = rx;
            return Tagged::All;
        }
        if x.trace_every == 0 {
            return Tagged::None;
        }
        let n = self.rx.len();
        let mut mask = 0u32;
        let mut i = self.trace_in as usize;
        let t = self.trace(lane, rx_tsc);
        while i < n {
            if ext::set(&mut self.rx.as_mut_slice()[i], x.ids.trace, t).is_err() {
                self.totals[Counter::ExtFailures] += 1;
            }
            mask |= 1 << i;
            i += x.trace_every as usize;
        }
        self.trace_in = (i - n) as u32;
        if mask == 0 {
            Tagged::None
        } else {
            Tagged::Some(mask)
        }
    }

    /// The trace of a packet received on `lane` by the burst at `rx_tsc`.
    fn trace(&self, lane: usize, rx_tsc: u64) -> Trace {
        let rx = &self.lanes[lane].rx;
        Trace {
            rx_tsc: if rx_tsc != 0 { rx_tsc } else { self.round_start },
            lcore: self.lcore.0 as u16,
            port: rx.port().0,
            queue: rx.queue().0,
        }
    }

    fn add_trace(&mut self, lane: usize, m: &mut Mbuf, rx_tsc: u64) {
        let Some(x) = self.exts else { return };
        if ext::set(m, x.ids.trace, self.trace(lane, rx_tsc)).is_err() {
            self.totals[Counter::ExtFailures] += 1;
        }
    }

    /// [`Worker::hand_off`] for the io burst in `self.rx`, where only the packets in `mask`
    /// carry a trace.
    fn hand_off_rx(&mut self, mask: u32) {
        let Some(x) = self.exts else { return };
        let now = eal::rdtsc();
        let mut bits = mask;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let m = &mut self.rx.as_mut_slice()[i];
            if let Some(t) = ext::get(m, x.ids.trace) {
                self.hist.latency_cycles.saturating_record(now.wrapping_sub(t.rx_tsc).max(1));
            }
            ext::release(m);
        }
    }

    /// Attaches the configured extensions to a packet just received: a trace on one
    /// packet in `trace_every`, flow metadata on every packet if asked for (or for the
    /// mirror). A failure (no free area) is counted and the packet goes on without.
    fn attach(&mut self, lane: usize, m: &mut Mbuf, rx_tsc: u64) {
        let Some(x) = self.exts else { return };
        if x.trace_every > 0 {
            if self.trace_in == 0 {
                self.trace_in = x.trace_every - 1;
                self.add_trace(lane, m, rx_tsc);
            } else {
                self.trace_in -= 1;
            }
        }
        if x.flow || x.mirror.is_some() {
            let meta = match parse(m.data()) {
                Ok(p) => FlowMeta::from_parsed(m.data(), &p),
                Err(_) => FlowMeta::default(),
            };
            if ext::set(m, x.ids.flow, meta).is_err() {
                self.totals[Counter::ExtFailures] += 1;
            }
        }
    }

    /// Sends a clone of a forwarded packet out of the mirror port, if it matches. The
    /// clone shares the packet's data and extension area; marking it `mirrored` copies the
    /// area first (copy-on-write), so the original's metadata is untouched.
    fn mirror(&mut self, m: &Mbuf, rx_tsc: u64) {
        let Some(WorkerExts { ids, mirror: Some((port, proto)), .. }) = self.exts else { return };
        let Some(meta) = ext::get(m, ids.flow) else { return };
        let wanted = proto.is_none_or(|p| meta.class == p);
        if !wanted {
            return;
        }
        match m.clone_in(&self.pool) {
            Ok(mut copy) => {
                match ext::get_mut(&mut copy, ids.flow) {
                    Ok(Some(f)) => f.mirrored = true,
                    _ => self.totals[Counter::ExtFailures] += 1,
                }
                self.totals[Counter::Mirrored] += 1;
                self.enqueue(port, copy, rx_tsc);
            }
            Err(_) => self.totals[DropReason::NoBufForCopy] += 1,
        }
    }

    /// Right before packets go to the NIC: traced packets feed the latency histogram, and
    /// every extension reference is released (the PMD frees the mbufs with plain C code).
    fn hand_off(&mut self, burst: &mut Burst) {
        let Some(x) = self.exts else { return };
        if x.trace_every > 0 {
            let mut now = 0;
            for m in burst.as_slice() {
                if let Some(t) = ext::get(m, x.ids.trace) {
                    if now == 0 {
                        now = eal::rdtsc();
                    }
                    self.hist.latency_cycles.saturating_record(now.wrapping_sub(t.rx_tsc).max(1));
                }
            }
        }
        burst.release_extensions();
    }

    /// Hands the burst in `self.rx` to `out`'s TX queue; what the NIC refuses goes to the
    /// backlog or is dropped (see [`Worker::refused`]).
    #[inline]
    fn send_rx(&mut self, out: PortIdx, rx_tsc: u64) {
        if self.backlogged(out) {
            // Packets already wait for this port: queue behind them, in order.
            let mut rx = std::mem::take(&mut self.rx);
            for m in rx.drain() {
                self.hold(out, m);
            }
            self.rx = rx;
            return;
        }
        let Some(q) = &mut self.txbufs[out.index()].q else {
            self.totals[DropReason::NoTxQueue] += self.rx.len() as u64;
            self.rx.clear();
            return;
        };
        let sent = q.tx_burst(&mut self.rx);
        if rx_tsc != 0 && sent > 0 {
            self.hist.latency_cycles.saturating_record_n(eal::rdtsc().wrapping_sub(rx_tsc).max(1), sent as u64);
        }
        self.totals.port_tx[out.index()] += sent as u64;
        if !self.rx.is_empty() {
            let mut rx = std::mem::take(&mut self.rx);
            self.refused(out, &mut rx);
            self.rx = rx;
        }
    }

    /// Collects a request to the forwarder itself for the slow path, charged to the
    /// slow path's consumer (which bypasses the protocol accounts by default).
    fn punt(&mut self, m: Mbuf) {
        if self.slow.is_none() {
            self.totals[DropReason::LocalUnhandled] += 1;
            return;
        }
        if let Some(mem) = &mut self.memory {
            let proto = acct_proto(m.data());
            if mem.punt[proto.index()].charge(mem.slot, mem.truesize).is_err() {
                self.totals[DropReason::ProtoMem] += 1;
                return;
            }
        }
        // The burst being forwarded is at most MAX_BURST packets, so this never fails.
        let _ = self.punted.push(m);
    }

    /// Hands the requests collected from one RX burst to the slow path in one enqueue.
    fn flush_punted(&mut self) {
        let Some(slow) = &self.slow else { return };
        if self.punted.is_empty() {
            return;
        }
        let n = slow.punt(&mut self.punted);
        self.totals[Counter::Punted] += n as u64;
        self.totals[DropReason::PuntFull] += self.punted.len() as u64;
        let mut left = std::mem::take(&mut self.punted);
        for m in left.drain() {
            self.unpunt(&m);
        }
        self.punted = left;
    }

    /// Moves the slow path's replies into the TX buffers of the ports they leave by, and
    /// frees what it handed back unanswered (counted when punted, so not a drop); both
    /// return their charge.
    fn take_replies(&mut self) {
        let Some(slow) = &self.slow else { return };
        let mut replies: Burst = Burst::new();
        let mut returned: Burst = Burst::new();
        slow.take_replies(&mut replies);
        slow.take_returned(&mut returned);
        for m in returned.drain() {
            self.unpunt(&m);
        }
        for m in replies.drain() {
            self.unpunt(&m);
            match self.slow.as_ref().and_then(|s| s.out_port(&m)) {
                Some(p) => {
                    self.totals[Counter::Injected] += 1;
                    self.enqueue(p, m, 0);
                }
                // The slow path answers only requests from a port in the table.
                None => self.totals[DropReason::LocalUnhandled] += 1,
            }
        }
    }

    /// Returns the slow path's charge for a request that came back (as its reply, or
    /// unanswered) or never left.
    fn unpunt(&mut self, m: &Mbuf) {
        if let Some(mem) = &mut self.memory {
            let proto = acct_proto(m.data());
            mem.punt[proto.index()].uncharge(mem.slot, mem.truesize);
        }
    }

    #[inline]
    fn writable<'m>(&self, m: &'m mut Mbuf) -> Result<&'m mut [u8], DropReason> {
        m.unshare(&self.pool).map_err(|_| DropReason::NoBufForCopy)
    }

    #[inline]
    fn enqueue(&mut self, port: PortIdx, m: Mbuf, rx_tsc: u64) {
        let buf = &mut self.txbufs[port.index()];
        buf.has_ext |= self.exts.is_some() && ext::active(&m) != 0;
        // A full buffer was flushed when it filled, so there is room.
        if buf.burst.push(m).is_ok() {
            buf.note(rx_tsc, 1, self.round_start);
        }
        if buf.burst.spare() == 0 {
            self.flush(port);
        }
    }

    /// Sends what buffer `port` holds; frees and counts what the NIC refused. Packets of
    /// timed bursts that were sent feed the RX-to-TX latency histogram.
    fn flush(&mut self, port: PortIdx) {
        if self.backlogged(port) {
            self.drain_backlog(port);
        }
        if self.txbufs[port.index()].burst.is_empty() {
            self.txbufs[port.index()].since = None;
            return;
        }
        if self.txbufs[port.index()].has_ext {
            self.txbufs[port.index()].has_ext = false;
            let mut b = std::mem::take(&mut self.txbufs[port.index()].burst);
            self.hand_off(&mut b);
            self.txbufs[port.index()].burst = b;
        }
        if self.backlogged(port) {
            // The NIC still refuses the backlog: new packets wait behind it, in order.
            let mut b = std::mem::take(&mut self.txbufs[port.index()].burst);
            for m in b.drain() {
                self.hold(port, m);
            }
            let buf = &mut self.txbufs[port.index()];
            buf.burst = b;
            buf.since = None;
            buf.ntimed = 0;
            return;
        }
        let buf = &mut self.txbufs[port.index()];
        buf.since = None;
        let Some(q) = &mut buf.q else {
            self.totals[DropReason::NoTxQueue] += buf.burst.len() as u64;
            buf.burst.clear();
            buf.ntimed = 0;
            return;
        };
        let sent = q.tx_burst(&mut buf.burst);
        if buf.ntimed > 0 {
            let now = eal::rdtsc();
            for &(first, tsc, count) in &buf.timed[..buf.ntimed] {
                let k = sent.saturating_sub(usize::from(first)).min(usize::from(count));
                if k > 0 {
                    self.hist.latency_cycles.saturating_record_n(now.wrapping_sub(tsc).max(1), k as u64);
                }
            }
            buf.ntimed = 0;
        }
        self.totals.port_tx[port.index()] += sent as u64;
        let mut unsent = std::mem::take(&mut self.txbufs[port.index()].burst);
        self.refused(port, &mut unsent);
        self.txbufs[port.index()].burst = unsent;
    }

    /// What the NIC refused: into the backlog when accounting is on, else freed and
    /// counted `tx_full`.
    fn refused(&mut self, port: PortIdx, unsent: &mut Burst) {
        if unsent.is_empty() {
            return;
        }
        if self.memory.is_some() {
            for m in unsent.drain() {
                self.hold(port, m);
            }
        } else {
            self.totals[DropReason::TxFull] += unsent.len() as u64;
            unsent.clear();
        }
    }

    fn backlogged(&self, port: PortIdx) -> bool {
        self.memory.as_ref().is_some_and(|m| !m.held[port.index()].is_empty())
    }

    /// Queues a packet the NIC refused, charging its truesize to its protocol (unless the
    /// backlog bypasses) and its port's group. A full backlog (shorter under memory
    /// pressure) drops it as `tx_full`; a refused charge as `proto_mem`.
    fn hold(&mut self, port: PortIdx, m: Mbuf) {
        let Some(mem) = &mut self.memory else { return };
        let proto = acct_proto(m.data());
        let consumer = &mut mem.backlog[port.index()][proto.index()];
        let limit = if consumer.under_pressure() { mem.limit_under_pressure } else { mem.limit };
        if mem.held[port.index()].len() >= limit {
            self.totals[DropReason::TxFull] += 1;
            return;
        }
        match consumer.charge(mem.slot, mem.truesize) {
            Ok(()) => {
                mem.held[port.index()].push_back(Held { m, proto });
                self.totals[Counter::Backlogged] += 1;
            }
            Err(_) => self.totals[DropReason::ProtoMem] += 1,
        }
    }

    /// Sends as much of port `port`'s backlog as the NIC takes, oldest first, uncharging
    /// what leaves.
    fn drain_backlog(&mut self, port: PortIdx) {
        let Some(q) = &mut self.txbufs[port.index()].q else { return };
        let Some(mem) = &mut self.memory else { return };
        loop {
            let mut b: Burst = Burst::new();
            let mut protos = [Proto::Other; MAX_BURST];
            let mut n = 0;
            while n < MAX_BURST {
                let Some(h) = mem.held[port.index()].pop_front() else { break };
                protos[n] = h.proto;
                let _ = b.push(h.m);
                n += 1;
            }
            if n == 0 {
                return;
            }
            let sent = q.tx_burst(&mut b);
            for p in &protos[..sent] {
                mem.backlog[port.index()][p.index()].uncharge(mem.slot, mem.truesize);
            }
            self.totals.port_tx[port.index()] += sent as u64;
            self.totals[Counter::BacklogSent] += sent as u64;
            let mut i = n;
            while let Some(m) = b.pop() {
                i -= 1;
                mem.held[port.index()].push_front(Held { m, proto: protos[i] });
            }
            if sent < n {
                return;
            }
        }
    }

    /// At exit: frees every backlogged packet and returns its charge.
    fn free_backlogs(&mut self) {
        let Some(mem) = &mut self.memory else { return };
        for (port, held) in mem.held.iter_mut().enumerate() {
            for h in held.drain(..) {
                mem.backlog[port][h.proto.index()].uncharge(mem.slot, mem.truesize);
                self.totals[DropReason::TxFull] += 1;
            }
        }
    }

    fn back_off(&mut self, idle_streak: u32) {
        let Some(b) = &self.budget.idle else { return };
        if idle_streak >= b.sleep_after {
            let nap = Duration::from_micros(u64::from(b.sleep_usecs));
            // Offline while asleep: no writer waits for a sleeping worker.
            self.rcu.offline_while(|| std::thread::sleep(nap));
        } else if idle_streak >= b.pause_after {
            eal::pause();
        }
    }
}

/// The per-packet decision of the modes that look at packets.
#[inline(always)]
fn decide(
    forwarding: &Forwarding,
    rcu: &QsbrReader,
    locals: &[Option<Local>],
    data: &mut [u8],
    in_port: PortIdx,
    out: Option<PortIdx>,
) -> Action {
    match forwarding {
        Forwarding::Io => Action::Tx(out.expect("pair modes have an out port")),
        Forwarding::Macswap => match forward::macswap(data) {
            Ok(()) => Action::Tx(out.expect("pair modes have an out port")),
            Err(r) => Action::Drop(r),
        },
        Forwarding::L2fwd(macs) => {
            let out = out.expect("pair modes have an out port");
            let (src, dst) = macs[out.index()];
            match forward::l2fwd(data, src, dst) {
                Ok(()) => Action::Tx(out),
                Err(r) => Action::Drop(r),
            }
        }
        Forwarding::L3fwd(t) => {
            let view = t.fib.view(rcu);
            forward::l3fwd(data, &view, &view, locals.get(in_port.index()).and_then(Option::as_ref))
        }
    }
}
