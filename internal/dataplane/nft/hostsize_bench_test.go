package nft

import (
	"context"
	"fmt"
	"runtime/pprof"
	"slices"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/testutil"
)

// BenchmarkChangeVsHostSize: the cost of one endpoint added, changed (its
// ingress policies replaced, as a label change does) and removed, with 100,
// 1,000 and 10,000 endpoints (and 1,000 policies) already programmed. The
// goal is a flat curve: the cost of a change should follow the change, not
// the host. Each b.N iteration is one add, one change and one remove; p50
// and p99 per kind are reported. Run with -benchtime 50x or so.
func BenchmarkChangeVsHostSize(b *testing.B) {
	testutil.RequireRoot(b)
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			const nPol = 1000
			s := newBenchScenario(n, nPol)
			ns := testutil.NewNetNS(b, "nft-hs")
			drv, err := New(Options{NetNS: ns.Path()})
			if err != nil {
				b.Fatal(err)
			}
			defer drv.Close()
			drv.SetDesired(s.desired())
			if _, err := drv.Apply(context.Background()); err != nil {
				b.Fatal(err)
			}
			lat := map[string][]time.Duration{}
			var batchBytes int // what was sent: should follow the change, not the host
			apply := func(kind string) {
				d := s.desired()
				b.StartTimer()
				start := time.Now()
				drv.SetDesired(d)
				var err error
				var st ApplyStats
				// The label lets a -cpuprofile be narrowed to the timed
				// applies: pprof -tagfocus change=add.
				pprof.Do(context.Background(), pprof.Labels("change", kind), func(ctx context.Context) {
					st, err = drv.Apply(ctx)
				})
				lat[kind] = append(lat[kind], time.Since(start))
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				batchBytes += st.Bytes
			}
			b.ResetTimer()
			b.StopTimer()
			for i := 0; i < b.N; i++ {
				ep := benchEndpoint(n+i, nPol, s.nApps, s.nNets)
				s.eps = append(s.eps, ep)
				apply("add")
				last := &s.eps[len(s.eps)-1]
				last.IngressPolicies = slices.Clone(benchEndpoint(n+i+1, nPol, s.nApps, s.nNets).IngressPolicies)
				apply("change")
				s.eps = s.eps[:len(s.eps)-1]
				apply("remove")
			}
			b.ReportMetric(float64(batchBytes)/float64(b.N), "batch-B/op")
			for _, kind := range []string{"add", "change", "remove"} {
				xs := lat[kind]
				slices.Sort(xs)
				b.ReportMetric(float64(xs[len(xs)/2].Microseconds())/1000, kind+"-p50-ms")
				b.ReportMetric(float64(xs[(len(xs)*99)/100].Microseconds())/1000, kind+"-p99-ms")
			}
		})
	}
}
