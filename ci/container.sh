#!/usr/bin/env bash
# Builds the container image (docker/Dockerfile.builder, then docker/Dockerfile) with Docker or
# podman and runs it on net_null, then checks that the forwarder forwarded packets, found
# every pool full and exited 0. Offline apart from Debian's apt: the base image is a local
# debootstrap imported into the engine, the Rust toolchain and the crates come from the host.
# Idempotent: the engine, the base image and the image layers are reused when present; the
# test containers are removed, and a dockerd this script started is stopped, even on failure.
#
#   ci/container.sh                                  # docker: full build, run 5 s, check
#   ENGINE=podman ci/container.sh                    # the same with podman
#   BINARY=target/debug/dataplane ci/container.sh    # skip the compile: this binary in the image
#   DURATION=3 ci/container.sh                       # forward for 3 s instead of 5
#
# Environment:
#   ENGINE          docker | podman (default: docker if installed or nothing is, else podman).
#                   Installed with apt when missing (docker.io, or podman and runc).
#   BINARY          put this binary in the image instead of compiling one in the builder
#                   image (it must be built against bookworm's DPDK 22.11, as on this host);
#                   it is copied without its debug info. ci/test.sh's quick check uses it.
#   BASE_IMAGE      base of both images (default: dataplane-bookworm, made here with debootstrap
#                   when missing; set it to debian:bookworm-slim where a registry is reachable)
#   IMAGE           image to build (default: dataplane:latest)
#   BUILDER_IMAGE   build environment image (default: dataplane-builder)
#   BASE_CACHE      where the debootstrap tarball and run.log are kept (default: /var/tmp/dataplane-base)
#   RUST_TOOLCHAIN  host Rust toolchain mounted into the build (default: `rustc --print sysroot`)
#   CARGO_REGISTRY  host cargo registry mounted into the build (default: $CARGO_HOME/registry)
#   CARGO_PROFILE   release (default) or dev, for the compile in the builder image
#   DURATION        seconds to forward (default: 5)
#   DOCKERD_DIR     where a dockerd started here keeps everything: data-root (images, kept
#                   between runs as a cache), exec-root, pidfile, socket, log, config
#                   (default: /var/tmp/dataplane-dockerd)
#   DOCKERD_STORAGE_DRIVER  storage driver of that dockerd (default: dockerd's choice,
#                   overlay2 here; when dockerd does not come up with it, vfs is tried)
#   DOCKER_BUILDKIT 0 (default here: the classic builder, all Debian's docker.io needs) or 1
#
# Exit status: 0 on success, 1 on failure, 77 when no engine can run here (not root and no
# running daemon): ci/test.sh reports that as skipped.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

BASE_IMAGE=${BASE_IMAGE:-dataplane-bookworm}
IMAGE=${IMAGE:-dataplane:latest}
BUILDER_IMAGE=${BUILDER_IMAGE:-dataplane-builder}
BASE_CACHE=${BASE_CACHE:-/var/tmp/dataplane-base}
DURATION=${DURATION:-5}
DOCKERD_DIR=${DOCKERD_DIR:-/var/tmp/dataplane-dockerd}
CARGO_PROFILE=${CARGO_PROFILE:-release}
CONTAINER=dataplane-ci-$$
OUT=$ROOT/target/container
CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
CARGO_REGISTRY=${CARGO_REGISTRY:-$CARGO_HOME/registry}
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}

log() { echo "container: $*" >&2; }
# Prints a command, then runs it.
run() { echo "+ $*" >&2; "$@"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

apt_install() {
  log "installing $*"
  run as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
    { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
}

pick_engine() {
  if [ -n "${ENGINE:-}" ]; then
    case $ENGINE in docker | podman) return ;; esac
    log "ENGINE=$ENGINE: expected docker or podman"
    exit 1
  fi
  if command -v docker >/dev/null || command -v dockerd >/dev/null || ! command -v podman >/dev/null; then
    ENGINE=docker
  else
    ENGINE=podman
  fi
}

# ---- Docker: a running daemon (DOCKER_HOST or the default socket), else one started here ----

DOCKERD_PID=

docker_up() { docker info >/dev/null 2>&1; }

ensure_docker() {
  if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
    apt_install docker.io
  fi
  if docker_up; then
    log "using the running dockerd (${DOCKER_HOST:-default socket})"
    return
  fi
  if [ "$(id -u)" -ne 0 ]; then
    log "SKIP: no dockerd answers and only root can start one here (run as root, or start dockerd)"
    exit 77
  fi
  start_dockerd
}

# Starts dockerd with everything under DOCKERD_DIR, so that it never meets a system dockerd:
# its own data-root, exec-root, pidfile, socket and (empty) config file, and its own
# containerd namespace should it find a system containerd. It makes no network: no bridge,
# no iptables rules, no masquerading (builds use --network host, runs --network none).
start_dockerd() {
  local sock=$DOCKERD_DIR/docker.sock
  export DOCKER_HOST=unix://$sock
  mkdir -p "$DOCKERD_DIR"
  if docker_up; then
    # Left running by an earlier run of this script that was killed (we hold the lock).
    DOCKERD_PID=$(cat "$DOCKERD_DIR/dockerd.pid" 2>/dev/null || true)
    log "reusing the dockerd an earlier run left at $sock (pid ${DOCKERD_PID:-unknown}); stopping it at the end"
    return
  fi
  [ -s "$DOCKERD_DIR/daemon.json" ] || echo '{}' >"$DOCKERD_DIR/daemon.json"
  local driver=${DOCKERD_STORAGE_DRIVER:-}
  while :; do
    local args=(--config-file "$DOCKERD_DIR/daemon.json" --data-root "$DOCKERD_DIR/data"
      --exec-root "$DOCKERD_DIR/exec" --pidfile "$DOCKERD_DIR/dockerd.pid" -H "$DOCKER_HOST"
      --bridge=none --iptables=false --ip6tables=false --ip-masq=false
      --containerd-namespace dataplane-ci --containerd-plugins-namespace dataplane-ci-plugins)
    [ -n "$driver" ] && args+=(--storage-driver "$driver")
    # In its own session, so that a Ctrl-C meant for this script does not stop it under
    # a running step: the EXIT trap stops it once the step ended.
    echo "+ setsid dockerd ${args[*]} >$DOCKERD_DIR/dockerd.log 2>&1 &" >&2
    setsid dockerd "${args[@]}" >"$DOCKERD_DIR/dockerd.log" 2>&1 </dev/null &
    DOCKERD_PID=$!
    local i
    for i in $(seq 300); do
      docker_up && break
      kill -0 "$DOCKERD_PID" 2>/dev/null || break
      sleep 0.1
    done
    if docker_up; then
      log "started dockerd (pid $DOCKERD_PID, $(docker info --format '{{.Driver}}') storage, log $DOCKERD_DIR/dockerd.log)"
      return
    fi
    log "dockerd did not come up${driver:+ with storage driver $driver}; from its log:"
    grep -E 'level=(error|fatal)' "$DOCKERD_DIR/dockerd.log" | tail -n 5 >&2 || tail -n 15 "$DOCKERD_DIR/dockerd.log" >&2
    stop_dockerd
    if [ -z "$driver" ]; then
      driver=vfs
      log "trying again with --storage-driver vfs"
      continue
    fi
    exit 1
  done
}

stop_dockerd() {
  [ -n "$DOCKERD_PID" ] || return 0
  log "stopping the dockerd started here (pid $DOCKERD_PID)"
  kill -TERM "$DOCKERD_PID" 2>/dev/null || true
  local i
  for i in $(seq 150); do
    kill -0 "$DOCKERD_PID" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$DOCKERD_PID" 2>/dev/null; then
    log "dockerd still running after 30 s: killing it"
    kill -KILL "$DOCKERD_PID" 2>/dev/null || true
  fi
  wait "$DOCKERD_PID" 2>/dev/null || true
  DOCKERD_PID=
  # What a killed dockerd may leave mounted (container /dev/shm, overlay layers), then its
  # runtime state; the data-root stays as the layer cache.
  awk -v d="$DOCKERD_DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$DOCKERD_DIR/exec" "$DOCKERD_DIR/docker.sock" "$DOCKERD_DIR/dockerd.pid"
}

# ---- podman ----

# podman on this kind of host: runc instead of crun (crun rejects a mixed cgroup v1/v2
# set-up) and default ulimits below the host's hard limits. Added only when missing.
ensure_podman() {
  command -v podman >/dev/null || apt_install podman
  command -v runc >/dev/null || apt_install runc
  [ "$(id -u)" -eq 0 ] || return 0   # rootless podman reads ~/.config/containers instead
  local conf=/etc/containers/containers.conf
  mkdir -p /etc/containers
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

engine_versions() {
  if [ "$ENGINE" = docker ]; then
    docker version --format 'docker client {{.Client.Version}}, server {{.Server.Version}}{{range .Server.Components}}{{if ne .Name "Engine"}}, {{.Name}} {{.Version}}{{end}}{{end}}'
    docker info --format ', {{.Driver}} storage, cgroup v{{.CgroupVersion}}'
  else
    podman version --format 'podman {{.Client.Version}}, '
    podman info --format '{{.Host.OCIRuntime.Version}}' | head -n 1   # "runc version 1.1.5..."
    podman info --format ', {{.Store.GraphDriverName}} storage, cgroup {{.Host.CgroupsVersion}}'
  fi | tr -d '\n'
}

# ---- The base image: a local debootstrap of bookworm (minbase), when BASE_IMAGE is missing ----

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
image_id() { "$ENGINE" image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

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
    command -v debootstrap >/dev/null || apt_install debootstrap
    local mirror; mirror=$(apt_mirror) || { log "no bookworm mirror in apt's sources"; exit 1; }
    local rootfs=$BASE_CACHE/rootfs
    run as_root rm -rf "$rootfs"
    run as_root mkdir -p "$rootfs"
    run as_root debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$BASE_CACHE/debootstrap.log"
    # Lighter image, as Debian's -slim images: no docs, man pages or translations (now or
    # from packages installed later), no downloaded .debs, no apt lists (every image
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
  run "$ENGINE" import "$tarball" "$BASE_IMAGE" >/dev/null
}

# Removes the image a rebuild replaced (now untagged), and only that one: the engine may be
# shared, so nothing else is pruned.
drop_replaced() {
  local old=$1 new; new=$(image_id "$2")
  if [ -n "$old" ] && [ "$old" != "$new" ]; then
    "$ENGINE" rmi "$old" >/dev/null 2>&1 || true
  fi
}

# ---- The image ----

# The build environment (apt packages only: cached until docker/Dockerfile.builder changes).
build_builder() {
  [ -z "${BINARY:-}" ] || return 0
  local old; old=$(image_id "$BUILDER_IMAGE")
  logged "$OUT/builder-image.log" "$ENGINE" build -f docker/Dockerfile.builder -t "$BUILDER_IMAGE" \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" --network host docker
  drop_replaced "$old" "$BUILDER_IMAGE"
}

build_binary() {
  if [ -n "${BINARY:-}" ]; then
    [ -x "$BINARY" ] || { log "BINARY=$BINARY: no such executable"; exit 1; }
    log "using $BINARY (without its debug info) instead of compiling in $BUILDER_IMAGE"
    run objcopy --strip-debug "$BINARY" "$OUT/dataplane.tmp"
    mv "$OUT/dataplane.tmp" "$OUT/dataplane"
    return
  fi
  if [ -z "${RUST_TOOLCHAIN:-}" ]; then
    RUST_TOOLCHAIN=$(rustc --print sysroot 2>/dev/null) || {
      log "rustc not found: set RUST_TOOLCHAIN to a Rust toolchain directory"
      exit 1
    }
  fi
  [ -d "$CARGO_REGISTRY" ] || { log "CARGO_REGISTRY=$CARGO_REGISTRY: not a directory (run cargo fetch first)"; exit 1; }
  # As the calling user with docker, so that target/container stays theirs; rootless podman
  # maps the container's root to the calling user already.
  local user=()
  [ "$ENGINE" = docker ] && user=(--user "$(id -u):$(id -g)")
  logged "$OUT/compile.log" "$ENGINE" run --name "$CONTAINER-build" --rm --network none "${user[@]}" \
    -e "CARGO_PROFILE=$CARGO_PROFILE" \
    -v "$ROOT:/src:ro" -v "$RUST_TOOLCHAIN:/opt/rust:ro" \
    -v "$CARGO_REGISTRY:/opt/cargo-registry:ro" -v "$OUT:/out" \
    "$BUILDER_IMAGE"
  log "compiled with $(grep -E '^rustc ' "$OUT/compile.log" | head -n 1) in $BUILDER_IMAGE"
}

build_image() {
  local old; old=$(image_id "$IMAGE")
  logged "$OUT/image.log" "$ENGINE" build -f docker/Dockerfile -t "$IMAGE" \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" --network host "$ROOT"
  drop_replaced "$old" "$IMAGE"
}

# Runs the image as container NAME with ENGINE_ARGS... -- ARGS... (ARGS after the image),
# keeps the output in $BASE_CACHE/NAME.log, removes the container, and fails unless the
# forwarder exited 0, forwarded packets and found every pool full.
run_and_check() {
  local name=$1; shift
  local engine_args=() out=$BASE_CACHE/$name.log status=0
  while [ "$1" != -- ]; do engine_args+=("$1"); shift; done
  shift
  # No --rm: the docker CLI against podman's service loses the exit status with it.
  local cmd=("$ENGINE" run --name "$CONTAINER-$name" "${engine_args[@]}" "$IMAGE" "$@")
  echo "+ ${cmd[*]} >$out 2>&1" >&2
  "${cmd[@]}" >"$out" 2>&1 || status=$?
  "$ENGINE" rm -f "$CONTAINER-$name" >/dev/null 2>&1 || true
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
    log "FAILED ($name): $(IFS=";"; echo "${fails[*]}") (whole output: $out)"
    exit 1
  fi
  CHECKED+="$name: $fwd packets forwarded, $full/$pools pools full, exit 0; "
}

# docker/compose.yaml's two services.
check_image() {
  log "running $IMAGE for ${DURATION}s (no hugepages)"
  # No capabilities, an unprivileged user, no network (net_null needs none), default /dev/shm.
  run_and_check run --network none --cap-drop ALL --user 65534:65534 -- \
    --config configs/null.toml --duration "$DURATION"

  # On the host's hugepages, when it has free ones: as root (the mount is root's), with
  # --huge-unlink so that the pages return when the container ends, whatever the exit.
  local free; free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages 2>/dev/null || echo 0)
  if [ "$free" -lt 300 ] || ! awk '$2 == "/dev/hugepages" && $3 == "hugetlbfs" { f = 1 } END { exit !f }' /proc/mounts; then
    log "hugepages variant not run: $free free 2 MiB hugepages (needs 300) or no hugetlbfs on /dev/hugepages"
    return
  fi
  log "running $IMAGE for ${DURATION}s on hugepages"
  # Docker's default seccomp profile allows EAL's get_mempolicy/set_mempolicy/mbind only
  # with CAP_SYS_NICE; podman's allows them without.
  local caps=(--cap-drop ALL)
  [ "$ENGINE" = docker ] && caps+=(--cap-add SYS_NICE)
  run_and_check hugepages --network none "${caps[@]}" -v /dev/hugepages:/dev/hugepages --entrypoint /bin/sh -- \
    -c "sed -e 's/^memory = \"auto\"/memory = \"hugepages\"/' -e 's/^file_prefix = .*/file_prefix = \"$CONTAINER\"/' configs/null.toml >/tmp/hugepages.toml &&
        exec dataplane --config /tmp/hugepages.toml --duration $DURATION -- --huge-unlink"
}

image_size() {
  "$ENGINE" image inspect --format '{{.Size}}' "$1" | awk '{ printf "%.1f MB", $1 / 1e6 }'
}

# Runs a command with its output in FILE; on failure shows the end of it and exits.
logged() {
  local file=$1; shift
  echo "+ $* >$file 2>&1" >&2
  "$@" >"$file" 2>&1 || {
    tail -n 30 "$file" >&2
    log "FAILED: $* (whole output: $file)"
    exit 1
  }
}

# Runs a step and logs how long it took.
step() {
  local t0=$SECONDS
  "$@"
  log "$1: $((SECONDS - t0)) s"
}

cleanup() {
  if [ -n "${ENGINE:-}" ] && { [ "$ENGINE" = podman ] || docker_up; }; then
    "$ENGINE" rm -f "$CONTAINER-build" "$CONTAINER-run" "$CONTAINER-hugepages" >/dev/null 2>&1 || true
  fi
  stop_dockerd
}

pick_engine
mkdir -p "$BASE_CACHE"
# One run at a time on this machine: the base image, the tags and a dockerd of ours are shared.
exec 9>"$BASE_CACHE/lock"
flock 9
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
case $ENGINE in
  docker) step ensure_docker ;;
  podman) ensure_podman ;;
esac
builder=podman
[ "$ENGINE" = docker ] && { [ "$DOCKER_BUILDKIT" = 1 ] && builder="BuildKit" || builder="classic builder"; }
log "engine: $(engine_versions); $builder; base: $BASE_IMAGE"
started=$SECONDS
mkdir -p "$OUT"
step ensure_base
step build_builder
step build_binary
step build_image
log "built $IMAGE in $((SECONDS - started)) s: $(image_size "$IMAGE") (base $BASE_IMAGE $(image_size "$BASE_IMAGE"))"
CHECKED=
step check_image
log "OK with $ENGINE: ${CHECKED%; }"
