package calc

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/dataplane"
)

// Host endpoints (Calico's HostEndpoint) and the GlobalNetworkPolicies that
// protect this host's own interfaces, as Felix applies them:
//
//   - A HostEndpoint is local when spec.node is this host. It names one
//     interface (interfaceName) or every host interface ("*"). One that
//     names no interface governs the interfaces that carry one of its
//     expectedIPs: it is emitted with Iface "" and the addresses, and the
//     driver finds the interfaces when it applies (addresses are the
//     kernel's, not the datastore's; see dataplane.HostEndpoint). When two
//     local HostEndpoints name the same interface, the smaller name wins.
//   - Its labels: the labelsToApply of its existing profiles (earlier
//     profiles win), then metadata.labels. It has no namespace and no
//     service account: a namespaceSelector or serviceAccountSelector sees
//     no labels (so all() and most selectors never select it, a negation
//     such as !has(x) does, as in Calico); namespaceSelector global()
//     selects it (Calico's meaning of global(): non-namespaced endpoints
//     only).
//   - Policies are in tier order as for workloads (tiers.go), and each
//     list of a HostEndpoint says where its tiers end (dataplane.HostEndpoint).
//   - Only GlobalNetworkPolicies select host endpoints. A policy with
//     doNotTrack (untracked) or preDNAT applies to host endpoints only,
//     never to workloads; untracked policies apply to named interfaces only
//     (Calico: "*" does not support untracked policy) and pre-DNAT
//     policies in the ingress direction only. Other policies are "normal":
//     they judge traffic to and from the host, and with applyOnForward also
//     forwarded traffic through the interface.
//   - Failsafe ports: FelixConfiguration failsafeInboundHostPorts and
//     failsafeOutboundHostPorts; unset means Calico's defaults
//     (DefaultFailsafeInbound, DefaultFailsafeOutbound), an empty list none.
//     They are only emitted when some HostEndpoint is local.
//   - A HostEndpoint may name Calico's built-in profile
//     projectcalico-default-allow (allow all both ways) without it being
//     stored.
//   - Rule selectors of these policies become IPSets like a workload
//     policy's, whose members also include the expectedIPs of every
//     matching HostEndpoint (of any host). When a workload policy uses the
//     same selector, the set holds the union.
//
// dataplane.HostProtection documents what the dataplane does with it.

// DefaultFailsafeInbound are Calico's default failsafeInboundHostPorts:
// SSH, DHCP, BGP, etcd, Typha, the Kubernetes API and kube-proxy's ports.
func DefaultFailsafeInbound() []dataplane.FailsafePort {
	return []dataplane.FailsafePort{
		{Protocol: ProtoTCP, Port: 22}, {Protocol: ProtoUDP, Port: 68}, {Protocol: ProtoTCP, Port: 179},
		{Protocol: ProtoTCP, Port: 2379}, {Protocol: ProtoTCP, Port: 2380}, {Protocol: ProtoTCP, Port: 5473},
		{Protocol: ProtoTCP, Port: 6443}, {Protocol: ProtoTCP, Port: 6666}, {Protocol: ProtoTCP, Port: 6667},
	}
}

// DefaultFailsafeOutbound are Calico's default failsafeOutboundHostPorts:
// DNS, DHCP, BGP, etcd, Typha, the Kubernetes API and kube-proxy's ports.
func DefaultFailsafeOutbound() []dataplane.FailsafePort {
	return []dataplane.FailsafePort{
		{Protocol: ProtoTCP, Port: 53}, {Protocol: ProtoUDP, Port: 53}, {Protocol: ProtoUDP, Port: 67},
		{Protocol: ProtoTCP, Port: 179}, {Protocol: ProtoTCP, Port: 2379}, {Protocol: ProtoTCP, Port: 2380},
		{Protocol: ProtoTCP, Port: 5473}, {Protocol: ProtoTCP, Port: 6443}, {Protocol: ProtoTCP, Port: 6666},
		{Protocol: ProtoTCP, Port: 6667},
	}
}

// hostOnlyPolicy reports whether a policy applies to host endpoints only.
func hostOnlyPolicy(spec *api.PolicySpec) bool { return spec.PreDNAT || spec.DoNotTrack }

// hostInput is what the host endpoint computation reads.
type hostInput struct {
	node     string
	heps     []*api.HostEndpoint // every host's, any order
	gnps     []*api.GlobalNetworkPolicy
	profiles map[string]*api.Profile
	felix    *api.FelixConfigurationSpec
	tiers    map[string]tierInfo
	// workloads yields every workload endpoint's view and addresses (for
	// the members of rule selector sets).
	workloads func(yield func(v *epView, addrs []netip.Prefix))
}

// hostOutput is the host part of a Desired.
type hostOutput struct {
	prot   dataplane.HostProtection
	chains []dataplane.PolicyChain // sorted by ID
	sets   []dataplane.IPSet       // sorted by ID
}

// hostMatches evaluates a matcher against a host endpoint's labels: like a
// GlobalNetworkSet, it has no namespace and no service account, so their
// selectors see no labels (as Calico's pcns./pcsa. labels are absent).
func hostMatches(m *matcher, labels map[string]string) bool {
	return m != nil && m.matches(&epView{labels: labels, global: true})
}

func hepLabels(h *api.HostEndpoint, profiles map[string]*api.Profile) map[string]string {
	out := map[string]string{}
	for i := len(h.Spec.Profiles) - 1; i >= 0; i-- {
		if p := profiles[h.Spec.Profiles[i]]; p != nil {
			for k, v := range p.Spec.LabelsToApply {
				out[k] = v
			}
		}
	}
	for k, v := range h.Labels {
		out[k] = v
	}
	return out
}

func hepAddrs(h *api.HostEndpoint) []netip.Prefix {
	return parseNets(h.Spec.ExpectedIPs)
}

// hepExpectedAddrs are h's expectedIPs as addresses, sorted, without
// duplicates (invalid ones are refused by validation and skipped here).
func hepExpectedAddrs(h *api.HostEndpoint) []netip.Addr {
	var out []netip.Addr
	for _, s := range h.Spec.ExpectedIPs {
		if a, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil {
			out = append(out, a.Unmap())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// computeHostEndpoints is the host part of Compute (and Calculator).
func computeHostEndpoints(in *hostInput) hostOutput {
	var out hostOutput
	parse := cachedParser()
	if _, ok := in.profiles[api.DefaultAllowProfile]; !ok {
		// Calico's built-in profile exists without being stored.
		profiles := make(map[string]*api.Profile, len(in.profiles)+1)
		for k, v := range in.profiles {
			profiles[k] = v
		}
		profiles[api.DefaultAllowProfile] = api.NewDefaultAllowProfile()
		cp := *in
		cp.profiles = profiles
		in = &cp
	}
	type hepIn struct {
		h      *api.HostEndpoint
		labels map[string]string
	}
	heps := make([]hepIn, 0, len(in.heps))
	for _, h := range in.heps {
		heps = append(heps, hepIn{h: h, labels: hepLabels(h, in.profiles)})
	}
	slices.SortFunc(heps, func(a, b hepIn) int { return strings.Compare(a.h.Name, b.h.Name) })

	type pol struct {
		meta polMeta
		m    *matcher
		spec *api.PolicySpec
	}
	byName := map[string]*pol{}
	for _, g := range in.gnps {
		m, err := policyMatcher(parse, "", &g.Spec)
		if err != nil {
			m = nil
		}
		byName[g.Name] = &pol{meta: newPolMeta(gnpChainID(g.Name), g.Name, &g.Spec), m: m, spec: &g.Spec}
	}
	pols := mapValues(byName)
	// Tier order first, then each policy's own order (tiers.go), as for
	// workload endpoints.
	slices.SortFunc(pols, func(a, b *pol) int {
		return cmp.Or(compareTiers(in.tiers, a.meta.tier, b.meta.tier), comparePolMeta(&a.meta, &b.meta))
	})
	tierOfID := map[string]*polMeta{}
	for _, p := range pols {
		tierOfID[p.meta.id] = &p.meta
	}
	groups := func(ids []string) []dataplane.EndpointTier {
		metas := make([]*polMeta, len(ids))
		for i, id := range ids {
			metas[i] = tierOfID[id]
		}
		return tierGroups(metas, in.tiers, func(*polMeta) bool { return true })
	}

	used := map[string]*pol{}
	usedProfiles := map[string]bool{}
	seenIface := map[string]bool{}
	for _, hi := range heps {
		h := hi.h
		iface := strings.TrimSpace(h.Spec.InterfaceName)
		if h.Spec.Node != in.node || seenIface[iface] {
			continue
		}
		e := dataplane.HostEndpoint{ID: h.Name, Iface: iface}
		if iface == "" {
			e.ExpectedIPs = hepExpectedAddrs(h)
			if len(e.ExpectedIPs) == 0 {
				continue // refused by validation
			}
		} else {
			seenIface[iface] = true
		}
		for _, p := range pols {
			if !hostMatches(p.m, hi.labels) {
				continue
			}
			id := p.meta.id
			use := false
			switch {
			case p.spec.DoNotTrack:
				if iface == "*" {
					continue
				}
				if p.meta.ingress {
					e.UntrackedIngress, use = append(e.UntrackedIngress, id), true
				}
				if p.meta.egress {
					e.UntrackedEgress, use = append(e.UntrackedEgress, id), true
				}
			case p.spec.PreDNAT:
				if p.meta.ingress {
					e.PreDNAT, use = append(e.PreDNAT, id), true
				}
			default:
				if p.meta.ingress {
					e.Ingress, use = append(e.Ingress, id), true
					if p.spec.ApplyOnForward {
						e.ForwardIngress = append(e.ForwardIngress, id)
					}
				}
				if p.meta.egress {
					e.Egress, use = append(e.Egress, id), true
					if p.spec.ApplyOnForward {
						e.ForwardEgress = append(e.ForwardEgress, id)
					}
				}
			}
			if use {
				used[id] = p
			}
		}
		e.IngressTiers, e.EgressTiers = groups(e.Ingress), groups(e.Egress)
		e.ForwardIngressTiers, e.ForwardEgressTiers = groups(e.ForwardIngress), groups(e.ForwardEgress)
		e.PreDNATTiers = groups(e.PreDNAT)
		e.UntrackedIngressTiers, e.UntrackedEgressTiers = groups(e.UntrackedIngress), groups(e.UntrackedEgress)
		e.Profiles = endpointProfiles(h.Spec.Profiles, func(n string) bool { return in.profiles[n] != nil })
		for _, id := range e.Profiles {
			usedProfiles[id] = true
		}
		out.prot.Endpoints = append(out.prot.Endpoints, e)
	}
	if len(out.prot.Endpoints) == 0 {
		return hostOutput{}
	}
	slices.SortFunc(out.prot.Endpoints, func(a, b dataplane.HostEndpoint) int {
		return cmp.Or(strings.Compare(a.Iface, b.Iface), strings.Compare(a.ID, b.ID))
	})
	out.prot.FailsafeIn, out.prot.FailsafeOut = failsafes(in.felix)

	setMatchers := map[string]*matcher{}
	sink := func(m *matcher) string {
		id := setIDFor(m.key)
		setMatchers[id] = m
		return id
	}
	for _, id := range sortedKeys(used) {
		p := used[id]
		out.chains = append(out.chains, translateChain(parse, id, p.spec.Ingress, p.spec.Egress, "", p.meta.ingress, p.meta.egress, sink))
	}
	for _, id := range sortedKeys(usedProfiles) {
		pr := in.profiles[strings.TrimPrefix(id, profilePrefix)]
		out.chains = append(out.chains, translateChain(parse, id, pr.Spec.Ingress, pr.Spec.Egress, "", true, true, sink))
	}
	slices.SortFunc(out.chains, func(a, b dataplane.PolicyChain) int { return strings.Compare(a.ID, b.ID) })
	for _, id := range sortedKeys(setMatchers) {
		m := setMatchers[id]
		if m.portName != "" {
			// Named ports resolve against workload endpoints' ports.
			var pm []dataplane.AddrProtoPort
			if in.workloads != nil {
				in.workloads(func(v *epView, addrs []netip.Prefix) {
					if m.matches(v) {
						pm = append(pm, portMembers(m, v, addrs)...)
					}
				})
			}
			out.sets = append(out.sets, namedPortSet(id, m, pm))
			continue
		}
		var members []netip.Prefix
		if in.workloads != nil {
			in.workloads(func(v *epView, addrs []netip.Prefix) {
				if m.matches(v) {
					members = append(members, addrs...)
				}
			})
		}
		for _, hi := range heps {
			if hostMatches(m, hi.labels) {
				members = append(members, hepAddrs(hi.h)...)
			}
		}
		slices.SortFunc(members, comparePrefix)
		members = slices.Compact(members)
		if len(members) == 0 {
			members = nil
		}
		out.sets = append(out.sets, dataplane.IPSet{ID: id, Selector: m.key, Members: members})
	}
	return out
}

// failsafes returns the failsafe port lists of felix (defaults when unset).
func failsafes(f *api.FelixConfigurationSpec) (in, out []dataplane.FailsafePort) {
	in, out = DefaultFailsafeInbound(), DefaultFailsafeOutbound()
	if f != nil && f.FailsafeInboundHostPorts != nil {
		in = convertFailsafe(*f.FailsafeInboundHostPorts)
	}
	if f != nil && f.FailsafeOutboundHostPorts != nil {
		out = convertFailsafe(*f.FailsafeOutboundHostPorts)
	}
	sortFailsafe(in)
	sortFailsafe(out)
	return slices.Compact(in), slices.Compact(out)
}

func convertFailsafe(ps []api.ProtoPort) []dataplane.FailsafePort {
	var out []dataplane.FailsafePort
	for _, p := range ps {
		var proto uint8
		switch strings.ToUpper(strings.TrimSpace(p.Protocol)) {
		case "TCP":
			proto = ProtoTCP
		case "UDP":
			proto = ProtoUDP
		case "SCTP":
			proto = 132
		default:
			continue // refused by validation
		}
		if p.Port == 0 {
			continue
		}
		fp := dataplane.FailsafePort{Protocol: proto, Port: p.Port}
		if strings.TrimSpace(p.Net) != "" {
			n, ok := parsePrefixOrAddr(p.Net)
			if !ok {
				continue
			}
			fp.Net = n
		}
		out = append(out, fp)
	}
	return out
}

func sortFailsafe(ps []dataplane.FailsafePort) {
	slices.SortFunc(ps, func(a, b dataplane.FailsafePort) int {
		if c := cmp.Compare(a.Protocol, b.Protocol); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Port, b.Port); c != 0 {
			return c
		}
		if a.Net.IsValid() != b.Net.IsValid() {
			if !a.Net.IsValid() {
				return -1
			}
			return 1
		}
		return comparePrefix(a.Net, b.Net)
	})
}

// mergeHost adds the host part to d's chains and sets: a chain both parts
// use is the same translation (kept once); a set both use gets the union
// of members. d's slices are replaced, never modified.
func mergeHost(d *dataplane.Desired, h *hostOutput, wlChains []dataplane.PolicyChain, wlSets []dataplane.IPSet) {
	d.Hosts = h.prot
	d.Chains, d.Sets = wlChains, wlSets
	if len(h.chains) > 0 {
		chains := slices.Clone(wlChains)
		for _, c := range h.chains {
			i, found := slices.BinarySearchFunc(chains, c.ID, func(x dataplane.PolicyChain, id string) int { return strings.Compare(x.ID, id) })
			if !found {
				chains = slices.Insert(chains, i, c)
			}
		}
		d.Chains = chains
	}
	if len(h.sets) > 0 {
		sets := slices.Clone(wlSets)
		for _, s := range h.sets {
			i, found := slices.BinarySearchFunc(sets, s.ID, func(x dataplane.IPSet, id string) int { return strings.Compare(x.ID, id) })
			if !found {
				sets = slices.Insert(sets, i, s)
				continue
			}
			if s.NamedPort != "" {
				continue // computed from the same workloads: the same members
			}
			members := slices.Concat(sets[i].Members, s.Members)
			slices.SortFunc(members, comparePrefix)
			members = slices.Compact(members)
			if len(members) == 0 {
				members = nil
			}
			sets[i] = dataplane.IPSet{ID: s.ID, Selector: s.Selector, Members: members}
		}
		d.Sets = sets
	}
}
