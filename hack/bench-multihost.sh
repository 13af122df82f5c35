#!/usr/bin/env bash
# Multi-host benchmarks (issue 6; not tests), as root, in a lab of network
# namespaces on this machine (`calico lab`). Results go to stdout, progress
# to stderr.
#
#   hack/bench-multihost.sh                    # everything, ~3 minutes
#   N=50 ENDPOINTS=600 REPEAT=5 hack/bench-multihost.sh
#
# 1. Lab: `calico lab up --hosts 2` and `calico lab down` (REPEAT times, an
#    empty lab: nodes running, no workloads).
# 2. docker run -> reachable: N times `docker run -d` of a busybox container
#    on host2, then ping from a container on host1 (10 ms apart) until it
#    answers. Time from just before `docker run -d` to the first reply, and
#    to `docker run -d` returning. The first container on host2 claims
#    host2's first block, so only it waits for a BGP advertisement; the
#    others land in a block whose route host1 already has. Then `lab down`
#    of that lab with its N+1 containers.
# 3. ENDPOINTS workload endpoints spread over 3 hosts, through the real
#    address and endpoint path: `calico ipam assign --node hostN --endpoint`
#    (one handle per endpoint, one client per host, in parallel), one veth
#    per endpoint made by this script in the host's namespace, and all
#    WorkloadEndpoints in one `calico apply`. No containers: 1,000 busybox
#    containers need ~14 MB of containerd-shim each (~14 GB) and several
#    minutes to start and remove on 2 cores; the routes, BGP and nftables
#    work of the node is the same. Reported: each host's kernel routes with
#    proto 80 (local /32s, blackholes for its own blocks, BGP-learned block
#    routes), the BGP advertisements, per-block propagation (block claimed on
#    one host -> its route in another host's kernel, from `ip monitor`), and
#    the time until every host has every route.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:/usr/sbin:/sbin:$PATH"
N=${N:-30}
ENDPOINTS=${ENDPOINTS:-1000}
REPEAT=${REPEAT:-3}
LAB=${LAB:-bench}
BIN=$(readlink -f "${CALICO_BIN:-bin/calico}")
IMAGE=calico-lab/busybox:latest
WORK=$(mktemp -d /tmp/bench-multihost.XXXXXX)
MONITORS=()

[ -x "$BIN" ] || { echo "no calico binary at $BIN (make build)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces, dockerd)" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "needs /bin/busybox (busybox-static; hack/deps.sh)" >&2; exit 1; }

cleanup() {
  for pid in "${MONITORS[@]}"; do kill "$pid" 2>/dev/null || true; done
  "$BIN" lab down --name "$LAB" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench-multihost: $*" >&2; }
now() { echo "$EPOCHREALTIME"; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
on() { local h=$1; shift; "$BIN" lab exec --name "$LAB" "$h" -- "$@"; }
sock() { echo "unix://$(lab_dir run)/$1/docker.sock"; }
lab_dir() { if [ "$1" = run ]; then echo "/var/run/calico-lab/$LAB"; else echo "/var/lib/calico-lab/$LAB"; fi; }
netns() { echo "calab-$LAB-h${1#host}"; }
# dk HOST ARGS: the docker CLI against a lab host's dockerd, called directly
# (not through `lab exec`) so timings hold docker's own work only.
dk() { local h=$1; shift; docker -H "$(sock "$h")" "$@"; }

# stats FILE: nearest-rank p50/p99, max and mean of one number per line.
stats() {
  sort -n "$1" | awk '{ v[NR] = $1; s += $1 }
    function rank(p,  r) { r = int(p * NR / 100); if (r < p * NR / 100) r++; return v[r < 1 ? 1 : r] }
    END { if (NR) printf "p50 %s  p99 %s  max %s  mean %.0f  (n=%d)", rank(50), rank(99), v[NR], s / NR, NR }'
}

lab_up() { # HOSTS LOG
  "$BIN" lab up --name "$LAB" --hosts "$1" >"$2" 2>&1 || { cat "$2" >&2; return 1; }
}
lab_down() { "$BIN" lab down --name "$LAB" >>"$WORK/down.log" 2>&1; }
# wait_mesh HOSTS...: until every host's node status shows all its mesh peers
# (IPv4 and IPv6) Established; prints the milliseconds it waited.
wait_mesh() {
  local t0 h out rows est deadline
  t0=$(now); deadline=$(awk -v t="$t0" 'BEGIN { printf "%d", t + 60 }')
  for h in "$@"; do
    while :; do
      out=$(on "$h" calico node status 2>/dev/null || true)
      rows=$(grep -c 'node-to-node mesh' <<<"$out" || true)
      est=$(grep 'node-to-node mesh' <<<"$out" | grep -c Established || true)
      [ "$rows" -ge $(($# - 1)) ] && [ "$est" = "$rows" ] && break
      if [ "$(now | cut -d. -f1)" -gt "$deadline" ]; then echo "BGP mesh not established within 60 s on $h:" >&2; echo "$out" >&2; return 1; fi
      sleep 0.1
    done
  done
  ms "$t0" "$(now)"
}

log "lab $LAB: removing any leftover of an earlier run"
lab_down || true

echo "== Lab up/down (2 hosts, empty)"
: >"$WORK/up2" && : >"$WORK/down2"
for r in $(seq "$REPEAT"); do
  log "lab up/down round $r of $REPEAT"
  t0=$(now); lab_up 2 "$WORK/up.log"; t1=$(now); lab_down; t2=$(now)
  echo "$(ms "$t0" "$t1")" >>"$WORK/up2"
  echo "$(ms "$t1" "$t2")" >>"$WORK/down2"
done
echo "calico lab up --hosts 2 (ms):   $(stats "$WORK/up2")"
echo "calico lab down, empty (ms):    $(stats "$WORK/down2")"
echo "last lab up, per step:"
grep -E '\.\.\. ok' "$WORK/up.log" | sed 's/^/  /'

echo
echo "== docker run -d on host2 -> reachable from a container on host1 (N=$N)"
log "lab up (2 hosts) for docker run -> reachable"
lab_up 2 "$WORK/up.log"
mesh=$(wait_mesh host1 host2)
echo "BGP mesh established $mesh ms after lab up returned; measuring from then on"
for h in host1 host2; do
  dk "$h" network create --driver calico --ipam-driver calico-ipam benchnet >/dev/null
done
dk host1 run -d --name bench-observer --net benchnet "$IMAGE" sleep 1d >/dev/null
obs_pid=$(dk host1 inspect -f '{{.State.Pid}}' bench-observer)
: >"$WORK/run" && : >"$WORK/reach" && : >"$WORK/after" && : >"$WORK/inspect"
fails=0
for i in $(seq "$N"); do
  t0=$(now)
  dk host2 run -d --name "bench-c$i" --net benchnet "$IMAGE" sleep 1d >/dev/null
  t1=$(now)
  ip=$(dk host2 inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "bench-c$i")
  t2=$(now)
  # busybox ping prints a line per reply; the first one ends the wait.
  if grep -m1 -q 'bytes from' < <(nsenter -t "$obs_pid" -n timeout 12 /bin/busybox ping -w 10 -i 0.01 "$ip" 2>/dev/null); then
    t3=$(now)
  else
    fails=$((fails + 1)); t3=$(awk -v t="$t2" 'BEGIN { printf "%.6f", t + 10 }')
  fi
  echo "$(ms "$t0" "$t1")" >>"$WORK/run"
  echo "$(ms "$t0" "$t3")" >>"$WORK/reach"
  echo "$(ms "$t1" "$t3")" >>"$WORK/after"
  echo "$(ms "$t1" "$t2")" >>"$WORK/inspect"
  if [ "$i" = 1 ]; then first="run $(ms "$t0" "$t1") ms, reachable $(ms "$t0" "$t3") ms ($ip)"; fi
done
echo "docker run -d returned (ms):        $(stats "$WORK/run")"
echo "reachable from host1 (ms):          $(stats "$WORK/reach")   goal p99 < 1000"
echo "  of which after docker run -d returned (ms): $(stats "$WORK/after")"
echo "  unreachable after 10 s: $fails of $N"
echo "  first container on host2 (claims host2's block, waits for BGP): $first"
echo "  included in both: docker inspect for the address (ms), $(stats "$WORK/inspect")"
echo "  host1's routes with proto 80 afterwards:"
ip -n "$(netns host1)" route show proto 80 | sed 's/^/    /'
log "lab down ($((N + 1)) containers)"
t0=$(now); lab_down; t1=$(now)
echo "calico lab down, 2 hosts with $((N + 1)) containers: $(ms "$t0" "$t1") ms"

echo
echo "== $ENDPOINTS workload endpoints on 3 hosts: BGP table and convergence"
log "lab up (3 hosts)"
t0=$(now); lab_up 3 "$WORK/up.log"; t1=$(now)
mesh=$(wait_mesh host1 host2 host3)
echo "calico lab up --hosts 3: $(ms "$t0" "$t1") ms; BGP mesh established $mesh ms later"
HOSTS=(host1 host2 host3)
# Endpoint k lives on host (k mod 3)+1; its veth is calib<k>.
for hi in 0 1 2; do
  h=${HOSTS[$hi]}
  : >"$WORK/veth-$h"
  for ((k = hi; k < ENDPOINTS; k += 3)); do
    printf 'link add calib%04d type veth peer name bmhp%04d\nlink set calib%04d up\nlink set bmhp%04d up\n' "$k" "$k" "$k" "$k" >>"$WORK/veth-$h"
  done
  ip -n "$(netns "$h")" -batch "$WORK/veth-$h"
done
cat >"$WORK/profile.yaml" <<'EOF'
apiVersion: projectcalico.org/v3
kind: Profile
metadata:
  name: bench1k
spec:
  ingress:
  - action: Allow
    source:
      selector: bench == 'k1'
  egress:
  - action: Allow
EOF
on host1 calico apply -f "$WORK/profile.yaml" >/dev/null

# Route events in every host, stamped by the kernel-side reader (UTC).
for h in "${HOSTS[@]}"; do
  TZ=UTC ip -n "$(netns "$h")" -ts monitor route >"$WORK/mon-$h" 2>&1 &
  MONITORS+=($!)
done
cat >"$WORK/assign.sh" <<'EOF'
# assign.sh HOST FIRST STEP COUNT LOG: one `calico ipam assign` per endpoint;
# prints "k start end ip" with bash's microsecond clock.
h=$1; k=$2
while [ "$k" -lt "$4" ]; do
  s=$EPOCHREALTIME
  ip=$(calico ipam assign --handle "bench-w$k" --node "$h" --endpoint "default/$h-bench-w$k-eth0" 2>>"$5")
  echo "$k $s $EPOCHREALTIME $ip"
  k=$((k + $3))
done
EOF
log "assigning $ENDPOINTS addresses (one client per host)"
T0=$(now)
pids=()
for hi in 0 1 2; do
  on "${HOSTS[$hi]}" bash "$WORK/assign.sh" "${HOSTS[$hi]}" "$hi" 3 "$ENDPOINTS" "$WORK/assign-${HOSTS[$hi]}.log" >"$WORK/assign-${HOSTS[$hi]}" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
T1=$(now)

on host1 calico ipam show --show-blocks -o json >"$WORK/ipam.json"
# Blocks as "cidr node" (pool entries have a cidr but no node).
awk -F'"' '/"cidr":/ { c = $4 } /"node":/ { print c, $4 }' "$WORK/ipam.json" >"$WORK/blocks"
nblocks=$(wc -l <"$WORK/blocks")

for hi in 0 1 2; do
  h=${HOSTS[$hi]}
  awk -v h="$h" '$4 != "" { printf "---\napiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata:\n  name: %s-bench-w%d-eth0\n  namespace: default\n  labels:\n    bench: k1\nspec:\n  orchestrator: bench\n  workload: w%d\n  endpoint: eth0\n  node: %s\n  interfaceName: calib%04d\n  ipNetworks: [%s/32]\n  profiles: [bench1k]\n", h, $1, $1, h, $1, $4 }' "$WORK/assign-$h"
done >"$WORK/weps.yaml"
log "applying $ENDPOINTS workload endpoints"
T2=$(now)
on host1 calico apply -f "$WORK/weps.yaml" >/dev/null
T3=$(now)

# want HOST: "local blackhole via" that HOST must end with.
want() {
  local n; n=$(awk -v h="$1" '$4 != "" { n++ } END { print n + 0 }' "$WORK/assign-$1")
  awk -v h="$1" -v n="$n" '$2 == h { b++ } $2 != h { v++ } END { print n, b + 0, v + 0 }' "$WORK/blocks"
}
have() {
  ip -n "$(netns "$1")" route show proto 80 |
    awk '/^blackhole/ { b++; next } / via / { v++; next } / dev calib/ { l++ } END { print l + 0, b + 0, v + 0 }'
}
log "waiting until every host has every route"
deadline=$(awk -v t="$(now)" 'BEGIN { printf "%d", t + 180 }')
while :; do
  done_all=1
  for h in "${HOSTS[@]}"; do [ "$(have "$h")" = "$(want "$h")" ] || done_all=0; done
  [ "$done_all" = 1 ] && break
  if [ "$(now | cut -d. -f1)" -gt "$deadline" ]; then
    echo "NOT CONVERGED after 180 s:"
    for h in "${HOSTS[@]}"; do echo "  $h have (local blackhole via) $(have "$h"), want $(want "$h")"; done
    break
  fi
  sleep 0.05
done
T4=$(now)
for pid in "${MONITORS[@]}"; do kill "$pid" 2>/dev/null || true; done
MONITORS=()

echo "endpoints: $ENDPOINTS (veths + WorkloadEndpoints, no containers), per host: $(for h in "${HOSTS[@]}"; do printf '%s %s  ' "$h" "$(awk '$4 != ""' "$WORK/assign-$h" | wc -l)"; done)"
echo "IPAM: $ENDPOINTS x calico ipam assign (3 clients in parallel) (one calico process each) in $(secs "$T0" "$T1") s: $(awk -v n="$ENDPOINTS" -v a="$T0" -v b="$T1" 'BEGIN { printf "%.0f", n / (b - a) }') assigns/s; $nblocks blocks claimed"
echo "calico apply of $ENDPOINTS WorkloadEndpoints (one transaction): $(secs "$T2" "$T3") s"
echo "kernel routes with proto 80 per host (local /32, blackhole = own blocks, via = BGP-learned):"
for h in "${HOSTS[@]}"; do
  read -r l b v < <(have "$h")
  printf '  %s: %d routes = %d local + %d blackhole + %d via BGP\n' "$h" "$(ip -n "$(netns "$h")" route show proto 80 | wc -l)" "$l" "$b" "$v"
done
echo "BGP: each host advertises its affine blocks (Calico aggregates by block), so the table has $nblocks prefixes for $ENDPOINTS endpoints; per host:"
for h in "${HOSTS[@]}"; do
  own=$(awk -v h="$h" '$2 == h' "$WORK/blocks" | wc -l)
  printf '  %s advertises %d, learns %d;  agent metric %s\n' "$h" "$own" "$((nblocks - own))" \
    "$(on "$h" /bin/busybox wget -q -O - http://127.0.0.1:9091/metrics 2>/dev/null | grep -E '^calico_routes ' || echo 'calico_routes n/a')"
done

# Per-block propagation: the assign that got a block's first address claimed
# it (its start is the earliest the claim can have happened: delays are upper
# bounds by at most one assign's run time); the other hosts' `ip monitor`
# show when the block's route reached their kernels.
for h in "${HOSTS[@]}"; do cat "$WORK/assign-$h"; done >"$WORK/assign-all"
for h in "${HOSTS[@]}"; do
  awk -v h="$h" '
    function days(y, m, d) { if (m <= 2) { y--; m += 12 } return 365 * y + int(y / 4) - int(y / 100) + int(y / 400) + int((153 * (m - 3) + 2) / 5) + d - 719469 }
    /^\[/ && / via / && !/Deleted/ {
      ts = substr($1, 2, length($1) - 2); split(ts, a, /[-T:]/)
      t = days(a[1] + 0, a[2] + 0, a[3] + 0) * 86400 + a[4] * 3600 + a[5] * 60 + a[6]
      if (!($2 in seen)) { seen[$2] = 1; printf "%s %s %.6f\n", h, $2, t }
    }' "$WORK/mon-$h"
done >"$WORK/appear"
awk '
  function ipn(s,  a) { split(s, a, "."); return ((a[1] * 256 + a[2]) * 256 + a[3]) * 256 + a[4] }
  FILENAME ~ /blocks$/ { split($1, c, "/"); base[$1] = ipn(c[1]); size[$1] = 2 ^ (32 - c[2]); node[$1] = $2; next }
  FILENAME ~ /assign-all$/ {
    if ($4 == "") next
    x = ipn($4)
    for (b in base) if (x >= base[b] && x < base[b] + size[b] && (!(b in claim) || $2 < claim[b])) claim[b] = $2
    next
  }
  { if (($2 in claim) && node[$2] != $1) { printf "%.0f\n", ($3 - claim[$2]) * 1000; n++ } }
  END { if (!n) print "none" > "/dev/stderr" }' "$WORK/blocks" "$WORK/assign-all" "$WORK/appear" >"$WORK/prop" 2>/dev/null || true
nprop=$(wc -l <"$WORK/prop")
echo "BGP propagation, block claimed -> route in another host's kernel (ms): $(stats "$WORK/prop")  [expected $((nblocks * 2)) samples]"
last_via=$(awk '{ if ($3 > m) m = $3 } END { printf "%.6f", m }' "$WORK/appear")
[ "$nprop" -gt 0 ] && echo "all block routes on all hosts: $(secs "$T0" "$last_via") s after the first assign (the assigns took $(secs "$T0" "$T1") s)"
echo "calico apply -> every host has every route (local /32s for $ENDPOINTS endpoints): $(secs "$T2" "$T4") s (polled every ~0.1 s)"
echo "first assign -> every route on every host: $(secs "$T0" "$T4") s"
echo "node status, host1:"
on host1 calico node status 2>&1 | sed 's/^/  /'

log "lab down (3 hosts, $ENDPOINTS endpoints)"
t0=$(now); lab_down; t1=$(now)
echo "calico lab down, 3 hosts with $ENDPOINTS endpoints (no containers): $(ms "$t0" "$t1") ms"
