//! `dataplane`: run the forwarder on a TOML config.
//!
//! ```text
//! dataplane --config configs/null.toml --duration 4 [-- EXTRA EAL ARGS]
//! ```
//! The config is read and validated before EAL starts; EAL arguments come from the config
//! (lcores, devices, `--no-pci` when there is no PCI device) followed by those after `--`.
//! A stats line is printed every `--stats-interval` seconds; SIGINT or SIGTERM (or the end
//! of `--duration`) stops the workers, closes the ports and checks that every mbuf came
//! back. The exit status is non-zero on any error, worker panic or leaked mbuf.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;

use dataplane::eal::Eal;
use dataplane::forwarder::{Forwarder, Report, Snapshot};
use dataplane::stats::sum_lanes;
use dataplane::Config;

#[derive(Debug, Parser)]
#[command(version, about = "A DPDK poll-mode packet forwarder")]
struct Cli {
    /// The TOML config (see configs/).
    #[arg(long, default_value = "configs/null.toml")]
    config: PathBuf,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    duration: Option<f64>,
    /// Seconds between stats lines; 0 turns them off.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, allow_negative_numbers = true)]
    stats_interval: f64,
    /// Extra EAL arguments, after `--`.
    #[arg(last = true, value_name = "EAL_ARGS")]
    eal: Vec<String>,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    for (name, v) in [("--duration", cli.duration), ("--stats-interval", Some(cli.stats_interval))] {
        if let Some(v) = v {
            if !v.is_finite() || v < 0.0 {
                bail!("{name}: expected a number of seconds >= 0, got {v}");
            }
        }
    }
    let config = Config::load(&cli.config)?;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("cannot install a signal handler")?;
    }

    let args = config.eal_args("dataplane", &cli.eal);
    let eal = Eal::init(&args).with_context(|| format!("EAL initialisation failed (arguments: {})", args[1..].join(" ")))?;
    let fwd = Forwarder::start(&eal, &config, stop.clone())?;

    let started = Instant::now();
    let deadline = cli.duration.map(Duration::from_secs_f64);
    let interval = (cli.stats_interval > 0.0).then(|| Duration::from_secs_f64(cli.stats_interval));
    let mut last = (started, fwd.snapshot());
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if deadline.is_some_and(|d| now - started >= d) {
            break;
        }
        if let Some(iv) = interval {
            if now - last.0 >= iv {
                let snap = fwd.snapshot();
                println!("{}", rate_line(now - started, now - last.0, &last.1, &snap));
                last = (now, snap);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    let report = fwd.stop();
    print_report(&report, started.elapsed());
    drop(eal);
    if !report.is_clean() {
        let mut problems: Vec<String> = report.worker_errors.iter().map(ToString::to_string).collect();
        problems.extend(report.port_errors.iter().map(ToString::to_string));
        problems.extend(report.leaks().map(|p| format!("pool {} leaked {} mbufs", p.name, p.stats.in_use)));
        bail!("{}", problems.join("; "));
    }
    Ok(())
}

fn mpps(packets: u64, dt: Duration) -> f64 {
    packets as f64 / dt.as_secs_f64().max(1e-9) / 1e6
}

/// One line per interval: totals over every lane, then RX per port.
fn rate_line(at: Duration, dt: Duration, before: &Snapshot, now: &Snapshot) -> String {
    let (a, b) = (sum_lanes(&before.lanes, |_| true), sum_lanes(&now.lanes, |_| true));
    let mut line = format!(
        "{:7.1}s  rx {:7.3} Mpps  tx {:7.3} Mpps  drop {:7.3} Mpps",
        at.as_secs_f64(),
        mpps(b.rx_packets - a.rx_packets, dt),
        mpps(b.tx_packets - a.tx_packets, dt),
        mpps(b.tx_dropped - a.tx_dropped, dt),
    );
    for (p, q) in before.ports.iter().zip(&now.ports) {
        line += &format!(" | {} rx {:.3} tx {:.3}", q.name, mpps(q.stats.ipackets - p.stats.ipackets, dt), mpps(q.stats.opackets - p.stats.opackets, dt));
    }
    line
}

fn print_report(r: &Report, elapsed: Duration) {
    let s = &r.snapshot;
    let total = sum_lanes(&s.lanes, |_| true);
    println!("--- dataplane report after {:.2}s ---", elapsed.as_secs_f64());
    println!(
        "forwarded {} packets ({:.3} Mpps average): rx {} tx {} tx_dropped {}",
        total.tx_packets,
        mpps(total.tx_packets, elapsed),
        total.rx_packets,
        total.tx_packets,
        total.tx_dropped
    );
    for l in &s.lanes {
        let t = l.totals;
        println!(
            "  {} {}/{} -> {}/{}: rx {} tx {} tx_dropped {} bursts {}",
            l.id.lcore, l.id.rx_port, l.id.rx_queue, l.id.tx_port, l.id.tx_queue, t.rx_packets, t.tx_packets, t.tx_dropped, t.rx_bursts
        );
    }
    for p in &s.ports {
        let st = p.stats;
        println!(
            "  {} ({}, {}): ipackets {} opackets {} ibytes {} obytes {} imissed {} ierrors {} oerrors {} rx_nombuf {}",
            p.name, p.id, p.driver, st.ipackets, st.opackets, st.ibytes, st.obytes, st.imissed, st.ierrors, st.oerrors, st.rx_nombuf
        );
    }
    for p in &s.pools {
        let st = p.stats;
        let verdict = if st.in_use == 0 { "full" } else { "LEAK" };
        println!("  pool {}: size {} available {} in_use {}: {}", p.name, st.size, st.available, st.in_use, verdict);
    }
}
