//! The `/dataplane/...` telemetry commands seen through DPDK's own client, and `rte_pdump`
//! set-up, against a real EAL (`--no-huge -m 256 --no-pci -l 0`, telemetry on) started once
//! for this test binary, which holds a single test so nothing else shares the EAL.
//!
//! The client is `/usr/bin/python3 /usr/bin/dpdk-telemetry.py -f PREFIX` (the system Python,
//! not whichever `python3` is first on PATH), fed commands on stdin; with stdin not a tty it
//! prints one JSON reply per command, one per line. The test skips, with a message, when the
//! client is not installed or EAL could not create its telemetry socket.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use dataplane::eal::Eal;
use dataplane::telemetry;
use serde_json::{json, Value};

const PYTHON: &str = "/usr/bin/python3";
const CLIENT: &str = "/usr/bin/dpdk-telemetry.py";

/// Where EAL puts the runtime directory of `prefix`: `/var/run/dpdk` for root, else
/// `$XDG_RUNTIME_DIR/dpdk` or `/tmp/dpdk` (DPDK 22.11's rule, which the client repeats).
fn runtime_dir_candidates(prefix: &str) -> Vec<PathBuf> {
    let mut bases = vec![PathBuf::from("/var/run/dpdk")];
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR") {
        bases.push(Path::new(&xdg).join("dpdk"));
    }
    bases.push(PathBuf::from("/tmp/dpdk"));
    bases.into_iter().map(|b| b.join(prefix)).collect()
}

/// Removes this process's runtime directory (config files, sockets) when dropped, also on a
/// panic. Created before the `Eal` so that it drops after EAL clean-up. It only ever removes
/// the directory named by this process's own unique prefix.
struct RuntimeDir(String);

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        for dir in runtime_dir_candidates(&self.0) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Sends `commands` to the telemetry socket of `prefix` and returns one reply per command.
fn query(prefix: &str, commands: &[&str]) -> Vec<Value> {
    let mut child = Command::new(PYTHON)
        .args([CLIENT, "-f", prefix])
        // The client would look under $RUNTIME_DIRECTORY, which DPDK 22.11 ignores.
        .env_remove("RUNTIME_DIRECTORY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {PYTHON} {CLIENT}: {e}"));
    let mut input = commands.join("\n");
    input.push('\n');
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{CLIENT} failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let replies: Vec<Value> = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(replies.len(), commands.len(), "one reply per command, got:\n{stdout}");
    replies
}

#[test]
fn telemetry_client_sees_published_sections_and_pdump_starts() {
    let prefix = format!("tel-test-{}", std::process::id());
    let _dir = RuntimeDir(prefix.clone());
    let args: Vec<String> = ["tel-test", "--no-huge", "-m", "256", "--no-pci", "-l", "0", "--file-prefix", &prefix]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let eal = Eal::init(&args).expect("EAL init");

    telemetry::register().expect("register the /dataplane commands");
    telemetry::register().expect("a second register is a no-op");
    telemetry::pdump_init().expect("rte_pdump_init");
    telemetry::pdump_init().expect("a second pdump_init is a no-op");

    let socket = runtime_dir_candidates(&prefix).into_iter().map(|d| d.join("dpdk_telemetry.v2")).find(|p| p.exists());
    let client_present = Path::new(PYTHON).exists() && Path::new(CLIENT).exists();
    match (&socket, client_present) {
        (None, _) => println!("SKIP: EAL created no telemetry socket for {prefix} on this machine"),
        (Some(_), false) => println!("SKIP: {PYTHON} or {CLIENT} is not installed"),
        (Some(socket), true) => {
            println!("telemetry socket: {}", socket.display());
            check_commands(&prefix);
        }
    }

    telemetry::pdump_uninit();
    telemetry::pdump_uninit(); // a second one does nothing
    drop(eal);
}

fn check_commands(prefix: &str) {
    telemetry::publish(
        "stats",
        json!({
            "rx_packets": 123,
            "ports": {"p0": {"ipackets": 5, "driver": "net_null"}},
            "ratio": 0.5,
            "delta": -7,
            "per_queue": [1, 2, 3],
            "bad name!": "caf\u{e9}",
        }),
    );
    let r = query(prefix, &["/dataplane/stats", "/", "/help,/dataplane/stats", "/dataplane/latency", "/dataplane/nope"]);
    for (i, reply) in r.iter().enumerate() {
        println!("reply {i}: {reply}");
    }

    let stats = &r[0]["/dataplane/stats"];
    assert_eq!(stats["rx_packets"], json!(123));
    assert_eq!(stats["ports"]["p0"]["ipackets"], json!(5));
    assert_eq!(stats["ports"]["p0"]["driver"], json!("net_null"));
    assert_eq!(stats["ratio"], json!("0.5"), "22.11 has no float type: floats arrive as text");
    assert_eq!(stats["delta"], json!(-7));
    assert_eq!(stats["per_queue"], json!([1, 2, 3]));
    assert_eq!(stats["bad_name_"], json!("caf?"));

    let commands = r[1]["/"].as_array().expect("/ lists the commands");
    for cmd in ["/dataplane/stats", "/dataplane/softnet", "/dataplane/latency", "/dataplane/pools"] {
        assert_eq!(commands.iter().filter(|c| *c == cmd).count(), 1, "{cmd} listed once in {commands:?}");
    }
    let help = r[2]["/help"]["/dataplane/stats"].as_str().expect("help text");
    assert!(!help.is_empty());

    assert_eq!(r[3], json!({"/dataplane/latency": {}}), "unpublished section: empty dict");
    assert_eq!(r[4], json!({"/dataplane/nope": null}), "unknown command");

    // A new snapshot replaces the old one.
    telemetry::publish("stats", json!({"rx_packets": 456}));
    telemetry::publish("pools", json!({"pool0": {"avail": 1000, "in_use": 24}}));
    let r = query(prefix, &["/dataplane/stats", "/dataplane/pools"]);
    assert_eq!(r[0], json!({"/dataplane/stats": {"rx_packets": 456}}));
    assert_eq!(r[1], json!({"/dataplane/pools": {"pool0": {"avail": 1000, "in_use": 24}}}));

    // More than DPDK's 16 KiB reply holds (250 entries of ~115 bytes, under the 256-entry
    // limit): DPDK leaves the entries that do not fit out, and the reply stays JSON.
    let wide: serde_json::Map<String, Value> = (0..250).map(|i| (format!("pool{i:03}"), json!("x".repeat(100)))).collect();
    telemetry::publish("pools", Value::Object(wide));
    let r = query(prefix, &["/dataplane/pools"]);
    let pools = r[0]["/dataplane/pools"].as_object().expect("a dict");
    assert!(pools.len() > 100 && pools.len() < 250, "{} of 250 entries fit", pools.len());
    println!("oversized reply: {} of 250 entries fit in DPDK's reply", pools.len());
}
