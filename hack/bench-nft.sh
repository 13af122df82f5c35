#!/usr/bin/env bash
# nftables driver benchmarks (not tests; root: they program throwaway
# network namespaces). Numbers go to stdout and to $OUT.
#
#   hack/bench-nft.sh                 # all of them, ~12 minutes (8 of them policy scale)
#   ADDS=500 hack/bench-nft.sh        # more endpoint additions for p50/p99
#
#   BenchmarkColdApply      10,000 endpoints + 1,000 policies into an empty
#                           namespace, one batch (goal < 2 s). msgs/MB: the
#                           batch; rules/chains/elements: the table.
#   BenchmarkRestartApply   a new driver over that table (agent restart):
#                           reads it and finds nothing to change.
#   BenchmarkAddEndpoint    one endpoint added with 1,000 endpoints and 1,000
#                           policies programmed; p50/p99 of Apply (goal p99
#                           < 100 ms).
#   BenchmarkThroughput     two workloads, w1 allowed into w2 by one rule
#                           (single), by a 10,000-member set on a host with
#                           10,000 endpoints (set10k) or by 10,000 linear
#                           rules (linear10k, reference). tcp: iperf3 Gbit/s
#                           (flows judged once, then conntrack); udp: one-way
#                           UDP that stays "new", every packet judged (Mpps).
#                           Goal: set10k/single >= 0.95.
#   BenchmarkChangeVsHostSize one endpoint added, changed, removed with 100,
#                           1,000 and 10,000 endpoints programmed; p50/p99
#                           each (goal: flat, p99 < 100 ms).
#   BenchmarkPolicyScale    policy size swept on the throughput topology:
#                           a set of 1, 1,000, 10,000, 100,000 members (10
#                           policies on the path), 10 to 10,000 policies (a
#                           1-member set), and linear rules (one per member)
#                           for contrast; TCP 1 stream, sockperf p50/p99 and
#                           one-way UDP pps, ratios to the 1-member/10-policy
#                           case. PS_ROUNDS (5), PS_SECS (2); writes
#                           docs/bench/policyscale.tsv for the plot. ~8 min.
set -euo pipefail
cd "$(dirname "$0")/.."
ADDS="${ADDS:-300}"
PS_ROUNDS="${PS_ROUNDS:-5}"
PS_SECS="${PS_SECS:-2}"
OUT="${OUT:-bench-nft.txt}"
{
  go test -run '^$' -bench 'BenchmarkColdApply' -benchtime 3x -count 1 ./internal/dataplane/nft/
  go test -run '^$' -bench 'BenchmarkRestartApply' -benchtime 3x -count 1 ./internal/dataplane/nft/
  go test -run '^$' -bench 'BenchmarkAddEndpoint' -benchtime "${ADDS}x" -count 1 ./internal/dataplane/nft/
  go test -run '^$' -bench 'BenchmarkThroughput' -benchtime 1x -count 1 -v ./internal/dataplane/nft/
  go test -run '^$' -bench 'BenchmarkChangeVsHostSize' -benchtime 30x -count 1 ./internal/dataplane/nft/
  POLICYSCALE_ROUNDS=$PS_ROUNDS POLICYSCALE_SECS=$PS_SECS POLICYSCALE_TSV=$PWD/docs/bench/policyscale.tsv \
    go test -run '^$' -bench 'BenchmarkPolicyScale' -benchtime 1x -count 1 -v -timeout 30m ./internal/dataplane/nft/
} 2>&1 | grep -E '^(Benchmark|goos|goarch|cpu|ok|FAIL|---)|throughput_test|policyscale_bench_test' | tee "$OUT"
