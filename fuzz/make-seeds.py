#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/seed-*: a few real frames and configs.

Run from anywhere; idempotent. Frames are built by hand (no scapy) with valid checksums.
"""
import os, struct, pathlib

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent

def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff

OURS = bytes([2, 0, 0, 0, 0, 1]); HOST = bytes([2, 0, 0, 0, 0, 0x99])

def eth(ty, payload, dst=OURS, tags=()):
    h = dst + HOST
    for tpid, vid in tags: h += struct.pack("!HH", tpid, vid)
    return h + struct.pack("!H", ty) + payload

def ipv4(proto, src, dst, l4, ttl=64, opts=b"", frag=0):
    ihl = 5 + len(opts) // 4
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(l4), 1, frag, ttl, proto, 0, bytes(src), bytes(dst)) + opts
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + l4

def ipv6(nh, src, dst, payload, hops=64):
    return struct.pack("!IHBB", 6 << 28, len(payload), nh, hops) + src + dst + payload

def udp(payload=b"hello"): return struct.pack("!HHHH", 1234, 5678, 8 + len(payload), 0) + payload
def tcp(): return struct.pack("!HHIIBBHHH", 1234, 80, 1, 0, 5 << 4, 0x18, 1024, 0, 0) + b"data"
def icmp_echo(ty=8): return struct.pack("!BBHHH", ty, 0, 0, 7, 1) + b"ping"
V6_US = bytes.fromhex("20010db8000000000000000000000001")
V6_HOST = bytes.fromhex("20010db8000000000000000000000099")
V6_FAR = bytes.fromhex("20010db8000100000000000000000005")

def ns(target, src=None, dst=None):
    body = struct.pack("!BBHI", 135, 0, 0, 0) + target + bytes([1, 1]) + HOST
    if src is not None:
        body = body[:2] + struct.pack("!H", icmp6_csum(src, dst, body)) + body[4:]
    return body

def na(target, src, dst, flags=0x60, mac=HOST):
    body = struct.pack("!BBHI", 136, 0, 0, flags << 24) + target + bytes([2, 1]) + mac
    return body[:2] + struct.pack("!H", icmp6_csum(src, dst, body)) + body[4:]

def icmp6_csum(src, dst, body):
    return csum(src + dst + struct.pack("!IxxxB", len(body), 58) + body)

arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, HOST, bytes([10, 0, 0, 2]), bytes(6), bytes([10, 0, 0, 1]))
hbh = bytes([58, 0, 1, 4, 0, 0, 0, 0])  # HBH -> ICMPv6, PadN
frag6 = bytes([17, 0, 0, 0, 0, 0, 0, 42])

frames = {
    "ipv4-udp": eth(0x0800, ipv4(17, [10, 0, 0, 2], [10, 1, 2, 3], udp())),
    "ipv4-udp-routed": eth(0x0800, ipv4(17, [10, 0, 0, 2], [10, 1, 9, 3], udp())),
    "ipv4-tcp-vlan": eth(0x0800, ipv4(6, [10, 0, 0, 2], [10, 9, 0, 1], tcp()), tags=[(0x8100, 10)]),
    "ipv4-qinq-options": eth(0x0800, ipv4(17, [10, 0, 0, 2], [10, 1, 0, 1], udp(), opts=bytes([1, 1, 1, 0])), tags=[(0x88a8, 1), (0x8100, 2)]),
    "ipv4-fragment": eth(0x0800, ipv4(17, [10, 0, 0, 2], [10, 1, 0, 1], b"x" * 16, frag=0x2001)),
    "ipv4-echo-to-us": eth(0x0800, ipv4(1, [10, 0, 0, 2], [10, 0, 0, 1], icmp_echo())),
    "arp-request": eth(0x0806, arp, dst=b"\xff" * 6),
    "ipv6-udp": eth(0x86dd, ipv6(17, V6_HOST, V6_FAR, udp())),
    "ipv6-hbh-icmpv6-echo": eth(0x86dd, ipv6(0, V6_HOST, V6_US, hbh + icmp_echo(128))),
    "ipv6-ns": eth(0x86dd, ipv6(58, V6_HOST, bytes.fromhex("ff0200000000000000000001ff000001"), ns(V6_US), hops=255), dst=bytes([0x33, 0x33, 0xff, 0, 0, 1])),
    "ipv6-fragment": eth(0x86dd, ipv6(44, V6_HOST, V6_FAR, frag6 + udp())),
    "other-ethertype": eth(0x88b5, b"\x5c" * 46),
    "runt": eth(0x0800, b"\x45\x00"),
}

def write(target, name, data):
    d = HERE / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed-{name}").write_bytes(data)

for name, f in frames.items():
    write("parse", name, f)
    for sel in range(4):
        write("forward", f"{name}-{sel}", bytes([sel]) + f)
    write("local", name, bytes([0]) + f)
# neigh: records of (opcode, [length, frame]): frames on port 0 (op 0), held packets (op 2
# + 4n), time passing (op 3 + 4n).
SN_US = bytes.fromhex("ff0200000000000000000001ff000001")
neigh_frames = {
    "arp-request": eth(0x0806, arp, dst=b"\xff" * 6),
    "arp-reply": eth(0x0806, struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, HOST, bytes([10, 0, 0, 2]), OURS, bytes([10, 0, 0, 1]))),
    "ns": eth(0x86dd, ipv6(58, V6_HOST, SN_US, ns(V6_US, V6_HOST, SN_US), hops=255), dst=bytes([0x33, 0x33, 0xff, 0, 0, 1])),
    "na": eth(0x86dd, ipv6(58, V6_HOST, V6_US, na(V6_HOST, V6_HOST, V6_US), hops=255)),
}
for name, f in neigh_frames.items():
    assert len(f) < 256
    hold = bytes([2, 2 + 4, 2 + 8]) if "arp" in name else bytes([2 + 4, 2 + 12])
    write("neigh", name, hold + bytes([0, len(f)]) + f + bytes([3 + 4 * 20] * 3) + hold + bytes([3 + 4 * 63] * 20))
    write("local", name + "-valid", bytes([0]) + f)
for cfg in sorted((ROOT / "configs").glob("*.toml")):
    write("config", cfg.stem, cfg.read_bytes())
for cap in sorted((ROOT / "dataplane/src/fpm/testdata").glob("*.bin")):
    write("fpm", cap.stem, cap.read_bytes())
write("config", "minimal", b'[forward]\npairs=[["a","a"]]\n[[port]]\nname="a"\ndevice="net_null0"\n[[worker]]\nlcore=1\nrx=[{port="a",queue=0}]\n')
