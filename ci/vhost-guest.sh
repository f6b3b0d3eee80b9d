#!/bin/sh
# The guest side of ci/vhost-test.py; runs inside the QEMU guest that ci/guest.py boots, on
# every boot (GUEST_BOOT = 1, 2).
#
#     ci/vhost-guest.sh MAC IPV4/LEN IPV6/LEN GW4 GW6 PEER4 PEER6 IPERF_SECONDS
#
# Gives the virtio-net interface with MAC (served by the forwarder's vhost-user port) its
# addresses and default routes, waits until the forwarder answers ping, then, to PEER (the
# host in the namespace, through the forwarder): ping and ping -6, an iperf3 TCP stream each
# way (-R: the peer sends). Outputs go to $GUEST_SHARE/bootN.* for the host side to judge; then
# it creates bootN.ready and waits for the host's bootN.done (the host pings this guest
# meanwhile). On boot 1 it asks for a reboot ($GUEST_REBOOT): the vhost-user device is reset
# and set up again, and boot 2 checks that forwarding resumed.
set -u
mac=$1 ip4=$2 ip6=$3 gw4=$4 gw6=$5 peer4=$6 peer6=$7 secs=$8
share=${GUEST_SHARE:?not in a ci/guest.py guest}
b=${GUEST_BOOT:-1}
out="$share/boot$b"

say() { echo "vhost-guest[boot $b]: $*"; }

dev=""
for d in /sys/class/net/*; do
    [ "$(cat "$d/address")" = "$mac" ] && dev=$(basename "$d")
done
[ -n "$dev" ] || { say "no interface with MAC $mac"; exit 1; }
ip link set "$dev" up
ip addr add "$ip4" dev "$dev"
ip -6 addr add "$ip6" dev "$dev" nodad
ip route add default via "$gw4"
ip -6 route add default via "$gw6"
say "$dev $mac $ip4 $ip6 up at uptime $(cut -d' ' -f1 /proc/uptime) s"

i=0
until ping -c 1 -W 1 "$gw4" >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -lt 120 ] || { say "no echo reply from the forwarder ($gw4)"; exit 1; }
    sleep 0.5
done
say "the forwarder answers at uptime $(cut -d' ' -f1 /proc/uptime) s"
ping -c 1 -W 3 "$gw6" >/dev/null 2>&1 || say "no ping -6 reply from the forwarder ($gw6)"

ping -c 10 -i 0.2 -W 3 "$peer4" >"$out.ping4" 2>&1
ping -c 10 -i 0.2 -W 3 "$peer6" >"$out.ping6" 2>&1
iperf3 -c "$peer4" -t "$secs" -J >"$out.iperf-up.json" 2>&1
iperf3 -c "$peer4" -t "$secs" -R -J >"$out.iperf-down.json" 2>&1
say "ping, ping -6, iperf3 both ways done"

touch "$out.ready"
i=0
until [ -e "$out.done" ]; do
    i=$((i + 1))
    [ "$i" -lt 600 ] || { say "the host did not finish its pings"; break; }
    sleep 0.2
done
[ "$b" = 1 ] && touch "$GUEST_REBOOT"
exit 0
