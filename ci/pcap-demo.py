#!/usr/bin/python3
"""Runs configs/pcap.toml (io) or configs/l3fwd.toml end to end on files.

io: writes /tmp/dataplane-in.pcap (UDP frames of mixed sizes) and the empty
/tmp/dataplane-empty.pcap, forwards for two seconds, and checks /tmp/dataplane-out.pcap
holds the same frames in the same order.

l3fwd: writes /tmp/dataplane-l3fwd-in.pcap with frames to 10.0.1.x, routes them, and
checks /tmp/dataplane-l3fwd-east.pcap holds each with TTL - 1, a valid checksum and the
next hop's MACs.

    ci/pcap-demo.py [--mode io|l3fwd] [--frames 1000] [--bin target/release/dataplane]
"""

import argparse
import struct
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IN, EMPTY, OUT = Path("/tmp/dataplane-in.pcap"), Path("/tmp/dataplane-empty.pcap"), Path("/tmp/dataplane-out.pcap")


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", i // 1000, i % 1000, len(fr), len(fr)))
            f.write(fr)


def read_pcap(path):
    data = path.read_bytes()
    frames, off = [], 24
    while off + 16 <= len(data):
        incl = struct.unpack_from("<IIII", data, off)[2]
        frames.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return frames


def udp_frame(i, size):
    eth = bytes.fromhex("02000000000202000000000108 00".replace(" ", ""))
    payload_len = size - 14 - 20 - 8
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + payload_len, i & 0xFFFF, 0, 64, 17, 0,
                     bytes([10, 0, 0, 2]), bytes([10, 0, 1, (i % 250) + 2]))
    csum = sum(struct.unpack("!10H", ip))
    csum = (csum & 0xFFFF) + (csum >> 16)
    ip = ip[:10] + struct.pack("!H", ~csum & 0xFFFF) + ip[12:]
    udp = struct.pack("!HHHH", 1024 + i % 64, 5001, 8 + payload_len, 0)
    payload = struct.pack("!I", i) + bytes((i + k) & 0xFF for k in range(payload_len - 4))
    return eth + ip + udp + payload


def ip_checksum(hdr):
    s = sum(struct.unpack(f"!{len(hdr) // 2}H", hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def l3fwd(a, frames):
    write_pcap(Path("/tmp/dataplane-l3fwd-in.pcap"), frames)
    write_pcap(EMPTY, [])
    east = Path("/tmp/dataplane-l3fwd-east.pcap")
    east.unlink(missing_ok=True)
    rc = subprocess.call([a.bin, "--config", str(ROOT / "configs" / "l3fwd.toml"), "--duration", "2"])
    if rc != 0:
        sys.exit(f"dataplane exited {rc}")
    out = read_pcap(east)
    ok = len(out) == len(frames)
    for f, o in zip(frames, out):
        ip, oip = f[14:34], o[14:34]
        ok &= o[0:6] == bytes.fromhex("020000000102") and o[14 + 8] == f[14 + 8] - 1
        ok &= ip_checksum(oip) == 0 and o[34:] == f[34:] and oip[:8] == ip[:8] and oip[9] == ip[9] and oip[12:] == ip[12:]
    print(f"{len(frames)} frames in, {len(out)} routed out of east, TTL - 1, checksum valid, next-hop MAC: {ok}")
    sys.exit(0 if ok else 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["io", "l3fwd"], default="io", help="configs/pcap.toml (io) or configs/l3fwd.toml")
    ap.add_argument("--frames", type=int, default=1000, help="frames written to the input pcap")
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "dataplane"), help="the dataplane binary")
    a = ap.parse_args()
    sizes = [60, 64, 128, 256, 512, 1024, 1514]
    frames = [udp_frame(i, sizes[i % len(sizes)]) for i in range(a.frames)]
    if a.mode == "l3fwd":
        return l3fwd(a, frames)
    write_pcap(IN, frames)
    write_pcap(EMPTY, [])
    OUT.unlink(missing_ok=True)
    rc = subprocess.call([a.bin, "--config", str(ROOT / "configs" / "pcap.toml"), "--duration", "2"])
    if rc != 0:
        sys.exit(f"dataplane exited {rc}")
    out = read_pcap(OUT)
    same = out == frames
    print(f"{len(frames)} frames in, {len(out)} frames out, identical and in order: {same}")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
