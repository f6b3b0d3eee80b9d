//! TX backlogs: packets a TX queue refused, held per port until it takes them, each charged
//! to its protocol's memory account (unless the backlog bypasses it) and to its port's
//! group, as a socket charges the skbs it queues (`sk_mem_charge`, `net/core/sock.c`).

use std::collections::VecDeque;
use std::sync::Arc;

use mempool::accounting::{Accounting, Consumer, ConsumerClass, Group, LcoreSlot};

use crate::forward::DropReason;
use crate::net::Proto;

use super::queues::{Packet, PacketBurst};

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
    /// The TX backlogs' consumer class (it says whether they bypass the protocol accounts).
    pub backlog_class: Arc<ConsumerClass>,
    /// The slow path's consumer class (requests punted to it).
    pub slow_class: Arc<ConsumerClass>,
    /// Limits and bypass choices.
    pub conf: crate::config::AccountingConf,
    /// Bytes charged per packet: the mbuf, its private area and its data room.
    pub truesize: u32,
}

impl WorkerMemory {
    /// One consumer per protocol class, charging `group`, of `class`.
    pub(super) fn consumers(&self, group: &Arc<Group>, class: &Arc<ConsumerClass>) -> Vec<Consumer> {
        Proto::ALL.iter().map(|&p| Consumer::in_class(&self.accounting, p, group.clone(), class)).collect()
    }
}

/// A packet waiting in a backlog, with the class it was charged to.
struct Held<P> {
    p: P,
    proto: Proto,
}

/// One worker's TX backlogs, one per port.
pub(super) struct Backlogs<P> {
    slot: LcoreSlot,
    /// Per port, per protocol class.
    consumers: Vec<Vec<Consumer>>,
    /// Per port, oldest first.
    held: Vec<VecDeque<Held<P>>>,
    limit: usize,
    limit_under_pressure: usize,
    truesize: u32,
}

impl<P: Packet> Backlogs<P> {
    /// Empty backlogs for `ports` ports.
    /// Packets held per port, and under memory pressure.
    pub(super) fn set_limits(&mut self, limit: usize, under_pressure: usize) {
        (self.limit, self.limit_under_pressure) = (limit, under_pressure);
    }

    pub(super) fn new(m: &WorkerMemory, ports: usize) -> Self {
        Backlogs {
            slot: m.slot,
            consumers: m.port_groups.iter().map(|g| m.consumers(g, &m.backlog_class)).collect(),
            held: (0..ports).map(|_| VecDeque::with_capacity(m.conf.backlog as usize)).collect(),
            limit: m.conf.backlog as usize,
            limit_under_pressure: m.conf.backlog_under_pressure as usize,
            truesize: m.truesize,
        }
    }

    /// Whether the backlog of `port` holds as many packets as it may (the limit not under
    /// pressure: nothing more can be held).
    #[inline]
    pub(super) fn is_full(&self, port: usize) -> bool {
        self.held[port].len() >= self.limit
    }

    /// Whether packets wait for port `port`.
    #[inline]
    pub(super) fn is_held(&self, port: usize) -> bool {
        !self.held[port].is_empty()
    }

    /// Queues `p` behind what waits for `port`, charging its truesize. A full backlog
    /// (shorter under memory pressure) refuses it as `tx_full`, a refused charge as
    /// `proto_mem`; the packet is then dropped (freed) here.
    pub(super) fn hold(&mut self, port: usize, p: P) -> Result<(), DropReason> {
        let len = self.held[port].len();
        if len >= self.limit {
            return Err(DropReason::TxFull);
        }
        let proto = p.proto();
        let consumer = &mut self.consumers[port][proto.index()];
        if len >= self.limit_under_pressure && consumer.under_pressure() {
            return Err(DropReason::TxFull);
        }
        consumer.charge(self.slot, self.truesize).map_err(|_| DropReason::ProtoMem)?;
        self.held[port].push_back(Held { p, proto });
        Ok(())
    }

    /// Moves the oldest packets waiting for `port`, as many as fit, into `out` (still
    /// charged) and their classes into `protos`; returns how many.
    pub(super) fn take<B: PacketBurst<Pkt = P>>(&mut self, port: usize, out: &mut B, protos: &mut [Proto]) -> usize {
        let mut n = 0;
        while n < protos.len() {
            let Some(h) = self.held[port].pop_front() else { break };
            protos[n] = h.proto;
            if let Err(p) = out.push(h.p) {
                self.held[port].push_front(Held { p, proto: h.proto });
                break;
            }
            n += 1;
        }
        n
    }

    /// Uncharges packets of `port` that [`Backlogs::take`] gave out and the NIC took.
    pub(super) fn sent(&mut self, port: usize, protos: &[Proto]) {
        for p in protos {
            self.consumers[port][p.index()].uncharge(self.slot, self.truesize);
        }
    }

    /// Puts the packets the NIC did not take (the rest of `out`, whose classes are the
    /// last `out.len()` of `protos`) back in front, in order; they stay charged.
    pub(super) fn put_back<B: PacketBurst<Pkt = P>>(&mut self, port: usize, out: &mut B, protos: &[Proto]) {
        let mut i = protos.len();
        while let Some(p) = out.pop() {
            i -= 1;
            self.held[port].push_front(Held { p, proto: protos[i] });
        }
    }

    /// Takes every waiting packet out (uncharged), for the caller to free and count.
    pub(super) fn drain_all(&mut self, mut f: impl FnMut(P)) {
        for (port, held) in self.held.iter_mut().enumerate() {
            for h in held.drain(..) {
                self.consumers[port][h.proto.index()].uncharge(self.slot, self.truesize);
                f(h.p);
            }
        }
    }
}
