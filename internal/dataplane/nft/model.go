package nft

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/calico-docker/calico/internal/dataplane"
)

// chainModel is one chain we want: its rule hashes (what the kernel's rule
// comments must show, in order) and how to build its rules.
type chainModel struct {
	name    string
	comment string // shown by Render: the policy ID, the endpoint ID
	base    *baseChain
	hashes  []string
	// rules is set when the chain was compiled this round; build recompiles
	// a cached chain when its rules must be written again (e.g. after drift).
	rules []rule
	build func() []rule
}

func newChain(name, comment string, base *baseChain, build func() []rule) *chainModel {
	return chainFrom(name, comment, base, build(), build)
}

// chainFrom makes a chain from rules already compiled by build.
func chainFrom(name, comment string, base *baseChain, rs []rule, build func() []rule) *chainModel {
	c := &chainModel{name: name, comment: comment, base: base, build: build, rules: rs}
	c.hashes = make([]string, len(c.rules))
	for i, r := range c.rules {
		c.hashes[i] = hashText(r.text)
	}
	return c
}

// compiled returns the chain's rules, compiling them again if needed.
func (c *chainModel) compiled() []rule {
	if c.rules == nil {
		c.rules = c.build()
	}
	return c.rules
}

// setContent is one version of a set's desired content. Pointer equality
// means "unchanged": a new version is made on every change. The address
// sets get a new, immutable map per version; the sets derived from
// endpoints (dispatch maps, anti-spoofing) keep one map that is updated in
// place, and each version records the elements added and removed since
// prev, so a change of one endpoint costs O(1), not O(endpoints).
type setContent struct {
	elems      elemSet
	prev       *setContent
	adds, dels []elem
	// frozen: elems is never modified (the address sets), so the driver's
	// mirror of the kernel shares it once applied instead of copying it.
	frozen bool
}

type setModel struct {
	name    string
	typ     setType
	comment string
	content *setContent
}

// model is the whole table we want.
type model struct {
	chains   map[string]*chainModel
	sets     map[string]*setModel
	order    []string // chain names in Render order
	problems []string
	// counts for stats
	endpoints, policies int
}

// cache remembers compiled objects by their source so that an Apply after
// a small change compiles only what changed. Sources are compared by value.
type cache struct {
	round uint64              // compile generation
	eps   map[string]*epEntry // by interface
	// order holds eps' entries in the order of the last Desired's
	// endpoints (sorted by interface): compile walks it beside the new
	// list and finds an unchanged endpoint by one string comparison, the
	// map being only for the endpoints that moved. spare is the previous
	// order's array, reused.
	order, spare []*epEntry
	// chainGen changes when epChains is emptied (flow logs switched), so
	// that an endpoint's remembered chain entries are looked up again.
	chainGen uint64
	epChains map[string]*epChainEntry // shared endpoint chains by name
	pols     map[string]*polEntry
	flowLogs bool // Desired.FlowLogs the cached chains were compiled for
	sets     map[string]*ipsetEntry
	// The endpoint-derived sets, always equal to the union of the
	// elements of eps.
	fw, tw                   *setContent
	sp4, sp6, sp4Net, sp6Net *setContent
	hp                       *hpCache
}

// derivedEdit collects this round's changes to one endpoint-derived set.
type derivedEdit struct {
	c          **setContent
	adds, dels []elem
}

func (e *derivedEdit) del(x elem) {
	delete((*e.c).elems, x.mapKey())
	e.dels = append(e.dels, x)
}

func (e *derivedEdit) add(x elem) {
	(*e.c).elems.add(x)
	e.adds = append(e.adds, x)
}

// finish publishes a new version if anything changed.
func (e *derivedEdit) finish() {
	if len(e.adds)+len(e.dels) == 0 {
		return
	}
	old := *e.c
	*e.c = &setContent{elems: old.elems, prev: old, adds: e.adds, dels: e.dels}
	old.prev, old.adds, old.dels = nil, nil, nil // keep the chain of versions short
}

// epEntry is what one endpoint contributes: the names of the chains it
// dispatches to, and its map and anti-spoofing elements.
type epEntry struct {
	id, iface       string
	in, eg, profile []string
	inT, egT        []dataplane.EndpointTier
	addrs           []netip.Prefix
	fwName, twName  string
	fw, tw          elem
	spoof4, spoof6  []elem // exact addresses
	spoof4Net       []elem // other prefixes
	spoof6Net       []elem
	round           uint64 // last compile that saw this endpoint
	// The shared chains it dispatches to, valid while chainGen is the
	// cache's: an endpoint seen in a round keeps its chains in use, so
	// they are never dropped from epChains under it.
	fwCE, twCE *epChainEntry
	chainGen   uint64
}

// epChainEntry is a shared endpoint chain and the lists it evaluates.
type epChainEntry struct {
	ch             *chainModel
	pols, profiles []string
	round          uint64
}

type polEntry struct {
	pc       dataplane.PolicyChain
	pi, pe   *chainModel
	problems []string
}

type ipsetEntry struct {
	selector string
	members  []netip.Prefix
	s4, s6   *setContent
	// Named-port sets (IPSet.NamedPort): their members.
	named       bool
	portMembers []dataplane.AddrProtoPort
}

func newCache() *cache {
	return &cache{
		eps:      map[string]*epEntry{},
		epChains: map[string]*epChainEntry{},
		pols:     map[string]*polEntry{},
		sets:     map[string]*ipsetEntry{},
		fw:       &setContent{elems: elemSet{}},
		tw:       &setContent{elems: elemSet{}},
		sp4:      &setContent{elems: elemSet{}},
		sp6:      &setContent{elems: elemSet{}},
		sp4Net:   &setContent{elems: elemSet{}},
		sp6Net:   &setContent{elems: elemSet{}},
	}
}

// compile builds the model of d, reusing c's entries for unchanged sources
// (c may be nil: compile everything) and refreshing c for the next call.
func compile(d *dataplane.Desired, c *cache) *model {
	if c == nil {
		c = newCache()
	}
	if c.flowLogs != d.FlowLogs {
		c.chainGen++ // setFlowLogs empties epChains
	}
	c.setFlowLogs(d.FlowLogs)
	m := &model{chains: map[string]*chainModel{}, sets: map[string]*setModel{}}
	h := hostOf(d.Host)
	addChain := func(ch *chainModel) {
		m.chains[ch.name] = ch
		m.order = append(m.order, ch.name)
	}
	addSet := func(s *setModel) { m.sets[s.name] = s }

	// Base chains: a handful of rules, compiled every time.
	addChain(newChain(chainPre, "anti-spoofing: a workload may only send from its own addresses", basePre,
		func() []rule { return preroutingRules(h) }))
	addChain(newChain(chainFwd, "workload policy", baseFwd, func() []rule { return forwardRules(h) }))
	addChain(newChain(chainInput, "workload to host: "+h.action, baseInput, func() []rule { return inputRules(h) }))
	addChain(newChain(chainPost, "natOutgoing, published-port hairpin", basePost, func() []rule { return postroutingRules(h) }))
	addChain(newChain(chainDNAT, "published ports", baseDNAT, func() []rule { return dnatRules(false) }))
	addChain(newChain(chainOutN, "published ports, from this host", baseOutDNAT, func() []rule { return dnatRules(true) }))

	// Endpoints: chains, dispatch map and anti-spoofing elements.
	fwEd, twEd := &derivedEdit{c: &c.fw}, &derivedEdit{c: &c.tw}
	sp4Ed, sp6Ed := &derivedEdit{c: &c.sp4}, &derivedEdit{c: &c.sp6}
	sp4NetEd, sp6NetEd := &derivedEdit{c: &c.sp4Net}, &derivedEdit{c: &c.sp6Net}
	// replaceElems moves an endpoint's elements from old (nil: none) to
	// now (nil: none), touching only those that differ.
	replaceElems := func(old, now *epEntry) {
		var o, n epEntry
		if old != nil {
			o = *old
		}
		if now != nil {
			n = *now
		}
		for _, x := range []struct {
			ed   *derivedEdit
			o, n elem
		}{{fwEd, o.fw, n.fw}, {twEd, o.tw, n.tw}} {
			if x.o.key != nil && (x.n.key == nil || x.o.verdict != x.n.verdict) {
				x.ed.del(x.o)
			}
			if x.n.key != nil && (x.o.key == nil || x.o.verdict != x.n.verdict) {
				x.ed.add(x.n)
			}
		}
		for _, x := range []struct {
			ed   *derivedEdit
			o, n []elem
		}{{sp4Ed, o.spoof4, n.spoof4}, {sp6Ed, o.spoof6, n.spoof6}, {sp4NetEd, o.spoof4Net, n.spoof4Net}, {sp6NetEd, o.spoof6Net, n.spoof6Net}} {
			has := func(es []elem, e elem) bool {
				return slices.ContainsFunc(es, func(f elem) bool { return f.mapKey() == e.mapKey() })
			}
			for _, e := range x.o {
				if !has(x.n, e) {
					x.ed.del(e)
				}
			}
			for _, e := range x.n {
				if !has(x.o, e) {
					x.ed.add(e)
				}
			}
		}
	}
	// Generation marks instead of "seen" maps, and a walk beside the last
	// round's order instead of a map lookup per endpoint: this loop runs
	// over every endpoint on every Apply, so its cost per unchanged
	// endpoint is what makes a change cost more on a bigger host.
	c.round++
	round := c.round
	var usedChains []*epChainEntry
	prev, next := c.order, c.spare[:0]
	j := 0 // prev[j] is the next endpoint expected
	for i := range d.Endpoints {
		ep := &d.Endpoints[i]
		if ep.Iface == "" || len(ep.Iface) > 15 {
			m.problems = append(m.problems, fmt.Sprintf("endpoint %s: invalid interface name %q", ep.ID, ep.Iface))
			continue
		}
		var e *epEntry
		if j < len(prev) && prev[j].iface == ep.Iface && prev[j].round != round {
			e = prev[j]
			j++
		} else if e = c.eps[ep.Iface]; e != nil && e.round != round {
			// Endpoints before it went away, or it is new (e nil).
			for j < len(prev) && prev[j] != e {
				j++
			}
			j = min(j+1, len(prev))
		}
		if e != nil && e.round == round {
			m.problems = append(m.problems, fmt.Sprintf("endpoint %s: interface %s already used by another endpoint", ep.ID, ep.Iface))
			continue
		}
		m.endpoints++
		if e == nil || e.id != ep.ID || !sameSlice(e.in, ep.IngressPolicies) || !sameSlice(e.eg, ep.EgressPolicies) ||
			!sameSlice(e.profile, ep.Profiles) || !sameSlice(e.addrs, ep.Addrs) ||
			!sameSlice(e.inT, ep.IngressTiers) || !sameSlice(e.egT, ep.EgressTiers) {
			old := c.eps[ep.Iface]
			if old != nil {
				old.round = round // replaced, not gone
			}
			e = &epEntry{id: ep.ID, iface: ep.Iface, in: ep.IngressPolicies, eg: ep.EgressPolicies, profile: ep.Profiles, addrs: ep.Addrs,
				inT: ep.IngressTiers, egT: ep.EgressTiers}
			e.fwName = tieredChainName(ep.EgressPolicies, ep.EgressTiers, ep.Profiles, false)
			e.twName = tieredChainName(ep.IngressPolicies, ep.IngressTiers, ep.Profiles, true)
			e.fw = elem{key: ifnameKey(ep.Iface), verdict: "jump " + e.fwName}
			e.tw = elem{key: ifnameKey(ep.Iface), verdict: "goto " + e.twName}
			for _, r := range ranges(ep.Addrs, 4) {
				if x, net := spoofElem(ep.Iface, r); net {
					e.spoof4Net = append(e.spoof4Net, x)
				} else {
					e.spoof4 = append(e.spoof4, x)
				}
			}
			for _, r := range ranges(ep.Addrs, 6) {
				if x, net := spoofElem(ep.Iface, r); net {
					e.spoof6Net = append(e.spoof6Net, x)
				} else {
					e.spoof6 = append(e.spoof6, x)
				}
			}
			replaceElems(old, e)
			c.eps[ep.Iface] = e
		}
		e.round = round
		next = append(next, e)
		if e.chainGen != c.chainGen || e.fwCE == nil {
			e.fwCE = c.endpointChainEntry(e.fwName, e.eg, e.egT, e.profile, false)
			e.twCE = c.endpointChainEntry(e.twName, e.in, e.inT, e.profile, true)
			e.chainGen = c.chainGen
		}
		for _, ce := range [2]*epChainEntry{e.fwCE, e.twCE} {
			if ce.round == round {
				continue
			}
			ce.round = round
			usedChains = append(usedChains, ce)
			addChain(ce.ch)
		}
	}
	// Every entry of eps is in prev (entries made this round are in next
	// and marked): the unmarked ones are the endpoints that went.
	for _, e := range prev {
		if e.round != round {
			replaceElems(e, nil)
			delete(c.eps, e.iface)
		}
	}
	clear(prev)
	c.order, c.spare = next, prev
	for _, ed := range []*derivedEdit{fwEd, twEd, sp4Ed, sp6Ed, sp4NetEd, sp6NetEd} {
		ed.finish()
	}
	for k, ce := range c.epChains {
		if ce.round != round {
			delete(c.epChains, k)
		}
	}
	addSet(&setModel{name: fwMap, typ: typeDispatch, comment: "from-workload dispatch", content: c.fw})
	addSet(&setModel{name: twMap, typ: typeDispatch, comment: "to-workload dispatch", content: c.tw})
	addSet(&setModel{name: spoof4, typ: typeSpoof4, comment: "workload IPv4 addresses", content: c.sp4})
	addSet(&setModel{name: spoof6, typ: typeSpoof6, comment: "workload IPv6 addresses", content: c.sp6})
	addSet(&setModel{name: spoof4Net, typ: typeSpoof4Net, comment: "workload IPv4 networks", content: c.sp4Net})
	addSet(&setModel{name: spoof6Net, typ: typeSpoof6Net, comment: "workload IPv6 networks", content: c.sp6Net})

	// Policy and profile chains.
	seenPol := map[string]bool{}
	for i := range d.Chains {
		pc := &d.Chains[i]
		if seenPol[pc.ID] {
			m.problems = append(m.problems, fmt.Sprintf("policy chain %s listed twice", pc.ID))
			continue
		}
		seenPol[pc.ID] = true
		m.policies++
		e := c.pols[pc.ID]
		if e == nil || !equalPolicyChain(&e.pc, pc) {
			pcCopy := *pc
			e = &polEntry{pc: pcCopy}
			pi, pe := policyChainName(pc.ID, true), policyChainName(pc.ID, false)
			in, p1 := c.compileRules(pcCopy.Ingress, pi)
			eg, p2 := c.compileRules(pcCopy.Egress, pe)
			e.pi = chainFrom(pi, pc.ID+" ingress", nil, in, func() []rule {
				rs, _ := c.compileRules(pcCopy.Ingress, pi)
				return rs
			})
			e.pe = chainFrom(pe, pc.ID+" egress", nil, eg, func() []rule {
				rs, _ := c.compileRules(pcCopy.Egress, pe)
				return rs
			})
			e.problems = append(p1, p2...)
			c.pols[pc.ID] = e
		}
		m.problems = append(m.problems, e.problems...)
		addChain(e.pi)
		addChain(e.pe)
	}
	// A chain referenced by an endpoint but missing from Chains would make
	// the whole batch fail; it behaves as an empty policy (no verdict).
	// Endpoints share their chains' lists, so checking the chains is enough.
	for _, ce := range usedChains {
		for _, ids := range [][]string{ce.pols, ce.profiles} {
			for _, id := range ids {
				if seenPol[id] {
					continue
				}
				seenPol[id] = true
				m.problems = append(m.problems, fmt.Sprintf("policy chain %s is referenced by endpoints but not in Desired.Chains; treated as empty", id))
				addChain(newChain(policyChainName(id, true), id+" ingress (missing)", nil, func() []rule { return nil }))
				addChain(newChain(policyChainName(id, false), id+" egress (missing)", nil, func() []rule { return nil }))
			}
		}
	}
	// Host endpoints (hostendpoints.go); a chain they name that is not in
	// Chains behaves as an empty policy, like an endpoint's.
	compileHosts(d, h, addChain, addSet, func(id string) {
		if seenPol[id] {
			return
		}
		seenPol[id] = true
		m.problems = append(m.problems, fmt.Sprintf("policy chain %s is referenced by host endpoints but not in Desired.Chains; treated as empty", id))
		addChain(newChain(policyChainName(id, true), id+" ingress (missing)", nil, func() []rule { return nil }))
		addChain(newChain(policyChainName(id, false), id+" egress (missing)", nil, func() []rule { return nil }))
	})
	for k := range c.pols {
		if !seenPol[k] {
			delete(c.pols, k)
		}
	}

	// Address sets.
	seenSet := map[string]bool{}
	for i := range d.Sets {
		s := &d.Sets[i]
		if seenSet[s.ID] {
			m.problems = append(m.problems, fmt.Sprintf("set %s listed twice", s.ID))
			continue
		}
		seenSet[s.ID] = true
		e := c.sets[s.ID]
		comment := s.ID + " " + s.Selector
		if s.NamedPort != "" {
			if e == nil || !e.named || e.selector != s.Selector || !slices.Equal(e.portMembers, s.PortMembers) {
				e = &ipsetEntry{selector: s.Selector, named: true, portMembers: s.PortMembers,
					s4: &setContent{elems: namedPortElems(s.PortMembers, 4), frozen: true}, s6: &setContent{elems: namedPortElems(s.PortMembers, 6), frozen: true}}
				c.sets[s.ID] = e
			}
			addSet(&setModel{name: portSetName(s.ID, 4), typ: typeNP4, comment: comment, content: e.s4})
			addSet(&setModel{name: portSetName(s.ID, 6), typ: typeNP6, comment: comment, content: e.s6})
			continue
		}
		if e == nil || e.named || e.selector != s.Selector || !slices.Equal(e.members, s.Members) {
			e = &ipsetEntry{selector: s.Selector, members: s.Members,
				s4: &setContent{elems: ipElems(s.Members, 4), frozen: true}, s6: &setContent{elems: ipElems(s.Members, 6), frozen: true}}
			c.sets[s.ID] = e
		}
		addSet(&setModel{name: ipSetName(s.ID, 4), typ: typeIP4, comment: comment, content: e.s4})
		addSet(&setModel{name: ipSetName(s.ID, 6), typ: typeIP6, comment: comment, content: e.s6})
	}
	// Sets referenced by rules but not supplied are empty: the selector
	// picks nothing (and the batch still applies).
	for i := range d.Chains {
		pc := &d.Chains[i]
		for _, rs := range [][]dataplane.Rule{pc.Ingress, pc.Egress} {
			for j := range rs {
				for _, mt := range []*dataplane.Match{&rs[j].Src, &rs[j].Dst} {
					for _, x := range []struct {
						ids    []string
						what   string
						name   func(string, int) string
						t4, t6 setType
					}{
						{slices.Concat(mt.Sets, mt.NotSets), "set", ipSetName, typeIP4, typeIP6},
						{slices.Concat(mt.PortSets, mt.NotPortSets), "named-port set", portSetName, typeNP4, typeNP6},
					} {
						for _, id := range x.ids {
							if seenSet[id] {
								continue
							}
							seenSet[id] = true
							m.problems = append(m.problems, fmt.Sprintf("policy chain %s: %s %s is not in Desired.Sets; treated as empty", pc.ID, x.what, id))
							addSet(&setModel{name: x.name(id, 4), typ: x.t4, comment: id + " (missing)", content: &setContent{elems: elemSet{}}})
							addSet(&setModel{name: x.name(id, 6), typ: x.t6, comment: id + " (missing)", content: &setContent{elems: elemSet{}}})
						}
					}
				}
			}
		}
	}
	for k := range c.sets {
		if !seenSet[k] {
			delete(c.sets, k)
		}
	}

	// Published ports.
	hp := c.hostPortSets(d.HostPorts)
	m.problems = append(m.problems, hp.problems...)
	addSet(&setModel{name: hp4, typ: typeHP4, comment: "published ports, every IPv4 address", content: hp.m4})
	addSet(&setModel{name: hp6, typ: typeHP6, comment: "published ports, every IPv6 address", content: hp.m6})
	addSet(&setModel{name: hp4IP, typ: typeHP4IP, comment: "published ports, one IPv4 address", content: hp.m4ip})
	addSet(&setModel{name: hp6IP, typ: typeHP6IP, comment: "published ports, one IPv6 address", content: hp.m6ip})
	addSet(&setModel{name: hairpin4, typ: typeHairpin4, comment: "published-port targets (hairpin)", content: hp.h4})
	addSet(&setModel{name: hairpin6, typ: typeHairpin6, comment: "published-port targets (hairpin)", content: hp.h6})

	// natOutgoing.
	addSet(&setModel{name: masq4, typ: typeIP4, comment: "natOutgoing pools", content: &setContent{elems: ipElems(d.NAT.MasqueradePools, 4)}})
	addSet(&setModel{name: masq6, typ: typeIP6, comment: "natOutgoing pools", content: &setContent{elems: ipElems(d.NAT.MasqueradePools, 6)}})
	addSet(&setModel{name: pools4, typ: typeIP4, comment: "all pools", content: &setContent{elems: ipElems(d.NAT.AllPools, 4)}})
	addSet(&setModel{name: pools6, typ: typeIP6, comment: "all pools", content: &setContent{elems: ipElems(d.NAT.AllPools, 6)}})

	// The control plane workloads may not reach (see controlPlaneRules).
	cpNets := addrPrefixes(d.ControlPlane.Addrs)
	addSet(&setModel{name: cpAddr4, typ: typeIP4, comment: "control plane: node addresses", content: &setContent{elems: ipElems(cpNets, 4)}})
	addSet(&setModel{name: cpAddr6, typ: typeIP6, comment: "control plane: node addresses", content: &setContent{elems: ipElems(cpNets, 6)}})
	addSet(&setModel{name: cpPorts, typ: typeProtoPort, comment: "control plane: ports", content: &setContent{elems: protoPortElems(d.ControlPlane.Ports)}})
	return m
}

// sameSlice is slices.Equal, answering at once for the same array (a
// caller that keeps an unchanged endpoint's slices between Desired values
// pays nothing per element).
func sameSlice[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true
	}
	return slices.Equal(a, b)
}

// endpointChainEntry returns the shared endpoint chain called name,
// making it if no endpoint uses it yet.
func (c *cache) endpointChainEntry(name string, pols []string, tiers []dataplane.EndpointTier, profiles []string, ingress bool) *epChainEntry {
	if ce := c.epChains[name]; ce != nil {
		return ce
	}
	ce := &epChainEntry{pols: pols, profiles: profiles}
	ce.ch = newChain(name, tieredChainComment(pols, tiers, profiles, ingress), nil,
		c.endpointChain(pols, tiers, profiles, ingress))
	c.epChains[name] = ce
	return ce
}

func equalPolicyChain(a, b *dataplane.PolicyChain) bool {
	return a.ID == b.ID && slices.EqualFunc(a.Ingress, b.Ingress, equalRule) && slices.EqualFunc(a.Egress, b.Egress, equalRule)
}

func equalRule(a, b dataplane.Rule) bool {
	return a.Action == b.Action && a.IPVersion == b.IPVersion &&
		equalPtr(a.Protocol, b.Protocol) && equalPtr(a.NotProtocol, b.NotProtocol) &&
		equalICMP(a.ICMP, b.ICMP) && equalICMP(a.NotICMP, b.NotICMP) &&
		equalMatch(&a.Src, &b.Src) && equalMatch(&a.Dst, &b.Dst)
}

func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func equalICMP(a, b *dataplane.ICMPMatch) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Type == b.Type && equalPtr(a.Code, b.Code)
}

func equalMatch(a, b *dataplane.Match) bool {
	return slices.Equal(a.Nets, b.Nets) && slices.Equal(a.NotNets, b.NotNets) &&
		slices.Equal(a.Sets, b.Sets) && slices.Equal(a.NotSets, b.NotSets) &&
		slices.Equal(a.Ports, b.Ports) && slices.Equal(a.NotPorts, b.NotPorts) &&
		slices.Equal(a.PortSets, b.PortSets) && slices.Equal(a.NotPortSets, b.NotPortSets)
}
