//! The slow path: a control-plane thread that answers requests addressed to the
//! forwarder itself (ARP, IPv6 neighbour solicitation, ICMP/ICMPv6 echo; see
//! [`crate::local`]).
//!
//! Each worker hands such packets over an `rte_ring` (its punt ring) and takes the
//! replies back over another (its inject ring), sending them on its own TX queues, so no
//! TX queue is shared. The thread polls the punt rings, rewrites each request into its
//! reply in place, and sleeps briefly when there is nothing to do.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use mempool::Burst;

use crate::local::{self, Local};
use crate::port::PortId;
use crate::worker::SlowPathRings;

/// The slow path's counters.
#[derive(Debug, Default)]
pub struct SlowPathCounters {
    /// Requests answered and handed back for sending.
    pub answered: AtomicU64,
    /// Requests that could not be answered after all (freed).
    pub ignored: AtomicU64,
    /// Replies dropped because a worker's inject ring was full.
    pub inject_full: AtomicU64,
}

/// A running slow-path thread.
#[derive(Debug)]
pub struct SlowPath {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    counters: Arc<SlowPathCounters>,
}

/// How long the thread sleeps when every punt ring was empty.
const IDLE_SLEEP: Duration = Duration::from_micros(50);

impl SlowPath {
    /// Starts the thread over the workers' rings; `locals` are the ports' own addresses,
    /// in config order.
    pub fn spawn(rings: Vec<SlowPathRings>, locals: Vec<Option<Local>>) -> std::io::Result<SlowPath> {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(SlowPathCounters::default());
        let (s, c) = (stop.clone(), counters.clone());
        let handle = std::thread::Builder::new().name("slowpath".into()).spawn(move || run(&rings, &locals, &s, &c))?;
        Ok(SlowPath { stop, handle: Some(handle), counters })
    }

    /// The counters.
    pub fn counters(&self) -> &SlowPathCounters {
        &self.counters
    }

    /// Stops and joins the thread. Whatever is still in the rings is freed when the rings
    /// are dropped.
    pub fn stop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for SlowPath {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(rings: &[SlowPathRings], locals: &[Option<Local>], stop: &AtomicBool, c: &SlowPathCounters) {
    let mut requests: Burst = Burst::new();
    let mut replies: Burst = Burst::new();
    while !stop.load(Relaxed) {
        let mut busy = false;
        for r in rings {
            if r.punt.dequeue(&mut requests) == 0 {
                continue;
            }
            busy = true;
            for mut m in requests.drain() {
                let local = r.ports.idx(PortId(m.port())).and_then(|i| locals[i.index()].as_ref());
                let answered = match (local, m.data_mut()) {
                    (Some(l), Some(data)) => local::answer(data, l),
                    _ => false,
                };
                if !answered {
                    // Back to the worker all the same, marked with no port, so that it
                    // returns the packet's memory charge before freeing it.
                    m.set_port(u16::MAX);
                    c.ignored.fetch_add(1, Relaxed);
                }
                // At most one burst of requests at a time, so the replies fit.
                let _ = replies.push(m);
            }
            let answered = replies.as_slice().iter().filter(|m| m.port() != u16::MAX).count();
            let n = r.inject.enqueue(&mut replies);
            c.answered.fetch_add(answered.min(n) as u64, Relaxed);
            c.inject_full.fetch_add(replies.len() as u64, Relaxed);
            replies.clear();
        }
        if !busy {
            std::thread::sleep(IDLE_SLEEP);
        }
    }
}
