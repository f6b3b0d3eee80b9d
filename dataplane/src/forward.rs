//! Per-packet forwarding decisions: pure functions from a frame's bytes (and tables) to
//! an [`Action`], rewriting headers in place where the mode asks for it.
//!
//! No DPDK here: the worker calls these on `mbuf.data_mut()`, and the tests call them on
//! byte arrays. Every malformed frame becomes [`Action::Drop`] with a [`DropReason`];
//! nothing panics on any input.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::local::Local;
use crate::net::{parse_packet, EthernetFrame, Ipv4Packet, Ipv6Packet, MacAddr, ParseError, L3};
use crate::port::PortIdx;

/// Why a packet was dropped. Indexes the per-lcore drop counters; its counter name is the
/// variant's name in snake_case (`TxFull` is `tx_full`).
///
/// To add a reason, add a variant: the counters, reports and telemetry follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::EnumCount, strum::VariantArray, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum DropReason {
    /// The TX ring was full: `rte_eth_tx_burst` did not take it.
    TxFull,
    /// A header or a length it declares runs past the frame.
    Truncated,
    /// More than two VLAN tags.
    TooManyVlanTags,
    /// IP version does not match the ethertype.
    BadIpVersion,
    /// IPv4 IHL below 5.
    BadIpv4HeaderLen,
    /// IPv4 total length below the header length.
    BadIpv4TotalLen,
    /// Too many IPv6 extension headers.
    TooManyIpv6ExtHeaders,
    /// TCP data offset below 5 or UDP length below 8.
    BadL4Header,
    /// Not IPv4 or IPv6 in a mode that routes.
    NotIp,
    /// IPv4 header checksum wrong.
    BadIpv4Checksum,
    /// TTL or hop limit would reach 0.
    TtlExpired,
    /// No route matches the destination.
    NoRoute,
    /// The packet had to be copied to be written, and the pool was empty.
    NoBufForCopy,
    /// Addressed to the forwarder itself but not a request it answers.
    LocalUnhandled,
    /// A request to the forwarder found the slow-path queue full.
    PuntFull,
    /// Holding the packet (TX backlog, slow path) would exceed its protocol's memory
    /// limit or its group's budget.
    ProtoMem,
    /// The PMD delivered an mbuf chain whose lengths disagree (`pkt_len` against the sum
    /// of `data_len`, `nb_segs` against the chain): dropped before a TX PMD reads past it.
    /// Checked on ports with `check_chains`.
    BadMbufChain,
    /// The worker has no TX queue on the out port. Config validation gives every worker a
    /// TX queue on every port it may send to, so this stays 0; it is counted, not assumed.
    NoTxQueue,
    /// A source address no packet may be forwarded from (RFC 1812 5.3.7, RFC 4291; Linux's
    /// "martian source"): IPv4 0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16 (RFC 3927 2.7),
    /// multicast, 255.255.255.255; IPv6 `::`, `::1`, multicast, link-local `fe80::/10`.
    MartianSource,
    /// A destination no packet may be forwarded to, whatever the routes say (RFC 1812 5.3.7,
    /// RFC 4291; Linux's "martian destination"): IPv4 0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16,
    /// multicast, the limited broadcast 255.255.255.255; IPv6 `::`, `::1`, link-local
    /// `fe80::/10`, multicast (a unicast router forwards none; interface- and link-local
    /// scopes never leave the link, RFC 4291 2.7).
    MartianDestination,
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = <Self as strum::EnumCount>::COUNT;

    /// Every reason, in [`index`](Self::index) order.
    pub const ALL: &'static [DropReason] = <Self as strum::VariantArray>::VARIANTS;

    /// Position in [`ALL`](Self::ALL).
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The counter name: the variant in snake_case.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

impl From<ParseError> for DropReason {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::Truncated => DropReason::Truncated,
            ParseError::TooManyVlanTags => DropReason::TooManyVlanTags,
            ParseError::BadVersion => DropReason::BadIpVersion,
            ParseError::BadHeaderLen => DropReason::BadIpv4HeaderLen,
            ParseError::BadTotalLen => DropReason::BadIpv4TotalLen,
            ParseError::TooManyExtHeaders => DropReason::TooManyIpv6ExtHeaders,
            ParseError::BadL4Header => DropReason::BadL4Header,
        }
    }
}

/// What to do with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send it out of this port.
    Tx(PortIdx),
    /// Free it and count the reason.
    Drop(DropReason),
    /// A request to the forwarder itself (ARP, neighbour solicitation, echo): hand it to
    /// the slow path, which answers it.
    Punt,
    /// Routed (TTL or hop limit already decremented) to next hop `next_hop` out of `port`,
    /// whose neighbour MAC is not known: hand it to the slow path, which holds it while it
    /// resolves the neighbour, then sends it.
    Resolve {
        /// The out port.
        port: PortIdx,
        /// The next-hop id the route lookup returned.
        next_hop: u32,
    },
}

/// `macswap`: exchange source and destination MAC.
#[inline]
pub fn macswap(frame: &mut [u8]) -> Result<(), DropReason> {
    let mut eth = EthernetFrame::new_checked(frame).map_err(DropReason::from)?;
    eth.swap_macs();
    Ok(())
}

/// `l2fwd`: source MAC = the out port's, destination MAC = its configured peer.
#[inline]
pub fn l2fwd(frame: &mut [u8], src: MacAddr, dst: MacAddr) -> Result<(), DropReason> {
    let mut eth = EthernetFrame::new_checked(frame).map_err(DropReason::from)?;
    eth.set_src(src);
    eth.set_dst(dst);
    Ok(())
}

/// Longest-prefix-match lookups, to next-hop indexes.
pub trait Routes {
    /// The next hop for an IPv4 destination.
    fn lookup_v4(&self, dst: Ipv4Addr) -> Option<u32>;
    /// The next hop for an IPv6 destination.
    fn lookup_v6(&self, dst: Ipv6Addr) -> Option<u32>;
}

/// Next hops by the id a route lookup returned.
pub trait NextHops {
    /// The next hop with id `id`, if it exists and is usable.
    fn next_hop(&self, id: u32) -> Option<NextHop>;

    /// What a packet routed to `id` leads to, and the id it takes: `id` itself, or for an
    /// ECMP group the member its flow hash picks (`flow` is called only then). The hop is a
    /// usable next hop, one whose neighbour must be resolved first, or nothing. By default
    /// [`NextHops::next_hop`], without groups or resolution.
    #[inline]
    fn lookup(&self, id: u32, flow: &dyn Fn() -> u32) -> (u32, Hop) {
        let _ = flow;
        (id, self.next_hop(id).map_or(Hop::Missing, Hop::Ready))
    }

    /// The usable next hop a packet routed to `id` takes ([`NextHops::lookup`]), if any.
    #[inline]
    fn next_hop_for(&self, id: u32, flow: &dyn Fn() -> u32) -> Option<NextHop> {
        match self.lookup(id, flow).1 {
            Hop::Ready(nh) => Some(nh),
            Hop::Resolve(_) | Hop::Missing => None,
        }
    }
}

/// What a next-hop id leads to, for the per-packet path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// Send out of the port to this MAC.
    Ready(NextHop),
    /// Its MAC is not known (yet, or any more): hand the packet to the slow path, which
    /// resolves the neighbour out of this port.
    Resolve(PortIdx),
    /// No such next hop.
    Missing,
}

impl NextHops for [NextHop] {
    #[inline]
    fn next_hop(&self, id: u32) -> Option<NextHop> {
        self.get(id as usize).copied()
    }
}

impl<const N: usize> NextHops for [NextHop; N] {
    #[inline]
    fn next_hop(&self, id: u32) -> Option<NextHop> {
        self.get(id as usize).copied()
    }
}

impl NextHops for Vec<NextHop> {
    #[inline]
    fn next_hop(&self, id: u32) -> Option<NextHop> {
        self.get(id as usize).copied()
    }
}

/// Where a next hop is: the out port and the MACs to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    /// Out port.
    pub port: PortIdx,
    /// Source MAC: the out port's own.
    pub src: MacAddr,
    /// Destination MAC: the next hop's.
    pub dst: MacAddr,
}

/// `l3fwd`: route by destination address. IPv4: header checksum verified, TTL
/// decremented with an incremental checksum update (RFC 1624). IPv6: hop limit
/// decremented. Both: MACs rewritten for the next hop, or, when its neighbour's MAC is not
/// known, [`Action::Resolve`] (the MACs are the slow path's to write). Anything else is
/// dropped with its reason; the frame is only modified when the packet is forwarded. With the input
/// port's own addresses in `local`, requests to them are punted ([`Action::Punt`]) and
/// other packets to them dropped (`local_unhandled`) instead of being routed.
#[inline]
pub fn l3fwd<R: Routes, N: NextHops + ?Sized>(frame: &mut [u8], routes: &R, next_hops: &N, local: Option<&Local>) -> Action {
    let len = frame.len();
    l3fwd_packet(frame, len, routes, next_hops, local)
}

/// [`l3fwd`] for a packet of `pkt_len` bytes whose first segment is `frame` (an mbuf
/// chain: a frame larger than one data room, or scattered RX). Its headers are in the first
/// segment, so it is routed like any other; only the headers are read or written
/// ([`parse_packet`]).
pub fn l3fwd_packet<R: Routes, N: NextHops + ?Sized>(
    frame: &mut [u8],
    pkt_len: usize,
    routes: &R,
    next_hops: &N,
    local: Option<&Local>,
) -> Action {
    let p = match parse_packet(frame, pkt_len) {
        Ok(p) => p,
        Err(e) => return Action::Drop(e.into()),
    };
    if let Some(l) = local {
        if crate::local::classify(frame, &p, l).is_some() {
            return Action::Punt;
        }
        if crate::local::is_for(frame, &p, l) {
            return Action::Drop(DropReason::LocalUnhandled);
        }
    }
    let l3 = usize::from(p.l3_offset);
    let available = pkt_len.max(frame.len()) - l3;
    let nh = match p.l3 {
        L3::Ipv4 => {
            let Ok(ip) = Ipv4Packet::new_checked_within(&frame[l3..], available) else {
                return Action::Drop(DropReason::Truncated);
            };
            if !ip.verify_checksum() {
                return Action::Drop(DropReason::BadIpv4Checksum);
            }
            if let Some(r) = martian_v4(ip.src_addr(), ip.dst_addr()) {
                return Action::Drop(r);
            }
            if ip.ttl() <= 1 {
                return Action::Drop(DropReason::TtlExpired);
            }
            let Some(id) = routes.lookup_v4(ip.dst_addr()) else {
                return Action::Drop(DropReason::NoRoute);
            };
            // An ECMP group picks its member by the packet's flow hash, computed only then.
            let (id, hop) = next_hops.lookup(id, &|| crate::ecmp::flow_hash(frame, &p));
            if hop == Hop::Missing {
                return Action::Drop(DropReason::NoRoute);
            }
            // A view again: the flow hash read the frame.
            if let Ok(mut ip) = Ipv4Packet::new_checked_within(&mut frame[l3..], available) {
                ip.decrement_ttl();
            }
            match hop {
                Hop::Ready(nh) => nh,
                Hop::Resolve(port) => return Action::Resolve { port, next_hop: id },
                Hop::Missing => return Action::Drop(DropReason::NoRoute),
            }
        }
        L3::Ipv6 => {
            let Ok(ip) = Ipv6Packet::new_checked_within(&frame[l3..], available) else {
                return Action::Drop(DropReason::Truncated);
            };
            if let Some(r) = martian_v6(ip.src_addr(), ip.dst_addr()) {
                return Action::Drop(r);
            }
            if ip.hop_limit() <= 1 {
                return Action::Drop(DropReason::TtlExpired);
            }
            let Some(id) = routes.lookup_v6(ip.dst_addr()) else {
                return Action::Drop(DropReason::NoRoute);
            };
            let (id, hop) = next_hops.lookup(id, &|| crate::ecmp::flow_hash(frame, &p));
            if hop == Hop::Missing {
                return Action::Drop(DropReason::NoRoute);
            }
            if let Ok(mut ip) = Ipv6Packet::new_checked_within(&mut frame[l3..], available) {
                ip.decrement_hop_limit();
            }
            match hop {
                Hop::Ready(nh) => nh,
                Hop::Resolve(port) => return Action::Resolve { port, next_hop: id },
                Hop::Missing => return Action::Drop(DropReason::NoRoute),
            }
        }
        L3::Arp | L3::Other(_) => return Action::Drop(DropReason::NotIp),
    };
    // parse() accepted at least an Ethernet header, so this cannot fail.
    if let Ok(mut eth) = EthernetFrame::new_checked(&mut frame[..]) {
        eth.set_src(nh.src);
        eth.set_dst(nh.dst);
    }
    Action::Tx(nh.port)
}

/// Whether an IPv4 packet from `src` to `dst` must not be forwarded, and why
/// (RFC 1812 5.3.7; Linux `ip_route_input_slow`'s martian checks; RFC 3927 2.7).
#[inline]
pub fn martian_v4(src: Ipv4Addr, dst: Ipv4Addr) -> Option<DropReason> {
    // 0/8, 127/8, 169.254/16, 224/4 and 255.255.255.255, one compare each on the first
    // octets.
    let bad = |a: Ipv4Addr| {
        let o = a.octets();
        o[0] == 0 || o[0] == 127 || (o[0] == 169 && o[1] == 254) || a.is_multicast() || a.is_broadcast()
    };
    if bad(dst) {
        Some(DropReason::MartianDestination)
    } else if bad(src) {
        Some(DropReason::MartianSource)
    } else {
        None
    }
}

/// Whether an IPv6 packet from `src` to `dst` must not be forwarded, and why (RFC 4291;
/// Linux `ip6_forward`): the unspecified address, loopback, link-local unicast, and
/// multicast (a unicast router forwards none; RFC 4291 2.7 keeps interface- and link-local
/// scopes on their link).
#[inline]
pub fn martian_v6(src: Ipv6Addr, dst: Ipv6Addr) -> Option<DropReason> {
    let bad = |a: Ipv6Addr| a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_unicast_link_local();
    if bad(dst) {
        Some(DropReason::MartianDestination)
    } else if bad(src) {
        Some(DropReason::MartianSource)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::ethernet::ethertype;
    use crate::net::{emit, ip_proto};

    /// A linear-scan LPM: enough to test the decision logic without DPDK's tables
    /// (those are tested against EAL in tests/lpm.rs and through the forwarder).
    struct Table(Vec<(u128, u8, bool, u32)>);

    impl Table {
        fn best(&self, v6: bool, addr: u128, bits: u32) -> Option<u32> {
            self.0
                .iter()
                .filter(|(p, len, is6, _)| {
                    *is6 == v6 && (*len == 0 || (addr >> (bits - u32::from(*len))) == (p >> (bits - u32::from(*len))))
                })
                .max_by_key(|r| r.1)
                .map(|r| r.3)
        }
    }

    impl Routes for Table {
        fn lookup_v4(&self, dst: Ipv4Addr) -> Option<u32> {
            self.best(false, u128::from(u32::from(dst)), 32)
        }
        fn lookup_v6(&self, dst: Ipv6Addr) -> Option<u32> {
            self.best(true, u128::from(dst), 128)
        }
    }

    const P0: MacAddr = MacAddr([2, 0, 0, 0, 0, 0]);
    const P1: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const GW1: MacAddr = MacAddr([2, 0, 0, 0, 1, 1]);
    const GW2: MacAddr = MacAddr([2, 0, 0, 0, 2, 2]);

    fn tables() -> (Table, Vec<NextHop>) {
        let v4 = |a: [u8; 4]| u128::from(u32::from(Ipv4Addr::from(a)));
        let v6 = |s: &str| u128::from(s.parse::<Ipv6Addr>().unwrap());
        (
            Table(vec![
                (v4([10, 1, 0, 0]), 16, false, 0),
                (v4([10, 1, 2, 0]), 24, false, 1),
                (v6("2001:db8::"), 32, true, 0),
                (v6("2001:db8:1::"), 48, true, 1),
            ]),
            vec![NextHop { port: PortIdx(0), src: P0, dst: GW1 }, NextHop { port: PortIdx(1), src: P1, dst: GW2 }],
        )
    }

    fn ipv4_udp(dst: [u8; 4], ttl: u8) -> Vec<u8> {
        let (src, dst) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::from(dst));
        let udp = emit::udp(src.into(), dst.into(), 1234, 5678, &[0; 4]);
        let ip = emit::Ipv4Repr { ttl, ..emit::Ipv4Repr::new(src, dst, ip_proto::UDP) }.emit(&udp);
        emit::ethernet(MacAddr([0xaa; 6]), MacAddr([0xbb; 6]), &[], ethertype::IPV4, &ip)
    }

    fn ipv6_udp(dst: &str, hops: u8) -> Vec<u8> {
        let (src, dst) = ("2001:db8:ffff::1".parse::<Ipv6Addr>().unwrap(), dst.parse::<Ipv6Addr>().unwrap());
        let udp = emit::udp(src.into(), dst.into(), 1234, 5678, &[]);
        let ip = emit::Ipv6Repr { hop_limit: hops, ..emit::Ipv6Repr::new(src, dst, ip_proto::UDP) }.emit(&udp);
        emit::ethernet(MacAddr::default(), MacAddr::default(), &[], ethertype::IPV6, &ip)
    }

    #[test]
    fn ipv4_longest_prefix_ttl_checksum_and_macs() {
        let (t, nh) = tables();
        let mut f = ipv4_udp([10, 1, 2, 3], 64);
        assert_eq!(l3fwd(&mut f, &t, &nh, None), Action::Tx(PortIdx(1)), "/24 beats /16");
        assert_eq!(&f[0..6], &GW2.0);
        assert_eq!(&f[6..12], &P1.0);
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert_eq!(ip.ttl(), 63);
        assert!(ip.verify_checksum(), "incremental update keeps the checksum valid");
        let mut g = ipv4_udp([10, 1, 3, 3], 2);
        assert_eq!(l3fwd(&mut g, &t, &nh, None), Action::Tx(PortIdx(0)));
        assert_eq!(Ipv4Packet::new_checked(&g[14..]).unwrap().ttl(), 1);
    }

    #[test]
    fn ipv4_drops_leave_the_frame_alone() {
        let (t, nh) = tables();
        for (mut f, reason) in [
            (ipv4_udp([10, 9, 0, 1], 64), DropReason::NoRoute),
            (ipv4_udp([10, 1, 2, 3], 1), DropReason::TtlExpired),
            (ipv4_udp([10, 1, 2, 3], 0), DropReason::TtlExpired),
            (
                {
                    let mut f = ipv4_udp([10, 1, 2, 3], 64);
                    f[24] ^= 0xff;
                    f
                },
                DropReason::BadIpv4Checksum,
            ),
            (
                {
                    let mut f = ipv4_udp([10, 1, 2, 3], 64);
                    f[14] = 0x44;
                    f
                },
                DropReason::BadIpv4HeaderLen,
            ),
            (
                {
                    let mut f = ipv4_udp([10, 1, 2, 3], 64);
                    f[14] = 0x55;
                    f
                },
                DropReason::BadIpVersion,
            ),
            (
                {
                    let mut f = ipv4_udp([10, 1, 2, 3], 64);
                    f[16..18].copy_from_slice(&100u16.to_be_bytes());
                    f
                },
                DropReason::Truncated,
            ),
            (
                {
                    let mut f = ipv4_udp([10, 1, 2, 3], 64);
                    f[16..18].copy_from_slice(&10u16.to_be_bytes());
                    f
                },
                DropReason::BadIpv4TotalLen,
            ),
            (
                {
                    let mut f = ipv4_udp([10, 1, 2, 3], 64);
                    f[12..14].copy_from_slice(&[0x08, 0x06]);
                    f
                },
                DropReason::NotIp,
            ),
            (ipv4_udp([10, 1, 2, 3], 64)[..20].to_vec(), DropReason::Truncated),
        ] {
            let before = f.clone();
            assert_eq!(l3fwd(&mut f, &t, &nh, None), Action::Drop(reason));
            assert_eq!(f, before, "{reason:?} must not modify the frame");
        }
    }

    #[test]
    fn ipv6_routes_and_hop_limit() {
        let (t, nh) = tables();
        let mut f = ipv6_udp("2001:db8:1::7", 64);
        assert_eq!(l3fwd(&mut f, &t, &nh, None), Action::Tx(PortIdx(1)));
        assert_eq!(f[14 + 7], 63);
        assert_eq!(&f[0..6], &GW2.0);
        let mut g = ipv6_udp("2001:db8:2::7", 64);
        assert_eq!(l3fwd(&mut g, &t, &nh, None), Action::Tx(PortIdx(0)));
        assert_eq!(l3fwd(&mut ipv6_udp("2001:db9::1", 64), &t, &nh, None), Action::Drop(DropReason::NoRoute));
        assert_eq!(l3fwd(&mut ipv6_udp("2001:db8::1", 1), &t, &nh, None), Action::Drop(DropReason::TtlExpired));
    }

    /// Issue 14 item 7: martians are dropped with their own reasons even with a default
    /// route, and ordinary addresses next to them still route.
    #[test]
    fn martians_are_not_forwarded_even_with_a_default_route() {
        let (mut t, nh) = tables();
        t.0.push((0, 0, false, 0)); // 0.0.0.0/0
        t.0.push((0, 0, true, 0)); // ::/0
        let v4 = |src: [u8; 4], dst: [u8; 4]| {
            let mut f = ipv4_udp(dst, 64);
            f[26..30].copy_from_slice(&src);
            f[24..26].fill(0);
            let c = crate::net::checksum::checksum(&f[14..34]);
            f[24..26].copy_from_slice(&c.to_be_bytes());
            f
        };
        let ok = [192, 0, 2, 1];
        for (dst, why) in [
            ([255, 255, 255, 255], "limited broadcast"),
            ([127, 0, 0, 1], "loopback"),
            ([0, 0, 0, 0], "unspecified"),
            ([0, 1, 2, 3], "this network"),
            ([224, 0, 0, 251], "multicast"),
            ([169, 254, 1, 1], "link-local"),
        ] {
            let mut f = v4(ok, dst);
            let before = f.clone();
            assert_eq!(l3fwd(&mut f, &t, &nh, None), Action::Drop(DropReason::MartianDestination), "{why}");
            assert_eq!(f, before);
        }
        for (src, why) in [
            ([127, 0, 0, 1], "loopback"),
            ([0, 0, 0, 0], "unspecified"),
            ([224, 0, 0, 1], "multicast"),
            ([255, 255, 255, 255], "limited broadcast"),
            ([169, 254, 0, 9], "link-local"),
        ] {
            assert_eq!(l3fwd(&mut v4(src, [10, 9, 9, 9]), &t, &nh, None), Action::Drop(DropReason::MartianSource), "{why}");
        }
        for (src, dst) in
            [([10, 0, 0, 1], [10, 9, 9, 9]), ([192, 0, 2, 1], [240, 0, 0, 1]), ([169, 253, 0, 1], [126, 255, 255, 255])]
        {
            assert_eq!(l3fwd(&mut v4(src, dst), &t, &nh, None), Action::Tx(PortIdx(0)), "{src:?} -> {dst:?}");
        }
        let v6 = |src: &str, dst: &str| {
            let mut f = ipv6_udp(dst, 64);
            f[22..38].copy_from_slice(&src.parse::<Ipv6Addr>().unwrap().octets());
            f
        };
        for dst in ["::", "::1", "ff02::1", "ff01::1", "ff0e::1", "fe80::1"] {
            assert_eq!(l3fwd(&mut v6("2001:db8::9", dst), &t, &nh, None), Action::Drop(DropReason::MartianDestination), "{dst}");
        }
        for src in ["::", "::1", "ff02::1", "fe80::1"] {
            assert_eq!(l3fwd(&mut v6(src, "2001:db9::1"), &t, &nh, None), Action::Drop(DropReason::MartianSource), "{src}");
        }
        assert_eq!(l3fwd(&mut v6("2001:db8::9", "2001:db9::1"), &t, &nh, None), Action::Tx(PortIdx(0)));
        assert_eq!(l3fwd(&mut v6("fec0::1", "fc00::1"), &t, &nh, None), Action::Tx(PortIdx(0)), "site-local, ULA route");
    }

    /// Issue 14 item 6: the first 2 KiB of a 9000-byte packet route it; only a packet
    /// really shorter than its headers declare is `truncated`.
    #[test]
    fn a_packet_longer_than_its_first_segment_is_routed() {
        let (t, nh) = tables();
        let mut whole = ipv4_udp([10, 1, 2, 3], 64);
        // Declare 9000 - 14 bytes of datagram, as a jumbo frame would.
        whole[16..18].copy_from_slice(&(9000u16 - 14).to_be_bytes());
        whole[38..40].copy_from_slice(&(9000u16 - 34).to_be_bytes());
        whole[24..26].fill(0);
        let c = crate::net::checksum::checksum(&whole[14..34]);
        whole[24..26].copy_from_slice(&c.to_be_bytes());
        let mut first = whole[..60].to_vec();
        assert_eq!(l3fwd_packet(&mut first, 9000, &t, &nh, None), Action::Tx(PortIdx(1)));
        assert_eq!(first[14 + 8], 63, "TTL decremented in the first segment");
        assert!(Ipv4Packet::new_checked_within(&first[14..], 9000 - 14).unwrap().verify_checksum());
        let mut short = whole[..60].to_vec();
        assert_eq!(l3fwd_packet(&mut short, 8999, &t, &nh, None), Action::Drop(DropReason::Truncated));
        assert_eq!(l3fwd(&mut whole[..60].to_vec(), &t, &nh, None), Action::Drop(DropReason::Truncated), "one segment alone");
        let mut v6 = ipv6_udp("2001:db8:1::7", 64);
        v6[18..20].copy_from_slice(&(9000u16 - 54).to_be_bytes());
        v6[58..60].copy_from_slice(&(9000u16 - 54).to_be_bytes());
        assert_eq!(l3fwd_packet(&mut v6[..62].to_vec(), 9000, &t, &nh, None), Action::Tx(PortIdx(1)));
    }

    #[test]
    fn macswap_and_l2fwd_rewrite_macs() {
        let mut f = ipv4_udp([10, 1, 2, 3], 64);
        macswap(&mut f).unwrap();
        assert_eq!(&f[0..6], &[0xbb; 6]);
        assert_eq!(&f[6..12], &[0xaa; 6]);
        l2fwd(&mut f, P0, GW1).unwrap();
        assert_eq!(&f[0..6], &GW1.0);
        assert_eq!(&f[6..12], &P0.0);
        assert_eq!(macswap(&mut [0u8; 13]), Err(DropReason::Truncated));
        assert_eq!(l2fwd(&mut [0u8; 5], P0, GW1), Err(DropReason::Truncated));
    }

    #[test]
    fn no_input_panics() {
        let (t, nh) = tables();
        let base = ipv4_udp([10, 1, 2, 3], 64);
        for len in 0..=base.len() {
            for i in 0..len {
                for v in [0x00, 0xff, 0x45, 0x86] {
                    let mut f = base[..len].to_vec();
                    f[i] = v;
                    let _ = l3fwd(&mut f, &t, &nh, None);
                    let _ = macswap(&mut f);
                }
            }
        }
    }

    #[test]
    fn reasons_are_indexed_in_order() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        // The names the README's table and the JSON reports use.
        let names: Vec<&str> = DropReason::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(
            names,
            [
                "tx_full",
                "truncated",
                "too_many_vlan_tags",
                "bad_ip_version",
                "bad_ipv4_header_len",
                "bad_ipv4_total_len",
                "too_many_ipv6_ext_headers",
                "bad_l4_header",
                "not_ip",
                "bad_ipv4_checksum",
                "ttl_expired",
                "no_route",
                "no_buf_for_copy",
                "local_unhandled",
                "punt_full",
                "proto_mem",
                "bad_mbuf_chain",
                "no_tx_queue",
                "martian_source",
                "martian_destination",
            ]
        );
        for &e in ParseError::ALL {
            // A parse error is counted as the drop reason of the same name.
            assert_eq!(DropReason::from(e).name(), e.name());
        }
    }
}
