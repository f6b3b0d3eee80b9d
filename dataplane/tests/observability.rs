//! DPDK's own tools against a running forwarder: `dpdk-telemetry.py` reads the
//! `/dataplane/*` commands, `dpdk-proc-info` (a secondary process) reads the port
//! counters, and `dpdk-dumpcap` captures through rte_pdump.
//!
//! proc-info and dumpcap attach as secondary processes, which needs the primary on
//! hugepages with its shared config (not `--no-huge`, not `--in-memory`). Without free
//! hugepages (ci/setup.sh reserves them as root) the test says so and checks telemetry
//! only, which works either way.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_hugepages() -> u64 {
    std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// One telemetry command's reply, or `None` while the forwarder's socket is not up.
fn try_telemetry(prefix: &str, cmd: &str) -> Option<serde_json::Value> {
    let mut child = Command::new("/usr/bin/python3")
        .args(["/usr/bin/dpdk-telemetry.py", "-f", prefix])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dpdk-telemetry.py runs (package dpdk-dev)");
    child.stdin.take().unwrap().write_all(format!("{cmd}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with('{'))?;
    Some(serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON {line}: {e}")))
}

fn telemetry(prefix: &str, cmd: &str) -> serde_json::Value {
    try_telemetry(prefix, cmd).unwrap_or_else(|| panic!("no telemetry reply to {cmd}"))
}

#[test]
fn telemetry_proc_info_and_dumpcap_see_the_running_forwarder() {
    let hugepages = free_hugepages() >= 300;
    if !hugepages {
        eprintln!("SKIP proc-info and dumpcap: no free 2 MiB hugepages (run ci/setup.sh as root); checking telemetry only");
    }
    let prefix = common::unique_prefix("obs");
    let _runtime = common::RuntimeDir(prefix.clone());
    let dir = common::TempDir::new("obs");
    let memory = if hugepages { r#"["-m", "512"]"# } else { r#"["--no-huge", "-m", "512"]"# };
    let config = format!(
        r#"
[eal]
file_prefix = "{prefix}"
args = {memory}
[forward]
pairs = [["p0", "p1"]]
[[port]]
name = "p0"
device = "net_null0"
[[port]]
name = "p1"
device = "net_null1"
[[worker]]
lcore = 1
rx = [{{ port = "p0", queue = 0 }}, {{ port = "p1", queue = 0 }}]
"#
    );
    let cfg = dir.join("obs.toml");
    std::fs::write(&cfg, config).unwrap();
    let fwd = Command::new(env!("CARGO_BIN_EXE_dataplane"))
        .args(["--config", cfg.to_str().unwrap(), "--duration", "6", "--stats-interval", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Telemetry: wait until the forwarder published its first sections.
    let started = Instant::now();
    let stats = loop {
        let v = try_telemetry(&prefix, "/dataplane/stats");
        if let Some(v) = v.as_ref().filter(|v| v["/dataplane/stats"]["rx_packets"].as_u64().unwrap_or(0) > 0) {
            break v.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(6), "no telemetry stats: {v:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let s = &stats["/dataplane/stats"];
    assert_eq!(s["ports"]["p0"]["driver"], "net_null", "{s}");
    assert!(s["ports"]["p1"]["opackets"].as_u64().unwrap() > 0, "{s}");
    let softnet = telemetry(&prefix, "/dataplane/softnet");
    let l1 = &softnet["/dataplane/softnet"]["lcore1"];
    assert!(l1["processed"].as_u64().unwrap() > 0 && l1["time_squeeze"].as_u64().is_some(), "{softnet}");
    let pools = telemetry(&prefix, "/dataplane/pools");
    assert!(pools["/dataplane/pools"]["mbuf_pool_s0"]["size"].as_u64().unwrap() > 0, "{pools}");
    let latency = telemetry(&prefix, "/dataplane/latency");
    assert_eq!(latency["/dataplane/latency"]["unit"], "ns", "{latency}");
    // DPDK's own ethdev telemetry still answers too.
    let ethdev = telemetry(&prefix, "/ethdev/stats,0");
    assert!(ethdev["/ethdev/stats"]["ipackets"].as_u64().unwrap() > 0, "{ethdev}");

    if hugepages {
        let out = Command::new("dpdk-proc-info")
            .args(["--file-prefix", &prefix, "--no-pci", "--log-level", "lib.eal:error", "--", "--stats"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "dpdk-proc-info failed: {text} {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("NIC statistics for port 0") && text.contains("RX-packets"), "{text}");

        let cap = dir.join("cap.pcapng");
        let out = common::dumpcap_command()
            .args(["--file-prefix", &prefix, "-i", "0", "-c", "64", "-w", cap.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "dpdk-dumpcap failed: {}", String::from_utf8_lossy(&out.stderr));
        let captured = std::fs::metadata(&cap).map(|m| m.len()).unwrap_or(0);
        assert!(captured > 64 * 64, "dpdk-dumpcap wrote {captured} bytes");
    }

    let out = fwd.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "forwarder failed: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(": full"), "{stdout}");
}
