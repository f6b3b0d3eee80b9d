//! The raw layer checked and turned into the typed [`Config`]: ranges, syntax, references
//! between tables, and the cross checks of [`check_traffic`].

use std::collections::HashMap;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use mempool::accounting::Proto;
use mempool::{ExtError, PoolError, PoolParams, SocketId};

use super::eal::derived_eal_option;
use super::raw;
use super::*;
use crate::net::MacAddr;
use crate::port::PortIdx;

/// Checks the raw config and builds the typed one.
pub(super) fn validate(raw: raw::File) -> Result<Config, ConfigError> {
    let eal = validate_eal(raw.eal)?;
    let pool = validate_pool(raw.pool)?;
    let ports = validate_ports(raw.port)?;
    let forward = validate_forward(raw.forward, &ports)?;
    let poll = validate_poll(raw.poll)?;
    let workers = validate_workers(raw.worker, &eal, &ports)?;
    let routes = validate_routes(raw.route, &ports)?;
    let extensions = validate_extensions(raw.extensions)?;
    let mirror = raw.mirror.map(|m| validate_mirror(m, &ports)).transpose()?;
    let accounting = raw.accounting.map(validate_accounting).transpose()?;
    let neighbour = validate_neighbour(raw.neighbour)?;
    let fib = validate_fib(raw.fib)?;
    let control = validate_control(raw.control)?;
    let fpm = raw.fpm.map(validate_fpm).transpose()?;
    let metrics = raw.metrics.map(validate_metrics).transpose()?;
    let config = Config {
        eal,
        pool,
        forward,
        poll,
        ports,
        workers,
        routes,
        extensions,
        mirror,
        accounting,
        neighbour,
        fib,
        control,
        fpm,
        metrics,
    };
    check_traffic(&config)?;
    Ok(config)
}

fn validate_fib(raw: raw::Fib) -> Result<crate::fib::FibCapacity, ConfigError> {
    Ok(crate::fib::FibCapacity {
        ipv4_max_routes: int("fib.ipv4_max_routes", raw.ipv4_max_routes, 1, 1 << 24)?,
        ipv4_tbl8_groups: int("fib.ipv4_tbl8_groups", raw.ipv4_tbl8_groups, 1, 1 << 24)?,
        ipv6_max_routes: int("fib.ipv6_max_routes", raw.ipv6_max_routes, 1, 1 << 24)?,
        ipv6_tbl8_groups: int("fib.ipv6_tbl8_groups", raw.ipv6_tbl8_groups, 1, 1 << 24)?,
        // rte_lpm6 keeps 21 bits of a next hop.
        max_next_hops: int("fib.max_next_hops", raw.max_next_hops, 1, 1 << 21)?,
    })
}

fn validate_control(raw: raw::Control) -> Result<ControlConfig, ConfigError> {
    let socket = match raw.socket {
        None => None,
        Some(s) if s.is_empty() || s.contains('\0') => {
            return Err(ConfigError::new("control.socket", ConfigErrorKind::InvalidChoice { value: s, expected: "a file path" }))
        }
        Some(s) => Some(std::path::PathBuf::from(s)),
    };
    Ok(ControlConfig {
        socket,
        max_clients: int("control.max_clients", raw.max_clients, 1, 1024)?,
        idle_timeout_ms: int("control.idle_timeout_ms", raw.idle_timeout_ms, 10, 86_400_000)?,
        max_request_bytes: int("control.max_request_bytes", raw.max_request_bytes, 1024, 1 << 30)?,
    })
}

fn validate_extensions(raw: raw::Extensions) -> Result<ExtensionsConfig, ConfigError> {
    let areas = int("extensions.areas", raw.areas, 64, 1 << 24)?;
    // The area pool's own rules, with the cache the forwarder will give it.
    if let Err(ExtError::InvalidParams { reason }) = crate::exts::area_params(areas, SocketId::ANY).check() {
        return Err(ConfigError::new("extensions.areas", ConfigErrorKind::Pool(reason)));
    }
    Ok(ExtensionsConfig { trace_every: int("extensions.trace_every", raw.trace_every, 0, 1_000_000)?, flow: raw.flow, areas })
}

fn validate_eal(raw: raw::Eal) -> Result<EalConfig, ConfigError> {
    let main_lcore = int("eal.main_lcore", raw.main_lcore, 0, i64::from(MAX_LCORES) - 1)?;
    let main_cpu = raw.main_cpu.map(|c| int("eal.main_cpu", c, 0, i64::from(MAX_CPUS) - 1)).transpose()?;
    check_name("eal.file_prefix", &raw.file_prefix)?;
    for (i, arg) in raw.args.iter().enumerate() {
        if let Some(from) = derived_eal_option(arg) {
            return Err(ConfigError::new(format!("eal.args[{i}]"), ConfigErrorKind::ForbiddenEalArg { arg: arg.clone(), from }));
        }
    }
    let memory_mb = int("eal.memory_mb", raw.memory_mb, 16, 1 << 20)?;
    if raw.memory != EalMemory::Auto {
        if let Some(i) = raw.args.iter().position(|a| names_memory(a)) {
            return Err(ConfigError::new(
                format!("eal.args[{i}]"),
                ConfigErrorKind::MemoryTwice { arg: raw.args[i].clone(), memory: raw.memory },
            ));
        }
    }
    Ok(EalConfig { memory: raw.memory, memory_mb, main_lcore, main_cpu, file_prefix: raw.file_prefix, args: raw.args })
}

/// Whether an EAL argument says where memory comes from (then `eal.memory = "auto"` leaves
/// it to the arguments).
pub(super) fn names_memory(arg: &str) -> bool {
    let name = arg.split_once('=').map_or(arg, |(name, _)| name);
    matches!(name, "--no-huge" | "--socket-mem" | "--in-memory" | "--legacy-mem")
        || (arg.starts_with("-m") && !arg.starts_with("--"))
}

fn validate_pool(raw: raw::Pool) -> Result<PoolConfig, ConfigError> {
    const MIN_MBUFS: i64 = 1024;
    let mbufs = match raw.mbufs {
        0 => None,
        n if n < MIN_MBUFS => {
            return Err(ConfigError::new("pool.mbufs", ConfigErrorKind::TooFewMbufs { min: MIN_MBUFS, got: n }))
        }
        n => Some(int("pool.mbufs", n, MIN_MBUFS, i64::from(u32::MAX))?),
    };
    let pool = PoolConfig {
        mbufs,
        cache: int("pool.cache", raw.cache, 0, i64::from(dpdk_sys::RTE_MEMPOOL_CACHE_MAX_SIZE))?,
        data_room: int("pool.data_room", raw.data_room, 256, 65535)?,
        priv_size: int("pool.priv_size", raw.priv_size, 0, 65535)?,
    };
    // DPDK's own rules (cache against size, priv_size alignment, headroom), as mempool
    // checks them before rte_pktmbuf_pool_create; a pool sized at run time has at least
    // mbufs_needed's floor.
    let params = PoolParams {
        name: "mbuf_pool_s0".to_owned(),
        size: mbufs.unwrap_or(mempool::MIN_POOL_SIZE),
        cache: pool.cache,
        priv_size: pool.priv_size,
        data_room: pool.data_room,
        socket: SocketId::ANY,
    };
    match params.check() {
        Err(PoolError::Invalid { reason, .. }) => Err(ConfigError::new("pool", ConfigErrorKind::Pool(reason))),
        _ => Ok(pool),
    }
}

fn validate_ports(raw: Vec<raw::Port>) -> Result<Vec<PortConfig>, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::new("port".to_owned(), ConfigErrorKind::Empty { what: "[[port]] table" }));
    }
    let mut ports: Vec<PortConfig> = Vec::with_capacity(raw.len());
    for (i, raw_port) in raw.into_iter().enumerate() {
        let port = validate_port(i, raw_port)?;
        if let Some(j) = ports.iter().position(|p| p.name == port.name) {
            return Err(ConfigError::new(
                format!("port[{i}].name"),
                ConfigErrorKind::Duplicate { value: format!("{:?}", port.name), first: format!("port[{j}]") },
            ));
        }
        if let Some(j) = ports.iter().position(|p| p.device == port.device) {
            return Err(ConfigError::new(
                format!("port[{i}].device"),
                ConfigErrorKind::Duplicate { value: format!("{:?}", port.device.name()), first: format!("port[{j}]") },
            ));
        }
        if let Some(j) = ports.iter().position(|p| p.kernel_name.is_some() && p.kernel_name == port.kernel_name) {
            return Err(ConfigError::new(
                format!("port[{i}].kernel_name"),
                ConfigErrorKind::Duplicate {
                    value: format!("{:?}", port.kernel_name.as_deref().unwrap_or("")),
                    first: format!("port[{j}]"),
                },
            ));
        }
        ports.push(port);
    }
    Ok(ports)
}

fn validate_port(i: usize, raw: raw::Port) -> Result<PortConfig, ConfigError> {
    let key = |field: &str| format!("port[{i}].{field}");

    let name = raw.name.ok_or_else(|| ConfigError::new(key("name"), ConfigErrorKind::Missing))?;
    check_name(&key("name"), &name)?;
    let device_str = raw.device.ok_or_else(|| ConfigError::new(key("device"), ConfigErrorKind::Missing))?;
    let device = parse_device(&device_str)
        .ok_or_else(|| ConfigError::new(key("device"), ConfigErrorKind::InvalidDevice { value: device_str }))?;
    if let Err(problem) = check_devargs(&raw.args) {
        return Err(ConfigError::new(key("args"), ConfigErrorKind::InvalidDevargs { value: raw.args, problem }));
    }

    let rx_buffer = match (raw.rx_buffer, raw.mprq) {
        (raw::RxBuffer::PerPacket, None) => RxBuffer::PerPacket,
        (raw::RxBuffer::PerPacket, Some(_)) => {
            return Err(ConfigError::new(key("mprq"), ConfigErrorKind::MprqWithoutMultiPacket))
        }
        (raw::RxBuffer::MultiPacket, mprq) => {
            if let Device::Vdev { name, driver } = &device {
                return Err(ConfigError::new(
                    key("rx_buffer"),
                    ConfigErrorKind::MprqOnVdev { device: name.clone(), driver: driver.clone() },
                ));
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
                a.parse::<Ipv4Net>().map_err(|_| {
                    ConfigError::new(
                        key("ipv4"),
                        ConfigErrorKind::InvalidPrefix {
                            value: a,
                            expected: "an IPv4 address with prefix length, like 10.0.0.1/24",
                        },
                    )
                })
            })
            .transpose()?,
        ipv6: raw
            .ipv6
            .map(|a| {
                a.parse::<Ipv6Net>().map_err(|_| {
                    ConfigError::new(
                        key("ipv6"),
                        ConfigErrorKind::InvalidPrefix {
                            value: a,
                            expected: "an IPv6 address with prefix length, like 2001:db8::1/64",
                        },
                    )
                })
            })
            .transpose()?,
        check_chains: raw.check_chains,
        kernel_name: raw.kernel_name.map(|n| check_ifname(&key("kernel_name"), n)).transpose()?,
    })
}

fn validate_poll(raw: raw::Poll) -> Result<PollConfig, ConfigError> {
    let idle = match raw.idle_backoff {
        None => None,
        Some(b) => {
            let pause_after = int("poll.idle_backoff.pause_after", b.pause_after, 1, i64::from(u32::MAX))?;
            let sleep_after = int("poll.idle_backoff.sleep_after", b.sleep_after, 1, i64::from(u32::MAX))?;
            if pause_after > sleep_after {
                return Err(ConfigError::new(
                    "poll.idle_backoff.pause_after".to_owned(),
                    ConfigErrorKind::OutOfOrder {
                        value: pause_after,
                        other_key: "poll.idle_backoff.sleep_after".to_owned(),
                        other: sleep_after,
                    },
                ));
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
            return Err(ConfigError::new(
                key("min"),
                ConfigErrorKind::OutOfOrder { value: min, other_key: key("pressure"), other: pressure },
            ));
        }
        if pressure > max {
            return Err(ConfigError::new(
                key("pressure"),
                ConfigErrorKind::OutOfOrder { value: pressure, other_key: key("max"), other: max },
            ));
        }
        Ok(ProtoLimits { min: min.into(), pressure: pressure.into(), max: max.into() })
    };
    let backlog = int("accounting.backlog", raw.backlog, 0, 1 << 20)?;
    let backlog_under_pressure = int("accounting.backlog_under_pressure", raw.backlog_under_pressure, 0, 1 << 20)?;
    if backlog_under_pressure > backlog {
        return Err(ConfigError::new(
            "accounting.backlog_under_pressure".to_owned(),
            ConfigErrorKind::OutOfOrder {
                value: backlog_under_pressure,
                other_key: "accounting.backlog".to_owned(),
                other: backlog,
            },
        ));
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
        neigh_queue_bypass: raw.neigh_queue_bypass,
        neigh_queue_budget: int("accounting.neigh_queue_budget", raw.neigh_queue_budget, 0, i64::MAX)?,
    })
}

/// A Linux interface name (`dev_valid_name` in net/core/dev.c): 1 to 15 bytes
/// (IFNAMSIZ - 1), no '/', ':' or white space, not "." or "..".
fn check_ifname(key: &str, name: String) -> Result<String, ConfigError> {
    let ok = !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace());
    if ok {
        Ok(name)
    } else {
        Err(ConfigError::new(key, ConfigErrorKind::InvalidIfname { value: name }))
    }
}

fn validate_fpm(raw: raw::Fpm) -> Result<crate::fpm::FpmConfig, ConfigError> {
    let listen: std::net::SocketAddr = raw.listen.parse().map_err(|_| {
        ConfigError::new("fpm.listen", ConfigErrorKind::InvalidListen { value: raw.listen.clone(), problem: "not ADDRESS:PORT" })
    })?;
    if listen.port() == 0 {
        return Err(ConfigError::new("fpm.listen", ConfigErrorKind::InvalidListen { value: raw.listen, problem: "port 0" }));
    }
    let ms = |key: &str, v: i64| int::<u64>(key, v, 0, 3_600_000).map(std::time::Duration::from_millis);
    Ok(crate::fpm::FpmConfig {
        listen,
        sweep_after: ms("fpm.sweep_after_ms", raw.sweep_after_ms)?,
        replay_quiet: ms("fpm.replay_quiet_ms", raw.replay_quiet_ms)?,
    })
}

fn validate_metrics(raw: raw::Metrics) -> Result<MetricsConfig, ConfigError> {
    let listen = raw
        .listen
        .parse()
        .map_err(|_| ConfigError::new("metrics.listen", ConfigErrorKind::InvalidSocketAddr { value: raw.listen.clone() }))?;
    Ok(MetricsConfig { listen })
}

fn validate_mirror(raw: raw::Mirror, ports: &[PortConfig]) -> Result<MirrorConfig, ConfigError> {
    let name = raw.port.ok_or_else(|| ConfigError::new("mirror.port".to_owned(), ConfigErrorKind::Missing))?;
    let port = port_index(ports, &name, "mirror.port".to_owned())?;
    let proto = match raw.proto.as_deref().unwrap_or("any") {
        "any" => None,
        name => Some(Proto::from_name(name).ok_or_else(|| {
            ConfigError::new(
                "mirror.proto".to_owned(),
                ConfigErrorKind::InvalidChoice { value: name.to_owned(), expected: "any, tcp, udp, icmp or other" },
            )
        })?),
    };
    Ok(MirrorConfig { port, proto })
}

fn validate_neighbour(raw: raw::Neighbour) -> Result<crate::neigh::NeighParams, ConfigError> {
    use std::time::Duration;
    let key = |f: &str| format!("neighbour.{f}");
    let n = |f: &str, v: i64, min: i64, max: i64| int::<u32>(&key(f), v, min, max);
    let unres_qlen = n("unres_qlen", raw.unres_qlen, 1, 1 << 20)?;
    let unres_qlen_under_pressure = n("unres_qlen_under_pressure", raw.unres_qlen_under_pressure, 1, 1 << 20)?;
    let (t1, t2, t3) = (
        n("gc_thresh1", raw.gc_thresh1, 0, 1 << 24)?,
        n("gc_thresh2", raw.gc_thresh2, 0, 1 << 24)?,
        n("gc_thresh3", raw.gc_thresh3, 1, 1 << 24)?,
    );
    for (a, an, b, bn) in [
        (unres_qlen_under_pressure, "unres_qlen_under_pressure", unres_qlen, "unres_qlen"),
        (t1, "gc_thresh1", t2, "gc_thresh2"),
        (t2, "gc_thresh2", t3, "gc_thresh3"),
    ] {
        if a > b {
            return Err(ConfigError::new(key(an), ConfigErrorKind::OutOfOrder { value: a, other_key: key(bn), other: b }));
        }
    }
    let ms = |v: u32| Duration::from_millis(v.into());
    let secs = |v: u32| Duration::from_secs(v.into());
    Ok(crate::neigh::NeighParams {
        base_reachable_time: ms(n("base_reachable_time_ms", raw.base_reachable_time_ms, 1, 1 << 30)?),
        retrans_time: ms(n("retrans_time_ms", raw.retrans_time_ms, 0, 1 << 30)?),
        delay_first_probe_time: secs(n("delay_first_probe_time", raw.delay_first_probe_time, 0, 1 << 20)?),
        mcast_solicit: n("mcast_solicit", raw.mcast_solicit, 0, 255)?,
        ucast_solicit: n("ucast_solicit", raw.ucast_solicit, 0, 255)?,
        mcast_resolicit: n("mcast_resolicit", raw.mcast_resolicit, 0, 255)?,
        unres_qlen,
        unres_qlen_under_pressure,
        gc_stale_time: secs(n("gc_stale_time", raw.gc_stale_time, 0, 1 << 24)?),
        gc_thresh1: t1,
        gc_thresh2: t2,
        gc_thresh3: t3,
        arp_notify: raw.arp_notify,
        ndisc_notify: raw.ndisc_notify,
    })
}

fn validate_routes(raw: Vec<raw::Route>, ports: &[PortConfig]) -> Result<Vec<RouteConfig>, ConfigError> {
    let mut routes: Vec<RouteConfig> = Vec::with_capacity(raw.len());
    let mut seen: HashMap<IpNet, usize> = HashMap::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("route[{i}].{field}");
        let text = r.prefix.ok_or_else(|| ConfigError::new(key("prefix"), ConfigErrorKind::Missing))?;
        let prefix = parse_prefix(&key("prefix"), &text)?;
        let port_name = r.port.ok_or_else(|| ConfigError::new(key("port"), ConfigErrorKind::Missing))?;
        let port = port_index(ports, &port_name, key("port"))?;
        let via_mac = r.via_mac.map(|m| parse_mac(&key("via_mac"), &m)).transpose()?;
        let via = r.via.map(|v| parse_via(&key("via"), &v)).transpose()?;
        check_route(&format!("route[{i}]"), &RouteConfig { prefix, port, via, via_mac }, ports)?;
        if let Some(&j) = seen.get(&prefix) {
            return Err(ConfigError::new(
                key("prefix"),
                ConfigErrorKind::Duplicate { value: prefix.to_string(), first: format!("route[{j}]") },
            ));
        }
        seen.insert(prefix, i);
        routes.push(RouteConfig { prefix, port, via, via_mac });
    }
    Ok(routes)
}

/// A route's `via`: an address.
fn parse_via(key: &str, s: &str) -> Result<std::net::IpAddr, ConfigError> {
    s.parse().map_err(|_| {
        ConfigError::new(
            key.to_owned(),
            ConfigErrorKind::InvalidPrefix {
                value: s.to_owned(),
                expected: "an IPv4 or IPv6 address, like 10.0.2.2 or 2001:db8:2::2",
            },
        )
    })
}

/// The rules for a route's next hop, for `[[route]]` and `ctl route add` alike (`key` names
/// the route: `route[3]`): `via` is a unicast address of the prefix's family; a next hop
/// that is resolved (no `via_mac`: the gateway, or each destination of an on-link route)
/// needs the port's own address of that family to solicit from, and `via` on the port's
/// subnet (or IPv6 link-local), as Linux wants a gateway reachable on-link. A static entry
/// (`via` with `via_mac`) needs no address on the port, but a `via` still on its subnet if
/// it has one.
///
/// # Errors
/// The rule broken, at `KEY.via` or `KEY.port`.
pub fn check_route(key: &str, r: &RouteConfig, ports: &[PortConfig]) -> Result<(), ConfigError> {
    use std::net::IpAddr;
    let k = |f: &str| format!("{key}.{f}");
    if let Some(addr) = r.via {
        let same_family = matches!((addr, r.prefix), (IpAddr::V4(_), IpNet::V4(_)) | (IpAddr::V6(_), IpNet::V6(_)));
        if !same_family {
            return Err(ConfigError::new(
                k("via"),
                ConfigErrorKind::InvalidGateway {
                    value: addr.to_string(),
                    why: format!("not of the family of the prefix {}", r.prefix),
                },
            ));
        }
        let unusable = match addr {
            IpAddr::V4(a) => a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast(),
            IpAddr::V6(a) => a.is_unspecified() || a.is_loopback() || a.is_multicast(),
        };
        if unusable {
            return Err(ConfigError::new(
                k("via"),
                ConfigErrorKind::InvalidGateway { value: addr.to_string(), why: "not a unicast address".to_owned() },
            ));
        }
    }
    let port = &ports[r.port.index()];
    if r.via_mac.is_none() {
        check_resolvable(&k(if r.via.is_some() { "via" } else { "port" }), r.via, r.prefix, port, r.port)?;
    } else if let Some(v) = r.via {
        match check_resolvable(&k("via"), Some(v), r.prefix, port, r.port) {
            Err(e) if !matches!(e.kind, ConfigErrorKind::NeedsPortAddress { .. }) => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Resolving `via` (or, for an on-link route without one, the destinations in `prefix`) out
/// of `port` needs the port's own address of that family, and `via` on its subnet (or, for
/// IPv6, link-local), as Linux wants a gateway reachable on-link.
fn check_resolvable(
    key: &str,
    via: Option<std::net::IpAddr>,
    prefix: IpNet,
    port: &PortConfig,
    idx: PortIdx,
) -> Result<(), ConfigError> {
    use std::net::IpAddr;
    let (family, own): (&str, Option<IpNet>) = match prefix {
        IpNet::V4(_) => ("ipv4", port.ipv4.map(IpNet::V4)),
        IpNet::V6(_) => ("ipv6", port.ipv6.map(IpNet::V6)),
    };
    let Some(own) = own else {
        return Err(ConfigError::new(
            key.to_owned(),
            ConfigErrorKind::NeedsPortAddress { port: port.name.clone(), port_key: format!("{idx}.{family}") },
        ));
    };
    if let Some(v) = via {
        let link_local = matches!(v, IpAddr::V6(a) if a.is_unicast_link_local());
        if !own.trunc().contains(&v) && !link_local {
            return Err(ConfigError::new(
                key.to_owned(),
                ConfigErrorKind::InvalidGateway {
                    value: v.to_string(),
                    why: format!("not on port {:?}'s subnet {} (a gateway must be on-link)", port.name, own.trunc()),
                },
            ));
        }
        if v == own.addr() {
            return Err(ConfigError::new(
                key.to_owned(),
                ConfigErrorKind::InvalidGateway {
                    value: v.to_string(),
                    why: format!("the address of port {:?} itself", port.name),
                },
            ));
        }
    }
    Ok(())
}

/// `aa:bb:cc:dd:ee:ff` (or with `-`).
fn parse_mac(key: &str, s: &str) -> Result<MacAddr, ConfigError> {
    s.parse().map_err(|_| ConfigError::new(key.to_owned(), ConfigErrorKind::InvalidMac { value: s.to_owned() }))
}

/// A route's `ADDR/LEN`, IPv4 or IPv6, with its host bits clear.
fn parse_prefix(key: &str, s: &str) -> Result<IpNet, ConfigError> {
    let net: IpNet = s.parse().map_err(|_| {
        ConfigError::new(
            key.to_owned(),
            ConfigErrorKind::InvalidPrefix {
                value: s.to_owned(),
                expected: "an address with a prefix length, like 10.1.0.0/16 or 2001:db8::/32",
            },
        )
    })?;
    if net.trunc() != net {
        return Err(ConfigError::new(
            key.to_owned(),
            ConfigErrorKind::HostBitsSet { value: s.to_owned(), suggestion: net.trunc().to_string() },
        ));
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
            return Err(ConfigError::new(format!("forward.pairs[{p}]"), ConfigErrorKind::NotAPair { len: names.len() }));
        };
        let a = port_index(ports, a, format!("forward.pairs[{p}][0]"))?;
        let b = port_index(ports, b, format!("forward.pairs[{p}][1]"))?;
        for (side, port) in [(0, a), (1, b)] {
            if side == 1 && b == a {
                break; // [a, a]: a port paired with itself
            }
            if let Some(first) = paired.insert(port, p) {
                return Err(ConfigError::new(
                    format!("forward.pairs[{p}][{side}]"),
                    ConfigErrorKind::PortInTwoPairs {
                        name: ports[port.index()].name.clone(),
                        first: format!("forward.pairs[{first}]"),
                    },
                ));
            }
        }
        pairs.push((a, b));
    }
    Ok(ForwardConfig { mode: raw.mode, burst, pairs })
}

fn validate_workers(raw: Vec<raw::Worker>, eal: &EalConfig, ports: &[PortConfig]) -> Result<Vec<WorkerConfig>, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::new("worker".to_owned(), ConfigErrorKind::Empty { what: "[[worker]] table" }));
    }
    let mut workers: Vec<WorkerConfig> = Vec::with_capacity(raw.len());
    // Which worker rx entry polls each queue, for the "exactly once" check.
    let mut polled_by: HashMap<RxQueueRef, String> = HashMap::new();
    for (w, raw_worker) in raw.into_iter().enumerate() {
        let key = format!("worker[{w}].lcore");
        let lcore = raw_worker.lcore.ok_or_else(|| ConfigError::new(key.clone(), ConfigErrorKind::Missing))?;
        let lcore: u32 = int(&key, lcore, 0, i64::from(MAX_LCORES) - 1)?;
        if lcore == eal.main_lcore {
            return Err(ConfigError::new(key, ConfigErrorKind::WorkerOnMainLcore { lcore }));
        }
        if let Some(first) = workers.iter().position(|other| other.lcore == lcore) {
            return Err(ConfigError::new(
                key,
                ConfigErrorKind::Duplicate { value: lcore.to_string(), first: format!("worker[{first}]") },
            ));
        }

        let cpu = raw_worker.cpu.map(|c| int(&format!("worker[{w}].cpu"), c, 0, i64::from(MAX_CPUS) - 1)).transpose()?;

        if raw_worker.rx.is_empty() {
            return Err(ConfigError::new(format!("worker[{w}].rx"), ConfigErrorKind::Empty { what: "{ port, queue } entry" }));
        }
        let mut rx = Vec::with_capacity(raw_worker.rx.len());
        for (j, raw_ref) in raw_worker.rx.into_iter().enumerate() {
            let here = format!("worker[{w}].rx[{j}]");
            let queue_ref = validate_rx_ref(&here, raw_ref, ports)?;
            if let Some(first) = polled_by.insert(queue_ref, here.clone()) {
                return Err(ConfigError::new(
                    here,
                    ConfigErrorKind::QueuePolledTwice {
                        port: ports[queue_ref.port.index()].name.clone(),
                        queue: queue_ref.queue,
                        first,
                    },
                ));
            }
            rx.push(queue_ref);
        }
        workers.push(WorkerConfig { lcore, cpu, rx });
    }
    Ok(workers)
}

/// One `{ port, queue }` entry of a worker's `rx`; `here` is its key path.
fn validate_rx_ref(here: &str, raw: raw::RxRef, ports: &[PortConfig]) -> Result<RxQueueRef, ConfigError> {
    let port_key = format!("{here}.port");
    let queue_key = format!("{here}.queue");
    let name = raw.port.ok_or_else(|| ConfigError::new(port_key.clone(), ConfigErrorKind::Missing))?;
    let queue = raw.queue.ok_or_else(|| ConfigError::new(queue_key.clone(), ConfigErrorKind::Missing))?;
    let port = port_index(ports, &name, port_key)?;
    let rx_queues = ports[port.index()].rx_queues;
    if queue < 0 {
        return Err(ConfigError::new(queue_key, ConfigErrorKind::TooSmall { min: 0, got: queue }));
    }
    if queue >= i64::from(rx_queues) {
        return Err(ConfigError::new(
            queue_key,
            ConfigErrorKind::NoSuchQueue { port: name, queue, port_key: port.to_string(), rx_queues },
        ));
    }
    Ok(RxQueueRef { port, queue: int(&queue_key, queue, 0, 65535)? })
}

/// Cross checks once everything is resolved: every RX queue is polled, every
/// polled port has somewhere to send, every sent-to port has a TX queue per
/// worker.
fn check_traffic(config: &Config) -> Result<(), ConfigError> {
    let mode = config.forward.mode;
    if mode.uses_pairs() && !config.routes.is_empty() {
        return Err(ConfigError::new(
            "route[0]".to_owned(),
            ConfigErrorKind::NotUsedByMode { mode: mode.name(), why: "only l3fwd routes" },
        ));
    }
    if mode.uses_pairs() && config.fpm.is_some() {
        return Err(ConfigError::new(
            "fpm".to_owned(),
            ConfigErrorKind::NotUsedByMode { mode: mode.name(), why: "zebra's routes are for l3fwd" },
        ));
    }
    if !mode.uses_pairs() && !config.forward.pairs.is_empty() {
        return Err(ConfigError::new(
            "forward.pairs".to_owned(),
            ConfigErrorKind::NotUsedByMode { mode: mode.name(), why: "l3fwd sends by [[route]]" },
        ));
    }
    if config.mirror.is_some() && mode == Mode::Io {
        return Err(ConfigError::new(
            "mirror".to_owned(),
            ConfigErrorKind::NotUsedByMode {
                mode: mode.name(),
                why: "io moves whole bursts without looking at packets; use macswap, l2fwd or l3fwd",
            },
        ));
    }
    if mode == Mode::L2fwd {
        for (i, port) in PortIdx::all(config.ports.len()).zip(&config.ports) {
            if config.out_port(i).is_some() && port.peer_mac.is_none() {
                return Err(ConfigError::new(
                    format!("{i}.peer_mac"),
                    ConfigErrorKind::RequiredByMode {
                        mode: mode.name(),
                        why: "the destination MAC of packets sent out of this port",
                    },
                ));
            }
        }
    }
    for (w, worker) in config.workers.iter().enumerate() {
        for (j, queue_ref) in worker.rx.iter().enumerate() {
            if mode.uses_pairs() && config.out_port(queue_ref.port).is_none() {
                return Err(ConfigError::new(
                    format!("worker[{w}].rx[{j}].port"),
                    ConfigErrorKind::PortNotPaired { port: config.ports[queue_ref.port.index()].name.clone() },
                ));
            }
        }
    }
    for (i, port) in PortIdx::all(config.ports.len()).zip(&config.ports) {
        for queue in 0..port.rx_queues {
            let queue_ref = RxQueueRef { port: i, queue };
            if !config.workers.iter().any(|w| w.rx.contains(&queue_ref)) {
                return Err(ConfigError::new(
                    format!("{i}.rx_queues"),
                    ConfigErrorKind::QueueNotPolled { port: port.name.clone(), queue },
                ));
            }
        }
    }
    // Every worker may send on every port in tx_ports (pairs, routes, slow-path replies,
    // mirror); worker k owns TX queue k of each.
    let workers = config.workers.len();
    for i in config.tx_ports() {
        let port = config.port(i);
        if usize::from(port.tx_queues) < workers {
            return Err(ConfigError::new(
                format!("{i}.tx_queues"),
                ConfigErrorKind::TooFewTxQueues { port: port.name.clone(), workers, tx_queues: port.tx_queues },
            ));
        }
    }
    Ok(())
}

/// `got` as a `T`, if within `min..=max`.
fn int<T: TryFrom<i64>>(key: &str, got: i64, min: i64, max: i64) -> Result<T, ConfigError> {
    if got < min {
        return Err(ConfigError::new(key.to_owned(), ConfigErrorKind::TooSmall { min, got }));
    }
    if got > max {
        return Err(ConfigError::new(key.to_owned(), ConfigErrorKind::TooLarge { max, got }));
    }
    // Cannot fail when min..=max fits in T, as at every call site.
    T::try_from(got).map_err(|_| ConfigError::new(key.to_owned(), ConfigErrorKind::TooLarge { max, got }))
}

fn port_index(ports: &[PortConfig], name: &str, key: String) -> Result<PortIdx, ConfigError> {
    let i = ports
        .iter()
        .position(|p| p.name == name)
        .ok_or_else(|| ConfigError::new(key, ConfigErrorKind::UnknownPort { name: name.to_owned() }))?;
    Ok(PortIdx(i as u16))
}

/// Names (ports, file prefix): non-empty `[A-Za-z0-9_-]+`.
fn check_name(key: &str, value: &str) -> Result<(), ConfigError> {
    let ok = !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(key.to_owned(), ConfigErrorKind::InvalidName { value: value.to_owned() }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fixtures::*;

    #[test]
    fn minimal_config_gets_the_documented_defaults() {
        let config = Config::from_toml_str(&valid()).unwrap();
        assert_eq!(
            config.eal,
            EalConfig {
                memory: EalMemory::Auto,
                memory_mb: 512,
                main_lcore: 0,
                main_cpu: None,
                file_prefix: "dataplane".into(),
                args: vec![]
            }
        );
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
                kernel_name: None,
            }
        );
        assert_eq!(
            config.workers,
            vec![WorkerConfig {
                lcore: 1,
                cpu: None,
                rx: vec![RxQueueRef { port: PortIdx(0), queue: 0 }, RxQueueRef { port: PortIdx(1), queue: 0 }]
            }]
        );
    }

    #[test]
    fn fpm_is_off_unless_configured_and_loopback_by_default() {
        assert_eq!(Config::from_toml_str(&l3fwd()).unwrap().fpm, None);
        let fpm = Config::from_toml_str(&format!("{}[fpm]\n", l3fwd())).unwrap().fpm.unwrap();
        assert_eq!(fpm.listen, "127.0.0.1:2620".parse().unwrap());
        assert_eq!((fpm.sweep_after.as_millis(), fpm.replay_quiet.as_millis()), (10_000, 1_000));
        let text = format!("{}[fpm]\nlisten = \"[2001:db8::1]:2700\"\nsweep_after_ms = 0\n", l3fwd());
        let fpm = Config::from_toml_str(&text).unwrap().fpm.unwrap();
        assert_eq!((fpm.listen, fpm.sweep_after.as_millis()), ("[2001:db8::1]:2700".parse().unwrap(), 0));
    }

    #[test]
    fn errors_carry_the_key_and_a_typed_kind() {
        let err = Config::from_toml_str(&with_port1("rx_queues = 0")).unwrap_err();
        assert_eq!(err.key, "port[1].rx_queues");
        assert!(matches!(err.kind, ConfigErrorKind::TooSmall { min: 1, got: 0 }), "{:?}", err.kind);
        let err = Config::from_toml_str("[forward]\nburst = \n").unwrap_err();
        assert_eq!(err.key, "line 2, column 9");
        assert!(matches!(err.kind, ConfigErrorKind::Parse { .. }));
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
            ("worker cpu too big", with_workers(&WORKER.replace("lcore = 1", "lcore = 1\ncpu = 1024")), "worker[0].cpu: must be at most 1023"),
            ("main cpu negative", format!("[eal]\nmain_cpu = -1\n{}", valid()), "eal.main_cpu: must be at least 0"),
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
            ("priv_size not aligned", format!("{}[pool]\npriv_size = 12\n", valid()), "pool: priv_size 12 is not a multiple of 8"),
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
            ("fpm outside l3fwd", format!("{}[fpm]\n", valid()), "fpm: not used with forward.mode = \"io\""),
            ("fpm listen no port", format!("{}[fpm]\nlisten = \"127.0.0.1\"\n", l3fwd()), "fpm.listen: \"127.0.0.1\": not ADDRESS:PORT (expected ADDRESS:PORT as in zebra's `fpm address ADDRESS port PORT`"),
            ("fpm listen name", format!("{}[fpm]\nlisten = \"localhost:2620\"\n", l3fwd()), "fpm.listen: \"localhost:2620\": not ADDRESS:PORT"),
            ("fpm listen port 0", format!("{}[fpm]\nlisten = \"127.0.0.1:0\"\n", l3fwd()), "fpm.listen: \"127.0.0.1:0\": port 0"),
            ("fpm sweep", format!("{}[fpm]\nsweep_after_ms = -1\n", l3fwd()), "fpm.sweep_after_ms: must be at least 0, got -1"),
            ("kernel_name too long", with_port0("kernel_name = \"a-very-long-ifname\""), "port[0].kernel_name: \"a-very-long-ifname\" is not a Linux interface name"),
            ("kernel_name slash", with_port0("kernel_name = \"a/b\""), "port[0].kernel_name"),
            ("kernel_name twice", with_ports(&PORTS.replace("device = \"net_null0\"", "device = \"net_null0\"\nkernel_name = \"rc2\"").replace("device = \"net_null1\"", "device = \"net_null1\"\nkernel_name = \"rc2\"")), "port[1].kernel_name: \"rc2\" is already used by port[0]"),
            ("fpm unknown key", format!("{}[fpm]\nport = 2620\n", l3fwd()), "unknown field `port`"),
            ("mirror proto", format!("{}[mirror]\nport = \"null1\"\nproto = \"sctp\"\n", valid().replace("[forward]\n", "[forward]\nmode = \"macswap\"\n")), "mirror.proto: \"sctp\" is not one of any, tcp, udp, icmp or other"),
            ("mirror in io", format!("{}[mirror]\nport = \"null1\"\n", valid()), "mirror: not used with forward.mode = \"io\""),
            ("metrics listen not an address", format!("{}[metrics]\nlisten = \"localhost:9111\"\n", valid()), "metrics.listen: \"localhost:9111\" is not an IP address and port (e.g. \"127.0.0.1:9111\" or \"[::1]:9111\")"),
            ("metrics listen without port", format!("{}[metrics]\nlisten = \"127.0.0.1\"\n", valid()), "metrics.listen: \"127.0.0.1\" is not an IP address and port"),
            ("metrics unknown key", format!("{}[metrics]\nport = 9111\n", valid()), "unknown field `port`"),
            ("mirror port missing", format!("{}[mirror]\nport = \"nope\"\n", valid()), "mirror.port: port \"nope\" is not defined"),
            ("route outside l3fwd", format!("{}[[route]]\nprefix = \"10.0.0.0/8\"\nport = \"null0\"\nvia_mac = \"02:00:00:00:00:01\"\n", valid()), "route[0]: not used with forward.mode = \"io\""),
            ("route host bits", format!("{}[[route]]\nprefix = \"10.1.2.3/16\"\nport = \"null0\"\nvia_mac = \"02:00:00:00:00:01\"\n", valid()), "did you mean \"10.1.0.0/16\""),
            (
                "duplicate route",
                format!(
                    "{}[[route]]\nprefix = \"10.0.1.0/24\"\nport = \"null0\"\nvia_mac = \"02:00:00:00:00:01\"\n[[route]]\nprefix = \"10.0.1.0/24\"\nport = \"null1\"\nvia_mac = \"02:00:00:00:00:02\"\n",
                    valid().replace("[forward]\npairs = [[\"null0\", \"null1\"]]\n", "[forward]\nmode = \"l3fwd\"\n")
                ),
                "route[1].prefix: 10.0.1.0/24 is already used by route[0]",
            ),
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

    /// An l3fwd config with addresses on both ports and `routes` appended.
    fn l3(routes: &str) -> String {
        valid()
            .replace("[forward]\npairs = [[\"null0\", \"null1\"]]\n", "[forward]\nmode = \"l3fwd\"\n")
            .replace("device = \"net_null0\"\n", "device = \"net_null0\"\nipv4 = \"10.0.1.1/24\"\nipv6 = \"2001:db8:1::1/64\"\n")
            .replace("device = \"net_null1\"\n", "device = \"net_null1\"\nipv4 = \"10.0.2.1/24\"\n")
            + routes
    }

    fn route(prefix: &str, port: &str, extra: &str) -> String {
        format!("[[route]]\nprefix = \"{prefix}\"\nport = \"{port}\"\n{extra}\n")
    }

    #[test]
    fn routes_by_gateway_static_mac_or_on_link() {
        use std::net::IpAddr;
        let c = Config::from_toml_str(&l3(&[
            route("10.9.0.0/16", "null1", "via = \"10.0.2.2\""),
            route("2001:db8:9::/48", "null0", "via = \"2001:db8:1::2\""),
            route("2001:db8:8::/48", "null0", "via = \"fe80::1\""),
            route("10.8.0.0/16", "null1", "via = \"10.0.2.3\"\nvia_mac = \"02:00:00:00:00:03\""),
            route("10.7.0.0/16", "null1", "via_mac = \"02:00:00:00:00:04\""),
            route("10.6.0.0/16", "null1", ""),
        ]
        .concat()))
        .unwrap();
        let r = &c.routes;
        assert_eq!((r[0].via, r[0].via_mac), (Some("10.0.2.2".parse::<IpAddr>().unwrap()), None));
        assert!(r[0].resolves() && r[1].resolves() && r[2].resolves());
        assert_eq!(r[2].via, Some("fe80::1".parse().unwrap()), "a link-local gateway");
        assert_eq!(r[3].via_mac, Some("02:00:00:00:00:03".parse().unwrap()));
        assert!(!r[3].resolves(), "via with via_mac: a static entry");
        assert_eq!((r[4].via, r[4].resolves()), (None, false));
        assert_eq!((r[5].via, r[5].via_mac, r[5].resolves()), (None, None, true), "on-link");
        // A static next hop needs no address on its port.
        let text = valid().replace("[forward]\npairs = [[\"null0\", \"null1\"]]\n", "[forward]\nmode = \"l3fwd\"\n")
            + &route("10.9.0.0/16", "null1", "via = \"10.0.2.2\"\nvia_mac = \"02:00:00:00:00:03\"");
        assert!(Config::from_toml_str(&text).is_ok());
    }

    #[test]
    fn bad_gateways_name_the_key() {
        for (what, routes, expected) in [
            (
                "family",
                route("10.9.0.0/16", "null1", "via = \"2001:db8:1::2\""),
                "route[0].via: \"2001:db8:1::2\" cannot be a gateway: not of the family of the prefix 10.9.0.0/16",
            ),
            (
                "not an address",
                route("10.9.0.0/16", "null1", "via = \"10.0.2\""),
                "route[0].via: \"10.0.2\" is not an IPv4 or IPv6 address",
            ),
            (
                "multicast",
                route("10.9.0.0/16", "null1", "via = \"224.0.0.1\""),
                "route[0].via: \"224.0.0.1\" cannot be a gateway: not a unicast address",
            ),
            ("broadcast", route("10.9.0.0/16", "null1", "via = \"255.255.255.255\""), "not a unicast address"),
            (
                "off-link",
                route("10.9.0.0/16", "null1", "via = \"10.0.1.2\""),
                "route[0].via: \"10.0.1.2\" cannot be a gateway: not on port \"null1\"'s subnet 10.0.2.0/24",
            ),
            ("own address", route("10.9.0.0/16", "null1", "via = \"10.0.2.1\""), "the address of port \"null1\" itself"),
            (
                "no IPv6 on the port",
                route("2001:db8:9::/48", "null1", "via = \"fe80::1\""),
                "route[0].via: resolving this next hop needs an address of its family on port \"null1\" (port[1].ipv6)",
            ),
            (
                "on-link without an address",
                route("2001:db8:9::/48", "null1", ""),
                "route[0].port: resolving this next hop needs an address of its family on port \"null1\" (port[1].ipv6)",
            ),
        ] {
            let msg = Config::from_toml_str(&l3(&routes)).map(|_| ()).unwrap_err().to_string();
            assert!(msg.contains(expected), "{what}: {msg:?} does not contain {expected:?}");
        }
    }

    #[test]
    fn neighbour_knobs_default_to_linux_and_are_checked() {
        assert_eq!(Config::from_toml_str(&valid()).unwrap().neighbour, crate::neigh::NeighParams::LINUX);
        let explicit = format!(
            "{}[neighbour]\nbase_reachable_time_ms = 30000\nretrans_time_ms = 1000\ndelay_first_probe_time = 5\nmcast_solicit = 3\nucast_solicit = 3\nmcast_resolicit = 0\nunres_qlen = 101\nunres_qlen_under_pressure = 3\ngc_stale_time = 60\ngc_thresh1 = 128\ngc_thresh2 = 512\ngc_thresh3 = 1024\n",
            valid()
        );
        assert_eq!(Config::from_toml_str(&explicit).unwrap().neighbour, crate::neigh::NeighParams::LINUX);
        let short =
            Config::from_toml_str(&format!("{}[neighbour]\nbase_reachable_time_ms = 2000\nretrans_time_ms = 100\n", valid()))
                .unwrap();
        assert_eq!(short.neighbour.base_reachable_time, std::time::Duration::from_secs(2));
        assert_eq!(short.neighbour.retrans_time, std::time::Duration::from_millis(100));
        for (text, expected) in [
            ("gc_thresh1 = 600", "neighbour.gc_thresh1: must not be above neighbour.gc_thresh2 (600 > 512)"),
            ("gc_thresh3 = 100", "neighbour.gc_thresh2: must not be above neighbour.gc_thresh3 (512 > 100)"),
            ("unres_qlen = 0", "neighbour.unres_qlen: must be at least 1"),
            ("unres_qlen = 2", "neighbour.unres_qlen_under_pressure: must not be above neighbour.unres_qlen (3 > 2)"),
            ("base_reachable_time_ms = 0", "neighbour.base_reachable_time_ms: must be at least 1"),
            ("mcast_solicit = 256", "neighbour.mcast_solicit: must be at most 255"),
            ("retrans_time = 1", "unknown field `retrans_time`"),
        ] {
            let msg = Config::from_toml_str(&format!("{}[neighbour]\n{text}\n", valid())).map(|_| ()).unwrap_err().to_string();
            assert!(msg.contains(expected), "{text}: {msg:?} does not contain {expected:?}");
        }
    }

    #[test]
    fn metrics_are_off_unless_configured_and_default_to_loopback() {
        assert_eq!(Config::from_toml_str(&valid()).unwrap().metrics, None);
        let on = Config::from_toml_str(&format!("{}[metrics]\n", valid())).unwrap();
        assert_eq!(on.metrics, Some(MetricsConfig { listen: "127.0.0.1:9111".parse().unwrap() }));
        for listen in ["0.0.0.0:9111", "[::1]:0", "[::]:9100", "192.0.2.1:80"] {
            let c = Config::from_toml_str(&format!("{}[metrics]\nlisten = \"{listen}\"\n", valid())).unwrap();
            assert_eq!(c.metrics.unwrap().listen, listen.parse().unwrap(), "{listen}");
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
