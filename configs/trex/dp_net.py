"""The address plan shared by the TRex profiles in this directory.

It must agree with configs/trex/trex_cfg.yaml (the generator's MACs),
configs/l2fwd-2port.toml (peer_mac) and configs/l3fwd-2port.toml (routes,
via_mac, the ports' own addresses); docs/benchmarking.md has the table.

TRex port 0 is cabled to the forwarder's port p0, TRex port 1 to p1. In L2
mode TRex writes the Ethernet addresses itself (src_mac and dest_mac of
trex_cfg.yaml), so the profiles only carry the IP side.
"""

# Per TRex port (= direction): (first host address, the side's /16 as a
# string for documentation). Hosts behind TRex port 0 live in 198.18.0.0/16,
# hosts behind TRex port 1 in 198.19.0.0/16 (RFC 2544's 198.18.0.0/15 split
# in two); x.x.0.0/24 is the link (forwarder .1, generator .2), so generated
# hosts start at x.x.1.0.
HOSTS = {
    0: "198.18.1.0",
    1: "198.19.1.0",
}


def ip4_add(addr, n):
    """addr + n as a dotted quad (n < 2**16 keeps it inside its /16)."""
    a = [int(x) for x in addr.split(".")]
    v = (a[0] << 24 | a[1] << 16 | a[2] << 8 | a[3]) + n
    return ".".join(str(v >> s & 255) for s in (24, 16, 8, 0))


def sides(direction):
    """(source side, destination side): TRex port 0 (direction 0) sends from
    198.18/16 to 198.19/16, TRex port 1 the other way round."""
    return (0, 1) if direction % 2 == 0 else (1, 0)


def parse_tunables(parser, tunables, kwargs):
    """Profile arguments from either TRex convention.

    Newer TRex (`start -f X.py -t --size 64 --flows 1000`) hands get_streams a
    list of argv-like strings in `tunables`; older TRex and `./ndr --prof-tun
    size=64,flows=1000` pass keyword arguments. Both end up in one argparse
    namespace.
    """
    argv = list(tunables) if isinstance(tunables, (list, tuple)) else []
    for key, value in kwargs.items():
        if key in ("direction", "port_id"):
            continue
        argv += ["--" + key.replace("_", "-"), str(value)]
    return parser.parse_args(argv)
