package nft

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/testutil"
)

// BenchmarkThroughput measures forwarding between two workloads with
// iperf3, under three ways of allowing w1 into w2 (ratios within one run
// are what count on a shared machine):
//
//   - single: one rule, "from 10.65.0.1/32";
//   - set10k: one rule matching a 10,000-member selector set, on a host whose
//     dispatch maps and anti-spoofing set hold 10,000 endpoints;
//   - linear10k (reference): 10,000 rules of one /32 each, w1's the last.
//
// TCP flows are judged once (established packets are accepted by the first
// rule), so TCP shows the cost on a normal flow; one-way UDP stays "new"
// (no reply), so every UDP packet walks the whole path, which shows the
// per-packet cost of the set lookup. Run with -benchtime 1x.
func BenchmarkThroughput(b *testing.B) {
	testutil.RequireCmd(b, "iperf3")
	tp := newTopo(b)
	w1 := tp.addWorkload(b, "cali1", 1)
	w2 := tp.addWorkload(b, "cali2", 2)
	srv := exec.Command("ip", "netns", "exec", w2.ns.Name, "iperf3", "-s", "-p", "5201")
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	testutil.Eventually(b, 5*time.Second, func() error {
		out, err := w2.ns.Exec("ss", "-Hltn", "sport", "=", ":5201")
		if err == nil && !strings.Contains(out, "5201") {
			err = fmt.Errorf("iperf3 not listening yet")
		}
		return err
	})

	const n = 10000
	others := make([]netip.Prefix, 0, n)
	for i := 0; len(others) < n-1; i++ {
		a := netip.AddrFrom4([4]byte{10, 66, byte(i >> 8), byte(i)})
		others = append(others, netip.PrefixFrom(a, 32))
	}
	w1p := netip.PrefixFrom(w1.v4, 32)
	base := func() *dataplane.Desired {
		return &dataplane.Desired{
			Endpoints: []dataplane.Endpoint{w1.ep("profile:open"), w2.ep()},
			Chains:    []dataplane.PolicyChain{allowAll("profile:open")},
		}
	}
	variants := map[string]func() *dataplane.Desired{
		"single": func() *dataplane.Desired {
			d := base()
			d.Chains = append(d.Chains, dataplane.PolicyChain{ID: "policy:t/in", Ingress: []dataplane.Rule{
				{Action: dataplane.Allow, Src: dataplane.Match{Nets: []netip.Prefix{w1p}}}}})
			d.Endpoints[1].IngressPolicies = []string{"policy:t/in"}
			return d
		},
		"set10k": func() *dataplane.Desired {
			d := base()
			members := append(slices.Clone(others), w1p)
			d.Sets = []dataplane.IPSet{{ID: "s-big", Selector: "has(big)", Members: sortedPrefixes(members)}}
			d.Chains = append(d.Chains, dataplane.PolicyChain{ID: "policy:t/in", Ingress: []dataplane.Rule{
				{Action: dataplane.Allow, Src: dataplane.Match{Sets: []string{"s-big"}}}}})
			d.Endpoints[1].IngressPolicies = []string{"policy:t/in"}
			for i, p := range others {
				d.Endpoints = append(d.Endpoints, dataplane.Endpoint{ID: fmt.Sprintf("t/x%d", i), Iface: fmt.Sprintf("calx%07d", i),
					Addrs: []netip.Prefix{p}, Profiles: []string{"profile:open"}})
			}
			return d
		},
		"linear10k": func() *dataplane.Desired {
			d := base()
			var rules []dataplane.Rule
			for _, p := range append(slices.Clone(others), w1p) {
				rules = append(rules, dataplane.Rule{Action: dataplane.Allow, Src: dataplane.Match{Nets: []netip.Prefix{p}}})
			}
			d.Chains = append(d.Chains, dataplane.PolicyChain{ID: "policy:t/in", Ingress: rules})
			d.Endpoints[1].IngressPolicies = []string{"policy:t/in"}
			return d
		},
	}
	order := []string{"single", "set10k", "linear10k"}
	results := map[string][]float64{}
	const rounds, secs = 3, "3"
	for r := 0; r < rounds; r++ {
		for _, v := range order {
			tp.apply(b, variants[v]())
			for _, proto := range []string{"tcp", "udp"} {
				args := []string{"netns", "exec", w1.ns.Name, "iperf3", "-c", w2.v4.String(), "-p", "5201", "-t", secs, "-J"}
				if proto == "udp" {
					args = append(args, "-u", "-b", "0", "-l", "1400")
				}
				out, err := exec.Command("ip", args...).Output()
				if err != nil {
					b.Fatalf("iperf3 %s %s: %v: %s", v, proto, err, out)
				}
				var res struct {
					End struct {
						SumReceived struct {
							BitsPerSecond float64 `json:"bits_per_second"`
						} `json:"sum_received"`
					} `json:"end"`
				}
				if err := json.Unmarshal(out, &res); err != nil {
					b.Fatalf("iperf3 output: %v", err)
				}
				results[proto+"-"+v] = append(results[proto+"-"+v], res.End.SumReceived.BitsPerSecond/1e9)
			}
		}
	}
	median := func(xs []float64) float64 {
		s := slices.Clone(xs)
		slices.Sort(s)
		return s[len(s)/2]
	}
	for _, proto := range []string{"tcp", "udp"} {
		single := median(results[proto+"-single"])
		for _, v := range order {
			m := median(results[proto+"-"+v])
			b.ReportMetric(m, proto+"-"+v+"-Gbps")
			if v != "single" {
				b.ReportMetric(m/single, proto+"-"+v+"/single")
			}
			b.Logf("%s %s: %v Gbit/s", proto, v, results[proto+"-"+v])
		}
	}
}
