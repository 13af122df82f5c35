#!/usr/bin/env bash
# Simulated fleet (issue 14 §4; a benchmark, not part of `make test`), as root.
#
#   hack/sim-fleet.sh                        # N=100 hosts, 100 endpoints each
#   N=25 EPS=100 PROBES=20 hack/sim-fleet.sh
#
# What runs:
#   - netns h27f-core: the fabric bridge (10.98.0.1/16) and one real etcd
#     (/usr/bin/etcd, plaintext: it is reachable only inside these namespaces).
#   - netns h27f-h<i> (i = 1..N): eth0 on the bridge (10.98.x.y/16) and the real
#     node, `calico node run` with no dockerd (--no-docker-plugin
#     --no-docker-firewall), datastore http://10.98.0.1:2379. Each node runs in
#     the mount namespace `ip netns exec` makes, with tmpfs over
#     /var/run/calico and /var/lib/calico, so nothing it writes there reaches
#     the machine's own node.
#   - BGP: full mesh off; h27n1 and h27n2 are route reflectors (label
#     route-reflector=true, routeReflectorClusterID 224.0.0.1); one BGPPeer
#     (nodeSelector all(), peerSelector route-reflector == 'true') makes every
#     node peer with both reflectors.
#   - Endpoints: per host EPS addresses from `calico ipam assign --num EPS`
#     (pool 10.200.0.0/16, blocks /26), one veth pair per endpoint inside the
#     host's namespace (no per-endpoint namespace: 10,000 namespaces cost more
#     than the machine has to spare and the node's work is the same), and the
#     WorkloadEndpoints written with `calico apply`, one file per host.
#   - Probes: PROBES times, a new endpoint on a client host A (round robin
#     over h3..hN) whose address is borrowed from a block of h27n1 (pool
#     10.201.0.0/16, /24 blocks), so that no route the other hosts already
#     have covers it: `calico ipam assign --ip` for host A, then the
#     WorkloadEndpoint with `calico apply` (the plugin's order), then node A
#     installs the local route and advertises the /32 -> reflectors -> every
#     other node checks it against IPAM (the route guard) -> its kernel.
#     `ip -ts monitor route` in every host stamps when the route reached its
#     kernel. (An endpoint inside a block its host already owns needs no BGP
#     update at all: the other hosts route the block already.)
#
# Output: one block of results on stdout (progress on stderr). Everything
# created is removed at exit (namespaces, processes started here, temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:/usr/sbin:/sbin:$PATH"
N=${N:-100}
EPS=${EPS:-100}
PROBES=${PROBES:-20}
START_PAR=${START_PAR:-10} # nodes started at once
BIN=$(readlink -f "${CALICO_BIN:-bin/calico}")
P=h27f
CORE=$P-core
ETCD_EP=http://10.98.0.1:2379
WORK=$(mktemp -d /tmp/h27-sim-fleet.XXXXXX)
PIDS=()     # node and etcd pids
MONITORS=() # ip monitor pids

[ -x "$BIN" ] || { echo "no calico binary at $BIN (make build)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }
[ "$N" -ge 3 ] || { echo "N must be >= 3 (two reflectors and a client)" >&2; exit 1; }
[ "$PROBES" -le 250 ] || { echo "PROBES must be <= 250 (one /24 donor block)" >&2; exit 1; }

log() { echo "sim-fleet: $(date -u +%T) $*" >&2; }
now() { echo "$EPOCHREALTIME"; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
hns() { echo "$P-h$1"; }
hip() { echo "10.98.$(($1 / 250)).$(($1 % 250 + 2))"; }
cal() { ip netns exec "$CORE" "$BIN" --etcd-endpoints "$ETCD_EP" "$@"; }
# stats FILE: nearest-rank p50/p99, max and mean of one number per line.
stats() {
  sort -n "$1" | awk '{ v[NR] = $1; s += $1 }
    function rank(p,  r) { r = int(p * NR / 100); if (r < p * NR / 100) r++; return v[r < 1 ? 1 : r] }
    END { if (NR) printf "p50 %s  p99 %s  max %s  mean %.0f  (n=%d)", rank(50), rank(99), v[NR], s / NR, NR; else printf "no samples" }'
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# rss_summary: the nodes' RSS in MiB, "median M max X total T".
rss_summary() {
  for i in $(seq "$N"); do rss_kib "${NODEPID[$i]}"; done | sort -n |
    awk '{ v[NR] = $1; s += $1 } END { printf "median %.0f max %.0f total %.0f", v[int((NR + 1) / 2)] / 1024, v[NR] / 1024, s / 1024 }'
}
# node_ticks: CPU ticks of all nodes together.
node_ticks() { for i in $(seq "$N"); do cpu_ticks "${NODEPID[$i]}"; done | awk '{ s += $1 } END { print s + 0 }'; }
# cpu_share TICKS_A TICKS_B T_A T_B: "X s in Y s (Z% of one core)"
cpu_share() { awk -v a="$1" -v b="$2" -v t="$(secs "$3" "$4")" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f s in %.0f s (%.0f%% of one core)", (b - a) / hz, t, 100 * (b - a) / hz / t }'; }
etcd_metric() { # NAME: sum of the metric's samples
  ip netns exec "$CORE" curl -s --max-time 10 "$ETCD_EP/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%.0f", s }'
}

cleanup() {
  set +e
  for pid in "${MONITORS[@]}"; do kill "$pid" 2>/dev/null; done
  # Nodes first (SIGTERM: graceful), etcd last; each by its own pid.
  for ((k = ${#PIDS[@]} - 1; k >= 0; k--)); do kill "${PIDS[$k]}" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  for ns in $(ip netns list | awk -v p="^$P-" '$1 ~ p { print $1 }'); do ip netns del "$ns"; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for ns in $(ip netns list | awk -v p="^$P-" '$1 ~ p { print $1 }'); do
  log "removing leftover namespace $ns"; ip netns del "$ns"
done

log "fabric: $CORE with bridge, $N hosts"
ip netns add "$CORE"
ip -n "$CORE" link set lo up
ip -n "$CORE" link add br0 type bridge
ip -n "$CORE" addr add 10.98.0.1/16 dev br0
ip -n "$CORE" link set br0 up
for i in $(seq "$N"); do
  ns=$(hns "$i")
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$CORE" link add "h$i" type veth peer name eth0 netns "$ns"
  ip -n "$CORE" link set "h$i" master br0 up
  ip -n "$ns" addr add "$(hip "$i")/16" dev eth0
  ip -n "$ns" link set eth0 up
done

log "etcd in $CORE"
ip netns exec "$CORE" etcd --name h27f --data-dir "$WORK/etcd" \
  --listen-client-urls "$ETCD_EP" --advertise-client-urls "$ETCD_EP" \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster h27f=http://127.0.0.1:2380 --quota-backend-bytes $((4 << 30)) --max-txn-ops 10000 >"$WORK/etcd.log" 2>&1 &
ETCD=$!
PIDS+=("$ETCD")
deadline=$((SECONDS + 60))
until ip netns exec "$CORE" curl -s --max-time 2 "$ETCD_EP/health" | grep -q '"health":"true"'; do
  [ $SECONDS -lt $deadline ] || { cat "$WORK/etcd.log" >&2; echo "etcd not healthy in 60 s" >&2; exit 1; }
  sleep 0.2
done

log "BGP configuration (mesh off, 2 reflectors) and pools"
{
  cat <<EOF
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata:
  name: default
spec:
  nodeToNodeMeshEnabled: false
  asNumber: 64512
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: h27-to-reflectors
spec:
  nodeSelector: all()
  peerSelector: route-reflector == 'true'
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: h27-pool
spec:
  cidr: 10.200.0.0/16
  blockSize: 26
  natOutgoing: false
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: h27-probe
spec:
  cidr: 10.201.0.0/16
  blockSize: 24
---
apiVersion: projectcalico.org/v3
kind: Profile
metadata:
  name: h27-sim
spec:
  ingress:
  - action: Allow
  egress:
  - action: Allow
EOF
  for i in 1 2; do
    cat <<EOF
---
apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: h27n$i
  labels:
    route-reflector: "true"
spec:
  bgp:
    ipv4Address: $(hip "$i")/16
    routeReflectorClusterID: 224.0.0.1
EOF
  done
} >"$WORK/base.yaml"
cal apply -f "$WORK/base.yaml" >/dev/null

start_node() { # I
  local i=$1 ns; ns=$(hns "$i")
  mkdir -p "$WORK/n$i"
  # ip netns exec gives a private mount namespace: the tmpfs mounts stay in it.
  ip netns exec "$ns" sh -c 'mount -t tmpfs h27f /var/run/calico && mount -t tmpfs h27f /var/lib/calico && exec "$@"' sh \
    env CALICO_NODENAME_FILE="$WORK/n$i/nodename" "$BIN" node run --name "h27n$i" --ip "$(hip "$i")/16" \
    --no-docker-plugin --no-docker-firewall --etcd-endpoints "$ETCD_EP" \
    --join-port 0 --flows-port 0 --flows-socket "" --pki-dir "$WORK/n$i/pki" \
    --etcd-socket "$WORK/n$i/etcd.sock" --etcd-data-dir "$WORK/n$i/etcd" >"$WORK/n$i/log" 2>&1 &
  PIDS+=($!)
  NODEPID[$i]=$!
}
# sessions I: established BGP (TCP port 179) sessions in host I.
sessions() { ip netns exec "$(hns "$1")" ss -Htn state established '( sport = :179 or dport = :179 )' | wc -l; }
want_sessions() { if [ "$1" -le 2 ]; then echo $(($N - 1)); else echo 2; fi; }

declare -A NODEPID
# wait_hosts TIMEOUT_S OK_FN SHOW_FN: poll until OK_FN I holds for every host I.
wait_hosts() {
  local deadline=$((SECONDS + $1)) i
  for i in $(seq "$N"); do
    until "$2" "$i"; do
      [ $SECONDS -lt "$deadline" ] || { echo "h27n$i after $1 s: $("$3" "$i")" >&2; tail -20 "$WORK/n$i/log" >&2; exit 1; }
      sleep 0.2
    done
  done
}
E0=$(cpu_ticks "$ETCD")
log "starting $N nodes ($START_PAR at a time)"
T0=$(now)
for i in $(seq "$N"); do
  start_node "$i"
  if ((i % START_PAR == 0)); then
    # Pace starts by readiness of the batch, not by time.
    for j in $(seq $((i - START_PAR + 1)) "$i"); do
      deadline=$((SECONDS + 180))
      until ip netns exec "$(hns "$j")" curl -s --max-time 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:9099/readiness 2>/dev/null | grep -q 200; do
        kill -0 "${NODEPID[$j]}" 2>/dev/null || { tail -20 "$WORK/n$j/log" >&2; echo "node h27n$j exited" >&2; exit 1; }
        [ $SECONDS -lt $deadline ] || { tail -20 "$WORK/n$j/log" >&2; echo "node h27n$j not ready in 180 s" >&2; exit 1; }
        sleep 0.2
      done
    done
  fi
done
T1=$(now)
log "waiting for BGP sessions (reflectors $((N - 1)) each, clients 2)"
sessions_ok() { [ "$(sessions "$1")" -ge "$(want_sessions "$1")" ]; }
sessions_show() { echo "$(sessions "$1") BGP sessions, want $(want_sessions "$1")"; }
wait_hosts 300 sessions_ok sessions_show
T2=$(now)
E1=$(cpu_ticks "$ETCD"); C1=$(node_ticks)
RSS_IDLE=$(rss_summary)

log "$EPS endpoints per host: veths, IPAM, WorkloadEndpoints"
T3=$(now)
for i in $(seq "$N"); do
  ns=$(hns "$i")
  : >"$WORK/veth"
  for ((k = 0; k < EPS; k++)); do
    printf 'link add cali%04dx%03d type veth peer name sim%04dx%03d\nlink set cali%04dx%03d up\nlink set sim%04dx%03d up\n' \
      "$i" "$k" "$i" "$k" "$i" "$k" "$i" "$k" >>"$WORK/veth"
  done
  ip -n "$ns" -batch "$WORK/veth"
done
T4=$(now)
for i in $(seq "$N"); do
  cal ipam assign --handle "h27n$i-bulk" --node "h27n$i" --pool 10.200.0.0/16 --num "$EPS" >"$WORK/n$i/ips"
done
T5=$(now)
for i in $(seq "$N"); do
  awk -v i="$i" '{ printf "---\napiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata:\n  name: h27n%d-sim-w%d-eth0\n  namespace: default\n  labels:\n    sim: h27\nspec:\n  orchestrator: sim\n  workload: w%d\n  endpoint: eth0\n  node: h27n%d\n  interfaceName: cali%04dx%03d\n  ipNetworks: [%s/32]\n  profiles: [h27-sim]\n", i, NR - 1, NR - 1, i, i, NR - 1, $1 }' "$WORK/n$i/ips" >"$WORK/weps.yaml"
  cal apply -f "$WORK/weps.yaml" >/dev/null
done
T6=$(now)
# Blocks per host from the assigned addresses (/26).
for i in $(seq "$N"); do awk -F. '{ print $1 "." $2 "." $3 "." int($4 / 64) * 64 }' "$WORK/n$i/ips" | sort -u | wc -l; done >"$WORK/blocks"
TOTAL_BLOCKS=$(awk '{ s += $1 } END { print s }' "$WORK/blocks")
have() { # I: "local via" routes with proto 80 for the bulk pool
  ip -n "$(hns "$1")" route show proto 80 | awk '$1 ~ /^10\.200\./ { if (/ via /) v++; else if (/ dev cali/) l++ } END { print l + 0, v + 0 }'
}
log "waiting until every host has its $EPS local routes and the other hosts' blocks"
routes_want() { echo "$EPS $((TOTAL_BLOCKS - $(sed -n "${1}p" "$WORK/blocks")))"; }
routes_ok() { [ "$(have "$1")" = "$(routes_want "$1")" ]; }
routes_show() { echo "have (local via) $(have "$1"), want $(routes_want "$1")"; }
wait_hosts 600 routes_ok routes_show
T7=$(now)
E2=$(cpu_ticks "$ETCD"); C2=$(node_ticks)
RSS_LOADED=$(rss_summary)
RR_RSS="$(($(rss_kib "${NODEPID[1]}") / 1024)) $(($(rss_kib "${NODEPID[2]}") / 1024))"
ETCD_RSS=$(($(rss_kib "$ETCD") / 1024))
WATCHERS=$(etcd_metric etcd_debugging_mvcc_watcher_total)
STREAMS=$(etcd_metric etcd_debugging_mvcc_watch_stream_total)
KEYS=$(etcd_metric etcd_debugging_mvcc_keys_total)
DBSIZE=$(etcd_metric etcd_mvcc_db_total_size_in_bytes)
SENT0=$(etcd_metric etcd_network_client_grpc_sent_bytes_total)
sess_rr="$(sessions 1) $(sessions 2)"
sess_clients=$(for i in $(seq 3 "$N"); do sessions "$i"; done | sort -n | uniq -c | awk '{ printf "%s%d hosts with %d", sep, $1, $2; sep = ", " }')

# The donor block: h27n1 owns 10.201.0.0/24; probes borrow from it.
cal ipam assign --handle h27-donor --node h27n1 --ip 10.201.0.1 >/dev/null
log "probes: $PROBES new endpoints, each on one client host, until routed on all $N hosts"
for i in $(seq "$N"); do
  TZ=UTC ip -n "$(hns "$i")" -ts monitor route >"$WORK/n$i/mon" 2>&1 &
  MONITORS+=($!)
done
# ip monitor subscribes asynchronously: wait until each one has seen a
# marker route added in its host after it started.
# marker routes added before a monitor subscribed are added again.
for i in $(seq "$N"); do ip -n "$(hns "$i")" route add 10.201.255.254/32 dev lo proto 81; done
marker_seen() {
  grep -q -F '10.201.255.254 dev lo' "$WORK/n$1/mon" && return 0
  ip -n "$(hns "$1")" route del 10.201.255.254/32 dev lo proto 81
  ip -n "$(hns "$1")" route add 10.201.255.254/32 dev lo proto 81
  return 1
}
marker_show() { echo "ip monitor did not report a route added in its host"; }
wait_hosts 60 marker_seen marker_show
for i in $(seq "$N"); do ip -n "$(hns "$i")" route del 10.201.255.254/32 dev lo proto 81; done
# days since the epoch for the kernel-side timestamps of ip monitor (UTC).
tsawk='function days(y, m, d) { if (m <= 2) { y--; m += 12 } return 365 * y + int(y / 4) - int(y / 100) + int(y / 400) + int((153 * (m - 3) + 2) / 5) + d - 719469 }
  function ts(s,  a) { s = substr(s, 2, length(s) - 2); split(s, a, /[-T:]/); return days(a[1] + 0, a[2] + 0, a[3] + 0) * 86400 + a[4] * 3600 + a[5] * 60 + a[6] }'
: >"$WORK/p-ipam" && : >"$WORK/p-apply" && : >"$WORK/p-local" && : >"$WORK/p-all" && : >"$WORK/p-all-commit" && : >"$WORK/p-perhost"
S0=$(cpu_ticks "$ETCD"); PC0=$(node_ticks); PT0=$(now)
for p in $(seq "$PROBES"); do
  a=$((3 + (p - 1) % (N - 2)))
  addr="10.201.0.$((p + 1))"
  ip -n "$(hns "$a")" link add "calp$p" type veth peer name "simp$p"
  ip -n "$(hns "$a")" link set "calp$p" up
  ip -n "$(hns "$a")" link set "simp$p" up
  printf 'apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata:\n  name: h27n%d-sim-probe%d-eth0\n  namespace: default\nspec:\n  orchestrator: sim\n  workload: probe%d\n  endpoint: eth0\n  node: h27n%d\n  interfaceName: calp%d\n  ipNetworks: [%s/32]\n  profiles: [h27-sim]\n' \
    "$a" "$p" "$p" "$a" "$p" "$addr" >"$WORK/probe.yaml"
  t0=$(now)
  cal ipam assign --handle "h27-probe$p" --node "h27n$a" --ip "$addr" --endpoint "default/h27n$a-sim-probe$p-eth0" >/dev/null
  tw=$(now)
  cal apply -f "$WORK/probe.yaml" >/dev/null
  t1=$(now)
  deadline=$((SECONDS + 60))
  while :; do
    got=$(grep -l -F "] $addr " "$WORK"/n*/mon | wc -l || true)
    [ "$got" -ge "$N" ] && break
    if [ $SECONDS -ge $deadline ]; then echo "probe $p ($addr on h27n$a): on $got of $N hosts after 60 s" >&2; break; fi
    sleep 0.05
  done
  for i in $(seq "$N"); do
    awk -v a="$addr" "$tsawk"' index($0, "] " a " ") && !/Deleted/ { printf "%.6f\n", ts($1); exit }' "$WORK/n$i/mon"
  done >"$WORK/p-t"
  last=$(sort -n "$WORK/p-t" | tail -1)
  loc=$(awk -v a="$addr" "$tsawk"' index($0, "] " a " ") && !/Deleted/ { printf "%.6f\n", ts($1); exit }' "$WORK/n$a/mon")
  echo "$(ms "$t0" "$tw")" >>"$WORK/p-ipam"
  echo "$(ms "$tw" "$t1")" >>"$WORK/p-apply"
  echo "$(ms "$t0" "$loc")" >>"$WORK/p-local"
  echo "$(ms "$t0" "$last")" >>"$WORK/p-all"
  echo "$(ms "$t1" "$last")" >>"$WORK/p-all-commit"
  awk -v t="$t0" '{ printf "%.0f\n", ($1 - t) * 1000 }' "$WORK/p-t" >>"$WORK/p-perhost"
  [ "$(wc -l <"$WORK/p-t")" -ge "$N" ] || echo "probe $p: only $(wc -l <"$WORK/p-t") hosts" >>"$WORK/p-missing"
done
PT1=$(now); S1=$(cpu_ticks "$ETCD"); PC1=$(node_ticks)
IT0=$(now); IC0=$(node_ticks); IE0=$(cpu_ticks "$ETCD")
# Idle: nothing changes for 10 s (a measurement window, not a wait for anything).
sleep 10
IT1=$(now); IC1=$(node_ticks); IE1=$(cpu_ticks "$ETCD")
SENT1=$(etcd_metric etcd_network_client_grpc_sent_bytes_total)
HZ=$(getconf CLK_TCK)

echo "== Simulated fleet: N=$N hosts, $EPS endpoints per host ($((N * EPS)) in total), 2 route reflectors"
echo "machine: $(nproc) vCPU, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r), load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "start $N nodes until all ready ($START_PAR at a time): $(secs "$T0" "$T1") s; until every BGP session is up: $(secs "$T1" "$T2") s more"
echo "BGP sessions: reflectors $sess_rr (want $((N - 1)) each); clients: $sess_clients"
echo "node RSS idle (MiB): $RSS_IDLE"
echo "endpoints: veths $(secs "$T3" "$T4") s, $N x ipam assign --num $EPS $(secs "$T4" "$T5") s, $N x calico apply ($EPS WorkloadEndpoints each) $(secs "$T5" "$T6") s"
echo "blocks: $TOTAL_BLOCKS (/26); last apply -> every host has every route: $(secs "$T6" "$T7") s"
echo "node RSS with $((N * EPS)) endpoints (MiB): $RSS_LOADED; reflectors $RR_RSS"
echo "etcd: RSS $ETCD_RSS MiB, keys $KEYS, db $((DBSIZE / 1048576)) MiB, watch streams $STREAMS, watchers $WATCHERS ($(awk -v w="$WATCHERS" -v n="$N" 'BEGIN { printf "%.1f", w / n }') per node)"
echo "etcd CPU: node start + sessions $(awk -v a="$E0" -v b="$E1" -v t="$(secs "$T0" "$T2")" -v hz="$HZ" 'BEGIN { printf "%.1f s in %.0f s (%.0f%% of one core)", (b - a) / hz, t, 100 * (b - a) / hz / t }'), endpoints $(awk -v a="$E1" -v b="$E2" -v t="$(secs "$T3" "$T7")" -v hz="$HZ" 'BEGIN { printf "%.1f s in %.0f s (%.0f%%)", (b - a) / hz, t, 100 * (b - a) / hz / t }'), probes $(awk -v a="$S0" -v b="$S1" -v t="$(secs "$PT0" "$PT1")" -v hz="$HZ" 'BEGIN { printf "%.1f s in %.0f s (%.0f%%)", (b - a) / hz, t, 100 * (b - a) / hz / t }')"
echo "all nodes CPU: endpoints phase $(cpu_share "$C1" "$C2" "$T3" "$T7"), probes $(cpu_share "$PC0" "$PC1" "$PT0" "$PT1"), idle $(cpu_share "$IC0" "$IC1" "$IT0" "$IT1") (etcd idle $(cpu_share "$IE0" "$IE1" "$IT0" "$IT1"))"
echo "etcd watch fan-out during probes: $(((SENT1 - SENT0) / 1024)) KiB sent to clients for $PROBES new endpoints ($(((SENT1 - SENT0) / PROBES / 1024)) KiB per endpoint: its IPAM block write and its WorkloadEndpoint write, to every watcher)"
echo "probe: calico ipam assign --ip (ms):                        $(stats "$WORK/p-ipam")"
echo "probe: calico apply of the WorkloadEndpoint (ms):            $(stats "$WORK/p-apply")"
echo "probe: route on host A (ms, from before ipam assign):        $(stats "$WORK/p-local")"
echo "probe: route on ALL $N hosts (ms, from before ipam assign):  $(stats "$WORK/p-all")   goal < 2000"
echo "probe: route on ALL $N hosts (ms, from apply returned):      $(stats "$WORK/p-all-commit")"
echo "probe: per host, route in its kernel (ms, from before ipam): $(stats "$WORK/p-perhost")"
if [ -s "$WORK/p-missing" ]; then echo "INCOMPLETE probes:"; cat "$WORK/p-missing"; fi
fails=$(grep -l "level=ERROR" "$WORK"/n*/log 2>/dev/null | wc -l || true)
echo "nodes with ERROR log lines: $fails of $N"
log "done; cleaning up"
