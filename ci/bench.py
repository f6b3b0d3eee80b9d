#!/usr/bin/python3
"""Forwarding rate of `dataplane` against dpdk-testpmd, measured in one run on this machine.

Each case runs the forwarder and testpmd in the same set-up, alternating, several times,
and reports the median rate, the ratio forwarder/testpmd and the min-max range; the table
goes to stdout and the figures to a JSON file. Rates are read from each program's own
per-second statistics, skipping the first (warm-up) second.

    ci/bench.py [--reps 3] [--seconds 5] [--json target/bench.json] [--smoke]

Cases (one worker lcore, two ports in an io pair, 64-byte packets):
  null-io        net_null with copy=0: pure loop cost
  null-io-copy   net_null with copy=1: packet data is touched on RX and TX
Hugepages are used when reserved (ci/setup.sh does it as root), else --no-huge.
"""

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "dataplane"

CASES = {
    "null-io": "size=64,copy=0",
    "null-io-copy": "size=64,copy=1",
}


def hugepages_ready():
    try:
        free = int(Path("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages").read_text())
    except OSError:
        return False
    return free >= 512 and " hugetlbfs " in Path("/proc/mounts").read_text()


def memory_args():
    return ["--in-memory", "-m", "1024"] if hugepages_ready() else ["--no-huge", "-m", "1024"]


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


def dataplane_rate(devargs, seconds, tag):
    cfg = f"""
[eal]
main_lcore = 0
file_prefix = "bench-dp-{tag}"
args = {json.dumps(memory_args())}
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
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(cfg)
    try:
        rc, out = run_bounded([str(BIN), "--config", f.name, "--duration", str(seconds)], seconds + 30)
    finally:
        os.unlink(f.name)
    if rc != 0:
        raise RuntimeError(f"dataplane exited {rc}:\n{out}")
    rates = [float(m.group(1)) for m in re.finditer(r"^\s*[\d.]+s\s+rx\s+([\d.]+) Mpps", out, re.M)]
    return statistics.median(rates[1:] or rates)


def testpmd_rate(devargs, seconds, tag):
    cmd = ["dpdk-testpmd", "-l", "0,1", "--no-pci", "--file-prefix", f"bench-tp-{tag}", *memory_args(),
           "--vdev", f"net_null0,{devargs}", "--vdev", f"net_null1,{devargs}", "--",
           "--forward-mode=io", "--stats-period", "1", "--total-num-mbufs", "8192",
           "--rxd", "1024", "--txd", "1024", "--burst", "32"]
    rc, out = run_bounded(cmd, seconds)
    # Each stats period prints one "Rx-pps:" line per port; sum them per period.
    pps = [int(x) for x in re.findall(r"Rx-pps:\s+(\d+)", out)]
    periods = [sum(pps[i:i + 2]) / 1e6 for i in range(0, len(pps) - 1, 2)]
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
    a = ap.parse_args()
    if a.smoke:
        a.reps, a.seconds = 1, 3
    if not BIN.exists():
        sys.exit(f"{BIN} not built: cargo build --release -p dataplane")

    results = []
    for name in a.cases.split(","):
        devargs = CASES[name]
        dp, tp = [], []
        for rep in range(a.reps):
            dp.append(dataplane_rate(devargs, a.seconds, f"{os.getpid()}-{rep}"))
            tp.append(testpmd_rate(devargs, a.seconds, f"{os.getpid()}-{rep}"))
        r = {
            "case": name, "devargs": devargs, "reps": a.reps, "seconds": a.seconds,
            "dataplane_mpps": statistics.median(dp), "testpmd_mpps": statistics.median(tp),
            "dataplane_runs": dp, "testpmd_runs": tp,
        }
        r["ratio"] = r["dataplane_mpps"] / r["testpmd_mpps"]
        results.append(r)

    mem = "hugepages" if hugepages_ready() else "--no-huge"
    print(f"{'case':<14} {'dataplane Mpps':>15} {'testpmd Mpps':>13} {'ratio':>6}   dataplane min-max / testpmd min-max   ({mem}, {a.reps}x{a.seconds}s)")
    for r in results:
        print(f"{r['case']:<14} {r['dataplane_mpps']:>15.2f} {r['testpmd_mpps']:>13.2f} {r['ratio']:>6.2f}   "
              f"{min(r['dataplane_runs']):.2f}-{max(r['dataplane_runs']):.2f} / {min(r['testpmd_runs']):.2f}-{max(r['testpmd_runs']):.2f}")
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "memory": mem, "results": results}, indent=2))
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
