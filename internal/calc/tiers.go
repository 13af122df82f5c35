package calc

import (
	"math"
	"net/netip"
	"slices"
	"strings"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/dataplane"
)

// Tiers, as Felix evaluates them (felix/calc/policy_sorter.go and
// rules/endpoints.go):
//   - A policy belongs to spec.tier ("" = "default"). An endpoint's
//     policies are grouped by tier; tiers are ordered by existence (a tier
//     that has no Tier resource comes after every existing one), then by
//     spec.order ascending (none = last), then by name. Within a tier,
//     policies keep their own order (order, then name).
//   - The default tier exists even without a Tier resource, with Calico's
//     order 1,000,000 and default action Deny.
//   - A tier applies to an endpoint in a direction only when one of its
//     policies applies in that direction. In it, the first Allow or Deny
//     decides; a rule's Pass goes to the next tier; a packet no policy of
//     the tier decides is dropped, unless the tier's defaultAction is Pass,
//     which goes to the next tier. After the last tier come the profiles.
//   - Desired.Endpoints list the policies of all tiers in one list per
//     direction; IngressTiers/EgressTiers say where each tier ends, and are
//     nil when there is one tier and its default action is Deny.

// tierInfo is what evaluation needs of a tier.
type tierInfo struct {
	order  float64 // +Inf when unset
	pass   bool    // defaultAction Pass
	exists bool
}

func newTierInfo(s *api.TierSpec) tierInfo {
	t := tierInfo{order: math.Inf(1), exists: true, pass: api.TierDefaultAction(s) == api.TierDefaultActionPass}
	if s.Order != nil && !math.IsNaN(*s.Order) {
		t.order = *s.Order
	}
	return t
}

// tierOf returns the tier of a policy spec.
func tierOf(spec *api.PolicySpec) string {
	if spec.Tier == "" {
		return api.DefaultTier
	}
	return spec.Tier
}

// lookupTier finds a tier, the default tier existing implicitly.
func lookupTier(tiers map[string]tierInfo, name string) tierInfo {
	if t, ok := tiers[name]; ok {
		return t
	}
	if name == api.DefaultTier {
		return tierInfo{order: api.DefaultTierOrder, exists: true}
	}
	return tierInfo{order: math.Inf(1)}
}

func compareTiers(tiers map[string]tierInfo, a, b string) int {
	if a == b {
		return 0
	}
	ta, tb := lookupTier(tiers, a), lookupTier(tiers, b)
	switch {
	case ta.exists != tb.exists:
		if ta.exists {
			return -1
		}
		return 1
	case ta.order < tb.order:
		return -1
	case ta.order > tb.order:
		return 1
	}
	return strings.Compare(a, b)
}

// tieredEndpoint assembles a local endpoint like buildEndpoint, with its
// policies (sorted by comparePolMeta) grouped by tier.
func tieredEndpoint(w *api.WorkloadEndpoint, addrs []netip.Prefix, pols []*polMeta, profiles []string, tiers map[string]tierInfo) dataplane.Endpoint {
	sorted := slices.Clone(pols)
	slices.SortStableFunc(sorted, func(a, b *polMeta) int { return compareTiers(tiers, a.tier, b.tier) })
	e := buildEndpoint(w, addrs, sorted, profiles)
	e.IngressTiers = tierGroups(sorted, tiers, func(p *polMeta) bool { return p.ingress })
	e.EgressTiers = tierGroups(sorted, tiers, func(p *polMeta) bool { return p.egress })
	return e
}

// tierGroups lists the tiers of the policies that apply in one direction;
// nil for one tier that denies by default.
func tierGroups(pols []*polMeta, tiers map[string]tierInfo, applies func(*polMeta) bool) []dataplane.EndpointTier {
	var out []dataplane.EndpointTier
	for _, p := range pols {
		if !applies(p) {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Name == p.tier {
			out[n-1].Policies++
			continue
		}
		out = append(out, dataplane.EndpointTier{Name: p.tier, Policies: 1, DefaultPass: lookupTier(tiers, p.tier).pass})
	}
	if len(out) == 1 && !out[0].DefaultPass {
		return nil
	}
	return out
}

// computeTiers reads the tiers of s (later duplicates win).
func computeTiers(s *Snapshot) map[string]tierInfo {
	out := make(map[string]tierInfo, len(s.Tiers))
	for i := range s.Tiers {
		out[s.Tiers[i].Name] = newTierInfo(&s.Tiers[i].Spec)
	}
	return out
}

// UpsertTier adds or replaces a Tier.
func (c *Calculator) UpsertTier(t *api.Tier) {
	ti := newTierInfo(&t.Spec)
	if old, ok := c.tiers[t.Name]; ok && old == ti {
		return
	}
	if c.tiers == nil {
		c.tiers = map[string]tierInfo{}
	}
	c.touch()
	c.tiers[t.Name] = ti
	c.tiersChanged()
}

// DeleteTier removes a Tier (the default tier then exists implicitly).
func (c *Calculator) DeleteTier(name string) {
	if _, ok := c.tiers[name]; !ok {
		return
	}
	c.touch()
	delete(c.tiers, name)
	c.tiersChanged()
}

// tiersChanged rebuilds every local endpoint that has policies: tier
// changes are rare, and any of them may reorder or regroup its policies.
func (c *Calculator) tiersChanged() {
	for e := range c.local {
		if len(e.pols) > 0 {
			e.outStale, c.endpointsDirty = true, true
		}
	}
}
