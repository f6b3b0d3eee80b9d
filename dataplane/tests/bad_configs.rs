//! Table-driven: bad configs and bad command lines through the `dataplane` binary. Each
//! must exit non-zero with exactly one `error: ...` line on stderr that names the
//! problem, and, wherever the config alone can tell, before EAL starts (EAL prints
//! nothing, on stdout or stderr).
//!
//! The one case only EAL can judge is a worker lcore that the config accepts (ids below
//! 128) but this machine lacks: it must still end with one error line naming the lcore
//! and a non-zero exit.
//!
//! This process never starts EAL; a child that does uses `--no-huge`, `--no-pci` and
//! its own file prefix.

mod common;

use std::process::Output;
use std::time::Duration;

/// Refusals before EAL are immediate; the EAL case takes a second or two.
const LIMIT: Duration = Duration::from_secs(30);

/// Two net_null ports in an io pair, one worker on lcore 1 polling both.
fn valid(prefix: &str) -> String {
    common::null_pair_config(prefix)
}

/// The l3fwd form of [`valid`]: one route, to null1.
fn valid_l3fwd(prefix: &str) -> String {
    valid(prefix).replace("pairs = [[\"null0\", \"null1\"]]", "mode = \"l3fwd\"")
        + "\n[[route]]\nprefix = \"10.1.0.0/16\"\nport = \"null1\"\nvia_mac = \"02:00:00:00:00:02\"\n"
}

/// A config edit: `base` with `from` replaced by `to` (`from` must be there).
struct Edit {
    name: &'static str,
    base: fn(&str) -> String,
    from: &'static str,
    to: &'static str,
    /// What the error line must contain.
    needle: &'static str,
}

const fn e(name: &'static str, from: &'static str, to: &'static str, needle: &'static str) -> Edit {
    Edit { name, base: valid, from, to, needle }
}

const fn e3(name: &'static str, from: &'static str, to: &'static str, needle: &'static str) -> Edit {
    Edit { name, base: valid_l3fwd, from, to, needle }
}

const W: &str = "[[worker]]\nlcore = 1\n";
const RX: &str = r#"rx = [{ port = "null0", queue = 0 }, { port = "null1", queue = 0 }]"#;

const CONFIG_CASES: &[Edit] = &[
    // Unknown keys, at every level.
    e("unknown-section", "[forward]\n", "[bogus_section]\nx = 1\n[forward]\n", "bogus_section"),
    e("unknown-forward-key", "[forward]\n", "[forward]\nbogus = 1\n", "bogus"),
    e("unknown-port-key", "device = \"net_null0\"\n", "device = \"net_null0\"\nspeed = 100\n", "speed"),
    e("unknown-worker-key", W, "[[worker]]\nlcore = 1\npriority = 1\n", "priority"),
    e("unknown-rx-key", "{ port = \"null0\", queue = 0 }", "{ port = \"null0\", queue = 0, ring = 1 }", "ring"),
    // Wrong types.
    e("burst-string", "[forward]\n", "[forward]\nburst = \"32\"\n", "burst"),
    e("lcore-string", W, "[[worker]]\nlcore = \"one\"\n", "lcore"),
    e("lcore-float", W, "[[worker]]\nlcore = 1.5\n", "lcore"),
    e("pairs-not-array", "pairs = [[\"null0\", \"null1\"]]", "pairs = \"null0,null1\"", "pairs"),
    e("rx-queues-bool", "device = \"net_null1\"\n", "device = \"net_null1\"\nrx_queues = true\n", "rx_queues"),
    e("port-table-not-array", "[[port]]\nname = \"null0\"", "[port]\nname = \"null0\"", "port"),
    e("not-toml", "[forward]\n", "[forward\n", "forward"),
    // Out of range.
    e("burst-too-large", "[forward]\n", "[forward]\nburst = 33\n", "forward.burst"),
    e("lcore-128", W, "[[worker]]\nlcore = 128\n", "worker[0].lcore"),
    e("lcore-negative", W, "[[worker]]\nlcore = -1\n", "worker[0].lcore"),
    e("worker-on-main-lcore", W, "[[worker]]\nlcore = 0\n", "main_lcore"),
    e("rx-queue-missing", "{ port = \"null1\", queue = 0 }", "{ port = \"null1\", queue = 1 }", "rx queue 1"),
    e("mode-unknown", "[forward]\n", "[forward]\nmode = \"teleport\"\n", "teleport"),
    e("pool-too-small", "[forward]\n", "[pool]\nmbufs = 100\n[forward]\n", "pool.mbufs"),
    // Overlapping queues: one queue polled twice, by two workers or by one.
    e(
        "queue-polled-by-two-workers",
        RX,
        "rx = [{ port = \"null0\", queue = 0 }, { port = \"null1\", queue = 0 }]\n\n[[worker]]\nlcore = 2\nrx = [{ port = \"null0\", queue = 0 }]",
        "already polled by worker[0].rx[0]",
    ),
    e(
        "queue-polled-twice-by-one-worker",
        RX,
        "rx = [{ port = \"null0\", queue = 0 }, { port = \"null1\", queue = 0 }, { port = \"null1\", queue = 0 }]",
        "already polled",
    ),
    e("duplicate-worker-lcore", RX, "rx = [{ port = \"null0\", queue = 0 }]\n\n[[worker]]\nlcore = 1\nrx = [{ port = \"null1\", queue = 0 }]", "worker[1].lcore"),
    e("duplicate-port-name", "name = \"null1\"", "name = \"null0\"", "null0"),
    e("pair-to-missing-port", "pairs = [[\"null0\", \"null1\"]]", "pairs = [[\"null0\", \"ghost\"]]", "ghost"),
    // Routes to missing ports, bad prefixes, routes outside l3fwd.
    e3("route-to-missing-port", "port = \"null1\"\nvia_mac", "port = \"ghost\"\nvia_mac", "ghost"),
    e3("route-host-bits", "10.1.0.0/16", "10.1.0.1/16", "host bits"),
    e3("route-bad-mac", "02:00:00:00:00:02", "02:00:00:00:00", "via_mac"),
    e3("route-prefix-too-long", "10.1.0.0/16", "10.1.0.0/33", "prefix"),
    // A port with its own address whose RX queues two workers poll: both may send the slow
    // path's replies on it, so it needs a TX queue each, although no route leads there.
    e3(
        "local-port-tx-queue-per-worker",
        concat!(
            "args = \"size=64,copy=0\"\n\n[[port]]\nname = \"null1\"\ndevice = \"net_null1\"\nargs = \"size=64,copy=0\"\n\n",
            "[[worker]]\nlcore = 1\nrx = [{ port = \"null0\", queue = 0 }, { port = \"null1\", queue = 0 }]\n",
        ),
        concat!(
            "args = \"size=64,copy=0\"\nrx_queues = 2\nipv4 = \"10.0.0.1/24\"\n\n",
            "[[port]]\nname = \"null1\"\ndevice = \"net_null1\"\nargs = \"size=64,copy=0\"\ntx_queues = 2\n\n",
            "[[worker]]\nlcore = 1\nrx = [{ port = \"null0\", queue = 0 }, { port = \"null1\", queue = 0 }]\n\n",
            "[[worker]]\nlcore = 2\nrx = [{ port = \"null0\", queue = 1 }]\n",
        ),
        "port[0].tx_queues: port \"null0\" may be sent to by each of the 2 [[worker]]s",
    ),
    // Accounting limits out of order: min > pressure > max is refused either way.
    e("accounting-min-above-pressure", "[forward]\n", "[accounting]\ntcp = { min = 10, pressure = 5, max = 20 }\n[forward]\n", "accounting.tcp.min"),
    e("accounting-pressure-above-max", "[forward]\n", "[accounting]\nudp = { min = 1, pressure = 50, max = 20 }\n[forward]\n", "accounting.udp.pressure"),
    e("accounting-unknown-key", "[forward]\n", "[accounting]\ntcp = { min = 1, pressure = 2, max = 3, hard = 4 }\n[forward]\n", "hard"),
    // The metrics endpoint: an address and a port, nothing else.
    e("metrics-hostname", "[forward]\n", "[metrics]\nlisten = \"localhost:9111\"\n[forward]\n", "metrics.listen"),
    e("metrics-no-port", "[forward]\n", "[metrics]\nlisten = \"127.0.0.1\"\n[forward]\n", "metrics.listen"),
    e("metrics-port-too-large", "[forward]\n", "[metrics]\nlisten = \"127.0.0.1:65536\"\n[forward]\n", "metrics.listen"),
    e("metrics-unknown-key", "[forward]\n", "[metrics]\nlisten = \"127.0.0.1:0\"\npath = \"/m\"\n[forward]\n", "path"),
    // Extensions and mirror.
    e("mirror-missing-port", "[forward]\n", "[mirror]\nport = \"ghost\"\nproto = \"udp\"\n[forward]\nmode = \"macswap\"\n", "ghost"),
    e("mirror-bad-proto", "[forward]\n", "[mirror]\nport = \"null1\"\nproto = \"sctp\"\n[forward]\nmode = \"macswap\"\n", "sctp"),
];

fn last_line(text: &str) -> &str {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("")
}

/// Non-zero exit, exactly one `error:` line, the last on stderr, containing `needle`.
/// Returns (stdout, stderr).
fn assert_one_error(case: &str, out: &Output, needle: &str) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let context = format!("case {case}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    assert!(!out.status.success(), "exited with {}: {context}", out.status);
    assert_ne!(out.status.code(), None, "killed by a signal: {context}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "want exactly one error line: {context}");
    assert!(errors[0].starts_with("error: "), "{context}");
    assert!(errors[0].contains(needle), "the error line does not contain {needle:?}: {context}");
    (stdout, stderr)
}

fn assert_before_eal(case: &str, stdout: &str, stderr: &str) {
    assert!(
        !stdout.contains("EAL") && !stderr.contains("EAL:"),
        "case {case}: EAL started before the config was refused\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
}

#[test]
fn bad_configs_are_refused_before_eal() {
    let dir = common::TempDir::new("bad-configs");
    let prefix = common::unique_prefix("bad-configs");
    let _runtime = common::RuntimeDir(prefix.clone());
    let mut failures = Vec::new();
    for c in CONFIG_CASES {
        let base = (c.base)(&prefix);
        assert!(base.contains(c.from), "case {}: {:?} not in the base config", c.name, c.from);
        let text = base.replacen(c.from, c.to, 1);
        let path = dir.join(&format!("{}.toml", c.name));
        std::fs::write(&path, &text).unwrap();
        let out = common::run_dataplane(&["--config", path.to_str().unwrap(), "--duration", "0"], LIMIT);
        // Collect every failing case rather than stopping at the first.
        let r = std::panic::catch_unwind(|| {
            let (stdout, stderr) = assert_one_error(c.name, &out, c.needle);
            assert!(last_line(&stderr).starts_with("error: "), "case {}: error is not the last line:\n{stderr}", c.name);
            assert_before_eal(c.name, &stdout, &stderr);
        });
        if let Err(e) = r {
            failures.push(format!("{}: {}", c.name, e.downcast_ref::<String>().cloned().unwrap_or_default()));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), CONFIG_CASES.len(), failures.join("\n\n"));
}

#[test]
fn the_shipped_valid_configs_are_accepted() {
    // The bases themselves must load, or every case above would pass for the wrong reason.
    for base in [valid as fn(&str) -> String, valid_l3fwd] {
        let text = base("x");
        dataplane::Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    }
}

#[test]
fn bad_command_lines_are_refused_before_eal() {
    let dir = common::TempDir::new("bad-cli");
    let prefix = common::unique_prefix("bad-cli");
    let _runtime = common::RuntimeDir(prefix.clone());
    let cfg = dir.join("ok.toml");
    std::fs::write(&cfg, valid(&prefix)).unwrap();
    let cfg = cfg.to_str().unwrap();
    let missing = dir.join("missing.toml");
    let missing = missing.to_str().unwrap();
    let cases: &[(&str, &[&str], &str)] = &[
        ("unknown-flag", &["--config", cfg, "--bogus"], "--bogus"),
        ("duration-not-a-number", &["--config", cfg, "--duration", "soon"], "soon"),
        ("duration-negative", &["--config", cfg, "--duration", "-3"], "--duration"),
        ("duration-nan", &["--config", cfg, "--duration", "NaN"], "--duration"),
        ("stats-interval-negative", &["--config", cfg, "--stats-interval", "-1"], "--stats-interval"),
        ("stats-interval-inf", &["--config", cfg, "--stats-interval", "inf"], "--stats-interval"),
        ("config-without-value", &["--config"], "--config"),
        ("config-missing", &["--config", missing], "missing.toml"),
        ("config-is-a-directory", &["--config", dir.path().to_str().unwrap()], "cannot read"),
        ("positional-argument", &["--config", cfg, "stray"], "stray"),
        ("file-prefix-after-dashes", &["--config", cfg, "--", "--file-prefix", "other"], "eal.file_prefix"),
        ("vdev-after-dashes", &["--config", cfg, "--", "--vdev=net_null9"], "[[port]] device"),
    ];
    for (name, args, needle) in cases {
        let out = common::run_dataplane(args, LIMIT);
        let (stdout, stderr) = assert_one_error(name, &out, needle);
        assert_before_eal(name, &stdout, &stderr);
    }
}

/// `lcore = 100` is a valid lcore id for the config (below 128) but not on a machine
/// with fewer CPUs: the forwarder refuses it before EAL starts, naming the key.
#[test]
fn lcore_the_machine_lacks() {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    if cpus > 100 {
        eprintln!("skipped: this machine has lcore 100");
        return;
    }
    let dir = common::TempDir::new("bad-lcore");
    let prefix = common::unique_prefix("bad-lcore");
    let _runtime = common::RuntimeDir(prefix.clone());
    let cfg = dir.join("lcore100.toml");
    std::fs::write(&cfg, valid(&prefix).replacen("lcore = 1\n", "lcore = 100\n", 1)).unwrap();
    dataplane::Config::load(&cfg).expect("the config itself accepts lcore 100");
    let out = common::run_dataplane(&["--config", cfg.to_str().unwrap(), "--duration", "1"], LIMIT);
    let (stdout, stderr) = assert_one_error("lcore-100", &out, "100");
    assert!(last_line(&stderr).starts_with("error: "), "{stderr}");
    assert!(stderr.contains("worker[0].lcore: lcore 100 is not available on this machine"), "{stderr}");
    assert_before_eal("lcore-100", &stdout, &stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
}
