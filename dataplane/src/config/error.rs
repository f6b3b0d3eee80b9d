//! [`ConfigError`]: one line, `KEY: problem`, naming the key the problem is at.

use std::path::Path;

/// Why a configuration was refused: the key path the problem is at (`port[1].rx_queues`;
/// the file, or the file, line and column, for reading and TOML errors) and what is wrong.
/// `Display` is one line, `KEY: problem`.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {kind}")]
pub struct ConfigError {
    /// The key path, e.g. `worker[0].rx[1].queue`.
    pub key: String,
    /// What is wrong there.
    pub kind: ConfigErrorKind,
}

impl ConfigError {
    /// An error at `key`.
    pub fn new(key: impl Into<String>, kind: ConfigErrorKind) -> ConfigError {
        ConfigError { key: key.into(), kind }
    }

    /// A TOML error at `line` and `column` of `file` (or of the text given).
    pub(super) fn parse(file: Option<&Path>, line: usize, column: usize, message: String, text: String) -> ConfigError {
        let key = match file {
            Some(path) => format!("{}:{line}:{column}", path.display()),
            None => format!("line {line}, column {column}"),
        };
        ConfigError::new(key, ConfigErrorKind::Parse { message, text })
    }
}

/// What is wrong at a [`ConfigError`]'s key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigErrorKind {
    /// The file could not be read (the key is its path).
    #[error("cannot read config file: {0}")]
    Io(std::io::Error),

    /// The file is not TOML, or does not fit the schema (unknown key, wrong type).
    /// `message` is toml's, flattened to one line.
    #[error("{message} (at `{text}`)")]
    Parse {
        /// toml's message.
        message: String,
        /// The offending source line, trimmed.
        text: String,
    },

    /// Parameters the mbuf pool or the extension-area pool would refuse, in mempool's
    /// own words ([`mempool::PoolParams::check`], [`mempool::ExtParams::check`]).
    #[error("{0}")]
    Pool(String),

    #[error("is required")]
    Missing,

    #[error("at least one {what} is required")]
    Empty { what: &'static str },

    #[error("must be at least {min}, got {got}")]
    TooSmall { min: i64, got: i64 },

    #[error("must be at most {max}, got {got}")]
    TooLarge { max: i64, got: i64 },

    #[error("must be 0 (sized at run time) or at least {min}, got {got}")]
    TooFewMbufs { min: i64, got: i64 },

    #[error("{value:?} is not a valid name (non-empty; letters, digits, '_' and '-' only)")]
    InvalidName { value: String },

    #[error("{arg:?} is derived from {from}; remove it")]
    ForbiddenEalArg { arg: String, from: &'static str },

    #[error("{arg:?} says where EAL's memory comes from, and so does eal.memory = {memory:?}: leave eal.memory at \"auto\" to let the arguments decide, or drop the argument")]
    MemoryTwice { arg: String, memory: super::EalMemory },

    #[error("{value:?} is neither a vdev name (\"net_\" + driver + instance, e.g. net_null0) nor a PCI address (DDDD:BB:DD.F, e.g. 0000:03:00.0)")]
    InvalidDevice { value: String },

    #[error("{value:?}: {problem} (expected key=value items separated by ',')")]
    InvalidDevargs { value: String, problem: String },

    /// `value` is already formatted (quoted if it is a string).
    #[error("{value} is already used by {first}")]
    Duplicate { value: String, first: String },

    #[error("port {name:?} is not defined in [[port]]")]
    UnknownPort { name: String },

    #[error("must be a pair of two port names, got {len}")]
    NotAPair { len: usize },

    #[error("port {name:?} is already in {first}; a port can be in at most one pair")]
    PortInTwoPairs { name: String, first: String },

    #[error("rx queue {queue} of port {port:?} does not exist ({port_key}.rx_queues = {rx_queues})")]
    NoSuchQueue { port: String, queue: i64, port_key: String, rx_queues: u16 },

    #[error("rx queue {queue} of port {port:?} is already polled by {first}")]
    QueuePolledTwice { port: String, queue: u16, first: String },

    #[error("rx queue {queue} of port {port:?} is polled by no [[worker]]")]
    QueueNotPolled { port: String, queue: u16 },

    #[error("port {port:?} is polled but is in no forward.pairs entry, so its packets have nowhere to go")]
    PortNotPaired { port: String },

    #[error("port {port:?} may be sent to by each of the {workers} [[worker]]s (a pair, a route, the mirror or the slow path's replies), each on its own TX queue, so it needs at least {workers}, got {tx_queues}")]
    TooFewTxQueues { port: String, workers: usize, tx_queues: u16 },

    #[error("lcore {lcore} is eal.main_lcore (the control thread); give the worker another lcore")]
    WorkerOnMainLcore { lcore: u32 },

    #[error("multi_packet needs the mlx5 driver (Multi-Packet RQ); device {device:?} is a {driver} vdev")]
    MprqOnVdev { device: String, driver: String },

    #[error("only allowed with rx_buffer = \"multi_packet\"")]
    MprqWithoutMultiPacket,

    #[error("{value:?} is not a MAC address (expected six hex bytes like 02:00:00:00:00:01)")]
    InvalidMac { value: String },

    #[error("{value:?} is not {expected}")]
    InvalidPrefix { value: String, expected: &'static str },

    #[error("{value:?} has host bits set; did you mean \"{suggestion}\"?")]
    HostBitsSet { value: String, suggestion: String },

    #[error("is required with forward.mode = \"{mode}\" ({why})")]
    RequiredByMode { mode: &'static str, why: &'static str },

    #[error("not used with forward.mode = \"{mode}\"; remove it ({why})")]
    NotUsedByMode { mode: &'static str, why: &'static str },

    #[error("{value:?}: {problem} (expected ADDRESS:PORT as in zebra's `fpm address ADDRESS port PORT`, e.g. 127.0.0.1:2620 or [::1]:2620)")]
    InvalidListen { value: String, problem: &'static str },

    #[error("{value:?} is not a Linux interface name (1 to 15 bytes, no '/', ':' or spaces)")]
    InvalidIfname { value: String },

    #[error("{value:?} is not one of {expected}")]
    InvalidChoice { value: String, expected: &'static str },

    #[error("{value:?} is not an IP address and port (e.g. \"127.0.0.1:9111\" or \"[::1]:9111\")")]
    InvalidSocketAddr { value: String },

    #[error("must not be above {other_key} ({value} > {other})")]
    OutOfOrder { value: u32, other_key: String, other: u32 },

    #[error("{value:?} cannot be a gateway: {why}")]
    InvalidGateway { value: String, why: String },

    #[error("resolving this next hop needs an address of its family on port {port:?} ({port_key}): neighbour requests are sent from it")]
    NeedsPortAddress { port: String, port_key: String },
}
