#!/usr/bin/env bash
# Sets up this machine and runs the whole test suite: unit tests, EAL integration tests on
# vdevs (net_null, net_ring, net_pcap), and the binary's behaviour on bad input.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
cargo build --locked --workspace --all-targets
cargo test --locked --workspace -- --test-threads="${TEST_THREADS:-2}"
