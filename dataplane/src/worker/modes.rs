//! The forwarder's [`Stage`]: what each mode does with a received burst, with the
//! extension, mirror and slow-path steps where they are configured.
//!
//! - io: the whole burst goes to the lane's pair port as it is (testpmd's io engine).
//! - macswap, l2fwd without extensions: each packet is rewritten in place, the burst
//!   compacted over the drops and sent whole.
//! - otherwise (l3fwd, or extensions on): packet by packet into the out ports' TX buffers.

use std::sync::Arc;

use mempool::{Burst, Mbuf, Pool};

use crate::forward::{self, Action, DropReason};
use crate::port::PortIdx;

use super::extensions::Extensions;
use super::poll::Stage;
use super::queues::EalQueues;
use super::slow::SlowStep;
use super::tx::Worker;
use super::Forwarding;

/// What the stage knows of a lane.
#[derive(Debug, Clone, Copy)]
pub(super) struct LaneInfo {
    /// The RX port (config index).
    pub port: PortIdx,
    /// Its ethdev id and the RX queue (for traces and punted requests).
    pub from: (u16, u16),
    /// Pair modes: the out port.
    pub out: Option<PortIdx>,
    /// Drop received mbuf chains whose lengths disagree.
    pub check_chains: bool,
}

/// The forwarder's steps.
pub(super) struct Pipeline {
    pub lanes: Vec<LaneInfo>,
    pub forwarding: Forwarding,
    /// Where copies come from when a shared packet must be written or mirrored.
    pub pool: Arc<Pool>,
    pub exts: Option<Extensions>,
    pub slow: Option<SlowStep>,
}

impl Stage<EalQueues> for Pipeline {
    fn start_round(&mut self, w: &mut Worker<EalQueues>) {
        if let Some(s) = &mut self.slow {
            s.take_replies(w);
        }
    }

    #[inline]
    fn forward(&mut self, lane: usize, rx: &mut Burst, rx_tsc: u64, w: &mut Worker<EalQueues>) {
        let info = self.lanes[lane];
        if info.check_chains {
            drop_bad_chains(rx, w);
        }
        match &self.forwarding {
            Forwarding::Io => {
                // A whole burst has one destination: hand it to the NIC as it is, as
                // testpmd's io engine does, with no copy into a TX buffer.
                let out = info.out.expect("pair modes have an out port");
                if let Some(x) = &mut self.exts {
                    let tagged = x.attach_burst(info.from, rx, rx_tsc, w);
                    x.hand_off(tagged, rx, w);
                }
                w.send(out, rx, rx_tsc);
            }
            Forwarding::Macswap | Forwarding::L2fwd(_) if self.exts.is_none() => {
                // Pair modes send the whole burst to one port too: rewrite it in place,
                // drop what cannot be rewritten, and hand the rest over at once.
                let out = info.out.expect("pair modes have an out port");
                let (forwarding, pool, totals) = (&self.forwarding, &self.pool, &mut w.totals);
                rx.retain(
                    |m| {
                        let action = match m.unshare(pool) {
                            Ok(data) => decide(forwarding, data, info.port, Some(out)),
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
                w.send(out, rx, rx_tsc);
            }
            Forwarding::Macswap | Forwarding::L2fwd(_) | Forwarding::L3fwd(_) => {
                for mut m in rx.drain() {
                    if let Some(x) = &mut self.exts {
                        x.attach(info.from, &mut m, rx_tsc, w);
                    }
                    let action = match m.unshare(&self.pool) {
                        Err(_) => Action::Drop(DropReason::NoBufForCopy),
                        Ok(data) => decide(&self.forwarding, data, info.port, info.out),
                    };
                    match action {
                        Action::Tx(p) => {
                            if let Some(x) = &self.exts {
                                x.mirror(&m, rx_tsc, &self.pool, w);
                            }
                            w.enqueue(p, m, rx_tsc)
                        }
                        Action::Drop(r) => {
                            w.totals[r] += 1;
                            drop(m);
                        }
                        Action::Punt => match &mut self.slow {
                            Some(s) => {
                                // The slow path answers out of the input port: make sure
                                // the mbuf says which one (not every PMD sets it).
                                m.set_port(info.from.0);
                                s.punt(m, w)
                            }
                            None => w.totals[DropReason::LocalUnhandled] += 1,
                        },
                    }
                }
                if let Some(s) = &mut self.slow {
                    s.flush(w);
                }
            }
        }
    }
}

/// Drops, counted as `bad_mbuf_chain`, every packet of the RX burst whose mbuf chain's
/// lengths disagree, before any mode or TX queue looks at it.
#[inline]
fn drop_bad_chains(rx: &mut Burst, w: &mut Worker<EalQueues>) {
    if rx.as_slice().iter().all(Mbuf::chain_is_consistent) {
        return;
    }
    let totals = &mut w.totals;
    rx.retain(
        |m| m.chain_is_consistent(),
        |m| {
            totals[DropReason::BadMbufChain] += 1;
            drop(m)
        },
    );
}

/// The per-packet decision of the modes that look at packets.
#[inline(always)]
fn decide(forwarding: &Forwarding, data: &mut [u8], in_port: PortIdx, out: Option<PortIdx>) -> Action {
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
        Forwarding::L3fwd(t) => forward::l3fwd(data, t.as_ref(), &t.next_hops, t.locals[in_port.index()].as_ref()),
    }
}
