//! Route churn under traffic, through the control socket: a generator thread sends UDP to
//! 256 destinations (128 IPv4, 128 IPv6) into a net_ring port as fast as the ring takes it,
//! while a client adds, replaces and deletes the routes to them thousands of times over the
//! socket (routes to two out ports, next hops from a table of 16 so that ids are retired
//! and reused through grace periods all along). Then:
//!
//! - no crash, every counter identity holds (processed = tx + dropped), every mbuf back;
//! - after the churn, one frame to each destination leaves exactly where the final table
//!   says, byte for byte as the pure l3fwd decision computes it (or is a `no_route` drop);
//! - the next hops in use are exactly the distinct (port, MAC) pairs of the final table;
//! - `port_down` / `port_up` set the link of a net_ring port down and up again.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::RingPort;
use dataplane::control::api::{Command, RouteArgs};
use dataplane::control::{Bound, Client, Control, Server};
use dataplane::eal::Eal;
use dataplane::forward::{self, Action, DropReason, NextHop, Routes};
use dataplane::net::{emit, ethernet::ethertype, ip_proto, MacAddr};
use dataplane::port::PortIdx;
use dataplane::{Config, Forwarder};

const MAC_B: [u8; 6] = [2, 0, 0, 0, 0xb, 0];
const MAC_C: [u8; 6] = [2, 0, 0, 0, 0xc, 0];
const DESTS: u32 = 256;
const CHANGES: u32 = 3000;

/// Destination `i`: 10.1.i.1 for i < 128, else 2001:db8:i::1.
fn dest(i: u32) -> IpAddr {
    if i < 128 {
        Ipv4Addr::new(10, 1, i as u8, 1).into()
    } else {
        Ipv6Addr::new(0x2001, 0xdb8, i as u16, 0, 0, 0, 0, 1).into()
    }
}

/// The route that covers destination `i`: a /24 or a /48.
fn prefix(i: u32) -> String {
    if i < 128 {
        format!("10.1.{i}.0/24")
    } else {
        format!("2001:db8:{i:x}::/48")
    }
}

fn frame(i: u32, seq: u16) -> Vec<u8> {
    let payload = seq.to_be_bytes();
    match dest(i) {
        IpAddr::V4(d) => {
            let s = Ipv4Addr::new(192, 0, 2, 1);
            let udp = emit::udp(s.into(), d.into(), 1000, 2000, &payload);
            let ip = emit::Ipv4Repr { ident: seq, ..emit::Ipv4Repr::new(s, d, ip_proto::UDP) }.emit(&udp);
            emit::ethernet(MacAddr([2, 0, 0, 0, 0xa, 0]), MacAddr([2, 0, 0, 0, 0, 0x99]), &[], ethertype::IPV4, &ip)
        }
        IpAddr::V6(d) => {
            let s: Ipv6Addr = "2001:db8:ffff::1".parse().unwrap();
            let udp = emit::udp(s.into(), d.into(), 1000, 2000, &payload);
            let ip = emit::Ipv6Repr::new(s, d, ip_proto::UDP).emit(&udp);
            emit::ethernet(MacAddr([2, 0, 0, 0, 0xa, 0]), MacAddr([2, 0, 0, 0, 0, 0x99]), &[], ethertype::IPV6, &ip)
        }
    }
}

/// The final table as the test keeps it: destination -> (port name, MAC).
type Model = BTreeMap<u32, (&'static str, MacAddr)>;

/// The model as the pure decision's tables: next hop id = destination index.
struct ModelRoutes<'a>(&'a Model);

impl Routes for ModelRoutes<'_> {
    fn lookup_v4(&self, dst: Ipv4Addr) -> Option<u32> {
        let i = u32::from(dst.octets()[2]);
        (dst.octets()[..2] == [10, 1] && i < 128 && self.0.contains_key(&i)).then_some(i)
    }
    fn lookup_v6(&self, dst: Ipv6Addr) -> Option<u32> {
        let s = dst.segments();
        let i = u32::from(s[2]);
        (s[..2] == [0x2001, 0xdb8] && (128..DESTS).contains(&i) && self.0.contains_key(&i)).then_some(i)
    }
}

impl forward::NextHops for ModelRoutes<'_> {
    fn next_hop(&self, id: u32) -> Option<NextHop> {
        let &(port, mac) = self.0.get(&id)?;
        let (p, src) = if port == "b" { (PortIdx(1), MAC_B) } else { (PortIdx(2), MAC_C) };
        Some(NextHop { port: p, src: MacAddr(src), dst: mac })
    }
}

/// A 64-bit LCG (Knuth's MMIX constants).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
}

#[test]
fn routes_churn_under_traffic_and_packets_end_where_the_final_table_says() {
    let prefix_ = common::unique_prefix("churn");
    let _runtime = common::RuntimeDir(prefix_.clone());
    let dir = common::TempDir::new("churn");
    let config = Config::from_toml_str(&format!(
        r#"
[eal]
file_prefix = "{prefix_}"
args = {}
[forward]
mode = "l3fwd"
[fib]
max_next_hops = 16
ipv4_max_routes = 4096
ipv4_tbl8_groups = 256
ipv6_max_routes = 4096
ipv6_tbl8_groups = 4096
[control]
socket = "{}"
[[port]]
name = "a"
device = "net_ring_ch_a"
[[port]]
name = "b"
device = "net_ring_ch_b"
[[port]]
name = "c"
device = "net_ring_ch_c"
[[worker]]
lcore = 1
rx = [{{ port = "a", queue = 0 }}, {{ port = "b", queue = 0 }}, {{ port = "c", queue = 0 }}]
"#,
        common::eal_args_toml_with_memory(1024),
        dir.join("ctl.sock").display()
    ))
    .unwrap();
    let eal = Eal::init(&config.eal_args("churn", &[])).expect("EAL starts");
    let a = RingPort::create("ch_a", 1024);
    let b = RingPort::create("ch_b", 1024).with_mac(MAC_B);
    let c = RingPort::create("ch_c", 1024).with_mac(MAC_C);
    let pool = common::test_pool("churn_gen", 4096);

    let stop = Arc::new(AtomicBool::new(false));
    let fwd = Arc::new(Mutex::new(Forwarder::start(&eal, &config, stop.clone()).expect("forwarder starts")));
    let control = Arc::new(Control::new(fwd.clone(), config.clone(), stop.clone()));
    let mut server =
        Server::start(Bound::bind(&config.control_socket()).unwrap(), control.clone(), config.control.clone()).unwrap();

    let frames: Vec<Vec<u8>> = (0..DESTS).map(|i| frame(i, 0)).collect();
    let generating = AtomicBool::new(true);
    let mut model = Model::new();
    let sent = std::thread::scope(|s| {
        // The generator: bursts to every destination while the churn runs.
        let gen = s.spawn(|| {
            let mut sent = 0u64;
            while generating.load(Ordering::Relaxed) {
                let mut burst: mempool::Burst = mempool::Burst::new();
                for f in frames.iter().skip((sent % u64::from(DESTS)) as usize).take(32) {
                    let Ok(mut m) = mempool::Mbuf::alloc(&pool) else { break };
                    m.set_data(f).unwrap();
                    burst.push(m).unwrap();
                }
                let n = a.rx.enqueue(&mut burst);
                sent += n as u64;
                // What the ring refused goes back to the pool with the burst.
                if n == 0 {
                    std::thread::yield_now();
                }
            }
            sent
        });
        // The drains: what leaves b and c goes back to the pool.
        let drain = s.spawn(|| {
            let mut out = 0usize;
            while generating.load(Ordering::Relaxed) {
                out += common::drain_frames(&b.tx).len() + common::drain_frames(&c.tx).len();
                std::thread::sleep(Duration::from_micros(200));
            }
            out
        });
        // The churn, over the socket.
        let mut client = Client::connect(&config.control_socket(), Some(Duration::from_secs(60))).unwrap();
        let mut rng = Lcg(0xc0ffee);
        for n in 0..CHANGES {
            let i = rng.next() % DESTS;
            let r = rng.next();
            if r.is_multiple_of(4) {
                let res = client.call(&Command::RouteDel { prefix: prefix(i) }).unwrap();
                assert_eq!(res.is_ok(), model.remove(&i).is_some(), "del {}: {res:?}", prefix(i));
            } else {
                let port = if r.is_multiple_of(2) { "b" } else { "c" };
                let mac = MacAddr([2, 0, 0, 0, if port == "b" { 0xb } else { 0xc }, (r >> 8) as u8 % 8 + 1]);
                let args = RouteArgs { prefix: prefix(i), port: port.into(), via: None, via_mac: Some(mac.to_string()) };
                let cmd = if n.is_multiple_of(2) { Command::RouteReplace(args) } else { Command::RouteAdd(args) };
                let res = client.call(&cmd).unwrap();
                match (&cmd, &res) {
                    (Command::RouteAdd(_), Err(e)) if model.contains_key(&i) => assert_eq!(e.code, "exists"),
                    (_, Ok(_)) => {
                        model.insert(i, (port, mac));
                    }
                    (_, Err(e)) => panic!("{cmd:?}: {e}"),
                }
            }
        }
        generating.store(false, Ordering::Relaxed);
        let sent = gen.join().unwrap();
        let out = drain.join().unwrap();
        assert!(sent > u64::from(CHANGES), "the generator sent only {sent} packets during {CHANGES} changes");
        (sent, out)
    });

    // Let the worker finish what the ring still holds, then drain the outputs.
    let f = || fwd.lock().unwrap();
    let settled = || {
        let t = f().snapshot().total();
        a.rx.is_empty() && t.processed() == t.tx_packets() + t.dropped()
    };
    assert!(common::wait_for(Duration::from_secs(10), settled), "the worker did not settle");
    std::thread::sleep(Duration::from_millis(50));
    common::drain_frames(&b.tx);
    common::drain_frames(&c.tx);
    let before = f().snapshot().total();

    // One frame to each destination, checked byte for byte against the final table.
    let last: Vec<Vec<u8>> = (0..DESTS).map(|i| frame(i, 0xffff)).collect();
    common::send_frames(&pool, &a.rx, &last);
    let routed = model.len();
    assert!(
        common::wait_for(Duration::from_secs(10), || b.tx.len() + c.tx.len() >= routed
            && f().snapshot().total().processed() - before.processed() == u64::from(DESTS)),
        "expected {routed} routed frames, got {} + {}",
        b.tx.len(),
        c.tx.len()
    );
    let (out_b, out_c) = (common::drain_frames(&b.tx), common::drain_frames(&c.tx));
    let (mut want_b, mut want_c) = (Vec::new(), Vec::new());
    let mut no_route = 0;
    for (i, fr) in last.iter().enumerate() {
        let mut want = fr.clone();
        match forward::l3fwd(&mut want, &ModelRoutes(&model), &ModelRoutes(&model), None) {
            Action::Tx(PortIdx(1)) => want_b.push(want),
            Action::Tx(PortIdx(2)) => want_c.push(want),
            Action::Drop(DropReason::NoRoute) => no_route += 1,
            other => panic!("destination {i}: {other:?}"),
        }
    }
    assert_eq!(common::first_difference(&out_b, &want_b), None, "port b");
    assert_eq!(common::first_difference(&out_c, &want_c), None, "port c");
    let after = f().snapshot().total();
    assert_eq!(after[DropReason::NoRoute] - before[DropReason::NoRoute], no_route);

    // The next hops in use are the final table's distinct (port, MAC) pairs.
    let hops = client_call(&config, Command::ShowNextHops {});
    let distinct: std::collections::BTreeSet<(&str, MacAddr)> = model.values().copied().collect();
    assert_eq!(hops["next_hops"].as_array().unwrap().len(), distinct.len(), "{hops}");
    let routes = client_call(&config, Command::ShowRoutes { family: None, origin: None });
    assert_eq!(routes["routes"].as_array().unwrap().len(), model.len());

    // Link control on a PMD that has it (net_ring): down, then up again.
    let down = client_call(&config, Command::PortDown { port: "c".into() });
    assert!(down["link"].as_str().unwrap().contains("down"), "{down}");
    assert!(!f().snapshot().ports[2].link.up);
    let up = client_call(&config, Command::PortUp { port: "c".into() });
    assert!(up["link"].as_str().unwrap().contains("up"), "{up}");

    server.stop();
    drop(control);
    let fwd = Arc::try_unwrap(fwd).unwrap().into_inner().unwrap();
    let report = fwd.stop();
    let t = report.snapshot.total();
    assert_eq!(t.processed(), t.tx_packets() + t.dropped(), "{t:?}");
    assert!(t.processed() >= sent.0 / 2, "processed {} of {} sent", t.processed(), sent.0);
    assert!(report.is_clean(), "{report:?}");
    drop((a, b, c));
    assert!(pool.is_full(), "the generator's pool is not full: {:?}", pool.stats());
    eprintln!(
        "churn: {CHANGES} route changes over the socket while {} packets went in ({} out during the churn)",
        sent.0, sent.1
    );
}

fn client_call(config: &Config, c: Command) -> serde_json::Value {
    Client::connect(&config.control_socket(), Some(Duration::from_secs(10))).unwrap().call(&c).unwrap().unwrap()
}
