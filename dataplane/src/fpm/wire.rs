//! What zebra's `dplane_fpm_nl` sends, from bytes to [`Message`]s.
//!
//! The stream is a sequence of FPM frames (FRR `fpm/fpm.h`): a 4-byte header, `version`
//! (u8, 1), `msg_type` (u8, 1 = netlink) and `msg_len` (u16, **big-endian, including the
//! header**), then `msg_len - 4` bytes holding one or more complete netlink messages in the
//! sender's **host byte order**, each padded to 4 bytes (`NLMSG_ALIGN`). The FPM header is
//! read here; every netlink message is decoded by `netlink-packet-route`, never by hand.
//!
//! A route change is `RTM_DELROUTE` + `RTM_NEWROUTE` of the same prefix in one frame
//! (zebra's `netlink_route_multipath_msg_encode` called twice by `fpm_nl_enqueue`), so a
//! frame is decoded as a whole ([`decode_frame`]) and applied as one step by the session.
//!
//! Decoding is total: any input gives `Ok` or an [`FpmError`], never a panic (the `fpm`
//! fuzz target checks this).

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NetlinkBuffer, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteNextHopFlags, RouteType, RouteVia,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

/// Length of the FPM header (`FPM_MSG_HDR_LEN`).
pub const HEADER_LEN: usize = 4;
/// The only FPM protocol version (`FPM_PROTO_VERSION`).
pub const VERSION: u8 = 1;
/// `FPM_MSG_TYPE_NETLINK`; type 2 (protobuf) is not produced by `dplane_fpm_nl`.
pub const TYPE_NETLINK: u8 = 1;

/// `RTM_NEWROUTE` (linux/rtnetlink.h).
const RTM_NEWROUTE: u16 = 24;
/// `RTM_DELROUTE`.
const RTM_DELROUTE: u16 = 25;
/// `RTM_NEWNEXTHOP`: a next-hop object (zebra's default, `fpm use-next-hop-groups`).
const RTM_NEWNEXTHOP: u16 = 104;
/// `RTM_DELNEXTHOP`.
const RTM_DELNEXTHOP: u16 = 105;
/// `NLMSG_ALIGNTO`.
const NLMSG_ALIGNTO: usize = 4;

/// What makes a stream unusable. The session that received it is closed (zebra reconnects
/// within 3 s and replays its table); the routes it already installed stay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FpmError {
    /// An FPM header with a version other than 1.
    #[error("FPM header: version {0}, expected 1")]
    BadVersion(u8),
    /// An FPM message type other than netlink.
    #[error("FPM header: message type {0}, expected 1 (netlink)")]
    BadType(u8),
    /// An FPM length shorter than its own header.
    #[error("FPM header: length {0} is shorter than the 4-byte header")]
    BadLength(u16),
    /// The stream ended inside a frame.
    #[error("stream closed inside a frame ({0} bytes of it received)")]
    Truncated(usize),
    /// A netlink message `netlink-packet-route` rejected (its own message).
    #[error("netlink message type {msg_type}: {reason}")]
    Netlink {
        /// `nlmsg_type`, 0 when the netlink header itself was bad.
        msg_type: u16,
        /// What the decoder said.
        reason: String,
    },
    /// zebra sends next-hop objects, which the decoder does not support.
    #[error("zebra sends next-hop objects (netlink message type {0}); configure `no fpm use-next-hop-groups` in zebra")]
    NextHopObjects(u16),
    /// A route whose destination and prefix length do not make a prefix, or have host bits set.
    #[error("route: bad destination {addr}/{len}")]
    BadPrefix {
        /// `RTA_DST`.
        addr: IpAddr,
        /// `rtm_dst_len`.
        len: u8,
    },
    /// A unicast route with no next hop at all.
    #[error("route {0}: unicast with no next hop")]
    NoNextHop(IpNet),
}

/// A route's identity: zebra's routes are unique per (table, destination prefix); deletes
/// carry nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteKey {
    /// `rtm_table`, or `RTA_TABLE` when it is above 255; 254 is `main`.
    pub table: u32,
    /// The destination, host bits zero.
    pub prefix: IpNet,
}

impl std::fmt::Display for RouteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.table == MAIN_TABLE {
            write!(f, "{}", self.prefix)
        } else {
            write!(f, "{} table {}", self.prefix, self.table)
        }
    }
}

/// `RT_TABLE_MAIN`.
pub const MAIN_TABLE: u32 = 254;

/// Who made a route: `rtm_protocol`, with FRR's numbers (`zebra/rt_netlink.h`,
/// `/etc/iproute2/rt_protos.d/frr.conf`) and the kernel's (`linux/rtnetlink.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Protocol(pub u8);

impl Protocol {
    /// `RTPROT_KERNEL`: zebra's connected routes (its interfaces' subnets).
    pub const KERNEL: Protocol = Protocol(2);
    /// `RTPROT_BGP`.
    pub const BGP: Protocol = Protocol(186);
    /// `RTPROT_ZSTATIC`: staticd's routes.
    pub const STATIC: Protocol = Protocol(196);

    /// The name `ip route` prints with FRR's `rt_protos.d` file, or `None` for a number
    /// neither the kernel nor FRR names.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "unspec",
            1 => "redirect",
            2 => "kernel",
            3 => "boot",
            4 => "static-kernel",
            11 => "zebra",
            186 => "bgp",
            187 => "isis",
            188 => "ospf",
            189 => "rip",
            190 => "ripng",
            191 => "nhrp",
            192 => "eigrp",
            193 => "ldp",
            194 => "sharp",
            195 => "pbr",
            196 => "static",
            197 => "openfabric",
            198 => "srte",
            _ => return None,
        })
    }
}

impl std::fmt::Display for Protocol {
    /// The name, or the number for an unnamed protocol.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.0),
        }
    }
}

/// What a route does with a packet (`rtm_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKind {
    /// `RTN_UNICAST`: forward to its next hops.
    Unicast,
    /// `RTN_BLACKHOLE`: drop silently.
    Blackhole,
    /// `RTN_UNREACHABLE`: drop (a host would answer ICMP unreachable).
    Unreachable,
    /// `RTN_PROHIBIT`: drop (administratively prohibited).
    Prohibit,
}

/// One path of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NextHop {
    /// `RTA_GATEWAY` (or `RTA_VIA` for a gateway of the other family, RFC 5549); `None`
    /// for a route straight out of an interface (the destination is on the link).
    pub gateway: Option<IpAddr>,
    /// `RTA_OIF` / `rtnh_ifindex`: an interface index **in zebra's network namespace**.
    pub ifindex: Option<u32>,
    /// The path's share under ECMP: `rtnh_hops + 1` (1 for a single path).
    pub weight: u16,
    /// `RTNH_F_ONLINK`: the gateway is on the link even outside its subnets.
    pub onlink: bool,
}

/// A route as zebra installs it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    /// Table and destination.
    pub key: RouteKey,
    /// Who made it.
    pub protocol: Protocol,
    /// Forward or drop.
    pub kind: RouteKind,
    /// At least one for [`RouteKind::Unicast`], none otherwise; several = ECMP.
    pub next_hops: Vec<NextHop>,
}

/// Why a message was skipped without closing the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// A netlink message type other than routes (zebra's RMACs for EVPN come as
    /// `RTM_NEWNEIGH`, `NLMSG_NOOP` and `NLMSG_DONE` are possible).
    MessageType(u16),
    /// A route of a family other than IPv4/IPv6 (MPLS label routes, `AF_MPLS`).
    Family(u8),
    /// A route type the forwarder does not do (local, broadcast, multicast, throw, nat...).
    RouteType(u8),
    /// A source-specific route (`rtm_src_len` > 0, IPv6 SADR).
    SourceSpecific,
}

/// One decoded netlink message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `RTM_NEWROUTE`: install or replace (whatever `NLM_F_*` says: IPv6 comes without
    /// `NLM_F_REPLACE`).
    Upsert(Route),
    /// `RTM_DELROUTE`: remove the route of this key (no next hops are sent).
    Delete(RouteKey),
    /// Not a route the forwarder takes.
    Skipped(Skipped),
}

/// The length of the first FPM frame in `buf`, header included, once it is complete.
///
/// # Errors
/// [`FpmError::BadVersion`], [`FpmError::BadType`] or [`FpmError::BadLength`] as soon as the
/// 4 header bytes are there.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FpmError> {
    let Some(header) = buf.get(..HEADER_LEN) else { return Ok(None) };
    if header[0] != VERSION {
        return Err(FpmError::BadVersion(header[0]));
    }
    if header[1] != TYPE_NETLINK {
        return Err(FpmError::BadType(header[1]));
    }
    let len = u16::from_be_bytes([header[2], header[3]]);
    if usize::from(len) < HEADER_LEN {
        return Err(FpmError::BadLength(len));
    }
    Ok((buf.len() >= usize::from(len)).then_some(usize::from(len)))
}

/// Decodes the netlink messages of one frame's payload (the bytes after its header), in order.
///
/// # Errors
/// The first message that cannot be decoded: [`FpmError::Netlink`] for what the netlink crate
/// rejects (a bad length, a truncated attribute), [`FpmError::NextHopObjects`],
/// [`FpmError::BadPrefix`], [`FpmError::NoNextHop`]. An empty payload is no error.
pub fn decode_frame(payload: &[u8]) -> Result<Vec<Message>, FpmError> {
    let mut messages = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let nl = NetlinkBuffer::new_checked(rest).map_err(|e| netlink(0, e))?;
        let (len, msg_type) = (nl.length() as usize, nl.message_type());
        messages.push(decode_message(msg_type, &rest[..len])?);
        rest = &rest[len.next_multiple_of(NLMSG_ALIGNTO).min(rest.len())..];
    }
    Ok(messages)
}

fn netlink(msg_type: u16, e: impl std::fmt::Display) -> FpmError {
    FpmError::Netlink { msg_type, reason: e.to_string() }
}

/// One netlink message of `msg_type` (checked by the caller to be `bytes` long).
fn decode_message(msg_type: u16, bytes: &[u8]) -> Result<Message, FpmError> {
    match msg_type {
        RTM_NEWROUTE | RTM_DELROUTE => {}
        RTM_NEWNEXTHOP | RTM_DELNEXTHOP => return Err(FpmError::NextHopObjects(msg_type)),
        other => return Ok(Message::Skipped(Skipped::MessageType(other))),
    }
    let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes).map_err(|e| netlink(msg_type, e))?;
    match msg.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) => route(&r, true),
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelRoute(r)) => route(&r, false),
        // The type was checked above; the crate maps 24/25 to these two variants only.
        _ => Err(netlink(msg_type, "not a route message")),
    }
}

/// The forwarder's view of one route message.
fn route(m: &RouteMessage, new: bool) -> Result<Message, FpmError> {
    let h = &m.header;
    let family = u8::from(h.address_family);
    if h.address_family != AddressFamily::Inet && h.address_family != AddressFamily::Inet6 {
        return Ok(Message::Skipped(Skipped::Family(family)));
    }
    if h.source_prefix_length != 0 {
        return Ok(Message::Skipped(Skipped::SourceSpecific));
    }
    let mut table = u32::from(h.table);
    let mut dst = None;
    let mut single = NextHop { gateway: None, ifindex: None, weight: 1, onlink: false };
    let mut multipath = None;
    let mut nh_id = false;
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(addr) => dst = Some(address(addr)),
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Gateway(g) => single.gateway = address(g),
            RouteAttribute::Via(v) => single.gateway = via(v),
            RouteAttribute::Oif(i) => single.ifindex = (*i != 0).then_some(*i),
            RouteAttribute::MultiPath(paths) => multipath = Some(paths),
            RouteAttribute::NhId(_) => nh_id = true,
            _ => {}
        }
    }
    let unspecified = if h.address_family == AddressFamily::Inet { IpAddr::from([0u8; 4]) } else { IpAddr::from([0u8; 16]) };
    let addr = match dst {
        None => unspecified,
        Some(Some(a)) if a.is_ipv4() == unspecified.is_ipv4() => a,
        Some(_) => return Err(netlink(if new { RTM_NEWROUTE } else { RTM_DELROUTE }, "RTA_DST of the wrong family")),
    };
    let len = h.destination_prefix_length;
    let prefix = IpNet::new(addr, len).map_err(|_| FpmError::BadPrefix { addr, len })?;
    if prefix.network() != addr {
        return Err(FpmError::BadPrefix { addr, len });
    }
    let key = RouteKey { table, prefix };
    if !new {
        return Ok(Message::Delete(key));
    }
    let kind = match h.kind {
        RouteType::Unicast => RouteKind::Unicast,
        RouteType::BlackHole => RouteKind::Blackhole,
        RouteType::Unreachable => RouteKind::Unreachable,
        RouteType::Prohibit => RouteKind::Prohibit,
        other => return Ok(Message::Skipped(Skipped::RouteType(u8::from(other)))),
    };
    single.onlink = h.flags.contains(RouteFlags::Onlink);
    let mut next_hops = Vec::new();
    if kind == RouteKind::Unicast {
        match multipath {
            Some(paths) => {
                for p in paths {
                    let mut hop = NextHop {
                        gateway: None,
                        ifindex: (p.interface_index != 0).then_some(p.interface_index),
                        weight: u16::from(p.hops) + 1,
                        onlink: p.flags.contains(RouteNextHopFlags::Onlink),
                    };
                    for a in &p.attributes {
                        match a {
                            RouteAttribute::Gateway(g) => hop.gateway = address(g),
                            RouteAttribute::Via(v) => hop.gateway = via(v),
                            _ => {}
                        }
                    }
                    next_hops.push(hop);
                }
            }
            None if single.gateway.is_some() || single.ifindex.is_some() => next_hops.push(single),
            None if nh_id => return Err(FpmError::NextHopObjects(RTM_NEWROUTE)),
            None => {}
        }
        if next_hops.is_empty() {
            return Err(FpmError::NoNextHop(prefix));
        }
    }
    Ok(Message::Upsert(Route { key, protocol: Protocol(h.protocol.into()), kind, next_hops }))
}

fn address(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn via(v: &RouteVia) -> Option<IpAddr> {
    match v {
        RouteVia::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteVia::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// A whole captured stream, frame by frame: `Ok(messages)` per frame, ending at the first
/// error (what a session would close on), or with [`FpmError::Truncated`] when the bytes end
/// inside a frame.
pub fn decode_stream(mut stream: &[u8]) -> Vec<Result<Vec<Message>, FpmError>> {
    let mut frames = Vec::new();
    while !stream.is_empty() {
        match frame_len(stream) {
            Ok(Some(len)) => {
                let decoded = decode_frame(&stream[HEADER_LEN..len]);
                let failed = decoded.is_err();
                frames.push(decoded);
                if failed {
                    break;
                }
                stream = &stream[len..];
            }
            Ok(None) => {
                frames.push(Err(FpmError::Truncated(stream.len())));
                break;
            }
            Err(e) => {
                frames.push(Err(e));
                break;
            }
        }
    }
    frames
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// staticd: 10.9/16, 10.8/16 ECMP, v6 routes, connected routes, then changes (DEL + NEW
    /// in one frame), captured from FRR 8.4.4 with `no fpm use-next-hop-groups`.
    pub const STATIC_ECMP: &[u8] = include_bytes!("testdata/zebra-static-ecmp.bin");
    /// A replay with a BGP route, blackhole/unreachable routes, an interface route, a default
    /// route, then every one of them deleted.
    pub const BGP_DEFAULT: &[u8] = include_bytes!("testdata/zebra-bgp-default-blackhole.bin");
    /// zebra's default `fpm use-next-hop-groups`: RTM_NEWNEXTHOP first.
    pub const NEXTHOP_GROUPS: &[u8] = include_bytes!("testdata/zebra-nexthop-groups.bin");

    pub fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    pub fn key(s: &str) -> RouteKey {
        RouteKey { table: MAIN_TABLE, prefix: net(s) }
    }

    pub fn via4(gw: [u8; 4], ifindex: u32) -> NextHop {
        NextHop { gateway: Some(IpAddr::from(gw)), ifindex: Some(ifindex), weight: 1, onlink: false }
    }

    fn all(stream: &[u8]) -> Vec<Vec<Message>> {
        decode_stream(stream).into_iter().map(|f| f.unwrap()).collect()
    }

    fn upsert(m: &Message) -> &Route {
        match m {
            Message::Upsert(r) => r,
            other => panic!("expected an upsert, got {other:?}"),
        }
    }

    #[test]
    fn static_single_ecmp_v6_and_connected_routes() {
        let frames = all(STATIC_ECMP);
        assert_eq!(frames.len(), 14);
        let first: Vec<&Route> = frames[..11].iter().map(|f| upsert(&f[0])).collect();
        assert!(frames[..11].iter().all(|f| f.len() == 1));

        // zebra's connected route: protocol 2 (kernel), the interface only.
        assert_eq!(first[0].key, key("10.0.2.0/24"));
        assert_eq!(first[0].protocol, Protocol::KERNEL);
        assert_eq!(first[0].next_hops, [NextHop { gateway: None, ifindex: Some(10), weight: 1, onlink: false }]);

        let ecmp = first[4];
        assert_eq!(ecmp.key, key("10.8.0.0/16"));
        assert_eq!((ecmp.protocol, ecmp.protocol.to_string()), (Protocol::STATIC, "static".to_owned()));
        assert_eq!(ecmp.kind, RouteKind::Unicast);
        assert_eq!(ecmp.next_hops, [via4([10, 0, 2, 2], 10), via4([10, 0, 3, 2], 12)]);

        let v6 = first[8];
        assert_eq!(v6.key, key("2001:db8:9::/48"));
        let gw6: Ipv6Addr = "2001:db8:2::2".parse().unwrap();
        assert_eq!(v6.next_hops, [NextHop { gateway: Some(gw6.into()), ifindex: Some(10), weight: 1, onlink: false }]);
        assert_eq!(first[9].key, key("fe80::/64"));

        assert_eq!(
            frames[10][0],
            Message::Upsert(Route {
                key: key("10.9.0.0/16"),
                protocol: Protocol::STATIC,
                kind: RouteKind::Unicast,
                next_hops: vec![via4([10, 0, 2, 2], 10)],
            })
        );
        // A second path added: DEL + NEW of the same prefix in one frame.
        assert_eq!(frames[11].len(), 2);
        assert_eq!(frames[11][0], Message::Delete(key("10.9.0.0/16")));
        assert_eq!(upsert(&frames[11][1]).next_hops, [via4([10, 0, 2, 2], 10), via4([10, 0, 3, 2], 12)]);
        assert_eq!(frames[12][0], Message::Delete(key("10.9.0.0/16")));
        assert_eq!(upsert(&frames[12][1]).next_hops, [via4([10, 0, 3, 2], 12)]);
        assert_eq!(frames[13][0], Message::Delete(key("2001:db8:9::/48")));
        assert_eq!(upsert(&frames[13][1]).next_hops.len(), 2);
    }

    #[test]
    fn bgp_blackhole_unreachable_interface_and_default_routes() {
        let msgs: Vec<Message> = all(BGP_DEFAULT).into_iter().flatten().collect();
        let find = |p: &str| msgs.iter().find_map(|m| matches!(m, Message::Upsert(r) if r.key == key(p)).then(|| upsert(m)));
        let bgp = find("198.51.100.0/24").unwrap();
        assert_eq!((bgp.protocol, bgp.protocol.to_string()), (Protocol::BGP, "bgp".to_owned()));
        assert_eq!(bgp.next_hops, [via4([10, 0, 2, 2], 10)]);
        let default = find("0.0.0.0/0").unwrap();
        assert_eq!(default.next_hops, [via4([10, 0, 2, 2], 10)]);
        assert_eq!(
            (find("10.66.0.0/16").unwrap().kind, find("10.66.0.0/16").unwrap().next_hops.len()),
            (RouteKind::Blackhole, 0)
        );
        assert_eq!(find("10.67.0.0/16").unwrap().kind, RouteKind::Unreachable);
        let iface = find("10.68.0.0/16").unwrap();
        assert_eq!(iface.next_hops, [NextHop { gateway: None, ifindex: Some(10), weight: 1, onlink: false }]);
        // Deletes carry the key only.
        let deletes: Vec<&RouteKey> =
            msgs.iter().filter_map(|m| if let Message::Delete(k) = m { Some(k) } else { None }).collect();
        assert_eq!(deletes.len(), 8);
        assert!(deletes.contains(&&key("0.0.0.0/0")) && deletes.contains(&&key("198.51.100.0/24")));
    }

    #[test]
    fn nexthop_objects_are_refused_with_the_zebra_line_to_change() {
        let frames = decode_stream(NEXTHOP_GROUPS);
        assert_eq!(frames.len(), 1);
        let err = frames[0].clone().unwrap_err();
        assert_eq!(err, FpmError::NextHopObjects(104));
        assert!(err.to_string().contains("no fpm use-next-hop-groups"), "{err}");
    }

    #[test]
    fn fpm_header_checks() {
        assert_eq!(frame_len(&[1, 1, 0]), Ok(None));
        assert_eq!(frame_len(&[1, 1, 0, 8, 0, 0, 0]), Ok(None));
        assert_eq!(frame_len(&[1, 1, 0, 8, 0, 0, 0, 0, 9]), Ok(Some(8)));
        assert_eq!(frame_len(&[1, 1, 0, 4]), Ok(Some(4)));
        assert_eq!(frame_len(&[2, 1, 0, 8]), Err(FpmError::BadVersion(2)));
        assert_eq!(frame_len(&[1, 2, 0, 8]), Err(FpmError::BadType(2)));
        assert_eq!(frame_len(&[1, 1, 0, 3]), Err(FpmError::BadLength(3)));
        assert_eq!(decode_frame(&[]), Ok(vec![]));
    }

    /// Every prefix of a real stream decodes to the same frames up to the cut, then
    /// `Truncated` (or nothing at a frame boundary); nothing panics.
    #[test]
    fn truncated_streams() {
        let whole = all(STATIC_ECMP);
        for cut in 0..STATIC_ECMP.len() {
            let frames = decode_stream(&STATIC_ECMP[..cut]);
            let ok: Vec<_> = frames.iter().take_while(|f| f.is_ok()).cloned().map(Result::unwrap).collect();
            assert_eq!(ok[..], whole[..ok.len()]);
            if let Some(Err(e)) = frames.last() {
                assert!(matches!(e, FpmError::Truncated(_)), "cut {cut}: {e}");
            }
        }
    }

    /// A frame whose FPM length cuts its last netlink message short, and netlink lengths that
    /// lie: each is an error, none a panic.
    #[test]
    fn lying_lengths() {
        let len = frame_len(STATIC_ECMP).unwrap().unwrap();
        let frame = &STATIC_ECMP[..len];
        for cut in HEADER_LEN + 1..len {
            assert!(decode_frame(&frame[HEADER_LEN..cut]).is_err(), "cut at {cut}");
        }
        for nl_len in [0u32, 1, 15, 16, 17, 100, u32::MAX] {
            let mut f = frame[HEADER_LEN..].to_vec();
            f[..4].copy_from_slice(&nl_len.to_ne_bytes());
            assert!(decode_frame(&f).is_err(), "nlmsg_len {nl_len}");
        }
    }

    /// Every single-byte corruption of a real stream: an error or a (different) decode.
    #[test]
    fn corrupted_bytes_never_panic() {
        let mut errors = 0;
        for i in 0..BGP_DEFAULT.len() {
            for v in [0u8, 0xff, BGP_DEFAULT[i] ^ 0x80] {
                let mut s = BGP_DEFAULT.to_vec();
                s[i] = v;
                errors += decode_stream(&s).iter().filter(|f| f.is_err()).count();
            }
        }
        assert!(errors > 0);
    }

    #[test]
    fn protocol_names() {
        assert_eq!(Protocol(188).to_string(), "ospf");
        assert_eq!(Protocol(2).to_string(), "kernel");
        assert_eq!(Protocol(250).to_string(), "250");
        assert_eq!(RouteKey { table: 10, prefix: net("10.0.0.0/8") }.to_string(), "10.0.0.0/8 table 10");
        let _ = Ipv4Addr::LOCALHOST;
    }
}
