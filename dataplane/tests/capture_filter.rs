//! `dpdk-dumpcap -f 'udp port 53'` against the running forwarder: the capture holds
//! exactly the packets that match the filter, in order, and nothing else.
//!
//! ```text
//!   a_rx --RX--> net_ring_a --forward--> net_ring_b --TX--> b_tx     (the whole mix)
//!                    |
//!                    +-- rte_pdump (BPF filter) --> dpdk-dumpcap --> cap.pcapng
//! ```
//! The forwarder runs in this process on two net_ring ports whose rings the test owns,
//! with rte_pdump initialised as in the binary (`telemetry::pdump_init`). dpdk-dumpcap
//! attaches as a secondary process, compiles the filter with libpcap and hands it to
//! rte_pdump as eBPF, which the forwarder's RX path runs on every packet. Only once it is
//! capturing does the test send a known mix: UDP to and from port 53 over IPv4 and IPv6
//! (matching), and look-alikes that must not match: other UDP ports, TCP port 53, a
//! non-first IPv4 fragment whose payload starts with port 53, a VLAN-tagged query, ICMP,
//! ARP and a non-IP frame. The last packet sent matches; dumpcap stops after as many
//! packets as match (`-c`), so anything wrongly let through shows up in their place.
//! The file is read with a pcapng parser: exactly the matching packets, byte for byte,
//! inbound on port a, and dumpcap's closing statistics (every packet seen, none dropped).
//! Forwarding is unaffected: the whole mix comes out of b unchanged.
//!
//! A secondary process attaches only to a primary on hugepages with its shared config
//! (not `--no-huge`, not `--in-memory`). Without free hugepages (ci/setup.sh reserves
//! them as root) the test says so and checks nothing.

mod common;

use std::io::Read;
use std::process::{Child, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::RingPort;
use dataplane::eal::Eal;
use dataplane::{telemetry, Config, Forwarder};
use pcap_parser::pcapng::{Block, OptionCode, PcapNGCapture, PcapNGOption};
use pcap_parser::traits::PcapNGPacketBlock;

/// The capture filter under test, in libpcap syntax.
const FILTER: &str = "udp port 53";
/// Rounds of the mix; each round sends one packet of every kind.
const ROUNDS: u16 = 16;
const RING_CAPACITY: u32 = 1024;
const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// One kind of packet in the mix, and whether `udp port 53` matches it.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// IPv4 UDP from an ephemeral port to 53 (a DNS query).
    Udp4Query,
    /// IPv4 UDP from 53 (a DNS response): `port` matches either end.
    Udp4Response,
    /// IPv4 UDP 5353 -> 5353 (mDNS).
    Udp4Mdns,
    /// IPv4 TCP to port 53: not UDP.
    Tcp4Dns,
    /// A non-first IPv4 fragment of a UDP datagram whose payload starts with the bytes of
    /// ports 53 -> 53: it holds no UDP header, so libpcap's filter rejects it.
    Udp4LateFragment,
    /// An 802.1Q-tagged IPv4 UDP query: without `vlan` the filter reads the untagged layout.
    Vlan4Query,
    /// IPv4 ICMP echo request.
    Icmp4Echo,
    /// ARP request.
    Arp,
    /// IPv6 UDP 5000 -> 6000.
    Udp6Other,
    /// A frame of the IEEE local-experimental EtherType 0x88b5.
    Experimental,
    /// IPv6 UDP to 53: `udp port 53` covers IPv6 too. Last, so that the mix ends on a match.
    Udp6Query,
}

const KINDS: [Kind; 11] = [
    Kind::Udp4Query,
    Kind::Udp4Response,
    Kind::Udp4Mdns,
    Kind::Tcp4Dns,
    Kind::Udp4LateFragment,
    Kind::Vlan4Query,
    Kind::Icmp4Echo,
    Kind::Arp,
    Kind::Udp6Other,
    Kind::Experimental,
    Kind::Udp6Query,
];

impl Kind {
    fn matches(self) -> bool {
        matches!(self, Kind::Udp4Query | Kind::Udp4Response | Kind::Udp6Query)
    }

    /// The packet of this kind in round `round`: every packet of the mix differs.
    fn frame(self, round: u16) -> Vec<u8> {
        let eph = 40_000 + round;
        let payload = format!("round {round} {self:?}").into_bytes();
        match self {
            Kind::Udp4Query => ethernet(0x0800, &ipv4(17, round, 0, &udp(eph, 53, &payload))),
            Kind::Udp4Response => ethernet(0x0800, &ipv4(17, round, 0, &udp(53, eph, &payload))),
            Kind::Udp4Mdns => ethernet(0x0800, &ipv4(17, round, 0, &udp(5353, 5353, &payload))),
            Kind::Tcp4Dns => ethernet(0x0800, &ipv4(6, round, 0, &tcp(eph, 53, u32::from(round)))),
            // Fragment offset 64 (x 8 bytes), no more fragments; payload shaped like a UDP header.
            Kind::Udp4LateFragment => ethernet(0x0800, &ipv4(17, round, 64, &udp(53, 53, &payload))),
            Kind::Vlan4Query => {
                let mut f = ethernet(0x8100, &[0x00, 0x64, 0x08, 0x00]); // VLAN 100, then IPv4
                f.extend_from_slice(&ipv4(17, round, 0, &udp(eph, 53, &payload)));
                f
            }
            Kind::Icmp4Echo => common::icmp_echo_request(DST_MAC, SRC_MAC, [10, 0, 1, 2], 7, round, 32),
            Kind::Arp => {
                let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
                arp.extend_from_slice(&SRC_MAC);
                arp.extend_from_slice(&[10, 0, 0, 2]);
                arp.extend_from_slice(&[0; 6]);
                arp.extend_from_slice(&[10, 0, 0, round as u8]);
                ethernet(0x0806, &arp)
            }
            Kind::Udp6Other => ethernet(0x86dd, &ipv6(17, &udp(5000, 6000, &payload))),
            Kind::Experimental => common::frame(0x53, u32::from(round), 96),
            Kind::Udp6Query => ethernet(0x86dd, &ipv6(17, &udp(eph, 53, &payload))),
        }
    }
}

/// An Ethernet frame from SRC_MAC to DST_MAC, padded to the 60-byte minimum.
fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = DST_MAC.to_vec();
    f.extend_from_slice(&SRC_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f.resize(f.len().max(60), 0);
    f
}

/// An IPv4 packet 10.0.0.2 -> 10.0.1.2 (RFC 791) with identification `id` and fragment
/// offset `frag_offset` (in 8-byte units); header checksum valid.
fn ipv4(protocol: u8, id: u16, frag_offset: u16, l4: &[u8]) -> Vec<u8> {
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&id.to_be_bytes());
    ip.extend_from_slice(&frag_offset.to_be_bytes());
    ip.extend_from_slice(&[64, protocol, 0, 0, 10, 0, 0, 2, 10, 0, 1, 2]);
    let c = dataplane::net::checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(l4);
    ip
}

/// An IPv6 packet 2001:db8:1::2 -> 2001:db8:2::2 (RFC 8200), hop limit 64.
fn ipv6(next_header: u8, l4: &[u8]) -> Vec<u8> {
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    ip.extend_from_slice(&[next_header, 64]);
    ip.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    ip.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    ip.extend_from_slice(l4);
    ip
}

/// A UDP header (RFC 768; checksum 0: none) and its payload.
fn udp(src: u16, dst: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = src.to_be_bytes().to_vec();
    u.extend_from_slice(&dst.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// A 20-byte TCP SYN (RFC 9293) with sequence number `seq`; checksum 0.
fn tcp(src: u16, dst: u16, seq: u32) -> Vec<u8> {
    let mut t = src.to_be_bytes().to_vec();
    t.extend_from_slice(&dst.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    t
}

fn free_hugepages() -> u64 {
    std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// On hugepages with the shared config, so that dpdk-dumpcap can attach.
fn config(prefix: &str) -> Config {
    let text = format!(
        r#"
[eal]
file_prefix = "{prefix}"
args = ["-m", "256", "--no-telemetry"]

[forward]
pairs = [["a", "b"]]

[[port]]
name = "a"
device = "net_ring_a"

[[port]]
name = "b"
device = "net_ring_b"

[[worker]]
lcore = 1
rx = [{{ port = "a", queue = 0 }}, {{ port = "b", queue = 0 }}]
"#
    );
    Config::from_toml_str(&text).unwrap_or_else(|e| panic!("test config refused: {e}\n{text}"))
}

/// dpdk-dumpcap (without the host's PCI devices: `common::dumpcap_command`) with its
/// stderr collected on a thread (it reports progress without newlines, so it is read as
/// bytes).
struct Dumpcap {
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Dumpcap {
    fn start(args: &[&str]) -> Dumpcap {
        let mut child = common::dumpcap_command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("unshare runs dpdk-dumpcap (packages util-linux, dpdk)");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Dumpcap { child, stderr }
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits until dumpcap reports that it captures (it prints "Packets captured:" right
    /// after rte_pdump enabled the capture), or panics with what it said.
    fn wait_capturing(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.stderr().contains("Packets captured:") {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("dpdk-dumpcap exited ({status}) before capturing: {}", self.stderr());
            }
            assert!(Instant::now() < deadline, "dpdk-dumpcap not capturing after {limit:?}: {}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for dumpcap to exit by itself; kills it after `limit`. Returns whether it
    /// exited successfully by itself, and its stderr.
    fn wait(mut self, limit: Duration) -> (bool, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50)); // the reader thread's last bytes
                return (status.success(), self.stderr());
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return (false, self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Dumpcap {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What the pcapng file holds: per packet its bytes, its interface's name and its
/// direction (epb_flags bits 0-1: 1 inbound, 2 outbound; draft-ietf-opsawg-pcapng section
/// 4.3.1); and per interface name the closing statistics (isb_ifrecv, isb_ifdrop).
///
/// Read with pcap-parser: pcap-file 2.0 refuses DPDK's option lists, which end with the
/// block instead of an opt_endofopt.
struct Capture {
    packets: Vec<(Vec<u8>, String, u32)>,
    stats: Vec<(String, Option<u64>, Option<u64>)>,
}

/// The first option of a block with this code.
fn find<'a, 'b>(options: &'a [PcapNGOption<'b>], code: OptionCode) -> Option<&'a PcapNGOption<'b>> {
    options.iter().find(|o| o.code == code)
}

/// An option's value as the N bytes of a little-endian integer (this file's byte order,
/// as the section header says for DPDK on x86), or `None` when its length is not N.
/// (pcap-parser 0.16's `as_u32_le` wants 8 bytes and never returns a value.)
fn le_bytes<const N: usize>(o: &PcapNGOption) -> Option<[u8; N]> {
    o.as_bytes()?.try_into().ok()
}

fn read_pcapng(path: &std::path::Path) -> Capture {
    // Option codes (draft-ietf-opsawg-pcapng sections 4.2, 4.3, 4.6): codes are per block type.
    const IF_NAME: OptionCode = OptionCode(2);
    const EPB_FLAGS: OptionCode = OptionCode(2);
    const ISB_IFRECV: OptionCode = OptionCode(4);
    const ISB_IFDROP: OptionCode = OptionCode(5);
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = PcapNGCapture::from_file(&bytes).unwrap_or_else(|e| panic!("{}: not pcapng: {e:?}", path.display()));
    let mut names: Vec<String> = Vec::new();
    let name = |names: &[String], id: u32| names.get(id as usize).cloned().unwrap_or_else(|| format!("interface {id}"));
    let mut capture = Capture { packets: Vec::new(), stats: Vec::new() };
    for block in file.sections.iter().flat_map(|s| &s.blocks) {
        match block {
            Block::SectionHeader(shb) => assert!(!shb.big_endian(), "{}: a big-endian section", path.display()),
            Block::InterfaceDescription(idb) => {
                let n = find(&idb.options, IF_NAME).and_then(|o| o.as_bytes()).unwrap_or_default();
                names.push(String::from_utf8_lossy(n).into_owned());
            }
            Block::EnhancedPacket(epb) => {
                let i = capture.packets.len();
                assert_eq!(epb.caplen, epb.origlen, "packet {i} truncated");
                let flags = find(&epb.options, EPB_FLAGS).and_then(|o| le_bytes(o)).map_or(0, u32::from_le_bytes);
                capture.packets.push((epb.packet_data().to_vec(), name(&names, epb.if_id), flags & 3));
            }
            Block::InterfaceStatistics(isb) => {
                let recv = find(&isb.options, ISB_IFRECV).and_then(|o| le_bytes(o)).map(u64::from_le_bytes);
                let drop = find(&isb.options, ISB_IFDROP).and_then(|o| le_bytes(o)).map(u64::from_le_bytes);
                capture.stats.push((name(&names, isb.if_id), recv, drop));
            }
            _ => {}
        }
    }
    capture
}

#[test]
fn dumpcap_with_a_filter_captures_exactly_the_matching_packets() {
    if free_hugepages() < 256 {
        eprintln!(
            "SKIP: dpdk-dumpcap needs the forwarder on hugepages and there are no free 2 MiB hugepages (run ci/setup.sh as root)"
        );
        return;
    }
    let prefix = common::unique_prefix("capf");
    let _runtime_dir = common::RuntimeDir(prefix.clone());
    let dir = common::TempDir::new("capf");
    let config = config(&prefix);
    let args = config.eal_args("capture_filter", &[]);
    let eal = Eal::init(&args).unwrap_or_else(|e| panic!("EAL did not start ({e}); arguments: {args:?}"));
    telemetry::pdump_init().expect("rte_pdump_init");

    // Declared before the forwarder, so that on a panic they drop after it.
    let a = RingPort::create("a", RING_CAPACITY);
    let b = RingPort::create("b", RING_CAPACITY);
    let test_pool = common::test_pool("capf_pkts", 1024);

    let mix: Vec<(Kind, Vec<u8>)> = (0..ROUNDS).flat_map(|round| KINDS.iter().map(move |&k| (k, k.frame(round)))).collect();
    let all: Vec<Vec<u8>> = mix.iter().map(|(_, f)| f.clone()).collect();
    let matching: Vec<Vec<u8>> = mix.iter().filter(|(k, _)| k.matches()).map(|(_, f)| f.clone()).collect();
    assert!(mix.last().unwrap().0.matches(), "the mix must end on a matching packet");
    assert!(all.len() < RING_CAPACITY as usize && all.len() <= test_pool.size() as usize);

    let fwd = Forwarder::start(&eal, &config, Arc::new(AtomicBool::new(false)))
        .unwrap_or_else(|e| panic!("forwarder did not start: {e}"));

    let cap = dir.join("dns.pcapng");
    let count = matching.len().to_string();
    let mut dumpcap =
        Dumpcap::start(&["--file-prefix", &prefix, "-i", "net_ring_a", "-f", FILTER, "-c", &count, "-w", cap.to_str().unwrap()]);
    dumpcap.wait_capturing(Duration::from_secs(20));

    common::send_frames(&test_pool, &a.rx, &all);
    let (exited, dumpcap_err) = dumpcap.wait(Duration::from_secs(20));
    // Forwarding is not affected by the capture: everything came out of b, unchanged.
    let forwarded = common::wait_for(Duration::from_secs(10), || b.tx.len() >= all.len());
    let report = fwd.stop();
    let got_b = common::drain_frames(&b.tx);

    let capture = if cap.exists() { read_pcapng(&cap) } else { Capture { packets: Vec::new(), stats: Vec::new() } };
    let got: Vec<Vec<u8>> = capture.packets.iter().map(|(d, _, _)| d.clone()).collect();
    if let Some(diff) = common::first_difference(&got, &matching) {
        let kinds: Vec<String> = got
            .iter()
            .map(|g| mix.iter().find(|(_, f)| f == g).map_or("not sent".to_owned(), |(k, _)| format!("{k:?}")))
            .collect();
        panic!(
            "the capture is not exactly the {} packets matching {FILTER:?}: {diff}; captured kinds {kinds:?}; \
             dumpcap exited by itself: {exited}; its stderr: {dumpcap_err}",
            matching.len()
        );
    }
    assert!(exited, "dpdk-dumpcap did not stop by itself after -c {count}: {dumpcap_err}");
    // dumpcap names each port's interface "dpdk:<port id>" (if_name; the device name is in
    // if_hardware).
    let a_name = format!("dpdk:{}", a.id.0);
    for (i, (_, interface, direction)) in capture.packets.iter().enumerate() {
        assert_eq!(*interface, a_name, "packet {i}");
        assert_eq!(*direction, 1, "packet {i}: epb_flags direction, want 1 (inbound)");
    }
    // dumpcap's closing statistics: every packet offered to the filter (isb_ifrecv counts
    // before filtering) and none lost between the forwarder and the file.
    let stats = capture.stats.iter().find(|(name, _, _)| *name == a_name);
    assert_eq!(
        stats.map(|s| (s.1, s.2)),
        Some((Some(all.len() as u64), Some(0))),
        "interface statistics (isb_ifrecv, isb_ifdrop) of {a_name}: {:?}",
        capture.stats
    );

    assert!(forwarded, "b forwarded {} of {} packets", got_b.len(), all.len());
    if let Some(diff) = common::first_difference(&got_b, &all) {
        panic!("forwarded a -> b: {diff}");
    }
    assert!(report.is_clean(), "{report:?}");
    let snap = &report.snapshot;
    assert_eq!(snap.total().dropped(), 0, "{:?}", snap.total());
    for pool in &snap.pools {
        assert_eq!(pool.stats.in_use, 0, "pool {} leaked: {:?}", pool.name, pool.stats);
    }
    assert_eq!(snap.ports.iter().find(|p| p.id == a.id).map(|p| p.stats.ipackets), Some(all.len() as u64));

    drop((a, b));
    let stats = test_pool.stats();
    assert_eq!((stats.in_use, stats.available), (0, stats.size), "test pool not full: {stats:?}");
    drop(test_pool);
    telemetry::pdump_uninit();
    drop(eal);
}
