"""64-byte UDP over IPv4 with many flows, for throughput (NDR/PDR) runs.

Each TRex port sends from its side's hosts to the other side's (dp_net.py):
TRex port 0 from 198.18.1.0 + i to 198.19.1.0 + j, TRex port 1 the reverse.
The source address runs over --flows values and the destination over --dsts,
so the forwarder's RSS hash (IP addresses and UDP ports) spreads the traffic
over all of its RX queues. The field engine rewrites the addresses and fixes
the IPv4 header checksum, which the forwarder verifies in l3fwd mode; the UDP
checksum is 0 (none), so it stays valid whatever the addresses.

Tunables (console: `start -f udp_64b.py -m 10mpps -t --size 64 --flows 4096`;
ndr: `--prof-tun size=64,flows=4096`):
  --size          frame size on the wire including the 4-byte FCS (default 64)
  --flows         source addresses per port (default 4096, at most 65000)
  --dsts          destination addresses per port (default 16)
  --cache         field-engine cache of this many packets, 0 = off (default 0)
  --latency-pps   add a latency stream (pg_id 100 + port) at this rate, 0 = none
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from trex_stl_lib.api import (  # noqa: E402
    IP, UDP, Ether, STLFlowLatencyStats, STLPktBuilder, STLStream, STLTXCont, STLVM,
)

import dp_net  # noqa: E402


def latency_stream(src, dst, size, pps, pg_id):
    """A latency stream: TRex writes its signature, sequence number and
    timestamp into the payload and checks them on RX; the forwarder rewrites
    only MACs (and TTL and the IPv4 checksum in l3fwd), never the payload."""
    base = Ether() / IP(src=src, dst=dst) / UDP(sport=1025, dport=12, chksum=0)
    pad = (b"dataplane-latency-" * 600)[: max(16, size - 4 - len(base))]
    return STLStream(
        name="latency-%d" % pg_id,
        packet=STLPktBuilder(pkt=base / pad),
        mode=STLTXCont(pps=pps),
        flow_stats=STLFlowLatencyStats(pg_id=pg_id),
    )


class Udp64:
    def get_streams(self, tunables=None, direction=0, port_id=0, **kwargs):
        parser = argparse.ArgumentParser(prog="udp_64b.py")
        parser.add_argument("--size", type=int, default=64)
        parser.add_argument("--flows", type=int, default=4096)
        parser.add_argument("--dsts", type=int, default=16)
        parser.add_argument("--cache", type=int, default=0)
        parser.add_argument("--latency-pps", "--latency_pps", dest="latency_pps", type=int, default=0)
        args = dp_net.parse_tunables(parser, tunables, kwargs)
        if not 1 <= args.flows <= 65000 or not 1 <= args.dsts <= 65000:
            raise ValueError("flows and dsts must be 1..65000")

        s, d = dp_net.sides(direction)
        src0, dst0 = dp_net.HOSTS[s], dp_net.HOSTS[d]
        base = Ether() / IP(src=src0, dst=dst0, ttl=64) / UDP(sport=1025, dport=12, chksum=0)
        pad = b"\x00" * max(0, args.size - 4 - len(base))

        vm = STLVM()
        vm.var(name="src", min_value=src0, max_value=dp_net.ip4_add(src0, args.flows - 1), size=4, op="inc")
        vm.var(name="dst", min_value=dst0, max_value=dp_net.ip4_add(dst0, args.dsts - 1), size=4, op="inc")
        vm.write(fv_name="src", pkt_offset="IP.src")
        vm.write(fv_name="dst", pkt_offset="IP.dst")
        vm.fix_chksum()
        if args.cache:
            vm.set_cached(args.cache)

        streams = [STLStream(name="udp-%d" % port_id, packet=STLPktBuilder(pkt=base / pad, vm=vm), mode=STLTXCont(pps=1))]
        if args.latency_pps:
            streams.append(latency_stream(src0, dst0, max(64, args.size), args.latency_pps, 100 + port_id))
        return streams


def register():
    return Udp64()
