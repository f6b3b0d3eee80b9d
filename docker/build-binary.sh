#!/bin/sh
# Runs inside the builder image (docker/Dockerfile.builder, whose command this is): compiles
# the forwarder offline from the read-only mounts /src (the repository), /opt/rust (a Rust
# toolchain) and /opt/cargo-registry (a cargo registry holding every crate of Cargo.lock)
# into /out, and installs the binary as /out/dataplane.
#
# /out keeps cargo's target directory and CARGO_HOME between runs: a second run compiles
# only what changed. CARGO_PROFILE: release (default) or dev.
set -eu
profile=${CARGO_PROFILE:-release}
export PATH="/opt/rust/bin:$PATH" CARGO_HOME=/out/cargo-home CARGO_TARGET_DIR=/out/target
# cargo writes into its registry (it unpacks crates next to the index): a copy, refreshed
# from the host's on every run, so the host's registry is only read.
mkdir -p "$CARGO_HOME/registry"
for d in index cache; do
    [ -d "/opt/cargo-registry/$d" ] && cp -a -u "/opt/cargo-registry/$d" "$CARGO_HOME/registry/"
done
rustc --version
cargo --version
cd /src
cargo build --offline --locked --profile "$profile" --bin dataplane
dir=$profile
[ "$profile" = dev ] && dir=debug
install -m 0755 "$CARGO_TARGET_DIR/$dir/dataplane" /out/dataplane
echo "built /out/dataplane ($profile)"
