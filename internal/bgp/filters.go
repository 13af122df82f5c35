package bgp

import (
	"fmt"
	"net/netip"

	"github.com/calico-docker/calico/internal/api"
)

// peerFilters turns a BGPPeer's spec.filters into the rules of one address
// family, in order: each named filter's rules in turn. A filter that does not
// exist is skipped (as Calico does) and reported.
func peerFilters(filters map[string]*api.BGPFilter, names []string, v6 bool) (imp, exp []FilterRule, err error) {
	var missing []string
	for _, n := range names {
		f, ok := filters[n]
		if !ok {
			missing = append(missing, n)
			continue
		}
		in, out := f.Spec.ImportV4, f.Spec.ExportV4
		if v6 {
			in, out = f.Spec.ImportV6, f.Spec.ExportV6
		}
		for _, r := range in {
			if fr, ok := filterRule(r, v6); ok {
				imp = append(imp, fr)
			}
		}
		for _, r := range out {
			if fr, ok := filterRule(r, v6); ok {
				exp = append(exp, fr)
			}
		}
	}
	if len(missing) > 0 {
		err = fmt.Errorf("BGPFilter %v not found", missing)
	}
	return imp, exp, err
}

// filterRule converts one validated rule; a rule that cannot match this
// family (a CIDR of the other family) is dropped.
//
// The speaker does not know which interface a route uses, so a rule with
// interface (other than "*", which matches every interface) is read to
// never accept more routes than written: an Accept rule is dropped (the
// routes it would accept go on to the later rules and the default), and a
// Reject rule matches its other conditions on every interface. Rules are
// first-match, so either change can only turn an accepted route into a
// rejected one, never the reverse.
func filterRule(r api.BGPFilterRule, v6 bool) (FilterRule, bool) {
	fr := FilterRule{Operator: r.MatchOperator, RemotePeers: r.Source == "RemotePeers", Accept: r.Action == "Accept"}
	if r.Interface != "" && r.Interface != "*" && fr.Accept {
		return fr, false
	}
	if r.CIDR == "" {
		return fr, true
	}
	p, err := netip.ParsePrefix(r.CIDR)
	if err != nil || p.Addr().Is6() != v6 {
		return fr, false
	}
	fr.CIDR = p.Masked()
	// Calico: the CIDR's own length up to the family's maximum, narrowed by
	// prefixLength.
	fr.MinLen, fr.MaxLen = p.Bits(), p.Addr().BitLen()
	if pl := r.PrefixLength; pl != nil {
		if pl.Min != nil {
			fr.MinLen = max(fr.MinLen, int(*pl.Min))
		}
		if pl.Max != nil {
			fr.MaxLen = min(fr.MaxLen, int(*pl.Max))
		}
	}
	return fr, true
}
