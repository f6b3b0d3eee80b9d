//! The control socket: a UNIX stream socket, a thread that accepts, a thread per client
//! (at most `control.max_clients`), one JSON request per line and one reply per request.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::api::{self, code, ApiError, Reply};
use super::handler::Control;
use crate::config::ControlConfig;

/// Why the socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Another live process serves the path.
    #[error("control.socket: {path} is in use by a running forwarder (another instance with the same eal.file_prefix?); stop it or set [control] socket")]
    InUse {
        /// The path.
        path: PathBuf,
    },
    /// The path exists and is not a socket.
    #[error("control.socket: {path} exists and is not a socket; remove it or set [control] socket")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// Creating the directory, binding or setting the mode failed.
    #[error("control.socket: cannot {what} {path}: {error} (set [control] socket to a writable path)")]
    Io {
        /// What was tried.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
}

/// A bound socket, not yet served: bound before EAL starts, so that a second instance is
/// refused before it touches any hugepage. Removed when dropped.
#[derive(Debug)]
pub struct Bound {
    listener: UnixListener,
    path: PathBuf,
    ino: u64,
}

impl Bound {
    /// Binds `path` (mode 0600, owner the running user), creating its directory (0755) if
    /// needed. A socket file no process answers on is stale and replaced.
    ///
    /// # Errors
    /// [`ServerError`]: in use by a live forwarder, not a socket, or an I/O error.
    pub fn bind(path: &Path) -> Result<Bound, ServerError> {
        let io = |what, error| ServerError::Io { what, path: path.to_owned(), error };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
        }
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(ServerError::NotASocket { path: path.to_owned() });
            }
            if UnixStream::connect(path).is_ok() {
                return Err(ServerError::InUse { path: path.to_owned() });
            }
            std::fs::remove_file(path).map_err(|e| io("remove the stale socket", e))?;
        }
        let listener = UnixListener::bind(path).map_err(|e| io("bind", e))?;
        // Nobody knows the path yet (nothing is served before EAL and the forwarder are up),
        // so the moment between bind and chmod gives no one a way in.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| io("set the mode of", e))?;
        let ino = std::fs::metadata(path).map_err(|e| io("stat", e))?.ino();
        Ok(Bound { listener, path: path.to_owned(), ino })
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        // Only if it is still ours (not replaced by someone after a stale-socket check).
        if std::fs::metadata(&self.path).is_ok_and(|m| m.ino() == self.ino) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The running server; [`Server::stop`] (or drop) ends it, joins every client thread and
/// removes the socket.
#[derive(Debug)]
pub struct Server {
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    clients: Arc<Mutex<Vec<JoinHandle<()>>>>,
    bound: Option<Arc<Bound>>,
}

/// How often blocked threads look at the stop flag.
const TICK: Duration = Duration::from_millis(50);

impl Server {
    /// Serves `control` on `bound` with `limits`.
    ///
    /// # Errors
    /// The accept thread could not be spawned.
    pub fn start(bound: Bound, control: Arc<Control>, limits: ControlConfig) -> std::io::Result<Server> {
        bound.listener.set_nonblocking(true)?;
        let bound = Arc::new(bound);
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::new(Mutex::new(Vec::new()));
        let (s, c, b) = (stop.clone(), clients.clone(), bound.clone());
        let accept =
            std::thread::Builder::new().name("control".into()).spawn(move || accept_loop(&b, &control, &limits, &s, &c))?;
        Ok(Server { stop, accept: Some(accept), clients, bound: Some(bound) })
    }

    /// Stops accepting, waits for every client thread (each ends within a tick once its
    /// command is done), removes the socket.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        let handles: Vec<JoinHandle<()>> = std::mem::take(&mut *self.clients.lock().unwrap_or_else(|e| e.into_inner()));
        for h in handles {
            let _ = h.join();
        }
        self.bound = None;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(
    bound: &Bound,
    control: &Arc<Control>,
    limits: &ControlConfig,
    stop: &Arc<AtomicBool>,
    clients: &Mutex<Vec<JoinHandle<()>>>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        let stream = match bound.listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(TICK / 5);
                continue;
            }
            Err(e) => {
                eprintln!("control: accept: {e}");
                std::thread::sleep(TICK);
                continue;
            }
        };
        let mut list = clients.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|h| !h.is_finished());
        if active.load(Ordering::Acquire) >= limits.max_clients as usize {
            let busy = ApiError::new(
                code::BUSY,
                format!("{} clients are connected already (control.max_clients)", limits.max_clients),
                None,
            );
            let mut s = stream;
            let _ = s.set_write_timeout(Some(TICK));
            let _ = write_reply(&mut s, &Reply::Error(busy));
            continue;
        }
        active.fetch_add(1, Ordering::AcqRel);
        let (control, stop, active, limits) = (control.clone(), stop.clone(), active.clone(), limits.clone());
        let spawned = std::thread::Builder::new().name("control-client".into()).spawn(move || {
            serve(stream, &control, &limits, &stop);
            active.fetch_sub(1, Ordering::AcqRel);
        });
        match spawned {
            Ok(h) => list.push(h),
            Err(e) => eprintln!("control: cannot spawn a client thread: {e}"),
        }
    }
}

fn write_reply(s: &mut UnixStream, reply: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(reply).expect("replies serialise");
    line.push(b'\n');
    s.write_all(&line)
}

/// What reading a request line gave.
enum Line {
    Request(String),
    /// The client closed (cleanly between requests, or in the middle of one).
    Closed,
    TooLong,
    Idle,
    Stopping,
    BadUtf8,
}

fn serve(stream: UnixStream, control: &Control, limits: &ControlConfig, stop: &AtomicBool) {
    if stream.set_read_timeout(Some(TICK)).is_err() {
        return;
    }
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let _ = writer.set_write_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream);
    loop {
        let reply = match read_line(&mut reader, limits, stop) {
            Line::Request(text) => Reply::from(api::parse_request(&text).and_then(|cmd| control.handle(cmd))),
            Line::Closed | Line::Stopping => return,
            Line::TooLong => {
                let e = ApiError::new(
                    code::LINE_TOO_LONG,
                    format!("a request line may hold at most {} bytes (control.max_request_bytes)", limits.max_request_bytes),
                    None,
                );
                let _ = write_reply(&mut writer, &Reply::Error(e));
                return;
            }
            Line::Idle => {
                let e = ApiError::new(
                    code::TIMEOUT,
                    format!("nothing received for {} ms (control.idle_timeout_ms); closing", limits.idle_timeout_ms),
                    None,
                );
                let _ = write_reply(&mut writer, &Reply::Error(e));
                return;
            }
            Line::BadUtf8 => Reply::Error(ApiError::new(code::BAD_JSON, "the line is not UTF-8", None)),
        };
        if write_reply(&mut writer, &reply).is_err() {
            return;
        }
    }
}

/// Reads up to a newline, at most `max_request_bytes`, giving up after the idle timeout
/// without a byte, or when the server stops.
fn read_line(r: &mut BufReader<UnixStream>, limits: &ControlConfig, stop: &AtomicBool) -> Line {
    let mut line: Vec<u8> = Vec::new();
    let idle = Duration::from_millis(u64::from(limits.idle_timeout_ms));
    let mut last = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Line::Stopping;
        }
        let (done, used) = match r.fill_buf() {
            Ok([]) => return Line::Closed,
            Ok(buf) => match buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    line.extend_from_slice(&buf[..i]);
                    (true, i + 1)
                }
                None => {
                    line.extend_from_slice(buf);
                    (false, buf.len())
                }
            },
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                if last.elapsed() >= idle {
                    return Line::Idle;
                }
                continue;
            }
            Err(_) => return Line::Closed,
        };
        r.consume(used);
        last = Instant::now();
        if line.len() > limits.max_request_bytes as usize {
            // Drain what is already buffered so the reply is not lost in a reset.
            let _ = r.get_mut().set_nonblocking(true);
            let _ = std::io::copy(&mut r.by_ref().take(1 << 20), &mut std::io::sink());
            return Line::TooLong;
        }
        if done {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return match String::from_utf8(line) {
                Ok(s) if s.trim().is_empty() => {
                    line = Vec::new();
                    continue;
                }
                Ok(s) => Line::Request(s),
                Err(_) => Line::BadUtf8,
            };
        }
    }
}
