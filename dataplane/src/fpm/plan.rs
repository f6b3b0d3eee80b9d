//! What a route of zebra's becomes in the forwarding table.
//!
//! - zebra's connected routes (`rtm_protocol` 2, kernel; its interfaces' subnets) are not
//!   installed: the forwarder derives its own connected routes from its ports' addresses,
//!   and zebra's interfaces are not its ports.
//! - Blackhole, unreachable and prohibit routes drop what they match.
//! - A unicast route's paths are mapped onto ports ([`PortMap`]): those that map make the
//!   route (several = ECMP, by weight); those that do not are counted. A route none of whose
//!   paths maps is **unusable**: it stays in zebra's table as the FPM side holds it, and in
//!   the forwarding table it drops what it matches (rather than let a shorter prefix, such as
//!   a default route, take its traffic), counted as such.

use std::net::IpAddr;

use super::ports::{PortMap, Unmapped};
use super::wire::{Protocol, Route, RouteKind};
use crate::port::PortIdx;

/// One path of a route, mapped onto a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path {
    /// The out port.
    pub port: PortIdx,
    /// The gateway; `None` for a route straight out of the port (the destination itself
    /// is the neighbour).
    pub gateway: Option<IpAddr>,
    /// Its share under ECMP.
    pub weight: u16,
}

/// What to install for one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Nothing: one of zebra's connected routes.
    Connected,
    /// A route that drops (blackhole, unreachable, prohibit).
    Drop(RouteKind),
    /// Forward by these paths (at least one), with the paths that mapped onto no port.
    Paths {
        /// The mapped paths, in zebra's order.
        paths: Vec<Path>,
        /// Why the others did not map.
        unmapped: Vec<Unmapped>,
    },
    /// No path maps onto a port: install a route that drops, count it.
    Unusable(Vec<Unmapped>),
}

/// The target of `route`, its next hops mapped onto ports by `ports`.
pub fn plan(route: &Route, ports: &mut PortMap) -> Target {
    if route.protocol == Protocol::KERNEL {
        return Target::Connected;
    }
    if route.kind != RouteKind::Unicast {
        return Target::Drop(route.kind);
    }
    let mut paths = Vec::with_capacity(route.next_hops.len());
    let mut unmapped = Vec::new();
    for nh in &route.next_hops {
        match ports.port_of(nh) {
            Ok(port) => {
                let path = Path { port, gateway: nh.gateway, weight: nh.weight };
                // zebra never repeats a path; two that map to the same port and gateway
                // (two interfaces of zebra's onto one port) are one path of their summed weight.
                match paths.iter_mut().find(|p: &&mut Path| p.port == port && p.gateway == nh.gateway) {
                    Some(p) => p.weight = p.weight.saturating_add(nh.weight),
                    None => paths.push(path),
                }
            }
            Err(e) => unmapped.push(e),
        }
    }
    if paths.is_empty() {
        Target::Unusable(unmapped)
    } else {
        Target::Paths { paths, unmapped }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fpm::ports::PortAddrs;
    use crate::fpm::wire::tests::{key, STATIC_ECMP};
    use crate::fpm::wire::{decode_stream, Message, NextHop};

    fn ports() -> PortMap {
        PortMap::new(vec![
            PortAddrs { port: PortIdx(0), ipv4: Some("10.0.2.1/24".parse().unwrap()), ipv6: None, kernel_name: None },
            PortAddrs { port: PortIdx(1), ipv4: Some("10.0.3.1/24".parse().unwrap()), ipv6: None, kernel_name: None },
        ])
    }

    fn route(protocol: u8, kind: RouteKind, hops: &[(&str, u16)]) -> Route {
        Route {
            key: key("10.9.0.0/16"),
            protocol: Protocol(protocol),
            kind,
            next_hops: hops
                .iter()
                .map(|(g, w)| NextHop { gateway: Some(g.parse().unwrap()), ifindex: Some(10), weight: *w, onlink: false })
                .collect(),
        }
    }

    #[test]
    fn connected_drop_paths_and_unusable() {
        let mut m = ports();
        assert_eq!(plan(&route(2, RouteKind::Unicast, &[("10.0.2.2", 1)]), &mut m), Target::Connected);
        assert_eq!(plan(&route(196, RouteKind::Blackhole, &[]), &mut m), Target::Drop(RouteKind::Blackhole));
        let ecmp = plan(&route(186, RouteKind::Unicast, &[("10.0.2.2", 1), ("192.0.2.1", 1), ("10.0.3.2", 2)]), &mut m);
        let Target::Paths { paths, unmapped } = ecmp else { panic!("{ecmp:?}") };
        assert_eq!(
            paths,
            [
                Path { port: PortIdx(0), gateway: Some("10.0.2.2".parse().unwrap()), weight: 1 },
                Path { port: PortIdx(1), gateway: Some("10.0.3.2".parse().unwrap()), weight: 2 }
            ]
        );
        assert_eq!(unmapped.len(), 1);
        let none = plan(&route(196, RouteKind::Unicast, &[("192.0.2.1", 1)]), &mut m);
        assert!(matches!(&none, Target::Unusable(u) if u.len() == 1), "{none:?}");
    }

    /// Every upsert of the captured staticd stream: the connected ones skipped, the others
    /// mapped, except 10.4/16 and 10.6/16 (gateway 192.0.2.1, in no port's subnet) and the
    /// two versions of 2001:db8:9::/48 (no port has an IPv6 address here).
    #[test]
    fn the_captured_stream() {
        let mut m = ports();
        let routes: Vec<Route> = decode_stream(STATIC_ECMP)
            .into_iter()
            .flat_map(|f| f.unwrap())
            .filter_map(|msg| if let Message::Upsert(r) = msg { Some(r) } else { None })
            .collect();
        let targets: Vec<Target> = routes.iter().map(|r| plan(r, &mut m)).collect();
        assert_eq!(targets.iter().filter(|t| **t == Target::Connected).count(), 6);
        assert_eq!(targets.iter().filter(|t| matches!(t, Target::Unusable(_))).count(), 4);
        let ecmp = routes.iter().zip(&targets).find(|(r, _)| r.key == key("10.8.0.0/16")).unwrap().1;
        assert!(matches!(ecmp, Target::Paths { paths, unmapped } if paths.len() == 2 && unmapped.is_empty()), "{ecmp:?}");
    }
}
