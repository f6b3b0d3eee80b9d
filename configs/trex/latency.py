"""Latency only: one low-rate UDP stream per port with TRex latency statistics
(STLFlowLatencyStats, pg_id 100 + port). TRex puts a signature, a sequence
number and a timestamp in the payload and checks them when the packet comes
back on the other port; a packet whose payload the forwarder changed would not
be counted, so rx equal to tx in `stats -l` also proves the forwarder left the
payload intact. The rest of the payload is the readable pattern
"dataplane-latency-", easy to spot in a capture (dpdk-dumpcap on the DUT).

Run it alone for idle latency, or next to udp_64b.py / imix.py (their
--latency-pps tunable adds the same stream) for latency under load. The
-m multiplier does not scale latency streams.

Tunables (console `-t --pps 1000 --size 64`, ndr `--prof-tun pps=1000`):
  --pps    packets per second per port (default 1000)
  --size   frame size including FCS (default 64; at least 64)
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dp_net  # noqa: E402
from udp_64b import latency_stream  # noqa: E402


class Latency:
    def get_streams(self, tunables=None, direction=0, port_id=0, **kwargs):
        parser = argparse.ArgumentParser(prog="latency.py")
        parser.add_argument("--pps", type=int, default=1000)
        parser.add_argument("--size", type=int, default=64)
        args = dp_net.parse_tunables(parser, tunables, kwargs)
        s, d = dp_net.sides(direction)
        return [latency_stream(dp_net.HOSTS[s], dp_net.HOSTS[d], max(64, args.size), args.pps, 100 + port_id)]


def register():
    return Latency()
