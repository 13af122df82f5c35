package calc

import (
	"fmt"
	"testing"

	"github.com/calico-docker/calico/internal/api"
)

// benchSnapshot is the scale of issue 4: 10,000 endpoints on 10 hosts (1,000
// on this one), 1,000 policies each with its own selector and a rule whose
// source selector is also its own (1,000 sets of about 10 members), and 10
// profiles.
func benchSnapshot() *Snapshot {
	const (
		nEndpoints = 10000
		nNodes     = 10
		nPolicies  = 1000
		nProfiles  = 10
	)
	s := &Snapshot{Node: "h0"}
	for i := range nEndpoints {
		ip := fmt.Sprintf("10.%d.%d.%d/32", i>>16&255, i>>8&255, i&255)
		labels := map[string]string{
			"app":  fmt.Sprintf("app%d", (i/nNodes)%nPolicies),
			"role": fmt.Sprintf("r%d", i%5),
			"pod":  fmt.Sprintf("pod%d", i),
		}
		s.WorkloadEndpoints = append(s.WorkloadEndpoints, wep(fmt.Sprintf("ns%d", i%20), fmt.Sprintf("w%05d", i),
			fmt.Sprintf("h%d", i%nNodes), fmt.Sprintf("cali%011d", i), []string{ip}, labels,
			fmt.Sprintf("prof%d", (i/nNodes)%nProfiles)))
	}
	for i := range nProfiles {
		s.Profiles = append(s.Profiles, profile(fmt.Sprintf("prof%d", i), map[string]string{"group": fmt.Sprint(i)},
			[]api.Rule{{Action: "Allow", Source: api.EntityRule{Selector: fmt.Sprintf("group == '%d'", i)}}},
			[]api.Rule{{Action: "Allow"}}))
	}
	for i := range nPolicies {
		rule := api.Rule{Action: "Allow", Protocol: proto("TCP"),
			Source:      api.EntityRule{Selector: fmt.Sprintf("app == 'app%d'", (i+1)%nPolicies)},
			Destination: api.EntityRule{Ports: []api.Port{{MinPort: 80, MaxPort: 80}}}}
		s.GlobalNetworkPolicies = append(s.GlobalNetworkPolicies,
			gnp(fmt.Sprintf("pol%04d", i), ord(float64(i%10)), fmt.Sprintf("app == 'app%d'", i), nil, []api.Rule{rule}, nil))
	}
	s.IPPools = []api.IPPool{pool("p", "10.0.0.0/8", "Never", true, false)}
	for i := range 160 {
		s.Blocks = append(s.Blocks, Block{CIDR: pfx(fmt.Sprintf("10.0.%d.0/26", i)), Node: fmt.Sprintf("h%d", i%nNodes)})
	}
	return s
}

func BenchmarkComputeCold(b *testing.B) {
	s := benchSnapshot()
	b.ResetTimer()
	for b.Loop() {
		d := Compute(s)
		if len(d.Endpoints) != 1000 || len(d.Sets) < 1000 {
			b.Fatalf("endpoints %d sets %d", len(d.Endpoints), len(d.Sets))
		}
	}
}

func BenchmarkCalculatorCold(b *testing.B) {
	s := benchSnapshot()
	b.ResetTimer()
	for b.Loop() {
		loadCalculator(s).Desired()
	}
}

// BenchmarkCalculatorLabelChange: one local endpoint moves from one app to
// another (leaving one policy and one set, joining others) and Desired() is
// rebuilt.
func BenchmarkCalculatorLabelChange(b *testing.B) {
	s := benchSnapshot()
	c := loadCalculator(s)
	c.Desired()
	w := s.WorkloadEndpoints[0] // on h0: local
	apps := []string{"app0", "app500"}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		w.Labels = map[string]string{"app": apps[i%2], "role": "r0", "pod": "pod0"}
		i++
		c.UpsertWorkloadEndpoint(&w)
		d := c.Desired()
		if len(d.Endpoints) != 1000 {
			b.Fatal("lost endpoints")
		}
	}
}

// BenchmarkCalculatorRemoteLabelChange is the same for an endpoint on
// another host: only set membership changes.
func BenchmarkCalculatorRemoteLabelChange(b *testing.B) {
	s := benchSnapshot()
	c := loadCalculator(s)
	c.Desired()
	w := s.WorkloadEndpoints[1] // on h1
	apps := []string{"app1", "app501"}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		w.Labels = map[string]string{"app": apps[i%2], "role": "r1", "pod": "pod1"}
		i++
		c.UpsertWorkloadEndpoint(&w)
		c.Desired()
	}
}

// BenchmarkCalculatorPolicyChange: one policy's selector changes.
func BenchmarkCalculatorPolicyChange(b *testing.B) {
	s := benchSnapshot()
	c := loadCalculator(s)
	c.Desired()
	p := s.GlobalNetworkPolicies[3]
	sels := []string{"app == 'app3'", "app == 'app13'"}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		p.Spec.Selector = sels[i%2]
		i++
		c.UpsertGlobalNetworkPolicy(&p)
		c.Desired()
	}
}

// BenchmarkCalculatorAddEndpoint: a new local endpoint appears (evaluated
// against every selector) and disappears again.
func BenchmarkCalculatorAddEndpoint(b *testing.B) {
	s := benchSnapshot()
	c := loadCalculator(s)
	c.Desired()
	w := wep("ns0", "new", "h0", "calinew", []string{"10.200.0.1/32"}, map[string]string{"app": "app7", "role": "r2"}, "prof1")
	b.ResetTimer()
	for b.Loop() {
		c.UpsertWorkloadEndpoint(&w)
		c.Desired()
		c.DeleteWorkloadEndpoint("ns0", "new")
		c.Desired()
	}
}
