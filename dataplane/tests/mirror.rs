//! The mirror on a real path (net_pcap, through the binary): in l3fwd mode with
//! `[mirror] proto = "udp"`, every routed UDP packet also leaves by the mirror port as a
//! clone that shares the packet's data and extension area; marking the clone `mirrored`
//! copies the area (copy-on-write). The mirror's output must equal the routed UDP packets,
//! in order, and both pools (mbufs and extension areas) must be full at shutdown.

mod common;

use std::time::Duration;

fn ipv4(proto: u8, seq: u16, payload: usize) -> Vec<u8> {
    use dataplane::net::{emit, ethernet::ethertype, l4::tcp_flags, MacAddr};
    let (src, dst) = (std::net::Ipv4Addr::new(10, 0, 0, 2), std::net::Ipv4Addr::new(10, 0, 1, (seq % 200) as u8 + 2));
    let data = vec![0; payload];
    let l4 = match proto {
        17 => emit::udp(src.into(), dst.into(), 1000 + seq, 5001, &data),
        6 => emit::tcp(src.into(), dst.into(), 1000 + seq, 5001, 0, tcp_flags::ACK, &data),
        _ => emit::icmp(8, 0, emit::echo_rest(1000 + seq, 5001), &data),
    };
    let ip = emit::Ipv4Repr { ident: seq, ..emit::Ipv4Repr::new(src, dst, proto) }.emit(&l4);
    emit::ethernet(MacAddr([2, 0, 0, 0, 0, 0x10]), MacAddr([2, 0, 0, 0, 0, 0x99]), &[], ethertype::IPV4, &ip)
}

#[test]
fn mirror_port_gets_exactly_the_routed_udp_packets() {
    let dir = common::TempDir::new("mirror");
    let prefix = common::unique_prefix("mirror");
    let _runtime = common::RuntimeDir(prefix.clone());
    let frames: Vec<Vec<u8>> =
        (0..120u16).map(|i| ipv4([17, 6, 1][usize::from(i % 3)], i, 18 + usize::from(i % 7) * 100)).collect();
    common::write_pcap(&dir.join("in.pcap"), &frames);
    common::write_pcap(&dir.join("empty.pcap"), &[]);
    let p = |n: &str| dir.join(n).display().to_string();
    let config = format!(
        r#"
[eal]
file_prefix = "{prefix}"
args = {eal}
[forward]
mode = "l3fwd"
[extensions]
trace_every = 7
[mirror]
port = "mirror"
proto = "udp"
[[port]]
name = "west"
device = "net_pcap0"
args = "rx_pcap={input},tx_pcap={west}"
[[port]]
name = "east"
device = "net_pcap1"
args = "rx_pcap={empty},tx_pcap={east}"
[[port]]
name = "mirror"
device = "net_pcap2"
args = "rx_pcap={empty},tx_pcap={mirror}"
[[route]]
prefix = "10.0.1.0/24"
port = "east"
via_mac = "02:00:00:00:01:02"
[[worker]]
lcore = 1
rx = [{{ port = "west", queue = 0 }}, {{ port = "east", queue = 0 }}, {{ port = "mirror", queue = 0 }}]
"#,
        eal = common::eal_args_toml_with_memory(1024),
        input = p("in.pcap"),
        west = p("west.pcap"),
        empty = p("empty.pcap"),
        east = p("east.pcap"),
        mirror = p("mirror.pcap"),
    );
    let cfg = dir.join("mirror.toml");
    std::fs::write(&cfg, config).unwrap();
    let out = common::run_dataplane(
        &["--config", cfg.to_str().unwrap(), "--duration", "2", "--stats-interval", "0"],
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("pool mbuf_pool_s0:") && stdout.contains("pool ext_areas:"), "{stdout}");
    for line in stdout.lines().filter(|l| l.contains("  pool ")) {
        assert!(line.ends_with(": full"), "{line}");
    }
    assert!(stdout.contains(&format!("mirrored {}", frames.len() / 3)), "{stdout}");

    let routed = common::read_pcap(&dir.join("east.pcap"));
    let mirrored = common::read_pcap(&dir.join("mirror.pcap"));
    assert_eq!(routed.len(), frames.len(), "every packet is routed east");
    for (r, f) in routed.iter().zip(&frames) {
        assert_eq!(r[22], f[22] - 1, "TTL decremented");
        assert_eq!(&r[0..6], &[2, 0, 0, 0, 1, 2], "next-hop MAC");
    }
    let udp: Vec<Vec<u8>> = routed.iter().filter(|r| r[23] == 17).cloned().collect();
    assert_eq!(udp.len(), frames.len() / 3);
    assert_eq!(mirrored, udp, "the mirror gets exactly the routed UDP packets, as they left");
}
