//! The configuration file: TOML in, a validated [`Config`] out.
//!
//! - `raw`: what serde reads from the file (see `configs/*.toml` for commented
//!   examples), every table denying unknown keys, with the documented defaults.
//! - `validate`: the raw layer checked and turned into the typed [`Config`] that the rest
//!   of the program uses: value ranges, name and device syntax, references between
//!   `[[port]]`, `[forward]`, `[[route]]` and `[[worker]]`, every RX queue polled by
//!   exactly one worker, a TX queue per worker on every port a worker may send on, and
//!   the pool parameters through mempool's own checks.
//! - `eal`: the EAL command line derived from a [`Config`] ([`Config::eal_args`]).
//! - [`ConfigError`]: one line, `KEY: problem`, e.g.
//!   `port[1].rx_queues: must be at least 1, got 0`.
//!
//! All of this runs before EAL starts, so a bad config touches no hugepage.
//!
//! Queue model: worker `k` (its 0-based position in `[[worker]]`) polls the RX
//! queues listed in its `rx`, and sends what it receives on port `p` out of TX
//! queue `k` of [`Config::out_port`]`(p)`.

use std::path::Path;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use mempool::accounting::Proto;
use serde::{Deserialize, Serialize};

use crate::net::MacAddr;
use crate::port::PortIdx;

mod eal;
pub use eal::{Hugepages, MemoryPlan};
mod error;
#[cfg(test)]
mod fixtures;
mod raw;
mod render;
mod validate;

pub use eal::check_extra_eal_args;
pub use error::{ConfigError, ConfigErrorKind};
pub use validate::check_route;

/// Lcore ids must be below EAL's default `RTE_MAX_LCORE`.
pub const MAX_LCORES: u32 = 128;

/// CPUs an lcore may be placed on: `CPU_SETSIZE`, the size of EAL's cpu sets.
pub const MAX_CPUS: u32 = 1024;

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub eal: EalConfig,
    pub pool: PoolConfig,
    pub forward: ForwardConfig,
    pub poll: PollConfig,
    /// In file order; everything else refers to ports by their [`PortIdx`] in this.
    pub ports: Vec<PortConfig>,
    /// In file order; worker `k` sends on TX queue `k`.
    pub workers: Vec<WorkerConfig>,
    /// `[[route]]`, in file order (`l3fwd` only).
    pub routes: Vec<RouteConfig>,
    /// `[extensions]`: which packet extensions the workers attach.
    pub extensions: ExtensionsConfig,
    /// `[mirror]`: copies of matching packets to a port.
    pub mirror: Option<MirrorConfig>,
    /// `[accounting]`: per-protocol memory accounting of packets held past a round.
    pub accounting: Option<AccountingConf>,
    /// `[neighbour]`: the neighbour subsystem's knobs (Linux's names and defaults).
    pub neighbour: crate::neigh::NeighParams,
    /// `[fib]`: the route tables' capacities (l3fwd).
    pub fib: crate::fib::FibCapacity,
    /// `[control]`: the control socket.
    pub control: ControlConfig,
    /// `[fpm]`: routes from FRR's zebra (`dplane_fpm_nl`); `None` = off.
    pub fpm: Option<crate::fpm::FpmConfig>,
    /// `[metrics]`: the OpenMetrics / Prometheus endpoint; `None` = off.
    pub metrics: Option<MetricsConfig>,
}

/// `[control]`: the UNIX socket `dataplane ctl` talks to (docs/control-api.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlConfig {
    /// Its path; `None`: [`Config::control_socket`]'s default.
    pub socket: Option<std::path::PathBuf>,
    /// Clients served at once; more are refused with `busy`.
    pub max_clients: u32,
    /// A client that sends nothing for this long is closed (milliseconds).
    pub idle_timeout_ms: u32,
    /// The longest request line, in bytes (`ctl apply` sends a whole config in one).
    pub max_request_bytes: u32,
}

/// `[metrics]`: where `/metrics` is served (see [`crate::metrics`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `listen`: an IP address and TCP port, `127.0.0.1:9111` when the table is present
    /// without it. Any address may be configured; only loopback is ever a default. Port 0
    /// takes a free port (the binary prints the one it got).
    pub listen: std::net::SocketAddr,
}

/// `[accounting]`: TX backlogs and the slow path charge what they hold to per-protocol
/// accounts (tcp_mem-like limits) and per-port groups (memcg-like budgets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountingConf {
    /// Limits in 4 KiB pages per protocol, in `mempool::accounting::Proto::ALL` order
    /// (tcp, udp, icmp, other).
    pub limits: [mempool::accounting::ProtoLimits; 4],
    /// Pages a worker may hold back per protocol before folding into the global counter.
    pub batch_pages: u32,
    /// Packets a worker may hold per port when its TX ring is full.
    pub backlog: u32,
    /// The backlog's limit while its protocol is under memory pressure.
    pub backlog_under_pressure: u32,
    /// TX backlogs skip the protocol accounts (their group still applies).
    pub backlog_bypass: bool,
    /// The slow path's queue skips the protocol accounts (the default: control traffic
    /// is never starved by data-plane pressure, as with sk_bypass_prot_mem).
    pub punt_bypass: bool,
    /// Byte budget of each port's group (what its backlogs hold); 0 = unlimited.
    pub port_budget: u64,
    /// Byte budget of the slow path's group; 0 = unlimited.
    pub slow_path_budget: u64,
    /// The neighbour queues skip the protocol accounts (off by default: held data packets
    /// are data, and are moderated and refused like a backlog's).
    pub neigh_queue_bypass: bool,
    /// Byte budget of the neighbour queues' group (every packet held for resolution); 0 =
    /// unlimited.
    pub neigh_queue_budget: u64,
}

/// `[extensions]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionsConfig {
    /// One received packet in this many carries a trace extension (RX TSC, lcore, port,
    /// queue), read at TX hand-off for the latency histogram; 0 = none.
    pub trace_every: u32,
    /// Every packet carries a flow-metadata extension filled by the parser.
    pub flow: bool,
    /// Extension areas in their pool.
    pub areas: u32,
}

impl ExtensionsConfig {
    /// Whether any feature attaches extensions (then the framework starts).
    pub fn enabled(&self, mirror: bool) -> bool {
        self.trace_every > 0 || self.flow || mirror
    }
}

/// `[mirror]`: a clone of each forwarded packet of `proto` also leaves by `port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorConfig {
    /// The port the copies leave by.
    pub port: PortIdx,
    /// Which packets: one protocol class, or `None` for every packet (`proto = "any"`).
    pub proto: Option<Proto>,
}

/// `[poll]`: the budget of one worker round, as NAPI's `net_rx_action` (net/core/dev.c).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollConfig {
    /// Packets one round may take from all its RX queues (net.core.netdev_budget).
    pub budget: u32,
    /// Microseconds one round may run (net.core.netdev_budget_usecs).
    pub budget_usecs: u32,
    /// A partial TX buffer is flushed once its oldest packet waited this long.
    pub tx_drain_usecs: u32,
    /// Back-off for rounds that find nothing; `None` = spin (the default).
    pub idle: Option<IdleBackoff>,
    /// One RX poll in this many is timed for the histograms (cycles per
    /// burst, RX-to-TX latency); 0 turns timing off.
    pub sample_every: u32,
}

/// `[poll.idle_backoff]`: after `pause_after` idle rounds in a row, `rte_pause()` each
/// round; after `sleep_after`, sleep `sleep_usecs` each round. Any packet resets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleBackoff {
    pub pause_after: u32,
    pub sleep_after: u32,
    pub sleep_usecs: u32,
}

/// One `[[route]]`: packets to `prefix` leave by `port`, to the gateway `via` (its MAC
/// resolved by ARP or neighbour discovery), or to the static MAC `via_mac`, or, with
/// neither, to the destination itself on the port's link (an on-link route, like
/// `ip route add PREFIX dev PORT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// The destination prefix, host bits zero.
    pub prefix: IpNet,
    /// The out port.
    pub port: PortIdx,
    /// The gateway, of the prefix's family, on the port's subnet (or IPv6 link-local).
    pub via: Option<std::net::IpAddr>,
    /// The next hop's MAC, static: with `via`, a PERMANENT neighbour entry for it
    /// (`ip neigh replace VIA lladdr MAC nud permanent`); alone, a next hop that is never
    /// resolved.
    pub via_mac: Option<MacAddr>,
}

impl RouteConfig {
    /// Whether packets on this route need their next hop resolved (no `via_mac`).
    pub fn resolves(&self) -> bool {
        self.via_mac.is_none()
    }
}

/// `[eal]`: how EAL is started (see [`Config::eal_args`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EalConfig {
    /// Where EAL's memory comes from.
    pub memory: EalMemory,
    /// How much EAL reserves at start (`-m`, MiB) when [`EalConfig::memory`] adds it.
    pub memory_mb: u32,
    /// Lcore of the control thread.
    pub main_lcore: u32,
    /// The CPU the main lcore runs on (EAL `--lcores MAIN@CPU`); `None`: the CPU of the same
    /// number.
    pub main_cpu: Option<u32>,
    /// EAL `--file-prefix`: `[A-Za-z0-9_-]+`.
    pub file_prefix: String,
    /// Extra EAL arguments, none of which is derived from the config.
    pub args: Vec<String>,
}

/// `eal.memory`: where EAL's memory comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EalMemory {
    /// Hugepages when enough are free for `eal.memory_mb` (and hugetlbfs is mounted), else
    /// ordinary memory (`--no-huge`); the forwarder says which on its first line. When
    /// `eal.args` name the memory themselves (`--no-huge`, `-m`, `--socket-mem`,
    /// `--in-memory`), they decide and nothing is added.
    #[default]
    Auto,
    /// Hugepages (`-m memory_mb`): EAL fails to start when too few are free.
    Hugepages,
    /// Ordinary memory (`--no-huge -m memory_mb`): no privileges needed, slower (every
    /// packet buffer on 4 KiB pages: the TLB thrashes).
    NoHuge,
}

/// `[pool]`: the mbuf pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Number of mbufs; `None` means "size it by formula at run time".
    pub mbufs: Option<u32>,
    /// Per-lcore cache size.
    pub cache: u32,
    /// Data room per mbuf in bytes, headroom included.
    pub data_room: u16,
    /// Private area per mbuf in bytes, a multiple of 8.
    pub priv_size: u16,
}

/// `forward.mode`: what a worker does with a packet.
///
/// To add a mode, add a variant: its TOML spelling is the lowercased variant
/// name (`L2fwd` is `"l2fwd"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Send every packet out of the pair partner of its RX port, unmodified.
    #[default]
    Io,
    /// As `io`, with source and destination MAC swapped.
    Macswap,
    /// As `io`, with source MAC = the out port's MAC and destination MAC = the out
    /// port's `peer_mac`.
    L2fwd,
    /// IPv4/IPv6 routing by longest-prefix match over `[[route]]`.
    L3fwd,
}

impl Mode {
    /// Whether packets follow `forward.pairs` (every mode but `l3fwd`).
    pub fn uses_pairs(self) -> bool {
        self != Mode::L3fwd
    }

    /// The TOML spelling.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Io => "io",
            Mode::Macswap => "macswap",
            Mode::L2fwd => "l2fwd",
            Mode::L3fwd => "l3fwd",
        }
    }
}

/// `[forward]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardConfig {
    pub mode: Mode,
    /// RX/TX burst size, 1..=32 (the worker's burst array, `mempool::MAX_BURST`).
    pub burst: u16,
    /// Port pairs; traffic goes from one to the other and back. `(a, a)` sends back out
    /// of the same port. A port is in at most one pair.
    pub pairs: Vec<(PortIdx, PortIdx)>,
}

/// `port.device`: what EAL is told to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// A virtual device, created with its devargs once EAL is up (`rte_vdev_init`).
    Vdev {
        /// E.g. `net_null0`; also the ethdev name.
        name: String,
        /// `name` without its trailing instance digits: `net_null0` gives
        /// `net_null`, `net_ring_a` stays `net_ring_a`.
        driver: String,
    },
    /// A PCI device, passed as `-a`.
    Pci {
        /// Normalized `dddd:bb:dd.f`, lowercase, e.g. `0000:03:00.0`.
        addr: String,
    },
}

/// `port.rx_buffer`: how the NIC places received packets in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RxBuffer {
    /// One mbuf per packet (every driver).
    PerPacket,
    /// mlx5 Multi-Packet RQ: several packets per large buffer.
    MultiPacket(Mprq),
}

/// `[port.mprq]`: mlx5 Multi-Packet RQ parameters (mlx5 devargs `mprq_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mprq {
    /// log2 of the number of strides per buffer, 3..=16.
    pub log_stride_num: u8,
    /// log2 of the stride size in bytes, 6..=13.
    pub log_stride_size: u8,
    /// Packets up to this length are copied into a regular mbuf.
    pub max_memcpy_len: u16,
    /// MPRQ is only enabled on ports with at least this many RX queues.
    pub rxqs_min: u16,
}

/// One `[[port]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// Unique, `[A-Za-z0-9_-]+`.
    pub name: String,
    /// Unique across ports.
    pub device: Device,
    /// Device arguments: empty or `key=value[,key=value]...`.
    pub args: String,
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    pub promiscuous: bool,
    /// `None` leaves the device's MTU alone.
    pub mtu: Option<u16>,
    pub rx_buffer: RxBuffer,
    /// `l2fwd`: destination MAC for packets sent out of this port.
    pub peer_mac: Option<MacAddr>,
    /// The forwarder's own IPv4 address and prefix length on this port (`10.0.0.1/24`).
    pub ipv4: Option<Ipv4Net>,
    /// The forwarder's own IPv6 address and prefix length on this port.
    pub ipv6: Option<Ipv6Net>,
    /// Whether packets received on this port have their mbuf chain checked (lengths that
    /// disagree: dropped as `bad_mbuf_chain` before any TX queue sees them). `None` = on
    /// for drivers known to build bad chains ([`crate::port::builds_bad_chains`]).
    pub check_chains: Option<bool>,
    /// The kernel interface (in FRR zebra's network namespace) this port stands for: zebra's
    /// next hops through that interface leave by this port ([`crate::fpm::ports`]).
    pub kernel_name: Option<String>,
}

/// One `[[worker]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Unique, not the main lcore, below [`MAX_LCORES`].
    pub lcore: u32,
    /// The CPU the lcore runs on (EAL `--lcores LCORE@CPU`); `None`: the CPU of the same
    /// number. Two lcores may share a CPU (a sleeping main lcore beside a worker).
    pub cpu: Option<u32>,
    /// RX queues this worker polls; never empty.
    pub rx: Vec<RxQueueRef>,
}

/// One RX queue of one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RxQueueRef {
    /// The port.
    pub port: PortIdx,
    /// Below that port's `rx_queues`.
    pub queue: u16,
}

impl Config {
    /// Reads and validates the config file at `path`.
    ///
    /// # Errors
    /// [`ConfigErrorKind::Io`] if the file cannot be read, otherwise as
    /// [`Config::from_toml_str`] (parse errors then carry the path).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ConfigError::new(path.display().to_string(), ConfigErrorKind::Io(error)))?;
        validate::validate(raw::parse(&text, Some(path))?)
    }

    /// Parses and validates a config from TOML text.
    ///
    /// # Errors
    /// [`ConfigErrorKind::Parse`] for bad TOML, unknown keys and wrong types; any
    /// other kind for a value or cross-reference that fails validation.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        validate::validate(raw::parse(text, None)?)
    }

    /// The control socket's path: `control.socket`, or [`default_socket`] of the file prefix
    /// (`/run/dataplane/<file_prefix>.sock` for root).
    pub fn control_socket(&self) -> std::path::PathBuf {
        self.control.socket.clone().unwrap_or_else(|| default_socket(&self.eal.file_prefix))
    }

    /// The port at `p`.
    ///
    /// # Panics
    /// If `p` is not one of this config's ports (every `PortIdx` in it is).
    pub fn port(&self, p: PortIdx) -> &PortConfig {
        &self.ports[p.index()]
    }

    /// The pair partner of `port`: where packets received on it are sent.
    pub fn out_port(&self, port: PortIdx) -> Option<PortIdx> {
        self.forward.pairs.iter().find_map(|&(a, b)| {
            if a == port {
                Some(b)
            } else if b == port {
                Some(a)
            } else {
                None
            }
        })
    }

    /// Every port a worker may transmit on, in config order: both ends of each pair (pair
    /// modes), each route's port and, in l3fwd, each port with its own addresses (slow-path
    /// replies and neighbour requests leave by it), and the mirror port. Any worker may
    /// send on any of them, so each needs a TX queue per worker (validated); worker `k`
    /// owns TX queue `k` of each.
    pub fn tx_ports(&self) -> Vec<PortIdx> {
        let mode = self.forward.mode;
        PortIdx::all(self.ports.len())
            .filter(|&p| {
                let pc = self.port(p);
                (mode.uses_pairs() && self.out_port(p).is_some())
                    || self.routes.iter().any(|r| r.port == p)
                    || (mode == Mode::L3fwd && (pc.ipv4.is_some() || pc.ipv6.is_some()))
                    || self.mirror.as_ref().is_some_and(|m| m.port == p)
            })
            .collect()
    }
}

/// Where the control socket of the forwarder with EAL file prefix `prefix` is by default:
/// `/run/dataplane/<prefix>.sock` for root; for another user `$XDG_RUNTIME_DIR/dataplane/`,
/// else `/tmp/dataplane-<uid>/` (the forwarder and `dataplane ctl` agree when run by the
/// same user).
pub fn default_socket(prefix: &str) -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
    let dir = if uid == 0 {
        std::path::PathBuf::from("/run/dataplane")
    } else if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty()) {
        std::path::Path::new(&xdg).join("dataplane")
    } else {
        std::path::PathBuf::from(format!("/tmp/dataplane-{uid}"))
    };
    dir.join(format!("{prefix}.sock"))
}

impl Device {
    /// The vdev name or PCI address, as given to EAL.
    pub fn name(&self) -> &str {
        match self {
            Device::Vdev { name, .. } => name,
            Device::Pci { addr } => addr,
        }
    }

    pub fn is_pci(&self) -> bool {
        matches!(self, Device::Pci { .. })
    }
}

impl Mprq {
    /// The mlx5 devargs that enable Multi-Packet RQ with these parameters.
    pub fn devargs(&self) -> String {
        format!(
            "mprq_en=1,mprq_log_stride_num={},mprq_log_stride_size={},mprq_max_memcpy_len={},rxqs_min_mprq={}",
            self.log_stride_num, self.log_stride_size, self.max_memcpy_len, self.rxqs_min
        )
    }
}

impl PortConfig {
    /// `args` plus the MPRQ devargs if any, comma-joined, no leading comma.
    pub fn devargs(&self) -> String {
        let mut items = Vec::new();
        if !self.args.is_empty() {
            items.push(self.args.clone());
        }
        if let RxBuffer::MultiPacket(mprq) = &self.rx_buffer {
            items.push(mprq.devargs());
        }
        items.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn all_shipped_configs_load() {
        for name in ["null.toml", "pcap.toml", "l3fwd.toml", "mlx5.toml", "e1000.toml", "l2fwd-2port.toml", "l3fwd-2port.toml"] {
            load(name);
        }
    }

    #[test]
    fn null_config_is_the_default_setup() {
        let config = load("null.toml");
        assert_eq!(config.ports.len(), 2);
        assert_eq!(config.ports[0].args, "size=64,copy=0");
        assert_eq!(config.forward.pairs, vec![(PortIdx(0), PortIdx(1))]);
        assert_eq!(config.out_port(PortIdx(0)), Some(PortIdx(1)));
        assert_eq!(config.out_port(PortIdx(1)), Some(PortIdx(0)));
        assert_eq!(config.out_port(PortIdx(2)), None);
        // Load and from_toml_str agree.
        let text = std::fs::read_to_string(config_path("null.toml")).unwrap();
        assert_eq!(Config::from_toml_str(&text).unwrap(), config);
    }
}
