//! Every forwarding mode, end to end through the forwarder, on two net_ring ports whose
//! rings the test owns: the test crafts frames, injects them, reads what came out and
//! compares it byte for byte with output it computed itself (its own frame builders and
//! its own Internet checksum, nothing from `dataplane::net`).
//!
//! ```text
//!   a_rx --RX--> net_ring_<tag>_a --+           +--> net_ring_<tag>_b --TX--> b_tx
//!                                   +- worker --+
//!   a_tx <--TX-- net_ring_<tag>_a --+  lcore 1  +--- net_ring_<tag>_b <--RX-- b_rx
//! ```
//!
//! EAL starts once per process, so one test runs the scenarios in turn on the same EAL:
//! `io`, `macswap`, `l2fwd`, `l3fwd`. Each scenario starts a forwarder, injects the
//! frames of port a, waits until the worker has taken all of them, injects those of
//! port b (so the order in which the two lanes feed a TX queue is fixed), waits for the
//! output, stops the forwarder and checks: the exact bytes out of each port, in order;
//! the worker's and the devices' counters; the drop counters by reason; rx == tx +
//! dropped; and that the forwarder's pools and the test's pool are full again.
//!
//! Each scenario builds fresh ring ports under new names: `Forwarder::stop` closes the
//! ports, which releases the ethdevs, while their vdevs stay registered on the vdev bus,
//! so neither `rte_eth_from_rings` nor the forwarder can create a port under the old name
//! again (`rte_vdev_init` returns -EEXIST).
//!
//! net_ring ports have the MAC 00:00:00:00:00:00, the same on both ports, which would
//! make "source MAC = the out port's MAC" untestable; the test gives each ring port its
//! own MAC first (see `common::set_ring_port_mac`) and then reads it back with
//! `rte_eth_macaddr_get`, the call the forwarder uses.
//!
//! EAL: `--no-huge`, `--no-pci` (vdevs only), a per-pid `--file-prefix`, and `-m 1024`
//! because the l3fwd scenario creates rte_lpm and rte_lpm6 tables of 64 MiB each.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use common::RingPort;
use dataplane::eal::Eal;
use dataplane::forward::DropReason;
use dataplane::net::l4::{icmp_type, icmpv6_type, tcp_flags};
use dataplane::net::{checksum, emit, MacAddr};
use dataplane::port::PortIdx;
use dataplane::stats::Counter;
use dataplane::{Config, Forwarder, Report};
use mempool::Pool;

/// Ring capacity (power of two); holds every frame of a scenario at once.
const RING_CAPACITY: u32 = 1024;

// --- Frames -------------------------------------------------------------------------

/// The addresses an L4 checksum's pseudo-header covers.
#[derive(Debug, Clone, Copy)]
enum Net {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

impl Net {
    fn src(self) -> IpAddr {
        match self {
            Net::V4(s, _) => s.into(),
            Net::V6(s, _) => s.into(),
        }
    }

    fn dst(self) -> IpAddr {
        match self {
            Net::V4(_, d) => d.into(),
            Net::V6(_, d) => d.into(),
        }
    }
}

const ICMP: u8 = 1;
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMPV6: u8 = 58;
const HOP_BY_HOP: u8 = 0;
const DEST_OPTS: u8 = 60;
const NO_NEXT: u8 = 59;

/// A UDP datagram with a correct checksum.
fn udp(net: Net, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    emit::udp(net.src(), net.dst(), sport, dport, payload)
}

/// A TCP segment (20-byte header, ACK|PSH) with a correct checksum.
fn tcp(net: Net, sport: u16, dport: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    emit::tcp(net.src(), net.dst(), sport, dport, seq, tcp_flags::ACK | tcp_flags::PSH, payload)
}

/// An ICMP (over IPv4) or ICMPv6 echo request with a correct checksum.
fn echo_request(net: Net, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    match net {
        Net::V4(..) => emit::icmp(icmp_type::ECHO_REQUEST, 0, emit::echo_rest(id, seq), payload),
        Net::V6(s, d) => emit::icmpv6(s, d, icmpv6_type::ECHO_REQUEST, 0, emit::echo_rest(id, seq), payload),
    }
}

/// An IPv4 header's variable fields.
#[derive(Debug, Clone)]
struct Ipv4Hdr {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    proto: u8,
    ident: u16,
    /// A multiple of 4 bytes.
    options: Vec<u8>,
}

impl Ipv4Hdr {
    fn new(dst: [u8; 4], ttl: u8, proto: u8) -> Self {
        Ipv4Hdr { src: Ipv4Addr::new(198, 51, 100, 7), dst: Ipv4Addr::from(dst), ttl, proto, ident: 0x1c46, options: Vec::new() }
    }

    /// The header for `payload_len` bytes of payload, with a freshly computed checksum.
    fn bytes(&self, payload_len: usize) -> Vec<u8> {
        assert_eq!(self.options.len() % 4, 0);
        let header_len = 20 + self.options.len();
        let mut h = vec![0x40 | (header_len / 4) as u8, 0x10]; // version 4, IHL; DSCP/ECN
        h.extend_from_slice(&((header_len + payload_len) as u16).to_be_bytes());
        h.extend_from_slice(&self.ident.to_be_bytes());
        h.extend_from_slice(&[0x40, 0x00]); // DF, offset 0
        h.extend_from_slice(&[self.ttl, self.proto, 0, 0]);
        h.extend_from_slice(&self.src.octets());
        h.extend_from_slice(&self.dst.octets());
        h.extend_from_slice(&self.options);
        let c = checksum::checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h
    }

    fn net(&self) -> Net {
        Net::V4(self.src, self.dst)
    }
}

/// An IPv6 header's variable fields.
#[derive(Debug, Clone)]
struct Ipv6Hdr {
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    next: u8,
}

impl Ipv6Hdr {
    fn new(dst: &str, hop_limit: u8, next: u8) -> Self {
        Ipv6Hdr { src: "2001:db8:ffff::7".parse().unwrap(), dst: dst.parse().unwrap(), hop_limit, next }
    }

    fn bytes(&self, payload_len: usize) -> Vec<u8> {
        let mut h = vec![0x60, 0x0a, 0xbc, 0xde]; // version 6, traffic class 0, a flow label
        h.extend_from_slice(&(payload_len as u16).to_be_bytes());
        h.extend_from_slice(&[self.next, self.hop_limit]);
        h.extend_from_slice(&self.src.octets());
        h.extend_from_slice(&self.dst.octets());
        h
    }

    fn net(&self) -> Net {
        Net::V6(self.src, self.dst)
    }
}

/// The network layer of a datagram: header fields plus everything after the header.
#[derive(Debug, Clone)]
enum Ip {
    V4(Ipv4Hdr, Vec<u8>),
    V6(Ipv6Hdr, Vec<u8>),
}

/// A datagram in an Ethernet frame with optional VLAN tags, padded to `min_len`.
#[derive(Debug, Clone)]
struct Datagram {
    /// (TPID, TCI) per tag, outermost first.
    tags: Vec<(u16, u16)>,
    ip: Ip,
    min_len: usize,
}

/// Where the sender thinks it is sending to and from.
const HOST_DST: [u8; 6] = [0x02, 0, 0, 0, 0xee, 0x01];
const HOST_SRC: [u8; 6] = [0x02, 0, 0, 0, 0xee, 0x02];

/// Ethernet header (with tags), `ethertype`, `payload`, zero-padded to `min_len`.
fn ether(dst: [u8; 6], src: [u8; 6], tags: &[(u16, u16)], ethertype: u16, payload: &[u8], min_len: usize) -> Vec<u8> {
    emit::padded(emit::ethernet_unpadded(MacAddr(dst), MacAddr(src), tags, ethertype, payload), min_len)
}

impl Datagram {
    fn v4(hdr: Ipv4Hdr, l4: Vec<u8>) -> Self {
        Datagram { tags: Vec::new(), ip: Ip::V4(hdr, l4), min_len: 0 }
    }

    fn v6(hdr: Ipv6Hdr, payload: Vec<u8>) -> Self {
        Datagram { tags: Vec::new(), ip: Ip::V6(hdr, payload), min_len: 0 }
    }

    fn tagged(mut self, tags: &[(u16, u16)]) -> Self {
        self.tags = tags.to_vec();
        self
    }

    fn padded(mut self, min_len: usize) -> Self {
        self.min_len = min_len;
        self
    }

    /// Offset of the IPv4 header in the frame; `None` for IPv6.
    fn ipv4_at(&self) -> Option<usize> {
        matches!(self.ip, Ip::V4(..)).then(|| 14 + 4 * self.tags.len())
    }

    fn frame_with(&self, dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
        let (ethertype, l3) = match &self.ip {
            Ip::V4(h, l4) => (0x0800, [h.bytes(l4.len()), l4.clone()].concat()),
            Ip::V6(h, p) => (0x86dd, [h.bytes(p.len()), p.clone()].concat()),
        };
        ether(dst, src, &self.tags, ethertype, &l3, self.min_len)
    }

    /// As the host sends it.
    fn frame(&self) -> Vec<u8> {
        self.frame_with(HOST_DST, HOST_SRC)
    }

    /// As a router forwards it towards `next_hop` out of a port with MAC `port_mac`: TTL or
    /// hop limit one lower (the IPv4 checksum computed afresh), MACs rewritten, tags,
    /// payload and padding unchanged.
    fn routed(&self, port_mac: [u8; 6], next_hop: [u8; 6]) -> Vec<u8> {
        let mut d = self.clone();
        match &mut d.ip {
            Ip::V4(h, _) => h.ttl -= 1,
            Ip::V6(h, _) => h.hop_limit -= 1,
        }
        d.frame_with(next_hop, port_mac)
    }
}

/// `frame` with the 16-bit word at `at` set to `v`.
fn with_u16(mut frame: Vec<u8>, at: usize, v: u16) -> Vec<u8> {
    frame[at..at + 2].copy_from_slice(&v.to_be_bytes());
    frame
}

/// `frame` with the IPv4 header at `l3` given a freshly computed checksum.
fn fix_ipv4_checksum(mut frame: Vec<u8>, l3: usize) -> Vec<u8> {
    let header_len = usize::from(frame[l3] & 0x0f) * 4;
    frame[l3 + 10..l3 + 12].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&frame[l3..l3 + header_len]);
    frame[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    frame
}

/// Checks, independently of the expected bytes, that every IPv4 packet in `frames`
/// (after `l3s[i]` bytes of L2 header) carries the checksum a full recomputation gives.
fn assert_ipv4_checksums_recomputed(what: &str, frames: &[Vec<u8>], l3s: &[Option<usize>]) {
    for (i, (f, l3)) in frames.iter().zip(l3s).enumerate() {
        let Some(l3) = *l3 else { continue };
        let header_len = usize::from(f[l3] & 0x0f) * 4;
        let mut h = f[l3..l3 + header_len].to_vec();
        let stored = u16::from_be_bytes([h[10], h[11]]);
        h[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(stored, checksum::checksum(&h), "{what}: packet {i}: IPv4 checksum is not a full recomputation");
    }
}

// --- Ports, config, one run ------------------------------------------------------------

/// Two ring ports and the four rings behind them. The rings must outlive the ports, so
/// this is declared before the forwarder, which closes the ports when it stops or drops.
struct RingPorts {
    tag: &'static str,
    a: RingPort,
    b: RingPort,
    a_mac: [u8; 6],
    b_mac: [u8; 6],
}

impl RingPorts {
    /// `net_ring_<tag>_a` and `net_ring_<tag>_b` on fresh rings, with MACs
    /// 02:00:00:00:0a:00 and 02:00:00:00:0b:00.
    fn new(tag: &'static str) -> RingPorts {
        let a = RingPort::create(&format!("{tag}_a"), RING_CAPACITY).with_mac([0x02, 0, 0, 0, 0x0a, 0x00]);
        let b = RingPort::create(&format!("{tag}_b"), RING_CAPACITY).with_mac([0x02, 0, 0, 0, 0x0b, 0x00]);
        // What the forwarder will read as the ports' own MACs.
        let (a_mac, b_mac) = (common::port_mac(a.id), common::port_mac(b.id));
        assert_ne!(a_mac, b_mac);
        RingPorts { tag, a, b, a_mac, b_mac }
    }
}

/// The config of one scenario: ports a and b on the scenario's ring ports (with the
/// extra keys given), one worker on lcore 1 polling both, then `tail` (routes).
fn config(prefix: &str, ports: &RingPorts, mode: &str, a_keys: &str, b_keys: &str, tail: &str) -> Config {
    let pairs = if mode == "l3fwd" { "" } else { r#"pairs = [["a", "b"]]"# };
    let tag = ports.tag;
    let text = format!(
        r#"
[eal]
main_lcore = 0
file_prefix = "{prefix}"
args = {args}

[forward]
mode = "{mode}"
{pairs}

[poll]
tx_drain_usecs = 50

[[port]]
name = "a"
device = "net_ring_{tag}_a"
rx_desc = 256
tx_desc = 256
{a_keys}

[[port]]
name = "b"
device = "net_ring_{tag}_b"
rx_desc = 256
tx_desc = 256
{b_keys}

[[worker]]
lcore = 1
rx = [{{ port = "a", queue = 0 }}, {{ port = "b", queue = 0 }}]
{tail}
"#,
        args = common::eal_args_toml_with_memory(1024)
    );
    Config::from_toml_str(&text).unwrap_or_else(|e| panic!("test config refused: {e}\n{text}"))
}

/// What came out of one run.
struct Outcome {
    report: Report,
    out_a: Vec<Vec<u8>>,
    out_b: Vec<Vec<u8>>,
}

/// Starts a forwarder, injects `in_a` on port a, waits until the worker took all of it,
/// injects `in_b` on port b, waits for `want_a` + `want_b` packets out of a and b (at most
/// 10 s), stops the forwarder and collects what came out.
#[allow(clippy::too_many_arguments)]
fn run(
    eal: &Eal,
    config: &Config,
    ports: &RingPorts,
    pool: &Pool,
    in_a: &[Vec<u8>],
    in_b: &[Vec<u8>],
    want_a: usize,
    want_b: usize,
) -> Outcome {
    let name = config.forward.mode.name();
    let fwd = Forwarder::start(eal, config, Arc::new(AtomicBool::new(false)))
        .unwrap_or_else(|e| panic!("{name}: forwarder did not start: {e}"));
    assert_eq!(fwd.snapshot().ports.iter().map(|p| p.id).collect::<Vec<_>>(), [ports.a.id, ports.b.id], "{name}: ports");

    let processed = |fwd: &Forwarder| fwd.snapshot().total().processed() as usize;
    common::send_frames(pool, &ports.a.rx, in_a);
    let took_a = common::wait_for(Duration::from_secs(10), || processed(&fwd) >= in_a.len());
    common::send_frames(pool, &ports.b.rx, in_b);
    let took_all = common::wait_for(Duration::from_secs(10), || {
        processed(&fwd) >= in_a.len() + in_b.len() && ports.a.tx.len() >= want_a && ports.b.tx.len() >= want_b
    });
    let report = fwd.stop();
    assert!(took_a, "{name}: the worker did not take port a's {} frames within 10 s: {:?}", in_a.len(), report.snapshot.total());
    assert!(
        took_all,
        "{name}: not everything came through within 10 s (a_tx {} of {want_a}, b_tx {} of {want_b}): {:?}",
        ports.a.tx.len(),
        ports.b.tx.len(),
        report.snapshot.total()
    );
    assert_eq!(ports.a.rx.len(), 0, "{name}: frames left unread in a_rx");
    assert_eq!(ports.b.rx.len(), 0, "{name}: frames left unread in b_rx");
    Outcome { report, out_a: common::drain_frames(&ports.a.tx), out_b: common::drain_frames(&ports.b.tx) }
}

/// Counts and cleanliness every scenario shares: ports a and b received `rx` packets and
/// sent `tx`, by the worker's and by the devices' counts; the drops by reason are exactly
/// `drops` (every other reason 0); rx + injected == tx + dropped + punted; every pool is full.
fn check_counts(name: &str, report: &Report, rx: [usize; 2], tx: [usize; 2], drops: &[(DropReason, u64)]) {
    assert!(report.worker_errors.is_empty(), "{name}: worker errors: {:?}", report.worker_errors);
    assert!(report.port_errors.is_empty(), "{name}: port errors: {:?}", report.port_errors);
    let snap = &report.snapshot;
    let t = snap.total();
    for (i, p) in snap.ports.iter().enumerate() {
        assert_eq!(p.driver, "net_ring", "{name}: {}", p.name);
        assert_eq!(snap.port_rx(PortIdx(i as u16)), rx[i] as u64, "{name}: worker rx on {}", p.name);
        assert_eq!(t.port_tx[i], tx[i] as u64, "{name}: worker tx on {}", p.name);
        assert_eq!(
            (p.stats.ipackets, p.stats.opackets),
            (rx[i] as u64, tx[i] as u64),
            "{name}: {} device counters: {:?}",
            p.name,
            p.stats
        );
        assert_eq!((p.stats.ierrors, p.stats.oerrors), (0, 0), "{name}: {}: {:?}", p.name, p.stats);
    }
    let mut want = [0u64; DropReason::COUNT];
    for &(r, n) in drops {
        want[r.index()] += n;
    }
    for &r in DropReason::ALL {
        assert_eq!(t[r], want[r.index()], "{name}: drops[{}] (all drops: {:?})", r.name(), t.drops);
    }
    assert_eq!(
        t.processed() + t[Counter::Injected],
        t.tx_packets() + t.dropped() + t[Counter::Punted],
        "{name}: rx + injected != tx + dropped + punted: {t:?}"
    );
    // Fewer frames per port than a burst, each port's enqueued at once: no poll returned a
    // full burst, so no round can have ended squeezed (the default budget is 300).
    if rx.iter().all(|&n| n < mempool::MAX_BURST) {
        assert_eq!(t[Counter::TimeSqueeze], 0, "{name}: {t:?}");
    }
    assert!(!snap.pools.is_empty(), "{name}: no pool in the report");
    for pool in &snap.pools {
        assert_eq!(
            (pool.stats.in_use, pool.stats.available),
            (0, pool.stats.size),
            "{name}: pool {} not full: {:?}",
            pool.name,
            pool.stats
        );
    }
    assert!(report.is_clean(), "{name}: {report:?}");
}

/// `got` must equal `want` packet for packet; a failure names the packet by its label.
fn assert_frames(what: &str, got: &[Vec<u8>], want: &[(&str, Vec<u8>)]) {
    for (i, (g, (label, w))) in got.iter().zip(want).enumerate() {
        if g != w {
            let at = g.iter().zip(w).position(|(x, y)| x != y);
            panic!(
                "{what}: packet {i} ({label}) differs at byte {at:?} (got {} bytes, want {}):\n got  {g:02x?}\n want {w:02x?}",
                g.len(),
                w.len()
            );
        }
    }
    let labels: Vec<&str> = want.iter().map(|(l, _)| *l).collect();
    assert_eq!(got.len(), want.len(), "{what}: packet count (want {labels:?})");
}

fn frames_of(list: &[(&str, Vec<u8>)]) -> Vec<Vec<u8>> {
    list.iter().map(|(_, f)| f.clone()).collect()
}

// --- Scenarios -----------------------------------------------------------------------

/// Frames any pair mode sees: IPv4/IPv6 over UDP/TCP/ICMP, a VLAN-tagged one, and
/// non-IP frames of many lengths (`common::frame`, ethertype 0x88b5).
fn mixed_frames(stream: u8) -> Vec<(String, Vec<u8>)> {
    let v4 = Ipv4Hdr::new([10, 1, 9, 9], 64, UDP);
    let t4 = Ipv4Hdr::new([10, 1, 2, 7], 17, TCP);
    let v6 = Ipv6Hdr::new("2001:db8:1::5", 64, ICMPV6);
    let mut list = vec![
        ("ipv4 udp".to_owned(), Datagram::v4(v4.clone(), udp(v4.net(), 1111, 53, b"mode test")).frame()),
        ("ipv4 tcp".to_owned(), Datagram::v4(t4.clone(), tcp(t4.net(), 40000, 443, 7, &[0x5a; 100])).frame()),
        ("ipv6 icmpv6".to_owned(), Datagram::v6(v6.clone(), echo_request(v6.net(), 9, 1, &[1, 2, 3])).padded(60).frame()),
        (
            "vlan ipv4 udp".to_owned(),
            Datagram::v4(v4.clone(), udp(v4.net(), 2222, 53, &[])).tagged(&[(0x8100, 0x2064)]).padded(60).frame(),
        ),
    ];
    for seq in 0..24 {
        list.push((format!("0x88b5 #{seq}"), common::frame(stream, seq, common::frame_len(seq))));
    }
    list
}

fn labelled(list: &[(String, Vec<u8>)]) -> Vec<(&str, Vec<u8>)> {
    list.iter().map(|(l, f)| (l.as_str(), f.clone())).collect()
}

/// io: every frame leaves the pair partner byte for byte, even one too short to be
/// Ethernet (io never looks at packets).
fn io(eal: &Eal, prefix: &str, pool: &Pool) {
    let ports = RingPorts::new("io");
    let cfg = config(prefix, &ports, "io", "", "", "");
    let mut a = mixed_frames(0xa1);
    a.push(("10-byte runt".to_owned(), vec![0xff; 10]));
    let b = mixed_frames(0xb1);
    let (in_a, in_b) = (labelled(&a), labelled(&b));
    let out = run(eal, &cfg, &ports, pool, &frames_of(&in_a), &frames_of(&in_b), in_b.len(), in_a.len());
    assert_frames("io a -> b", &out.out_b, &in_a);
    assert_frames("io b -> a", &out.out_a, &in_b);
    check_counts("io", &out.report, [in_a.len(), in_b.len()], [in_b.len(), in_a.len()], &[]);
}

/// `frame` with source and destination MAC exchanged.
fn swapped(frame: &[u8]) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[0..6].copy_from_slice(&frame[6..12]);
    f[6..12].copy_from_slice(&frame[0..6]);
    f
}

/// `frame` with destination MAC `dst` and source MAC `src`.
fn remac(frame: &[u8], dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f
}

/// macswap: source and destination MAC exchanged, every other byte identical; a bare
/// 14-byte Ethernet header is swapped too; a 13-byte frame is dropped as truncated.
fn macswap(eal: &Eal, prefix: &str, pool: &Pool) {
    let ports = RingPorts::new("ms");
    let cfg = config(prefix, &ports, "macswap", "", "", "");
    let mut a = mixed_frames(0xa2);
    a.push(("bare 14-byte header".to_owned(), ether(HOST_DST, HOST_SRC, &[], 0x88b5, &[], 0)));
    let b = mixed_frames(0xb2);
    let mut in_a = labelled(&a);
    in_a.push(("13-byte runt", vec![0x11; 13]));
    let in_b = labelled(&b);
    let want_b: Vec<(&str, Vec<u8>)> = in_a[..in_a.len() - 1].iter().map(|(l, f)| (*l, swapped(f))).collect();
    let want_a: Vec<(&str, Vec<u8>)> = in_b.iter().map(|(l, f)| (*l, swapped(f))).collect();
    let out = run(eal, &cfg, &ports, pool, &frames_of(&in_a), &frames_of(&in_b), want_a.len(), want_b.len());
    assert_frames("macswap a -> b", &out.out_b, &want_b);
    assert_frames("macswap b -> a", &out.out_a, &want_a);
    check_counts("macswap", &out.report, [in_a.len(), in_b.len()], [want_a.len(), want_b.len()], &[(DropReason::Truncated, 1)]);
}

/// l2fwd: source MAC = the out port's own MAC, destination MAC = the out port's
/// `peer_mac`, every other byte identical; a 13-byte frame is dropped as truncated.
fn l2fwd(eal: &Eal, prefix: &str, pool: &Pool) {
    let ports = RingPorts::new("l2");
    const PEER_A: [u8; 6] = [0x02, 0, 0, 0, 0x0a, 0xfe];
    const PEER_B: [u8; 6] = [0x02, 0, 0, 0, 0x0b, 0xfe];
    let cfg = config(prefix, &ports, "l2fwd", r#"peer_mac = "02:00:00:00:0a:fe""#, r#"peer_mac = "02-00-00-00-0B-FE""#, "");
    assert_eq!((cfg.ports[0].peer_mac, cfg.ports[1].peer_mac), (Some(MacAddr(PEER_A)), Some(MacAddr(PEER_B))));
    let a = mixed_frames(0xa3);
    let b = mixed_frames(0xb3);
    let in_a = labelled(&a);
    let mut in_b = labelled(&b);
    in_b.insert(3, ("13-byte runt", vec![0x22; 13]));
    // Out of b: b's MAC and b's peer; out of a: a's MAC and a's peer.
    let want_b: Vec<(&str, Vec<u8>)> = in_a.iter().map(|(l, f)| (*l, remac(f, PEER_B, ports.b_mac))).collect();
    let want_a: Vec<(&str, Vec<u8>)> =
        in_b.iter().filter(|(_, f)| f.len() >= 14).map(|(l, f)| (*l, remac(f, PEER_A, ports.a_mac))).collect();
    let out = run(eal, &cfg, &ports, pool, &frames_of(&in_a), &frames_of(&in_b), want_a.len(), want_b.len());
    assert_frames("l2fwd a -> b", &out.out_b, &want_b);
    assert_frames("l2fwd b -> a", &out.out_a, &want_a);
    check_counts("l2fwd", &out.report, [in_a.len(), in_b.len()], [want_a.len(), want_b.len()], &[(DropReason::Truncated, 1)]);
}

/// l3fwd over three routes: routed packets (longest prefix, VLAN and QinQ tags, IPv4
/// options, IPv6 extension headers, checksum edge cases) and one or more frames for each
/// drop reason a frame itself can cause (all but `tx_full` and `no_buf_for_copy`).
fn l3fwd(eal: &Eal, prefix: &str, pool: &Pool) {
    let ports = RingPorts::new("l3");
    const VIA_B: [u8; 6] = [0x02, 0, 0, 0, 0x0b, 0x01];
    const VIA_A: [u8; 6] = [0x02, 0, 0, 0, 0x0a, 0x01];
    const VIA_B6: [u8; 6] = [0x02, 0, 0, 0, 0x0b, 0x06];
    let routes = r#"
[[route]]
prefix = "10.1.0.0/16"
port = "b"
via_mac = "02:00:00:00:0b:01"

[[route]]
prefix = "10.1.2.0/24"
port = "a"
via_mac = "02:00:00:00:0a:01"

[[route]]
prefix = "2001:db8:1::/48"
port = "b"
via_mac = "02:00:00:00:0b:06"
"#;
    let cfg = config(
        prefix,
        &ports,
        "l3fwd",
        "ipv4 = \"10.1.2.1/24\"\nipv6 = \"2001:db8:a::1/64\"",
        "ipv4 = \"10.1.0.1/16\"\nipv6 = \"2001:db8:1::1/48\"",
        routes,
    );
    assert_eq!(cfg.routes.len(), 3);
    let (mac_a, mac_b) = (ports.a_mac, ports.b_mac);

    // Routed, in on a.
    let u4 = |dst: [u8; 4], ttl: u8| {
        let h = Ipv4Hdr::new(dst, ttl, UDP);
        let l4 = udp(h.net(), 5000, 6000, b"l3fwd payload");
        Datagram::v4(h, l4)
    };
    let to_b = u4([10, 1, 9, 9], 64);
    let longest = {
        let h = Ipv4Hdr::new([10, 1, 2, 7], 64, TCP);
        Datagram::v4(h.clone(), tcp(h.net(), 33000, 80, 0xdead_beef, b"GET / HTTP/1.0\r\n\r\n"))
    };
    let v6_to_b = {
        let h = Ipv6Hdr::new("2001:db8:1::5", 64, UDP);
        Datagram::v6(h.clone(), udp(h.net(), 546, 547, b"dhcpv6-ish"))
    };
    // One 802.1Q tag (PCP 1, VID 100): the tag stays, TTL 2 becomes 1.
    let vlan = {
        let h = Ipv4Hdr::new([10, 1, 200, 1], 2, TCP);
        Datagram::v4(h.clone(), tcp(h.net(), 1234, 22, 1, &[])).tagged(&[(0x8100, 0x2064)])
    };
    // QinQ (802.1ad outer, 802.1Q inner), IPv6 with a Hop-by-Hop header, ICMPv6, padded.
    let qinq_v6 = {
        let h = Ipv6Hdr::new("2001:db8:1:ff::1", 2, HOP_BY_HOP);
        let icmp = echo_request(h.net(), 77, 3, b"ping");
        let mut payload = vec![ICMPV6, 0, 1, 4, 0, 0, 0, 0]; // HBH: PadN of 4
        payload.extend_from_slice(&icmp);
        Datagram::v6(h, payload).tagged(&[(0x88a8, 0x0064), (0x8100, 0x00c8)]).padded(80)
    };
    // IPv4 with options (3 NOPs and EOL), ICMP echo, padded to the Ethernet minimum.
    let options = {
        let mut h = Ipv4Hdr::new([10, 1, 2, 200], 64, ICMP);
        h.options = vec![1, 1, 1, 0];
        let icmp = echo_request(h.net(), 1, 1, &[]);
        Datagram::v4(h, icmp).padded(60)
    };
    // Whose forwarded header sums to 0xffff, so its new checksum is 0x0000.
    let zero_after = {
        let base = u4([10, 1, 3, 3], 64);
        let Ip::V4(h, l4) = &base.ip else { unreachable!() };
        let ident = (0..=u16::MAX)
            .find(|&ident| {
                let out = Ipv4Hdr { ident, ttl: h.ttl - 1, ..h.clone() }.bytes(l4.len());
                out[10..12] == [0, 0]
            })
            .expect("some ident makes the checksum 0x0000");
        Datagram::v4(Ipv4Hdr { ident, ..h.clone() }, l4.clone())
    };
    // Whose correct checksum is 0x0000 but is sent as 0xffff, the other zero (RFC 1624
    // section 3); the forwarded one must carry the full recomputation.
    let (ffff_in, ffff) = {
        let base = u4([10, 1, 4, 4], 64);
        let Ip::V4(h, l4) = &base.ip else { unreachable!() };
        let ident = (0..=u16::MAX)
            .find(|&ident| Ipv4Hdr { ident, ..h.clone() }.bytes(l4.len())[10..12] == [0, 0])
            .expect("some ident makes the checksum 0x0000");
        let d = Datagram::v4(Ipv4Hdr { ident, ..h.clone() }, l4.clone());
        (with_u16(d.frame(), 14 + 10, 0xffff), d)
    };

    // Dropped, in on a.
    let good = u4([10, 1, 9, 9], 64).frame();
    let six_hops = |dst: &str, hops: u8| {
        let h = Ipv6Hdr::new(dst, hops, UDP);
        Datagram::v6(h.clone(), udp(h.net(), 1, 2, b"x")).frame()
    };
    let too_many_ext = {
        let h = Ipv6Hdr::new("2001:db8:1::9", 64, DEST_OPTS);
        let mut payload = Vec::new();
        for i in 0..9 {
            let next = if i == 8 { NO_NEXT } else { DEST_OPTS };
            payload.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
        }
        Datagram::v6(h, payload).frame()
    };
    let bad_udp_len = {
        let f = good.clone();
        with_u16(f, 14 + 20 + 4, 4) // UDP length 4 < 8 (IP header untouched)
    };
    let arp = {
        let mut body = vec![0, 1, 8, 0, 6, 4, 0, 1];
        body.extend_from_slice(&HOST_SRC);
        body.extend_from_slice(&[10, 1, 2, 9]);
        body.extend_from_slice(&[0; 6]);
        // Not one of the forwarder's addresses (those are answered: tests/slowpath.rs).
        body.extend_from_slice(&[10, 1, 2, 77]);
        ether([0xff; 6], HOST_SRC, &[], 0x0806, &body, 60)
    };
    let total_len_past_frame = fix_ipv4_checksum(with_u16(good.clone(), 14 + 2, (good.len() - 14 + 1) as u16), 14);
    let total_len_below_header = fix_ipv4_checksum(with_u16(good.clone(), 14 + 2, 19), 14);
    let ihl_4 = {
        let mut f = good.clone();
        f[14] = 0x44;
        fix_ipv4_checksum_raw(f, 14, 20)
    };
    let version_6_in_ipv4 = {
        let mut f = good.clone();
        f[14] = 0x65;
        f
    };
    let ipv4_in_ipv6_ethertype = {
        let h = Ipv4Hdr::new([10, 1, 9, 9], 64, UDP);
        Datagram::v4(h.clone(), udp(h.net(), 1, 2, &[0; 40])).frame()
    };
    let ipv4_in_ipv6_ethertype = with_u16(ipv4_in_ipv6_ethertype, 12, 0x86dd);
    let bad_checksum = {
        let mut f = good.clone();
        f[14 + 11] ^= 0x5a;
        f
    };
    // Martians: never forwarded, whatever the routes (a route covers 10.1/16 here).
    let to_broadcast = u4([255, 255, 255, 255], 64).frame();
    let from_loopback = {
        let mut h = Ipv4Hdr::new([10, 1, 9, 9], 64, UDP);
        h.src = Ipv4Addr::new(127, 0, 0, 1);
        let l4 = udp(h.net(), 5000, 6000, b"martian");
        Datagram::v4(h, l4).frame()
    };
    let three_tags = u4([10, 1, 9, 9], 64).tagged(&[(0x88a8, 1), (0x8100, 2), (0x8100, 3)]).frame();
    let mut tag_cut = u4([10, 1, 9, 9], 64).tagged(&[(0x8100, 5)]).frame();
    tag_cut.truncate(16);

    let in_a: Vec<(&str, Vec<u8>)> = vec![
        ("10.1.9.9 -> b", to_b.frame()),
        ("no route 192.0.2.1", u4([192, 0, 2, 1], 64).frame()),
        ("10.1.2.7 -> a (longest prefix)", longest.frame()),
        ("ttl 1", u4([10, 1, 9, 9], 1).frame()),
        ("2001:db8:1::5 -> b", v6_to_b.frame()),
        ("ttl 0", u4([10, 1, 9, 9], 0).frame()),
        ("bad header checksum", bad_checksum),
        ("vlan 10.1.200.1 -> b", vlan.frame()),
        ("ihl 4", ihl_4),
        ("version 6 in ipv4", version_6_in_ipv4),
        ("total length > frame", total_len_past_frame),
        ("10-byte frame", vec![0x42; 10]),
        ("arp", arp),
        ("ipv4 options -> a", options.frame()),
        ("total length < header", total_len_below_header),
        ("hop limit 1", six_hops("2001:db8:1::5", 1)),
        ("ipv6 no route", six_hops("2001:db8:2::1", 64)),
        ("qinq ipv6 -> b", qinq_v6.frame()),
        ("udp length 4", bad_udp_len),
        ("three vlan tags", three_tags),
        ("vlan tag cut short", tag_cut),
        ("9 ipv6 extension headers", too_many_ext),
        ("ipv4 in ipv6 ethertype", ipv4_in_ipv6_ethertype),
        ("0x88b5 experimental", common::frame(0xa4, 0, 64)),
        ("checksum becomes 0x0000", zero_after.frame()),
        ("checksum sent as 0xffff", ffff_in),
        ("to 255.255.255.255", to_broadcast),
        ("from 127.0.0.1", from_loopback),
    ];
    // In on b.
    let b_to_a = u4([10, 1, 2, 9], 64);
    let b_hairpin = u4([10, 1, 77, 1], 64);
    let in_b: Vec<(&str, Vec<u8>)> = vec![
        ("b: 10.1.2.9 -> a", b_to_a.frame()),
        ("b: ttl 1", u4([10, 1, 2, 9], 1).frame()),
        ("b: 10.1.77.1 -> b (back out)", b_hairpin.frame()),
    ];

    let want_a: Vec<(&str, Vec<u8>)> = vec![
        ("10.1.2.7 -> a (longest prefix)", longest.routed(mac_a, VIA_A)),
        ("ipv4 options -> a", options.routed(mac_a, VIA_A)),
        ("b: 10.1.2.9 -> a", b_to_a.routed(mac_a, VIA_A)),
    ];
    let want_b: Vec<(&str, Vec<u8>)> = vec![
        ("10.1.9.9 -> b", to_b.routed(mac_b, VIA_B)),
        ("2001:db8:1::5 -> b", v6_to_b.routed(mac_b, VIA_B6)),
        ("vlan 10.1.200.1 -> b", vlan.routed(mac_b, VIA_B)),
        ("qinq ipv6 -> b", qinq_v6.routed(mac_b, VIA_B6)),
        ("checksum becomes 0x0000", zero_after.routed(mac_b, VIA_B)),
        ("checksum sent as 0xffff", ffff.routed(mac_b, VIA_B)),
        ("b: 10.1.77.1 -> b (back out)", b_hairpin.routed(mac_b, VIA_B)),
    ];
    // The builders' own view of the edge cases, so a builder bug cannot hide one.
    let find = |list: &[(&str, Vec<u8>)], label: &str| list.iter().find(|(l, _)| *l == label).expect(label).1.clone();
    assert_eq!(find(&want_b, "checksum becomes 0x0000")[14 + 10..14 + 12], [0, 0]);
    assert_eq!(find(&in_a, "checksum sent as 0xffff")[14 + 10..14 + 12], [0xff, 0xff]);
    let vlan_out = find(&want_b, "vlan 10.1.200.1 -> b");
    assert_eq!(vlan_out[12..18], [0x81, 0x00, 0x20, 0x64, 0x08, 0x00], "the tag, then IPv4");
    assert_eq!(vlan_out[18 + 8], 1, "TTL 2 -> 1");

    let out = run(eal, &cfg, &ports, pool, &frames_of(&in_a), &frames_of(&in_b), want_a.len(), want_b.len());
    assert_frames("l3fwd out of a", &out.out_a, &want_a);
    assert_frames("l3fwd out of b", &out.out_b, &want_b);
    let at = |ds: &[&Datagram]| ds.iter().map(|d| d.ipv4_at()).collect::<Vec<_>>();
    assert_ipv4_checksums_recomputed("l3fwd out of a", &out.out_a, &at(&[&longest, &options, &b_to_a]));
    assert_ipv4_checksums_recomputed(
        "l3fwd out of b",
        &out.out_b,
        &at(&[&to_b, &v6_to_b, &vlan, &qinq_v6, &zero_after, &ffff, &b_hairpin]),
    );
    check_counts(
        "l3fwd",
        &out.report,
        [in_a.len(), in_b.len()],
        [want_a.len(), want_b.len()],
        &[
            (DropReason::NoRoute, 2),
            (DropReason::TtlExpired, 4),
            (DropReason::BadIpv4Checksum, 1),
            (DropReason::BadIpv4HeaderLen, 1),
            (DropReason::BadIpVersion, 2),
            (DropReason::Truncated, 3),
            (DropReason::BadIpv4TotalLen, 1),
            // The ipv4-in-ipv6-ethertype frame; the ARP request for another address on a
            // port with an address goes to the slow path (which learns from ARP; here it
            // ignores it): punted, not dropped.
            (DropReason::NotIp, 1),
            (DropReason::BadL4Header, 1),
            (DropReason::TooManyVlanTags, 1),
            (DropReason::TooManyIpv6ExtHeaders, 1),
            (DropReason::MartianDestination, 1),
            (DropReason::MartianSource, 1),
        ],
    );
}

/// `frame` with the checksum of the `header_len` bytes at `l3` computed afresh (for a
/// header whose IHL field does not give its length).
fn fix_ipv4_checksum_raw(mut frame: Vec<u8>, l3: usize, header_len: usize) -> Vec<u8> {
    frame[l3 + 10..l3 + 12].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&frame[l3..l3 + header_len]);
    frame[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    frame
}

#[test]
fn every_mode_forwards_exactly_the_expected_bytes() {
    let prefix = common::unique_prefix("modes");
    let _runtime_dir = common::RuntimeDir(prefix.clone());
    // The EAL part of the config is the same in every scenario.
    let args = {
        let text = format!(
            "[eal]\nfile_prefix = \"{prefix}\"\nargs = {}\n[forward]\npairs = [[\"a\", \"a\"]]\n[[port]]\nname = \"a\"\ndevice = \"net_ring_x\"\n[[worker]]\nlcore = 1\nrx = [{{ port = \"a\", queue = 0 }}]\n",
            common::eal_args_toml_with_memory(1024)
        );
        Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}")).eal_args("modes", &[])
    };
    assert!(args.iter().any(|a| a == "--no-pci"), "vdev-only config must run EAL with --no-pci: {args:?}");
    assert!(args.windows(2).any(|w| w == ["-m", "1024"]), "{args:?}");
    let eal = Eal::init(&args).unwrap_or_else(|e| panic!("EAL did not start ({e}); arguments: {args:?}"));

    let pool = common::test_pool("t_modes_pkts", 1024);

    io(&eal, &prefix, &pool);
    assert!(pool.is_full(), "io: test pool not full: {:?}", pool.stats());
    macswap(&eal, &prefix, &pool);
    assert!(pool.is_full(), "macswap: test pool not full: {:?}", pool.stats());
    l2fwd(&eal, &prefix, &pool);
    assert!(pool.is_full(), "l2fwd: test pool not full: {:?}", pool.stats());
    l3fwd(&eal, &prefix, &pool);
    assert!(pool.is_full(), "l3fwd: test pool not full: {:?}", pool.stats());

    drop(pool);
    drop(eal);
}
