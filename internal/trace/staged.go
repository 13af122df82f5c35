package trace

import (
	"strings"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/calc"
)

// StagedPrefix starts the name a staged policy has in the staged
// evaluation, so that its chain ("gnp:staged:x", "policy:ns/staged:x")
// tells it apart from the enforced policy of the same name.
const StagedPrefix = "staged:"

// Staged is the staged policy set: StagedGlobalNetworkPolicies and
// StagedNetworkPolicies, stored but never programmed.
type Staged struct {
	Global     []api.StagedGlobalNetworkPolicy
	Namespaced []api.StagedNetworkPolicy
}

// Empty reports whether there is nothing staged to evaluate.
func (st *Staged) Empty() bool { return st == nil || len(st.Global)+len(st.Namespaced) == 0 }

// StagedVerdict is what the trace would decide if the staged policies
// were enforced.
type StagedVerdict struct {
	Allowed bool `json:"allowed"`
	// Changed is true when the staged set decides otherwise than the
	// enforced one (a different verdict or a different deciding rule).
	Changed bool   `json:"changed"`
	Summary string `json:"summary"`
	Egress  Side   `json:"egress"`
	Ingress Side   `json:"ingress"`
}

// stagedSnapshot is s with the staged set applied as Calico's staged
// policies preview a change: a staged policy (stagedAction Set or empty)
// takes the place of the enforced policy of the same name and kind (and
// namespace), or is added when there is none; stagedAction Delete removes
// the enforced policy of that name; Learn and Ignore take no part. Staged
// policies are renamed with StagedPrefix.
func stagedSnapshot(s *calc.Snapshot, st *Staged) *calc.Snapshot {
	out := *s
	out.GlobalNetworkPolicies = applyStaged(s.GlobalNetworkPolicies, st.Global,
		func(p *api.GlobalNetworkPolicy) string { return p.Name },
		func(sp *api.StagedGlobalNetworkPolicy) (string, string, api.GlobalNetworkPolicy) {
			p := api.GlobalNetworkPolicy{TypeMeta: sp.TypeMeta, ObjectMeta: sp.ObjectMeta, Spec: sp.Spec.PolicySpec}
			p.TypeMeta.Kind = api.KindGlobalNetworkPolicy
			p.Name = StagedPrefix + sp.Name
			return sp.Name, sp.Spec.StagedAction, p
		})
	out.NetworkPolicies = applyStaged(s.NetworkPolicies, st.Namespaced,
		func(p *api.NetworkPolicy) string { return p.Namespace + "/" + p.Name },
		func(sp *api.StagedNetworkPolicy) (string, string, api.NetworkPolicy) {
			p := api.NetworkPolicy{TypeMeta: sp.TypeMeta, ObjectMeta: sp.ObjectMeta, Spec: sp.Spec.PolicySpec}
			p.TypeMeta.Kind = api.KindNetworkPolicy
			p.Name = StagedPrefix + sp.Name
			return sp.Namespace + "/" + sp.Name, sp.Spec.StagedAction, p
		})
	return &out
}

// applyStaged returns enforced with the staged policies applied: key
// identifies an enforced policy; convert gives a staged one's key, its
// stagedAction and the policy it stages (renamed).
func applyStaged[P, S any](enforced []P, staged []S, key func(*P) string, convert func(*S) (string, string, P)) []P {
	drop := map[string]bool{}
	var added []P
	for i := range staged {
		k, action, p := convert(&staged[i])
		switch stagedAction(action) {
		case api.StagedActionSet:
			drop[k] = true
			added = append(added, p)
		case api.StagedActionDelete:
			drop[k] = true
		}
	}
	out := make([]P, 0, len(enforced)+len(added))
	for i := range enforced {
		if !drop[key(&enforced[i])] {
			out = append(out, enforced[i])
		}
	}
	return append(out, added...)
}

// stagedAction is a's meaning: empty is Set, as Calico defaults it.
func stagedAction(a string) string {
	if strings.TrimSpace(a) == "" {
		return api.StagedActionSet
	}
	return a
}

// stagedVerdict traces pkt with the staged tracer and compares it with
// the enforced result r.
func (t *Tracer) stagedVerdict(pkt Packet, r *Result) *StagedVerdict {
	if t.staged == nil {
		return nil
	}
	sr := t.staged.trace(pkt)
	v := &StagedVerdict{Allowed: sr.Allowed, Egress: sr.Egress, Ingress: sr.Ingress}
	v.Changed = sr.Allowed != r.Allowed || sideDecider(&sr.Egress) != sideDecider(&r.Egress) || sideDecider(&sr.Ingress) != sideDecider(&r.Ingress)
	// The enforced summary reads "denied on ingress of X: why" or
	// "allowed: ..."; the staged one says what would happen.
	switch {
	case strings.HasPrefix(sr.Summary, "denied "):
		v.Summary = "staged: would deny " + strings.TrimPrefix(sr.Summary, "denied ")
	case strings.HasPrefix(sr.Summary, "allowed: "):
		v.Summary = "staged: would allow: " + strings.TrimPrefix(sr.Summary, "allowed: ")
	default:
		v.Summary = "staged: " + sr.Summary
	}
	if !v.Changed {
		v.Summary += ", as enforced"
	}
	return v
}

func sideDecider(s *Side) string {
	if !s.Applies {
		return ""
	}
	return s.Decider
}
