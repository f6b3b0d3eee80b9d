//! The extension steps, a burst at a time: a trace on one received packet in
//! `trace_every`, flow metadata on every packet, and the mirror, which clones matching
//! forwarded packets out of its port. The areas a burst needs come from their pool in one
//! bulk get (`ext::AreaBatch`); the hand-off before TX (traced latency, release in one bulk
//! put) is the queues' ([`super::queues`]), told by a mask which packets carry any.

use mempool::{ext, Burst, Mbuf, Pool};

use crate::eal::LcoreId;
use crate::exts::{FlowMeta, PacketExts, Trace};
use crate::forward::DropReason;
use crate::net::{parse_packet, Proto};
use crate::port::PortIdx;
use crate::stats::Counter;

use super::queues::EalQueues;
use super::tx::Worker;

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

/// The extension step of one burst: the areas at hand for it and what each packet gets.
pub(super) struct BurstExts<'a> {
    batch: &'a mut ext::AreaBatch,
    ids: PacketExts,
    /// A bit for each packet that gets a trace.
    traced: u32,
    trace: Trace,
    /// Whether every packet gets flow metadata.
    pub flow: bool,
    /// A bit for each packet that carries an extension.
    carried: u32,
    failures: u64,
}

impl BurstExts<'_> {
    /// Attaches packet `i`'s flow metadata (`meta()`) if the step gives packets flow
    /// metadata. A packet left without (no free area) goes on.
    #[inline]
    pub(super) fn attach_flow(&mut self, i: usize, m: &mut Mbuf, meta: impl FnOnce() -> FlowMeta) {
        if !self.flow {
            return;
        }
        match self.batch.set(m, self.ids.flow, meta()) {
            Ok(()) => self.carried |= 1 << i,
            Err(_) => self.failures += 1,
        }
    }

    /// Whether the step does anything to packets of this burst.
    #[inline]
    pub(super) fn any(&self) -> bool {
        self.flow || self.traced != 0
    }

    /// Attaches the traces to the sampled packets of `rx` among `kept` (the ones that go
    /// on), counts the failures, and returns the mask of the packets that carry an
    /// extension. The areas not given out stay at hand for the next burst.
    #[inline]
    pub(super) fn finish(mut self, rx: &mut Burst, kept: u32, w: &mut Worker<EalQueues>) -> u32 {
        let traced = self.traced & kept;
        if traced != 0 {
            let failed = self.batch.set_each(rx.as_mut_slice(), traced, self.ids.trace, self.trace);
            self.carried |= traced & !failed;
            self.failures += u64::from(failed.count_ones());
        }
        w.totals[Counter::ExtFailures] += self.failures;
        self.carried
    }
}

/// The extension step of one worker.
pub(super) struct Extensions {
    x: WorkerExts,
    /// Packets until the next traced one.
    trace_in: u32,
    lcore: LcoreId,
    /// Areas at hand, taken from their pool 32 at a time (returned when the worker ends).
    batch: ext::AreaBatch,
}

impl Extensions {
    pub(super) fn new(x: WorkerExts, lcore: LcoreId) -> Self {
        Extensions { x, trace_in: 0, lcore, batch: ext::AreaBatch::default() }
    }

    /// Changes the mirror (`ctl apply` of `[mirror]`).
    pub(super) fn set_mirror(&mut self, mirror: Option<(PortIdx, Option<Proto>)>) {
        self.x.mirror = mirror;
    }

    /// Whether packets get flow metadata (asked for, or needed by the mirror).
    #[inline]
    pub(super) fn flow(&self) -> bool {
        self.x.flow || self.x.mirror.is_some()
    }

    /// Which of the next `n` received packets get a trace: one in `trace_every`, counted
    /// across bursts.
    #[inline]
    fn sample(&mut self, n: usize) -> u32 {
        let every = self.x.trace_every as usize;
        if every == 0 {
            return 0;
        }
        let mut mask = 0u32;
        let mut i = self.trace_in as usize;
        while i < n {
            mask |= 1 << i;
            i += every;
        }
        self.trace_in = (i - n) as u32;
        mask
    }

    /// Starts the extension step for a burst of `n` packets received from `from` = (port
    /// id, queue) at `rx_tsc` (0 if not timed; `now` stands in): samples the packets that
    /// get a trace and makes sure the areas the burst needs are at hand (one bulk get when
    /// they are not).
    #[inline]
    pub(super) fn begin(&mut self, from: (u16, u16), n: usize, rx_tsc: u64, now: u64) -> BurstExts<'_> {
        let traced = self.sample(n);
        let flow = self.flow();
        let areas = if flow { n } else { traced.count_ones() as usize };
        self.batch.refill(areas);
        BurstExts {
            batch: &mut self.batch,
            ids: self.x.ids,
            traced,
            trace: Trace {
                rx_tsc: if rx_tsc != 0 { rx_tsc } else { now },
                lcore: self.lcore.0 as u16,
                port: from.0,
                queue: from.1,
            },
            flow,
            carried: 0,
            failures: 0,
        }
    }

    /// [`Extensions::begin`], then every packet of `rx`, whose flow metadata is `meta(m)`:
    /// for a burst that is forwarded whole. Returns the mask of the packets that carry an
    /// extension now (failures are counted).
    #[inline]
    pub(super) fn attach_all(
        &mut self,
        from: (u16, u16),
        rx: &mut Burst,
        rx_tsc: u64,
        w: &mut Worker<EalQueues>,
        meta: impl Fn(&Mbuf) -> FlowMeta,
    ) -> u32 {
        let mut b = self.begin(from, rx.len(), rx_tsc, w.now);
        if b.flow {
            for (i, m) in rx.as_mut_slice().iter_mut().enumerate() {
                let v = meta(m);
                b.attach_flow(i, m, || v);
            }
        }
        b.finish(rx, u32::MAX, w)
    }

    /// Flow metadata of a packet not parsed yet.
    #[inline]
    pub(super) fn meta_of(m: &Mbuf) -> FlowMeta {
        match parse_packet(m.data(), m.pkt_len()) {
            Ok(p) => FlowMeta::from_parsed(m.data(), &p, m.rss_hash()),
            Err(_) => FlowMeta::default(),
        }
    }

    /// Sends a clone of a forwarded packet out of the mirror port, if there is one and the
    /// packet matches. The clone shares the packet's data and extension area; marking it
    /// `mirrored` copies the area first (copy-on-write), so the original's metadata is
    /// untouched.
    #[inline]
    pub(super) fn mirror(&self, m: &Mbuf, rx_tsc: u64, pool: &Pool, w: &mut Worker<EalQueues>) {
        let WorkerExts { ids, mirror: Some((port, proto)), .. } = self.x else { return };
        let Some(meta) = ext::get(m, ids.flow) else { return };
        if proto.is_some_and(|p| meta.class != p) {
            return;
        }
        match m.clone_in(pool) {
            Ok(mut copy) => {
                match ext::get_mut(&mut copy, ids.flow) {
                    Ok(Some(f)) => f.mirrored = true,
                    _ => w.totals[Counter::ExtFailures] += 1,
                }
                w.totals[Counter::Mirrored] += 1;
                w.enqueue(port, copy, rx_tsc);
            }
            Err(_) => w.totals[DropReason::NoBufForCopy] += 1,
        }
    }

    /// Whether a mirror is configured.
    #[inline]
    pub(super) fn mirrors(&self) -> bool {
        self.x.mirror.is_some()
    }
}
