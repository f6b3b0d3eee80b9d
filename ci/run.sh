#!/usr/bin/env bash
# Sets up this machine, builds the forwarder and runs it. Arguments go to `dataplane`;
# without any it runs the default config (configs/null.toml) until Ctrl-C.
#   ci/run.sh --config configs/null.toml --duration 4
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
cargo build --release --locked -p dataplane
[ $# -gt 0 ] || set -- --config configs/null.toml
exec target/release/dataplane "$@"
