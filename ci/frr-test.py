#!/usr/bin/env python3
"""FRR drives the forwarder: zebra's dplane_fpm_nl streams its routes to the [fpm] listener.

    ci/frr-test.py [--bin PATH]     # as root

The forwarder runs configs/frr.toml (interface names and EAL file prefix filled in) inside a
router namespace that also runs an FRR instance (zebra -M dplane_fpm_nl, staticd, bgpd, with
configs/frr/{zebra,staticd,bgpd}.conf as shipped), so zebra reaches the listener on
127.0.0.1:2620. A second FRR instance (zebra, bgpd with configs/frr/peer-bgpd.conf) in a peer
namespace is zebra's BGP neighbour over a plain veth, not through the forwarder:

    h1 netns                  router netns (PREFIX-r)                                h2, h3 netns
    10.0.1.2 ---- veth ---- [h1] dataplane (af_packet, l3fwd, [fpm]) [h2] ---- veth ---- 10.0.2.2
                                                                     [h3] ---- veth ---- 10.0.3.2
                            FRR "r": zebra --FPM 127.0.0.1:2620--> dataplane
                            10.0.2.1/24 rc2 ---- veth ---- pc2 10.0.2.2/24   peer netns: FRR "p"
                            10.0.3.1/24 rc3 ---- veth ---- pc3 10.0.3.2/24   (bgpd AS 65002)

zebra's interfaces rc2/rc3 hold the subnets of the forwarder's ports h2/h3, so zebra resolves
the gateways 10.0.2.2 and 10.0.3.2 as directly connected (it sends no route whose gateway it
cannot resolve); in the data plane those addresses are the hosts h2 and h3.

Checked, reading the forwarder's /dataplane/fpm over DPDK telemetry:
- zebra connects and replays: the connected routes and staticd's ECMP route arrive.
- staticd: `ip route 10.9.0.0/16 10.0.2.2` entered with vtysh arrives (time printed);
  `no ip route ...` removes it.
- BGP: the peer's 198.51.100.0/24 is learned (origin bgp), forgotten when the peer withdraws
  it (`no network`), learned again, forgotten when the peer's bgpd stops (session drop).
- zebra restart (zebra stopped, then its clients staticd and bgpd, then all started again, as
  watchfrr restarts an instance whose zebra died): zebra sends no deletes when it stops, so
  while FRR is down the forwarder keeps every route; after the restart zebra replays, nothing is
  installed twice (each replayed route counts as unchanged), and after the replay the one
  route that FRR no longer has (typed into vtysh, not in staticd.conf) is swept.
- At the end the forwarder exits cleanly (pools full) and its report holds the FPM counters.

Prints "frr-test: PASS ..." and exits 0, "FAIL" and 1, or "SKIP: ..." and 77 when FRR cannot be
installed or namespaces cannot be made. Everything it makes (namespaces with their veths, FRR
daemons stopped by PID, the forwarder, temp dirs, the EAL runtime dir) is removed on exit,
failure, Ctrl-C or SIGTERM.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import frr  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FRR_CONFIGS = ROOT / "configs" / "frr"
ID = os.getpid()
PREFIX = f"dp-frr-{ID}"


def log(msg):
    print(f"frr-test: {msg}", flush=True)


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def sh(*cmd, check=True):
    return frr.run(list(cmd), check=check)


class Telemetry:
    """A client of the forwarder's DPDK telemetry socket (the v2 protocol: JSON per command)."""

    def __init__(self, file_prefix, timeout=20):
        path = f"/var/run/dpdk/{file_prefix}/dpdk_telemetry.v2"
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise Fail(f"no telemetry socket at {path}")
                time.sleep(0.1)
        info = json.loads(self.sock.recv(16384))
        self.max_len = info.get("max_output_len", 16384)

    def get(self, cmd):
        self.sock.send(cmd.encode())
        return json.loads(self.sock.recv(self.max_len))[cmd]

    def close(self):
        self.sock.close()


class Setup:
    """Namespaces, veths, the forwarder and the two FRR instances; `close()` undoes all of it."""

    def __init__(self, binary):
        self.binary = binary
        self.tmp = Path(tempfile.mkdtemp(prefix="dp-frr."))
        self.tmp.chmod(0o755)  # the FRR daemons run as user frr and need to reach their dirs
        self.namespaces = []
        self.fwd = None
        self.tel = None
        self.r = None
        self.p = None
        self.ns = {k: f"{PREFIX}-{k}" for k in ("r", "p", "h1", "h2", "h3")}

    def netns(self, key):
        name = self.ns[key]
        r = sh("ip", "netns", "add", name, check=False)
        if r.returncode != 0:
            raise PermissionError(f"ip netns add {name}: {r.stderr.strip()}")
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def veth(self, a, ns_a, b, ns_b):
        sh("ip", "link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b)
        sh("ip", "-n", ns_a, "link", "set", a, "up")
        sh("ip", "-n", ns_b, "link", "set", b, "up")

    def build(self):
        r, p = self.netns("r"), self.netns("p")
        hosts = {k: self.netns(k) for k in ("h1", "h2", "h3")}
        # The router namespace's kernel must stay out of the data plane: no forwarding, no ARP
        # answers for zebra's addresses on the forwarder's veths, no IPv6 on them.
        sh("ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.ip_forward=0")
        self.ifs = {}
        for i, h in enumerate(("h1", "h2", "h3"), start=1):
            fwd_if, host_if = f"dpf{ID}{h}", "eth0"
            self.veth(fwd_if, r, host_if, hosts[h])
            sh("ip", "netns", "exec", r, "sysctl", "-qw", f"net.ipv6.conf.{fwd_if}.disable_ipv6=1")
            sh("ip", "-n", hosts[h], "addr", "add", f"10.0.{i}.2/24", "dev", host_if)
            sh("ip", "-n", hosts[h], "route", "add", "default", "via", f"10.0.{i}.1")
            sh("ip", "netns", "exec", hosts[h], "ethtool", "-K", host_if, "tx", "off", check=False)
            self.ifs[h] = fwd_if
        # zebra's interfaces to the BGP peer: the subnets of ports h2 and h3.
        for i in (2, 3):
            self.veth(f"rc{i}", r, f"pc{i}", p)
            sh("ip", "-n", r, "addr", "add", f"10.0.{i}.1/24", "dev", f"rc{i}")
            sh("ip", "-n", p, "addr", "add", f"10.0.{i}.2/24", "dev", f"pc{i}")

    def start_forwarder(self):
        text = (ROOT / "configs" / "frr.toml").read_text()
        for k, v in {"@PREFIX@": PREFIX, "@H1_IF@": self.ifs["h1"], "@H2_IF@": self.ifs["h2"], "@H3_IF@": self.ifs["h3"]}.items():
            check(k in text, f"configs/frr.toml no longer has {k}; update ci/frr-test.py")
            text = text.replace(k, v)
        cfg = self.tmp / "frr.toml"
        cfg.write_text(text)
        self.report = self.tmp / "report.json"
        self.fwd_out = open(self.tmp / "dataplane.out", "w")
        self.fwd = subprocess.Popen(
            ["ip", "netns", "exec", self.ns["r"], self.binary, "--config", str(cfg), "--stats-interval", "0",
             "--stats-json", str(self.report)],
            stdout=self.fwd_out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.tel = Telemetry(PREFIX)

    def start_frr(self):
        self.r = frr.Instance("r", self.ns["r"], self.tmp / "frr-r")
        for d in ("zebra", "staticd", "bgpd"):
            self.r.configure(d, (FRR_CONFIGS / f"{d}.conf").read_text())
        self.r.start()
        self.p = frr.Instance("p", self.ns["p"], self.tmp / "frr-p")
        self.p.configure("zebra", "hostname peer\n")
        self.p.configure("bgpd", (FRR_CONFIGS / "peer-bgpd.conf").read_text())

    def fpm(self):
        return self.tel.get("/dataplane/fpm")

    def stop_forwarder(self):
        """SIGINT, wait for the clean exit, return (exit status, report)."""
        if self.tel:
            self.tel.close()
            self.tel = None
        self.fwd.send_signal(signal.SIGINT)
        try:
            rc = self.fwd.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.fwd.kill()
            rc = self.fwd.wait()
        self.fwd = None
        report = json.loads(self.report.read_text()) if self.report.exists() else None
        return rc, report

    def close(self):
        for inst in (self.r, self.p):
            if inst:
                inst.close()
        if self.tel:
            self.tel.close()
        if self.fwd and self.fwd.poll() is None:
            self.fwd.send_signal(signal.SIGINT)
            try:
                self.fwd.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.fwd.kill()
                self.fwd.wait()
        for ns in self.namespaces:
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                sh("kill", "-KILL", pid, check=False)
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(f"/var/run/dpdk/{PREFIX}", ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


def wait_for(what, cond, timeout):
    """Polls cond() until it returns a true value; returns (value, seconds it took)."""
    start = time.monotonic()
    while True:
        v = cond()
        if v:
            return v, time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise Fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def by_origin(s, origin):
    return s.get("routes_by_protocol", {}).get(origin, 0)


def fpm_until(st, what, pred, timeout):
    """Polls /dataplane/fpm until pred(status) holds; returns (status, seconds it took). The
    section is empty until the forwarder first publishes it."""
    return wait_for(what, lambda: (lambda s: s if s and pred(s) else None)(st.fpm()), timeout)


def run_checks(st):
    fpm = st.fpm
    # zebra connects 3 s after it starts and replays: connected routes (origin kernel) and
    # staticd's ECMP route.
    s, t = fpm_until(st, "zebra's first session and its replay",
                     lambda s: s["connected"] == "true" and by_origin(s, "static") >= 1 and by_origin(s, "kernel") >= 2, 20)
    log(f"zebra connected from {s['peer']}; replay: {s['routes']} routes {s['routes_by_protocol']} ({t:.1f} s after its start)")
    base_static = by_origin(s, "static")

    # staticd, typed into vtysh.
    t0 = time.monotonic()
    st.r.vtysh("conf t", "ip route 10.9.0.0/16 10.0.2.2")
    _, t = wait_for("10.9.0.0/16 from staticd", lambda: by_origin(fpm(), "static") == base_static + 1, 10)
    log(f"static: ip route 10.9.0.0/16 10.0.2.2 reached the forwarder {1000 * (time.monotonic() - t0):.0f} ms after vtysh was started")
    st.r.vtysh("conf t", "no ip route 10.9.0.0/16 10.0.2.2")
    wait_for("10.9.0.0/16 removed", lambda: by_origin(fpm(), "static") == base_static, 10)
    log("static: no ip route 10.9.0.0/16 10.0.2.2 removed it")

    # BGP: the peer announces 198.51.100.0/24.
    st.p.start(daemons=("zebra", "bgpd"))
    _, t = wait_for("198.51.100.0/24 from BGP", lambda: by_origin(fpm(), "bgp") == 1, 40)
    log(f"bgp: 198.51.100.0/24 learned {t:.1f} s after the peer started")
    st.p.vtysh("conf t", "router bgp 65002", "address-family ipv4 unicast", "no network 198.51.100.0/24")
    _, t = wait_for("the withdraw", lambda: by_origin(fpm(), "bgp") == 0, 15)
    log(f"bgp: withdrawn by the peer -> forgotten in {t:.1f} s")
    st.p.vtysh("conf t", "router bgp 65002", "address-family ipv4 unicast", "network 198.51.100.0/24")
    wait_for("the re-announce", lambda: by_origin(fpm(), "bgp") == 1, 15)
    st.p.stop(daemons=("bgpd",))
    _, t = wait_for("the session drop", lambda: by_origin(fpm(), "bgp") == 0, 15)
    log(f"bgp: peer's bgpd stopped (session drop) -> forgotten in {t:.1f} s")
    st.p.start(daemons=("bgpd",))
    wait_for("BGP again", lambda: by_origin(fpm(), "bgp") == 1, 40)

    # zebra restart: a route typed into vtysh (lost with the restart) must be swept; the rest
    # comes back without being installed twice.
    st.r.vtysh("conf t", "ip route 10.77.0.0/16 10.0.3.2")
    before, _ = fpm_until(st, "10.77.0.0/16", lambda s: by_origin(s, "static") == base_static + 1, 10)
    st.r.stop(zebra_first=True)
    down, _ = fpm_until(st, "the session to end", lambda s: s["connected"] == "false", 10)
    check(down["routes"] == before["routes"], f"routes changed while FRR was down: {before['routes']} -> {down['routes']}")
    log(f"restart: zebra, staticd, bgpd stopped; the forwarder keeps its {down['routes']} routes")
    st.r.start()
    after, t = fpm_until(st, "the sweep after the replay", lambda s: s["sweeps"] > before["sweeps"] and by_origin(s, "bgp") == 1, 60)
    check(after["swept"] == before["swept"] + 1, f"expected exactly 10.77.0.0/16 swept: {before['swept']} -> {after['swept']}")
    check(after["routes"] == before["routes"] - 1, f"routes after the restart: {after['routes']}, expected {before['routes'] - 1}")
    check(after["sessions"] == before["sessions"] + 1, f"sessions {before['sessions']} -> {after['sessions']}")
    reinstalled = after["upserts"] - before["upserts"]
    replayed = after["unchanged"] - before["unchanged"]
    log(f"restart: replayed {replayed} routes unchanged, {reinstalled} re-installed, swept {after['swept'] - before['swept']} (10.77.0.0/16); {t:.1f} s from start to sweep")
    # A replayed route is installed again only if it differs from the one held: here that can
    # be zebra's connected fe80::/64, whose interface it picks anew after a restart.
    check(reinstalled <= 1, f"{reinstalled} routes installed again after the restart (duplicates?)")
    return after


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=str(ROOT / "target" / "debug" / "dataplane"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespaces, FRR daemons)")
        return 77
    why = frr.install()
    if why:
        print(f"SKIP: {why}")
        return 77
    if not Path(args.bin).exists():
        log(f"FAIL: no binary at {args.bin}")
        return 1
    log(f"{frr.version()}, zebra -M {frr.FPM_MODULE}, configs/frr as shipped")
    st = Setup(args.bin)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    started = time.monotonic()
    try:
        try:
            st.build()
        except PermissionError as e:
            print(f"SKIP: {e}")
            return 77
        st.start_forwarder()
        st.start_frr()
        final = run_checks(st)
        rc, report = st.stop_forwarder()
        check(rc == 0, f"the forwarder exited {rc}")
        check(report and report["clean"], f"unclean exit: {report and report['errors']}")
        check(report["fpm"]["routes"] == final["routes"], "the report's fpm section disagrees with telemetry")
        check(report["fpm"]["session_errors"] == 0, f"session errors: {report['fpm']['last_error']}")
        log(f"PASS ({time.monotonic() - started:.0f} s)")
        return 0
    except (Fail, RuntimeError, KeyError, OSError, ValueError) as e:
        log(f"FAIL: {e!r}")
        out = st.tmp / "dataplane.out"
        if out.exists():
            print(out.read_text()[-3000:])
        return 1
    finally:
        st.close()


if __name__ == "__main__":
    sys.exit(main())
