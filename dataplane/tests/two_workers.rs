//! Two workers placed on CPUs by the config (`[[worker]] cpu`, `[eal] main_cpu`): the
//! binary derives EAL's `--lcores 0@0,1@0,2@1` (the main lcore, which mostly sleeps, beside
//! worker 1 on CPU 0; worker 2 on CPU 1), so two workers fit on a 2-CPU machine. Both
//! forward, each through its own TX queue of the pair's ports, every counter adds up and
//! every mbuf comes back. A CPU the process may not run on is refused before EAL starts,
//! naming the key.
//!
//! Needs two CPUs this process may run on; with fewer it says SKIP and passes.

mod common;

use std::time::Duration;

use serde_json::Value;

fn config(prefix: &str, cpu2: u32) -> String {
    format!(
        r#"[eal]
main_lcore = 0
main_cpu = 0
file_prefix = "{prefix}"
args = {args}

[forward]
pairs = [["null0", "null1"]]

[[port]]
name = "null0"
device = "net_null0"
args = "size=64,copy=0"
tx_queues = 2

[[port]]
name = "null1"
device = "net_null1"
args = "size=64,copy=0"
tx_queues = 2

[[worker]]
lcore = 1
cpu = 0
rx = [{{ port = "null0", queue = 0 }}]

[[worker]]
lcore = 2
cpu = {cpu2}
rx = [{{ port = "null1", queue = 0 }}]
"#,
        args = common::eal_args_toml()
    )
}

fn cpus() -> usize {
    core_affinity::get_core_ids().map_or(0, |c| c.len())
}

#[test]
fn two_workers_on_two_cpus_both_forward() {
    if cpus() < 2 {
        println!("SKIP: this process may run on {} CPU(s); two are needed", cpus());
        return;
    }
    let dir = common::TempDir::new("two-workers");
    let prefix = common::unique_prefix("two-workers");
    let _runtime = common::RuntimeDir(prefix.clone());
    let cfg = dir.join("config.toml");
    std::fs::write(&cfg, config(&prefix, 1)).unwrap();
    let json_path = dir.join("stats.json");
    let out = common::run_dataplane(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--duration",
            "1",
            "--stats-interval",
            "0",
            "--stats-json",
            json_path.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    let context = format!(
        "\n--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "exited with {}{context}", out.status);
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(json["clean"], true, "{context}");
    let workers = json["softnet"].as_object().unwrap();
    assert_eq!(workers.len(), 2, "{context}");
    for (lcore, w) in workers {
        let get = |k: &str| w[k].as_u64().unwrap();
        assert!(get("processed") > 0, "{lcore} forwarded nothing{context}");
        assert_eq!(
            get("processed") + get("injected") + get("mirrored"),
            get("tx_packets") + get("dropped") + get("punted"),
            "{lcore}{context}"
        );
    }
}

#[test]
fn a_cpu_this_process_may_not_use_is_refused_before_eal() {
    let dir = common::TempDir::new("two-workers-bad");
    let prefix = common::unique_prefix("two-workers-bad");
    let _runtime = common::RuntimeDir(prefix.clone());
    let cfg = dir.join("config.toml");
    std::fs::write(&cfg, config(&prefix, 1000)).unwrap();
    let out = common::run_dataplane(&["--config", cfg.to_str().unwrap(), "--duration", "0"], Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("worker[1].cpu: CPU 1000 is not available"), "{stderr}");
    assert!(!stderr.contains("EAL:"), "refused before EAL started: {stderr}");
}
