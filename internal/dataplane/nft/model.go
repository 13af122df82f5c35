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

// setContent is an immutable set content; a new one is made on every
// change, so pointer equality means "unchanged".
type setContent struct {
	elems elemSet
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
	eps  map[string]*epEntry
	pols map[string]*polEntry
	sets map[string]*ipsetEntry
	// per-endpoint dispatch and anti-spoofing elements
	epElems map[string]*epElemEntry
}

type epEntry struct {
	id              string
	in, eg, profile []string
	fw, tw          *chainModel
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
}

type epElemEntry struct {
	addrs  []netip.Prefix
	fw, tw elem
	spoof4 []elem
	spoof6 []elem
}

func newCache() *cache {
	return &cache{
		eps:     map[string]*epEntry{},
		pols:    map[string]*polEntry{},
		sets:    map[string]*ipsetEntry{},
		epElems: map[string]*epElemEntry{},
	}
}

// compile builds the model of d, reusing c's entries for unchanged sources
// (c may be nil: compile everything) and refreshing c for the next call.
func compile(d *dataplane.Desired, c *cache) *model {
	if c == nil {
		c = newCache()
	}
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
	addChain(newChain(chainPost, "natOutgoing", basePost, func() []rule { return postroutingRules(h) }))

	// Endpoints: chains, dispatch map and anti-spoofing elements.
	fwElems, twElems := elemSet{}, elemSet{}
	sp4, sp6 := elemSet{}, elemSet{}
	seenEP := map[string]bool{}
	for i := range d.Endpoints {
		ep := &d.Endpoints[i]
		if ep.Iface == "" || len(ep.Iface) > 15 {
			m.problems = append(m.problems, fmt.Sprintf("endpoint %s: invalid interface name %q", ep.ID, ep.Iface))
			continue
		}
		if seenEP[ep.Iface] {
			m.problems = append(m.problems, fmt.Sprintf("endpoint %s: interface %s already used by another endpoint", ep.ID, ep.Iface))
			continue
		}
		seenEP[ep.Iface] = true
		m.endpoints++
		e := c.eps[ep.Iface]
		if e == nil || e.id != ep.ID || !slices.Equal(e.in, ep.IngressPolicies) || !slices.Equal(e.eg, ep.EgressPolicies) ||
			!slices.Equal(e.profile, ep.Profiles) {
			epCopy := dataplane.Endpoint{ID: ep.ID, Iface: ep.Iface, IngressPolicies: ep.IngressPolicies,
				EgressPolicies: ep.EgressPolicies, Profiles: ep.Profiles}
			e = &epEntry{id: ep.ID, in: ep.IngressPolicies, eg: ep.EgressPolicies, profile: ep.Profiles}
			e.fw = newChain(fwChainName(ep.Iface), "from "+ep.ID, nil, func() []rule { return endpointChain(&epCopy, false) })
			e.tw = newChain(twChainName(ep.Iface), "to "+ep.ID, nil, func() []rule { return endpointChain(&epCopy, true) })
			c.eps[ep.Iface] = e
		}
		addChain(e.fw)
		addChain(e.tw)

		ee := c.epElems[ep.Iface]
		if ee == nil || !slices.Equal(ee.addrs, ep.Addrs) {
			ee = &epElemEntry{addrs: ep.Addrs}
			ee.fw = elem{key: ifnameKey(ep.Iface), verdict: "jump " + fwChainName(ep.Iface)}
			ee.tw = elem{key: ifnameKey(ep.Iface), verdict: "goto " + twChainName(ep.Iface)}
			for _, r := range ranges(ep.Addrs, 4) {
				ee.spoof4 = append(ee.spoof4, spoofElem(ep.Iface, r))
			}
			for _, r := range ranges(ep.Addrs, 6) {
				ee.spoof6 = append(ee.spoof6, spoofElem(ep.Iface, r))
			}
			c.epElems[ep.Iface] = ee
		}
		fwElems.add(ee.fw)
		twElems.add(ee.tw)
		for _, x := range ee.spoof4 {
			sp4.add(x)
		}
		for _, x := range ee.spoof6 {
			sp6.add(x)
		}
	}
	for k := range c.eps {
		if !seenEP[k] {
			delete(c.eps, k)
			delete(c.epElems, k)
		}
	}
	addSet(&setModel{name: fwMap, typ: typeDispatch, comment: "from-workload dispatch", content: &setContent{fwElems}})
	addSet(&setModel{name: twMap, typ: typeDispatch, comment: "to-workload dispatch", content: &setContent{twElems}})
	addSet(&setModel{name: spoof4, typ: typeSpoof4, comment: "workload IPv4 addresses", content: &setContent{sp4}})
	addSet(&setModel{name: spoof6, typ: typeSpoof6, comment: "workload IPv6 addresses", content: &setContent{sp6}})

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
			in, p1 := compileRules(pcCopy.Ingress, pi)
			eg, p2 := compileRules(pcCopy.Egress, pe)
			e.pi = chainFrom(pi, pc.ID+" ingress", nil, in, func() []rule {
				rs, _ := compileRules(pcCopy.Ingress, pi)
				return rs
			})
			e.pe = chainFrom(pe, pc.ID+" egress", nil, eg, func() []rule {
				rs, _ := compileRules(pcCopy.Egress, pe)
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
	for i := range d.Endpoints {
		ep := &d.Endpoints[i]
		for _, ids := range [][]string{ep.IngressPolicies, ep.EgressPolicies, ep.Profiles} {
			for _, id := range ids {
				if seenPol[id] {
					continue
				}
				seenPol[id] = true
				m.problems = append(m.problems, fmt.Sprintf("endpoint %s: policy chain %s is not in Desired.Chains; treated as empty", ep.ID, id))
				addChain(newChain(policyChainName(id, true), id+" ingress (missing)", nil, func() []rule { return nil }))
				addChain(newChain(policyChainName(id, false), id+" egress (missing)", nil, func() []rule { return nil }))
			}
		}
	}
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
		if e == nil || e.selector != s.Selector || !slices.Equal(e.members, s.Members) {
			e = &ipsetEntry{selector: s.Selector, members: s.Members,
				s4: &setContent{ipElems(s.Members, 4)}, s6: &setContent{ipElems(s.Members, 6)}}
			c.sets[s.ID] = e
		}
		comment := s.ID + " " + s.Selector
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
					for _, id := range append(slices.Clone(mt.Sets), mt.NotSets...) {
						if seenSet[id] {
							continue
						}
						seenSet[id] = true
						m.problems = append(m.problems, fmt.Sprintf("policy chain %s: set %s is not in Desired.Sets; treated as empty", pc.ID, id))
						addSet(&setModel{name: ipSetName(id, 4), typ: typeIP4, comment: id + " (missing)", content: &setContent{elemSet{}}})
						addSet(&setModel{name: ipSetName(id, 6), typ: typeIP6, comment: id + " (missing)", content: &setContent{elemSet{}}})
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

	// natOutgoing.
	addSet(&setModel{name: masq4, typ: typeIP4, comment: "natOutgoing pools", content: &setContent{ipElems(d.NAT.MasqueradePools, 4)}})
	addSet(&setModel{name: masq6, typ: typeIP6, comment: "natOutgoing pools", content: &setContent{ipElems(d.NAT.MasqueradePools, 6)}})
	addSet(&setModel{name: pools4, typ: typeIP4, comment: "all pools", content: &setContent{ipElems(d.NAT.AllPools, 4)}})
	addSet(&setModel{name: pools6, typ: typeIP6, comment: "all pools", content: &setContent{ipElems(d.NAT.AllPools, 6)}})
	return m
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
		slices.Equal(a.Ports, b.Ports) && slices.Equal(a.NotPorts, b.NotPorts)
}
