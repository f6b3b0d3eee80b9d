//! The Forwarding Plane Manager side of FRR's zebra: routes streamed by zebra's
//! `dplane_fpm_nl` module over TCP, decoded and handed to the forwarding table.
//!
//! - [`wire`]: FPM frames and the netlink route messages in them (`netlink-packet-route`).
//! - [`session`]: zebra's table as received, replays and mark-and-sweep.
//! - [`ports`]: which port a next hop leaves by (gateway subnet, or interface name).
//! - [`plan`]: what each of zebra's routes becomes in the forwarding table.
//! - [`Fpm`]: the listener thread (`[fpm] listen`), never a worker: it accepts zebra's
//!   connection, reads frames, applies each as one step to the [`Rib`] and passes the net
//!   changes to a [`RouteSink`] (the forwarding table), sweeping stale routes after a
//!   replay.
//!
//! zebra is the TCP client: it connects to `fpm address A port P` 3 s after it starts and
//! again 3 s after every close or refused connect, and replays its whole table on every
//! connection; it expects nothing back (8.4's `fpm_read` discards input). One session runs
//! at a time: a new connection replaces the current one (the old peer is gone or stuck).
//! A malformed or truncated frame closes the session with a logged, counted error; the
//! routes already installed stay, and forwarding goes on with them.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub mod plan;
pub mod ports;
pub mod session;
pub mod sink;
pub mod wire;

pub use session::{Applied, Change, Rib, SweepTiming};
pub use wire::{FpmError, Message, NextHop, Protocol, Route, RouteKey, RouteKind};

/// zebra's default FPM port (`FPM_DEFAULT_PORT`).
pub const DEFAULT_PORT: u16 = 2620;

/// How long the thread blocks in one read or sleep: the latency of noticing a new
/// connection, a due sweep, or a stop request.
const TICK: Duration = Duration::from_millis(20);

/// Bytes read from the socket at once.
const READ_CHUNK: usize = 256 << 10;

/// `[fpm]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FpmConfig {
    /// Where to listen (zebra's `fpm address A port P`); loopback unless configured otherwise.
    pub listen: SocketAddr,
    /// After zebra (re)connects, routes it has not re-sent are removed once the session is
    /// this old and its stream has been quiet for `replay_quiet`.
    pub sweep_after: Duration,
    /// See `sweep_after`.
    pub replay_quiet: Duration,
}

impl FpmConfig {
    /// The sweep rules.
    pub fn timing(&self) -> SweepTiming {
        SweepTiming { sweep_after: self.sweep_after, replay_quiet: self.replay_quiet }
    }
}

/// Where the decoded routes go: the forwarding table. Called on the FPM thread, one batch
/// (what one read from the socket carried, or one sweep) at a time, in order.
pub trait RouteSink: Send {
    /// Applies `changes` in order. Returns what failed, as `(key, reason)`, for the counters
    /// and the log; a failed change stays in the FPM's [`Rib`] as zebra sent it.
    fn apply(&mut self, changes: &[Change]) -> Vec<(RouteKey, String)>;

    /// zebra connected: a new session starts (its interfaces may have changed).
    fn session_started(&mut self) {}

    /// What the sink did with the routes, for [`FpmStatus::sink`].
    fn status(&self) -> Option<sink::SinkStatus> {
        None
    }
}

/// What the FPM side has done since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FpmStatus {
    /// The address listened on.
    pub listen: Option<SocketAddr>,
    /// Whether zebra is connected now.
    pub connected: bool,
    /// The current (or last) zebra's address.
    pub peer: Option<SocketAddr>,
    /// Connections accepted.
    pub sessions: u64,
    /// Sessions closed because of bad input ([`FpmError`]).
    pub session_errors: u64,
    /// The last such error.
    pub last_error: Option<String>,
    /// FPM frames decoded.
    pub frames: u64,
    /// Netlink messages decoded.
    pub messages: u64,
    /// Routes installed or replaced.
    pub upserts: u64,
    /// Routes removed by zebra.
    pub deletes: u64,
    /// Routes re-sent exactly as held (replays).
    pub unchanged: u64,
    /// Deletes of routes not held.
    pub unknown_deletes: u64,
    /// Messages that are not routes the forwarder takes (see [`wire::Skipped`]).
    pub skipped: u64,
    /// Sweeps done (one per session that lasted past its replay).
    pub sweeps: u64,
    /// Routes removed by sweeps.
    pub swept: u64,
    /// Changes the sink refused.
    pub sink_errors: u64,
    /// Routes held.
    pub routes: usize,
    /// Routes held per origin.
    pub routes_by_protocol: Vec<(Protocol, usize)>,
    /// What became of them in the forwarding table.
    pub sink: Option<sink::SinkStatus>,
}

impl FpmStatus {
    fn add(&mut self, a: Applied) {
        self.upserts += a.upserts;
        self.deletes += a.deletes;
        self.unchanged += a.unchanged;
        self.unknown_deletes += a.unknown_deletes;
        self.skipped += a.skipped;
    }

    /// As JSON (the report's and telemetry's `fpm` section).
    pub fn to_json(&self) -> serde_json::Value {
        let by: serde_json::Map<String, serde_json::Value> =
            self.routes_by_protocol.iter().map(|(p, n)| (p.to_string(), (*n).into())).collect();
        serde_json::json!({
            "listen": self.listen.map(|a| a.to_string()),
            "connected": self.connected,
            "peer": self.peer.map(|a| a.to_string()),
            "sessions": self.sessions,
            "session_errors": self.session_errors,
            "last_error": self.last_error,
            "frames": self.frames,
            "messages": self.messages,
            "upserts": self.upserts,
            "deletes": self.deletes,
            "unchanged": self.unchanged,
            "unknown_deletes": self.unknown_deletes,
            "skipped": self.skipped,
            "sweeps": self.sweeps,
            "swept": self.swept,
            "sink_errors": self.sink_errors,
            "routes": self.routes,
            "routes_by_protocol": by,
            "fib": self.sink.as_ref().map(|k| serde_json::json!({
                "installed": k.installed,
                "unusable": k.unusable,
                "unmapped_paths": k.unmapped_paths,
                "connected": k.connected,
                "other_tables": k.other_tables,
                "refused": k.refused,
                "not_zebras": k.not_zebras,
            })),
        })
    }
}

/// The running FPM listener: a thread of its own, stopped and joined by [`Fpm::stop`] (or
/// on drop).
#[derive(Debug)]
pub struct Fpm {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<FpmStatus>>,
    thread: Option<JoinHandle<()>>,
}

impl Fpm {
    /// Binds `config.listen` and starts the thread that serves zebra.
    ///
    /// # Errors
    /// The bind error (address in use, not an address of this host).
    pub fn start(config: &FpmConfig, sink: Box<dyn RouteSink>) -> std::io::Result<Fpm> {
        let listener = TcpListener::bind(config.listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(FpmStatus { listen: Some(addr), ..FpmStatus::default() }));
        let mut server = Server {
            listener,
            timing: config.timing(),
            sink,
            rib: Rib::new(),
            conn: None,
            status: FpmStatus { listen: Some(addr), ..FpmStatus::default() },
            shared: status.clone(),
            changes: Vec::new(),
        };
        let flag = stop.clone();
        let thread = std::thread::Builder::new().name("fpm".into()).spawn(move || server.run(&flag))?;
        Ok(Fpm { addr, stop, status, thread: Some(thread) })
    }

    /// The bound address (its port, when `listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The counters as last published (after every batch).
    pub fn status(&self) -> FpmStatus {
        self.status.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Stops the thread, closing zebra's connection, and returns the final counters.
    pub fn stop(mut self) -> FpmStatus {
        self.join();
        self.status()
    }

    fn join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                eprintln!("fpm: the listener thread panicked");
            }
        }
    }
}

impl Drop for Fpm {
    fn drop(&mut self) {
        self.join();
    }
}

/// zebra's connection.
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    /// Bytes received and not yet decoded (at most one partial frame after a read).
    buf: Vec<u8>,
}

/// The listener thread's state.
struct Server {
    listener: TcpListener,
    timing: SweepTiming,
    sink: Box<dyn RouteSink>,
    rib: Rib,
    conn: Option<Conn>,
    status: FpmStatus,
    shared: Arc<Mutex<FpmStatus>>,
    /// Reused between batches.
    changes: Vec<Change>,
}

impl Server {
    fn run(&mut self, stop: &AtomicBool) {
        let mut chunk = vec![0u8; READ_CHUNK];
        while !stop.load(Ordering::Relaxed) {
            self.accept();
            match self.conn.as_mut() {
                Some(conn) => match conn.stream.read(&mut chunk) {
                    Ok(0) => {
                        let left = conn.buf.len();
                        self.close(if left > 0 { Some(FpmError::Truncated(left)) } else { None }, "closed by zebra");
                    }
                    Ok(n) => {
                        conn.buf.extend_from_slice(&chunk[..n]);
                        self.decode_buffered();
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
                    Err(e) => self.close(None, &format!("read error: {e}")),
                },
                None => std::thread::sleep(TICK),
            }
            let now = Instant::now();
            if self.rib.sweep_due(now, self.timing) {
                let applied = self.rib.sweep(&mut self.changes);
                self.status.sweeps += 1;
                self.status.swept += applied.deletes;
                if applied.deletes > 0 {
                    eprintln!("fpm: replay done, swept {} routes zebra did not re-send", applied.deletes);
                }
                self.flush();
            }
        }
        if self.conn.is_some() {
            self.close(None, "forwarder stopping");
        }
    }

    /// Takes a waiting connection, replacing the current one.
    fn accept(&mut self) {
        match self.listener.accept() {
            Ok((stream, peer)) => {
                if self.conn.is_some() {
                    self.close(None, &format!("replaced by a new connection from {peer}"));
                }
                if let Err(e) = stream.set_nonblocking(false).and_then(|()| stream.set_read_timeout(Some(TICK))) {
                    eprintln!("fpm: connection from {peer} refused: {e}");
                    return;
                }
                eprintln!("fpm: zebra connected from {peer}");
                self.conn = Some(Conn { stream, peer, buf: Vec::new() });
                self.rib.connected(Instant::now());
                self.sink.session_started();
                self.status.sessions += 1;
                self.status.connected = true;
                self.status.peer = Some(peer);
                self.publish();
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => {
                eprintln!("fpm: accept: {e}");
                std::thread::sleep(TICK);
            }
        }
    }

    /// Decodes and applies every complete frame buffered; a bad one closes the session.
    fn decode_buffered(&mut self) {
        let Some(conn) = self.conn.as_mut() else { return };
        let buf = std::mem::take(&mut conn.buf);
        let now = Instant::now();
        let mut at = 0;
        let mut error = None;
        while at < buf.len() {
            let len = match wire::frame_len(&buf[at..]) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            };
            match wire::decode_frame(&buf[at + wire::HEADER_LEN..at + len]) {
                Ok(messages) => {
                    self.status.frames += 1;
                    self.status.messages += messages.len() as u64;
                    let applied = self.rib.apply_frame(messages, now, &mut self.changes);
                    self.status.add(applied);
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
            at += len;
        }
        self.flush();
        match error {
            Some(e) => self.close(Some(e), "bad input"),
            None => {
                if let Some(conn) = self.conn.as_mut() {
                    conn.buf = buf;
                    conn.buf.drain(..at);
                }
            }
        }
    }

    /// Passes the pending changes to the sink and publishes the counters.
    fn flush(&mut self) {
        if !self.changes.is_empty() {
            let failed = self.sink.apply(&self.changes);
            if let Some((key, reason)) = failed.first() {
                eprintln!("fpm: {} of {} route changes not applied; first: {key}: {reason}", failed.len(), self.changes.len());
            }
            self.status.sink_errors += failed.len() as u64;
            self.changes.clear();
        }
        self.publish();
    }

    fn close(&mut self, error: Option<FpmError>, why: &str) {
        let Some(conn) = self.conn.take() else { return };
        let _ = conn.stream.shutdown(std::net::Shutdown::Both);
        self.rib.disconnected();
        self.status.connected = false;
        match error {
            Some(e) => {
                eprintln!(
                    "fpm: session with {} closed on bad input: {e}; keeping the {} routes installed",
                    conn.peer,
                    self.rib.len()
                );
                self.status.session_errors += 1;
                self.status.last_error = Some(e.to_string());
            }
            None => eprintln!("fpm: session with {} ended ({why}); keeping the {} routes installed", conn.peer, self.rib.len()),
        }
        self.publish();
    }

    fn publish(&mut self) {
        self.status.routes = self.rib.len();
        self.status.routes_by_protocol = self.rib.by_protocol().iter().map(|(p, n)| (*p, *n)).collect();
        self.status.sink = self.sink.status();
        *self.shared.lock().unwrap_or_else(PoisonError::into_inner) = self.status.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fpm::wire::tests::{key, BGP_DEFAULT, NEXTHOP_GROUPS, STATIC_ECMP};
    use std::io::Write;
    use std::sync::mpsc;

    /// A sink that reports every batch to the test.
    struct Recorder(mpsc::Sender<Vec<Change>>);

    impl RouteSink for Recorder {
        fn apply(&mut self, changes: &[Change]) -> Vec<(RouteKey, String)> {
            let _ = self.0.send(changes.to_vec());
            Vec::new()
        }
    }

    fn start(sweep_after_ms: u64) -> (Fpm, mpsc::Receiver<Vec<Change>>) {
        let (tx, rx) = mpsc::channel();
        let config = FpmConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            sweep_after: Duration::from_millis(sweep_after_ms),
            replay_quiet: Duration::from_millis(50),
        };
        (Fpm::start(&config, Box::new(Recorder(tx))).unwrap(), rx)
    }

    fn wait(fpm: &Fpm, what: &str, cond: impl Fn(&FpmStatus) -> bool) -> FpmStatus {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let s = fpm.status();
            if cond(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {s:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn changes(rx: &mpsc::Receiver<Vec<Change>>) -> Vec<Change> {
        rx.try_iter().flatten().collect()
    }

    /// A real socket, the captured stream sent in pieces of every size: the same routes.
    #[test]
    fn stream_over_tcp_in_odd_pieces() {
        let (fpm, rx) = start(60_000);
        let mut frames = 0;
        for piece in [1, 3, 7, 64, 1000] {
            let mut s = TcpStream::connect(fpm.local_addr()).unwrap();
            for c in STATIC_ECMP.chunks(piece) {
                s.write_all(c).unwrap();
            }
            frames += 14;
            wait(&fpm, "the whole stream", |st| st.frames >= frames && st.connected);
            drop(s);
            let st = wait(&fpm, "the close", |st| !st.connected);
            assert_eq!((st.routes, st.session_errors), (11, 0), "{st:?}");
        }
        let st = fpm.stop();
        assert_eq!(st.sessions, 5);
        // 11 routes and 3 replaces in the first session. The capture is a history, not a
        // table: sent again, its routes as first sent are changes for 10.9/16 and
        // 2001:db8:9::/48 (5 upserts a session); the other 9 routes are unchanged.
        assert_eq!(st.upserts, 11 + 3 + 4 * 5, "{st:?}");
        assert_eq!(st.unchanged, 4 * 9, "{st:?}");
        assert_eq!(changes(&rx).len(), 34);
        assert_eq!(st.routes_by_protocol, [(Protocol::KERNEL, 6), (Protocol::STATIC, 5)]);
    }

    /// Bad input closes the session with a counted error, the routes stay, and the next
    /// session replays and sweeps.
    #[test]
    fn bad_input_closes_the_session_and_keeps_the_routes() {
        let (fpm, rx) = start(100);
        let mut s = TcpStream::connect(fpm.local_addr()).unwrap();
        s.write_all(BGP_DEFAULT).unwrap();
        let frames = wire::decode_stream(BGP_DEFAULT).len() as u64;
        let held = wait(&fpm, "the stream", |st| st.frames >= frames).routes;
        assert!(held > 1);
        s.write_all(&[1, 1, 0, 8, 0xff, 0xff, 0xff, 0xff]).unwrap();
        let st = wait(&fpm, "the error", |st| st.session_errors == 1);
        assert!(!st.connected);
        assert_eq!(st.routes, held);
        assert!(st.last_error.as_deref().unwrap().contains("netlink"), "{st:?}");

        // zebra's default mode: refused with the line to change.
        let mut s = TcpStream::connect(fpm.local_addr()).unwrap();
        s.write_all(NEXTHOP_GROUPS).unwrap();
        let st = wait(&fpm, "the error", |st| st.session_errors == 2);
        assert!(st.last_error.as_deref().unwrap().contains("no fpm use-next-hop-groups"), "{st:?}");
        assert_eq!(st.routes, held);

        // A session that dies mid-frame: truncated.
        let mut s = TcpStream::connect(fpm.local_addr()).unwrap();
        s.write_all(&STATIC_ECMP[..10]).unwrap();
        drop(s);
        let st = wait(&fpm, "the error", |st| st.session_errors == 3);
        assert!(st.last_error.as_deref().unwrap().contains("inside a frame"), "{st:?}");
        assert_eq!((st.routes, st.sweeps), (held, 0));
        let _ = changes(&rx);

        // A good session re-sends one route only, as held: nothing changes until the replay
        // is over, then the rest is swept.
        let mut s = TcpStream::connect(fpm.local_addr()).unwrap();
        s.write_all(&STATIC_ECMP[..wire::frame_len(STATIC_ECMP).unwrap().unwrap()]).unwrap();
        let st = wait(&fpm, "the sweep", |st| st.sweeps == 1);
        assert_eq!((st.routes, st.swept, st.unchanged), (1, held as u64 - 1, 1), "{st:?}");
        let got = changes(&rx);
        assert_eq!(got.len(), held - 1);
        assert!(got.iter().all(|c| matches!(c, Change::Delete(k) if *k != key("10.0.2.0/24"))), "{got:?}");
        drop(s);
    }
}
