//! The forwarder's lifecycle, in l2fwd's order: devices, pools, ports, workers; and back:
//! stop workers, close ports, check every pool is full, free pools.
//!
//! [`Forwarder::start`] takes a validated [`Config`] and a running [`Eal`]; the control thread
//! then reads [`Forwarder::snapshot`] while the workers run, and [`Forwarder::stop`] tears
//! everything down and returns the final [`Report`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mempool::{mbufs_needed, Pool, PoolError, PoolParams, PoolSizing, PoolStats, SocketId};

use crate::config::{Config, Device, Mode, PortConfig, RxBuffer};
use crate::eal::{launch, Eal, Launched, LcoreId, WorkerError};
use crate::port::{self, LinkStatus, Port, PortError, PortId, PortSetup, PortStats, QueueId, RxQueue, TxQueue};
use crate::stats::{LaneCounters, LaneId, LaneSnapshot};
use crate::worker::{self, Lane, WorkerPlan};

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
    /// EAL could not launch a worker.
    #[error(transparent)]
    Launch(#[from] WorkerError),
}

/// A port as the runtime knows it.
#[derive(Debug)]
struct PortSlot {
    name: String,
    port: Port,
}

/// A running forwarder.
#[derive(Debug)]
pub struct Forwarder {
    stop: Arc<AtomicBool>,
    workers: Vec<Launched>,
    lanes: Vec<(LaneId, Arc<[LaneCounters]>, usize)>,
    ports: Vec<PortSlot>,
    pools: BTreeMap<SocketId, Pool>,
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
    /// Per lane.
    pub lanes: Vec<LaneSnapshot>,
    /// Per port.
    pub ports: Vec<PortReport>,
    /// Per pool.
    pub pools: Vec<PoolReport>,
}

/// The final state after [`Forwarder::stop`].
#[derive(Debug)]
pub struct Report {
    /// Counters after the workers stopped and before the ports closed; pools after close.
    pub snapshot: Snapshot,
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

    /// Whether the run ended cleanly: no panic, no port error, every pool full.
    pub fn is_clean(&self) -> bool {
        self.worker_errors.is_empty() && self.port_errors.is_empty() && self.leaks().next().is_none()
    }
}

impl Forwarder {
    /// Creates the devices, pools and ports the config names, starts the ports and launches
    /// one worker per `[[worker]]`. `stop` ends the workers when set (signal handlers set it).
    ///
    /// # Errors
    /// The first step that fails; whatever was set up is torn down again.
    pub fn start(eal: &Eal, config: &Config, stop: Arc<AtomicBool>) -> Result<Forwarder, StartError> {
        let mut ports = open_ports(config)?;
        let home = eal.main_lcore().socket();
        let sockets: Vec<SocketId> = ports.iter().map(|p| p.port.socket(home)).collect();
        let pools = create_pools(config, &sockets)?;

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

        let mut fwd = Forwarder { stop, workers: Vec::new(), lanes: Vec::new(), ports, pools };
        for w in &config.workers {
            let lcore = LcoreId(w.lcore);
            if !lcore.is_enabled() {
                return Err(StartError::LcoreDisabled { lcore });
            }
        }
        for (k, w) in config.workers.iter().enumerate() {
            let lcore = LcoreId(w.lcore);
            let lanes: Vec<Lane> = w
                .rx
                .iter()
                .map(|r| {
                    let out = config.out_port(r.port).expect("validated: every polled port is paired");
                    Lane {
                        rx: RxQueue { port: fwd.ports[r.port].port.id(), queue: QueueId(r.queue) },
                        tx: TxQueue { port: fwd.ports[out].port.id(), queue: QueueId(k as u16) },
                    }
                })
                .collect();
            let counters: Arc<[LaneCounters]> = lanes.iter().map(|_| LaneCounters::default()).collect();
            for (i, l) in lanes.iter().enumerate() {
                let id = LaneId { lcore, rx_port: l.rx.port, rx_queue: l.rx.queue, tx_port: l.tx.port, tx_queue: l.tx.queue };
                fwd.lanes.push((id, counters.clone(), i));
            }
            let plan = WorkerPlan { lanes, burst: config.forward.burst, counters, stop: fwd.stop.clone() };
            let guard = StopOnPanic(fwd.stop.clone());
            let body = match config.forward.mode {
                Mode::Io => move || {
                    let _guard = guard;
                    worker::run_io(plan)
                },
            };
            match launch(eal, lcore, body) {
                Ok(l) => fwd.workers.push(l),
                Err(e) => {
                    let _ = fwd.stop();
                    return Err(e.into());
                }
            }
        }
        Ok(fwd)
    }

    /// Counters now (lanes from the workers, ports from the devices, pools).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            lanes: self.lanes.iter().map(|(id, c, i)| LaneSnapshot { id: *id, totals: c[*i].read() }).collect(),
            ports: self
                .ports
                .iter()
                .map(|s| PortReport { name: s.name.clone(), id: s.port.id(), driver: s.port.driver().to_owned(), stats: s.port.stats() })
                .collect(),
            pools: self.pools.values().map(|p| PoolReport { name: p.name().to_owned(), stats: p.stats() }).collect(),
        }
    }

    /// Stops the workers (each frees what it holds), stops and closes the ports (the PMDs
    /// free what their rings hold), then checks every pool is full and frees it.
    pub fn stop(mut self) -> Report {
        self.stop.store(true, Ordering::SeqCst);
        let worker_errors: Vec<WorkerError> = self.workers.drain(..).filter_map(|w| w.join().err()).collect();
        let mut snapshot = self.snapshot();
        let port_errors: Vec<PortError> = self.ports.drain(..).filter_map(|s| s.port.close().err()).collect();
        snapshot.pools = self.pools.values().map(|p| PoolReport { name: p.name().to_owned(), stats: p.stats() }).collect();
        // Pools drop here: each frees its memory only if it is full (see mempool::Pool).
        self.pools.clear();
        Report { snapshot, worker_errors, port_errors }
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
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
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
        slots.push(PortSlot { name: pc.name.clone(), port });
    }
    Ok(slots)
}

/// One pool per NUMA socket that has a port, sized by the config or by l3fwd's formula
/// over the ports on that socket.
fn create_pools(config: &Config, sockets: &[SocketId]) -> Result<BTreeMap<SocketId, Pool>, StartError> {
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
        pools.insert(socket, pool);
    }
    Ok(pools)
}
