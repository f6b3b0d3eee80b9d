#!/usr/bin/env bash
# Builds the container image (docker/Dockerfile) and runs it on net_null, then checks that
# the forwarder forwarded packets, found every pool full and exited 0. Works with podman
# (preferred) or docker, whichever works here. Idempotent: the base image, the engine's
# settings and the image layers are reused when present; the test container is removed.
#
#   ci/container.sh                      # build (if needed) and check
#   DURATION=3 ci/container.sh           # forward for 3 s instead of 5
#   ENGINE=docker ci/container.sh        # force an engine
#
# Environment:
#   ENGINE         podman | docker (default: podman if installed, else docker if `docker info` works)
#   BASE_IMAGE     base of both stages (default: dataplane-bookworm, made here with debootstrap
#                  when missing; set it to debian:bookworm-slim where a registry is reachable)
#   IMAGE          image to build (default: dataplane:latest)
#   BASE_CACHE     where the debootstrap rootfs tarball is kept (default: /var/tmp/dataplane-base)
#   RUST_TOOLCHAIN host Rust toolchain mounted into the build (default: `rustc --print sysroot`)
#   CARGO_REGISTRY host cargo registry mounted into the build (default: $CARGO_HOME/registry)
#   DURATION       seconds to forward (default: 5)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

BASE_IMAGE=${BASE_IMAGE:-dataplane-bookworm}
IMAGE=${IMAGE:-dataplane:latest}
BASE_CACHE=${BASE_CACHE:-/var/tmp/dataplane-base}
DURATION=${DURATION:-5}
CONTAINER=dataplane-ci-$$
CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
CARGO_REGISTRY=${CARGO_REGISTRY:-$CARGO_HOME/registry}
if [ -z "${RUST_TOOLCHAIN:-}" ]; then
  RUST_TOOLCHAIN=$(rustc --print sysroot 2>/dev/null) || {
    echo "container: rustc not found: set RUST_TOOLCHAIN to a Rust toolchain directory" >&2
    exit 1
  }
fi

log() { echo "container: $*" >&2; }
# Prints a command, then runs it.
run() { echo "+ $*" >&2; "$@"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

pick_engine() {
  if [ -n "${ENGINE:-}" ]; then return; fi
  if command -v podman >/dev/null; then
    ENGINE=podman
  elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    ENGINE=docker
  else
    log "neither podman nor a working docker: install podman (apt-get install podman runc) or Docker"
    exit 1
  fi
}

# podman on this kind of host: runc instead of crun (crun rejects a mixed cgroup v1/v2
# set-up) and default ulimits below the host's hard limits. Added only when missing.
configure_podman() {
  [ "$ENGINE" = podman ] || return 0
  local conf=/etc/containers/containers.conf
  if ! command -v runc >/dev/null; then
    log "installing runc"
    run as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc >/dev/null
  fi
  [ "$(id -u)" -eq 0 ] || return 0   # rootless podman reads ~/.config/containers instead
  touch "$conf"
  if ! grep -qs '^[[:space:]]*runtime[[:space:]]*=' "$conf"; then
    log "setting [engine] runtime = \"runc\" in $conf"
    if grep -q '^\[engine\]' "$conf"; then
      sed -i '/^\[engine\]/a runtime = "runc"' "$conf"
    else
      printf '\n[engine]\nruntime = "runc"\n' >>"$conf"
    fi
  fi
  if ! grep -qs '^[[:space:]]*default_ulimits[[:space:]]*=' "$conf"; then
    local hard; hard=$(ulimit -Hn)
    [ "$hard" = unlimited ] && hard=1048576
    [ "$hard" -gt 20000 ] && hard=20000
    log "setting [containers] default_ulimits (nofile=$hard) in $conf"
    if grep -q '^\[containers\]' "$conf"; then
      sed -i "/^\[containers\]/a default_ulimits = [\"nofile=$hard:$hard\", \"nproc=32768:32768\"]" "$conf"
    else
      printf '\n[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=32768:32768"]\n' "$hard" "$hard" >>"$conf"
    fi
  fi
}

# The Debian mirror apt already uses (first bookworm entry of sources.list or *.sources).
apt_mirror() {
  local f uri=
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri=$(awk '$1 == "deb" && $0 ~ / bookworm / { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # deb822: paragraphs; take URIs of the first paragraph whose Suites has plain bookworm.
    uri=$(awk 'BEGIN { RS = ""; FS = "\n" }
      { u = ""; s = 0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); u = a[2] }
          if ($i ~ /^Suites:/ && $i ~ /[ \t]bookworm([ \t]|$)/) s = 1
        }
        if (s && u != "") { print u; exit } }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  return 1
}

image_exists() { "$ENGINE" image inspect "$1" >/dev/null 2>&1; }

# The base image: a local debootstrap of bookworm (minbase), when BASE_IMAGE is missing.
ensure_base() {
  if image_exists "$BASE_IMAGE"; then
    log "base image $BASE_IMAGE present"
    return
  fi
  if [ "$BASE_IMAGE" != dataplane-bookworm ]; then
    log "pulling $BASE_IMAGE"
    run "$ENGINE" pull "$BASE_IMAGE"
    return
  fi
  local tarball=$BASE_CACHE/bookworm-minbase.tar
  if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null ||
      run as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    local mirror; mirror=$(apt_mirror) || { log "no bookworm mirror in apt's sources"; exit 1; }
    local rootfs=$BASE_CACHE/rootfs
    run as_root rm -rf "$rootfs"
    run as_root mkdir -p "$rootfs"
    run as_root debootstrap --variant=minbase bookworm "$rootfs" "$mirror"
    # Lighter image, as Debian's -slim images: no docs, man pages or translations (now or
    # from packages installed later), no downloaded .debs, no apt lists (every stage
    # runs apt-get update).
    as_root tee "$rootfs/etc/dpkg/dpkg.cfg.d/01-slim" >/dev/null <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
    as_root find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    as_root find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
    as_root rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/lintian/* \
      "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* \
      "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
    run as_root sh -c "tar -C '$rootfs' -c . >'$tarball.tmp' && mv '$tarball.tmp' '$tarball'"
    run as_root rm -rf "$rootfs"
  fi
  run "$ENGINE" import "$tarball" "$BASE_IMAGE"
}

build_image() {
  local args=(build -f docker/Dockerfile -t "$IMAGE" --build-arg "BASE_IMAGE=$BASE_IMAGE"
    --build-context "rust-toolchain=$RUST_TOOLCHAIN"
    --build-context "cargo-registry=$CARGO_REGISTRY")
  if [ "$ENGINE" = docker ]; then
    # --build-context and RUN --mount need BuildKit: docker buildx (the legacy builder has
    # neither). --load puts the result in the engine's images.
    docker buildx version >/dev/null 2>&1 || {
      log "docker buildx (BuildKit) is missing: install the docker-buildx plugin, or use podman"
      exit 1
    }
    args=(buildx "${args[@]}" --load)
  fi
  run "$ENGINE" "${args[@]}" "$ROOT"
}

check_image() {
  local out=$BASE_CACHE/run.log status=0
  mkdir -p "$BASE_CACHE"
  log "running $IMAGE for ${DURATION}s"
  # As docker/compose.yaml's dataplane service: no capabilities, default /dev/shm.
  # No --rm: the docker CLI against podman's service loses the exit status with it.
  local cmd=("$ENGINE" run --name "$CONTAINER" --cap-drop ALL "$IMAGE"
    --config configs/null.toml --duration "$DURATION")
  echo "+ ${cmd[*]} >$out 2>&1" >&2
  "${cmd[@]}" >"$out" 2>&1 || status=$?
  run "$ENGINE" rm -f "$CONTAINER" >/dev/null
  tail -n 25 "$out"
  local fails=()
  [ "$status" -eq 0 ] || fails+=("exit status $status")
  local fwd
  fwd=$(sed -n 's/^forwarded \([0-9]*\) packets.*/\1/p' "$out" | tail -n 1)
  [ -n "$fwd" ] && [ "$fwd" -gt 0 ] || fails+=("no packets forwarded (forwarded: ${fwd:-none})")
  local pools full
  pools=$(grep -c '^ *pool ' "$out" || true)
  full=$(grep -c '^ *pool .*: full$' "$out" || true)
  [ "$pools" -gt 0 ] && [ "$pools" -eq "$full" ] || fails+=("pools full: $full of $pools")
  if [ ${#fails[@]} -gt 0 ]; then
    log "FAILED: $(IFS=";"; echo "${fails[*]}") (whole output: $out)"
    exit 1
  fi
  log "OK: $fwd packets forwarded, $full/$pools pools full, exit 0 ($(image_size))"
}

image_size() {
  "$ENGINE" image inspect --format '{{.Size}}' "$IMAGE" |
    awk '{ printf "image %s %.1f MB", "'"$IMAGE"'", $1 / 1e6 }'
}

pick_engine
# The test container goes even when the script is interrupted.
trap '"$ENGINE" rm -f "$CONTAINER" >/dev/null 2>&1 || true' EXIT
log "engine: $ENGINE; base: $BASE_IMAGE; toolchain: $RUST_TOOLCHAIN"
configure_podman
ensure_base
build_image
check_image
