package nft

import (
	"context"
	"testing"

	"github.com/calico-docker/calico/internal/dataplane"
)

// TestRuleCounters sends real traffic through a policy and reads each
// rule's counter back with RuleCounters.
func TestRuleCounters(t *testing.T) {
	tp := newTopo(t)
	w1 := tp.addWorkload(t, "cali1", 1)
	w2 := tp.addWorkload(t, "cali2", 2)
	serve(t, w2.ns, "tcp:8080", "tcp:9090")
	tcp := u8(6)
	pol := dataplane.PolicyChain{ID: "gnp:web", Ingress: []dataplane.Rule{
		{Action: dataplane.Deny, Protocol: tcp, Dst: dataplane.Match{Ports: []dataplane.PortRange{{First: 9090, Last: 9090}}}},
		{Action: dataplane.Allow, Protocol: tcp, Src: dataplane.Match{Nets: hostPfx(w1)}},
	}}
	e2 := w2.ep("profile:open")
	e2.IngressPolicies = []string{pol.ID}
	tp.apply(t, &dataplane.Desired{
		Endpoints: []dataplane.Endpoint{w1.ep("profile:open"), e2},
		Chains:    []dataplane.PolicyChain{pol, allowAll("profile:open")},
	})
	get := func() map[string]RuleCounter {
		cs, err := tp.drv.RuleCounters(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]RuleCounter{}
		for _, c := range cs {
			dir := "e"
			if c.Ingress {
				dir = "i"
			}
			m[c.Chain+"/"+dir+"/"+string(rune('0'+c.Rule))] = c
		}
		return m
	}
	before := get()
	if c, ok := before["gnp:web/i/1"]; !ok || c.Packets != 0 || c.Action != "Allow" {
		t.Fatalf("fresh counters: %+v", before)
	}
	mustNotReach(t, w1.ns, "tcp", ap(w2.v4, 9090))
	mustReach(t, w1.ns, "tcp", ap(w2.v4, 8080))
	mustReach(t, w1.ns, "tcp", ap(w2.v6, 8080)) // rule 1's IPv6 twin counts for rule 1
	after := get()
	if c := after["gnp:web/i/0"]; c.Packets < 1 || c.Bytes < 40 {
		t.Errorf("deny rule counter: %+v", c)
	}
	// One SYN per connection reaches the policy; the rest is established.
	if c := after["gnp:web/i/1"]; c.Packets != 2 {
		t.Errorf("allow rule counter: %+v", c)
	}
	if c := after["profile:open/e/0"]; c.Packets < 3 {
		t.Errorf("profile egress counter (three connections from w1): %+v", c)
	}
}
