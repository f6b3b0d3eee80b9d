//! A PMD's bad mbuf must not kill the forwarder. DPDK 22.11's net_pcap builds an mbuf
//! chain whose `pkt_len` is cut to 16 bits for a frame over 65,535 bytes; handed to a TX
//! queue (net_pcap's own reads the chain with `rte_pktmbuf_read`) it crashes the process.
//! With `check_chains` (on by default for net_pcap) the frame is dropped at RX as
//! `bad_mbuf_chain`, in every mode, and the frames around it are forwarded.
//!
//! ```text
//!   in.pcap (small, 70,000 bytes, small) --RX--> a --mode--> b --TX--> out.pcap (small, small)
//! ```
//! EAL runs in the child (`--no-huge`, `--no-pci`, a per-pid file prefix).

mod common;

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

const BIG: usize = 70_000;

/// An Ethernet pcap whose snap length (262,144, libpcap's largest) keeps a 70,000-byte
/// frame whole.
fn write_jumbo_pcap(path: &Path, frames: &[Vec<u8>]) {
    let file = File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = PcapHeader { snaplen: 262_144, ..PcapHeader::default() };
    let mut w = PcapWriter::with_header(BufWriter::new(file), header).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write_packet(&PcapPacket::new(Duration::from_millis(i as u64), f.len() as u32, f)).unwrap();
    }
    let mut inner = w.into_writer();
    std::io::Write::flush(&mut inner).unwrap();
}

fn config(mode: &str, dir: &common::TempDir, prefix: &str) -> String {
    let forward = match mode {
        "l3fwd" => "mode = \"l3fwd\"".to_owned(),
        m => format!("mode = \"{m}\"\npairs = [[\"a\", \"b\"]]"),
    };
    let route =
        if mode == "l3fwd" { "[[route]]\nprefix = \"10.1.0.0/16\"\nport = \"b\"\nvia_mac = \"02:00:00:00:00:0b\"\n" } else { "" };
    format!(
        r#"[eal]
file_prefix = "{prefix}"
args = {args}

[forward]
{forward}

[[port]]
name = "a"
device = "net_pcap0"
args = "rx_pcap={input},tx_pcap={out_a}"
peer_mac = "02:00:00:00:00:0a"

[[port]]
name = "b"
device = "net_pcap1"
args = "rx_pcap={empty},tx_pcap={out_b}"
peer_mac = "02:00:00:00:00:0b"

{route}
[[worker]]
lcore = 1
rx = [{{ port = "a", queue = 0 }}, {{ port = "b", queue = 0 }}]
"#,
        args = common::eal_args_toml_with_memory(if mode == "l3fwd" { 512 } else { 256 }),
        input = dir.join("in.pcap").display(),
        empty = dir.join("empty.pcap").display(),
        out_a = dir.join("out-a.pcap").display(),
        out_b = dir.join("out-b.pcap").display(),
    )
}

#[test]
fn a_70000_byte_frame_through_net_pcap_is_dropped_in_every_mode() {
    let dir = common::TempDir::new("pmd-faults");
    let small = |seq| common::icmp_echo_request([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1], [10, 1, 0, 2], 7, seq, 22);
    // Not IP (no IPv4 datagram is that long): the local-experimental ethertype.
    let big = common::frame(0x70, 1, BIG);
    assert_eq!(big.len(), BIG);
    write_jumbo_pcap(&dir.join("in.pcap"), &[small(0), big, small(2)]);
    write_jumbo_pcap(&dir.join("empty.pcap"), &[]);

    for mode in ["io", "macswap", "l2fwd", "l3fwd"] {
        let prefix = common::unique_prefix(&format!("pmd-{mode}"));
        let _runtime = common::RuntimeDir(prefix.clone());
        let cfg = dir.join(&format!("{mode}.toml"));
        std::fs::write(&cfg, config(mode, &dir, &prefix)).unwrap();
        let json = dir.join(&format!("{mode}.json"));
        let out = common::run_dataplane(
            &["--config", cfg.to_str().unwrap(), "--duration", "1", "--stats-json", json.to_str().unwrap()],
            Duration::from_secs(60),
        );
        let context = format!(
            "\n{mode}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{mode}: the forwarder did not survive the frame{context}");
        let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        let stats = &r["stats"];
        assert_eq!(r["clean"], true, "{context}");
        assert_eq!(stats["rx_packets"], 3, "{context}");
        assert_eq!(stats["drops"]["bad_mbuf_chain"], 1, "{context}");
        assert_eq!(stats["dropped"], 1, "{context}");
        assert_eq!(stats["tx_packets"], 2, "the frames around it are forwarded{context}");
        let sent = common::read_pcap(&dir.join("out-b.pcap"));
        assert_eq!(sent.len(), 2, "{context}");
        if mode == "io" {
            assert_eq!(sent, [small(0), small(2)], "io forwards them unchanged");
        }
    }
}
