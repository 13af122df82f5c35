package trace

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/calc"
	"github.com/calico-docker/calico/internal/dataplane"
)

// Packet is the first packet of a connection.
type Packet struct {
	Src, Dst netip.Addr
	// Protocol is the IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, 132 SCTP).
	Protocol uint8
	// SrcPort 0 means unknown: a rule on source ports does not match it.
	SrcPort, DstPort uint16
	// ICMPType and ICMPCode (ICMP only): echo request (8, or 128 for ICMPv6) by default.
	ICMPType, ICMPCode uint8
}

// Endpoint is a workload endpoint as the trace shows it.
type Endpoint struct {
	// ID is "<namespace>/<name>", as in dataplane.Endpoint.
	ID        string            `json:"id"`
	Node      string            `json:"node"`
	Container string            `json:"container,omitempty"`
	Network   string            `json:"network,omitempty"`
	Iface     string            `json:"iface,omitempty"`
	Addrs     []netip.Prefix    `json:"addrs"`
	Labels    map[string]string `json:"labels,omitempty"`
	Profiles  []string          `json:"profiles,omitempty"`
}

// Name is the shortest useful name: the container's, else the ID.
func (e *Endpoint) Name() string {
	if e == nil {
		return ""
	}
	if e.Container != "" {
		return e.Container
	}
	return e.ID
}

// Step kinds.
const (
	KindPolicy       = "policy"
	KindProfile      = "profile"
	KindControlPlane = "control-plane"
	KindHost         = "host"
	KindEnd          = "end"
)

// Step is one thing the trace considered, in evaluation order.
type Step struct {
	// Kind is policy, profile, control-plane, host or end.
	Kind string `json:"kind"`
	// Chain is the policy or profile chain ID ("gnp:x", "policy:ns/x", "profile:x").
	Chain string `json:"chain,omitempty"`
	// Rule is the index of the matching rule in the chain's programmed rule
	// list for this direction (as the dataplane numbers it: the same as the
	// resource's rule index unless calc split a rule by IP family or left
	// one out); -1 when no rule of the chain matched.
	Rule int `json:"rule"`
	// Action is Allow, Deny, Pass or Log for a matching rule, "" when none matched.
	Action string `json:"action,omitempty"`
	// Detail says what happened, for humans.
	Detail string `json:"detail"`
}

// Side is the verdict of one direction.
type Side struct {
	// Applies is false when the address is no local workload on any host
	// (nothing of ours judges this side).
	Applies  bool      `json:"applies"`
	Endpoint *Endpoint `json:"endpoint,omitempty"`
	Steps    []Step    `json:"steps,omitempty"`
	Allowed  bool      `json:"allowed"`
	// Decider is the chain (and rule) that decided, or a reason such as
	// "no policy or profile allowed it".
	Decider string `json:"decider"`
	// Chain and Rule name the deciding rule (Rule -1: no rule decided).
	Chain string `json:"chain,omitempty"`
	Rule  int    `json:"rule"`
}

// Result is a whole trace.
type Result struct {
	Packet  Packet `json:"packet"`
	Egress  Side   `json:"egress"`
	Ingress Side   `json:"ingress"`
	Allowed bool   `json:"allowed"`
	// Summary is one line: the verdict and what decided it.
	Summary string `json:"summary"`
	// Staged is what the staged policies would decide (nil when nothing
	// is staged).
	Staged *StagedVerdict `json:"staged,omitempty"`
}

// Tracer answers traces for one datastore snapshot. It computes each
// host's Desired once (with calc.Compute) and reuses it.
type Tracer struct {
	snap    *calc.Snapshot
	felix   map[string]*api.FelixConfigurationSpec // node name -> merged
	desired map[string]*dataplane.Desired
	eps     []*Endpoint
	// staged evaluates the same snapshot with the staged policies applied
	// (nil when nothing is staged).
	staged *Tracer
}

// New returns a Tracer for s. felixByNode gives each node's merged
// FelixConfiguration (missing: s.Felix).
func New(s *calc.Snapshot, felixByNode map[string]*api.FelixConfigurationSpec) *Tracer {
	return NewWithStaged(s, felixByNode, nil)
}

// NewWithStaged is New that also evaluates every trace with the staged
// policies st applied (see Result.Staged). The enforced verdict does not
// depend on st.
func NewWithStaged(s *calc.Snapshot, felixByNode map[string]*api.FelixConfigurationSpec, st *Staged) *Tracer {
	t := newTracer(s, felixByNode)
	if !st.Empty() {
		t.staged = newTracer(stagedSnapshot(s, st), felixByNode)
	}
	return t
}

func newTracer(s *calc.Snapshot, felixByNode map[string]*api.FelixConfigurationSpec) *Tracer {
	t := &Tracer{snap: s, felix: felixByNode, desired: map[string]*dataplane.Desired{}}
	for i := range s.WorkloadEndpoints {
		w := &s.WorkloadEndpoints[i]
		e := &Endpoint{
			ID:        w.Namespace + "/" + w.Name,
			Node:      w.Spec.Node,
			Container: w.Labels["docker.container"],
			Network:   w.Labels["docker.network"],
			Iface:     w.Spec.InterfaceName,
			Labels:    w.Labels,
			Profiles:  w.Spec.Profiles,
		}
		if e.Network == "" && len(w.Spec.Profiles) > 0 {
			e.Network = w.Spec.Profiles[0]
		}
		for _, n := range w.Spec.IPNetworks {
			if p, err := netip.ParsePrefix(n); err == nil {
				e.Addrs = append(e.Addrs, p)
			} else if a, err := netip.ParseAddr(n); err == nil {
				e.Addrs = append(e.Addrs, netip.PrefixFrom(a, a.BitLen()))
			}
		}
		t.eps = append(t.eps, e)
	}
	slices.SortFunc(t.eps, func(a, b *Endpoint) int { return strings.Compare(a.ID, b.ID) })
	t.eps = slices.CompactFunc(t.eps, func(a, b *Endpoint) bool { return a.ID == b.ID })
	return t
}

// Endpoints lists every workload endpoint, sorted by ID.
func (t *Tracer) Endpoints() []*Endpoint { return t.eps }

// Desired is what calc.Compute gives for node: the rules that host programs.
func (t *Tracer) Desired(node string) *dataplane.Desired {
	if d, ok := t.desired[node]; ok {
		return d
	}
	s := *t.snap
	s.Node = node
	if f, ok := t.felix[node]; ok {
		s.Felix = f
	}
	d := calc.Compute(&s)
	t.desired[node] = d
	return d
}

// Find resolves an endpoint reference: an ID ("ns/name"), a name, a
// container name or ID prefix (4+ characters), or one of its addresses.
// An address of no endpoint returns (nil, addr, nil).
func (t *Tracer) Find(ref string) (*Endpoint, netip.Addr, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return nil, netip.Addr{}, fmt.Errorf("empty endpoint: give a container name, an endpoint name or an IP address")
	}
	if a, err := netip.ParseAddr(ref); err == nil {
		if e := t.ByAddr(a); e != nil {
			return e, a, nil
		}
		return nil, a, nil
	}
	var found []*Endpoint
	for _, e := range t.eps {
		_, name, _ := strings.Cut(e.ID, "/")
		if e.ID == ref || name == ref || e.Container == ref {
			found = append(found, e)
		}
	}
	if len(found) == 0 && len(ref) >= 4 {
		for i := range t.snap.WorkloadEndpoints {
			w := &t.snap.WorkloadEndpoints[i]
			if strings.HasPrefix(w.Spec.ContainerID, ref) || strings.HasPrefix(w.Spec.Endpoint, ref) {
				if e := t.byID(w.Namespace + "/" + w.Name); e != nil && !slices.Contains(found, e) {
					found = append(found, e)
				}
			}
		}
	}
	switch len(found) {
	case 0:
		return nil, netip.Addr{}, fmt.Errorf("endpoint %q: no workload endpoint has that name, container or address", ref)
	case 1:
	default:
		ids := make([]string, len(found))
		for i, e := range found {
			ids[i] = e.ID
		}
		return nil, netip.Addr{}, fmt.Errorf("endpoint %q is ambiguous (%s): give the endpoint ID or an address", ref, strings.Join(ids, ", "))
	}
	e := found[0]
	if len(e.Addrs) == 0 {
		return nil, netip.Addr{}, fmt.Errorf("endpoint %s has no address", e.ID)
	}
	return e, e.Addrs[0].Addr(), nil
}

func (t *Tracer) byID(id string) *Endpoint {
	i, ok := slices.BinarySearchFunc(t.eps, id, func(e *Endpoint, id string) int { return strings.Compare(e.ID, id) })
	if !ok {
		return nil
	}
	return t.eps[i]
}

// ByAddr is the endpoint that owns a, or nil.
func (t *Tracer) ByAddr(a netip.Addr) *Endpoint {
	var best *Endpoint
	bits := -1
	for _, e := range t.eps {
		for _, p := range e.Addrs {
			if p.Contains(a) && p.Bits() > bits {
				best, bits = e, p.Bits()
			}
		}
	}
	return best
}

// AddrFor picks src's address of the family of other (or its first).
func AddrFor(e *Endpoint, other netip.Addr) (netip.Addr, bool) {
	for _, p := range e.Addrs {
		if !other.IsValid() || p.Addr().Is4() == other.Is4() {
			return p.Addr(), true
		}
	}
	return netip.Addr{}, false
}

// Trace evaluates pkt: the egress side of the endpoint that owns pkt.Src,
// then the ingress side of the one that owns pkt.Dst; and, when policies
// are staged, the same with the staged set (Result.Staged).
func (t *Tracer) Trace(pkt Packet) Result {
	r := t.trace(pkt)
	r.Staged = t.stagedVerdict(pkt, &r)
	return r
}

func (t *Tracer) trace(pkt Packet) Result {
	r := Result{Packet: pkt, Egress: Side{Rule: -1}, Ingress: Side{Rule: -1}}
	if src := t.ByAddr(pkt.Src); src != nil {
		r.Egress = t.side(src, pkt, false)
		if r.Egress.Applies && r.Egress.Allowed {
			t.toHost(src, pkt, &r.Egress)
		}
	}
	if dst := t.ByAddr(pkt.Dst); dst != nil {
		r.Ingress = t.side(dst, pkt, true)
	}
	r.Allowed = (!r.Egress.Applies || r.Egress.Allowed) && (!r.Ingress.Applies || r.Ingress.Allowed)
	switch {
	case !r.Egress.Applies && !r.Ingress.Applies:
		r.Allowed = true
		r.Summary = "allowed: neither address is a workload endpoint, no Calico policy applies"
	case r.Egress.Applies && !r.Egress.Allowed:
		r.Summary = "denied on egress of " + r.Egress.Endpoint.Name() + ": " + r.Egress.Decider
	case r.Ingress.Applies && !r.Ingress.Allowed:
		r.Summary = "denied on ingress of " + r.Ingress.Endpoint.Name() + ": " + r.Ingress.Decider
	default:
		var parts []string
		if r.Egress.Applies {
			parts = append(parts, "egress of "+r.Egress.Endpoint.Name()+" by "+r.Egress.Decider)
		}
		if r.Ingress.Applies {
			parts = append(parts, "ingress of "+r.Ingress.Endpoint.Name()+" by "+r.Ingress.Decider)
		}
		r.Summary = "allowed: " + strings.Join(parts, "; ")
	}
	return r
}

// toHost applies defaultEndpointToHostAction when pkt goes to the source
// endpoint's own host (the input hook: the egress chain decides only when
// the action is Accept or Return).
func (t *Tracer) toHost(src *Endpoint, pkt Packet, s *Side) {
	if !t.isHostAddr(src.Node, pkt.Dst) {
		return
	}
	action := "Drop"
	if d := t.Desired(src.Node); d != nil {
		switch d.Host.EndpointToHostAction {
		case "Accept", "Return":
			action = d.Host.EndpointToHostAction
		}
	}
	if action != "Drop" {
		s.Steps = append(s.Steps, Step{Kind: KindHost, Rule: -1, Detail: fmt.Sprintf("to its own host %s: defaultEndpointToHostAction %s after egress policy", src.Node, action)})
		return
	}
	s.Steps = append(s.Steps, Step{Kind: KindHost, Rule: -1, Action: "Deny", Detail: fmt.Sprintf("to its own host %s: defaultEndpointToHostAction Drop", src.Node)})
	s.Allowed, s.Decider, s.Chain, s.Rule = false, "defaultEndpointToHostAction Drop (traffic to its own host)", "", -1
}

func (t *Tracer) isHostAddr(node string, a netip.Addr) bool {
	for i := range t.snap.Nodes {
		n := &t.snap.Nodes[i]
		if n.Name != node {
			continue
		}
		for _, s := range nodeAddrStrings(n) {
			if p, err := netip.ParsePrefix(s); err == nil && p.Addr() == a {
				return true
			}
			if x, err := netip.ParseAddr(s); err == nil && x == a {
				return true
			}
		}
	}
	return false
}

func nodeAddrStrings(n *api.Node) []string {
	var out []string
	if n.Spec.BGP != nil {
		out = append(out, n.Spec.BGP.IPv4Address, n.Spec.BGP.IPv6Address)
	}
	for _, a := range n.Spec.Addresses {
		out = append(out, a.Address)
	}
	return out
}

// side walks one endpoint chain of e's host.
func (t *Tracer) side(e *Endpoint, pkt Packet, ingress bool) Side {
	s := Side{Applies: true, Endpoint: e, Rule: -1}
	d := t.Desired(e.Node)
	var ep *dataplane.Endpoint
	for i := range d.Endpoints {
		if d.Endpoints[i].ID == e.ID {
			ep = &d.Endpoints[i]
		}
	}
	if ep == nil {
		s.Steps = append(s.Steps, Step{Kind: KindEnd, Rule: -1, Action: "Deny", Detail: "endpoint is not programmed on its host (no interface): its traffic is dropped"})
		s.Decider = "endpoint not programmed on host " + e.Node
		return s
	}
	pols, profiles := ep.EgressPolicies, ep.Profiles
	if ingress {
		pols = ep.IngressPolicies
	}
	decide := func(allowed bool, chain string, rule int, why string) Side {
		s.Allowed, s.Chain, s.Rule, s.Decider = allowed, chain, rule, why
		return s
	}
	if len(pols)+len(profiles) == 0 {
		s.Steps = append(s.Steps, Step{Kind: KindEnd, Rule: -1, Action: "Deny", Detail: "no policy and no profile applies: dropped (fail closed)"})
		return decide(false, "", -1, "no policy or profile applies (fail closed)")
	}
	tiers := ep.EgressTiers
	if ingress {
		tiers = ep.IngressTiers
	}
	spans, names, defPass := tierSpans(pols, tiers)
	for ti, span := range spans {
		passed := false
		for _, id := range span {
			v, idx := t.evalChain(d, id, ingress, pkt, KindPolicy, &s)
			switch v {
			case dataplane.Allow:
				return decide(true, id, idx, ruleName(id, idx))
			case dataplane.Deny:
				return decide(false, id, idx, ruleName(id, idx))
			case dataplane.Pass:
				passed = true
			}
			if passed {
				break
			}
		}
		if passed || defPass[ti] {
			if tiers != nil && !passed {
				s.Steps = append(s.Steps, Step{Kind: KindEnd, Rule: -1, Detail: "end of tier " + names[ti] + ": default action Pass, on to the next tier"})
			}
			continue
		}
		if tiers == nil {
			s.Steps = append(s.Steps, Step{Kind: KindEnd, Rule: -1, Action: "Deny", Detail: "end of policies: no policy allowed it"})
			return decide(false, "", -1, "no policy allowed it (end of policies)")
		}
		s.Steps = append(s.Steps, Step{Kind: KindEnd, Rule: -1, Action: "Deny", Detail: "end of tier " + names[ti] + ": no policy allowed it"})
		return decide(false, "", -1, "no policy allowed it (end of tier "+names[ti]+")")
	}
	if !ingress && len(profiles) > 0 && controlPlaneHit(d, pkt) {
		s.Steps = append(s.Steps, Step{Kind: KindControlPlane, Rule: -1, Action: "Deny",
			Detail: fmt.Sprintf("%s %d on a node address is a control-plane port: only a policy Allow opens it", dataplane.ProtoName(pkt.Protocol), pkt.DstPort)})
		return decide(false, "", -1, "control-plane port (only a policy Allow opens it)")
	}
	for _, id := range profiles {
		v, idx := t.evalChain(d, id, ingress, pkt, KindProfile, &s)
		switch v {
		case dataplane.Allow:
			return decide(true, id, idx, ruleName(id, idx))
		case dataplane.Deny:
			return decide(false, id, idx, ruleName(id, idx))
		}
	}
	s.Steps = append(s.Steps, Step{Kind: KindEnd, Rule: -1, Action: "Deny", Detail: "end of profiles: no profile allowed it"})
	if len(pols) > 0 {
		return decide(false, "", -1, "passed to the profiles, and no profile allowed it")
	}
	return decide(false, "", -1, "no policy or profile allowed it")
}

func ruleName(chain string, idx int) string {
	return fmt.Sprintf("%s rule %d", chain, idx)
}

// evalChain runs one policy or profile chain: the first Allow, Deny or
// Pass rule that matches gives the verdict; Log rules are recorded and
// evaluation goes on. It returns "" when no rule gave a verdict.
func (t *Tracer) evalChain(d *dataplane.Desired, id string, ingress bool, pkt Packet, kind string, s *Side) (dataplane.Action, int) {
	c := findChain(d, id)
	if c == nil {
		s.Steps = append(s.Steps, Step{Kind: kind, Chain: id, Rule: -1, Detail: "chain missing from the calculation (no rules)"})
		return "", -1
	}
	rules := c.Egress
	if ingress {
		rules = c.Ingress
	}
	sets := setIndex(d)
	for i := range rules {
		r := &rules[i]
		if !Matches(r, pkt, sets) {
			continue
		}
		s.Steps = append(s.Steps, Step{Kind: kind, Chain: id, Rule: i, Action: string(r.Action), Detail: describe(r.Action, kind)})
		if r.Action != dataplane.Log {
			return r.Action, i
		}
	}
	detail := "no rule matched"
	if len(rules) == 0 {
		detail = "no rules in this direction"
	}
	if kind == KindPolicy {
		detail += ": on to the next policy"
	} else {
		detail += ": on to the next profile"
	}
	s.Steps = append(s.Steps, Step{Kind: kind, Chain: id, Rule: -1, Detail: detail})
	return "", -1
}

func describe(a dataplane.Action, kind string) string {
	switch a {
	case dataplane.Allow:
		return "matched: allow"
	case dataplane.Deny:
		return "matched: deny"
	case dataplane.Pass:
		if kind == KindPolicy {
			return "matched: pass to the profiles"
		}
		return "matched: pass (on to the next profile)"
	case dataplane.Log:
		return "matched: log, evaluation goes on"
	}
	return "matched"
}

func findChain(d *dataplane.Desired, id string) *dataplane.PolicyChain {
	i, ok := slices.BinarySearchFunc(d.Chains, id, func(c dataplane.PolicyChain, id string) int { return strings.Compare(c.ID, id) })
	if ok {
		return &d.Chains[i]
	}
	for i := range d.Chains {
		if d.Chains[i].ID == id {
			return &d.Chains[i]
		}
	}
	return nil
}

func controlPlaneHit(d *dataplane.Desired, pkt Packet) bool {
	if !slices.Contains(d.ControlPlane.Addrs, pkt.Dst) {
		return false
	}
	return slices.Contains(d.ControlPlane.Ports, dataplane.ProtoPort{Protocol: pkt.Protocol, Port: pkt.DstPort})
}

// ProtoName is the protocol's name (tcp, udp, icmp, icmpv6, sctp) or number.
func ProtoName(p uint8) string { return dataplane.ProtoName(p) }

// ParseProto reads a protocol name or number.
func ParseProto(s string) (uint8, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return 6, nil
	case "udp":
		return 17, nil
	case "icmp":
		return 1, nil
	case "icmpv6", "ipv6-icmp":
		return 58, nil
	case "sctp":
		return 132, nil
	}
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n < 1 || n > 255 || fmt.Sprint(n) != s {
		return 0, fmt.Errorf("protocol %q: want tcp, udp, sctp, icmp, icmpv6 or a number 1-255", s)
	}
	return uint8(n), nil
}

// Snapshot is the datastore state the Tracer computes from (read-only).
func (t *Tracer) Snapshot() *calc.Snapshot { return t.snap }

// tierSpans splits pols by tiers as the nft driver does (a nil tiers list
// is one tier that denies by default; policies the tiers do not account
// for form a last tier that denies by default).
func tierSpans(pols []string, tiers []dataplane.EndpointTier) (spans [][]string, names []string, pass []bool) {
	if tiers == nil {
		if len(pols) == 0 {
			return nil, nil, nil
		}
		return [][]string{pols}, []string{"default"}, []bool{false}
	}
	i := 0
	for _, t := range tiers {
		end := min(i+max(t.Policies, 0), len(pols))
		if end > i {
			spans, names, pass = append(spans, pols[i:end]), append(names, t.Name), append(pass, t.DefaultPass)
		}
		i = end
	}
	if i < len(pols) {
		spans, names, pass = append(spans, pols[i:]), append(names, "(unaccounted)"), append(pass, false)
	}
	return spans, names, pass
}
