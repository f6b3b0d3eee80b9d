//! The HTTP side of `/metrics`: hyper's HTTP/1.1 server on a current-thread tokio runtime,
//! all of it in one OS thread (`dp-metrics`) however many clients come.
//!
//! - `GET /metrics` (and `HEAD`): 200, the exposition ([`super`]'s "Format"), encoded from the
//!   latest publication; empty (`# EOF` only in OpenMetrics) before the first.
//! - Any other method on `/metrics`: 405 with `Allow: GET, HEAD`. Any other path: 404.
//! - Parsing is hyper's: a malformed request gets 400 and a close, headers above
//!   [`MAX_HEADER_BYTES`] 431.
//! - At most [`MAX_CONNECTIONS`] connections at once: one more is accepted and closed at
//!   once (counted in `dataplane_metrics_refused_connections_total`).
//! - A client has [`HEADER_TIMEOUT`] to send a request's headers, the first one and each
//!   next one on a kept-alive connection; then the connection is closed (counted in
//!   `dataplane_metrics_timed_out_connections_total`). No connection lives longer than
//!   [`CONNECTION_LIFETIME`]: then it is closed after the request in flight, which gets
//!   [`GRACE`] to finish (a client that does not read its response is cut off there).
//!
//! The listening socket is bound by [`MetricsListener::bind`], before EAL starts, so a
//! port in use is reported before any hugepage is touched; [`MetricsListener::serve`]
//! starts the thread once the forwarder runs.

use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::sync::{oneshot, Semaphore};

use super::{families, MetricsSlot};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Time a client has to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest life of one connection (kept alive or not).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// Time the request in flight gets to finish once a connection's life is over.
pub const GRACE: Duration = Duration::from_secs(5);
/// Largest request head (request line and headers) read.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The path served.
pub const PATH: &str = "/metrics";

/// `Content-Type` of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The bound socket, not yet served.
#[derive(Debug)]
pub struct MetricsListener {
    listener: std::net::TcpListener,
}

impl MetricsListener {
    /// Binds `addr` (listening: connections wait in the kernel's backlog until
    /// [`MetricsListener::serve`]).
    ///
    /// # Errors
    /// The `bind` error (`AddrInUse`, `AddrNotAvailable`, `PermissionDenied`).
    pub fn bind(addr: SocketAddr) -> io::Result<MetricsListener> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(MetricsListener { listener })
    }

    /// The address bound (with the port the kernel chose for port 0).
    ///
    /// # Errors
    /// `getsockname`'s.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Starts the `dp-metrics` thread, serving what `slot` holds at each scrape. The thread
    /// inherits the caller's CPU affinity (start it from the control thread).
    ///
    /// # Errors
    /// If the runtime or the thread cannot be created.
    pub fn serve(self, slot: MetricsSlot) -> io::Result<MetricsServer> {
        let addr = self.listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build()?;
        let listener = {
            let _in_runtime = runtime.enter();
            tokio::net::TcpListener::from_std(self.listener)?
        };
        let counters = Arc::new(HttpCounters::default());
        let state = Arc::new(State { registry: registry(slot, counters.clone()), counters });
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("dp-metrics".into())
            .spawn(move || runtime.block_on(accept_loop(listener, state, stopped)))?;
        Ok(MetricsServer { addr, stop: Some(stop), thread: Some(thread) })
    }
}

/// The running endpoint; stops (and joins its thread) on [`MetricsServer::stop`] or drop.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// The address served.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes the listening socket and every connection, and joins the thread.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        drop(self.stop.take()); // the accept loop sees its receiver close
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// What the endpoint counts about itself.
#[derive(Debug, Default)]
struct HttpCounters {
    refused: AtomicU64,
    timed_out: AtomicU64,
}

/// The collector behind the registry: the families of the latest publication, then the
/// endpoint's own counters.
#[derive(Debug)]
struct Scrape {
    slot: MetricsSlot,
    http: Arc<HttpCounters>,
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), fmt::Error> {
        if let Some(p) = self.slot.latest() {
            families::encode_all(&p, &mut e)?;
        }
        let refused = format!("Connections to this endpoint closed at once: {MAX_CONNECTIONS} were open.");
        let timed_out = format!("Connections to this endpoint closed for sending headers slower than {HEADER_TIMEOUT:?}.");
        for (name, help, v) in [
            ("metrics_refused_connections", &refused, &self.http.refused),
            ("metrics_timed_out_connections", &timed_out, &self.http.timed_out),
        ] {
            ConstCounter::new(v.load(Relaxed)).encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)?;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct State {
    registry: Registry,
    counters: Arc<HttpCounters>,
}

async fn accept_loop(listener: tokio::net::TcpListener, state: Arc<State>, mut stopped: oneshot::Receiver<()>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => return,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // Out of file descriptors, or a connection reset before accept: wait a little
            // rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            state.counters.refused.fetch_add(1, Relaxed);
            drop(stream);
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            serve_connection(stream, state).await;
            drop(permit);
        });
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, state: Arc<State>) {
    let _ = stream.set_nodelay(true);
    let service = {
        let state = state.clone();
        service_fn(move |req| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(respond(&req, &state.registry)) }
        })
    };
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).max_buf_size(MAX_HEADER_BYTES);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = tokio::time::sleep(CONNECTION_LIFETIME) => {
            conn.as_mut().graceful_shutdown();
            tokio::time::timeout(GRACE, conn).await.unwrap_or(Ok(()))
        }
    };
    if result.is_err_and(|e| e.is_timeout()) {
        state.counters.timed_out.fetch_add(1, Relaxed);
    }
}

/// The response to one request.
fn respond(req: &Request<Incoming>, registry: &Registry) -> Response<Full<Bytes>> {
    if req.uri().path() != PATH {
        return text(StatusCode::NOT_FOUND, "not found: the metrics are at /metrics\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed: use GET\n");
        r.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let openmetrics =
        req.headers().get_all(ACCEPT).iter().any(|v| v.to_str().is_ok_and(|v| v.contains("application/openmetrics-text")));
    match encode(registry, openmetrics) {
        Ok(body) => {
            let content_type = if openmetrics { OPENMETRICS } else { prometheus_client::encoding::prometheus_text::CONTENT_TYPE };
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            r
        }
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode the metrics\n"),
    }
}

/// The registry a scrape encodes: prefix `dataplane`, the families of what `slot` holds,
/// then the endpoint's own counters.
fn registry(slot: MetricsSlot, http: Arc<HttpCounters>) -> Registry {
    let mut registry = Registry::with_prefix("dataplane");
    registry.register_collector(Box::new(Scrape { slot, http }));
    registry
}

/// What a scrape of an endpoint serving `slot` returns (with the endpoint's own counters
/// at zero): OpenMetrics text when `openmetrics`, else the Prometheus text format 0.0.4.
///
/// # Errors
/// Never in practice (the writer is a `String`); `fmt::Error` if an encoder refuses.
pub fn render(slot: &MetricsSlot, openmetrics: bool) -> Result<String, fmt::Error> {
    encode(&registry(slot.clone(), Arc::default()), openmetrics)
}

fn encode(registry: &Registry, openmetrics: bool) -> Result<String, fmt::Error> {
    let mut body = String::with_capacity(64 << 10);
    if openmetrics {
        prometheus_client::encoding::text::encode(&mut body, registry)?;
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut body, registry)?;
    }
    Ok(body)
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}
