//! What each command does to the running forwarder.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use serde_json::{json, Value};

use super::api::{self, code, ApiError, ApplyReply, Command, RouteArgs, RouteChanged, RouteInfo};
use super::apply::{self, Abilities};
use crate::config::{Config, RouteConfig};
use crate::fib::{Fib, FibError, Hop, Origin, Route, RouteChange};
use crate::forwarder::{locals, route_of, Forwarder};
use crate::live::{Live, LiveCell};
use crate::net::MacAddr;
use crate::nexthop::{NextHopKey, Via};
use crate::port::PortIdx;
use crate::report;
use crate::worker::Budget;
use mempool::accounting::{Accounting, Group};

/// Route changes applied per FIB lock: a large `apply` releases the lock between slices, so
/// other clients are answered while it runs (rte_lpm adds are O(n): a full table takes
/// minutes on a small machine).
pub const SLICE: usize = 1024;

/// The state the control socket serves: the forwarder, the running config, and the lock
/// that serialises changes.
pub struct Control {
    /// For counters, links and histograms; locked briefly, never during a route change.
    fwd: Arc<Mutex<Forwarder>>,
    /// What changes take, cloned out of the forwarder so that they need not lock it.
    fib: Option<Arc<Mutex<Fib>>>,
    live: Arc<LiveCell>,
    can: Abilities,
    accounting: Option<(Arc<Accounting>, Vec<Arc<Group>>)>,
    macs: Vec<MacAddr>,
    tsc_hz: u64,
    mode: &'static str,
    running: Mutex<Config>,
    /// Held for the whole of a change (a route command, an apply).
    writer: Mutex<()>,
    /// An apply is running: other changes are refused with `busy`.
    applying: AtomicBool,
    /// The process's stop flag (SIGTERM's): `shutdown` sets it.
    stop: Arc<AtomicBool>,
    started: Instant,
    socket: String,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").field("socket", &self.socket).finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("API types serialise")
}

impl Control {
    /// Serves `fwd`, started from `config`; `stop` is what `shutdown` sets.
    pub fn new(fwd: Arc<Mutex<Forwarder>>, config: Config, stop: Arc<AtomicBool>) -> Control {
        let socket = config.control_socket().display().to_string();
        let f = lock(&fwd);
        let can = Abilities {
            routes: f.fib().is_some(),
            addresses: f.has_slow_path(),
            mirror: f.has_extensions(),
            tx_capable: f.tx_capable().to_vec(),
        };
        let (fib, live, macs, tsc_hz, mode) = (f.fib().cloned(), f.live().clone(), f.macs(), f.tsc_hz(), f.mode().name());
        let accounting = f.accounting().map(|(a, g)| (a.clone(), g.to_vec()));
        drop(f);
        Control {
            fwd,
            fib,
            live,
            can,
            accounting,
            macs,
            tsc_hz,
            mode,
            running: Mutex::new(config),
            writer: Mutex::new(()),
            applying: AtomicBool::new(false),
            stop,
            started: Instant::now(),
            socket,
        }
    }

    /// The running config.
    pub fn running(&self) -> Config {
        lock(&self.running).clone()
    }

    /// Runs one command.
    ///
    /// # Errors
    /// The command's error, with its code and the field at fault.
    pub fn handle(&self, cmd: Command) -> Result<Value, ApiError> {
        if cmd.writes() && self.applying.load(Ordering::Acquire) {
            return Err(ApiError::new(code::BUSY, "a config apply is in progress; try again when it is done", None));
        }
        let snap = || lock(&self.fwd).snapshot();
        match cmd {
            Command::ShowStatus {} => Ok(to_value(&self.status())),
            Command::ShowPorts { xstats } => Ok(self.ports(xstats)),
            Command::ShowWorkers {} => Ok(report::softnet_json(&snap())),
            Command::ShowLatency {} => {
                let s = snap();
                let h = lock(&self.fwd).histograms(Duration::from_millis(200));
                Ok(report::latency_json(&h, s.tsc_hz))
            }
            Command::ShowPools {} => Ok(report::pools_json(&snap())),
            Command::ShowMemory {} => Ok(report::memory_json(&snap())),
            Command::ShowRoutes { family, origin } => self.routes(family.as_deref(), origin.as_deref()),
            Command::ShowNextHops {} => self.next_hops(),
            Command::ShowNeighbours {} => Ok(report::neighbours_json(&snap())),
            Command::ShowConfig {} => Ok(json!({ "toml": lock(&self.running).to_toml() })),
            Command::RouteAdd(a) => self.route_set(&a, false),
            Command::RouteReplace(a) => self.route_set(&a, true),
            Command::RouteDel { prefix } => self.route_del(&prefix),
            Command::PortUp { port } => self.port_link(&port, true),
            Command::PortDown { port } => self.port_link(&port, false),
            Command::ClearCounters {} => Ok(json!({ "workers": lock(&self.fwd).clear_counters(Duration::from_secs(1)) })),
            Command::Apply { config, dry_run } => self.apply(&config, dry_run),
            Command::Shutdown {} => {
                self.stop.store(true, Ordering::SeqCst);
                Ok(json!({ "stopping": true }))
            }
        }
    }

    fn status(&self) -> api::StatusReply {
        let c = lock(&self.running);
        api::StatusReply {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            api_version: api::VERSION,
            mode: c.forward.mode.name().to_owned(),
            uptime_s: self.started.elapsed().as_secs(),
            workers: c.workers.iter().map(|w| w.lcore).collect(),
            ports: c.ports.iter().map(|p| p.name.clone()).collect(),
            socket: self.socket.clone(),
            applying: self.applying.load(Ordering::Relaxed),
        }
    }

    fn ports(&self, xstats: bool) -> Value {
        let fwd = lock(&self.fwd);
        let snap = fwd.snapshot();
        let mut stats = report::stats_json(&snap);
        if let Some(ports) = stats["ports"].as_object_mut() {
            for (name, p) in ports.iter_mut() {
                let link = snap.ports.iter().find(|r| &r.name == name).map(|r| r.link.text.clone()).unwrap_or_default();
                // rte_eth_link_to_str: "Link up at 10 Gbps FDX Autoneg".
                p["speed"] = json!(link
                    .split(" at ")
                    .nth(1)
                    .and_then(|s| s.split(" FDX").next().map(|s| s.split(" HDX").next().unwrap_or(s)))
                    .unwrap_or(""));
                if xstats {
                    let x: serde_json::Map<String, Value> =
                        fwd.xstats(name).unwrap_or_default().into_iter().map(|(k, v)| (k, json!(v))).collect();
                    p["xstats"] = Value::Object(x);
                }
            }
        }
        stats
    }

    fn fib(&self) -> Result<&Arc<Mutex<Fib>>, ApiError> {
        self.fib.as_ref().ok_or_else(|| {
            ApiError::new(
                code::NOT_SUPPORTED,
                format!("routes exist only in l3fwd mode; this forwarder runs {}", self.mode),
                Some("command"),
            )
        })
    }

    fn info(&self, fib: &Fib, r: &Route, id: u32) -> RouteInfo {
        let (port, via, via_mac) = match &r.next_hop {
            Hop::One(k) => hop_names(fib, k),
            Hop::Multi(_) | Hop::Drop => (String::new(), None, None),
        };
        let paths = match &r.next_hop {
            Hop::Multi(p) => p
                .iter()
                .map(|(k, weight)| {
                    let (port, via, via_mac) = hop_names(fib, k);
                    api::PathInfo { port, via, via_mac, weight: *weight }
                })
                .collect(),
            _ => Vec::new(),
        };
        RouteInfo {
            prefix: r.prefix.to_string(),
            port,
            via,
            via_mac,
            origin: r.origin.name().to_owned(),
            next_hop: id,
            paths,
            drop: r.next_hop == Hop::Drop,
        }
    }

    fn routes(&self, family: Option<&str>, origin: Option<&str>) -> Result<Value, ApiError> {
        let v6 = match family {
            None => None,
            Some("ipv4") => Some(false),
            Some("ipv6") => Some(true),
            Some(f) => {
                return Err(ApiError::new(code::INVALID, format!("{f:?} is not ipv4 or ipv6"), Some("args.family")));
            }
        };
        let origin = match origin {
            None => None,
            Some(o) => Some(Origin::ALL.iter().copied().find(|x| x.name() == o).ok_or_else(|| {
                let names: Vec<&str> = Origin::ALL.iter().map(|o| o.name()).collect();
                ApiError::new(code::INVALID, format!("{o:?} is not one of {}", names.join(", ")), Some("args.origin"))
            })?),
        };
        let fib = lock(self.fib()?);
        let routes = fib
            .routes()
            .filter(|(r, _)| v6.is_none_or(|v6| r.prefix.addr().is_ipv6() == v6) && origin.is_none_or(|o| r.origin == o))
            .map(|(r, id)| self.info(&fib, &r, id))
            .collect();
        Ok(to_value(&api::RoutesReply { routes, summary: fib.summary() }))
    }

    fn next_hops(&self) -> Result<Value, ApiError> {
        let fib = lock(self.fib()?);
        let s = fib.summary();
        let next_hops = fib
            .next_hops()
            .into_iter()
            .map(|n| {
                let (port, via, via_mac) = hop_names(&fib, &n.key);
                api::NextHopEntry { id: n.id, port, via, via_mac, routes: n.refs, packets: n.packets }
            })
            .collect();
        let ecmp_groups = fib
            .ecmp_groups()
            .into_iter()
            .map(|g| api::GroupEntry {
                id: g.id,
                members: g
                    .members
                    .iter()
                    .zip(&g.buckets)
                    .map(|((k, id, weight), buckets)| {
                        let (port, via, via_mac) = hop_names(&fib, k);
                        api::GroupMember { next_hop: *id, port, via, via_mac, weight: *weight, buckets: *buckets }
                    })
                    .collect(),
                routes: g.refs,
            })
            .collect();
        Ok(to_value(&api::NextHopsReply { next_hops, ecmp_groups, retired: s.next_hops_retired, capacity: s.max_next_hops }))
    }

    /// Parses and checks a route's arguments against the running config.
    fn route_args(&self, a: &RouteArgs) -> Result<RouteConfig, ApiError> {
        let prefix = parse_prefix(&a.prefix)?;
        let c = lock(&self.running);
        let port = c.ports.iter().position(|p| p.name == a.port).ok_or_else(|| {
            let names: Vec<&str> = c.ports.iter().map(|p| p.name.as_str()).collect();
            ApiError::new(code::INVALID, format!("no port named {:?}; ports: {}", a.port, names.join(", ")), Some("args.port"))
        })?;
        let via_mac: Option<MacAddr> = a
            .via_mac
            .as_deref()
            .map(|m| {
                m.parse().map_err(|_| {
                    ApiError::new(
                        code::INVALID,
                        format!("{m:?} is not a MAC address (expected six hex bytes like 02:00:00:00:00:01)"),
                        Some("args.via_mac"),
                    )
                })
            })
            .transpose()?;
        let via = a
            .via
            .as_deref()
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::new(code::INVALID, format!("{v:?} is not an IPv4 or IPv6 address"), Some("args.via")))
            })
            .transpose()?;
        let rc = RouteConfig { prefix, port: PortIdx(port as u16), via, via_mac };
        // The config's own rules for the next hop (family, on the port's subnet, an
        // address to solicit from), checked against the running config's ports.
        crate::config::check_route("args", &rc, &c.ports).map_err(|e| {
            let key = if e.key.ends_with(".via") { "args.via" } else { "args.port" };
            ApiError::new(code::INVALID, e.kind.to_string(), Some(key))
        })?;
        Ok(rc)
    }

    fn route_set(&self, a: &RouteArgs, replace: bool) -> Result<Value, ApiError> {
        let fib = self.fib()?;
        let rc = self.route_args(a)?;
        let _w = lock(&self.writer);
        let mut fib = lock(fib);
        let route = route_of(&rc, Origin::Ctl);
        let old = fib.get(&rc.prefix);
        if let (Some(o), false) = (&old, replace) {
            let id = fib.routes().find(|(r, _)| r.prefix == rc.prefix).map_or(0, |(_, id)| id);
            return Err(ApiError::new(
                code::EXISTS,
                format!("a route for {} exists ({}); use route replace", rc.prefix, describe(&self.info(&fib, o, id))),
                Some("args.prefix"),
            ));
        }
        let replaced = old.map(|o| self.info(&fib, &o, 0));
        fib.apply(&[RouteChange::Set(route.clone())]).map_err(|(_, e)| fib_error(e, "args.prefix"))?;
        let id = fib.routes().find(|(r, _)| r.prefix == rc.prefix).map_or(0, |(_, id)| id);
        let info = self.info(&fib, &route, id);
        drop(fib);
        let mut c = lock(&self.running);
        match c.routes.iter_mut().find(|r| r.prefix == rc.prefix) {
            Some(r) => *r = rc,
            None => c.routes.push(rc),
        }
        Ok(to_value(&RouteChanged { route: info, replaced }))
    }

    fn route_del(&self, prefix: &str) -> Result<Value, ApiError> {
        let fib = self.fib()?;
        let prefix = parse_prefix(prefix)?;
        let _w = lock(&self.writer);
        let mut fib = lock(fib);
        let Some((old, id)) = fib.routes().find(|(r, _)| r.prefix == prefix) else {
            return Err(ApiError::new(code::NOT_FOUND, format!("no route for {prefix}"), Some("args.prefix")));
        };
        let info = self.info(&fib, &old, id);
        fib.apply(&[RouteChange::Delete(prefix)]).map_err(|(_, e)| fib_error(e, "args.prefix"))?;
        drop(fib);
        lock(&self.running).routes.retain(|r| r.prefix != prefix);
        Ok(to_value(&RouteChanged { route: info, replaced: None }))
    }

    fn port_link(&self, port: &str, up: bool) -> Result<Value, ApiError> {
        if !lock(&self.running).ports.iter().any(|p| p.name == port) {
            return Err(ApiError::new(code::INVALID, format!("no port named {port:?}"), Some("args.port")));
        }
        let fwd = lock(&self.fwd);
        fwd.set_link(port, up).map_err(|e| {
            let c = if e.contains("ENOTSUP") || e.contains("errno 95") { code::NOT_SUPPORTED } else { code::INTERNAL };
            ApiError::new(c, e, Some("args.port"))
        })?;
        let link = fwd.snapshot().ports.into_iter().find(|p| p.name == port).map(|p| p.link.text).unwrap_or_default();
        Ok(json!({ "port": port, "link": link }))
    }

    fn apply(&self, text: &str, dry_run: bool) -> Result<Value, ApiError> {
        let new = Config::from_toml_str(text).map_err(|e| {
            let c = if matches!(e.kind, crate::ConfigErrorKind::Parse { .. }) { code::BAD_REQUEST } else { code::INVALID };
            ApiError::new(c, e.kind.to_string(), Some(&e.key))
        })?;
        let _w = if dry_run { None } else { Some(lock(&self.writer)) };
        let old = self.running();
        let plan = apply::diff(&old, &new, &self.can)?;
        let mut reply = ApplyReply {
            applied: false,
            changes: plan.lines.clone(),
            routes: [("add", plan.counts[0]), ("replace", plan.counts[1]), ("del", plan.counts[2])]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        };
        if dry_run || plan.lines.is_empty() {
            *lock(&self.running) = if dry_run { old } else { new };
            return Ok(to_value(&reply));
        }
        self.applying.store(true, Ordering::Release);
        let result = self.apply_plan(&plan, &new);
        self.applying.store(false, Ordering::Release);
        result?;
        *lock(&self.running) = new;
        reply.applied = true;
        Ok(to_value(&reply))
    }

    /// Routes in slices (undone slice by slice if one fails), then the live parameters.
    fn apply_plan(&self, plan: &apply::Plan, new: &Config) -> Result<(), ApiError> {
        if let Some(fib) = &self.fib {
            let mut undo: Vec<Vec<RouteChange>> = Vec::new();
            for (n, slice) in plan.routes.chunks(SLICE).enumerate() {
                let r = lock(fib).apply(slice);
                match r {
                    Ok(u) => undo.push(u),
                    Err((i, e)) => {
                        for u in undo.iter().rev() {
                            for s in u.chunks(SLICE) {
                                if let Err((_, e)) = lock(fib).apply(s) {
                                    eprintln!("control: undoing a refused apply failed: {e}");
                                }
                            }
                        }
                        return Err(fib_error(e, &plan.route_keys[n * SLICE + i]));
                    }
                }
            }
        }
        if plan.live {
            let tsc = self.tsc_hz;
            let us = |u: u32| u64::from(u) * tsc / 1_000_000;
            let locals = locals(new, &self.macs);
            let live = &self.live;
            live.update(|l| Live {
                generation: l.generation + 1,
                budget: Budget {
                    packets: new.poll.budget,
                    cycles: us(new.poll.budget_usecs),
                    drain_cycles: us(new.poll.tx_drain_usecs),
                    idle: new.poll.idle.clone(),
                    sample_every: new.poll.sample_every,
                },
                mirror: new.mirror.as_ref().map(|m| (m.port, m.proto)),
                backlog: new.accounting.as_ref().map_or((0, 0), |a| (a.backlog, a.backlog_under_pressure)),
                locals: Arc::new(locals),
            });
        }
        if plan.accounting {
            if let (Some((acct, groups)), Some(conf)) = (&self.accounting, &new.accounting) {
                for p in mempool::accounting::Proto::ALL {
                    // Checked in order by the config validator.
                    let _ = acct.account(p).set_limits(conf.limits[p.index()]);
                }
                let budget = |b: u64| if b == 0 { mempool::accounting::Group::UNLIMITED } else { b };
                if let Some((slow, ports)) = groups.split_last() {
                    for g in ports {
                        g.set_limit_bytes(budget(conf.port_budget));
                    }
                    slow.set_limit_bytes(budget(conf.slow_path_budget));
                }
            }
        }
        Ok(())
    }
}

fn describe(r: &RouteInfo) -> String {
    format!("{} dev {}, origin {}", via_text(r.via.as_deref(), r.via_mac.as_deref()), r.port, r.origin)
}

/// A next hop's `via` (gateway address) and `via_mac` (static MAC) for the API.
fn via_fields(via: Via) -> (Option<String>, Option<String>) {
    match via {
        Via::Mac(m) => (None, Some(m.to_string())),
        Via::Static(a, m) => (Some(a.to_string()), Some(m.to_string())),
        Via::Gateway(a) => (Some(a.to_string()), None),
        Via::Connected => (None, None),
    }
}

/// How `ip route` would say where a route goes: `via GATEWAY`, `via MAC`, `via GATEWAY
/// (MAC)` for a static neighbour, or `on-link`.
pub fn via_text(via: Option<&str>, via_mac: Option<&str>) -> String {
    match (via, via_mac) {
        (Some(v), Some(m)) => format!("via {v} ({m})"),
        (Some(v), None) | (None, Some(v)) => format!("via {v}"),
        (None, None) => "on-link".to_owned(),
    }
}

/// `ADDR/LEN` with host bits zero.
fn parse_prefix(s: &str) -> Result<IpNet, ApiError> {
    let net: IpNet = s.parse().map_err(|_| {
        ApiError::new(
            code::INVALID,
            format!("{s:?} is not an address with a prefix length, like 10.1.0.0/16 or 2001:db8::/32"),
            Some("args.prefix"),
        )
    })?;
    if net.trunc() != net {
        return Err(ApiError::new(
            code::INVALID,
            format!("{s:?} has host bits set; did you mean \"{}\"?", net.trunc()),
            Some("args.prefix"),
        ));
    }
    let _: IpAddr = net.addr();
    Ok(net)
}

/// A next hop's port name and gateway, as the API shows them.
/// A next hop's port name, `via` and `via_mac` as the API shows them.
fn hop_names(fib: &Fib, k: &NextHopKey) -> (String, Option<String>, Option<String>) {
    let (via, via_mac) = via_fields(k.via);
    (fib.ports().get(k.port.index()).map_or_else(String::new, |p| p.name.clone()), via, via_mac)
}

fn fib_error(e: FibError, key: &str) -> ApiError {
    let c = match &e {
        FibError::NoSuchRoute(_) => code::NOT_FOUND,
        FibError::TableFull(_) | FibError::NextHopsFull(_) | FibError::GroupsFull(_) => code::TABLE_FULL,
        FibError::NoSuchPort(_) | FibError::PortNotRoutable { .. } => code::INVALID,
        FibError::Lpm(_) | FibError::Create { .. } => code::INTERNAL,
    };
    ApiError::new(c, e.to_string(), Some(key))
}
