//! The FIB's capacity and all-or-nothing changes, against a real EAL: a route beyond
//! `ipv4_max_routes`, beyond the tbl8 groups, beyond the next-hop table, or a batch with
//! a bad change in the middle, is refused with its index and leaves every table as it was.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::MutexGuard;

use dataplane::fib::{Fib, FibCapacity, FibError, FibPort, Hop, Origin, Route, RouteChange};
use dataplane::forward::{NextHops, Routes};
use dataplane::net::MacAddr;
use dataplane::nexthop::{NextHopKey, Via};
use dataplane::port::PortIdx;
use dataplane::rcu::Qsbr;
use mempool::SocketId;

fn eal() -> MutexGuard<'static, ()> {
    common::shared_eal("fib-test")
}

const CAP: FibCapacity =
    FibCapacity { ipv4_max_routes: 5, ipv4_tbl8_groups: 2, ipv6_max_routes: 4, ipv6_tbl8_groups: 64, max_next_hops: 3 };

fn ports() -> Vec<FibPort> {
    vec![
        FibPort { name: "a".into(), mac: MacAddr([2, 0, 0, 0, 0, 0xa]), routable: true },
        FibPort { name: "b".into(), mac: MacAddr([2, 0, 0, 0, 0, 0xb]), routable: false },
    ]
}

fn set(prefix: &str, gw: u8) -> RouteChange {
    RouteChange::Set(Route {
        prefix: prefix.parse().unwrap(),
        next_hop: NextHopKey { port: PortIdx(0), via: Via::Mac(MacAddr([2, 0, 0, 0, 1, gw])) }.into(),
        origin: Origin::Ctl,
    })
}

/// What a worker would see for these addresses: (port, gateway MAC) or nothing.
fn seen(q: &std::sync::Arc<Qsbr>, r: &dataplane::fib::FibReader, v4: &[&str], v6: &[&str]) -> Vec<Option<MacAddr>> {
    let rcu = q.register(0).unwrap();
    let view = r.view(&rcu);
    let mut out: Vec<Option<MacAddr>> = v4
        .iter()
        .map(|a| view.lookup_v4(a.parse::<Ipv4Addr>().unwrap()).and_then(|id| view.next_hop(id)).map(|n| n.dst))
        .collect();
    out.extend(v6.iter().map(|a| view.lookup_v6(a.parse::<Ipv6Addr>().unwrap()).and_then(|id| view.next_hop(id)).map(|n| n.dst)));
    out
}

#[test]
fn beyond_capacity_is_table_full_and_nothing_half_added() {
    let _turn = eal();
    let q = Qsbr::new(2).unwrap();
    let (mut fib, reader) = Fib::new(CAP, ports(), &q, SocketId::ANY, &[]).unwrap();
    fib.apply(&[set("10.0.0.0/16", 1), set("10.1.0.0/16", 1), set("2001:db8::/32", 2)]).unwrap();
    let probe4 = ["10.0.0.1", "10.1.0.1", "10.2.0.1", "10.3.0.1", "10.4.0.1", "10.0.9.9"];
    let probe6 = ["2001:db8::1", "2001:db9::1"];
    let before = seen(&q, &reader, &probe4, &probe6);
    let summary = fib.summary();

    // Six IPv4 routes where five fit: refused at the sixth, none of the batch stays.
    let err =
        fib.apply(&[set("10.2.0.0/16", 1), set("10.3.0.0/16", 1), set("10.4.0.0/16", 2), set("10.5.0.0/16", 2)]).unwrap_err();
    assert!(matches!(&err, (3, FibError::TableFull(m)) if m.contains("fib.ipv4_max_routes")), "{err:?}");
    // Two tbl8 groups: prefixes longer than /24 in three different /24s need three.
    let err = fib.apply(&[set("10.0.9.0/25", 1), set("10.0.8.0/25", 1), set("10.0.7.0/25", 1)]).unwrap_err();
    assert!(matches!(&err, (2, FibError::TableFull(m)) if m.contains("tbl8")), "{err:?}");
    // Three next hops: a fourth gateway does not fit.
    let err = fib.apply(&[set("10.2.0.0/16", 3), set("10.3.0.0/16", 4)]).unwrap_err();
    assert!(matches!(&err, (1, FibError::NextHopsFull(_))), "{err:?}");
    // A port without a TX queue per worker, a delete of a missing route, in the middle of
    // batches that mix IPv4 and IPv6.
    let mut bad = set("10.9.0.0/16", 1);
    if let RouteChange::Set(r) = &mut bad {
        r.next_hop = NextHopKey { port: PortIdx(1), via: Via::Mac(MacAddr([2, 0, 0, 0, 1, 1])) }.into();
    }
    let err = fib.apply(&[set("2001:db9::/32", 1), bad]).unwrap_err();
    assert!(matches!(&err, (1, FibError::PortNotRoutable { port }) if port == "b"), "{err:?}");
    let err = fib
        .apply(&[set("10.0.0.0/16", 3), set("2001:db9::/32", 1), RouteChange::Delete("10.77.0.0/16".parse().unwrap())])
        .unwrap_err();
    assert_eq!(err, (2, FibError::NoSuchRoute("10.77.0.0/16".parse().unwrap())));

    assert_eq!(seen(&q, &reader, &probe4, &probe6), before, "a refused change left something behind");
    // The same counts; next-hop ids a refused batch used briefly wait for a grace period.
    let after = fib.summary();
    assert_eq!(dataplane::fib::FibSummary { next_hops_retired: 0, ..after.clone() }, summary);
    assert!(after.next_hops_retired <= 2, "{after:?}");
    assert_eq!(fib.routes().count(), 3);

    // What fits still goes in, and the undo list puts it back.
    let undo = fib.apply(&[set("10.2.0.0/16", 2), set("10.0.0.0/16", 2), set("2001:db9::/32", 1)]).unwrap();
    assert_eq!(
        seen(&q, &reader, &["10.2.0.1", "10.0.0.1"], &["2001:db9::1"]),
        vec![Some(MacAddr([2, 0, 0, 0, 1, 2])); 2].into_iter().chain([Some(MacAddr([2, 0, 0, 0, 1, 1]))]).collect::<Vec<_>>()
    );
    fib.apply(&undo).unwrap();
    assert_eq!(seen(&q, &reader, &probe4, &probe6), before);
    assert_eq!(fib.summary().ipv4_routes, 2);
}

/// ECMP and drop routes through the real tables: a multipath route spreads flow hashes over
/// its next hops (each hash always on the same one), counted per next hop for the reader
/// that routed them; routes with the same paths share one group; a drop route is no next
/// hop; replacing and deleting give everything back.
#[test]
fn ecmp_groups_and_drop_routes() {
    let _turn = eal();
    let q = Qsbr::new(2).unwrap();
    let two = vec![
        FibPort { name: "a".into(), mac: MacAddr([2, 0, 0, 0, 0, 0xa]), routable: true },
        FibPort { name: "b".into(), mac: MacAddr([2, 0, 0, 0, 0, 0xb]), routable: true },
    ];
    let cap = FibCapacity { max_next_hops: 64, ..CAP };
    let (mut fib, reader) = Fib::new(cap, two, &q, SocketId::ANY, &[0]).unwrap();
    let gw = |port: u16, last: u8| NextHopKey { port: PortIdx(port), via: Via::Mac(MacAddr([2, 0, 0, 0, 1, last])) };
    let multi = Hop::paths(vec![(gw(0, 1), 1), (gw(1, 2), 1)]);
    let route =
        |prefix: &str, next_hop: Hop| RouteChange::Set(Route { prefix: prefix.parse().unwrap(), next_hop, origin: Origin::Ctl });
    fib.apply(&[route("10.8.0.0/16", multi.clone()), route("10.7.0.0/16", multi.clone()), route("10.66.0.0/16", Hop::Drop)])
        .unwrap();
    assert_eq!((fib.summary().ecmp_groups, fib.summary().next_hops), (1, 3), "one group shared, two members");

    let rcu = q.register(0).unwrap();
    let view = reader.view(&rcu);
    let id = view.lookup_v4("10.8.1.1".parse().unwrap()).unwrap();
    assert_eq!(view.lookup_v4("10.7.1.1".parse().unwrap()), Some(id));
    assert_eq!(view.next_hop(id), None, "a group is not a next hop itself");
    let mut ports = [0u32; 2];
    for flow in 0..1000u32 {
        let nh = view.next_hop_for(id, || flow).unwrap();
        assert_eq!(view.next_hop_for(id, || flow), Some(nh), "one flow, one next hop");
        assert_eq!(nh.src, MacAddr([2, 0, 0, 0, 0, 0xa + nh.port.0 as u8]));
        ports[usize::from(nh.port.0)] += 1;
    }
    assert!(ports.iter().all(|&n| n > 400), "{ports:?}");
    // The RSS hash, when the NIC gave one, decides instead of the 5-tuple.
    let rss = view.with_rss(Some(7));
    assert_eq!(rss.next_hop_for(id, || 1), rss.next_hop_for(id, || 2));
    let packets: Vec<u64> = fib.next_hops().iter().map(|n| n.packets).collect();
    assert_eq!(packets.iter().sum::<u64>(), 2000 + 2, "{packets:?}");
    let groups = fib.ecmp_groups();
    assert_eq!((groups.len(), groups[0].buckets.clone(), groups[0].refs), (1, vec![1, 1], 2));

    let drop_id = view.lookup_v4("10.66.0.1".parse().unwrap()).unwrap();
    assert_eq!(view.next_hop_for(drop_id, || 0), None, "a drop route: no next hop, counted as no_route");
    drop(rcu);

    // One path left: the route is a plain next hop again; the other route keeps the group.
    fib.apply(&[route("10.8.0.0/16", Hop::paths(vec![(gw(0, 1), 1)]))]).unwrap();
    assert_eq!(fib.summary().ecmp_groups, 1);
    fib.apply(&[RouteChange::Delete("10.7.0.0/16".parse().unwrap())]).unwrap();
    assert_eq!((fib.summary().ecmp_groups, fib.summary().next_hops), (0, 1), "the group and its second member retired");
    fib.apply(&[RouteChange::Delete("10.8.0.0/16".parse().unwrap()), RouteChange::Delete("10.66.0.0/16".parse().unwrap())])
        .unwrap();
    assert_eq!(fib.summary().next_hops, 0);
}
