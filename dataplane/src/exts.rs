//! The forwarder's packet extensions (see `mempool::ext` for the framework):
//!
//! - [`Trace`]: when a sampled packet was received and where; read when it is handed to
//!   TX, it gives that packet's exact RX-to-TX latency.
//! - [`FlowMeta`]: what the parser found (protocol class, L3/L4 offsets, a 5-tuple hash),
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
    /// A hash of the 5-tuple (addresses, ports, protocol); 0 for non-IP.
    pub hash: u32,
}

impl FlowMeta {
    /// Fills the metadata from a parse result and the frame it came from.
    pub fn from_parsed(frame: &[u8], p: &Parsed) -> FlowMeta {
        FlowMeta {
            class: p.proto,
            mirrored: false,
            l3_offset: p.l3_offset,
            l4_offset: p.l4_offset,
            hash: crate::ecmp::flow_hash(frame, p),
        }
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
