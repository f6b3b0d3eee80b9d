//! The hand-off to the slow path: requests to the forwarder itself go out over the
//! worker's punt ring, one enqueue per RX burst; its replies come back and leave by the
//! port their request came in on; what it could not answer comes back to be freed.
//! Routed packets whose next hop's neighbour is not resolved go over the resolve ring; the
//! slow path holds them and sends them (as its own solicitations) back over the send ring. With
//! accounting, a request is charged to the slow path's consumer from punt until it comes
//! back (that consumer bypasses the protocol accounts by default: control traffic is never
//! starved by data-plane pressure).

use mempool::accounting::{Consumer, LcoreSlot};
use mempool::{Burst, Mbuf};

use crate::forward::DropReason;
use crate::slowpath::SlowPathLink;
use crate::stats::Counter;

use super::backlog::WorkerMemory;
use super::queues::{EalQueues, Packet};
use super::tx::Worker;

/// The charges of requests held by the slow path.
struct PuntMemory {
    slot: LcoreSlot,
    /// Per protocol class.
    consumers: Vec<Consumer>,
    truesize: u32,
}

/// One worker's end of the slow path.
pub(super) struct SlowStep {
    link: SlowPathLink,
    /// Requests from the current RX burst, waiting to be handed over.
    punted: Burst,
    /// Routed packets of the current RX burst whose next hop's neighbour is not resolved.
    resolving: Burst,
    memory: Option<PuntMemory>,
}

impl SlowStep {
    pub(super) fn new(link: SlowPathLink, memory: Option<&WorkerMemory>) -> Self {
        let memory = memory.map(|m| PuntMemory {
            slot: m.slot,
            consumers: m.consumers(&m.slow_group, &m.slow_class),
            truesize: m.truesize,
        });
        SlowStep { link, punted: Burst::new(), resolving: Burst::new(), memory }
    }

    /// Collects a request for the slow path, charged to its consumer; a refused charge
    /// drops it as `proto_mem`.
    pub(super) fn punt(&mut self, m: Mbuf, w: &mut Worker<EalQueues>) {
        if let Some(mem) = &mut self.memory {
            if mem.consumers[m.proto().index()].charge(mem.slot, mem.truesize).is_err() {
                w.totals[DropReason::ProtoMem] += 1;
                return;
            }
        }
        // The burst being forwarded is at most MAX_BURST packets, so this never fails.
        let _ = self.punted.push(m);
    }

    /// Collects a routed packet whose next hop's neighbour the slow path must resolve. It is
    /// not charged here: the slow path charges it to the neighbour queue when it holds it.
    #[inline]
    pub(super) fn resolve(&mut self, m: Mbuf, _w: &mut Worker<EalQueues>) {
        // The burst being forwarded is at most MAX_BURST packets, so this never fails.
        let _ = self.resolving.push(m);
    }

    /// Hands the requests and the packets to resolve collected from one RX burst to the
    /// slow path, one enqueue each; what its rings refuse is dropped as `punt_full`. Both
    /// count as `punted`; the second also as `resolving`.
    pub(super) fn flush(&mut self, w: &mut Worker<EalQueues>) {
        if !self.resolving.is_empty() {
            let n = self.link.resolve(&mut self.resolving);
            w.totals[Counter::Punted] += n as u64;
            w.totals[Counter::Resolving] += n as u64;
            w.totals[DropReason::PuntFull] += self.resolving.len() as u64;
            self.resolving.clear();
        }
        if self.punted.is_empty() {
            return;
        }
        let n = self.link.punt(&mut self.punted);
        w.totals[Counter::Punted] += n as u64;
        w.totals[DropReason::PuntFull] += self.punted.len() as u64;
        let mut left = std::mem::take(&mut self.punted);
        for m in left.drain() {
            self.unpunt(&m);
        }
        self.punted = left;
    }

    /// Moves the slow path's replies into the TX buffers of the ports they leave by, and
    /// frees what it handed back unanswered (counted when punted, so not a drop); both
    /// return their charge.
    pub(super) fn take_replies(&mut self, w: &mut Worker<EalQueues>) {
        let mut replies: Burst = Burst::new();
        let mut returned: Burst = Burst::new();
        // What the slow path sends itself (solicitations, announcements, packets that
        // waited for their neighbour): uncharged here, counted injected.
        self.link.take_sent(&mut replies);
        for m in replies.drain() {
            match self.link.out_port(&m) {
                Some(p) => {
                    w.totals[Counter::Injected] += 1;
                    w.enqueue(p, m, 0);
                }
                None => w.totals[DropReason::LocalUnhandled] += 1,
            }
        }
        self.link.take_replies(&mut replies);
        self.link.take_returned(&mut returned);
        for m in returned.drain() {
            self.unpunt(&m);
        }
        for m in replies.drain() {
            self.unpunt(&m);
            match self.link.out_port(&m) {
                Some(p) => {
                    w.totals[Counter::Injected] += 1;
                    w.enqueue(p, m, 0);
                }
                // The slow path answers only requests from a port in the table.
                None => w.totals[DropReason::LocalUnhandled] += 1,
            }
        }
    }

    /// Returns the charge of a request that came back (as its reply, or unanswered) or
    /// never left.
    fn unpunt(&mut self, m: &Mbuf) {
        if let Some(mem) = &mut self.memory {
            mem.consumers[m.proto().index()].uncharge(mem.slot, mem.truesize);
        }
    }
}
