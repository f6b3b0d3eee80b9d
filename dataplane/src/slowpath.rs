//! The slow path: a control-plane thread that answers requests addressed to the
//! forwarder itself (ARP, IPv6 neighbour solicitation, ICMP/ICMPv6 echo; see
//! [`crate::local`]).
//!
//! # The boundary
//!
//! [`SlowPath::start`] creates, per worker, three `rte_ring`s and returns the worker's end
//! of them as a [`SlowPathLink`]; the workers know nothing else of the slow path, and the
//! slow path nothing of the workers:
//!
//! - **punt** (worker to slow path): requests ([`SlowPathLink::punt`]);
//! - **inject** (slow path to worker): replies, each rewritten in place from its request,
//!   to be sent out of the port the request came in on ([`SlowPathLink::take_replies`],
//!   [`SlowPathLink::out_port`]), on the worker's own TX queue, so no TX queue is shared;
//! - **returned** (slow path to worker): requests it did not answer, and replies that did
//!   not fit in the inject ring ([`SlowPathLink::take_returned`]). The worker returns their
//!   memory charge and frees them; they were counted when punted, so they are not drops.
//!
//! Nothing is marked in the packet itself. The thread polls the punt rings and sleeps
//! briefly when there is nothing to do.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use mempool::{Burst, Mbuf, MbufRing, RingError, SocketId};

use crate::eal::LcoreId;
use crate::live::LiveCell;
use crate::local::{self, Local};
use crate::port::{PortId, PortIdx, PortTable};

/// Entries of each punt and inject ring (one fewer fit).
pub const RING_SIZE: u32 = 1024;
/// Entries of each returned ring: room for everything the punt and inject rings and one
/// burst in the thread's hands can hold, so handing a packet back never fails.
const RETURNED_SIZE: u32 = 4 * RING_SIZE;

/// The slow path's counters.
#[derive(Debug, Default)]
pub struct SlowPathCounters {
    /// Requests answered and handed back for sending.
    pub answered: AtomicU64,
    /// Requests that could not be answered after all (handed back to be freed).
    pub ignored: AtomicU64,
    /// Replies that found a worker's inject ring full (handed back to be freed).
    pub inject_full: AtomicU64,
}

/// Why the slow path could not start.
#[derive(Debug, thiserror::Error)]
pub enum SlowPathError {
    /// One of its rings could not be created.
    #[error("slow path: {0}")]
    Ring(#[from] RingError),
    /// The thread could not be spawned.
    #[error("cannot start the slow-path thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// A worker's end of the slow path.
pub struct SlowPathLink {
    punt: Arc<MbufRing>,
    inject: Arc<MbufRing>,
    returned: Arc<MbufRing>,
    ports: Arc<PortTable>,
}

impl std::fmt::Debug for SlowPathLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlowPathLink").field("punt", &self.punt.name()).finish_non_exhaustive()
    }
}

impl SlowPathLink {
    /// Hands requests to the slow path, from the front of `requests`; returns how many it
    /// took (the rest stay: its ring was full). Each request's `port` must be the ethdev
    /// it came in on: the reply leaves by it.
    #[inline]
    pub fn punt<const N: usize>(&self, requests: &mut Burst<N>) -> usize {
        self.punt.enqueue(requests)
    }

    /// Moves replies ready to send into `replies`; returns how many.
    #[inline]
    pub fn take_replies<const N: usize>(&self, replies: &mut Burst<N>) -> usize {
        self.inject.dequeue(replies)
    }

    /// Moves requests that got no reply (and replies that found the inject ring full)
    /// into `returned`, for the worker to uncharge and free; returns how many.
    #[inline]
    pub fn take_returned<const N: usize>(&self, returned: &mut Burst<N>) -> usize {
        self.returned.dequeue(returned)
    }

    /// The port a reply leaves by: the config port its request came in on.
    #[inline]
    pub fn out_port(&self, reply: &Mbuf) -> Option<PortIdx> {
        self.ports.idx(PortId(reply.port()))
    }
}

/// The slow path's end of one worker's rings.
struct WorkerRings {
    punt: Arc<MbufRing>,
    inject: Arc<MbufRing>,
    returned: Arc<MbufRing>,
}

/// A running slow-path thread.
#[derive(Debug)]
pub struct SlowPath {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    counters: Arc<SlowPathCounters>,
}

/// How long the thread sleeps when every punt ring was empty.
const IDLE_SLEEP: Duration = Duration::from_micros(50);

impl SlowPath {
    /// Creates the rings of the workers on `lcores` (on `socket`) and starts the thread.
    /// `live` holds the ports' own addresses by [`PortIdx`] (read once per batch of
    /// requests, so `ctl apply` can change them), `ports` the table that maps a
    /// request's ethdev to them. Returns the thread and each worker's link, in `lcores`
    /// order.
    ///
    /// # Errors
    /// [`SlowPathError`] when a ring cannot be created or the thread cannot be spawned.
    pub fn start(
        lcores: &[LcoreId],
        ports: Arc<PortTable>,
        live: Arc<LiveCell>,
        socket: SocketId,
    ) -> Result<(SlowPath, Vec<SlowPathLink>), SlowPathError> {
        let mut links = Vec::with_capacity(lcores.len());
        let mut rings = Vec::with_capacity(lcores.len());
        for lcore in lcores {
            let ring = |dir: &str, size| MbufRing::create(&format!("slow_{dir}_{}", lcore.0), size, socket).map(Arc::new);
            let (punt, inject, returned) = (ring("punt", RING_SIZE)?, ring("inject", RING_SIZE)?, ring("ret", RETURNED_SIZE)?);
            rings.push(WorkerRings { punt: punt.clone(), inject: inject.clone(), returned: returned.clone() });
            links.push(SlowPathLink { punt, inject, returned, ports: ports.clone() });
        }
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(SlowPathCounters::default());
        let (s, c) = (stop.clone(), counters.clone());
        let handle = std::thread::Builder::new().name("slowpath".into()).spawn(move || run(&rings, &ports, &live, &s, &c))?;
        Ok((SlowPath { stop, handle: Some(handle), counters }, links))
    }

    /// The counters.
    pub fn counters(&self) -> &SlowPathCounters {
        &self.counters
    }

    /// Stops and joins the thread. Whatever is still in the rings is freed when the last
    /// reference to each ring (the thread's or a link's) is dropped.
    pub fn stop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for SlowPath {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(rings: &[WorkerRings], ports: &PortTable, live: &LiveCell, stop: &AtomicBool, c: &SlowPathCounters) {
    let mut requests: Burst = Burst::new();
    let mut replies: Burst = Burst::new();
    let mut returned: Burst = Burst::new();
    while !stop.load(Relaxed) {
        let mut busy = false;
        for r in rings {
            if r.punt.dequeue(&mut requests) == 0 {
                continue;
            }
            busy = true;
            // Not a worker: it may take the cell's writer lock for the moment of a clone.
            let locals: Arc<Vec<Option<Local>>> = live.with(|l| l.locals.clone());
            for mut m in requests.drain() {
                let local = ports.idx(PortId(m.port())).and_then(|i| locals.get(i.index())?.as_ref());
                let answered = match (local, m.data_mut()) {
                    (Some(l), Some(data)) => local::answer(data, l),
                    _ => false,
                };
                // At most one burst of requests at a time, so both fit.
                let _ = if answered { replies.push(m) } else { returned.push(m) };
            }
            c.ignored.fetch_add(returned.len() as u64, Relaxed);
            let n = r.inject.enqueue(&mut replies);
            c.answered.fetch_add(n as u64, Relaxed);
            c.inject_full.fetch_add(replies.len() as u64, Relaxed);
            returned.move_from(&mut replies);
            // The returned ring holds more than the punt and inject rings together, so
            // this takes everything; anything left would be freed (and its charge lost).
            r.returned.enqueue(&mut returned);
            returned.clear();
        }
        if !busy {
            std::thread::sleep(IDLE_SLEEP);
        }
    }
}
