//! The forwarder's packet extensions (see `mempool::ext` for the framework):
//!
//! - [`Trace`]: when a sampled packet was received and where; read when it is handed to
//!   TX, it gives that packet's exact RX-to-TX latency.
//! - [`FlowMeta`]: what the parser found (protocol class, L3/L4 offsets, a flow hash),
//!   for features that act on a packet later (the mirror; memory accounting).
//!
//! The framework is process-wide: it is started once, the first time a forwarder needs
//! it, and every later forwarder in the process shares it.

use std::sync::OnceLock;

use mempool::ext::{ExtError, ExtId, ExtParams, ExtRegistry, Extensions};
use mempool::SocketId;

use crate::net::{Parsed, Proto};

/// RX timestamp and origin of a sampled packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trace {
    /// TSC when its RX burst was received.
    pub rx_tsc: u64,
    /// Worker lcore.
    pub lcore: u16,
    /// RX port id.
    pub port: u16,
    /// RX queue.
    pub queue: u16,
}

/// The parser's findings for one packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowMeta {
    /// Protocol class.
    pub class: Proto,
    /// Whether this packet is a mirror copy.
    pub mirrored: bool,
    /// L3 header offset.
    pub l3_offset: u16,
    /// L4 header offset.
    pub l4_offset: u16,
    /// The flow's hash: the NIC's RSS hash (Toeplitz over the addresses and ports, with the
    /// port's RSS key) when it gave one, else the CRC32-C ([`crate::hash::crc`]) of the
    /// addresses, the TCP/UDP ports (zeros for other protocols and fragments) and the IP
    /// protocol; 0 for non-IP. Equal for the
    /// packets of one flow either way; which one a port gives does not change.
    pub hash: u32,
}

impl FlowMeta {
    /// Fills the metadata from a parse result, the frame it came from, and the NIC's RSS
    /// hash if it gave one (`Mbuf::rss_hash`).
    #[inline]
    pub fn from_parsed(frame: &[u8], p: &Parsed, rss: Option<u32>) -> FlowMeta {
        let hash = match rss {
            Some(h) => h,
            None => crate::ecmp::flow_hash(frame, p),
        };
        FlowMeta { class: p.proto, mirrored: false, l3_offset: p.l3_offset, l4_offset: p.l4_offset, hash }
    }
}

impl FlowMeta {
    /// [`FlowMeta::from_parsed`] for a frame `forward::l3fwd_common` handled (untagged, fixed
    /// offsets), without the general parse result.
    #[inline]
    pub fn from_common(frame: &[u8], c: &crate::forward::Common, rss: Option<u32>) -> FlowMeta {
        let (l4, addrs) = if c.v6 { (54, 22) } else { (34, 26) };
        let hash = match rss {
            Some(h) => h,
            None => {
                let ports = match c.proto {
                    Proto::Tcp | Proto::Udp => frame.get(l4..).and_then(|b| b.first_chunk()).copied().unwrap_or_default(),
                    _ => [0; 4],
                };
                let at = frame.get(addrs..);
                if c.v6 {
                    at.and_then(|b| b.first_chunk::<32>()).map_or(0, |a| crate::hash::crc_tuple(a, ports, c.ip_proto))
                } else {
                    at.and_then(|b| b.first_chunk::<8>()).map_or(0, |a| crate::hash::crc_tuple(a, ports, c.ip_proto))
                }
            }
        };
        FlowMeta { class: c.proto, mirrored: false, l3_offset: 14, l4_offset: l4 as u16, hash }
    }
}

/// The started framework and the forwarder's extension ids.
#[derive(Debug, Clone, Copy)]
pub struct PacketExts {
    /// The framework.
    pub ext: Extensions,
    /// The trace extension.
    pub trace: ExtId<Trace>,
    /// The flow-metadata extension.
    pub flow: ExtId<FlowMeta>,
}

/// The area pool's parameters for `areas` areas on `socket`: a per-lcore cache of a
/// quarter of the areas, at most 256.
pub fn area_params(areas: u32, socket: SocketId) -> ExtParams {
    ExtParams { name: "ext_areas".into(), areas, cache: 256.min(areas / 4), socket }
}

static EXTS: OnceLock<Result<PacketExts, ExtError>> = OnceLock::new();

/// Registers the forwarder's extension types and starts the framework with `areas`
/// areas on `socket`, once per process; later calls return the same.
///
/// # Errors
/// The framework's start-up error ([`ExtError::InvalidParams`] for an area count the pool
/// refuses, [`ExtError::Dpdk`] when DPDK fails); every later call returns the same.
pub fn start(areas: u32, socket: SocketId) -> Result<PacketExts, ExtError> {
    EXTS.get_or_init(|| {
        let go = || -> Result<PacketExts, ExtError> {
            let mut r = ExtRegistry::new();
            let trace = r.register::<Trace>("trace")?;
            let flow = r.register::<FlowMeta>("flow")?;
            let ext = r.start(&area_params(areas, socket))?;
            Ok(PacketExts { ext, trace, flow })
        };
        go()
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::parse;
    use crate::net::testdata::*;

    #[test]
    fn the_flow_hash_follows_the_tuple() {
        let f = IPV4_UDP_PADDED;
        let p = parse(&f).unwrap();
        let h = FlowMeta::from_parsed(&f, &p, None).hash;
        assert_ne!(h, 0);
        // Another TTL, the same flow.
        let mut g = f;
        g[22] = 3;
        assert_eq!(FlowMeta::from_parsed(&g, &parse(&g).unwrap(), None).hash, h);
        // Another source port, another flow.
        let mut g = f;
        g[35] ^= 1;
        assert_ne!(FlowMeta::from_parsed(&g, &parse(&g).unwrap(), None).hash, h);
        // The NIC's hash wins when there is one; non-IP has none.
        assert_eq!(FlowMeta::from_parsed(&f, &p, Some(42)).hash, 42);
        assert_eq!(FlowMeta::from_parsed(&ARP_REQUEST, &parse(&ARP_REQUEST).unwrap(), None).hash, 0);
        // The common case's shortcut says the same.
        for f in [&IPV4_UDP_PADDED[..], &IPV4_TCP_OPTS] {
            let mut routed = f.to_vec();
            struct Nowhere;
            impl crate::forward::Routes for Nowhere {
                fn lookup_v4(&self, _: std::net::Ipv4Addr) -> Option<u32> {
                    None
                }
                fn lookup_v6(&self, _: std::net::Ipv6Addr) -> Option<u32> {
                    None
                }
            }
            let c = crate::forward::l3fwd_common(&mut routed, &Nowhere, &[], crate::forward::RxChecksum::Unknown).unwrap();
            let p = parse(f).unwrap();
            assert_eq!(FlowMeta::from_common(f, &c, None), FlowMeta::from_parsed(f, &p, None));
        }
        let meta = FlowMeta::from_parsed(&VLAN_IPV6_ICMPV6, &parse(&VLAN_IPV6_ICMPV6).unwrap(), None);
        assert_eq!((meta.class, meta.l3_offset, meta.l4_offset), (Proto::Icmp, 18, 58));
    }
}
