package nft

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/testutil"
)

// benchScenario builds a Desired shaped like a busy Calico host:
// nEP endpoints (IPv4 and IPv6 each) spread over 100 apps and 10 networks;
// nPol policies, policy p selecting the endpoints of app p%100 for
// ingress (so each endpoint has nPol/100 ingress policies) and allowing
// TCP port 8000+p%100 from the endpoints of app (p*7)%100, plus an egress
// policy per app; one profile per network allowing ingress from its members.
type benchScenario struct {
	eps     []dataplane.Endpoint
	chains  []dataplane.PolicyChain
	appSets [][]netip.Prefix // members of each app's set
	netSets [][]netip.Prefix
	nEP     int
	nApps   int
	nNets   int
}

func benchEndpoint(i, nPol, nApps, nNets int) dataplane.Endpoint {
	app := i % nApps
	ep := dataplane.Endpoint{
		ID:    fmt.Sprintf("bench/ep%d", i),
		Iface: fmt.Sprintf("cali%07d", i),
		Addrs: []netip.Prefix{
			netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 64 + byte(i>>16), byte(i >> 8), byte(i)}), 32),
			netip.PrefixFrom(netip.AddrFrom16([16]byte{0: 0xfd, 1: 0, 2: 0, 3: 0x64, 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)}), 128),
		},
		Profiles:       []string{fmt.Sprintf("profile:net%d", i%nNets)},
		EgressPolicies: []string{fmt.Sprintf("gnp:egress-app%02d", app)},
	}
	for p := app; p < nPol; p += nApps {
		ep.IngressPolicies = append(ep.IngressPolicies, fmt.Sprintf("policy:bench/p%04d", p))
	}
	return ep
}

func newBenchScenario(nEP, nPol int) *benchScenario {
	s := &benchScenario{nEP: nEP, nApps: 100, nNets: 10}
	s.appSets = make([][]netip.Prefix, s.nApps)
	s.netSets = make([][]netip.Prefix, s.nNets)
	for i := 0; i < nEP; i++ {
		ep := benchEndpoint(i, nPol, s.nApps, s.nNets)
		s.eps = append(s.eps, ep)
		s.appSets[i%s.nApps] = append(s.appSets[i%s.nApps], ep.Addrs...)
		s.netSets[i%s.nNets] = append(s.netSets[i%s.nNets], ep.Addrs...)
	}
	for p := 0; p < nPol; p++ {
		s.chains = append(s.chains, dataplane.PolicyChain{
			ID: fmt.Sprintf("policy:bench/p%04d", p),
			Ingress: []dataplane.Rule{
				{Action: dataplane.Allow, Protocol: u8(6), Src: dataplane.Match{Sets: []string{fmt.Sprintf("s-app%02d", (p*7)%s.nApps)}},
					Dst: dataplane.Match{Ports: []dataplane.PortRange{{First: 8000 + uint16(p%100), Last: 8000 + uint16(p%100)}}}},
				{Action: dataplane.Deny, Src: dataplane.Match{Nets: pfx("192.0.2.0/24", "2001:db8::/32")}},
			},
		})
	}
	for a := 0; a < s.nApps; a++ {
		s.chains = append(s.chains, dataplane.PolicyChain{
			ID:     fmt.Sprintf("gnp:egress-app%02d", a),
			Egress: []dataplane.Rule{{Action: dataplane.Deny, Protocol: u8(6), Dst: dataplane.Match{Ports: []dataplane.PortRange{{First: 25, Last: 25}}}}, {Action: dataplane.Allow}},
		})
	}
	for n := 0; n < s.nNets; n++ {
		s.chains = append(s.chains, sameProfile(fmt.Sprintf("profile:net%d", n), fmt.Sprintf("s-net%d", n)))
	}
	slices.SortFunc(s.chains, func(a, b dataplane.PolicyChain) int { return cmpString(a.ID, b.ID) })
	return s
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sortedPrefixes(ps []netip.Prefix) []netip.Prefix {
	out := slices.Clone(ps)
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out
}

func (s *benchScenario) desired() *dataplane.Desired {
	d := &dataplane.Desired{Endpoints: s.eps, Chains: s.chains}
	for a, m := range s.appSets {
		d.Sets = append(d.Sets, dataplane.IPSet{ID: fmt.Sprintf("s-app%02d", a), Selector: fmt.Sprintf("app == '%d'", a), Members: sortedPrefixes(m)})
	}
	for n, m := range s.netSets {
		d.Sets = append(d.Sets, dataplane.IPSet{ID: fmt.Sprintf("s-net%d", n), Selector: fmt.Sprintf("has(net%d)", n), Members: sortedPrefixes(m)})
	}
	slices.SortFunc(d.Sets, func(a, b dataplane.IPSet) int { return cmpString(a.ID, b.ID) })
	d.NAT = dataplane.NATConfig{MasqueradePools: pfx("10.64.0.0/14"), AllPools: pfx("10.64.0.0/14", "fd00:0:0:64::/64")}
	return d
}

func reportStats(b *testing.B, st ApplyStats) {
	b.ReportMetric(float64(st.Messages), "msgs")
	b.ReportMetric(float64(st.Bytes)/1e6, "MB")
	b.ReportMetric(float64(st.Rules), "rules")
	b.ReportMetric(float64(st.Chains), "chains")
	b.ReportMetric(float64(st.Elements), "elements")
}

// BenchmarkColdApply: programming 10,000 endpoints and 1,000 policies into
// an empty namespace (goal < 2 s).
func BenchmarkColdApply(b *testing.B) {
	testutil.RequireRoot(b)
	d := newBenchScenario(10000, 1000).desired()
	var st ApplyStats
	var heap uint64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ns := testutil.NewNetNS(b, "nft-b")
		before := heapInUse()
		drv, err := New(Options{NetNS: ns.Path()})
		if err != nil {
			b.Fatal(err)
		}
		drv.SetDesired(d)
		b.StartTimer()
		st, err = drv.Apply(context.Background())
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		// What the driver keeps between Applies (its cache and its record
		// of the kernel), beside the Desired itself.
		heap = heapInUse() - before
		drv.Close()
		b.StartTimer()
	}
	reportStats(b, st)
	b.ReportMetric(float64(heap)/(1<<20), "driver-heap-MB")
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkRestartApply: a new driver (agent restart) over the table of
// 10,000 endpoints and 1,000 policies: reads it and finds nothing to do.
func BenchmarkRestartApply(b *testing.B) {
	testutil.RequireRoot(b)
	d := newBenchScenario(10000, 1000).desired()
	ns := testutil.NewNetNS(b, "nft-b")
	drv, err := New(Options{NetNS: ns.Path()})
	if err != nil {
		b.Fatal(err)
	}
	drv.SetDesired(d)
	if _, err := drv.Apply(context.Background()); err != nil {
		b.Fatal(err)
	}
	drv.Close()
	b.ResetTimer()
	var st ApplyStats
	for i := 0; i < b.N; i++ {
		drv, err := New(Options{NetNS: ns.Path()})
		if err != nil {
			b.Fatal(err)
		}
		drv.SetDesired(d)
		st, err = drv.Apply(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if st.Messages != 0 {
			b.Fatalf("restart changed something: %+v", st)
		}
		drv.Close()
	}
}

// BenchmarkAddEndpoint: with 1,000 endpoints (and 1,000 policies)
// programmed, the time for Apply to program one more endpoint (its chains,
// map and anti-spoofing elements, and its address joining two selector
// sets). Reports p50 and p99 over b.N additions (goal p99 < 100 ms).
func BenchmarkAddEndpoint(b *testing.B) {
	testutil.RequireRoot(b)
	const base, nPol = 1000, 1000
	s := newBenchScenario(base, nPol)
	ns := testutil.NewNetNS(b, "nft-b")
	drv, err := New(Options{NetNS: ns.Path()})
	if err != nil {
		b.Fatal(err)
	}
	defer drv.Close()
	drv.SetDesired(s.desired())
	if _, err := drv.Apply(context.Background()); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ep := benchEndpoint(base+i, nPol, s.nApps, s.nNets)
		s.eps = append(s.eps, ep)
		s.appSets[(base+i)%s.nApps] = append(s.appSets[(base+i)%s.nApps], ep.Addrs...)
		s.netSets[(base+i)%s.nNets] = append(s.netSets[(base+i)%s.nNets], ep.Addrs...)
		d := s.desired()
		b.StartTimer()
		start := time.Now()
		drv.SetDesired(d)
		st, err := drv.Apply(context.Background())
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		if st.ElementsAdded < 6 || st.ChainsDeleted != 0 {
			b.Fatalf("expected the endpoint's map, anti-spoofing and set elements: %+v", st)
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
}
