#!/bin/sh
# The guest side of ci/e1000-test.py; runs inside the QEMU guest that ci/guest.py boots.
#
#     ci/e1000-guest.sh DATAPLANE VARIANT:PCI,PCI [VARIANT:PCI,PCI ...]
#
# For each VARIANT in turn: binds its two emulated NICs to uio_pci_generic (through sysfs
# driver_override, instantly, where dpdk-devbind.py takes ~30 s under TCG), runs DATAPLANE on
# $GUEST_SHARE/VARIANT.toml until the host side creates $GUEST_SHARE/VARIANT.stop (or for at
# most STOP_WAIT seconds), stops it with SIGINT, and leaves in the share: VARIANT.out (its
# output), VARIANT.json (--stats-json) and VARIANT.exit (its exit status). Before that, when
# the share has VARIANT.refuse.toml, runs DATAPLANE on it once too (VARIANT.refuse.out and
# .exit; the host expects a refusal). Exits 0 when every real run's forwarder exited 0.
set -u
bin=$1
shift
share=${GUEST_SHARE:?not in a ci/guest.py guest}
STOP_WAIT=${STOP_WAIT:-600}
status=0

say() { echo "e1000-guest: $*"; }

for spec in "$@"; do
    variant=${spec%%:*}
    addrs=$(echo "${spec#*:}" | tr , ' ')
    for addr in $addrs; do
        dev=/sys/bus/pci/devices/$addr
        [ -e "$dev" ] || { say "$variant: no PCI device $addr"; status=1; continue 2; }
        echo uio_pci_generic >"$dev/driver_override"
        echo "$addr" >/sys/bus/pci/drivers_probe
        driver=$(basename "$(readlink "$dev/driver")")
        say "$variant: $addr $(cat "$dev/vendor"):$(cat "$dev/device") bound to $driver"
        [ "$driver" = uio_pci_generic ] || { status=1; continue 2; }
    done
    # A config the forwarder must refuse once EAL probed the NICs (multi_packet RX buffers
    # on a non-mlx5 driver); the real run then finds the same NICs free again.
    if [ -e "$share/$variant.refuse.toml" ]; then
        "$bin" --config "$share/$variant.refuse.toml" --duration 5 --stats-interval 0 \
            </dev/null >"$share/$variant.refuse.out" 2>&1
        echo "$?" >"$share/$variant.refuse.exit"
        say "$variant: the refused config: exit $(cat "$share/$variant.refuse.exit")"
    fi
    say "$variant: starting $bin at uptime $(cut -d' ' -f1 /proc/uptime) s"
    "$bin" --config "$share/$variant.toml" --duration "$STOP_WAIT" --stats-interval 2 \
        --stats-json "$share/$variant.json" </dev/null >"$share/$variant.out" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null && [ ! -e "$share/$variant.stop" ]; do sleep 0.2; done
    kill -INT "$pid" 2>/dev/null
    wait "$pid"
    rc=$?
    echo "$rc" >"$share/$variant.exit"
    say "$variant: the forwarder exited $rc"
    [ "$rc" = 0 ] || status=1
done
exit "$status"
