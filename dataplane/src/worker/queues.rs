//! What the poll loop needs of queues and packets, as two small traits: [`Queues`] (RX and
//! TX bursts and the clock) and [`PacketBurst`] (a fixed-capacity burst of owned packets).
//!
//! The forwarder implements them over DPDK ([`EalQueues`] over the worker's
//! [`RxQueue`]/[`TxQueue`] handles, `mempool::Burst` of `Mbuf`s, the TSC). The loop's unit
//! tests implement them over numbered packets in vectors and a clock they move by hand, so
//! the budget, time_squeeze, the drain timer and the backlog order are tested without EAL,
//! as smoltcp tests its stack on a loopback device.

use hdrhistogram::Histogram;
use mempool::{ext, Burst, Mbuf};

use crate::eal;
use crate::exts::PacketExts;
use crate::net::{parse_packet, Parsed, Proto, L3};
use crate::port::{PortIdx, RxQueue, TxQueue};

/// A packet as the loop holds it.
pub trait Packet {
    /// Its memory-accounting class (what a TX backlog charges it to).
    fn proto(&self) -> Proto;
}

/// Up to [`PacketBurst::CAPACITY`] owned packets, in order. Dropping or clearing it frees
/// what it holds.
pub trait PacketBurst: Default {
    /// The packet.
    type Pkt: Packet;
    /// How many packets fit.
    const CAPACITY: usize;
    /// Packets held.
    fn len(&self) -> usize;
    /// Whether none is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Adds a packet at the end, or hands it back when full.
    fn push(&mut self, p: Self::Pkt) -> Result<(), Self::Pkt>;
    /// Takes the last packet.
    fn pop(&mut self) -> Option<Self::Pkt>;
    /// Calls `f` with every packet, front to back, leaving the burst empty.
    fn drain_each(&mut self, f: impl FnMut(Self::Pkt));
    /// Frees every packet held.
    fn clear(&mut self);
}

/// A worker's queues: its RX lanes, its TX queue on each port, and the clock.
pub trait Queues {
    /// The packet.
    type Pkt: Packet;
    /// A burst of them.
    type Burst: PacketBurst<Pkt = Self::Pkt>;
    /// Receives up to `max` packets from lane `lane` into the free room of `burst`;
    /// returns how many.
    fn rx_burst(&mut self, lane: usize, burst: &mut Self::Burst, max: u16) -> usize;
    /// Hands the front of `burst` to this worker's TX queue on `port`; returns how many the
    /// queue took (the rest stay in `burst`), or `None` when the worker has no TX queue
    /// there.
    fn tx_burst(&mut self, port: PortIdx, burst: &mut Self::Burst) -> Option<usize>;
    /// The time, in TSC cycles.
    fn now(&mut self) -> u64;
    /// Whether `p` must go through [`Queues::hand_off`] before TX (it carries extensions).
    fn needs_hand_off(&self, _p: &Self::Pkt) -> bool {
        false
    }
    /// Makes the packets of `burst` whose bit is set in `which` (those that may carry
    /// extensions) ready for the NIC, which frees them in C: records the RX-to-TX latency of
    /// traced ones into `latency` and releases their extensions.
    fn hand_off(&mut self, _burst: &mut Self::Burst, _which: u32, _latency: &mut Histogram<u64>) {}
}

impl Packet for Mbuf {
    /// From the packet type when it says (the worker stores what its parser found there),
    /// else by parsing.
    #[inline]
    fn proto(&self) -> Proto {
        match proto_of_ptype(self.packet_type()) {
            Some(p) => p,
            None => parse_packet(self.data(), self.pkt_len()).map_or(Proto::Other, |p| p.proto),
        }
    }
}

/// DPDK's `RTE_PTYPE_*` bits for what [`parse`](crate::net::parse) found: L2 (Ethernet, ARP, one or two VLAN
/// tags), L3 (IPv4 with or without options, IPv6 with or without extension headers), L4
/// (TCP, UDP, ICMP/ICMPv6, a fragment, another protocol). Stored in the mbuf, it carries
/// the parse to later steps (see [`proto_of_ptype`]).
#[inline]
pub fn ptype(p: &Parsed) -> u32 {
    use dpdk_sys::*;
    // By Proto::index: tcp, udp, icmp, other.
    const L4: [u32; 4] = [RTE_PTYPE_L4_TCP, RTE_PTYPE_L4_UDP, RTE_PTYPE_L4_ICMP, RTE_PTYPE_L4_NONFRAG];
    // The common case first: untagged IPv4 without options, not a fragment.
    if p.l2_len == 14 && p.l3 == L3::Ipv4 && p.l3_len == 20 && !p.fragment {
        return RTE_PTYPE_L2_ETHER | RTE_PTYPE_L3_IPV4 | L4[p.proto.index()];
    }
    ptype_any(p)
}

#[inline(never)]
fn ptype_any(p: &Parsed) -> u32 {
    use dpdk_sys::*;
    const L2: [u32; 3] = [RTE_PTYPE_L2_ETHER, RTE_PTYPE_L2_ETHER_VLAN, RTE_PTYPE_L2_ETHER_QINQ];
    // By Proto::index: tcp, udp, icmp, other.
    const L4: [u32; 4] = [RTE_PTYPE_L4_TCP, RTE_PTYPE_L4_UDP, RTE_PTYPE_L4_ICMP, RTE_PTYPE_L4_NONFRAG];
    let l2 = L2[(usize::from(p.l2_len.saturating_sub(14)) / 4).min(2)];
    let l4 = if p.fragment { RTE_PTYPE_L4_FRAG } else { L4[p.proto.index()] };
    match p.l3 {
        L3::Ipv4 if p.l3_len == 20 => l2 | RTE_PTYPE_L3_IPV4 | l4,
        L3::Ipv4 => l2 | RTE_PTYPE_L3_IPV4_EXT | l4,
        L3::Ipv6 if p.l4_offset - p.l3_offset == 40 => l2 | RTE_PTYPE_L3_IPV6 | l4,
        L3::Ipv6 => l2 | RTE_PTYPE_L3_IPV6_EXT | l4,
        L3::Arp => RTE_PTYPE_L2_ETHER_ARP,
        L3::Other(_) => l2,
    }
}

/// The accounting class a packet type says, or `None` when it does not say enough: unknown
/// (0), a fragment (its class is its IP protocol's), or IP with no L4 type.
#[inline]
pub fn proto_of_ptype(ptype: u32) -> Option<Proto> {
    use dpdk_sys::*;
    match ptype & RTE_PTYPE_L4_MASK {
        RTE_PTYPE_L4_TCP => Some(Proto::Tcp),
        RTE_PTYPE_L4_UDP => Some(Proto::Udp),
        RTE_PTYPE_L4_ICMP => Some(Proto::Icmp),
        RTE_PTYPE_L4_FRAG => None,
        0 if ptype == 0 || ptype & RTE_PTYPE_L3_MASK != 0 => None,
        _ => Some(Proto::Other),
    }
}

impl PacketBurst for Burst {
    type Pkt = Mbuf;
    const CAPACITY: usize = mempool::MAX_BURST;

    #[inline]
    fn len(&self) -> usize {
        Burst::len(self)
    }
    #[inline]
    fn push(&mut self, p: Mbuf) -> Result<(), Mbuf> {
        Burst::push(self, p)
    }
    #[inline]
    fn pop(&mut self) -> Option<Mbuf> {
        Burst::pop(self)
    }
    #[inline]
    fn drain_each(&mut self, f: impl FnMut(Mbuf)) {
        self.drain().for_each(f)
    }
    #[inline]
    fn clear(&mut self) {
        Burst::clear(self)
    }
}

/// The forwarder's queues: the worker's RX queue handles (one per lane), its own TX queue
/// on each port it may send to, and the TSC.
#[derive(Debug)]
pub struct EalQueues {
    /// By lane.
    pub rx: Vec<RxQueue>,
    /// By port ([`PortIdx`]); `None` on a port this worker never sends to.
    pub tx: Vec<Option<TxQueue>>,
    /// The extension framework, when a feature attaches extensions.
    pub exts: Option<PacketExts>,
    /// Whether some packets carry a trace (whose latency the hand-off records).
    pub traced: bool,
}

impl Queues for EalQueues {
    type Pkt = Mbuf;
    type Burst = Burst;

    #[inline]
    fn rx_burst(&mut self, lane: usize, burst: &mut Burst, max: u16) -> usize {
        self.rx[lane].rx_burst(burst, max)
    }

    #[inline]
    fn tx_burst(&mut self, port: PortIdx, burst: &mut Burst) -> Option<usize> {
        Some(self.tx[port.index()].as_mut()?.tx_burst(burst))
    }

    #[inline]
    fn now(&mut self) -> u64 {
        eal::rdtsc()
    }

    #[inline]
    fn needs_hand_off(&self, m: &Mbuf) -> bool {
        self.exts.is_some() && ext::active(m) != 0
    }

    fn hand_off(&mut self, burst: &mut Burst, which: u32, latency: &mut Histogram<u64>) {
        let Some(x) = self.exts else { return };
        if which == 0 {
            return;
        }
        if self.traced {
            // The packets of one RX burst share its timestamp: one record per run.
            let now = eal::rdtsc();
            let mut run = (0u64, 0u64);
            let mut bits = which;
            while bits != 0 {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let Some(t) = burst.as_slice().get(i).and_then(|m| ext::get(m, x.trace)) else { continue };
                if t.rx_tsc != run.0 {
                    if run.1 > 0 {
                        latency.saturating_record_n(now.wrapping_sub(run.0).max(1), run.1);
                    }
                    run = (t.rx_tsc, 0);
                }
                run.1 += 1;
            }
            if run.1 > 0 {
                latency.saturating_record_n(now.wrapping_sub(run.0).max(1), run.1);
            }
        }
        ext::release_bulk(burst.as_mut_slice(), which);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::testdata::*;

    /// The class read back from the stored packet type is the parser's, or the packet is
    /// parsed again (fragments).
    #[test]
    fn packet_type_carries_the_class() {
        for f in [
            &IPV4_UDP_PADDED[..],
            &VLAN_IPV4_TCP,
            &QINQ_IPV4_OPTS_ICMP,
            &IPV4_TCP_OPTS,
            &IPV4_LATER_FRAGMENT,
            &IPV4_FIRST_FRAGMENT,
            &IPV6_EXT_CHAIN_UDP,
            &VLAN_IPV6_ICMPV6,
            &IPV6_ROUTING_AH_TCP,
            &IPV6_LATER_FRAGMENT,
            &IPV6_NO_NEXT_PADDED,
            &ARP_REQUEST,
        ] {
            let p = crate::net::parse(f).unwrap();
            let t = ptype(&p);
            assert_ne!(t, 0);
            assert_eq!(proto_of_ptype(t).unwrap_or(p.proto), p.proto, "{p:?}");
            assert_eq!(proto_of_ptype(t).is_none(), p.fragment, "{p:?}");
        }
        assert_eq!(proto_of_ptype(0), None);
        assert_eq!(proto_of_ptype(dpdk_sys::RTE_PTYPE_L2_ETHER | dpdk_sys::RTE_PTYPE_L3_IPV4), None);
    }
}
