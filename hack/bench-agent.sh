#!/usr/bin/env bash
# Node agent benchmarks (not tests), as root: the whole chain etcd -> syncer
# -> calc -> nftables/routes in a network namespace the benchmark creates.
#
#   hack/bench-agent.sh                # all three
#   SAMPLES=200 hack/bench-agent.sh    # more latency samples
#
#   BenchmarkEndpointToKernel  1,000 endpoints and 1,000 policies programmed;
#       one more endpoint written, clock stopped when its dispatch element
#       (and so its rules: one atomic batch) is in the kernel. p50/p99/max
#       over SAMPLES samples; /write is a direct datastore write of what
#       `calico apply` stores, /apply runs the calico binary.
#   BenchmarkColdStart  10,000 endpoints and 1,000 policies in etcd, agent
#       started over an empty namespace; programmed-ms is start -> all in the
#       kernel; calc-alone-ms and nft-alone-ms time each stage on its own;
#       agent-live-heap-MiB is the agent's heap after a full GC.
#   BenchmarkNodeRSS  `calico datastore run` and `calico node run` as
#       processes in a namespace, 10,000 endpoints loaded with `calico
#       apply`; the node's VmRSS/VmHWM once everything is programmed.
set -euo pipefail
cd "$(dirname "$0")/.."
SAMPLES="${SAMPLES:-50}"
# Without CALICO_BIN the benchmarks build the calico binary from this tree
# (a stale bin/calico would measure old code).
run() {
  go test -run '^$' -bench "$1" -benchtime "$2" -count 1 -timeout 20m ./internal/agent/ 2>&1 |
    grep -E '^(Benchmark|goos|goarch|cpu|ok|FAIL|---)|bench_test.go'
}
run 'BenchmarkEndpointToKernel' "${SAMPLES}x"
run 'BenchmarkColdStart' 3x
run 'BenchmarkNodeRSS' 1x
