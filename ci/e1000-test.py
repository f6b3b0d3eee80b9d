#!/usr/bin/env python3
"""The forwarder on emulated Intel NICs through DPDK's real e1000 PMD, in a QEMU guest.

    ci/e1000-test.py [--bin PATH] [--variants e1000,e1000e]     # as root

One guest (ci/guest.py) gets two NICs per variant: `-device e1000` (82540EM, 8086:100e) at the
PCI addresses of configs/e1000.toml, and `-device e1000e` (82574L, 8086:10d3) two slots
further. Each NIC's back end is a tap that QEMU creates and this script then moves into a
network namespace of its own, where it is a Linux host's only interface:

    h1 (netns PREFIX-VARIANT-h1)            guest: dataplane, l3fwd          h2 (netns ...-h2)
    tap 10.0.1.2/24 2001:db8:1::2/64 == [eth0 e1000]        [eth1 e1000] == tap 10.0.2.2/24 ...
        default via 10.0.1.1 / 2001:db8:1::1                                  default via 10.0.2.1

The hosts' addresses come from the config's port addresses (the port's address + 1, the port's
address as gateway); their MACs are their own, and the forwarder resolves them (the config names
no host MAC): the config is used as shipped, with only the PCI addresses substituted for the
e1000e pair. In the guest, ci/e1000-guest.sh
binds each variant's NICs to uio_pci_generic (sysfs driver_override) and runs the forwarder.

Checked first, on the first variant's NICs: a copy of the config asking Multi-Packet RQ
(rx_buffer = "multi_packet") is refused once EAL has probed them, naming the driver, exit 1.
Then for each variant: both hosts get echo replies from the forwarder over IPv4 and IPv6
(ARP/ND answered); ping and ping -6 from h1 to h2, every reply at TTL 63 (one hop); an iperf3
TCP stream h1 -> h2 for IPERF_SECONDS; then the forwarder is stopped and its --stats-json must
show: exit 0, clean, every pool full, driver net_e1000_em and link up on both ports, the
per_packet RX buffer model, the device's packet counters equal to the forwarder's, each port's
counts above what ping and iperf3 sent, and processed + injected + mirrored = tx + dropped +
punted. Prints "e1000-test: PASS ..." and exits 0, or "FAIL" and 1; "SKIP: ..." and 77 only
when QEMU cannot start at all or network namespaces cannot be made.

Everything it makes (the guest, its taps, the namespaces and what runs in them, the share under
target/guest/) is removed on exit, failure, Ctrl-C or SIGTERM. Takes 40-90 s under TCG on a
loaded 2-core machine.
"""

import argparse
import contextlib
import ipaddress
import json
import os
import re
import sys
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import guest  # noqa: E402
import hosts  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "e1000.toml"
# QEMU device model for each variant; the second pair sits two PCI slots after the first.
MODELS = {"e1000": "e1000", "e1000e": "e1000e"}
DRIVER = "net_e1000_em"


def log(msg):
    print(f"e1000-test: {msg}", flush=True)


class Failed(Exception):
    pass


def pci_slot(addr):
    m = re.fullmatch(r"0000:00:([0-9a-f]{2})\.0", addr)
    if not m:
        raise SystemExit(f"e1000-test: {CONFIG}: device {addr!r} is not on bus 0 function 0; cannot place an emulated NIC there")
    return int(m.group(1), 16)


def topology(cfg):
    """Per config port: name, PCI slot, and its host's MAC, addresses and gateways."""
    ports = []
    for p in cfg["port"]:
        own4 = ipaddress.ip_interface(p["ipv4"])
        own6 = ipaddress.ip_interface(p["ipv6"])
        host4 = ipaddress.ip_interface(f"{own4.ip + 1}/{own4.network.prefixlen}")
        host6 = ipaddress.ip_interface(f"{own6.ip + 1}/{own6.network.prefixlen}")
        # The forwarder resolves the hosts (ARP, neighbour discovery): each keeps its own MAC,
        # which appears nowhere in the config.
        mac = None
        ports.append({"name": p["name"], "device": p["device"], "slot": pci_slot(p["device"]), "mac": mac,
                      "ipv4": str(host4), "ipv6": str(host6), "gw4": str(own4.ip), "gw6": str(own6.ip)})  # fmt: skip
    if len(ports) != 2:
        raise SystemExit(f"e1000-test: {CONFIG} must have exactly two ports")
    return ports


def default_bin():
    for b in (ROOT / "target" / "release" / "dataplane", ROOT / "target" / "debug" / "dataplane"):
        if b.exists():
            return b
    raise SystemExit("e1000-test: FAIL: no dataplane binary (give --bin, or cargo build)")


def peak_rate(out_text):
    """The highest per-interval RX rate in the forwarder's stats lines, in packets/s."""
    rates = [float(x) for x in re.findall(r"^\s*[\d.]+s\s+rx\s+([\d.]+) Mpps", out_text, re.M)]
    return max(rates, default=0.0) * 1e6


def check_report(variant, share, pings, segments, ports):
    """The forwarder's exit and --stats-json account for the traffic; returns a summary line."""
    bad = []
    exit_status = int((share / f"{variant}.exit").read_text())
    if exit_status != 0:
        bad.append(f"the forwarder exited {exit_status}")
    r = json.loads((share / f"{variant}.json").read_text())
    if not r["clean"] or r["errors"]:
        bad.append(f"not clean: {r['errors']}")
    for name, p in r["pools"].items():
        if p["in_use"] != 0:
            bad.append(f"pool {name}: {p['in_use']} mbufs in use at exit")
    st = r["stats"]
    pstats = st["ports"]
    for p in ports:
        s = pstats[p["name"]]
        if s["driver"] != DRIVER:
            bad.append(f"port {p['name']}: driver {s['driver']}, expected {DRIVER}")
        link = s.get("link", {})
        if not link.get("up"):
            bad.append(f"port {p['name']}: link {link.get('text', 'not reported')}")
        if s.get("rx_buffer") != "per_packet":
            bad.append(f"port {p['name']}: rx_buffer {s.get('rx_buffer')}, expected per_packet")
        # What the NIC counted is what the forwarder saw: nothing missed, nothing lost.
        if s["ipackets"] != s["rx_packets"] or s["opackets"] != s["tx_packets"]:
            bad.append(f"port {p['name']}: device ipackets {s['ipackets']} opackets {s['opackets']} != "
                       f"forwarder rx {s['rx_packets']} tx {s['tx_packets']}")  # fmt: skip
        for key in ("imissed", "ierrors", "oerrors", "rx_nombuf"):
            if s[key]:
                bad.append(f"port {p['name']}: {key} {s[key]}")
    first, second = ports[0]["name"], ports[1]["name"]
    # h1 sends the data segments and both families' echo requests; h2 the replies and ACKs.
    need = segments + 2 * pings
    if pstats[first]["rx_packets"] < need:
        bad.append(f"port {first}: rx_packets {pstats[first]['rx_packets']} < {need} (iperf3 segments + pings)")
    if pstats[second]["tx_packets"] < need:
        bad.append(f"port {second}: tx_packets {pstats[second]['tx_packets']} < {need}")
    for name in (first, second):
        if pstats[name]["tx_packets"] < 2 * pings or pstats[name]["rx_packets"] < 2 * pings:
            bad.append(f"port {name}: rx/tx below the {2 * pings} echo requests and replies")
    sn = r["softnet"].values()
    punted, injected, mirrored = (sum(w[k] for w in sn) for k in ("punted", "injected", "mirrored"))
    if st["rx_packets"] + injected + mirrored != st["tx_packets"] + st["dropped"] + punted:
        bad.append(f"processed {st['rx_packets']} + injected {injected} + mirrored {mirrored} != "
                   f"tx {st['tx_packets']} + dropped {st['dropped']} + punted {punted}")  # fmt: skip
    if punted == 0 or (r.get("slow_path") or {}).get("answered", 0) == 0:
        bad.append("the slow path answered nothing (ARP/ND and pings to the forwarder)")
    drops = ", ".join(f"{k} {v}" for k, v in st["drops"].items() if v) or "none"
    summary = (f"{first} rx {pstats[first]['rx_packets']} tx {pstats[first]['tx_packets']} | "
               f"{second} rx {pstats[second]['rx_packets']} tx {pstats[second]['tx_packets']} | "
               f"punted {punted} injected {injected} | dropped {st['dropped']} ({drops}) | "
               f"pools full, exit {exit_status}")  # fmt: skip
    if bad:
        raise Failed("; ".join(bad) + f" [{summary}]")
    return summary


def run_variant(variant, g, share, nss, ports, a, deadline):
    h1, h2 = nss
    say = lambda m: print(f"e1000-test[{variant}]: {m}", flush=True)  # noqa: E731
    exit_file = share / f"{variant}.exit"
    out_file = share / f"{variant}.out"

    def forwarder_output():
        return out_file.read_text(errors="replace") if out_file.exists() else "(no output)"

    refused = share / f"{variant}.refuse.exit"
    if (share / f"{variant}.refuse.toml").exists():
        while not refused.exists():
            if not g.running() or time.monotonic() > deadline:
                raise Failed("the guest never ran the multi_packet config")
            time.sleep(0.2)
        out = (share / f"{variant}.refuse.out").read_text(errors="replace")
        want = f'rx_buffer = "multi_packet" needs the mlx5 driver (Multi-Packet RQ), but the device\'s driver is {DRIVER}'
        if refused.read_text().strip() != "1" or want not in out:
            raise Failed(f"rx_buffer = multi_packet on {DRIVER}: expected exit 1 and {want!r}, got exit "
                         f"{refused.read_text().strip()}:\n{out}")  # fmt: skip
        say(f"rx_buffer = multi_packet refused after probing: {want}")
    # The forwarder is up once both hosts get an echo reply from it (ARP first).
    while not (h1.reaches(ports[0]["gw4"]) and h2.reaches(ports[1]["gw4"])):
        if exit_file.exists() or not g.running():
            raise Failed(f"the forwarder ended before answering:\n{forwarder_output()}")
        if time.monotonic() > deadline:
            raise Failed(f"no echo reply from the forwarder's addresses in time:\n{forwarder_output()}")
        time.sleep(0.5)
    say(f"the forwarder answers ARP and ping on both ports ({time.monotonic() - g.started:.0f} s after QEMU started)")
    for ns, p in ((h1, ports[0]), (h2, ports[1])):
        if not ns.reaches(p["gw6"], timeout=3):
            raise Failed(f"{ns.name}: no ping -6 reply from the forwarder's {p['gw6']}")
    say("the forwarder answers neighbour solicitations and ping -6 on both ports")
    rtts = []
    for dst in (ports[1]["ipv4"].split("/")[0], ports[1]["ipv6"].split("/")[0]):
        replies, ttls, rtt, out = h1.ping(dst, count=a.pings)
        if replies != a.pings or ttls != [63]:
            raise Failed(f"ping h1 -> {dst}: {replies}/{a.pings} replies, TTLs {ttls} (one hop: 63):\n{out}")
        say(f"ping h1 -> {dst}: {replies}/{a.pings} replies, ttl=63, rtt avg {rtt} ms")
        rtts.append(rtt)
    h2_addr = ports[1]["ipv4"].split("/")[0]
    server = h2.iperf3_server(h2_addr)
    r = h1.exec(["iperf3", "-c", h2_addr, "-t", str(a.iperf_seconds), "-J"], check=False, timeout=a.iperf_seconds + 60)
    server.kill()
    got, mbits, retrans = hosts.iperf3_summary(r.stdout)
    # Every byte the server received crossed the forwarder in segments of at most 1448 bytes
    # (MTU 1500, timestamps on, no TSO on a tap without offloads): a lower bound on packets.
    segments = got // 1448
    if got < 64 * 1024:
        raise Failed(f"iperf3 h1 -> h2: only {got} bytes received")
    say(f"iperf3 TCP h1 -> h2 for {a.iperf_seconds} s: {mbits:.1f} Mbit/s, {got} bytes (>= {segments} segments, "
        f"~{segments / a.iperf_seconds:.0f} segments/s), {retrans} retransmits")  # fmt: skip
    (share / f"{variant}.stop").touch()
    for _ in range(600):
        # The guest's `echo $rc >FILE` creates the file before it writes the number: wait
        # for the number (a read in between saw an empty file).
        if exit_file.exists() and exit_file.read_text().strip():
            break
        if not g.running():
            raise Failed("the guest ended before the forwarder reported its exit")
        time.sleep(0.2)
    else:
        raise Failed("the forwarder did not exit within 120 s of SIGINT")
    out = forwarder_output()
    report = out[out.find("--- dataplane report"):] if "--- dataplane report" in out else out[-3000:]
    for line in out.splitlines():
        if "Link" in line and "(port" in line:
            say(f"forwarder: {line.strip()}")
    try:
        summary = check_report(variant, share, a.pings, segments, ports)
    except Failed:
        print(report, flush=True)
        raise
    peak = peak_rate(out)
    say(f"counters: {summary}")
    return (f"{variant}: ping rtt avg {rtts[0]}/{rtts[1]} ms (v4/v6), iperf3 {mbits:.1f} Mbit/s, "
            f"peak {peak / 1e3:.1f} kpps through the forwarder")  # fmt: skip


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))  # fmt: skip
    ap.add_argument("--bin", type=Path, help="the dataplane binary (default: target/release, else target/debug)")
    ap.add_argument("--variants", default="e1000,e1000e", help="comma-separated: e1000, e1000e (default both)")
    ap.add_argument("--prefix", default=f"dp{os.getpid() % 100000}", help="names of taps and namespaces start with this (<= 8 chars)")
    ap.add_argument("--pings", type=int, default=10)
    ap.add_argument("--iperf-seconds", type=int, default=int(os.environ.get("IPERF_SECONDS", 3)))
    ap.add_argument("--timeout", type=int, default=600, help="bound on the whole guest run, seconds (default 600)")
    ap.add_argument("--accel", choices=["auto", "kvm", "tcg"], default=os.environ.get("DP_GUEST_ACCEL", "auto"))
    a = ap.parse_args()
    variants = a.variants.split(",")
    for v in variants:
        if v not in MODELS:
            ap.error(f"unknown variant {v!r} (e1000, e1000e)")
    if len(a.prefix) > 8:
        ap.error("--prefix: at most 8 characters (tap names are limited to 15)")
    binary = (a.bin or default_bin()).resolve()
    guest.sigterm_as_exit()
    text = CONFIG.read_text()
    ports = topology(tomllib.loads(text))
    started = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            try:
                prepared = guest.prepare(a.accel)
            except guest.Skip as e:
                print(f"SKIP: {e}", flush=True)
                return guest.SKIP
            qemu_args, specs, nets = [], [], {}
            for vi, v in enumerate(variants):
                addrs, nss = [], []
                for pi, p in enumerate(ports):
                    slot = p["slot"] + 2 * vi
                    addr = f"0000:00:{slot:02x}.0"
                    tap = f"{a.prefix}t{vi}{pi}"
                    qemu_args += ["-netdev", f"tap,id=n{vi}{pi},ifname={tap},script=no,downscript=no",
                                  "-device", f"{MODELS[v]},netdev=n{vi}{pi},addr={slot:#x},mac=52:54:00:00:{vi + 1:02x}:{pi + 1:02x}",
                                  ]  # fmt: skip
                    addrs.append(addr)
                    try:
                        ns = hosts.Namespace(f"{a.prefix}-{v}-h{pi + 1}")
                    except PermissionError as e:
                        print(f"SKIP: cannot create network namespaces here ({e})", flush=True)
                        return guest.SKIP
                    stack.callback(ns.close)
                    nss.append((ns, tap))
                specs.append(f"{v}:{','.join(addrs)}")
                nets[v] = (nss, addrs)
            g = stack.enter_context(guest.Guest(
                ["sh", str(ROOT / "ci" / "e1000-guest.sh"), str(binary), *specs],
                mem=1536, smp=2, hugepages=256, timeout=a.timeout, accel=a.accel,
                qemu_args=qemu_args, name=f"{a.prefix}-e1000", cwd=ROOT,
            ))  # fmt: skip
            share = g.share
            for v in variants:
                cfg = text
                for p, addr in zip(ports, nets[v][1]):
                    cfg = cfg.replace(f'"{p["device"]}"', f'"{addr}"')
                (share / f"{v}.toml").write_text(cfg)
                if v == variants[0]:
                    # Multi-Packet RQ asked of an e1000 port: refused after EAL probed it.
                    refuse = cfg.replace('rx_buffer = "per_packet"', 'rx_buffer = "multi_packet"', 1)
                    (share / f"{v}.refuse.toml").write_text(refuse)
            g.start()
            # QEMU creates the taps in this namespace; move each into its host's namespace.
            for v in variants:
                for (ns, tap), p in zip(nets[v][0], ports):
                    for _ in range(300):
                        if hosts.run(["ip", "link", "show", tap], check=False).returncode == 0 or not g.running():
                            break
                        time.sleep(0.1)
                    if not g.running():
                        raise Failed(f"QEMU exited: {(g.control / 'qemu.stderr').read_text().strip()}")
                    ns.adopt(tap, p["mac"], p["ipv4"], p["ipv6"], p["gw4"], p["gw6"])
                    log(f"{ns.name}: {tap} {ns.mac()} {p['ipv4']} {p['ipv6']} via {p['gw4']} / {p['gw6']}")
            results, failures = [], []
            deadline = time.monotonic() + a.timeout - 60
            for v in variants:
                try:
                    results.append(run_variant(v, g, share, [ns for ns, _ in nets[v][0]], ports, a, deadline))
                except Failed as e:
                    failures.append(f"{v}: {e}")
                    print(f"e1000-test[{v}]: FAIL: {e}", flush=True)
                    (share / f"{v}.stop").touch()
            res = g.wait()
            if res.status != 0 and not failures:
                failures.append(f"the guest command exited {res.status}")
            boot = f"{res.boot_seconds:.1f} s" if res.boot_seconds is not None else "n/a"
            took = time.monotonic() - started
            if failures:
                log(f"FAIL ({prepared.accel}, QEMU start to /init {boot}, {took:.0f} s): {' | '.join(failures)}")
                return 1
            log(f"PASS ({prepared.accel}, QEMU start to /init {boot}, {took:.0f} s): {'; '.join(results)}; "
                f"multi_packet refused on {DRIVER}; {DRIVER}, link up, per_packet RX buffers, counters match, pools full, exit 0")  # fmt: skip
            return 0
    except guest.Skip as e:
        print(f"SKIP: {e}", flush=True)
        return guest.SKIP
    except (Failed, RuntimeError) as e:
        log(f"FAIL: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
