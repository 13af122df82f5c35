package calc

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/calico-docker/calico/internal/api"
)

// Kubernetes-only selectors evaluated as Calico does (its pcns./pcsa.
// labels): a namespace's only label is projectcalico.org/name, a service
// account's the same, and only endpoints with spec.serviceAccountName have
// one. Endpoint a (prod) has service account sa1, b (dev) and c (prod) none.
func kubeselEndpoints() []api.WorkloadEndpoint {
	a := wep("prod", "a", "h1", "cali1", []string{"10.0.0.1/32"}, map[string]string{"x": "1"})
	a.Spec.ServiceAccountName = "sa1"
	b := wep("dev", "b", "h1", "cali2", []string{"10.0.0.2/32"}, map[string]string{"x": "1"})
	c := wep("prod", "c", "h1", "cali3", []string{"10.0.0.3/32"}, map[string]string{"x": "1"})
	return []api.WorkloadEndpoint{a, b, c}
}

func TestKubeSelectorsPolicySelection(t *testing.T) {
	for _, tt := range []struct {
		name     string
		global   bool
		sel      string // "" for x == '1'
		saSel    string
		nsSel    string
		selected []string // endpoints the policy applies to
	}{
		{name: "GNP serviceAccountSelector by name", global: true, saSel: "projectcalico.org/name == 'sa1'", selected: []string{"prod/a"}},
		{name: "GNP serviceAccountSelector other label", global: true, saSel: "team == 'x'"},
		// Calico rewrites all() to has(projectcalico.org/serviceaccount).
		{name: "GNP serviceAccountSelector all()", global: true, saSel: "all()", selected: []string{"prod/a"}},
		// !has(pcsa.team) is true without a service account, as in Calico.
		{name: "GNP serviceAccountSelector negation", global: true, saSel: "!has(team)", selected: []string{"prod/a", "dev/b", "prod/c"}},
		{name: "NP serviceAccountSelector", saSel: "projectcalico.org/name == 'sa1'", selected: []string{"prod/a"}},
		{name: "NP serviceAccountSelector no match", saSel: "projectcalico.org/name == 'other'"},
		{name: "GNP namespaceSelector", global: true, nsSel: "projectcalico.org/name == 'dev'", selected: []string{"dev/b"}},
		{name: "GNP namespaceSelector all()", global: true, nsSel: "all()", selected: []string{"prod/a", "dev/b", "prod/c"}},
		{name: "GNP namespaceSelector unknown label", global: true, nsSel: "env == 'prod'"},
		// Calico replaces all() in the policy's own selector too.
		{name: "GNP selector all() with serviceAccountSelector negation", global: true, sel: "all()", saSel: "!has(team)", selected: []string{"prod/a"}},
		{name: "NP selector all() with serviceAccountSelector negation", sel: "all()", saSel: "!has(team)", selected: []string{"prod/a"}},
		{name: "NP empty selector with serviceAccountSelector negation", sel: " ", saSel: "!has(team)", selected: []string{"prod/a", "prod/c"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &Snapshot{Node: "h1", WorkloadEndpoints: kubeselEndpoints()}
			id := "policy:prod/p"
			sel := "x == '1'"
			if tt.sel != "" {
				sel = tt.sel
			}
			if tt.global {
				g := gnp("p", nil, sel, nil, []api.Rule{allow()}, nil)
				g.Spec.ServiceAccountSelector, g.Spec.NamespaceSelector = tt.saSel, tt.nsSel
				s.GlobalNetworkPolicies = []api.GlobalNetworkPolicy{g}
				id = "gnp:p"
			} else {
				n := netpol("prod", "p", nil, sel, nil, []api.Rule{allow()}, nil)
				n.Spec.ServiceAccountSelector = tt.saSel
				s.NetworkPolicies = []api.NetworkPolicy{n}
			}
			d := compute(t, s)
			var got []string
			for _, ep := range []string{"prod/a", "dev/b", "prod/c"} {
				if slices.Contains(endpointByID(t, d, ep).IngressPolicies, id) {
					got = append(got, ep)
				}
			}
			if !slices.Equal(got, tt.selected) {
				t.Fatalf("policy applies to %v, want %v", got, tt.selected)
			}
		})
	}
}

func TestKubeSelectorsRules(t *testing.T) {
	for _, tt := range []struct {
		name    string
		ns      string // "" for a GlobalNetworkPolicy
		side    api.EntityRule
		members []netip.Prefix // of the rule's one source set
		noRule  bool           // the rule matches nothing and is left out
	}{
		{name: "serviceAccounts names", side: api.EntityRule{ServiceAccounts: &api.ServiceAccountMatch{Names: []string{"sa1", "sa2"}}}, members: pfxs("10.0.0.1/32")},
		{name: "serviceAccounts names no endpoint", side: api.EntityRule{ServiceAccounts: &api.ServiceAccountMatch{Names: []string{"sa2"}}}},
		{name: "serviceAccounts selector", side: api.EntityRule{ServiceAccounts: &api.ServiceAccountMatch{Selector: "projectcalico.org/name == 'sa1'"}}, members: pfxs("10.0.0.1/32")},
		{name: "serviceAccounts selector other label", side: api.EntityRule{ServiceAccounts: &api.ServiceAccountMatch{Selector: "team == 'x'"}}},
		{name: "serviceAccounts names and selector", side: api.EntityRule{Selector: "x == '1'", ServiceAccounts: &api.ServiceAccountMatch{Names: []string{"sa1"}, Selector: "projectcalico.org/name == 'sa2'"}}},
		// In a NetworkPolicy serviceAccounts confines to its namespace
		// like a selector; all() in a rule is not rewritten (matches all).
		{name: "NP serviceAccounts selector all()", ns: "prod", side: api.EntityRule{ServiceAccounts: &api.ServiceAccountMatch{Selector: "all()"}}, members: pfxs("10.0.0.1/32", "10.0.0.3/32")},
		{name: "NP serviceAccounts names with namespaceSelector", ns: "dev", side: api.EntityRule{NamespaceSelector: "all()", ServiceAccounts: &api.ServiceAccountMatch{Names: []string{"sa1"}}}, members: pfxs("10.0.0.1/32")},
		{name: "NP namespaceSelector", ns: "prod", side: api.EntityRule{NamespaceSelector: "projectcalico.org/name == 'dev'"}, members: pfxs("10.0.0.2/32")},
		{name: "namespaceSelector global()", side: api.EntityRule{NamespaceSelector: "global()"}},
		{name: "namespaceSelector unknown label", side: api.EntityRule{NamespaceSelector: "env == 'prod'"}},
		{name: "services", side: api.EntityRule{Services: &api.ServiceMatch{Name: "web", Namespace: "prod"}}, noRule: true},
		{name: "NP services", ns: "prod", side: api.EntityRule{Services: &api.ServiceMatch{Name: "web"}}, noRule: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := api.Rule{Action: api.ActionAllow, Source: tt.side}
			s := &Snapshot{Node: "h1", WorkloadEndpoints: kubeselEndpoints()}
			id := "gnp:p"
			if tt.ns == "" {
				s.GlobalNetworkPolicies = []api.GlobalNetworkPolicy{gnp("p", nil, "", nil, []api.Rule{r}, nil)}
			} else {
				s.NetworkPolicies = []api.NetworkPolicy{netpol(tt.ns, "p", nil, "", nil, []api.Rule{r}, nil)}
				id = "policy:" + tt.ns + "/p"
			}
			d := compute(t, s)
			rules := chainByID(t, d, id).Ingress
			if tt.noRule {
				if len(rules) != 0 || len(d.Sets) != 0 {
					t.Fatalf("rule kept: %+v, sets %+v", rules, d.Sets)
				}
				return
			}
			if len(rules) != 1 || len(rules[0].Src.Sets) != 1 {
				t.Fatalf("rules = %+v", rules)
			}
			set := setByID(t, d, rules[0].Src.Sets[0])
			if !reflect.DeepEqual(set.Members, tt.members) {
				t.Fatalf("set %q members = %v, want %v", set.Selector, set.Members, tt.members)
			}
		})
	}
}

// A host endpoint has no namespace and no service account: Calico's
// pcns./pcsa. labels are absent, so all() (rewritten to has(namespace) or
// has(serviceaccount)) and positive selectors never select it, while a
// negation does.
func TestKubeSelectorsHostEndpoints(t *testing.T) {
	pols := []api.GlobalNetworkPolicy{
		hostPol("sa-all", 1, "host == 'yes'", []string{"Ingress"}, []api.Rule{deny()}, nil, func(s *api.PolicySpec) { s.ServiceAccountSelector = "all()" }),
		hostPol("sa-neg", 2, "host == 'yes'", []string{"Ingress"}, []api.Rule{deny()}, nil, func(s *api.PolicySpec) { s.ServiceAccountSelector = "!has(team)" }),
		hostPol("sa-name", 3, "host == 'yes'", []string{"Ingress"}, []api.Rule{deny()}, nil, func(s *api.PolicySpec) { s.ServiceAccountSelector = "projectcalico.org/name == 'a'" }),
		hostPol("ns-all", 4, "host == 'yes'", []string{"Ingress"}, []api.Rule{deny()}, nil, func(s *api.PolicySpec) { s.NamespaceSelector = "all()" }),
		hostPol("ns-neg", 5, "host == 'yes'", []string{"Ingress"}, []api.Rule{deny()}, nil, func(s *api.PolicySpec) { s.NamespaceSelector = "!has(env)" }),
		// all() in the policy's selector becomes has(projectcalico.org/namespace).
		hostPol("ns-neg-all", 5.5, "all()", []string{"Ingress"}, []api.Rule{deny()}, nil, func(s *api.PolicySpec) { s.NamespaceSelector = "!has(env)" }),
		// A rule's set: the remote host endpoint's address is in it only
		// where Calico's selector would match it.
		hostPol("rules", 6, "host == 'yes'", []string{"Ingress"}, []api.Rule{
			{Action: api.ActionAllow, Source: api.EntityRule{Selector: "role == 'db'", ServiceAccounts: &api.ServiceAccountMatch{Selector: "!has(team)"}}},
			{Action: api.ActionAllow, Source: api.EntityRule{Selector: "role == 'db'", ServiceAccounts: &api.ServiceAccountMatch{Names: []string{"a"}}}},
		}, nil, nil),
	}
	d := compute(t, &Snapshot{
		Node: "h1",
		HostEndpoints: []api.HostEndpoint{
			hep("h1-eth0", "h1", "eth0", map[string]string{"host": "yes"}, []string{"192.0.2.1"}),
			hep("h2-eth0", "h2", "eth0", map[string]string{"host": "yes", "role": "db"}, []string{"192.0.2.2"}),
		},
		GlobalNetworkPolicies: pols,
	})
	if len(d.Hosts.Endpoints) != 1 || !slices.Equal(d.Hosts.Endpoints[0].Ingress, []string{"gnp:sa-neg", "gnp:ns-neg", "gnp:rules"}) {
		t.Fatalf("host endpoints: %+v", d.Hosts.Endpoints)
	}
	rules := chainByID(t, d, "gnp:rules").Ingress
	if len(rules) != 2 {
		t.Fatalf("rules: %+v", rules)
	}
	for i, want := range [][]netip.Prefix{pfxs("192.0.2.2/32"), nil} {
		if got := setByID(t, d, rules[i].Src.Sets[0]).Members; !reflect.DeepEqual(got, want) {
			t.Errorf("rule %d set members = %v, want %v", i, got, want)
		}
	}
}

// An endpoint that gains or loses a service account moves in and out of
// what service-account selectors match, incrementally as from scratch.
func TestKubeSelectorsServiceAccountChanges(t *testing.T) {
	g := gnp("p", nil, "", nil, []api.Rule{
		{Action: api.ActionAllow, Source: api.EntityRule{ServiceAccounts: &api.ServiceAccountMatch{Names: []string{"sa9"}}}},
		{Action: api.ActionAllow, Source: api.EntityRule{ServiceAccounts: &api.ServiceAccountMatch{Selector: "projectcalico.org/name == 'sa9'"}}},
	}, nil)
	g.Spec.ServiceAccountSelector = "all()"
	s := &Snapshot{Node: "h1", WorkloadEndpoints: kubeselEndpoints(), GlobalNetworkPolicies: []api.GlobalNetworkPolicy{g}}
	c := loadCalculator(s)
	for _, sa := range []string{"sa9", "other", "", "sa9"} {
		s.WorkloadEndpoints[1].Spec.ServiceAccountName = sa // dev/b
		c.UpsertWorkloadEndpoint(&s.WorkloadEndpoints[1])
		want := Compute(s)
		if got := c.Desired(); !reflect.DeepEqual(got, want) {
			t.Fatalf("service account %q: Calculator disagrees with Compute:\n%s", sa, diffDesired(got, want))
		}
		applies := slices.Contains(endpointByID(t, want, "dev/b").IngressPolicies, "gnp:p")
		if applies != (sa != "") {
			t.Fatalf("service account %q: policy applies = %v", sa, applies)
		}
		set := setByID(t, want, chainByID(t, want, "gnp:p").Ingress[0].Src.Sets[0])
		if in := slices.Contains(set.Members, pfx("10.0.0.2/32")); in != (sa == "sa9") {
			t.Fatalf("service account %q: names set members %v", sa, set.Members)
		}
	}
}
