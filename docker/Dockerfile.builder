# The build environment of the forwarder: Debian bookworm with its DPDK 22.11 headers,
# bindgen's libclang, pkg-config and a C toolchain. It holds no Rust and no sources: a
# container of this image compiles the binary with the sources, the host's Rust toolchain
# and the host's cargo registry mounted read-only, offline (docker/build-binary.sh, the
# image's command). Every engine builds and runs it the same way: Docker's classic builder,
# BuildKit, podman. From the repository root (ci/container.sh does all of this):
#
#   docker build -f docker/Dockerfile.builder -t dataplane-builder \
#     --build-arg BASE_IMAGE=dataplane-bookworm --network host docker
#   docker run --rm --network none \
#     -v "$PWD:/src:ro" \
#     -v "$(rustc --print sysroot):/opt/rust:ro" \
#     -v "${CARGO_HOME:-$HOME/.cargo}/registry:/opt/cargo-registry:ro" \
#     -v "$PWD/target/container:/out" \
#     dataplane-builder
#   # -> target/container/dataplane, then docker/Dockerfile builds the image around it.
#
# Mounts (read-only unless said):
#   /src                the repository
#   /opt/rust           a Rust toolchain directory: bin/cargo, bin/rustc, lib/ (a rustup
#                       toolchain, `rustc --print sysroot`). Debian's rustc 1.63 is too old.
#   /opt/cargo-registry a cargo registry ($CARGO_HOME/registry) holding every crate of
#                       Cargo.lock (any `cargo build` or `cargo fetch` on the host fetched them)
#   /out                (writable) cargo's target directory and CARGO_HOME, kept between runs
#                       so that a rebuild compiles only what changed; the binary lands in
#                       /out/dataplane
# Environment: CARGO_PROFILE=release (default) or dev.
#
# Build argument BASE_IMAGE: Debian bookworm (default debian:bookworm-slim; with no
# registry, a local import of `debootstrap --variant=minbase bookworm`, which ci/container.sh
# makes as dataplane-bookworm). `--network host` lets apt reach the host's mirror when the
# engine has no bridge network (ci/container.sh's own dockerd runs with --bridge=none).

ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libdpdk-dev libclang-dev pkg-config libpcap-dev build-essential ca-certificates >/dev/null \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
WORKDIR /src
CMD ["/bin/sh", "/src/docker/build-binary.sh"]
