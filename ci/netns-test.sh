#!/usr/bin/env bash
# Real traffic through the forwarder: two Linux hosts in network namespaces, in different
# IPv4 and IPv6 subnets, routed by the forwarder in l3fwd mode over veth pairs.
#
#     ci/netns-test.sh [path/to/dataplane] [af_packet|af_xdp|all]
#
# (default: target/release/dataplane, else target/debug/dataplane; driver af_packet.)
#
#   h1 (netns dp-h1-PID)        root netns: dataplane            h2 (netns dp-h2-PID)
#   10.0.1.2/24 2001:db8:1::2 -- dpa-PID [h1]  [h2] dpb-PID -- 10.0.2.2/24 2001:db8:2::2
#   default via 10.0.1.1            10.0.1.1    10.0.2.1         default via 10.0.2.1
#
# The forwarder holds the root-side veth ends (up, no addresses, IPv6 off so the kernel
# sends nothing on them) through net_af_packet (or net_af_xdp). The hosts resolve their
# router address with ARP / neighbour discovery, which the forwarder's slow path answers
# with the port's MAC, and the forwarder resolves the hosts the same way: no host's MAC is
# in its config (each port's own subnet is a connected route).
#
# Checks, in order: the hosts reach their router (ARP/NS and echo answered by the slow
# path); how long resolving a host takes (the first ping to an address the forwarder never
# saw, h2's second one, against the next ones); ping and ping -6 h1 -> h2 with replies at
# TTL/hop limit 63 (one forwarding hop from a host at 64); an iperf3 TCP stream h1 -> h2
# for IPERF_SECONDS (default 3) s, its throughput printed; the forwarder's neighbour table
# (`dataplane ctl show neighbours`) with both hosts REACHABLE on both families, and h2's
# `ip -6 neigh` showing the forwarder as a router; a link flap; h2 changing its MAC
# (traffic follows once the entry went stale and was probed again); h2 losing its
# addresses (its entry ends FAILED after the probes, the packets held for it are dropped
# and counted); then the forwarder is stopped and its --stats-json must show exit 0,
# clean (pools full, every memory account back at zero, no errors), each port's rx/tx
# above what ping and iperf3 sent, punted > 0 and the neighbour counters. Prints
# "netns-test: PASS ..." / "netns-test: FAIL ..." and exits 0 / 1; exits 77 with
# "SKIP: ..." when this machine cannot create network namespaces.
#
# Everything it creates (two namespaces, their veth pairs, the iperf3 server, the
# forwarder, a temp dir, the EAL runtime dir) is removed on exit, also on failure or
# Ctrl-C; it touches no other interface. Needs root, iproute2, iputils-ping, iperf3,
# ethtool and python3 (ci/setup.sh installs them).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-}
DRIVER=${2:-${NETNS_DRIVER:-af_packet}}
IPERF_SECONDS=${IPERF_SECONDS:-3}
if [ -z "$BIN" ]; then
  for b in "$ROOT/target/release/dataplane" "$ROOT/target/debug/dataplane"; do
    if [ -x "$b" ]; then BIN=$b; break; fi
  done
fi
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
  echo "netns-test: FAIL: no dataplane binary (give its path, or cargo build --release)" >&2
  exit 1
fi
if [ "$DRIVER" = all ]; then
  rc=0
  for d in af_packet af_xdp; do "$0" "$BIN" "$d" || rc=1; done
  exit $rc
fi
case "$DRIVER" in af_packet | af_xdp) ;; *) echo "netns-test: unknown driver $DRIVER (af_packet, af_xdp, all)" >&2; exit 2 ;; esac

log() { echo "netns-test[$DRIVER]: $*"; }
fail() { log "FAIL: $*"; exit 1; }

for tool in ip ping iperf3 ethtool python3; do
  command -v "$tool" >/dev/null || fail "$tool not found (run ci/setup.sh)"
done

ID=$$
NS1=dp-h1-$ID NS2=dp-h2-$ID
IF1=dpa-$ID IF2=dpb-$ID # root side, handed to the forwarder
PREFIX=dp-netns-$DRIVER-$ID
TMP=$(mktemp -d "${TMPDIR:-/tmp}/dp-netns.XXXXXX")
FWD_PID="" SRV_PID=""
CREATED=()

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then kill "$SRV_PID"; wait "$SRV_PID" 2>/dev/null; fi
  if [ -n "$FWD_PID" ] && kill -0 "$FWD_PID" 2>/dev/null; then
    kill -INT "$FWD_PID"
    for _ in $(seq 50); do kill -0 "$FWD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$FWD_PID" 2>/dev/null && kill -KILL "$FWD_PID"
    wait "$FWD_PID" 2>/dev/null
  fi
  for ns in "${CREATED[@]}"; do
    # Anything still running inside our namespace (only ours), then the namespace: its
    # veth end goes with it, and so does the peer in the root namespace.
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  for ifc in "$IF1" "$IF2"; do ip link show "$ifc" >/dev/null 2>&1 && ip link del "$ifc"; done
  rmdir "/var/run/dpdk/$PREFIX" 2>/dev/null
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

in1() { ip netns exec "$NS1" "$@"; }
in2() { ip netns exec "$NS2" "$@"; }

# --- namespaces and veth pairs -------------------------------------------------------
if ! err=$(ip netns add "$NS1" 2>&1); then
  echo "SKIP: cannot create network namespaces here (ip netns add: $err)"
  exit 77
fi
CREATED+=("$NS1")
ip netns add "$NS2"
CREATED+=("$NS2")

# $1 netns, $2 root-side name, $3 IPv4/len, $4 router IPv4, $5 IPv6/len, $6 router IPv6
setup_host() {
  local ns=$1 rif=$2
  # Created inside the namespace, so no interface ever appears in the root namespace
  # under a name we did not choose; the root side is then moved out.
  ip -n "$ns" link add veth0 type veth peer name "$rif"
  ip -n "$ns" link set "$rif" netns 1
  # The forwarder's end: no addresses, no IPv6 (the kernel would send RS/MLD/DAD on it).
  sysctl -qw "net.ipv6.conf.$rif.disable_ipv6=1"
  ip link set "$rif" up
  ip -n "$ns" link set lo up
  ip -n "$ns" link set veth0 up
  ip -n "$ns" addr add "$3" dev veth0
  ip -n "$ns" -6 addr add "$5" dev veth0 nodad
  ip -n "$ns" route add default via "$4"
  ip -n "$ns" -6 route add default via "$6"
  # veth TX checksum offload leaves a partial checksum (CHECKSUM_PARTIAL) that nobody
  # completes once the frame leaves through af_packet/af_xdp: compute it in software.
  ip netns exec "$ns" ethtool -K veth0 tx off >/dev/null
}
setup_host "$NS1" "$IF1" 10.0.1.2/24 10.0.1.1 2001:db8:1::2/64 2001:db8:1::1
setup_host "$NS2" "$IF2" 10.0.2.2/24 10.0.2.1 2001:db8:2::2/64 2001:db8:2::1

# h2's second address: one the forwarder has never seen, to time a resolution.
ip -n "$NS2" addr add 10.0.2.3/24 dev veth0
ip -n "$NS2" -6 addr add 2001:db8:2::3/64 dev veth0 nodad

mac_of() { ip -n "$1" -j link show dev veth0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])'; }
MAC1=$(mac_of "$NS1")
MAC2=$(mac_of "$NS2")
log "h1 $NS1 veth0 $MAC1 <-> $IF1 | h2 $NS2 veth0 $MAC2 <-> $IF2 (the forwarder's config names neither MAC)"

# --- the forwarder ---------------------------------------------------------------------
CFG=$TMP/netns-$DRIVER.toml
sed -e "s/@PREFIX@/$PREFIX/g" -e "s/@H1_IF@/$IF1/g" -e "s/@H2_IF@/$IF2/g" \
  "$ROOT/configs/netns-$DRIVER.toml" >"$CFG"
if grep -qi "$MAC1\|$MAC2" "$CFG"; then fail "a host's MAC is in the forwarder's config"; fi
if [ "$DRIVER" = af_xdp ]; then
  ulimit -l unlimited 2>/dev/null || true # UMEM is locked memory (older kernels count it)
fi
JSON=$TMP/stats.json
"$BIN" --config "$CFG" --duration 120 --stats-interval 0 --stats-json "$JSON" \
  </dev/null >"$TMP/fwd.out" 2>"$TMP/fwd.err" &
FWD_PID=$!

fwd_log() { log "forwarder stdout:"; sed 's/^/  /' "$TMP/fwd.out"; log "forwarder stderr:"; sed 's/^/  /' "$TMP/fwd.err"; }

# Ready when each host gets an echo reply from its router (which needs ARP first).
ready=0
for _ in $(seq 100); do
  kill -0 "$FWD_PID" 2>/dev/null || { fwd_log; fail "the forwarder exited early"; }
  if in1 ping -c 1 -W 0.2 10.0.1.1 >/dev/null 2>&1 && in2 ping -c 1 -W 0.2 10.0.2.1 >/dev/null 2>&1; then
    ready=1
    break
  fi
  sleep 0.1
done
[ "$ready" = 1 ] || { fwd_log; fail "hosts got no echo reply from their router within 10 s"; }
log "router answers ARP and ping on both ports"
in1 ping -6 -c 1 -W 2 2001:db8:1::1 >/dev/null || fail "h1 gets no ping -6 reply from its router 2001:db8:1::1"
in2 ping -6 -c 1 -W 2 2001:db8:2::1 >/dev/null || fail "h2 gets no ping -6 reply from its router 2001:db8:2::1"
log "router answers NS and ping -6 on both ports"

# --- the forwarder's neighbour table ---------------------------------------------------------
# $1: address; prints "STATE MAC" from `dataplane ctl show neighbours`.
neigh() {
  "$BIN" ctl --config "$CFG" --json show neighbours 2>/dev/null | python3 -c '
import json, sys
for e in json.load(sys.stdin)["entries"]:
    if e["address"] == sys.argv[1]:
        print(e["state"], e["mac"])' "$1"
}
# $1: address, $2: state regexp, $3: seconds, $4: command run each time (keeps traffic going).
wait_neigh() {
  local end=$((SECONDS + $3)) got=""
  while [ $SECONDS -lt $end ]; do
    got=$(neigh "$1")
    if echo "$got" | grep -Eq "^($2) "; then return 0; fi
    eval "$4" >/dev/null 2>&1 || true
    sleep 0.1
  done
  log "neighbour $1: '$got', wanted $2"
  return 1
}

# --- how long resolving a host takes --------------------------------------------------------
# 10.0.2.3 is h2's second address, never seen by the forwarder: the first ping waits for
# the forwarder's ARP request and h2's reply; the next ones do not.
first_rtts() { # $1 family flag, $2 address: "first next" RTTs in ms
  in1 ping "$1" -c 4 -i 0.2 -W 2 "$2" | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | python3 -c '
import sys; t = [float(x) for x in sys.stdin.read().split()]
print(t[0], sorted(t[1:])[len(t[1:]) // 2]) if len(t) >= 2 else sys.exit(1)'
}
read -r RES4 NEXT4 < <(first_rtts -4 10.0.2.3) || fail "no replies from h2's second address 10.0.2.3"
read -r RES6 NEXT6 < <(first_rtts -6 2001:db8:2::3) || fail "no replies from h2's second address 2001:db8:2::3"
log "resolution: first ping to a new host ${RES4} ms (IPv4, ARP) and ${RES6} ms (IPv6, NS); the next ones ${NEXT4} / ${NEXT6} ms"

# --- ping through the forwarder ----------------------------------------------------------
PINGS=10
check_ping() { # $1 family flag, $2 destination
  local out
  out=$(in1 ping "$1" -c "$PINGS" -i 0.05 -W 2 "$2" 2>&1) || { echo "$out"; fail "ping $1 h1 -> $2 failed"; }
  echo "$out" | sed 's/^/  /'
  local got; got=$(echo "$out" | grep -c 'ttl=63' || true)
  [ "$got" -eq "$PINGS" ] || fail "ping $1 $2: $got of $PINGS replies with ttl=63 (one hop decrements TTL 64 to 63)"
  RTT=$(echo "$out" | sed -n 's/^rtt min\/avg\/max\/mdev = \([0-9.]*\/[0-9.]*\/[0-9.]*\)\/.*/\1/p')
  log "ping $1 h1 -> $2: $PINGS/$PINGS replies, ttl=63, rtt min/avg/max $RTT ms"
}
check_ping -4 10.0.2.2
RTT4=$RTT
check_ping -6 2001:db8:2::2
RTT6=$RTT

# --- iperf3 TCP stream through the forwarder -----------------------------------------------
in2 iperf3 -s -1 -B 10.0.2.2 >"$TMP/iperf3-server.out" 2>&1 &
SRV_PID=$!
for _ in $(seq 50); do in2 ss -ltn 2>/dev/null | grep -q ':5201 ' && break; sleep 0.1; done
in1 iperf3 -c 10.0.2.2 -t "$IPERF_SECONDS" -J >"$TMP/iperf3.json" 2>&1 ||
  { cat "$TMP/iperf3.json"; fail "iperf3 h1 -> 10.0.2.2 failed"; }
wait "$SRV_PID" 2>/dev/null || true
SRV_PID=""
read -r GBPS SEGS RETR < <(python3 - "$TMP/iperf3.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
e = r["end"]
sent = e["sum_sent"]
# Every byte the server received crossed the forwarder in segments of at most 1460 bytes
# (MTU 1500; TSO is off), so received bytes / 1460 is a lower bound on the data packets.
recv = e["sum_received"]
print(f'{recv["bits_per_second"] / 1e9:.2f}', recv["bytes"] // 1460, sent.get("retransmits", 0))
EOF
)
log "iperf3 TCP h1 -> h2 for ${IPERF_SECONDS}s: $GBPS Gbit/s (>= $SEGS segments, $RETR retransmits)"

# --- the neighbour table: both hosts REACHABLE, the forwarder a router to h2 --------------------
for a in 10.0.1.2 10.0.2.2 2001:db8:1::2 2001:db8:2::2; do
  case $a in *:*) f=-6 ;; *) f=-4 ;; esac
  case $a in 10.0.1.2) pingee=10.0.2.2 ;; 2001:db8:1::2) pingee=2001:db8:2::2 ;; *) pingee=$a ;; esac
  wait_neigh "$a" REACHABLE 10 "in1 ping $f -c 1 -W 1 $pingee" || fail "the forwarder's entry for $a never REACHABLE"
done
log "neighbour table: $(neigh 10.0.1.2) | $(neigh 10.0.2.2) | $(neigh 2001:db8:1::2) | $(neigh 2001:db8:2::2)"
"$BIN" ctl --config "$CFG" show neighbours | sed 's/^/  /'
in2 ip -6 neigh show 2001:db8:2::1 | grep -q router || fail "h2's ip -6 neigh does not show the forwarder as a router: $(in2 ip -6 neigh show 2001:db8:2::1)"
log "h2: ip -6 neigh $(in2 ip -6 neigh show 2001:db8:2::1)"

# --- link down and up again: forwarding resumes ----------------------------------------------
# The forwarder's side of h2's veth goes down (the kernel drops what af_packet sends on
# it), then up again; the same worker keeps polling, and pings get through once more.
ip link set "$IF2" down
if in1 ping -c 1 -W 1 10.0.2.2 >/dev/null 2>&1; then
  fail "ping h1 -> h2 got through while $IF2 was down"
fi
ip link set "$IF2" up
flapped=0
for _ in $(seq 50); do
  if in1 ping -c 1 -W 0.2 10.0.2.2 >/dev/null 2>&1; then flapped=1; break; fi
  sleep 0.1
done
[ "$flapped" = 1 ] || fail "forwarding did not resume within 10 s after $IF2 came back up"
log "link flap: no traffic while $IF2 was down, forwarding resumed after it came back up"

# --- h2 changes its MAC: traffic follows -----------------------------------------------------
# Nothing tells the forwarder (Linux sends no gratuitous ARP unless arp_notify): its entry
# keeps the old MAC until it goes stale and is probed again (DELAY, unicast probes to the
# old MAC unanswered, FAILED, a broadcast request answered with the new MAC), or until h2
# asks for its router itself.
NEWMAC=02:00:00:00:99:02
in2 ip link set dev veth0 address $NEWMAC
t0=$SECONDS
moved=0
for _ in $(seq 60); do
  if in1 ping -c 1 -W 0.5 10.0.2.2 >/dev/null 2>&1 && in1 ping -6 -c 1 -W 0.5 2001:db8:2::2 >/dev/null 2>&1; then moved=1; break; fi
done
[ "$moved" = 1 ] || fail "traffic to h2 did not follow its new MAC within 60 tries: $(neigh 10.0.2.2)"
# (ctl reads the table as the slow path last published it, every 100 ms.)
for a in 10.0.2.2 2001:db8:2::2; do
  for _ in $(seq 20); do neigh "$a" | grep -qi "$NEWMAC" && break; sleep 0.1; done
  neigh "$a" | grep -qi "$NEWMAC" || fail "the forwarder's entry for $a is not at $NEWMAC: $(neigh "$a")"
done
log "h2's MAC changed to $NEWMAC: traffic followed within $((SECONDS - t0)) s (entries re-probed: $(neigh 10.0.2.2))"

# --- h2 goes away: its entry fails, what was held for it is dropped and counted ----------------
in2 ip addr flush dev veth0
in1 ping -c 30 -i 0.2 -W 1 10.0.2.2 >/dev/null 2>&1 || true
wait_neigh 10.0.2.2 FAILED 10 true || fail "the entry for the vanished 10.0.2.2 did not end FAILED: $(neigh 10.0.2.2)"
log "h2 vanished: the forwarder's entry for 10.0.2.2 is $(neigh 10.0.2.2) after the probes"

# --- stop the forwarder and check its counters ---------------------------------------------
kill -INT "$FWD_PID"
status=0
wait "$FWD_PID" || status=$?
FWD_PID=""
sed -n '/--- dataplane report/,$p' "$TMP/fwd.out" | sed 's/^/  /'
if [ "$status" -ne 0 ]; then
  # net_af_xdp in DPDK 22.11 builds its UMEM on the application's mempool and, on close,
  # does not give back the mbufs it posted to the fill queue (xdp_umem_destroy only
  # forgets the pool): about one fill ring (2048) per port, plus TX not yet completed,
  # that no application can recover. Tolerated for af_xdp only, and only that leak.
  [ "$DRIVER" = af_xdp ] && [ "$status" -eq 1 ] && [ -s "$JSON" ] || { fwd_log; fail "the forwarder exited with status $status"; }
fi
python3 - "$JSON" "$SEGS" "$PINGS" "$DRIVER" "$NEWMAC" <<'EOF' || { fwd_log; fail "the forwarder's counters do not account for the traffic"; }
import json, re, sys
r = json.load(open(sys.argv[1]))
segs, pings, driver, newmac = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
bad = []
errors = list(r["errors"])
if driver == "af_xdp":
    leaks = [m for e in errors if (m := re.fullmatch(r"pool \S+ leaked (\d+) mbufs", e))]
    leaked = sum(int(m.group(1)) for m in leaks)
    if leaks and len(leaks) == len(errors) and leaked <= 2 * (2048 + 64):
        print(f"  known net_af_xdp (DPDK 22.11) leak on close: {leaked} mbufs left in the 2 ports' fill queues")
        errors = []
if errors or (not r["clean"] and driver != "af_xdp"):
    bad.append(f"run not clean: {errors}")
for name, p in r["pools"].items():
    if p["in_use"] != 0 and driver != "af_xdp":
        bad.append(f"pool {name}: {p['in_use']} mbufs in use")
ports = r["stats"]["ports"]
# h1 receives the data segments and the echo requests; h2 sends them on.
need = segs + 2 * pings
for name in ("h1", "h2"):
    p = ports[name]
    for key in ("rx_packets", "tx_packets", "ipackets", "opackets"):
        if p[key] <= pings * 2:
            bad.append(f"port {name}: {key} {p[key]} <= {pings * 2} echo requests/replies")
for key, port in (("rx_packets", "h1"), ("tx_packets", "h2")):
    if ports[port][key] < need:
        bad.append(f"port {port}: {key} {ports[port][key]} < {need} (iperf3 segments + pings)")
punted = sum(w["punted"] for w in r["softnet"].values())
injected = sum(w["injected"] for w in r["softnet"].values())
if punted == 0:
    bad.append("punted 0: no ARP/NS/echo reached the slow path")
sp = r.get("slow_path") or {}
if sp.get("answered", 0) == 0:
    bad.append("slow path answered nothing")
res = sp.get("resolution") or {}
if res.get("taken", 0) == 0 or res.get("sent", 0) == 0:
    bad.append(f"no packet waited for a neighbour and was sent: {res}")
if res.get("drops", {}).get("neigh_failed", 0) == 0:
    bad.append(f"nothing held for the vanished h2 was dropped as neigh_failed: {res}")
if punted != sp["answered"] + sp["ignored"] + sp["discarded"] + res["taken"]:
    bad.append(f"punted {punted} != answered + ignored + discarded + resolution taken: {sp}")
if res["taken"] != res["sent"] + sum(res["drops"].values()) + res["proto_mem"] + res["no_route"] + res["held_at_exit"] + res["send_full"]:
    bad.append(f"resolution does not add up: {res}")
entries = {e["address"]: e for e in r["neighbours"]["entries"]}
if entries.get("10.0.2.2", {}).get("state") != "FAILED":
    bad.append(f"10.0.2.2 not FAILED at exit: {entries.get('10.0.2.2')}")
if (entries.get("2001:db8:2::2", {}).get("mac") or "").lower() != newmac:
    bad.append(f"2001:db8:2::2 not at {newmac}: {entries.get('2001:db8:2::2')}")
mem = r.get("memory") or {}
held = {k: v for k, v in mem.get("consumers", {}).items() if v["bytes_charged"] or v["bytes_bypassed"]}
pages = {k: v["pages"] + v["unflushed_pages"] for k, v in mem.get("protocols", {}).items()}
groups = {k: v["bytes"] for k, v in mem.get("groups", {}).items()}
if held or any(pages.values()) or any(groups.values()):
    bad.append(f"memory not back to zero: consumers {held} pages {pages} groups {groups}")
neigh_q = mem.get("consumers", {}).get("neigh_queue", {})
if neigh_q.get("total_bytes_charged", 0) == 0:
    bad.append(f"nothing was charged to the neighbour queue: {neigh_q}")
s = r["stats"]
print(f"  neighbours: {len(entries)} entries, resolution {res}, neighbour queue peak {neigh_q.get('peak_bytes')} bytes")
print(f"  counters: h1 rx {ports['h1']['rx_packets']} tx {ports['h1']['tx_packets']} | "
      f"h2 rx {ports['h2']['rx_packets']} tx {ports['h2']['tx_packets']} | punted {punted} "
      f"injected {injected} answered {sp.get('answered')} | dropped {s['dropped']} "
      f"({', '.join(f'{k} {v}' for k, v in s['drops'].items() if v) or 'none'}) | clean {r['clean']}")
for b in bad:
    print("  " + b)
sys.exit(1 if bad else 0)
EOF

exit_note="clean exit"
[ "$status" -eq 0 ] || exit_note="exit 1 only for the known af_xdp fill-queue leak"
log "PASS: resolution ${RES4} ms (IPv4) ${RES6} ms (IPv6); ping rtt min/avg/max $RTT4 ms (IPv4), $RTT6 ms (IPv6), ttl=63; iperf3 TCP $GBPS Gbit/s; both hosts REACHABLE; forwarding resumed after a link flap; a MAC change followed; a vanished host FAILED and counted; counters account for the traffic; $exit_note"
