//! The metric families: one function per group, each reading only a [`Published`].
//!
//! | family | type | labels | from |
//! |---|---|---|---|
//! | `dataplane_port_{rx,tx}_packets_total` | counter | port, port_id, driver | `rte_eth_stats` ipackets, opackets |
//! | `dataplane_port_{rx,tx}_bytes_total` | counter | port, port_id, driver | ibytes, obytes |
//! | `dataplane_port_rx_missed_packets_total` | counter | port, port_id, driver | imissed (RX ring full) |
//! | `dataplane_port_rx_nombuf_total` | counter | port, port_id, driver | rx_nombuf (mbuf allocation failures) |
//! | `dataplane_port_{rx,tx}_errors_total` | counter | port, port_id, driver | ierrors, oerrors |
//! | `dataplane_port_link_up` | gauge | port, port_id, driver | link status, 1 = up |
//! | `dataplane_queue_rx_packets_total`, `dataplane_queue_rx_bursts_total` | counter | lcore, port, queue | per polled RX queue |
//! | `dataplane_softnet_{processed,dropped,tx}_packets_total` | counter | lcore | softnet_stat columns 1, 2; TX hand-offs |
//! | `dataplane_softnet_time_squeeze_total` | counter | lcore | softnet_stat column 3 |
//! | `dataplane_softnet_{rounds,idle_rounds}_total` | counter | lcore | poll rounds |
//! | `dataplane_softnet_busy_seconds_total` | counter | lcore | busy cycles / TSC Hz |
//! | `dataplane_softnet_{punted,injected,mirrored,backlogged,backlog_sent,resolving}_packets_total`, `dataplane_softnet_ext_failures_total` | counter | lcore | the other [`Counter`]s |
//! | `dataplane_dropped_packets_total` | counter | reason | drops by [`DropReason`], all lcores |
//! | `dataplane_rx_to_tx_latency_seconds` | histogram | - | hdrhistogram buckets ([`super::LATENCY_BOUNDS_SECONDS`]) |
//! | `dataplane_pool_{size,available,in_use,cached}_objects` | gauge | pool | `rte_mempool` counts |
//! | `dataplane_proto_memory_{allocated,unflushed}_pages` | gauge | proto | memory_allocated, per-lcore batches |
//! | `dataplane_proto_memory_limit_pages` | gauge | proto, limit (min, pressure, max) | tcp_mem-like limits |
//! | `dataplane_proto_memory_under_pressure` | gauge | proto | memory_pressure, 1 = under pressure |
//! | `dataplane_proto_memory_{charges,failures,pressure_entries}_total` | counter | proto | |
//! | `dataplane_memory_group_{usage,limit}_bytes` | gauge | group | memcg-like groups; limit `+Inf` when unlimited |
//! | `dataplane_memory_group_failures_total` | counter | group | charges refused |
//! | `dataplane_memory_consumer_bytes`, `dataplane_memory_consumer_peak_bytes` | gauge | consumer, bypass_prot_mem | what each consumer class (tx_backlog, slow_path, neigh_queue) holds now, at most |
//! | `dataplane_memory_consumer_charged_bytes_total`, `dataplane_memory_consumer_failures_total` | counter | consumer, bypass_prot_mem | bytes charged in total, charges refused |
//! | `dataplane_slow_path_{answered,ignored,inject_full}_total` | counter | - | the slow path, when it runs |
//! | `dataplane_fpm_connected` | gauge | - | zebra's FPM session is up (1), with `[fpm]` |
//! | `dataplane_fpm_{sessions,session_errors,frames,upserts,deletes,unchanged,swept,skipped}_total` | counter | - | the FPM side ([`crate::fpm::FpmStatus`]) |
//! | `dataplane_fpm_routes` | gauge | origin | zebra's routes held, by origin (rtm_protocol) |
//! | `dataplane_neighbours` | gauge | state | neighbour table entries by state (`ip neigh`) |
//! | `dataplane_neigh_held_packets` | gauge | - | packets held until their neighbour resolves |
//! | `dataplane_neigh_{resolving,resolved_sent}_packets_total` | counter | - | routed packets taken for resolution, and sent |
//! | `dataplane_neigh_dropped_packets_total` | counter | reason | neigh_failed, neigh_queue_full, neigh_table_full, proto_mem, no_route |
//! | `dataplane_neigh_solicitations_total` | counter | kind (arp, ns) | solicitations sent, probes included |
//! | `dataplane_slow_path_discarded_total` | counter | reason | requests discarded as the RFCs say, by [`Discard`](crate::local::Discard) |
//! | `dataplane_routes` | gauge | origin (config, ctl, connected, neighbour, or an FRR protocol: static, bgp, ospf, ...) | routes in the FIB by who installed them (l3fwd) |
//! | `dataplane_fib_routes`, `dataplane_fib_max_routes` | gauge | family (ipv4, ipv6) | routes in each table and its capacity |
//! | `dataplane_fib_next_hops`, `dataplane_fib_next_hops_retired`, `dataplane_fib_max_next_hops` | gauge | - | next-hop ids in use, waiting for a grace period, capacity |
//!
//! Memory families appear only with `[accounting]`, slow-path ones only when the slow path
//! runs. Every other family is always there, with zeros (every drop reason, every port), so
//! `rate()` and alerts have series from the first scrape.
//!
//! To add a family: make what it
//! shows part of the [`Snapshot`](crate::Snapshot) the control thread takes, write one
//! `fn(&Published, &mut DescriptorEncoder) -> fmt::Result` below, and list it in
//! [`FAMILIES`].

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::{Published, LATENCY_BOUNDS_SECONDS};
use crate::forward::DropReason;
use crate::port::PortStats;
use crate::stats::Counter;

/// Writes some families of one scrape.
pub type Family = fn(&Published, &mut DescriptorEncoder) -> fmt::Result;

/// Every family, in exposition order.
pub const FAMILIES: &[Family] =
    &[ports, queues, softnet, drops, latency, pools, proto_memory, memory_groups, memory_consumers, slow_path, routes, fpm];

/// Encodes every family of `p`.
///
/// # Errors
/// Only those of the writer underneath (none for a `String`).
pub fn encode_all(p: &Published, e: &mut DescriptorEncoder) -> fmt::Result {
    FAMILIES.iter().try_for_each(|f| f(p, e))
}

/// The unit a name ends with, before `_total` (`# UNIT` in OpenMetrics).
fn unit(u: &str) -> Unit {
    match u {
        "bytes" => Unit::Bytes,
        "seconds" => Unit::Seconds,
        other => Unit::Other(other.to_owned()),
    }
}

/// One counter family: `name[_unit]_total`, one sample per label set.
fn counters<L: EncodeLabelSet>(
    e: &mut DescriptorEncoder,
    name: &str,
    u: Option<&str>,
    help: &str,
    samples: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let u = u.map(unit);
    let mut m = e.encode_descriptor(name, help, u.as_ref(), MetricType::Counter)?;
    for (labels, v) in samples {
        ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One gauge family.
fn gauges<L: EncodeLabelSet, V: prometheus_client::encoding::EncodeGaugeValue>(
    e: &mut DescriptorEncoder,
    name: &str,
    u: Option<&str>,
    help: &str,
    samples: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result {
    let u = u.map(unit);
    let mut m = e.encode_descriptor(name, help, u.as_ref(), MetricType::Gauge)?;
    for (labels, v) in samples {
        ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

type Labels<'a, const N: usize> = [(&'static str, &'a str); N];

/// The label set of a family with one sample.
const NO_LABELS: Labels<'static, 0> = [];

/// The device counters of each port.
fn ports(p: &Published, e: &mut DescriptorEncoder) -> fmt::Result {
    let ports = &p.snapshot.ports;
    let ids: Vec<String> = ports.iter().map(|r| r.id.0.to_string()).collect();
    let labels =
        || ports.iter().zip(&ids).map(|(r, id)| -> Labels<3> { [("port", &r.name), ("port_id", id), ("driver", &r.driver)] });
    type Field = fn(&PortStats) -> u64;
    let fields: [(&str, Option<&str>, &str, Field); 8] = [
        ("port_rx", Some("packets"), "Packets the device received (rte_eth_stats.ipackets).", |s| s.ipackets),
        ("port_tx", Some("packets"), "Packets the device sent (rte_eth_stats.opackets).", |s| s.opackets),
        ("port_rx", Some("bytes"), "Bytes the device received (rte_eth_stats.ibytes).", |s| s.ibytes),
        ("port_tx", Some("bytes"), "Bytes the device sent (rte_eth_stats.obytes).", |s| s.obytes),
        (
            "port_rx_missed",
            Some("packets"),
            "Packets the device dropped because its RX ring was full: the worker fell behind (rte_eth_stats.imissed).",
            |s| s.imissed,
        ),
        ("port_rx_nombuf", None, "RX mbuf allocation failures: the pool was empty (rte_eth_stats.rx_nombuf).", |s| s.rx_nombuf),
        ("port_rx_errors", None, "Erroneous received packets (rte_eth_stats.ierrors).", |s| s.ierrors),
        ("port_tx_errors", None, "Failed transmissions (rte_eth_stats.oerrors).", |s| s.oerrors),
    ];
    for (name, u, help, field) in fields {
        counters(e, name, u, help, labels().zip(ports).map(|(l, r)| (l, field(&r.stats))))?;
    }
    gauges(
        e,
        "port_link_up",
        None,
        "Whether the link is up (1) or down (0).",
        labels().zip(ports).map(|(l, r)| (l, i64::from(r.link.up))),
    )
}

/// Per polled RX queue: what its worker took from it.
fn queues(p: &Published, e: &mut DescriptorEncoder) -> fmt::Result {
    let s = &p.snapshot;
    let mut rows: Vec<([String; 3], u64, u64)> = Vec::new();
    for w in &s.workers {
        for (l, (rx, bursts)) in w.lanes.iter().zip(w.totals.lane_rx.iter().zip(&w.totals.lane_bursts)) {
            let port = s.ports.get(l.port.index()).map_or_else(|| l.port_id.0.to_string(), |r| r.name.clone());
            rows.push(([w.lcore.0.to_string(), port, l.queue.0.to_string()], *rx, *bursts));
        }
    }
    fn labels(k: &[String; 3]) -> Labels<'_, 3> {
        [("lcore", &k[0]), ("port", &k[1]), ("queue", &k[2])]
    }
    counters(
        e,
        "queue_rx",
        Some("packets"),
        "Packets a worker received from one RX queue.",
        rows.iter().map(|(k, rx, _)| (labels(k), *rx)),
    )?;
    counters(
        e,
        "queue_rx_bursts",
        None,
        "Non-empty RX bursts a worker took from one RX queue.",
        rows.iter().map(|(k, _, b)| (labels(k), *b)),
    )
}

/// Name, unit and help of a worker counter, as exported (busy cycles are exported in
/// seconds, see [`softnet`]).
fn counter_family(c: Counter) -> (&'static str, Option<&'static str>, &'static str) {
    match c {
        Counter::Rounds => ("softnet_rounds", None, "Poll rounds."),
        Counter::IdleRounds => ("softnet_idle_rounds", None, "Poll rounds that found no packet on any queue."),
        Counter::TimeSqueeze => (
            "softnet_time_squeeze",
            None,
            "Rounds that ended with the budget spent while a queue still returned a full burst (softnet_stat column 3).",
        ),
        Counter::BusyCycles => {
            ("softnet_busy", Some("seconds"), "Time spent in rounds that found packets (TSC cycles / TSC Hz).")
        }
        Counter::Punted => ("softnet_punted", Some("packets"), "Requests to the forwarder itself handed to the slow path."),
        Counter::Injected => ("softnet_injected", Some("packets"), "Slow-path replies this worker sent."),
        Counter::Mirrored => ("softnet_mirrored", Some("packets"), "Mirror copies made."),
        Counter::ExtFailures => ("softnet_ext_failures", None, "Packet extensions that could not be attached (no free area)."),
        Counter::Backlogged => ("softnet_backlogged", Some("packets"), "Packets the NIC refused that waited in a TX backlog."),
        Counter::BacklogSent => ("softnet_backlog_sent", Some("packets"), "Backlogged packets later sent."),
        Counter::Resolving => (
            "softnet_resolving",
            Some("packets"),
            "Routed packets handed to the slow path to wait for their neighbour's MAC (also punted).",
        ),
    }
}

/// Per worker lcore: /proc/net/softnet_stat's columns and the rest of [`Counter`].
fn softnet(p: &Published, e: &mut DescriptorEncoder) -> fmt::Result {
    let s = &p.snapshot;
    let lcores: Vec<String> = s.workers.iter().map(|w| w.lcore.0.to_string()).collect();
    let per = |f: &dyn Fn(&crate::stats::WorkerTotals) -> u64| -> Vec<(Labels<1>, u64)> {
        s.workers.iter().zip(&lcores).map(|(w, l)| ([("lcore", l.as_str())], f(&w.totals))).collect()
    };
    counters(
        e,
        "softnet_processed",
        Some("packets"),
        "Packets received from the worker's queues (softnet_stat column 1).",
        per(&|t| t.processed()),
    )?;
    counters(
        e,
        "softnet_dropped",
        Some("packets"),
        "Packets the worker freed instead of sending (softnet_stat column 2).",
        per(&|t| t.dropped()),
    )?;
    counters(e, "softnet_tx", Some("packets"), "Packets the worker handed to TX queues.", per(&|t| t.tx_packets()))?;
    let hz = s.tsc_hz.max(1) as f64;
    for &c in Counter::ALL {
        let (name, u, help) = counter_family(c);
        if c == Counter::BusyCycles {
            let m = e.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Counter);
            let mut m = m?;
            for (w, l) in s.workers.iter().zip(&lcores) {
                ConstCounter::new(w.totals[c] as f64 / hz).encode(m.encode_family(&[("lcore", l.as_str())])?)?;
            }
        } else {
            counters(e, name, u, help, per(&|t| t[c]))?;
        }
    }
    Ok(())
}

/// Drops by reason, summed over the workers (per lcore: `dataplane_softnet_dropped_packets_total`).
fn drops(p: &Published, e: &mut DescriptorEncoder) -> fmt::Result {
    let t = p.snapshot.total();
    counters(
        e,
        "dropped",
        Some("packets"),
        "Packets dropped, by reason, over every worker.",
        DropReason::ALL.iter().map(|&r| ([("reason", r.name())], t[r])),
    )
}

/// The RX-to-TX latency histogram.
fn latency(p: &Published, e: &mut DescriptorEncoder) -> fmt::Result {
    let b = &p.latency;
    let buckets: Vec<(f64, u64)> =
        LATENCY_BOUNDS_SECONDS.iter().copied().chain([f64::INFINITY]).zip(b.counts.iter().copied()).collect();
    let mut m = e.encode_descriptor(
        "rx_to_tx_latency",
        "Per sampled packet: time from its RX burst to the rte_eth_tx_burst that took it, since start.",
        Some(&Unit::Seconds),
        MetricType::Histogram,
    )?;
    m.encode_histogram::<prometheus_client::encoding::NoLabelSet>(b.sum_seconds, b.count, &buckets, None)
}

/// Occupancy of each pool (mbuf pools, the extension-area pool).
fn pools(p: &Published, e: &mut DescriptorEncoder) -> fmt::Result {
    let pools = &p.snapshot.pools;
    type Field = fn(&mempool::PoolStats) -> u32;
    let fields: [(&str, &str, Field); 4] = [
        ("pool_size", "Objects in the pool in all (mbufs, or extension areas).", |s| s.size),
        ("pool_available", "Free objects: in the shared ring plus every lcore cache.", |s| s.available),
        ("pool_in_use", "Objects out of the pool (size - available).", |s| s.in_use),
        ("pool_cached", "Free objects sitting in lcore caches.", |s| s.cached),
    ];
    for (name, help, field) in fields {
        gauges(e, name, Some("objects"), help, pools.iter().map(|r| ([("pool", r.name.as_str())], field(&r.stats))))?;
    }
    Ok(())
}

/// The per-protocol accounts (the kernel's memory_allocated, memory_pressure, tcp_mem).
fn proto_memory(p: &Published, e: &mut DescriptorEncoder) -> fmt::Result {
    let Some(m) = &p.snapshot.memory else { return Ok(()) };
    let proto = |x: &mempool::accounting::ProtoSnapshot| -> Labels<1> { [("proto", x.proto.name())] };
    gauges(
        e,
        "proto_memory_allocated",
        Some("pages"),
        "4 KiB pages charged to the protocol, as its limits see them (memory_allocated).",
        m.protos.iter().map(|x| (proto(x), x.pages)),
    )?;
    gauges(
        e,
        "proto_memory_unflushed",
        Some("pages"),
        "Pages charged in per-lcore batches not yet folded into the protocol's count.",
        m.protos.iter().map(|x| (proto(x), x.unflushed_pages)),
    )?;
    let limits = m.protos.iter().flat_map(|x| {
        let l = x.limits;
        [("min", l.min), ("pressure", l.pressure), ("max", l.max)]
            .map(|(name, v)| ([("proto", x.proto.name()), ("limit", name)], v))
    });
    gauges(e, "proto_memory_limit", Some("pages"), "The protocol's limits (like net.ipv4.tcp_mem): min, pressure, max.", limits)?;
    gauges(
        e,
        "proto_memory_under_pressure",
        None,
        "Whether the protocol is under memory pressure (1) or not (0).",
        m.protos.iter().map(|x| (proto(x), i64::from(x.under_pressure))),
    )?;
    counters(
        e,
        "proto_memory_charges",
        None,
        "Successful raises of the protocol's account.",
        m.protos.iter().map(|x| (proto(x), x.charges)),
    )?;
    counters(
        e,
        "proto_memory_failures",
        None,
        "Charges refused above the max limit (the packets were dropped as proto_mem).",
        m.protos.iter().map(|x| (proto(x), x.failures)),
    )?;
    counters(
        e,
        "proto_memory_pressure_entries",
        None,
        "Times the protocol entered memory pressure.",
        m.protos.iter().map(|x| (proto(x), x.pressure_entries)),
    )
}

/// The groups (memcg-like byte budgets: one per port, one for the slow path).
fn memory_groups(p: &Published, e: &mut DescriptorEncoder) -> fmt::Result {
    let Some(m) = &p.snapshot.memory else { return Ok(()) };
    fn group(g: &mempool::accounting::GroupSnapshot) -> Labels<'_, 1> {
        [("group", g.name.as_str())]
    }
    gauges(e, "memory_group_usage", Some("bytes"), "Bytes charged to the group.", m.groups.iter().map(|g| (group(g), g.bytes)))?;
    let limit = |g: &mempool::accounting::GroupSnapshot| {
        if g.limit_bytes == mempool::accounting::Group::UNLIMITED {
            f64::INFINITY
        } else {
            g.limit_bytes as f64
        }
    };
    gauges(
        e,
        "memory_group_limit",
        Some("bytes"),
        "The group's budget; +Inf when unlimited.",
        m.groups.iter().map(|g| (group(g), limit(g))),
    )?;
    counters(e, "memory_group_failures", None, "Charges the group refused.", m.groups.iter().map(|g| (group(g), g.failures)))
}

/// The consumer classes: what the TX backlogs, the slow path and the neighbour queues hold,
/// and whether each bypasses the protocol accounts.
fn memory_consumers(p: &Published, e: &mut DescriptorEncoder) -> fmt::Result {
    let Some(m) = &p.snapshot.memory else { return Ok(()) };
    fn class(c: &mempool::accounting::ClassSnapshot) -> Labels<'_, 2> {
        [("consumer", c.name.as_str()), ("bypass_prot_mem", if c.bypass_prot_mem { "true" } else { "false" })]
    }
    let it = || m.classes.iter();
    gauges(e, "memory_consumer", Some("bytes"), "Bytes the consumer class holds now.", it().map(|c| (class(c), c.bytes())))?;
    gauges(
        e,
        "memory_consumer_peak",
        Some("bytes"),
        "The most bytes the class held at once.",
        it().map(|c| (class(c), c.peak_bytes)),
    )?;
    counters(
        e,
        "memory_consumer_charged",
        Some("bytes"),
        "Bytes the class charged in total (through the protocol accounts, or bypassing them).",
        it().map(|c| (class(c), c.total_bytes_charged + c.total_bytes_bypassed)),
    )?;
    counters(e, "memory_consumer_failures", None, "Charges of the class refused.", it().map(|c| (class(c), c.failures)))
}

/// The slow path's counters, when it runs.
fn slow_path(p: &Published, e: &mut DescriptorEncoder) -> fmt::Result {
    let Some(sp) = &p.snapshot.slow_path else { return Ok(()) };
    for (name, help, v) in [
        ("slow_path_answered", "Requests to the forwarder's own addresses the slow path answered.", sp.answered),
        ("slow_path_ignored", "Valid requests with nothing to answer (freed).", sp.ignored),
        ("slow_path_inject_full", "Slow-path replies dropped on a full inject ring.", sp.inject_full),
    ] {
        ConstCounter::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)?;
    }
    counters(
        e,
        "slow_path_discarded",
        None,
        "Requests the slow path discarded silently, by the rule they broke.",
        crate::local::Discard::ALL.iter().map(|&d| ([("reason", d.name())], sp.discards(d))),
    )?;
    let n = &sp.neighbours;
    gauges(
        e,
        "neighbours",
        None,
        "Neighbour table entries by state (ip neigh).",
        crate::neigh::NeighState::ALL
            .iter()
            .map(|&st| ([("state", st.name())], n.entries.iter().filter(|x| x.state == st).count() as u64)),
    )?;
    gauges(e, "neigh_held", Some("packets"), "Packets held until their neighbour resolves.", [(NO_LABELS, n.held as u64)])?;
    let r = &sp.resolution;
    counters(
        e,
        "neigh_resolving",
        Some("packets"),
        "Routed packets taken by the slow path to wait for their neighbour's MAC.",
        [(NO_LABELS, r.taken)],
    )?;
    counters(e, "neigh_resolved_sent", Some("packets"), "Of those, sent to their neighbour.", [(NO_LABELS, r.sent)])?;
    counters(
        e,
        "neigh_dropped",
        Some("packets"),
        "Of those, dropped, by reason.",
        crate::neigh::NeighDrop::ALL
            .iter()
            .map(|&d| ([("reason", d.name())], r.drops[d as usize]))
            .chain([([("reason", "proto_mem")], r.proto_mem), ([("reason", "no_route")], r.no_route)]),
    )?;
    counters(
        e,
        "neigh_solicitations",
        None,
        "Solicitations sent: ARP requests and neighbour solicitations (probes included).",
        [([("kind", "arp")], n.resolver.arp_requests), ([("kind", "ns")], n.resolver.neighbor_solicits)],
    )
}

/// The route tables (l3fwd only): routes by origin and family, next hops.
fn routes(p: &Published, e: &mut DescriptorEncoder) -> fmt::Result {
    let Some(f) = &p.snapshot.fib else { return Ok(()) };
    let count = |n: usize| n as i64;
    gauges(
        e,
        "routes",
        None,
        "Routes in the FIB by who installed them: config (the config file), ctl (dataplane ctl), or the FRR protocol (static, bgp, ospf, ...).",
        f.by_origin.iter().map(|(o, &n)| ([("origin", o.as_str())], count(n))),
    )?;
    let fam = |v: &'static str| -> Labels<'static, 1> { [("family", v)] };
    gauges(
        e,
        "fib_routes",
        None,
        "Routes in the table of each address family, its default route included.",
        [(fam("ipv4"), count(f.ipv4_routes)), (fam("ipv6"), count(f.ipv6_routes))],
    )?;
    gauges(
        e,
        "fib_max_routes",
        None,
        "The table's capacity ([fib] ipv4_max_routes, ipv6_max_routes).",
        [(fam("ipv4"), i64::from(f.ipv4_max_routes)), (fam("ipv6"), i64::from(f.ipv6_max_routes))],
    )?;
    let none: [Labels<'static, 0>; 1] = [[]];
    for (name, help, v) in [
        ("fib_next_hops", "Next-hop ids in use (one per port and gateway).", count(f.next_hops)),
        ("fib_next_hops_retired", "Next-hop ids no route uses, reused after a grace period.", count(f.next_hops_retired)),
        ("fib_max_next_hops", "The next-hop table's capacity ([fib] max_next_hops).", i64::from(f.max_next_hops)),
    ] {
        gauges(e, name, None, help, none.iter().map(|l| (*l, v)))?;
    }
    Ok(())
}

/// zebra's FPM session and the routes it sent, with `[fpm]`.
fn fpm(p: &Published, e: &mut DescriptorEncoder) -> fmt::Result {
    let Some(f) = &p.snapshot.fpm else { return Ok(()) };
    let help = "Whether zebra's FPM session is up (1) or not (0).";
    ConstGauge::new(i64::from(f.connected)).encode(e.encode_descriptor("fpm_connected", help, None, MetricType::Gauge)?)?;
    for (name, help, v) in [
        ("fpm_sessions", "Connections from zebra accepted.", f.sessions),
        ("fpm_session_errors", "zebra sessions closed on bad input.", f.session_errors),
        ("fpm_frames", "FPM frames decoded.", f.frames),
        ("fpm_upserts", "Routes zebra installed or replaced.", f.upserts),
        ("fpm_deletes", "Routes zebra removed.", f.deletes),
        ("fpm_unchanged", "Routes zebra re-sent as held (replays).", f.unchanged),
        ("fpm_swept", "Routes removed after a replay because zebra no longer sent them.", f.swept),
        ("fpm_skipped", "Messages that are not routes the forwarder takes.", f.skipped),
    ] {
        ConstCounter::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)?;
    }
    let names: Vec<String> = f.routes_by_protocol.iter().map(|(o, _)| o.to_string()).collect();
    let samples = names.iter().zip(&f.routes_by_protocol).map(|(n, (_, c))| -> (Labels<1>, i64) { ([("origin", n)], *c as i64) });
    gauges(e, "fpm_routes", None, "zebra's routes held, by origin (rtm_protocol).", samples)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use hdrhistogram::Histogram;
    use mempool::accounting::{AccountingSnapshot, ClassSnapshot, Group, GroupSnapshot, Proto, ProtoLimits, ProtoSnapshot};
    use mempool::PoolStats;

    use super::super::{http::render, MetricsSlot, Published};
    use crate::eal::LcoreId;
    use crate::forward::DropReason;
    use crate::forwarder::{PoolReport, PortReport, SlowPathSnapshot, Snapshot};
    use crate::local::Discard;
    use crate::port::{LinkStatus, PortId, PortIdx, PortStats, QueueId};
    use crate::stats::{Counter, LaneId, WorkerSnapshot, WorkerTotals};

    /// A forwarder of `ports` ports (one RX queue each, spread over the workers) and
    /// `lcores` workers, with accounting (a group per port and the slow path's), a slow path
    /// and an extension-area pool: every family present, every counter non-zero.
    pub(crate) fn synthetic(ports: usize, lcores: usize) -> Published {
        let workers = (0..lcores)
            .map(|k| {
                let lanes: Vec<LaneId> = (k..ports)
                    .step_by(lcores)
                    .map(|p| LaneId { port: PortIdx(p as u16), port_id: PortId(p as u16), queue: QueueId(0) })
                    .collect();
                let mut t = WorkerTotals::new(lanes.len(), ports);
                for (i, &c) in Counter::ALL.iter().enumerate() {
                    t[c] = 1_000_000_007 * (i as u64 + 1);
                }
                for &r in DropReason::ALL {
                    t[r] = 12_345 + r.index() as u64;
                }
                t.lane_rx = lanes.iter().map(|l| 9_876_543_210 + u64::from(l.port.0)).collect();
                t.lane_bursts = t.lane_rx.iter().map(|n| n / 32).collect();
                t.port_tx = (0..ports as u64).map(|p| 1_234_567_890 + p).collect();
                WorkerSnapshot { lcore: LcoreId(k as u32 + 1), lanes, totals: t }
            })
            .collect();
        let port_reports = (0..ports)
            .map(|p| PortReport {
                name: format!("port{p}"),
                id: PortId(p as u16),
                driver: "net_null".into(),
                rx_buffer: "per_packet",
                link: LinkStatus { up: true, text: "Link up at 10 Gbps FDX Fixed".into() },
                stats: PortStats {
                    ipackets: 98_765_432_100,
                    opackets: 98_765_432_101,
                    ibytes: 6_320_987_654_400,
                    obytes: 6_320_987_654_464,
                    imissed: 1_234,
                    ierrors: 5,
                    oerrors: 6,
                    rx_nombuf: 7,
                },
            })
            .collect();
        let pools = ["mbuf_pool_s0", "mbuf_pool_s1", "dp_ext_areas"]
            .map(|name| PoolReport {
                name: name.into(),
                stats: PoolStats { size: 262_143, available: 200_000, in_use: 62_143, cached: 8_192 },
            })
            .to_vec();
        let limits = ProtoLimits { min: 4096, pressure: 6144, max: 8192 };
        let protos = Proto::ALL.map(|proto| ProtoSnapshot {
            proto,
            pages: 5_000,
            unflushed_pages: 64,
            under_pressure: proto == Proto::Udp,
            limits,
            charges: 123_456_789,
            failures: 42,
            pressure_entries: 3,
        });
        let mut groups: Vec<GroupSnapshot> = (0..ports)
            .map(|p| GroupSnapshot { name: format!("port_port{p}"), bytes: 1 << 20, limit_bytes: Group::UNLIMITED, failures: 1 })
            .collect();
        groups.push(GroupSnapshot { name: "slow_path".into(), bytes: 4096, limit_bytes: 4 << 20, failures: 0 });
        let class = |name: &str, bypass: bool| ClassSnapshot {
            name: name.into(),
            bypass_prot_mem: bypass,
            bytes_charged: if bypass { 0 } else { 4608 },
            bytes_bypassed: if bypass { 2304 } else { 0 },
            peak_bytes: 9216,
            total_bytes_charged: if bypass { 0 } else { 1 << 30 },
            total_bytes_bypassed: if bypass { 1 << 20 } else { 0 },
            charges: 1000,
            failures: 2,
        };
        let classes = vec![class("tx_backlog", false), class("slow_path", true)];
        let snapshot = Snapshot {
            workers,
            ports: port_reports,
            pools,
            tsc_hz: 2_100_000_000,
            slow_path: Some(SlowPathSnapshot {
                answered: 10,
                ignored: 2,
                discards: [1; Discard::COUNT],
                inject_full: 1,
                resolution: Default::default(),
                neighbours: Default::default(),
            }),
            memory: Some(AccountingSnapshot { lcores, batch_pages: 64, protos, groups, classes }),
            fpm: Some(crate::fpm::FpmStatus {
                connected: true,
                sessions: 2,
                frames: 10,
                upserts: 7,
                routes: 3,
                routes_by_protocol: vec![(crate::fpm::Protocol::BGP, 1), (crate::fpm::Protocol::STATIC, 2)],
                ..Default::default()
            }),
            fib: Some(crate::fib::FibSummary {
                ipv4_routes: 3,
                ipv6_routes: 1,
                by_origin: [("config".to_owned(), 3), ("ctl".to_owned(), 1)].into_iter().collect(),
                next_hops: 2,
                ecmp_groups: 0,
                next_hops_retired: 1,
                ipv4_max_routes: 1 << 20,
                ipv6_max_routes: 1 << 16,
                max_next_hops: 1 << 16,
            }),
        };
        let mut h = Histogram::new_with_bounds(1, 1 << 40, 2).unwrap();
        for (i, cycles) in [500u64, 900, 2_000, 8_000, 40_000, 300_000, 5_000_000].into_iter().enumerate() {
            h.record_n(cycles, 1_000 * (i as u64 + 1)).unwrap();
        }
        Published::new(snapshot, &h)
    }

    fn scrape(p: Published, openmetrics: bool) -> String {
        let slot = MetricsSlot::default();
        slot.publish(p);
        render(&slot, openmetrics).unwrap()
    }

    /// Sample lines (not comments) whose name is `name` exactly, with or without labels.
    fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))).collect()
    }

    #[test]
    fn every_family_with_its_labels_and_values() {
        let text = scrape(synthetic(2, 1), false);
        let port0 = r#"{port="port0",port_id="0",driver="net_null"}"#;
        for line in [
            format!("dataplane_port_rx_packets_total{port0} 98765432100"),
            format!("dataplane_port_tx_bytes_total{port0} 6320987654464"),
            format!("dataplane_port_rx_missed_packets_total{port0} 1234"),
            format!("dataplane_port_rx_nombuf_total{port0} 7"),
            format!("dataplane_port_rx_errors_total{port0} 5"),
            format!("dataplane_port_tx_errors_total{port0} 6"),
            format!("dataplane_port_link_up{port0} 1"),
            r#"dataplane_queue_rx_packets_total{lcore="1",port="port1",queue="0"} 9876543211"#.into(),
            r#"dataplane_queue_rx_bursts_total{lcore="1",port="port1",queue="0"} 308641975"#.into(),
            r#"dataplane_softnet_processed_packets_total{lcore="1"} 19753086421"#.into(),
            r#"dataplane_softnet_time_squeeze_total{lcore="1"} 3000000021"#.into(),
            r#"dataplane_softnet_busy_seconds_total{lcore="1"} 1.90476191809523"#.into(),
            r#"dataplane_dropped_packets_total{reason="no_route"}"#.into(),
            r#"dataplane_pool_in_use_objects{pool="mbuf_pool_s0"} 62143"#.into(),
            r#"dataplane_proto_memory_allocated_pages{proto="tcp"} 5000"#.into(),
            r#"dataplane_proto_memory_limit_pages{proto="udp",limit="pressure"} 6144"#.into(),
            r#"dataplane_proto_memory_under_pressure{proto="udp"} 1"#.into(),
            r#"dataplane_proto_memory_failures_total{proto="icmp"} 42"#.into(),
            r#"dataplane_memory_group_limit_bytes{group="port_port0"} +Inf"#.into(),
            r#"dataplane_memory_group_usage_bytes{group="slow_path"} 4096"#.into(),
            "dataplane_slow_path_answered_total 10".into(),
            "dataplane_fpm_connected 1".into(),
            "dataplane_fpm_sessions_total 2".into(),
            "dataplane_fpm_upserts_total 7".into(),
            r#"dataplane_fpm_routes{origin="bgp"} 1"#.into(),
            r#"dataplane_fpm_routes{origin="static"} 2"#.into(),
            r#"dataplane_slow_path_discarded_total{reason="nd_bad_hop_limit"} 1"#.into(),
            r#"dataplane_memory_consumer_bytes{consumer="slow_path",bypass_prot_mem="true"} 2304"#.into(),
            r#"dataplane_memory_consumer_peak_bytes{consumer="tx_backlog",bypass_prot_mem="false"} 9216"#.into(),
            r#"dataplane_memory_consumer_charged_bytes_total{consumer="tx_backlog",bypass_prot_mem="false"} 1073741824"#.into(),
            r#"dataplane_routes{origin="ctl"} 1"#.into(),
            r#"dataplane_fib_routes{family="ipv4"} 3"#.into(),
            r#"dataplane_fib_max_routes{family="ipv6"} 65536"#.into(),
            "dataplane_fib_next_hops 2".into(),
            "dataplane_fib_next_hops_retired 1".into(),
            "dataplane_metrics_refused_connections_total 0".into(),
        ] {
            assert!(text.lines().any(|l| l.starts_with(&line)), "no line starting {line:?} in\n{text}");
        }
        assert_eq!(samples(&text, "dataplane_dropped_packets_total").len(), DropReason::COUNT);
        // The histogram: cumulative buckets ending in +Inf = _count, every bound present.
        let buckets = samples(&text, "dataplane_rx_to_tx_latency_seconds_bucket");
        assert_eq!(buckets.len(), super::LATENCY_BOUNDS_SECONDS.len() + 1, "{buckets:?}");
        let values: Vec<u64> = buckets.iter().map(|l| l.rsplit(' ').next().unwrap().parse().unwrap()).collect();
        assert!(values.windows(2).all(|w| w[0] <= w[1]), "{values:?}");
        assert_eq!(buckets.last().unwrap(), &"dataplane_rx_to_tx_latency_seconds_bucket{le=\"+Inf\"} 28000");
        assert!(text.contains("dataplane_rx_to_tx_latency_seconds_count 28000\n"), "{text}");
        assert!(text.contains("# TYPE dataplane_rx_to_tx_latency_seconds histogram\n"));
        assert!(text.contains("# TYPE dataplane_port_rx_packets_total counter\n"));
        assert!(!text.contains("# EOF"));
    }

    #[test]
    fn openmetrics_has_units_and_eof() {
        let text = scrape(synthetic(2, 1), true);
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains("# TYPE dataplane_port_rx_packets counter\n# UNIT dataplane_port_rx_packets packets\n"), "{text}");
        assert!(text.contains("# UNIT dataplane_rx_to_tx_latency_seconds seconds\n"), "{text}");
        assert!(text.lines().any(|l| l.starts_with("dataplane_port_rx_packets_total{")), "{text}");
    }

    #[test]
    fn optional_families_and_an_empty_slot() {
        let mut p = synthetic(1, 1);
        p.snapshot.memory = None;
        p.snapshot.slow_path = None;
        p.snapshot.fpm = None;
        p.snapshot.fib = None;
        let text = scrape(p, false);
        assert!(
            !text.contains("proto_memory")
                && !text.contains("memory_group")
                && !text.contains("memory_consumer")
                && !text.contains("slow_path"),
            "{text}"
        );
        assert!(!text.contains("dataplane_routes") && !text.contains("dataplane_fib_"), "{text}");
        assert!(!text.contains("fpm"), "{text}");
        let empty = render(&MetricsSlot::default(), true).unwrap();
        assert!(!empty.contains("dataplane_port") && empty.ends_with("# EOF\n"), "{empty}");
    }

    /// Issue 17's size: a scrape of 64 ports and 16 lcores, every optional family on.
    /// Prints its size and encode time (the median of 21 encodes) in both formats; the
    /// README quotes a release run: `cargo test --release -p dataplane --lib
    /// scrape_of_64_ports_and_16_lcores -- --nocapture`.
    #[test]
    fn scrape_of_64_ports_and_16_lcores() {
        let slot = MetricsSlot::default();
        slot.publish(synthetic(64, 16));
        for openmetrics in [false, true] {
            let mut times: Vec<Duration> = (0..21)
                .map(|_| {
                    let t = Instant::now();
                    let body = render(&slot, openmetrics).unwrap();
                    let dt = t.elapsed();
                    std::hint::black_box(body);
                    dt
                })
                .collect();
            times.sort();
            let body = render(&slot, openmetrics).unwrap();
            let series = body.lines().filter(|l| !l.starts_with('#')).count();
            println!(
                "64 ports, 16 lcores, {}: {} bytes, {series} samples, encoded in {:?} (median of 21)",
                if openmetrics { "OpenMetrics" } else { "Prometheus text 0.0.4" },
                body.len(),
                times[10]
            );
            // Ports: 9 families x 64; queues 2 x 64; softnet (3 + 11) x 16; drops; the
            // histogram's buckets, sum and count; pools 4 x 3; protocols (6 + 3) x 4;
            // groups 3 x 65; consumer classes 4 x 2; slow path 3 and its discards, its
            // neighbours: 7 states, held, resolving, sent, 5 drop reasons, 2 kinds of
            // solicitations; the FPM side 1 + 8 + 2 origins; routes: 2 origins, 2 x 2
            // families, 3 next-hop gauges; the endpoint's own 2.
            let want = 9 * 64
                + 2 * 64
                + 14 * 16
                + DropReason::COUNT
                + super::LATENCY_BOUNDS_SECONDS.len()
                + 3
                + 12
                + 9 * 4
                + 3 * 65
                + 4 * 2
                + 3
                + Discard::COUNT
                + 7
                + 3
                + 5
                + 2
                + 11
                + 9
                + 2;
            assert_eq!(series, want);
            assert!(body.len() < 256 << 10, "{} bytes", body.len());
        }
    }
}
