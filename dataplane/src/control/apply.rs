//! `ctl apply`: the difference between the running config and a new one, split into what
//! can change live and what needs a restart.
//!
//! Live: `[[route]]` (a route's `via_mac` is its static neighbour), the ports' own
//! addresses (`ipv4`, `ipv6`, when the slow path runs; their connected routes follow), `[mirror]` (when the extension
//! framework runs), `[poll]`, and in `[accounting]` the limits, backlog lengths and
//! budgets. Anything else that differs is refused with its key, and nothing changes.

use std::collections::HashMap;

use ipnet::IpNet;

use super::api::{code, ApiError};
use crate::config::{Config, PortConfig};
use crate::fib::{Origin, RouteChange};
use crate::forwarder::{connected_routes, route_of};

/// What the running forwarder can change live.
#[derive(Debug, Clone)]
pub struct Abilities {
    /// l3fwd: routes can change.
    pub routes: bool,
    /// The slow path runs: the ports' addresses can change.
    pub addresses: bool,
    /// The extension framework runs: the mirror can change.
    pub mirror: bool,
    /// Per port: every worker has a TX queue on it.
    pub tx_capable: Vec<bool>,
}

/// A change found live-applicable.
#[derive(Debug, Default)]
pub struct Plan {
    /// Route changes, deletes first.
    pub routes: Vec<RouteChange>,
    /// For each route change, the key that names it (`route[3]`).
    pub route_keys: Vec<String>,
    /// Whether `[poll]`, `[mirror]`, the backlogs or the addresses change.
    pub live: bool,
    /// Whether the accounting limits or budgets change.
    pub accounting: bool,
    /// One line per change, for people.
    pub lines: Vec<String>,
    /// Counts: add, replace, delete.
    pub counts: [usize; 3],
}

fn restart(key: &str, what: &str) -> ApiError {
    ApiError::new(
        code::NEEDS_RESTART,
        format!("{what} cannot change while the forwarder runs; restart with the new config"),
        Some(key),
    )
}

/// Compares field by field and names the first that differs.
macro_rules! same {
    ($old:expr, $new:expr, $prefix:expr, [$($f:ident),*]) => {
        $(
            if $old.$f != $new.$f {
                return Err(restart(&format!("{}.{}", $prefix, stringify!($f)), stringify!($f)));
            }
        )*
    };
}

/// The plan that moves `old` to `new`, or the key of the first difference that needs a
/// restart (or that cannot be applied here, such as a route to a port without TX queues).
///
/// # Errors
/// `needs_restart` or `invalid`, with the key.
pub fn diff(old: &Config, new: &Config, can: &Abilities) -> Result<Plan, ApiError> {
    let mut plan = Plan::default();
    same!(old.eal, new.eal, "eal", [memory, memory_mb, main_lcore, main_cpu, file_prefix, args]);
    same!(old.pool, new.pool, "pool", [mbufs, cache, data_room, priv_size]);
    same!(old.forward, new.forward, "forward", [mode, burst, pairs]);
    same!(old.extensions, new.extensions, "extensions", [trace_every, flow, areas]);
    same!(old.fib, new.fib, "fib", [ipv4_max_routes, ipv4_tbl8_groups, ipv6_max_routes, ipv6_tbl8_groups, max_next_hops]);
    same!(old.control, new.control, "control", [socket, max_clients, idle_timeout_ms, max_request_bytes]);
    if old.neighbour != new.neighbour {
        return Err(restart("neighbour", "the neighbour subsystem's knobs"));
    }
    if old.metrics != new.metrics {
        return Err(restart("metrics.listen", "the metrics endpoint"));
    }
    if old.fpm != new.fpm {
        return Err(restart("fpm", "the FPM listener (zebra's routes)"));
    }
    if old.workers != new.workers {
        let i =
            old.workers.iter().zip(&new.workers).position(|(a, b)| a != b).unwrap_or(old.workers.len().min(new.workers.len()));
        return Err(restart(&format!("worker[{i}]"), "the workers and the queues they poll"));
    }
    if old.ports.len() != new.ports.len() {
        return Err(restart("port", "the set of ports"));
    }
    for (i, (a, b)) in old.ports.iter().zip(&new.ports).enumerate() {
        let p = format!("port[{i}]");
        same!(
            a,
            b,
            p,
            [
                name,
                device,
                args,
                rx_queues,
                tx_queues,
                rx_desc,
                tx_desc,
                promiscuous,
                mtu,
                rx_buffer,
                peer_mac,
                check_chains,
                kernel_name
            ]
        );
        if a.ipv4 != b.ipv4 || a.ipv6 != b.ipv6 {
            let key = if a.ipv4 != b.ipv4 { format!("{p}.ipv4") } else { format!("{p}.ipv6") };
            if !can.addresses {
                return Err(restart(
                    &key,
                    "the forwarder's own addresses, without a slow path running (no port had one at start)",
                ));
            }
            if !can.tx_capable[i] {
                return Err(ApiError::new(
                    code::INVALID,
                    format!("port {:?} has fewer TX queues than workers: replies from it need a restart", b.name),
                    Some(&key),
                ));
            }
            plan.live = true;
            plan.lines.push(format!("{p} ({}): addresses {} -> {}", b.name, addrs(a), addrs(b)));
        }
    }
    if old.poll != new.poll {
        plan.live = true;
        let (a, b) = (&old.poll, &new.poll);
        for (key, x, y) in [
            ("budget", a.budget, b.budget),
            ("budget_usecs", a.budget_usecs, b.budget_usecs),
            ("tx_drain_usecs", a.tx_drain_usecs, b.tx_drain_usecs),
            ("sample_every", a.sample_every, b.sample_every),
        ] {
            if x != y {
                plan.lines.push(format!("poll.{key} {x} -> {y}"));
            }
        }
        if a.idle != b.idle {
            let show = |i: &Option<crate::config::IdleBackoff>| {
                i.as_ref().map_or("off".to_owned(), |i| {
                    format!("pause_after {} sleep_after {} sleep_usecs {}", i.pause_after, i.sleep_after, i.sleep_usecs)
                })
            };
            plan.lines.push(format!("poll.idle_backoff {} -> {}", show(&a.idle), show(&b.idle)));
        }
    }
    if old.mirror != new.mirror {
        if !can.mirror {
            return Err(restart(
                "mirror",
                "the mirror, without the packet-extension framework running (no mirror, trace or flow at start)",
            ));
        }
        if let Some(m) = &new.mirror {
            if !can.tx_capable[m.port.index()] {
                return Err(ApiError::new(
                    code::INVALID,
                    format!("port {:?} has fewer TX queues than workers", new.port(m.port).name),
                    Some("mirror.port"),
                ));
            }
        }
        plan.live = true;
        let show = |m: &Option<crate::config::MirrorConfig>| {
            m.as_ref().map_or("off".to_owned(), |m| {
                format!("port {} proto {}", new.port(m.port).name, m.proto.map_or("any", |p| p.name()))
            })
        };
        plan.lines.push(format!("mirror {} -> {}", show(&old.mirror), show(&new.mirror)));
    }
    match (&old.accounting, &new.accounting) {
        (None, None) => {}
        (Some(a), Some(b)) => {
            same!(a, b, "accounting", [batch_pages, backlog_bypass, punt_bypass, neigh_queue_bypass, neigh_queue_budget]);
            if a != b {
                plan.accounting = true;
                plan.live |= a.backlog != b.backlog || a.backlog_under_pressure != b.backlog_under_pressure;
                plan.lines.push("accounting: limits, backlogs or budgets changed".to_owned());
            }
        }
        _ => return Err(restart("accounting", "turning memory accounting on or off")),
    }
    diff_routes(old, new, can, &mut plan)?;
    Ok(plan)
}

fn addrs(p: &PortConfig) -> String {
    let v: Vec<String> = p.ipv4.iter().map(ToString::to_string).chain(p.ipv6.iter().map(ToString::to_string)).collect();
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(" ")
    }
}

fn diff_routes(old: &Config, new: &Config, can: &Abilities, plan: &mut Plan) -> Result<(), ApiError> {
    diff_config_routes(old, new, can, plan)?;
    // The ports' connected subnets follow their addresses (a [[route]] of the same prefix
    // wins over one).
    let (was, is) = (connected_routes(old), connected_routes(new));
    for r in &was {
        if !is.iter().any(|x| x.prefix == r.prefix) && !new.routes.iter().any(|x| x.prefix == r.prefix) {
            plan.routes.push(RouteChange::Delete(r.prefix));
            plan.route_keys.push(format!("the connected route {}", r.prefix));
            plan.lines.push(format!("route del {} (connected)", r.prefix));
            plan.counts[2] += 1;
        }
    }
    for r in &is {
        if !was.contains(r) {
            plan.routes.push(RouteChange::Set(r.clone()));
            plan.route_keys.push(format!("the connected route {}", r.prefix));
            let dev = match &r.next_hop {
                crate::fib::Hop::One(k) => new.port(k.port).name.as_str(),
                crate::fib::Hop::Multi(_) | crate::fib::Hop::Drop => "",
            };
            plan.lines.push(format!("route add {} on-link dev {dev} (connected)", r.prefix));
            plan.counts[0] += 1;
        }
    }
    Ok(())
}

fn diff_config_routes(old: &Config, new: &Config, can: &Abilities, plan: &mut Plan) -> Result<(), ApiError> {
    if old.routes == new.routes {
        return Ok(());
    }
    if !can.routes {
        return Err(ApiError::new(code::NOT_SUPPORTED, "routes exist only in l3fwd mode", Some("route")));
    }
    let before: HashMap<IpNet, usize> = old.routes.iter().enumerate().map(|(i, r)| (r.prefix, i)).collect();
    let after: HashMap<IpNet, usize> = new.routes.iter().enumerate().map(|(i, r)| (r.prefix, i)).collect();
    for (i, r) in old.routes.iter().enumerate() {
        if !after.contains_key(&r.prefix) {
            plan.routes.push(RouteChange::Delete(r.prefix));
            plan.route_keys.push(format!("route (the running config's route[{i}], {})", r.prefix));
            plan.lines.push(format!("route del {}", r.prefix));
            plan.counts[2] += 1;
        }
    }
    for (i, r) in new.routes.iter().enumerate() {
        let prev = before.get(&r.prefix).map(|&j| &old.routes[j]);
        if prev == Some(r) {
            continue;
        }
        if !can.tx_capable[r.port.index()] {
            return Err(ApiError::new(
                code::INVALID,
                format!("port {:?} has fewer TX queues than workers; routes to it need a restart", new.port(r.port).name),
                Some(&format!("route[{i}].port")),
            ));
        }
        plan.routes.push(RouteChange::Set(route_of(r, Origin::Config)));
        plan.route_keys.push(format!("route[{i}]"));
        let (via, mac) = (r.via.map(|v| v.to_string()), r.via_mac.map(|m| m.to_string()));
        let line =
            format!("{} {} dev {}", r.prefix, super::handler::via_text(via.as_deref(), mac.as_deref()), new.port(r.port).name);
        if prev.is_some() {
            plan.lines.push(format!("route replace {line}"));
            plan.counts[1] += 1;
        } else {
            plan.lines.push(format!("route add {line}"));
            plan.counts[0] += 1;
        }
    }
    Ok(())
}
