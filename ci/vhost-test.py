#!/usr/bin/env python3
"""A VM served by the forwarder's vhost-user port (net_vhost), routed to a host in a namespace.

    ci/vhost-test.py [--bin PATH]     # as root

The forwarder runs on this machine with configs/vhost.toml as shipped (socket path, interface
name and EAL file prefix substituted): port "vm" is net_vhost on a UNIX socket, port "h2" is
net_af_packet on the root end of a veth whose other end is a Linux host in a namespace. A QEMU
guest (ci/guest.py; RAM in a shared memfd the forwarder maps) connects its kernel's virtio-net
to that socket (vectors=0, csum=off, guest_csum=off):

    guest (virtio-net)                   dataplane (l3fwd, this machine)         h2 (netns PREFIX-vh-h2)
    10.0.1.2/24 2001:db8:1::2/64 == vhost-user [vm]    [h2] af_packet PREFIXvh0 == veth0 10.0.2.2/24 ...

Addresses come from the config's ports (the port's address + 1; the port's address as the
gateway); the guest's MAC is the test's choice, h2's its veth's own, and the forwarder resolves
both (the config names no MAC).

Checked, on the guest's first boot and again after it rebooted (the virtio device is reset and
vhost-user sets it up again): from the guest, ping and ping -6 to h2 with every reply at TTL 63,
an iperf3 TCP stream each way (guest -> h2, and h2 -> guest with -R); from h2, ping and ping -6
to the guest. After the guest powered off, the forwarder is stopped and its --stats-json must
show: exit 0, clean, every pool full, drivers net_vhost and net_af_packet, the device's packet
counters equal to the forwarder's, each port's counts above what ping and iperf3 sent, and
processed + injected + mirrored = tx + dropped + punted. Prints "vhost-test: PASS ..." and exits
0, or "FAIL" and 1; "SKIP: ..." and 77 only when QEMU cannot start at all or network namespaces
cannot be made.

Everything it makes (forwarder, guest, namespace, veth, iperf3 server, socket, temp dirs, EAL
runtime dir) is removed on exit, failure, Ctrl-C or SIGTERM. Takes 45-90 s under TCG on a
loaded 2-core machine.
"""

import argparse
import contextlib
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import guest  # noqa: E402
import hosts  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "vhost.toml"
PINGS = 10
BOOTS = 2


def log(msg):
    print(f"vhost-test: {msg}", flush=True)


class Failed(Exception):
    pass


def default_bin():
    for b in (ROOT / "target" / "release" / "dataplane", ROOT / "target" / "debug" / "dataplane"):
        if b.exists():
            return b
    raise SystemExit("vhost-test: FAIL: no dataplane binary (give --bin, or cargo build)")


def end_of(cfg, driver):
    """The config's port on `driver`, with its far end's MAC, addresses and gateways."""
    ports = [p for p in cfg["port"] if p["device"].startswith(driver)]
    if len(ports) != 1:
        raise SystemExit(f"vhost-test: {CONFIG} must have exactly one {driver} port")
    p = ports[0]
    own4, own6 = ipaddress.ip_interface(p["ipv4"]), ipaddress.ip_interface(p["ipv6"])
    far4 = ipaddress.ip_interface(f"{own4.ip + 1}/{own4.network.prefixlen}")
    far6 = ipaddress.ip_interface(f"{own6.ip + 1}/{own6.network.prefixlen}")
    # The forwarder resolves the far ends (ARP, neighbour discovery); the config names no MAC.
    # h2 keeps its veth's own; the guest's NIC needs one from QEMU: the test picks it.
    mac = "52:54:00:00:01:02" if driver == "net_vhost" else None
    return {"name": p["name"], "args": p["args"], "mac": mac, "ipv4": str(far4), "ipv6": str(far6),
            "gw4": str(own4.ip), "gw6": str(own6.ip), "addr4": str(far4.ip), "addr6": str(far6.ip)}  # fmt: skip


def devarg(args, key):
    m = re.search(rf"(?:^|,){key}=([^,]*)", args)
    if not m:
        raise SystemExit(f"vhost-test: {CONFIG}: no {key}= in {args!r}")
    return m.group(1)


def free_hugepages():
    m = re.search(r"^HugePages_Free:\s+(\d+)", Path("/proc/meminfo").read_text(), re.M)
    return int(m.group(1)) if m else 0


def judge_boot(b, share, iperf_seconds):
    """Judges the guest's outputs for boot b: (failures, notes, iperf3 data segments per way)."""
    out = share / f"boot{b}"
    bad, notes = [], []
    for fam in ("4", "6"):
        f = Path(f"{out}.ping{fam}")
        if not f.exists():
            bad.append(f"boot {b}: no ping -{fam} from the guest")
            continue
        replies, ttls, rtt, text = hosts.ping_result(subprocess.CompletedProcess([], 0, f.read_text(), ""))
        if replies != PINGS or ttls != [63]:
            bad.append(f"boot {b}: guest ping -{fam} to h2: {replies}/{PINGS} replies, TTLs {ttls}:\n{text}")
        else:
            notes.append(f"guest -> h2 ping -{fam} {replies}/{PINGS} ttl=63 rtt avg {rtt} ms")
    segs = {}
    for way, what in (("up", "guest -> h2"), ("down", "h2 -> guest")):
        f = Path(f"{out}.iperf-{way}.json")
        try:
            got, mbits, _ = hosts.iperf3_summary(f.read_text() if f.exists() else "")
        except RuntimeError as e:
            bad.append(f"boot {b}: iperf3 {what}: {e}")
            continue
        if got < 64 * 1024:
            bad.append(f"boot {b}: iperf3 {what}: only {got} bytes")
        segs[way] = got // 1448
        notes.append(f"iperf3 {what} {mbits:.1f} Mbit/s (>= {segs[way]} segments, ~{segs[way] / iperf_seconds:.0f}/s)")
    return bad, notes, segs


def check_report(json_path, exit_status, vm, h2, pings, segs):
    """pings: echo requests + replies each end sent; segs: iperf3 data segments per way."""
    bad = []
    if exit_status != 0:
        bad.append(f"the forwarder exited {exit_status}")
    r = json.loads(json_path.read_text())
    if not r["clean"] or r["errors"]:
        bad.append(f"not clean: {r['errors']}")
    for name, p in r["pools"].items():
        if p["in_use"] != 0:
            bad.append(f"pool {name}: {p['in_use']} mbufs in use at exit")
    st = r["stats"]
    ps = st["ports"]
    for p, driver in ((vm, "net_vhost"), (h2, "net_af_packet")):
        s = ps[p["name"]]
        if s["driver"] != driver:
            bad.append(f"port {p['name']}: driver {s['driver']}, expected {driver}")
        if s["ipackets"] != s["rx_packets"] or s["opackets"] != s["tx_packets"]:
            bad.append(f"port {p['name']}: device ipackets {s['ipackets']} opackets {s['opackets']} != "
                       f"forwarder rx {s['rx_packets']} tx {s['tx_packets']}")  # fmt: skip
    # What each end sent crossed the forwarder: in on its port, out on the other.
    for key, port, way in (("rx_packets", vm, "up"), ("tx_packets", h2, "up"), ("rx_packets", h2, "down"), ("tx_packets", vm, "down")):
        need = segs[way] + pings
        if ps[port["name"]][key] < need:
            bad.append(f"port {port['name']}: {key} {ps[port['name']][key]} < {need} (iperf3 {way} segments + echo requests/replies)")
    sn = r["softnet"].values()
    punted, injected, mirrored = (sum(w[k] for w in sn) for k in ("punted", "injected", "mirrored"))
    if st["rx_packets"] + injected + mirrored != st["tx_packets"] + st["dropped"] + punted:
        bad.append(f"processed {st['rx_packets']} + injected {injected} + mirrored {mirrored} != "
                   f"tx {st['tx_packets']} + dropped {st['dropped']} + punted {punted}")  # fmt: skip
    if punted == 0:
        bad.append("punted 0: no ARP/ND/echo reached the slow path")
    drops = ", ".join(f"{k} {v}" for k, v in st["drops"].items() if v) or "none"
    summary = (f"{vm['name']} ({ps[vm['name']]['driver']}) rx {ps[vm['name']]['rx_packets']} tx {ps[vm['name']]['tx_packets']} | "
               f"{h2['name']} ({ps[h2['name']]['driver']}) rx {ps[h2['name']]['rx_packets']} tx {ps[h2['name']]['tx_packets']} | "
               f"punted {punted} injected {injected} | dropped {st['dropped']} ({drops}) | pools full, exit {exit_status}")  # fmt: skip
    return bad, summary


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))  # fmt: skip
    ap.add_argument("--bin", type=Path, help="the dataplane binary (default: target/release, else target/debug)")
    ap.add_argument("--prefix", default=f"dp{os.getpid() % 100000}", help="names of the veth, namespace, socket and EAL files start with this (<= 8 chars)")
    ap.add_argument("--iperf-seconds", type=int, default=int(os.environ.get("IPERF_SECONDS", 3)))
    ap.add_argument("--timeout", type=int, default=420, help="bound on the guest's run, seconds (default 420)")
    ap.add_argument("--accel", choices=["auto", "kvm", "tcg"], default=os.environ.get("DP_GUEST_ACCEL", "auto"))
    a = ap.parse_args()
    if len(a.prefix) > 8:
        ap.error("--prefix: at most 8 characters (interface names are limited to 15)")
    binary = (a.bin or default_bin()).resolve()
    guest.sigterm_as_exit()
    text = CONFIG.read_text()
    cfg = tomllib.loads(text)
    vm, h2 = end_of(cfg, "net_vhost"), end_of(cfg, "net_af_packet")
    started = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            try:
                prepared = guest.prepare(a.accel)
            except guest.Skip as e:
                print(f"SKIP: {e}", flush=True)
                return guest.SKIP
            need_pages = 320
            if free_hugepages() < need_pages:
                raise Failed(f"{free_hugepages()} free 2 MiB hugepages, the forwarder needs {need_pages} "
                             "(ci/setup.sh reserves 1024)")  # fmt: skip
            tmp = Path(tempfile.mkdtemp(prefix=f"{a.prefix}-vhost."))
            stack.callback(lambda: subprocess.run(["rm", "-rf", str(tmp)]))
            sock = tmp / "vm0.sock"
            veth = f"{a.prefix}vh0"
            file_prefix = f"{a.prefix}-vhost"
            stack.callback(lambda: subprocess.run(["rm", "-rf", f"/var/run/dpdk/{file_prefix}"]))
            # The namespace and its veth: created inside it, the root end then moved out, so
            # nothing appears in this namespace under a name we did not choose.
            try:
                ns = hosts.Namespace(f"{a.prefix}-vh-h2")
            except PermissionError as e:
                print(f"SKIP: cannot create network namespaces here ({e})", flush=True)
                return guest.SKIP
            stack.callback(ns.close)
            hosts.run(["ip", "-n", ns.name, "link", "add", "veth0", "type", "veth", "peer", "name", veth])
            hosts.run(["ip", "-n", ns.name, "link", "set", veth, "netns", "1"])
            stack.callback(lambda: hosts.run(["ip", "link", "del", veth], check=False))
            hosts.run(["sysctl", "-qw", f"net.ipv6.conf.{veth}.disable_ipv6=1"])
            hosts.run(["ip", "link", "set", veth, "up"])
            ns.configure("veth0", h2["mac"], h2["ipv4"], h2["ipv6"], h2["gw4"], h2["gw6"])
            log(f"h2 {ns.name}: veth0 {ns.mac()} {h2['ipv4']} {h2['ipv6']} <-> {veth} (forwarder's port {h2['name']})")

            config = (text.replace(f'"{cfg["eal"]["file_prefix"]}"', f'"{file_prefix}"')
                      .replace(f"iface={devarg(vm['args'], 'iface')}", f"iface={sock}")
                      .replace(f"iface={devarg(h2['args'], 'iface')}", f"iface={veth}"))  # fmt: skip
            cfg_path = tmp / "vhost.toml"
            cfg_path.write_text(config)
            json_path, out_path = tmp / "stats.json", tmp / "forwarder.out"
            fwd_out = open(out_path, "w")
            fwd = subprocess.Popen([str(binary), "--config", str(cfg_path), "--duration", str(a.timeout + 120),
                                    "--stats-interval", "2", "--stats-json", str(json_path)],
                                   stdin=subprocess.DEVNULL, stdout=fwd_out, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip

            def stop_forwarder():
                if fwd.poll() is None:
                    fwd.send_signal(signal.SIGINT)
                    try:
                        fwd.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        fwd.kill()
                        fwd.wait()
                return fwd.returncode

            stack.callback(stop_forwarder)
            for _ in range(600):
                if sock.exists() or fwd.poll() is not None:
                    break
                time.sleep(0.1)
            if not sock.exists():
                raise Failed(f"the forwarder did not create {sock}:\n{out_path.read_text()}")
            log(f"forwarder up: vhost-user socket {sock}")
            server = ns.iperf3_server(h2["addr4"])

            g = stack.enter_context(guest.Guest(
                ["sh", str(ROOT / "ci" / "vhost-guest.sh"), vm["mac"], vm["ipv4"], vm["ipv6"], vm["gw4"], vm["gw6"],
                 h2["addr4"], h2["addr6"], str(a.iperf_seconds)],
                mem=1024, smp=1, hugepages=0, timeout=a.timeout, boots=BOOTS, shared_memory=True, accel=a.accel,
                name=f"{a.prefix}-vhost", cwd=ROOT,
                qemu_args=["-chardev", f"socket,id=c0,path={sock}",
                           "-netdev", "vhost-user,id=v0,chardev=c0,queues=1",
                           # vectors=0: QEMU 7.2 under TCG crashes setting up MSI-X notifiers for
                           # vhost-user; csum/guest_csum off: the guest sends whole checksums.
                           "-device", f"virtio-net-pci,netdev=v0,mac={vm['mac']},vectors=0,csum=off,guest_csum=off"],
            ))  # fmt: skip
            g.start()
            share = g.share
            bad, segs_total, pings_total = [], {"up": 0, "down": 0}, 0
            for b in range(1, BOOTS + 1):
                ready = share / f"boot{b}.ready"
                while not ready.exists():
                    if not g.running():
                        raise Failed(f"the guest ended before boot {b} finished its checks")
                    if time.monotonic() - g.started > a.timeout:
                        raise Failed(f"boot {b}: the guest's checks did not finish in time")
                    time.sleep(0.2)
                # From h2 to the guest, while it waits.
                for fam, dst in (("4", vm["addr4"]), ("6", vm["addr6"])):
                    replies, ttls, rtt, out = ns.ping(dst, count=PINGS)
                    if replies != PINGS or ttls != [63]:
                        bad.append(f"boot {b}: h2 ping -{fam} to the guest: {replies}/{PINGS} replies, TTLs {ttls}:\n{out}")
                    else:
                        print(f"vhost-test[boot {b}]: h2 -> guest ping -{fam} {replies}/{PINGS} ttl=63 rtt avg {rtt} ms", flush=True)
                (share / f"boot{b}.done").touch()
                b_bad, b_notes, segs = judge_boot(b, share, a.iperf_seconds)
                bad += b_bad
                for n in b_notes:
                    print(f"vhost-test[boot {b}]: {n}", flush=True)
                for way, n in segs.items():
                    segs_total[way] += n
                # Each end sent PINGS requests and PINGS replies per address family.
                pings_total += 4 * PINGS
            res = g.wait()
            server.kill()
            if res.status != 0:
                bad.append(f"the guest's command exited {res.status}")
            status = stop_forwarder()
            out = out_path.read_text(errors="replace")
            # DPDK's vhost library logs each virtio status the guest's driver sets: DRIVER_OK
            # (0xf) once per boot, reset (0x0) at each reboot and at power-off.
            ready = len(re.findall(r"new device status\(0x0000000f\)", out))
            resets = len(re.findall(r"new device status\(0x00000000\)", out))
            log(f"vhost-user: the guest's driver set the device up {ready} times (DRIVER_OK), reset it {resets} times")
            if not json_path.exists():
                bad.append(f"the forwarder wrote no --stats-json (exit {status})")
                summary = ""
            else:
                r_bad, summary = check_report(json_path, status, vm, h2, pings_total, segs_total)
                bad += r_bad
            report = out[out.find("--- dataplane report"):] if "--- dataplane report" in out else out[-3000:]
            print(report, flush=True)
            boot = f"{res.boot_seconds:.1f} s" if res.boot_seconds is not None else "n/a"
            took = time.monotonic() - started
            if bad:
                log(f"FAIL ({prepared.accel}, QEMU start to /init {boot}, {took:.0f} s): " + " | ".join(bad))
                return 1
            peak = max((float(x) for x in re.findall(r"^\s*[\d.]+s\s+rx\s+([\d.]+) Mpps", out, re.M)), default=0.0)
            log(f"counters: {summary}")
            log(f"PASS ({prepared.accel}, QEMU start to /init {boot}, {took:.0f} s): ping and ping -6 both ways, "
                f"iperf3 both ways, before and after a guest reboot (vhost-user reset and set up again); "
                f"peak {peak * 1e3:.1f} kpps through the forwarder; counters match, pools full, exit 0")  # fmt: skip
            return 0
    except guest.Skip as e:
        print(f"SKIP: {e}", flush=True)
        return guest.SKIP
    except (Failed, RuntimeError) as e:
        log(f"FAIL: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
