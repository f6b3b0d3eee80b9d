//! The control socket and `dataplane ctl` against a running forwarder (the binary, l3fwd on
//! two net_null ports, which keep it busy: their all-zero frames are counted `not_ip`).
//!
//! - every `ctl` command, as tables and as `--json`, and the exit statuses 0, 1 and 2;
//! - bad input on the raw socket: malformed JSON, unknown command or field, a missing or
//!   wrong version, an over-long line, a prefix with host bits, a next hop on a missing
//!   port, deleting a missing route, a silent client, a client gone mid-request, 50 clients
//!   at once: each gets one clear error naming the field (or is closed after the timeout),
//!   and the forwarder keeps forwarding and exits clean (every mbuf back);
//! - `apply`: a live change, a refused one (names the key, changes nothing), and `show
//!   config` loading back unchanged, before and after live changes;
//! - a second instance on the same socket is refused before EAL starts.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Output, Stdio};
use std::time::{Duration, Instant};

use dataplane::control::api::{Command, Reply, RouteArgs};
use dataplane::control::Client;
use dataplane::Config;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_dataplane");

fn config(prefix: &str, socket: &Path) -> String {
    format!(
        r#"[eal]
file_prefix = "{prefix}"
args = {args}

[forward]
mode = "l3fwd"

[control]
socket = "{socket}"
idle_timeout_ms = 700
max_request_bytes = 65536

[[port]]
name = "p0"
device = "net_null0"
args = "size=64,copy=0"
ipv4 = "10.0.0.1/24"

[[port]]
name = "p1"
device = "net_null1"
args = "size=64,copy=0"

[[route]]
prefix = "10.1.0.0/16"
port = "p1"
via_mac = "02:00:00:00:01:01"

[[route]]
prefix = "2001:db8::/32"
port = "p0"
via_mac = "02:00:00:00:00:01"

[[worker]]
lcore = 1
rx = [{{ port = "p0", queue = 0 }}, {{ port = "p1", queue = 0 }}]
"#,
        args = common::eal_args_toml_with_memory(1024),
        socket = socket.display()
    )
}

/// A forwarder started for a test; killed (and its runtime directory removed) if the test
/// fails before it shuts it down.
struct Running {
    child: Option<Child>,
    socket: PathBuf,
    stats: PathBuf,
    _runtime: common::RuntimeDir,
}

impl Running {
    fn start(dir: &common::TempDir, tag: &str) -> Running {
        let prefix = common::unique_prefix(tag);
        let socket = dir.join(&format!("{tag}.sock"));
        let path = dir.join(&format!("{tag}.toml"));
        std::fs::write(&path, config(&prefix, &socket)).unwrap();
        let stats = dir.join(&format!("{tag}.json"));
        let child = Process::new(BIN)
            .args(["--config", path.to_str().unwrap(), "--stats-interval", "0", "--stats-json", stats.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let r = Running { child: Some(child), socket, stats, _runtime: common::RuntimeDir(prefix) };
        assert!(
            common::wait_for(Duration::from_secs(30), || UnixStream::connect(&r.socket).is_ok()),
            "no control socket at {} after 30 s",
            r.socket.display()
        );
        r
    }

    fn config_path(&self) -> PathBuf {
        self.socket.with_extension("toml")
    }

    fn client(&self) -> Client {
        Client::connect(&self.socket, Some(Duration::from_secs(30))).unwrap()
    }

    fn call(&self, c: Command) -> Result<Value, dataplane::control::ApiError> {
        self.client().call(&c).unwrap()
    }

    fn ctl(&self, args: &[&str]) -> Output {
        Process::new(BIN).args(["ctl", "--socket", self.socket.to_str().unwrap()]).args(args).output().unwrap()
    }

    fn processed(&self) -> u64 {
        let v = self.call(Command::ShowWorkers {}).unwrap();
        v.as_object().unwrap().values().map(|w| w["processed"].as_u64().unwrap()).sum()
    }

    /// `ctl shutdown`, then waits for the exit and returns (status, stdout+stderr, report).
    fn shutdown(mut self) -> (std::process::ExitStatus, String, Value) {
        let out = self.ctl(&["shutdown"]);
        assert!(out.status.success(), "{out:?}");
        let child = self.child.take().unwrap();
        let out = child.wait_with_output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_str(&std::fs::read_to_string(&self.stats).unwrap()).unwrap();
        (out.status, text, report)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// One raw line to the socket, its reply.
fn raw(socket: &Path, line: &str) -> Reply {
    let mut c = Client::connect(socket, Some(Duration::from_secs(10))).unwrap();
    c.raw(line).unwrap()
}

fn error_of(r: Reply) -> (String, Option<String>, String) {
    match r {
        Reply::Error(e) => (e.code, e.key, e.message),
        Reply::Ok(v) => panic!("accepted: {v}"),
    }
}

#[test]
fn every_command_as_tables_and_json() {
    let dir = common::TempDir::new("ctl-all");
    let fwd = Running::start(&dir, "all");

    // Tables for people: one per command, each with what it is about.
    for (args, want) in [
        (&["show", "status"][..], "mode l3fwd"),
        (&["show", "ports"], "net_null"),
        (&["show", "ports", "--xstats"], "rx_good_packets"),
        (&["show", "workers"], "not_ip"),
        (&["show", "latency"], "rx_to_tx"),
        (&["show", "pools"], "mbuf_pool_s0"),
        (&["show", "memory"], "accounting is off"),
        (&["show", "routes"], "10.1.0.0/16"),
        (&["show", "routes", "--family", "ipv6"], "2001:db8::/32"),
        (&["show", "next-hops"], "02:00:00:00:01:01"),
        (&["show", "config"], "[[route]]"),
        (&["show", "neighbours"], "resolution: 0 packets taken, 0 sent; dropped neigh_failed 0"),
        (&["route", "add", "10.2.0.0/16", "--port", "p0", "--via-mac", "02:00:00:00:00:02"], "added 10.2.0.0/16"),
        (&["route", "replace", "10.2.0.0/16", "--port", "p1", "--via-mac", "02:00:00:00:01:01"], "replaced 10.2.0.0/16"),
        (&["route", "replace", "2001:db8:5::/48", "--port", "p1", "--via-mac", "02:00:00:00:01:05"], "added 2001:db8:5::/48"),
        (&["show", "routes", "--origin", "ctl"], "2 routes shown"),
        (&["route", "del", "2001:db8:5::/48"], "deleted 2001:db8:5::/48"),
        (&["clear", "counters"], "counters cleared (1 workers"),
    ] {
        let o = fwd.ctl(args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains(want), "{args:?} lacks {want:?}: {}", text(&o));
    }
    // Sharing: the replaced route uses the config route's next hop (same port and MAC).
    let hops = fwd.call(Command::ShowNextHops {}).unwrap();
    let shared = hops["next_hops"].as_array().unwrap().iter().find(|n| n["via_mac"] == "02:00:00:00:01:01").unwrap();
    assert_eq!(shared["routes"], 2, "{hops}");

    // --json for scripts: the ok value, parseable, with the schema's fields.
    for (args, field) in [
        (&["show", "status"][..], "api_version"),
        (&["show", "ports"], "ports"),
        (&["show", "routes"], "summary"),
        (&["show", "next-hops"], "capacity"),
        (&["show", "config"], "toml"),
        (&["show", "neighbours"], "resolution"),
        (&["show", "latency"], "rx_to_tx"),
        (&["show", "pools"], "mbuf_pool_s0"),
    ] {
        let mut a = vec!["--json"];
        a.extend(args);
        let o = fwd.ctl(&a);
        assert!(o.status.success(), "{a:?}: {}", text(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{a:?}: {e}: {}", text(&o)));
        assert!(v.get(field).is_some(), "{a:?}: no {field}: {v}");
    }
    let o = fwd.ctl(&["--json", "show", "workers"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["lcore1"]["processed"].as_u64().is_some(), "{v}");

    // Refused: exit 1, the error names the field, as text and as JSON.
    let o = fwd.ctl(&["route", "add", "10.2.0.0/16", "--port", "p0", "--via-mac", "02:00:00:00:00:02"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("args.prefix: a route for 10.2.0.0/16 exists"), "{}", text(&o));
    let o = fwd.ctl(&["--json", "route", "del", "10.99.0.0/16"]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["error"], json!({ "code": "not_found", "message": "no route for 10.99.0.0/16", "key": "args.prefix" }));
    let o = fwd.ctl(&["port", "down", "p0"]);
    assert_eq!(o.status.code(), Some(1), "net_null has no link control: {}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not_supported"), "{}", text(&o));

    // Cannot reach: exit 2, naming the socket and the way out; a wrong command line is 1.
    let o = Process::new(BIN).args(["ctl", "--socket", "/nonexistent/x.sock", "show", "status"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("/nonexistent/x.sock") && e.contains("--socket"), "{e}");
    let o = Process::new(BIN).args(["ctl", "show", "bogus"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "a usage error: {}", text(&o));
    // Neither --socket nor --config, from a directory without configs/: the default socket
    // (the run's own --config default is not ctl's).
    let o = Process::new(BIN).current_dir("/").args(["ctl", "show", "status"]).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    let default = dataplane::config::default_socket("dataplane");
    assert!(
        o.status.success() || (o.status.code() == Some(2) && e.contains(&*default.to_string_lossy())),
        "ctl without --socket/--config: {}",
        text(&o)
    );
    // --config finds the socket in the forwarder's config.
    let o = Process::new(BIN).args(["ctl", "--config", fwd.config_path().to_str().unwrap(), "show", "status"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));

    // The help lists every command with an example.
    let o = Process::new(BIN).args(["ctl", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    for c in
        ["show", "route", "port", "clear", "apply", "shutdown", "dataplane ctl route add", "dataplane ctl apply", "Exit status"]
    {
        assert!(help.contains(c), "help lacks {c:?}:\n{help}");
    }

    let (status, out, report) = fwd.shutdown();
    assert!(status.success(), "{out}");
    assert_eq!(report["clean"], true, "{out}");
}

#[test]
fn bad_input_gets_one_clear_error_and_forwarding_goes_on() {
    let dir = common::TempDir::new("ctl-bad");
    let fwd = Running::start(&dir, "bad");
    let s = fwd.socket.clone();
    let before = fwd.processed();
    let route = |extra: &str| {
        format!(
            r#"{{"version":1,"command":"route_add","args":{{"prefix":"10.9.0.0/16","port":"p1","via_mac":"02:00:00:00:01:01"{extra}}}}}"#
        )
    };
    for (line, code, key, says) in [
        ("{not json", "bad_json", None, "not JSON"),
        ("[1, 2]", "bad_request", None, "JSON object"),
        (r#"{"command":"show_status"}"#, "bad_request", Some("version"), "required"),
        (r#"{"version":7,"command":"show_status"}"#, "unsupported_version", Some("version"), "speaks 1"),
        (r#"{"version":1,"command":"reboot"}"#, "unknown_command", Some("command"), "route_add"),
        (r#"{"version":1,"command":"show_status","colour":1}"#, "bad_request", Some("colour"), "unknown field"),
        (&route(r#","metric":5"#), "bad_request", Some("args.metric"), "unknown field"),
        (
            r#"{"version":1,"command":"route_add","args":{"prefix":"10.9.0.0/16"}}"#,
            "bad_request",
            Some("args.port"),
            "missing field",
        ),
        (r#"{"version":1,"command":"route_del","args":{"prefix":7}}"#, "bad_request", Some("args.prefix"), "invalid type"),
        (&route("").replace("10.9.0.0/16", "10.9.1.2/16"), "invalid", Some("args.prefix"), "did you mean \"10.9.0.0/16\""),
        (&route("").replace("10.9.0.0/16", "10.9.0.0/33"), "invalid", Some("args.prefix"), "prefix length"),
        (&route("").replace("\"p1\"", "\"p7\""), "invalid", Some("args.port"), "no port named \"p7\""),
        (&route("").replace("02:00:00:00:01:01", "02:00"), "invalid", Some("args.via_mac"), "not a MAC"),
        (r#"{"version":1,"command":"route_del","args":{"prefix":"10.77.0.0/16"}}"#, "not_found", Some("args.prefix"), "no route"),
        (r#"{"version":1,"command":"port_up","args":{"port":"nope"}}"#, "invalid", Some("args.port"), "no port"),
        (
            r#"{"version":1,"command":"apply","args":{"config":"[forward]\nburst = 9\n"}}"#,
            "invalid",
            Some("port"),
            "at least one",
        ),
        (r#"{"version":1,"command":"apply","args":{"config":"bogus = 1"}}"#, "bad_request", None, "unknown field `bogus`"),
    ] {
        let (c, k, m) = error_of(raw(&s, line));
        assert_eq!(c, code, "{line}: {m}");
        if key.is_some() {
            assert_eq!(k.as_deref(), key, "{line}: {m}");
        }
        assert!(m.contains(says), "{line}: {m:?} lacks {says:?}");
        assert!(!m.contains('\n'), "{line}: one line: {m:?}");
    }
    // Several requests on one connection: one reply each, in order.
    let mut c = fwd.client();
    for _ in 0..3 {
        assert!(matches!(c.raw(r#"{"version":1,"command":"show_status"}"#).unwrap(), Reply::Ok(_)));
        assert!(matches!(c.raw("nope").unwrap(), Reply::Error(_)));
    }

    // An over-long line: one error, then the connection is closed.
    let mut c = fwd.client();
    let long = format!(r#"{{"version":1,"command":"show_status","pad":"{}"}}"#, "x".repeat(70_000));
    let (code, _, msg) = error_of(c.raw(&long).unwrap());
    assert_eq!(code, "line_too_long", "{msg}");
    assert!(msg.contains("65536"), "{msg}");

    // A silent client is told and closed after idle_timeout_ms (700 ms).
    let mut silent = UnixStream::connect(&s).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t0 = Instant::now();
    let mut got = String::new();
    silent.read_to_string(&mut got).unwrap();
    assert!(got.contains("\"timeout\""), "{got}");
    assert!(t0.elapsed() >= Duration::from_millis(600), "closed after {:?}", t0.elapsed());

    // A client that disconnects in the middle of a request: nothing happens.
    {
        let mut half = UnixStream::connect(&s).unwrap();
        half.write_all(route("").as_bytes().split_at(40).0).unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(!fwd.call(Command::ShowRoutes { family: None, origin: None }).unwrap().to_string().contains("10.9.0.0"));

    // 50 clients at once, each adding its own route and reading it back.
    let handles: Vec<_> = (0..50u32)
        .map(|i| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(&s, Some(Duration::from_secs(30))).unwrap();
                let args = RouteArgs {
                    prefix: format!("10.{}.0.0/16", 100 + i),
                    port: "p1".into(),
                    via: None,
                    via_mac: Some("02:00:00:00:01:01".into()),
                };
                c.call(&Command::RouteAdd(args)).unwrap().unwrap();
                c.call(&Command::ShowStatus {}).unwrap().unwrap()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap()["mode"], "l3fwd");
    }
    let routes = fwd.call(Command::ShowRoutes { family: Some("ipv4".into()), origin: Some("ctl".into()) }).unwrap();
    assert_eq!(routes["routes"].as_array().unwrap().len(), 50);
    assert_eq!(
        routes["summary"]["next_hops"], 3,
        "50 routes, one shared next hop (and the IPv6 one, and p0's connected subnet's)"
    );

    // Still forwarding, and at the end every mbuf is back.
    assert!(common::wait_for(Duration::from_secs(10), || fwd.processed() > before), "the workers stopped");
    let (status, out, report) = fwd.shutdown();
    assert!(status.success(), "{out}");
    assert_eq!(report["clean"], true, "{out}");
    for (name, pool) in report["pools"].as_object().unwrap() {
        assert_eq!(pool["in_use"], 0, "pool {name}");
    }
}

#[test]
fn apply_live_refused_and_show_config_round_trips() {
    let dir = common::TempDir::new("ctl-apply");
    let fwd = Running::start(&dir, "apply");
    let original = Config::load(&fwd.config_path()).unwrap();
    let shown = |fwd: &Running| fwd.call(Command::ShowConfig {}).unwrap()["toml"].as_str().unwrap().to_owned();

    // show config loads back unchanged.
    let running = shown(&fwd);
    assert_eq!(Config::from_toml_str(&running).unwrap(), original, "{running}");

    // A live change: a route added, one replaced, one deleted, the poll budget, an address.
    let new_text = running
        .replace("budget = 300", "budget = 64")
        .replace("10.0.0.1/24", "10.0.0.254/24")
        .replace("via_mac = \"02:00:00:00:00:01\"", "via_mac = \"02:00:00:00:00:09\"")
        .replace("prefix = \"10.1.0.0/16\"", "prefix = \"10.3.0.0/16\"");
    let new_path = dir.join("new.toml");
    std::fs::write(&new_path, &new_text).unwrap();
    let o = fwd.ctl(&["apply", new_path.to_str().unwrap(), "--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    let dry = String::from_utf8_lossy(&o.stdout);
    for want in
        ["route del 10.1.0.0/16", "route add 10.3.0.0/16", "route replace 2001:db8::/32", "poll.budget 300 -> 64", "dry run"]
    {
        assert!(dry.contains(want), "{want:?} not in {dry}");
    }
    assert_eq!(shown(&fwd), running, "a dry run changes nothing");
    let o = fwd.ctl(&["apply", new_path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("applied: 1 routes added, 1 replaced, 1 deleted"), "{}", text(&o));
    let routes = fwd.call(Command::ShowRoutes { family: None, origin: None }).unwrap();
    let prefixes: Vec<&str> = routes["routes"].as_array().unwrap().iter().map(|r| r["prefix"].as_str().unwrap()).collect();
    // p0's own subnet is a connected route, on-link.
    assert_eq!(prefixes, ["10.0.0.0/24", "10.3.0.0/16", "2001:db8::/32"]);
    assert_eq!(routes["routes"][0]["origin"], "connected");
    assert_eq!(routes["routes"][0].get("via_mac"), None);
    assert_eq!(routes["routes"][2]["via_mac"], "02:00:00:00:00:09");
    let after = shown(&fwd);
    assert_eq!(Config::from_toml_str(&after).unwrap(), Config::from_toml_str(&new_text).unwrap());

    // Live ctl changes show up in the running config too, and it still round-trips.
    fwd.call(Command::RouteAdd(RouteArgs {
        prefix: "10.4.0.0/16".into(),
        port: "p0".into(),
        via: None,
        via_mac: Some("02:00:00:00:00:04".into()),
    }))
    .unwrap();
    let with_ctl = shown(&fwd);
    let parsed = Config::from_toml_str(&with_ctl).unwrap();
    assert!(parsed.routes.iter().any(|r| r.prefix.to_string() == "10.4.0.0/16"), "{with_ctl}");
    assert_eq!(parsed.to_toml(), with_ctl);

    // Refused: names the key, changes nothing (the route in the same file is not added).
    for (edit, key) in [
        (("rx_desc = 1024", "rx_desc = 512"), "port[0].rx_desc"),
        (("file_prefix = ", "file_prefix = \"x\"\n#"), "eal.file_prefix"),
        (("ipv4_max_routes = 1048576", "ipv4_max_routes = 1000"), "fib.ipv4_max_routes"),
        (("lcore = 1", "lcore = 0\n#"), "worker[0].lcore"),
    ] {
        let refused = with_ctl.replacen(edit.0, edit.1, 1)
            + "\n[[route]]\nprefix = \"10.5.0.0/16\"\nport = \"p0\"\nvia_mac = \"02:00:00:00:00:05\"\n";
        let p = dir.join("refused.toml");
        std::fs::write(&p, &refused).unwrap();
        let o = fwd.ctl(&["apply", p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{key}: {}", text(&o));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains(key), "{key} not named: {e}");
        assert_eq!(shown(&fwd), with_ctl, "{key}: the running config changed");
    }
    let routes = fwd.call(Command::ShowRoutes { family: None, origin: None }).unwrap();
    assert!(!routes.to_string().contains("10.5.0.0"), "a refused apply added a route");

    let (status, out, report) = fwd.shutdown();
    assert!(status.success(), "{out}");
    assert_eq!(report["clean"], true, "{out}");
}

#[test]
fn a_second_instance_on_the_same_socket_is_refused() {
    let dir = common::TempDir::new("ctl-twice");
    let fwd = Running::start(&dir, "first");
    // Same socket, another file prefix: refused before EAL starts, naming the socket.
    let second = config(&common::unique_prefix("second"), &fwd.socket);
    let path = dir.join("second.toml");
    std::fs::write(&path, second).unwrap();
    let out = common::run_dataplane(&["--config", path.to_str().unwrap(), "--duration", "1"], Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("control.socket") && e.contains("in use by a running forwarder"), "{e}");
    assert!(!e.contains("EAL:"), "refused before EAL starts: {e}");
    // The first one is unharmed, and removes its socket at exit.
    assert_eq!(fwd.call(Command::ShowStatus {}).unwrap()["mode"], "l3fwd");
    let socket = fwd.socket.clone();
    let (status, out, _) = fwd.shutdown();
    assert!(status.success(), "{out}");
    assert!(!socket.exists(), "socket left behind");
    // A stale socket file (no process behind it) is replaced.
    let stale = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    drop(stale);
    assert!(socket.exists());
    let again = Running::start(&dir, "first");
    let (status, out, _) = again.shutdown();
    assert!(status.success(), "{out}");
}
