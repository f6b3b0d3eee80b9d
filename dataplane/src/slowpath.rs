//! The slow path: a control-plane thread that takes what the workers punt (ARP, IPv6
//! neighbour solicitations and advertisements, ICMP/ICMPv6 echo requests to the forwarder;
//! see [`crate::local`]), validates it as the RFCs say, and answers or silently discards
//! it; and that owns the neighbour table ([`crate::neigh`]): it learns from what it
//! validated, holds the routed packets whose next hop's MAC is not known, solicits, and
//! tells the workers each neighbour's MAC through the next-hop table.
//!
//! Every request ends in exactly one of `answered`, `ignored` (valid, nothing to answer)
//! or `discards.<reason>` ([`Discard`]); every packet handed over for resolution in exactly
//! one of `resolved_sent`, `neigh_drops.<reason>`, `neigh_proto_mem`, `neigh_no_route`,
//! `send_full` or `held_at_exit`, or is still held. The workers counted each once, as
//! `punted`.
//!
//! # The boundary
//!
//! [`SlowPath::start`] creates, per worker, five `rte_ring`s and returns the worker's end
//! of them as a [`SlowPathLink`]; the workers know nothing else of the slow path, and the
//! slow path nothing of the workers:
//!
//! - **punt** (worker to slow path): requests ([`SlowPathLink::punt`]), charged by the
//!   worker to the slow path's consumer;
//! - **inject** (slow path to worker): replies, each written over its request, to be sent
//!   out of the port the request came in on ([`SlowPathLink::take_replies`],
//!   [`SlowPathLink::out_port`]), on the worker's own TX queue, so no TX queue is shared;
//! - **returned** (slow path to worker): requests it did not answer (ignored or
//!   discarded), and replies that did not fit in the inject ring
//!   ([`SlowPathLink::take_returned`]). The worker returns their memory charge and frees
//!   them; they were counted when punted, so they are not drops;
//! - **resolve** (worker to slow path): routed packets whose next hop's neighbour MAC is not
//!   known, tagged with the next-hop id ([`SlowPathLink::resolve`]); not charged in flight,
//!   charged to the neighbour queue's consumer while the slow path holds them;
//! - **send** (slow path to worker): what the slow path sends itself: solicitations,
//!   announcements, and the held packets once their neighbour is known
//!   ([`SlowPathLink::take_sent`]); uncharged, counted `injected` by the worker.
//!
//! The thread polls the rings, runs the neighbour timers every 10 ms, and sleeps briefly
//! when there is nothing to do.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use mempool::accounting::{Accounting, Consumer, ConsumerClass, Group, LcoreSlot};
use mempool::{Burst, Mbuf, MbufRing, Pool, RingError, SocketId};

use crate::eal::LcoreId;
use crate::fib::{Fib, Origin, Route, RouteChange};
use crate::live::LiveCell;
use crate::local::{self, Discard, Local};
use crate::neigh::{NeighDrop, NeighKey, NeighParams, NeighStats, NeighView, Output, Resolver, ResolverStats};
use crate::net::{parse_packet, EthernetFrame, Ipv4Packet, Ipv6Packet, MacAddr, Proto, L3};
use crate::nexthop::{NextHopKey, Via};
use crate::port::{PortId, PortIdx, PortTable};

/// Entries of each punt, inject and send ring (one fewer fit).
pub const RING_SIZE: u32 = 1024;
/// Entries of each resolve ring: packets in flight to the slow path (not charged), so few.
pub const RESOLVE_SIZE: u32 = 512;
/// Entries of each returned ring: room for everything the punt and inject rings and one
/// burst in the thread's hands can hold, so handing a packet back never fails.
const RETURNED_SIZE: u32 = 4 * RING_SIZE;
/// How often the neighbour timers run and the workers' "used" marks are collected.
const TICK: Duration = Duration::from_millis(10);
/// How often the neighbour table is copied out for `show neighbours` and the reports.
const PUBLISH: Duration = Duration::from_millis(100);

/// The slow path's counters.
#[derive(Debug)]
pub struct SlowPathCounters {
    /// Requests answered and handed back for sending.
    pub answered: AtomicU64,
    /// Valid requests with nothing to answer (handed back to be freed): an ARP message or
    /// a solicitation for another address, an advertisement.
    pub ignored: AtomicU64,
    /// Requests silently discarded, by [`Discard`] reason (handed back to be freed).
    pub discards: [AtomicU64; Discard::COUNT],
    /// Replies that found a worker's inject ring full (handed back to be freed).
    pub inject_full: AtomicU64,
    /// Routed packets taken from the resolve rings.
    pub resolve_taken: AtomicU64,
    /// Of those, sent once their neighbour's MAC was known (at once or after waiting).
    pub resolved_sent: AtomicU64,
    /// Of those, dropped by the neighbour table, by [`NeighDrop`] reason.
    pub neigh_drops: [AtomicU64; NeighDrop::COUNT],
    /// Of those, dropped because holding them would exceed the neighbour queue's memory
    /// (its protocol account's max, or its group's budget): `proto_mem`.
    pub neigh_proto_mem: AtomicU64,
    /// Of those, dropped because their next hop was gone (the route changed meanwhile).
    pub neigh_no_route: AtomicU64,
    /// Of those, still held when the forwarder stopped (freed then).
    pub held_at_exit: AtomicU64,
    /// Solicitations and announcements the slow path built and handed to the workers.
    pub originated: AtomicU64,
    /// Solicitations not built because the pool had no free mbuf.
    pub no_mbuf: AtomicU64,
    /// Packets of the slow path's own (solicitations, announcements, resolved packets) that
    /// found a worker's send ring full: freed.
    pub send_full: AtomicU64,
    /// Host routes for on-link neighbours the FIB refused (table full): their packets keep
    /// going through the slow path.
    pub host_route_failures: AtomicU64,
}

impl Default for SlowPathCounters {
    fn default() -> Self {
        let z = || AtomicU64::new(0);
        SlowPathCounters {
            answered: z(),
            ignored: z(),
            discards: std::array::from_fn(|_| z()),
            inject_full: z(),
            resolve_taken: z(),
            resolved_sent: z(),
            neigh_drops: std::array::from_fn(|_| z()),
            neigh_proto_mem: z(),
            neigh_no_route: z(),
            held_at_exit: z(),
            originated: z(),
            no_mbuf: z(),
            send_full: z(),
            host_route_failures: z(),
        }
    }
}

/// The neighbour table as the slow path last published it (every 100 ms).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NeighbourSnapshot {
    /// Every entry, by port and address.
    pub entries: Vec<NeighView>,
    /// The table's counters (`ip -s ntable`).
    pub table: NeighStats,
    /// Solicitations sent, announcements, learning.
    pub resolver: ResolverStats,
    /// Packets held now.
    pub held: usize,
    /// Host routes installed for on-link neighbours.
    pub host_routes: usize,
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
    resolve: Arc<MbufRing>,
    send: Arc<MbufRing>,
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

    /// Hands routed packets whose neighbour must be resolved to the slow path, each tagged
    /// ([`Mbuf::set_user_tag`]) with the next-hop id its route chose; returns how many it
    /// took (the rest stay: the ring was full).
    #[inline]
    pub fn resolve<const N: usize>(&self, packets: &mut Burst<N>) -> usize {
        self.resolve.enqueue(packets)
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

    /// Moves what the slow path sends itself (each with its out port's ethdev in `port`)
    /// into `sent`; returns how many.
    #[inline]
    pub fn take_sent<const N: usize>(&self, sent: &mut Burst<N>) -> usize {
        self.send.dequeue(sent)
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
    resolve: Arc<MbufRing>,
    send: Arc<MbufRing>,
}

/// How the slow path accounts for the packets it holds for resolution.
#[derive(Debug, Clone)]
pub struct NeighMemory {
    /// The accounts; the neighbour queue charges its protocol's (unless its class
    /// bypasses them).
    pub accounting: Arc<Accounting>,
    /// The slow path's own slot in the per-lcore batching.
    pub slot: LcoreSlot,
    /// The neighbour queue's group (`[accounting] neigh_queue_budget`).
    pub group: Arc<Group>,
    /// Its consumer class (`neigh_queue`).
    pub class: Arc<ConsumerClass>,
}

/// What the slow path needs besides its rings.
#[derive(Debug)]
pub struct SlowPathConfig {
    /// The ports' ethdev ids.
    pub ports: Arc<PortTable>,
    /// Their MACs, by [`PortIdx`]: the source of what the slow path sends out of them.
    pub macs: Vec<MacAddr>,
    /// The ports' own addresses (`ctl apply` may change them).
    pub live: Arc<LiveCell>,
    /// Where the slow path's own frames come from.
    pub pool: Arc<Pool>,
    /// The route table (l3fwd): next hops get their neighbours' MACs through it.
    pub fib: Option<Arc<Mutex<Fib>>>,
    /// The neighbour table's knobs.
    pub neigh: NeighParams,
    /// Static neighbours (routes with `via` and `via_mac`).
    pub statics: Vec<(NeighKey, MacAddr)>,
    /// Accounting of held packets, when `[accounting]` is on.
    pub memory: Option<NeighMemory>,
    /// Without accounting: the most bytes of held packets at once.
    pub held_budget: u64,
    /// Bytes a held packet counts: the mbuf, its private area and its data room.
    pub truesize: u32,
}

/// A running slow-path thread.
#[derive(Debug)]
pub struct SlowPath {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    counters: Arc<SlowPathCounters>,
    neighbours: Arc<Mutex<NeighbourSnapshot>>,
}

/// How long the thread sleeps when every ring was empty.
const IDLE_SLEEP: Duration = Duration::from_micros(50);

impl SlowPath {
    /// Creates the rings of the workers on `lcores` (on `socket`) and starts the thread.
    /// Returns the thread and each worker's link, in `lcores` order.
    ///
    /// # Errors
    /// [`SlowPathError`] when a ring cannot be created or the thread cannot be spawned.
    pub fn start(
        lcores: &[LcoreId],
        config: SlowPathConfig,
        socket: SocketId,
    ) -> Result<(SlowPath, Vec<SlowPathLink>), SlowPathError> {
        let mut links = Vec::with_capacity(lcores.len());
        let mut rings = Vec::with_capacity(lcores.len());
        for lcore in lcores {
            let ring = |dir: &str, size| MbufRing::create(&format!("slow_{dir}_{}", lcore.0), size, socket).map(Arc::new);
            let (punt, inject, returned) = (ring("punt", RING_SIZE)?, ring("inject", RING_SIZE)?, ring("ret", RETURNED_SIZE)?);
            let (resolve, send) = (ring("res", RESOLVE_SIZE)?, ring("send", RING_SIZE)?);
            rings.push(WorkerRings {
                punt: punt.clone(),
                inject: inject.clone(),
                returned: returned.clone(),
                resolve: resolve.clone(),
                send: send.clone(),
            });
            links.push(SlowPathLink { punt, inject, returned, resolve, send, ports: config.ports.clone() });
        }
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(SlowPathCounters::default());
        let neighbours = Arc::new(Mutex::new(NeighbourSnapshot::default()));
        let (s, c, n) = (stop.clone(), counters.clone(), neighbours.clone());
        let handle = std::thread::Builder::new().name("slowpath".into()).spawn(move || {
            let mut t = Thread::new(config, rings, c, n);
            t.run(&s);
        })?;
        Ok((SlowPath { stop, handle: Some(handle), counters, neighbours }, links))
    }

    /// The counters.
    pub fn counters(&self) -> &SlowPathCounters {
        &self.counters
    }

    /// The neighbour table as last published.
    pub fn neighbours(&self) -> NeighbourSnapshot {
        self.neighbours.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Stops and joins the thread; it frees what it held. Whatever is still in the rings is
    /// freed when the last reference to each ring (the thread's or a link's) is dropped.
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

/// A packet held for resolution: which worker handed it over, and what it is charged as.
struct Held {
    m: Mbuf,
    from: usize,
    proto: Proto,
}

/// The thread's state.
struct Thread {
    cfg: SlowPathConfig,
    rings: Vec<WorkerRings>,
    c: Arc<SlowPathCounters>,
    published: Arc<Mutex<NeighbourSnapshot>>,
    resolver: Resolver<Held>,
    /// Per protocol class, when accounting is on.
    consumers: Vec<Consumer>,
    /// Without accounting: bytes held now.
    held_bytes: u64,
    /// Neighbours resolved for an on-link route: they get a host route once usable.
    on_link: HashSet<NeighKey>,
    /// Host routes installed (origin `neighbour`).
    host_routes: HashSet<NeighKey>,
    epoch: Instant,
    locals: Arc<Vec<Option<Local>>>,
    /// Round-robin over the workers for the slow path's own frames.
    next_worker: usize,
    /// Per worker: what goes to its send ring at the end of the iteration.
    sends: Vec<Burst>,
    outputs: Vec<Output<Held>>,
}

impl Thread {
    fn new(
        cfg: SlowPathConfig,
        rings: Vec<WorkerRings>,
        c: Arc<SlowPathCounters>,
        published: Arc<Mutex<NeighbourSnapshot>>,
    ) -> Thread {
        let consumers = cfg.memory.as_ref().map_or_else(Vec::new, |m| {
            Proto::ALL.iter().map(|&p| Consumer::in_class(&m.accounting, p, m.group.clone(), &m.class)).collect()
        });
        let epoch = Instant::now();
        let seed = epoch.elapsed().as_nanos() as u64 ^ u64::from(std::process::id());
        let resolver = Resolver::new(cfg.neigh.clone(), seed, Duration::ZERO);
        let locals = cfg.live.with(|l| l.locals.clone());
        let sends = rings.iter().map(|_| Burst::new()).collect();
        Thread {
            cfg,
            rings,
            c,
            published,
            resolver,
            consumers,
            held_bytes: 0,
            on_link: HashSet::new(),
            host_routes: HashSet::new(),
            epoch,
            locals,
            next_worker: 0,
            sends,
            outputs: Vec::new(),
        }
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn run(&mut self, stop: &AtomicBool) {
        let now = self.now();
        let mut out = std::mem::take(&mut self.outputs);
        for (key, mac) in self.cfg.statics.clone() {
            self.resolver.add_static(key, mac, now, &self.locals, &mut out);
        }
        self.resolver.announce(&self.locals, &mut out);
        self.outputs = out;
        self.act();
        self.flush_sends();
        let (mut next_tick, mut next_publish) = (now, now);
        let mut requests: Burst = Burst::new();
        while !stop.load(Relaxed) {
            let mut busy = false;
            for k in 0..self.rings.len() {
                if self.rings[k].punt.dequeue(&mut requests) > 0 {
                    busy = true;
                    self.requests(k, &mut requests);
                }
                if self.rings[k].resolve.dequeue(&mut requests) > 0 {
                    busy = true;
                    self.resolve(k, &mut requests);
                }
            }
            let now = self.now();
            if now >= next_tick {
                next_tick = now + TICK;
                self.locals = self.cfg.live.with(|l| l.locals.clone());
                self.collect_used(now);
                let mut out = std::mem::take(&mut self.outputs);
                self.resolver.tick(now, &self.locals, &mut out);
                self.outputs = out;
                self.act();
                self.retire_host_routes();
            }
            self.flush_sends();
            if now >= next_publish {
                next_publish = now + PUBLISH;
                self.publish(now);
            }
            if !busy {
                std::thread::sleep(IDLE_SLEEP);
            }
        }
        // Shutdown: the table as it ends, for the final report; then what is still held
        // goes back, uncharged.
        self.publish(self.now());
        for h in self.resolver.clear() {
            self.uncharge(&h);
            self.c.held_at_exit.fetch_add(1, Relaxed);
        }
    }

    /// Answers, ignores or discards a burst of requests from worker `k`, learning from the
    /// valid ones.
    fn requests(&mut self, k: usize, requests: &mut Burst) {
        let (mut replies, mut returned): (Burst, Burst) = (Burst::new(), Burst::new());
        let now = self.now();
        let mut out = std::mem::take(&mut self.outputs);
        for mut m in requests.drain() {
            let port = self.cfg.ports.idx(PortId(m.port()));
            let local = port.and_then(|i| self.locals.get(i.index()).copied().flatten());
            let outcome = match local {
                Some(l) => local::answer(m.data(), &l),
                None => Err(Discard::Malformed),
            };
            let answered = match outcome {
                Ok(a) => {
                    if let (Some(learn), Some(p)) = (a.learn, port) {
                        self.resolver.learn(p, learn, now, &self.locals, &mut out);
                    }
                    match a.reply {
                        // The reply is written over the request (same mbuf, so the worker
                        // returns the request's charge when it sends it).
                        Some(bytes) => match m.set_data(&bytes) {
                            Ok(()) => true,
                            Err(_) => {
                                self.c.discards[Discard::Malformed.index()].fetch_add(1, Relaxed);
                                false
                            }
                        },
                        None => {
                            self.c.ignored.fetch_add(1, Relaxed);
                            false
                        }
                    }
                }
                Err(d) => {
                    self.c.discards[d.index()].fetch_add(1, Relaxed);
                    false
                }
            };
            // At most one burst of requests at a time, so both fit.
            let _ = if answered { replies.push(m) } else { returned.push(m) };
        }
        self.outputs = out;
        let r = &self.rings[k];
        let n = r.inject.enqueue(&mut replies);
        self.c.answered.fetch_add(n as u64, Relaxed);
        self.c.inject_full.fetch_add(replies.len() as u64, Relaxed);
        returned.move_from(&mut replies);
        // The returned ring holds more than the punt and inject rings together, so this
        // takes everything; anything left would be freed (and its charge lost).
        r.returned.enqueue(&mut returned);
        returned.clear();
        self.act();
    }

    /// Takes routed packets from worker `k` whose neighbour must be resolved: finds the
    /// neighbour (the route's gateway, or for an on-link route the packet's destination),
    /// charges the packet to the neighbour queue and hands it to the table.
    fn resolve(&mut self, k: usize, packets: &mut Burst) {
        self.c.resolve_taken.fetch_add(packets.len() as u64, Relaxed);
        let now = self.now();
        let mut keys: Vec<Option<(NeighKey, bool)>> = Vec::with_capacity(packets.len());
        if let Some(fib) = &self.cfg.fib {
            let fib = fib.lock().unwrap_or_else(PoisonError::into_inner);
            for m in packets.as_slice() {
                keys.push(fib.next_hop_key(m.user_tag()).and_then(|nh| neighbour_of(nh, m)));
            }
        }
        let mut out = std::mem::take(&mut self.outputs);
        for (i, m) in packets.drain().enumerate() {
            let Some((key, on_link)) = keys.get(i).copied().flatten() else {
                self.c.neigh_no_route.fetch_add(1, Relaxed);
                continue;
            };
            if on_link {
                self.on_link.insert(key);
            }
            let proto = parse_packet(m.data(), m.pkt_len()).map_or(Proto::Other, |p| p.proto);
            let Some(qlen) = self.charge(proto) else {
                self.c.neigh_proto_mem.fetch_add(1, Relaxed);
                continue;
            };
            self.resolver.resolve(key, Held { m, from: k, proto }, qlen, now, &self.locals, &mut out);
        }
        self.outputs = out;
        self.act();
    }

    /// Charges one held packet of `proto`; returns the queue limit to hold it under
    /// (`unres_qlen`, or `unres_qlen_under_pressure` when its protocol is under memory
    /// pressure), or `None` if the charge is refused.
    fn charge(&mut self, proto: Proto) -> Option<u32> {
        let p = &self.cfg.neigh;
        match &self.cfg.memory {
            Some(m) => {
                let c = &mut self.consumers[proto.index()];
                c.charge(m.slot, self.cfg.truesize).ok()?;
                Some(if c.under_pressure() { p.unres_qlen_under_pressure } else { p.unres_qlen })
            }
            None => {
                let t = u64::from(self.cfg.truesize);
                if self.held_bytes + t > self.cfg.held_budget {
                    return None;
                }
                self.held_bytes += t;
                Some(p.unres_qlen)
            }
        }
    }

    fn uncharge(&mut self, h: &Held) {
        match &self.cfg.memory {
            Some(m) => self.consumers[h.proto.index()].uncharge(m.slot, self.cfg.truesize),
            None => self.held_bytes = self.held_bytes.saturating_sub(u64::from(self.cfg.truesize)),
        }
    }

    /// Does what the resolver asked for.
    fn act(&mut self) {
        let mut outputs = std::mem::take(&mut self.outputs);
        // Neighbours the slow path sent to that the workers could use directly: a route may
        // have come since the MAC was published, or an on-link neighbour may lack its host
        // route; told once per batch.
        let mut sent_to: Vec<(NeighKey, MacAddr)> = Vec::new();
        for o in outputs.drain(..) {
            match o {
                Output::Frame { port, frame } => self.originate(port, &frame),
                Output::Send { key, port, mac, packet } => {
                    if !sent_to.iter().any(|(k, _)| *k == key) {
                        sent_to.push((key, mac));
                    }
                    self.uncharge(&packet);
                    let Held { mut m, from, .. } = packet;
                    let src = self.cfg.macs.get(port.index()).copied().unwrap_or_default();
                    if let Some(data) = m.data_mut() {
                        if let Ok(mut eth) = EthernetFrame::new_checked(data) {
                            eth.set_dst(mac);
                            eth.set_src(src);
                        }
                    }
                    m.set_port(self.cfg.ports.id(port).0);
                    self.c.resolved_sent.fetch_add(1, Relaxed);
                    self.queue_send(from, m);
                }
                Output::Drop { packet, reason } => {
                    self.uncharge(&packet);
                    self.c.neigh_drops[reason as usize].fetch_add(1, Relaxed);
                }
                Output::Publish { key, mac } => self.publish_neighbour(key, mac),
            }
        }
        self.outputs = outputs;
        let now = self.now();
        for (key, mac) in sent_to {
            if self.resolver.table().get(key, now).is_some_and(|v| v.state.usable() && v.mac == Some(mac)) {
                self.publish_neighbour(key, Some(mac));
            }
        }
    }

    /// A frame of the slow path's own, out of `port` (through the next worker in turn).
    fn originate(&mut self, port: PortIdx, frame: &[u8]) {
        let Ok(mut m) = Mbuf::alloc(&self.cfg.pool) else {
            self.c.no_mbuf.fetch_add(1, Relaxed);
            return;
        };
        if m.set_data(frame).is_err() {
            self.c.no_mbuf.fetch_add(1, Relaxed);
            return;
        }
        m.set_port(self.cfg.ports.id(port).0);
        self.c.originated.fetch_add(1, Relaxed);
        let k = self.next_worker % self.rings.len().max(1);
        self.next_worker = self.next_worker.wrapping_add(1);
        self.queue_send(k, m);
    }

    fn queue_send(&mut self, k: usize, m: Mbuf) {
        let Some(b) = self.sends.get_mut(k) else { return };
        if let Err(m) = b.push(m) {
            // A full burst goes now, then this one waits for the next.
            let n = self.rings[k].send.enqueue(b);
            self.c.send_full.fetch_add(b.len() as u64, Relaxed);
            let _ = n;
            b.clear();
            let _ = b.push(m);
        }
    }

    fn flush_sends(&mut self) {
        for (k, b) in self.sends.iter_mut().enumerate() {
            if b.is_empty() {
                continue;
            }
            self.rings[k].send.enqueue(b);
            self.c.send_full.fetch_add(b.len() as u64, Relaxed);
            b.clear();
        }
    }

    /// Tells the workers neighbour `key`'s MAC (or that there is none to use): the next hop
    /// to it as a gateway, if a route has one; for an on-link neighbour, a host route first.
    fn publish_neighbour(&mut self, key: NeighKey, mac: Option<MacAddr>) {
        let Some(fib) = &self.cfg.fib else { return };
        let mut fib = fib.lock().unwrap_or_else(PoisonError::into_inner);
        if mac.is_some() && self.on_link.contains(&key) && !self.host_routes.contains(&key) {
            let prefix = host_prefix(key.addr);
            // A route of another origin for exactly this host wins.
            if fib.get(&prefix).is_none() {
                let route = Route {
                    prefix,
                    next_hop: NextHopKey { port: key.port, via: Via::Gateway(key.addr) }.into(),
                    origin: Origin::Neighbour,
                };
                match fib.apply(&[RouteChange::Set(route)]) {
                    Ok(_) => {
                        self.host_routes.insert(key);
                    }
                    Err(_) => {
                        self.c.host_route_failures.fetch_add(1, Relaxed);
                    }
                }
            }
        }
        fib.set_neighbour(key.port, key.addr, mac);
    }

    /// Deletes the host routes of on-link neighbours whose entries are gone (collected);
    /// their traffic goes back to the on-link route, and so to resolution.
    fn retire_host_routes(&mut self) {
        let now = self.now();
        let gone: Vec<NeighKey> =
            self.host_routes.iter().filter(|k| self.resolver.table().get(**k, now).is_none()).copied().collect();
        let gone_on_link: Vec<NeighKey> =
            self.on_link.iter().filter(|k| self.resolver.table().get(**k, now).is_none()).copied().collect();
        for k in gone_on_link {
            self.on_link.remove(&k);
        }
        if gone.is_empty() {
            return;
        }
        let Some(fib) = &self.cfg.fib else { return };
        let mut fib = fib.lock().unwrap_or_else(PoisonError::into_inner);
        for k in gone {
            self.host_routes.remove(&k);
            let prefix = host_prefix(k.addr);
            if fib.get(&prefix).is_some_and(|r| r.origin == Origin::Neighbour) {
                let _ = fib.apply(&[RouteChange::Delete(prefix)]);
            }
        }
    }

    /// Collects the workers' "used" marks of resolved next hops into the table.
    fn collect_used(&mut self, now: Duration) {
        let Some(fib) = &self.cfg.fib else { return };
        let fib = fib.lock().unwrap_or_else(PoisonError::into_inner);
        let keys: Vec<NeighKey> = self.resolver.table().entries(now).filter(|v| v.state.usable()).map(|v| v.key).collect();
        for key in keys {
            if fib.take_used(key.port, key.addr) {
                self.resolver.touch(key, now);
            }
        }
    }

    fn publish(&self, now: Duration) {
        let (resolver, table) = self.resolver.stats();
        let snap = NeighbourSnapshot {
            entries: self.resolver.entries(now),
            table,
            resolver,
            held: self.resolver.table().held(),
            host_routes: self.host_routes.len(),
        };
        *self.published.lock().unwrap_or_else(PoisonError::into_inner) = snap;
    }
}

/// The neighbour a packet routed to next hop `nh` needs: the gateway, or for an on-link
/// next hop the packet's own destination (then `true`). `None` for a next hop that is not
/// resolved (a static one: the route changed meanwhile) or a packet that is not IP.
fn neighbour_of(nh: NextHopKey, m: &Mbuf) -> Option<(NeighKey, bool)> {
    match nh.via {
        Via::Gateway(addr) => Some((NeighKey { port: nh.port, addr }, false)),
        Via::Connected => {
            let p = parse_packet(m.data(), m.pkt_len()).ok()?;
            let l3 = m.data().get(usize::from(p.l3_offset)..)?;
            let addr = match p.l3 {
                L3::Ipv4 => IpAddr::V4(Ipv4Packet::new_checked_within(l3, usize::MAX).ok()?.dst_addr()),
                L3::Ipv6 => IpAddr::V6(Ipv6Packet::new_checked_within(l3, usize::MAX).ok()?.dst_addr()),
                _ => return None,
            };
            Some((NeighKey { port: nh.port, addr }, true))
        }
        Via::Mac(_) | Via::Static(..) => None,
    }
}

/// The host route of `addr`: /32 or /128.
fn host_prefix(addr: IpAddr) -> IpNet {
    IpNet::from(addr)
}
