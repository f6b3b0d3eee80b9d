#!/usr/bin/env python3
"""FRR drives the forwarder: zebra's dplane_fpm_nl streams its routes to the [fpm] listener,
and Linux hosts' traffic is routed by them.

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
cannot resolve); in the data plane those addresses are the hosts h2 and h3, which the
forwarder resolves with ARP. The hosts h2 and h3 accept the routed prefixes as their own
(`ip route add local P dev lo`), so pings to them are answered.

Checked (routes read with `dataplane ctl --json show routes`, counters with `show workers` and
`show next-hops`, the FPM side over telemetry's /dataplane/fpm):
- zebra connects and replays: staticd's ECMP route 10.8.0.0/16 (via 10.0.2.2 and 10.0.3.2)
  is installed with both paths, origin static.
- staticd: `ip route 10.9.0.0/16 10.0.2.2` entered with vtysh reaches the forwarder (time
  printed); h1 pings 10.9.1.1 through it (TTL 63); `no ip route ...` removes it and the pings
  then count as no_route.
- interface mapping: `ip route 10.68.0.0/16 rc3` (no gateway) is installed on port h3, whose
  kernel_name is rc3, as an on-link route; h1 pings 10.68.0.1 through it.
- ECMP: 64 UDP flows from h1 to 10.8.0.1: every flow arrives whole at one of h2 and h3, both
  get flows, and the forwarder's per-next-hop counters account for every packet.
- BGP: the peer's 198.51.100.0/24 is learned (origin bgp) and routed; forgotten when the peer
  withdraws it (`no network`), learned again, forgotten when the peer's bgpd stops (session
  drop), learned again.
- zebra restart (zebra stopped, then staticd and bgpd, then all started again, as watchfrr
  restarts an instance whose zebra died; zebra sends no deletes): pings through the ECMP and
  the BGP route run all along and none is lost, no packet counts as no_route; afterwards the
  forwarder holds exactly the routes it held before, next hops and origins included, except
  the one route typed into vtysh (not in staticd.conf), which is swept after the replay.
- At the end the forwarder exits cleanly (pools full, counters add up) and its report holds
  the FPM counters with no session error.

Prints "frr-test: PASS ..." and exits 0, "FAIL" and 1, or "SKIP: ..." and 77 when FRR cannot be
installed or namespaces cannot be made. Everything it makes (namespaces with their veths, FRR
daemons stopped by PID, the forwarder, temp dirs, the EAL runtime dir, the control socket) is
removed on exit, failure, Ctrl-C or SIGTERM.
"""

import argparse
import json
import os
import re
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
CTL_SOCKET = f"/run/dataplane/{PREFIX}.sock"
FLOWS = 64
PACKETS_PER_FLOW = 4


def log(msg):
    print(f"frr-test: {msg}", flush=True)


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def sh(*cmd, check=True, **kw):
    return frr.run(list(cmd), check=check, **kw)


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


# Receives UDP on port 9999 until 1.5 s pass without a packet (after the first), or 15 s;
# prints {source port: packets} as JSON.
RECEIVER = r"""
import json, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999))
s.settimeout(0.1)
seen, last, start = {}, None, time.monotonic()
open(sys.argv[1], "w").close()
while time.monotonic() - start < 15 and (last is None or time.monotonic() - last < 1.5):
    try:
        _, (_, port) = s.recvfrom(2048)
    except socket.timeout:
        continue
    seen[port] = seen.get(port, 0) + 1
    last = time.monotonic()
print(json.dumps(seen))
"""

# Sends `packets` datagrams from each of `flows` source ports to DST:9999.
SENDER = r"""
import socket, sys, time
dst, flows, packets = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
socks = []
for i in range(flows):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 20000 + i))
    socks.append(s)
for _ in range(packets):
    for s in socks:
        s.sendto(b"flow", (dst, 9999))
    time.sleep(0.02)
"""


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
        # What the routed prefixes reach: h2 and h3 take them as their own addresses.
        for h, prefixes in {"h2": ["10.8.0.0/16", "10.9.0.0/16", "198.51.100.0/24"], "h3": ["10.8.0.0/16", "10.68.0.0/16"]}.items():
            for pfx in prefixes:
                sh("ip", "-n", hosts[h], "route", "add", "local", pfx, "dev", "lo")
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
        wait_for("the control socket", lambda: os.path.exists(CTL_SOCKET), 20)

    def start_frr(self):
        self.r = frr.Instance("r", self.ns["r"], self.tmp / "frr-r")
        for d in ("zebra", "staticd", "bgpd"):
            self.r.configure(d, (FRR_CONFIGS / f"{d}.conf").read_text())
        self.r.start()
        self.p = frr.Instance("p", self.ns["p"], self.tmp / "frr-p")
        self.p.configure("zebra", "hostname peer\n")
        self.p.configure("bgpd", (FRR_CONFIGS / "peer-bgpd.conf").read_text())

    def ctl(self, *args):
        r = sh("ip", "netns", "exec", self.ns["r"], self.binary, "ctl", "--socket", CTL_SOCKET, "--json", *args)
        return json.loads(r.stdout)

    def routes(self):
        """The forwarder's routes: {prefix: (origin, paths)}, paths as sorted (dev, via, weight)
        with via the gateway's address (resolved by the neighbour table) or "on-link", `drop`
        for a route that drops."""
        out = {}
        for x in self.ctl("show", "routes")["routes"]:
            if x.get("drop"):
                paths = "drop"
            elif x.get("paths"):
                paths = tuple(sorted((p["port"], via(p), p["weight"]) for p in x["paths"]))
            else:
                paths = ((x["port"], via(x), 1),)
            out[x["prefix"]] = (x["origin"], paths)
        return out

    def no_route(self):
        return sum(w.get("drops", {}).get("no_route", 0) for w in self.ctl("show", "workers").values() if isinstance(w, dict))

    def fpm(self):
        return self.tel.get("/dataplane/fpm")

    def ping(self, host, dst, count=3, interval=0.2, wait=1):
        r = sh("ip", "netns", "exec", self.ns[host], "ping", "-n", "-c", str(count), "-i", str(interval), "-W", str(wait), dst,
               check=False)
        replies = len(re.findall(r"bytes from ", r.stdout))
        ttls = sorted({int(t) for t in re.findall(r"ttl=(\d+)", r.stdout)})
        return replies, ttls

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
        Path(CTL_SOCKET).unlink(missing_ok=True)
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


def via(x):
    """How the API names a next hop: the gateway's address, a static MAC, or on-link."""
    return x.get("via") or x.get("via_mac") or "on-link"


def zebras(routes):
    """The routes zebra made (not config, ctl, connected or neighbour routes)."""
    return {p: r for p, r in routes.items() if r[0] not in ("config", "ctl", "connected", "neighbour")}


def route_is(st, prefix, pred, what, timeout=15):
    return wait_for(what, lambda: (lambda r: r if pred(r.get(prefix)) else None)(st.routes()), timeout)


def check_static(st):
    t0 = time.monotonic()
    st.r.vtysh("conf t", "ip route 10.9.0.0/16 10.0.2.2")
    routes, _ = route_is(st, "10.9.0.0/16", lambda r: r is not None, "10.9.0.0/16 from staticd")
    took = time.monotonic() - t0
    check(routes["10.9.0.0/16"][0] == "static" and routes["10.9.0.0/16"][1][0][0] == "h2",
          f"10.9.0.0/16: {routes['10.9.0.0/16']}")
    log(f"static: ip route 10.9.0.0/16 10.0.2.2 in the forwarder's table {1000 * took:.0f} ms after vtysh started "
        f"(origin static, via {routes['10.9.0.0/16'][1][0][1]} dev h2)")
    check(routes["10.9.0.0/16"][1][0][1] == "10.0.2.2", f"10.9.0.0/16 should name its gateway: {routes['10.9.0.0/16']}")
    replies, ttls = st.ping("h1", "10.9.1.1")
    check(replies == 3 and ttls == [63], f"ping 10.9.1.1 through the static route: {replies}/3 replies, TTLs {ttls}")
    # The gateway's MAC came from the forwarder's neighbour table (ARP on port h2), and is h2's.
    mac = json.loads(sh("ip", "-n", st.ns["h2"], "-j", "link", "show", "eth0").stdout)[0]["address"]
    neigh = [e for e in st.ctl("show", "neighbours")["entries"] if e["address"] == "10.0.2.2" and e["port"] == "h2"]
    check(neigh and neigh[0]["mac"] == mac and neigh[0]["state"] in ("REACHABLE", "STALE", "DELAY", "PROBE"),
          f"neighbour 10.0.2.2 on h2: {neigh}, h2's MAC {mac}")
    st.r.vtysh("conf t", "no ip route 10.9.0.0/16 10.0.2.2")
    route_is(st, "10.9.0.0/16", lambda r: r is None, "10.9.0.0/16 removed")
    before = st.no_route()
    replies, _ = st.ping("h1", "10.9.1.1", count=5, wait=1)
    dropped = st.no_route() - before
    check(replies == 0 and dropped >= 5, f"after no ip route: {replies} replies, no_route +{dropped}")
    log(f"static: h1 pinged 10.9.1.1 3/3 (TTL 63), gateway 10.0.2.2 resolved by the neighbour table "
        f"({neigh[0]['state']}, {mac}); after no ip route, 0/5 and no_route +{dropped}")


def check_interface_route(st):
    st.r.vtysh("conf t", "ip route 10.68.0.0/16 rc3")
    routes, _ = route_is(st, "10.68.0.0/16", lambda r: r is not None, "10.68.0.0/16 rc3")
    origin, paths = routes["10.68.0.0/16"]
    check(paths[0][0] == "h3", f"10.68.0.0/16 rc3 should leave by port h3 (kernel_name rc3): {routes['10.68.0.0/16']}")
    replies, ttls = st.ping("h1", "10.68.0.1")
    check(replies == 3, f"ping 10.68.0.1 through the interface route: {replies}/3")
    st.r.vtysh("conf t", "no ip route 10.68.0.0/16 rc3")
    route_is(st, "10.68.0.0/16", lambda r: r is None, "10.68.0.0/16 removed")
    log(f"interface: ip route 10.68.0.0/16 rc3 -> port h3 (kernel_name rc3), {paths[0][1]}; h1 pinged 10.68.0.1 3/3")


def check_ecmp(st):
    ns = st.ns
    hops_before = {(n["port"], via(n)): n["packets"] for n in st.ctl("show", "next-hops")["next_hops"]}
    outs = {}
    procs = {}
    for h in ("h2", "h3"):
        outs[h] = st.tmp / f"recv-{h}.json"
        procs[h] = subprocess.Popen(["ip", "netns", "exec", ns[h], "python3", "-c", RECEIVER, str(outs[h])],
                                    stdout=subprocess.PIPE, text=True)
    for h in ("h2", "h3"):
        wait_for(f"the receiver in {h}", lambda h=h: outs[h].exists(), 10)
    time.sleep(0.2)
    sh("ip", "netns", "exec", ns["h1"], "python3", "-c", SENDER, "10.8.0.1", str(FLOWS), str(PACKETS_PER_FLOW))
    got = {}
    for h, p in procs.items():
        out, _ = p.communicate(timeout=30)
        got[h] = {int(k): v for k, v in json.loads(out).items()}
    both = set(got["h2"]) & set(got["h3"])
    check(not both, f"flows split between h2 and h3: source ports {sorted(both)}")
    flows = {**got["h2"], **got["h3"]}
    check(len(flows) == FLOWS and all(n == PACKETS_PER_FLOW for n in flows.values()),
          f"{len(flows)} of {FLOWS} flows arrived, packets per flow {sorted(set(flows.values()))}")
    check(got["h2"] and got["h3"], f"all flows on one path: h2 {len(got['h2'])}, h3 {len(got['h3'])}")
    hops_after = {(n["port"], via(n)): n["packets"] for n in st.ctl("show", "next-hops")["next_hops"]}
    # The group's members: the next hops to 10.0.2.2 on h2 and to 10.0.3.2 on h3.
    members = {"h2": ("h2", "10.0.2.2"), "h3": ("h3", "10.0.3.2")}
    routed = {h: hops_after.get(k, 0) - hops_before.get(k, 0) for h, k in members.items()}
    for h in ("h2", "h3"):
        check(routed.get(h, 0) >= sum(got[h].values()),
              f"next-hop counter for {h}: {routed.get(h, 0)} < {sum(got[h].values())} packets received there")
    groups = st.ctl("show", "next-hops")["ecmp_groups"]
    log(f"ecmp: {FLOWS} flows x {PACKETS_PER_FLOW} packets to 10.8.0.1: h2 got {len(got['h2'])} flows, "
        f"h3 {len(got['h3'])}, none split; per-next-hop counters h2 +{routed.get('h2', 0)} h3 +{routed.get('h3', 0)}; "
        f"{len(groups)} ECMP group(s), buckets {[m['buckets'] for g in groups for m in g['members']]}")


def check_bgp(st):
    bgp = "198.51.100.0/24"
    st.p.start(daemons=("zebra", "bgpd"))
    routes, t = route_is(st, bgp, lambda r: r is not None and r[0] == "bgp", "198.51.100.0/24 from BGP", 40)
    replies, ttls = st.ping("h1", "198.51.100.1")
    check(replies == 3 and ttls == [63], f"ping through the BGP route: {replies}/3, TTLs {ttls}")
    log(f"bgp: 198.51.100.0/24 learned {t:.1f} s after the peer started (origin bgp, {routes[bgp][1][0][0]}); "
        "h1 pinged 198.51.100.1 3/3")
    st.p.vtysh("conf t", "router bgp 65002", "address-family ipv4 unicast", "no network 198.51.100.0/24")
    _, t = route_is(st, bgp, lambda r: r is None, "the withdraw")
    replies, _ = st.ping("h1", "198.51.100.1", count=2)
    check(replies == 0, f"{replies} replies after the withdraw")
    log(f"bgp: withdrawn by the peer -> gone in {t:.1f} s, pings unanswered")
    st.p.vtysh("conf t", "router bgp 65002", "address-family ipv4 unicast", "network 198.51.100.0/24")
    route_is(st, bgp, lambda r: r is not None, "the re-announce")
    st.p.stop(daemons=("bgpd",))
    _, t = route_is(st, bgp, lambda r: r is None, "the session drop")
    log(f"bgp: peer's bgpd stopped (session drop) -> gone in {t:.1f} s")
    st.p.start(daemons=("bgpd",))
    route_is(st, bgp, lambda r: r is not None, "BGP again", 40)


def check_restart(st):
    st.r.vtysh("conf t", "ip route 10.77.0.0/16 10.0.3.2")
    route_is(st, "10.77.0.0/16", lambda r: r is not None, "10.77.0.0/16")
    before = zebras(st.routes())
    fpm0 = st.fpm()
    no_route0 = st.no_route()
    # Pings through the ECMP route and the BGP route for the whole restart.
    pingers = [subprocess.Popen(["ip", "netns", "exec", st.ns["h1"], "ping", "-n", "-i", "0.05", "-W", "1", dst],
                                stdout=subprocess.PIPE, text=True) for dst in ("10.8.0.1", "198.51.100.1")]
    time.sleep(0.5)
    st.r.stop(zebra_first=True)
    down, _ = wait_for("the session to end", lambda: (lambda s: s if s.get("connected") == "false" else None)(st.fpm()), 10)
    check(zebras(st.routes()) == before, "the routes changed while FRR was down")
    restarted = time.monotonic()
    st.r.start()
    after, t = wait_for("the sweep after the replay",
                        lambda: (lambda s: s if s["sweeps"] > fpm0["sweeps"] else None)(st.fpm()), 60)
    time.sleep(0.5)
    for p in pingers:
        p.send_signal(signal.SIGINT)
    stats = [p.communicate(timeout=10)[0] for p in pingers]
    sent_got = [tuple(int(x) for x in re.search(r"(\d+) packets transmitted, (\d+) received", s).groups()) for s in stats]
    no_route = st.no_route() - no_route0
    now = zebras(st.routes())
    expected = {p: r for p, r in before.items() if p != "10.77.0.0/16"}
    check(now == expected, f"after the restart the routes differ: missing {set(expected) - set(now)}, "
          f"extra {set(now) - set(expected)}, changed {[p for p in now if p in expected and now[p] != expected[p]]}")
    check(after["swept"] - fpm0["swept"] == 1, f"swept {after['swept'] - fpm0['swept']} routes, expected 10.77.0.0/16 only")
    check(after["session_errors"] == 0, f"session errors: {after['last_error']}")
    lost = [s - g for s, g in sent_got]
    check(all(x == 0 for x in lost) and no_route == 0,
          f"forwarding stopped during the restart: pings lost {lost} of {[s for s, _ in sent_got]}, no_route +{no_route}")
    replayed = after["unchanged"] - fpm0["unchanged"]
    reinstalled = after["upserts"] - fpm0["upserts"]
    log(f"restart: zebra, staticd, bgpd stopped and started; {len(now)} routes back exactly as before, "
        f"{replayed} replayed unchanged, {reinstalled} changed (zebra's connected routes are not installed), "
        f"10.77.0.0/16 swept {t:.1f} s after zebra restarted; pings through 10.8.0.0/16 and 198.51.100.0/24: "
        f"{sent_got[0][1]}/{sent_got[0][0]} and {sent_got[1][1]}/{sent_got[1][0]} answered, no_route +0")
    _ = restarted, down
    return after


def run_checks(st):
    s, t = wait_for("zebra's first session and the ECMP route",
                    lambda: (lambda r: r if r.get("10.8.0.0/16", (None, ()))[1] and len(r["10.8.0.0/16"][1]) == 2 else None)(
                        st.routes()), 20)
    # /dataplane/fpm is published about once a second: wait for it to show the session.
    fpm, _ = wait_for("/dataplane/fpm to show the session",
                      lambda: (lambda f: f if f and f.get("connected") == "true" and f.get("fib") not in (None, "null") else None)(st.fpm()), 10)
    log(f"zebra connected from {fpm['peer']}; {len(zebras(s))} routes of zebra's installed "
        f"{json.dumps(fpm.get('fib'))}; 10.8.0.0/16 ECMP {s['10.8.0.0/16']} ({t:.1f} s)")
    check_static(st)
    check_interface_route(st)
    check_ecmp(st)
    check_bgp(st)
    return check_restart(st)


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
        for lcore, w in report["softnet"].items():
            ins, outs = w["processed"] + w["injected"] + w["mirrored"], w["tx_packets"] + w["dropped"] + w["punted"]
            check(ins == outs, f"{lcore}: processed + injected + mirrored = {ins} != tx + dropped + punted = {outs}")
        check(report["fpm"]["routes"] == final["routes"], "the report's fpm section disagrees with telemetry")
        check(report["fpm"]["session_errors"] == 0, f"session errors: {report['fpm']['last_error']}")
        log(f"PASS ({time.monotonic() - started:.0f} s)")
        return 0
    except (Fail, RuntimeError, KeyError, OSError, ValueError, subprocess.TimeoutExpired) as e:
        log(f"FAIL: {e!r}")
        out = st.tmp / "dataplane.out"
        if out.exists():
            print(out.read_text()[-4000:])
        return 1
    finally:
        st.close()


if __name__ == "__main__":
    sys.exit(main())
