//! Fake queues for the loop's unit tests: numbered packets in vectors, a TX queue per port
//! that takes as many packets as it is given room for, and a clock moved by hand or by
//! every RX poll. Every packet freed is counted, so a test can check that each one was
//! sent or freed exactly once.

use std::cell::Cell;
use std::collections::VecDeque;

use hdrhistogram::Histogram;

use crate::net::Proto;
use crate::port::PortIdx;

use super::queues::{Packet, PacketBurst, Queues};

thread_local! {
    /// Packets freed on this thread (each test runs on its own thread).
    static FREED: Cell<u64> = const { Cell::new(0) };
}

/// Packets freed so far on this thread.
pub fn freed() -> u64 {
    FREED.with(Cell::get)
}

/// A numbered packet; its class is its number modulo 4 (tcp, udp, icmp, other).
#[derive(Debug, PartialEq, Eq)]
pub struct Pkt(pub u32);

impl Packet for Pkt {
    fn proto(&self) -> Proto {
        Proto::ALL[self.0 as usize % Proto::ALL.len()]
    }
}

impl Drop for Pkt {
    fn drop(&mut self) {
        FREED.with(|f| f.set(f.get() + 1));
    }
}

/// Up to 32 packets.
#[derive(Debug, Default)]
pub struct Pkts(pub Vec<Pkt>);

impl PacketBurst for Pkts {
    type Pkt = Pkt;
    const CAPACITY: usize = 32;

    fn len(&self) -> usize {
        self.0.len()
    }
    fn push(&mut self, p: Pkt) -> Result<(), Pkt> {
        if self.0.len() == Self::CAPACITY {
            return Err(p);
        }
        self.0.push(p);
        Ok(())
    }
    fn pop(&mut self) -> Option<Pkt> {
        self.0.pop()
    }
    fn drain_each(&mut self, f: impl FnMut(Pkt)) {
        self.0.drain(..).for_each(f)
    }
    fn clear(&mut self) {
        self.0.clear()
    }
}

/// A port's TX queue: what it took, in order, and room for how many more.
#[derive(Debug, Default)]
pub struct FakeTx {
    /// The numbers of the packets it took.
    pub sent: Vec<u32>,
    /// How many more it takes (`usize::MAX`: any number).
    pub room: usize,
}

/// Lanes of waiting packets, TX queues, and a clock.
#[derive(Debug)]
pub struct FakeQueues {
    /// Per lane: the packets waiting.
    pub rx: Vec<VecDeque<u32>>,
    /// Per port; `None`: the worker has no TX queue there.
    pub tx: Vec<Option<FakeTx>>,
    /// The time, in cycles.
    pub clock: u64,
    /// Cycles each RX poll takes.
    pub poll_cycles: u64,
    /// The lane of every RX poll, in order.
    pub polls: Vec<usize>,
}

impl FakeQueues {
    /// `lanes` empty lanes and `ports` TX queues that take everything.
    pub fn new(lanes: usize, ports: usize) -> Self {
        FakeQueues {
            rx: vec![VecDeque::new(); lanes],
            tx: (0..ports).map(|_| Some(FakeTx { sent: Vec::new(), room: usize::MAX })).collect(),
            clock: 0,
            poll_cycles: 0,
            polls: Vec::new(),
        }
    }

    /// Queues packets numbered `numbers` on lane `lane`.
    pub fn arrive(&mut self, lane: usize, numbers: impl IntoIterator<Item = u32>) {
        self.rx[lane].extend(numbers);
    }

    /// What port `port` took.
    pub fn sent(&self, port: usize) -> &[u32] {
        &self.tx[port].as_ref().expect("a TX queue").sent
    }

    /// Lets port `port` take `room` more packets.
    pub fn set_room(&mut self, port: usize, room: usize) {
        self.tx[port].as_mut().expect("a TX queue").room = room;
    }
}

impl Queues for FakeQueues {
    type Pkt = Pkt;
    type Burst = Pkts;

    fn rx_burst(&mut self, lane: usize, burst: &mut Pkts, max: u16) -> usize {
        self.polls.push(lane);
        self.clock += self.poll_cycles;
        let n = usize::from(max).min(Pkts::CAPACITY - burst.len()).min(self.rx[lane].len());
        burst.0.extend(self.rx[lane].drain(..n).map(Pkt));
        n
    }

    fn tx_burst(&mut self, port: PortIdx, burst: &mut Pkts) -> Option<usize> {
        let q = self.tx[port.index()].as_mut()?;
        let n = q.room.min(burst.len());
        if q.room != usize::MAX {
            q.room -= n;
        }
        for p in burst.0.drain(..n) {
            q.sent.push(p.0);
            // The NIC owns it now: not freed by us.
            std::mem::forget(p);
        }
        Some(n)
    }

    fn now(&mut self) -> u64 {
        self.clock
    }

    fn hand_off(&mut self, _burst: &mut Pkts, _which: u32, _latency: &mut Histogram<u64>) {}
}

/// A stage that sends every packet to one port: packet by packet through its TX buffer,
/// or whole bursts past it.
pub struct ToPort {
    /// The port.
    pub port: PortIdx,
    /// Send whole bursts ([`super::tx::Worker::send`]) instead of buffering.
    pub whole: bool,
}

impl super::poll::Stage<FakeQueues> for ToPort {
    fn forward(&mut self, _lane: usize, rx: &mut Pkts, rx_tsc: u64, w: &mut super::tx::Worker<FakeQueues>) {
        if self.whole {
            w.send(self.port, rx, rx_tsc);
        } else {
            rx.drain_each(|p| w.enqueue(self.port, p, rx_tsc));
        }
    }
}

/// A budget of `packets` per round and `cycles` per round, a drain time of `drain` cycles,
/// no timing, no back-off.
pub fn budget(packets: u32, cycles: u64, drain: u64) -> super::Budget {
    super::Budget { packets, cycles, drain_cycles: drain, idle: None, sample_every: 0 }
}
