//! Configs and helpers shared by the config module's tests.

use std::path::{Path, PathBuf};

use super::Config;

pub(super) fn config_path(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs")).join(name)
}

pub(super) fn load(name: &str) -> Config {
    let path = config_path(name);
    Config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub(super) fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|&s| s.to_owned()).collect()
}

pub(super) const PORTS: &str = r#"
[[port]]
name = "null0"
device = "net_null0"

[[port]]
name = "null1"
device = "net_null1"
"#;

pub(super) const PAIR: &str = "[forward]\npairs = [[\"null0\", \"null1\"]]\n";

pub(super) const WORKER: &str = r#"
[[worker]]
lcore = 1
rx = [{ port = "null0", queue = 0 }, { port = "null1", queue = 0 }]
"#;

pub(super) fn valid() -> String {
    format!("{PAIR}{PORTS}{WORKER}")
}

/// `valid()` in l3fwd mode (no pairs, no routes).
pub(super) fn l3fwd() -> String {
    format!("[forward]\nmode = \"l3fwd\"\n{PORTS}{WORKER}")
}

/// Replaces the `[[port]]` tables of `valid()`.
pub(super) fn with_ports(ports: &str) -> String {
    format!("{PAIR}{ports}{WORKER}")
}

/// Replaces the `[[worker]]` tables of `valid()`.
pub(super) fn with_workers(workers: &str) -> String {
    format!("{PAIR}{PORTS}{workers}")
}

/// `valid()` with `extra` added to port null0 (it is followed by null1).
pub(super) fn with_port0(extra: &str) -> String {
    with_ports(&PORTS.replacen("device = \"net_null0\"\n", &format!("device = \"net_null0\"\n{extra}\n"), 1))
}

/// `valid()` with `extra` added to port null1 (the last port).
pub(super) fn with_port1(extra: &str) -> String {
    format!("{PAIR}{PORTS}{extra}\n{WORKER}")
}
