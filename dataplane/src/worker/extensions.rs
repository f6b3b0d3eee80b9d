//! The extension steps: a trace on one received packet in `trace_every`, flow metadata on
//! every packet, and the mirror, which clones matching forwarded packets out of its port.
//! The hand-off before TX (traced latency, release) is the queues' ([`super::queues`]).

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

/// Which packets of an io burst got extensions.
pub(super) enum Tagged {
    None,
    /// Bit `i` set: packet `i`.
    Some(u32),
    All,
}

/// The extension step of one worker.
pub(super) struct Extensions {
    x: WorkerExts,
    /// Packets until the next traced one.
    trace_in: u32,
    lcore: LcoreId,
}

impl Extensions {
    pub(super) fn new(x: WorkerExts, lcore: LcoreId) -> Self {
        Extensions { x, trace_in: 0, lcore }
    }

    /// Changes the mirror (`ctl apply` of `[mirror]`).
    pub(super) fn set_mirror(&mut self, mirror: Option<(PortIdx, Option<Proto>)>) {
        self.x.mirror = mirror;
    }

    /// The trace of a packet received from `(port, queue)` by the burst at `rx_tsc` (0: not
    /// timed, then the round's start).
    fn trace(&self, (port, queue): (u16, u16), rx_tsc: u64, round_start: u64) -> Trace {
        Trace { rx_tsc: if rx_tsc != 0 { rx_tsc } else { round_start }, lcore: self.lcore.0 as u16, port, queue }
    }

    /// Attaches extensions to a whole io burst, and says which packets may carry one:
    /// without flow metadata only the sampled packets are touched, and only they need the
    /// hand-off.
    pub(super) fn attach_burst(&mut self, from: (u16, u16), rx: &mut Burst, rx_tsc: u64, w: &mut Worker<EalQueues>) -> Tagged {
        let x = self.x;
        if x.flow || x.mirror.is_some() {
            for m in rx.as_mut_slice() {
                self.attach(from, m, rx_tsc, w);
            }
            return Tagged::All;
        }
        if x.trace_every == 0 {
            return Tagged::None;
        }
        let n = rx.len();
        let mut mask = 0u32;
        let mut i = self.trace_in as usize;
        let t = self.trace(from, rx_tsc, w.now);
        while i < n {
            if ext::set(&mut rx.as_mut_slice()[i], x.ids.trace, t).is_err() {
                w.totals[Counter::ExtFailures] += 1;
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

    /// The hand-off of the packets of an io burst that [`Extensions::attach_burst`] tagged.
    pub(super) fn hand_off(&self, tagged: Tagged, rx: &mut Burst, w: &mut Worker<EalQueues>) {
        use super::queues::Queues;
        match tagged {
            Tagged::None => {}
            Tagged::All => w.io.hand_off(rx, &mut w.hist.latency_cycles),
            Tagged::Some(mask) => {
                let now = w.io.now();
                let mut bits = mask;
                while bits != 0 {
                    let i = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    let m = &mut rx.as_mut_slice()[i];
                    if let Some(t) = ext::get(m, self.x.ids.trace) {
                        w.hist.latency_cycles.saturating_record(now.wrapping_sub(t.rx_tsc).max(1));
                    }
                    ext::release(m);
                }
            }
        }
    }

    /// Attaches the configured extensions to a packet just received: a trace on one
    /// packet in `trace_every`, flow metadata on every packet if asked for (or for the
    /// mirror). A failure (no free area) is counted and the packet goes on without.
    pub(super) fn attach(&mut self, from: (u16, u16), m: &mut Mbuf, rx_tsc: u64, w: &mut Worker<EalQueues>) {
        let x = self.x;
        if x.trace_every > 0 {
            if self.trace_in == 0 {
                self.trace_in = x.trace_every - 1;
                if ext::set(m, x.ids.trace, self.trace(from, rx_tsc, w.now)).is_err() {
                    w.totals[Counter::ExtFailures] += 1;
                }
            } else {
                self.trace_in -= 1;
            }
        }
        if x.flow || x.mirror.is_some() {
            let meta = match parse_packet(m.data(), m.pkt_len()) {
                Ok(p) => FlowMeta::from_parsed(m.data(), &p),
                Err(_) => FlowMeta::default(),
            };
            if ext::set(m, x.ids.flow, meta).is_err() {
                w.totals[Counter::ExtFailures] += 1;
            }
        }
    }

    /// Sends a clone of a forwarded packet out of the mirror port, if it matches. The
    /// clone shares the packet's data and extension area; marking it `mirrored` copies the
    /// area first (copy-on-write), so the original's metadata is untouched.
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
}
