#!/usr/bin/env bash
# IPAM benchmark (not a test): assignments per second against a real embedded
# etcd, sequential and with 8 concurrent clients (each with its own etcd
# connection, as 8 processes would have), and the compare-and-swap retries
# those clients needed. Calico's own IPAM gives up after 100 retries.
#
#   hack/bench-ipam.sh            # 2000 assignments per benchmark
#   N=5000 hack/bench-ipam.sh
#
# Columns: assigns/s; retries-total and retries/op over the run; retries-max,
# the most retries a single call needed.
#   BenchmarkAssignSequential         one client, one node
#   BenchmarkAssignConcurrent8        8 clients on 2 nodes: 4 writers race for
#                                     each node's current block (worst case)
#   BenchmarkAssignConcurrent8Nodes8  8 clients on 8 nodes: no shared blocks
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-2000}"
# The embedded etcd's own log lines land in the middle of benchmark lines;
# drop them so each result stays on one line.
go test -run '^$' -bench 'BenchmarkAssign' -benchtime "${N}x" -count 1 ./internal/ipam/ 2>&1 |
  perl -0pe 's/\d{4}\/\d\d\/\d\d [\d:]+ (ERROR|WARN|INFO) [^\n]*\n//g' |
  grep -E '^(Benchmark|goos|goarch|cpu|ok|FAIL|---)|assigns/s'
