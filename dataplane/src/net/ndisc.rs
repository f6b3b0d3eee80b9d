//! IPv6 Neighbor Discovery (RFC 4861): neighbour solicitations and advertisements, their
//! link-layer address options, the validity checks of RFC 4861 7.1.1 and 7.1.2, and whole
//! frames for the messages the forwarder sends (solicitations, probes, DAD, advertisements
//! with the Router, Solicited and Override flags).
//!
//! [`NdiscRepr::parse`] takes the IPv6 header's source, destination and hop limit and the
//! ICMPv6 message (from its type byte to the end of the IPv6 payload) and either returns the
//! message or the first rule it breaks ([`NdiscError`]), in the RFC's order. Nothing here
//! panics on any input.

use std::net::{IpAddr, Ipv6Addr};

use super::ethernet::ethertype;
use super::l4::icmpv6_type;
use super::{checksum, emit, ip_proto, MacAddr};

/// Length of a solicitation or advertisement without options: type, code, checksum, 4
/// bytes of flags / reserved, the 16-byte target.
pub const MIN_LEN: usize = 24;

/// The hop limit every Neighbor Discovery message is sent with and must arrive with.
pub const HOP_LIMIT: u8 = 255;

/// The all-nodes link-local multicast group, `ff02::1`.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Option types (RFC 4861 4.6).
pub mod opt {
    /// Source Link-Layer Address.
    pub const SOURCE_LL_ADDR: u8 = 1;
    /// Target Link-Layer Address.
    pub const TARGET_LL_ADDR: u8 = 2;
}

/// Advertisement flag bits, in the first byte after the checksum.
mod flag {
    pub const ROUTER: u8 = 0x80;
    pub const SOLICITED: u8 = 0x40;
    pub const OVERRIDE: u8 = 0x20;
}

/// The solicited-node multicast address of `addr`: `ff02::1:ff` and its last 24 bits
/// (RFC 4291 2.7.1).
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::from([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15]])
}

/// Whether `addr` is a solicited-node multicast address (`ff02::1:ff00:0/104`).
pub fn is_solicited_node(addr: Ipv6Addr) -> bool {
    addr.octets()[..13] == [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff]
}

/// The Ethernet address an IPv6 multicast group maps to: `33:33` and its last 32 bits
/// (RFC 2464 7).
pub fn multicast_mac(group: Ipv6Addr) -> MacAddr {
    let o = group.octets();
    MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// An advertisement's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NaFlags {
    /// R: the sender is a router (a Linux host then shows it as `router` in `ip -6 neigh`).
    pub router: bool,
    /// S: sent in response to a solicitation (a confirmation of reachability).
    pub solicited: bool,
    /// O: the target link-layer address should override a cached one.
    pub override_: bool,
}

/// A neighbour solicitation or advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdiscRepr {
    /// Type 135: who has `target`? (from `::` with no option: duplicate address detection).
    Solicit {
        /// The address asked about.
        target: Ipv6Addr,
        /// The sender's link-layer address option, if present.
        sllao: Option<MacAddr>,
    },
    /// Type 136: `target` is at `tlla`.
    Advert {
        /// R, S and O.
        flags: NaFlags,
        /// The address advertised.
        target: Ipv6Addr,
        /// The target link-layer address option, if present.
        tlla: Option<MacAddr>,
    },
}

/// Why a solicitation or advertisement is silently discarded (RFC 4861 7.1.1, 7.1.2, and
/// what Linux's `ndisc_rcv` / `ndisc_parse_options` add). Each is a counter name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error, strum::EnumCount, strum::VariantArray, strum::IntoStaticStr,
)]
#[strum(serialize_all = "snake_case")]
pub enum NdiscError {
    /// Not type 135 or 136.
    #[error("not a neighbour solicitation or advertisement")]
    NotNdisc,
    /// IP hop limit is not 255: the message may have crossed a router.
    #[error("hop limit is not 255")]
    NdBadHopLimit,
    /// The ICMPv6 checksum (over the IPv6 pseudo-header, RFC 4443 2.3) is wrong.
    #[error("bad ICMPv6 checksum")]
    Icmpv6BadChecksum,
    /// ICMP code is not 0.
    #[error("ICMP code is not 0")]
    NdBadCode,
    /// Shorter than 24 bytes, or an option runs past the end.
    #[error("shorter than its fixed part or its options")]
    NdTruncated,
    /// The target address is multicast.
    #[error("multicast target address")]
    NdMulticastTarget,
    /// An option has length 0.
    #[error("an option of length 0")]
    NdZeroLengthOption,
    /// A link-layer address option whose length is not that of an Ethernet address (8 bytes).
    #[error("link-layer address option of the wrong length")]
    NdBadLinkLayerOption,
    /// From the unspecified address to a destination that is not a solicited-node address.
    #[error("DAD solicitation not to a solicited-node address")]
    NdDadBadDestination,
    /// From the unspecified address with a source link-layer address option.
    #[error("DAD solicitation with a source link-layer address option")]
    NdDadWithSourceOption,
    /// An advertisement to a multicast address with the Solicited flag set.
    #[error("solicited advertisement to a multicast address")]
    NdSolicitedToMulticast,
}

impl NdiscError {
    /// Every reason.
    pub const ALL: &'static [NdiscError] = <Self as strum::VariantArray>::VARIANTS;

    /// The counter name.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

impl NdiscRepr {
    /// Reads and validates a message received from `src` to `dst` with `hop_limit`;
    /// `icmp` is the ICMPv6 message, from its type byte to the end of the IPv6 payload.
    ///
    /// # Errors
    /// The first RFC 4861 7.1 rule broken, in the RFC's order (hop limit, checksum, code,
    /// length, target, options, then the rules on the addresses), as [`NdiscError`].
    /// Unknown options are skipped; of two link-layer options of the same type the first
    /// counts (as in Linux).
    pub fn parse(src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8, icmp: &[u8]) -> Result<NdiscRepr, NdiscError> {
        let ty = *icmp.first().ok_or(NdiscError::NdTruncated)?;
        if ty != icmpv6_type::NEIGHBOR_SOLICIT && ty != icmpv6_type::NEIGHBOR_ADVERT {
            return Err(NdiscError::NotNdisc);
        }
        if hop_limit != HOP_LIMIT {
            return Err(NdiscError::NdBadHopLimit);
        }
        if icmp.len() < 4 || checksum::pseudo_header_checksum(IpAddr::V6(src), IpAddr::V6(dst), ip_proto::ICMPV6, icmp) != 0 {
            return Err(NdiscError::Icmpv6BadChecksum);
        }
        if icmp[1] != 0 {
            return Err(NdiscError::NdBadCode);
        }
        if icmp.len() < MIN_LEN {
            return Err(NdiscError::NdTruncated);
        }
        let mut t = [0u8; 16];
        t.copy_from_slice(&icmp[8..24]);
        let target = Ipv6Addr::from(t);
        if target.is_multicast() {
            return Err(NdiscError::NdMulticastTarget);
        }
        let wanted = if ty == icmpv6_type::NEIGHBOR_SOLICIT { opt::SOURCE_LL_ADDR } else { opt::TARGET_LL_ADDR };
        let mut lladdr = None;
        let mut opts = &icmp[MIN_LEN..];
        while !opts.is_empty() {
            let len = usize::from(*opts.get(1).ok_or(NdiscError::NdTruncated)?) * 8;
            if len == 0 {
                return Err(NdiscError::NdZeroLengthOption);
            }
            let body = opts.get(..len).ok_or(NdiscError::NdTruncated)?;
            if body[0] == opt::SOURCE_LL_ADDR || body[0] == opt::TARGET_LL_ADDR {
                // An Ethernet address fills exactly one 8-byte unit (RFC 2464 8).
                if len != 8 {
                    return Err(NdiscError::NdBadLinkLayerOption);
                }
                if body[0] == wanted && lladdr.is_none() {
                    lladdr = Some(MacAddr([body[2], body[3], body[4], body[5], body[6], body[7]]));
                }
            }
            opts = &opts[len..];
        }
        if ty == icmpv6_type::NEIGHBOR_SOLICIT {
            if src.is_unspecified() {
                if !is_solicited_node(dst) {
                    return Err(NdiscError::NdDadBadDestination);
                }
                if lladdr.is_some() {
                    return Err(NdiscError::NdDadWithSourceOption);
                }
            }
            Ok(NdiscRepr::Solicit { target, sllao: lladdr })
        } else {
            let f = icmp[4];
            let flags = NaFlags {
                router: f & flag::ROUTER != 0,
                solicited: f & flag::SOLICITED != 0,
                override_: f & flag::OVERRIDE != 0,
            };
            if dst.is_multicast() && flags.solicited {
                return Err(NdiscError::NdSolicitedToMulticast);
            }
            Ok(NdiscRepr::Advert { flags, target, tlla: lladdr })
        }
    }

    /// The ICMPv6 message from `src` to `dst`: fixed part, the link-layer address option if
    /// any, checksum filled in.
    pub fn emit(&self, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
        let (ty, rest, target, option) = match *self {
            NdiscRepr::Solicit { target, sllao } => {
                (icmpv6_type::NEIGHBOR_SOLICIT, [0; 4], target, sllao.map(|m| (opt::SOURCE_LL_ADDR, m)))
            }
            NdiscRepr::Advert { flags, target, tlla } => {
                let f = (if flags.router { flag::ROUTER } else { 0 })
                    | (if flags.solicited { flag::SOLICITED } else { 0 })
                    | (if flags.override_ { flag::OVERRIDE } else { 0 });
                (icmpv6_type::NEIGHBOR_ADVERT, [f, 0, 0, 0], target, tlla.map(|m| (opt::TARGET_LL_ADDR, m)))
            }
        };
        let mut body = target.octets().to_vec();
        if let Some((ty, mac)) = option {
            body.extend_from_slice(&[ty, 1]);
            body.extend_from_slice(&mac.0);
        }
        emit::icmpv6(src, dst, ty, 0, rest, &body)
    }

    /// The whole Ethernet frame: this message from `src` (at `src_mac`) to `dst` (at
    /// `dst_mac`), hop limit 255.
    pub fn frame(&self, src_mac: MacAddr, src: Ipv6Addr, dst_mac: MacAddr, dst: Ipv6Addr) -> Vec<u8> {
        let ip =
            emit::Ipv6Repr { hop_limit: HOP_LIMIT, ..emit::Ipv6Repr::new(src, dst, ip_proto::ICMPV6) }.emit(&self.emit(src, dst));
        emit::ethernet_unpadded(dst_mac, src_mac, &[], ethertype::IPV6, &ip)
    }
}

/// A solicitation for `target` from our `src` at `mac` (RFC 4861 7.2.2): to the target's
/// solicited-node group, or unicast to `probe` (a PROBE to the cached address, sent to the
/// target address itself), always with our link-layer address.
pub fn solicit_frame(mac: MacAddr, src: Ipv6Addr, target: Ipv6Addr, probe: Option<MacAddr>) -> Vec<u8> {
    let msg = NdiscRepr::Solicit { target, sllao: Some(mac) };
    match probe {
        Some(dst_mac) => msg.frame(mac, src, dst_mac, target),
        None => {
            let group = solicited_node(target);
            msg.frame(mac, src, multicast_mac(group), group)
        }
    }
}

/// A duplicate address detection probe for `target` (RFC 4862 5.4.2): from `::`, no option.
pub fn dad_frame(mac: MacAddr, target: Ipv6Addr) -> Vec<u8> {
    let group = solicited_node(target);
    NdiscRepr::Solicit { target, sllao: None }.frame(mac, Ipv6Addr::UNSPECIFIED, multicast_mac(group), group)
}

/// An advertisement of our `addr` at `mac`, with the target link-layer address option and
/// `flags` (RFC 4861 7.2.4, 7.2.6): to `dst` at `dst_mac`.
pub fn advert_frame(mac: MacAddr, addr: Ipv6Addr, flags: NaFlags, dst_mac: MacAddr, dst: Ipv6Addr) -> Vec<u8> {
    NdiscRepr::Advert { flags, target: addr, tlla: Some(mac) }.frame(mac, addr, dst_mac, dst)
}

/// An unsolicited advertisement of our `addr` to all nodes (RFC 4861 7.2.6): Override set,
/// Solicited clear, Router as given; hosts that cache another address for it take ours.
pub fn unsolicited_advert_frame(mac: MacAddr, addr: Ipv6Addr, router: bool) -> Vec<u8> {
    let flags = NaFlags { router, solicited: false, override_: true };
    advert_frame(mac, addr, flags, multicast_mac(ALL_NODES), ALL_NODES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{parse, Ipv6Packet, L3};

    const MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
    const HOST_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x99]);
    const HOST_MAC_2: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// The IPv6 source, destination, hop limit and ICMPv6 message of an NDP frame.
    fn split(frame: &[u8]) -> (Ipv6Addr, Ipv6Addr, u8, Vec<u8>) {
        let p = parse(frame).unwrap();
        assert_eq!(p.l3, L3::Ipv6);
        let ip = Ipv6Packet::new_checked(&frame[14..]).unwrap();
        (ip.src_addr(), ip.dst_addr(), ip.hop_limit(), ip.payload().to_vec())
    }

    fn reparse(frame: &[u8]) -> Result<NdiscRepr, NdiscError> {
        let (s, d, h, icmp) = split(frame);
        NdiscRepr::parse(s, d, h, &icmp)
    }

    #[test]
    fn addresses() {
        assert_eq!(solicited_node(v6("2001:db8::1:2345:6789")), v6("ff02::1:ff45:6789"));
        assert!(is_solicited_node(v6("ff02::1:ff00:1")));
        assert!(!is_solicited_node(v6("ff02::1")));
        assert!(!is_solicited_node(v6("ff02::2:ff00:1")));
        assert_eq!(multicast_mac(v6("ff02::1:ff45:6789")), MacAddr([0x33, 0x33, 0xff, 0x45, 0x67, 0x89]));
        assert_eq!(multicast_mac(ALL_NODES), MacAddr([0x33, 0x33, 0, 0, 0, 1]));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Frames a Linux 6.18 host sent on a veth (02:00:00:00:00:01, 2001:db8::1 pinging
    /// 02:00:00:00:00:02, 2001:db8::2), captured with an AF_PACKET socket.
    const LINUX_NS: &str = "3333ff00000202000000000186dd6000000000203aff20010db8000000000000000000000001ff0200000000000000000001ff00000287001c270000000020010db80000000000000000000000020101020000000001";
    const LINUX_NA: &str = "02000000000102000000000286dd6000000000203aff20010db800000000000000000000000220010db800000000000000000000000188008a716000000020010db80000000000000000000000020201020000000002";

    /// A multicast solicitation byte for byte what Linux sends for the same addresses.
    #[test]
    fn solicitation_bytes() {
        let f = solicit_frame(MAC, v6("2001:db8::1"), v6("2001:db8::2"), None);
        assert_eq!(f, hex(LINUX_NS));
        assert_eq!(reparse(&f), Ok(NdiscRepr::Solicit { target: v6("2001:db8::2"), sllao: Some(MAC) }));
        // A unicast probe goes to the target address and the cached MAC.
        let p = solicit_frame(MAC, v6("2001:db8::1"), v6("2001:db8::2"), Some(HOST_MAC));
        assert_eq!(&p[0..6], &HOST_MAC.0);
        let (_, d, h, _) = split(&p);
        assert_eq!((d, h), (v6("2001:db8::2"), 255));
        assert_eq!(reparse(&p), Ok(NdiscRepr::Solicit { target: v6("2001:db8::2"), sllao: Some(MAC) }));
    }

    /// The answer to it, Solicited and Override with the target's address, byte for byte as
    /// the Linux host sent it (a host: Router clear).
    #[test]
    fn advertisement_bytes() {
        let flags = NaFlags { router: false, solicited: true, override_: true };
        let f = advert_frame(HOST_MAC_2, v6("2001:db8::2"), flags, MAC, v6("2001:db8::1"));
        assert_eq!(f, hex(LINUX_NA));
        assert_eq!(reparse(&f), Ok(NdiscRepr::Advert { flags, target: v6("2001:db8::2"), tlla: Some(HOST_MAC_2) }));
    }

    #[test]
    fn advertisement_flags_and_dad() {
        for (r, s, o, byte) in
            [(true, true, true, 0xe0), (true, false, true, 0xa0), (false, true, false, 0x40), (false, false, false, 0)]
        {
            let flags = NaFlags { router: r, solicited: s, override_: o };
            let f = advert_frame(MAC, v6("2001:db8::1"), flags, HOST_MAC, v6("2001:db8::2"));
            assert_eq!(f[54], 136);
            assert_eq!(f[58], byte, "{flags:?}");
            assert_eq!(&f[78..86], &[2, 1, 2, 0, 0, 0, 0, 1], "target link-layer address option");
            assert_eq!(reparse(&f), Ok(NdiscRepr::Advert { flags, target: v6("2001:db8::1"), tlla: Some(MAC) }));
        }
        let u = unsolicited_advert_frame(MAC, v6("2001:db8::1"), true);
        assert_eq!(&u[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(split(&u).1, ALL_NODES);
        assert_eq!(u[58], 0xa0, "R and O, not S");
        let d = dad_frame(MAC, v6("2001:db8::7"));
        let (s, dst, _, icmp) = split(&d);
        assert_eq!((s, dst, icmp.len()), (Ipv6Addr::UNSPECIFIED, v6("ff02::1:ff00:7"), 24));
        assert_eq!(reparse(&d), Ok(NdiscRepr::Solicit { target: v6("2001:db8::7"), sllao: None }));
    }

    /// Every RFC 4861 7.1.1 / 7.1.2 rule on its own: a valid message broken in one way.
    #[test]
    fn each_rfc_4861_rule_discards() {
        let (src, ours) = (v6("2001:db8::2"), v6("2001:db8::1"));
        let group = solicited_node(ours);
        let ns = |sllao| NdiscRepr::Solicit { target: ours, sllao };
        let check = |src, dst, hops, msg: &[u8]| NdiscRepr::parse(src, dst, hops, msg);
        let good = ns(Some(HOST_MAC)).emit(src, group);
        assert!(check(src, group, 255, &good).is_ok());
        assert_eq!(check(src, group, 64, &good), Err(NdiscError::NdBadHopLimit));
        let mut bad = good.clone();
        bad[2] ^= 1;
        assert_eq!(check(src, group, 255, &bad), Err(NdiscError::Icmpv6BadChecksum));
        assert_eq!(check(src, v6("ff02::1:ff00:9"), 255, &good), Err(NdiscError::Icmpv6BadChecksum), "the pseudo-header counts");
        // Code 1, with the checksum fixed up.
        let recheck = |mut m: Vec<u8>, s, d| {
            m[2..4].fill(0);
            let c = checksum::pseudo_header_checksum(IpAddr::V6(s), IpAddr::V6(d), ip_proto::ICMPV6, &m);
            m[2..4].copy_from_slice(&c.to_be_bytes());
            m
        };
        let mut m = good.clone();
        m[1] = 1;
        assert_eq!(check(src, group, 255, &recheck(m, src, group)), Err(NdiscError::NdBadCode));
        assert_eq!(check(src, group, 255, &recheck(good[..20].to_vec(), src, group)), Err(NdiscError::NdTruncated));
        let mut m = good.clone();
        m[8] = 0xff; // target ff..
        assert_eq!(check(src, group, 255, &recheck(m, src, group)), Err(NdiscError::NdMulticastTarget));
        let mut m = good.clone();
        m[25] = 0; // option length 0
        assert_eq!(check(src, group, 255, &recheck(m, src, group)), Err(NdiscError::NdZeroLengthOption));
        let mut m = good.clone();
        m[25] = 2; // 16 bytes announced, 8 there
        assert_eq!(check(src, group, 255, &recheck(m, src, group)), Err(NdiscError::NdTruncated));
        let mut m = good.clone();
        m.extend_from_slice(&[0; 8]);
        m[25] = 2; // an Ethernet address in a 16-byte option
        assert_eq!(check(src, group, 255, &recheck(m, src, group)), Err(NdiscError::NdBadLinkLayerOption));
        // From ::, a source link-layer option, or a destination that is not solicited-node.
        let un = Ipv6Addr::UNSPECIFIED;
        assert_eq!(check(un, group, 255, &ns(Some(HOST_MAC)).emit(un, group)), Err(NdiscError::NdDadWithSourceOption));
        assert_eq!(check(un, ours, 255, &ns(None).emit(un, ours)), Err(NdiscError::NdDadBadDestination));
        assert_eq!(check(un, group, 255, &ns(None).emit(un, group)), Ok(ns(None)));
        // An advertisement to a multicast address must not be Solicited.
        let na = |s| NdiscRepr::Advert {
            flags: NaFlags { router: false, solicited: s, override_: true },
            target: src,
            tlla: Some(HOST_MAC),
        };
        assert_eq!(check(src, ALL_NODES, 255, &na(true).emit(src, ALL_NODES)), Err(NdiscError::NdSolicitedToMulticast));
        assert_eq!(check(src, ALL_NODES, 255, &na(false).emit(src, ALL_NODES)), Ok(na(false)));
        // Unknown options are skipped; the first link-layer option counts.
        let mut m = ns(Some(HOST_MAC)).emit(src, group);
        m.extend_from_slice(&[99, 1, 0, 0, 0, 0, 0, 0, 1, 1, 9, 9, 9, 9, 9, 9]);
        assert_eq!(check(src, group, 255, &recheck(m, src, group)), Ok(ns(Some(HOST_MAC))));
        assert_eq!(NdiscRepr::parse(src, group, 255, &[128, 0, 0, 0]), Err(NdiscError::NotNdisc));
        assert_eq!(NdiscRepr::parse(src, group, 255, &[]), Err(NdiscError::NdTruncated));
    }

    #[test]
    fn no_input_panics() {
        let base = solicit_frame(MAC, v6("2001:db8::1"), v6("2001:db8::2"), None);
        let (s, d, _, icmp) = split(&base);
        for len in 0..=icmp.len() {
            for i in 0..len {
                for v in [0u8, 1, 2, 0xff, 135, 136] {
                    let mut m = icmp[..len].to_vec();
                    m[i] = v;
                    let _ = NdiscRepr::parse(s, d, 255, &m);
                }
            }
        }
    }
}
