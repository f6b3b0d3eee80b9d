//! Packets addressed to the forwarder itself, or about its neighbours: which ones the
//! workers hand to the slow path ([`classify`]), and what the slow path makes of each
//! ([`answer`]): a reply, something to learn about a neighbour, or a silent discard with
//! its reason ([`Discard`]), as the RFCs say.
//!
//! In l3fwd mode a port may carry the forwarder's own IPv4 and IPv6 addresses
//! (`[[port]] ipv4`, `ipv6`). The workers punt, from such a port: every ARP message (the
//! port has an IPv4 address), every neighbour solicitation and advertisement (it has an
//! IPv6 address), and ICMP / ICMPv6 echo requests to its addresses. The slow path then
//! validates each completely (RFC 826, RFC 4861 7.1.1 and 7.1.2, RFC 1122 3.2.1.2,
//! RFC 4443 2.3) before answering or learning; each request ends in exactly one outcome.
//! Everything here is a pure function over bytes.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::neigh::ArpInput;
use crate::net::arp::{self, ArpError, ArpRepr};
use crate::net::ethernet::ethertype;
use crate::net::l4::{icmp_type, icmpv6_type};
use crate::net::ndisc::{self, NaFlags, NdiscError, NdiscRepr};
use crate::net::{checksum, emit, ip_proto, ipv6};
use crate::net::{parse, EthernetFrame, IcmpHeader, Ipv4Packet, Ipv6Packet, MacAddr, Parsed, Proto, L3};

/// The forwarder's own addresses on one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Local {
    /// The port's MAC.
    pub mac: MacAddr,
    /// Its IPv4 address, if any.
    pub ipv4: Option<Ipv4Addr>,
    /// Its IPv6 address, if any.
    pub ipv6: Option<Ipv6Addr>,
}

/// What a worker hands to the slow path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// An ARP message (the port has an IPv4 address).
    Arp,
    /// ICMP echo request to our IPv4 address.
    Echo,
    /// ICMPv6 echo request to our IPv6 address.
    Echo6,
    /// A neighbour solicitation or advertisement (the port has an IPv6 address).
    Ndisc,
}

/// Whether `frame` (already parsed as `p`, by [`parse`] or, for the first segment of a
/// chain, [`crate::net::parse_packet`]) is for the slow path of a port with `local`'s
/// addresses. Cheap: only the headers `p` located are looked at; the slow path validates.
pub fn classify(frame: &[u8], p: &Parsed, local: &Local) -> Option<Request> {
    let l3 = usize::from(p.l3_offset);
    let l4 = usize::from(p.l4_offset);
    match p.l3 {
        L3::Arp => local.ipv4.map(|_| Request::Arp),
        L3::Ipv4 if p.proto == Proto::Icmp && !p.fragment => {
            // `p` checked the lengths (against the whole packet): read the header only.
            let ip = Ipv4Packet::new_checked_within(frame.get(l3..)?, usize::MAX).ok()?;
            (Some(ip.dst_addr()) == local.ipv4 && frame.get(l4) == Some(&icmp_type::ECHO_REQUEST)).then_some(Request::Echo)
        }
        L3::Ipv6 if p.proto == Proto::Icmp && !p.fragment => {
            let ours = local.ipv6?;
            match *frame.get(l4)? {
                icmpv6_type::NEIGHBOR_SOLICIT | icmpv6_type::NEIGHBOR_ADVERT => Some(Request::Ndisc),
                icmpv6_type::ECHO_REQUEST => {
                    let ip = Ipv6Packet::new_checked_within(frame.get(l3..)?, usize::MAX).ok()?;
                    (ip.dst_addr() == ours).then_some(Request::Echo6)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether an IP packet (parsed as `p`, as for [`classify`]) is addressed to one of
/// `local`'s addresses.
pub fn is_for(frame: &[u8], p: &Parsed, local: &Local) -> bool {
    let l3 = usize::from(p.l3_offset);
    match p.l3 {
        L3::Ipv4 => {
            local.ipv4.is_some()
                && Ipv4Packet::new_checked_within(&frame[l3..], usize::MAX).is_ok_and(|ip| Some(ip.dst_addr()) == local.ipv4)
        }
        L3::Ipv6 => {
            local.ipv6.is_some()
                && Ipv6Packet::new_checked_within(&frame[l3..], usize::MAX).is_ok_and(|ip| Some(ip.dst_addr()) == local.ipv6)
        }
        _ => false,
    }
}

/// What a request teaches about a neighbour, for the neighbour table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learn {
    /// An ARP message ([`crate::neigh::NeighTable::arp_input`]).
    Arp(ArpInput),
    /// A neighbour solicitation from `src` ([`crate::neigh::NeighTable::ns_input`]).
    Solicit {
        /// Its source address (never `::`).
        src: Ipv6Addr,
        /// Its source link-layer address option.
        sllao: Option<MacAddr>,
    },
    /// A neighbour advertisement ([`crate::neigh::NeighTable::na_input`]).
    Advert {
        /// The address advertised.
        target: Ipv6Addr,
        /// Its target link-layer address option.
        tlla: Option<MacAddr>,
        /// R, S, O.
        flags: NaFlags,
    },
}

/// What the slow path makes of a valid request: a reply to send back out of the port it
/// came in on, and what it teaches about a neighbour. Neither: nothing to do (an ARP
/// request or a solicitation for someone else's address), counted as `ignored`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answer {
    /// The whole reply frame.
    pub reply: Option<Vec<u8>>,
    /// Something to learn.
    pub learn: Option<Learn>,
}

/// Why the slow path silently discards a request. Each is a counter name (the slow path's
/// `discards`); the RFC rule is on each variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::EnumCount, strum::VariantArray, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Discard {
    /// Not the request the worker classified, or headers that do not hold together.
    Malformed,
    /// Addressed at layer 2 to another host's unicast MAC (Linux: `PACKET_OTHERHOST`).
    OtherHost,
    /// ARP body shorter than 28 bytes.
    ArpTruncated,
    /// ARP hardware type not Ethernet (RFC 826; the forwarder speaks only Ethernet/IPv4).
    ArpBadHardwareType,
    /// ARP protocol type not IPv4.
    ArpBadProtocolType,
    /// ARP address lengths not 6 and 4.
    ArpBadAddressLength,
    /// ARP operation neither request nor reply.
    ArpBadOperation,
    /// ARP addresses no neighbour can have (multicast, broadcast or loopback IP, multicast MAC).
    ArpBadAddress,
    /// IPv4 header checksum wrong on an echo request to us (RFC 1122 3.2.1.2: a host MUST
    /// verify it and silently discard).
    Ipv4BadChecksum,
    /// ICMP checksum wrong (RFC 792; Linux `icmp_rcv`).
    IcmpBadChecksum,
    /// ICMPv6 checksum wrong (RFC 4443 2.3; RFC 4861 7.1.1, 7.1.2).
    Icmpv6BadChecksum,
    /// Neighbour discovery with a hop limit other than 255 (RFC 4861 7.1.1, 7.1.2).
    NdBadHopLimit,
    /// Neighbour discovery with ICMP code other than 0.
    NdBadCode,
    /// Neighbour discovery message shorter than 24 bytes, or an option past its end.
    NdTruncated,
    /// Neighbour discovery target address multicast.
    NdMulticastTarget,
    /// A neighbour discovery option of length 0.
    NdZeroLengthOption,
    /// A link-layer address option not 8 bytes long (Linux `ndisc_opt_addr_data`).
    NdBadLinkLayerOption,
    /// A solicitation from `::` not to a solicited-node address.
    NdDadBadDestination,
    /// A solicitation from `::` with a source link-layer address option.
    NdDadWithSourceOption,
    /// A Solicited advertisement to a multicast address.
    NdSolicitedToMulticast,
    /// Someone else claims one of our addresses (an ARP message from it with another MAC, an
    /// advertisement for it): a duplicate address, never learned.
    DuplicateAddress,
}

impl Discard {
    /// Number of reasons.
    pub const COUNT: usize = <Self as strum::EnumCount>::COUNT;
    /// Every reason, in index order.
    pub const ALL: &'static [Discard] = <Self as strum::VariantArray>::VARIANTS;

    /// Position in [`ALL`](Self::ALL).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The counter name.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

impl From<ArpError> for Discard {
    fn from(e: ArpError) -> Self {
        match e {
            ArpError::ArpTruncated => Discard::ArpTruncated,
            ArpError::ArpBadHardwareType => Discard::ArpBadHardwareType,
            ArpError::ArpBadProtocolType => Discard::ArpBadProtocolType,
            ArpError::ArpBadAddressLength => Discard::ArpBadAddressLength,
            ArpError::ArpBadOperation => Discard::ArpBadOperation,
            ArpError::ArpBadAddress => Discard::ArpBadAddress,
        }
    }
}

impl From<NdiscError> for Discard {
    fn from(e: NdiscError) -> Self {
        match e {
            NdiscError::NotNdisc => Discard::Malformed,
            NdiscError::NdBadHopLimit => Discard::NdBadHopLimit,
            NdiscError::Icmpv6BadChecksum => Discard::Icmpv6BadChecksum,
            NdiscError::NdBadCode => Discard::NdBadCode,
            NdiscError::NdTruncated => Discard::NdTruncated,
            NdiscError::NdMulticastTarget => Discard::NdMulticastTarget,
            NdiscError::NdZeroLengthOption => Discard::NdZeroLengthOption,
            NdiscError::NdBadLinkLayerOption => Discard::NdBadLinkLayerOption,
            NdiscError::NdDadBadDestination => Discard::NdDadBadDestination,
            NdiscError::NdDadWithSourceOption => Discard::NdDadWithSourceOption,
            NdiscError::NdSolicitedToMulticast => Discard::NdSolicitedToMulticast,
        }
    }
}

/// Validates a request [`classify`] accepted and works out the reply (addressed back to
/// the sender from `local.mac`, with the request's VLAN tags) and what it teaches:
///
/// - ARP: a request for our address is answered (an RFC 5227 probe from 0.0.0.0 too);
///   every valid ARP message teaches its sender ([`Learn::Arp`]).
/// - Neighbour solicitation for our address: answered with an advertisement carrying our
///   link-layer address, Router and Override set; Solicited set and unicast to the sender,
///   or, for duplicate address detection (from `::`), Solicited clear and to all nodes
///   (RFC 4861 7.2.4). A solicitation with a source link-layer option teaches its sender.
/// - Neighbour advertisement: teaches its target ([`Learn::Advert`]).
/// - Echo requests: answered after the IPv4 header and ICMP / ICMPv6 checksums are
///   verified.
///
/// # Errors
/// The [`Discard`] reason when the request must be silently discarded.
pub fn answer(frame: &[u8], local: &Local) -> Result<Answer, Discard> {
    let p = parse(frame).map_err(|_| Discard::Malformed)?;
    let req = classify(frame, &p, local).ok_or(Discard::Malformed)?;
    let eth = EthernetFrame::new_checked(frame).map_err(|_| Discard::Malformed)?;
    let (peer, to) = (eth.src(), eth.dst());
    if !to.is_multicast() && to != local.mac {
        return Err(Discard::OtherHost);
    }
    let l3 = usize::from(p.l3_offset);
    let l4 = usize::from(p.l4_offset);
    let reply = |dst: MacAddr, ty: u16, l3_bytes: &[u8]| Some(with_l2(frame, &p, dst, local.mac, ty, l3_bytes));
    match req {
        Request::Arp => {
            let a = ArpRepr::check(&frame[l3..])?;
            let ours = local.ipv4.ok_or(Discard::Malformed)?;
            if a.spa == ours {
                return if a.sha == local.mac { Ok(Answer::default()) } else { Err(Discard::DuplicateAddress) };
            }
            let for_us = a.tpa == ours;
            let learn = Learn::Arp(ArpInput {
                request: a.oper == arp::oper::REQUEST,
                sha: a.sha,
                spa: a.spa,
                tpa: a.tpa,
                for_us,
                unicast: to == local.mac,
            });
            let answer = (for_us && a.oper == arp::oper::REQUEST).then(|| a.reply(local.mac));
            Ok(Answer { reply: answer.and_then(|r| reply(a.sha, ethertype::ARP, &emit::arp(&r))), learn: Some(learn) })
        }
        Request::Ndisc => {
            let ip = Ipv6Packet::new_checked(&frame[l3..]).map_err(|_| Discard::Malformed)?;
            let end = l3 + ipv6::HEADER_LEN + usize::from(ip.payload_len());
            let icmp = frame.get(l4..end).ok_or(Discard::Malformed)?;
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            let ours = local.ipv6.ok_or(Discard::Malformed)?;
            match NdiscRepr::parse(src, dst, ip.hop_limit(), icmp)? {
                NdiscRepr::Solicit { target, sllao } => {
                    if target != ours {
                        return Ok(Answer::default());
                    }
                    let dad = src.is_unspecified();
                    let flags = NaFlags { router: true, solicited: !dad, override_: true };
                    let (dst_mac, dst_ip) =
                        if dad { (ndisc::multicast_mac(ndisc::ALL_NODES), ndisc::ALL_NODES) } else { (peer, src) };
                    let na = NdiscRepr::Advert { flags, target: ours, tlla: Some(local.mac) };
                    let ip =
                        emit::Ipv6Repr { hop_limit: ndisc::HOP_LIMIT, ..emit::Ipv6Repr::new(ours, dst_ip, ip_proto::ICMPV6) }
                            .emit(&na.emit(ours, dst_ip));
                    let learn = (!dad && sllao.is_some()).then_some(Learn::Solicit { src, sllao });
                    Ok(Answer { reply: reply(dst_mac, ethertype::IPV6, &ip), learn })
                }
                NdiscRepr::Advert { flags, target, tlla } => {
                    if target == ours {
                        return if tlla.is_none_or(|m| m == local.mac) {
                            Ok(Answer::default())
                        } else {
                            Err(Discard::DuplicateAddress)
                        };
                    }
                    Ok(Answer { reply: None, learn: Some(Learn::Advert { target, tlla, flags }) })
                }
            }
        }
        Request::Echo => {
            let ip = Ipv4Packet::new_checked(&frame[l3..]).map_err(|_| Discard::Malformed)?;
            if !ip.verify_checksum() {
                return Err(Discard::Ipv4BadChecksum);
            }
            if checksum::sum(ip.payload()) != 0xffff {
                return Err(Discard::IcmpBadChecksum);
            }
            let hlen = ip.header_len();
            let mut d = frame[l3..l3 + usize::from(ip.total_len())].to_vec();
            let hdr = &mut d[..hlen];
            let (src, dst) = (copy4(&hdr[12..]), copy4(&hdr[16..]));
            hdr[12..16].copy_from_slice(&dst);
            hdr[16..20].copy_from_slice(&src);
            hdr[8] = 64;
            hdr[10..12].fill(0);
            let c = checksum::checksum(hdr);
            hdr[10..12].copy_from_slice(&c.to_be_bytes());
            set_icmp_type(&mut d[hlen..], icmp_type::ECHO_REPLY);
            Ok(Answer { reply: reply(peer, ethertype::IPV4, &d), learn: None })
        }
        Request::Echo6 => {
            let ip = Ipv6Packet::new_checked(&frame[l3..]).map_err(|_| Discard::Malformed)?;
            let end = l3 + ipv6::HEADER_LEN + usize::from(ip.payload_len());
            let icmp = frame.get(l4..end).ok_or(Discard::Malformed)?;
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            if checksum::pseudo_header_checksum(src.into(), dst.into(), ip_proto::ICMPV6, icmp) != 0 {
                return Err(Discard::Icmpv6BadChecksum);
            }
            // The reply keeps the request's extension headers, with the addresses swapped
            // (the pseudo-header sum is unchanged by the swap).
            let mut d = frame[l3..end].to_vec();
            d[8..24].copy_from_slice(&dst.octets());
            d[24..40].copy_from_slice(&src.octets());
            d[7] = 64;
            set_icmp_type(&mut d[l4 - l3..], icmpv6_type::ECHO_REPLY);
            Ok(Answer { reply: reply(peer, ethertype::IPV6, &d), learn: None })
        }
    }
}

/// A frame to `dst` from `src` with the request's VLAN tags, `ty` and `l3`, padded to the
/// Ethernet minimum.
fn with_l2(request: &[u8], p: &Parsed, dst: MacAddr, src: MacAddr, ty: u16, l3: &[u8]) -> Vec<u8> {
    let tags: Vec<(u16, u16)> = request[12..usize::from(p.l2_len) - 2]
        .chunks_exact(4)
        .map(|t| (u16::from_be_bytes([t[0], t[1]]), u16::from_be_bytes([t[2], t[3]])))
        .collect();
    emit::ethernet(dst, src, &tags, ty, l3)
}

/// Changes an ICMP/ICMPv6 type from a request to its reply (the checksum is updated
/// incrementally).
fn set_icmp_type(icmp: &mut [u8], ty: u8) {
    if let Ok(mut h) = IcmpHeader::new_checked(icmp) {
        h.set_msg_type(ty);
    }
}

fn copy4(b: &[u8]) -> [u8; 4] {
    [b[0], b[1], b[2], b[3]]
}

#[cfg(test)]
mod tests;
