package calc

import (
	"testing"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/dataplane"
)

// Rules with http fail closed: nothing here sees the HTTP request, so an
// Allow or Log rule with http is left out, a Deny rule denies its whole
// L3/L4 match and a Pass rule becomes a Deny of it.
func TestHTTPRulesFailClosed(t *testing.T) {
	httpMatch := &api.HTTPMatch{Methods: []string{"GET"}, Paths: []api.HTTPPath{{Prefix: "/api"}}}
	for _, tt := range []struct {
		action string
		want   dataplane.Action // "" when the rule is left out
	}{
		{api.ActionAllow, ""},
		{api.ActionLog, ""},
		{api.ActionDeny, dataplane.Deny},
		{api.ActionPass, dataplane.Deny},
	} {
		t.Run(tt.action, func(t *testing.T) {
			for _, withHTTP := range []bool{false, true} {
				r := api.Rule{Action: tt.action, Protocol: proto("TCP"), Destination: api.EntityRule{Ports: []api.Port{{MinPort: 80, MaxPort: 80}}}}
				if withHTTP {
					r.HTTP = httpMatch
				}
				s := &Snapshot{Node: "h1", WorkloadEndpoints: kubeselEndpoints(),
					GlobalNetworkPolicies: []api.GlobalNetworkPolicy{gnp("p", nil, "", nil, []api.Rule{r}, nil)}}
				rules := chainByID(t, compute(t, s), "gnp:p").Ingress
				if !withHTTP {
					// Control: without http the rule is kept as written.
					want, _ := ruleAction(tt.action)
					if len(rules) != 1 || rules[0].Action != want {
						t.Fatalf("without http: rules %+v, want one %s", rules, want)
					}
					continue
				}
				if tt.want == "" {
					if len(rules) != 0 {
						t.Fatalf("with http: rule kept: %+v", rules)
					}
					continue
				}
				if len(rules) != 1 || rules[0].Action != tt.want || rules[0].Protocol == nil || *rules[0].Protocol != 6 || len(rules[0].Dst.Ports) != 1 {
					t.Fatalf("with http: rules %+v, want one %s of TCP port 80", rules, tt.want)
				}
			}
		})
	}
}
