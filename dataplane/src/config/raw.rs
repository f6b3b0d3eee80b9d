//! What serde reads. Integers are `i64` (TOML's integer type) so that range errors come
//! from validation with a key path; required keys are `Option` for the same reason.
//! `Default` impls hold the documented defaults (`configs/null.toml` lists them).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Mode};

#[derive(Debug, Default, Deserialize, Serialize)]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<Mirror>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accounting: Option<Accounting>,
    pub neighbour: Neighbour,
    pub fib: Fib,
    pub control: Control,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fpm: Option<Fpm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
}

/// `[neighbour]`: Linux's sysctl names and units (`net.ipv4.neigh.default.*`), Linux's defaults.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Neighbour {
    pub base_reachable_time_ms: i64,
    pub retrans_time_ms: i64,
    pub delay_first_probe_time: i64,
    pub mcast_solicit: i64,
    pub ucast_solicit: i64,
    pub mcast_resolicit: i64,
    pub unres_qlen: i64,
    pub unres_qlen_under_pressure: i64,
    pub gc_stale_time: i64,
    pub gc_thresh1: i64,
    pub gc_thresh2: i64,
    pub gc_thresh3: i64,
    pub arp_notify: bool,
    pub ndisc_notify: bool,
}

impl Default for Neighbour {
    fn default() -> Self {
        let p = crate::neigh::NeighParams::LINUX;
        Neighbour {
            base_reachable_time_ms: p.base_reachable_time.as_millis() as i64,
            retrans_time_ms: p.retrans_time.as_millis() as i64,
            delay_first_probe_time: p.delay_first_probe_time.as_secs() as i64,
            mcast_solicit: p.mcast_solicit.into(),
            ucast_solicit: p.ucast_solicit.into(),
            mcast_resolicit: p.mcast_resolicit.into(),
            unres_qlen: p.unres_qlen.into(),
            unres_qlen_under_pressure: p.unres_qlen_under_pressure.into(),
            gc_stale_time: p.gc_stale_time.as_secs() as i64,
            gc_thresh1: p.gc_thresh1.into(),
            gc_thresh2: p.gc_thresh2.into(),
            gc_thresh3: p.gc_thresh3.into(),
            arp_notify: p.arp_notify,
            ndisc_notify: p.ndisc_notify,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Fpm {
    pub listen: String,
    pub sweep_after_ms: i64,
    pub replay_quiet_ms: i64,
}

impl Default for Fpm {
    fn default() -> Self {
        Fpm { listen: format!("127.0.0.1:{}", crate::fpm::DEFAULT_PORT), sweep_after_ms: 10_000, replay_quiet_ms: 1_000 }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    pub listen: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics { listen: "127.0.0.1:9111".to_owned() }
    }
}

/// `[fib]`: the route tables' capacities.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Fib {
    pub ipv4_max_routes: i64,
    pub ipv4_tbl8_groups: i64,
    pub ipv6_max_routes: i64,
    pub ipv6_tbl8_groups: i64,
    pub max_next_hops: i64,
}

impl Default for Fib {
    fn default() -> Self {
        Fib {
            ipv4_max_routes: 1 << 20,
            ipv4_tbl8_groups: 1 << 16,
            ipv6_max_routes: 1 << 16,
            ipv6_tbl8_groups: 1 << 15,
            max_next_hops: 1 << 16,
        }
    }
}

/// `[control]`: the control socket.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Control {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    pub max_clients: i64,
    pub idle_timeout_ms: i64,
    pub max_request_bytes: i64,
}

impl Default for Control {
    fn default() -> Self {
        Control { socket: None, max_clients: 64, idle_timeout_ms: 30_000, max_request_bytes: 128 << 20 }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Accounting {
    pub batch_pages: i64,
    pub backlog: i64,
    pub backlog_under_pressure: i64,
    pub backlog_bypass: bool,
    pub punt_bypass: bool,
    pub port_budget: i64,
    pub slow_path_budget: i64,
    pub neigh_queue_bypass: bool,
    pub neigh_queue_budget: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<Limits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub udp: Option<Limits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp: Option<Limits>,
    #[serde(skip_serializing_if = "Option::is_none")]
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
            neigh_queue_bypass: false,
            neigh_queue_budget: 2 << 20,
            tcp: None,
            udp: None,
            icmp: None,
            other: None,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub min: i64,
    pub pressure: i64,
    pub max: i64,
}

#[derive(Debug, Deserialize, Serialize)]
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

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mirror {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Poll {
    pub budget: i64,
    pub budget_usecs: i64,
    pub tx_drain_usecs: i64,
    pub sample_every: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_backoff: Option<IdleBackoff>,
}

impl Default for Poll {
    fn default() -> Self {
        Poll { budget: 300, budget_usecs: 2000, tx_drain_usecs: 100, sample_every: 16, idle_backoff: None }
    }
}

#[derive(Debug, Deserialize, Serialize)]
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

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Route {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_mac: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Eal {
    pub memory: super::EalMemory,
    pub memory_mb: i64,
    pub main_lcore: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_cpu: Option<i64>,
    pub file_prefix: String,
    pub args: Vec<String>,
}

impl Default for Eal {
    fn default() -> Self {
        Eal {
            memory: super::EalMemory::Auto,
            memory_mb: 512,
            main_lcore: 0,
            main_cpu: None,
            file_prefix: "dataplane".to_owned(),
            args: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
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

#[derive(Debug, Deserialize, Serialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RxBuffer {
    #[default]
    PerPacket,
    MultiPacket,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Port {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    pub args: String,
    pub rx_queues: i64,
    pub tx_queues: i64,
    pub rx_desc: i64,
    pub tx_desc: i64,
    pub promiscuous: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<i64>,
    pub rx_buffer: RxBuffer,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mprq: Option<Mprq>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_chains: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_name: Option<String>,
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
            kernel_name: None,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
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

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Worker {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lcore: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i64>,
    pub rx: Vec<RxRef>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RxRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<i64>,
}

/// TOML text to the raw layer; errors keep toml's message on one line.
pub(super) fn parse(text: &str, file: Option<&Path>) -> Result<File, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let start = e.span().map_or(0, |span| span.start).min(text.len());
        let before = text.get(..start).unwrap_or("");
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_text = text[line_start..].lines().next().unwrap_or("");
        ConfigError::parse(
            file,
            before.matches('\n').count() + 1,
            before[line_start..].chars().count() + 1,
            e.message().trim().replace('\n', "; "),
            line_text.trim().to_owned(),
        )
    })
}

#[cfg(test)]
mod tests {
    use crate::config::fixtures::*;
    use crate::config::Config;

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
    fn parse_errors_are_one_line_with_position() {
        let err = Config::from_toml_str("[forward]\nburst = \n").unwrap_err();
        let msg = err.to_string();
        assert!(!msg.contains('\n'), "{msg}");
        assert!(msg.starts_with("line 2, column 9: "), "{msg}");

        let path = config_path("no-such-config.toml");
        let msg = Config::load(&path).unwrap_err().to_string();
        assert!(msg.contains("no-such-config.toml"), "{msg}");
    }
}
