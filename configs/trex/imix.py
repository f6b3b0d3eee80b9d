"""IMIX over IPv4/UDP (60, 590 and 1514 bytes without FCS, 28:16:4 packets),
with many flows, for throughput runs. Same address plan as udp_64b.py
(dp_net.py): TRex port 0 sends 198.18.1.0/.. -> 198.19.1.0/.., port 1 the
reverse. 1514-byte frames carry 1500-byte IP packets: the forwarder's ports
must keep an MTU of at least 1500 (the default).

Tunables (console `-t --flows 4096`, ndr `--prof-tun flows=4096`):
  --flows         source addresses per port (default 4096)
  --dsts          destination addresses per port (default 16)
  --latency-pps   add a latency stream (pg_id 100 + port) at this rate, 0 = none
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from trex_stl_lib.api import IP, UDP, Ether, STLPktBuilder, STLStream, STLTXCont, STLVM  # noqa: E402

import dp_net  # noqa: E402
from udp_64b import latency_stream  # noqa: E402

# Frame sizes without FCS, relative packet rates, inter-stream gap (usec).
IMIX = [(60, 28, 0.0), (590, 16, 0.1), (1514, 4, 0.2)]


class Imix:
    def get_streams(self, tunables=None, direction=0, port_id=0, **kwargs):
        parser = argparse.ArgumentParser(prog="imix.py")
        parser.add_argument("--flows", type=int, default=4096)
        parser.add_argument("--dsts", type=int, default=16)
        parser.add_argument("--latency-pps", "--latency_pps", dest="latency_pps", type=int, default=0)
        args = dp_net.parse_tunables(parser, tunables, kwargs)

        s, d = dp_net.sides(direction)
        src0, dst0 = dp_net.HOSTS[s], dp_net.HOSTS[d]
        streams = []
        for size, pps, isg in IMIX:
            base = Ether() / IP(src=src0, dst=dst0, ttl=64) / UDP(sport=1025, dport=12, chksum=0)
            pad = b"\x00" * max(0, size - len(base))
            vm = STLVM()
            vm.var(name="src", min_value=src0, max_value=dp_net.ip4_add(src0, args.flows - 1), size=4, op="inc")
            vm.var(name="dst", min_value=dst0, max_value=dp_net.ip4_add(dst0, args.dsts - 1), size=4, op="inc")
            vm.write(fv_name="src", pkt_offset="IP.src")
            vm.write(fv_name="dst", pkt_offset="IP.dst")
            vm.fix_chksum()
            streams.append(STLStream(name="imix-%d-%d" % (size, port_id), isg=isg,
                                     packet=STLPktBuilder(pkt=base / pad, vm=vm), mode=STLTXCont(pps=pps)))
        if args.latency_pps:
            streams.append(latency_stream(src0, dst0, 64, args.latency_pps, 100 + port_id))
        return streams


def register():
    return Imix()
