//! The `dataplane` binary refuses bad input with a non-zero exit status and one
//! line on stderr, `error: ...`, that names the problem.
//!
//! Config mistakes are caught before EAL starts (checked: EAL prints nothing).
//! Two cases do start EAL in the child, because only EAL can tell: a vdev with
//! an unknown driver (`--no-huge`, `--no-pci`, its own file prefix) and a PCI
//! address that does not exist (EAL runs with the PCI bus then, but the config
//! puts that one address on the allow-list, so EAL scans and probes nothing
//! else; the test checks the arguments and that no such device exists before
//! running it). This process never starts EAL.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use dataplane::Config;

/// A child that does not start EAL finishes at once; one that does, within a
/// few seconds. Anything slower is a hang.
const LIMIT: Duration = Duration::from_secs(30);

/// Two net_null ports and one worker, like configs/null.toml; `prefix` is the
/// EAL file prefix.
fn valid(prefix: &str) -> String {
    common::null_pair_config(prefix)
}

/// `text` with `from` replaced by `to`, which must be there.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in the base config");
    text.replacen(from, to, 1)
}

/// A scratch directory holding `config.toml` with `text`, and its EAL file
/// prefix (the directory and the prefix's runtime dir go when dropped).
struct Case {
    dir: common::TempDir,
    prefix: String,
    _runtime_dir: common::RuntimeDir,
}

impl Case {
    fn new(tag: &str, make: impl FnOnce(&str) -> String) -> Case {
        let dir = common::TempDir::new(&format!("cli-{tag}"));
        let prefix = common::unique_prefix(&format!("cli-{tag}"));
        std::fs::write(dir.join("config.toml"), make(&prefix)).unwrap();
        Case { dir, _runtime_dir: common::RuntimeDir(prefix.clone()), prefix }
    }

    fn config(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    fn run(&self, extra: &[&str]) -> Output {
        let config = self.config();
        let mut args = vec!["--config", config.to_str().unwrap()];
        args.extend_from_slice(extra);
        common::run_dataplane(&args, LIMIT)
    }
}

/// The last non-empty line of `text`.
fn last_line(text: &str) -> &str {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("")
}

/// Checks a refusal: non-zero exit, stderr's last line is `error: ...`
/// containing `needle`. Returns stderr.
fn assert_refused(out: &Output, needle: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let context = format!("\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    // Shown by the harness on failure, or with --nocapture.
    println!("{context}");
    assert!(!out.status.success(), "exited with {}{context}", out.status);
    let last = last_line(&stderr);
    assert!(last.starts_with("error: "), "stderr's last line is not `error: ...`{context}");
    assert!(last.contains(needle), "the error line does not contain {needle:?}{context}");
    let error_lines = stderr.lines().filter(|l| l.starts_with("error")).count();
    assert_eq!(error_lines, 1, "more than one error line{context}");
    // Each cause is said once: an error whose Display already includes its
    // source must not also expose it as `source()`, or `{:#}` prints it twice.
    let segments: Vec<&str> = last.split(": ").collect();
    for (i, seg) in segments.iter().enumerate() {
        assert!(!segments[i + 1..].contains(seg), "{seg:?} is repeated in the error line{context}");
    }
    stderr
}

/// Like [`assert_refused`], and EAL never started.
fn assert_refused_before_eal(out: &Output, needle: &str) {
    let stderr = assert_refused(out, needle);
    assert!(!stderr.contains("EAL:"), "EAL started before the input was checked:\n{stderr}");
}

#[test]
fn unknown_config_key() {
    let case = Case::new("key", |p| edit(&valid(p), "[forward]\n", "[forward]\nbogus = 1\n"));
    assert_refused_before_eal(&case.run(&[]), "bogus");
}

#[test]
fn pair_with_undefined_port() {
    let case = Case::new("pair", |p| edit(&valid(p), r#"pairs = [["null0", "null1"]]"#, r#"pairs = [["null0", "ghost7"]]"#));
    assert_refused_before_eal(&case.run(&[]), "ghost7");
}

#[test]
fn port_without_rx_queues() {
    let case = Case::new("rxq", |p| edit(&valid(p), "device = \"net_null1\"\n", "device = \"net_null1\"\nrx_queues = 0\n"));
    assert_refused_before_eal(&case.run(&[]), "rx_queues");
}

#[test]
fn malformed_device() {
    let case = Case::new("dev", |p| edit(&valid(p), "device = \"net_null0\"", "device = \"net_null0,copy=1\""));
    assert_refused_before_eal(&case.run(&[]), "device");
}

#[test]
fn negative_duration() {
    let case = Case::new("dur", valid);
    assert_refused_before_eal(&case.run(&["--duration", "-1"]), "--duration");
    assert_refused_before_eal(&case.run(&["--duration=-1"]), "--duration");
}

#[test]
fn missing_config_file() {
    let dir = common::TempDir::new("cli-missing");
    let path = dir.join("no-such-config.toml");
    let out = common::run_dataplane(&["--config", path.to_str().unwrap()], LIMIT);
    assert_refused_before_eal(&out, path.to_str().unwrap());
}

/// `metrics.listen` on a port another socket holds: one error naming the key and the
/// address, before EAL (the listener is bound first), and the port's holder untouched.
#[test]
fn metrics_port_in_use() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap();
    let case = Case::new("metrics", |p| edit(&valid(p), "[forward]\n", &format!("[metrics]\nlisten = \"{addr}\"\n[forward]\n")));
    assert_refused_before_eal(&case.run(&[]), &format!("metrics.listen: cannot listen on {addr}: Address already in use"));
    assert_eq!(holder.local_addr().unwrap(), addr);
}

#[test]
fn help_exits_zero() {
    let out = common::run_dataplane(&["--help"], LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "--help exited with {}", out.status);
    assert!(stdout.contains("--config") && stdout.contains("--duration"), "{stdout}");
}

/// A vdev name of the right shape whose driver does not exist: refused when the
/// forwarder creates the device, after EAL started.
#[test]
fn vdev_with_unknown_driver() {
    let case =
        Case::new("vdev", |p| edit(&valid(p), "device = \"net_null1\"\nargs = \"size=64,copy=0\"", "device = \"net_bogus0\""));
    let config = Config::load(&case.config()).unwrap_or_else(|e| panic!("{e}"));
    let args = config.eal_args("dataplane", &[]);
    for want in ["--no-pci", "--no-huge", case.prefix.as_str()] {
        assert!(args.iter().any(|a| a == want), "EAL arguments lack {want}: {args:?}");
    }
    let stderr = assert_refused(&case.run(&[]), "net_bogus0");
    assert!(stderr.contains("EAL:"), "expected EAL to start:\n{stderr}");
}

/// A PCI address with no device behind it: EAL starts with exactly that
/// address on the PCI allow-list and probes nothing; the forwarder then does
/// not find the port.
#[test]
fn pci_device_not_present() {
    const ADDR: &str = "0000:7f:1f.7";
    let sysfs = Path::new("/sys/bus/pci/devices").join(ADDR);
    assert!(
        !sysfs.exists(),
        "refusing to run: this machine has a PCI device at {ADDR} ({}), and the test would let EAL probe it",
        sysfs.display()
    );
    let case = Case::new("pci", |prefix| {
        format!(
            r#"[eal]
file_prefix = "{prefix}"
args = {args}

[forward]
pairs = [["p0", "p0"]]

[[port]]
name = "p0"
device = "{ADDR}"

[[worker]]
lcore = 1
rx = [{{ port = "p0", queue = 0 }}]
"#,
            args = common::eal_args_toml()
        )
    });

    // The only device EAL is told about is ADDR, as an allow-list entry, so
    // the PCI bus scans and probes nothing else (the machine's own NICs are
    // left alone). No --vdev, no block-list, nothing added after `--`.
    let config = Config::load(&case.config()).unwrap_or_else(|e| panic!("{e}"));
    let args = config.eal_args("dataplane", &[]);
    let allow: Vec<&[String]> = args.windows(2).filter(|w| w[0] == "-a").collect();
    assert_eq!(allow.len(), 1, "{args:?}");
    assert_eq!(allow[0][1], ADDR, "{args:?}");
    for arg in &args {
        for banned in ["--allow", "-b", "--block", "--vdev", "--no-pci"] {
            assert!(!arg.starts_with(banned), "unexpected EAL argument {arg:?} in {args:?}");
        }
    }
    let mut expected = vec!["dataplane", "-l", "0,1", "--main-lcore", "0", "--file-prefix", case.prefix.as_str(), "-a", ADDR];
    expected.extend_from_slice(common::EAL_ARGS);
    assert_eq!(args, expected);

    let stderr = assert_refused(&case.run(&[]), "not found");
    assert!(last_line(&stderr).contains(ADDR), "{stderr}");
}
