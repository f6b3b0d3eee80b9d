//! `dataplane`: run the forwarder on a TOML config, or drive a running one.
//!
//! ```text
//! dataplane --config configs/null.toml --duration 4 [--stats-json FILE] [-- EXTRA EAL ARGS]
//! dataplane ctl [--socket PATH] [--json] COMMAND ...      (see dataplane ctl --help)
//! ```
//! The config is read and validated before EAL starts; EAL arguments come from the config
//! (lcores, PCI devices, `--no-pci` when there is no PCI device) followed by those after
//! `--`. A stats line is printed every `--stats-interval` seconds; SIGINT or SIGTERM (or
//! the end of `--duration`) stops the workers, closes the ports and checks that every mbuf
//! came back. The exit status is non-zero on any error, worker panic or leaked mbuf.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use dataplane::control::{self, Control, Server};
use dataplane::eal::Eal;
use dataplane::forwarder::Forwarder;
use dataplane::metrics::{MetricsListener, MetricsSlot, Published};
use dataplane::{report, telemetry, Config};

mod ctl;

#[derive(Debug, Parser)]
#[command(version, about = "A DPDK poll-mode packet forwarder", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Look at and change a running forwarder through its control socket.
    Ctl(ctl::CtlArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
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
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        // `dataplane ctl` keeps exit status 2 for a forwarder it cannot reach: its usage
        // errors are refusals (1). The forwarder's own keep clap's 2.
        if e.use_stderr() && std::env::args().nth(1).as_deref() == Some("ctl") {
            let _ = e.print();
            std::process::exit(ctl::REFUSED.into());
        }
        e.exit()
    });
    if let Some(Sub::Ctl(args)) = cli.command {
        return ctl::main(args);
    }
    match run(cli.run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: RunArgs) -> anyhow::Result<()> {
    for (name, v) in [("--duration", cli.duration), ("--stats-interval", Some(cli.stats_interval))] {
        if let Some(v) = v {
            if !v.is_finite() || v < 0.0 {
                bail!("{name}: expected a number of seconds >= 0, got {v}");
            }
        }
    }
    let config = Config::load(&cli.config)?;
    dataplane::config::check_extra_eal_args(&cli.eal)?;
    check_lcores(&config)?;
    // Bound before EAL starts: a second instance on the same socket stops here, before it
    // touches a hugepage. Served once the forwarder runs; removed at exit.
    let bound = control::Bound::bind(&config.control_socket())?;
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

    // The first line: where EAL's memory comes from (hugepages when ci/setup.sh reserved
    // them, else --no-huge), decided before EAL starts.
    let memory = config.memory_plan(&dataplane::config::Hugepages::read());
    println!("{}", memory.says);
    let args = config.eal_args_with("dataplane", &cli.eal, &memory);
    let eal = Eal::init(&args).with_context(|| format!("EAL initialisation failed (arguments: {})", args[1..].join(" ")))?;
    pin_control_thread(&config);
    telemetry::register().context("cannot register the telemetry commands")?;
    telemetry::pdump_init().context("cannot initialise rte_pdump")?;
    let fwd = Arc::new(Mutex::new(Forwarder::start(&eal, &config, stop.clone())?));
    let fwd_lock = || fwd.lock().unwrap_or_else(|e| e.into_inner());
    let control = Arc::new(Control::new(fwd.clone(), config.clone(), stop.clone()));
    let socket = bound.path().display().to_string();
    let mut server = Server::start(bound, control.clone(), config.control.clone()).context("cannot start the control socket")?;
    eprintln!("control socket: {socket} (dataplane ctl --socket {socket} --help)");
    // Started from this (pinned) control thread, so it shares its core, never a worker's.
    let metrics = match metrics_listener {
        Some(listener) => {
            // Published once before serving, so no scrape ever finds the endpoint empty.
            let slot = MetricsSlot::default();
            let (snap, hist) = {
                let f = fwd_lock();
                (f.snapshot(), f.histograms(Duration::from_millis(100)))
            };
            slot.publish(Published::new(snap, &hist.latency_cycles));
            let server = listener.serve(slot.clone()).context("metrics: cannot start the endpoint's thread")?;
            eprintln!("metrics: serving http://{}/metrics", server.local_addr());
            Some((slot, server))
        }
        None => None,
    };

    let started = Instant::now();
    let deadline = cli.duration.map(Duration::from_secs_f64);
    let interval = (cli.stats_interval > 0.0).then(|| Duration::from_secs_f64(cli.stats_interval));
    let mut last = (started, fwd_lock().snapshot());
    let mut published = started - TELEMETRY_PERIOD;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if deadline.is_some_and(|d| now - started >= d) {
            break;
        }
        let print = interval.is_some_and(|iv| now - last.0 >= iv);
        if print || now - published >= TELEMETRY_PERIOD {
            let (snap, histograms) = {
                let f = fwd_lock();
                (f.snapshot(), f.histograms(Duration::from_millis(100)))
            };
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
                   // No client is served past here: the forwarder has one owner again.
    server.stop();
    drop(control);
    let fwd = Arc::try_unwrap(fwd).map_err(|_| anyhow::anyhow!("the control socket still holds the forwarder"))?;
    let fwd = fwd.into_inner().unwrap_or_else(|e| e.into_inner());
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
    // Each lcore's CPU: its `cpu` key when given (named in the error), else its own number.
    let main = match config.eal.main_cpu {
        Some(cpu) => ("eal.main_cpu".to_owned(), "CPU", cpu),
        None => ("eal.main_lcore".to_owned(), "lcore", config.eal.main_lcore),
    };
    let all = std::iter::once(main).chain(config.workers.iter().enumerate().map(|(i, w)| match w.cpu {
        Some(cpu) => (format!("worker[{i}].cpu"), "CPU", cpu),
        None => (format!("worker[{i}].lcore"), "lcore", w.lcore),
    }));
    for (key, what, n) in all {
        if !have.contains(&(n as usize)) {
            bail!("{key}: {what} {n} is not available on this machine (this process may run on CPUs {have:?})");
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
    telemetry::publish("neighbours", report::neighbours_json(snap));
}

/// Moves the control thread (this one, EAL's main lcore) to a CPU no worker uses, where
/// one exists, so stats and telemetry never steal a forwarding CPU's cycles. Each lcore's
/// CPU is its `cpu` key, else its own number (as the EAL arguments the config generates).
/// Where every CPU has a worker (`--lcores 0@0,1@0,2@1`), it stays where EAL put it.
fn pin_control_thread(config: &Config) {
    let Some(cores) = core_affinity::get_core_ids() else { return };
    let busy = |id: usize| config.workers.iter().any(|w| w.cpu.unwrap_or(w.lcore) as usize == id);
    let main = config.eal.main_cpu.unwrap_or(config.eal.main_lcore) as usize;
    let preferred = cores.iter().find(|c| c.id == main && !busy(c.id));
    if let Some(core) = preferred.or_else(|| cores.iter().find(|c| !busy(c.id))) {
        core_affinity::set_for_current(*core);
    }
}
