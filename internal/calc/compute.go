package calc

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/selector"
)

// cachedParser parses each distinct selector text once.
func cachedParser() parseFunc {
	type res struct {
		s   *selector.Selector
		err error
	}
	cache := map[string]res{}
	return func(text string) (*selector.Selector, error) {
		if r, ok := cache[text]; ok {
			return r.s, r.err
		}
		s, err := selector.Parse(text)
		cache[text] = res{s, err}
		return s, err
	}
}

// computeEP is one workload endpoint inside Compute.
type computeEP struct {
	w     *api.WorkloadEndpoint
	view  epView
	addrs []netip.Prefix
}

// programmable reports whether the endpoint is local and has an interface
// the dataplane can attach rules and routes to.
func programmable(w *api.WorkloadEndpoint, node string) bool {
	return w.Spec.Node == node && w.Spec.InterfaceName != ""
}

// computePol is one policy inside Compute.
type computePol struct {
	meta polMeta
	m    *matcher // nil when its selector does not parse: it selects nothing
	ns   string
	spec *api.PolicySpec
}

// Compute is the reference semantics: the desired dataplane of host s.Node
// for the state in s. It is pure and its output is sorted (see doc.go).
func Compute(s *Snapshot) *dataplane.Desired {
	if s == nil {
		s = &Snapshot{}
	}
	parse := cachedParser()

	profiles := make(map[string]*api.Profile, len(s.Profiles))
	for i := range s.Profiles {
		profiles[s.Profiles[i].Name] = &s.Profiles[i]
	}
	lookup := func(n string) (map[string]string, bool) {
		p, ok := profiles[n]
		if !ok {
			return nil, false
		}
		return p.Spec.LabelsToApply, true
	}
	exists := func(n string) bool { _, ok := profiles[n]; return ok }

	byID := make(map[string]*api.WorkloadEndpoint, len(s.WorkloadEndpoints))
	for i := range s.WorkloadEndpoints {
		byID[wepID(&s.WorkloadEndpoints[i])] = &s.WorkloadEndpoints[i]
	}
	eps := make([]*computeEP, 0, len(byID))
	for _, w := range byID {
		eps = append(eps, &computeEP{
			w:     w,
			view:  newEPView(w, endpointLabels(w, lookup)),
			addrs: parseNets(w.Spec.IPNetworks),
		})
	}
	slices.SortFunc(eps, func(a, b *computeEP) int { return strings.Compare(wepID(a.w), wepID(b.w)) })

	pols := computePolicies(s, parse)
	tiers := computeTiers(s)

	// Local endpoints and the chains they use.
	var endpoints []dataplane.Endpoint
	var hostPorts []dataplane.HostPort
	used := map[string]bool{}
	for _, ep := range eps {
		if !programmable(ep.w, s.Node) {
			continue
		}
		hostPorts = append(hostPorts, endpointHostPorts(wepID(ep.w), normalPorts(ep.w.Spec.Ports), ep.addrs)...)
		var matched []*polMeta
		for _, p := range pols {
			if p.m != nil && (p.ns == "" || p.ns == ep.w.Namespace) && p.m.matches(&ep.view) {
				matched = append(matched, &p.meta)
			}
		}
		e := tieredEndpoint(ep.w, ep.addrs, matched, endpointProfiles(ep.w.Spec.Profiles, exists), tiers)
		for _, ids := range [][]string{e.IngressPolicies, e.EgressPolicies, e.Profiles} {
			for _, id := range ids {
				used[id] = true
			}
		}
		endpoints = append(endpoints, e)
	}
	slices.SortFunc(endpoints, func(a, b dataplane.Endpoint) int { return compareEndpoint(&a, &b) })

	// Chains, and the selectors their rules use.
	setMatchers := map[string]*matcher{}
	sink := func(m *matcher) string {
		id := setIDFor(m.key)
		setMatchers[id] = m
		return id
	}
	polByID := make(map[string]*computePol, len(pols))
	for _, p := range pols {
		polByID[p.meta.id] = p
	}
	var chains []dataplane.PolicyChain
	for _, id := range sortedKeys(used) {
		if p, ok := polByID[id]; ok {
			chains = append(chains, translateChain(parse, id, p.spec.Ingress, p.spec.Egress, p.ns, p.meta.ingress, p.meta.egress, sink))
			continue
		}
		name := strings.TrimPrefix(id, profilePrefix)
		pr := profiles[name]
		chains = append(chains, translateChain(parse, id, pr.Spec.Ingress, pr.Spec.Egress, "", true, true, sink))
	}

	// Sets: the addresses of every matching endpoint on every host, and
	// the nets of every matching network set.
	netsets := computeNetSets(s)
	var sets []dataplane.IPSet
	for _, id := range sortedKeys(setMatchers) {
		m := setMatchers[id]
		if m.portName != "" {
			var pm []dataplane.AddrProtoPort
			for _, ep := range eps {
				if m.matches(&ep.view) {
					pm = append(pm, portMembers(m, &ep.view, ep.addrs)...)
				}
			}
			sets = append(sets, namedPortSet(id, m, pm))
			continue
		}
		var members []netip.Prefix
		for _, ep := range slices.Concat(eps, netsets) {
			if m.matches(&ep.view) {
				members = append(members, ep.addrs...)
			}
		}
		slices.SortFunc(members, comparePrefix)
		members = slices.Compact(members)
		sets = append(sets, dataplane.IPSet{ID: id, Selector: m.key, Members: members})
	}

	// Routes.
	pools := make(map[string]*api.IPPool, len(s.IPPools))
	for i := range s.IPPools {
		pools[s.IPPools[i].Name] = &s.IPPools[i]
	}
	poolList := make([]*api.IPPool, 0, len(pools))
	for _, name := range sortedKeys(pools) {
		poolList = append(poolList, pools[name])
	}
	blocks := make(map[netip.Prefix]Block, len(s.Blocks))
	for _, b := range s.Blocks {
		blocks[b.CIDR.Masked()] = Block{CIDR: b.CIDR.Masked(), Node: b.Node}
	}
	nodes := make(map[string]*api.Node, len(s.Nodes))
	for i := range s.Nodes {
		nodes[s.Nodes[i].Name] = &s.Nodes[i]
	}
	in := &routeInput{
		node:    s.Node,
		blocks:  mapValues(blocks),
		pools:   poolList,
		nodes:   nodes,
		felix:   s.Felix,
		hostMTU: s.HostMTU,
		remote: func(yield func(string, []netip.Prefix)) {
			for _, ep := range eps {
				if ep.w.Spec.Node != s.Node {
					yield(ep.w.Spec.Node, ep.addrs)
				}
			}
		},
	}
	for _, e := range endpoints {
		in.local = append(in.local, routeLocalEP{iface: e.Iface, addrs: e.Addrs})
	}
	routes, vx, vx6 := computeRoutes(in)

	hepByName := map[string]*api.HostEndpoint{}
	for i := range s.HostEndpoints {
		hepByName[s.HostEndpoints[i].Name] = &s.HostEndpoints[i]
	}
	gnpByName := map[string]*api.GlobalNetworkPolicy{}
	for i := range s.GlobalNetworkPolicies {
		gnpByName[s.GlobalNetworkPolicies[i].Name] = &s.GlobalNetworkPolicies[i]
	}
	heps, gnps := mapValues(hepByName), mapValues(gnpByName)
	host := computeHostEndpoints(&hostInput{node: s.Node, heps: heps, gnps: gnps, profiles: profiles, felix: s.Felix, tiers: tiers,
		workloads: func(yield func(*epView, []netip.Prefix)) {
			for _, ep := range eps {
				yield(&ep.view, ep.addrs)
			}
		}})
	d := &dataplane.Desired{
		Endpoints:    endpoints,
		Routes:       routes,
		NAT:          computeNAT(poolList),
		Host:         computeHost(s.Felix),
		VXLAN:        vx,
		VXLANV6:      vx6,
		HostPorts:    resolveHostPorts(hostPorts),
		ControlPlane: computeControlPlane(nodes, s.Felix, s.ControlPlanePorts),
	}
	mergeHost(d, &host, chains, sets)
	return d
}

// computePolicies lists every policy (later duplicates win) sorted in
// evaluation order.
func computePolicies(s *Snapshot, parse parseFunc) []*computePol {
	byID := map[string]*computePol{}
	for i := range s.GlobalNetworkPolicies {
		p := &s.GlobalNetworkPolicies[i]
		cp := &computePol{meta: newPolMeta(gnpChainID(p.Name), p.Name, &p.Spec), spec: &p.Spec}
		cp.m, _ = policyMatcher(parse, "", &p.Spec)
		if hostOnlyPolicy(&p.Spec) {
			cp.m = nil // selects host endpoints only
		}
		byID[cp.meta.id] = cp
	}
	for i := range s.NetworkPolicies {
		p := &s.NetworkPolicies[i]
		cp := &computePol{meta: newPolMeta(npChainID(p.Namespace, p.Name), p.Namespace+"/"+p.Name, &p.Spec), spec: &p.Spec, ns: p.Namespace}
		cp.m, _ = policyMatcher(parse, p.Namespace, &p.Spec)
		byID[cp.meta.id] = cp
	}
	pols := mapValues(byID)
	slices.SortFunc(pols, func(a, b *computePol) int { return comparePolMeta(&a.meta, &b.meta) })
	return pols
}

// namedPortSet is the set of matcher m (a named-port matcher) with
// members pm, sorted and without repeats.
func namedPortSet(id string, m *matcher, pm []dataplane.AddrProtoPort) dataplane.IPSet {
	slices.SortFunc(pm, dataplane.CompareAddrProtoPort)
	pm = slices.Compact(pm)
	if len(pm) == 0 {
		pm = nil
	}
	return dataplane.IPSet{ID: id, Selector: m.key, NamedPort: m.portName, Protocol: m.portProto, PortMembers: pm}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
