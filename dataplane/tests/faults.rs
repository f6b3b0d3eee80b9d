//! Faults: SIGTERM and SIGINT while the forwarder runs two net_null ports at full rate.
//! Each must stop it within about two seconds of the signal, with exit status 0, the
//! final report printed, traffic forwarded and every pool full.
//!
//! EAL runs only in the children (`--no-huge`, `--no-pci`, a per-pid file prefix).

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long after the signal the process may take to exit.
const STOP_LIMIT: Duration = Duration::from_secs(2);

fn config(prefix: &str) -> String {
    common::null_pair_config(prefix)
}

fn signal_while_forwarding(signal: &str) {
    let tag = format!("faults-{}", signal.to_lowercase());
    let dir = common::TempDir::new(&tag);
    let prefix = common::unique_prefix(&tag);
    let _runtime = common::RuntimeDir(prefix.clone());
    let cfg = dir.join("null.toml");
    std::fs::write(&cfg, config(&prefix)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dataplane"))
        .args(["--config", cfg.to_str().unwrap(), "--stats-interval", "0.2"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run the dataplane binary");
    let pid = child.id().to_string();
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut v = String::new();
        let _ = stderr.read_to_string(&mut v);
        v
    });
    // Wait for a stats line that shows traffic: the workers are forwarding at full rate.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line.clone());
            all += &line;
            all.push('\n');
        }
        all
    });
    let started = Instant::now();
    let mut forwarding = false;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
        if line.contains(" rx ") && line.contains("Mpps") && !line.contains("rx   0.000 Mpps") {
            forwarding = true;
            break;
        }
    }
    if !forwarding {
        let _ = child.kill();
        let _ = child.wait();
        panic!("no traffic within {:?}:\n{}\n{}", started.elapsed(), out.join().unwrap(), err.join().unwrap());
    }
    let status = Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("kill(1)");
    assert!(status.success(), "kill -{signal} {pid}");
    let signalled = Instant::now();
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if signalled.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("SIG{signal}: still running after 30 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = signalled.elapsed();
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    let context = format!("SIG{signal}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    println!("SIG{signal}: exited {took:?} after the signal\n{context}");
    assert!(exit.success(), "exit status {exit}: {context}");
    assert!(took <= STOP_LIMIT, "took {took:?} to stop after SIG{signal}: {context}");
    assert!(stdout.contains("--- dataplane report after"), "no final report: {context}");
    let forwarded: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("forwarded ")?.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no `forwarded N packets` line: {context}"));
    assert!(forwarded > 0, "{context}");
    let pools: Vec<&str> = stdout.lines().filter(|l| l.trim_start().starts_with("pool ")).collect();
    assert!(!pools.is_empty(), "{context}");
    for p in pools {
        assert!(p.ends_with(": full"), "{p}: {context}");
    }
    assert!(!stderr.lines().any(|l| l.starts_with("error")), "{context}");
}

/// The children pin their worker to lcore 1: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn sigterm_at_full_rate_exits_cleanly() {
    let _s = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    signal_while_forwarding("TERM");
}

#[test]
fn sigint_at_full_rate_exits_cleanly() {
    let _s = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    signal_while_forwarding("INT");
}

/// A panic inside a worker (injected with `DATAPLANE_FAULT_PANIC=LCORE:ROUNDS`) stops the
/// process quickly, with a non-zero exit and one error line naming the lcore; the other
/// steps of shutdown still run (the report is printed, every pool is full).
#[test]
fn a_panicking_worker_stops_the_process_naming_its_lcore() {
    let dir = common::TempDir::new("panic");
    let prefix = common::unique_prefix("panic");
    let _runtime = common::RuntimeDir(prefix.clone());
    let cfg = dir.join("panic.toml");
    std::fs::write(&cfg, config(&prefix)).unwrap();
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_dataplane"))
        .args(["--config", cfg.to_str().unwrap(), "--duration", "30", "--stats-interval", "0"])
        .env(dataplane::worker::FAULT_ENV, "1:1000")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(took < Duration::from_secs(10), "took {took:?}, not the 30 s of --duration: the panic did not stop it");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: worker on lcore1 panicked: fault injection"), "{stderr}");
    assert!(
        stdout.contains("pool mbuf_pool_s0:") && stdout.lines().filter(|l| l.contains("  pool ")).all(|l| l.ends_with(": full")),
        "{stdout}"
    );
}
