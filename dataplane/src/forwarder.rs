//! The forwarder's lifecycle, in l2fwd's order: devices, pools, ports, workers; and back:
//! stop workers, close ports, check every pool is full, free pools.
//!
//! [`Forwarder::start`] takes a validated [`Config`] and a running [`Eal`]; the control thread
//! then reads [`Forwarder::snapshot`] while the workers run, and [`Forwarder::stop`] tears
//! everything down and returns the final [`Report`].

use std::collections::BTreeMap;

use ipnet::IpNet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use mempool::{mbufs_needed, ExtError, Pool, PoolError, PoolParams, PoolSizing, PoolStats, SocketId};

use crate::config::{Config, Device, Mode, PortConfig, RxBuffer};
use crate::eal::{launch, Eal, Launched, LcoreId, WorkerError};
use crate::exts::{self, PacketExts};
use crate::fib::{Fib, FibError, FibPort, FibSummary, Origin, Route, RouteChange};
use crate::fpm::ports::PortAddrs;
use crate::fpm::sink::FibSink;
use crate::fpm::{Fpm, FpmStatus};
use crate::live::{Live, LiveCell};
use crate::local::Local;
use crate::net::MacAddr;
use crate::nexthop::{NextHopKey, Via};
use crate::port::{
    self, LinkStatus, Port, PortError, PortId, PortIdx, PortSetup, PortStats, PortTable, QueueId, RxQueue, TxQueue,
};
use crate::rcu::{Qsbr, RcuError};
use crate::slowpath::{NeighMemory, SlowPath, SlowPathConfig, SlowPathError};

/// Without `[accounting]`: the most bytes of packets the slow path holds for resolution
/// at once (the default of `[accounting] neigh_queue_budget`), so that a flood to
/// unresolved addresses cannot exhaust the mbuf pool.
pub const DEFAULT_NEIGH_QUEUE_BUDGET: u64 = 2 << 20;
use crate::stats::{LaneId, WorkerCounters, WorkerSnapshot, WorkerTotals};
use crate::worker::{
    self, Budget, Command, Dest, Finished, Histograms, L3Tables, Lane, Rewrite, WorkerExts, WorkerMemory, WorkerPlan,
};
use mempool::accounting::{Accounting, AccountingConfig, AccountingError, AccountingSnapshot, Group, LcoreSlot};

/// Why the forwarder could not start. Each names the config's port or lcore.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The vdev could not be created (usually: no driver of that name).
    #[error("port {port:?}: cannot create device {device:?}: {error}")]
    Vdev {
        /// Config name of the port.
        port: String,
        /// The device string.
        device: String,
        /// What DPDK said.
        error: port::VdevError,
    },
    /// EAL probed no device of that name (a PCI address not present or not bound).
    #[error("port {port:?}: device {device:?} not found after EAL probing (is it present and bound to a DPDK driver? see dpdk-devbind.py --status)")]
    DeviceNotFound {
        /// Config name of the port.
        port: String,
        /// The device string.
        device: String,
    },
    /// `rx_buffer = "multi_packet"` on a device whose driver is not mlx5.
    #[error("port {port:?}: rx_buffer = \"multi_packet\" needs the mlx5 driver (Multi-Packet RQ), but the device's driver is {driver}")]
    MultiPacketNeedsMlx5 {
        /// Config name of the port.
        port: String,
        /// The driver EAL bound.
        driver: String,
    },
    /// A port step failed.
    #[error("port {port:?}: {error}")]
    Port {
        /// Config name of the port.
        port: String,
        /// Which DPDK call failed.
        error: PortError,
    },
    /// A pool could not be created.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// A worker lcore that EAL does not run.
    #[error("worker {lcore} is not an EAL lcore (check -l / eal.main_lcore)")]
    LcoreDisabled {
        /// The lcore.
        lcore: LcoreId,
    },
    /// A queue handle that was not there to take: a queue polled by two workers, or a
    /// worker's TX queue missing (the config validation rules both out).
    #[error("port {port:?}: {what} for the worker on {lcore} does not exist or is taken")]
    QueueTaken {
        /// Config name of the port.
        port: String,
        /// Which queue.
        what: String,
        /// The worker's lcore.
        lcore: LcoreId,
    },
    /// EAL could not launch a worker.
    #[error(transparent)]
    Launch(#[from] WorkerError),
    /// A route could not be loaded.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// A port's connected route could not be loaded.
    #[error("the connected route {prefix} (a port's own subnet): {error}")]
    Connected {
        /// Its prefix.
        prefix: IpNet,
        /// What the FIB said.
        error: crate::fib::FibError,
    },
    /// The slow path could not be started.
    #[error(transparent)]
    SlowPath(#[from] SlowPathError),
    /// The packet-extension framework could not be started.
    #[error("extensions: {0}")]
    Extensions(#[from] ExtError),
    /// Memory accounting refused its configuration.
    #[error("accounting: {0}")]
    Accounting(#[from] AccountingError),
    /// The RCU variable or a worker's reader could not be set up.
    #[error("rcu: {0}")]
    Rcu(#[from] RcuError),
    /// The route tables could not be created.
    #[error(transparent)]
    Fib(FibError),
    /// The FPM listener could not bind its address.
    #[error("fpm.listen: cannot listen on {listen}: {error}")]
    Fpm {
        /// The address.
        listen: std::net::SocketAddr,
        /// What the bind said.
        error: std::io::Error,
    },
}

/// Routes could not be loaded into the route tables.
#[derive(Debug, thiserror::Error)]
#[error("route[{index}]: {error}")]
pub struct RouteError {
    /// Position in `[[route]]`.
    pub index: usize,
    /// What the table said.
    pub error: FibError,
}

/// A port as the runtime knows it.
#[derive(Debug)]
struct PortSlot {
    name: String,
    port: Port,
    /// The config's `rx_buffer`, as the report names it.
    rx_buffer: &'static str,
}

/// A launched worker and what the control thread keeps of it.
#[derive(Debug)]
struct WorkerSlot {
    lcore: LcoreId,
    lanes: Vec<LaneId>,
    counters: Arc<WorkerCounters>,
    commands: Sender<Command>,
    launched: Option<Launched>,
}

/// A running forwarder.
#[derive(Debug)]
pub struct Forwarder {
    stop: Arc<AtomicBool>,
    workers: Vec<WorkerSlot>,
    done: Receiver<Finished>,
    ports: Vec<PortSlot>,
    pools: BTreeMap<SocketId, Arc<Pool>>,
    tsc_hz: u64,
    mode: Mode,
    /// The slow path (l3fwd with own addresses only).
    slow: Option<SlowPath>,
    /// The packet-extension framework, when a feature uses it.
    exts: Option<PacketExts>,
    /// Memory accounting, when configured.
    accounting: Option<Arc<Accounting>>,
    /// The accounting groups: one per port, then the slow path's.
    groups: Vec<Arc<Group>>,
    /// The RCU domain of the workers.
    qsbr: Arc<Qsbr>,
    /// The route tables' owner (l3fwd).
    fib: Option<Arc<Mutex<Fib>>>,
    /// Parameters the workers read once per round.
    live: Arc<LiveCell>,
    /// Per port: whether every worker has a TX queue on it.
    tx_capable: Vec<bool>,
    /// The FPM listener (routes from zebra), when configured.
    fpm: Option<Fpm>,
}

impl SlowPathSnapshot {
    /// Requests discarded for any reason.
    pub fn discarded(&self) -> u64 {
        self.discards.iter().sum()
    }

    /// Requests discarded for `reason`.
    pub fn discards(&self, reason: crate::local::Discard) -> u64 {
        self.discards[reason.index()]
    }
}

/// A port's name, id, link and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortReport {
    /// Config name.
    pub name: String,
    /// ethdev id.
    pub id: PortId,
    /// The PMD.
    pub driver: String,
    /// The RX buffer model: `per_packet` or `multi_packet` (the config's `rx_buffer`).
    pub rx_buffer: &'static str,
    /// The link as the PMD reports it now (`rte_eth_link_get_nowait`).
    pub link: LinkStatus,
    /// The device's counters.
    pub stats: PortStats,
}

/// A pool's name and occupancy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolReport {
    /// Pool name.
    pub name: String,
    /// Occupancy.
    pub stats: PoolStats,
}

/// Everything the control thread shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Per worker lcore.
    pub workers: Vec<WorkerSnapshot>,
    /// Per port.
    pub ports: Vec<PortReport>,
    /// Per pool.
    pub pools: Vec<PoolReport>,
    /// TSC ticks per second, to turn cycles into time.
    pub tsc_hz: u64,
    /// The slow path's counters, when it runs.
    pub slow_path: Option<SlowPathSnapshot>,
    /// Memory accounts, when configured.
    pub memory: Option<AccountingSnapshot>,
    /// Routes by family and origin, next hops (l3fwd).
    pub fib: Option<FibSummary>,
    /// The FPM side (routes from zebra), when configured.
    pub fpm: Option<FpmStatus>,
}

/// What the slow path did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowPathSnapshot {
    /// Requests answered (the replies went back to the workers).
    pub answered: u64,
    /// Valid requests with nothing to answer (freed).
    pub ignored: u64,
    /// Requests silently discarded, by [`crate::local::Discard`] index (freed).
    pub discards: [u64; crate::local::Discard::COUNT],
    /// Replies dropped on a full inject ring.
    pub inject_full: u64,
    /// Neighbour resolution: routed packets taken for it, and what became of them.
    pub resolution: ResolutionCounts,
    /// The neighbour table as the slow path last published it.
    pub neighbours: crate::slowpath::NeighbourSnapshot,
}

/// What became of the routed packets the slow path took for neighbour resolution (see
/// [`crate::slowpath::SlowPathCounters`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResolutionCounts {
    /// Taken from the workers.
    pub taken: u64,
    /// Sent to their neighbour (at once, or once resolved).
    pub sent: u64,
    /// Dropped by the neighbour table, by [`crate::neigh::NeighDrop`] index.
    pub drops: [u64; crate::neigh::NeighDrop::COUNT],
    /// Dropped: holding them would exceed the neighbour queue's memory.
    pub proto_mem: u64,
    /// Dropped: their next hop was gone.
    pub no_route: u64,
    /// Still held at exit (freed then).
    pub held_at_exit: u64,
    /// Solicitations and announcements sent.
    pub originated: u64,
    /// Solicitations not built: no free mbuf.
    pub no_mbuf: u64,
    /// The slow path's own packets that found a send ring full.
    pub send_full: u64,
    /// Host routes the FIB refused.
    pub host_route_failures: u64,
}

impl ResolutionCounts {
    /// Dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.drops.iter().sum::<u64>() + self.proto_mem + self.no_route
    }
}

impl Snapshot {
    /// Sum over every worker.
    pub fn total(&self) -> WorkerTotals {
        let ports = self.ports.len();
        let mut t = WorkerTotals::new(0, ports);
        for w in &self.workers {
            t.add(&w.totals);
            t.lane_rx.push(w.totals.processed());
            t.lane_bursts.push(w.totals.lane_bursts.iter().sum());
        }
        t
    }

    /// Packets received from port `port` by all workers.
    pub fn port_rx(&self, port: PortIdx) -> u64 {
        self.workers
            .iter()
            .flat_map(|w| w.lanes.iter().zip(&w.totals.lane_rx))
            .filter(|(l, _)| l.port == port)
            .map(|(_, n)| n)
            .sum()
    }
}

/// The final state after [`Forwarder::stop`].
#[derive(Debug)]
pub struct Report {
    /// Counters after the workers stopped and before the ports closed; pools after close.
    pub snapshot: Snapshot,
    /// Every worker's histograms, merged.
    pub histograms: Histograms,
    /// Workers that panicked.
    pub worker_errors: Vec<WorkerError>,
    /// Ports that failed to stop or close.
    pub port_errors: Vec<PortError>,
}

impl Report {
    /// Pools with mbufs still out after everything was stopped and closed.
    pub fn leaks(&self) -> impl Iterator<Item = &PoolReport> {
        self.snapshot.pools.iter().filter(|p| p.stats.in_use > 0)
    }

    /// Whether the run ended cleanly: no panic, no port error, every pool full, every
    /// memory account back at zero.
    pub fn is_clean(&self) -> bool {
        self.worker_errors.is_empty()
            && self.port_errors.is_empty()
            && self.leaks().next().is_none()
            && self.snapshot.memory.as_ref().is_none_or(|m| m.is_drained())
    }
}

impl Forwarder {
    /// Creates the devices, pools and ports the config names, starts the ports, loads the
    /// routes, and launches one worker per `[[worker]]`. `stop` ends the workers when set
    /// (signal handlers set it).
    ///
    /// # Errors
    /// The first step that fails; whatever was set up is torn down again.
    pub fn start(eal: &Eal, config: &Config, stop: Arc<AtomicBool>) -> Result<Forwarder, StartError> {
        for w in &config.workers {
            let lcore = LcoreId(w.lcore);
            if !lcore.is_enabled() {
                return Err(StartError::LcoreDisabled { lcore });
            }
        }
        // Pools are declared first so they are dropped last: if a later step fails, the
        // started ports close (freeing their mbufs) before the pools are checked.
        let pools: BTreeMap<SocketId, Arc<Pool>>;
        let mut ports = open_ports(config)?;
        let home = eal.main_lcore().socket();
        let sockets: Vec<SocketId> = ports.iter().map(|p| p.port.socket(home)).collect();
        pools = create_pools(config, &sockets)?;

        for (i, (slot, pc)) in ports.iter_mut().zip(&config.ports).enumerate() {
            let setup = PortSetup {
                rx_queues: pc.rx_queues,
                tx_queues: pc.tx_queues,
                rx_desc: pc.rx_desc,
                tx_desc: pc.tx_desc,
                promiscuous: pc.promiscuous,
                mtu: pc.mtu,
            };
            slot.port
                .configure_and_start(&setup, &pools[&sockets[i]], sockets[i])
                .map_err(|error| StartError::Port { port: slot.name.clone(), error })?;
        }
        for slot in &ports {
            let LinkStatus { text, .. } = slot.port.wait_link(Duration::from_secs(3));
            eprintln!("{} ({}, {}): {}", slot.name, slot.port.id(), slot.port.driver(), text);
        }
        let macs: Vec<MacAddr> = ports.iter().map(|s| s.port.mac()).collect();
        // Every port a worker may send on gets a TX queue per worker: the config's, and in
        // l3fwd every port with enough TX queues, since routes to it may come live.
        let workers = config.workers.len();
        let config_tx = config.tx_ports();
        let tx_capable: Vec<bool> = PortIdx::all(config.ports.len())
            .map(|p| {
                config_tx.contains(&p) || (config.forward.mode == Mode::L3fwd && usize::from(config.port(p).tx_queues) >= workers)
            })
            .collect();
        // Reader ids: the workers' lcore ids (below MAX_LCORES).
        let qsbr = Qsbr::new(crate::config::MAX_LCORES)?;
        let mut fib = None;
        let tables = match config.forward.mode {
            Mode::L3fwd => {
                let (table, reader) = load_routes(config, &macs, &tx_capable, &qsbr, home)?;
                fib = Some(Arc::new(Mutex::new(table)));
                Some(Arc::new(L3Tables { fib: reader }))
            }
            Mode::Io | Mode::Macswap | Mode::L2fwd => None,
        };
        let locals = Arc::new(locals(config, &macs));
        let us = |u: u32| u64::from(u) * eal.tsc_hz() / 1_000_000;
        let budget = Budget {
            packets: config.poll.budget,
            cycles: us(config.poll.budget_usecs),
            drain_cycles: us(config.poll.tx_drain_usecs),
            idle: config.poll.idle.clone(),
            sample_every: config.poll.sample_every,
        };
        let live = Arc::new(LiveCell::new(
            qsbr.clone(),
            Live {
                generation: 0,
                budget: budget.clone(),
                mirror: config.mirror.as_ref().map(|m| (m.port, m.proto)),
                backlog: config.accounting.as_ref().map_or((0, 0), |a| (a.backlog, a.backlog_under_pressure)),
                locals: locals.clone(),
            },
        ));

        let (done_tx, done) = crossbeam_channel::unbounded();
        let mut fwd = Forwarder {
            stop,
            workers: Vec::new(),
            done,
            ports,
            pools,
            tsc_hz: eal.tsc_hz(),
            mode: config.forward.mode,
            slow: None,
            exts: None,
            accounting: None,
            groups: Vec::new(),
            qsbr: qsbr.clone(),
            fib,
            live: live.clone(),
            tx_capable: tx_capable.clone(),
            fpm: None,
        };
        let worker_exts = if config.extensions.enabled(config.mirror.is_some()) {
            let ids = exts::start(config.extensions.areas, home)?;
            fwd.exts = Some(ids);
            Some(WorkerExts {
                ids,
                trace_every: config.extensions.trace_every,
                flow: config.extensions.flow,
                mirror: config.mirror.as_ref().map(|m| (m.port, m.proto)),
            })
        } else {
            None
        };
        // Memory accounting: one slot per worker and one for the slow path, a group per port,
        // one for the slow path's requests, one for the packets held for resolution.
        let truesize = std::mem::size_of::<dpdk_sys::rte_mbuf>() as u32
            + u32::from(config.pool.priv_size)
            + u32::from(config.pool.data_room);
        let memory = match &config.accounting {
            None => None,
            Some(conf) => {
                let budget = |b: u64| if b == 0 { Group::UNLIMITED } else { b };
                let acct = Arc::new(Accounting::new(AccountingConfig {
                    limits: conf.limits,
                    batch_pages: conf.batch_pages,
                    lcores: config.workers.len() + 1,
                })?);
                let groups = config
                    .ports
                    .iter()
                    .map(|p| acct.group(&format!("port_{}", p.name), budget(conf.port_budget)))
                    .collect::<Result<Vec<_>, _>>()?;
                let slow_group = acct.group("slow_path", budget(conf.slow_path_budget))?;
                let classes = (acct.class("tx_backlog", conf.backlog_bypass)?, acct.class("slow_path", conf.punt_bypass)?);
                let neigh = NeighMemory {
                    accounting: acct.clone(),
                    slot: LcoreSlot(config.workers.len()),
                    group: acct.group("neigh_queue", budget(conf.neigh_queue_budget))?,
                    class: acct.class("neigh_queue", conf.neigh_queue_bypass)?,
                };
                fwd.accounting = Some(acct.clone());
                fwd.groups = groups.iter().chain([&slow_group]).cloned().collect();
                Some((acct, groups, slow_group, classes, conf.clone(), neigh))
            }
        };
        // The slow path: requests to the forwarder's own addresses, and the neighbour table
        // (every resolved next hop is on a port with an address of its family).
        let mut slow_links = match &tables {
            Some(_) if locals.iter().any(Option::is_some) => {
                let table = Arc::new(PortTable::new(fwd.ports.iter().map(|s| s.port.id()).collect()));
                let lcores: Vec<LcoreId> = config.workers.iter().map(|w| LcoreId(w.lcore)).collect();
                let pool = fwd.pools.get(&home).or_else(|| fwd.pools.values().next()).expect("at least one pool").clone();
                let statics = config
                    .routes
                    .iter()
                    .filter_map(|r| Some((crate::neigh::NeighKey { port: r.port, addr: r.via? }, r.via_mac?)))
                    .collect();
                let sp_config = SlowPathConfig {
                    ports: table,
                    macs: macs.clone(),
                    live: live.clone(),
                    pool,
                    fib: fwd.fib.clone(),
                    neigh: config.neighbour.clone(),
                    statics,
                    memory: memory.as_ref().map(|m| m.5.clone()),
                    held_budget: DEFAULT_NEIGH_QUEUE_BUDGET,
                    truesize,
                };
                let (sp, links) = SlowPath::start(&lcores, sp_config, home)?;
                fwd.slow = Some(sp);
                links.into_iter().map(Some).collect()
            }
            _ => Vec::new(),
        };
        // Fault injection for tests (worker::FAULT_ENV): "LCORE:ROUNDS".
        let fault_panic: Option<(u32, u64)> = std::env::var(worker::FAULT_ENV).ok().and_then(|v| {
            let (l, n) = v.split_once(':')?;
            Some((l.parse().ok()?, n.parse().ok()?))
        });
        for (k, w) in config.workers.iter().enumerate() {
            let lcore = LcoreId(w.lcore);
            let mut lanes: Vec<Lane> = Vec::with_capacity(w.rx.len());
            for r in &w.rx {
                let slot = &mut fwd.ports[r.port.index()];
                let rx = slot.port.take_rx(QueueId(r.queue)).ok_or_else(|| StartError::QueueTaken {
                    port: slot.name.clone(),
                    what: format!("rx queue {}", r.queue),
                    lcore,
                })?;
                let dest = match &tables {
                    Some(tables) => Dest::Route { tables: tables.clone(), local: locals[r.port.index()] },
                    None => {
                        let out = config.out_port(r.port).expect("validated: every port polled in a pair mode is in a pair");
                        let rewrite = match config.forward.mode {
                            Mode::Macswap => Rewrite::Macswap,
                            Mode::L2fwd => Rewrite::L2fwd {
                                src: macs[out.index()],
                                dst: config.port(out).peer_mac.unwrap_or(MacAddr::BROADCAST),
                            },
                            Mode::Io | Mode::L3fwd => Rewrite::None,
                        };
                        Dest::Pair { out, rewrite }
                    }
                };
                let check_chains =
                    config.port(r.port).check_chains.unwrap_or_else(|| port::builds_bad_chains(slot.port.driver()));
                lanes.push(Lane { rx, port: r.port, dest, check_chains });
            }
            // Worker k owns TX queue k of every port a worker may send to (the config
            // guarantees each has a TX queue per worker).
            let mut tx: Vec<Option<TxQueue>> = Vec::with_capacity(fwd.ports.len());
            for p in PortIdx::all(fwd.ports.len()) {
                let slot = &mut fwd.ports[p.index()];
                tx.push(if tx_capable[p.index()] {
                    let q = slot.port.take_tx(QueueId(k as u16)).ok_or_else(|| StartError::QueueTaken {
                        port: slot.name.clone(),
                        what: format!("tx queue {k}"),
                        lcore,
                    })?;
                    Some(q)
                } else {
                    None
                });
            }
            let lane_ids: Vec<LaneId> =
                lanes.iter().map(|l| LaneId { port: l.port, port_id: l.rx.port(), queue: l.rx.queue() }).collect();
            let counters = Arc::new(WorkerCounters::new(lanes.len(), tx.len()));
            let (cmd_tx, cmd_rx) = crossbeam_channel::bounded(4);
            let socket = lcore.socket();
            let pool = fwd.pools.get(&socket).or_else(|| fwd.pools.values().next()).expect("at least one pool").clone();
            let rcu = match qsbr.register(w.lcore) {
                Ok(r) => r,
                Err(e) => {
                    let _ = fwd.stop();
                    return Err(e.into());
                }
            };
            let plan = WorkerPlan {
                rcu,
                live: live.clone(),
                lcore,
                lanes,
                tx,
                burst: config.forward.burst,
                budget: budget.clone(),
                pool,
                counters: counters.clone(),
                stop: fwd.stop.clone(),
                commands: cmd_rx,
                done: done_tx.clone(),
                slow: slow_links.get_mut(k).and_then(Option::take),
                exts: worker_exts,
                panic_after: fault_panic.filter(|(l, _)| *l == w.lcore).map(|(_, n)| n),
                memory: memory.as_ref().map(|(acct, groups, slow_group, classes, conf, _)| WorkerMemory {
                    accounting: acct.clone(),
                    slot: LcoreSlot(k),
                    port_groups: groups.clone(),
                    slow_group: slow_group.clone(),
                    backlog_class: classes.0.clone(),
                    slow_class: classes.1.clone(),
                    conf: conf.clone(),
                    truesize,
                }),
            };
            let guard = StopOnPanic(fwd.stop.clone());
            let launched = launch(eal, lcore, move || {
                let _guard = guard;
                worker::run(plan)
            });
            match launched {
                Ok(l) => fwd.workers.push(WorkerSlot { lcore, lanes: lane_ids, counters, commands: cmd_tx, launched: Some(l) }),
                Err(e) => {
                    let _ = fwd.stop();
                    return Err(e.into());
                }
            }
        }
        if let (Some(conf), Some(fib)) = (&config.fpm, &fwd.fib) {
            // zebra's routes go into the same table as the config's and ctl's (validated:
            // [fpm] only in l3fwd), next hops mapped onto the ports by subnet or kernel_name.
            let ports = config
                .ports
                .iter()
                .enumerate()
                .map(|(i, pc)| PortAddrs {
                    port: PortIdx(i as u16),
                    ipv4: pc.ipv4,
                    ipv6: pc.ipv6,
                    kernel_name: pc.kernel_name.clone(),
                })
                .collect();
            match Fpm::start(conf, Box::new(FibSink::new(fib.clone(), ports))) {
                Ok(f) => fwd.fpm = Some(f),
                Err(error) => {
                    let _ = fwd.stop();
                    return Err(StartError::Fpm { listen: conf.listen, error });
                }
            }
        }
        Ok(fwd)
    }

    /// The forwarding mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The route tables' owner (l3fwd): lock it from non-worker threads only.
    pub fn fib(&self) -> Option<&Arc<Mutex<Fib>>> {
        self.fib.as_ref()
    }

    /// The workers' RCU domain.
    pub fn qsbr(&self) -> &Arc<Qsbr> {
        &self.qsbr
    }

    /// The live parameters the workers read once per round.
    pub fn live(&self) -> &Arc<LiveCell> {
        &self.live
    }

    /// Whether the slow path runs (it answers for the ports' own addresses).
    pub fn has_slow_path(&self) -> bool {
        self.slow.is_some()
    }

    /// Whether the packet-extension framework runs (the mirror needs it).
    pub fn has_extensions(&self) -> bool {
        self.exts.is_some()
    }

    /// Per port (config index): whether every worker has a TX queue on it.
    pub fn tx_capable(&self) -> &[bool] {
        &self.tx_capable
    }

    /// Memory accounting, when configured, and its groups (one per port, then the slow
    /// path's).
    pub fn accounting(&self) -> Option<(&Arc<Accounting>, &[Arc<Group>])> {
        self.accounting.as_ref().map(|a| (a, self.groups.as_slice()))
    }

    /// The ports' MACs, by config index.
    pub fn macs(&self) -> Vec<MacAddr> {
        self.ports.iter().map(|s| s.port.mac()).collect()
    }

    /// TSC ticks per second.
    pub fn tsc_hz(&self) -> u64 {
        self.tsc_hz
    }

    /// Sets a port's link up or down (`rte_eth_dev_set_link_up` / `_down`).
    ///
    /// # Errors
    /// No such port (by config name), or the PMD refused (ENOTSUP for drivers without it).
    pub fn set_link(&self, port: &str, up: bool) -> Result<(), String> {
        let slot = self.ports.iter().find(|s| s.name == port).ok_or_else(|| format!("no port named {port:?}"))?;
        slot.port.set_link(up).map_err(|e| e.to_string())
    }

    /// A port's extended statistics (`rte_eth_xstats_get`), by config name.
    pub fn xstats(&self, port: &str) -> Option<Vec<(String, u64)>> {
        self.ports.iter().find(|s| s.name == port).map(|s| s.port.xstats())
    }

    /// Zeroes the counters: each worker sends what its TX buffers hold, then zeroes its
    /// counters and histograms at a round boundary; the ports' counters are reset
    /// (`rte_eth_stats_reset`, `rte_eth_xstats_reset`) and so are the slow path's.
    /// Returns how many workers confirmed within `timeout`.
    pub fn clear_counters(&self, timeout: Duration) -> usize {
        let (tx, rx) = crossbeam_channel::bounded(self.workers.len().max(1));
        let asked = self.workers.iter().filter(|w| w.commands.try_send(Command::ClearCounters(tx.clone())).is_ok()).count();
        let deadline = std::time::Instant::now() + timeout;
        let mut done = 0;
        for _ in 0..asked {
            if rx.recv_deadline(deadline).is_ok() {
                done += 1;
            }
        }
        for s in &self.ports {
            s.port.reset_stats();
        }
        if let Some(sp) = &self.slow {
            let c = sp.counters();
            for a in [&c.answered, &c.ignored, &c.inject_full] {
                a.store(0, Ordering::Relaxed);
            }
        }
        done
    }

    /// Counters now (workers' published totals, the devices' counters, pools).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            workers: self
                .workers
                .iter()
                .map(|w| WorkerSnapshot { lcore: w.lcore, lanes: w.lanes.clone(), totals: w.counters.read() })
                .collect(),
            ports: self
                .ports
                .iter()
                .map(|s| PortReport {
                    name: s.name.clone(),
                    id: s.port.id(),
                    driver: s.port.driver().to_owned(),
                    rx_buffer: s.rx_buffer,
                    link: s.port.link(),
                    stats: s.port.stats(),
                })
                .collect(),
            pools: self.pool_reports(),
            tsc_hz: self.tsc_hz,
            memory: self.accounting.as_ref().map(|a| a.snapshot()),
            fib: self.fib.as_ref().map(|f| f.lock().unwrap_or_else(|e| e.into_inner()).summary()),
            fpm: self.fpm.as_ref().map(Fpm::status),
            slow_path: self.slow.as_ref().map(|sp| {
                let c = sp.counters();
                SlowPathSnapshot {
                    answered: c.answered.load(Ordering::Relaxed),
                    ignored: c.ignored.load(Ordering::Relaxed),
                    discards: std::array::from_fn(|i| c.discards[i].load(Ordering::Relaxed)),
                    inject_full: c.inject_full.load(Ordering::Relaxed),
                    resolution: ResolutionCounts {
                        taken: c.resolve_taken.load(Ordering::Relaxed),
                        sent: c.resolved_sent.load(Ordering::Relaxed),
                        drops: std::array::from_fn(|i| c.neigh_drops[i].load(Ordering::Relaxed)),
                        proto_mem: c.neigh_proto_mem.load(Ordering::Relaxed),
                        no_route: c.neigh_no_route.load(Ordering::Relaxed),
                        held_at_exit: c.held_at_exit.load(Ordering::Relaxed),
                        originated: c.originated.load(Ordering::Relaxed),
                        no_mbuf: c.no_mbuf.load(Ordering::Relaxed),
                        send_full: c.send_full.load(Ordering::Relaxed),
                        host_route_failures: c.host_route_failures.load(Ordering::Relaxed),
                    },
                    neighbours: sp.neighbours(),
                }
            }),
        }
    }

    /// Receives and frees what is still queued on the RX queues the workers handed back:
    /// not every PMD frees the mbufs its rings hold when the port closes (net_ring does
    /// not). Bounded, since some PMDs (net_null) never run dry.
    fn drain_rx(queues: &mut [RxQueue]) {
        let mut burst: mempool::Burst = mempool::Burst::new();
        for rxq in queues {
            for _ in 0..256 {
                burst.clear();
                if rxq.rx_burst(&mut burst, mempool::MAX_BURST as u16) == 0 {
                    break;
                }
            }
            burst.clear();
        }
    }

    /// The mbuf pools and, when extensions are on, the extension-area pool.
    fn pool_reports(&self) -> Vec<PoolReport> {
        let mut v: Vec<PoolReport> =
            self.pools.values().map(|p| PoolReport { name: p.name().to_owned(), stats: p.stats() }).collect();
        if let Some(x) = &self.exts {
            v.push(PoolReport { name: x.ext.pool_name().to_owned(), stats: x.ext.stats() });
        }
        v
    }

    /// Every running worker's histograms, merged (each worker answers within a round).
    pub fn histograms(&self, timeout: Duration) -> Histograms {
        let (tx, rx) = crossbeam_channel::bounded(self.workers.len().max(1));
        let asked = self.workers.iter().filter(|w| w.commands.try_send(Command::Histograms(tx.clone())).is_ok()).count();
        let mut merged = Histograms::new();
        let deadline = std::time::Instant::now() + timeout;
        for _ in 0..asked {
            match rx.recv_deadline(deadline) {
                Ok((_, h)) => merged.merge(&h),
                Err(_) => break,
            }
        }
        merged
    }

    /// Stops the workers (each flushes and frees what it holds), stops and closes the
    /// ports (the PMDs free what their rings hold), then checks every pool is full and
    /// frees it.
    pub fn stop(mut self) -> Report {
        // zebra first: no route changes while the workers wind down.
        let fpm = self.fpm.take().map(Fpm::stop);
        self.stop.store(true, Ordering::SeqCst);
        let mut worker_errors = Vec::new();
        for w in &mut self.workers {
            if let Some(l) = w.launched.take() {
                if let Err(e) = l.join() {
                    worker_errors.push(e);
                }
            }
        }
        // The slow path stops after the workers (nothing more is punted) and its rings go
        // before the pools are checked: dropping a ring frees what it still holds.
        if let Some(sp) = &mut self.slow {
            sp.stop();
        }
        let slow_path = self.snapshot().slow_path;
        self.slow = None;
        let mut histograms = Histograms::new();
        let mut rx_queues = Vec::new();
        while let Ok(f) = self.done.try_recv() {
            histograms.merge(&f.histograms);
            rx_queues.extend(f.rx);
            // f.tx drops here: the workers' TX queues are done.
        }
        if let Some(a) = &self.accounting {
            a.flush_all();
        }
        let mut snapshot = self.snapshot();
        snapshot.slow_path = slow_path;
        snapshot.fpm = fpm;
        Self::drain_rx(&mut rx_queues);
        // Every queue handle is gone now (a panicked worker's went with its stack), so
        // the ports may stop.
        drop(rx_queues);
        let port_errors: Vec<PortError> = self.ports.drain(..).filter_map(|s| s.port.close().err()).collect();
        snapshot.pools = self.pool_reports();
        // Pools drop here (the workers' references went with them): each frees its memory
        // only if it is full (see mempool::Pool).
        self.pools.clear();
        Report { snapshot, histograms, worker_errors, port_errors }
    }
}

/// Sets the stop flag if the worker that holds it panics, so the other workers and the
/// control thread wind down instead of running on without it.
struct StopOnPanic(Arc<AtomicBool>);

impl Drop for StopOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        // Reached only when start() fails half-way or stop() was not called: stop workers
        // before ports close under them.
        self.stop.store(true, Ordering::SeqCst);
        for w in &mut self.workers {
            if let Some(l) = w.launched.take() {
                let _ = l.join();
            }
        }
    }
}

/// The route tables of l3fwd, loaded with the config's routes (origin `config`).
fn load_routes(
    config: &Config,
    macs: &[MacAddr],
    tx_capable: &[bool],
    qsbr: &Arc<Qsbr>,
    socket: SocketId,
) -> Result<(Fib, crate::fib::FibReader), StartError> {
    let ports = config
        .ports
        .iter()
        .zip(macs)
        .zip(tx_capable)
        .map(|((pc, &mac), &routable)| FibPort { name: pc.name.clone(), mac, routable })
        .collect();
    // Every worker counts the packets it routes to each next hop.
    let readers: Vec<u32> = config.workers.iter().map(|w| w.lcore).collect();
    let (mut fib, reader) = Fib::new(config.fib, ports, qsbr, socket, &readers).map_err(StartError::Fib)?;
    let changes: Vec<RouteChange> = config.routes.iter().map(|r| RouteChange::Set(route_of(r, Origin::Config))).collect();
    fib.apply(&changes).map_err(|(index, error)| RouteError { index, error })?;
    let connected: Vec<RouteChange> = connected_routes(config).into_iter().map(RouteChange::Set).collect();
    fib.apply(&connected).map_err(|(i, error)| StartError::Connected { prefix: connected[i].prefix(), error })?;
    Ok((fib, reader))
}

/// The FIB's route for a config `[[route]]`: to the gateway `via` (resolved by the slow
/// path; with `via_mac` too, a static neighbour), to the static MAC `via_mac` alone, or
/// on-link with neither.
pub fn route_of(r: &crate::config::RouteConfig, origin: Origin) -> Route {
    let via = match (r.via, r.via_mac) {
        (Some(gateway), Some(mac)) => Via::Static(gateway, mac),
        (Some(gateway), None) => Via::Gateway(gateway),
        (None, Some(mac)) => Via::Mac(mac),
        (None, None) => Via::Connected,
    };
    Route { prefix: r.prefix, next_hop: NextHopKey { port: r.port, via }.into(), origin }
}

/// The connected routes of an l3fwd config: each port's own IPv4 and IPv6 subnet, on-link
/// (origin `connected`, like the kernel's `proto kernel scope link` routes), except where a
/// `[[route]]` has the same prefix (the config's route wins).
pub fn connected_routes(config: &Config) -> Vec<Route> {
    if config.forward.mode != Mode::L3fwd {
        return Vec::new();
    }
    let mut out: Vec<Route> = Vec::new();
    for (i, pc) in config.ports.iter().enumerate() {
        let subnets = [pc.ipv4.map(|a| IpNet::V4(a.trunc())), pc.ipv6.map(|a| IpNet::V6(a.trunc()))];
        for prefix in subnets.into_iter().flatten() {
            if config.routes.iter().any(|r| r.prefix == prefix) || out.iter().any(|r| r.prefix == prefix) {
                continue;
            }
            let next_hop = NextHopKey { port: PortIdx(i as u16), via: Via::Connected };
            out.push(Route { prefix, next_hop: next_hop.into(), origin: Origin::Connected });
        }
    }
    out
}

/// Per port: the forwarder's own addresses there.
pub fn locals(config: &Config, macs: &[MacAddr]) -> Vec<Option<Local>> {
    config
        .ports
        .iter()
        .zip(macs)
        .map(|(pc, &mac)| {
            (pc.ipv4.is_some() || pc.ipv6.is_some()).then(|| Local {
                mac,
                ipv4: pc.ipv4.map(|a| a.addr()),
                ipv6: pc.ipv6.map(|a| a.addr()),
            })
        })
        .collect()
}

/// Creates each vdev (unless it already exists, e.g. given to EAL after `--`) and finds
/// every port; checks the RX buffer model against the driver EAL bound.
fn open_ports(config: &Config) -> Result<Vec<PortSlot>, StartError> {
    let mut slots = Vec::with_capacity(config.ports.len());
    for pc in &config.ports {
        let device = pc.device.name();
        if let Device::Vdev { name, .. } = &pc.device {
            if port::find_port(name).is_none() {
                port::create_vdev(name, &pc.devargs()).map_err(|error| StartError::Vdev {
                    port: pc.name.clone(),
                    device: name.clone(),
                    error,
                })?;
            }
        }
        let id = port::find_port(device)
            .ok_or_else(|| StartError::DeviceNotFound { port: pc.name.clone(), device: device.to_owned() })?;
        let port = Port::open(id).map_err(|error| StartError::Port { port: pc.name.clone(), error })?;
        if matches!(pc.rx_buffer, RxBuffer::MultiPacket(_)) && !port.driver().starts_with("mlx5") {
            return Err(StartError::MultiPacketNeedsMlx5 { port: pc.name.clone(), driver: port.driver().to_owned() });
        }
        let rx_buffer = match pc.rx_buffer {
            RxBuffer::PerPacket => "per_packet",
            RxBuffer::MultiPacket(_) => "multi_packet",
        };
        slots.push(PortSlot { name: pc.name.clone(), port, rx_buffer });
    }
    Ok(slots)
}

/// One pool per NUMA socket that has a port, sized by the config or by l3fwd's formula
/// over the ports on that socket.
fn create_pools(config: &Config, sockets: &[SocketId]) -> Result<BTreeMap<SocketId, Arc<Pool>>, StartError> {
    let mut pools = BTreeMap::new();
    for &socket in sockets {
        if pools.contains_key(&socket) {
            continue;
        }
        let here: Vec<&PortConfig> = config.ports.iter().zip(sockets).filter(|(_, s)| **s == socket).map(|(p, _)| p).collect();
        let max = |f: fn(&PortConfig) -> u16| u32::from(here.iter().map(|p| f(p)).max().unwrap_or(0));
        let size = config.pool.mbufs.unwrap_or_else(|| {
            mbufs_needed(PoolSizing {
                ports: here.len() as u32,
                rx_queues: max(|p| p.rx_queues),
                rx_desc: max(|p| p.rx_desc),
                tx_queues: max(|p| p.tx_queues),
                tx_desc: max(|p| p.tx_desc),
                lcores: config.workers.len() as u32,
                burst: u32::from(config.forward.burst),
                cache: config.pool.cache,
            })
        });
        let name = format!("mbuf_pool_s{}", socket.0.max(0));
        let pool = Pool::create(&PoolParams {
            name,
            size,
            cache: config.pool.cache,
            priv_size: config.pool.priv_size,
            data_room: config.pool.data_room,
            socket,
        })?;
        pools.insert(socket, Arc::new(pool));
    }
    Ok(pools)
}
