#!/usr/bin/env bash
# Churn benchmark (issue 14 §3; not a test), as root, in a two-host lab
# (`calico lab up --hosts 2`: real etcd, dockerd, nftables, BIRD/BGP).
# Results go to stdout, progress to stderr.
#
#   hack/bench-churn.sh                          # 60 s, one container every 2 s
#   DURATION=120 INTERVAL=1 LIFETIME=15 hack/bench-churn.sh
#
# For DURATION seconds a container is started every INTERVAL seconds,
# alternately on host1 and host2, on a calico network; each lives LIFETIME
# seconds after it started and is then removed with `docker rm -f`. So the
# node sees a steady rate of starts and removals with about
# LIFETIME/INTERVAL containers alive. Per container:
#
#   run        `docker run -d` (plugin: address, veth, endpoint)
#   program    from just before `docker run -d` until its /32 route (proto
#              80, made by the node agent from the WorkloadEndpoint) is in
#              its host's kernel
#   reach      from just before `docker run -d` until a container on the
#              OTHER host gets a ping reply from it (BGP, routes and
#              nftables on both hosts)
#   unprogram  from just before `docker rm -f` until its route is gone
#
# program and reach are also given from `docker run -d` returning: the
# node's share, since Docker (image, containerd, the plugin's calls) takes
# most of the time before.
#
# At the end (every churned container removed): `calico ipam check` must
# report 0 problems (no leaked address), IPAM must hold as many addresses as
# before it (the observers'), and no churned container's route may be left.
# The load average is printed at the start and the end: the machine is
# shared, and these are latencies, not ratios. Ends with summary lines
# "NAME VALUE": churn_program_p99_ms and churn_reach_p99_ms (from `docker
# run -d` returning), churn_leaked_addresses.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:/usr/sbin:/sbin:$PATH"
DURATION=${DURATION:-60}
INTERVAL=${INTERVAL:-2}
LIFETIME=${LIFETIME:-10}
LAB=${LAB:-churn}
BIN=$(readlink -f "${CALICO_BIN:-bin/calico}")
IMAGE=calico-lab/busybox:latest
WORK=$(mktemp -d /tmp/bench-churn.XXXXXX)

[ -x "$BIN" ] || { echo "no calico binary at $BIN (make build)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces, dockerd)" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "needs /bin/busybox (busybox-static; hack/deps.sh)" >&2; exit 1; }
command -v jq >/dev/null || { echo "needs jq (hack/deps.sh)" >&2; exit 1; }

cleanup() {
  "$BIN" lab down --name "$LAB" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench-churn: $*" >&2; }
now() { echo "$EPOCHREALTIME"; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }
on() { local h=$1; shift; "$BIN" lab exec --name "$LAB" "$h" -- "$@"; }
sock() { echo "unix:///var/run/calico-lab/$LAB/$1/docker.sock"; }
netns() { echo "calab-$LAB-h${1#host}"; }
dk() { local h=$1; shift; docker -H "$(sock "$h")" "$@"; }
other() { if [ "$1" = host1 ]; then echo host2; else echo host1; fi; }
# stats FILE COLUMN: nearest-rank percentiles of one column (empty = failed).
stats() {
  awk -v c="$2" '$c != "" && $c != "-" { print $c }' "$1" | sort -n | awk '{ v[NR] = $1; s += $1 }
    function rank(p,  r) { r = int(p * NR / 100); if (r < p * NR / 100) r++; return v[r < 1 ? 1 : r] }
    END { if (NR) printf "p50 %s  p90 %s  p99 %s  max %s  mean %.0f  (n=%d)", rank(50), rank(90), rank(99), v[NR], s / NR, NR; else printf "no samples" }'
}
# route_state HOST IP: "up" when IP's /32 route from the agent is there.
route_state() { if ip -n "$(netns "$1")" route show "$2/32" proto 80 2>/dev/null | grep -q dev; then echo up; else echo down; fi; }
# wait_route HOST IP up|down: polls (5 ms apart, 15 s deadline); prints the
# time it saw the state, or nothing on timeout.
wait_route() {
  local deadline; deadline=$(awk -v t="$(now)" 'BEGIN { printf "%d", t + 15 }')
  while [ "$(route_state "$1" "$2")" != "$3" ]; do
    [ "$(now | cut -d. -f1)" -gt "$deadline" ] && return 0
    sleep 0.005
  done
  now
}

# lifecycle I HOST START: one container's life; appends
# "i host run program reach rm unprogram ip program-after-run reach-after-run"
# (ms, "-" = timed out).
lifecycle() {
  local i=$1 h=$2 start=$3 o t0 t1 t2 t3 t4 t5 t6 ip name=churn-c$1 prog=- reach=- unprog=- prog1=- reach1=-
  o=$(other "$h")
  t0=$(now)
  if ! dk "$h" run -d --name "$name" --net churnnet "$IMAGE" sleep 1d >/dev/null 2>>"$WORK/errors"; then
    echo "$i $h - - - - - run-failed" >>"$WORK/samples"; return
  fi
  t1=$(now)
  ip=$(dk "$h" inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$name")
  t2=$(wait_route "$h" "$ip" up); [ -n "$t2" ] && prog=$(ms "$t0" "$t2") && prog1=$(ms "$t1" "$t2")
  if grep -m1 -q 'bytes from' < <(nsenter -t "${OBS[$o]}" -n timeout 12 /bin/busybox ping -w 10 -i 0.01 "$ip" 2>/dev/null); then
    t3=$(now); reach=$(ms "$t0" "$t3"); reach1=$(ms "$t1" "$t3")
  fi
  # Pacing (the workload's schedule, not a synchronisation): live until
  # START + LIFETIME.
  local left; left=$(awk -v s="$start" -v l="$LIFETIME" -v n="$(now)" 'BEGIN { d = s + l - n; printf "%.3f", (d > 0 ? d : 0) }')
  sleep "$left"
  t4=$(now)
  dk "$h" rm -f "$name" >/dev/null 2>>"$WORK/errors" || echo "rm $name failed" >>"$WORK/errors"
  t6=$(now)
  t5=$(wait_route "$h" "$ip" down); [ -n "$t5" ] && unprog=$(ms "$t4" "$t5")
  echo "$i $h $(ms "$t0" "$t1") $prog $reach $(ms "$t4" "$t6") $unprog $ip $prog1 $reach1" >>"$WORK/samples"
}

log "lab $LAB: removing any leftover of an earlier run"
"$BIN" lab down --name "$LAB" >/dev/null 2>&1 || true
log "lab up (2 hosts)"
t0=$(now)
"$BIN" lab up --name "$LAB" --hosts 2 >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; exit 1; }
log "lab up took $(ms "$t0" "$(now)") ms"
for h in host1 host2; do
  dk "$h" network create --driver calico --ipam-driver calico-ipam churnnet >/dev/null
done
# One observer per host pings the other host's churned containers; each
# also claims its host's first block, so churn does not wait for the first
# BGP advertisement of a block.
declare -A OBS
for h in host1 host2; do
  dk "$h" run -d --name "churn-obs-$h" --net churnnet "$IMAGE" sleep 1d >/dev/null
  OBS[$h]=$(dk "$h" inspect -f '{{.State.Pid}}' "churn-obs-$h")
done
obs_ips=$(for h in host1 host2; do dk "$h" inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "churn-obs-$h"; done)
# Both observers reach each other before the clock starts.
deadline=$(awk -v t="$(now)" 'BEGIN { printf "%d", t + 120 }')
until nsenter -t "${OBS[host1]}" -n /bin/busybox ping -c1 -W1 "$(tail -1 <<<"$obs_ips")" >/dev/null 2>&1; do
  [ "$(now | cut -d. -f1)" -gt "$deadline" ] && { echo "observers not reachable across hosts after 120 s" >&2; exit 1; }
done
: >"$WORK/samples"; : >"$WORK/errors"
# in_use: addresses IPAM holds over all pools (the observers' before the churn).
in_use() { on host1 calico ipam show -o json | jq '[.pools[].inUse] | add'; }
inuse0=$(in_use)

n=$(awk -v d="$DURATION" -v i="$INTERVAL" 'BEGIN { printf "%d", d / i }')
echo "== Churn: $n containers over $DURATION s (one every $INTERVAL s, alternating host1/host2, each living $LIFETIME s), 2-host lab"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
T0=$(now)
pids=()
for i in $(seq "$n"); do
  start=$(awk -v t="$T0" -v i="$i" -v d="$INTERVAL" 'BEGIN { printf "%.6f", t + (i - 1) * d }')
  left=$(awk -v s="$start" -v n="$(now)" 'BEGIN { d = s - n; printf "%.3f", (d > 0 ? d : 0) }')
  sleep "$left" # pacing: the start schedule
  h=$([ $((i % 2)) = 1 ] && echo host1 || echo host2)
  lifecycle "$i" "$h" "$start" &
  pids+=($!)
done
log "all $n started after $(ms "$T0" "$(now)") ms; waiting for the last removals"
for p in "${pids[@]}"; do wait "$p" || true; done
T1=$(now)
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); the churn took $(ms "$T0" "$T1") ms"
echo "per container, ms (nearest-rank percentiles):"
echo "  docker run -d returned:                $(stats "$WORK/samples" 3)"
echo "  programmed (route in its host kernel): $(stats "$WORK/samples" 4)"
echo "  reachable from the other host (ping):  $(stats "$WORK/samples" 5)"
echo "  of which after docker run -d returned: programmed $(stats "$WORK/samples" 9)"
echo "                                         reachable  $(stats "$WORK/samples" 10)"
echo "  docker rm -f returned:                 $(stats "$WORK/samples" 6)"
echo "  unprogrammed (route gone):             $(stats "$WORK/samples" 7)"
failed_run=$(grep -c run-failed "$WORK/samples" || true)
timeouts=$(awk '$4 == "-" || $5 == "-" || $7 == "-"' "$WORK/samples" | grep -vc run-failed || true)
echo "  failures: $failed_run docker run failed; $timeouts timed out (route 15 s, ping 10 s)"
[ -s "$WORK/errors" ] && { echo "  errors:"; sed 's/^/    /' "$WORK/errors" | head -10; }

# Leaks: nothing of the churn may be left in IPAM or the kernels.
check=$(on host1 calico ipam check --min-age 0 2>&1 || true)
problems=$(grep -oE 'Check complete: [0-9]+ problems' <<<"$check" || echo "no result")
inuse=$(in_use)
left_routes=0
while read -r _ h _ _ _ _ _ ip _; do
  if [ -n "$ip" ] && [ "$(route_state "$h" "$ip")" = up ]; then left_routes=$((left_routes + 1)); fi
done < <(grep -v run-failed "$WORK/samples")
echo "leaks after the churn: calico ipam check: $problems; addresses in use $inuse (before the churn, the observers': $inuse0); churned containers' routes left: $left_routes"
echo
# Summary lines: the node's share (from docker run -d returning).
p99() { stats "$WORK/samples" "$1" | awk '{ print $1 == "p50" ? $6 : "n/a" }'; }
echo "churn_program_p99_ms $(p99 9)"
echo "churn_reach_p99_ms $(p99 10)"
echo "churn_leaked_addresses $((inuse - inuse0))"
if [ "$problems" != "Check complete: 0 problems" ] || [ "$inuse" != "$inuse0" ] || [ "$left_routes" != 0 ]; then
  echo "LEAK: see above" >&2
  echo "$check" | tail -20 >&2
  exit 1
fi
