package api

import "reflect"

// Staged policies are stored and validated as Calico does but never
// enforced: they exist to preview a policy change. StagedKubernetesNetworkPolicy
// holds a Kubernetes NetworkPolicy spec, kept as it was given.

// Staged actions.
const (
	StagedActionSet    = "Set"
	StagedActionDelete = "Delete"
	StagedActionLearn  = "Learn"
	StagedActionIgnore = "Ignore"
)

// StagedPolicySpec is a PolicySpec with Calico's stagedAction.
type StagedPolicySpec struct {
	StagedAction string `json:"stagedAction,omitempty"`
	PolicySpec   `json:",inline"`
}

// StagedGlobalNetworkPolicy is a GlobalNetworkPolicy that is not enforced.
type StagedGlobalNetworkPolicy struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       StagedPolicySpec `json:"spec"`
}

// StagedNetworkPolicy is a NetworkPolicy that is not enforced.
type StagedNetworkPolicy struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       StagedPolicySpec `json:"spec"`
}

// StagedKubernetesNetworkPolicy is a Kubernetes NetworkPolicy that is not
// enforced; its spec (Kubernetes' NetworkPolicySpec plus stagedAction) is
// stored as given.
type StagedKubernetesNetworkPolicy struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       map[string]any `json:"spec,omitempty"`
}

func (r *StagedGlobalNetworkPolicy) GetObjectMeta() *ObjectMeta     { return &r.ObjectMeta }
func (r *StagedGlobalNetworkPolicy) GetTypeMeta() *TypeMeta         { return &r.TypeMeta }
func (r *StagedGlobalNetworkPolicy) Kind() string                   { return KindStagedGlobalNetworkPolicy }
func (r *StagedNetworkPolicy) GetObjectMeta() *ObjectMeta           { return &r.ObjectMeta }
func (r *StagedNetworkPolicy) GetTypeMeta() *TypeMeta               { return &r.TypeMeta }
func (r *StagedNetworkPolicy) Kind() string                         { return KindStagedNetworkPolicy }
func (r *StagedKubernetesNetworkPolicy) GetObjectMeta() *ObjectMeta { return &r.ObjectMeta }
func (r *StagedKubernetesNetworkPolicy) GetTypeMeta() *TypeMeta     { return &r.TypeMeta }
func (r *StagedKubernetesNetworkPolicy) Kind() string               { return KindStagedKubernetesNetworkPolicy }

var (
	stagedGNPKind = KindInfo{Kind: KindStagedGlobalNetworkPolicy, Plural: "stagedglobalnetworkpolicies",
		Aliases: []string{"stagedglobalnetworkpolicy", "stagedglobalnetworkpolicies", "sgnp", "sgnps"},
		new:     func() Resource { return &StagedGlobalNetworkPolicy{} }}
	stagedNPKind = KindInfo{Kind: KindStagedNetworkPolicy, Plural: "stagednetworkpolicies", Namespaced: true,
		Aliases: []string{"stagednetworkpolicy", "stagednetworkpolicies", "stagedpolicy", "snp", "stagedpolicies", "spol", "spols"},
		new:     func() Resource { return &StagedNetworkPolicy{} }}
	stagedKNPKind = KindInfo{Kind: KindStagedKubernetesNetworkPolicy, Plural: "stagedkubernetesnetworkpolicies", Namespaced: true,
		Aliases: []string{"stagedkubernetesnetworkpolicy", "stagedkubernetesnetworkpolicies", "stagedkubernetespolicy", "sknp", "stagedkubernetespolicies", "skpol", "skpols"},
		new:     func() Resource { return &StagedKubernetesNetworkPolicy{} }}
)

// isStagedPolicyKind reports whether kind is a staged Calico policy (with
// a tier and a tiered name).
func isStagedPolicyKind(kind string) bool {
	return kind == KindStagedGlobalNetworkPolicy || kind == KindStagedNetworkPolicy
}

// PolicySpecOf returns the PolicySpec of a (staged) NetworkPolicy or
// GlobalNetworkPolicy, nil for other kinds.
func PolicySpecOf(r Resource) *PolicySpec {
	switch v := r.(type) {
	case *NetworkPolicy:
		return &v.Spec
	case *GlobalNetworkPolicy:
		return &v.Spec
	case *StagedNetworkPolicy:
		return &v.Spec.PolicySpec
	case *StagedGlobalNetworkPolicy:
		return &v.Spec.PolicySpec
	}
	return nil
}

func validateStagedPolicy(c *errs, s *StagedPolicySpec, global bool) {
	switch s.StagedAction {
	case "", StagedActionSet, StagedActionDelete, StagedActionLearn, StagedActionIgnore:
	default:
		c.add("spec.stagedAction", "invalid stagedAction %q: want Set, Delete, Learn or Ignore", s.StagedAction)
	}
	if s.StagedAction == StagedActionDelete {
		if !reflect.DeepEqual(PolicySpec{Tier: s.Tier}, s.PolicySpec) {
			c.add("spec", "with stagedAction Delete every spec field except tier must be empty")
		}
		return
	}
	validatePolicy(c, &s.PolicySpec, global)
}

func validateStagedKNP(c *errs, spec map[string]any) {
	if a, ok := spec["stagedAction"]; ok {
		switch a {
		case StagedActionSet, StagedActionDelete, StagedActionLearn, StagedActionIgnore:
		default:
			c.add("spec.stagedAction", "invalid stagedAction %v: want Set, Delete, Learn or Ignore", a)
		}
	}
}
