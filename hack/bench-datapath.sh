#!/usr/bin/env bash
# Data path side by side (issue 14), as root: how much of the wire a
# container keeps on each path, in one run, against the raw routed path with
# no software of ours (the limit). Results go to stdout, progress to stderr,
# one line per sample to $DATA (TSV: row metric round value) for
# hack/benchplot.
#
#   hack/bench-datapath.sh                 # full: 5 rounds of 3 s, IPv6 rows
#   QUICK=1 hack/bench-datapath.sh         # 3 rounds of 1 s, IPv4 only (~3 min)
#   ROUNDS=7 SECS=5 hack/bench-datapath.sh
#
# Every row is two endpoints on two hosts of the same shape as a lab host
# (a fabric namespace with a bridge, hosts behind veths on it, containers
# behind veths on the hosts), except "veth" (the floor of every path: one
# veth pair) and "docker-bridge" (Docker's bridge is one host by design):
#
#   veth           two namespaces joined by one veth pair
#   raw            the raw routed path, no software of ours: two hand-made
#                  hosts, a container namespace behind a veth on each, /32
#                  routes, proxy ARP for 169.254.1.1, a route to the other
#                  host's containers via the other host (as BGP would set)
#   ours           `calico lab up --hosts 2`, one container per host on a
#                  calico network: its profile's rules on the path
#   ours-policy    the same client, a server on the same host2 selected by
#                  1,000 GlobalNetworkPolicies (999 that do not match the
#                  client, the last allows a selector that 10,000
#                  WorkloadEndpoints and the client match: a 10,000-member set)
#   ours-vxlan     the same, on a network from an IPPool with vxlanMode Always
#   docker-bridge  two containers on Docker's default bridge on lab host1
#   docker-overlay Docker swarm mode across two hosts (`swarm init`/`join`,
#                  an attachable overlay network). Lab hosts run dockerd with
#                  --live-restore, which swarm mode refuses; unless `calico lab
#                  up --swarm` exists, two dockerds with Docker's defaults are
#                  started on two hand-made hosts of the same shape.
#
# Per row and round: TCP throughput (iperf3, 1 and 4 streams), TCP
# request/response latency (sockperf ping-pong, p50/p99 of one connection),
# small-packet rate (iperf3 UDP, 64-byte payloads, unlimited rate: packets
# per second the receiver got; with no reply the flow stays "new" in
# conntrack, so every packet walks the whole ruleset), and CPU per Gbit/s
# (iperf3's own sender + receiver CPU over the 1-stream run; it leaves out
# softirq work charged to other processes, so it is a floor).
# Rows are interleaved and their order rotates each round; ratios to "raw"
# are taken within a round and their median reported, since the machine is
# shared (its load average is printed with each round).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:/usr/sbin:/sbin:$PATH"
QUICK=${QUICK:-}
ROUNDS=${ROUNDS:-$([ -n "$QUICK" ] && echo 3 || echo 5)}
SECS=${SECS:-$([ -n "$QUICK" ] && echo 1 || echo 3)}
IPV6=${IPV6:-$([ -n "$QUICK" ] && echo 0 || echo 1)}
NPOL=${NPOL:-1000}
NMEMBERS=${NMEMBERS:-10000}
LAB=${LAB:-h13dp}
TAG=${TAG:-bdp} # prefix of the namespaces this script makes
BIN=$(readlink -f "${CALICO_BIN:-bin/calico}")
IMAGE=calico-lab/busybox:latest
DATA=${DATA:-$PWD/docs/bench/datapath.tsv}
WORK=$(mktemp -d /tmp/bench-datapath.XXXXXX)
PIDS=()
DOCKERDS=()

[ -x "$BIN" ] || { echo "no calico binary at $BIN (make build)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces, dockerd)" >&2; exit 1; }
for c in iperf3 sockperf jq nsenter unshare dockerd; do
  command -v "$c" >/dev/null || { echo "needs $c (hack/deps.sh)" >&2; exit 1; }
done

log() { echo "bench-datapath: $*" >&2; }
sock() { echo "unix:///var/run/calico-lab/$LAB/$1/docker.sock"; }
dk() { local h=$1; shift; docker -H "$(sock "$h")" "$@"; }
labns() { echo "calab-$LAB-h${1#host}"; }

cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for d in "${DOCKERDS[@]}"; do
    docker -H "unix://$d/docker.sock" rm -f $(docker -H "unix://$d/docker.sock" ps -aq 2>/dev/null) >/dev/null 2>&1
    docker -H "unix://$d/docker.sock" swarm leave --force >/dev/null 2>&1
    [ -f "$d/docker.pid" ] && kill "$(cat "$d/docker.pid")" 2>/dev/null
  done
  for d in "${DOCKERDS[@]}"; do
    for _ in $(seq 100); do [ -f "$d/docker.pid" ] && kill -0 "$(cat "$d/docker.pid")" 2>/dev/null || break; sleep 0.1; done
  done
  for ns in $(ip netns list | awk '{ print $1 }' | grep "^$TAG-"); do ip netns del "$ns"; done
  "$BIN" lab down --name "$LAB" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- hand-made hosts -------------------------------------------------------
# fabric NAME N: a fabric namespace NAME-fab with a bridge and hosts
# NAME-h1..hN on 10.<N>.1.0/24 (like a lab's), default route via the bridge.
mkfabric() {
  local f=$1 n=$2 net=$3 net6=$4 i
  ip netns add "$f-fab"
  ip -n "$f-fab" link add br0 type bridge
  ip -n "$f-fab" addr add "$net.254/24" dev br0
  ip -n "$f-fab" addr add "$net6::fe/64" dev br0 nodad
  ip -n "$f-fab" link set br0 up
  ip -n "$f-fab" link set lo up
  for i in $(seq "$n"); do
    ip netns add "$f-h$i"
    ip -n "$f-fab" link add "leg$i" type veth peer name eth0 netns "$f-h$i"
    ip -n "$f-fab" link set "leg$i" master br0 up
    ip -n "$f-h$i" link set lo up
    ip -n "$f-h$i" addr add "$net.$((10 + i))/24" dev eth0
    ip -n "$f-h$i" addr add "$net6::$((10 + i))/64" dev eth0 nodad
    ip -n "$f-h$i" link set eth0 up
    ip -n "$f-h$i" route add default via "$net.254"
    ip -n "$f-h$i" -6 route add default via "$net6::fe"
    ip netns exec "$f-h$i" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  done
}

# rawcontainer HOSTNS C V4 V6: a container namespace C behind veth rawc0 on
# HOSTNS, routed like Calico routes a workload, by hand.
rawcontainer() {
  local h=$1 c=$2 v4=$3 v6=$4
  ip netns add "$c"
  ip -n "$h" link add rawc0 type veth peer name eth0 netns "$c"
  ip -n "$h" link set rawc0 up
  ip netns exec "$h" sysctl -qw net.ipv4.conf.rawc0.proxy_arp=1 net.ipv6.conf.rawc0.proxy_ndp=1
  ip -n "$h" addr add fe80::1/64 dev rawc0 nodad
  ip -n "$h" route add "$v4/32" dev rawc0
  ip -n "$h" -6 route add "$v6/128" dev rawc0
  ip -n "$c" link set lo up
  ip -n "$c" addr add "$v4/32" dev eth0
  ip -n "$c" addr add "$v6/128" dev eth0 nodad
  ip -n "$c" link set eth0 up
  ip -n "$c" route add 169.254.1.1 dev eth0 scope link
  ip -n "$c" route add default via 169.254.1.1 dev eth0
  ip -n "$c" -6 route add default via fe80::1 dev eth0
}

# --- rows: a row is "client-netns-path server-netns-path server-v4 server-v6"
declare -A ROW
addrow() { ROW[$1]="$2 $3 $4 ${5:--}"; }
pidns() { echo "/proc/$1/ns/net"; }
cpid() { dk "$1" inspect -f '{{.State.Pid}}' "$2"; }
cip() { dk "$1" inspect -f "{{range .NetworkSettings.Networks}}{{.$3}}{{end}}" "$2"; }

log "building the veth pair and the raw routed path"
ip netns add "$TAG-va"; ip netns add "$TAG-vb"
ip -n "$TAG-va" link add eth0 type veth peer name eth0 netns "$TAG-vb"
for n in va:1 vb:2; do
  ip -n "$TAG-${n%:*}" link set lo up
  ip -n "$TAG-${n%:*}" addr add "10.95.0.${n#*:}/24" dev eth0
  ip -n "$TAG-${n%:*}" addr add "fd00:95::${n#*:}/64" dev eth0 nodad
  ip -n "$TAG-${n%:*}" link set eth0 up
done
addrow veth /run/netns/$TAG-va /run/netns/$TAG-vb 10.95.0.2 fd00:95::2
mkfabric "$TAG-raw" 2 10.97.1 fd00:97:1
rawcontainer "$TAG-raw-h1" "$TAG-raw-c1" 10.96.1.1 fd00:96:1::1
rawcontainer "$TAG-raw-h2" "$TAG-raw-c2" 10.96.2.1 fd00:96:2::1
ip -n "$TAG-raw-h1" route add 10.96.2.0/24 via 10.97.1.12
ip -n "$TAG-raw-h2" route add 10.96.1.0/24 via 10.97.1.11
ip -n "$TAG-raw-h1" -6 route add fd00:96:2::/64 via fd00:97:1::12
ip -n "$TAG-raw-h2" -6 route add fd00:96:1::/64 via fd00:97:1::11
addrow raw /run/netns/$TAG-raw-c1 /run/netns/$TAG-raw-c2 10.96.2.1 fd00:96:2::1

log "lab $LAB: up (2 hosts)"
"$BIN" lab down --name "$LAB" >/dev/null 2>&1 || true
SWARM_FLAG=""
if "$BIN" lab up --help 2>&1 | grep -q -- '--swarm'; then SWARM_FLAG=--swarm; fi
"$BIN" lab up --name "$LAB" --hosts 2 $SWARM_FLAG >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; exit 1; }
for h in host1 host2; do
  dk "$h" network create --driver calico --ipam-driver calico-ipam --ipv6 benchnet >/dev/null
done
dk host1 run -d --name cli --net benchnet --label big=yes "$IMAGE" sleep 1d >/dev/null
dk host2 run -d --name srv --net benchnet "$IMAGE" sleep 1d >/dev/null
dk host2 run -d --name srvpol --net benchnet --label role=polsrv "$IMAGE" sleep 1d >/dev/null
dk host1 run -d --name brc --net bridge "$IMAGE" sleep 1d >/dev/null
dk host1 run -d --name brs --net bridge "$IMAGE" sleep 1d >/dev/null
CLI=$(pidns "$(cpid host1 cli)")
addrow ours "$CLI" "$(pidns "$(cpid host2 srv)")" "$(cip host2 srv IPAddress)" "$(cip host2 srv GlobalIPv6Address)"
addrow ours-policy "$CLI" "$(pidns "$(cpid host2 srvpol)")" "$(cip host2 srvpol IPAddress)" "$(cip host2 srvpol GlobalIPv6Address)"
addrow docker-bridge "$(pidns "$(cpid host1 brc)")" "$(pidns "$(cpid host1 brs)")" "$(cip host1 brs IPAddress)"

log "lab $LAB: $NPOL policies and $NMEMBERS endpoints of another node (the set members)"
# One manifest, one transaction per 5,000 objects.
awk -v npol="$NPOL" -v nep="$NMEMBERS" 'BEGIN {
  n = 0; f = 0; file = sprintf("'"$WORK"'/m%02d.json", f); printf "[" >file
  for (p = 0; p < npol; p++) {
    if (p < npol - 1) src = sprintf("\"nets\":[\"10.200.%d.%d/32\"]", int(p / 256), p % 256)
    else src = "\"selector\":\"big == '\''yes'\''\""
    obj = sprintf("{\"apiVersion\":\"projectcalico.org/v3\",\"kind\":\"GlobalNetworkPolicy\",\"metadata\":{\"name\":\"bench-p%04d\"},\"spec\":{\"order\":%d,\"selector\":\"role == '\''polsrv'\''\",\"types\":[\"Ingress\"],\"ingress\":[{\"action\":\"Allow\",\"source\":{%s}}]}}", p, p, src)
    emit(obj)
  }
  for (i = 1; i <= nep; i++) {
    obj = sprintf("{\"apiVersion\":\"projectcalico.org/v3\",\"kind\":\"WorkloadEndpoint\",\"metadata\":{\"name\":\"ghost-bench-g%05d-eth0\",\"namespace\":\"default\",\"labels\":{\"big\":\"yes\"}},\"spec\":{\"orchestrator\":\"bench\",\"workload\":\"g%05d\",\"endpoint\":\"eth0\",\"node\":\"ghost\",\"interfaceName\":\"calg%07d\",\"ipNetworks\":[\"10.77.%d.%d/32\"]}}", i, i, i, int(i / 256), i % 256)
    emit(obj)
  }
  print "]" >file
}
function emit(o) {
  if (n == 5000) { print "]" >file; close(file); f++; n = 0; file = sprintf("'"$WORK"'/m%02d.json", f); printf "[" >file }
  printf "%s%s", (n ? "," : ""), o >file; n++
}'
for m in "$WORK"/m*.json; do "$BIN" lab exec --name "$LAB" host1 -- calico apply -f "$m" >/dev/null; done

log "lab $LAB: a VXLAN pool and network"
# The lab's hosts are a swarm whose overlay (the docker-overlay row) takes
# VXLAN IDs from 4096 on port 4789, Calico's default VNI: ours moves.
cat >"$WORK/vxpool.yaml" <<'EOF'
apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata:
  name: default
spec:
  vxlanVNI: 7000000
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: bench-vxlan
spec:
  cidr: 10.210.0.0/16
  vxlanMode: Always
  natOutgoing: false
EOF
"$BIN" lab exec --name "$LAB" host1 -- calico apply -f - <"$WORK/vxpool.yaml" >/dev/null
for h in host1 host2; do
  dk "$h" network create --driver calico --ipam-driver calico-ipam --subnet 10.210.0.0/16 benchvx >/dev/null
done
dk host1 run -d --name vxc --net benchvx "$IMAGE" sleep 1d >/dev/null
dk host2 run -d --name vxs --net benchvx "$IMAGE" sleep 1d >/dev/null
addrow ours-vxlan "$(pidns "$(cpid host1 vxc)")" "$(pidns "$(cpid host2 vxs)")" "$(cip host2 vxs IPAddress)"

# Docker's overlay in swarm mode.
OVERLAY_NOTE=""
ov_sock=()
if [ -n "$SWARM_FLAG" ]; then
  ov_sock=("$(sock host1)" "$(sock host2)"); ov_addr=(10.99.1.11 10.99.1.12)
  ov_addr=("$(ip -n "$(labns host1)" -4 -o addr show eth0 | awk '{ print $4 }' | cut -d/ -f1)" "$(ip -n "$(labns host2)" -4 -o addr show eth0 | awk '{ print $4 }' | cut -d/ -f1)")
  OVERLAY_NOTE="on the lab's hosts (calico lab up --swarm)"
else
  log "docker-overlay: two dockerds with Docker's defaults on hand-made hosts (lab dockerds run --live-restore)"
  mkfabric "$TAG-ov" 2 10.94.1 fd00:94:1
  for i in 1 2; do
    d="$WORK/dockerd$i"; mkdir -p "$d/plugins"
    DOCKERDS+=("$d")
    nsenter --net="/run/netns/$TAG-ov-h$i" unshare -m --propagation private sh -c \
      "mount --bind '$d/plugins' /run/docker/plugins && exec dockerd -H 'unix://$d/docker.sock' --data-root '$d/data' --exec-root '$d/exec' --pidfile '$d/docker.pid'" \
      >"$d/log" 2>&1 &
    ov_sock+=("unix://$d/docker.sock")
  done
  ov_addr=(10.94.1.11 10.94.1.12)
  for s in "${ov_sock[@]}"; do
    for _ in $(seq 300); do docker -H "$s" version >/dev/null 2>&1 && break; sleep 0.1; done
    dk host1 save "$IMAGE" | docker -H "$s" load >/dev/null
  done
  OVERLAY_NOTE="two dockerds with Docker's defaults on hand-made hosts of the lab's shape (lab dockerds run with --live-restore, which swarm mode refuses)"
fi
# swarm_ready: both nodes Ready in the manager's view (60 s deadline).
swarm_ready() {
  local i
  for i in $(seq 600); do
    [ "$(docker -H "${ov_sock[0]}" node ls --format '{{.Status}}' 2>/dev/null | grep -c Ready)" = 2 ] && return 0
    sleep 0.1
  done
  return 1
}
# ov_run SOCK NAME: a container on the overlay; attaching an attachable
# network on a worker asks the manager, which can time out on a loaded
# machine: up to 3 attempts.
ov_run() {
  local i
  for i in 1 2 3; do
    docker -H "$1" run -d --name "$2" --net benchov "$IMAGE" sleep 1d >>"$WORK/swarm.log" 2>&1 && return 0
    docker -H "$1" rm -f "$2" >/dev/null 2>&1 || true
  done
  return 1
}
# swarm_up: `calico lab up --swarm` already made the swarm; hand-made
# dockerds need init and join.
swarm_up() {
  if [ "$(docker -H "${ov_sock[0]}" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)" = active ]; then
    return 0
  fi
  docker -H "${ov_sock[0]}" swarm init --advertise-addr "${ov_addr[0]}" >"$WORK/swarm.log" 2>&1 &&
    docker -H "${ov_sock[1]}" swarm join --token "$(docker -H "${ov_sock[0]}" swarm join-token -q worker)" "${ov_addr[0]}:2377" >>"$WORK/swarm.log" 2>&1
}
: >"$WORK/swarm.log"
if swarm_up && swarm_ready &&
  docker -H "${ov_sock[0]}" network create -d overlay --attachable benchov >>"$WORK/swarm.log" 2>&1 &&
  ov_run "${ov_sock[0]}" ovs && ov_run "${ov_sock[1]}" ovc; then
  ovs_ip=$(docker -H "${ov_sock[0]}" inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' ovs)
  addrow docker-overlay "$(pidns "$(docker -H "${ov_sock[1]}" inspect -f '{{.State.Pid}}' ovc)")" \
    "$(pidns "$(docker -H "${ov_sock[0]}" inspect -f '{{.State.Pid}}' ovs)")" "$ovs_ip"
else
  OVERLAY_NOTE="could not come up: $(tail -3 "$WORK/swarm.log" | tr '\n' ' ')"
  log "docker-overlay $OVERLAY_NOTE"
fi

ORDER=(veth raw ours ours-policy ours-vxlan docker-bridge docker-overlay)
ROWS=()
for r in "${ORDER[@]}"; do [ -n "${ROW[$r]:-}" ] && ROWS+=("$r"); done
if [ "$IPV6" = 1 ]; then
  for r in veth raw ours ours-policy; do
    read -r c s _ v6 <<<"${ROW[$r]}"
    [ "$v6" != - ] && ROW[$r-v6]="$c $s $v6 -" && ROWS+=("$r-v6")
  done
fi

# Servers: iperf3 and sockperf in each server namespace, started once.
log "starting servers; waiting until every path carries traffic"
for r in "${ROWS[@]}"; do
  read -r c s ip _ <<<"${ROW[$r]}"
  case "$r" in *-v6) continue ;; esac
  nsenter --net="$s" iperf3 -s -p 5201 >/dev/null 2>&1 &
  PIDS+=($!)
  nsenter --net="$s" sockperf server --tcp -i 0.0.0.0 -p 11111 >/dev/null 2>&1 &
  PIDS+=($!)
done
for r in "${ROWS[@]}"; do
  read -r c s ip _ <<<"${ROW[$r]}"
  ok=""
  for _ in $(seq 200); do
    if nsenter --net="$c" iperf3 -c "$ip" -p 5201 -n 64K -J >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.1
  done
  [ -n "$ok" ] || { log "$r: no iperf3 to $ip within 20 s"; exit 1; }
done

: >"$WORK/data.tsv"
rec() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$WORK/data.tsv"; }
# measure ROW ROUND
measure() {
  local r=$1 k=$2 c s ip j
  read -r c s ip _ <<<"${ROW[$r]}"
  j=$(nsenter --net="$c" iperf3 -c "$ip" -p 5201 -t "$SECS" -J)
  rec "$r" tcp1_gbps "$k" "$(jq '.end.sum_received.bits_per_second / 1e9' <<<"$j")"
  rec "$r" cpu_pct_per_gbps "$k" "$(jq '(.end.cpu_utilization_percent.host_total + .end.cpu_utilization_percent.remote_total) / (.end.sum_received.bits_per_second / 1e9)' <<<"$j")"
  j=$(nsenter --net="$c" iperf3 -c "$ip" -p 5201 -t "$SECS" -P 4 -J)
  rec "$r" tcp4_gbps "$k" "$(jq '.end.sum_received.bits_per_second / 1e9' <<<"$j")"
  # sockperf 3.7 (Debian 12) speaks IPv4 only: no latency for -v6 rows.
  if [ "${r%-v6}" = "$r" ]; then
    nsenter --net="$c" sockperf ping-pong --tcp -i "$ip" -p 11111 -t "$SECS" >"$WORK/sp" 2>&1 || true
    rec "$r" rr_p50_us "$k" "$(awk '/percentile 50.000/ { print $NF }' "$WORK/sp")"
    rec "$r" rr_p99_us "$k" "$(awk '/percentile 99.000/ { print $NF }' "$WORK/sp")"
  fi
  j=$(nsenter --net="$c" iperf3 -c "$ip" -p 5201 -u -l 64 -b 0 -t "$SECS" -J)
  rec "$r" udp64_kpps "$k" "$(jq '(.end.sum.packets - .end.sum.lost_packets) / .end.sum.seconds / 1e3' <<<"$j")"
}

echo "== Data path side by side: ${#ROWS[@]} rows, $ROUNDS rounds of ${SECS} s per measurement"
echo "docker-overlay: $OVERLAY_NOTE"
for k in $(seq "$ROUNDS"); do
  # Rotate the order each round so that a drift of the shared machine does
  # not favour one row.
  n=${#ROWS[@]}; order=()
  for i in $(seq 0 $((n - 1))); do order+=("${ROWS[$(((i + k - 1) % n))]}"); done
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "round $k: load average $load"
  rec _machine load1 "$k" "${load%% *}"
  for r in "${order[@]}"; do
    log "round $k/$ROUNDS: $r"
    measure "$r" "$k"
  done
done
mkdir -p "$(dirname "$DATA")"
cp "$WORK/data.tsv" "$DATA"

# Summary: min/median/max per row and metric, and the median of the
# per-round ratios to raw (IPv6 rows to raw-v6).
echo
awk -F'\t' -v rows="${ROWS[*]}" '
  function med(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  $1 == "_machine" { next }
  { v[$1, $2, $3] = $4; rounds[$3] = 1; metrics[$2] = 1 }
  END {
    nm = split("tcp1_gbps tcp4_gbps rr_p50_us rr_p99_us udp64_kpps cpu_pct_per_gbps", ms, " ")
    nr = split(rows, rs, " ")
    printf "%-16s %-17s %10s %10s %10s %9s\n", "path", "metric", "min", "median", "max", "vs raw"
    for (i = 1; i <= nr; i++) for (m = 1; m <= nm; m++) {
      r = rs[i]; base = (r ~ /-v6$/) ? "raw-v6" : "raw"; n = 0; q = 0
      delete xs; delete rt
      for (k in rounds) if ((r, ms[m], k) in v && v[r, ms[m], k] != "") {
        xs[++n] = v[r, ms[m], k]
        if ((base, ms[m], k) in v && v[base, ms[m], k] > 0) rt[++q] = v[r, ms[m], k] / v[base, ms[m], k]
      }
      if (!n) continue
      md = med(xs, n); lo = xs[1]; hi = xs[n]
      ratio = q ? sprintf("%.3fx", med(rt, q)) : "-"
      printf "%-16s %-17s %10.3f %10.3f %10.3f %9s\n", r, ms[m], lo, md, hi, ratio
    }
  }' "$WORK/data.tsv" | tee "$WORK/summary.txt"

# Summary lines NAME VALUE (for bench-quick).
ratio() { # ROW METRIC
  awk -v r="$1" -v m="$2" '$1 == r && $2 == m { print substr($6, 1, length($6) - 1) }' "$WORK/summary.txt"
}
med() { awk -v r="$1" -v m="$2" '$1 == r && $2 == m { print $4 }' "$WORK/summary.txt"; }
echo
echo "throughput_ratio_routed $(ratio ours-policy tcp1_gbps)"
echo "throughput_ratio_profile $(ratio ours tcp1_gbps)"
echo "latency_p99_ratio_routed $(ratio ours-policy rr_p99_us)"
echo "latency_p50_delta_us_routed $(awk -v a="$(med ours-policy rr_p50_us)" -v b="$(med raw rr_p50_us)" 'BEGIN { printf "%.1f", a - b }')"
# 10,000 members and 1,000 policies vs the profile's one rule, same hosts.
echo "throughput_ratio_policy10k $(awk -F'\t' '$2 == "tcp1_gbps" && ($1 == "ours" || $1 == "ours-policy") { v[$1, $3] = $4; k[$3] = 1 }
  END { n = 0; for (r in k) if (v["ours", r] > 0) x[++n] = v["ours-policy", r] / v["ours", r]
        for (i = 2; i <= n; i++) { t = x[i]; for (j = i - 1; j >= 1 && x[j] > t; j--) x[j + 1] = x[j]; x[j + 1] = t }
        printf "%.3f", n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2 }' "$WORK/data.tsv")"
echo "throughput_ratio_vxlan $(ratio ours-vxlan tcp1_gbps)"
echo "throughput_ratio_overlay $(ratio docker-overlay tcp1_gbps)"
echo "throughput_ratio_bridge $(ratio docker-bridge tcp1_gbps)"
