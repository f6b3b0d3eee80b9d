//! The forwarder's [`Stage`]: what each mode does with a received burst, with the
//! extension, mirror and slow-path steps where they are configured.
//!
//! - io: the whole burst goes to the lane's pair port as it is (testpmd's io engine).
//! - macswap, l2fwd without extensions: each packet is rewritten in place, the burst
//!   compacted over the drops and sent whole.
//! - otherwise (l3fwd, or extensions on): packet by packet into the out ports' TX buffers.

use std::sync::Arc;

use mempool::{Burst, Mbuf, Pool, MAX_BURST};

use crate::forward::{self, DropReason};
use crate::rcu::QsbrReader;

use super::extensions::Extensions;
use super::poll::Stage;
use super::queues::{EalQueues, Queues};
use super::route;
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
                    let carried = x.attach_all(info.from, rx, rx_tsc, w, Extensions::meta_of);
                    w.io.hand_off(rx, carried, &mut w.hist.latency_cycles);
                }
                w.send(out, rx, rx_tsc);
            }
            (&Dest::Pair { out, rewrite }, exts) => {
                // Pair modes send the whole burst to one port too: rewrite it in place and
                // hand it over at once; in the rare burst where a packet cannot be
                // rewritten, drop those first.
                let (failed, reasons) = match rewrite {
                    Rewrite::None => (0, [DropReason::Truncated; MAX_BURST]),
                    Rewrite::Macswap => rewrite_each(rx, pool, forward::macswap),
                    Rewrite::L2fwd { src, dst } => rewrite_each(rx, pool, |d| forward::l2fwd(d, src, dst)),
                };
                if failed != 0 {
                    drop_failed(rx, failed, &reasons, w);
                }
                let Some(x) = exts else {
                    w.send(out, rx, rx_tsc);
                    return;
                };
                let carried = x.attach_all(info.from, rx, rx_tsc, w, Extensions::meta_of);
                if x.mirrors() {
                    for m in rx.as_slice() {
                        x.mirror(m, rx_tsc, pool, w);
                    }
                }
                w.forward_burst(out, rx, rx_tsc, carried);
            }
            (Dest::Route { tables, local }, exts) => {
                let x = route::Extras { pool, exts: exts.as_mut(), slow: slow.as_mut(), from: info.from };
                route::route(rx, &tables.fib.view(rcu), local.as_ref(), rx_tsc, x, w);
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

/// Rewrites every packet of `rx` in place with `f` (after making it writable); returns a
/// bit per packet that could not be rewritten, and why. Generic, so each rewrite gets a
/// loop of its own.
#[inline(always)]
fn rewrite_each(
    rx: &mut Burst,
    pool: &Pool,
    mut f: impl FnMut(&mut [u8]) -> Result<(), DropReason>,
) -> (u32, [DropReason; MAX_BURST]) {
    let mut failed = 0u32;
    let mut reasons = [DropReason::Truncated; MAX_BURST];
    for (i, m) in rx.as_mut_slice().iter_mut().enumerate() {
        let done = match m.unshare(pool) {
            Ok(data) => f(data),
            Err(_) => Err(DropReason::NoBufForCopy),
        };
        if let Err(r) = done {
            failed |= 1 << i;
            reasons[i] = r;
        }
    }
    (failed, reasons)
}

/// Drops the packets of `rx` whose bit is set in `failed`, counting each one's reason.
#[cold]
fn drop_failed(rx: &mut Burst, failed: u32, reasons: &[DropReason; MAX_BURST], w: &mut Worker<EalQueues>) {
    let mut i = 0;
    rx.retain(
        |_| {
            let keep = failed & (1 << i) == 0;
            if !keep {
                w.totals[reasons[i]] += 1;
            }
            i += 1;
            keep
        },
        drop,
    );
}
