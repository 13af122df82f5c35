package nft

import (
	"testing"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/calc"
)

// Network sets and tiers end to end: resources through the incremental
// calculator into nftables, judged by real traffic between namespaces.
func TestTrafficNetworkSetsAndTiers(t *testing.T) {
	tp := newTopo(t)
	w1 := tp.addWorkload(t, "cali1", 1)
	w2 := tp.addWorkload(t, "cali2", 2)
	w3 := tp.addWorkload(t, "cali3", 3)
	// The outside namespace plays an external partner network.
	tp.outside.MustExec(t, "ip", "route", "replace", "10.65.0.0/24", "via", tp.hostAddr.String())
	serve(t, w2.ns, "tcp:8080", "tcp:9090")

	c := calc.NewCalculator("h")
	open := api.Profile{}
	open.Name = "open"
	open.Spec.Ingress = []api.Rule{{Action: api.ActionAllow}}
	open.Spec.Egress = []api.Rule{{Action: api.ActionAllow}}
	c.UpsertProfile(&open)
	for i, w := range []*workload{w1, w2, w3} {
		e := api.WorkloadEndpoint{}
		e.Namespace, e.Name = "test", w.name
		e.Labels = map[string]string{"app": []string{"client", "web", "client"}[i]}
		e.Spec = api.WorkloadEndpointSpec{Node: "h", InterfaceName: w.iface, Profiles: []string{"open"},
			IPNetworks: []string{w.v4.String() + "/32", w.v6.String() + "/128"}}
		c.UpsertWorkloadEndpoint(&e)
	}
	apply := func() ApplyStats { t.Helper(); return tp.apply(t, c.Desired()) }

	t.Run("network sets", func(t *testing.T) {
		p := api.GlobalNetworkPolicy{}
		p.Name = "partners-only"
		p.Spec = api.PolicySpec{Selector: "app == 'web'", Ingress: []api.Rule{
			{Action: api.ActionAllow, Source: api.EntityRule{Selector: "role == 'partners'"}}}}
		c.UpsertGlobalNetworkPolicy(&p)
		gns := api.GlobalNetworkSet{}
		gns.Name, gns.Labels = "partners", map[string]string{"role": "partners"}
		gns.Spec.Nets = []string{tp.outsideAddr.String() + "/32", "10.65.0.0/31"} // outside and w1
		c.UpsertGlobalNetworkSet(&gns)
		apply()
		mustReach(t, tp.outside, "tcp", ap(w2.v4, 8080))
		mustReach(t, w1.ns, "tcp", ap(w2.v4, 9090))
		mustNotReach(t, w3.ns, "tcp", ap(w2.v4, 8080))
		mustNotReach(t, w1.ns, "tcp", ap(w2.v6, 8080)) // only IPv4 nets are partners

		// A changed set only swaps set elements.
		gns.Spec.Nets = []string{w3.v4.String(), w3.v6.String()}
		c.UpsertGlobalNetworkSet(&gns)
		st := apply()
		if st.ChainsRewritten+st.ChainsAdded != 0 || st.ElementsAdded == 0 || st.ElementsDeleted == 0 {
			t.Errorf("a network set change should only change set elements: %+v", st)
		}
		mustNotReach(t, tp.outside, "tcp", ap(w2.v4, 8080))
		mustNotReach(t, w1.ns, "tcp", ap(w2.v4, 8080))
		mustReach(t, w3.ns, "tcp", ap(w2.v4, 8080))
		mustReach(t, w3.ns, "tcp", ap(w2.v6, 8080))

		// A NetworkSet of another namespace does not reach a NetworkPolicy
		// of namespace test; one of namespace test does.
		c.DeleteGlobalNetworkPolicy(p.Name)
		np := api.NetworkPolicy{}
		np.Namespace, np.Name = "test", "partners-only"
		np.Spec = p.Spec
		c.UpsertNetworkPolicy(&np)
		other := api.NetworkSet{}
		other.Namespace, other.Name, other.Labels = "elsewhere", "partners", map[string]string{"role": "partners"}
		other.Spec.Nets = []string{tp.outsideAddr.String()}
		c.UpsertNetworkSet(&other)
		apply()
		mustNotReach(t, tp.outside, "tcp", ap(w2.v4, 8080))
		other.Namespace = "test"
		c.UpsertNetworkSet(&other)
		apply()
		mustReach(t, tp.outside, "tcp", ap(w2.v4, 8080))
		mustNotReach(t, w1.ns, "tcp", ap(w2.v4, 8080)) // the GlobalNetworkSet is not in namespace test
		c.DeleteNetworkPolicy("test", np.Name)
		c.DeleteNetworkSet("test", other.Name)
		c.DeleteNetworkSet("elsewhere", other.Name)
		c.DeleteGlobalNetworkSet(gns.Name)
	})

	t.Run("tiers", func(t *testing.T) {
		pass := "Pass"
		sec := api.Tier{}
		sec.Name, sec.Spec.Order, sec.Spec.DefaultAction = "security", ptr(100.0), &pass
		c.UpsertTier(&sec)
		gate := api.GlobalNetworkPolicy{}
		gate.Name = "security.gate"
		gate.Spec = api.PolicySpec{Tier: "security", Selector: "app == 'web'", Ingress: []api.Rule{
			{Action: api.ActionDeny, Source: api.EntityRule{Nets: []string{w1.v4.String() + "/32"}}},
			{Action: api.ActionPass, Source: api.EntityRule{Nets: []string{w3.v4.String() + "/32"}}},
		}}
		c.UpsertGlobalNetworkPolicy(&gate)
		web := api.GlobalNetworkPolicy{}
		web.Name = "allow-web"
		web.Spec = api.PolicySpec{Selector: "app == 'web'", Ingress: []api.Rule{
			{Action: api.ActionAllow, Protocol: &api.Protocol{Name: "TCP"}, Destination: api.EntityRule{Ports: []api.Port{{MinPort: 8080, MaxPort: 8080}}}}}}
		c.UpsertGlobalNetworkPolicy(&web)
		apply()
		mustNotReach(t, w1.ns, "tcp", ap(w2.v4, 8080))   // denied in tier security
		mustReach(t, w3.ns, "tcp", ap(w2.v4, 8080))      // passed on, allowed by the default tier
		mustNotReach(t, w3.ns, "tcp", ap(w2.v4, 9090))   // passed on, end of the default tier drops (the profile would allow)
		mustReach(t, tp.outside, "tcp", ap(w2.v4, 8080)) // no rule in security: its default action Pass
		mustReach(t, w1.ns, "tcp", ap(w2.v6, 8080))      // the deny is IPv4 only

		// Tier security denies by default: only the explicit Pass gets on.
		deny := "Deny"
		sec.Spec.DefaultAction = &deny
		c.UpsertTier(&sec)
		apply()
		mustNotReach(t, tp.outside, "tcp", ap(w2.v4, 8080))
		mustNotReach(t, w1.ns, "tcp", ap(w2.v6, 8080))
		mustReach(t, w3.ns, "tcp", ap(w2.v4, 8080))

		// Ordered after the default tier, security no longer sees what
		// the default tier allows.
		sec.Spec.Order = ptr(2e6)
		c.UpsertTier(&sec)
		apply()
		mustReach(t, w1.ns, "tcp", ap(w2.v4, 8080))
		mustNotReach(t, w1.ns, "tcp", ap(w2.v4, 9090))
		c.DeleteGlobalNetworkPolicy(gate.Name)
		c.DeleteGlobalNetworkPolicy(web.Name)
		c.DeleteTier(sec.Name)
		apply()
		mustReach(t, w1.ns, "tcp", ap(w2.v4, 9090)) // back to the profile
	})
}

func ptr[T any](v T) *T { return &v }
