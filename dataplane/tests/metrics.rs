//! `/metrics` of the running binary: what a scrape holds (every family, counters that
//! move, text that `promtool check metrics` accepts), the HTTP errors on bad requests, and
//! that slow, silent and many clients are cut off or turned away while forwarding goes on.
//!
//! Each forwarder runs on net_null (`--no-huge`, `--no-pci`, its own file prefix) with the
//! endpoint on a free loopback port. `promtool` comes with Debian's `prometheus` package
//! (ci/setup.sh installs it).

mod common;
mod scrape;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use scrape::{exchange, request, scrape, value, Running};

/// The endpoint's own limits (dataplane::metrics::http).
use dataplane::metrics::http::{HEADER_TIMEOUT, MAX_CONNECTIONS, MAX_HEADER_BYTES};

/// The labels of the second net_null port, the one the pair transmits on.
const NULL1: &str = r#"{port="null1",port_id="1",driver="net_null"}"#;

fn processed(text: &str) -> f64 {
    value(text, "dataplane_softnet_processed_packets_total{lcore=\"1\"}")
}

#[test]
fn a_scrape_holds_every_family_and_promtool_accepts_it() {
    let mut fwd = Running::start("families", |p| scrape::null_pair_with_metrics(p, ""));
    // The endpoint answers before the first publication of port counters: wait for one.
    let tx = |t: &str| value(t, &format!("dataplane_port_tx_packets_total{}", NULL1));
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        let text = scrape(fwd.addr);
        if tx(&text) > 0.0 || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(600)); // more than one publication (250 ms)
    let second = scrape(fwd.addr);
    for family in [
        "dataplane_port_rx_packets_total",
        "dataplane_port_tx_packets_total",
        "dataplane_port_rx_bytes_total",
        "dataplane_port_tx_bytes_total",
        "dataplane_port_rx_missed_packets_total",
        "dataplane_port_rx_nombuf_total",
        "dataplane_port_rx_errors_total",
        "dataplane_port_tx_errors_total",
        "dataplane_port_link_up",
        "dataplane_queue_rx_packets_total",
        "dataplane_queue_rx_bursts_total",
        "dataplane_softnet_processed_packets_total",
        "dataplane_softnet_dropped_packets_total",
        "dataplane_softnet_tx_packets_total",
        "dataplane_softnet_time_squeeze_total",
        "dataplane_softnet_busy_seconds_total",
        "dataplane_softnet_rounds_total",
        "dataplane_dropped_packets_total",
        "dataplane_rx_to_tx_latency_seconds_bucket",
        "dataplane_rx_to_tx_latency_seconds_sum",
        "dataplane_rx_to_tx_latency_seconds_count",
        "dataplane_pool_size_objects",
        "dataplane_pool_in_use_objects",
        "dataplane_proto_memory_allocated_pages",
        "dataplane_proto_memory_under_pressure",
        "dataplane_proto_memory_failures_total",
        "dataplane_memory_group_usage_bytes",
        "dataplane_metrics_refused_connections_total",
    ] {
        assert!(scrape::sample_names(&second).contains(family), "no {family} in\n{second}");
    }
    assert_eq!(value(&second, &format!("dataplane_port_link_up{NULL1}")), 1.0);
    assert!(tx(&second) > tx(&first) && tx(&first) > 0.0, "{} then {}", tx(&first), tx(&second));
    assert!(processed(&second) > processed(&first));
    assert!(value(&second, "dataplane_rx_to_tx_latency_seconds_count") > 0.0, "no latency samples:\n{second}");
    assert_eq!(value(&second, "dataplane_pool_size_objects{pool=\"mbuf_pool_s0\"}"), 8192.0);

    // Debian's promtool (Prometheus 2.42) lints the text format: names, types, help.
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (Debian package prometheus; ci/setup.sh installs it)");
    promtool.stdin.take().unwrap().write_all(second.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // OpenMetrics when asked for, as Prometheus does.
    let om = exchange(fwd.addr, &request("GET", "/metrics", &["Accept: application/openmetrics-text; version=1.0.0"]))
        .unwrap()
        .unwrap();
    assert_eq!(om.header("content-type"), Some("application/openmetrics-text; version=1.0.0; charset=utf-8"));
    assert!(om.body.ends_with("# EOF\n") && om.body.contains("# UNIT dataplane_port_rx_bytes bytes\n"), "{}", om.body);
    fwd.stop_clean();
}

#[test]
fn bad_requests_get_http_errors() {
    let mut fwd = Running::start("badreq", |p| scrape::null_pair_with_metrics(p, ""));
    let addr = fwd.addr;
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let r = exchange(addr, &request(method, "/metrics", &["Content-Length: 0"])).unwrap().unwrap();
        assert_eq!(r.status, 405, "{method}: {r:?}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method}: {r:?}");
    }
    for path in ["/", "/metricsx", "/metrics/", "/metrics/x", "/debug/pprof"] {
        assert_eq!(exchange(addr, &request("GET", path, &[])).unwrap().unwrap().status, 404, "{path}");
    }
    // A query string does not change the path.
    assert_eq!(exchange(addr, &request("GET", "/metrics?name[]=x", &[])).unwrap().unwrap().status, 200);
    // HEAD: the headers of a GET, no body.
    let head = exchange(addr, &request("HEAD", "/metrics", &[])).unwrap().unwrap();
    assert_eq!((head.status, head.body.as_str()), (200, ""), "{head:?}");
    // Not HTTP, a broken request line, headers beyond the limit: hyper's 400 and 431.
    for junk in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nBad Header\r\n\r\n",
    ] {
        let r = exchange(addr, junk).unwrap();
        assert_eq!(r.as_ref().map(|r| r.status), Some(400), "{junk:?}: {r:?}");
    }
    let big = format!("X-Big: {}", "a".repeat(MAX_HEADER_BYTES));
    let r = exchange(addr, &request("GET", "/metrics", &[&big])).unwrap();
    assert_eq!(r.map(|r| r.status), Some(431));
    // Several requests on one kept-alive connection, as Prometheus scrapes.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\nGET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    let statuses: Vec<&str> = all.match_indices("HTTP/1.1 ").map(|(i, _)| &all[i + 9..i + 12]).collect();
    assert_eq!(statuses, ["200", "404", "200"], "{all}");
    assert!(fwd.is_running());
    fwd.stop_clean();
}

/// Silent and trickling clients hold every connection slot: more connections are closed
/// at once, the slow ones are cut after the header timeout, scrapes work again, and the
/// worker forwarded throughout.
#[test]
fn slow_and_silent_clients_are_cut_off_and_bounded() {
    let mut fwd = Running::start("slow", |p| scrape::null_pair_with_metrics(p, ""));
    let addr = fwd.addr;
    let before = scrape(addr);
    std::thread::sleep(Duration::from_millis(300)); // let the scrape's connection go
    let started = Instant::now();
    // Half of them connect and say nothing; the other half send a header a byte at a time.
    let mut holders: Vec<TcpStream> = (0..MAX_CONNECTIONS).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300)); // accepted by now
    let trickle: Vec<(TcpStream, u8)> = holders.drain(MAX_CONNECTIONS / 2..).map(|s| (s, 0)).collect();
    let trickler = std::thread::spawn(move || {
        let mut trickle = trickle;
        let line = b"GET /metrics HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let until = Instant::now() + HEADER_TIMEOUT * 3;
        let mut cut = 0;
        while Instant::now() < until && cut < trickle.len() {
            cut = 0;
            for (s, i) in &mut trickle {
                if usize::from(*i) < line.len() && s.write_all(&line[usize::from(*i)..usize::from(*i) + 1]).is_ok() {
                    *i += 1;
                } else {
                    cut += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        cut
    });
    // Every slot is taken: a scrape now is closed without a response.
    let refused = exchange(addr, &request("GET", "/metrics", &[]));
    assert!(matches!(refused, Ok(None)), "a connection over the limit got {refused:?}");
    // The silent ones are closed by the server within the header timeout (read: EOF).
    for s in &mut holders {
        s.set_read_timeout(Some(HEADER_TIMEOUT * 2)).unwrap();
        let mut b = [0u8; 256];
        match s.read(&mut b) {
            Ok(n) => {
                let text = String::from_utf8_lossy(&b[..n]);
                assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "a silent client got {text:?}");
            }
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "a silent client was not closed: {e}"),
        }
    }
    let cut = trickler.join().unwrap();
    assert_eq!(cut, MAX_CONNECTIONS - MAX_CONNECTIONS / 2, "trickling clients still connected");
    assert!(started.elapsed() < HEADER_TIMEOUT * 3, "cut off only after {:?}", started.elapsed());
    let after = scrape(addr);
    assert!(value(&after, "dataplane_metrics_refused_connections_total") >= 1.0, "{after}");
    assert!(value(&after, "dataplane_metrics_timed_out_connections_total") >= MAX_CONNECTIONS as f64, "{after}");
    assert!(processed(&after) > processed(&before), "the worker stopped forwarding");
    fwd.stop_clean();
}

/// 32 clients scraping at once, 8 times each: every response is a whole 200, a client
/// over the connection limit sees a close (and retries), and none hangs.
#[test]
fn many_parallel_scrapes() {
    let mut fwd = Running::start("parallel", |p| scrape::null_pair_with_metrics(p, ""));
    let addr = fwd.addr;
    let clients: Vec<_> = (0..32)
        .map(|_| {
            std::thread::spawn(move || {
                let (mut ok, mut closed) = (0, 0);
                while ok < 8 {
                    match exchange(addr, &request("GET", "/metrics", &[])).unwrap() {
                        Some(r) => {
                            assert_eq!(r.status, 200, "{r:?}");
                            assert_eq!(r.header("content-length").unwrap().parse::<usize>().unwrap(), r.body.len());
                            assert!(r.body.contains("dataplane_port_tx_packets_total{"));
                            ok += 1;
                        }
                        None => {
                            closed += 1;
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                    assert!(closed < 1000, "turned away 1000 times");
                }
                closed
            })
        })
        .collect();
    let closed: u32 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    println!("32 x 8 scrapes: {closed} connections turned away over the limit of {MAX_CONNECTIONS}");
    let text = scrape(addr);
    assert_eq!(value(&text, "dataplane_metrics_refused_connections_total"), f64::from(closed));
    fwd.stop_clean();
}

/// A real forwarder with as many ports as Debian's DPDK allows (`RTE_MAX_ETHPORTS` = 32:
/// net_null ports in 16 pairs) polled by one worker (this machine has 2 cores), accounting
/// on: every port in the scrape, and the scrape's size and time as a client sees them
/// printed for the README (`--nocapture`). The 64-port, 16-lcore figure comes from a
/// synthetic snapshot (the library's `scrape_of_64_ports_and_16_lcores`).
#[test]
fn scrape_of_32_net_null_ports() {
    const PORTS: usize = dpdk_sys::RTE_MAX_ETHPORTS as usize;
    let mut fwd = Running::start("64ports", |prefix| {
        let mut c = format!(
            "[eal]\nfile_prefix = \"{prefix}\"\nargs = {}\n[forward]\npairs = [{}]\n[accounting]\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
            common::eal_args_toml(),
            (0..PORTS / 2).map(|i| format!("[\"p{}\", \"p{}\"]", 2 * i, 2 * i + 1)).collect::<Vec<_>>().join(", ")
        );
        for p in 0..PORTS {
            c += &format!(
                "[[port]]\nname = \"p{p}\"\ndevice = \"net_null{p}\"\nargs = \"size=64,copy=0\"\nrx_desc = 64\ntx_desc = 64\n"
            );
        }
        let rx: Vec<String> = (0..PORTS).map(|p| format!("{{ port = \"p{p}\", queue = 0 }}")).collect();
        c + &format!("[[worker]]\nlcore = 1\nrx = [{}]\n", rx.join(", "))
    });
    let mut times = Vec::new();
    let mut body = String::new();
    for _ in 0..21 {
        let t = Instant::now();
        body = scrape(fwd.addr);
        times.push(t.elapsed());
    }
    times.sort();
    let samples = body.lines().filter(|l| !l.starts_with('#')).count();
    println!(
        "real scrape, {PORTS} net_null ports, 1 worker, accounting on: {} bytes, {samples} samples, {:?} per scrape (median of 21, connect to last byte)",
        body.len(),
        times[10]
    );
    let rx = body.lines().filter(|l| l.starts_with("dataplane_port_rx_packets_total{")).count();
    assert_eq!(rx, PORTS);
    assert!(value(&body, r#"dataplane_port_tx_packets_total{port="p31",port_id="31",driver="net_null"}"#) > 0.0, "{body}");
    // A group per port, the slow path's and the neighbour queue's.
    assert_eq!(body.lines().filter(|l| l.starts_with("dataplane_memory_group_usage_bytes{")).count(), PORTS + 2);
    fwd.stop_clean();
}
