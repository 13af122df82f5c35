package nft

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"testing"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/testutil"
)

// BenchmarkThroughput measures forwarding between two workloads under
// three ways of allowing w1 into w2 (ratios within one run are what count
// on a shared machine):
//
//   - single: one rule, "from 10.65.0.1/32";
//   - set10k: one rule matching a 10,000-member selector set, on a host whose
//     dispatch maps and anti-spoofing set hold 10,000 endpoints;
//   - linear10k (reference): 10,000 rules of one /32 each, w1's the last.
//
// "tcp" is iperf3 over TCP: a flow is judged by policy once, then its
// packets are accepted by the first rule (ct state established), so this is
// what a normal connection sees. "udp" is one-way UDP that nothing answers
// (a blaster and a counting sink built into the test binary): conntrack
// keeps the flow "new", so every packet walks anti-spoofing, dispatch,
// the endpoint chains and the policy, which is the per-packet cost of the
// set lookup (and of linear rules). Run with -benchtime 1x.
func BenchmarkThroughput(b *testing.B) {
	testutil.RequireCmd(b, "iperf3")
	tp := newTopo(b)
	w1 := tp.addWorkload(b, "cali1", 1)
	w2 := tp.addWorkload(b, "cali2", 2)
	startServer(b, w2.ns, "5201", "iperf3", "-s", "-p", "5201")

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
	// Rounds alternate the order so that a slow drift of the (shared)
	// machine does not favour one variant; ratios are taken within a round
	// and their median reported.
	const rounds, secs = 5, "2"
	for r := 0; r < rounds; r++ {
		vs := slices.Clone(order)
		if r%2 == 1 {
			slices.Reverse(vs)
		}
		for _, v := range vs {
			tp.apply(b, variants[v]())
			results["tcp-"+v] = append(results["tcp-"+v], iperfGbps(b, w1, w2, secs))
			results["udp-"+v] = append(results["udp-"+v], udpBlast(b, w1, w2, r*10+len(v))/1e6)
		}
	}
	for _, proto := range []string{"tcp", "udp"} {
		unit := map[string]string{"tcp": "Gbps", "udp": "Mpps"}[proto]
		single := results[proto+"-single"]
		for _, v := range order {
			xs := results[proto+"-"+v]
			b.ReportMetric(median(xs), proto+"-"+v+"-"+unit)
			msg := fmt.Sprintf("%s %s: median %.3f %s, runs %.3f", proto, v, median(xs), unit, xs)
			if v != "single" {
				ratios := make([]float64, len(xs))
				for i := range xs {
					ratios[i] = xs[i] / single[i]
				}
				b.ReportMetric(median(ratios), proto+"-"+v+"/single")
				msg += fmt.Sprintf("; per-round ratio to single %.3f, median %.3f", ratios, median(ratios))
			}
			b.Log(msg)
		}
	}
}

// udpBlast sends one-way UDP from w1 to w2 and returns the packets per
// second w2 received over 2 s.
func udpBlast(b *testing.B, w1, w2 *workload, salt int) float64 {
	b.Helper()
	port := strconv.Itoa(6000 + salt%1000)
	sink := helperCmd(b, w2.ns, "sink", port, "2000")
	out, err := sink.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := sink.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = sink.Process.Kill(); _ = sink.Wait() }()
	r := bufio.NewReader(out)
	if l, err := r.ReadString('\n'); err != nil || l != "ready\n" {
		b.Fatalf("sink: %q %v", l, err)
	}
	if o, err := helperCmd(b, w1.ns, "blast", netip.AddrPortFrom(w2.v4, uint16(6000+salt%1000)).String(), "2300", "64").CombinedOutput(); err != nil {
		b.Fatalf("blast: %v: %s", err, o)
	}
	line, err := r.ReadString('\n')
	if err != nil {
		b.Fatalf("sink result: %v", err)
	}
	var pkts, secs float64
	if _, err := fmt.Sscan(line, &pkts, &secs); err != nil || secs == 0 {
		b.Fatalf("sink result %q: %v", line, err)
	}
	return pkts / secs
}

// iperfGbps is the TCP throughput of one iperf3 stream from w1 to w2 (its
// server on port 5201), as the receiver counted it.
func iperfGbps(b *testing.B, w1, w2 *workload, secs string) float64 {
	b.Helper()
	out, err := exec.Command("ip", "netns", "exec", w1.ns.Name, "iperf3", "-c", w2.v4.String(), "-p", "5201", "-t", secs, "-J").Output()
	if err != nil {
		b.Fatalf("iperf3: %v: %s", err, out)
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
	return res.End.SumReceived.BitsPerSecond / 1e9
}
