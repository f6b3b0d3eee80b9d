//! A real Prometheus against the running binary, and the shipped `configs/prometheus/`.
//!
//! - Debian's `prometheus` (2.42; ci/setup.sh installs it), started here with its own
//!   config and data directory (a temp dir) on a free loopback port, scrapes the
//!   forwarder's `/metrics` every second and evaluates the shipped alerting rules; its HTTP
//!   API then answers `rate()` of the TX packets (> 0) and `histogram_quantile(0.99, ...)` of
//!   the latency (a number), every Grafana panel's query, and the rules' health. It is
//!   stopped by its PID.
//! - `promtool` checks the shipped scrape config and rules and runs the rules' unit tests.
//! - The Grafana dashboard parses, and every metric name it uses is in a real scrape.

mod common;
mod scrape;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use scrape::{exchange, request, Running};
use serde_json::Value;

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/prometheus").join(name)
}

fn promtool(args: &[&str]) -> String {
    let out =
        Command::new("promtool").args(args).output().expect("promtool runs (Debian package prometheus; ci/setup.sh installs it)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn promtool_checks_the_shipped_config_and_rules() {
    let config = promtool(&["check", "config", shipped("prometheus.yml").to_str().unwrap()]);
    assert!(config.contains("SUCCESS: 1 rule files found"), "{config}");
    let rules = promtool(&["check", "rules", shipped("rules.yml").to_str().unwrap()]);
    assert!(rules.contains("SUCCESS: 8 rules found"), "{rules}");
    // The alerts fire on made-up series as their tests expect (and only those).
    let tests = promtool(&["test", "rules", shipped("rules_test.yml").to_str().unwrap()]);
    assert!(tests.contains("SUCCESS"), "{tests}");
}

/// Every PromQL expression of the dashboard (panels and template variables).
fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(shipped("grafana-dashboard.json")).unwrap();
    let dash: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert_eq!(dash["uid"], "dataplane");
    let mut exprs = Vec::new();
    for panel in dash["panels"].as_array().expect("panels") {
        for t in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(t["expr"].as_str().expect("every target has an expr").to_owned());
        }
    }
    for v in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"]["query"].as_str() {
            exprs.push(q.to_owned());
        }
    }
    assert!(exprs.len() >= 20, "{exprs:?}");
    exprs
}

/// The `dataplane_*` names an expression uses.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("dataplane_") {
        let name: String = rest[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        rest = &rest[i + name.len()..];
        names.insert(name);
    }
    names
}

#[test]
fn the_dashboard_uses_only_scraped_metrics() {
    let mut fwd = Running::start("grafana", |p| scrape::null_pair_with_metrics(p, ""));
    let have = scrape::sample_names(&scrape::scrape(fwd.addr));
    let used: BTreeSet<String> = dashboard_queries().iter().flat_map(|e| metric_names(e)).collect();
    assert!(used.len() >= 20, "{used:?}");
    let missing: Vec<&String> = used.difference(&have).collect();
    assert!(missing.is_empty(), "the dashboard uses metrics no scrape has: {missing:?}");
    fwd.stop_clean();
}

/// A Prometheus server of this test's own, stopped (SIGTERM to its PID) on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Prometheus {
    /// Starts `prometheus` with a config scraping `target` every second and evaluating the
    /// shipped rules, its data in `dir`, on a free loopback port; waits until it is ready.
    fn start(dir: &Path, target: SocketAddr) -> Prometheus {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {rules}\nscrape_configs:\n  - job_name: dataplane\n    scrape_timeout: 1s\n    static_configs:\n      - targets: [\"{target}\"]\n",
                rules = shipped("rules.yml").display()
            ),
        )
        .unwrap();
        // A free port: bound by the kernel's choice, released just before Prometheus binds it.
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let log = dir.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("prometheus runs (Debian package prometheus; ci/setup.sh installs it)");
        let mut p = Prometheus { child, addr, log };
        let started = Instant::now();
        while !matches!(exchange(addr, &request("GET", "/-/ready", &[])), Ok(Some(r)) if r.status == 200) {
            assert!(p.child.try_wait().unwrap().is_none(), "prometheus exited:\n{}", p.log_text());
            assert!(started.elapsed() < Duration::from_secs(30), "prometheus not ready after 30 s:\n{}", p.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET `path` on the HTTP API, as JSON with `"status": "success"`. HTTP/1.0, so the
    /// reply comes whole, not in chunks.
    fn api(&self, path: &str) -> Value {
        let r =
            exchange(self.addr, format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes()).unwrap().expect("a response");
        let v: Value = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.body));
        assert_eq!(v["status"], "success", "{path}: {v}");
        v
    }

    /// An instant query's result vector.
    fn query(&self, promql: &str) -> Vec<Value> {
        self.api(&format!("/api/v1/query?query={}", urlencode(promql)))["data"]["result"].as_array().unwrap().clone()
    }

    /// SIGTERM to the PID; waits for the exit (10 s, then SIGKILL).
    fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop();
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A sample's value (`"value": [time, "text"]`) as a number.
fn sample_value(sample: &Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

#[test]
fn prometheus_scrapes_the_forwarder() {
    let started = Instant::now();
    let mut fwd = Running::start("prom", |p| scrape::null_pair_with_metrics(p, ""));
    let dir = common::TempDir::new("met-prom");
    let mut prom = Prometheus::start(dir.path(), fwd.addr);

    // rate() over 10 s needs two scrapes: poll until every port shows TX (20 s at most).
    let tx = "rate(dataplane_port_tx_packets_total[10s])";
    let rates = loop {
        let r = prom.query(tx);
        if r.len() == 2 && r.iter().all(|s| sample_value(s) > 0.0) {
            break r;
        }
        assert!(started.elapsed() < Duration::from_secs(25), "{tx}: {r:?}\n{}", prom.log_text());
        std::thread::sleep(Duration::from_millis(250));
    };
    println!("{tx}: {:?}", rates.iter().map(|s| (s["metric"]["port"].clone(), sample_value(s))).collect::<Vec<_>>());
    let q = "histogram_quantile(0.99, rate(dataplane_rx_to_tx_latency_seconds_bucket[10s]))";
    let p99 = prom.query(q);
    assert_eq!(p99.len(), 1, "{q}: {p99:?}");
    let seconds = sample_value(&p99[0]);
    assert!(seconds.is_finite() && seconds > 0.0 && seconds < 0.1, "{q} = {seconds}");
    println!("{q} = {seconds:e} s");

    // The target is up and scraped without error.
    let targets = prom.api("/api/v1/targets");
    let active = &targets["data"]["activeTargets"];
    assert_eq!(active.as_array().unwrap().len(), 1, "{targets}");
    assert_eq!((active[0]["health"].as_str(), active[0]["lastError"].as_str()), (Some("up"), Some("")), "{targets}");
    // Units reach Prometheus only through OpenMetrics's `# UNIT`: it negotiated OpenMetrics.
    let meta = prom.api("/api/v1/targets/metadata?metric=dataplane_port_rx_bytes");
    assert_eq!(meta["data"][0]["unit"], "bytes", "{meta}");

    // Every dashboard query evaluates (Grafana's variables as Grafana would fill them).
    for expr in dashboard_queries() {
        let promql = expr.replace("$__rate_interval", "10s").replace("$instance", ".*");
        let promql = match promql.strip_prefix("label_values(") {
            Some(rest) => rest.split(',').next().unwrap().to_owned(),
            None => promql,
        };
        let result = prom.query(&promql);
        let is_memory = ["proto_memory", "memory_group"].iter().any(|m| promql.contains(m));
        let may_be_empty = promql.contains("> 0"); // drops by reason: none here
        assert!(!result.is_empty() || may_be_empty, "{promql}: no result");
        assert!(!is_memory || !result.is_empty(), "{promql}: no memory series ([accounting] is on)");
    }

    // The shipped rules load and evaluate without error against the real series.
    let rules = loop {
        let r = prom.api("/api/v1/rules");
        let group = &r["data"]["groups"][0];
        if group["lastEvaluation"].as_str().is_some_and(|t| !t.starts_with("0001")) {
            break r;
        }
        assert!(started.elapsed() < Duration::from_secs(40), "rules never evaluated: {r}");
        std::thread::sleep(Duration::from_millis(250));
    };
    let list = rules["data"]["groups"][0]["rules"].as_array().unwrap();
    assert_eq!(list.len(), 8, "{rules}");
    for r in list {
        assert_eq!(r["health"], "ok", "{r}");
    }

    let status = prom.stop();
    assert!(status.success(), "prometheus exited with {status} on SIGTERM:\n{}", prom.log_text());
    fwd.stop_clean();
    println!("prometheus test: {:?} in all", started.elapsed());
}
