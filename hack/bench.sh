#!/usr/bin/env bash
# `make bench`: runs every benchmark of the project and writes BENCHMARKS.md:
# per section the exact command, the machine, the raw results, and on top a
# table of the headline numbers against the goals of the issues.
#
#   hack/bench.sh                          # everything, ~25 minutes on 2 cores (policy scale ~8, churn ~2)
#   ONLY='selector|multihost' hack/bench.sh  # sections whose key matches
#   BENCH_OUT=/tmp/b.md hack/bench.sh      # write elsewhere (default BENCHMARKS.md)
#
# Sections are found, not listed: every package with a `func Benchmark` in
# its tests is run with `go test -run '^$' -bench .`, and every executable
# hack/bench-*.sh is run as it is. A package whose path (./internal/x/) a
# hack/bench-*.sh names is left to that script, which knows its settings.
# Known sections come in a fixed order with a title; new ones follow, named
# by their path. Root is needed for most of them (netns, nftables, dockerd);
# everything they make (namespaces, labs, processes) they remove.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:/usr/local/go/bin:/usr/sbin:/sbin:$PATH"
# The benchmarks that run the calico binary use this one (make bench builds
# it first) instead of building their own.
export CALICO_BIN="$PWD/bin/calico"
BENCH_OUT=${BENCH_OUT:-BENCHMARKS.md}
ONLY=${ONLY:-}
GO_BENCHTIME=${GO_BENCHTIME:-1s}
WORK=$(mktemp -d /tmp/bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

[ -x "$CALICO_BIN" ] || { echo "no $CALICO_BIN: run make build (or make bench)" >&2; exit 1; }
if [ "$(id -u)" -ne 0 ]; then
  echo "bench: not root: the kernel, lab and Docker benchmarks will skip or fail" >&2
fi

# key|title, in the order of the sections.
KNOWN='datapath|Data path side by side: veth, raw routed path, ours (profile, 1,000 policies + 10,000-member set, VXLAN), Docker bridge and swarm overlay
datastore|Datastore: 1,000 compare-and-swap writes, listing 1,000 keys
api|Resources (internal/api)
cli|Resources and the calico command: apply/get/validate of 1,000 policies, binary size
selector|Selectors: parse and evaluate
ipam|IPAM: assignments per second, sequential and 8 concurrent clients; CAS retries
calc|Calculation: snapshot -> desired dataplane, cold and incremental
routes|Routes driver: programming routes in a netns
nft|nftables driver: cold apply, restart, one endpoint more, throughput with large sets
agent|Node agent: calico apply -> kernel, cold start, RSS
bgp|BGP: 1,000 routes between two GoBGP speakers
docker|Docker: docker run on a calico network vs a bridge network
multihost|Multi-host lab: docker run -> reachable across hosts, lab up/down, 1,000 endpoints on 3 hosts
churn|Churn: containers started and removed at a steady rate for a minute on two lab hosts'

key_of() { # ./internal/dataplane/nft/ -> nft; hack/bench-docker.sh -> docker
  case "$1" in
    hack/bench-*.sh) local k=${1#hack/bench-}; echo "${k%.sh}" ;;
    *) basename "$1" ;;
  esac
}
title_of() {
  local t; t=$(awk -F'|' -v k="$1" '$1 == k { print $2 }' <<<"$KNOWN")
  echo "${t:-$2}"
}

# Units: "key kind target".
: >"$WORK/units"
for s in hack/bench-*.sh; do
  # bench-quick.sh is a summary of other sections, not a section.
  [ "$s" = hack/bench-quick.sh ] && continue
  [ -x "$s" ] && echo "$(key_of "$s") script $s" >>"$WORK/units"
done
for d in $(grep -rlE --include='*_test.go' '^func Benchmark' internal test cmd 2>/dev/null | xargs -r -n1 dirname | sort -u); do
  pkg="./$d/"
  if grep -qF -- "$pkg" hack/bench-*.sh 2>/dev/null; then continue; fi
  echo "$(key_of "$pkg") go $pkg" >>"$WORK/units"
done
# Known keys first, in their order; the rest after, by path.
awk -F'|' 'NR == FNR { rank[$1] = NR; next } { r = ($1 in rank) ? rank[$1] : 100; print r, $0 }' \
  <(echo "$KNOWN") <(awk '{ print $1 "|" $0 }' "$WORK/units") |
  sort -k1,1n -k2 | cut -d'|' -f2 | awk '{ print $1, $2, $3 }' >"$WORK/order"
if [ -n "$ONLY" ]; then
  awk -v re="$ONLY" '$1 ~ "^(" re ")$"' "$WORK/order" >"$WORK/order.only"
  mv "$WORK/order.only" "$WORK/order"
fi

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git diff --quiet HEAD -- 2>/dev/null; then commit="$commit (+ uncommitted changes in the tree)"; fi
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
machine="$(nproc) CPUs ($cpu), $mem RAM, Linux $(uname -r), $(go version | sed 's/^go version //'), commit $commit"
start_all=$EPOCHREALTIME
utc() { date -u '+%Y-%m-%d %H:%M:%S UTC'; }

# go-filter: the result lines of `go test -bench` (and b.Log lines), not the
# logs some benchmarks' servers write in between.
go_filter() { grep -E '^(goos|goarch|pkg|cpu|Benchmark|PASS|FAIL|ok |--- |panic)|^[[:space:]]+[A-Za-z0-9_]+\.go:[0-9]+:' || true; }

failed=()
n=0
: >"$WORK/sections.md"
while read -r key kind target; do
  n=$((n + 1))
  title=$(title_of "$key" "$target")
  out="$WORK/$key.out"
  if [ "$kind" = go ]; then
    cmd="go test -run '^\$' -bench . -benchtime $GO_BENCHTIME -count 1 -timeout 20m $target"
  else
    cmd="$target"
  fi
  echo "bench: [$n] $key: $cmd" >&2
  started=$(utc); t0=$EPOCHREALTIME
  set +e
  if [ "$kind" = go ]; then
    go test -run '^$' -bench . -benchtime "$GO_BENCHTIME" -count 1 -timeout 20m "$target" >"$out.raw" 2>&1
    rc=$?
    go_filter <"$out.raw" >"$out"
  else
    OUT="$WORK/$key.txt" "$target" 2> >(tee "$out.err" >&2) | tee "$out"
    rc=${PIPESTATUS[0]}
  fi
  set -e
  took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
  status="ok"
  if [ "$rc" -ne 0 ]; then status="FAILED (exit $rc)"; failed+=("$key"); fi
  [ "$kind" = go ] && cat "$out" >&2
  {
    echo "## $n. $title"
    echo
    echo "Command: \`$cmd\`  "
    echo "Machine: $machine  "
    echo "Started $started, took $took s, $status."
    echo
    echo '```'
    cat "$out"
    if [ "$rc" -ne 0 ]; then
      echo "--- last lines of the raw output:"
      if [ "$kind" = go ]; then tail -40 "$out.raw"; else tail -30 "$out.err"; fi
    fi
    echo '```'
    if [ "$key" = cli ]; then
      echo
      echo "Binary: \`bin/calico\` is $(stat -c %s "$CALICO_BIN") bytes ($(awk -v b="$(stat -c %s "$CALICO_BIN")" 'BEGIN { printf "%.1f MiB", b / 1048576 }'); static, CGO_ENABLED=0, stripped with -ldflags '-s -w', as \`make build\` makes it)."
    fi
    echo
  } >>"$WORK/sections.md"
done <"$WORK/order"

# Headlines: numbers picked from the sections' outputs; "n/a" when a section
# did not run or changed its output.
# gm KEY BENCH UNIT: the value of UNIT on the result line of BENCH.
gm() {
  [ -f "$WORK/$1.out" ] || { echo n/a; return; }
  awk -v b="$2" -v u="$3" '
    { name = $1; sub(/-[0-9]+$/, "", name) }
    name == b { for (i = 3; i < NF; i += 2) if ($(i + 1) == u) { print $i; found = 1; exit } }
    END { if (!found) print "n/a" }' "$WORK/$1.out"
}
# scale VALUE DIVISOR FORMAT
scale() { if [ "$1" = n/a ]; then echo n/a; else awk -v v="$1" -v d="$2" -v f="$3" 'BEGIN { printf f, v / d }'; fi; }
# gl KEY REGEX [full]: the first output line matching REGEX, after its
# first ": " unless full, spaces squeezed.
gl() {
  local v=""
  [ -f "$WORK/$1.out" ] && v=$(grep -m1 -E "$2" "$WORK/$1.out" | sed -E 's/[[:space:]]+/ /g; s/^ //; s/ $//')
  [ -n "$v" ] && [ "${3:-}" != full ] && v=${v#*: }
  echo "${v:-n/a}"
}

{
  echo "| What | Result | Goal |"
  echo "|---|---|---|"
  row() { echo "| $1 | $2 | ${3:-} |"; }
  if [ -f "$WORK/datapath.out" ]; then
    dp() { awk -v k="$1" '$1 == k { print $2 }' "$WORK/datapath.out"; }
    row "Data path: ours with 1,000 policies + 10,000-member set / raw routed path, TCP 1 stream" "$(dp throughput_ratio_routed)x" ">= 0.95x"
    row "Data path: ours with profile rules / raw routed path, TCP 1 stream" "$(dp throughput_ratio_profile)x"
    row "Data path: request/response p99, ours with policy / raw; p50 difference" "$(dp latency_p99_ratio_routed)x; $(dp latency_p50_delta_us_routed) µs" "p50 <= +3 µs"
    row "Data path: 1,000 policies + 10,000-member set / profile rules only" "$(dp throughput_ratio_policy10k)x" ">= 0.95x"
    row "Data path: ours over VXLAN / raw routed; Docker swarm overlay / raw; Docker bridge / raw" "$(dp throughput_ratio_vxlan)x / $(dp throughput_ratio_overlay)x / $(dp throughput_ratio_bridge)x" "ahead of Docker's overlay"
  fi
  if [ -f "$WORK/datastore.out" ]; then
    row "1,000 sequential CAS writes (embedded etcd, fsync / no fsync)" "$(scale "$(gm datastore BenchmarkCASWrites1000/etcd-fsync ns/op)" 1e6 %.0f) ms / $(scale "$(gm datastore BenchmarkCASWrites1000/etcd-test ns/op)" 1e6 %.0f) ms"
    row "List 1,000 policy-sized keys (etcd)" "$(scale "$(gm datastore BenchmarkList1000/etcd-test ns/op)" 1e6 %.1f) ms"
  fi
  if [ -f "$WORK/cli.out" ]; then
    row "calico apply of 1,000 policies (one transaction) / unchanged" "$(scale "$(gm cli BenchmarkApply1000Policies ns/op)" 1e6 %.0f) ms / $(scale "$(gm cli BenchmarkApply1000PoliciesUnchanged ns/op)" 1e6 %.0f) ms"
    row "calico get of 1,000 policies (-o yaml / table)" "$(scale "$(gm cli BenchmarkGet1000Policies/yaml ns/op)" 1e6 %.0f) ms / $(scale "$(gm cli BenchmarkGet1000Policies/ps ns/op)" 1e6 %.0f) ms"
    row "bin/calico size" "$(awk -v b="$(stat -c %s "$CALICO_BIN")" 'BEGIN { printf "%.1f MiB", b / 1048576 }')"
  fi
  if [ -f "$WORK/selector.out" ]; then
    row "Selector evaluate (compound) / parse" "$(gm selector BenchmarkEvaluate/compound ns/op) ns / $(gm selector BenchmarkParse ns/op) ns"
  fi
  if [ -f "$WORK/ipam.out" ]; then
    row "IPAM assignments/s: sequential / 8 clients on 2 nodes / 8 clients on 8 nodes" "$(gm ipam BenchmarkAssignSequential assigns/s) / $(gm ipam BenchmarkAssignConcurrent8 assigns/s) / $(gm ipam BenchmarkAssignConcurrent8Nodes8 assigns/s)"
    row "IPAM CAS retries, 8 clients on 2 nodes: per assignment / most for one call" "$(gm ipam BenchmarkAssignConcurrent8 retries/op) / $(gm ipam BenchmarkAssignConcurrent8 retries-max)" "Calico gives up after 100"
  fi
  if [ -f "$WORK/calc.out" ]; then
    row "calc: cold compute / one label change" "$(scale "$(gm calc BenchmarkComputeCold ns/op)" 1e6 %.0f) ms / $(scale "$(gm calc BenchmarkCalculatorLabelChange ns/op)" 1e3 %.0f) µs"
  fi
  if [ -f "$WORK/routes.out" ]; then
    row "Routes: 10,000 routes cold / one endpoint among 1,000" "$(scale "$(gm routes BenchmarkApplyCold10kRoutes ns/op)" 1e6 %.0f) ms / $(scale "$(gm routes BenchmarkApplyOneEndpoint1k µs/apply)" 1e3 %.1f) ms"
  fi
  if [ -f "$WORK/nft.out" ]; then
    row "nft: 10,000 endpoints + 1,000 policies from cold" "$(scale "$(gm nft BenchmarkColdApply ns/op)" 1e6 %.0f) ms" "< 2 s"
    row "nft: one endpoint more with 1,000 programmed, p50 / p99" "$(gm nft BenchmarkAddEndpoint p50-ms) / $(gm nft BenchmarkAddEndpoint p99-ms) ms" "p99 < 100 ms"
    row "Throughput with a 10,000-member set vs one rule, TCP / UDP (per-packet)" "$(gm nft BenchmarkThroughput tcp-set10k/single)x / $(gm nft BenchmarkThroughput udp-set10k/single)x" ">= 0.95x"
    row "(reference) 10,000 linear rules vs one rule, UDP" "$(gm nft BenchmarkThroughput udp-linear10k/single)x"
    pscale() { gm nft BenchmarkPolicyScale "$1"; }
    row "Policy scale, one-way UDP pps (every packet judged) / 1-member set, 10 policies: 1k / 10k / 100k members" "$(pscale members=1000-udp/base)x / $(pscale members=10000-udp/base)x / $(pscale members=100000-udp/base)x" ">= 0.95x"
    row "Policy scale, one-way UDP pps: 100 / 1,000 / 10,000 policies; 1,000 / 10,000 linear rules" "$(pscale policies=100-udp/base)x / $(pscale policies=1000-udp/base)x / $(pscale policies=10000-udp/base)x; $(pscale linear=1000-udp/base)x / $(pscale linear=10000-udp/base)x"
    row "Policy scale, TCP 1 stream (conntrack: policy judges the SYN only): 100k members / 10,000 policies / 10,000 linear rules" "$(pscale members=100000-tcp/base)x / $(pscale policies=10000-tcp/base)x / $(pscale linear=10000-tcp/base)x"
    row "Policy scale, request/response p50 vs base: 100k members / 10,000 policies" "$(pscale members=100000-p50-delta-us) / $(pscale policies=10000-p50-delta-us) µs" "<= +3 µs"
  fi
  if [ -f "$WORK/agent.out" ]; then
    row "calico apply of one endpoint -> rules in the kernel, 1,000 programmed, p50 / p99" "$(gm agent BenchmarkEndpointToKernel/apply p50-ms) / $(gm agent BenchmarkEndpointToKernel/apply p99-ms) ms" "p99 < 100 ms"
    row "Agent cold start: 10,000 endpoints + 1,000 policies programmed" "$(gm agent BenchmarkColdStart programmed-ms) ms" "< 2 s"
    row "calico node run RSS with 10,000 endpoints" "$(gm agent BenchmarkNodeRSS node-rss-MiB) MiB"
  fi
  if [ -f "$WORK/bgp.out" ]; then
    row "BGP: 1,000 routes announced / withdrawn between two speakers" "$(gm bgp BenchmarkConvergence1000 ms-announce-1000) ms / $(gm bgp BenchmarkConvergence1000 ms-withdraw-1000) ms"
  fi
  if [ -f "$WORK/docker.out" ]; then
    row "docker run, calico network vs bridge (ratio of medians)" "$(gl docker 'ratio \(median\)' | sed -E 's/ *\(goal.*//')" "<= 1.2x"
  fi
  if [ -f "$WORK/multihost.out" ]; then
    row "docker run -d on host2 -> reachable by ping from a container on host1 (ms)" "$(gl multihost '^reachable from host1' | sed -E 's/ goal.*//')" "p99 < 1 s"
    row "calico lab up, 2 hosts (ms)" "$(gl multihost '^calico lab up --hosts 2')"
    row "calico lab down, 2 hosts, empty (ms)" "$(gl multihost '^calico lab down, empty')"
    row "calico lab down, 2 hosts with the run's containers" "$(gl multihost '^calico lab down, 2 hosts with' full | sed -E 's/.* with ([0-9]+ containers): (.*)/\2 (\1)/')"
    row "calico lab up, 3 hosts" "$(gl multihost '^calico lab up --hosts 3' | sed -E 's/;.*//')"
    row "1,000 endpoints on 3 hosts: host1's kernel routes with proto 80" "$(gl multihost '^ *host1: [0-9]+ routes')"
    row "1,000 endpoints on 3 hosts: block claimed -> route in the other hosts' kernels (ms)" "$(gl multihost '^BGP propagation' | sed -E 's/ *\[expected.*//')"
    row "1,000 endpoints on 3 hosts: calico apply -> every route on every host" "$(gl multihost '^calico apply -> every host')"
  fi
  if [ -f "$WORK/churn.out" ]; then
    row "Churn on 2 hosts, one container every 2 s for 60 s: docker run -d (ms)" "$(gl churn '^ *docker run -d returned')"
    row "Churn: after docker run -d returned, route programmed on its host (ms)" "$(gl churn '^ *of which after docker run -d returned' | sed -E 's/^programmed //')"
    row "Churn: after docker run -d returned, reachable from the other host (ms)" "$(gl churn '^ +reachable  p50' | sed -E 's/^reachable //')" "p99 < 1 s"
    row "Churn: leaks after it" "$(gl churn '^leaks after the churn')" "none"
  fi
} >"$WORK/headlines.md"

# Plots (docs/bench/*.png) from the data path samples and the host-size
# curves; a failure to draw leaves the tables.
hack/benchplots.sh "$WORK/nft.out" "$WORK/routes.out" >&2 || echo "bench: plots not drawn" >&2

total=$(awk -v a="$start_all" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", (b - a) / 60 }')
{
  echo "# Benchmarks"
  echo
  echo "Generated by \`make bench\` (\`hack/bench.sh\`) on $(utc); $n sections in $total minutes."
  echo "Do not edit: run \`make bench\` again. Scripts run with OUT set to a temporary file"
  echo "(hack/bench-nft.sh also writes its results there)."
  echo
  echo "Machine: $machine."
  echo "The machine is shared and noisy (2 vCPUs here): compare numbers within one run,"
  echo "as ratios where a section gives them, rather than across runs."
  if [ ${#failed[@]} -gt 0 ]; then
    echo
    echo "**Failed sections: ${failed[*]}** (their output is kept below)."
  fi
  echo
  echo "## Headlines"
  echo
  cat "$WORK/headlines.md"
  echo
  # The reading of the numbers (hand-written; plots drawn by hack/benchplots.sh).
  [ -f docs/bench/NOTES.md ] && { cat docs/bench/NOTES.md; echo; }
  # The simulated fleet (hack/sim-fleet.sh, too heavy for make bench: run by hand).
  [ -f docs/bench/FLEET.md ] && { cat docs/bench/FLEET.md; echo; }
  cat "$WORK/sections.md"
} >"$WORK/BENCHMARKS.md"
mv "$WORK/BENCHMARKS.md" "$BENCH_OUT"
echo "bench: wrote $BENCH_OUT ($n sections, $total min)" >&2
if [ ${#failed[@]} -gt 0 ]; then
  echo "bench: failed: ${failed[*]}" >&2
  exit 1
fi
