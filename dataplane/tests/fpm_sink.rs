//! zebra's routes into a real FIB (rte_lpm on EAL) through the FPM's sink: a gateway becomes
//! a next hop by address that the neighbour table resolves, several an ECMP group whose
//! members resolve each on their own, connected and other tables' routes are not installed,
//! an unmappable route drops, and zebra deletes only its own routes.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use dataplane::fib::{Fib, FibCapacity, FibPort, Hop, Origin, Route as FibRoute, RouteChange};
use dataplane::forward::{Hop as Next, Routes};
use dataplane::fpm::ports::PortAddrs;
use dataplane::fpm::sink::FibSink;
use dataplane::fpm::wire::{NextHop, Protocol, Route, RouteKey, RouteKind, MAIN_TABLE};
use dataplane::fpm::{Change, RouteSink};
use dataplane::net::MacAddr;
use dataplane::nexthop::{NextHopKey, Via};
use dataplane::port::PortIdx;
use dataplane::rcu::Qsbr;
use mempool::SocketId;

const H2: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const H3: MacAddr = MacAddr([2, 0, 0, 0, 0, 3]);

fn key(table: u32, p: &str) -> RouteKey {
    RouteKey { table, prefix: p.parse().unwrap() }
}

fn gw(a: &str) -> NextHop {
    NextHop { gateway: Some(a.parse().unwrap()), ifindex: Some(7), weight: 1, onlink: false }
}

fn route(p: &str, protocol: Protocol, kind: RouteKind, next_hops: Vec<NextHop>) -> Change {
    Change::Upsert(Route { key: key(MAIN_TABLE, p), protocol, kind, next_hops })
}

fn via(port: u16, a: &str) -> NextHopKey {
    NextHopKey { port: PortIdx(port), via: Via::Gateway(a.parse().unwrap()) }
}

#[test]
fn zebras_routes_become_resolved_next_hops_and_ecmp_groups() {
    let _eal = common::shared_eal("fpm-sink-test");
    let q = Qsbr::new(2).unwrap();
    let cap =
        FibCapacity { ipv4_max_routes: 64, ipv4_tbl8_groups: 8, ipv6_max_routes: 64, ipv6_tbl8_groups: 8, max_next_hops: 64 };
    let ports = vec![
        FibPort { name: "h2".into(), mac: MacAddr([2, 0, 0, 0, 1, 2]), routable: true },
        FibPort { name: "h3".into(), mac: MacAddr([2, 0, 0, 0, 1, 3]), routable: true },
    ];
    let (mut fib, reader) = Fib::new(cap, ports, &q, SocketId::ANY, &[0]).unwrap();
    // A route of the config's: zebra may not delete it.
    let config = FibRoute {
        prefix: "10.50.0.0/16".parse().unwrap(),
        next_hop: NextHopKey { port: PortIdx(0), via: Via::Mac(H2) }.into(),
        origin: Origin::Config,
    };
    // The connected route of port h2's own subnet.
    let connected = FibRoute {
        prefix: "10.0.2.0/24".parse().unwrap(),
        next_hop: NextHopKey { port: PortIdx(0), via: Via::Connected }.into(),
        origin: Origin::Connected,
    };
    fib.apply(&[RouteChange::Set(config.clone()), RouteChange::Set(connected.clone())]).unwrap();
    let fib = Arc::new(Mutex::new(fib));
    let addrs = vec![
        PortAddrs { port: PortIdx(0), ipv4: Some("10.0.2.1/24".parse().unwrap()), ipv6: None, kernel_name: None },
        PortAddrs { port: PortIdx(1), ipv4: Some("10.0.3.1/24".parse().unwrap()), ipv6: None, kernel_name: None },
    ];
    let mut sink = FibSink::new(fib.clone(), addrs);
    let unicast = RouteKind::Unicast;
    let failed = sink.apply(&[
        route("10.9.0.0/16", Protocol::STATIC, unicast, vec![gw("10.0.2.2")]),
        route("10.8.0.0/16", Protocol::STATIC, unicast, vec![gw("10.0.2.2"), gw("10.0.3.2")]),
        route("198.51.100.0/24", Protocol::BGP, unicast, vec![gw("10.0.3.2")]),
        // zebra's connected route: the port's own subnet makes it, not zebra.
        route(
            "10.0.2.0/24",
            Protocol::KERNEL,
            unicast,
            vec![NextHop { gateway: None, ifindex: Some(7), weight: 1, onlink: false }],
        ),
        // A gateway on no port's subnet: kept, drops, counted.
        route("10.7.0.0/16", Protocol::STATIC, unicast, vec![gw("192.0.2.1")]),
        route("10.6.0.0/16", Protocol::STATIC, RouteKind::Blackhole, vec![]),
        Change::Upsert(Route {
            key: key(100, "10.5.0.0/16"),
            protocol: Protocol::STATIC,
            kind: unicast,
            next_hops: vec![gw("10.0.2.2")],
        }),
    ]);
    assert!(failed.is_empty(), "{failed:?}");
    {
        let f = fib.lock().unwrap();
        let get = |p: &str| f.get(&p.parse().unwrap());
        let r = get("10.9.0.0/16").unwrap();
        assert_eq!((r.next_hop, r.origin), (Hop::One(via(0, "10.0.2.2")), Origin::Static));
        let r = get("10.8.0.0/16").unwrap();
        assert_eq!(r.next_hop, Hop::Multi(vec![(via(0, "10.0.2.2"), 1), (via(1, "10.0.3.2"), 1)].into()));
        assert_eq!(get("198.51.100.0/24").unwrap().origin, Origin::Bgp);
        assert_eq!(get("10.7.0.0/16").unwrap().next_hop, Hop::Drop);
        assert_eq!(get("10.6.0.0/16").unwrap().next_hop, Hop::Drop);
        assert_eq!(get("10.0.2.0/24"), Some(connected), "zebra's connected route leaves the port's own alone");
        assert!(get("10.5.0.0/16").is_none());
    }
    let s = sink.status();
    assert_eq!((s.installed, s.unusable, s.unmapped_paths, s.connected, s.other_tables), (5, 1, 1, 1, 1), "{s:?}");
    assert_eq!(s.not_zebras, 0);

    // The workers' view: each flow to 10.8/16 keeps to one member; until the neighbour
    // table knows a member's gateway, its packets go to the slow path for that member.
    let rcu = q.register(0).unwrap();
    let view = reader.view(&rcu);
    let id = view.lookup_v4(Ipv4Addr::new(10, 8, 1, 1)).unwrap();
    let pick = |flow: u32| view.route(id, || flow);
    let members: std::collections::BTreeSet<u32> = (0..64).map(|f| pick(f).0).collect();
    assert_eq!(members.len(), 2, "64 flows over both members");
    for f in 0..64 {
        let (m, hop) = pick(f);
        assert_eq!(pick(f).0, m, "one flow, one member");
        assert!(matches!(hop, Next::Resolve { next_hop, .. } if next_hop == m), "unresolved: {hop:?}");
    }
    // The neighbour table resolves 10.0.2.2 on h2: flows on that member are sent, the
    // others still wait for 10.0.3.2.
    assert!(fib.lock().unwrap().set_neighbour(PortIdx(0), IpAddr::V4(Ipv4Addr::new(10, 0, 2, 2)), Some(H2)));
    let mut ready = 0;
    for f in 0..64 {
        match pick(f).1 {
            Next::Ready(nh) => {
                assert_eq!((nh.port, nh.dst), (PortIdx(0), H2));
                ready += 1;
            }
            Next::Resolve { port, .. } => assert_eq!(port, PortIdx(1)),
            Next::Missing => panic!("flow {f}: no next hop"),
        }
    }
    assert!(ready > 0 && ready < 64, "{ready} of 64 flows on h2");
    assert!(fib.lock().unwrap().set_neighbour(PortIdx(1), IpAddr::V4(Ipv4Addr::new(10, 0, 3, 2)), Some(H3)));
    assert!((0..64).all(|f| matches!(pick(f).1, Next::Ready(_))));
    let single = view.lookup_v4(Ipv4Addr::new(10, 9, 0, 1)).unwrap();
    assert!(matches!(view.route(single, || panic!("no hash for one path")).1, Next::Ready(nh) if nh.dst == H2));
    let dropped = view.lookup_v4(Ipv4Addr::new(10, 7, 0, 1)).unwrap();
    assert_eq!(view.route(dropped, || 0).1, Next::Missing, "an unusable route drops (no_route)");
    drop(rcu);

    // A changed route replaces in place; zebra's deletes remove its routes, never the
    // config's.
    let failed = sink.apply(&[
        Change::Delete(key(MAIN_TABLE, "10.8.0.0/16")),
        route("10.8.0.0/16", Protocol::STATIC, unicast, vec![gw("10.0.3.2")]),
        Change::Delete(key(MAIN_TABLE, "10.9.0.0/16")),
        Change::Delete(key(MAIN_TABLE, "10.50.0.0/16")),
        Change::Delete(key(MAIN_TABLE, "10.7.0.0/16")),
    ]);
    assert!(failed.is_empty(), "{failed:?}");
    let f = fib.lock().unwrap();
    assert_eq!(f.get(&"10.8.0.0/16".parse().unwrap()).unwrap().next_hop, Hop::One(via(1, "10.0.3.2")));
    assert!(f.get(&"10.9.0.0/16".parse().unwrap()).is_none());
    assert_eq!(f.get(&"10.50.0.0/16".parse().unwrap()), Some(config));
    let s = sink.status();
    assert_eq!((s.installed, s.unusable, s.unmapped_paths, s.not_zebras), (3, 0, 0, 1), "{s:?}");
}
