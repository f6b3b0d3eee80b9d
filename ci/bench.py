#!/usr/bin/python3
"""Forwarding rate of `dataplane` against dpdk-testpmd, measured in one run on this machine.

Each case runs the forwarder and testpmd in the same set-up, alternating, several times,
and reports the median rate, the ratio forwarder/testpmd and the min-max range; the table
goes to stdout and the figures to a JSON file. Rates are read from each program's own
per-second statistics, skipping the first (warm-up) second.

    ci/bench.py [--reps 3] [--seconds 5] [--json target/bench.json] [--smoke]

Scaling from 1 to 2 worker lcores is not measured: this machine has 2 cores, and a main
lcore plus 2 workers needs 3.

Cases (one worker lcore, 64-byte packets unless named; testpmd runs the same set-up without the
forwarder's features, so rows with extensions or accounting show their cost):
  null-io         net_null pair, copy=0: pure loop cost; testpmd io
  null-io-copy    net_null pair, copy=1: packet data is touched on RX and TX; testpmd io
  null-macswap    net_null pair, copy=1, MACs swapped; testpmd macswap
  memif-l3fwd     a dpdk-testpmd txonly generator (memif server, its own process and core)
                  sends IPv4/UDP to 198.18.0.2; the DUT (memif client) routes it with
                  l3fwd back out of its memif port; testpmd as DUT runs macswap in the same
                  set-up. The generator does not read, so the DUT's TX is refused (counted
                  tx_full): the rate is what the DUT received and processed.
For the forwarder the table also gives cycles per packet (TSC cycles in busy rounds /
packets) and the RX->TX latency p50/p99 from its own report (--stats-json).
Hugepages are used when reserved (ci/setup.sh does it as root), else --no-huge.
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BIN = ROOT / "target" / "release" / "dataplane"
BIN = DEFAULT_BIN

CASES = {
    # name: (set-up, devargs, dataplane mode, testpmd forward mode, extra dataplane config)
    "null-io": ("null", "size=64,copy=0", "io", "io", ""),
    "null-io-copy": ("null", "size=64,copy=1", "io", "io", ""),
    "null-macswap": ("null", "size=64,copy=1", "macswap", "macswap", ""),
    # Packet extensions: a trace on one packet in 64, and on every packet.
    "null-io-trace64": ("null", "size=64,copy=0", "io", "io", "[extensions]\ntrace_every = 64\n"),
    "null-io-trace1": ("null", "size=64,copy=0", "io", "io", "[extensions]\ntrace_every = 1\n"),
    # A dpdk-testpmd peer (memif server, io, loop topology, `start tx_first 32`) and the
    # DUT (memif client) send the same packets back and forth: the rate the DUT forwards.
    "memif-io-64": ("memif-loop", "64", "io", "io", ""),
    "memif-io-512": ("memif-loop", "512", "io", "io", ""),
    "memif-io-1518": ("memif-loop", "1518", "io", "io", ""),
    "memif-l3fwd": ("memif", "", "l3fwd", "macswap", ""),
    # Memory accounting: the generator never reads, so every routed packet the memif
    # ring refuses goes to the TX backlog and is charged (protocol account + group), or
    # with bypass only to the group; accounting off frees them at once (tx_full).
    "memif-l3fwd-acct": ("memif", "", "l3fwd", "macswap", "[accounting]\n"),
    "memif-l3fwd-acct-bypass": ("memif", "", "l3fwd", "macswap", "[accounting]\nbacklog_bypass = true\n"),
}


def hugepages_ready():
    try:
        free = int(Path("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages").read_text())
    except OSError:
        return False
    return free >= 512 and " hugetlbfs " in Path("/proc/mounts").read_text()


def memory_args():
    return ["--in-memory", "-m", "1024"] if hugepages_ready() else ["--no-huge", "-m", "1024"]


def remove_runtime_dir(prefix):
    """EAL leaves /var/run/dpdk/PREFIX behind even with --in-memory: remove ours."""
    shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)


def run_bounded(cmd, seconds, **kw):
    """Runs cmd for `seconds`, then SIGINT (both programs stop cleanly on it), then kill."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, **kw)
    try:
        out, _ = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    return proc.returncode, out


def null_ports(devargs):
    return f"""
[forward]
pairs = [["p0", "p1"]]
[[port]]
name = "p0"
device = "net_null0"
args = "{devargs}"
[[port]]
name = "p1"
device = "net_null1"
args = "{devargs}"
[[worker]]
lcore = 1
rx = [{{ port = "p0", queue = 0 }}, {{ port = "p1", queue = 0 }}]
"""


def memif_ports(sock):
    return f"""
[[port]]
name = "m0"
device = "net_memif0"
args = "role=client,socket={sock},socket-abstract=no"
[[route]]
prefix = "198.18.0.0/15"
port = "m0"
via_mac = "02:00:00:00:00:09"
[[worker]]
lcore = 1
rx = [{{ port = "m0", queue = 0 }}]
"""


def memif_loop_port(sock):
    return f"""
[forward]
pairs = [["m0", "m0"]]
[[port]]
name = "m0"
device = "net_memif0"
args = "role=client,socket={sock},socket-abstract=no"
[[worker]]
lcore = 1
rx = [{{ port = "m0", queue = 0 }}]
"""


class LoopPeer:
    """dpdk-testpmd as memif server in io mode with loop topology, driven interactively:
    once the DUT is connected, `start tx_first 32` puts packets in flight, which then
    circulate between the peer and the DUT; `stop` before either side exits."""

    WARMUP = 2.0

    def __init__(self, tmp, tag, size):
        self.sock = f"{tmp}/memif-loop-{tag}.sock"
        self.prefix = f"bench-peer-{tag}"
        self.size = size
        cmd = ["dpdk-testpmd", "-l", "0,1", "--main-lcore", "1", "--no-pci", "--file-prefix", self.prefix,
               *memory_args(), "--vdev", f"net_memif0,role=server,socket={self.sock},socket-abstract=no", "--",
               "-i", "--forward-mode=io", "--port-topology=loop", "--total-num-mbufs", "16384"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.PIPE, text=True)
        for _ in range(100):
            if os.path.exists(self.sock):
                break
            time.sleep(0.1)

    def send(self, line):
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def kick(self):
        self.send(f"set txpkts {self.size}")
        self.send("start tx_first 32")

    def stop_traffic(self):
        self.send("stop")

    def stop(self):
        self.send("stop")
        self.send("quit")
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        remove_runtime_dir(self.prefix)


def memif_loop_run(cmd, peer, seconds):
    """Runs the DUT `cmd` against `peer`: connect, kick, measure `seconds`, stop the peer
    first, then the DUT (SIGINT). Returns the DUT's output."""
    dut = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    try:
        time.sleep(LoopPeer.WARMUP)
        peer.kick()
        time.sleep(seconds)
        peer.stop_traffic()
        time.sleep(0.5)
        dut.send_signal(signal.SIGINT)
        out, _ = dut.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        dut.kill()
        out, _ = dut.communicate()
    finally:
        peer.stop()
    return dut.returncode, out


def busy_median(rates):
    """The median of the per-second rates while traffic ran (the non-zero ones, less the
    first and last, which are partial seconds)."""
    busy = [r for r in rates if r > 0.01]
    return statistics.median(busy[1:-1] or busy or [0.0])


class Generator:
    """dpdk-testpmd txonly as memif server on core 0 (its main thread on core 1)."""

    def __init__(self, tmp, tag):
        self.sock = f"{tmp}/memif-{tag}.sock"
        self.prefix = f"bench-gen-{tag}"
        cmd = ["dpdk-testpmd", "-l", "0,1", "--main-lcore", "1", "--no-pci", "--file-prefix", f"bench-gen-{tag}",
               *memory_args(), "--vdev", f"net_memif0,role=server,socket={self.sock},socket-abstract=no", "--",
               "--forward-mode=txonly", "--txpkts=64", "--stats-period", "1", "--total-num-mbufs", "16384"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        for _ in range(100):
            if os.path.exists(self.sock):
                break
            time.sleep(0.1)

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        remove_runtime_dir(self.prefix)


def dataplane_run(case, seconds, tag, tmp):
    setup, devargs, mode, _, extra = CASES[case]
    if setup == "memif-loop":
        peer = LoopPeer(tmp, tag, devargs)
        cfg = f"""
[eal]
main_lcore = 0
file_prefix = "bench-dp-{tag}"
args = {json.dumps(memory_args())}
""" + memif_loop_port(peer.sock) + extra
        cfg_path, json_path = f"{tmp}/dp-{tag}.toml", f"{tmp}/dp-{tag}.json"
        Path(cfg_path).write_text(cfg)
        rc, out = memif_loop_run([str(BIN), "--config", cfg_path, "--stats-json", json_path], peer, seconds)
        remove_runtime_dir(f"bench-dp-{tag}")
        if rc != 0:
            raise RuntimeError(f"dataplane exited {rc}:\n{out}")
        rates = [float(m.group(1)) for m in re.finditer(r"^\s*[\d.]+s\s+rx\s+([\d.]+) Mpps", out, re.M)]
        report = json.loads(Path(json_path).read_text())
        lcore = next(iter(report["softnet"].values()))
        lat = report["latency"]["rx_to_tx"]
        return {"mpps": busy_median(rates), "cycles_per_packet": lcore["cycles_per_packet"],
                "latency_p50_ns": lat.get("p50"), "latency_p99_ns": lat.get("p99")}
    gen = Generator(tmp, tag) if setup == "memif" else None
    ports = memif_ports(gen.sock) if gen else null_ports(devargs)
    cfg = f"""
[eal]
main_lcore = 0
file_prefix = "bench-dp-{tag}"
args = {json.dumps(memory_args())}
[forward]
mode = "{mode}"
""" + ports.replace("[forward]\n", "", 1) + extra
    cfg_path, json_path = f"{tmp}/dp-{tag}.toml", f"{tmp}/dp-{tag}.json"
    Path(cfg_path).write_text(cfg)
    try:
        rc, out = run_bounded([str(BIN), "--config", cfg_path, "--duration", str(seconds), "--stats-json", json_path], seconds + 30)
    finally:
        if gen:
            gen.stop()
        remove_runtime_dir(f"bench-dp-{tag}")
    if rc != 0:
        raise RuntimeError(f"dataplane exited {rc}:\n{out}")
    rates = [float(m.group(1)) for m in re.finditer(r"^\s*[\d.]+s\s+rx\s+([\d.]+) Mpps", out, re.M)]
    report = json.loads(Path(json_path).read_text())
    lcore = next(iter(report["softnet"].values()))
    lat = report["latency"]["rx_to_tx"]
    return {
        "mpps": statistics.median(rates[1:] or rates),
        "cycles_per_packet": lcore["cycles_per_packet"],
        "latency_p50_ns": lat.get("p50"),
        "latency_p99_ns": lat.get("p99"),
    }


def testpmd_rate(case, seconds, tag, tmp):
    setup, devargs, _, fwd_mode, _ = CASES[case]
    if setup == "memif-loop":
        peer = LoopPeer(tmp, tag, devargs)
        cmd = ["dpdk-testpmd", "-l", "0,1", "--no-pci", "--file-prefix", f"bench-tp-{tag}", *memory_args(),
               "--vdev", f"net_memif0,role=client,socket={peer.sock},socket-abstract=no", "--",
               "--forward-mode=io", "--port-topology=loop", "--stats-period", "1", "--total-num-mbufs", "8192",
               "--rxd", "1024", "--txd", "1024", "--burst", "32"]
        rc, out = memif_loop_run(cmd, peer, seconds)
        remove_runtime_dir(f"bench-tp-{tag}")
        rates = [int(x) / 1e6 for x in re.findall(r"Rx-pps:\s+(\d+)", out)]
        if not rates:
            raise RuntimeError(f"testpmd printed no rates (exit {rc}):\n{out[-2000:]}")
        return busy_median(rates)
    gen = Generator(tmp, tag) if setup == "memif" else None
    if gen:
        ports = ["--vdev", f"net_memif0,role=client,socket={gen.sock},socket-abstract=no"]
        extra = ["--port-topology=loop"]
    else:
        ports = ["--vdev", f"net_null0,{devargs}", "--vdev", f"net_null1,{devargs}"]
        extra = []
    cmd = ["dpdk-testpmd", "-l", "0,1", "--no-pci", "--file-prefix", f"bench-tp-{tag}", *memory_args(), *ports, "--",
           f"--forward-mode={fwd_mode}", "--stats-period", "1", "--total-num-mbufs", "8192",
           "--rxd", "1024", "--txd", "1024", "--burst", "32", *extra]
    try:
        rc, out = run_bounded(cmd, seconds)
    finally:
        if gen:
            gen.stop()
        remove_runtime_dir(f"bench-tp-{tag}")
    # Each stats period prints one "Rx-pps:" line per port; sum them per period.
    nports = 1 if gen else 2
    pps = [int(x) for x in re.findall(r"Rx-pps:\s+(\d+)", out)]
    periods = [sum(pps[i:i + nports]) / 1e6 for i in range(0, len(pps) - nports + 1, nports)]
    if not periods:
        raise RuntimeError(f"testpmd printed no rates (exit {rc}):\n{out[-2000:]}")
    return statistics.median(periods[1:] or periods)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--json", default=str(ROOT / "target" / "bench.json"))
    ap.add_argument("--smoke", action="store_true", help="one short repetition per case")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of " + ",".join(CASES))
    ap.add_argument("--bin", default=str(DEFAULT_BIN), help="the dataplane binary (default: the release build)")
    a = ap.parse_args()
    global BIN
    BIN = Path(a.bin)
    if a.smoke:
        a.reps, a.seconds = 1, 3
    if not BIN.exists():
        sys.exit(f"{BIN} not built: cargo build --release -p dataplane")

    results = []
    with tempfile.TemporaryDirectory(prefix="dataplane-bench-") as tmp:
        for name in a.cases.split(","):
            dp, tp = [], []
            for rep in range(a.reps):
                tag = f"{os.getpid()}-{name}-{rep}"
                dp.append(dataplane_run(name, a.seconds, tag, tmp))
                tp.append(testpmd_rate(name, a.seconds, tag, tmp))
            rates = [d["mpps"] for d in dp]
            r = {
                "case": name, "reps": a.reps, "seconds": a.seconds,
                "dataplane_mpps": statistics.median(rates), "testpmd_mpps": statistics.median(tp),
                "dataplane_runs": dp, "testpmd_runs": tp,
                "cycles_per_packet": statistics.median(d["cycles_per_packet"] for d in dp),
                "latency_p50_ns": statistics.median(d["latency_p50_ns"] or 0 for d in dp),
                "latency_p99_ns": statistics.median(d["latency_p99_ns"] or 0 for d in dp),
            }
            r["ratio"] = r["dataplane_mpps"] / r["testpmd_mpps"]
            results.append(r)

    mem = "hugepages" if hugepages_ready() else "--no-huge"
    if os.cpu_count() < 3:
        print(f"scaling (1 vs 2 workers): not measured, {os.cpu_count()} cores (a main lcore and 2 workers need 3)")
    print(f"{'case':<14} {'dataplane':>9} {'testpmd':>8} {'ratio':>6} {'cyc/pkt':>8} {'p50 ns':>7} {'p99 ns':>7}   "
          f"dataplane / testpmd min-max Mpps   ({mem}, {a.reps}x{a.seconds}s)")
    for r in results:
        d = [x["mpps"] for x in r["dataplane_runs"]]
        print(f"{r['case']:<14} {r['dataplane_mpps']:>9.2f} {r['testpmd_mpps']:>8.2f} {r['ratio']:>6.2f} "
              f"{r['cycles_per_packet']:>8.1f} {r['latency_p50_ns']:>7.0f} {r['latency_p99_ns']:>7.0f}   "
              f"{min(d):.2f}-{max(d):.2f} / {min(r['testpmd_runs']):.2f}-{max(r['testpmd_runs']):.2f}")
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "memory": mem, "results": results}, indent=2))
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
