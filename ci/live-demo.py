#!/usr/bin/python3
"""Records the README's "Running it live" session from a real run.

Writes a router config (two net_pcap ports: "west" replays 4,096 UDP frames to
10.1.0.0/16 for ever, "east" writes to /dev/null) and its input files into --dir, starts the
forwarder on it, runs the session's `dataplane ctl` commands one after the other and prints
each as `$ command`, its output and `(exit status N)` when not 0; then shuts the forwarder
down and prints its report. The README's transcript is this script's output.

    ci/live-demo.py [--bin target/release/dataplane] [--dir /tmp/dataplane-demo]
"""

import argparse
import importlib.util
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ROUTER = """\
# A router between two net_pcap ports: "west" replays 4,096 UDP frames to 10.1.0.0/16
# for ever, "east" writes what is routed to it to /dev/null.
[eal]
file_prefix = "demo"
args = ["--no-huge", "-m", "1024"]

[forward]
mode = "l3fwd"

[[port]]
name = "west"
device = "net_pcap0"
args = "rx_pcap={d}/in.pcap,tx_pcap=/dev/null,infinite_rx=1"
ipv4 = "10.0.0.1/24"

[[port]]
name = "east"
device = "net_pcap1"
args = "rx_pcap={d}/empty.pcap,tx_pcap=/dev/null"
ipv4 = "10.0.1.1/24"

[[route]]
prefix = "10.1.0.0/16"
port = "east"
via_mac = "02:00:00:00:01:02"

[[route]]
prefix = "2001:db8:1::/48"
port = "east"
via_mac = "02:00:00:00:01:02"

[[worker]]
lcore = 1
rx = [{{ port = "west", queue = 0 }}, {{ port = "east", queue = 0 }}]
"""

# The session: `dataplane ctl --config router.toml ARGS`, or a shell line (sh:).
SESSION = [
    "show status",
    "show routes",
    "show workers",
    "route add 10.1.7.0/24 --port west --via-mac 02:00:00:00:00:07",
    "route add 10.1.7.0/24 --port west --via-mac 02:00:00:00:00:07",
    "route add 10.1.8.9/24 --port west --via-mac 02:00:00:00:00:07",
    "route replace 10.1.7.0/24 --port east --via-mac 02:00:00:00:01:02",
    "route add 10.3.0.0/16 --port east --via 10.0.1.8 --via-mac 02:00:00:00:01:08",
    "show next-hops",
    "show neighbours",
    "show ports",
    "sh:dataplane ctl --config router.toml show config > running.toml",
    'sh:sed -e "s/^budget = 300/budget = 64/" -e "s|10.0.1.1/24|10.0.1.254/24|" running.toml > new.toml',
    "sh:printf '[[route]]\\nprefix = \"10.2.0.0/16\"\\nport = \"east\"\\nvia_mac = \"02:00:00:00:01:03\"\\n' >> new.toml",
    "apply new.toml --dry-run",
    "apply new.toml",
    'sh:sed "0,/^rx_desc = 1024/s//rx_desc = 512/" new.toml > restart.toml',
    "apply restart.toml",
    "--json show routes --origin ctl",
    "show latency",
    "shutdown",
    "show status",
]


def bench_routes():
    """ci/bench-routes.py as a module, for its pcap writer (one frame set for both)."""
    spec = importlib.util.spec_from_file_location("bench_routes", ROOT / "ci" / "bench-routes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "dataplane"), help="the dataplane binary")
    ap.add_argument("--dir", default="/tmp/dataplane-demo", help="where router.toml, its pcaps and the session's files go")
    args = ap.parse_args()
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    bench_routes().write_pcaps(d)
    (d / "router.toml").write_text(ROUTER.format(d=d))
    binary = str(Path(args.bin).resolve())
    env_path = f"{Path(binary).parent}:/usr/bin:/bin"
    print("$ cat router.toml")
    print((d / "router.toml").read_text(), end="")
    print("# dataplane --config router.toml --stats-interval 0 &     (EAL's lines left out)")
    fwd = subprocess.Popen([binary, "--config", "router.toml", "--stats-interval", "0"], cwd=d,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in fwd.stdout:
            if not line.startswith("EAL:") and not line.startswith("TELEMETRY:"):
                print(line, end="")
            if line.startswith("control socket:"):
                break
        time.sleep(3)
        for step in SESSION:
            if step.startswith("sh:"):
                cmd = step[3:]
                print(f"$ {cmd}")
                r = subprocess.run(["sh", "-c", cmd], cwd=d, capture_output=True, text=True,
                                   env={"PATH": env_path})
            else:
                cmd = f"dataplane ctl --config router.toml {step}"
                print(f"$ {cmd}")
                r = subprocess.run([binary, "ctl", "--config", "router.toml", *shlex.split(step)], cwd=d,
                                   capture_output=True, text=True)
            print(r.stdout + r.stderr, end="")
            if r.returncode != 0:
                print(f"(exit status {r.returncode})")
            if step == "shutdown":
                fwd.wait(timeout=30)
        print("# (the forwarder, after shutdown)")
        print(fwd.stdout.read(), end="")
        return fwd.wait(timeout=30)
    finally:
        if fwd.poll() is None:
            fwd.terminate()
            fwd.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
