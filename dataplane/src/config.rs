//! The configuration file: TOML in, a validated [`Config`] out.
//!
//! The file (see `configs/*.toml` for commented examples) is read with serde
//! into a private raw layer (`mod raw`) where every table denies unknown keys,
//! then validated into the typed [`Config`] that the rest of the program
//! uses. All of this runs before EAL starts and checks everything that can be
//! checked without probing devices: value ranges, name and device syntax,
//! references between `[[port]]`, `[forward]` and `[[worker]]`, and that every
//! RX queue is polled by exactly one worker.
//!
//! Every error is a [`ConfigError`] whose `Display` is one line starting with
//! the key path, e.g. `port[1].rx_queues: must be at least 1, got 0`.
//!
//! Queue model: worker `k` (its 0-based position in `[[worker]]`) polls the RX
//! queues listed in its `rx`, and sends what it receives on port `p` out of TX
//! queue `k` of [`Config::out_port`]`(p)`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use mempool::accounting::Proto;
use serde::Deserialize;

use crate::net::MacAddr;
use crate::port::PortIdx;

/// Lcore ids must be below EAL's default `RTE_MAX_LCORE`.
pub const MAX_LCORES: u32 = 128;

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

/// One `[[route]]`: packets to `prefix` leave by `port` towards `via_mac`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// The destination prefix, host bits zero.
    pub prefix: IpNet,
    /// The out port.
    pub port: PortIdx,
    /// Destination MAC of the next hop.
    pub via_mac: MacAddr,
}

/// `[eal]`: how EAL is started (see [`Config::eal_args`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EalConfig {
    /// Lcore of the control thread.
    pub main_lcore: u32,
    /// EAL `--file-prefix`: `[A-Za-z0-9_-]+`.
    pub file_prefix: String,
    /// Extra EAL arguments, none of which is derived from the config.
    pub args: Vec<String>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
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
}

/// One `[[worker]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Unique, not the main lcore, below [`MAX_LCORES`].
    pub lcore: u32,
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

/// Why a configuration was refused. `Display` is one line naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read config file: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },

    /// The file is not TOML, or does not fit the schema (unknown key, wrong
    /// type). `message` is toml's, flattened to one line.
    #[error("{}: {message} (at `{text}`)", location(.file.as_deref(), *.line, *.column))]
    Parse {
        file: Option<PathBuf>,
        line: usize,
        column: usize,
        message: String,
        /// The offending source line, trimmed.
        text: String,
    },

    #[error("{key}: is required")]
    Missing { key: String },

    #[error("{key}: at least one {what} is required")]
    Empty { key: String, what: &'static str },

    #[error("{key}: must be at least {min}, got {got}")]
    TooSmall { key: String, min: i64, got: i64 },

    #[error("{key}: must be at most {max}, got {got}")]
    TooLarge { key: String, max: i64, got: i64 },

    #[error("{key}: must be a multiple of {multiple}, got {got}")]
    NotMultiple { key: String, multiple: i64, got: i64 },

    #[error("pool.mbufs: must be 0 (sized at run time) or at least {min}, got {got}")]
    TooFewMbufs { min: i64, got: i64 },

    #[error("pool.cache: {cache} is too large for pool.mbufs = {mbufs} (cache * 3 / 2 must not exceed mbufs)")]
    CacheTooLarge { cache: u32, mbufs: u32 },

    #[error("{key}: {value:?} is not a valid name (non-empty; letters, digits, '_' and '-' only)")]
    InvalidName { key: String, value: String },

    #[error("{key}: {arg:?} is derived from {from}; remove it")]
    ForbiddenEalArg { key: String, arg: String, from: &'static str },

    #[error("{key}: {value:?} is neither a vdev name (\"net_\" + driver + instance, e.g. net_null0) nor a PCI address (DDDD:BB:DD.F, e.g. 0000:03:00.0)")]
    InvalidDevice { key: String, value: String },

    #[error("{key}: {value:?}: {problem} (expected key=value items separated by ',')")]
    InvalidDevargs { key: String, value: String, problem: String },

    /// `value` is already formatted (quoted if it is a string).
    #[error("{key}: {value} is already used by {first}")]
    Duplicate { key: String, value: String, first: String },

    #[error("{key}: port {name:?} is not defined in [[port]]")]
    UnknownPort { key: String, name: String },

    #[error("{key}: must be a pair of two port names, got {len}")]
    NotAPair { key: String, len: usize },

    #[error("{key}: port {name:?} is already in {first}; a port can be in at most one pair")]
    PortInTwoPairs { key: String, name: String, first: String },

    #[error("{key}: rx queue {queue} of port {port:?} does not exist ({port_key}.rx_queues = {rx_queues})")]
    NoSuchQueue { key: String, port: String, queue: i64, port_key: String, rx_queues: u16 },

    #[error("{key}: rx queue {queue} of port {port:?} is already polled by {first}")]
    QueuePolledTwice { key: String, port: String, queue: u16, first: String },

    #[error("{key}: rx queue {queue} of port {port:?} is polled by no [[worker]]")]
    QueueNotPolled { key: String, port: String, queue: u16 },

    #[error("{key}: port {port:?} is polled but is in no forward.pairs entry, so its packets have nowhere to go")]
    PortNotPaired { key: String, port: String },

    #[error("{key}: port {port:?} may be sent to by each of the {workers} [[worker]]s (a pair, a route, the mirror or the slow path's replies), each on its own TX queue, so it needs at least {workers}, got {tx_queues}")]
    TooFewTxQueues { key: String, port: String, workers: usize, tx_queues: u16 },

    #[error("{key}: lcore {lcore} is eal.main_lcore (the control thread); give the worker another lcore")]
    WorkerOnMainLcore { key: String, lcore: u32 },

    #[error("{key}: multi_packet needs the mlx5 driver (Multi-Packet RQ); device {device:?} is a {driver} vdev")]
    MprqOnVdev { key: String, device: String, driver: String },

    #[error("{key}: only allowed with rx_buffer = \"multi_packet\"")]
    MprqWithoutMultiPacket { key: String },

    #[error("{key}: {value:?} is not a MAC address (expected six hex bytes like 02:00:00:00:00:01)")]
    InvalidMac { key: String, value: String },

    #[error("{key}: {value:?} is not {expected}")]
    InvalidPrefix { key: String, value: String, expected: &'static str },

    #[error("{key}: {value:?} has host bits set; did you mean \"{suggestion}\"?")]
    HostBitsSet { key: String, value: String, suggestion: String },

    #[error("{key}: is required with forward.mode = \"{mode}\" ({why})")]
    RequiredByMode { key: String, mode: &'static str, why: &'static str },

    #[error("{key}: not used with forward.mode = \"{mode}\"; remove it ({why})")]
    NotUsedByMode { key: String, mode: &'static str, why: &'static str },

    #[error("{key}: {value:?} is not one of {expected}")]
    InvalidChoice { key: String, value: String, expected: &'static str },

    #[error("{key}: must not be above {other_key} ({value} > {other})")]
    OutOfOrder { key: String, value: u32, other_key: String, other: u32 },
}

fn location(file: Option<&Path>, line: usize, column: usize) -> String {
    match file {
        Some(path) => format!("{}:{line}:{column}", path.display()),
        None => format!("line {line}, column {column}"),
    }
}

impl Config {
    /// Reads and validates the config file at `path`.
    ///
    /// # Errors
    /// [`ConfigError::Io`] if the file cannot be read, otherwise as
    /// [`Config::from_toml_str`] (parse errors then carry the path).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Io { path: path.to_owned(), error })?;
        validate(parse(&text, Some(path))?)
    }

    /// Parses and validates a config from TOML text.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] for bad TOML, unknown keys and wrong types; any
    /// other variant for a value or cross-reference that fails validation.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        validate(parse(text, None)?)
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

    /// The argv for `rte_eal_init`: `program`, the lcore list, main lcore,
    /// file prefix, one `-a` per PCI port (with its [`PortConfig::devargs`]);
    /// vdevs are not here: the forwarder creates them after EAL start-up so that
    /// a bad one is reported against its port. `--no-pci` if no port is a PCI
    /// device, then `eal.args`, then `extra` (from the command line).
    pub fn eal_args(&self, program: &str, extra: &[String]) -> Vec<String> {
        let mut lcores: Vec<u32> = self.workers.iter().map(|w| w.lcore).collect();
        lcores.push(self.eal.main_lcore);
        lcores.sort_unstable();
        let lcores: Vec<String> = lcores.iter().map(u32::to_string).collect();

        let mut args = vec![
            program.to_owned(),
            "-l".to_owned(),
            lcores.join(","),
            "--main-lcore".to_owned(),
            self.eal.main_lcore.to_string(),
            "--file-prefix".to_owned(),
            self.eal.file_prefix.clone(),
        ];
        for port in &self.ports {
            if let Device::Pci { addr } = &port.device {
                args.push("-a".to_owned());
                args.push(with_devargs(addr, &port.devargs()));
            }
        }
        if !self.ports.iter().any(|p| p.device.is_pci()) {
            args.push("--no-pci".to_owned());
        }
        args.extend(self.eal.args.iter().cloned());
        args.extend(extra.iter().cloned());
        args
    }
}

fn with_devargs(device: &str, devargs: &str) -> String {
    if devargs.is_empty() {
        device.to_owned()
    } else {
        format!("{device},{devargs}")
    }
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

/// What serde reads. Integers are `i64` (TOML's integer type) so that range
/// errors come from [`validate`] with a key path; required keys are `Option`
/// for the same reason. `Default` impls hold the documented defaults.
mod raw {
    use serde::Deserialize;

    use super::Mode;

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct File {
        pub eal: Eal,
        pub pool: Pool,
        pub forward: Forward,
        pub poll: Poll,
        pub port: Vec<Port>,
        pub worker: Vec<Worker>,
        pub route: Vec<Route>,
        pub extensions: Extensions,
        pub mirror: Option<Mirror>,
        pub accounting: Option<Accounting>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct Accounting {
        pub batch_pages: i64,
        pub backlog: i64,
        pub backlog_under_pressure: i64,
        pub backlog_bypass: bool,
        pub punt_bypass: bool,
        pub port_budget: i64,
        pub slow_path_budget: i64,
        pub tcp: Option<Limits>,
        pub udp: Option<Limits>,
        pub icmp: Option<Limits>,
        pub other: Option<Limits>,
    }

    impl Default for Accounting {
        fn default() -> Self {
            Accounting {
                batch_pages: 64,
                backlog: 512,
                backlog_under_pressure: 64,
                backlog_bypass: false,
                punt_bypass: true,
                port_budget: 0,
                slow_path_budget: 4 << 20,
                tcp: None,
                udp: None,
                icmp: None,
                other: None,
            }
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Limits {
        pub min: i64,
        pub pressure: i64,
        pub max: i64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct Extensions {
        pub trace_every: i64,
        pub flow: bool,
        pub areas: i64,
    }

    impl Default for Extensions {
        fn default() -> Self {
            Extensions { trace_every: 0, flow: false, areas: 8191 }
        }
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct Mirror {
        pub port: Option<String>,
        pub proto: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct Poll {
        pub budget: i64,
        pub budget_usecs: i64,
        pub tx_drain_usecs: i64,
        pub sample_every: i64,
        pub idle_backoff: Option<IdleBackoff>,
    }

    impl Default for Poll {
        fn default() -> Self {
            Poll { budget: 300, budget_usecs: 2000, tx_drain_usecs: 100, sample_every: 16, idle_backoff: None }
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct IdleBackoff {
        pub pause_after: i64,
        pub sleep_after: i64,
        pub sleep_usecs: i64,
    }

    impl Default for IdleBackoff {
        fn default() -> Self {
            IdleBackoff { pause_after: 16, sleep_after: 1024, sleep_usecs: 50 }
        }
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct Route {
        pub prefix: Option<String>,
        pub port: Option<String>,
        pub via_mac: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct Eal {
        pub main_lcore: i64,
        pub file_prefix: String,
        pub args: Vec<String>,
    }

    impl Default for Eal {
        fn default() -> Self {
            Eal { main_lcore: 0, file_prefix: "dataplane".to_owned(), args: Vec::new() }
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct Pool {
        pub mbufs: i64,
        pub cache: i64,
        pub data_room: i64,
        pub priv_size: i64,
    }

    impl Default for Pool {
        fn default() -> Self {
            Pool { mbufs: 0, cache: 256, data_room: 2176, priv_size: 0 }
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct Forward {
        pub mode: Mode,
        pub burst: i64,
        /// `Vec`, not `[String; 2]`: serde would silently drop a third name.
        pub pairs: Vec<Vec<String>>,
    }

    impl Default for Forward {
        fn default() -> Self {
            Forward { mode: Mode::Io, burst: 32, pairs: Vec::new() }
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum RxBuffer {
        #[default]
        PerPacket,
        MultiPacket,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct Port {
        pub name: Option<String>,
        pub device: Option<String>,
        pub args: String,
        pub rx_queues: i64,
        pub tx_queues: i64,
        pub rx_desc: i64,
        pub tx_desc: i64,
        pub promiscuous: bool,
        pub mtu: Option<i64>,
        pub rx_buffer: RxBuffer,
        pub mprq: Option<Mprq>,
        pub peer_mac: Option<String>,
        pub ipv4: Option<String>,
        pub ipv6: Option<String>,
        pub check_chains: Option<bool>,
    }

    impl Default for Port {
        fn default() -> Self {
            Port {
                name: None,
                device: None,
                args: String::new(),
                rx_queues: 1,
                tx_queues: 1,
                rx_desc: 1024,
                tx_desc: 1024,
                promiscuous: true,
                mtu: None,
                rx_buffer: RxBuffer::PerPacket,
                mprq: None,
                peer_mac: None,
                ipv4: None,
                ipv6: None,
                check_chains: None,
            }
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct Mprq {
        pub log_stride_num: i64,
        pub log_stride_size: i64,
        pub max_memcpy_len: i64,
        pub rxqs_min: i64,
    }

    impl Default for Mprq {
        fn default() -> Self {
            Mprq { log_stride_num: 6, log_stride_size: 11, max_memcpy_len: 128, rxqs_min: 1 }
        }
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct Worker {
        pub lcore: Option<i64>,
        pub rx: Vec<RxRef>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct RxRef {
        pub port: Option<String>,
        pub queue: Option<i64>,
    }
}

/// TOML text to the raw layer; errors keep toml's message on one line.
fn parse(text: &str, file: Option<&Path>) -> Result<raw::File, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let start = e.span().map_or(0, |span| span.start).min(text.len());
        let before = text.get(..start).unwrap_or("");
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_text = text[line_start..].lines().next().unwrap_or("");
        ConfigError::Parse {
            file: file.map(Path::to_owned),
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            message: e.message().trim().replace('\n', "; "),
            text: line_text.trim().to_owned(),
        }
    })
}

/// Checks the raw config and builds the typed one.
fn validate(raw: raw::File) -> Result<Config, ConfigError> {
    let eal = validate_eal(raw.eal)?;
    let pool = validate_pool(raw.pool)?;
    let ports = validate_ports(raw.port)?;
    let forward = validate_forward(raw.forward, &ports)?;
    let poll = validate_poll(raw.poll)?;
    let workers = validate_workers(raw.worker, &eal, &ports)?;
    let routes = validate_routes(raw.route, &ports)?;
    let extensions = ExtensionsConfig {
        trace_every: int("extensions.trace_every", raw.extensions.trace_every, 0, 1_000_000)?,
        flow: raw.extensions.flow,
        areas: int("extensions.areas", raw.extensions.areas, 64, 1 << 24)?,
    };
    let mirror = raw.mirror.map(|m| validate_mirror(m, &ports)).transpose()?;
    let accounting = raw.accounting.map(validate_accounting).transpose()?;
    let config = Config { eal, pool, forward, poll, ports, workers, routes, extensions, mirror, accounting };
    check_traffic(&config)?;
    Ok(config)
}

fn validate_eal(raw: raw::Eal) -> Result<EalConfig, ConfigError> {
    let main_lcore = int("eal.main_lcore", raw.main_lcore, 0, i64::from(MAX_LCORES) - 1)?;
    check_name("eal.file_prefix", &raw.file_prefix)?;
    for (i, arg) in raw.args.iter().enumerate() {
        if let Some(from) = derived_eal_option(arg) {
            return Err(ConfigError::ForbiddenEalArg { key: format!("eal.args[{i}]"), arg: arg.clone(), from });
        }
    }
    Ok(EalConfig { main_lcore, file_prefix: raw.file_prefix, args: raw.args })
}

fn validate_pool(raw: raw::Pool) -> Result<PoolConfig, ConfigError> {
    const MIN_MBUFS: i64 = 1024;
    let mbufs = match raw.mbufs {
        0 => None,
        n if n < MIN_MBUFS => return Err(ConfigError::TooFewMbufs { min: MIN_MBUFS, got: n }),
        n => Some(int("pool.mbufs", n, MIN_MBUFS, i64::from(u32::MAX))?),
    };
    let cache: u32 = int("pool.cache", raw.cache, 0, 512)?;
    // DPDK's rte_mempool_create rule. Unreachable with today's bounds
    // (cache <= 512, mbufs >= 1024); kept so the rule survives new bounds.
    if let Some(mbufs) = mbufs {
        if u64::from(cache) * 3 / 2 > u64::from(mbufs) {
            return Err(ConfigError::CacheTooLarge { cache, mbufs });
        }
    }
    let data_room = int("pool.data_room", raw.data_room, 256, 65535)?;
    let priv_size = int("pool.priv_size", raw.priv_size, 0, 65535)?;
    if priv_size % 8 != 0 {
        return Err(ConfigError::NotMultiple { key: "pool.priv_size".to_owned(), multiple: 8, got: raw.priv_size });
    }
    Ok(PoolConfig { mbufs, cache, data_room, priv_size })
}

fn validate_ports(raw: Vec<raw::Port>) -> Result<Vec<PortConfig>, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::Empty { key: "port".to_owned(), what: "[[port]] table" });
    }
    let mut ports: Vec<PortConfig> = Vec::with_capacity(raw.len());
    for (i, raw_port) in raw.into_iter().enumerate() {
        let port = validate_port(i, raw_port)?;
        if let Some(j) = ports.iter().position(|p| p.name == port.name) {
            return Err(ConfigError::Duplicate {
                key: format!("port[{i}].name"),
                value: format!("{:?}", port.name),
                first: format!("port[{j}]"),
            });
        }
        if let Some(j) = ports.iter().position(|p| p.device == port.device) {
            return Err(ConfigError::Duplicate {
                key: format!("port[{i}].device"),
                value: format!("{:?}", port.device.name()),
                first: format!("port[{j}]"),
            });
        }
        ports.push(port);
    }
    Ok(ports)
}

fn validate_port(i: usize, raw: raw::Port) -> Result<PortConfig, ConfigError> {
    let key = |field: &str| format!("port[{i}].{field}");

    let name = raw.name.ok_or_else(|| ConfigError::Missing { key: key("name") })?;
    check_name(&key("name"), &name)?;
    let device_str = raw.device.ok_or_else(|| ConfigError::Missing { key: key("device") })?;
    let device = parse_device(&device_str).ok_or_else(|| ConfigError::InvalidDevice { key: key("device"), value: device_str })?;
    if let Err(problem) = check_devargs(&raw.args) {
        return Err(ConfigError::InvalidDevargs { key: key("args"), value: raw.args, problem });
    }

    let rx_buffer = match (raw.rx_buffer, raw.mprq) {
        (raw::RxBuffer::PerPacket, None) => RxBuffer::PerPacket,
        (raw::RxBuffer::PerPacket, Some(_)) => return Err(ConfigError::MprqWithoutMultiPacket { key: key("mprq") }),
        (raw::RxBuffer::MultiPacket, mprq) => {
            if let Device::Vdev { name, driver } = &device {
                return Err(ConfigError::MprqOnVdev { key: key("rx_buffer"), device: name.clone(), driver: driver.clone() });
            }
            RxBuffer::MultiPacket(validate_mprq(i, mprq.unwrap_or_default())?)
        }
    };

    Ok(PortConfig {
        name,
        device,
        args: raw.args,
        rx_queues: int(&key("rx_queues"), raw.rx_queues, 1, 64)?,
        tx_queues: int(&key("tx_queues"), raw.tx_queues, 1, 64)?,
        rx_desc: int(&key("rx_desc"), raw.rx_desc, 32, 32768)?,
        tx_desc: int(&key("tx_desc"), raw.tx_desc, 32, 32768)?,
        promiscuous: raw.promiscuous,
        mtu: raw.mtu.map(|mtu| int(&key("mtu"), mtu, 68, 9600)).transpose()?,
        rx_buffer,
        peer_mac: raw.peer_mac.map(|m| parse_mac(&key("peer_mac"), &m)).transpose()?,
        ipv4: raw
            .ipv4
            .map(|a| {
                a.parse::<Ipv4Net>().map_err(|_| ConfigError::InvalidPrefix {
                    key: key("ipv4"),
                    value: a,
                    expected: "an IPv4 address with prefix length, like 10.0.0.1/24",
                })
            })
            .transpose()?,
        ipv6: raw
            .ipv6
            .map(|a| {
                a.parse::<Ipv6Net>().map_err(|_| ConfigError::InvalidPrefix {
                    key: key("ipv6"),
                    value: a,
                    expected: "an IPv6 address with prefix length, like 2001:db8::1/64",
                })
            })
            .transpose()?,
        check_chains: raw.check_chains,
    })
}

fn validate_poll(raw: raw::Poll) -> Result<PollConfig, ConfigError> {
    let idle = match raw.idle_backoff {
        None => None,
        Some(b) => {
            let pause_after = int("poll.idle_backoff.pause_after", b.pause_after, 1, i64::from(u32::MAX))?;
            let sleep_after = int("poll.idle_backoff.sleep_after", b.sleep_after, 1, i64::from(u32::MAX))?;
            if pause_after > sleep_after {
                return Err(ConfigError::OutOfOrder {
                    key: "poll.idle_backoff.pause_after".to_owned(),
                    value: pause_after,
                    other_key: "poll.idle_backoff.sleep_after".to_owned(),
                    other: sleep_after,
                });
            }
            Some(IdleBackoff {
                pause_after,
                sleep_after,
                sleep_usecs: int("poll.idle_backoff.sleep_usecs", b.sleep_usecs, 1, 1_000_000)?,
            })
        }
    };
    Ok(PollConfig {
        budget: int("poll.budget", raw.budget, 1, 1_000_000)?,
        budget_usecs: int("poll.budget_usecs", raw.budget_usecs, 1, 1_000_000)?,
        tx_drain_usecs: int("poll.tx_drain_usecs", raw.tx_drain_usecs, 0, 1_000_000)?,
        sample_every: int("poll.sample_every", raw.sample_every, 0, 1_000_000)?,
        idle,
    })
}

fn validate_accounting(raw: raw::Accounting) -> Result<AccountingConf, ConfigError> {
    use mempool::accounting::ProtoLimits;
    let limits = |name: &'static str, l: Option<raw::Limits>| -> Result<ProtoLimits, ConfigError> {
        let Some(l) = l else { return Ok(ProtoLimits::DEFAULT) };
        let key = |f: &str| format!("accounting.{name}.{f}");
        let min: u32 = int(&key("min"), l.min, 0, i64::from(u32::MAX))?;
        let pressure: u32 = int(&key("pressure"), l.pressure, 0, i64::from(u32::MAX))?;
        let max: u32 = int(&key("max"), l.max, 1, i64::from(u32::MAX))?;
        if min > pressure {
            return Err(ConfigError::OutOfOrder { key: key("min"), value: min, other_key: key("pressure"), other: pressure });
        }
        if pressure > max {
            return Err(ConfigError::OutOfOrder { key: key("pressure"), value: pressure, other_key: key("max"), other: max });
        }
        Ok(ProtoLimits { min: min.into(), pressure: pressure.into(), max: max.into() })
    };
    let backlog = int("accounting.backlog", raw.backlog, 0, 1 << 20)?;
    let backlog_under_pressure = int("accounting.backlog_under_pressure", raw.backlog_under_pressure, 0, 1 << 20)?;
    if backlog_under_pressure > backlog {
        return Err(ConfigError::OutOfOrder {
            key: "accounting.backlog_under_pressure".to_owned(),
            value: backlog_under_pressure,
            other_key: "accounting.backlog".to_owned(),
            other: backlog,
        });
    }
    Ok(AccountingConf {
        limits: [limits("tcp", raw.tcp)?, limits("udp", raw.udp)?, limits("icmp", raw.icmp)?, limits("other", raw.other)?],
        batch_pages: int("accounting.batch_pages", raw.batch_pages, 0, 1 << 20)?,
        backlog,
        backlog_under_pressure,
        backlog_bypass: raw.backlog_bypass,
        punt_bypass: raw.punt_bypass,
        port_budget: int("accounting.port_budget", raw.port_budget, 0, i64::MAX)?,
        slow_path_budget: int("accounting.slow_path_budget", raw.slow_path_budget, 0, i64::MAX)?,
    })
}

fn validate_mirror(raw: raw::Mirror, ports: &[PortConfig]) -> Result<MirrorConfig, ConfigError> {
    let name = raw.port.ok_or_else(|| ConfigError::Missing { key: "mirror.port".to_owned() })?;
    let port = port_index(ports, &name, "mirror.port".to_owned())?;
    let proto = match raw.proto.as_deref().unwrap_or("any") {
        "any" => None,
        name => Some(Proto::from_name(name).ok_or_else(|| ConfigError::InvalidChoice {
            key: "mirror.proto".to_owned(),
            value: name.to_owned(),
            expected: "any, tcp, udp, icmp or other",
        })?),
    };
    Ok(MirrorConfig { port, proto })
}

fn validate_routes(raw: Vec<raw::Route>, ports: &[PortConfig]) -> Result<Vec<RouteConfig>, ConfigError> {
    let mut routes: Vec<RouteConfig> = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("route[{i}].{field}");
        let text = r.prefix.ok_or_else(|| ConfigError::Missing { key: key("prefix") })?;
        let prefix = parse_prefix(&key("prefix"), &text)?;
        let port_name = r.port.ok_or_else(|| ConfigError::Missing { key: key("port") })?;
        let port = port_index(ports, &port_name, key("port"))?;
        let mac = r.via_mac.ok_or_else(|| ConfigError::Missing { key: key("via_mac") })?;
        let via_mac = parse_mac(&key("via_mac"), &mac)?;
        if let Some(j) = routes.iter().position(|other| other.prefix == prefix) {
            return Err(ConfigError::Duplicate { key: key("prefix"), value: prefix.to_string(), first: format!("route[{j}]") });
        }
        routes.push(RouteConfig { prefix, port, via_mac });
    }
    Ok(routes)
}

/// `aa:bb:cc:dd:ee:ff` (or with `-`).
fn parse_mac(key: &str, s: &str) -> Result<MacAddr, ConfigError> {
    s.parse().map_err(|_| ConfigError::InvalidMac { key: key.to_owned(), value: s.to_owned() })
}

/// A route's `ADDR/LEN`, IPv4 or IPv6, with its host bits clear.
fn parse_prefix(key: &str, s: &str) -> Result<IpNet, ConfigError> {
    let net: IpNet = s.parse().map_err(|_| ConfigError::InvalidPrefix {
        key: key.to_owned(),
        value: s.to_owned(),
        expected: "an address with a prefix length, like 10.1.0.0/16 or 2001:db8::/32",
    })?;
    if net.trunc() != net {
        return Err(ConfigError::HostBitsSet { key: key.to_owned(), value: s.to_owned(), suggestion: net.trunc().to_string() });
    }
    Ok(net)
}

fn validate_mprq(i: usize, raw: raw::Mprq) -> Result<Mprq, ConfigError> {
    let key = |field: &str| format!("port[{i}].mprq.{field}");
    Ok(Mprq {
        log_stride_num: int(&key("log_stride_num"), raw.log_stride_num, 3, 16)?,
        log_stride_size: int(&key("log_stride_size"), raw.log_stride_size, 6, 13)?,
        max_memcpy_len: int(&key("max_memcpy_len"), raw.max_memcpy_len, 0, 65535)?,
        rxqs_min: int(&key("rxqs_min"), raw.rxqs_min, 1, 64)?,
    })
}

fn validate_forward(raw: raw::Forward, ports: &[PortConfig]) -> Result<ForwardConfig, ConfigError> {
    let burst = int("forward.burst", raw.burst, 1, mempool::MAX_BURST as i64)?;
    let mut pairs = Vec::with_capacity(raw.pairs.len());
    // Port index -> the pair it is in, for the "at most one pair" check.
    let mut paired: HashMap<PortIdx, usize> = HashMap::new();
    for (p, names) in raw.pairs.iter().enumerate() {
        let [a, b] = names.as_slice() else {
            return Err(ConfigError::NotAPair { key: format!("forward.pairs[{p}]"), len: names.len() });
        };
        let a = port_index(ports, a, format!("forward.pairs[{p}][0]"))?;
        let b = port_index(ports, b, format!("forward.pairs[{p}][1]"))?;
        for (side, port) in [(0, a), (1, b)] {
            if side == 1 && b == a {
                break; // [a, a]: a port paired with itself
            }
            if let Some(first) = paired.insert(port, p) {
                return Err(ConfigError::PortInTwoPairs {
                    key: format!("forward.pairs[{p}][{side}]"),
                    name: ports[port.index()].name.clone(),
                    first: format!("forward.pairs[{first}]"),
                });
            }
        }
        pairs.push((a, b));
    }
    Ok(ForwardConfig { mode: raw.mode, burst, pairs })
}

fn validate_workers(raw: Vec<raw::Worker>, eal: &EalConfig, ports: &[PortConfig]) -> Result<Vec<WorkerConfig>, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::Empty { key: "worker".to_owned(), what: "[[worker]] table" });
    }
    let mut workers: Vec<WorkerConfig> = Vec::with_capacity(raw.len());
    // Which worker rx entry polls each queue, for the "exactly once" check.
    let mut polled_by: HashMap<RxQueueRef, String> = HashMap::new();
    for (w, raw_worker) in raw.into_iter().enumerate() {
        let key = format!("worker[{w}].lcore");
        let lcore = raw_worker.lcore.ok_or_else(|| ConfigError::Missing { key: key.clone() })?;
        let lcore: u32 = int(&key, lcore, 0, i64::from(MAX_LCORES) - 1)?;
        if lcore == eal.main_lcore {
            return Err(ConfigError::WorkerOnMainLcore { key, lcore });
        }
        if let Some(first) = workers.iter().position(|other| other.lcore == lcore) {
            return Err(ConfigError::Duplicate { key, value: lcore.to_string(), first: format!("worker[{first}]") });
        }

        if raw_worker.rx.is_empty() {
            return Err(ConfigError::Empty { key: format!("worker[{w}].rx"), what: "{ port, queue } entry" });
        }
        let mut rx = Vec::with_capacity(raw_worker.rx.len());
        for (j, raw_ref) in raw_worker.rx.into_iter().enumerate() {
            let here = format!("worker[{w}].rx[{j}]");
            let queue_ref = validate_rx_ref(&here, raw_ref, ports)?;
            if let Some(first) = polled_by.insert(queue_ref, here.clone()) {
                return Err(ConfigError::QueuePolledTwice {
                    key: here,
                    port: ports[queue_ref.port.index()].name.clone(),
                    queue: queue_ref.queue,
                    first,
                });
            }
            rx.push(queue_ref);
        }
        workers.push(WorkerConfig { lcore, rx });
    }
    Ok(workers)
}

/// One `{ port, queue }` entry of a worker's `rx`; `here` is its key path.
fn validate_rx_ref(here: &str, raw: raw::RxRef, ports: &[PortConfig]) -> Result<RxQueueRef, ConfigError> {
    let port_key = format!("{here}.port");
    let queue_key = format!("{here}.queue");
    let name = raw.port.ok_or_else(|| ConfigError::Missing { key: port_key.clone() })?;
    let queue = raw.queue.ok_or_else(|| ConfigError::Missing { key: queue_key.clone() })?;
    let port = port_index(ports, &name, port_key)?;
    let rx_queues = ports[port.index()].rx_queues;
    if queue < 0 {
        return Err(ConfigError::TooSmall { key: queue_key, min: 0, got: queue });
    }
    if queue >= i64::from(rx_queues) {
        return Err(ConfigError::NoSuchQueue { key: queue_key, port: name, queue, port_key: port.to_string(), rx_queues });
    }
    Ok(RxQueueRef { port, queue: int(&queue_key, queue, 0, 65535)? })
}

/// Cross checks once everything is resolved: every RX queue is polled, every
/// polled port has somewhere to send, every sent-to port has a TX queue per
/// worker.
fn check_traffic(config: &Config) -> Result<(), ConfigError> {
    let mode = config.forward.mode;
    if mode.uses_pairs() && !config.routes.is_empty() {
        return Err(ConfigError::NotUsedByMode { key: "route[0]".to_owned(), mode: mode.name(), why: "only l3fwd routes" });
    }
    if !mode.uses_pairs() && !config.forward.pairs.is_empty() {
        return Err(ConfigError::NotUsedByMode {
            key: "forward.pairs".to_owned(),
            mode: mode.name(),
            why: "l3fwd sends by [[route]]",
        });
    }
    if config.mirror.is_some() && mode == Mode::Io {
        return Err(ConfigError::NotUsedByMode {
            key: "mirror".to_owned(),
            mode: mode.name(),
            why: "io moves whole bursts without looking at packets; use macswap, l2fwd or l3fwd",
        });
    }
    if mode == Mode::L2fwd {
        for (i, port) in PortIdx::all(config.ports.len()).zip(&config.ports) {
            if config.out_port(i).is_some() && port.peer_mac.is_none() {
                return Err(ConfigError::RequiredByMode {
                    key: format!("{i}.peer_mac"),
                    mode: mode.name(),
                    why: "the destination MAC of packets sent out of this port",
                });
            }
        }
    }
    for (w, worker) in config.workers.iter().enumerate() {
        for (j, queue_ref) in worker.rx.iter().enumerate() {
            if mode.uses_pairs() && config.out_port(queue_ref.port).is_none() {
                return Err(ConfigError::PortNotPaired {
                    key: format!("worker[{w}].rx[{j}].port"),
                    port: config.ports[queue_ref.port.index()].name.clone(),
                });
            }
        }
    }
    for (i, port) in PortIdx::all(config.ports.len()).zip(&config.ports) {
        for queue in 0..port.rx_queues {
            let queue_ref = RxQueueRef { port: i, queue };
            if !config.workers.iter().any(|w| w.rx.contains(&queue_ref)) {
                return Err(ConfigError::QueueNotPolled { key: format!("{i}.rx_queues"), port: port.name.clone(), queue });
            }
        }
    }
    // Every worker may send on every port in tx_ports (pairs, routes, slow-path replies,
    // mirror); worker k owns TX queue k of each.
    let workers = config.workers.len();
    for i in config.tx_ports() {
        let port = config.port(i);
        if usize::from(port.tx_queues) < workers {
            return Err(ConfigError::TooFewTxQueues {
                key: format!("{i}.tx_queues"),
                port: port.name.clone(),
                workers,
                tx_queues: port.tx_queues,
            });
        }
    }
    Ok(())
}

/// `got` as a `T`, if within `min..=max`.
fn int<T: TryFrom<i64>>(key: &str, got: i64, min: i64, max: i64) -> Result<T, ConfigError> {
    if got < min {
        return Err(ConfigError::TooSmall { key: key.to_owned(), min, got });
    }
    if got > max {
        return Err(ConfigError::TooLarge { key: key.to_owned(), max, got });
    }
    // Cannot fail when min..=max fits in T, as at every call site.
    T::try_from(got).map_err(|_| ConfigError::TooLarge { key: key.to_owned(), max, got })
}

fn port_index(ports: &[PortConfig], name: &str, key: String) -> Result<PortIdx, ConfigError> {
    let i = ports.iter().position(|p| p.name == name).ok_or_else(|| ConfigError::UnknownPort { key, name: name.to_owned() })?;
    Ok(PortIdx(i as u16))
}

/// Names (ports, file prefix): non-empty `[A-Za-z0-9_-]+`.
fn check_name(key: &str, value: &str) -> Result<(), ConfigError> {
    let ok = !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::InvalidName { key: key.to_owned(), value: value.to_owned() })
    }
}

/// A vdev name (`net_` + a lowercase letter + `[a-z0-9_]*`) or a PCI address
/// (`DDDD:BB:DD.F` or `BB:DD.F`, hex).
fn parse_device(s: &str) -> Option<Device> {
    if let Some(rest) = s.strip_prefix("net_") {
        let ok = rest.starts_with(|c: char| c.is_ascii_lowercase())
            && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return None;
        }
        let driver = s.trim_end_matches(|c: char| c.is_ascii_digit());
        return Some(Device::Vdev { name: s.to_owned(), driver: driver.to_owned() });
    }
    parse_pci(s).map(|addr| Device::Pci { addr })
}

/// `DDDD:BB:DD.F` or `BB:DD.F` (hex) to lowercase `dddd:bb:dd.f`.
fn parse_pci(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (domain, bus, dev_fn) = match parts.as_slice() {
        [domain, bus, dev_fn] => (*domain, *bus, *dev_fn),
        [bus, dev_fn] => ("0000", *bus, *dev_fn),
        _ => return None,
    };
    let (dev, func) = dev_fn.split_once('.')?;
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !(hex(domain, 4) && hex(bus, 2) && hex(dev, 2) && hex(func, 1)) {
        return None;
    }
    // A device number has 5 bits, a function number 3.
    if u8::from_str_radix(dev, 16).ok()? > 0x1f || u8::from_str_radix(func, 16).ok()? > 7 {
        return None;
    }
    Some(format!("{domain}:{bus}:{dev}.{func}").to_ascii_lowercase())
}

/// Device arguments: empty, or `key=value` items separated by `,`, with key
/// `[A-Za-z0-9_-]+` (memif's `socket-abstract` has a dash) and a non-empty value
/// without whitespace. On error, says
/// what is wrong.
fn check_devargs(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    for (n, item) in s.split(',').enumerate() {
        let n = n + 1;
        let Some((key, value)) = item.split_once('=') else {
            return Err(if item.is_empty() { format!("item {n} is empty") } else { format!("item {n} ({item:?}) has no '='") });
        };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(format!("item {n}: key {key:?} must be letters, digits, '_' and '-'"));
        }
        if value.is_empty() {
            return Err(format!("item {n}: {key} has an empty value"));
        }
        if value.contains(char::is_whitespace) {
            return Err(format!("item {n}: value of {key} contains whitespace"));
        }
    }
    Ok(())
}

/// EAL options the dataplane derives from the config, and from where.
const DERIVED_EAL_OPTIONS: &[(&str, &str)] = &[
    ("-l", "eal.main_lcore and [[worker]] lcore"),
    ("--lcores", "eal.main_lcore and [[worker]] lcore"),
    ("-c", "eal.main_lcore and [[worker]] lcore"),
    ("--main-lcore", "eal.main_lcore"),
    ("--file-prefix", "eal.file_prefix"),
    ("--vdev", "[[port]] device"),
    ("-a", "[[port]] device"),
    ("--allow", "[[port]] device"),
    ("-b", "[[port]] device"),
    ("--block", "[[port]] device"),
    ("--no-pci", "[[port]] device (added when no port is a PCI device)"),
];

/// Where `arg` is derived from, if it is one of [`DERIVED_EAL_OPTIONS`], in
/// any spelling getopt accepts: `--vdev`, `--vdev=x`, the unambiguous prefix
/// `--vd`, `-l`, `-l1,2`.
fn derived_eal_option(arg: &str) -> Option<&'static str> {
    let name = arg.split_once('=').map_or(arg, |(name, _)| name);
    DERIVED_EAL_OPTIONS
        .iter()
        .find(|(option, _)| {
            if option.starts_with("--") {
                name.len() > 2 && option.starts_with(name)
            } else {
                arg.starts_with(option) && !arg.starts_with("--")
            }
        })
        .map(|&(_, from)| from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_path(name: &str) -> PathBuf {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs")).join(name)
    }

    fn load(name: &str) -> Config {
        let path = config_path(name);
        Config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|&s| s.to_owned()).collect()
    }

    const PORTS: &str = r#"
[[port]]
name = "null0"
device = "net_null0"

[[port]]
name = "null1"
device = "net_null1"
"#;
    const PAIR: &str = "[forward]\npairs = [[\"null0\", \"null1\"]]\n";
    const WORKER: &str = r#"
[[worker]]
lcore = 1
rx = [{ port = "null0", queue = 0 }, { port = "null1", queue = 0 }]
"#;

    fn valid() -> String {
        format!("{PAIR}{PORTS}{WORKER}")
    }

    #[test]
    fn minimal_config_gets_the_documented_defaults() {
        let config = Config::from_toml_str(&valid()).unwrap();
        assert_eq!(config.eal, EalConfig { main_lcore: 0, file_prefix: "dataplane".into(), args: vec![] });
        assert_eq!(config.pool, PoolConfig { mbufs: None, cache: 256, data_room: 2176, priv_size: 0 });
        assert_eq!(config.forward, ForwardConfig { mode: Mode::Io, burst: 32, pairs: vec![(PortIdx(0), PortIdx(1))] });
        assert_eq!(
            config.ports[1],
            PortConfig {
                name: "null1".into(),
                device: Device::Vdev { name: "net_null1".into(), driver: "net_null".into() },
                args: String::new(),
                rx_queues: 1,
                tx_queues: 1,
                rx_desc: 1024,
                tx_desc: 1024,
                promiscuous: true,
                mtu: None,
                rx_buffer: RxBuffer::PerPacket,
                peer_mac: None,
                ipv4: None,
                ipv6: None,
                check_chains: None,
            }
        );
        assert_eq!(
            config.workers,
            vec![WorkerConfig {
                lcore: 1,
                rx: vec![RxQueueRef { port: PortIdx(0), queue: 0 }, RxQueueRef { port: PortIdx(1), queue: 0 }]
            }]
        );
    }

    #[test]
    fn spelled_out_defaults_equal_omitted_ones() {
        let explicit = r#"
[eal]
main_lcore = 0
file_prefix = "dataplane"
args = []

[pool]
mbufs = 0
cache = 256
data_room = 2176
priv_size = 0

[forward]
mode = "io"
burst = 32
pairs = [["null0", "null1"]]

[[port]]
name = "null0"
device = "net_null0"
args = ""
rx_queues = 1
tx_queues = 1
rx_desc = 1024
tx_desc = 1024
promiscuous = true
rx_buffer = "per_packet"

[[port]]
name = "null1"
device = "net_null1"

[[worker]]
lcore = 1
rx = [{ port = "null0", queue = 0 }, { port = "null1", queue = 0 }]
"#;
        assert_eq!(Config::from_toml_str(explicit).unwrap(), Config::from_toml_str(&valid()).unwrap());
    }

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

    #[test]
    fn eal_args_for_null_config() {
        let config = load("null.toml");
        assert_eq!(
            config.eal_args("dataplane", &strings(&["--log-level", "lib.eal:debug"])),
            strings(&[
                "dataplane",
                "-l",
                "0,1",
                "--main-lcore",
                "0",
                "--file-prefix",
                "dataplane",
                "--no-pci",
                "--no-huge",
                "-m",
                "512",
                "--log-level",
                "lib.eal:debug",
            ])
        );
    }

    #[test]
    fn eal_args_for_pci_config() {
        let config = Config::from_toml_str(
            r#"
[eal]
main_lcore = 3

[forward]
pairs = [["p0", "p1"], ["v", "v"]]

[[port]]
name = "p0"
device = "03:00.0"
args = "txq_inline_max=128"
rx_buffer = "multi_packet"
[port.mprq]
log_stride_num = 5

[[port]]
name = "p1"
device = "0000:03:00.1"

[[port]]
name = "v"
device = "net_ring_a"

[[worker]]
lcore = 2
rx = [{ port = "p0", queue = 0 }, { port = "p1", queue = 0 }, { port = "v", queue = 0 }]
"#,
        )
        .unwrap();
        assert_eq!(config.ports[0].device, Device::Pci { addr: "0000:03:00.0".into() });
        assert_eq!(config.ports[2].device, Device::Vdev { name: "net_ring_a".into(), driver: "net_ring_a".into() });
        assert_eq!(config.out_port(PortIdx(2)), Some(PortIdx(2)));
        let args = config.eal_args("dp", &[]);
        assert_eq!(
            args,
            strings(&[
                "dp",
                "-l",
                "2,3",
                "--main-lcore",
                "3",
                "--file-prefix",
                "dataplane",
                "-a",
                "0000:03:00.0,txq_inline_max=128,mprq_en=1,mprq_log_stride_num=5,\
                 mprq_log_stride_size=11,mprq_max_memcpy_len=128,rxqs_min_mprq=1",
                "-a",
                "0000:03:00.1",
            ])
        );
        assert!(!args.contains(&"--no-pci".to_string()));
    }

    #[test]
    fn mlx5_template_enables_mprq() {
        let config = load("mlx5.toml");
        assert_eq!(config.workers.len(), 2);
        let args = config.eal_args("dataplane", &[]);
        assert!(!args.contains(&"--no-pci".to_string()));
        assert!(args.contains(&"-l".to_string()) && args.contains(&"0,1,2".to_string()));
        let a = args.iter().position(|s| s == "-a").unwrap();
        assert!(args[a + 1].starts_with("0000:03:00.0,"), "{}", args[a + 1]);
        assert!(args[a + 1].contains("mprq_en=1"), "{}", args[a + 1]);
    }

    #[test]
    fn device_syntax() {
        let vdev = |name: &str, driver: &str| Some(Device::Vdev { name: name.into(), driver: driver.into() });
        let pci = |addr: &str| Some(Device::Pci { addr: addr.into() });
        assert_eq!(parse_device("net_null0"), vdev("net_null0", "net_null"));
        assert_eq!(parse_device("net_af_packet12"), vdev("net_af_packet12", "net_af_packet"));
        assert_eq!(parse_device("0000:03:00.0"), pci("0000:03:00.0"));
        assert_eq!(parse_device("AB:1F.7"), pci("0000:ab:1f.7"));
        for bad in [
            "",
            "net_",
            "net_0",
            "net_Null0",
            "net null0",
            "net_null0,copy=1",
            "foo",
            "03:00",
            "3:00.0",
            "0000:03:20.0",
            "0000:03:00.8",
            "0000:03:00.0,x=1",
            "00000:03:00.0",
            "g0:00.0",
        ] {
            assert_eq!(parse_device(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn devargs_syntax() {
        for good in ["", "size=64", "size=64,copy=0", "rx_pcap=/tmp/a=b.pcap", "socket-abstract=no"] {
            assert_eq!(check_devargs(good), Ok(()), "{good:?}");
        }
        for bad in ["copy", "a=1,,b=2", ",a=1", "a=1,", "=1", "a=", "a b=1", "a=x y", "a.b=1"] {
            assert!(check_devargs(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parse_errors_are_one_line_with_position() {
        let err = Config::from_toml_str("[forward]\nburst = \n").unwrap_err();
        let msg = err.to_string();
        assert!(!msg.contains('\n'), "{msg}");
        assert!(msg.starts_with("line 2, column 9: "), "{msg}");

        let path = config_path("no-such-config.toml");
        let msg = Config::load(&path).unwrap_err().to_string();
        assert!(msg.contains("no-such-config.toml"), "{msg}");
    }

    /// Replaces the `[[port]]` tables of `valid()`.
    fn with_ports(ports: &str) -> String {
        format!("{PAIR}{ports}{WORKER}")
    }

    /// Replaces the `[[worker]]` tables of `valid()`.
    fn with_workers(workers: &str) -> String {
        format!("{PAIR}{PORTS}{workers}")
    }

    /// `valid()` with `extra` added to port null0 (it is followed by null1).
    fn with_port0(extra: &str) -> String {
        with_ports(&PORTS.replacen("device = \"net_null0\"\n", &format!("device = \"net_null0\"\n{extra}\n"), 1))
    }

    /// `valid()` with `extra` added to port null1 (the last port).
    fn with_port1(extra: &str) -> String {
        format!("{PAIR}{PORTS}{extra}\n{WORKER}")
    }

    #[test]
    fn bad_configs_name_the_key() {
        let two_workers = |extra: &str| {
            with_workers(&format!(
                r#"
[[worker]]
lcore = 1
rx = [{{ port = "null0", queue = 0 }}, {{ port = "null1", queue = 0 }}]
[[worker]]
lcore = 2
rx = [{{ port = "null0", queue = 1 }}, {{ port = "null1", queue = 1 }}]
{extra}"#
            ))
            .replace("device = \"net_null0\"", "device = \"net_null0\"\nrx_queues = 2")
            .replace("device = \"net_null1\"", "device = \"net_null1\"\nrx_queues = 2")
        };
        let cases: Vec<(&str, String, &str)> = vec![
            ("unknown top-level key", format!("bogus = 1\n{}", valid()), "unknown field `bogus`"),
            ("unknown key in [[port]]", with_port0("colour = \"red\""), "unknown field `colour`"),
            ("unknown key in [pool]", format!("{}[pool]\nmbuf = 1\n", valid()), "unknown field `mbuf`"),
            ("wrong type", format!("[eal]\nmain_lcore = \"0\"\n{}", valid()), "main_lcore = \"0\""),
            ("unknown mode", valid().replace("[forward]\n", "[forward]\nmode = \"warp\"\n"), "unknown variant `warp`"),
            ("zero rx queues", with_port1("rx_queues = 0"), "port[1].rx_queues: must be at least 1, got 0"),
            ("too many tx queues", with_port0("tx_queues = 65"), "port[0].tx_queues: must be at most 64, got 65"),
            ("tiny rx ring", with_port0("rx_desc = 16"), "port[0].rx_desc: must be at least 32"),
            ("mtu", with_port0("mtu = 9601"), "port[0].mtu: must be at most 9600"),
            (
                "pair with missing port",
                valid().replace(r#"["null0", "null1"]"#, r#"["null0", "null9"]"#),
                r#"forward.pairs[0][1]: port "null9" is not defined in [[port]]"#,
            ),
            (
                "port in two pairs",
                valid().replace(r#"[["null0", "null1"]]"#, r#"[["null0", "null1"], ["null1", "null1"]]"#),
                r#"forward.pairs[1][0]: port "null1" is already in forward.pairs[0]"#,
            ),
            (
                "pair of three",
                valid().replace(r#"["null0", "null1"]"#, r#"["null0", "null1", "null0"]"#),
                "forward.pairs[0]: must be a pair of two port names, got 3",
            ),
            ("device with space", with_ports(&PORTS.replace("net_null1", "net null1")), "port[1].device"),
            ("device with args", with_ports(&PORTS.replace("net_null1", "net_null1,copy=1")), "port[1].device"),
            ("device foo", with_ports(&PORTS.replace("net_null1", "foo")), "port[1].device"),
            ("missing device", with_ports(&PORTS.replace("device = \"net_null1\"", "")), "port[1].device: is required"),
            ("args without value", with_port0("args = \"copy\""), "port[0].args"),
            ("args with empty item", with_port0("args = \"a=1,,b=2\""), "port[0].args"),
            ("duplicate port name", with_ports(&PORTS.replace("null1", "null0")), r#"port[1].name: "null0" is already used by port[0]"#),
            ("bad port name", with_ports(&PORTS.replace("name = \"null1\"", "name = \"null 1\"")), "port[1].name"),
            ("duplicate device", with_ports(&PORTS.replace("net_null1", "net_null0")), "port[1].device: \"net_null0\" is already used by port[0]"),
            (
                "queue out of range",
                with_workers(&WORKER.replace(r#"port = "null1", queue = 0"#, r#"port = "null1", queue = 1"#)),
                "worker[0].rx[1].queue: rx queue 1 of port \"null1\" does not exist (port[1].rx_queues = 1)",
            ),
            (
                "negative queue",
                with_workers(&WORKER.replace(r#"port = "null1", queue = 0"#, r#"port = "null1", queue = -1"#)),
                "worker[0].rx[1].queue: must be at least 0",
            ),
            (
                "queue polled twice",
                with_workers(&format!("{WORKER}[[worker]]\nlcore = 2\nrx = [{{ port = \"null1\", queue = 0 }}]\n")),
                "worker[1].rx[0]: rx queue 0 of port \"null1\" is already polled by worker[0].rx[1]",
            ),
            (
                "queue polled by nobody",
                with_port1("rx_queues = 2\ntx_queues = 2"),
                "port[1].rx_queues: rx queue 1 of port \"null1\" is polled by no [[worker]]",
            ),
            (
                "polled port in no pair",
                format!("{PAIR}{PORTS}[[port]]\nname = \"null2\"\ndevice = \"net_null2\"\n{}", WORKER.replace(
                    "queue = 0 }]",
                    r#"queue = 0 }, { port = "null2", queue = 0 }]"#,
                )),
                "worker[0].rx[2].port: port \"null2\" is polled but is in no forward.pairs entry",
            ),
            ("too few tx queues", two_workers(""), "port[0].tx_queues: port \"null0\" may be sent to by each of the 2 [[worker]]s"),
            (
                "too few tx queues for the slow path's replies",
                two_workers("[[route]]\nprefix = \"10.0.0.0/8\"\nport = \"null0\"\nvia_mac = \"02:00:00:00:00:01\"\n")
                    .replace("[forward]\npairs = [[\"null0\", \"null1\"]]\n", "[forward]\nmode = \"l3fwd\"\n")
                    .replace("device = \"net_null0\"\n", "device = \"net_null0\"\ntx_queues = 2\n")
                    .replace("device = \"net_null1\"\n", "device = \"net_null1\"\nipv4 = \"10.1.0.1/24\"\n"),
                "port[1].tx_queues: port \"null1\" may be sent to by each of the 2 [[worker]]s",
            ),
            ("worker on main lcore", with_workers(&WORKER.replace("lcore = 1", "lcore = 0")), "worker[0].lcore: lcore 0 is eal.main_lcore"),
            ("worker lcore too big", with_workers(&WORKER.replace("lcore = 1", "lcore = 128")), "worker[0].lcore: must be at most 127"),
            (
                "duplicate worker lcore",
                two_workers("").replace("lcore = 2", "lcore = 1"),
                "worker[1].lcore: 1 is already used by worker[0]",
            ),
            ("worker without rx", with_workers("[[worker]]\nlcore = 1\n"), "worker[0].rx: at least one"),
            ("worker without lcore", with_workers(&WORKER.replace("lcore = 1", "")), "worker[0].lcore: is required"),
            (
                "multi_packet on a vdev",
                with_port0("rx_buffer = \"multi_packet\""),
                "port[0].rx_buffer: multi_packet needs the mlx5 driver (Multi-Packet RQ); device \"net_null0\" is a net_null vdev",
            ),
            ("mprq with per_packet", with_port1("[port.mprq]\nrxqs_min = 1"), "port[1].mprq: only allowed with rx_buffer = \"multi_packet\""),
            ("cache too big", format!("{}[pool]\nmbufs = 1024\ncache = 513\n", valid()), "pool.cache: must be at most 512, got 513"),
            ("too few mbufs", format!("{}[pool]\nmbufs = 1000\n", valid()), "pool.mbufs: must be 0 (sized at run time) or at least 1024, got 1000"),
            ("priv_size not aligned", format!("{}[pool]\npriv_size = 12\n", valid()), "pool.priv_size: must be a multiple of 8, got 12"),
            ("data_room too small", format!("{}[pool]\ndata_room = 128\n", valid()), "pool.data_room: must be at least 256"),
            ("bad file prefix", format!("[eal]\nfile_prefix = \"a/b\"\n{}", valid()), "eal.file_prefix"),
            ("empty file prefix", format!("[eal]\nfile_prefix = \"\"\n{}", valid()), "eal.file_prefix"),
            (
                "forbidden --vdev",
                format!("[eal]\nargs = [\"--no-huge\", \"--vdev\", \"net_null2\"]\n{}", valid()),
                "eal.args[1]: \"--vdev\" is derived from [[port]] device",
            ),
            ("forbidden --vdev=", format!("[eal]\nargs = [\"--vdev=net_null0\"]\n{}", valid()), "eal.args[0]"),
            ("forbidden -l1,2", format!("[eal]\nargs = [\"-l1,2\"]\n{}", valid()), "eal.args[0]"),
            ("forbidden --file", format!("[eal]\nargs = [\"--file\", \"x\"]\n{}", valid()), "eal.args[0]"),
            ("forbidden --no-pci", format!("[eal]\nargs = [\"-m\", \"512\", \"--no-pci\"]\n{}", valid()), "eal.args[2]"),
            ("burst 0", valid().replace("[forward]\n", "[forward]\nburst = 0\n"), "forward.burst: must be at least 1, got 0"),
            ("burst 33", valid().replace("[forward]\n", "[forward]\nburst = 33\n"), "forward.burst: must be at most 32, got 33"),
            ("accounting min > pressure", format!("{}[accounting]\ntcp = {{ min = 9, pressure = 4, max = 10 }}\n", valid()), "accounting.tcp.min: must not be above accounting.tcp.pressure (9 > 4)"),
            ("accounting pressure > max", format!("{}[accounting]\nudp = {{ min = 1, pressure = 40, max = 10 }}\n", valid()), "accounting.udp.pressure: must not be above accounting.udp.max"),
            ("accounting backlog order", format!("{}[accounting]\nbacklog = 8\nbacklog_under_pressure = 9\n", valid()), "accounting.backlog_under_pressure"),
            ("accounting unknown key", format!("{}[accounting]\nbogus = 1\n", valid()), "unknown field `bogus`"),
            ("mirror proto", format!("{}[mirror]\nport = \"null1\"\nproto = \"sctp\"\n", valid().replace("[forward]\n", "[forward]\nmode = \"macswap\"\n")), "mirror.proto: \"sctp\" is not one of any, tcp, udp, icmp or other"),
            ("mirror in io", format!("{}[mirror]\nport = \"null1\"\n", valid()), "mirror: not used with forward.mode = \"io\""),
            ("mirror port missing", format!("{}[mirror]\nport = \"nope\"\n", valid()), "mirror.port: port \"nope\" is not defined"),
            ("route outside l3fwd", format!("{}[[route]]\nprefix = \"10.0.0.0/8\"\nport = \"null0\"\nvia_mac = \"02:00:00:00:00:01\"\n", valid()), "route[0]: not used with forward.mode = \"io\""),
            ("route host bits", format!("{}[[route]]\nprefix = \"10.1.2.3/16\"\nport = \"null0\"\nvia_mac = \"02:00:00:00:00:01\"\n", valid()), "did you mean \"10.1.0.0/16\""),
            ("bad via_mac", format!("{}[[route]]\nprefix = \"10.0.0.0/8\"\nport = \"null0\"\nvia_mac = \"02:00\"\n", valid()), "route[0].via_mac"),
            ("l2fwd without peer_mac", valid().replace("[forward]\n", "[forward]\nmode = \"l2fwd\"\n"), "peer_mac: is required with forward.mode = \"l2fwd\""),
            ("idle backoff order", format!("{}[poll.idle_backoff]\npause_after = 100\nsleep_after = 10\n", valid()), "poll.idle_backoff.pause_after"),
            ("no [[port]]", format!("{PAIR}{WORKER}"), "port: at least one [[port]] table is required"),
            ("no [[worker]]", format!("{PAIR}{PORTS}"), "worker: at least one [[worker]] table is required"),
        ];
        for (what, text, expected) in cases {
            match Config::from_toml_str(&text) {
                Ok(_) => panic!("{what}: accepted\n{text}"),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains(expected), "{what}: {msg:?} does not contain {expected:?}\n{text}");
                    assert!(!msg.contains('\n'), "{what}: not one line: {msg:?}");
                }
            }
        }
    }

    #[test]
    fn harmless_eal_args_pass() {
        for arg in ["--no-huge", "-m", "512", "--in-memory", "--log-level=lib.eal:debug", "-n", "4", "--no-telemetry"] {
            assert_eq!(derived_eal_option(arg), None, "{arg}");
        }
    }

    #[test]
    fn two_workers_with_enough_tx_queues() {
        let text = valid()
            .replace("device = \"net_null0\"", "device = \"net_null0\"\nrx_queues = 2\ntx_queues = 2")
            .replace("device = \"net_null1\"", "device = \"net_null1\"\nrx_queues = 2\ntx_queues = 2")
            + "[[worker]]\nlcore = 5\nrx = [{ port = \"null1\", queue = 1 }, { port = \"null0\", queue = 1 }]\n";
        let config = Config::from_toml_str(&text).unwrap();
        assert_eq!(config.eal_args("x", &[])[2], "0,1,5");
    }
}
