#!/bin/busybox sh
# /init of the test guest that ci/guest.py boots (busybox sh; ci/guest.py packs it into the
# initramfs with a static busybox and the modules listed in /modules.list).
#
# Kernel command line words read here (ci/guest.py writes them):
#   dp.probe=1        accelerator probe: say "dp-guest: probe ok" and power off at once
#   dp.share=PATH     the writable 9p share (tag "share"), mounted at the same PATH inside
#                     the host's root; PATH/.guest/run.sh is the command to run
#   dp.hugepages=N    2 MiB hugepages to reserve before the command
#   dp.boots=N        how many boots the command may ask for (by creating $GUEST_REBOOT)
#   dp.keep=PATH      a host directory (the checkout) kept visible at PATH even when it lies
#                     under /run, /tmp, /root or /var/tmp, which the guest covers with its own
#                     tmpfs
#
# Sequence: modules, the host's root read-only on /host (tag "hostroot"), the share, the
# kernel file systems inside /host, hugepages, then `chroot /host /bin/sh run.sh BOOT`; its
# exit status goes to PATH/.guest/status and the guest powers off (or reboots, when the
# command asked and boots remain).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "dp-guest: init at uptime $(cut -d' ' -f1 /proc/uptime) s"

probe=0 share="" hugepages=0 boots=1 keep=""
for word in $(cat /proc/cmdline); do
    case "$word" in
    dp.probe=*) probe=${word#*=} ;;
    dp.share=*) share=${word#*=} ;;
    dp.hugepages=*) hugepages=${word#*=} ;;
    dp.boots=*) boots=${word#*=} ;;
    dp.keep=*) keep=${word#*=} ;;
    esac
done

die() {
    echo "dp-guest: FAILED: $*"
    poweroff -f
}

while read -r module; do
    insmod "$module" || echo "dp-guest: insmod $module failed"
done </modules.list

if [ "$probe" = 1 ]; then
    echo "dp-guest: probe ok"
    poweroff -f
fi

# The host's root, read-only: the freshly built binaries, DPDK, python, iproute2, iperf3.
mkdir -p /host
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /host ||
    die "cannot mount the host's root (9p tag hostroot)"
[ -n "$share" ] || die "no dp.share= on the kernel command line"
mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
mount -t devtmpfs devtmpfs /host/dev
mkdir -p /host/dev/pts /host/dev/shm /host/dev/hugepages
mount -t devpts devpts /host/dev/pts
mount -t tmpfs tmpfs /host/dev/shm
# The guest's own /run (DPDK's runtime dirs), /tmp and /root, over the host's; a checkout
# under one of them (dp.keep) is bound aside first and put back on top.
covered=""
case "$keep" in
/run/* | /tmp/* | /root/* | /var/tmp/*)
    mkdir -p /keep && mount -o bind "/host$keep" /keep && covered=1 ||
        echo "dp-guest: cannot keep $keep visible"
    ;;
esac
for d in /run /tmp /root /var/tmp; do mount -t tmpfs tmpfs "/host$d"; done
if [ -n "$covered" ]; then
    mkdir -p "/host$keep" && mount -o bind /keep "/host$keep" || die "cannot put $keep back"
fi
mount -t hugetlbfs hugetlbfs /host/dev/hugepages
# The share, writable and uncached, so files either side writes are seen at once; mounted
# last, so none of the above covers it (a share under /tmp gets a mount point in the tmpfs).
mkdir -p "/host$share" 2>/dev/null
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 share "/host$share" ||
    die "cannot mount the share on /host$share"
if [ "$hugepages" -gt 0 ]; then
    echo "$hugepages" >/proc/sys/vm/nr_hugepages
    got=$(cat /proc/sys/vm/nr_hugepages)
    [ "$got" -ge "$hugepages" ] || echo "dp-guest: only $got of $hugepages hugepages reserved"
fi
ip link set lo up
hostname dp-guest

control="/host$share/.guest"
boot=$(cat "$control/boot" 2>/dev/null || echo 0)
boot=$((boot + 1))
echo "$boot" >"$control/boot"
echo "dp-guest: boot $boot, running the command at uptime $(cut -d' ' -f1 /proc/uptime) s"
chroot /host /bin/sh "$share/.guest/run.sh" "$boot"
rc=$?
if [ -e "$control/reboot" ] && [ "$boot" -lt "$boots" ]; then
    rm -f "$control/reboot"
    echo "dp-guest: command exited $rc and asked for a reboot"
    sync
    reboot -f
fi
echo "$rc" >"$control/status"
echo "dp-guest: command exited $rc"
sync
poweroff -f
