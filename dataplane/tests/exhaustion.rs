//! Exhaustion through the binary: a pool far too small for the traffic, an extension-area
//! pool too small for the traces, and protocol memory limits too small for the TX
//! backlog. Each must be counted, the forwarder must keep forwarding, exit 0, and give
//! every buffer back (every pool full, `clean` in `--stats-json`).
//!
//! The traffic: a net_pcap port reads a file of 20 000 UDP packets (TTL 16) and l3fwd
//! routes them into `loop`, a net_ring vdev whose TX ring is its own RX ring; from there
//! they are routed into it again, TTL - 1 each time, until the TTL runs out. Up to 1023
//! packets wait in the ring at any moment, which a pool of `[pool] mbufs = 1024`,
//! `cache = 0` cannot afford alongside the pcap reader: net_pcap counts `rx_nombuf` for
//! each packet it read but had no buffer for, and the ring's refusals are `tx_full`.
//!
//! ```text
//!   in.pcap --> src --l3fwd--> loop TX --ring--> loop RX --l3fwd--+
//!                                ^--------------------------------+ (TTL - 1, until 1)
//! ```
//! EAL runs only in the children (`--no-huge`, `--no-pci`, a per-pid file prefix).

mod common;

use std::time::Duration;

use serde_json::Value;

const PACKETS: u64 = 20_000;

fn udp_frame(seq: u32, ttl: u8) -> Vec<u8> {
    use dataplane::net::{emit, ethernet::ethertype, ip_proto, MacAddr};
    let (src, dst) = (std::net::Ipv4Addr::new(10, 0, 0, 2), std::net::Ipv4Addr::new(10, 1, 0, (seq % 250) as u8 + 1));
    let udp = emit::udp(src.into(), dst.into(), 1234, 5678, &[0; 18]);
    let ip = emit::Ipv4Repr { ttl, ident: seq as u16, ..emit::Ipv4Repr::new(src, dst, ip_proto::UDP) }.emit(&udp);
    emit::ethernet(MacAddr([2, 0, 0, 0, 0, 0x10]), MacAddr([2, 0, 0, 0, 0, 0x99]), &[], ethertype::IPV4, &ip)
}

/// Runs the loop topology with `extra` config; returns the `--stats-json` report after
/// checking exit 0, `clean`, every pool full and rx = tx + dropped on the worker.
fn run(tag: &str, extra: &str) -> Value {
    run_with(tag, extra, TTL, 2.0, false)
}

/// Each packet loops TTL - 1 times: short enough that the loop is empty well before the
/// run ends, even on a busy machine, so every mbuf is back in the pool at shutdown.
const TTL: u8 = 16;

/// The children pin their worker to lcore 1: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `endless`: net_pcap replays the file for ever (`infinite_rx=1`), so the loop is full
/// when the run stops.
fn run_with(tag: &str, extra: &str, ttl: u8, seconds: f64, endless: bool) -> Value {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = common::TempDir::new(&format!("exhaust-{tag}"));
    let prefix = common::unique_prefix(&format!("exhaust-{tag}"));
    let _runtime = common::RuntimeDir(prefix.clone());
    // net_pcap's infinite_rx holds the whole file in mbufs: keep it small then.
    let count = if endless { 2000 } else { PACKETS as u32 };
    let frames: Vec<Vec<u8>> = (0..count).map(|i| udp_frame(i, ttl)).collect();
    common::write_pcap(&dir.join("in.pcap"), &frames);
    common::write_pcap(&dir.join("empty.pcap"), &[]);
    let mirror = extra.contains("[mirror]");
    let config = format!(
        r#"[eal]
file_prefix = "{prefix}"
args = {eal}
[forward]
mode = "l3fwd"
{extra}
[[port]]
name = "src"
device = "net_pcap0"
args = "rx_pcap={input},tx_pcap={out}{infinite}"
[[port]]
name = "loop"
device = "net_ring0"
{extra_ports}
[[route]]
prefix = "10.1.0.0/16"
port = "loop"
via_mac = "02:00:00:00:01:02"
[[worker]]
lcore = 1
rx = [{{ port = "src", queue = 0 }}, {{ port = "loop", queue = 0 }}{extra_rx}]
"#,
        eal = common::eal_args_toml_with_memory(1024),
        input = dir.join("in.pcap").display(),
        out = dir.join("out.pcap").display(),
        infinite = if endless { ",infinite_rx=1" } else { "" },
        extra_ports = if mirror {
            format!(
                "[[port]]\nname = \"mirror\"\ndevice = \"net_pcap1\"\nargs = \"rx_pcap={},tx_pcap={}\"\n",
                dir.join("empty.pcap").display(),
                dir.join("mirror.pcap").display()
            )
        } else {
            String::new()
        },
        extra_rx = if mirror { ", { port = \"mirror\", queue = 0 }" } else { "" },
    );
    let cfg = dir.join("exhaust.toml");
    std::fs::write(&cfg, config).unwrap();
    let json_path = dir.join("stats.json");
    let out = common::run_dataplane(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--duration",
            &seconds.to_string(),
            "--stats-interval",
            "0",
            "--stats-json",
            json_path.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!("\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    println!("{context}");
    assert!(out.status.success(), "exited with {}{context}", out.status);
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(json["clean"], true, "{context}");
    assert_eq!(json["errors"].as_array().map(Vec::len), Some(0), "{context}");
    for (name, pool) in json["pools"].as_object().unwrap() {
        assert_eq!(pool["in_use"], 0, "pool {name} not full{context}");
        assert_eq!(pool["available"], pool["size"], "pool {name}{context}");
    }
    for line in stdout.lines().filter(|l| l.trim_start().starts_with("pool ")) {
        assert!(line.ends_with(": full"), "{line}{context}");
    }
    let w = json["softnet"].as_object().unwrap().values().next().unwrap().clone();
    let (processed, tx, dropped) =
        (w["processed"].as_u64().unwrap(), w["tx_packets"].as_u64().unwrap(), w["dropped"].as_u64().unwrap());
    // Mirrored clones are sent too: rx + mirrored = tx + dropped.
    let mirrored = w["mirrored"].as_u64().unwrap();
    assert_eq!(processed + mirrored, tx + dropped, "rx + mirrored = tx + dropped{context}");
    let drops: u64 = w["drops"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(drops, dropped, "drops by reason add up{context}");
    // Every packet of the file was either received or counted as rx_nombuf.
    let src = &json["stats"]["ports"]["src"];
    assert!(endless || src["ipackets"].as_u64().unwrap() + src["rx_nombuf"].as_u64().unwrap() == PACKETS, "{context}");
    json
}

#[test]
fn tiny_pool_counts_rx_nombuf_and_recovers() {
    let json = run("pool", "[pool]\nmbufs = 1024\ncache = 0\n");
    let s = &json["stats"];
    let ctx = serde_json::to_string_pretty(&json).unwrap();
    assert_eq!(json["pools"]["mbuf_pool_s0"]["size"], 1024, "{ctx}");
    let nombuf = s["ports"]["src"]["rx_nombuf"].as_u64().unwrap();
    assert!(nombuf > 0, "the pool never ran dry: {ctx}");
    // It kept forwarding while starved: each admitted packet loops until its TTL runs out.
    let admitted = s["ports"]["src"]["ipackets"].as_u64().unwrap();
    assert!(admitted > 0, "{ctx}");
    assert!(s["ports"]["loop"]["rx_packets"].as_u64().unwrap() > 10 * admitted, "{ctx}");
    // Every admitted packet ends as a drop: the ring was full, or its TTL ran out.
    let d = &s["drops"];
    assert_eq!(d["tx_full"].as_u64().unwrap() + d["ttl_expired"].as_u64().unwrap(), admitted, "{ctx}");
    assert_eq!(s["dropped"].as_u64().unwrap(), admitted, "{ctx}");
}

/// The smallest extension-area pool (`areas = 64`) under the heaviest use: a trace and
/// flow metadata on every packet and a mirrored clone (which copies the area) of each.
/// Areas are held only from RX to the TX hand-off, at most a few bursts' worth, so 64
/// suffice here; whatever failed is counted in `ext_failures` (the packet goes on
/// without), nothing is lost, and every area is back at exit.
#[test]
fn small_extension_area_pool_under_mirror_load() {
    let json = run("ext", "[pool]\nmbufs = 8192\n[extensions]\ntrace_every = 1\nflow = true\nareas = 64\n[mirror]\nport = \"mirror\"\nproto = \"udp\"\n");
    let ctx = serde_json::to_string_pretty(&json).unwrap();
    let w = json["softnet"].as_object().unwrap().values().next().unwrap();
    let areas = &json["pools"]["ext_areas"];
    assert_eq!(areas["size"], 64, "{ctx}");
    assert_eq!(areas["in_use"], 0, "{ctx}");
    // Every forwarded packet is UDP, so each one sent into the loop was mirrored once
    // (a failed area copy is counted, and the clone still goes).
    let to_loop = json["stats"]["ports"]["loop"]["tx_packets"].as_u64().unwrap();
    assert!(to_loop > PACKETS, "{ctx}");
    assert_eq!(w["mirrored"].as_u64().unwrap(), json["stats"]["ports"]["mirror"]["tx_packets"].as_u64().unwrap(), "{ctx}");
    assert!(w["ext_failures"].as_u64().is_some(), "{ctx}");
    // The mirror's clones share the packets' data: the mbuf pool is full too (checked in run).
}

#[test]
fn tiny_protocol_limits_drop_as_proto_mem() {
    let json = run("accounting", "[pool]\nmbufs = 8192\n[accounting]\nudp = { min = 0, pressure = 1, max = 1 }\n");
    let ctx = serde_json::to_string_pretty(&json).unwrap();
    let d = &json["stats"]["drops"];
    // The ring refuses packets; waiting in the TX backlog needs UDP memory, and a page is
    // the whole allowance: most of them are dropped as proto_mem.
    assert!(d["proto_mem"].as_u64().unwrap() > 0, "{ctx}");
    // Nothing stays charged once the workers have stopped.
    if let Some(protos) = json["memory"]["protocols"].as_object() {
        for (name, p) in protos {
            assert_eq!(p["pages"], 0, "{name} still has pages charged: {ctx}");
        }
    }
}

/// Stopping while packets still circulate: up to 1023 of them sit in the net_ring's ring
/// when the workers stop. Closing a net_ring port does not free what its rings hold, and
/// the forwarder does not drain its RX queues before closing the ports, so the report
/// shows them as leaked and the exit status is 1. Ignored until the forwarder drains RX
/// queues at shutdown (see the issue 8 report).
#[test]
fn stopping_mid_loop_gives_every_mbuf_back() {
    // The file is replayed for ever: the ring is full when the workers stop.
    run_with("midloop", "[pool]\nmbufs = 8192\n", 255, 1.0, true);
}
