//! What the control thread shows: the per-second rate line, the final text report, and
//! the same figures as JSON (for `--stats-json` and DPDK telemetry).
//!
//! The JSON sections mirror what Linux and DPDK users know: `softnet` is
//! /proc/net/softnet_stat per worker lcore (processed, dropped, time_squeeze, plus idle
//! rounds and busy cycles), `stats` is testpmd's per-port view, `latency` the
//! hdrhistogram percentiles, `pools` the mempools' occupancy.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use crate::forward::DropReason;
use crate::forwarder::ResolutionCounts;
use crate::forwarder::{Report, Snapshot};
use crate::local::Discard;
use crate::neigh::{NeighDrop, NeighState};
use crate::port::PortIdx;
use crate::stats::Counter;
use crate::worker::Histograms;

/// Packets per second, in millions.
pub fn mpps(packets: u64, dt: Duration) -> f64 {
    packets as f64 / dt.as_secs_f64().max(1e-9) / 1e6
}

/// One line per interval: totals over every worker, then RX/TX per port.
pub fn rate_line(at: Duration, dt: Duration, before: &Snapshot, now: &Snapshot) -> String {
    let (a, b) = (before.total(), now.total());
    let mut line = format!(
        "{:7.1}s  rx {:7.3} Mpps  tx {:7.3} Mpps  drop {:7.3} Mpps  squeeze {:>6}/s",
        at.as_secs_f64(),
        mpps(b.processed() - a.processed(), dt),
        mpps(b.tx_packets() - a.tx_packets(), dt),
        mpps(b.dropped() - a.dropped(), dt),
        ((b[Counter::TimeSqueeze] - a[Counter::TimeSqueeze]) as f64 / dt.as_secs_f64().max(1e-9)).round(),
    );
    for (p, q) in before.ports.iter().zip(&now.ports) {
        let _ = write!(
            line,
            " | {} rx {:.3} tx {:.3}",
            q.name,
            mpps(q.stats.ipackets.saturating_sub(p.stats.ipackets), dt),
            mpps(q.stats.opackets.saturating_sub(p.stats.opackets), dt)
        );
    }
    line
}

fn drops_json(drops: &[u64; DropReason::COUNT]) -> Value {
    let mut m = Map::new();
    for &r in DropReason::ALL {
        m.insert(r.name().to_owned(), json!(drops[r.index()]));
    }
    Value::Object(m)
}

/// `softnet`: one object per worker lcore.
pub fn softnet_json(s: &Snapshot) -> Value {
    let mut m = Map::new();
    for w in &s.workers {
        let t = &w.totals;
        let lanes: Vec<Value> = w
            .lanes
            .iter()
            .zip(t.lane_rx.iter().zip(&t.lane_bursts))
            .map(|(l, (rx, bursts))| json!({ "port": s.ports[l.port.index()].name, "queue": l.queue.0, "rx_packets": rx, "rx_bursts": bursts }))
            .collect();
        let mut worker = json!({
            "processed": t.processed(),
            "tx_packets": t.tx_packets(),
            "dropped": t.dropped(),
            "cycles_per_packet": if t.processed() > 0 { t[Counter::BusyCycles] as f64 / t.processed() as f64 } else { 0.0 },
            "drops": drops_json(&t.drops),
            "lanes": lanes,
        });
        for &c in Counter::ALL {
            worker[c.name()] = json!(t[c]);
        }
        m.insert(w.lcore.to_string(), worker);
    }
    Value::Object(m)
}

/// `stats`: totals and one object per port.
pub fn stats_json(s: &Snapshot) -> Value {
    let t = s.total();
    let mut ports = Map::new();
    for (i, p) in s.ports.iter().enumerate() {
        let st = p.stats;
        ports.insert(
            p.name.clone(),
            json!({
                "port_id": p.id.0, "driver": p.driver, "rx_buffer": p.rx_buffer,
                "link": { "up": p.link.up, "text": p.link.text },
                "rx_packets": s.port_rx(PortIdx(i as u16)), "tx_packets": t.port_tx[i],
                "ipackets": st.ipackets, "opackets": st.opackets, "ibytes": st.ibytes, "obytes": st.obytes,
                "imissed": st.imissed, "ierrors": st.ierrors, "oerrors": st.oerrors, "rx_nombuf": st.rx_nombuf,
            }),
        );
    }
    json!({
        "rx_packets": t.processed(),
        "tx_packets": t.tx_packets(),
        "dropped": t.dropped(),
        "time_squeeze": t[Counter::TimeSqueeze],
        "drops": drops_json(&t.drops),
        "ports": ports,
    })
}

/// `memory`: the protocol accounts (memory_allocated, memory_pressure, tcp_mem) and the
/// groups (memcg-like budgets), when accounting is configured.
pub fn memory_json(s: &Snapshot) -> Value {
    let Some(m) = &s.memory else { return json!({}) };
    let mut protos = Map::new();
    for p in &m.protos {
        protos.insert(
            p.proto.name().to_owned(),
            json!({
                "pages": p.pages, "unflushed_pages": p.unflushed_pages, "under_pressure": p.under_pressure,
                "min": p.limits.min, "pressure": p.limits.pressure, "max": p.limits.max,
                "charges": p.charges, "failures": p.failures, "pressure_entries": p.pressure_entries,
            }),
        );
    }
    let mut groups = Map::new();
    for g in &m.groups {
        let limit = if g.limit_bytes == u64::MAX { Value::from("unlimited") } else { Value::from(g.limit_bytes) };
        groups.insert(g.name.clone(), json!({ "bytes": g.bytes, "limit_bytes": limit, "failures": g.failures }));
    }
    // Per consumer class (tx_backlog, slow_path, neigh_queue): whether it bypasses the
    // protocol accounts, and the bytes it holds (and held) through them or bypassing them.
    let mut classes = Map::new();
    for c in &m.classes {
        classes.insert(
            c.name.clone(),
            json!({
                "bypass_prot_mem": c.bypass_prot_mem,
                "bytes_charged": c.bytes_charged, "bytes_bypassed": c.bytes_bypassed, "peak_bytes": c.peak_bytes,
                "total_bytes_charged": c.total_bytes_charged, "total_bytes_bypassed": c.total_bytes_bypassed,
                "charges": c.charges, "failures": c.failures,
            }),
        );
    }
    let t = s.total();
    json!({
        "batch_pages": m.batch_pages, "error_bound_pages": m.batch_pages as u64 * m.lcores as u64,
        "backlogged": t[Counter::Backlogged], "backlog_sent": t[Counter::BacklogSent],
        "protocols": protos, "groups": groups, "consumers": classes,
    })
}

/// `fpm`: the session with zebra and the routes it sent, when `[fpm]` is configured.
pub fn fpm_json(s: &Snapshot) -> Value {
    s.fpm.as_ref().map_or_else(|| json!({}), |f| f.to_json())
}

/// `pools`: occupancy per pool.
pub fn pools_json(s: &Snapshot) -> Value {
    let mut m = Map::new();
    for p in &s.pools {
        m.insert(
            p.name.clone(),
            json!({ "size": p.stats.size, "available": p.stats.available, "in_use": p.stats.in_use, "cached": p.stats.cached }),
        );
    }
    Value::Object(m)
}

/// Percentiles of a cycles histogram, converted to nanoseconds.
pub fn percentiles_ns(h: &Histogram<u64>, tsc_hz: u64) -> Value {
    let ns = |c: u64| (c as f64 * 1e9 / tsc_hz.max(1) as f64).round() as u64;
    if h.is_empty() {
        return json!({ "count": 0 });
    }
    json!({
        "count": h.len(),
        "p50": ns(h.value_at_quantile(0.50)),
        "p90": ns(h.value_at_quantile(0.90)),
        "p99": ns(h.value_at_quantile(0.99)),
        "p99_9": ns(h.value_at_quantile(0.999)),
        "max": ns(h.max()),
    })
}

/// `latency`: RX-to-TX hand-off per packet and processing time per RX burst, in ns.
pub fn latency_json(h: &Histograms, tsc_hz: u64) -> Value {
    json!({
        "unit": "ns",
        "rx_to_tx": percentiles_ns(&h.latency_cycles, tsc_hz),
        "burst": percentiles_ns(&h.burst_cycles, tsc_hz),
    })
}

/// The slow path's resolution counters.
pub fn resolution_json(r: &ResolutionCounts) -> Value {
    json!({
        "taken": r.taken, "sent": r.sent,
        "drops": NeighDrop::ALL.iter().map(|&d| (d.name().to_owned(), json!(r.drops[d as usize]))).collect::<Map<_, _>>(),
        "proto_mem": r.proto_mem, "no_route": r.no_route, "held_at_exit": r.held_at_exit,
        "originated": r.originated, "no_mbuf": r.no_mbuf, "send_full": r.send_full,
        "host_route_failures": r.host_route_failures,
    })
}

/// `neighbours`: the neighbour table (`ip neigh`: address, port, MAC, state, router; and
/// `ip -s neigh`'s ages in ms) and its counters (`ip -s ntable`); empty without a slow path.
pub fn neighbours_json(s: &Snapshot) -> Value {
    let Some(sp) = &s.slow_path else { return json!({ "entries": [] }) };
    let n = &sp.neighbours;
    let port = |p: PortIdx| s.ports.get(p.index()).map_or_else(|| p.to_string(), |r| r.name.clone());
    let entries: Vec<Value> = n
        .entries
        .iter()
        .map(|e| {
            json!({
                "address": e.key.addr.to_string(),
                "port": port(e.key.port),
                "mac": e.mac.map(|m| m.to_string()),
                "state": e.state.name(),
                "router": e.router,
                "queued": e.queued,
                "probes": e.probes,
                "used_ms": e.used_ago.as_millis() as u64,
                "confirmed_ms": e.confirmed_ago.as_millis() as u64,
                "updated_ms": e.updated_ago.as_millis() as u64,
            })
        })
        .collect();
    let t = &n.table;
    let r = &n.resolver;
    json!({
        "entries": entries,
        "held": n.held,
        "host_routes": n.host_routes,
        // The routed packets the workers punted for resolution, and what became of them.
        "resolution": resolution_json(&sp.resolution),
        "stats": {
            "allocs": t.allocs, "destroys": t.destroys, "res_failed": t.res_failed, "unres_discards": t.unres_discards,
            "table_fulls": t.table_fulls, "periodic_gc_runs": t.periodic_gc_runs, "forced_gc_runs": t.forced_gc_runs,
            "arp_requests": r.arp_requests, "neighbor_solicits": r.neighbor_solicits, "announcements": r.announcements,
            "solicit_unsendable": r.solicit_unsendable, "learned": r.learned,
        },
    })
}

/// How many entries are in each state: `REACHABLE 2, STALE 1`.
fn states(n: &crate::slowpath::NeighbourSnapshot) -> String {
    let v: Vec<String> = NeighState::ALL
        .iter()
        .filter_map(|&st| {
            let c = n.entries.iter().filter(|e| e.state == st).count();
            (c > 0).then(|| format!("{} {c}", st.name()))
        })
        .collect();
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}

/// The whole final report as JSON.
pub fn report_json(r: &Report, elapsed: Duration, mode: &str) -> Value {
    let s = &r.snapshot;
    json!({
        "elapsed_s": elapsed.as_secs_f64(),
        "mode": mode,
        "tsc_hz": s.tsc_hz,
        "stats": stats_json(s),
        "softnet": softnet_json(s),
        "latency": latency_json(&r.histograms, s.tsc_hz),
        "pools": pools_json(s),
        "memory": memory_json(s),
        "fpm": fpm_json(s),
        "slow_path": s.slow_path.as_ref().map(|sp| json!({
            "answered": sp.answered,
            "ignored": sp.ignored,
            "discarded": sp.discarded(),
            "discards": Discard::ALL.iter().map(|&d| (d.name().to_owned(), json!(sp.discards(d)))).collect::<Map<_, _>>(),
            "inject_full": sp.inject_full,
            "resolution": resolution_json(&sp.resolution),
        })),
        "neighbours": neighbours_json(s),
        "clean": r.is_clean(),
        "errors": r.worker_errors.iter().map(ToString::to_string)
            .chain(r.port_errors.iter().map(ToString::to_string))
            .chain(r.leaks().map(|p| format!("pool {} leaked {} mbufs", p.name, p.stats.in_use)))
            .collect::<Vec<_>>(),
    })
}

fn pct_line(name: &str, v: &Value) -> String {
    if v["count"] == 0 {
        return format!("{name}: no samples");
    }
    format!(
        "{name}: p50 {} ns  p90 {} ns  p99 {} ns  p99.9 {} ns  max {} ns  ({} samples)",
        v["p50"], v["p90"], v["p99"], v["p99_9"], v["max"], v["count"]
    )
}

/// The final report as text.
pub fn report_text(r: &Report, elapsed: Duration) -> String {
    let s = &r.snapshot;
    let t = s.total();
    let mut o = String::new();
    let _ = writeln!(o, "--- dataplane report after {:.2}s ---", elapsed.as_secs_f64());
    let _ = writeln!(
        o,
        "forwarded {} packets ({:.3} Mpps average): rx {} tx {} dropped {} time_squeeze {}",
        t.tx_packets(),
        mpps(t.tx_packets(), elapsed),
        t.processed(),
        t.tx_packets(),
        t.dropped(),
        t[Counter::TimeSqueeze]
    );
    for w in &s.workers {
        let wt = &w.totals;
        let cpp = if wt.processed() > 0 { wt[Counter::BusyCycles] as f64 / wt.processed() as f64 } else { 0.0 };
        let _ = writeln!(
            o,
            "  {}: processed {} tx {} dropped {} time_squeeze {} rounds {} idle_rounds {} busy_cycles {} ({:.1} cycles/packet)",
            w.lcore,
            wt.processed(),
            wt.tx_packets(),
            wt.dropped(),
            wt[Counter::TimeSqueeze],
            wt[Counter::Rounds],
            wt[Counter::IdleRounds],
            wt[Counter::BusyCycles],
            cpp
        );
        for (l, (rx, bursts)) in w.lanes.iter().zip(wt.lane_rx.iter().zip(&wt.lane_bursts)) {
            let _ = writeln!(
                o,
                "    rx {} {}/{}: {} packets in {} bursts",
                s.ports[l.port.index()].name,
                l.port_id,
                l.queue,
                rx,
                bursts
            );
        }
    }
    if t[Counter::Mirrored] + t[Counter::ExtFailures] > 0 {
        let _ = writeln!(o, "  extensions: mirrored {} ext_failures {}", t[Counter::Mirrored], t[Counter::ExtFailures]);
    }
    if let Some(m) = &s.memory {
        let _ = writeln!(
            o,
            "  memory: backlogged {} backlog_sent {} proto_mem drops {}",
            t[Counter::Backlogged],
            t[Counter::BacklogSent],
            t[DropReason::ProtoMem]
        );
        for p in &m.protos {
            let _ = writeln!(
                o,
                "    {}: pages {} (+{} unflushed) limits {}/{}/{} pressure {} charges {} failures {}",
                p.proto.name(),
                p.pages,
                p.unflushed_pages,
                p.limits.min,
                p.limits.pressure,
                p.limits.max,
                p.under_pressure,
                p.charges,
                p.failures
            );
        }
        for g in &m.groups {
            let _ = writeln!(o, "    group {}: bytes {} failures {}", g.name, g.bytes, g.failures);
        }
        for c in &m.classes {
            let _ = writeln!(
                o,
                "    consumers {} ({}): bytes now {} peak {} total {} charges {} failures {}",
                c.name,
                if c.bypass_prot_mem { "bypass_prot_mem" } else { "protocol accounts" },
                c.bytes(),
                c.peak_bytes,
                c.total_bytes_charged + c.total_bytes_bypassed,
                c.charges,
                c.failures
            );
        }
    }
    if let Some(sp) = &s.slow_path {
        let _ = writeln!(
            o,
            "  slow path: punted {} answered {} ignored {} discarded {} inject_full {} injected {}",
            t[Counter::Punted],
            sp.answered,
            sp.ignored,
            sp.discarded(),
            sp.inject_full,
            t[Counter::Injected]
        );
        let d: Vec<String> =
            Discard::ALL.iter().filter(|&&d| sp.discards(d) > 0).map(|&d| format!("{} {}", d.name(), sp.discards(d))).collect();
        if !d.is_empty() {
            let _ = writeln!(o, "    discards: {}", d.join(", "));
        }
        let r = &sp.resolution;
        let n = &sp.neighbours;
        if r.taken > 0 || !n.entries.is_empty() {
            let drops: Vec<String> = NeighDrop::ALL.iter().map(|&d| format!("{} {}", d.name(), r.drops[d as usize])).collect();
            let _ = writeln!(
                o,
                "  neighbours: {} entries ({}), held {} | resolution: taken {} sent {} {} proto_mem {} no_route {} held_at_exit {} | solicitations {} (ARP {} NS {}) announcements {}",
                n.entries.len(),
                states(n),
                n.held,
                r.taken,
                r.sent,
                drops.join(" "),
                r.proto_mem,
                r.no_route,
                r.held_at_exit,
                r.originated,
                n.resolver.arp_requests,
                n.resolver.neighbor_solicits,
                n.resolver.announcements
            );
        }
    }
    if let Some(f) = &s.fpm {
        let by: Vec<String> = f.routes_by_protocol.iter().map(|(p, n)| format!("{p} {n}")).collect();
        let _ = writeln!(
            o,
            "  fpm: {} routes ({}) | sessions {} session_errors {} frames {} upserts {} deletes {} unchanged {} swept {} skipped {}",
            f.routes,
            by.join(", "),
            f.sessions,
            f.session_errors,
            f.frames,
            f.upserts,
            f.deletes,
            f.unchanged,
            f.swept,
            f.skipped
        );
    }
    let reasons: Vec<String> = DropReason::ALL.iter().filter(|&&r| t[r] > 0).map(|&r| format!("{} {}", r.name(), t[r])).collect();
    let _ = writeln!(o, "  drops: {}", if reasons.is_empty() { "none".to_owned() } else { reasons.join(", ") });
    for (i, p) in s.ports.iter().enumerate() {
        let st = p.stats;
        let _ = writeln!(
            o,
            "  {} ({}, {}, {} RX buffers, {}): rx {} tx {} | ipackets {} opackets {} ibytes {} obytes {} imissed {} ierrors {} oerrors {} rx_nombuf {}",
            p.name, p.id, p.driver, p.rx_buffer, p.link.text, s.port_rx(PortIdx(i as u16)), t.port_tx[i], st.ipackets, st.opackets, st.ibytes, st.obytes, st.imissed, st.ierrors, st.oerrors, st.rx_nombuf
        );
    }
    let lat = latency_json(&r.histograms, s.tsc_hz);
    let _ = writeln!(o, "  latency {}", pct_line("rx->tx", &lat["rx_to_tx"]));
    let _ = writeln!(o, "  latency {}", pct_line("per burst", &lat["burst"]));
    for p in &s.pools {
        let st = p.stats;
        let verdict = if st.in_use == 0 { "full" } else { "LEAK" };
        let _ = writeln!(o, "  pool {}: size {} available {} in_use {}: {}", p.name, st.size, st.available, st.in_use, verdict);
    }
    o
}
