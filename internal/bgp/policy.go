package bgp

import (
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v4/api"
	"google.golang.org/protobuf/proto"
)

// Names of the GoBGP policies the speaker owns. Both are assigned globally
// once, at Start; their content is replaced as a whole (SetPolicies) when
// the peers change.
const (
	importPolicy = "calico-import"
	// exportPolicy is declared in gobgp.go.
)

// buildPolicies returns every defined set and policy the speaker needs for
// these peers. It is pure; the result is compared with the last one applied.
//
// Import, for the peer a path comes from:
//  1. from an external peer: remove ExportCommunity (a route learned from one
//     external peer must not pass for one of ours and go on to another
//     external peer), then continue;
//  2. the peer's BGPFilter import rules in order: the first that matches
//     accepts or rejects;
//  3. otherwise accept (the route guard in the agent still decides what
//     is installed).
//
// Export, for the peer a path goes to:
//  1. the peer's BGPFilter export rules in order: the first that matches
//     accepts (removing ExportCommunity towards an external peer) or
//     rejects;
//  2. to an external peer: accept only paths with ExportCommunity (removing
//     it), reject the rest: external peers get this cluster's exportable
//     routes and nothing learned from another external peer;
//  3. otherwise accept (mesh peers, reflector clients).
func buildPolicies(peers []Peer) *api.SetPoliciesRequest {
	external := []string{neverANeighbor}
	for _, p := range peers {
		if p.External {
			external = append(external, hostPrefix(p.Address))
		}
	}
	sets := []*api.DefinedSet{
		{DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR, Name: externalNeighborSet, List: external},
		{DefinedType: api.DefinedType_DEFINED_TYPE_COMMUNITY, Name: exportCommunitySet, List: []string{"^" + ExportCommunity + "$"}},
	}
	externalMatch := &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: externalNeighborSet}
	removeCommunity := &api.CommunityAction{Type: api.CommunityAction_TYPE_REMOVE, Communities: []string{ExportCommunity}}

	imp := &api.Policy{Name: importPolicy, Statements: []*api.Statement{{
		Name:       importPolicy + "-external",
		Conditions: &api.Conditions{NeighborSet: externalMatch},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_UNSPECIFIED, Community: removeCommunity},
	}}}
	exp := &api.Policy{Name: exportPolicy}

	for i, p := range peers {
		if len(p.Import) == 0 && len(p.Export) == 0 {
			continue
		}
		peerSet := fmt.Sprintf("calico-peer-%d", i)
		sets = append(sets, &api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR, Name: peerSet, List: []string{hostPrefix(p.Address)}})
		for _, d := range []struct {
			dir   string
			rules []FilterRule
		}{{"import", p.Import}, {"export", p.Export}} {
			dir, rules := d.dir, d.rules
			for j, r := range rules {
				name := fmt.Sprintf("calico-%s-%d-%d", dir, i, j)
				cond := &api.Conditions{NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: peerSet}}
				if r.CIDR.IsValid() {
					sets = append(sets, &api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_PREFIX, Name: name, Prefixes: []*api.Prefix{rulePrefix(r)}})
					mt := api.MatchSet_TYPE_ANY
					if r.Operator == "NotEqual" || r.Operator == "NotIn" {
						mt = api.MatchSet_TYPE_INVERT
					}
					cond.PrefixSet = &api.MatchSet{Type: mt, Name: name}
				}
				act := &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_REJECT}
				if r.Accept {
					act.RouteAction = api.RouteAction_ROUTE_ACTION_ACCEPT
					if dir == "export" && p.External {
						act.Community = removeCommunity
					}
				}
				stmts := []*api.Statement{{Name: name, Conditions: cond, Actions: act}}
				if dir == "export" && r.RemotePeers {
					// Learned from iBGP or from eBGP: two statements, one
					// route type each (they never both match).
					c2 := proto.Clone(cond).(*api.Conditions)
					cond.RouteType = api.Conditions_ROUTE_TYPE_INTERNAL
					c2.RouteType = api.Conditions_ROUTE_TYPE_EXTERNAL
					stmts = append(stmts, &api.Statement{Name: name + "-ebgp", Conditions: c2, Actions: act})
				}
				if dir == "import" {
					imp.Statements = append(imp.Statements, stmts...)
				} else {
					exp.Statements = append(exp.Statements, stmts...)
				}
			}
		}
	}
	exp.Statements = append(exp.Statements,
		&api.Statement{
			Name: exportPolicy + "-exportable",
			Conditions: &api.Conditions{
				NeighborSet:  externalMatch,
				CommunitySet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: exportCommunitySet},
			},
			Actions: &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT, Community: removeCommunity},
		},
		&api.Statement{
			Name:       exportPolicy + "-not-exportable",
			Conditions: &api.Conditions{NeighborSet: externalMatch},
			Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_REJECT},
		})
	return &api.SetPoliciesRequest{DefinedSets: sets, Policies: []*api.Policy{imp, exp}}
}

// rulePrefix is the prefix-set entry of a rule: exactly the CIDR for Equal
// and NotEqual, the CIDR with MinLen..MaxLen for In and NotIn.
func rulePrefix(r FilterRule) *api.Prefix {
	c := r.CIDR.Masked()
	lo, hi := c.Bits(), c.Bits()
	if r.Operator == "In" || r.Operator == "NotIn" {
		lo, hi = r.MinLen, r.MaxLen
	}
	return &api.Prefix{IpPrefix: c.String(), MaskLengthMin: uint32(lo), MaskLengthMax: uint32(hi)}
}

func hostPrefix(a netip.Addr) string {
	return netip.PrefixFrom(a, a.BitLen()).String()
}
