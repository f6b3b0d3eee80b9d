"""Linux hosts in network namespaces, for the VM tests (ci/e1000-test.py, ci/vhost-test.py).

`Namespace` creates one (`ip netns add`) and, on close, kills what still runs in it and
deletes it (with its interfaces); `ping()` and `iperf3()` run the real tools in it and
return what they measured. Only names the caller chose are ever touched.
"""

import json
import re
import subprocess
import time


def run(cmd, check=True, **kw):
    """Runs cmd (a list), returning its CompletedProcess with text output."""
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {(r.stderr or r.stdout).strip()}")
    return r


class Namespace:
    """A network namespace holding one host interface (named `ifname` once set up)."""

    def __init__(self, name):
        self.name = name
        self.ifname = None
        r = run(["ip", "netns", "add", name], check=False)
        if r.returncode != 0:
            raise PermissionError(f"ip netns add {name}: {r.stderr.strip()}")
        self.procs = []

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        pids = run(["ip", "netns", "pids", self.name], check=False).stdout.split()
        for pid in pids:
            run(["kill", "-KILL", pid], check=False)
        run(["ip", "netns", "del", self.name], check=False)

    def exec(self, cmd, check=True, **kw):
        return run(["ip", "netns", "exec", self.name, *cmd], check=check, **kw)

    def spawn(self, cmd, **kw):
        """A background process in the namespace, killed on close."""
        p = subprocess.Popen(["ip", "netns", "exec", self.name, *cmd], stdin=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    def adopt(self, ifname, mac, ipv4, ipv6, gw4, gw6):
        """Moves ifname (a tap or veth end in the root namespace) in and makes it this host's
        only interface: MAC, addresses (no DAD), default routes via gw4/gw6, TX checksum
        offload off (a partial checksum would not survive af_packet or an emulated NIC)."""
        run(["ip", "link", "set", ifname, "netns", self.name])
        self.configure(ifname, mac, ipv4, ipv6, gw4, gw6)

    def configure(self, ifname, mac, ipv4, ipv6, gw4, gw6):
        n = ["ip", "-n", self.name]
        run(n + ["link", "set", "lo", "up"])
        if mac:
            run(n + ["link", "set", ifname, "address", mac])
        run(n + ["link", "set", ifname, "up"])
        run(n + ["addr", "add", ipv4, "dev", ifname])
        run(n + ["-6", "addr", "add", ipv6, "dev", ifname, "nodad"])
        run(n + ["route", "add", "default", "via", gw4])
        run(n + ["-6", "route", "add", "default", "via", gw6])
        self.exec(["ethtool", "-K", ifname, "tx", "off"], check=False)
        self.ifname = ifname

    def mac(self):
        link = json.loads(run(["ip", "-n", self.name, "-j", "link", "show", "dev", self.ifname]).stdout)
        return link[0]["address"]

    def reaches(self, addr, timeout=1):
        """One echo request answered within timeout seconds."""
        return self.exec(["ping", "-c", "1", "-W", str(timeout), addr], check=False).returncode == 0

    def ping(self, addr, count=10, interval=0.2, wait=3):
        return ping_result(self.exec(["ping", "-c", str(count), "-i", str(interval), "-W", str(wait), addr], check=False))

    def iperf3_server(self, bind):
        """An iperf3 server on bind:5201, once it listens."""
        p = self.spawn(["iperf3", "-s", "-B", bind], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if re.search(r"\S+:5201\s", self.exec(["ss", "-ltnH"], check=False).stdout):
                return p
            time.sleep(0.1)
        raise RuntimeError(f"iperf3 server in {self.name} does not listen on {bind}:5201")


def ping_result(r):
    """(replies, TTL/hop limits seen, rtt avg ms or None, output) from iputils ping's output."""
    out = r.stdout + r.stderr
    ttls = sorted({int(t) for t in re.findall(r"ttl=(\d+)", out)})
    replies = len(re.findall(r"bytes from ", out))
    m = re.search(r"rtt min/avg/max/mdev = [\d.]+/([\d.]+)/", out)
    return replies, ttls, float(m.group(1)) if m else None, out


def iperf3_summary(text):
    """From `iperf3 -J` output: (bytes received, Mbit/s, retransmits), or raises with its error."""
    try:
        r = json.loads(text)
    except json.JSONDecodeError as e:
        raise RuntimeError(f"iperf3 printed no JSON: {text.strip()[-500:]}") from e
    if "error" in r:
        raise RuntimeError(f"iperf3: {r['error']}")
    e = r["end"]
    recv = e["sum_received"]
    return recv["bytes"], recv["bits_per_second"] / 1e6, e.get("sum_sent", {}).get("retransmits", 0)
