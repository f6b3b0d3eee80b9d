//! Issue 14 item 6 through ring ports: a 9000-byte frame held in a chain of 2 KiB mbufs
//! (as a PMD delivers a jumbo frame with scattered RX) is routed, its headers rewritten in
//! the first segment and its chain intact; a chain shorter than its IPv4 header declares is
//! dropped as `truncated`, and only it. Every pool is full at the end.

mod common;

use std::net::Ipv4Addr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use common::RingPort;
use dataplane::eal::Eal;
use dataplane::forward::DropReason;
use dataplane::forwarder::Forwarder;
use dataplane::net::ethernet::ethertype;
use dataplane::net::{emit, ip_proto, Ipv4Packet, MacAddr};
use dataplane::Config;
use mempool::{Burst, Mbuf, Pool};

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0xa, 1];
const VIA_B: [u8; 6] = [2, 0, 0, 0, 0xb, 2];

/// A `len`-byte IPv4/UDP frame to 10.1.0.5, its datagram declaring `declared` bytes.
fn jumbo(len: usize, declared: usize) -> Vec<u8> {
    let (src, dst) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 1, 0, 5));
    let payload: Vec<u8> = (0..len - 14 - 20 - 8).map(|i| i as u8).collect();
    let udp = emit::udp(src.into(), dst.into(), 7, 9, &payload);
    let mut ip = emit::Ipv4Repr::new(src, dst, ip_proto::UDP).emit(&udp);
    ip[2..4].copy_from_slice(&(declared as u16 - 14).to_be_bytes());
    ip[10..12].fill(0);
    let c = dataplane::net::checksum::checksum(&ip[..20]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    emit::ethernet(MacAddr(MAC_A), MacAddr([2, 0, 0, 0, 0, 0x99]), &[], ethertype::IPV4, &ip)
}

/// `frame` as a chain of mbufs of at most `seg` bytes each.
fn chained(pool: &Pool, frame: &[u8], seg: usize) -> Mbuf {
    let mut pieces = frame.chunks(seg).map(|c| {
        let mut m = Mbuf::alloc(pool).unwrap();
        m.set_data(c).unwrap();
        m
    });
    let mut head = pieces.next().unwrap();
    for p in pieces {
        head.chain(p).unwrap();
    }
    head
}

#[test]
fn a_chained_jumbo_frame_is_routed() {
    let prefix = common::unique_prefix("multiseg");
    let _runtime = common::RuntimeDir(prefix.clone());
    let config = Config::from_toml_str(&format!(
        r#"
[eal]
file_prefix = "{prefix}"
args = {}
[forward]
mode = "l3fwd"
[[port]]
name = "a"
device = "net_ring_ja"
[[port]]
name = "b"
device = "net_ring_jb"
[[route]]
prefix = "10.1.0.0/16"
port = "b"
via_mac = "02:00:00:00:0b:02"
[[worker]]
lcore = 1
rx = [{{ port = "a", queue = 0 }}, {{ port = "b", queue = 0 }}]
"#,
        common::eal_args_toml_with_memory(1024)
    ))
    .unwrap();
    let eal = Eal::init(&config.eal_args("multiseg", &[])).expect("EAL starts");
    let a = RingPort::create("ja", 256).with_mac(MAC_A);
    let b = RingPort::create("jb", 256);
    let pool = common::test_pool("multiseg_test", 256);
    let fwd = Forwarder::start(&eal, &config, Arc::new(AtomicBool::new(false))).expect("forwarder starts");

    let good = jumbo(9000, 9000);
    // The same packet but its datagram declares one byte more than there is.
    let short = jumbo(9000, 9001);
    let mut burst: Burst = Burst::new();
    for f in [&good, &short, &good] {
        burst.push(chained(&pool, f, 2048)).unwrap();
    }
    assert_eq!(burst.as_slice()[0].nb_segs(), 5);
    assert_eq!(burst.as_slice()[0].pkt_len(), 9000);
    assert_eq!(a.rx.enqueue(&mut burst), 3);
    assert!(common::wait_for(Duration::from_secs(10), || b.tx.len() == 2), "routed: {}", b.tx.len());
    let report = fwd.stop();

    let mut out: Burst = Burst::new();
    assert_eq!(b.tx.dequeue(&mut out), 2);
    for m in out.as_slice() {
        assert_eq!((m.pkt_len(), m.nb_segs()), (9000, 5), "the chain is intact");
        assert!(m.chain_is_consistent());
        let f = m.data();
        assert_eq!(&f[0..6], &VIA_B[..], "to the next hop");
        let ip = Ipv4Packet::new_checked_within(&f[14..], 9000 - 14).unwrap();
        assert_eq!(ip.ttl(), 63);
        assert!(ip.verify_checksum());
        assert_eq!(&f[42..48], &good[42..48], "the payload is the sender's");
    }
    drop(out);
    let t = report.snapshot.total();
    assert_eq!(t[DropReason::Truncated], 1, "{:?}", t.drops);
    assert_eq!(t.dropped(), 1);
    assert_eq!(t.processed(), t.tx_packets() + t.dropped());
    assert!(report.is_clean(), "{report:?}");
    drop((a, b));
    assert!(pool.is_full());
}
