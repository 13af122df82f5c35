#!/usr/bin/env bash
# The quick benchmark (`make bench-quick`, a few minutes, as root): the data
# path side by side (hack/bench-datapath.sh with QUICK=1: 3 rounds of 1 s,
# IPv4), the datastore-write -> kernel latency of one endpoint and the node's
# RSS at 10,000 endpoints. Ends with summary lines "NAME VALUE":
#
#   throughput_ratio_routed    ours with 1,000 policies and a 10,000-member
#                              set / the raw routed path, TCP, 1 stream
#   throughput_ratio_profile   ours with profile rules only / raw routed
#   latency_p99_ratio_routed   TCP request/response p99, same pair of paths
#   latency_p50_delta_us_routed  p50 difference to the raw path, microseconds
#   throughput_ratio_policy10k ours with 1,000 policies and the 10,000-member
#                              set / ours with profile rules (same hosts)
#   throughput_ratio_vxlan     ours over VXLAN / raw routed
#   throughput_ratio_overlay   Docker swarm overlay / raw routed
#   throughput_ratio_bridge    Docker bridge (one host) / raw routed
#   program_latency_p99_ms     endpoint written to the datastore -> its rules
#                              in the kernel, 1,000 endpoints and policies
#   node_rss_10k_mib           calico node run, 10,000 endpoints and 1,000
#                              policies programmed, settled (lowest VmRSS
#                              over the 5 s after); node_rss_peak_10k_mib: VmHWM
#                              policies programmed
#   load_average               of the machine at the end (shared machines
#                              make every number noisy: compare ratios)
#
# Not part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CALICO_BIN=${CALICO_BIN:-$PWD/bin/calico}
WORK=$(mktemp -d /tmp/bench-quick.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
t0=$EPOCHREALTIME
echo "bench-quick: load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
QUICK=1 DATA=${DATA:-$WORK/datapath.tsv} hack/bench-datapath.sh | tee "$WORK/datapath.out"
go test -run '^$' -bench 'BenchmarkEndpointToKernel/write' -benchtime "${SAMPLES:-30}x" -count 1 -timeout 20m ./internal/agent/ 2>&1 |
  grep -E '^(Benchmark|ok|FAIL|---)|bench_test.go' | tee "$WORK/e2k.out"
go test -run '^$' -bench 'BenchmarkNodeRSS' -benchtime 1x -count 1 -timeout 20m ./internal/agent/ 2>&1 |
  grep -E '^(Benchmark|ok|FAIL|---)|bench_test.go' | tee "$WORK/rss.out"
# gm FILE UNIT: the value before UNIT on the first result line.
gm() { awk -v u="$2" '/^Benchmark/ { for (i = 3; i < NF; i++) if ($(i + 1) == u) { print $i; exit } }' "$1"; }
echo
echo "== summary (bench-quick took $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s)"
grep -E '^(throughput|latency)_' "$WORK/datapath.out"
echo "program_latency_p99_ms $(gm "$WORK/e2k.out" p99-ms)"
echo "node_rss_10k_mib $(gm "$WORK/rss.out" node-rss-settled-MiB)"
echo "node_rss_peak_10k_mib $(gm "$WORK/rss.out" node-peak-MiB)"
echo "load_average $(cut -d' ' -f1 /proc/loadavg)"
