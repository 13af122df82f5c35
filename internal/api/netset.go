package api

import "strings"

// Kinds added with their effect: network sets, tiers, staged policies, IP
// reservations and kube-controllers configuration (see docs/resources.md,
// "Network sets, tiers, staged policies, IP reservations").
const (
	KindGlobalNetworkSet              = "GlobalNetworkSet"
	KindNetworkSet                    = "NetworkSet"
	KindTier                          = "Tier"
	KindStagedGlobalNetworkPolicy     = "StagedGlobalNetworkPolicy"
	KindStagedNetworkPolicy           = "StagedNetworkPolicy"
	KindStagedKubernetesNetworkPolicy = "StagedKubernetesNetworkPolicy"
	KindIPReservation                 = "IPReservation"
	KindKubeControllersConfiguration  = "KubeControllersConfiguration"
)

// GlobalNetworkSet is a labelled list of networks that policy rule
// selectors match as if it were an endpoint with those addresses.
type GlobalNetworkSet struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       NetworkSetSpec `json:"spec"`
}

// NetworkSet is the namespaced GlobalNetworkSet: it carries the label
// projectcalico.org/namespace, so the rule selectors of a NetworkPolicy
// match only the sets of its own namespace (unless namespaceSelector).
type NetworkSet struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       NetworkSetSpec `json:"spec"`
}

// NetworkSetSpec is the spec of both network set kinds.
type NetworkSetSpec struct {
	// Nets are CIDRs or bare addresses (taken as /32 or /128).
	Nets []string `json:"nets,omitempty"`
}

func (r *GlobalNetworkSet) GetObjectMeta() *ObjectMeta { return &r.ObjectMeta }
func (r *GlobalNetworkSet) GetTypeMeta() *TypeMeta     { return &r.TypeMeta }
func (r *GlobalNetworkSet) Kind() string               { return KindGlobalNetworkSet }
func (r *NetworkSet) GetObjectMeta() *ObjectMeta       { return &r.ObjectMeta }
func (r *NetworkSet) GetTypeMeta() *TypeMeta           { return &r.TypeMeta }
func (r *NetworkSet) Kind() string                     { return KindNetworkSet }

var (
	globalNetworkSetKind = KindInfo{Kind: KindGlobalNetworkSet, Plural: "globalnetworksets",
		Aliases: []string{"globalnetworkset", "globalnetworksets", "gnetsets"},
		new:     func() Resource { return &GlobalNetworkSet{} }}
	networkSetKind = KindInfo{Kind: KindNetworkSet, Plural: "networksets", Namespaced: true,
		Aliases: []string{"networkset", "networksets", "netsets"},
		new:     func() Resource { return &NetworkSet{} }}
)

func checkNets(c *errs, path string, nets []string) {
	for i, n := range nets {
		if _, err := ParseAddrOrNet(strings.TrimSpace(n)); err != nil {
			c.add(idx(path, i), "invalid network %q: want a CIDR such as 198.51.100.0/28 or an address", n)
		}
	}
}

func validateNetworkSet(c *errs, m *ObjectMeta, s *NetworkSetSpec) {
	if _, ok := m.Labels[LabelNamespace]; ok {
		c.add("metadata.labels", "%s is not a valid label name: it is set from the namespace", LabelNamespace)
	}
	checkNets(c, "spec.nets", s.Nets)
}
