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
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &Snapshot{Node: "h1", WorkloadEndpoints: kubeselEndpoints()}
			id := "policy:prod/p"
			if tt.global {
				g := gnp("p", nil, "x == '1'", nil, []api.Rule{allow()}, nil)
				g.Spec.ServiceAccountSelector, g.Spec.NamespaceSelector = tt.saSel, tt.nsSel
				s.GlobalNetworkPolicies = []api.GlobalNetworkPolicy{g}
				id = "gnp:p"
			} else {
				n := netpol("prod", "p", nil, "x == '1'", nil, []api.Rule{allow()}, nil)
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
