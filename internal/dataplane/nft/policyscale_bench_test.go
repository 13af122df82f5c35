package nft

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/testutil"
)

// BenchmarkPolicyScale sweeps the size of the policy between two workloads
// of the throughput topology (issue 14 §2). w2's ingress has P policies in
// a row: P-1 that each allow one address w1 does not have, and a last one
// that allows a selector set of M members, w1 among them. Variants:
//
//   - members=M (M = 1, 1,000, 10,000, 100,000), P = 10;
//   - policies=P (P = 10, 100, 1,000, 10,000), M = 1;
//   - linear=M (M = 1,000, 10,000), P = 10: the naive ruleset of the same
//     policy, one rule per member instead of one set lookup (w1's the last).
//
// members=1 and policies=10 are the same ruleset, the base every ratio is
// taken against. Set members are only set members here (no endpoints on
// the host for them: BenchmarkThroughput covers a host with 10,000).
//
// Per variant and round: TCP throughput (iperf3, 1 stream; the policy
// judges the SYN, then conntrack accepts), TCP request/response latency on
// one connection (sockperf ping-pong p50/p99), and one-way UDP packets per
// second (every packet stays "new", so every packet walks the P policies:
// the per-packet price of the ruleset). Rounds are interleaved and rotate
// the variants' order; a ratio is taken within a round and the median of
// the rounds reported, with min/median/max of the raw values and the load
// average of each round. POLICYSCALE_ROUNDS (default 3) and POLICYSCALE_SECS
// (default 2) set the rounds and seconds per measurement;
// POLICYSCALE_TSV, if set, names a file for "series x ratio" lines
// (hack/benchplots.sh draws them). Run with -benchtime 1x.
func BenchmarkPolicyScale(b *testing.B) {
	testutil.RequireCmd(b, "iperf3", "sockperf")
	rounds := envInt(b, "POLICYSCALE_ROUNDS", 3)
	secs := strconv.Itoa(envInt(b, "POLICYSCALE_SECS", 2))
	tp := newTopo(b)
	w1 := tp.addWorkload(b, "cali1", 1)
	w2 := tp.addWorkload(b, "cali2", 2)
	startServer(b, w2.ns, "5201", "iperf3", "-s", "-p", "5201")
	startServer(b, w2.ns, "11111", "sockperf", "server", "--tcp", "-i", w2.v4.String(), "-p", "11111")

	type variant struct {
		name              string
		members, policies int
		linear            bool
		series            string // for the plot
		x                 int
	}
	var vs []variant
	for _, m := range []int{1, 1000, 10000, 100000} {
		vs = append(vs, variant{name: fmt.Sprintf("members=%d", m), members: m, policies: 10, series: "set members (10 policies)", x: m})
	}
	for _, p := range []int{100, 1000, 10000} {
		vs = append(vs, variant{name: fmt.Sprintf("policies=%d", p), members: 1, policies: p, series: "policies (1-member set)", x: p})
	}
	for _, m := range []int{1000, 10000} {
		vs = append(vs, variant{name: fmt.Sprintf("linear=%d", m), members: m, policies: 10, linear: true, series: "linear rules, one per member (10 policies)", x: m})
	}
	const base = "members=1"

	w1p := netip.PrefixFrom(w1.v4, 32)
	desired := func(v variant) *dataplane.Desired {
		d := &dataplane.Desired{
			Endpoints: []dataplane.Endpoint{w1.ep("profile:open"), w2.ep()},
			Chains:    []dataplane.PolicyChain{allowAll("profile:open")},
		}
		// Members other than w1 in 10.96.0.0/12, non-matching policies'
		// addresses in 10.112.0.0/12: neither holds w1 (10.65.0.1).
		members := []netip.Prefix{w1p}
		for i := 1; i < v.members; i++ {
			members = append(members, netip.PrefixFrom(addrAt(10<<24|96<<16, i), 32))
		}
		for i := 0; i < v.policies-1; i++ {
			id := fmt.Sprintf("policy:ps/p%05d", i)
			d.Chains = append(d.Chains, dataplane.PolicyChain{ID: id, Ingress: []dataplane.Rule{{Action: dataplane.Allow,
				Src: dataplane.Match{Nets: []netip.Prefix{netip.PrefixFrom(addrAt(10<<24|112<<16, i), 32)}}}}})
			d.Endpoints[1].IngressPolicies = append(d.Endpoints[1].IngressPolicies, id)
		}
		last := dataplane.PolicyChain{ID: "policy:ps/zlast"}
		if v.linear {
			// w1 last, so that its packets walk every rule.
			for _, p := range append(members[1:], w1p) {
				last.Ingress = append(last.Ingress, dataplane.Rule{Action: dataplane.Allow, Src: dataplane.Match{Nets: []netip.Prefix{p}}})
			}
		} else {
			d.Sets = []dataplane.IPSet{{ID: "s-scale", Selector: "has(scale)", Members: sortedPrefixes(members)}}
			last.Ingress = []dataplane.Rule{{Action: dataplane.Allow, Src: dataplane.Match{Sets: []string{"s-scale"}}}}
		}
		d.Chains = append(d.Chains, last)
		d.Endpoints[1].IngressPolicies = append(d.Endpoints[1].IngressPolicies, last.ID)
		return d
	}

	metrics := []string{"tcp-Gbps", "rr-p50-us", "rr-p99-us", "udp-kpps", "apply-ms"}
	res := map[string]map[string][]float64{} // variant -> metric -> per round
	for _, v := range vs {
		res[v.name] = map[string][]float64{}
	}
	for r := 0; r < rounds; r++ {
		load, _ := os.ReadFile("/proc/loadavg")
		b.Logf("round %d of %d: load average %s", r+1, rounds, strings.Join(strings.Fields(string(load))[:3], " "))
		for i := range vs {
			v := vs[(i+r*3)%len(vs)]
			t0 := time.Now()
			tp.apply(b, desired(v))
			m := res[v.name]
			m["apply-ms"] = append(m["apply-ms"], float64(time.Since(t0).Microseconds())/1e3)
			m["tcp-Gbps"] = append(m["tcp-Gbps"], iperfGbps(b, w1, w2, secs))
			p50, p99 := sockperfRR(b, w1, w2, secs)
			m["rr-p50-us"] = append(m["rr-p50-us"], p50)
			m["rr-p99-us"] = append(m["rr-p99-us"], p99)
			m["udp-kpps"] = append(m["udp-kpps"], udpBlast(b, w1, w2, r*len(vs)+i)/1e3)
		}
	}

	var tsv strings.Builder
	for _, v := range vs {
		for _, k := range metrics {
			xs := res[v.name][k]
			msg := fmt.Sprintf("%-16s %-9s min %9.3f  median %9.3f  max %9.3f", v.name, k, slices.Min(xs), median(xs), slices.Max(xs))
			if k != "apply-ms" {
				ratios := make([]float64, len(xs))
				for i := range xs {
					ratios[i] = xs[i] / res[base][k][i]
				}
				msg += fmt.Sprintf("  ratio to %s: median %.3f (rounds %.3f)", base, median(ratios), ratios)
				// Headline metrics: throughput and per-packet rate as
				// ratios, latency as the p50 difference.
				switch k {
				case "tcp-Gbps":
					b.ReportMetric(median(ratios), v.name+"-tcp/base")
					fmt.Fprintf(&tsv, "%s\t%d\t%.4f\n", "TCP "+v.series, v.x, median(ratios))
				case "udp-kpps":
					b.ReportMetric(median(ratios), v.name+"-udp/base")
					fmt.Fprintf(&tsv, "%s\t%d\t%.4f\n", "UDP "+v.series, v.x, median(ratios))
				case "rr-p50-us":
					deltas := make([]float64, len(xs))
					for i := range xs {
						deltas[i] = xs[i] - res[base][k][i]
					}
					b.ReportMetric(median(deltas), v.name+"-p50-delta-us")
				}
			}
			b.Log(msg)
		}
	}
	// The base row twice in the plot, as x=1 of the members series and x=10
	// of the policies series.
	for _, s := range []struct {
		series string
		x      int
	}{{"policies (1-member set)", 10}} {
		fmt.Fprintf(&tsv, "TCP %s\t%d\t1\nUDP %s\t%d\t1\n", s.series, s.x, s.series, s.x)
	}
	if f := os.Getenv("POLICYSCALE_TSV"); f != "" {
		if err := os.WriteFile(f, []byte(tsv.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// addrAt is the IPv4 address base+i.
func addrAt(base uint32, i int) netip.Addr {
	a := base + uint32(i)
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// startServer runs a server in ns until the benchmark ends and waits until
// it listens on TCP port.
func startServer(b *testing.B, ns testutil.NetNS, port string, argv ...string) {
	b.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name}, argv...)...)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	testutil.Eventually(b, 5*time.Second, func() error {
		out, err := ns.Exec("ss", "-Hltn", "sport", "=", ":"+port)
		if err == nil && !strings.Contains(out, port) {
			err = fmt.Errorf("%s not listening on %s yet", argv[0], port)
		}
		return err
	})
}

// sockperfRR is the p50 and p99 (µs) of TCP request/response on one
// connection from w1 to w2's sockperf server.
func sockperfRR(b *testing.B, w1, w2 *workload, secs string) (p50, p99 float64) {
	b.Helper()
	out, err := exec.Command("ip", "netns", "exec", w1.ns.Name, "sockperf", "ping-pong", "--tcp", "-i", w2.v4.String(),
		"-p", "11111", "-t", secs).CombinedOutput()
	if err != nil {
		b.Fatalf("sockperf: %v: %s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || !strings.Contains(l, "percentile") {
			continue
		}
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.Contains(l, "percentile 50.000"):
			p50 = v
		case strings.Contains(l, "percentile 99.000"):
			p99 = v
		}
	}
	if p50 == 0 || p99 == 0 {
		b.Fatalf("sockperf: no p50/p99 in its output:\n%s", out)
	}
	return p50, p99
}
