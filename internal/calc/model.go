package calc

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/selector"
)

// This file holds the semantics shared by Compute and Calculator: what an
// endpoint looks like to selectors, which selector a policy or rule means,
// how a rule is translated and how an Endpoint is assembled. Keeping them in
// one place is what makes the two agree; they differ only in how they find
// which endpoints match what.

// Labels Calico adds to every workload endpoint (libcalico-go apiv3.Label*).
const (
	labelNamespace      = "projectcalico.org/namespace"
	labelOrchestrator   = "projectcalico.org/orchestrator"
	labelServiceAccount = "projectcalico.org/serviceaccount"
	// labelName is the label a Namespace or ServiceAccount carries with its
	// own name; namespaceSelector and serviceAccountSelector see it.
	labelName = "projectcalico.org/name"
)

// Chain ID prefixes (see dataplane.PolicyChain.ID).
const (
	gnpPrefix     = "gnp:"
	policyPrefix  = "policy:"
	profilePrefix = "profile:"
)

func gnpChainID(name string) string        { return gnpPrefix + name }
func npChainID(ns, name string) string     { return policyPrefix + ns + "/" + name }
func profileChainID(name string) string    { return profilePrefix + name }
func wepID(w *api.WorkloadEndpoint) string { return w.Namespace + "/" + w.Name }
func isBlank(s string) bool                { return strings.TrimSpace(s) == "" }

// setIDFor derives a set's ID from its matcher key.
func setIDFor(key string) string {
	h := sha256.Sum256([]byte(key))
	return "s-" + hex.EncodeToString(h[:8])
}

// quoteLabelValue quotes a label value for selector text.
func quoteLabelValue(v string) string {
	if strings.Contains(v, "'") {
		return `"` + v + `"`
	}
	return "'" + v + "'"
}

// comparePrefix orders prefixes by address, then by length (the order of
// dataplane.Desired's sorted prefix slices).
func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

// ---- What selectors see of an endpoint ----

// epView is an endpoint as selectors see it.
type epView struct {
	labels   map[string]string // effective labels
	nsLabels map[string]string // labels of its namespace
	saLabels map[string]string // labels of its service account (nil: none)
	global   bool              // not namespaced (a GlobalNetworkSet)
	ports    []epPort          // its named ports (spec.ports with a name)
}

// epPort is one named port of an endpoint.
type epPort struct {
	name  string
	proto uint8
	port  uint16
}

// endpointNamedPorts lists the named ports of a workload endpoint whose
// protocol has ports (TCP, UDP, SCTP), sorted.
func endpointNamedPorts(ps []api.WorkloadEndpointPort) []epPort {
	var out []epPort
	for _, p := range ps {
		if p.Name == "" || p.Port == 0 {
			continue
		}
		n, ok := protocolNumber(&p.Protocol)
		if !ok || n != 6 && n != 17 && n != 132 {
			continue
		}
		out = append(out, epPort{name: p.Name, proto: n, port: p.Port})
	}
	slices.SortFunc(out, func(a, b epPort) int {
		return cmp.Or(strings.Compare(a.name, b.name), cmp.Compare(a.proto, b.proto), cmp.Compare(a.port, b.port))
	})
	return slices.Compact(out)
}

// portMembers is what an endpoint (view v, addresses addrs) puts in the
// named-port set of m: every single address with every port of m's name
// (and protocol). Wider prefixes have no single address to pair with a
// port and are left out.
func portMembers(m *matcher, v *epView, addrs []netip.Prefix) []dataplane.AddrProtoPort {
	var out []dataplane.AddrProtoPort
	for _, p := range v.ports {
		if p.name != m.portName || m.portProto != 0 && p.proto != m.portProto {
			continue
		}
		for _, a := range addrs {
			if a.Bits() == a.Addr().BitLen() {
				out = append(out, dataplane.AddrProtoPort{Addr: a.Addr(), Protocol: p.proto, Port: p.port})
			}
		}
	}
	return out
}

// profileLabels looks up the labelsToApply of an existing profile.
type profileLabels func(name string) (map[string]string, bool)

// endpointLabels computes an endpoint's effective labels: profile
// labelsToApply (earlier profiles win), then its own labels, then the labels
// Calico itself sets, which win over both.
func endpointLabels(w *api.WorkloadEndpoint, lookup profileLabels) map[string]string {
	out := make(map[string]string, len(w.Labels)+3)
	for i := len(w.Spec.Profiles) - 1; i >= 0; i-- {
		if pl, ok := lookup(w.Spec.Profiles[i]); ok {
			for k, v := range pl {
				out[k] = v
			}
		}
	}
	for k, v := range w.Labels {
		out[k] = v
	}
	out[labelNamespace] = w.Namespace
	if w.Spec.Orchestrator != "" {
		out[labelOrchestrator] = w.Spec.Orchestrator
	}
	if w.Spec.ServiceAccountName != "" {
		out[labelServiceAccount] = w.Spec.ServiceAccountName
	}
	return out
}

func newEPView(w *api.WorkloadEndpoint, labels map[string]string) epView {
	v := epView{labels: labels, nsLabels: map[string]string{labelName: w.Namespace}, ports: endpointNamedPorts(w.Spec.Ports)}
	if w.Spec.ServiceAccountName != "" {
		v.saLabels = map[string]string{labelName: w.Spec.ServiceAccountName}
	}
	return v
}

// parseNets turns ipNetworks (CIDRs, or bare addresses) into sorted, masked,
// de-duplicated prefixes; unparsable entries are skipped. nil when empty.
func parseNets(nets []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range nets {
		if p, ok := parsePrefixOrAddr(s); ok {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, comparePrefix)
	return slices.Compact(out)
}

func parsePrefixOrAddr(s string) (netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// ---- Selectors with Calico's extra conditions ----

// matcher is a selector as a policy or rule means it: the label selector
// plus, optionally, conditions on the endpoint's namespace and service
// account. key is its canonical text and identifies it (and its IPSet).
type matcher struct {
	key   string
	sel   *selector.Selector
	ns    *selector.Selector // nil: no namespace condition
	sa    *selector.Selector // nil: no service account condition
	none  bool               // namespaceSelector global(): only what has no namespace matches
	nsAll bool               // namespaceSelector all(): anything with a namespace
	saReq bool               // only endpoints with a service account match
	keys  []string           // label keys sel depends on
	// portName makes this the matcher of a named-port set: the endpoints
	// it picks contribute (address, protocol, port) of their ports of that
	// name, and of protocol portProto when not 0.
	portName  string
	portProto uint8
}

// withNamedPort is the matcher of the named-port set of port name (and
// protocol proto, 0 any) on the endpoints m picks.
func (m *matcher) withNamedPort(name string, proto uint8) *matcher {
	n := *m
	n.portName, n.portProto = name, proto
	p := "any"
	if proto != 0 {
		p = strconv.Itoa(int(proto))
	}
	n.key = m.key + " namedPort(" + name + "/" + p + ")"
	return &n
}

func (m *matcher) matches(v *epView) bool {
	if m.none && !v.global {
		return false
	}
	if m.ns != nil && (v.global && m.nsAll || !m.ns.Evaluate(v.nsLabels)) {
		return false
	}
	if m.sa != nil && (m.saReq && v.saLabels == nil || !m.sa.Evaluate(v.saLabels)) {
		return false
	}
	return m.sel.Evaluate(v.labels)
}

type parseFunc func(string) (*selector.Selector, error)

// newMatcher builds a matcher from selector texts; nsSel and saSel are
// ignored when blank. saSel is a rule's serviceAccounts selector; see
// newPolicyMatcher for a policy's serviceAccountSelector.
func newMatcher(parse parseFunc, sel, nsSel, saSel string) (*matcher, error) {
	return newMatcherSA(parse, sel, nsSel, saSel, false)
}

// newMatcherSA is newMatcher; with policySA, saSel is a policy's
// serviceAccountSelector, where Calico rewrites all() to
// has(projectcalico.org/serviceaccount): it then selects only endpoints that
// have a service account. (A rule's serviceAccounts selector all() has no
// such rewrite and matches everything.)
func newMatcherSA(parse parseFunc, sel, nsSel, saSel string, policySA bool) (*matcher, error) {
	s, err := parse(sel)
	if err != nil {
		return nil, err
	}
	m := &matcher{sel: s, keys: s.LabelKeys()}
	key := s.String()
	if !isBlank(nsSel) {
		if strings.TrimSpace(nsSel) == "global()" {
			// Calico rewrites global() to !has(projectcalico.org/namespace):
			// only non-namespaced endpoints, and workload endpoints always
			// have a namespace.
			m.none = true
			key = joinKey(key, "namespaceSelector(global())")
		} else {
			ns, err := parse(nsSel)
			if err != nil {
				return nil, fmt.Errorf("namespaceSelector: %w", err)
			}
			m.ns = ns
			m.nsAll = ns.String() == "all()"
			key = joinKey(key, "namespaceSelector("+ns.String()+")")
		}
	}
	if !isBlank(saSel) {
		sa, err := parse(saSel)
		if err != nil {
			return nil, fmt.Errorf("serviceAccountSelector: %w", err)
		}
		m.sa = sa
		if policySA && sa.IsAll() {
			m.saReq = true
			key = joinKey(key, "has(serviceaccount)")
		} else {
			key = joinKey(key, "serviceAccountSelector("+sa.String()+")")
		}
	}
	m.key = key
	return m, nil
}

func joinKey(sel, cond string) string {
	if sel == "all()" {
		return cond
	}
	if strings.Contains(sel, "||") {
		sel = "(" + sel + ")"
	}
	return sel + " && " + cond
}

// scopeToNamespace confines sel to endpoints of namespace ns, as Calico does
// for NetworkPolicy selectors.
func scopeToNamespace(sel, ns string) string {
	nsExpr := labelNamespace + " == " + quoteLabelValue(ns)
	if isBlank(sel) {
		return nsExpr
	}
	return "(" + nsExpr + ") && (" + sel + ")"
}

// policyMatcher is the selector of a policy: ns is "" for a
// GlobalNetworkPolicy, else the NetworkPolicy's namespace.
func policyMatcher(parse parseFunc, ns string, spec *api.PolicySpec) (*matcher, error) {
	sel := spec.Selector
	// Calico appends the prefixed namespace or service account selector
	// to the policy's selector text and then replaces every "all()" in the
	// result, the policy's own selector included, by
	// has(projectcalico.org/namespace) (with a namespaceSelector, on a
	// GlobalNetworkPolicy) or has(projectcalico.org/serviceaccount).
	switch {
	case ns == "" && !isBlank(spec.NamespaceSelector):
		sel = strings.ReplaceAll(sel, "all()", "has("+labelNamespace+")")
	case !isBlank(spec.ServiceAccountSelector):
		sel = strings.ReplaceAll(sel, "all()", "has("+labelServiceAccount+")")
	}
	if ns != "" {
		return newMatcherSA(parse, scopeToNamespace(sel, ns), "", spec.ServiceAccountSelector, true)
	}
	return newMatcherSA(parse, sel, spec.NamespaceSelector, spec.ServiceAccountSelector, true)
}

// serviceAccountMatch turns a rule side's serviceAccounts into what Calico
// makes of it: names become projectcalico.org/serviceaccount in {names} on
// the endpoint's labels (ANDed with sel), and the selector is evaluated
// against the service account's labels. used reports whether it adds a
// condition at all (an empty serviceAccounts adds none, as in Calico).
func serviceAccountMatch(er *api.EntityRule) (sel, saSel string, used bool) {
	sel = er.Selector
	sa := er.ServiceAccounts
	if sa == nil {
		return sel, "", false
	}
	if len(sa.Names) > 0 {
		q := make([]string, len(sa.Names))
		for i, n := range sa.Names {
			q[i] = quoteLabelValue(n)
		}
		names := labelServiceAccount + " in {" + strings.Join(q, ", ") + "}"
		if isBlank(sel) {
			sel = names
		} else {
			sel = "(" + names + ") && (" + sel + ")"
		}
	}
	saSel = sa.Selector
	return sel, saSel, len(sa.Names) > 0 || !isBlank(saSel)
}

// sideMatchers returns the positive (selector) and negative (notSelector)
// matchers of one side of a rule, nil where the side has none.
func sideMatchers(parse parseFunc, er *api.EntityRule, ns string) (pos, neg *matcher, err error) {
	sel, saSel, hasSA := serviceAccountMatch(er)
	hasSel, hasNot, hasNS := !isBlank(er.Selector) || hasSA, !isBlank(er.NotSelector), !isBlank(er.NamespaceSelector)
	if hasSel || hasNot || hasNS {
		switch {
		case hasNS:
			pos, err = newMatcher(parse, sel, er.NamespaceSelector, saSel)
		case ns != "":
			pos, err = newMatcher(parse, scopeToNamespace(sel, ns), "", saSel)
		case hasSel:
			pos, err = newMatcher(parse, sel, "", saSel)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	if hasNot {
		if neg, err = newMatcher(parse, er.NotSelector, "", ""); err != nil {
			return nil, nil, err
		}
	}
	return pos, neg, nil
}

// ---- Policies ----

// polMeta is what ordering and direction need to know about a policy.
type polMeta struct {
	id      string  // chain ID
	order   float64 // +Inf when unset
	sortKey string  // name Felix compares: "name" (GNP) or "ns/name" (NP)
	tier    string  // its tier (see tiers.go)
	ingress bool
	egress  bool
}

func comparePolMeta(a, b *polMeta) int {
	if c := cmp.Compare(a.order, b.order); c != 0 {
		return c
	}
	if c := strings.Compare(a.sortKey, b.sortKey); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

func newPolMeta(id, sortKey string, spec *api.PolicySpec) polMeta {
	m := polMeta{id: id, sortKey: sortKey, order: math.Inf(1), tier: tierOf(spec)}
	if spec.Order != nil && !math.IsNaN(*spec.Order) {
		m.order = *spec.Order
	}
	m.ingress, m.egress = policyDirections(spec)
	return m
}

// policyDirections reads types, applying Calico's defaulting when none is
// recognised: Ingress, Egress if the policy only has egress rules, both if
// it has both.
func policyDirections(spec *api.PolicySpec) (ingress, egress bool) {
	for _, t := range spec.Types {
		switch {
		case strings.EqualFold(t, api.PolicyTypeIngress):
			ingress = true
		case strings.EqualFold(t, api.PolicyTypeEgress):
			egress = true
		}
	}
	if ingress || egress {
		return ingress, egress
	}
	switch {
	case len(spec.Egress) == 0:
		return true, false
	case len(spec.Ingress) == 0:
		return false, true
	default:
		return true, true
	}
}

// ---- Rules ----

// setSink records a selector used by a rule and returns its set ID.
type setSink func(m *matcher) string

var protocolNumbers = map[string]uint8{
	"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "sctp": 132, "udplite": 136,
}

const (
	protoICMP   = 1
	protoICMPv6 = 58
)

func protocolNumber(p *api.Protocol) (uint8, bool) {
	if p.Number != nil {
		return *p.Number, true
	}
	name := strings.TrimSpace(p.Name)
	if n, ok := protocolNumbers[strings.ToLower(name)]; ok {
		return n, true
	}
	// A number may also arrive as a string ("6").
	if n, err := strconv.ParseUint(name, 10, 8); err == nil {
		return uint8(n), true
	}
	return 0, false
}

func ruleAction(a string) (dataplane.Action, bool) {
	switch {
	case strings.EqualFold(a, api.ActionAllow):
		return dataplane.Allow, true
	case strings.EqualFold(a, api.ActionDeny):
		return dataplane.Deny, true
	case strings.EqualFold(a, api.ActionLog):
		return dataplane.Log, true
	case strings.EqualFold(a, api.ActionPass):
		return dataplane.Pass, true
	}
	return "", false
}

func icmpMatch(f *api.ICMPFields) (*dataplane.ICMPMatch, bool) {
	if f == nil || f.Type == nil {
		return nil, true
	}
	if *f.Type < 0 || *f.Type > 255 {
		return nil, false
	}
	m := &dataplane.ICMPMatch{Type: uint8(*f.Type)}
	if f.Code != nil {
		if *f.Code < 0 || *f.Code > 255 {
			return nil, false
		}
		c := uint8(*f.Code)
		m.Code = &c
	}
	return m, true
}

// portRanges splits ports into numeric ranges and port names (in order,
// without repeats).
func portRanges(ps []api.Port) (out []dataplane.PortRange, names []string) {
	for _, p := range ps {
		if p.PortName != "" {
			if !slices.Contains(names, p.PortName) {
				names = append(names, p.PortName)
			}
			continue
		}
		out = append(out, dataplane.PortRange{First: p.MinPort, Last: p.MaxPort})
	}
	return out, names
}

// ruleSide is one side of a rule before it is split by IP family.
type ruleSide struct {
	nets, notNets []netip.Prefix
	sets, notSets []string
	ports         []dataplane.PortRange
	notPorts      []dataplane.PortRange
	// portSets are the named-port sets of the ports list: the side
	// matches a numeric port OR any of them (see alternatives);
	// notPortSets those of notPorts.
	portSets, notPortSets []string
}

// alternatives expands the OR of a ports list that mixes numbers and
// names into disjoint matches: the numeric ports, then each named-port set
// excluding the numeric ports and the sets before it, so that a packet
// matches at most one of them (a Log rule logs once).
func (s *ruleSide) alternatives(m dataplane.Match) []dataplane.Match {
	if len(s.portSets) == 0 {
		return []dataplane.Match{m}
	}
	var out []dataplane.Match
	if len(s.ports) > 0 {
		out = append(out, m)
	}
	for i, id := range s.portSets {
		a := m
		a.Ports = nil
		a.NotPorts = slices.Concat(m.NotPorts, s.ports)
		a.PortSets = []string{id}
		a.NotPortSets = slices.Concat(m.NotPortSets, s.portSets[:i])
		if len(a.NotPorts) == 0 {
			a.NotPorts = nil
		}
		if len(a.NotPortSets) == 0 {
			a.NotPortSets = nil
		}
		out = append(out, a)
	}
	return out
}

// translateSide converts one side of a rule; proto is the rule's protocol
// (0: any), which named ports are resolved for.
func translateSide(parse parseFunc, er *api.EntityRule, ns string, proto uint8, sink setSink) (ruleSide, error) {
	var s ruleSide
	for _, n := range er.Nets {
		if p, ok := parsePrefixOrAddr(n); ok {
			s.nets = append(s.nets, p)
		}
	}
	if len(er.Nets) > 0 && len(s.nets) == 0 {
		return s, fmt.Errorf("no valid nets")
	}
	for _, n := range er.NotNets {
		if p, ok := parsePrefixOrAddr(n); ok {
			s.notNets = append(s.notNets, p)
		}
	}
	pos, neg, err := sideMatchers(parse, er, ns)
	if err != nil {
		return s, err
	}
	if pos != nil {
		s.sets = []string{sink(pos)}
	}
	if neg != nil {
		s.notSets = []string{sink(neg)}
	}
	var named, notNamed []string
	s.ports, named = portRanges(er.Ports)
	s.notPorts, notNamed = portRanges(er.NotPorts)
	if len(named)+len(notNamed) > 0 {
		// A named port resolves against the endpoints this side's
		// selector picks (Calico's rule scanner does the same, also for
		// notPorts: the rule only matches inside that selector anyway).
		base := pos
		if base == nil {
			if base, err = newMatcher(parse, "all()", "", ""); err != nil {
				return s, err
			}
		}
		for _, n := range named {
			s.portSets = append(s.portSets, sink(base.withNamedPort(n, proto)))
		}
		for _, n := range notNamed {
			s.notPortSets = append(s.notPortSets, sink(base.withNamedPort(n, proto)))
		}
	}
	return s, nil
}

func filterFamily(ps []netip.Prefix, v int) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if (v == 4) == p.Addr().Is4() {
			out = append(out, p)
		}
	}
	return out
}

func (s *ruleSide) forFamily(v int) (dataplane.Match, bool) {
	m := dataplane.Match{
		Sets: s.sets, NotSets: s.notSets, Ports: s.ports, NotPorts: s.notPorts, NotPortSets: s.notPortSets,
	}
	if v != 0 {
		m.Nets = filterFamily(s.nets, v)
		if len(s.nets) > 0 && len(m.Nets) == 0 {
			return m, false
		}
		m.NotNets = filterFamily(s.notNets, v)
	}
	return m, true
}

func (s *ruleSide) hasNets() bool { return len(s.nets) > 0 || len(s.notNets) > 0 }

// translateRules converts Calico rules of a policy or profile in namespace ns
// ("" for global ones) into dataplane rules, reporting the selectors they use
// to sink. Rules that can never match are left out (see doc.go).
func translateRules(parse parseFunc, rules []api.Rule, ns string, sink setSink) []dataplane.Rule {
	var out []dataplane.Rule
	for i := range rules {
		out = appendRule(out, parse, &rules[i], ns, sink)
	}
	return out
}

func appendRule(out []dataplane.Rule, parse parseFunc, r *api.Rule, ns string, sink setSink) []dataplane.Rule {
	// There are no Kubernetes Services here, so a services match matches
	// nothing.
	if r.Source.Services != nil || r.Destination.Services != nil {
		return out
	}
	action, ok := ruleAction(r.Action)
	if !ok {
		return out
	}
	if r.HTTP != nil {
		// There is no application layer proxy to see the request, so the
		// rule is read to never admit more than written: an Allow (or Log)
		// rule matches nothing, a Deny rule denies its whole L3/L4 match,
		// and a Pass rule denies it too, since passing every request to the
		// next tier or none could each admit what the policy denies.
		switch action {
		case dataplane.Deny:
		case dataplane.Pass:
			action = dataplane.Deny
		default:
			return out
		}
	}
	v4, v6 := true, true
	if r.IPVersion != nil {
		switch *r.IPVersion {
		case 4:
			v6 = false
		case 6:
			v4 = false
		default:
			return out
		}
	}
	base := dataplane.Rule{Action: action}
	if r.Protocol != nil {
		n, ok := protocolNumber(r.Protocol)
		if !ok {
			return out
		}
		base.Protocol = &n
		switch n {
		case protoICMP:
			v6 = false
		case protoICMPv6:
			v4 = false
		}
	}
	if r.NotProtocol != nil {
		n, ok := protocolNumber(r.NotProtocol)
		if !ok {
			return out
		}
		base.NotProtocol = &n
	}
	if base.ICMP, ok = icmpMatch(r.ICMP); !ok {
		return out
	}
	if base.NotICMP, ok = icmpMatch(r.NotICMP); !ok {
		return out
	}
	// Selectors are recorded only for rules that survive, so that a set is
	// never referenced by nothing: collect them first, hand them over last.
	var pending []*matcher
	collect := func(m *matcher) string { pending = append(pending, m); return setIDFor(m.key) }
	var proto uint8
	if base.Protocol != nil {
		proto = *base.Protocol
	}
	src, err := translateSide(parse, &r.Source, ns, proto, collect)
	if err != nil {
		return out
	}
	dst, err := translateSide(parse, &r.Destination, ns, proto, collect)
	if err != nil {
		return out
	}
	split := src.hasNets() || dst.hasNets() || base.ICMP != nil || base.NotICMP != nil
	var families []int
	switch {
	case !v4 && !v6:
		return out
	case v4 && v6 && !split:
		families = []int{0}
	case v4 && v6:
		families = []int{4, 6}
	case v4:
		families = []int{4}
	default:
		families = []int{6}
	}
	emitted := false
	for _, v := range families {
		rule := base
		rule.IPVersion = v
		sm, okS := src.forFamily(v)
		dm, okD := dst.forFamily(v)
		if !okS || !okD {
			continue
		}
		for _, sa := range src.alternatives(sm) {
			for _, da := range dst.alternatives(dm) {
				rule.Src, rule.Dst = sa, da
				out = append(out, rule)
			}
		}
		emitted = true
	}
	if emitted {
		for _, m := range pending {
			sink(m)
		}
	}
	return out
}

// translateChain builds the chain of a policy (only the directions it
// applies in) or a profile (both).
func translateChain(parse parseFunc, id string, ingress, egress []api.Rule, ns string, useIn, useEg bool, sink setSink) dataplane.PolicyChain {
	c := dataplane.PolicyChain{ID: id}
	if useIn {
		c.Ingress = translateRules(parse, ingress, ns, sink)
	}
	if useEg {
		c.Egress = translateRules(parse, egress, ns, sink)
	}
	return c
}

// ---- Endpoints ----

// buildEndpoint assembles a local endpoint from its policies (sorted by
// comparePolMeta) and the chain IDs of its existing profiles.
func buildEndpoint(w *api.WorkloadEndpoint, addrs []netip.Prefix, pols []*polMeta, profiles []string) dataplane.Endpoint {
	e := dataplane.Endpoint{
		ID:       wepID(w),
		Iface:    w.Spec.InterfaceName,
		MAC:      w.Spec.MAC,
		Addrs:    addrs,
		Profiles: profiles,
	}
	for _, p := range pols {
		if p.ingress {
			e.IngressPolicies = append(e.IngressPolicies, p.id)
		}
		if p.egress {
			e.EgressPolicies = append(e.EgressPolicies, p.id)
		}
	}
	return e
}

// endpointProfiles lists the chain IDs of the endpoint's profiles that
// exist, in order, without repeats.
func endpointProfiles(names []string, exists func(string) bool) []string {
	var out []string
	for i, n := range names {
		if !exists(n) || slices.Contains(names[:i], n) {
			continue
		}
		out = append(out, profileChainID(n))
	}
	return out
}

func compareEndpoint(a, b *dataplane.Endpoint) int {
	if c := strings.Compare(a.Iface, b.Iface); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}
