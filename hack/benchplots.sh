#!/usr/bin/env bash
# Draws the PNG plots of BENCHMARKS.md (docs/bench/*.png) with
# hack/benchplot (gonum/plot, its own module: no plotting code in the
# calico binary). Inputs: docs/bench/datapath.tsv (hack/bench-datapath.sh)
# and, when given, the raw outputs of the nft and routes sections (for the
# change-vs-host-size curve, docs/bench/hostsize.tsv).
#
#   hack/benchplots.sh [NFT_OUT] [ROUTES_OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
D=docs/bench
mkdir -p "$D"
BIN=$(mktemp -d /tmp/benchplot.XXXXXX)
trap 'rm -rf "$BIN"' EXIT
(cd hack/benchplot && go build -o "$BIN/benchplot" .)
P="$BIN/benchplot"
R=veth,raw,ours,ours-policy,ours-vxlan,docker-bridge,docker-overlay
if [ -f "$D/datapath.tsv" ]; then
  "$P" bars -in "$D/datapath.tsv" -metrics tcp1_gbps,tcp4_gbps -rows "$R" -ylabel "Gbit/s (median, min-max)" -title "TCP throughput per path (iperf3, 1 and 4 streams)" -out "$D/throughput.png"
  "$P" bars -in "$D/datapath.tsv" -metrics rr_p50_us -rows "$R" -ylabel "µs (median, min-max)" -title "TCP request/response latency p50 (sockperf ping-pong)" -out "$D/latency-p50.png"
  "$P" bars -in "$D/datapath.tsv" -metrics rr_p99_us -rows "$R" -ylabel "µs (median, min-max)" -title "TCP request/response latency p99" -out "$D/latency-p99.png"
  "$P" bars -in "$D/datapath.tsv" -metrics udp64_kpps -rows "$R" -ylabel "kpps received (median, min-max)" -title "Small packets: UDP, 64-byte payload, unlimited rate" -out "$D/smallpkt.png"
fi
# hostsize.tsv: "series hosts ms" from the benchmarks' result lines.
if [ $# -ge 1 ]; then
  {
    [ -f "$1" ] && awk '/^BenchmarkChangeVsHostSize\/hosts=/ {
        split($1, a, "="); n = a[2]; sub(/-[0-9]+$/, "", n)
        for (i = 3; i < NF; i++) if ($(i + 1) ~ /-p50-ms$/) { k = $(i + 1); sub(/-p50-ms$/, "", k); printf "nft %s p50\t%s\t%s\n", k, n, $i }
      }' "$1"
    [ $# -ge 2 ] && [ -f "$2" ] && awk '/^BenchmarkOneEndpointVsHostSize\/hosts=/ {
        split($1, a, "="); n = a[2]; sub(/-[0-9]+$/, "", n)
        for (i = 3; i < NF; i++) if ($(i + 1) == "µs/apply") printf "routes add/remove\t%s\t%.3f\n", n, $i / 1000
      }' "$2"
  } >"$D/hostsize.tsv.new"
  if [ -s "$D/hostsize.tsv.new" ]; then mv "$D/hostsize.tsv.new" "$D/hostsize.tsv"; else rm -f "$D/hostsize.tsv.new"; fi
fi
if [ -f "$D/hostsize.tsv" ]; then
  "$P" lines -in "$D/hostsize.tsv" -xlabel "endpoints already programmed on the host" -ylabel "ms per change (p50)" -title "Cost of one endpoint change vs host size" -out "$D/hostsize.png"
fi
# hostsize-nft.tsv: nftables alone, before and after the incremental
# driver (hand-made from two binaries' runs; see BENCHMARKS.md).
if [ -f "$D/hostsize-nft.tsv" ]; then
  "$P" lines -in "$D/hostsize-nft.tsv" -xlabel "endpoints already programmed on the host" -ylabel "ms per change (p50, median of runs)" -title "nftables: one endpoint change vs host size" -out "$D/hostsize-nft.png"
fi
# policyscale.tsv: "series x ratio" (BenchmarkPolicyScale, hack/bench-nft.sh).
if [ -f "$D/policyscale.tsv" ]; then
  "$P" lines -in "$D/policyscale.tsv" -logx -logy -xlabel "set members, policies or linear rules on the path" -ylabel "ratio to 1-member set, 10 policies (median of rounds)" -title "Policy scale: TCP 1 stream and one-way UDP packets/s" -out "$D/policyscale.png"
fi
if [ -f "$D/memory.tsv" ]; then
  "$P" bars -in "$D/memory.tsv" -metrics peak_mib,settled_mib,idle30s_mib -ylabel "MiB" -title "calico node run RSS, 10,000 endpoints + 1,000 policies" -out "$D/memory.png"
fi
