package flows

import (
	"net/netip"
	"strings"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/dataplane/nft"
)

// Resolver attributes flow log packets to rules and endpoints using the
// dataplane.Desired the node programmed.
type Resolver struct {
	host   string
	dir    *Directory
	chains map[string]string // kernel chain name -> PolicyChain ID
	eps    map[netip.Addr]*dataplane.Endpoint
}

// NewResolver indexes d (nil: nothing known); dir names the endpoints of
// other hosts too (nil: only this host's, by ID).
func NewResolver(d *dataplane.Desired, host string, dir *Directory) *Resolver {
	r := &Resolver{host: host, dir: dir, chains: map[string]string{}, eps: map[netip.Addr]*dataplane.Endpoint{}}
	if d == nil {
		return r
	}
	for _, c := range d.Chains {
		r.chains[nft.PolicyChainName(c.ID, true)] = c.ID
		r.chains[nft.PolicyChainName(c.ID, false)] = c.ID
	}
	for i := range d.Endpoints {
		e := &d.Endpoints[i]
		for _, p := range e.Addrs {
			if p.IsSingleIP() {
				r.eps[p.Addr()] = e
			}
		}
	}
	return r
}

// Record turns a log packet into a record; false for packets that are not
// ours or cannot be parsed.
func (r *Resolver) Record(p LogPacket) (Record, bool) {
	pre, ok := nft.ParseFlowPrefix(p.Prefix)
	if !ok {
		return Record{}, false
	}
	t, ok := ParsePacket(p.Payload)
	if !ok {
		return Record{}, false
	}
	rec := Record{Host: r.host, Src: t.Src, Dst: t.Dst, Proto: dataplane.ProtoName(t.Proto), SrcPort: t.SrcPort, DstPort: t.DstPort, Rule: -1}
	if e := r.eps[t.Src]; e != nil {
		rec.SrcEndpoint = e.ID
	}
	if e := r.eps[t.Dst]; e != nil {
		rec.DstEndpoint = e.ID
	}
	if p, ok := r.dir.Lookup(t.Src); ok {
		rec.SrcName, rec.SrcNetwork, rec.SrcLabels = p.Name, p.Network, p.Labels
	}
	if p, ok := r.dir.Lookup(t.Dst); ok {
		rec.DstName, rec.DstNetwork, rec.DstLabels = p.Name, p.Network, p.Labels
	}
	rec.Direction, rec.Endpoint = "egress", rec.SrcEndpoint
	if pre.Ingress {
		rec.Direction, rec.Endpoint = "ingress", rec.DstEndpoint
	}
	switch pre.Action {
	case "Allow", "Deny":
		rec.Action = "allow"
		if pre.Action == "Deny" {
			rec.Action = "deny"
		}
		rec.Policy, rec.Rule = r.chains[pre.Chain], pre.Rule
		if rec.Policy == "" {
			rec.Policy = pre.Chain // a chain of an older calculation
		}
		rec.Reason = "rule"
	case "EndOfPolicies":
		rec.Action, rec.Reason = "deny", "no policy allowed it (end of policies)"
	case "EndOfProfiles":
		rec.Action, rec.Reason = "deny", "no policy or profile allowed it"
		if e := r.eps[rec.endpointAddr()]; e != nil {
			pols := e.EgressPolicies
			if pre.Ingress {
				pols = e.IngressPolicies
			}
			switch {
			case len(e.Profiles) == 0 && len(pols) == 0:
				rec.Reason = "no policy or profile applies (fail closed)"
			case len(pols) > 0:
				rec.Reason = "passed to the profiles, and no profile allowed it"
			}
			if len(e.Profiles) > 0 {
				rec.Reason += " (profiles " + strings.Join(e.Profiles, ", ") + ")"
			}
		}
	}
	return rec, true
}

func (r *Record) endpointAddr() netip.Addr {
	if r.Direction == "ingress" {
		return r.Dst
	}
	return r.Src
}
