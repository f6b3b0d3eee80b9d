#!/usr/bin/python3
"""Route changes while forwarding, measured on this machine in one run.

The forwarder runs l3fwd on an endless pcap replay (net_pcap infinite_rx) of 4,096 UDP
frames to 256 /24s, all routed out of a second port; its control socket is driven by this
script over the same JSON-lines API that `dataplane ctl` uses. Alternating, --reps times:

  idle   forward for --seconds with no route change;
  churn  forward for --seconds while one client replaces routes of those /24s as fast as
         the API answers (each a route_replace: new next hop, rte_lpm_add in place).

Rows: the forwarding rate idle and during churn (median Mpps, and churn/idle as the ratio,
the same-run peer of this bench), and route updates per second during churn. Then the
time to load routes with `ctl apply` of a config holding them (--load N, default 100,000,
an Internet-like mix of lengths; --long loads 1,000,000: minutes, since rte_lpm's adds are
O(n)). Rates are from the forwarder's own counters (ctl show workers).

    ci/bench-routes.py [--reps 3] [--seconds 5] [--load 100000 | --long] [--json FILE] [--smoke]
"""

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def write_pcaps(d):
    hdr = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    (d / "empty.pcap").write_bytes(hdr)
    with open(d / "in.pcap", "wb") as out:
        out.write(hdr)
        for i in range(4096):
            l4 = struct.pack("!HHHH", 1000 + i % 100, 53, 26, 0) + bytes(18)
            ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), i, 0, 64, 17, 0,
                                       bytes([192, 0, 2, 1]), bytes([10, 1, i % 256, i // 256 + 1])))
            ip[10:12] = struct.pack("!H", csum(bytes(ip)))
            f = bytes([2, 0, 0, 0, 0, 0x10, 2, 0, 0, 0, 0, 0x99, 8, 0]) + bytes(ip) + l4
            out.write(struct.pack("<IIII", 0, i, len(f), len(f)) + f)


def memory_args():
    try:
        free = int(Path("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages").read_text())
    except OSError:
        free = 0
    huge = free >= 512 and " hugetlbfs " in Path("/proc/mounts").read_text()
    return ["--in-memory", "-m", "1024"] if huge else ["--no-huge", "--no-shconf", "-m", "1024"]


def config(d, prefix, routes_toml, max_routes, mem):
    return f"""[eal]
file_prefix = "{prefix}"
args = {json.dumps(mem + ["--no-telemetry"])}
[forward]
mode = "l3fwd"
[fib]
ipv4_max_routes = {max_routes}
ipv6_max_routes = 1024
ipv6_tbl8_groups = 256
[control]
socket = "{d}/ctl.sock"
max_request_bytes = 268435456
[[port]]
name = "src"
device = "net_pcap0"
args = "rx_pcap={d}/in.pcap,tx_pcap=/dev/null,infinite_rx=1"
[[port]]
name = "dst"
device = "net_pcap1"
args = "rx_pcap={d}/empty.pcap,tx_pcap=/dev/null"
[[worker]]
lcore = 1
rx = [{{ port = "src", queue = 0 }}, {{ port = "dst", queue = 0 }}]
{routes_toml}"""


def route(prefix, mac="02:00:00:00:01:02"):
    return f'[[route]]\nprefix = "{prefix}"\nport = "dst"\nvia_mac = "{mac}"\n'


class Api:
    """One connection to the control socket."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.f = self.s.makefile("rb")

    def call(self, command, **args):
        self.s.sendall(json.dumps({"version": 1, "command": command, "args": args}).encode() + b"\n")
        reply = json.loads(self.f.readline())
        if "error" in reply:
            raise RuntimeError(f"{command}: {reply['error']}")
        return reply["ok"]

    def processed(self):
        return sum(w["processed"] for w in self.call("show_workers").values())

    def tx(self):
        return sum(w["tx_packets"] for w in self.call("show_workers").values())


def measure(api, seconds, churn_path=None):
    """Mpps forwarded over `seconds`, and route updates per second if churning."""
    stop = threading.Event()
    updates = [0]

    def churn():
        c = Api(churn_path)
        rng = random.Random(7)
        while not stop.is_set():
            x = rng.randrange(256)
            c.call("route_replace", prefix=f"10.1.{x}.0/24", port="dst", via_mac=f"02:00:00:00:01:{rng.randrange(1, 9):02x}")
            updates[0] += 1

    t = threading.Thread(target=churn) if churn_path else None
    if t:
        t.start()
    time.sleep(0.5)
    p0, u0, t0 = api.tx(), updates[0], time.monotonic()
    time.sleep(seconds)
    p1, u1, t1 = api.tx(), updates[0], time.monotonic()
    stop.set()
    if t:
        t.join()
    return (p1 - p0) / (t1 - t0) / 1e6, (u1 - u0) / (t1 - t0)


def internet_like(n, rng):
    """n distinct IPv4 prefixes: 60% /24, 38% /16-/23, 2% /25-/32 (the last need tbl8 groups)."""
    seen, out = set(), []
    while len(out) < n:
        r = rng.random()
        length = 24 if r < 0.6 else rng.randrange(16, 24) if r < 0.98 else rng.randrange(25, 33)
        a = rng.randrange(1 << 24, 224 << 24) & (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF
        if (a, length) in seen or a >> 16 == 0x0A01:  # 10.1.0.0/16 holds the routed /24s
            continue
        seen.add((a, length))
        out.append(f"{a >> 24}.{a >> 16 & 255}.{a >> 8 & 255}.{a & 255}/{length}")
    return out


def start(binary, cfg_path, d):
    p = subprocess.Popen([binary, "--config", str(cfg_path), "--stats-interval", "0"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    for _ in range(600):
        if os.path.exists(f"{d}/ctl.sock"):
            try:
                return p, Api(f"{d}/ctl.sock")
            except OSError:
                pass
        if p.poll() is not None:
            sys.exit(f"the forwarder exited: {p.stdout.read().decode()}")
        time.sleep(0.1)
    p.kill()
    sys.exit("no control socket after 60 s")


def stop(p, api):
    try:
        api.call("shutdown")
    except Exception:
        p.terminate()
    out = p.communicate(timeout=300)[0].decode()
    if p.returncode != 0:
        print(out[-2000:])
        sys.exit(f"the forwarder exited with {p.returncode}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3, help="idle/churn pairs (default 3)")
    ap.add_argument("--seconds", type=float, default=5, help="length of each idle or churn run (default 5)")
    ap.add_argument("--load", type=int, default=100_000, help="routes for the load-time row (0: skip)")
    ap.add_argument("--long", action="store_true", help="load 1,000,000 routes (minutes)")
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "dataplane"), help="the dataplane binary")
    ap.add_argument("--json", default=str(ROOT / "target" / "bench-routes.json"), help="where every run goes as JSON")
    ap.add_argument("--smoke", action="store_true", help="one short repetition, 10,000 routes to load")
    a = ap.parse_args()
    if a.smoke:
        a.reps, a.seconds, a.load = 1, 1, 10_000
    if a.long:
        a.load = 1_000_000
    d = Path(tempfile.mkdtemp(prefix="dp-bench-routes-"))
    prefix = f"dp-bench-routes-{os.getpid()}"
    results = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu(), "rows": {}}
    p = None
    try:
        write_pcaps(d)
        routes = "".join(route(f"10.1.{x}.0/24") for x in range(256))
        cfg = d / "fwd.toml"
        # Chosen once: the config given to apply must keep the same eal.args.
        mem = memory_args()
        cfg.write_text(config(d, prefix, routes, 1 << 20, mem))
        p, api = start(a.bin, cfg, d)
        idle, churn, ups = [], [], []
        for _ in range(a.reps):
            idle.append(measure(api, a.seconds)[0])
            mpps, u = measure(api, a.seconds, f"{d}/ctl.sock")
            churn.append(mpps)
            ups.append(u)
        rows = results["rows"]
        rows["forwarding idle (Mpps)"] = statistics.median(idle)
        rows["forwarding during churn (Mpps)"] = statistics.median(churn)
        rows["churn / idle"] = statistics.median(c / i for c, i in zip(churn, idle))
        rows["route updates per second during churn"] = statistics.median(ups)
        if a.load:
            rng = random.Random(13)
            big = "".join(route(r) for r in internet_like(a.load, rng))
            new = d / "big.toml"
            new.write_text(config(d, prefix, routes + big, 1 << 20, mem))
            t0 = time.monotonic()
            out = subprocess.run([a.bin, "ctl", "--socket", f"{d}/ctl.sock", "apply", str(new)], capture_output=True, text=True)
            dt = time.monotonic() - t0
            if out.returncode != 0:
                sys.exit(f"apply failed: {out.stderr}")
            rows[f"load {a.load} routes with ctl apply (s)"] = dt
            rows[f"load {a.load} routes: routes per second"] = a.load / dt
            # A new connection: the server closes one idle for control.idle_timeout_ms.
            api = Api(f"{d}/ctl.sock")
            t0 = time.monotonic()
            api.call("show_status")
            rows["an API round trip after the load (ms)"] = (time.monotonic() - t0) * 1000
        stop(p, api)
        p = None
        width = max(len(k) for k in rows)
        print(f"bench-routes {results['date']} on {results['cpu']} ({a.reps} reps x {a.seconds} s)")
        for k, v in rows.items():
            print(f"  {k:<{width}}  {v:12.3f}")
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(results, indent=2) + "\n")
    finally:
        if p is not None and p.poll() is None:
            # Failed half-way: the forwarder (and its hugepages) must not outlive the bench.
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(d, ignore_errors=True)
        for base in ["/var/run/dpdk", "/tmp/dpdk"]:
            shutil.rmtree(f"{base}/{prefix}", ignore_errors=True)


def cpu():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


if __name__ == "__main__":
    main()
