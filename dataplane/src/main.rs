//! `dataplane`: run the forwarder on a TOML config.
//!
//! ```text
//! dataplane --config configs/null.toml --duration 4 [--stats-json FILE] [-- EXTRA EAL ARGS]
//! ```
//! The config is read and validated before EAL starts; EAL arguments come from the config
//! (lcores, PCI devices, `--no-pci` when there is no PCI device) followed by those after
//! `--`. A stats line is printed every `--stats-interval` seconds; SIGINT or SIGTERM (or
//! the end of `--duration`) stops the workers, closes the ports and checks that every mbuf
//! came back. The exit status is non-zero on any error, worker panic or leaked mbuf.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;

use dataplane::eal::Eal;
use dataplane::forwarder::Forwarder;
use dataplane::metrics::{MetricsListener, MetricsSlot, Published};
use dataplane::{report, telemetry, Config};

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
    /// Write the final report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    stats_json: Option<PathBuf>,
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
    check_lcores(&config)?;
    // Bound before EAL starts: a port in use is refused before any hugepage is touched.
    let metrics_listener = match &config.metrics {
        Some(m) => {
            Some(MetricsListener::bind(m.listen).with_context(|| format!("metrics.listen: cannot listen on {}", m.listen))?)
        }
        None => None,
    };

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("cannot install a signal handler")?;
    }

    let args = config.eal_args("dataplane", &cli.eal);
    let eal = Eal::init(&args).with_context(|| format!("EAL initialisation failed (arguments: {})", args[1..].join(" ")))?;
    pin_control_thread(&config);
    telemetry::register().context("cannot register the telemetry commands")?;
    telemetry::pdump_init().context("cannot initialise rte_pdump")?;
    let fwd = Forwarder::start(&eal, &config, stop.clone())?;
    // Started from this (pinned) control thread, so it shares its core, never a worker's.
    let metrics = match metrics_listener {
        Some(listener) => {
            // Published once before serving, so no scrape ever finds the endpoint empty.
            let slot = MetricsSlot::default();
            slot.publish(Published::new(fwd.snapshot(), &fwd.histograms(Duration::from_millis(100)).latency_cycles));
            let server = listener.serve(slot.clone()).context("metrics: cannot start the endpoint's thread")?;
            eprintln!("metrics: serving http://{}/metrics", server.local_addr());
            Some((slot, server))
        }
        None => None,
    };

    let started = Instant::now();
    let deadline = cli.duration.map(Duration::from_secs_f64);
    let interval = (cli.stats_interval > 0.0).then(|| Duration::from_secs_f64(cli.stats_interval));
    let mut last = (started, fwd.snapshot());
    let mut published = started - TELEMETRY_PERIOD;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if deadline.is_some_and(|d| now - started >= d) {
            break;
        }
        let print = interval.is_some_and(|iv| now - last.0 >= iv);
        if print || now - published >= TELEMETRY_PERIOD {
            let snap = fwd.snapshot();
            let histograms = fwd.histograms(Duration::from_millis(100));
            let lat = report::latency_json(&histograms, snap.tsc_hz);
            if print {
                let mut line = report::rate_line(now - started, now - last.0, &last.1, &snap);
                if lat["rx_to_tx"]["count"] != 0 {
                    line += &format!(" | rx->tx p50 {} ns p99 {} ns", lat["rx_to_tx"]["p50"], lat["rx_to_tx"]["p99"]);
                }
                println!("{line}");
            }
            publish_telemetry(&snap, lat);
            if let Some((slot, _)) = &metrics {
                slot.publish(Published::new(snap.clone(), &histograms.latency_cycles));
            }
            published = now;
            if print {
                last = (now, snap);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    drop(metrics); // the endpoint closes before the ports it reports on
    let mode = fwd.mode().name();
    let report = fwd.stop();
    let elapsed = started.elapsed();
    print!("{}", report::report_text(&report, elapsed));
    if let Some(path) = &cli.stats_json {
        let text = serde_json::to_string_pretty(&report::report_json(&report, elapsed, mode)).expect("JSON values serialise");
        std::fs::write(path, text + "\n").with_context(|| format!("--stats-json: cannot write {}", path.display()))?;
    }
    telemetry::pdump_uninit();
    drop(eal);
    if !report.is_clean() {
        let mut problems: Vec<String> = report.worker_errors.iter().map(ToString::to_string).collect();
        problems.extend(report.port_errors.iter().map(ToString::to_string));
        problems.extend(report.leaks().map(|p| format!("pool {} leaked {} mbufs", p.name, p.stats.in_use)));
        bail!("{}", problems.join("; "));
    }
    Ok(())
}

/// Refuses, before EAL starts, lcores this process cannot run on (EAL would print its
/// usage text and a vague error instead). Lcore ids are core ids (EAL's `-l`).
fn check_lcores(config: &Config) -> anyhow::Result<()> {
    let Some(cores) = core_affinity::get_core_ids() else { return Ok(()) };
    let have: std::collections::BTreeSet<usize> = cores.iter().map(|c| c.id).collect();
    let all = std::iter::once(("eal.main_lcore".to_owned(), config.eal.main_lcore))
        .chain(config.workers.iter().enumerate().map(|(i, w)| (format!("worker[{i}].lcore"), w.lcore)));
    for (key, lcore) in all {
        if !have.contains(&(lcore as usize)) {
            bail!("{key}: lcore {lcore} is not available on this machine (this process may run on cores {have:?})");
        }
    }
    Ok(())
}

/// How often the telemetry sections are refreshed.
const TELEMETRY_PERIOD: Duration = Duration::from_millis(250);

/// Hands the live figures to the `/dataplane/*` telemetry commands.
fn publish_telemetry(snap: &dataplane::Snapshot, latency: serde_json::Value) {
    telemetry::publish("stats", report::stats_json(snap));
    telemetry::publish("softnet", report::softnet_json(snap));
    telemetry::publish("latency", latency);
    telemetry::publish("pools", report::pools_json(snap));
    telemetry::publish("memory", report::memory_json(snap));
    telemetry::publish("fpm", report::fpm_json(snap));
}

/// Moves the control thread (this one, EAL's main lcore) to a core no worker uses, where
/// one exists, so stats and telemetry never steal a forwarding core's cycles. Lcore ids
/// are taken as core ids (EAL's `-l`, which the config generates).
fn pin_control_thread(config: &Config) {
    let Some(cores) = core_affinity::get_core_ids() else { return };
    let busy = |id: usize| config.workers.iter().any(|w| w.lcore as usize == id);
    let preferred = cores.iter().find(|c| c.id == config.eal.main_lcore as usize && !busy(c.id));
    if let Some(core) = preferred.or_else(|| cores.iter().find(|c| !busy(c.id))) {
        core_affinity::set_for_current(*core);
    }
}
