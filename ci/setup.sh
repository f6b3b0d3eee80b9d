#!/usr/bin/env bash
# Installs what the build, the tests and the benchmark need, and reserves hugepages.
# Idempotent: packages already present are not reinstalled; hugepages already reserved
# and mounted are left alone. Safe to run on every invocation of ci/run.sh and ci/test.sh.
set -euo pipefail

PACKAGES=(
  dpdk dpdk-dev libdpdk-dev   # DPDK 22.11: libraries, PMDs, headers, dpdk-testpmd, dpdk-telemetry.py
  libclang-dev pkg-config     # bindgen over DPDK's headers; finding libdpdk
  libpcap-dev                 # net_pcap's headers (its library comes with dpdk)
  python3                     # dpdk-telemetry.py, ci/bench.py
  iproute2 iputils-ping       # ci/netns-test.sh: namespaces and veth pairs; ping through the forwarder
  iperf3 ethtool              # ci/netns-test.sh: a TCP stream; veth TX checksum offload off
  prometheus                  # prometheus and promtool (2.42): the /metrics tests start their own server
)
# Wanted but not required: where one cannot be installed, the checks that need it skip.
OPTIONAL=(
  frr                         # FRR 8.4 (zebra with dplane_fpm_nl, staticd, bgpd, vtysh): ci/frr-test.py
)
HUGEPAGES_2M=${HUGEPAGES_2M:-1024}   # 2 GiB of 2 MiB pages

log() { echo "setup: $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

# install_packages [--optional]: installs the missing ones of PACKAGES, or with --optional
# those of OPTIONAL (a failure there is logged, not fatal).
install_packages() {
  local missing=() list=("${PACKAGES[@]}") what=packages
  if [ "${1:-}" = --optional ]; then list=("${OPTIONAL[@]}"); what="optional packages"; fi
  for p in "${list[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "$what present"
    return
  fi
  log "installing ${missing[*]}"
  as_root apt-get update -qq || [ "$what" != packages ]
  # No package's daemon is started by its installation (prometheus's would listen on :9090):
  # the tests start what they need themselves. Debian's invoke-rc.d asks policy-rc.d; one is
  # put in place for the install only, where there is none.
  local policy=/usr/sbin/policy-rc.d added=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null && as_root chmod 755 "$policy" && added=1
  fi
  local rc=0
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
  if [ "$added" = 1 ]; then as_root rm -f "$policy"; fi
  return "$rc"
}

check_toolchain() {
  if ! command -v cargo >/dev/null; then
    log "cargo not found: install Rust stable (rustup) first"
    exit 1
  fi
  pkg-config --atleast-version=22.11 libdpdk || { log "libdpdk >= 22.11 not found by pkg-config"; exit 1; }
}

reserve_hugepages() {
  local nr=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
  if [ ! -w "$nr" ] && [ "$(id -u)" -ne 0 ]; then
    log "not root: no hugepages reserved; configs with --no-huge still work"
    return
  fi
  if [ "$(cat "$nr" 2>/dev/null || echo 0)" -lt "$HUGEPAGES_2M" ]; then
    echo "$HUGEPAGES_2M" | as_root tee "$nr" >/dev/null 2>&1 || true
  fi
  local got; got=$(cat "$nr" 2>/dev/null || echo 0)
  if ! grep -qs " hugetlbfs " /proc/mounts; then
    as_root mkdir -p /dev/hugepages
    as_root mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null || true
  fi
  if [ "$got" -gt 0 ] && grep -qs " hugetlbfs " /proc/mounts; then
    log "hugepages: $got x 2 MiB reserved, hugetlbfs mounted"
  else
    log "hugepages unavailable here (reserved: $got): falling back to --no-huge"
  fi
}

install_packages
install_packages --optional || log "could not install ${OPTIONAL[*]}: the checks that need them skip"
check_toolchain
reserve_hugepages
