//! Helpers of the `/metrics` tests: a forwarder running with its endpoint on a free
//! loopback port, and a plain HTTP/1.1 client over `std::net::TcpStream` (requests
//! written out by hand, so tests can also send what no client library would).

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common;

/// A running `dataplane` whose config has `[metrics] listen = "127.0.0.1:0"`.
pub struct Running {
    child: Option<Child>,
    /// Where `/metrics` is served.
    pub addr: SocketAddr,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
    _dir: common::TempDir,
    _runtime: common::RuntimeDir,
}

/// What a stopped forwarder left.
pub struct Stopped {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Running {
    /// Writes the config `make(prefix)` (which must contain `[metrics]` with port 0 and
    /// `file_prefix = "{prefix}"`), starts the binary with `--duration 60 --stats-interval
    /// 0 --stats-json`, and waits (at most 20 s) for the line naming the endpoint.
    pub fn start(tag: &str, make: impl FnOnce(&str) -> String) -> Running {
        let dir = common::TempDir::new(&format!("met-{tag}"));
        let prefix = common::unique_prefix(&format!("met-{tag}"));
        let runtime = common::RuntimeDir(prefix.clone());
        let cfg = dir.join("config.toml");
        std::fs::write(&cfg, make(&prefix)).unwrap();
        let json = dir.join("report.json");
        let mut child = Command::new(env!("CARGO_BIN_EXE_dataplane"))
            .args(["--config", cfg.to_str().unwrap(), "--duration", "60", "--stats-interval", "0"])
            .args(["--stats-json", json.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run the dataplane binary");
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("metrics: serving http://") {
                    let _ = tx.send(url.trim_end_matches("/metrics").to_owned());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let mut running = Running {
            child: Some(child),
            addr: ([0, 0, 0, 0], 0).into(),
            stdout: Some(stdout),
            stderr: Some(stderr),
            _dir: dir,
            _runtime: runtime,
        };
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => running.addr = a.parse().unwrap_or_else(|e| panic!("bad address {a:?}: {e}")),
            Err(_) => {
                let s = running.stop();
                panic!("the forwarder did not serve /metrics within 20 s ({})\n{}\n{}", s.status, s.stdout, s.stderr);
            }
        }
        running
    }

    /// The forwarder's `--stats-json` report, once it has stopped.
    pub fn report_path(&self) -> std::path::PathBuf {
        self._dir.join("report.json")
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// SIGINT, then waits (20 s at most, then SIGKILL) and collects the output.
    pub fn stop(&mut self) -> Stopped {
        let mut child = self.child.take().expect("stopped once");
        let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                break child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Stopped {
            status,
            stdout: self.stdout.take().unwrap().join().unwrap(),
            stderr: self.stderr.take().unwrap().join().unwrap(),
        }
    }

    /// Stops the forwarder and checks it exited cleanly, with forwarded packets; returns
    /// its `--stats-json` report.
    pub fn stop_clean(&mut self) -> serde_json::Value {
        let s = self.stop();
        assert!(s.status.success(), "the forwarder exited with {}\n{}\n{}", s.status, s.stdout, s.stderr);
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(self.report_path()).unwrap()).unwrap();
        assert_eq!(report["clean"], true, "{report}");
        assert!(report["stats"]["tx_packets"].as_u64().unwrap() > 0, "{report}");
        report
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A response: status code, head (status line and headers, lower-cased names) and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Response {
    /// The value of header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends `request` as is on a new connection and reads until the server closes (10 s at
/// most). `Ok(None)` when the server closed without a byte (or reset the connection).
pub fn exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<Option<Response>> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    if let Err(e) = s.write_all(request) {
        return if is_reset(&e) { Ok(None) } else { Err(e) };
    }
    let mut bytes = Vec::new();
    match s.read_to_end(&mut bytes) {
        Ok(_) => {}
        Err(e) if is_reset(&e) && bytes.is_empty() => return Ok(None),
        Err(e) => return Err(e),
    }
    if bytes.is_empty() {
        return Ok(None);
    }
    Ok(Some(parse_response(&bytes)))
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionAborted
    )
}

/// Splits one response (the whole of what a `Connection: close` exchange read).
pub fn parse_response(bytes: &[u8]) -> Response {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no end of head in {text:?}"));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("bad status line in {head:?}"));
    Response { status, head: head.to_owned(), body: body.to_owned() }
}

/// `method path` with `headers` (each `Name: value`), `Connection: close`.
pub fn request(method: &str, path: &str, headers: &[&str]) -> Vec<u8> {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("Connection: close\r\n\r\n");
    r.into_bytes()
}

/// `GET /metrics`, expecting a complete 200 (Prometheus text format).
pub fn scrape(addr: SocketAddr) -> String {
    let r = exchange(addr, &request("GET", "/metrics", &[])).unwrap().expect("a response");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-length").map(|l| l.parse::<usize>().unwrap()), Some(r.body.len()), "{}", r.head);
    r.body
}

/// The names of every sample in an exposition.
pub fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

/// The value of the one sample whose line starts with `series` (name and labels, as
/// encoded), e.g. `dataplane_softnet_processed_packets_total{lcore="1"}`.
pub fn value(text: &str, series: &str) -> f64 {
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(series) && l[series.len()..].starts_with(' ')).collect();
    assert_eq!(lines.len(), 1, "{series}: {lines:?}");
    lines[0].rsplit(' ').next().unwrap().parse().unwrap()
}

/// Two net_null ports in an io pair, one worker on lcore 1, accounting on, metrics on a
/// free loopback port; `extra` appended.
pub fn null_pair_with_metrics(prefix: &str, extra: &str) -> String {
    format!("{}\n[accounting]\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n{extra}", common::null_pair_config(prefix))
}
