//! Real traffic from Linux hosts: `ci/netns-test.sh` puts two hosts in network
//! namespaces, in different IPv4 and IPv6 subnets, with veth pairs whose root-side ends
//! the forwarder (this crate's binary, l3fwd) drives through net_af_packet and then
//! net_af_xdp, with no host's MAC in the forwarder's config: it resolves the hosts itself.
//! The script checks ping and ping -6 across the forwarder (TTL 63), an iperf3 TCP
//! stream, the forwarder's neighbour table (both hosts REACHABLE, a MAC change followed, a
//! vanished host FAILED with its held packets counted), and the forwarder's counters and
//! exit; here we assert on its exit status and output, for both drivers in turn (one after
//! the other: each forwarder busy-polls lcore 1).
//!
//! Where the machine forbids network namespaces (not root, or a sandbox without
//! CAP_SYS_ADMIN) the script exits 77 with "SKIP: ..." and the test passes, saying so.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the script for `driver` (at most `limit`), returning (exit code, stdout + stderr).
fn run_script(driver: &str, limit: Duration) -> (Option<i32>, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci/netns-test.sh");
    let mut child = Command::new("bash")
        .arg(&script)
        .args([env!("CARGO_BIN_EXE_dataplane"), driver])
        .env("IPERF_SECONDS", "3")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for netns-test.sh") {
            break status;
        }
        if Instant::now() >= deadline {
            // SIGTERM: the script's trap tears the namespaces and processes down.
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
            panic!(
                "ci/netns-test.sh {driver} still running after {limit:?}; stopped it\n{}{}",
                out.join().unwrap(),
                err.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.code(), format!("{}{}", out.join().unwrap(), err.join().unwrap()))
}

#[test]
fn hosts_in_namespaces_ping_and_stream_tcp_through_the_forwarder() {
    for driver in ["af_packet", "af_xdp"] {
        let (code, output) = run_script(driver, Duration::from_secs(120));
        if code == Some(77) {
            let why = output.lines().find(|l| l.starts_with("SKIP:")).unwrap_or("SKIP: no network namespaces here");
            eprintln!("{why}");
            return;
        }
        println!("{output}");
        assert_eq!(code, Some(0), "ci/netns-test.sh {driver} failed:\n{output}");
        let pass = output
            .lines()
            .find(|l| l.starts_with(&format!("netns-test[{driver}]: PASS")))
            .unwrap_or_else(|| panic!("no PASS line for {driver}:\n{output}"));
        for want in [
            "ttl=63",
            "Gbit/s",
            "forwarding resumed after a link flap",
            "counters account for the traffic",
            "both hosts REACHABLE",
            "a MAC change followed",
            "a vanished host FAILED and counted",
        ] {
            assert!(pass.contains(want), "{driver}: PASS line lacks {want:?}: {pass}");
        }
        // Both families went through, and the router's own addresses were answered.
        for want in ["ping -4 h1 -> 10.0.2.2: 10/10 replies, ttl=63", "ping -6 h1 -> 2001:db8:2::2: 10/10 replies, ttl=63"] {
            assert!(output.contains(want), "{driver}: missing {want:?}:\n{output}");
        }
        assert!(output.contains("router answers NS and ping -6 on both ports"), "{driver}:\n{output}");
        eprintln!("{pass}");
    }
}
