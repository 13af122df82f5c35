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

// BenchmarkFlowLogsOverhead measures what Desired.FlowLogs costs: the same
// policy (an Allow rule for w1 on w2's ingress) with flow logs off and on.
// "tcp" is iperf3 (the policy judges one packet per connection), "udp" is
// a one-way UDP blast that conntrack keeps "new", so every packet walks
// the log twin (its rate limit) before the Allow rule: the worst case.
// Nothing reads NFLOG here, so the kernel drops the logged copies, as it
// would for a node that does not keep up. Rounds alternate the order; the
// per-round ratio on/off is reported. Run with -benchtime 1x.
func BenchmarkFlowLogsOverhead(b *testing.B) {
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
	desired := func(on bool) *dataplane.Desired {
		d := &dataplane.Desired{
			Endpoints: []dataplane.Endpoint{w1.ep("profile:open"), w2.ep()},
			Chains: []dataplane.PolicyChain{allowAll("profile:open"), {ID: "policy:t/in", Ingress: []dataplane.Rule{
				{Action: dataplane.Allow, Src: dataplane.Match{Nets: []netip.Prefix{netip.PrefixFrom(w1.v4, 32)}}}}}},
			FlowLogs: on,
		}
		d.Endpoints[1].IngressPolicies = []string{"policy:t/in"}
		return d
	}
	const rounds = 5
	res := map[string][]float64{}
	for r := 0; r < rounds; r++ {
		order := []bool{false, true}
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, on := range order {
			name := map[bool]string{false: "off", true: "on"}[on]
			tp.apply(b, desired(on))
			out, err := exec.Command("ip", "netns", "exec", w1.ns.Name, "iperf3", "-c", w2.v4.String(), "-p", "5201", "-t", "2", "-J").Output()
			if err != nil {
				b.Fatalf("iperf3: %v", err)
			}
			var j struct {
				End struct {
					SumReceived struct {
						BitsPerSecond float64 `json:"bits_per_second"`
					} `json:"sum_received"`
				} `json:"end"`
			}
			if err := json.Unmarshal(out, &j); err != nil {
				b.Fatal(err)
			}
			res["tcp-"+name] = append(res["tcp-"+name], j.End.SumReceived.BitsPerSecond/1e9)
			res["udp-"+name] = append(res["udp-"+name], udpBlast(b, w1, w2, r*2+len(name))/1e6)
		}
	}
	median := func(xs []float64) float64 {
		s := slices.Clone(xs)
		slices.Sort(s)
		return s[len(s)/2]
	}
	for _, p := range []string{"tcp", "udp"} {
		off, on := res[p+"-off"], res[p+"-on"]
		ratios := make([]float64, len(off))
		for i := range off {
			ratios[i] = on[i] / off[i]
		}
		b.ReportMetric(median(ratios), p+"-on/off")
		b.Logf("%s: off %.3f, on %.3f (Gbps for tcp, Mpps for udp); per-round on/off %.3f, median %.3f", p, off, on, ratios, median(ratios))
	}
}
