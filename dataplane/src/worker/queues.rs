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
use crate::net::{parse_packet, Proto};
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
    /// Makes the packets of `burst` ready for the NIC (which frees them in C): records the
    /// RX-to-TX latency of traced ones into `latency` and releases their extensions.
    fn hand_off(&mut self, _burst: &mut Self::Burst, _latency: &mut Histogram<u64>) {}
}

impl Packet for Mbuf {
    #[inline]
    fn proto(&self) -> Proto {
        parse_packet(self.data(), self.pkt_len()).map_or(Proto::Other, |p| p.proto)
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

    fn hand_off(&mut self, burst: &mut Burst, latency: &mut Histogram<u64>) {
        let Some(x) = self.exts else { return };
        if self.traced {
            let mut now = 0;
            for m in burst.as_slice() {
                if let Some(t) = ext::get(m, x.trace) {
                    if now == 0 {
                        now = eal::rdtsc();
                    }
                    latency.saturating_record(now.wrapping_sub(t.rx_tsc).max(1));
                }
            }
        }
        burst.release_extensions();
    }
}
