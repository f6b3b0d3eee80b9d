//! Per-packet forwarding decisions: pure functions from a frame's bytes (and tables) to
//! an [`Action`], rewriting headers in place where the mode asks for it.
//!
//! No DPDK here: the worker calls these on `mbuf.data_mut()`, and the tests call them on
//! byte arrays. Every malformed frame becomes [`Action::Drop`] with a [`DropReason`];
//! nothing panics on any input.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::local::Local;
use crate::net::{checksum, ip_proto, parse_packet, MacAddr, ParseError, Parsed, Proto, L3};
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
    // The Ethernet header's 14 bytes, as EthernetFrame::new_checked asks; the two MACs are
    // its first 12 bytes, swapped as two words: [d0..d5 s0 s1] [s2..s5] becomes
    // [s0..s5 d0 d1] [d2..d5].
    let eth: &mut [u8; 14] = frame.first_chunk_mut().ok_or(DropReason::Truncated)?;
    let (head, tail) = eth.split_at_mut(8);
    let (head, tail): (&mut [u8; 8], &mut [u8; 4]) =
        (head.try_into().map_err(|_| DropReason::Truncated)?, tail.first_chunk_mut().ok_or(DropReason::Truncated)?);
    let a = u64::from_le_bytes(*head);
    let b = u64::from(u32::from_le_bytes(*tail));
    *head = ((a >> 48) | (b << 16) | (a << 48)).to_le_bytes();
    *tail = ((a >> 16) as u32).to_le_bytes();
    Ok(())
}

/// `l2fwd`: source MAC = the out port's, destination MAC = its configured peer.
#[inline]
pub fn l2fwd(frame: &mut [u8], src: MacAddr, dst: MacAddr) -> Result<(), DropReason> {
    let eth: &mut [u8; 14] = frame.first_chunk_mut().ok_or(DropReason::Truncated)?;
    eth[..6].copy_from_slice(&dst.0);
    eth[6..12].copy_from_slice(&src.0);
    Ok(())
}

/// Longest-prefix-match lookups, to next-hop indexes: one at a time, or a burst's worth at
/// once (the forwarder's path; DPDK's `rte_lpm_lookup_bulk`).
pub trait Routes {
    /// The next hop for an IPv4 destination.
    fn lookup_v4(&self, dst: Ipv4Addr) -> Option<u32>;
    /// The next hop for an IPv6 destination.
    fn lookup_v6(&self, dst: Ipv6Addr) -> Option<u32>;
    /// [`Routes::lookup_v4`] of each of `dsts` (host order, `u32::from(Ipv4Addr)`) into
    /// the same position of `out`, which is as long.
    fn lookup_v4_bulk(&self, dsts: &[u32], out: &mut [Option<u32>]) {
        for (d, o) in dsts.iter().zip(out) {
            *o = self.lookup_v4(Ipv4Addr::from(*d));
        }
    }
    /// [`Routes::lookup_v6`] of each of `dsts` (network order) into the same position of
    /// `out`, which is as long.
    fn lookup_v6_bulk(&self, dsts: &[[u8; 16]], out: &mut [Option<u32>]) {
        for (d, o) in dsts.iter().zip(out) {
            *o = self.lookup_v6(Ipv6Addr::from(*d));
        }
    }
}

/// Next hops by the id a route lookup returned.
pub trait NextHops {
    /// The next hop with id `id`, if it exists and is usable.
    fn next_hop(&self, id: u32) -> Option<NextHop>;

    /// What a packet routed to `id` leads to: for an ECMP group, what the member its flow
    /// hash picks leads to (`flow` is called only then). A usable next hop, one whose
    /// neighbour must be resolved first (naming the id, the member's for a group), or
    /// nothing. By default [`NextHops::next_hop`], without groups or resolution. (The hop
    /// fits in two registers: per packet, it is returned there.)
    #[inline]
    fn lookup(&self, id: u32, flow: impl FnOnce() -> u32) -> Hop {
        let _ = flow;
        self.next_hop(id).map_or(Hop::Missing, Hop::Ready)
    }

    /// The usable next hop a packet routed to `id` takes ([`NextHops::lookup`]), if any.
    #[inline]
    fn next_hop_for(&self, id: u32, flow: impl FnOnce() -> u32) -> Option<NextHop> {
        match self.lookup(id, flow) {
            Hop::Ready(nh) => Some(nh),
            Hop::Resolve { .. } | Hop::Missing => None,
        }
    }
}

/// What a next-hop id leads to, for the per-packet path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// Send out of the port to this MAC.
    Ready(NextHop),
    /// Its MAC is not known (yet, or any more): hand the packet to the slow path, which
    /// resolves the neighbour of next hop `next_hop` out of `port`.
    Resolve {
        /// The out port.
        port: PortIdx,
        /// The next hop's id (for an ECMP group, the member's).
        next_hop: u32,
    },
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

/// What the NIC reported of a received IPv4 header checksum (`ol_flags`,
/// `RTE_MBUF_F_RX_IP_CKSUM_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxChecksum {
    /// Not checked by the NIC: l3fwd verifies it in software (RFC 1812 section 5.2.2).
    Unknown,
    /// The NIC verified it.
    Good,
    /// The NIC found it wrong.
    Bad,
}

/// The address l3fwd looks a packet up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// An IPv4 destination.
    V4(Ipv4Addr),
    /// An IPv6 destination.
    V6(Ipv6Addr),
}

/// `l3fwd`: route by destination address. IPv4: header checksum verified, TTL
/// decremented with an incremental checksum update (RFC 1624). IPv6: hop limit
/// decremented. Both: MACs rewritten for the next hop, or, when its neighbour's MAC is not
/// known, [`Action::Resolve`] (the MACs are the slow path's to write). Anything else is
/// dropped with its reason; the frame is only modified when the packet is forwarded. With the input
/// port's own addresses in `local`, requests to them are punted ([`Action::Punt`]) and
/// other packets to them dropped (`local_unhandled`) instead of being routed.
///
/// The forwarder runs the same steps on each packet of a burst ([`l3fwd_parsed`] after one
/// parse whose result it keeps), then sends the burst grouped by out port.
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
    match parse_packet(frame, pkt_len) {
        Ok(p) => l3fwd_parsed(frame, &p, routes, next_hops, local, RxChecksum::Unknown),
        Err(e) => Action::Drop(e.into()),
    }
}

/// [`l3fwd`] of a frame (or a chain's first segment) already parsed as `p`, whose IPv4
/// checksum the NIC may have checked (`csum`): [`l3fwd_check`], the route lookup,
/// [`l3fwd_hop`].
#[inline(always)]
pub fn l3fwd_parsed<R: Routes, N: NextHops + ?Sized>(
    frame: &mut [u8],
    p: &Parsed,
    routes: &R,
    next_hops: &N,
    local: Option<&Local>,
    csum: RxChecksum,
) -> Action {
    let id = match l3fwd_check(frame, p, local, csum) {
        Ok(Lookup::V4(a)) => routes.lookup_v4(a),
        Ok(Lookup::V6(a)) => routes.lookup_v6(a),
        Err(action) => return action,
    };
    match id {
        Some(id) => {
            // An ECMP group picks its member by the packet's flow hash, computed only then.
            let hop = next_hops.lookup(id, || crate::ecmp::flow_hash(frame, p));
            l3fwd_hop(frame, p, hop)
        }
        None => Action::Drop(DropReason::NoRoute),
    }
}

/// l3fwd's last step for a frame that [`l3fwd_check`] passed and whose route leads to
/// `hop`: forwarded ([`l3fwd_rewrite`]), handed to the slow path to
/// resolve the neighbour (TTL or hop limit decremented, MACs left to it), or dropped.
#[inline(always)]
pub fn l3fwd_hop(frame: &mut [u8], p: &Parsed, hop: Hop) -> Action {
    match hop {
        Hop::Ready(nh) => {
            l3fwd_rewrite(frame, p, &nh);
            Action::Tx(nh.port)
        }
        Hop::Resolve { port, next_hop } => {
            decrement_ttl(frame, p);
            Action::Resolve { port, next_hop }
        }
        Hop::Missing => Action::Drop(DropReason::NoRoute),
    }
}

/// What [`l3fwd_common`] found of a frame it handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Common {
    /// What to do with the packet (as [`l3fwd`] says).
    pub action: Action,
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// The IP protocol number (the upper layer).
    pub ip_proto: u8,
    /// Its class.
    pub proto: Proto,
}

impl Common {
    /// What [`parse`](crate::net::parse) says of the frame: the common case's fixed offsets.
    #[inline]
    pub fn parsed(&self) -> Parsed {
        common_parsed(self.v6, self.ip_proto, self.proto)
    }
}

/// What [`parse`](crate::net::parse) says of a frame [`l3fwd_common`] takes.
#[inline]
fn common_parsed(v6: bool, ip_proto: u8, proto: Proto) -> Parsed {
    let (l3, l3_len) = if v6 { (L3::Ipv6, 40) } else { (L3::Ipv4, 20) };
    Parsed { l2_len: 14, l3, l3_offset: 14, l3_len, l4_offset: 14 + l3_len, proto, ip_proto, fragment: false }
}

/// [`l3fwd`] for the common case only, from fixed offsets and without the views: an
/// untagged IPv4 datagram with a 20-byte header that is not a fragment (any protocol; TCP,
/// UDP or ICMP with a valid header), or an untagged IPv6 datagram whose next header is TCP,
/// UDP or ICMPv6 with a valid header, on a port without own addresses. Returns `None` for
/// any other frame, which [`l3fwd`] then handles; for the frames it takes, the action, the
/// frame's bytes afterwards and the parse are exactly [`l3fwd`]'s and [`parse`](crate::net::parse)'s (unit
/// tests on every test frame and its variants; the `forward` fuzz target).
#[inline(always)]
pub fn l3fwd_common<R: Routes, N: NextHops + ?Sized>(
    frame: &mut [u8],
    routes: &R,
    next_hops: &N,
    csum: RxChecksum,
) -> Option<Common> {
    let len = frame.len();
    let eth: &[u8; 14] = frame.first_chunk()?;
    let ether = [eth[12], eth[13]];
    if ether == [0x08, 0x00] {
        let h: &[u8; 34] = frame.first_chunk()?;
        let total = usize::from(u16::from_be_bytes([h[16], h[17]]));
        // Version 4 and IHL 5; neither MF nor an offset; the datagram within the frame.
        if h[14] != 0x45 || h[20] & 0x3f != 0 || h[21] != 0 || total < 20 || 14 + total > len {
            return None;
        }
        let ip_proto = h[23];
        let proto = Proto::from_ip(ip_proto, false);
        if !l4_valid(proto, &frame[34..14 + total]) {
            return None;
        }
        let h: &[u8; 34] = frame.first_chunk()?;
        let valid = match csum {
            RxChecksum::Good => true,
            RxChecksum::Bad => false,
            RxChecksum::Unknown => {
                let ip: &[u8; 20] = h[14..].first_chunk()?;
                checksum::ipv4_header_sum(ip) == 0xffff
            }
        };
        let src = u32::from_be_bytes([h[26], h[27], h[28], h[29]]);
        let dst = u32::from_be_bytes([h[30], h[31], h[32], h[33]]);
        let action = if !valid {
            Action::Drop(DropReason::BadIpv4Checksum)
        } else if let Some(r) = martian_v4_bits(src, dst) {
            Action::Drop(r)
        } else if h[22] <= 1 {
            Action::Drop(DropReason::TtlExpired)
        } else {
            match routes.lookup_v4(Ipv4Addr::from(dst)) {
                None => Action::Drop(DropReason::NoRoute),
                Some(id) => {
                    let flow = || crate::ecmp::flow_hash(frame, &common_parsed(false, ip_proto, proto));
                    let hop = next_hops.lookup(id, flow);
                    let h: &mut [u8; 34] = frame.first_chunk_mut()?;
                    if !matches!(hop, Hop::Missing) {
                        h[22] -= 1;
                        [h[24], h[25]] = checksum::update_ttl_decrement(u16::from_be_bytes([h[24], h[25]])).to_be_bytes();
                    }
                    common_hop(h, hop)
                }
            }
        };
        return Some(Common { action, v6: false, ip_proto, proto });
    }
    if ether == [0x86, 0xdd] {
        let h: &[u8; 54] = frame.first_chunk()?;
        let end = 54 + usize::from(u16::from_be_bytes([h[18], h[19]]));
        let ip_proto = h[20];
        if h[14] >> 4 != 6 || end > len || !matches!(ip_proto, ip_proto::TCP | ip_proto::UDP | ip_proto::ICMPV6) {
            return None;
        }
        let proto = Proto::from_ip(ip_proto, true);
        if !l4_valid(proto, &frame[54..end]) {
            return None;
        }
        let h: &[u8; 54] = frame.first_chunk()?;
        let (src, dst): (&[u8; 16], &[u8; 16]) = (h[22..].first_chunk()?, h[38..].first_chunk()?);
        let martian = martian_v6_bytes(src, dst);
        let dst = Ipv6Addr::from(*dst);
        let action = if let Some(r) = martian {
            Action::Drop(r)
        } else if h[21] <= 1 {
            Action::Drop(DropReason::TtlExpired)
        } else {
            match routes.lookup_v6(dst) {
                None => Action::Drop(DropReason::NoRoute),
                Some(id) => {
                    let flow = || crate::ecmp::flow_hash(frame, &common_parsed(true, ip_proto, proto));
                    let hop = next_hops.lookup(id, flow);
                    let h: &mut [u8; 54] = frame.first_chunk_mut()?;
                    if !matches!(hop, Hop::Missing) {
                        h[21] -= 1;
                    }
                    common_hop(h, hop)
                }
            }
        };
        return Some(Common { action, v6: true, ip_proto, proto });
    }
    None
}

/// [`l3fwd_hop`] for [`l3fwd_common`], whose caller decremented the TTL or hop limit
/// unless the hop is missing.
#[inline(always)]
fn common_hop<const N: usize>(h: &mut [u8; N], hop: Hop) -> Action {
    match hop {
        Hop::Ready(nh) => {
            h[..6].copy_from_slice(&nh.dst.0);
            h[6..12].copy_from_slice(&nh.src.0);
            Action::Tx(nh.port)
        }
        Hop::Resolve { port, next_hop } => Action::Resolve { port, next_hop },
        Hop::Missing => Action::Drop(DropReason::NoRoute),
    }
}

/// [`parse`](crate::net::parse)'s check of the L4 header at the start of `l4` (which ends with the datagram):
/// TCP's data offset, UDP's length, ICMP's 8 bytes.
#[inline(always)]
fn l4_valid(proto: Proto, l4: &[u8]) -> bool {
    match proto {
        Proto::Tcp => l4.len() >= 20 && usize::from(l4[12] >> 4) * 4 >= 20 && usize::from(l4[12] >> 4) * 4 <= l4.len(),
        Proto::Udp => l4.len() >= 8 && (8..=l4.len()).contains(&usize::from(u16::from_be_bytes([l4[4], l4[5]]))),
        Proto::Icmp => l4.len() >= 8,
        Proto::Other => true,
    }
}

/// l3fwd's checks of a frame that [`parse`](crate::net::parse) accepted as `p`, before the route lookup:
/// requests to the port's own addresses (`local`), the IPv4 header checksum (in software
/// unless the NIC reported it, `csum`) and the TTL or hop limit (RFC 1812 sections 5.2.2,
/// 5.3.1). Returns the address to look up, or what to do instead (drop, punt). Reads only.
#[inline]
pub fn l3fwd_check(frame: &[u8], p: &Parsed, local: Option<&Local>, csum: RxChecksum) -> Result<Lookup, Action> {
    if let Some(l) = local {
        if crate::local::classify(frame, p, l).is_some() {
            return Err(Action::Punt);
        }
        if crate::local::is_for(frame, p, l) {
            return Err(Action::Drop(DropReason::LocalUnhandled));
        }
    }
    let l3 = usize::from(p.l3_offset);
    // parse() checked the headers, so the fixed-size views below exist; a frame that was
    // not parsed as `p` is dropped as truncated rather than read out of bounds.
    let truncated = Action::Drop(DropReason::Truncated);
    match p.l3 {
        L3::Ipv4 => {
            let h: &[u8; 20] = frame[l3..].first_chunk().ok_or(truncated)?;
            let valid = match csum {
                RxChecksum::Good => true,
                RxChecksum::Bad => false,
                RxChecksum::Unknown if p.l3_len == 20 => checksum::ipv4_header_sum(h) == 0xffff,
                RxChecksum::Unknown => {
                    let header = frame.get(l3..l3 + usize::from(p.l3_len)).ok_or(truncated)?;
                    checksum::sum(header) == 0xffff
                }
            };
            if !valid {
                return Err(Action::Drop(DropReason::BadIpv4Checksum));
            }
            let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
            if let Some(r) = martian_v4(Ipv4Addr::new(h[12], h[13], h[14], h[15]), dst) {
                return Err(Action::Drop(r));
            }
            if h[8] <= 1 {
                return Err(Action::Drop(DropReason::TtlExpired));
            }
            Ok(Lookup::V4(dst))
        }
        L3::Ipv6 => {
            let h: &[u8; 40] = frame[l3..].first_chunk().ok_or(truncated)?;
            let (src, dst): (&[u8; 16], &[u8; 16]) =
                (h[8..].first_chunk().ok_or(truncated)?, h[24..].first_chunk().ok_or(truncated)?);
            if let Some(r) = martian_v6_bytes(src, dst) {
                return Err(Action::Drop(r));
            }
            let dst = Ipv6Addr::from(*dst);
            if h[7] <= 1 {
                return Err(Action::Drop(DropReason::TtlExpired));
            }
            Ok(Lookup::V6(dst))
        }
        L3::Arp | L3::Other(_) => Err(Action::Drop(DropReason::NotIp)),
    }
}

/// l3fwd's rewrite of a frame that [`l3fwd_check`] passed, for next hop `nh`: TTL - 1 with
/// the checksum updated (RFC 1624 eqn. 3) or hop limit - 1, then the MACs.
#[inline]
pub fn l3fwd_rewrite(frame: &mut [u8], p: &Parsed, nh: &NextHop) {
    decrement_ttl(frame, p);
    if let Some(eth) = frame.first_chunk_mut::<12>() {
        eth[..6].copy_from_slice(&nh.dst.0);
        eth[6..].copy_from_slice(&nh.src.0);
    }
}

/// TTL - 1 with the checksum updated (RFC 1624 eqn. 3), or hop limit - 1, of a frame that
/// [`l3fwd_check`] passed (so the field is 2 or more).
#[inline]
fn decrement_ttl(frame: &mut [u8], p: &Parsed) {
    let l3 = usize::from(p.l3_offset);
    match p.l3 {
        L3::Ipv4 => {
            if let Some(h) = frame[l3..].first_chunk_mut::<20>() {
                h[8] = h[8].wrapping_sub(1);
                let hc = checksum::update_ttl_decrement(u16::from_be_bytes([h[10], h[11]]));
                [h[10], h[11]] = hc.to_be_bytes();
            }
        }
        L3::Ipv6 => {
            if let Some(h) = frame[l3..].first_chunk_mut::<40>() {
                h[7] = h[7].wrapping_sub(1);
            }
        }
        L3::Arp | L3::Other(_) => {}
    }
}

/// Whether an IPv4 packet from `src` to `dst` must not be forwarded, and why
/// (RFC 1812 5.3.7; Linux `ip_route_input_slow`'s martian checks; RFC 3927 2.7).
#[inline(always)]
pub fn martian_v4(src: Ipv4Addr, dst: Ipv4Addr) -> Option<DropReason> {
    martian_v4_bits(u32::from(src), u32::from(dst))
}

/// [`martian_v4`] of two addresses in host order (`u32::from(Ipv4Addr)`): one test of both
/// on every packet's path, the reason worked out only for a martian.
#[inline(always)]
pub fn martian_v4_bits(src: u32, dst: u32) -> Option<DropReason> {
    // Only a first octet of 0, 127, 169 or 224 and up can be martian: one table load per
    // address, one branch for both, before the exact test.
    const MAYBE: [bool; 256] = {
        let mut t = [false; 256];
        let mut o = 0;
        while o < 256 {
            t[o] = o == 0 || o == 127 || o == 169 || o >= 224;
            o += 1;
        }
        t
    };
    if !(MAYBE[(src >> 24) as usize] | MAYBE[(dst >> 24) as usize]) {
        return None;
    }
    martian_v4_exact(src, dst)
}

/// [`martian_v4_bits`] past its first filter.
#[inline(never)]
fn martian_v4_exact(src: u32, dst: u32) -> Option<DropReason> {
    if !(martian_v4_addr(src) | martian_v4_addr(dst)) {
        return None;
    }
    if martian_v4_addr(dst) {
        Some(DropReason::MartianDestination)
    } else {
        Some(DropReason::MartianSource)
    }
}

/// Whether `a` (host order) is in 0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16, 224.0.0.0/4 or is
/// 255.255.255.255: the first octet looked up in a 256-bit map, then two compares, without
/// a branch.
#[inline(always)]
const fn martian_v4_addr(a: u32) -> bool {
    // Bit n of the map: first octet n is martian (0, 127, 224 to 239).
    const FIRST: [u64; 4] = [1, 1 << 63, 0, 0xffff << (224 - 192)];
    let o0 = a >> 24;
    ((FIRST[(o0 >> 6) as usize] >> (o0 & 63)) & 1 != 0) | (a >> 16 == 0xa9fe) | (a == u32::MAX)
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

/// [`martian_v6`] of two addresses as they are in the header: only a first byte of 0x00,
/// 0xfe or 0xff can be martian, one branch for both addresses before the exact test.
#[inline(always)]
pub fn martian_v6_bytes(src: &[u8; 16], dst: &[u8; 16]) -> Option<DropReason> {
    let maybe = |a: &[u8; 16]| (a[0] == 0) | (a[0] >= 0xfe);
    if !(maybe(src) | maybe(dst)) {
        return None;
    }
    martian_v6(Ipv6Addr::from(*src), Ipv6Addr::from(*dst))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::ethernet::ethertype;
    use crate::net::{emit, ip_proto};
    use crate::net::{parse, Ipv4Packet};

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

    /// The branch-free martian test is the one written with `Ipv4Addr`'s predicates, on
    /// every first octet with second octets around 169.254 and on the edge addresses.
    #[test]
    fn martian_bits_are_the_predicates() {
        let reference = |a: Ipv4Addr| {
            let o = a.octets();
            o[0] == 0 || o[0] == 127 || (o[0] == 169 && o[1] == 254) || a.is_multicast() || a.is_broadcast()
        };
        for o0 in 0..=255u8 {
            for o1 in [0, 1, 253, 254, 255] {
                for tail in [[0, 0], [0, 1], [255, 254], [255, 255]] {
                    let a = Ipv4Addr::new(o0, o1, tail[0], tail[1]);
                    assert_eq!(martian_v4_addr(u32::from(a)), reference(a), "{a}");
                    let ok = Ipv4Addr::new(192, 0, 2, 1);
                    let want = if reference(a) { Some(DropReason::MartianDestination) } else { None };
                    assert_eq!(martian_v4(ok, a), want, "{a}");
                    let want = if reference(a) { Some(DropReason::MartianSource) } else { None };
                    assert_eq!(martian_v4(a, ok), want, "{a}");
                }
            }
        }
    }

    /// The filtered IPv6 martian test is the plain one, on addresses of every first byte
    /// and the special ones.
    #[test]
    fn martian_v6_bytes_is_martian_v6() {
        let mut addrs: Vec<Ipv6Addr> = ["::", "::1", "::2", "fe80::1", "febf::1", "fec0::1", "ff02::1", "2001:db8::1", "fc00::1"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        for b0 in 0..=255u8 {
            for b1 in [0x00, 0x80, 0xbf, 0xc0] {
                let mut o = [0u8; 16];
                o[0] = b0;
                o[1] = b1;
                o[15] = 1;
                addrs.push(Ipv6Addr::from(o));
            }
        }
        for a in &addrs {
            for b in &addrs {
                assert_eq!(martian_v6_bytes(&a.octets(), &b.octets()), martian_v6(*a, *b), "{a} -> {b}");
            }
        }
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

    /// The common-case path agrees with the general one (action, bytes afterwards, parse)
    /// on every frame it takes: every single-byte variant and prefix of routed, dropped and
    /// malformed frames of both families.
    #[test]
    fn the_common_case_is_l3fwd() {
        let (t, nh) = tables();
        let mut bases = vec![ipv4_udp([10, 1, 2, 3], 64), ipv4_udp([10, 9, 0, 1], 2), ipv6_udp("2001:db8:1::7", 64)];
        bases.push(ipv6_udp("2001:db9::1", 9));
        bases.extend([&crate::net::testdata::IPV4_TCP_OPTS[..], &crate::net::testdata::VLAN_IPV6_ICMPV6].map(|f| f.to_vec()));
        let mut taken = 0;
        let check = |f: &[u8], taken: &mut usize| {
            for csum in [RxChecksum::Unknown, RxChecksum::Good, RxChecksum::Bad] {
                let (mut a, mut b) = (f.to_vec(), f.to_vec());
                let Some(c) = l3fwd_common(&mut a, &t, &nh, csum) else { continue };
                *taken += 1;
                let p = parse(&b).expect("the common case parses");
                assert_eq!(c.parsed(), p);
                let expected = l3fwd_parsed(&mut b, &p, &t, &nh, None, csum);
                assert_eq!((c.action, &a), (expected, &b), "{f:02x?} {csum:?}");
            }
        };
        for f in &bases {
            for len in 0..=f.len() {
                check(&f[..len], &mut taken);
            }
            for i in 0..f.len() {
                for v in [0x00, 0x01, 0x02, 0x05, 0x06, 0x11, 0x14, 0x3a, 0x45, 0x50, 0x60, 0x86, 0xdd, 0xfe, 0xff] {
                    let mut g = f.clone();
                    g[i] = v;
                    check(&g, &mut taken);
                }
            }
        }
        assert!(taken > 3000, "the common path took {taken} frames");
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
