//! l3fwd a burst at a time, as DPDK's l3fwd does it (`l3fwd_lpm_send_packets`):
//!
//! 1. each packet is parsed once ([`parse_packet`]; the result goes into its `packet_type` for
//!    later steps, such as a TX backlog's charge) while the headers of the packets after it
//!    are prefetched, then checked, looked up and rewritten ([`forward::l3fwd_parsed`]:
//!    own addresses, the IPv4 checksum unless the NIC verified it, TTL; `rte_lpm`'s tables
//!    read inline for IPv4, `rte_lpm6_lookup` for IPv6; TTL and MACs, or a hand-off to
//!    the slow path when the next hop's neighbour is not resolved);
//! 2. the burst goes out grouped by port: whole to the NIC when it all leaves by one port
//!    that has nothing waiting, else packet by packet into the TX buffers.
//!
//! Extensions, the mirror and the slow path take their turn on the way.

use std::cell::Cell;

use mempool::{Burst, Mbuf, Pool, MAX_BURST};

use crate::exts::FlowMeta;
use crate::forward::{self, Action, DropReason, Hop, NextHop, NextHops, RxChecksum};
use crate::local::Local;
use crate::net::parse_packet;
use crate::port::PortIdx;

use super::extensions::{BurstExts, Extensions};
use super::queues::{ptype, EalQueues};
use super::slow::SlowStep;
use super::tx::Worker;
use crate::fib::FibView;

/// How many packets ahead of the one being parsed have their headers prefetched.
const PREFETCH: usize = 4;

/// The packet types of the common case ([`forward::l3fwd_common`]), by `Proto::index`.
const PTYPE_V4: [u32; 4] = common_ptypes(dpdk_sys::RTE_PTYPE_L3_IPV4);
const PTYPE_V6: [u32; 4] = common_ptypes(dpdk_sys::RTE_PTYPE_L3_IPV6);

const fn common_ptypes(l3: u32) -> [u32; 4] {
    use dpdk_sys::*;
    let l2 = RTE_PTYPE_L2_ETHER | l3;
    [l2 | RTE_PTYPE_L4_TCP, l2 | RTE_PTYPE_L4_UDP, l2 | RTE_PTYPE_L4_ICMP, l2 | RTE_PTYPE_L4_NONFRAG]
}

/// What the NIC said of a packet's IPv4 header checksum.
#[inline]
fn rx_checksum(m: &Mbuf) -> RxChecksum {
    use dpdk_sys::{RTE_MBUF_F_RX_IP_CKSUM_BAD, RTE_MBUF_F_RX_IP_CKSUM_GOOD, RTE_MBUF_F_RX_IP_CKSUM_MASK};
    match m.ol_flags() & u64::from(RTE_MBUF_F_RX_IP_CKSUM_MASK) {
        f if f == u64::from(RTE_MBUF_F_RX_IP_CKSUM_GOOD) => RxChecksum::Good,
        f if f == u64::from(RTE_MBUF_F_RX_IP_CKSUM_BAD) => RxChecksum::Bad,
        _ => RxChecksum::Unknown,
    }
}

/// The steps a routed burst may take besides routing.
pub(super) struct Extras<'a> {
    pub pool: &'a Pool,
    pub exts: Option<&'a mut Extensions>,
    pub slow: Option<&'a mut SlowStep>,
    /// The lane's ethdev id and RX queue.
    pub from: (u16, u16),
}

/// Routes the burst `rx` (received at `rx_tsc`) into TX buffers, drops or punts: see the
/// module docs. `local` holds the RX port's own addresses.
///
/// Not inlined into the loop: a function of its own per burst keeps the per-packet state
/// in registers.
#[inline(never)]
pub(super) fn route(
    rx: &mut Burst,
    tables: &FibView<'_>,
    local: Option<&Local>,
    rx_tsc: u64,
    mut x: Extras<'_>,
    w: &mut Worker<EalQueues>,
) {
    let mut verdict = [Action::Drop(DropReason::NoRoute); MAX_BURST];
    let mut bx = x.exts.as_deref_mut().map(|e| e.begin(x.from, rx.len(), rx_tsc, w.now)).filter(BurstExts::any);
    // Two copies of the loop: without flow metadata, nothing of the extensions is in it
    // (traces go to the sampled packets afterwards).
    let sorted = match &mut bx {
        Some(b) if b.flow => each::<true>(rx.as_mut_slice(), tables, local, x.pool, Some(b), &mut verdict),
        _ => each::<false>(rx.as_mut_slice(), tables, local, x.pool, None, &mut verdict),
    };
    let carried = bx.map_or(0, |b| b.finish(rx, sorted.kept, w));
    let mirrors = x.exts.as_deref().is_some_and(Extensions::mirrors);
    if !sorted.one_port || mirrors {
        // The packets sent where the first one went have no verdict written yet.
        let mut todo = sorted.same;
        while todo != 0 {
            verdict[todo.trailing_zeros() as usize] = Action::Tx(PortIdx(sorted.first as u16));
            todo &= todo - 1;
        }
    }
    if let Some(e) = x.exts.as_deref().filter(|e| e.mirrors()) {
        for (m, v) in rx.as_slice().iter().zip(&verdict) {
            if matches!(v, Action::Tx(_)) {
                e.mirror(m, rx_tsc, x.pool, w);
            }
        }
    }

    // Out, grouped by port.
    if sorted.one_port {
        w.forward_burst(PortIdx(sorted.first as u16), rx, rx_tsc, carried);
        return;
    }
    let mut i = 0;
    rx.drain().for_each(|mut m| {
        match verdict[i] {
            Action::Tx(p) => w.enqueue_with(p, m, rx_tsc, carried >> i & 1 != 0),
            Action::Drop(r) => w.totals[r] += 1,
            Action::Punt => match x.slow.as_deref_mut() {
                Some(s) => {
                    // The slow path answers out of the input port: make sure the mbuf says
                    // which one (not every PMD sets it).
                    m.set_port(x.from.0);
                    s.punt(m, w)
                }
                None => w.totals[DropReason::LocalUnhandled] += 1,
            },
            Action::Resolve { next_hop, .. } => match x.slow.as_deref_mut() {
                Some(s) => {
                    // The slow path holds it while it resolves the next hop's neighbour;
                    // the tag says which next hop the route chose.
                    m.set_user_tag(next_hop);
                    s.resolve(m, w)
                }
                None => w.totals[DropReason::NoRoute] += 1,
            },
        }
        i += 1;
    });
    if let Some(s) = x.slow {
        s.flush(w);
    }
}

/// Where step 1 sent a burst.
struct Sorted {
    /// Every packet leaves by port `first`.
    one_port: bool,
    /// A bit for each packet that goes on (forwarded, punted or resolved).
    kept: u32,
    /// A bit for each packet sent out of port `first`, whose verdict was not written.
    same: u32,
    /// The first packet's out port (meaningless when `same` is 0).
    first: u32,
}

/// Step 1 for every packet of `pkts`: parse, route, rewrite (see the module docs); the
/// verdicts go to `verdict`, and with `FLOW` the packets that go on get their flow metadata
/// from `bx`, except for the packets sent where the first one went (see [`Sorted`]).
#[inline(always)]
fn each<const FLOW: bool>(
    pkts: &mut [Mbuf],
    tables: &FibView<'_>,
    local: Option<&Local>,
    pool: &Pool,
    mut bx: Option<&mut BurstExts>,
    verdict: &mut [Action; MAX_BURST],
) -> Sorted {
    let mut one_port = !pkts.is_empty();
    // The first packet's out port (UNSET when it is not sent): one_port holds while every
    // packet is sent there.
    const UNSET: u32 = u32::MAX - 1;
    const NOT_SENT: u32 = u32::MAX;
    let mut first = UNSET;
    let mut same = 0u32;
    // The packets that go on besides those in `same`.
    let mut kept = 0u32;
    let flow = FLOW;
    let hops = BurstHops::new(tables);
    // The RSS hash is read for the flow metadata, or for ECMP once the table has a group.
    let rss_wanted = flow || tables.has_groups();
    let n = pkts.len();
    for m in pkts.iter().take(PREFETCH) {
        m.prefetch_data();
    }
    for i in 0..n {
        if let Some(ahead) = pkts.get(i + PREFETCH) {
            ahead.prefetch_data();
        }
        let m = &mut pkts[i];
        let csum = rx_checksum(m);
        let rss = if rss_wanted { m.rss_hash() } else { None };
        hops.rss.set(rss);
        // A chained packet (larger than one data room, scattered RX) is routed on the
        // headers in its first segment.
        let pkt_len = m.pkt_len();
        let Ok(data) = m.unshare(pool) else {
            verdict[i] = Action::Drop(DropReason::NoBufForCopy);
            one_port = false;
            continue;
        };
        let common = if local.is_none() { forward::l3fwd_common(data, tables, &hops, csum) } else { None };
        let (v, meta) = match common {
            Some(c) => {
                let meta = flow.then(|| FlowMeta::from_common(data, &c, rss));
                m.set_packet_type(if c.v6 { PTYPE_V6[c.proto.index()] } else { PTYPE_V4[c.proto.index()] });
                (c.action, meta)
            }
            None => match parse_packet(data, pkt_len) {
                Ok(p) => {
                    let v = forward::l3fwd_parsed(data, &p, tables, &hops, local, csum);
                    let meta = flow.then(|| FlowMeta::from_parsed(data, &p, rss));
                    m.set_packet_type(ptype(&p));
                    (v, meta)
                }
                Err(e) => {
                    verdict[i] = Action::Drop(e.into());
                    one_port = false;
                    continue;
                }
            },
        };
        let port = match v {
            Action::Tx(p) => u32::from(p.0),
            _ => NOT_SENT,
        };
        // Packets sent to the first one's port are a bit in `same`; the others' verdicts
        // are written out.
        if port == first {
            same |= 1 << i;
        } else if i == 0 && port != NOT_SENT {
            first = port;
            same = 1;
        } else {
            one_port = false;
            verdict[i] = v;
            kept |= u32::from(!matches!(v, Action::Drop(_))) << i;
        }
        // Flow metadata on the packets that go on.
        if FLOW && !matches!(v, Action::Drop(_)) {
            if let Some(b) = bx.as_deref_mut() {
                b.attach_flow(i, m, || meta.unwrap_or_default());
            }
        }
    }
    Sorted { one_port, kept: kept | same, same, first }
}

/// The next hops as one burst sees them: the last plain id looked up and what it led to,
/// so that a burst whose packets share a next hop reads its entry once. (Within a burst the
/// entry is as current as when the burst began; the RCU read-side section spans the burst.)
/// An ECMP group is asked every time: its member depends on the packet's flow. The packets
/// that took a remembered id are counted for it ([`FibView::count`]) when another id comes
/// and when the burst ends.
struct BurstHops<'a> {
    fib: &'a FibView<'a>,
    last: Cell<(u32, Hop)>,
    /// Packets that took `last` without asking the table (not counted yet).
    hits: Cell<u64>,
    /// The RSS hash of the packet being routed (`Mbuf::rss_hash`): ECMP's flow hash when
    /// the NIC gave one.
    rss: Cell<Option<u32>>,
}

impl<'a> BurstHops<'a> {
    fn new(fib: &'a FibView<'a>) -> Self {
        BurstHops { fib, last: Cell::new((u32::MAX, Hop::Missing)), hits: Cell::new(0), rss: Cell::new(None) }
    }

    /// Counts the packets that took the remembered id.
    #[inline]
    fn flush(&self) {
        let (id, hop) = self.last.get();
        let n = self.hits.take();
        if n != 0 && hop != Hop::Missing {
            self.fib.count(id, n);
        }
    }
}

impl Drop for BurstHops<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

impl NextHops for BurstHops<'_> {
    #[inline]
    fn next_hop(&self, id: u32) -> Option<NextHop> {
        self.fib.next_hop(id)
    }

    #[inline(always)]
    fn lookup(&self, id: u32, flow: impl FnOnce() -> u32) -> Hop {
        let (last, hop) = self.last.get();
        if last == id {
            self.hits.set(self.hits.get() + 1);
            return hop;
        }
        let rss = self.rss.get();
        let (member, hop) = self.fib.route(id, || rss.unwrap_or_else(flow));
        if member == id {
            // A plain next hop (a group would have named its member): remember it.
            self.flush();
            self.last.set((id, hop));
        }
        hop
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::Common;
    use crate::net::Proto;

    /// The common case's packet types are what `ptype` says of its parse.
    #[test]
    fn common_packet_types() {
        for v6 in [false, true] {
            for proto in Proto::ALL {
                let ip_proto = match (proto, v6) {
                    (Proto::Tcp, _) => 6,
                    (Proto::Udp, _) => 17,
                    (Proto::Icmp, false) => 1,
                    (Proto::Icmp, true) => 58,
                    (Proto::Other, _) => 47,
                };
                let c = Common { action: Action::Punt, v6, ip_proto, proto };
                let table = if v6 { PTYPE_V6 } else { PTYPE_V4 };
                assert_eq!(table[proto.index()], ptype(&c.parsed()), "{c:?}");
            }
        }
    }
}
