package calc

import (
	"reflect"
	"slices"
	"testing"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/dataplane"
)

func inTier(p api.GlobalNetworkPolicy, tier string) api.GlobalNetworkPolicy {
	p.Spec.Tier = tier
	return p
}

// Policies are grouped by tier, tiers ordered as Calico orders them, and
// each tier's end marked with its default action.
func TestComputeTiers(t *testing.T) {
	w := wep("na", "a", "h1", "cali1", []string{"10.65.0.1/32"}, map[string]string{"app": "web"})
	ing := []string{api.PolicyTypeIngress}
	both := []string{api.PolicyTypeIngress, api.PolicyTypeEgress}
	pols := []api.GlobalNetworkPolicy{
		gnp("allow-web", ord(1), "app == 'web'", ing, nil, nil),
		inTier(gnp("security.block", ord(5), "all()", both, nil, nil), "security"),
		inTier(gnp("security.early", ord(1), "all()", ing, nil, nil), "security"),
		inTier(gnp("ops.watch", nil, "all()", ing, nil, nil), "ops"),
		inTier(gnp("ghost.x", ord(0), "all()", ing, nil, nil), "ghost"), // no such Tier: last
		inTier(gnp("late.y", nil, "all()", ing, nil, nil), "late"),
		inTier(gnp("same.z", nil, "all()", ing, nil, nil), "same"),
	}
	np := netpol("na", "security.np", ord(3), "", ing, nil, nil)
	np.Spec.Tier = "security"
	tiers := []api.Tier{
		tier("security", ord(100), "Pass"),
		tier("ops", ord(100), ""),      // same order as security: by name, ops first
		tier("late", nil, "Deny"),      // no order: after default (1,000,000)
		tier("same", ord(1e6), "Pass"), // same order as default: by name, after it
		tier("unused", ord(1), "Pass"), // selects nothing here
	}
	d := compute(t, &Snapshot{Node: "h1", WorkloadEndpoints: []api.WorkloadEndpoint{w},
		GlobalNetworkPolicies: pols, NetworkPolicies: []api.NetworkPolicy{np}, Tiers: tiers})
	e := endpointByID(t, d, "na/a")
	wantIn := []string{"gnp:ops.watch", "gnp:security.early", "policy:na/security.np", "gnp:security.block",
		"gnp:allow-web", "gnp:same.z", "gnp:late.y", "gnp:ghost.x"}
	if !slices.Equal(e.IngressPolicies, wantIn) {
		t.Errorf("ingress policies %v, want %v", e.IngressPolicies, wantIn)
	}
	wantTiers := []dataplane.EndpointTier{{Name: "ops", Policies: 1}, {Name: "security", Policies: 3, DefaultPass: true},
		{Name: "default", Policies: 1}, {Name: "same", Policies: 1, DefaultPass: true}, {Name: "late", Policies: 1}, {Name: "ghost", Policies: 1}}
	if !reflect.DeepEqual(e.IngressTiers, wantTiers) {
		t.Errorf("ingress tiers %+v, want %+v", e.IngressTiers, wantTiers)
	}
	// Egress: only security.block, in a Pass tier: a tier list even for one tier.
	if want := []dataplane.EndpointTier{{Name: "security", Policies: 1, DefaultPass: true}}; !slices.Equal(e.EgressPolicies, []string{"gnp:security.block"}) ||
		!reflect.DeepEqual(e.EgressTiers, want) {
		t.Errorf("egress %v %+v", e.EgressPolicies, e.EgressTiers)
	}

	// One Deny tier, even a named one: no tier list (the plain semantics).
	d = compute(t, &Snapshot{Node: "h1", WorkloadEndpoints: []api.WorkloadEndpoint{w},
		GlobalNetworkPolicies: pols[3:4], Tiers: tiers})
	if e := endpointByID(t, d, "na/a"); e.IngressTiers != nil || !slices.Equal(e.IngressPolicies, []string{"gnp:ops.watch"}) {
		t.Errorf("single tier: %+v", e)
	}
	// The default tier's Tier resource sets its order and action.
	d = compute(t, &Snapshot{Node: "h1", WorkloadEndpoints: []api.WorkloadEndpoint{w},
		GlobalNetworkPolicies: pols[:2], Tiers: []api.Tier{tier("default", ord(1), "Pass"), tier("security", ord(100), "")}})
	want := []dataplane.EndpointTier{{Name: "default", Policies: 1, DefaultPass: true}, {Name: "security", Policies: 1}}
	if e := endpointByID(t, d, "na/a"); !reflect.DeepEqual(e.IngressTiers, want) || !slices.Equal(e.IngressPolicies, []string{"gnp:allow-web", "gnp:security.block"}) {
		t.Errorf("default tier first: %+v", e)
	}
}

// A Tier change re-evaluates the endpoints whose policies it groups.
func TestCalculatorTierChanges(t *testing.T) {
	c := NewCalculator("h1")
	w := wep("na", "a", "h1", "cali1", []string{"10.65.0.1/32"}, nil)
	c.UpsertWorkloadEndpoint(&w)
	p1 := gnp("allow", nil, "", nil, nil, nil)
	p2 := inTier(gnp("sec.deny", nil, "", nil, nil, nil), "sec")
	c.UpsertGlobalNetworkPolicy(&p1)
	c.UpsertGlobalNetworkPolicy(&p2)
	first := func() []string { return c.Desired().Endpoints[0].IngressPolicies }
	if got := first(); !slices.Equal(got, []string{"gnp:allow", "gnp:sec.deny"}) {
		t.Fatalf("without a Tier resource sec comes last: %v", got)
	}
	sec := tier("sec", ord(10), "")
	c.UpsertTier(&sec)
	if got := first(); !slices.Equal(got, []string{"gnp:sec.deny", "gnp:allow"}) {
		t.Fatalf("with order 10 sec comes first: %v", got)
	}
	v := c.Version()
	c.UpsertTier(&sec)
	if c.Version() != v {
		t.Fatal("unchanged tier changed the version")
	}
	c.DeleteTier("sec")
	if got := first(); !slices.Equal(got, []string{"gnp:allow", "gnp:sec.deny"}) {
		t.Fatalf("after delete: %v", got)
	}
}
