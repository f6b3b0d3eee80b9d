//! Which port a next hop of zebra's leaves by.
//!
//! zebra's routes name gateway addresses and interface indexes of **zebra's** network
//! namespace; dplane_fpm_nl sends nothing about interfaces. A next hop maps onto a port:
//!
//! 1. by interface name, where ports say which kernel interface they stand for
//!    (`[[port]] kernel_name`): the next hop's ifindex is turned into a name with
//!    `if_indextoname(3)` in the forwarder's own namespace, so this needs the forwarder to run
//!    in zebra's namespace (the usual same-host set-up, `ip netns exec` included); it is the
//!    only way for a next hop without a gateway (`ip route P IFNAME`) or with an IPv6
//!    link-local gateway;
//! 2. else by gateway address: the port whose own subnet (`ipv4` / `ipv6`) holds the gateway,
//!    the longest such prefix if several do.
//!
//! A next hop that matches no port is [`Unmapped`]: the route is kept and counted unusable
//! by the caller, and packets to it count as `no_route`.

use std::collections::HashMap;
use std::ffi::CStr;
use std::net::IpAddr;

use ipnet::{Ipv4Net, Ipv6Net};

use super::wire::NextHop;
use crate::port::PortIdx;

/// A port's addresses and name, as the mapping needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortAddrs {
    /// The port.
    pub port: PortIdx,
    /// Its own IPv4 address and prefix (`[[port]] ipv4`).
    pub ipv4: Option<Ipv4Net>,
    /// Its own IPv6 address and prefix.
    pub ipv6: Option<Ipv6Net>,
    /// The kernel interface (in zebra's namespace) it stands for.
    pub kernel_name: Option<String>,
}

/// Why a next hop maps onto no port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unmapped {
    /// The gateway is in no port's subnet, and the interface (if any) is no port's
    /// `kernel_name`.
    #[error("gateway {gateway} is in no port's subnet{}", iface(*.ifindex, .name.as_deref()))]
    Gateway {
        /// The gateway.
        gateway: IpAddr,
        /// zebra's interface index, if sent.
        ifindex: Option<u32>,
        /// Its name here, if it has one.
        name: Option<String>,
    },
    /// No gateway (an interface route), and the interface is no port's `kernel_name`.
    #[error("interface route{} matches no port's kernel_name", iface(Some(*.ifindex), .name.as_deref()))]
    Interface {
        /// zebra's interface index.
        ifindex: u32,
        /// Its name here, if it has one.
        name: Option<String>,
    },
}

fn iface(ifindex: Option<u32>, name: Option<&str>) -> String {
    match (ifindex, name) {
        (Some(i), Some(n)) => format!(" (interface {n}, ifindex {i})"),
        (Some(i), None) => format!(" (ifindex {i}, no such interface here)"),
        _ => String::new(),
    }
}

/// The mapping, with a cache of interface names (forgotten with [`PortMap::forget_names`]
/// when zebra reconnects, as its interfaces may have changed).
#[derive(Debug, Clone)]
pub struct PortMap {
    ports: Vec<PortAddrs>,
    names: HashMap<u32, Option<String>>,
}

impl PortMap {
    /// A mapping over these ports.
    pub fn new(ports: Vec<PortAddrs>) -> PortMap {
        PortMap { ports, names: HashMap::new() }
    }

    /// Forgets the interface names looked up so far.
    pub fn forget_names(&mut self) {
        self.names.clear();
    }

    /// The port `nh` leaves by, with interface names from this host (`if_indextoname`).
    ///
    /// # Errors
    /// [`Unmapped`] when no port matches.
    pub fn port_of(&mut self, nh: &NextHop) -> Result<PortIdx, Unmapped> {
        self.port_of_with(nh, &mut name_of)
    }

    /// As [`PortMap::port_of`], with interface names from `lookup`.
    ///
    /// # Errors
    /// [`Unmapped`] when no port matches.
    pub fn port_of_with(&mut self, nh: &NextHop, lookup: &mut dyn FnMut(u32) -> Option<String>) -> Result<PortIdx, Unmapped> {
        let by_name = self.ports.iter().any(|p| p.kernel_name.is_some());
        let name = match nh.ifindex {
            Some(i) if by_name => self.names.entry(i).or_insert_with(|| lookup(i)).clone(),
            _ => None,
        };
        if let Some(n) = &name {
            if let Some(p) = self.ports.iter().find(|p| p.kernel_name.as_deref() == Some(n.as_str())) {
                return Ok(p.port);
            }
        }
        match nh.gateway {
            Some(gw) => self.by_subnet(gw).ok_or(Unmapped::Gateway { gateway: gw, ifindex: nh.ifindex, name }),
            None => Err(Unmapped::Interface { ifindex: nh.ifindex.unwrap_or(0), name }),
        }
    }

    /// The port whose own subnet holds `addr` (the longest prefix).
    fn by_subnet(&self, addr: IpAddr) -> Option<PortIdx> {
        let len = |p: &PortAddrs| match addr {
            IpAddr::V4(a) => p.ipv4.filter(|n| n.contains(&a)).map(|n| n.prefix_len()),
            IpAddr::V6(a) => p.ipv6.filter(|n| n.contains(&a)).map(|n| n.prefix_len()),
        };
        self.ports.iter().filter_map(|p| len(p).map(|l| (l, p.port))).max_by_key(|(l, _)| *l).map(|(_, p)| p)
    }
}

/// The name of interface `ifindex` in this thread's network namespace (`if_indextoname(3)`),
/// or `None` when there is none.
pub fn name_of(ifindex: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` holds IF_NAMESIZE bytes, the size if_indextoname writes at most (the
    // name and its NUL); it returns NULL, writing nothing we read, when there is no such
    // interface.
    #[allow(unsafe_code)]
    let ret = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if ret.is_null() {
        return None;
    }
    let bytes = buf.map(|c| c as u8);
    CStr::from_bytes_until_nul(&bytes).ok().map(|c| c.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports() -> PortMap {
        PortMap::new(vec![
            PortAddrs { port: PortIdx(0), ipv4: Some("10.0.1.1/24".parse().unwrap()), ipv6: None, kernel_name: None },
            PortAddrs {
                port: PortIdx(1),
                ipv4: Some("10.0.2.1/24".parse().unwrap()),
                ipv6: Some("2001:db8:2::1/64".parse().unwrap()),
                kernel_name: Some("rc2".into()),
            },
            PortAddrs { port: PortIdx(2), ipv4: Some("10.0.0.1/16".parse().unwrap()), ipv6: None, kernel_name: None },
        ])
    }

    fn hop(gw: Option<&str>, ifindex: Option<u32>) -> NextHop {
        NextHop { gateway: gw.map(|g| g.parse().unwrap()), ifindex, weight: 1, onlink: false }
    }

    fn names(i: u32) -> Option<String> {
        match i {
            10 => Some("rc2".into()),
            12 => Some("rc3".into()),
            _ => None,
        }
    }

    #[test]
    fn by_gateway_subnet_longest_prefix_first() {
        let mut m = ports();
        let mut lookup = names;
        assert_eq!(m.port_of_with(&hop(Some("10.0.1.7"), Some(12)), &mut lookup), Ok(PortIdx(0)));
        // 10.0.2.2 is in 10.0.0.0/16 (port 2) and in 10.0.2.0/24 (port 1): the /24 wins.
        assert_eq!(m.port_of_with(&hop(Some("10.0.2.2"), None), &mut lookup), Ok(PortIdx(1)));
        assert_eq!(m.port_of_with(&hop(Some("10.0.9.9"), None), &mut lookup), Ok(PortIdx(2)));
        assert_eq!(m.port_of_with(&hop(Some("2001:db8:2::2"), None), &mut lookup), Ok(PortIdx(1)));
        assert_eq!(
            m.port_of_with(&hop(Some("192.0.2.1"), Some(12)), &mut lookup),
            Err(Unmapped::Gateway { gateway: "192.0.2.1".parse().unwrap(), ifindex: Some(12), name: Some("rc3".into()) })
        );
    }

    #[test]
    fn by_interface_name_before_the_gateway() {
        let mut m = ports();
        let mut lookup = names;
        // rc2 is port 1's kernel_name: an onlink gateway outside every subnet, a link-local
        // one, and an interface route all map by it.
        assert_eq!(m.port_of_with(&hop(Some("192.0.2.1"), Some(10)), &mut lookup), Ok(PortIdx(1)));
        assert_eq!(m.port_of_with(&hop(Some("fe80::1"), Some(10)), &mut lookup), Ok(PortIdx(1)));
        assert_eq!(m.port_of_with(&hop(None, Some(10)), &mut lookup), Ok(PortIdx(1)));
        let err = m.port_of_with(&hop(None, Some(99)), &mut lookup).unwrap_err();
        assert_eq!(err, Unmapped::Interface { ifindex: 99, name: None });
        assert_eq!(err.to_string(), "interface route (ifindex 99, no such interface here) matches no port's kernel_name");
    }

    #[test]
    fn names_are_looked_up_once_per_session() {
        let mut m = ports();
        let mut calls = 0;
        let mut lookup = |i: u32| {
            calls += 1;
            names(i)
        };
        for _ in 0..3 {
            let _ = m.port_of_with(&hop(None, Some(10)), &mut lookup);
        }
        m.forget_names();
        let _ = m.port_of_with(&hop(None, Some(10)), &mut lookup);
        assert_eq!(calls, 2);
    }

    #[test]
    fn without_kernel_names_no_lookup_happens() {
        let mut m = PortMap::new(vec![PortAddrs { port: PortIdx(0), ipv4: None, ipv6: None, kernel_name: None }]);
        let mut lookup = |_: u32| -> Option<String> { panic!("looked up a name with no kernel_name configured") };
        assert!(m.port_of_with(&hop(None, Some(1)), &mut lookup).is_err());
    }

    /// The real lookup: interface 1 is `lo` in any network namespace; index 0 is none.
    #[test]
    fn if_indextoname_of_this_namespace() {
        assert_eq!(name_of(1).as_deref(), Some("lo"));
        assert_eq!(name_of(0), None);
        assert_eq!(name_of(u32::MAX), None);
    }
}
