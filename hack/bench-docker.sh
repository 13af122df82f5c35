#!/usr/bin/env bash
# Benchmark: `docker run --rm` on a calico network vs a Docker bridge network,
# in the same lab host (its own dockerd), interleaved so that machine noise
# hits both alike. Prints per-run times, medians, means and the ratio
# (goal: calico <= 1.2x bridge).
#
#   hack/bench-docker.sh            # N=30 runs of each
#   N=50 CALICO_BIN=bin/calico hack/bench-docker.sh
#
# The lab dockerds run with Docker's defaults (iptables on, default bridge);
# the bridge side is a user-defined bridge network of its own, so that both
# sides are networks created for the run: the same bridge driver and veth work.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:/usr/sbin:/sbin:$PATH"
N=${N:-30}
BIN=$(readlink -f "${CALICO_BIN:-bin/calico}")
IMAGE=calico-lab/busybox:latest
LAB=bdk$(head -c2 /dev/urandom | od -An -tx1 | tr -d ' \n')
WORK=$(mktemp -d)
[ -x "$BIN" ] || { echo "no calico binary at $BIN (make build)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "needs root" >&2; exit 1; }

cleanup() {
  if [ -s "$WORK/node.pid" ]; then
    pid=$(cat "$WORK/node.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  "$BIN" lab down --name "$LAB" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

in_host() { "$BIN" lab exec --name "$LAB" host1 -- "$@"; }

echo "lab $LAB: up" >&2
"$BIN" lab up --name "$LAB" --hosts 1 --no-nodes >/dev/null
ip=$("$BIN" lab status --name "$LAB" -o json | sed -n 's/.*"ip": *"\([0-9.]*\/[0-9]*\)".*/\1/p' | head -1)
# The node daemon in the host, its PID recorded by the shell it execs from.
in_host sh -c "echo \$\$ > $WORK/node.pid; exec $BIN node run --name host1 --ip $ip --no-bgp \
  --embedded-etcd --etcd-data-dir /var/lib/calico/etcd" >"$WORK/node.log" 2>&1 &
for i in $(seq 600); do
  if in_host busybox wget -q -O /dev/null http://127.0.0.1:9099/readiness 2>/dev/null &&
     in_host test -S /run/docker/plugins/calico.sock; then break; fi
  if [ "$i" = 600 ]; then echo "node not ready; log:" >&2; tail -30 "$WORK/node.log" >&2; exit 1; fi
  sleep 0.1
done
in_host docker network create --driver calico --ipam-driver calico-ipam calinet >/dev/null
in_host docker network create --driver bridge --subnet 172.30.0.0/16 bridgenet >/dev/null

cat >"$WORK/loop.sh" <<EOF
set -e
one() { s=\$(date +%s%N); docker run --rm --net "\$1" $IMAGE true; e=\$(date +%s%N); echo "\$1 \$(( (e - s) / 1000 ))"; }
one calinet >/dev/null; one bridgenet >/dev/null   # warm up
for i in \$(seq $N); do one calinet; one bridgenet; done
EOF
echo "lab $LAB: $N runs of each, interleaved" >&2
in_host bash "$WORK/loop.sh" >"$WORK/times"

awk -v n="$N" '
  { t[$1, ++c[$1]] = $2 / 1000; sum[$1] += $2 / 1000 }
  function median(net,   i, j, k, a, tmp) {
    k = c[net]; for (i = 1; i <= k; i++) a[i] = t[net, i]
    for (i = 2; i <= k; i++) { tmp = a[i]; for (j = i - 1; j > 0 && a[j] > tmp; j--) a[j + 1] = a[j]; a[j + 1] = tmp }
    return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
  }
  END {
    mc = median("calinet"); mb = median("bridgenet")
    printf "docker run --rm, %d runs each (ms)\n", n
    printf "  calico network: median %.0f  mean %.0f\n", mc, sum["calinet"] / c["calinet"]
    printf "  bridge network: median %.0f  mean %.0f\n", mb, sum["bridgenet"] / c["bridgenet"]
    printf "  ratio (median): %.2fx  (goal <= 1.20x)\n", mc / mb
    printf "  ratio (mean):   %.2fx\n", (sum["calinet"] / c["calinet"]) / (sum["bridgenet"] / c["bridgenet"])
  }' "$WORK/times"
