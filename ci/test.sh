#!/usr/bin/env bash
# Sets up this machine and runs the whole test suite: unit tests, EAL integration tests on
# vdevs (net_null, net_ring, net_pcap), and the binary's behaviour on bad input.
# Ends with one line totalling every test binary's results.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
cargo build --locked --workspace --all-targets
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --locked --workspace --no-fail-fast -- --test-threads="${TEST_THREADS:-2}" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
exit "$status"
