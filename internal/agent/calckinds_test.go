package agent

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/syncer"
)

// update turns a manifest into the syncer updates the agent receives for
// it, through the stored form (EncodeStored, then the syncer's Decode).
func updatesOf(t *testing.T, manifest string) []syncer.Update {
	t.Helper()
	docs, err := api.DecodeAndValidate([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	var out []syncer.Update
	for i, d := range docs {
		r := d.Resource
		b, err := api.EncodeStored(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := r.GetObjectMeta()
		key := datastore.ResourceKey(api.Info(r).Plural, m.Namespace, api.StoredName(r.Kind(), m.Name))
		u, err := syncer.Decode(datastore.KV{Key: key, Value: b, Revision: int64(i + 1)})
		if err != nil {
			t.Fatalf("decode %s: %v", key, err)
		}
		out = append(out, u)
	}
	return out
}

// Network sets and tiers reach the calculator; staged policies,
// kube-controllers configuration and IP reservations change nothing in the
// dataplane.
func TestCalcStateCalicoKinds(t *testing.T) {
	s := newCalcState("h1")
	s.apply(updatesOf(t, `
apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: open}
spec:
  ingress: [{action: Allow}]
  egress: [{action: Allow}]
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {namespace: default, labels: {app: web}}
spec: {node: h1, orchestrator: libnetwork, endpoint: e1, interfaceName: cali1, ipNetworks: [10.65.0.1/32], profiles: [open]}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: partners, labels: {role: partners}}
spec: {nets: [198.51.100.0/28]}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100, defaultAction: Pass}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.partners}
spec:
  tier: security
  selector: app == 'web'
  ingress: [{action: Allow, source: {selector: role == 'partners'}}]
`))
	before := s.desired()
	ep := before.Endpoints[0]
	if !slices.Equal(ep.IngressPolicies, []string{"gnp:security.partners"}) || len(ep.IngressTiers) != 1 || !ep.IngressTiers[0].DefaultPass {
		t.Fatalf("endpoint %+v", ep)
	}
	found := false
	for _, set := range before.Sets {
		found = found || slices.ContainsFunc(set.Members, func(p netip.Prefix) bool { return p.String() == "198.51.100.0/28" })
	}
	if !found {
		t.Fatalf("the network set's net is in no set: %+v", before.Sets)
	}
	s.apply(updatesOf(t, `
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: deny-all}
spec: {selector: all(), types: [Ingress, Egress]}
---
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: deny, namespace: default}
spec: {selector: all(), egress: [{action: Deny}]}
---
apiVersion: projectcalico.org/v3
kind: StagedKubernetesNetworkPolicy
metadata: {name: deny, namespace: default}
spec: {podSelector: {}, policyTypes: [Ingress]}
---
apiVersion: projectcalico.org/v3
kind: KubeControllersConfiguration
metadata: {name: default}
spec: {controllers: {node: {reconcilerPeriod: 5m}}}
---
apiVersion: projectcalico.org/v3
kind: IPReservation
metadata: {name: r}
spec: {reservedCIDRs: [10.65.0.0/30]}
`))
	if after := s.desired(); !reflect.DeepEqual(after, before) {
		t.Fatalf("staged and no-effect kinds changed the dataplane:\nbefore %+v\nafter  %+v", before, after)
	}
}
