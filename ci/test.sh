#!/usr/bin/env bash
# Sets up this machine and runs the whole test suite: rustfmt and clippy, unit tests, EAL
# integration tests on vdevs (net_null, net_ring, net_pcap), the binary's behaviour on bad
# input, malformed traffic, exhaustion and signals, a smoke run of the bench against
# dpdk-testpmd, the e1000 and vhost-user checks in QEMU guests (ci/e1000-test.py,
# ci/vhost-test.py), the container image with Docker, then a short run of every fuzz target.
# Ends with one line totalling every test binary's (and VM check's) results.
#
# Variables:
#   LONG=1             long mode: each fuzz target for LONG_FUZZ_SECONDS (default 300), a
#                      soak of SOAK_SECONDS (default 300) that checks for leaks and growth, and
#                      the full container build (compile in the builder image) with docker
#                      and with podman instead of the quick container check
#   FUZZ_SECONDS=N     per fuzz target in the normal mode (default 10; 0 skips fuzzing)
#   TEST_THREADS=N     cargo test threads (default 2)
#   DP_GUEST_ACCEL=tcg|kvm  force the guests' accelerator (default: KVM where a probe boot works)
# Fuzzing needs cargo-fuzz (installed here if missing) and runs on stable Rust through
# RUSTC_BOOTSTRAP=1; when cargo-fuzz cannot be installed, fuzzing is skipped with a note.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
cargo build --locked --workspace --all-targets
log=$(mktemp)
status=0
# Style and lints (rustfmt.toml; clippy with every `unsafe` block's SAFETY comment required by
# [workspace.lints] in Cargo.toml). A failure fails the run but the tests still run.
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
cargo fmt --all --check && rustfmt --edition 2021 --check fuzz/fuzz_targets/*.rs || { echo "cargo fmt: not formatted (run cargo fmt --all)"; status=1; }
cargo clippy --locked --workspace --all-targets -- -D warnings || { echo "cargo clippy: warnings"; status=1; }
cargo test --locked --workspace --no-fail-fast -- --test-threads="${TEST_THREADS:-2}" 2>&1 | tee "$log" || status=$?
# The total of every test binary's results is printed last, after fuzzing and the soak.
summary() {
    awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
    rm -f "$log"
}
trap summary EXIT

# --- Bench smoke run: one short pair of null-io, memif-io-64 and l3fwd-v4 (against DPDK's
# l3fwd, with instructions per packet under callgrind), with the debug build. It fails when a
# side forwards nothing, a process exits non-zero or the forwarder's counters do not add up.
echo "bench smoke run (ci/bench.py --smoke; the real measurement is ci/bench.py):"
ci/bench.py --smoke --bin target/debug/dataplane --out target/bench-smoke || status=1
# Route changes while forwarding (ci/bench-routes.py; the 1 M-route load is LONG=1 only).
echo "route bench smoke run (ci/bench-routes.py --smoke):"
ci/bench-routes.py --smoke --bin target/debug/dataplane --json target/bench-routes-smoke.json || status=1
if [[ "${LONG:-0}" == 1 ]]; then
    ci/bench-routes.py --reps 1 --seconds 3 --long --bin target/debug/dataplane --json target/bench-routes-long.json || status=1
fi

# --- Real NICs and VMs: QEMU guests (ci/guest.py installs QEMU and caches a guest kernel) ---
# DPDK's e1000 PMD on emulated e1000/e1000e NICs inside a guest, and a guest's virtio-net on the
# forwarder's vhost-user port. Each is counted in the closing line as one test; exit 77 (QEMU
# cannot start at all) counts as skipped. Full output in target/<check>.log.
# And FRR (ci/frr-test.py, installs Debian's frr): zebra's FPM stream drives the forwarder's
# routes, with staticd, BGP and a zebra restart; skipped (77) only where FRR cannot be installed.
for check in e1000 vhost frr; do
    rc=0
    ci/$check-test.py --bin target/debug/dataplane >"target/$check-test.log" 2>&1 || rc=$?
    case $rc in
    0)
        grep -E "^$check-test(\[.*\])?: " "target/$check-test.log"
        echo "test result: ok. 1 passed; 0 failed; 0 ignored ($check-test)" >>"$log" ;;
    77)
        echo "$check-test: $(grep -m1 '^SKIP' "target/$check-test.log")"
        echo "test result: ok. 0 passed; 0 failed; 1 ignored ($check-test)" >>"$log" ;;
    *)
        echo "$check-test: FAILED (exit $rc; full log target/$check-test.log), its last lines:"
        tail -60 "target/$check-test.log"
        echo "test result: FAILED. 0 passed; 1 failed; 0 ignored ($check-test)" >>"$log"
        status=1 ;;
    esac
done

# --- Container image (ci/container.sh: Docker, starting and stopping its own dockerd when none
# runs). Always: the image around the binary built above (no compile in the builder image), run
# on net_null without and with hugepages; about 15 s once the base image and the layers are
# cached, 1 to 2 min on a fresh machine (docker.io installed, bookworm debootstrapped).
# LONG=1: the full build (builder image, release compile inside it) with docker and podman.
container_check() {
    local what=$1 rc=0 log=target/container-$1.log
    shift
    env "$@" ci/container.sh >"$log" 2>&1 || rc=$?
    case $rc in
        0) grep -E '^container: (engine|built|OK)' "$log" ;;
        77) echo "container ($what): $(grep -m1 -o 'SKIP.*' "$log")" ;;
        *) echo "container ($what): FAILED (whole log: $log):"; grep '^container:' "$log" | tail -n 5; status=1 ;;
    esac
}
if [[ "${LONG:-0}" == 1 ]]; then
    container_check docker ENGINE=docker
    container_check podman ENGINE=podman
else
    container_check docker-quick ENGINE=docker BINARY=target/debug/dataplane DURATION=3
fi

# --- Fuzzing (fuzz/, its own workspace: builds only the dataplane library, no EAL) ---------
if [[ "${LONG:-0}" == 1 ]]; then
    fuzz_seconds=${LONG_FUZZ_SECONDS:-300}
else
    fuzz_seconds=${FUZZ_SECONDS:-10}
fi
if (( fuzz_seconds > 0 )); then
    if ! cargo fuzz --version >/dev/null 2>&1; then
        cargo install --locked cargo-fuzz >/dev/null 2>&1 || echo "fuzz: cannot install cargo-fuzz; fuzzing skipped"
    fi
    if cargo fuzz --version >/dev/null 2>&1; then
        export RUSTC_BOOTSTRAP=1
        # New inputs go to a scratch corpus; fuzz/corpus/<target> holds the seeds only.
        scratch=target/fuzz-corpus
        for t in parse forward local neigh config fpm; do
            mkdir -p "$scratch/$t"
            dirs=("$scratch/$t" "fuzz/corpus/$t")
            [[ -d fuzz/regressions/$t ]] && dirs+=("fuzz/regressions/$t")
            if (cd fuzz && cargo fuzz run -O "$t" "${dirs[@]/#/../}" -- \
                    -max_total_time="$fuzz_seconds" -max_len=4096 -print_final_stats=1) >"$scratch/$t.log" 2>&1; then
                echo "fuzz $t: $(grep -m1 -o 'Done [0-9]* runs in [0-9]* second(s)' "$scratch/$t.log"), no crash"
            else
                echo "fuzz $t: FAILED (crash input in fuzz/artifacts/$t/; log $scratch/$t.log):"
                grep -m3 -E "panicked at|^[^ ].*(ERROR|error)" "$scratch/$t.log" || tail -5 "$scratch/$t.log"
                status=1
            fi
        done
    fi
fi

# --- Soak (LONG=1): l3fwd with extensions and accounting, on endless pcap traffic and behind a
# dpdk-testpmd txonly generator over net_memif
if [[ "${LONG:-0}" == 1 ]]; then
    soak=${SOAK_SECONDS:-300}
    dir=$(mktemp -d)
    python3 - "$dir" <<'PY'
import struct, sys
d = sys.argv[1]
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
open(f"{d}/empty.pcap", "wb").write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
with open(f"{d}/in.pcap", "wb") as out:
    out.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    for i in range(4000):
        proto = (17, 6, 1)[i % 3]
        l4 = struct.pack("!HHHH", 1000 + i % 100, 53, 26, 0) + bytes(18) if proto == 17 else \
             struct.pack("!HHIIBBHHH", 1000, 80, i, 0, 0x50, 0x10, 512, 0, 0) + bytes(6) if proto == 6 else \
             struct.pack("!BBHHH", 8, 0, 0, 1, i & 0xffff) + bytes(18)
        ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), i & 0xffff, 0, 64, proto, 0, bytes([10, 0, 0, 2]), bytes([10, 1, i % 250 // 10, i % 10 + 1])))
        ip[10:12] = struct.pack("!H", csum(bytes(ip)))
        f = bytes([2, 0, 0, 0, 0, 0x10, 2, 0, 0, 0, 0, 0x99, 8, 0]) + bytes(ip) + l4
        out.write(struct.pack("<IIII", 0, i, len(f), len(f)) + f)
PY
    cat >"$dir/soak.toml" <<TOML
[eal]
file_prefix = "dp-soak-$$"
args = ["--no-huge", "--no-shconf", "--no-telemetry", "-m", "1024"]
[forward]
mode = "l3fwd"
[extensions]
trace_every = 4
flow = true
[accounting]
[[port]]
name = "src"
device = "net_pcap0"
args = "rx_pcap=$dir/in.pcap,tx_pcap=/dev/null,infinite_rx=1"
[[port]]
name = "dst"
device = "net_pcap1"
args = "rx_pcap=$dir/empty.pcap,tx_pcap=/dev/null"
[[route]]
prefix = "10.1.0.0/16"
port = "dst"
via_mac = "02:00:00:00:01:02"
[[worker]]
lcore = 1
rx = [{ port = "src", queue = 0 }, { port = "dst", queue = 0 }]
TOML
    # A dpdk-testpmd txonly generator as memif server (UDP to 198.18.0.2), for the second soak.
    cat >"$dir/soak-memif.toml" <<TOML
[eal]
file_prefix = "dp-soak-memif-$$"
# net_memif connects two processes here only on hugepages (as in ci/bench.py).
args = ["--in-memory", "-m", "1024"]
[forward]
mode = "l3fwd"
[extensions]
trace_every = 4
flow = true
[accounting]
[[port]]
name = "m0"
device = "net_memif0"
args = "role=client,socket=$dir/memif.sock,socket-abstract=no"
# Routed back out of m0, where the generator never reads: the TX backlog and its
# accounting are exercised all the time.
[[route]]
prefix = "198.18.0.0/15"
port = "m0"
via_mac = "02:00:00:00:01:02"
[[worker]]
lcore = 1
rx = [{ port = "m0", queue = 0 }]
TOML
    # Runs the forwarder on config $1 for $soak seconds and checks that it exited 0 with
    # nothing outstanding (mbufs, extension areas, charged pages) and no RSS growth.
    soak_run() {
        local cfg=$1 what=$2 pid early late rc=0
        echo "soak: ${soak}s of l3fwd with extensions and accounting ($what)"
        target/debug/dataplane --config "$cfg" --duration "$soak" --stats-interval 10 \
            --stats-json "$cfg.json" >"$cfg.out" 2>&1 &
        pid=$!
        rss() { awk '/^VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0; }
        sleep $(( soak / 10 + 2 )); early=$(rss)
        sleep $(( soak * 8 / 10 )); late=$(rss)
        wait "$pid" || rc=$?
        python3 - "$cfg.json" "$early" "$late" "$rc" <<'PY' || { status=1; tail -20 "$cfg.out"; }
import json, sys
r = json.load(open(sys.argv[1])); early, late, rc = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
pools = {k: v["in_use"] for k, v in r["pools"].items()}
pages = {k: v["pages"] for k, v in r.get("memory", {}).get("protocols", {}).items()}
fwd = r["stats"]["tx_packets"]
print(f"soak: exit {rc}, forwarded {fwd}, outstanding mbufs/areas {pools}, charged pages {pages}, RSS {early} kB -> {late} kB")
ok = rc == 0 and r["clean"] and not any(pools.values()) and not any(pages.values()) and fwd > 0 and late <= early * 1.05 + 1024
sys.exit(0 if ok else 1)
PY
    }
    soak_run "$dir/soak.toml" "net_pcap infinite_rx, UDP/TCP/ICMP"
    dpdk-testpmd -l 0,1 --main-lcore 1 --no-pci --in-memory -m 1024 --file-prefix "dp-soak-gen-$$" \
        --vdev "net_memif0,role=server,socket=$dir/memif.sock,socket-abstract=no" -- \
        --forward-mode=txonly --txpkts=64 --stats-period 10 --total-num-mbufs 16384 >"$dir/gen.out" 2>&1 </dev/null &
    gen=$!
    for _ in $(seq 100); do [[ -S $dir/memif.sock ]] && break; sleep 0.1; done
    soak_run "$dir/soak-memif.toml" "dpdk-testpmd txonly over net_memif"
    kill -INT "$gen" 2>/dev/null; wait "$gen" 2>/dev/null || true
    rm -rf "/var/run/dpdk/dp-soak-gen-$$"
    rm -rf "$dir"
fi
exit "$status"
