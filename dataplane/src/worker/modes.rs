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
use crate::rcu::QsbrReader;

use super::extensions::Extensions;
use super::poll::Stage;
use super::queues::EalQueues;
use super::slow::SlowStep;
use super::tx::Worker;
use super::{Dest, Rewrite};

/// What the stage knows of a lane.
#[derive(Debug, Clone)]
pub(super) struct LaneInfo {
    /// Its ethdev id and the RX queue (for traces and punted requests).
    pub from: (u16, u16),
    /// Its port's config index.
    pub port: crate::port::PortIdx,
    /// Where its packets go.
    pub dest: Dest,
    /// Drop received mbuf chains whose lengths disagree.
    pub check_chains: bool,
}

/// The forwarder's steps.
pub(super) struct Pipeline {
    pub lanes: Vec<LaneInfo>,
    /// Where copies come from when a shared packet must be written or mirrored.
    pub pool: Arc<Pool>,
    pub exts: Option<Extensions>,
    pub slow: Option<SlowStep>,
    /// This worker's RCU reader: route lookups borrow it.
    pub rcu: QsbrReader,
}

impl Stage<EalQueues> for Pipeline {
    fn start_round(&mut self, w: &mut Worker<EalQueues>) {
        if let Some(s) = &mut self.slow {
            s.take_replies(w);
        }
    }

    #[inline]
    fn forward(&mut self, lane: usize, rx: &mut Burst, rx_tsc: u64, w: &mut Worker<EalQueues>) {
        let Pipeline { lanes, pool, exts, slow, rcu } = self;
        let info = &lanes[lane];
        if info.check_chains {
            drop_bad_chains(rx, w);
        }
        match (&info.dest, exts) {
            (&Dest::Pair { out, rewrite: Rewrite::None }, exts) => {
                // A whole burst has one destination: hand it to the NIC as it is, as
                // testpmd's io engine does, with no copy into a TX buffer.
                if let Some(x) = exts {
                    let tagged = x.attach_burst(info.from, rx, rx_tsc, w);
                    x.hand_off(tagged, rx, w);
                }
                w.send(out, rx, rx_tsc);
            }
            (&Dest::Pair { out, rewrite }, None) => {
                // Pair modes send the whole burst to one port too: rewrite it in place,
                // drop what cannot be rewritten, and hand the rest over at once.
                let totals = &mut w.totals;
                rx.retain(
                    |m| match m.unshare(pool).map_err(|_| DropReason::NoBufForCopy).and_then(|d| apply(rewrite, d)) {
                        Ok(()) => true,
                        Err(r) => {
                            totals[r] += 1;
                            false
                        }
                    },
                    drop,
                );
                w.send(out, rx, rx_tsc);
            }
            (&Dest::Pair { out, rewrite }, Some(x)) => {
                for mut m in rx.drain() {
                    x.attach(info.from, &mut m, rx_tsc, w);
                    match m.unshare(pool).map_err(|_| DropReason::NoBufForCopy).and_then(|d| apply(rewrite, d)) {
                        Ok(()) => {
                            x.mirror(&m, rx_tsc, pool, w);
                            w.enqueue(out, m, rx_tsc);
                        }
                        Err(r) => w.totals[r] += 1,
                    }
                }
            }
            (Dest::Route { tables, local }, mut exts) => {
                for mut m in rx.drain() {
                    if let Some(x) = &mut exts {
                        x.attach(info.from, &mut m, rx_tsc, w);
                    }
                    // A chained packet (larger than one data room, scattered RX) is routed
                    // on the headers in its first segment.
                    let len = m.pkt_len();
                    let rss = m.rss_hash();
                    let action = match m.unshare(pool) {
                        Err(_) => Action::Drop(DropReason::NoBufForCopy),
                        Ok(data) => {
                            let view = tables.fib.view(rcu).with_rss(rss);
                            forward::l3fwd_packet(data, len, &view, &view, local.as_ref())
                        }
                    };
                    match action {
                        Action::Tx(p) => {
                            if let Some(x) = &exts {
                                x.mirror(&m, rx_tsc, pool, w);
                            }
                            w.enqueue(p, m, rx_tsc)
                        }
                        Action::Drop(r) => w.totals[r] += 1,
                        Action::Punt => match slow {
                            Some(s) => {
                                // The slow path answers out of the input port: make sure
                                // the mbuf says which one (not every PMD sets it).
                                m.set_port(info.from.0);
                                s.punt(m, w)
                            }
                            None => w.totals[DropReason::LocalUnhandled] += 1,
                        },
                        Action::Resolve { next_hop, .. } => match slow {
                            Some(s) => {
                                // The slow path holds it while it resolves the next hop's
                                // neighbour; the tag says which next hop the route chose.
                                m.set_user_tag(next_hop);
                                s.resolve(m, w)
                            }
                            None => w.totals[DropReason::NoRoute] += 1,
                        },
                    }
                }
                if let Some(s) = slow {
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

/// A pair mode's rewrite of one frame.
#[inline(always)]
fn apply(rewrite: Rewrite, data: &mut [u8]) -> Result<(), DropReason> {
    match rewrite {
        Rewrite::None => Ok(()),
        Rewrite::Macswap => forward::macswap(data),
        Rewrite::L2fwd { src, dst } => forward::l2fwd(data, src, dst),
    }
}
