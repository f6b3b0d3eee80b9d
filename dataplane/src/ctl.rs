//! `dataplane ctl`: the client of the control socket. Tables for people, `--json` for
//! scripts; exit status 0 (done), 1 (refused by the forwarder), 2 (cannot reach it).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use comfy_table::{presets, CellAlignment, Table};
use serde_json::Value;

use dataplane::control::api::{ApplyReply, NextHopsReply, RouteArgs, RouteChanged, RoutesReply, StatusReply};
use dataplane::control::{Client, Command};
use dataplane::Config;

const EXAMPLES: &str = "\
Examples:
  dataplane ctl show status
  dataplane ctl show ports --xstats
  dataplane ctl show workers
  dataplane ctl show latency
  dataplane ctl show pools
  dataplane ctl show memory
  dataplane ctl show routes --family ipv4 --origin ctl
  dataplane ctl show next-hops
  dataplane ctl show neighbours
  dataplane ctl show config > running.toml
  dataplane ctl route add 10.1.0.0/16 --port p1 --via-mac 02:00:00:00:01:01
  dataplane ctl route replace 10.1.0.0/16 --port p0 --via-mac 02:00:00:00:00:01
  dataplane ctl route del 10.1.0.0/16
  dataplane ctl port down p1
  dataplane ctl port up p1
  dataplane ctl clear counters
  dataplane ctl apply new.toml --dry-run
  dataplane ctl apply new.toml
  dataplane ctl --json show routes | jq '.routes[].prefix'
  dataplane ctl shutdown

Exit status: 0 done, 1 refused (by the forwarder: the error names the field; or a wrong command
line: a usage error, an unreadable --config), 2 the forwarder cannot be reached (no socket at the
path, or nobody answers). The socket defaults to the one
of eal.file_prefix \"dataplane\" (/run/dataplane/dataplane.sock for root); give --socket, or
--config with the forwarder's config file.";

/// `dataplane ctl`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct CtlArgs {
    /// The forwarder's control socket.
    #[arg(long, value_name = "PATH", global = true)]
    socket: Option<PathBuf>,
    /// Take the socket from this config ([control] socket, or the default of its eal.file_prefix).
    // Its own id: the run's `--config` (with its default configs/null.toml) is a
    // different argument, and clap would otherwise merge the two.
    #[arg(id = "ctl_config", long = "config", value_name = "FILE", global = true, conflicts_with = "socket")]
    config: Option<PathBuf>,
    /// Print the reply as JSON (the `ok` value, or `{"error": ...}`) instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Debug, Subcommand)]
enum CtlCommand {
    /// Show state: status, ports, workers, latency, pools, memory, routes, next-hops, neighbours, config.
    Show {
        #[command(subcommand)]
        what: Show,
    },
    /// Add, replace or delete a route.
    Route {
        #[command(subcommand)]
        op: RouteOp,
    },
    /// Set a port's link up or down.
    Port {
        #[command(subcommand)]
        op: PortOp,
    },
    /// Zero counters.
    Clear {
        #[command(subcommand)]
        what: Clear,
    },
    /// Move the running config to FILE: validated as at start-up, applied as one change, or
    /// refused naming the key that needs a restart (nothing changes then).
    Apply {
        /// The new config.
        file: PathBuf,
        /// Only show what would change.
        #[arg(long)]
        dry_run: bool,
    },
    /// Stop the forwarder as SIGTERM does (with its leak checks).
    Shutdown,
}

#[derive(Debug, Subcommand)]
enum Show {
    /// Version, mode, uptime, workers, ports.
    Status,
    /// Link, speed and counters per port.
    Ports {
        /// Also the PMD's extended counters (non-zero ones in tables).
        #[arg(long)]
        xstats: bool,
    },
    /// Softnet counters per worker lcore, and drops by reason.
    Workers,
    /// RX-to-TX latency and per-burst cycles, percentiles in ns.
    Latency,
    /// Mempool occupancy.
    Pools,
    /// Memory accounts: protocols and groups.
    Memory,
    /// Routes with next hop and origin.
    Routes {
        /// ipv4 or ipv6.
        #[arg(long)]
        family: Option<String>,
        /// config, ctl, connected or neighbour.
        #[arg(long)]
        origin: Option<String>,
    },
    /// Next hops in use and how many routes use each.
    NextHops,
    /// The neighbour table (ARP, neighbour discovery), like `ip neigh`.
    Neighbours,
    /// The running config (start-up config and live changes) as TOML.
    Config,
}

#[derive(Debug, Subcommand)]
enum RouteOp {
    /// Add a route (refused if the prefix has one).
    Add(RouteSpec),
    /// Add a route or replace the prefix's route, without a gap.
    Replace(RouteSpec),
    /// Delete a route.
    Del {
        /// The prefix, host bits zero.
        prefix: String,
    },
}

#[derive(Debug, Args)]
struct RouteSpec {
    /// The prefix, host bits zero: 10.1.0.0/16, 2001:db8::/32.
    prefix: String,
    /// Out port (config name).
    #[arg(long)]
    port: String,
    /// The gateway's address, resolved by ARP / neighbour discovery (on the port's subnet).
    #[arg(long)]
    via: Option<String>,
    /// The next hop's MAC, static (with --via: a static neighbour entry for the gateway).
    /// Neither: on-link.
    #[arg(long)]
    via_mac: Option<String>,
}

#[derive(Debug, Subcommand)]
enum PortOp {
    /// rte_eth_dev_set_link_up.
    Up {
        /// Port (config name).
        port: String,
    },
    /// rte_eth_dev_set_link_down.
    Down {
        /// Port (config name).
        port: String,
    },
}

#[derive(Debug, Subcommand)]
enum Clear {
    /// Workers', ports' and the slow path's counters, and the histograms.
    Counters,
}

/// The exit status when the request is refused, by the forwarder or already by `ctl`
/// (a usage error, an unreadable `--config`).
pub const REFUSED: u8 = 1;

/// The exit status when the forwarder cannot be reached, and only then, so a script can
/// tell a typo from a forwarder that is not running.
const UNREACHABLE: u8 = 2;

/// Runs `dataplane ctl`.
pub fn main(args: CtlArgs) -> ExitCode {
    let socket = match (&args.socket, &args.config) {
        (Some(s), _) => s.clone(),
        (None, Some(c)) => match Config::load(c) {
            Ok(c) => c.control_socket(),
            Err(e) => {
                eprintln!("error: --config: {e}");
                return ExitCode::from(REFUSED);
            }
        },
        (None, None) => dataplane::config::default_socket("dataplane"),
    };
    let command = match request(&args.command) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    // apply may take minutes on a full table; everything else answers at once.
    let timeout = (!matches!(command, Command::Apply { .. })).then_some(Duration::from_secs(60));
    let unreachable = |e: &dyn std::fmt::Display| {
        eprintln!(
            "error: cannot reach the forwarder at {}: {e}\n(is it running? give its socket with --socket PATH, or its config with --config FILE)",
            socket.display()
        );
        ExitCode::from(UNREACHABLE)
    };
    let mut client = match Client::connect(&socket, timeout) {
        Ok(c) => c,
        Err(e) => return unreachable(&e),
    };
    match client.call(&command) {
        Err(e) => unreachable(&e),
        Ok(Ok(value)) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
            } else {
                print!("{}", render(&args.command, &value));
            }
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            if args.json {
                println!("{}", serde_json::json!({ "error": e }));
            } else {
                eprintln!("error: {e} ({})", e.code);
            }
            ExitCode::from(1)
        }
    }
}

fn request(c: &CtlCommand) -> Result<Command, String> {
    let route = |s: &RouteSpec| RouteArgs {
        prefix: s.prefix.clone(),
        port: s.port.clone(),
        via: s.via.clone(),
        via_mac: s.via_mac.clone(),
    };
    Ok(match c {
        CtlCommand::Show { what } => match what {
            Show::Status => Command::ShowStatus {},
            Show::Ports { xstats } => Command::ShowPorts { xstats: *xstats },
            Show::Workers => Command::ShowWorkers {},
            Show::Latency => Command::ShowLatency {},
            Show::Pools => Command::ShowPools {},
            Show::Memory => Command::ShowMemory {},
            Show::Routes { family, origin } => Command::ShowRoutes { family: family.clone(), origin: origin.clone() },
            Show::NextHops => Command::ShowNextHops {},
            Show::Neighbours => Command::ShowNeighbours {},
            Show::Config => Command::ShowConfig {},
        },
        CtlCommand::Route { op } => match op {
            RouteOp::Add(s) => Command::RouteAdd(route(s)),
            RouteOp::Replace(s) => Command::RouteReplace(route(s)),
            RouteOp::Del { prefix } => Command::RouteDel { prefix: prefix.clone() },
        },
        CtlCommand::Port { op } => match op {
            PortOp::Up { port } => Command::PortUp { port: port.clone() },
            PortOp::Down { port } => Command::PortDown { port: port.clone() },
        },
        CtlCommand::Clear { what: Clear::Counters } => Command::ClearCounters {},
        CtlCommand::Apply { file, dry_run } => Command::Apply {
            config: std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?,
            dry_run: *dry_run,
        },
        CtlCommand::Shutdown => Command::Shutdown {},
    })
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header(header.iter().map(|h| h.to_uppercase()));
    t
}

fn right(t: &mut Table, from: usize) {
    for i in from..t.column_count() {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// `ip neigh`-like lines: `10.0.2.2 dev h2 lladdr 02:.. router REACHABLE`, then the
/// table's counters.
fn neighbours(v: &Value) -> String {
    let mut t = table(&["address", "dev", "lladdr", "state", "router", "queued", "used ms"]);
    for e in v["entries"].as_array().into_iter().flatten() {
        t.add_row(vec![
            num(&e["address"]),
            num(&e["port"]),
            num(&e["mac"]),
            num(&e["state"]),
            if e["router"] == true { "router".to_owned() } else { String::new() },
            num(&e["queued"]),
            num(&e["used_ms"]),
        ]);
    }
    let s = &v["stats"];
    let r = &v["resolution"];
    let drops: Vec<String> = r["drops"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, n)| (k.as_str(), n))
        .chain([("proto_mem", &r["proto_mem"]), ("no_route", &r["no_route"])])
        .map(|(k, n)| format!("{k} {}", num(n)))
        .collect();
    format!(
        "{t}\nresolution: {} packets taken, {} sent; dropped {}\n{} entries, {} packets held, {} host routes; allocs {} destroys {} res_failed {} unres_discards {} table_fulls {}; ARP requests {} NS {}\n",
        num(&r["taken"]),
        num(&r["sent"]),
        drops.join(", "),
        v["entries"].as_array().map_or(0, Vec::len),
        num(&v["held"]),
        num(&v["host_routes"]),
        num(&s["allocs"]),
        num(&s["destroys"]),
        num(&s["res_failed"]),
        num(&s["unres_discards"]),
        num(&s["table_fulls"]),
        num(&s["arp_requests"]),
        num(&s["neighbor_solicits"])
    )
}

fn num(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

fn decode<T: serde::de::DeserializeOwned>(v: &Value) -> Option<T> {
    serde_json::from_value(v.clone()).ok()
}

/// The reply as tables and lines for people.
fn render(c: &CtlCommand, v: &Value) -> String {
    let out = match c {
        CtlCommand::Show { what } => match what {
            Show::Status => decode::<StatusReply>(v).map(|s| {
                format!(
                    "dataplane {} (API {}), mode {}, up {} s\nworkers on lcores {:?}; ports {}\nsocket {}{}\n",
                    s.version,
                    s.api_version,
                    s.mode,
                    s.uptime_s,
                    s.workers,
                    s.ports.join(", "),
                    s.socket,
                    if s.applying { "\na config apply is in progress" } else { "" }
                )
            }),
            Show::Ports { .. } => Some(ports(v)),
            Show::Workers => Some(workers(v)),
            Show::Latency => Some(latency(v)),
            Show::Pools => Some(objects(v, "pool", &["size", "available", "in_use", "cached"])),
            Show::Memory => Some(memory(v)),
            Show::Routes { .. } => decode::<RoutesReply>(v).map(|r| routes(&r)),
            Show::NextHops => decode::<NextHopsReply>(v).map(|r| {
                let mut t = table(&["id", "dev", "via", "routes", "packets"]);
                for n in &r.next_hops {
                    let via = via(&n.via, &n.via_mac);
                    t.add_row(vec![n.id.to_string(), n.port.clone(), via, n.routes.to_string(), n.packets.to_string()]);
                }
                let mut out = format!(
                    "{t}\n{} next hops in use of {}, {} waiting for a grace period\n",
                    r.next_hops.len(),
                    r.capacity,
                    r.retired
                );
                if !r.ecmp_groups.is_empty() {
                    let mut g = table(&["group", "members (next hop: dev via, weight, buckets)", "routes"]);
                    for x in &r.ecmp_groups {
                        let m: Vec<String> = x
                            .members
                            .iter()
                            .map(|m| {
                                let via = via(&m.via, &m.via_mac);
                                format!("{}: {} {via} w{} b{}", m.next_hop, m.port, m.weight, m.buckets)
                            })
                            .collect();
                        g.add_row(vec![x.id.to_string(), m.join("; "), x.routes.to_string()]);
                    }
                    out += &format!("\n{g}\n{} ECMP groups\n", r.ecmp_groups.len());
                }
                out
            }),
            Show::Neighbours => Some(neighbours(v)),
            Show::Config => v["toml"].as_str().map(str::to_owned),
        },
        CtlCommand::Route { op } => decode::<RouteChanged>(v).map(|r| {
            let what = match op {
                RouteOp::Add(_) => "added",
                RouteOp::Replace(_) if r.replaced.is_some() => "replaced",
                RouteOp::Replace(_) => "added",
                RouteOp::Del { .. } => "deleted",
            };
            let x = &r.route;
            format!("{what} {} {} (origin {}, next hop {})\n", x.prefix, via_dev(x), x.origin, x.next_hop)
        }),
        CtlCommand::Port { .. } => Some(format!("{}: {}\n", num(&v["port"]), num(&v["link"]))),
        CtlCommand::Clear { .. } => Some(format!("counters cleared ({} workers confirmed)\n", num(&v["workers"]))),
        CtlCommand::Apply { .. } => decode::<ApplyReply>(v).map(|a| {
            let mut s: String = a.changes.iter().map(|l| format!("  {l}\n")).collect();
            let r = |k: &str| a.routes.get(k).copied().unwrap_or(0);
            s += &match (a.applied, a.changes.is_empty()) {
                (_, true) => "no change\n".to_owned(),
                (true, _) => format!("applied: {} routes added, {} replaced, {} deleted\n", r("add"), r("replace"), r("del")),
                (false, _) => {
                    format!("dry run: {} routes to add, {} to replace, {} to delete\n", r("add"), r("replace"), r("del"))
                }
            };
            s
        }),
        CtlCommand::Shutdown => Some("stopping\n".to_owned()),
    };
    out.unwrap_or_else(|| format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default()))
}

fn ports(v: &Value) -> String {
    let mut t = table(&[
        "port",
        "id",
        "driver",
        "link",
        "speed",
        "rx_packets",
        "tx_packets",
        "imissed",
        "ierrors",
        "oerrors",
        "rx_nombuf",
    ]);
    let mut x = String::new();
    for (name, p) in v["ports"].as_object().into_iter().flatten() {
        t.add_row(vec![
            name.clone(),
            num(&p["port_id"]),
            num(&p["driver"]),
            if p["link"]["up"] == true { "up".to_owned() } else { "down".to_owned() },
            num(&p["speed"]),
            num(&p["ipackets"]),
            num(&p["opackets"]),
            num(&p["imissed"]),
            num(&p["ierrors"]),
            num(&p["oerrors"]),
            num(&p["rx_nombuf"]),
        ]);
        if let Some(xs) = p["xstats"].as_object() {
            let nonzero: Vec<String> = xs.iter().filter(|(_, v)| **v != 0).map(|(k, v)| format!("{k}={v}")).collect();
            x += &format!("{name} xstats ({} of {} non-zero): {}\n", nonzero.len(), xs.len(), nonzero.join(" "));
        }
    }
    right(&mut t, 5);
    format!("{t}\n{x}")
}

fn workers(v: &Value) -> String {
    let cols = ["processed", "tx_packets", "dropped", "time_squeeze", "rounds", "idle_rounds", "punted", "injected"];
    let mut header = vec!["lcore"];
    header.extend(cols);
    header.push("cycles/pkt");
    let mut t = table(&header);
    let mut drops = String::new();
    for (lcore, w) in v.as_object().into_iter().flatten() {
        let mut row = vec![lcore.clone()];
        row.extend(cols.iter().map(|c| num(&w[*c])));
        row.push(format!("{:.1}", w["cycles_per_packet"].as_f64().unwrap_or(0.0)));
        t.add_row(row);
        let d: Vec<String> =
            w["drops"].as_object().into_iter().flatten().filter(|(_, n)| **n != 0).map(|(k, n)| format!("{k} {n}")).collect();
        if !d.is_empty() {
            drops += &format!("{lcore} drops: {}\n", d.join(", "));
        }
    }
    right(&mut t, 1);
    format!("{t}\n{drops}")
}

fn latency(v: &Value) -> String {
    let mut t = table(&["ns", "count", "p50", "p90", "p99", "p99.9", "max"]);
    for k in ["rx_to_tx", "burst"] {
        let h = &v[k];
        t.add_row(vec![
            k.to_owned(),
            num(&h["count"]),
            num(&h["p50"]),
            num(&h["p90"]),
            num(&h["p99"]),
            num(&h["p99_9"]),
            num(&h["max"]),
        ]);
    }
    right(&mut t, 1);
    format!("{t}\n")
}

/// An object of objects as a table: one row per key, the given fields as columns.
fn objects(v: &Value, first: &str, fields: &[&str]) -> String {
    let mut header = vec![first];
    header.extend(fields);
    let mut t = table(&header);
    for (name, o) in v.as_object().into_iter().flatten() {
        let mut row = vec![name.clone()];
        row.extend(fields.iter().map(|f| num(&o[*f])));
        t.add_row(row);
    }
    right(&mut t, 1);
    format!("{t}\n")
}

fn memory(v: &Value) -> String {
    if v.as_object().is_none_or(|o| o.is_empty()) {
        return "memory accounting is off ([accounting] is not in the config)\n".to_owned();
    }
    let p = objects(&v["protocols"], "protocol", &["pages", "under_pressure", "min", "pressure", "max", "charges", "failures"]);
    let g = objects(&v["groups"], "group", &["bytes", "limit_bytes", "failures"]);
    format!("{p}\n{g}")
}

/// A next hop's column: the gateway with its static MAC when it has one
/// (`10.0.1.8 (02:00:00:00:00:08)`), the MAC alone, or `on-link`.
fn via(gateway: &Option<String>, mac: &Option<String>) -> String {
    match (gateway, mac) {
        (Some(g), Some(m)) => format!("{g} ({m})"),
        (Some(x), None) | (None, Some(x)) => x.clone(),
        (None, None) => "on-link".to_owned(),
    }
}

/// `via GATEWAY dev PORT` (as `ip route` says it), each path of an ECMP route, or `drop`.
fn via_dev(x: &dataplane::control::api::RouteInfo) -> String {
    use dataplane::control::handler::via_text;
    if x.drop {
        return "drop".to_owned();
    }
    if x.paths.is_empty() {
        return format!("{} dev {}", via_text(x.via.as_deref(), x.via_mac.as_deref()), x.port);
    }
    let p: Vec<String> = x
        .paths
        .iter()
        .map(|p| format!("{} dev {} weight {}", via_text(p.via.as_deref(), p.via_mac.as_deref()), p.port, p.weight))
        .collect();
    format!("ecmp {}", p.join(", "))
}

fn routes(r: &RoutesReply) -> String {
    let mut t = table(&["prefix", "via", "dev", "origin", "next hop"]);
    for x in &r.routes {
        let (via, dev) = match (x.drop, x.paths.is_empty()) {
            (true, _) => ("drop".to_owned(), String::new()),
            (false, true) => (via(&x.via, &x.via_mac), x.port.clone()),
            (false, false) => (
                x.paths.iter().map(|p| via(&p.via, &p.via_mac)).collect::<Vec<_>>().join(", "),
                x.paths.iter().map(|p| p.port.clone()).collect::<Vec<_>>().join(", "),
            ),
        };
        t.add_row(vec![x.prefix.clone(), via, dev, x.origin.clone(), x.next_hop.to_string()]);
    }
    let s = &r.summary;
    // Every origin FRR may send is in the summary; the table names those with routes.
    let origins: Vec<String> = s.by_origin.iter().filter(|(_, v)| **v != 0).map(|(k, v)| format!("{k} {v}")).collect();
    format!(
        "{t}\n{} routes shown; in the tables: {} IPv4 (of {}), {} IPv6 (of {}); by origin: {}; {} next hops\n",
        r.routes.len(),
        s.ipv4_routes,
        s.ipv4_max_routes,
        s.ipv6_routes,
        s.ipv6_max_routes,
        origins.join(", "),
        s.next_hops
    )
}
