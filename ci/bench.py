#!/usr/bin/python3
"""The forwarder against its C peers, measured in one run on this machine.

    ci/bench.py [--pairs 7] [--seconds 2] [--cases a,b] [--out target/bench] [--no-instructions]
    ci/bench.py --smoke [--bin target/debug/dataplane]       # the test suite's short run
    ci/bench.py --list                                       # the cases, one line each

Every case compares two sides in the same set-up: the forwarder (A) and its peer (B), which is
dpdk-testpmd, DPDK's own l3fwd example, or the forwarder itself without a feature.

Rates (Mpps). A and B run alternately, one after the other, in --pairs pairs (A first in even
pairs, B first in odd ones, so a drift of the machine hits both alike). Each run: start the
side, wait until its ports are up and packets flow, warm up, then read the side's own port
counters twice through DPDK telemetry (/ethdev/stats,N) --seconds apart; the same reading for
every program. A case reports the median of the per-pair ratios A/B with their min-max and
interquartile range, and is flagged when a pair ratio lies more than 10% from that median
(the machine was too noisy for the ratio to mean much: run it again).

Instructions per packet, the deterministic figure to optimise against. Each side runs twice
under `valgrind --tool=callgrind --separate-threads=yes`, for T and 2T seconds of traffic
(--cg-seconds), and the figure is (I2 - I1) / (P2 - P1):
  - I: the instructions of the forwarding thread only. Callgrind writes one profile per
    thread; the forwarder and dpdk-testpmd forward on an EAL worker lcore, a thread of its
    own, so EAL start-up, port set-up, statistics and telemetry (other threads) are not in
    it. DPDK's l3fwd forwards on its main lcore, the thread that also ran start-up: there
    callgrind collects only inside its loop function (--toggle-collect=lpm_main_loop).
  - P: the packets that thread received, as the program itself counts them at exit (the
    forwarder's --stats-json, testpmd's forward statistics, l3fwd's port counters, printed by
    the bench's patch).
  - The difference cancels exactly what the thread does once, whatever the packet counts:
    its start, per-worker set-up (the forwarder zeroes its histograms there: about 2x10^8
    instructions), the polls before traffic starts, the final flush. JSON: `fixed`.
The sources never run dry (net_null, net_pcap infinite_rx), except a memif peer: a native
dpdk-testpmd (deep rings, 8192 packets in flight). There the side also polls an empty ring
between connecting and the first packet and after the last (the peer stops first: a memif
server still forwarding when its client leaves can crash), a different number of times each
run, which a difference does not cancel: memif cases take three runs (T, 2T, 3T) and fit
I = a P + b E + c exactly, E being the empty polls (the forwarder's idle rounds, exact;
testpmd's --record-burst-stats, given to 1% of its polls: such figures are marked `~` when
the empty polls pass 1%).
Callgrind counts each iteration of a rep-prefixed string instruction (glibc's memset/memcpy
of a few KiB) as one instruction. The valgrind'd side runs on --no-huge (EAL's hugepage
address-space reservation fails under valgrind); the packet path is the same. The forwarding
thread's profile of the longer run is kept as callgrind/CASE-a2.callgrind (and -b2) in --out
(`callgrind_annotate FILE` shows where the instructions go).

Outputs in --out: bench.json (every run), table.md, and CASE.png per case (Debian's
python3-matplotlib): the per-pair rates of both sides and the pair ratios with their median,
the +-10% band and the instruction ratio. Exit status 1 when any case failed: a process exited
non-zero, a side forwarded nothing, or the forwarder's counters did not add up
(processed + injected + mirrored = tx + dropped + punted, per worker, from --stats-json).

Cores (this machine has 2): the side under test forwards on CPU 1 and keeps its main lcore on
CPU 0; a peer process (memif) forwards on CPU 0 and keeps its main lcore on CPU 1. Hugepages
(--in-memory) when enough are free, else --no-huge, chosen per pair so both sides match.
"""

import argparse
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATCH = ROOT / "ci" / "patches" / "l3fwd-vdev.patch"
EXAMPLES = Path("/usr/share/dpdk/examples")
# Debian packages the bench needs beyond ci/setup.sh: DPDK's example sources (l3fwd) and
# what builds them, callgrind, the memif fit (numpy) and the charts.
PACKAGES = ["dpdk-doc", "make", "patch", "valgrind", "python3-numpy", "python3-matplotlib"]

# Ports of every set-up get these MACs as next hops: (l3fwd's --eth-dest, the forwarder's
# via_mac/peer_mac).
NEXT_HOP_MAC = ["02:00:00:00:00:02", "02:00:00:00:01:02"]
# A pair ratio further than this from the case's median flags the case.
SPREAD_LIMIT = 0.10
# A callgrind figure with more empty polls than this share is marked approximate.
EMPTY_POLL_LIMIT = 0.01


class CaseError(Exception):
    """A run that failed: the message says what, the log tail why."""


class Skip(Exception):
    """A case that cannot run here; the message says why."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --- The machine -------------------------------------------------------------------------

def ensure_packages(names):
    """Installs the Debian packages in `names` that are missing (idempotent: dpkg is asked
    first, apt-get runs only for what is absent)."""
    missing = [p for p in names if subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
                                                  text=True).stdout.find("install ok installed") < 0]
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"ci/bench.py needs the Debian packages {' '.join(missing)}: install them (as root)")
    log(f"bench: installing {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def free_hugepages():
    try:
        free = int(Path("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages").read_text())
    except OSError:
        return 0
    return free if " hugetlbfs " in Path("/proc/mounts").read_text() else 0


def memory_args(huge, megabytes=512):
    return ["--in-memory", "-m", str(megabytes)] if huge else ["--no-huge", "-m", str(megabytes)]


def cpu_name():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def remove_runtime_dir(prefix):
    """EAL leaves /var/run/dpdk/PREFIX behind even with --in-memory: remove ours."""
    shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)


class Telemetry:
    """DPDK telemetry (the v2 socket every DPDK process opens) of the process with `prefix`."""

    def __init__(self, prefix, timeout=5):
        self.path = f"/var/run/dpdk/{prefix}/dpdk_telemetry.v2"
        self.timeout = timeout

    def ready(self):
        return os.path.exists(self.path)

    def query(self, command):
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
            s.settimeout(self.timeout)
            s.connect(self.path)
            s.recv(1 << 16)
            s.send(command.encode())
            return json.loads(s.recv(1 << 20))[command.split(",")[0]]

    def port_counter(self, ports, name):
        return sum(self.query(f"/ethdev/stats,{p}")[name] for p in ports)

    def links_up(self, ports):
        try:
            return all((self.query(f"/ethdev/link_status,{p}") or {}).get("status") == "UP" for p in ports)
        except (OSError, ValueError, KeyError):
            return False


class Proc:
    """A process of the bench, its output in `log`; stopped by SIGINT (every program here
    stops cleanly on it), killed only when it does not stop."""

    def __init__(self, name, cmd, log_path, stdin_pipe=False, env=None):
        self.name, self.cmd, self.log_path = name, cmd, Path(log_path)
        self.out = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.out, stderr=subprocess.STDOUT, text=True, env=env,
                                     stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL)

    def send(self, line):
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, AttributeError):
            pass

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=20, sig=signal.SIGINT):
        """Stops the process (if running) and returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        return self.proc.returncode

    def wait(self, timeout):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return self.stop()
        self.out.close()
        return self.proc.returncode

    def output(self):
        return self.log_path.read_text(errors="replace")

    def tail(self, lines=25):
        return "\n".join(f"    {line}" for line in self.output().splitlines()[-lines:])


# --- Traffic -------------------------------------------------------------------------------

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def udp_frames(v6, size=64, flows=256):
    """`flows` Ethernet/IPv4-or-IPv6/UDP frames of `size` bytes (without FCS, as testpmd's
    --txpkts and net_null's size count), all routed to port 1 by l3fwd's default table:
    destinations 198.18.1.2-17 or 2001:200:0:1::2-11, 16 sources, valid checksums."""
    eth = bytes.fromhex("020000000001" "020000000002")
    frames = []
    for i in range(flows):
        sport, dport = 1024 + i // 16, 9
        if v6:
            src = ipaddress.IPv6Address(f"2001:200::{i // 16 + 2:x}").packed
            dst = ipaddress.IPv6Address(f"2001:200:0:1::{i % 16 + 2:x}").packed
            payload = bytes(max(size - 14 - 40 - 8, 0))
            length = 8 + len(payload)
            pseudo = src + dst + struct.pack("!IxxxB", length, 17)
            udp = struct.pack("!HHHH", sport, dport, length, 0) + payload
            udp = udp[:6] + struct.pack("!H", csum(pseudo + udp) or 0xFFFF) + udp[8:]
            ip = struct.pack("!IHBB", 0x60000000, length, 17, 64) + src + dst
            frames.append(eth + b"\x86\xdd" + ip + udp)
        else:
            src, dst = bytes([198, 18, 0, i // 16 + 2]), bytes([198, 18, 1, i % 16 + 2])
            payload = bytes(max(size - 14 - 20 - 8, 0))
            udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
            ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0, src, dst))
            ip[10:12] = struct.pack("!H", csum(bytes(ip)))
            frames.append(eth + b"\x08\x00" + bytes(ip) + udp)
    return frames


def write_pcap(path, frames):
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, f in enumerate(frames):
            out.write(struct.pack("<IIII", 0, i, len(f), len(f)) + f)


def l3fwd_routes(v6, ports):
    """l3fwd's default LPM table (lpm_default_v4.cfg / _v6.cfg of dpdk-doc) restricted to
    the ports that exist: [(prefix, port)]."""
    name = "lpm_default_v6.cfg" if v6 else "lpm_default_v4.cfg"
    routes = []
    for line in (EXAMPLES / "l3fwd" / name).read_text().splitlines():
        if line.startswith("R"):
            prefix, port = line[1:].split()
            if int(port) < ports:
                routes.append((ipaddress.ip_network(prefix), int(port)))
    return routes


def write_l3fwd_rules(path, routes):
    Path(path).write_text("".join(f"R{net} {port}\n" for net, port in routes))


# --- DPDK's l3fwd example ------------------------------------------------------------------

def build_l3fwd(out):
    """Copies l3fwd and ../common from dpdk-doc to `out`, applies
    ci/patches/l3fwd-vdev.patch and runs make; returns the binary. Rebuilt only when the
    patch or the sources are newer than the binary."""
    src = out
    binary = src / "l3fwd" / "build" / "l3fwd"
    newest = max(PATCH.stat().st_mtime, (EXAMPLES / "l3fwd" / "main.c").stat().st_mtime)
    if binary.exists() and binary.stat().st_mtime > newest:
        return binary
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    for d in ("l3fwd", "common"):
        shutil.copytree(EXAMPLES / d, src / d)
    subprocess.run(["patch", "-s", "-p1", "-d", str(src), "-i", str(PATCH)], check=True)
    r = subprocess.run(["make", "-s", "-C", str(src / "l3fwd"), "-j2"], capture_output=True, text=True)
    if r.returncode != 0 or not binary.exists():
        raise CaseError(f"building DPDK's l3fwd failed:\n{r.stdout}{r.stderr}")
    return binary


# --- Set-ups: what surrounds the side under test -----------------------------------------

@dataclass
class Port:
    name: str
    device: str   # vdev name
    args: str     # devargs


@dataclass
class Setup:
    """The ports of the side under test, what it is measured by, and any peer process."""
    kind: str                  # null | memif-loop | pcap | pcap-refused
    ports: list
    metric: str = "opackets"   # the ethdev counter summed over `measured` ports
    measured: list = None
    size: int = 64
    v6: bool = False
    peer: "LoopPeer" = None
    pcap: str = None
    down: list = field(default_factory=list)   # ports whose link stays down by design

    def measured_ports(self):
        return self.measured if self.measured is not None else list(range(len(self.ports)))


def make_setup(kind, ctx, tmp, tag, size=64, v6=False, devargs="size=64,copy=0", deep=False):
    if kind == "null":
        return Setup(kind, [Port("p0", "net_null0", devargs), Port("p1", "net_null1", devargs)])
    if kind == "memif-loop":
        peer = LoopPeer(tmp, tag, size, deep)
        return Setup(kind, [Port("m0", "net_memif0", f"role=client,socket={peer.sock},socket-abstract=no{peer.rsize}")],
                     size=size, peer=peer)
    if kind in ("pcap", "pcap-refused"):
        pcap = f"{tmp}/mix-v{6 if v6 else 4}.pcap"
        if not os.path.exists(pcap):
            write_pcap(pcap, udp_frames(v6))
        src = Port("src", "net_pcap0", f"rx_pcap={pcap},infinite_rx=1")
        if kind == "pcap":
            # Routed packets go to a net_null port: it accepts (and counts) every one.
            return Setup(kind, [src, Port("sink", "net_null0", "no-rx=1")], measured=[1], v6=v6, pcap=pcap)
        # A memif server no client ever connects to: every tx_burst returns 0, as a peer that
        # never reads its ring. The rate is what the side received and processed.
        sock = f"{tmp}/refuse-{tag}.sock"
        return Setup(kind, [src, Port("sink", "net_memif0", f"role=server,socket={sock},socket-abstract=no")],
                     metric="ipackets", measured=[0], v6=v6, pcap=pcap, down=[1])
    raise ValueError(kind)


class LoopPeer:
    """dpdk-testpmd as memif server in io mode with loop topology, on CPU 0, driven on its
    stdin: once the side under test is up, `start tx_first N` puts packets in flight, which
    then go back and forth; `stop` before either side exits. `deep` (for callgrind) uses
    16384-slot rings and 8192 packets in flight, so the side under callgrind still has work
    queued while this native peer waits for a CPU on a busy machine."""

    def __init__(self, tmp, tag, size, deep=False):
        self.sock = f"{tmp}/memif-loop-{tag}.sock"
        self.prefix = f"bench-peer-{tag}"
        self.size = size
        self.tmp, self.tag = tmp, tag
        self.rsize = ",rsize=14" if deep else ""
        self.bursts = 256 if deep else 16
        self.proc = None

    def start(self, huge):
        cmd = ["dpdk-testpmd", "-l", "0,1", "--main-lcore", "1", "--no-pci", "--file-prefix", self.prefix,
               *memory_args(huge, 256), "--vdev", f"net_memif0,role=server,socket={self.sock},socket-abstract=no{self.rsize}",
               "--", "-i", "--forward-mode=io", "--port-topology=loop", "--total-num-mbufs", "16384"]
        # Line-buffered, so its log says when its port has started: a client that connects
        # before that (the socket exists from the vdev probe on) may never see a packet.
        self.proc = Proc("memif peer (dpdk-testpmd)", ["stdbuf", "-oL", *cmd], f"{self.tmp}/peer-{self.tag}.log",
                         stdin_pipe=True)
        deadline = time.monotonic() + 30
        while "Checking link statuses" not in self.proc.output():
            if not self.proc.alive() or time.monotonic() > deadline:
                raise CaseError(f"the memif peer did not start:\n{self.proc.tail()}")
            time.sleep(0.05)

    def kick(self, timeout=30, side=None):
        """Puts 32 x `bursts` packets in flight as soon as the peer's side of the link is up
        (the side has connected): half of each direction's ring, so no TX is ever refused
        and the population, which only a drop could shrink, stays whole."""
        tel = Telemetry(self.prefix)
        deadline = time.monotonic() + timeout
        while not (tel.ready() and tel.links_up([0])):
            if side is not None and not side.alive():
                return    # the caller reports the side's exit
            if not self.proc.alive() or time.monotonic() > deadline:
                raise CaseError(f"the memif peer's link did not come up:\n{self.proc.tail()}")
            time.sleep(0.05)
        self.proc.send("stop")
        self.proc.send(f"set txpkts {self.size}")
        self.proc.send(f"start tx_first {self.bursts}")

    def stop_traffic(self):
        self.proc.send("stop")
        time.sleep(0.3)

    def stop(self):
        if self.proc is None:
            return 0
        self.proc.send("stop")
        self.proc.send("quit")
        rc = self.proc.wait(20)
        remove_runtime_dir(self.prefix)
        return rc


# --- Sides: the programs ---------------------------------------------------------------------

@dataclass
class Side:
    """One program in one configuration: `kind` is dataplane, testpmd or l3fwd."""
    kind: str
    label: str
    mode: str = "io"           # the forwarder's forward.mode / testpmd's --forward-mode
    extra: str = ""            # TOML appended to the forwarder's config
    workers: int = 1           # forwarding lcores (2: EAL --lcores 0@0,1@0,2@1)
    churn: bool = False        # forwarder: a client replaces its routes during the window

    def command(self, ctx, setup, tmp, tag, huge):
        """The command line, the telemetry file prefix and (forwarder) its JSON report path."""
        prefix = f"bench-{self.kind}-{tag}"
        mem = memory_args(huge)
        if self.kind == "dataplane":
            cfg, report = f"{tmp}/dp-{tag}.toml", f"{tmp}/dp-{tag}.json"
            control = f'\n[control]\nsocket = "{tmp}/{prefix}.sock"\n'
            Path(cfg).write_text(dataplane_config(self, setup, prefix, mem) + control)
            return [str(ctx.bin), "--config", cfg, "--stats-interval", "0", "--stats-json", report], prefix, report
        vdevs = [a for p in setup.ports for a in ("--vdev", f"{p.device},{p.args}")]
        if self.kind == "testpmd":
            lcores = ["--lcores", "0@0,1@1"] if self.workers == 1 else ["--lcores", "0@0,1@0,2@1"]
            cmd = ["dpdk-testpmd", *lcores, "--main-lcore", "0", "--no-pci", "--file-prefix", prefix, *mem, *vdevs, "--",
                   f"--forward-mode={self.mode}", f"--nb-cores={self.workers}", "--stats-period", "1",
                   "--total-num-mbufs", "8192", "--rxd", "1024", "--txd", "1024", "--burst", "32",
                   "--record-burst-stats"]
            if setup.kind == "memif-loop":
                cmd.append("--port-topology=loop")
            return cmd, prefix, None
        if self.kind == "l3fwd":
            n = len(setup.ports)
            routes_v4, routes_v6 = l3fwd_routes(False, n), l3fwd_routes(True, n)
            write_l3fwd_rules(f"{tmp}/rules-v4.cfg", routes_v4)
            write_l3fwd_rules(f"{tmp}/rules-v6.cfg", routes_v6)
            config = ",".join(f"({p},0,1)" for p in range(n))
            cmd = [str(ctx.l3fwd()), "-l", "1", "--no-pci", "--file-prefix", prefix, *mem, *vdevs, "--",
                   "-p", hex((1 << n) - 1), "-P", "--config", config, "--parse-ptype",
                   f"--rule_ipv4={tmp}/rules-v4.cfg", f"--rule_ipv6={tmp}/rules-v6.cfg",
                   *[f"--eth-dest={i},{m}" for i, m in enumerate(NEXT_HOP_MAC[:n])]]
            if setup.v6:
                cmd.append("--ipv6")
            return cmd, prefix, None
        raise ValueError(self.kind)


def dataplane_config(side, setup, prefix, mem):
    """The forwarder's config for `setup`: its ports, one worker on lcore 1 polling queue 0
    of each, and for l3fwd the routes of DPDK l3fwd's default table (the same next hops).
    With `side.workers == 2`: worker k+1 polls port k, placed as testpmd's 2 workers are
    (`main_cpu`/`cpu` keys, from which the forwarder derives EAL's --lcores 0@0,1@0,2@1),
    each port with a TX queue per worker."""
    two = side.workers == 2
    lines = ["[eal]", "main_lcore = 0", *(["main_cpu = 0"] if two else []), f'file_prefix = "{prefix}"',
             f"args = {json.dumps(mem)}", "", "[forward]", f'mode = "{side.mode}"']
    if side.mode != "l3fwd":
        pair = [setup.ports[0].name, setup.ports[-1].name]
        lines.append(f"pairs = [{json.dumps(pair)}]")
    for i, p in enumerate(setup.ports):
        lines += ["", "[[port]]", f'name = "{p.name}"', f'device = "{p.device}"', f'args = "{p.args}"']
        if two:
            lines.append("tx_queues = 2")
        if side.mode == "l2fwd":
            lines.append(f'peer_mac = "{NEXT_HOP_MAC[i]}"')
    if side.mode == "l3fwd":
        n = len(setup.ports)
        for net, port in l3fwd_routes(False, n) + l3fwd_routes(True, n):
            lines += ["", "[[route]]", f'prefix = "{net}"', f'port = "{setup.ports[port].name}"',
                      f'via_mac = "{NEXT_HOP_MAC[port]}"']
    if two:
        for k, p in enumerate(setup.ports[:2]):
            lines += ["", "[[worker]]", f"lcore = {k + 1}", f"cpu = {k}", f'rx = [{{ port = "{p.name}", queue = 0 }}]']
        lines.append("")
        return "\n".join(lines) + side.extra
    rx = ", ".join(f'{{ port = "{p.name}", queue = 0 }}' for p in setup.ports)
    lines += ["", "[[worker]]", "lcore = 1", f"rx = [{rx}]", ""]
    return "\n".join(lines) + side.extra


def check_dataplane_report(path):
    """The forwarder's --stats-json after a run: a clean exit and, per worker and in total,
    processed + injected + mirrored = tx_packets + dropped + punted. Returns the report."""
    try:
        r = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise CaseError(f"the forwarder wrote no --stats-json report: {e}")
    problems = []
    if not r.get("clean"):
        problems.append(f"the run was not clean: {r.get('errors')}")
    for lcore, w in r["softnet"].items():
        ins = w["processed"] + w["injected"] + w["mirrored"]
        outs = w["tx_packets"] + w["dropped"] + w["punted"]
        if ins != outs:
            problems.append(f"{lcore}: processed {w['processed']} + injected {w['injected']} + mirrored "
                            f"{w['mirrored']} = {ins} != tx {w['tx_packets']} + dropped {w['dropped']} + "
                            f"punted {w['punted']} = {outs}")
        if sum(w["drops"].values()) != w["dropped"]:
            problems.append(f"{lcore}: drops by reason {sum(w['drops'].values())} != dropped {w['dropped']}")
    workers = r["softnet"].values()
    if sum(w["tx_packets"] for w in workers) != r["stats"]["tx_packets"]:
        problems.append("the workers' tx_packets do not add up to the total")
    if problems:
        raise CaseError("the forwarder's counters do not add up: " + "; ".join(problems))
    return r


# --- One run ---------------------------------------------------------------------------------

@dataclass
class Context:
    bin: Path
    out: Path
    tmp: str
    seconds: float
    warmup: float
    cg_seconds: float
    _l3fwd: Path = None

    def l3fwd(self):
        if self._l3fwd is None:
            self._l3fwd = build_l3fwd(ROOT / "target" / "bench-l3fwd")
        return self._l3fwd


class Churn:
    """A client of the forwarder's control socket that replaces its routes, one
    route_replace at a time, as fast as the API answers, until stopped. Each replace names
    the route's own port and a next-hop MAC that alternates between two, so forwarding is
    unchanged while rte_lpm is rewritten in place and next hops are retired and reused."""

    def __init__(self, path, routes):
        import threading
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.reader = self.sock.makefile("rb")
        self.routes, self.count, self.error = routes, 0, None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        i = 0
        try:
            while not self.stopping.is_set():
                prefix, port, mac = self.routes[i % len(self.routes)]
                mac = mac[:-2] + ("%02x" % (int(mac[-2:], 16) ^ (i // len(self.routes) & 1 | 0x80)))
                req = {"version": 1, "command": "route_replace", "args": {"prefix": prefix, "port": port, "via_mac": mac}}
                self.sock.sendall(json.dumps(req).encode() + b"\n")
                reply = json.loads(self.reader.readline())
                if "ok" not in reply:
                    raise RuntimeError(f"route_replace {prefix}: {reply}")
                self.count += 1
                i += 1
        except Exception as e:  # reported by stop()
            self.error = e

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=10)
        self.sock.close()
        if self.error:
            raise CaseError(f"the route churn client failed: {self.error!r}")


def run_side(ctx, side, setup_args, tag, huge, callgrind=None):
    """Runs `side` once in a fresh set-up. Without `callgrind`: returns its rate (Mpps)
    between two telemetry readings. With `callgrind` (seconds of traffic): runs it under
    callgrind and returns the instructions of its forwarding thread and the packets that
    thread received."""
    tmp = ctx.tmp
    setup = make_setup(ctx=ctx, tmp=tmp, tag=tag, deep=bool(callgrind), **setup_args)
    cmd, prefix, report_path = side.command(ctx, setup, tmp, tag, huge=huge and not callgrind)
    cg_dir = None
    if callgrind:
        cg_dir = Path(tmp) / f"cg-{tag}"
        cg_dir.mkdir()
        toggle = ["--toggle-collect=lpm_main_loop"] if side.kind == "l3fwd" else []
        # --fair-sched: the spinning forwarding thread must not starve telemetry and signals.
        cmd = ["valgrind", "--tool=callgrind", "--separate-threads=yes", "--fair-sched=yes",
               f"--callgrind-out-file={cg_dir}/cg.%p",
               *toggle, *cmd]
    ready_timeout = 240 if callgrind else 60
    dut = None
    result = {}
    try:
        if setup.peer:
            setup.peer.start(huge)
        dut = Proc(side.label, cmd, f"{tmp}/{side.kind}-{tag}.log")
        if setup.peer:
            # Kicked the moment the side connects, as seen from the (native, quick) peer: the
            # side then spends next to no time polling an empty ring before traffic.
            setup.peer.kick(ready_timeout, dut)
        tel = Telemetry(prefix, timeout=60 if callgrind else 5)
        ports = [p for p in range(len(setup.ports)) if p not in setup.down]
        deadline = time.monotonic() + ready_timeout
        while not (tel.ready() and tel.links_up(ports)):
            if not dut.alive():
                raise CaseError(f"{side.label} exited ({dut.proc.returncode}) before its ports came up:\n{dut.tail()}")
            if time.monotonic() > deadline:
                raise CaseError(f"{side.label}: ports not up after {ready_timeout} s:\n{dut.tail()}")
            time.sleep(0.1)
        measured = setup.measured_ports()
        deadline = time.monotonic() + (60 if callgrind else 10)
        kicked = time.monotonic()
        while tel.port_counter(measured, setup.metric) == 0:
            if setup.peer and time.monotonic() - kicked > (10 if callgrind else 3):
                setup.peer.kick()    # the first packets can meet a link still coming up
                kicked = time.monotonic()
            if not dut.alive():
                raise CaseError(f"{side.label} exited ({dut.proc.returncode}) before forwarding:\n{dut.tail()}")
            if time.monotonic() > deadline:
                peer = f"\n  the memif peer:\n{setup.peer.proc.tail()}" if setup.peer else ""
                raise CaseError(f"{side.label} forwards nothing: {setup.metric} of ports {measured} still 0:\n"
                                f"{dut.tail()}{peer}")
            time.sleep(0.05)
        churn = None
        if side.churn:
            routes = [(str(net), setup.ports[port].name, NEXT_HOP_MAC[port])
                      for net, port in l3fwd_routes(False, len(setup.ports)) + l3fwd_routes(True, len(setup.ports))]
            churn = Churn(f"{tmp}/{prefix}.sock", routes)
        if callgrind:
            time.sleep(callgrind)
        else:
            time.sleep(ctx.warmup)
            t0, c0 = time.monotonic(), tel.port_counter(measured, setup.metric)
            u0 = churn.count if churn else 0
            time.sleep(ctx.seconds)
            t1, c1 = time.monotonic(), tel.port_counter(measured, setup.metric)
            result["mpps"] = (c1 - c0) / (t1 - t0) / 1e6
            if churn:
                result["route_updates_per_s"] = (churn.count - u0) / (t1 - t0)
        if churn:
            churn.stop()
            if c1 == c0:
                raise CaseError(f"{side.label} forwarded nothing in {ctx.seconds} s ({setup.metric} of ports {measured})")
        if setup.peer:
            # Before the side leaves: a memif server still forwarding when its client
            # disconnects can crash (seen: SIGSEGV in dpdk-testpmd).
            setup.peer.stop_traffic()
        rc = dut.stop(timeout=180 if callgrind else 20)
        if rc != 0:
            raise CaseError(f"{side.label} exited with status {rc}:\n{dut.tail()}")
        if side.kind == "dataplane":
            report = check_dataplane_report(report_path)
            w = next(iter(report["softnet"].values()))
            result["forwarded"] = report["stats"]["tx_packets"]
            result["processed"] = w["processed"]
            result["idle_rounds"], result["rounds"] = w["idle_rounds"], w["rounds"]
            result["cycles_per_packet"] = w["cycles_per_packet"]
            result["drops"] = {k: v for k, v in w["drops"].items() if v}
        if callgrind:
            result.update(callgrind_figures(side, cg_dir, dut.output(), result))
            # The forwarding thread's profile, for callgrind_annotate.
            kept = ctx.out / "callgrind" / f"{tag.split('-', 1)[1]}.callgrind"
            kept.parent.mkdir(exist_ok=True)
            shutil.copyfile(result["profile"], kept)
            result["profile"] = f"callgrind/{kept.name}"
    except (OSError, ValueError) as e:
        # Telemetry went away or answered nonsense: most likely the process died.
        if dut is not None and not dut.alive():
            raise CaseError(f"{side.label} exited with status {dut.proc.returncode} during the run:\n{dut.tail()}")
        raise CaseError(f"{side.label}: reading its telemetry failed: {e!r}")
    finally:
        if dut is not None and dut.alive():
            dut.stop()
        peer_rc = setup.peer.stop() if setup.peer else 0
        remove_runtime_dir(prefix)
    if peer_rc != 0:
        raise CaseError(f"the memif peer exited with status {peer_rc}:\n{setup.peer.proc.tail()}")
    return result


def callgrind_figures(side, cg_dir, output, result):
    """Instructions of the forwarding thread (see the module doc), the packets it received,
    and the share of its polls that found nothing."""
    threads, files = {}, {}
    for f in cg_dir.glob("cg.*-*"):
        text = f.read_text(errors="replace")
        t = re.search(r"^thread: (\d+)", text, re.M)
        ir = re.search(r"^(?:totals|summary): (\d+)", text, re.M)
        if t and ir:
            threads[int(t.group(1))], files[int(t.group(1))] = int(ir.group(1)), f
    polls = empty = None         # l3fwd: its sources (net_pcap infinite_rx) never run dry
    if side.kind == "l3fwd":
        thread = 1               # only inside lpm_main_loop, on the main lcore
        ir = threads.get(1, 0)
        packets = sum(int(x) for x in re.findall(r"^port \d+ stats: ipackets (\d+)", output, re.M))
    else:
        thread, ir = max(((k, v) for k, v in threads.items() if k != 1), key=lambda kv: kv[1], default=(0, 0))
        if side.kind == "dataplane":
            packets, polls, empty = result["processed"], result["rounds"], result["idle_rounds"]
        else:
            m = re.search(r"Accumulated forward statistics.*?RX-packets:\s+(\d+)", output, re.S)
            packets = int(m.group(1)) if m else 0
            # --record-burst-stats, per stream: "RX-bursts : N [x% of 0 pkts + ...]"
            polls = empty = 0
            for n, rest in re.findall(r"RX-bursts : (\d+) \[([^\]]*)\]", output):
                z = re.search(r"(\d+)% of 0 pkts", rest)
                polls += int(n)
                empty += int(n) * (int(z.group(1)) if z else 0) // 100
    if ir == 0 or packets == 0:
        raise CaseError(f"{side.label} under callgrind: {ir} instructions for {packets} packets "
                        f"(threads {threads})")
    return {"instructions": ir, "packets": packets, "polls": polls, "empty_polls": empty, "profile": files[thread]}


# --- Cases -----------------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    setup: dict
    a: Side
    b: Side
    about: str
    skip: object = None          # a function returning a reason to skip, or None
    instructions: bool = True    # callgrind both sides (not for 2 workers: one thread each)

DP = "dataplane"
NULL64 = {"kind": "null", "devargs": "size=64,copy=0"}
NULL64C = {"kind": "null", "devargs": "size=64,copy=1"}
PCAP4 = {"kind": "pcap", "v6": False}
PCAP6 = {"kind": "pcap", "v6": True}
REFUSED4 = {"kind": "pcap-refused", "v6": False}


CASES = [
    Case("null-io", NULL64, Side(DP, "dataplane io"), Side("testpmd", "testpmd io"),
         "two net_null ports in a pair, copy=0: the loop's own cost"),
    Case("null-io-copy", NULL64C, Side(DP, "dataplane io"), Side("testpmd", "testpmd io"),
         "net_null copy=1 (the PMD copies packet data on RX and TX; neither program has a copy knob)"),
    Case("null-macswap", NULL64C, Side(DP, "dataplane macswap", "macswap"), Side("testpmd", "testpmd macswap", "macswap"),
         "net_null copy=1, MACs swapped"),
    *[Case(f"memif-io-{n}", {"kind": "memif-loop", "size": n}, Side(DP, "dataplane io"), Side("testpmd", "testpmd io"),
           f"{n} B packets in flight between a testpmd peer (memif server, CPU 0) and the side (client, CPU 1)")
      for n in (64, 512, 1518)],
    Case("l3fwd-v4", PCAP4, Side(DP, "dataplane l3fwd", "l3fwd"), Side("l3fwd", "DPDK l3fwd (LPM)"),
         "256 IPv4/UDP flows replayed by net_pcap (infinite_rx), routed to a net_null port that accepts them"),
    Case("l3fwd-v6", PCAP6, Side(DP, "dataplane l3fwd", "l3fwd"), Side("l3fwd", "DPDK l3fwd (LPM) --ipv6"),
         "the same with IPv6/UDP"),
    Case("ext-trace64", PCAP4, Side(DP, "trace 1 in 64", "l3fwd", "[extensions]\ntrace_every = 64\n"),
         Side(DP, "extensions off", "l3fwd"), "l3fwd-v4 with a trace extension on one packet in 64, vs off"),
    Case("ext-flow", PCAP4, Side(DP, "flow metadata", "l3fwd", "[extensions]\nflow = true\n"),
         Side(DP, "extensions off", "l3fwd"), "l3fwd-v4 with flow metadata on every packet, vs off"),
    Case("ext-trace1", PCAP4, Side(DP, "trace every packet", "l3fwd", "[extensions]\ntrace_every = 1\n"),
         Side(DP, "extensions off", "l3fwd"), "l3fwd-v4 with a trace on every packet, vs off"),
    Case("l3fwd-churn", PCAP4, Side(DP, "routes replaced meanwhile", "l3fwd", churn=True),
         Side(DP, "no route change", "l3fwd"),
         "l3fwd-v4 while a ctl client replaces its IPv4 and IPv6 routes as fast as the API answers (rte_lpm "
         "in place; each IPv6 change waits a grace period; next hops retired and reused; route_updates_per_s "
         "in bench.json), vs no change", instructions=False),
    Case("acct", REFUSED4, Side(DP, "accounting on", "l3fwd", "[accounting]\n"), Side(DP, "accounting off", "l3fwd"),
         "l3fwd-v4 where every TX is refused: held packets charged to the accounts, vs dropped at once"),
    Case("acct-bypass", REFUSED4, Side(DP, "accounting, backlog_bypass", "l3fwd", "[accounting]\nbacklog_bypass = true\n"),
         Side(DP, "accounting off", "l3fwd"), "the same with the backlog bypassing the protocol accounts"),
    Case("workers-testpmd", NULL64, Side("testpmd", "testpmd 2 workers", workers=2), Side("testpmd", "testpmd 1 worker"),
         "net_null io, --lcores 0@0,1@0,2@1 (main lcore asleep beside worker 1) vs 0@0,1@1", instructions=False),
    Case("workers-dataplane", NULL64, Side(DP, "dataplane 2 workers", workers=2), Side(DP, "dataplane 1 worker"),
         "the same for the forwarder: its config places worker k+1 on CPU k (eal.main_cpu, worker.cpu)",
         instructions=False),
]
PKTGEN_CASES = {"pktgen-l2fwd": "l2fwd", "pktgen-l3fwd": "l3fwd"}
FRR_CASES = {"frr-bgp-100k": 100_000}
SMOKE_CASES = ["null-io", "memif-io-64", "l3fwd-v4"]


def pair_stats(ratios):
    med = statistics.median(ratios)
    q1, q3 = (statistics.quantiles(ratios, n=4, method="inclusive")[::2] if len(ratios) > 1 else (med, med))
    spread = max(abs(r / med - 1) for r in ratios) if med else float("inf")
    return {"median": med, "min": min(ratios), "max": max(ratios), "q1": q1, "q3": q3,
            "spread": spread, "flagged": spread > SPREAD_LIMIT}


def run_case(ctx, case, pairs, instructions):
    rec = {"case": case.name, "about": case.about, "a": case.a.label, "b": case.b.label, "status": "ok"}
    if case.skip:
        reason = case.skip(ctx)
        if reason:
            raise Skip(reason)
    rec["pairs"] = []
    for i in range(pairs):
        huge = free_hugepages() >= 512
        order = [("a", case.a), ("b", case.b)] if i % 2 == 0 else [("b", case.b), ("a", case.a)]
        got = {}
        for key, side in order:
            got[key] = run_side(ctx, side, case.setup, f"{os.getpid()}-{case.name}-{i}{key}", huge)
        ratio = got["a"]["mpps"] / got["b"]["mpps"]
        rec["pairs"].append({"a": got["a"], "b": got["b"], "ratio": ratio, "a_first": i % 2 == 0,
                             "memory": "hugepages" if huge else "no-huge"})
        updates = f", {got['a']['route_updates_per_s']:.0f} route updates/s" if "route_updates_per_s" in got["a"] else ""
        log(f"  {case.name} pair {i + 1}/{pairs}: {got['a']['mpps']:.2f} / {got['b']['mpps']:.2f} Mpps = {ratio:.3f}{updates}")
    if pairs:
        rec["a_mpps"] = statistics.median(p["a"]["mpps"] for p in rec["pairs"])
        rec["b_mpps"] = statistics.median(p["b"]["mpps"] for p in rec["pairs"])
        rec["ratio"] = pair_stats([p["ratio"] for p in rec["pairs"]])
    if instructions and case.instructions:
        cg = {key: instructions_per_packet(ctx, side, case, key) for key, side in (("a", case.a), ("b", case.b))}
        rec["instructions"] = {"a": cg["a"], "b": cg["b"], "ratio": cg["a"]["per_packet"] / cg["b"]["per_packet"]}
    return rec


def instructions_per_packet(ctx, side, case, key):
    """Instructions per packet of `side`'s forwarding thread from callgrind runs of T, 2T
    (and 3T) seconds of traffic. Two runs: (I2 - I1) / (P2 - P1), so that whatever the
    thread does once (its start, per-worker set-up such as zeroing histograms, the final
    flush) cancels exactly, whatever the packet counts; `fixed` is that once-only part.
    With a memif peer the side also polls an empty ring before the first packet and after
    the last, a different number of times each run: three runs fit I = a P + b E + c
    exactly, E being the empty polls (the forwarder's idle rounds; testpmd's
    --record-burst-stats, to 1% of its polls), and a is the figure."""
    memif = case.setup["kind"] == "memif-loop"
    runs = [run_side(ctx, side, case.setup, f"{os.getpid()}-{case.name}-{key}{n}", False, callgrind=n * ctx.cg_seconds)
            for n in ((1, 2, 3) if memif else (1, 2))]
    for r in runs[:-1]:
        (ctx.out / r["profile"]).unlink(missing_ok=True)   # keep the longest run's profile
    res = {"runs": runs, "profile": runs[-1]["profile"], "empty_polls": None, "approximate": False}
    if memif and all(r["empty_polls"] is not None for r in runs):
        import numpy
        a = numpy.array([[r["packets"], r["empty_polls"], 1.0] for r in runs], dtype=float)
        i = numpy.array([r["instructions"] for r in runs], dtype=float)
        if numpy.linalg.matrix_rank(a) == 3:
            per, per_empty, fixed = numpy.linalg.solve(a, i)
            res.update(per_packet=float(per), per_empty_poll=float(per_empty), fixed=float(fixed))
        res["empty_polls"] = max(r["empty_polls"] / max(r["polls"], 1) for r in runs)
        # testpmd gives its empty polls to 1% of its polls: say so when that could matter.
        res["approximate"] = side.kind == "testpmd" and res["empty_polls"] > EMPTY_POLL_LIMIT
    if "per_packet" not in res:
        (i1, p1), (i2, p2) = [(r["instructions"], r["packets"]) for r in runs[:2]]
        if p2 <= p1:
            raise CaseError(f"{side.label} under callgrind: the longer run received no more packets ({p1}, {p2})")
        res.update(per_packet=(i2 - i1) / (p2 - p1))
        res["fixed"] = i1 - res["per_packet"] * p1
        res["approximate"] = memif   # empty polls not known, or the same in every run
    if res["per_packet"] <= 0:
        res["approximate"] = True
    log(f"  {case.name} {side.label}: {res['per_packet']:.1f} instructions/packet (runs of "
        f"{', '.join(str(r['packets']) for r in runs)} packets; {res['fixed'] / 1e6:.1f} M once"
        + (f"; {res['per_empty_poll']:.0f} per empty poll" if "per_empty_poll" in res else "") + ")"
        + ("; approximate" if res["approximate"] else ""))
    return res


# --- pktgen-dpdk ---------------------------------------------------------------------------

PKTGEN_LUA = """-- written by ci/bench.py: measures what configs/pktgen/dataplane-2port.pkt started
local OUT, WARMUP, SECS = "{out}", {warmup}, {seconds}
local function now() local p = io.popen("date +%s.%N"); local t = tonumber(p:read("*l")); p:close(); return t end
local f = io.open(OUT, "w")
local ok, err = pcall(function()
  pktgen.delay(WARMUP * 1000)
  local t0, s0 = now(), pktgen.portStats("all", "port")
  pktgen.delay(SECS * 1000)
  local t1, s1 = now(), pktgen.portStats("all", "port")
  pktgen.stop("all")
  for pid, a in pairs(s1) do if type(a) == "table" then
    local b = s0[pid]
    f:write(string.format("port %d tx %.0f rx %.0f\\n", pid, (a.opackets - b.opackets) / (t1 - t0),
      (a.ipackets - b.ipackets) / (t1 - t0)))
  end end
end)
if not ok then f:write("error " .. tostring(err) .. "\\n") end
f:close()
pktgen.delay(500)
pktgen.quit()
"""


def find_pktgen():
    path = os.environ.get("PKTGEN") or shutil.which("pktgen")
    if not path or not os.access(path, os.X_OK):
        raise Skip("pktgen not found on PATH or in PKTGEN= (the project does not ship it: "
                   "docs/benchmarking.md says how to build Pktgen-DPDK 23.06.1)")
    if not shutil.which("script"):
        raise Skip("pktgen needs a terminal: `script` (package bsdutils) is missing")
    return path


def pktgen_dataplane_config(mode, prefix, sockets):
    """The forwarder as memif server on two ports with configs/{l2fwd,l3fwd}-2port.toml's
    address plan (docs/benchmarking.md): one worker on lcore 0, the main lcore on 1."""
    lines = ["[eal]", "main_lcore = 1", f'file_prefix = "{prefix}"', 'args = ["--in-memory", "-m", "512"]', "",
             "[forward]", f'mode = "{mode}"']
    if mode == "l2fwd":
        lines.append('pairs = [["p0", "p1"]]')
    for i, sock in enumerate(sockets):
        lines += ["", "[[port]]", f'name = "p{i}"', f'device = "net_memif{i}"',
                  f'args = "role=server,socket={sock},socket-abstract=no"']
        if mode == "l2fwd":
            lines.append(f'peer_mac = "{NEXT_HOP_MAC[i]}"')
        else:
            lines += [f'ipv4 = "198.{18 + i}.0.1/24"']
    if mode == "l3fwd":
        for i in range(2):
            lines += ["", "[[route]]", f'prefix = "198.{18 + i}.0.0/16"', f'port = "p{i}"', f'via_mac = "{NEXT_HOP_MAC[i]}"']
    lines += ["", "[[worker]]", "lcore = 0", 'rx = [{ port = "p0", queue = 0 }, { port = "p1", queue = 0 }]', ""]
    return "\n".join(lines)


def run_pktgen(ctx, name, mode, reps):
    """pktgen (memif client, two ports, the shipped script plus a measuring Lua script)
    against the forwarder (memif server, two ports): pktgen's own tx/rx rates next to the
    forwarder's. The forwarder starts first (pktgen panics if the socket is not there)."""
    pktgen = find_pktgen()
    rec = {"case": name, "about": f"pktgen-dpdk over 2 memif ports, the forwarder in {mode} (memif server), "
           "configs/pktgen/dataplane-2port.pkt", "a": f"dataplane {mode}", "b": "pktgen", "status": "ok", "runs": []}
    for rep in range(reps):
        tag = f"{os.getpid()}-{name}-{rep}"
        prefix, tmp = f"bench-dataplane-{tag}", ctx.tmp
        sockets = [f"{tmp}/pg-{tag}-{i}.sock" for i in range(2)]
        cfg, report = f"{tmp}/pg-{tag}.toml", f"{tmp}/pg-{tag}.json"
        Path(cfg).write_text(pktgen_dataplane_config(mode, prefix, sockets))
        lua, result = f"{tmp}/pg-{tag}.lua", f"{tmp}/pg-{tag}.txt"
        Path(lua).write_text(PKTGEN_LUA.format(out=result, warmup=ctx.warmup + 1, seconds=ctx.seconds))
        dp = Proc("dataplane", [str(ctx.bin), "--config", cfg, "--stats-interval", "0", "--stats-json", report],
                  f"{tmp}/pg-dp-{tag}.log")
        pg = None
        try:
            tel = Telemetry(prefix)
            deadline = time.monotonic() + 60
            while not all(os.path.exists(s) for s in sockets) or not tel.ready():
                if not dp.alive() or time.monotonic() > deadline:
                    raise CaseError(f"the forwarder did not come up:\n{dp.tail()}")
                time.sleep(0.1)
            vdevs = [a for i, s in enumerate(sockets)
                     for a in ("--vdev", f"net_memif{i},role=client,socket={s},socket-abstract=no")]
            # pktgen makes ~1.25 GB of mbuf pools per port: more than the hugepages here, so
            # --no-huge (memif copies; it needs no hugepages).
            pg_cmd = [pktgen, "-l", "0-1", "--no-pci", "--file-prefix", f"bench-pg-{tag}", "--no-huge", "-m", "3300", *vdevs, "--", "-P", "-m", "1.[0-1]",
                      "-f", str(ROOT / "configs" / "pktgen" / "dataplane-2port.pkt"), "-f", lua]
            pg = Proc("pktgen", ["script", "-qfec", " ".join(pg_cmd), f"{tmp}/pg-{tag}.typescript"],
                      f"{tmp}/pg-{tag}.log")
            deadline = time.monotonic() + 90
            while tel.port_counter([0, 1], "ipackets") == 0:
                if not pg.alive() or time.monotonic() > deadline:
                    status = "still running" if pg.alive() else f"exit status {pg.proc.returncode}"
                    raise CaseError(f"pktgen sent nothing to the forwarder ({status}):\n{pg.tail()}")
                time.sleep(0.1)
            time.sleep(ctx.warmup + 1)
            t0, rx0, tx0 = time.monotonic(), tel.port_counter([0, 1], "ipackets"), tel.port_counter([0, 1], "opackets")
            time.sleep(ctx.seconds)
            t1, rx1, tx1 = time.monotonic(), tel.port_counter([0, 1], "ipackets"), tel.port_counter([0, 1], "opackets")
            rc = pg.wait(60 + ctx.seconds)
            text = Path(result).read_text() if os.path.exists(result) else ""
            ports = re.findall(r"^port (\d+) tx (\d+) rx (\d+)", text, re.M)
            if rc != 0 or not ports:
                raise CaseError(f"pktgen exited with status {rc} and measured {text.strip() or 'nothing'}:\n{pg.tail()}")
            drc = dp.stop()
            if drc != 0:
                raise CaseError(f"the forwarder exited with status {drc}:\n{dp.tail()}")
            check_dataplane_report(report)
            run = {"dataplane_rx_mpps": (rx1 - rx0) / (t1 - t0) / 1e6, "dataplane_tx_mpps": (tx1 - tx0) / (t1 - t0) / 1e6,
                   "pktgen_tx_mpps": sum(int(t) for _, t, _ in ports) / 1e6,
                   "pktgen_rx_mpps": sum(int(r) for _, _, r in ports) / 1e6}
            if run["dataplane_tx_mpps"] == 0 or run["pktgen_rx_mpps"] == 0:
                raise CaseError(f"nothing came back through the forwarder: {run}")
            rec["runs"].append(run)
            log(f"  {name} run {rep + 1}/{reps}: pktgen tx {run['pktgen_tx_mpps']:.2f} rx {run['pktgen_rx_mpps']:.2f}, "
                f"dataplane rx {run['dataplane_rx_mpps']:.2f} tx {run['dataplane_tx_mpps']:.2f} Mpps")
        finally:
            if pg is not None and pg.alive():
                pg.stop(sig=signal.SIGTERM)
            if dp.alive():
                dp.stop()
            remove_runtime_dir(prefix)
            remove_runtime_dir(f"bench-pg-{tag}")
    for k in ("dataplane_rx_mpps", "dataplane_tx_mpps", "pktgen_tx_mpps", "pktgen_rx_mpps"):
        rec[k] = statistics.median(r[k] for r in rec["runs"])
    return rec


# --- FRR: routes from zebra while forwarding -------------------------------------------------

FRR_BENCH_CONFIG = """[eal]
main_lcore = 0
file_prefix = "{prefix}"
args = {mem}

[forward]
mode = "l3fwd"

[fib]
ipv4_max_routes = 262144
ipv4_tbl8_groups = 4096
ipv6_max_routes = 4096
ipv6_tbl8_groups = 1024
max_next_hops = 4096

[control]
socket = "{tmp}/ctl-{prefix}.sock"

[fpm]
sweep_after_ms = 60000

[[port]]
name = "src"
device = "net_pcap0"
args = "rx_pcap={pcap},infinite_rx=1"

# The routed packets leave here; zebra's BGP next hop 10.0.2.2 is in its subnet.
[[port]]
name = "sink"
device = "net_null0"
args = "no-rx=1"
ipv4 = "10.0.2.1/24"

{routes}
[[worker]]
lcore = 1
rx = [{{ port = "src", queue = 0 }}, {{ port = "sink", queue = 0 }}]
"""


def run_frr(ctx, name, routes, reps):
    """The forwarder (net_pcap infinite_rx -> net_null, l3fwd, [fpm]) while zebra installs
    `routes` BGP routes, in two ways:
      - feed: a BGP peer (FRR in another namespace, `redistribute kernel` of `routes`
        blackhole routes in its kernel) sends them; zebra installs them and streams them to
        the forwarder as BGP learns them;
      - replay: the forwarder is restarted; zebra, holding them all, reconnects and replays
        its whole table at once, so the figure is the forwarder's own install rate.
    For each: routes per second (from the first route of the load to the last, as the
    forwarder's /dataplane/fpm counts them installed) and the forwarding rate meanwhile, as a
    ratio to the rate just before (feed) or just after (replay) in the same run."""
    sys.path.insert(0, str(ROOT / "ci"))
    import frr
    why = frr.install()
    if why:
        raise Skip(why)
    if os.geteuid() != 0:
        raise Skip("needs root (network namespaces, FRR daemons)")
    rec = {"case": name, "about": f"{routes:,} BGP routes from FRR {frr.version().split()[-1]} (dplane_fpm_nl) while "
           "forwarding net_pcap -> net_null in l3fwd", "a": "during the load", "b": "without", "status": "ok", "runs": []}
    # The FRR daemons run as user frr and must reach their directories under ctx.tmp.
    os.chmod(ctx.tmp, 0o755)
    pcap = f"{ctx.tmp}/mix-v4.pcap"
    if not os.path.exists(pcap):
        write_pcap(pcap, udp_frames(False))
    config_routes = "".join(f'[[route]]\nprefix = "{net}"\nport = "sink"\nvia_mac = "{NEXT_HOP_MAC[1]}"\n\n'
                            for net, port in l3fwd_routes(False, 2) if port == 1)
    batch = Path(ctx.tmp) / "peer-routes.batch"
    batch.write_text("".join(f"route add blackhole 100.{i >> 14}.{(i >> 6) & 0xff}.{(i & 0x3f) << 2}/30\n"
                             for i in range(routes)))
    for rep in range(reps):
        tag = f"{os.getpid()}-{rep}"
        r_ns, p_ns = f"bench-frr-r-{tag}", f"bench-frr-p-{tag}"
        made, instances, dp = [], [], None
        prefix = f"bench-frr-{tag}"
        try:
            for ns in (r_ns, p_ns):
                subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
                made.append(ns)
                subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
            subprocess.run(["ip", "link", "add", "rc2", "netns", r_ns, "type", "veth", "peer", "name", "pc2", "netns", p_ns],
                           check=True)
            for ns, dev, addr in ((r_ns, "rc2", "10.0.2.1/24"), (p_ns, "pc2", "10.0.2.2/24")):
                subprocess.run(["ip", "-n", ns, "addr", "add", addr, "dev", dev], check=True)
                subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
            subprocess.run(["ip", "-n", p_ns, "-batch", str(batch)], check=True, capture_output=True)
            cfg = Path(ctx.tmp) / f"frr-{tag}.toml"
            cfg.write_text(FRR_BENCH_CONFIG.format(prefix=prefix, mem=json.dumps(memory_args(False)), tmp=ctx.tmp, pcap=pcap,
                                                   routes=config_routes))
            tel = Telemetry(prefix)

            def start_dp():
                proc = Proc("dataplane", ["ip", "netns", "exec", r_ns, str(ctx.bin), "--config", str(cfg), "--stats-interval",
                                          "0", "--stats-json", f"{ctx.tmp}/frr-{tag}.json"], f"{ctx.tmp}/frr-dp-{tag}.log")
                deadline = time.monotonic() + 60
                while not (tel.ready() and tel.port_counter([1], "opackets") > 0):
                    if not proc.alive() or time.monotonic() > deadline:
                        raise CaseError(f"the forwarder did not forward:\n{proc.tail()}")
                    time.sleep(0.1)
                return proc

            def installed():
                # The fib section is "null" until the FPM thread first publishes it.
                fib = (tel.query("/dataplane/fpm") or {}).get("fib")
                return int(fib.get("installed", 0)) if isinstance(fib, dict) else 0

            def measure_load(base, what, timeout):
                """Waits for the first route beyond `base`, then for `routes` more; returns
                (seconds from first to last, Mpps forwarded meanwhile)."""
                deadline = time.monotonic() + timeout
                while installed() <= base:
                    if time.monotonic() > deadline:
                        raise CaseError(f"{what}: no route arrived in {timeout} s")
                    time.sleep(0.005)
                t0, c0 = time.monotonic(), tel.port_counter([1], "opackets")
                while installed() < base + routes:
                    if time.monotonic() > deadline:
                        raise CaseError(f"{what}: {installed() - base} of {routes} routes after {timeout} s")
                    time.sleep(0.01)
                t1, c1 = time.monotonic(), tel.port_counter([1], "opackets")
                return t1 - t0, (c1 - c0) / (t1 - t0) / 1e6

            def steady(seconds):
                t0, c0 = time.monotonic(), tel.port_counter([1], "opackets")
                time.sleep(seconds)
                return (tel.port_counter([1], "opackets") - c0) / (time.monotonic() - t0) / 1e6

            dp = start_dp()
            r = frr.Instance("r", r_ns, Path(ctx.tmp) / f"frr-r-{tag}")
            instances.append(r)
            r.configure("zebra", (ROOT / "configs" / "frr" / "zebra.conf").read_text())
            r.configure("bgpd", (ROOT / "configs" / "frr" / "bgpd.conf").read_text())
            r.start(daemons=("zebra", "bgpd"))
            wait = time.monotonic() + 20
            while (tel.query("/dataplane/fpm") or {}).get("connected") != "true":
                if time.monotonic() > wait:
                    raise CaseError("zebra did not connect to the forwarder's FPM listener")
                time.sleep(0.1)
            time.sleep(ctx.warmup)
            before = steady(ctx.seconds)
            base = installed()
            p = frr.Instance("p", p_ns, Path(ctx.tmp) / f"frr-p-{tag}")
            instances.append(p)
            p.configure("zebra", "hostname peer\n")
            p.configure("bgpd", (ROOT / "configs" / "frr" / "peer-bgpd.conf").read_text())
            p.start(daemons=("zebra", "bgpd"), zebra_args=("-s", "33554432"))
            feed_s, feed_mpps = measure_load(base, "the BGP feed", 120)
            # Replay: a fresh forwarder; zebra reconnects within 3 s and sends everything.
            if dp.stop() != 0:
                raise CaseError(f"the forwarder exited non-zero:\n{dp.tail()}")
            check_dataplane_report(f"{ctx.tmp}/frr-{tag}.json")
            remove_runtime_dir(prefix)
            dp = start_dp()
            replay_s, replay_mpps = measure_load(0, "zebra's replay", 60)
            after = steady(ctx.seconds)
            if dp.stop() != 0:
                raise CaseError(f"the forwarder exited non-zero:\n{dp.tail()}")
            report = check_dataplane_report(f"{ctx.tmp}/frr-{tag}.json")
            dp = None
            run = {"routes": routes, "feed_s": feed_s, "feed_routes_per_s": routes / feed_s, "feed_mpps": feed_mpps,
                   "before_mpps": before, "feed_ratio": feed_mpps / before, "replay_s": replay_s,
                   "replay_routes_per_s": routes / replay_s, "replay_mpps": replay_mpps, "after_mpps": after,
                   "replay_ratio": replay_mpps / after, "fpm": report.get("fpm", {}).get("fib")}
            rec["runs"].append(run)
            log(f"  {name} run {rep + 1}/{reps}: feed {routes / feed_s:,.0f} routes/s ({feed_s:.1f} s), forwarding "
                f"{feed_mpps:.2f} vs {before:.2f} Mpps; replay {routes / replay_s:,.0f} routes/s ({replay_s:.2f} s), "
                f"forwarding {replay_mpps:.2f} vs {after:.2f} Mpps")
        except RuntimeError as e:   # an FRR daemon that did not start (ci/frr.py)
            raise CaseError(str(e)) from e
        finally:
            if dp is not None and dp.alive():
                dp.stop()
            for inst in reversed(instances):
                inst.close()
            for ns in made:
                for pid in subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split():
                    subprocess.run(["kill", "-KILL", pid], capture_output=True)
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            remove_runtime_dir(prefix)
    for k in ("feed_routes_per_s", "feed_ratio", "replay_routes_per_s", "replay_ratio", "before_mpps", "feed_mpps",
              "after_mpps", "replay_mpps"):
        rec[k] = statistics.median(r[k] for r in rec["runs"])
    return rec


# --- Outputs ---------------------------------------------------------------------------------

def table(results):
    """The Markdown table of every case: Mpps medians, the median pair ratio with its
    min-max, IQR and spread (bold when over 10%), instructions per packet (~: more than 1%
    empty polls under callgrind) and their ratio."""
    rows = ["| case | A | B | A Mpps | B Mpps | ratio A/B | min-max | IQR | spread | A instr/pkt | B instr/pkt | instr A/B |",
            "|" + "---|" * 12]
    for r in results:
        cells = [r["case"], r.get("a", ""), r.get("b", "")]
        if r["status"] != "ok":
            cells += [f"{r['status']}: {r.get('reason', '')}"] + [""] * 8
        elif "feed_routes_per_s" in r:   # FRR: routes per second, forwarding during the load vs without
            cells += [f"feed {r['feed_mpps']:.2f}, replay {r['replay_mpps']:.2f}",
                      f"{r['before_mpps']:.2f} before, {r['after_mpps']:.2f} after",
                      f"feed {r['feed_ratio']:.3f}, replay {r['replay_ratio']:.3f}",
                      f"routes/s: feed {r['feed_routes_per_s']:,.0f}, replay {r['replay_routes_per_s']:,.0f}"] + [""] * 5
        elif "runs" in r:   # pktgen: its own rates next to the forwarder's
            cells += [f"rx {r['dataplane_rx_mpps']:.2f} tx {r['dataplane_tx_mpps']:.2f}",
                      f"tx {r['pktgen_tx_mpps']:.2f} rx {r['pktgen_rx_mpps']:.2f}",
                      f"pktgen rx/tx {r['pktgen_rx_mpps'] / r['pktgen_tx_mpps']:.3f}"] + [""] * 6
        else:
            q, ins = r.get("ratio"), r.get("instructions")
            if q:
                spread = f"±{q['spread'] * 100:.1f}%"
                cells += [f"{r['a_mpps']:.2f}", f"{r['b_mpps']:.2f}", f"{q['median']:.3f}", f"{q['min']:.3f}-{q['max']:.3f}",
                          f"{q['q1']:.3f}-{q['q3']:.3f}", f"**{spread}**" if q["flagged"] else spread]
            else:   # --pairs 0: instructions only
                cells += ["-"] * 6
            if ins:
                cells += [f"{ins[k]['per_packet']:.1f}" + ("~" if ins[k]["approximate"] else "") for k in "ab"]
                cells.append(f"{ins['ratio']:.3f}")
            else:
                cells += ["-", "-", "-"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def chart(r, path, stamp):
    """CASE.png: the rates of both sides per pair, and the pair ratios with their median,
    the ±10% band and the instruction ratio."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    fig.suptitle(f"{r['case']}: {r['a']} (A) vs {r['b']} (B)\n{stamp}", fontsize=10)
    if "feed_routes_per_s" in r:
        names = ["before", "BGP feed", "replay", "after"]
        keys = ["before_mpps", "feed_mpps", "replay_mpps", "after_mpps"]
        for i, run in enumerate(r["runs"]):
            left.plot(names, [run[k] for k in keys], "o-", label=f"run {i + 1}")
        left.set_ylabel("Mpps forwarded")
        left.set_ylim(bottom=0)
        left.legend(fontsize=8)
        right.bar(["BGP feed", "replay"], [r["feed_routes_per_s"], r["replay_routes_per_s"]], color=["C0", "C1"])
        right.set_ylabel("routes installed per second (median)")
    elif "runs" in r:
        names = ["pktgen tx", "dataplane rx", "dataplane tx", "pktgen rx"]
        keys = ["pktgen_tx_mpps", "dataplane_rx_mpps", "dataplane_tx_mpps", "pktgen_rx_mpps"]
        for i, run in enumerate(r["runs"]):
            left.plot(names, [run[k] for k in keys], "o-", label=f"run {i + 1}")
        left.set_ylabel("Mpps")
        left.legend(fontsize=8)
        right.bar(names, [r[k] for k in keys], color=["C0", "C1", "C1", "C0"])
        right.set_title("medians", fontsize=9)
    else:
        x = list(range(1, len(r["pairs"]) + 1))
        left.plot(x, [p["a"]["mpps"] for p in r["pairs"]], "o-", label=f"A: {r['a']}")
        left.plot(x, [p["b"]["mpps"] for p in r["pairs"]], "s-", label=f"B: {r['b']}")
        left.xaxis.set_major_locator(MaxNLocator(integer=True))
        right.xaxis.set_major_locator(MaxNLocator(integer=True))
        left.set_xlabel("pair")
        left.set_ylabel("Mpps")
        left.set_ylim(bottom=0)
        left.legend(fontsize=8)
        q = r["ratio"]
        right.axhspan(q["median"] * (1 - SPREAD_LIMIT), q["median"] * (1 + SPREAD_LIMIT), color="0.9", label="median ±10%")
        right.plot(x, [p["ratio"] for p in r["pairs"]], "o", color="C2", label="pair ratio A/B (Mpps)")
        right.axhline(q["median"], color="C2", label=f"median {q['median']:.3f}")
        if r.get("instructions"):
            inv = 1 / r["instructions"]["ratio"]
            right.axhline(inv, color="C3", linestyle="--", label=f"B/A instructions per packet {inv:.3f}")
        right.axhline(1.0, color="k", linewidth=0.5)
        right.set_xlabel("pair")
        right.set_ylabel("A / B")
        right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=7,
                    help="A/B pairs per case (default 7; 0: instructions per packet only)")
    ap.add_argument("--seconds", type=float, default=2.0, help="measuring window per run (default 2)")
    ap.add_argument("--warmup", type=float, default=0.5, help="seconds of traffic before the window (default 0.5)")
    ap.add_argument("--cg-seconds", type=float, default=2.0, help="seconds of traffic under callgrind (default 2)")
    ap.add_argument("--no-instructions", dest="instructions", action="store_false",
                    help="skip the callgrind runs (instructions per packet)")
    ap.add_argument("--cases", help="comma-separated subset (see --list)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--out", default=str(ROOT / "target" / "bench"), help="where the JSON, table and charts go")
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "dataplane"),
                    help="the forwarder (default: the release build)")
    ap.add_argument("--no-charts", dest="charts", action="store_false", help="skip the PNG charts")
    ap.add_argument("--smoke", action="store_true",
                    help=f"the test suite's run: {', '.join(SMOKE_CASES)}; one short pair each, instructions per "
                         "packet for l3fwd-v4 only; fails when a case fails")
    a = ap.parse_args()
    names = [c.name for c in CASES] + list(PKTGEN_CASES) + list(FRR_CASES)
    if a.list:
        for c in CASES:
            print(f"{c.name:<18} {c.a.label} vs {c.b.label}: {c.about}")
        for n, routes in FRR_CASES.items():
            print(f"{n:<18} the forwarder while zebra installs {routes:,} BGP routes (FRR feed, then a replay) vs without")
        for n, mode in PKTGEN_CASES.items():
            print(f"{n:<18} pktgen-dpdk vs the forwarder in {mode} over 2 memif ports (skipped without pktgen)")
        return 0
    cg_cases = set(names) if a.instructions else set()
    if a.smoke:
        a.pairs, a.seconds, a.warmup, a.cg_seconds = 1, 0.5, 0.2, 1.0
        a.cases = a.cases or ",".join(SMOKE_CASES)
        cg_cases = {"l3fwd-v4"} if a.instructions else set()
    wanted = a.cases.split(",") if a.cases else names
    unknown = [n for n in wanted if n not in names]
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(names)}")
    ctx_bin = Path(a.bin)
    if not ctx_bin.exists():
        sys.exit(f"{ctx_bin} not built: cargo build --release -p dataplane")
    ensure_packages(PACKAGES if a.charts else [p for p in PACKAGES if p != "python3-matplotlib"])
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    stamp = f"{time.strftime('%Y-%m-%d')}, {cpu_name()}, {os.cpu_count()} CPUs"
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        ctx = Context(bin=ctx_bin, out=out, tmp=tmp, seconds=a.seconds, warmup=a.warmup, cg_seconds=a.cg_seconds)
        for name in wanted:
            log(f"bench: {name}")
            case = next((c for c in CASES if c.name == name), None)
            try:
                if case:
                    rec = run_case(ctx, case, a.pairs, name in cg_cases)
                else:
                    rec = (run_frr(ctx, name, FRR_CASES[name], max(1, min(a.pairs, 3))) if name in FRR_CASES
                           else run_pktgen(ctx, name, PKTGEN_CASES[name], max(1, min(a.pairs, 3))))
            except Skip as e:
                rec = {"case": name, "status": "skipped", "reason": str(e)}
                if case:
                    rec.update(a=case.a.label, b=case.b.label)
                log(f"  {name}: skipped: {e}")
            except CaseError as e:
                rec = {"case": name, "status": "failed", "reason": str(e).splitlines()[0].rstrip(":"), "error": str(e)}
                if case:
                    rec.update(a=case.a.label, b=case.b.label)
                log(f"  {name}: FAILED: {e}")
            results.append(rec)
            if a.charts and rec["status"] == "ok" and (rec.get("pairs") or "runs" in rec):
                chart(rec, out / f"{name}.png", stamp)
    text = table(results)
    mem = "hugepages" if all(p.get("memory") == "hugepages" for r in results for p in r.get("pairs", [])) else "mixed"
    command = "ci/bench.py " + " ".join(sys.argv[1:])
    summary = (f"{stamp}; {a.pairs} pairs x {a.seconds} s per case; memory: {mem}; "
               f"{time.monotonic() - started:.0f} s in all; `{command}`")
    (out / "table.md").write_text(f"{summary}\n\n{text}\n")
    (out / "bench.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu_name(),
                                                "cpus": os.cpu_count(), "command": command, "pairs": a.pairs,
                                                "seconds": a.seconds, "results": results}, indent=2))
    print(summary)
    print(text)
    print(f"wrote {out}/bench.json, {out}/table.md" + (f" and a chart per case ({out}/CASE.png)" if a.charts else ""))
    failed = [r["case"] for r in results if r["status"] == "failed"]
    if failed:
        print(f"bench: FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
