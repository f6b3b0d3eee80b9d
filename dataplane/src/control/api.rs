//! The control API's schema, shared by the server and `dataplane ctl` (docs/control-api.md).
//!
//! A request is one JSON object on one line: `{"version": 1, "command": "route_add",
//! "args": {"prefix": "10.1.0.0/16", "port": "p1", "via_mac": "02:00:00:00:01:01"}}`
//! (`args` may be left out when a command takes none). Every request gets exactly one
//! reply line: `{"ok": VALUE}` or `{"error": {"code": CODE, "message": TEXT, "key": KEY}}`,
//! where `key` names the field at fault (`args.prefix`, `route[3].port`) or is null.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;

/// A command and its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::VariantNames)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[strum(serialize_all = "snake_case")]
pub enum Command {
    /// Version, mode, uptime, socket.
    ShowStatus {},
    /// Ports: link, speed, counters, and with `xstats` the PMD's extended counters.
    ShowPorts {
        /// Include `rte_eth_xstats_get`'s counters.
        #[serde(default)]
        xstats: bool,
    },
    /// Per worker lcore: softnet counters and drops by reason.
    ShowWorkers {},
    /// RX-to-TX latency and per-burst cycles percentiles.
    ShowLatency {},
    /// Mempool occupancy.
    ShowPools {},
    /// Memory accounts (protocols, groups).
    ShowMemory {},
    /// Routes with next hop and origin, and the table summary.
    ShowRoutes {
        /// `ipv4` or `ipv6`: only that family.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        family: Option<String>,
        /// Only routes of this origin (`config`, `ctl`, `connected`, `neighbour`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<String>,
    },
    /// Next hops in use.
    ShowNextHops {},
    /// The neighbour table (ARP and neighbour discovery): entries with their state, like
    /// `ip neigh`, and its counters, like `ip -s ntable`.
    ShowNeighbours {},
    /// The running config (start-up config and every live change) as TOML.
    ShowConfig {},
    /// Add a route; refused if one exists for the prefix.
    RouteAdd(RouteArgs),
    /// Add a route or replace the one with the same prefix (no gap in forwarding).
    RouteReplace(RouteArgs),
    /// Delete a route.
    RouteDel {
        /// The prefix, host bits zero.
        prefix: String,
    },
    /// `rte_eth_dev_set_link_up`.
    PortUp {
        /// Config name of the port.
        port: String,
    },
    /// `rte_eth_dev_set_link_down`.
    PortDown {
        /// Config name of the port.
        port: String,
    },
    /// Zero the workers', ports' and slow path's counters.
    ClearCounters {},
    /// Move the running config to `config` (TOML text): validated as at start-up, applied
    /// as one change or refused naming the key that needs a restart.
    Apply {
        /// The new config, as TOML.
        config: String,
        /// Only report what would change.
        #[serde(default)]
        dry_run: bool,
    },
    /// Stop as on SIGTERM (workers stop, ports close, leak checks).
    Shutdown {},
}

impl Command {
    /// The wire name (`route_add`).
    pub fn name(&self) -> &'static str {
        self.into()
    }

    /// Every command's wire name.
    pub const NAMES: &'static [&'static str] = <Self as strum::VariantNames>::VARIANTS;

    /// Whether it changes the forwarder (refused while an apply is in progress).
    pub fn writes(&self) -> bool {
        matches!(
            self,
            Command::RouteAdd(_) | Command::RouteReplace(_) | Command::RouteDel { .. } | Command::Apply { dry_run: false, .. }
        )
    }
}

/// A route's arguments: the next hop as in a config's `[[route]]`: `via` (a gateway,
/// resolved by ARP / neighbour discovery), `via_mac` (a static MAC; with `via`, a static
/// neighbour entry for it), or neither (on-link).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteArgs {
    /// The prefix, host bits zero: `10.1.0.0/16`, `2001:db8::/32`.
    pub prefix: String,
    /// Config name of the out port.
    pub port: String,
    /// The gateway's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// The next hop's MAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_mac: Option<String>,
}

/// A request line: serialises as `{"version": V, "command": NAME, "args": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// [`VERSION`].
    pub version: u32,
    /// The command.
    pub command: Command,
}

impl Serialize for Request {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // Serde's external tagging gives {NAME: ARGS}; the wire has them as two fields.
        let tagged = serde_json::to_value(&self.command).map_err(serde::ser::Error::custom)?;
        let (name, args) =
            tagged.as_object().and_then(|o| o.iter().next()).ok_or_else(|| serde::ser::Error::custom("a command"))?;
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("version", &self.version)?;
        m.serialize_entry("command", name)?;
        m.serialize_entry("args", args)?;
        m.end()
    }
}

/// An error reply's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}{message}", key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default())]
pub struct ApiError {
    /// What kind of error (see [`code`]).
    pub code: String,
    /// One line for people.
    pub message: String,
    /// The field at fault, if one is.
    pub key: Option<String>,
}

/// Error codes.
pub mod code {
    /// The line is not JSON.
    pub const BAD_JSON: &str = "bad_json";
    /// JSON, but not a request of this schema (missing or unknown field, wrong type).
    pub const BAD_REQUEST: &str = "bad_request";
    /// A `version` this server does not speak.
    pub const UNSUPPORTED_VERSION: &str = "unsupported_version";
    /// No such command.
    pub const UNKNOWN_COMMAND: &str = "unknown_command";
    /// A value that does not fit (a prefix with host bits set, a port that does not exist).
    pub const INVALID: &str = "invalid";
    /// The thing to change does not exist (a route to delete).
    pub const NOT_FOUND: &str = "not_found";
    /// It exists already (`route add` of a prefix with a route).
    pub const EXISTS: &str = "exists";
    /// A table is full; nothing was added.
    pub const TABLE_FULL: &str = "table_full";
    /// `apply` of a change only a restart can make.
    pub const NEEDS_RESTART: &str = "needs_restart";
    /// Another change is in progress, or too many clients.
    pub const BUSY: &str = "busy";
    /// The request line is longer than `control.max_request_bytes`.
    pub const LINE_TOO_LONG: &str = "line_too_long";
    /// Nothing was received for `control.idle_timeout_ms`.
    pub const TIMEOUT: &str = "timeout";
    /// Not possible in this mode or with this driver.
    pub const NOT_SUPPORTED: &str = "not_supported";
    /// Anything else.
    pub const INTERNAL: &str = "internal";
}

impl ApiError {
    /// An error with a code, a message and maybe a key.
    pub fn new(code: &str, message: impl Into<String>, key: Option<&str>) -> ApiError {
        ApiError { code: code.to_owned(), message: message.into(), key: key.map(str::to_owned) }
    }
}

/// A reply line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// Success, with the command's result.
    Ok(Value),
    /// Failure.
    Error(ApiError),
}

impl From<Result<Value, ApiError>> for Reply {
    fn from(r: Result<Value, ApiError>) -> Reply {
        match r {
            Ok(v) => Reply::Ok(v),
            Err(e) => Reply::Error(e),
        }
    }
}

/// Parses one request line, naming the field at fault.
///
/// # Errors
/// `bad_json`, `bad_request`, `unsupported_version` or `unknown_command`.
pub fn parse_request(line: &str) -> Result<Command, ApiError> {
    let value: Value = serde_json::from_str(line)
        .map_err(|e| ApiError::new(code::BAD_JSON, format!("not JSON: {e} (one JSON object per line)"), None))?;
    let Value::Object(mut obj) = value else {
        return Err(ApiError::new(code::BAD_REQUEST, "a request is a JSON object", None));
    };
    match obj.remove("version") {
        None => {
            return Err(ApiError::new(code::BAD_REQUEST, format!("is required (this server speaks {VERSION})"), Some("version")))
        }
        Some(v) if v.as_u64() == Some(u64::from(VERSION)) => {}
        Some(v) => {
            return Err(ApiError::new(
                code::UNSUPPORTED_VERSION,
                format!("version {v} is not supported; this server speaks {VERSION}"),
                Some("version"),
            ))
        }
    }
    let name = match obj.remove("command") {
        None => return Err(ApiError::new(code::BAD_REQUEST, "is required", Some("command"))),
        Some(Value::String(c)) if !Command::NAMES.contains(&c.as_str()) => {
            return Err(ApiError::new(
                code::UNKNOWN_COMMAND,
                format!("unknown command {c:?}; one of: {}", Command::NAMES.join(", ")),
                Some("command"),
            ))
        }
        Some(Value::String(c)) => c,
        Some(_) => return Err(ApiError::new(code::BAD_REQUEST, "must be a string", Some("command"))),
    };
    let args = obj.remove("args").unwrap_or_else(|| Value::Object(Default::default()));
    if let Some(k) = obj.keys().next() {
        return Err(ApiError::new(code::BAD_REQUEST, "unknown field; a request has version, command and args", Some(k)));
    }
    // Serde's external tagging, {NAME: ARGS}, keeps the path of an error inside ARGS.
    let mut tagged = serde_json::Map::new();
    tagged.insert(name.clone(), args);
    serde_path_to_error::deserialize::<_, Command>(Value::Object(tagged)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let inside = path.strip_prefix(name.as_str()).unwrap_or("").trim_start_matches('.');
        let mut key = if inside.is_empty() { "args".to_owned() } else { format!("args.{inside}") };
        // An unknown or missing field is reported at its parent: name the field itself.
        for what in ["unknown field `", "missing field `"] {
            if let Some(f) = inner.strip_prefix(what).and_then(|r| r.split('`').next()) {
                if !key.ends_with(&format!(".{f}")) {
                    key = format!("{key}.{f}");
                }
            }
        }
        ApiError::new(code::BAD_REQUEST, inner, Some(&key))
    })
}

/// `ok` of `show_routes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutesReply {
    /// The routes, IPv4 first, by prefix.
    pub routes: Vec<RouteInfo>,
    /// Counts and capacities.
    pub summary: crate::fib::FibSummary,
}

/// A route as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteInfo {
    /// The prefix.
    pub prefix: String,
    /// Out port (config name); empty for an ECMP route (see `paths`) and one that drops.
    pub port: String,
    /// The gateway's address (resolved by the neighbour table), if the next hop names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// The next hop's static MAC, if it names one (with `via`: a static neighbour). Neither:
    /// on-link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_mac: Option<String>,
    /// `config`, `ctl`, `connected`, `neighbour`, or the FRR protocol that made it
    /// (`static`, `bgp`, `ospf`, ...).
    pub origin: String,
    /// The next-hop id the LPM returns for it (an ECMP group's for a multipath route).
    pub next_hop: u32,
    /// ECMP: each path (at least two); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<PathInfo>,
    /// The route drops what it matches (counted as `no_route`): FRR's blackhole and
    /// unreachable routes, and routes none of whose next hops maps onto a port.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drop: bool,
}

/// One path of an ECMP route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathInfo {
    /// Out port.
    pub port: String,
    /// The gateway's address (resolved by the neighbour table), if the next hop names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// The next hop's static MAC, if it names one (with `via`: a static neighbour). Neither:
    /// on-link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_mac: Option<String>,
    /// Its share of the flows.
    pub weight: u16,
}

/// `ok` of `route_add`, `route_replace`, `route_del`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteChanged {
    /// The route as it is now (`route_del`: as it was).
    pub route: RouteInfo,
    /// `route_replace`: the route it replaced, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<RouteInfo>,
}

/// `ok` of `show_next_hops`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextHopsReply {
    /// Next hops in use, by id.
    pub next_hops: Vec<NextHopEntry>,
    /// ECMP groups in use, by id.
    #[serde(default)]
    pub ecmp_groups: Vec<GroupEntry>,
    /// Ids waiting for a grace period before reuse.
    pub retired: usize,
    /// The table's capacity.
    pub capacity: u32,
}

/// One next hop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextHopEntry {
    /// Its id.
    pub id: u32,
    /// Out port.
    pub port: String,
    /// The gateway's address (resolved by the neighbour table), if the next hop names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// The next hop's static MAC, if it names one (with `via`: a static neighbour). Neither:
    /// on-link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_mac: Option<String>,
    /// Routes (and ECMP groups) using it.
    pub routes: u32,
    /// Packets the workers routed to it since it was made (including those handed to the
    /// slow path to resolve its neighbour).
    #[serde(default)]
    pub packets: u64,
}

/// One ECMP group: the id multipath routes point at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEntry {
    /// Its id.
    pub id: u32,
    /// Its members: next-hop ids with their weights and buckets.
    pub members: Vec<GroupMember>,
    /// Routes using it.
    pub routes: u32,
}

/// A member of an ECMP group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    /// The member's next-hop id (see `next_hops`, with its packets).
    pub next_hop: u32,
    /// Out port.
    pub port: String,
    /// The gateway's address (resolved by the neighbour table), if the next hop names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// The next hop's static MAC, if it names one (with `via`: a static neighbour). Neither:
    /// on-link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_mac: Option<String>,
    /// Its weight.
    pub weight: u16,
    /// Buckets it has of the group's (at most 64 in all): its share of the flow hash space.
    pub buckets: u32,
}

/// `ok` of `show_status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReply {
    /// The forwarder's version.
    pub version: String,
    /// API version.
    pub api_version: u32,
    /// `forward.mode`.
    pub mode: String,
    /// Seconds since start.
    pub uptime_s: u64,
    /// Worker lcores.
    pub workers: Vec<u32>,
    /// Port names.
    pub ports: Vec<String>,
    /// The control socket.
    pub socket: String,
    /// Whether a config apply is in progress.
    pub applying: bool,
}

/// `ok` of `apply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ApplyReply {
    /// Whether it was applied (false for a dry run or no change).
    pub applied: bool,
    /// What changed (or would), one line each: `route add 10.1.0.0/16 via ...`,
    /// `poll.budget 300 -> 64`.
    pub changes: Vec<String>,
    /// Routes added, replaced and deleted.
    pub routes: BTreeMap<String, usize>,
}
