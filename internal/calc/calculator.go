package calc

import (
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/selector"
)

// Calculator is the incremental form of Compute: it is fed one change at a
// time and keeps what it worked out (endpoint labels, which endpoints each
// selector matches, translated chains, sorted set members), so that a change
// costs in proportion to what it touches. Desired() always equals Compute of
// a Snapshot holding the same state.
//
// Selectors are matched through a shapeIndex (see shapes.go): a selector is
// evaluated once per class of endpoints that agree on the labels it reads,
// so a label change on one endpoint costs a lookup per selector shape that
// reads a changed key, and edits only the sets it enters or leaves. A policy
// change re-evaluates that policy's selector against classes of local
// endpoints only. Sorted outputs are kept and edited (binary search,
// copy-on-write), not re-sorted.
//
// Calculator is not safe for concurrent use. Objects passed in are not
// retained: the fields it needs are copied.
type Calculator struct {
	node    string
	version uint64
	dirty   bool

	weps     map[string]*wepEntry
	local    map[*wepEntry]struct{} // programmable local endpoints
	profiles map[string]*profileEntry
	policies map[string]*policyEntry // by chain ID
	sets     map[string]*setEntry    // by set ID, every set some chain uses
	// setIdx matches set selectors against every endpoint; polIdx matches
	// policy selectors against programmable local endpoints.
	setIdx *shapeIndex[*setEntry]
	polIdx *shapeIndex[*policyEntry]

	netsets map[string]*wepEntry // network sets, by key (see netsets.go)
	tiers   map[string]tierInfo  // Tier resources (see tiers.go)

	pools   map[string]*api.IPPool
	blocks  map[netip.Prefix]Block
	nodes   map[string]*api.Node
	felix   *api.FelixConfigurationSpec
	hostMTU int
	cpPorts []dataplane.ProtoPort // extra control-plane ports (SetControlPlanePorts)

	// Output caches. A Desired handed out is never modified afterwards: a
	// later Desired shares the parts that did not change and gets new slices
	// for the parts that did.
	last            *dataplane.Desired
	endpointsDirty  bool
	orderDirty      bool        // order needs a full rebuild
	order           []*wepEntry // programmable endpoints by interface, then ID
	orderOps        []orderOp   // endpoints added to or removed from order since
	chainsDirty     bool
	chainOrderDirty bool          // chainOrder needs a full rebuild
	chainOrder      []*chainEntry // active chains by ID
	chainToggles    []*chainEntry // chains that turned active or inactive since
	setsDirty       bool
	setOrderDirty   bool
	setOrder        []*setEntry // active sets by ID
	setToggles      []*setEntry
	routesDirty     bool
	natDirty        bool
	hostDirty       bool
	// hostPortsDirty: a local endpoint with published ports came, went or
	// changed; withPorts holds the programmable ones that have some.
	hostPortsDirty bool
	withPorts      map[*wepEntry]struct{}
	cpDirty        bool
	// hosts: host endpoints and what they read (calculator_hosts.go).
	hosts hostState
	// labels holds the label maps of workload endpoints (e.w.Labels and
	// e.view's maps), shared between endpoints with equal labels.
	labels labelPool
}

// NewCalculator returns an empty Calculator for host node.
func NewCalculator(node string) *Calculator {
	c := &Calculator{
		node:      node,
		dirty:     true,
		weps:      map[string]*wepEntry{},
		local:     map[*wepEntry]struct{}{},
		profiles:  map[string]*profileEntry{},
		policies:  map[string]*policyEntry{},
		sets:      map[string]*setEntry{},
		pools:     map[string]*api.IPPool{},
		blocks:    map[netip.Prefix]Block{},
		nodes:     map[string]*api.Node{},
		withPorts: map[*wepEntry]struct{}{},
		labels:    newLabelPool(),

		endpointsDirty: true, orderDirty: true, chainsDirty: true, chainOrderDirty: true,
		setsDirty: true, setOrderDirty: true, routesDirty: true, natDirty: true, hostDirty: true, cpDirty: true,
	}
	c.setIdx = newShapeIndex(func(s *setEntry, e *wepEntry, match bool) {
		if match {
			c.join(s, e)
		} else {
			c.leave(s, e)
		}
	})
	c.polIdx = newShapeIndex(c.setPolicyMatch)
	return c
}

// Version counts the changes that altered the state; it only grows.
func (c *Calculator) Version() uint64 { return c.version }

// Dirty reports whether the state changed since the last Desired().
func (c *Calculator) Dirty() bool { return c.dirty }

func (c *Calculator) touch() {
	c.dirty = true
	c.hosts.dirty = c.hosts.dirty || len(c.hosts.heps) > 0
	c.version++
}

// ---- entries ----

type wepEntry struct {
	id string                // namespace/name
	w  *api.WorkloadEndpoint // copy of the fields calc reads
	// sortIface is the interface name e is filed under in Calculator.order:
	// e.w may change before the order is brought up to date.
	sortIface string
	view      epView
	addrs     []netip.Prefix
	prog      bool
	sets      map[*setEntry]struct{}
	pols      map[*policyEntry]struct{}
	out       dataplane.Endpoint
	outStale  bool
}

// chainEntry is what policies and profiles share: a translated chain, the
// sets it uses, and whether some local endpoint uses it (active).
type chainEntry struct {
	chain  dataplane.PolicyChain
	sets   []*setEntry
	active bool
}

type policyEntry struct {
	chainEntry
	meta    polMeta
	ns      string
	m       *matcher // nil: selector does not parse, selects nothing
	matched map[*wepEntry]struct{}
}

type profileEntry struct {
	chainEntry
	name      string
	exists    bool
	labels    map[string]string
	users     map[*wepEntry]struct{} // every endpoint naming it
	progUsers int                    // programmable ones
}

type setEntry struct {
	id      string
	m       *matcher
	owners  int // chains using it
	active  int // active chains using it
	eps     map[*wepEntry]struct{}
	refs    map[netip.Prefix]int
	members []netip.Prefix // sorted; valid unless rebuild
	pending []memberOp     // changes since members was built
	rebuild bool
	// Named-port sets (m.portName set): what each endpoint contributes,
	// the reference count of each member, and the sorted members (valid
	// unless portsStale).
	epPorts     map[*wepEntry][]dataplane.AddrProtoPort
	portRefs    map[dataplane.AddrProtoPort]int
	portMembers []dataplane.AddrProtoPort
	portsStale  bool
}

// setPorts replaces what endpoint e contributes to named-port set s with
// now (nil: nothing), and reports whether that changed anything.
func (s *setEntry) setPorts(e *wepEntry, now []dataplane.AddrProtoPort) bool {
	old := s.epPorts[e]
	if slices.Equal(old, now) {
		return false
	}
	for _, p := range old {
		if s.portRefs[p]--; s.portRefs[p] <= 0 {
			delete(s.portRefs, p)
		}
	}
	for _, p := range now {
		s.portRefs[p]++
	}
	if now == nil {
		delete(s.epPorts, e)
	} else {
		s.epPorts[e] = now
	}
	s.portsStale = true
	return true
}

// sortedPortMembers brings portMembers up to date (a new slice each time
// it changed: slices handed out are never modified).
func (s *setEntry) sortedPortMembers() []dataplane.AddrProtoPort {
	if !s.portsStale {
		return s.portMembers
	}
	var m []dataplane.AddrProtoPort
	for p := range s.portRefs {
		m = append(m, p)
	}
	slices.SortFunc(m, dataplane.CompareAddrProtoPort)
	s.portMembers, s.portsStale = m, false
	return m
}

type orderOp struct {
	e         *wepEntry
	iface, id string // its sort key when the op was recorded
	add       bool
}

func (c *Calculator) noteOrder(e *wepEntry, add bool) {
	c.endpointsDirty = true
	if c.orderDirty {
		return
	}
	c.orderOps = append(c.orderOps, orderOp{e: e, iface: e.w.Spec.InterfaceName, id: e.id, add: add})
	c.orderDirty = len(c.orderOps) > maxToggles
}

func compareEPKey(e *wepEntry, iface, id string) int {
	if x := strings.Compare(e.sortIface, iface); x != 0 {
		return x
	}
	return strings.Compare(e.id, id)
}

// applyOrderOps edits order in place; it is internal (never handed out).
func applyOrderOps(order []*wepEntry, ops []orderOp) []*wepEntry {
	for _, op := range ops {
		i, found := slices.BinarySearchFunc(order, op, func(x *wepEntry, op orderOp) int { return compareEPKey(x, op.iface, op.id) })
		switch {
		case op.add && !found:
			op.e.sortIface = op.iface
			order = slices.Insert(order, i, op.e)
		case op.add:
			op.e.sortIface = op.iface
			order[i] = op.e
		case found && order[i] == op.e:
			order = slices.Delete(order, i, i+1)
		}
	}
	return order
}

type memberOp struct {
	p   netip.Prefix
	add bool
}

// maxPendingOps bounds the copy-on-write edits applied to a set's sorted
// members; beyond it a full rebuild is cheaper.
const maxPendingOps = 16

func (s *setEntry) addAddr(p netip.Prefix) {
	s.refs[p]++
	if s.refs[p] == 1 {
		s.note(memberOp{p, true})
	}
}

func (s *setEntry) removeAddr(p netip.Prefix) {
	s.refs[p]--
	if s.refs[p] <= 0 {
		delete(s.refs, p)
		s.note(memberOp{p, false})
	}
}

func (s *setEntry) note(op memberOp) {
	if s.rebuild {
		return
	}
	if s.active == 0 || len(s.pending) >= maxPendingOps {
		s.rebuild, s.pending = true, nil
		return
	}
	s.pending = append(s.pending, op)
}

// sortedMembers brings members up to date without touching slices handed
// out before (every edit makes a new slice).
func (s *setEntry) sortedMembers() []netip.Prefix {
	if s.rebuild {
		var m []netip.Prefix
		for p := range s.refs {
			m = append(m, p)
		}
		slices.SortFunc(m, comparePrefix)
		s.members, s.rebuild = m, false
		return m
	}
	for _, op := range s.pending {
		i, found := slices.BinarySearchFunc(s.members, op.p, comparePrefix)
		switch {
		case op.add && !found:
			s.members = slices.Insert(slices.Clip(s.members), i, op.p)
		case !op.add && found:
			m := slices.Delete(slices.Clone(s.members), i, i+1)
			if len(m) == 0 {
				m = nil
			}
			s.members = m
		}
	}
	s.pending = nil
	return s.members
}

// ---- sets ----

func (c *Calculator) refSet(m *matcher) *setEntry {
	id := setIDFor(m.key)
	s := c.sets[id]
	if s == nil {
		s = &setEntry{id: id, m: m, eps: map[*wepEntry]struct{}{}, refs: map[netip.Prefix]int{}, rebuild: true}
		if m.portName != "" {
			s.epPorts, s.portRefs = map[*wepEntry][]dataplane.AddrProtoPort{}, map[dataplane.AddrProtoPort]int{}
		}
		c.sets[id] = s
		c.setIdx.addMatcher(s, m)
	}
	s.owners++
	return s
}

func (c *Calculator) unrefSet(s *setEntry) {
	s.owners--
	if s.owners > 0 {
		return
	}
	c.setIdx.removeMatcher(s)
	delete(c.sets, s.id)
}

func (c *Calculator) join(s *setEntry, e *wepEntry) {
	s.eps[e] = struct{}{}
	e.sets[s] = struct{}{}
	for _, a := range e.addrs {
		s.addAddr(a)
	}
	if s.m.portName != "" {
		s.setPorts(e, portMembers(s.m, &e.view, e.addrs))
	}
	c.setChanged(s)
}

func (c *Calculator) leave(s *setEntry, e *wepEntry) {
	delete(s.eps, e)
	delete(e.sets, s)
	for _, a := range e.addrs {
		s.removeAddr(a)
	}
	if s.m.portName != "" {
		s.setPorts(e, nil)
	}
	c.setChanged(s)
}

func (c *Calculator) setChanged(s *setEntry) {
	if s.active > 0 {
		c.setsDirty = true
	}
}

// ---- chains ----

// setChain installs a chain's new translation and the sets it uses.
func (c *Calculator) setChain(ce *chainEntry, chain dataplane.PolicyChain, used map[string]*matcher) {
	var sets []*setEntry
	for _, id := range sortedKeys(used) {
		sets = append(sets, c.refSet(used[id]))
	}
	if ce.active {
		for _, s := range sets {
			c.activateSet(s, +1)
		}
		for _, s := range ce.sets {
			c.activateSet(s, -1)
		}
	}
	for _, s := range ce.sets {
		c.unrefSet(s)
	}
	ce.sets = sets
	if !reflect.DeepEqual(ce.chain, chain) {
		ce.chain = chain
		if ce.active {
			c.chainsDirty = true
		}
	}
}

func (c *Calculator) activateSet(s *setEntry, d int) {
	s.active += d
	if (d > 0 && s.active == 1) || (d < 0 && s.active == 0) {
		c.setsDirty = true
		if !c.setOrderDirty {
			c.setToggles = append(c.setToggles, s)
			c.setOrderDirty = len(c.setToggles) > maxToggles
		}
	}
}

// setActive records whether any local endpoint uses the chain.
func (c *Calculator) setActive(ce *chainEntry, active bool) {
	if ce.active == active {
		return
	}
	ce.active = active
	d := -1
	if active {
		d = +1
	}
	for _, s := range ce.sets {
		c.activateSet(s, d)
	}
	c.chainsDirty = true
	if !c.chainOrderDirty {
		c.chainToggles = append(c.chainToggles, ce)
		c.chainOrderDirty = len(c.chainToggles) > maxToggles
	}
}

// maxToggles bounds the binary-search edits of chainOrder and setOrder
// between two Desired() calls; beyond it one sort is cheaper.
const maxToggles = 64

// applyToggles brings a sorted-by-ID order up to date with the entries that
// turned active or inactive.
func applyToggles[T comparable](order []T, toggles []T, id func(T) string, active func(T) bool) []T {
	for _, t := range toggles {
		i, found := slices.BinarySearchFunc(order, id(t), func(x T, k string) int { return strings.Compare(id(x), k) })
		switch {
		case active(t) && found:
			order[i] = t // a new entry under the same ID replaces the old one
		case active(t):
			order = slices.Insert(order, i, t)
		case found && order[i] == t:
			order = slices.Delete(order, i, i+1)
		}
	}
	return order
}

func newSink() (setSink, map[string]*matcher) {
	used := map[string]*matcher{}
	return func(m *matcher) string {
		id := setIDFor(m.key)
		used[id] = m
		return id
	}, used
}

// ---- workload endpoints ----

// relevantWEP copies the fields of a workload endpoint that calc reads.
// Labels are w's own map: the caller replaces them with a pooled copy
// before keeping the result. Strings that repeat across endpoints are
// interned.
func relevantWEP(w *api.WorkloadEndpoint) *api.WorkloadEndpoint {
	c := &api.WorkloadEndpoint{}
	c.Name, c.Namespace = w.Name, intern(w.Namespace)
	c.Labels = w.Labels
	profiles := make([]string, len(w.Spec.Profiles))
	for i, p := range w.Spec.Profiles {
		profiles[i] = intern(p)
	}
	c.Spec = api.WorkloadEndpointSpec{
		Orchestrator:       intern(w.Spec.Orchestrator),
		Node:               intern(w.Spec.Node),
		ServiceAccountName: intern(w.Spec.ServiceAccountName),
		IPNetworks:         slices.Clone(w.Spec.IPNetworks),
		Profiles:           profiles,
		InterfaceName:      w.Spec.InterfaceName,
		MAC:                w.Spec.MAC,
		Ports:              normalPorts(w.Spec.Ports),
	}
	return c
}

// newView is newEPView with the label maps taken from the pool; dropView
// gives them back.
func (c *Calculator) newView(w *api.WorkloadEndpoint, labels map[string]string) epView {
	v := newEPView(w, labels)
	v.labels = c.labels.get(v.labels)
	v.nsLabels = c.labels.get(v.nsLabels)
	v.saLabels = c.labels.get(v.saLabels)
	return v
}

func (c *Calculator) dropView(v epView) {
	c.labels.put(v.labels)
	c.labels.put(v.nsLabels)
	c.labels.put(v.saLabels)
}

func wepEqual(a, b *api.WorkloadEndpoint) bool {
	return a.Name == b.Name && a.Namespace == b.Namespace && maps.Equal(a.Labels, b.Labels) &&
		a.Spec.Orchestrator == b.Spec.Orchestrator && a.Spec.Node == b.Spec.Node &&
		a.Spec.ServiceAccountName == b.Spec.ServiceAccountName &&
		slices.Equal(a.Spec.IPNetworks, b.Spec.IPNetworks) && slices.Equal(a.Spec.Profiles, b.Spec.Profiles) &&
		a.Spec.InterfaceName == b.Spec.InterfaceName && a.Spec.MAC == b.Spec.MAC &&
		slices.Equal(a.Spec.Ports, b.Spec.Ports)
}

func (c *Calculator) lookupProfile(name string) (map[string]string, bool) {
	pe := c.profiles[name]
	if pe == nil || !pe.exists {
		return nil, false
	}
	return pe.labels, true
}

func (c *Calculator) profileExists(name string) bool {
	pe := c.profiles[name]
	return pe != nil && pe.exists
}

func (c *Calculator) profileEntry(name string) *profileEntry {
	pe := c.profiles[name]
	if pe == nil {
		pe = &profileEntry{name: name, users: map[*wepEntry]struct{}{}}
		pe.chain.ID = profileChainID(name)
		c.profiles[name] = pe
	}
	return pe
}

func (c *Calculator) maybeDropProfile(pe *profileEntry) {
	if !pe.exists && len(pe.users) == 0 {
		delete(c.profiles, pe.name)
	}
}

func distinct(names []string) []string {
	var out []string
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// remoteChanged notes that a remote endpoint's addresses or host changed:
// that only matters to routes while VXLAN routes borrowed addresses.
func (c *Calculator) remoteChanged() {
	if c.last == nil || c.last.VXLAN != nil || c.last.VXLANV6 != nil {
		c.routesDirty = true
	}
}

// UpsertWorkloadEndpoint adds or replaces a workload endpoint (any host).
func (c *Calculator) UpsertWorkloadEndpoint(w *api.WorkloadEndpoint) {
	nw := relevantWEP(w)
	id := wepID(nw)
	e := c.weps[id]
	if e != nil && wepEqual(e.w, nw) {
		return
	}
	c.touch()
	nw.Labels = c.labels.get(nw.Labels)
	if e == nil {
		e = &wepEntry{id: id, w: nw, sets: map[*setEntry]struct{}{}, pols: map[*policyEntry]struct{}{}}
		c.weps[id] = e
		for _, n := range distinct(nw.Spec.Profiles) {
			c.profileEntry(n).users[e] = struct{}{}
		}
		e.addrs = parseNets(nw.Spec.IPNetworks)
		e.view = c.newView(nw, endpointLabels(nw, c.lookupProfile))
		c.setIdx.addEndpoint(e)
		c.attachLocal(e)
		c.remoteChanged()
		return
	}

	old := e.w
	structural := old.Spec.Node != nw.Spec.Node || old.Spec.InterfaceName != nw.Spec.InterfaceName ||
		!slices.Equal(old.Spec.Profiles, nw.Spec.Profiles)
	if structural {
		c.detachLocal(e)
	}
	e.w = nw
	if !slices.Equal(old.Spec.Profiles, nw.Spec.Profiles) {
		for _, n := range distinct(old.Spec.Profiles) {
			pe := c.profiles[n]
			delete(pe.users, e)
			c.maybeDropProfile(pe)
		}
		for _, n := range distinct(nw.Spec.Profiles) {
			c.profileEntry(n).users[e] = struct{}{}
		}
	}
	if addrs := parseNets(nw.Spec.IPNetworks); !slices.Equal(addrs, e.addrs) {
		for s := range e.sets {
			for _, a := range e.addrs {
				s.removeAddr(a)
			}
			for _, a := range addrs {
				s.addAddr(a)
			}
			c.setChanged(s)
		}
		e.addrs = addrs
		c.remoteChanged()
		if e.prog {
			c.routesDirty = true
		}
	}
	if old.Spec.Node != nw.Spec.Node {
		c.remoteChanged()
	}
	c.relabel(e, old.Spec.ServiceAccountName != nw.Spec.ServiceAccountName)
	// Named-port sets the endpoint is in follow its ports and addresses
	// (joins and leaves above already used the new ones).
	for s := range e.sets {
		if s.m.portName != "" && s.setPorts(e, portMembers(s.m, &e.view, e.addrs)) {
			c.setChanged(s)
		}
	}
	if structural {
		c.attachLocal(e)
	}
	c.labels.put(old.Labels)
	if e.prog {
		e.outStale, c.endpointsDirty = true, true
	}
	if (len(old.Spec.Ports) > 0 || len(nw.Spec.Ports) > 0) && (old.Spec.Node == c.node || nw.Spec.Node == c.node) {
		c.hostPortsDirty = true
		if e.prog && len(nw.Spec.Ports) > 0 {
			c.withPorts[e] = struct{}{}
		} else {
			delete(c.withPorts, e)
		}
	}
}

// DeleteWorkloadEndpoint removes a workload endpoint; deleting one that is
// not there is a no-op.
func (c *Calculator) DeleteWorkloadEndpoint(namespace, name string) {
	e := c.weps[namespace+"/"+name]
	if e == nil {
		return
	}
	c.touch()
	c.detachLocal(e)
	c.setIdx.removeEndpoint(e)
	for _, n := range distinct(e.w.Spec.Profiles) {
		pe := c.profiles[n]
		delete(pe.users, e)
		c.maybeDropProfile(pe)
	}
	delete(c.weps, namespace+"/"+name)
	c.labels.put(e.w.Labels)
	c.dropView(e.view)
	c.remoteChanged()
}

// relabel recomputes an endpoint's labels and re-evaluates the selectors
// that depend on a label that changed.
func (c *Calculator) relabel(e *wepEntry, saChanged bool) {
	labels := endpointLabels(e.w, c.lookupProfile)
	var changed []string
	for k, v := range labels {
		if ov, ok := e.view.labels[k]; !ok || ov != v {
			changed = append(changed, k)
		}
	}
	for k := range e.view.labels {
		if _, ok := labels[k]; !ok {
			changed = append(changed, k)
		}
	}
	old := e.view
	e.view = c.newView(e.w, labels)
	c.dropView(old)
	if len(changed) == 0 && !saChanged {
		return
	}
	c.setIdx.updateEndpoint(e, changed, saChanged)
	if e.prog {
		c.polIdx.updateEndpoint(e, changed, saChanged)
	}
}

func (c *Calculator) setPolicyMatch(p *policyEntry, e *wepEntry, match bool) {
	if _, had := p.matched[e]; had == match {
		return
	}
	if match {
		p.matched[e] = struct{}{}
		e.pols[p] = struct{}{}
	} else {
		delete(p.matched, e)
		delete(e.pols, p)
	}
	e.outStale, c.endpointsDirty = true, true
	c.setActive(&p.chainEntry, len(p.matched) > 0)
}

// attachLocal makes a programmable local endpoint take part in policies and
// profiles.
func (c *Calculator) attachLocal(e *wepEntry) {
	if !programmable(e.w, c.node) {
		return
	}
	e.prog = true
	c.local[e] = struct{}{}
	if len(e.w.Spec.Ports) > 0 {
		c.withPorts[e] = struct{}{}
		c.hostPortsDirty = true
	}
	e.outStale = true
	c.noteOrder(e, true)
	c.routesDirty = true
	c.polIdx.addEndpoint(e)
	for _, n := range distinct(e.w.Spec.Profiles) {
		pe := c.profiles[n]
		pe.progUsers++
		c.setActive(&pe.chainEntry, pe.exists && pe.progUsers > 0)
	}
}

func (c *Calculator) detachLocal(e *wepEntry) {
	if !e.prog {
		return
	}
	e.prog = false
	delete(c.local, e)
	if _, ok := c.withPorts[e]; ok {
		delete(c.withPorts, e)
		c.hostPortsDirty = true
	}
	c.noteOrder(e, false)
	c.routesDirty = true
	c.polIdx.removeEndpoint(e)
	for _, n := range distinct(e.w.Spec.Profiles) {
		pe := c.profiles[n]
		pe.progUsers--
		c.setActive(&pe.chainEntry, pe.exists && pe.progUsers > 0)
	}
}

// ---- profiles ----

// UpsertProfile adds or replaces a profile.
func (c *Calculator) UpsertProfile(p *api.Profile) {
	c.recordProfile(p)
	pe := c.profileEntry(p.Name)
	sink, used := newSink()
	chain := translateChain(selector.Parse, pe.chain.ID, p.Spec.Ingress, p.Spec.Egress, "", true, true, sink)
	labelsChanged := !pe.exists || !maps.Equal(pe.labels, p.Spec.LabelsToApply)
	if pe.exists && !labelsChanged && reflect.DeepEqual(pe.chain, chain) && sameSets(pe.sets, used) {
		return
	}
	c.touch()
	created := !pe.exists
	pe.exists = true
	pe.labels = maps.Clone(p.Spec.LabelsToApply)
	c.setChain(&pe.chainEntry, chain, used)
	c.profileUsersChanged(pe, created, labelsChanged)
}

// DeleteProfile removes a profile; its endpoints lose its labels and rules.
func (c *Calculator) DeleteProfile(name string) {
	hostForget(c, c.hosts.profiles, name)
	pe := c.profiles[name]
	if pe == nil || !pe.exists {
		return
	}
	c.touch()
	pe.exists = false
	hadLabels := len(pe.labels) > 0
	pe.labels = nil
	c.setChain(&pe.chainEntry, dataplane.PolicyChain{ID: pe.chain.ID}, nil)
	c.profileUsersChanged(pe, true, hadLabels)
	c.maybeDropProfile(pe)
}

// profileUsersChanged follows a profile appearing, disappearing or changing
// its labels through to the endpoints naming it.
func (c *Calculator) profileUsersChanged(pe *profileEntry, existenceChanged, labelsChanged bool) {
	if existenceChanged {
		for e := range pe.users {
			if e.prog {
				e.outStale, c.endpointsDirty = true, true
			}
		}
	}
	c.setActive(&pe.chainEntry, pe.exists && pe.progUsers > 0)
	if labelsChanged {
		for e := range pe.users {
			c.relabel(e, false)
		}
	}
}

func sameSets(have []*setEntry, want map[string]*matcher) bool {
	if len(have) != len(want) {
		return false
	}
	for _, s := range have {
		if _, ok := want[s.id]; !ok {
			return false
		}
	}
	return true
}

// ---- policies ----

// UpsertGlobalNetworkPolicy adds or replaces a GlobalNetworkPolicy.
func (c *Calculator) UpsertGlobalNetworkPolicy(p *api.GlobalNetworkPolicy) {
	c.recordGNP(p)
	c.upsertPolicy(gnpChainID(p.Name), "", p.Name, &p.Spec)
}

// DeleteGlobalNetworkPolicy removes a GlobalNetworkPolicy.
func (c *Calculator) DeleteGlobalNetworkPolicy(name string) {
	hostForget(c, c.hosts.gnps, name)
	c.deletePolicy(gnpChainID(name))
}

// UpsertNetworkPolicy adds or replaces a NetworkPolicy.
func (c *Calculator) UpsertNetworkPolicy(p *api.NetworkPolicy) {
	c.upsertPolicy(npChainID(p.Namespace, p.Name), p.Namespace, p.Namespace+"/"+p.Name, &p.Spec)
}

// DeleteNetworkPolicy removes a NetworkPolicy.
func (c *Calculator) DeleteNetworkPolicy(namespace, name string) {
	c.deletePolicy(npChainID(namespace, name))
}

func matcherKey(m *matcher) (string, bool) {
	if m == nil {
		return "", false
	}
	return m.key, true
}

func (c *Calculator) upsertPolicy(id, ns, sortKey string, spec *api.PolicySpec) {
	meta := newPolMeta(id, sortKey, spec)
	m, err := policyMatcher(selector.Parse, ns, spec)
	if err != nil || hostOnlyPolicy(spec) {
		m = nil // a pre-DNAT or untracked policy selects host endpoints only
	}
	sink, used := newSink()
	chain := translateChain(selector.Parse, id, spec.Ingress, spec.Egress, ns, meta.ingress, meta.egress, sink)

	pe := c.policies[id]
	isNew := pe == nil
	if !isNew {
		ok, oOK := matcherKey(pe.m)
		nk, nOK := matcherKey(m)
		if pe.meta == meta && oOK == nOK && ok == nk && reflect.DeepEqual(pe.chain, chain) && sameSets(pe.sets, used) {
			return
		}
	}
	c.touch()
	if isNew {
		pe = &policyEntry{ns: ns, matched: map[*wepEntry]struct{}{}}
		pe.chain.ID = id
		c.policies[id] = pe
	}
	metaChanged := pe.meta != meta
	pe.meta = meta
	c.setChain(&pe.chainEntry, chain, used)

	oldKey, oldOK := matcherKey(pe.m)
	newKey, newOK := matcherKey(m)
	if isNew || oldOK != newOK || oldKey != newKey {
		// Drop the old selector's matches and add the new one's; an endpoint
		// in both is reported out and back in, which nets to no change.
		c.polIdx.removeMatcher(pe)
		pe.m = m
		if m != nil {
			c.polIdx.addMatcher(pe, m)
		}
	}
	if metaChanged {
		for e := range pe.matched {
			e.outStale, c.endpointsDirty = true, true
		}
	}
}

func (c *Calculator) deletePolicy(id string) {
	pe := c.policies[id]
	if pe == nil {
		return
	}
	c.touch()
	c.polIdx.removeMatcher(pe)
	c.setChain(&pe.chainEntry, dataplane.PolicyChain{ID: id}, nil)
	delete(c.policies, id)
}

// ---- pools, blocks, nodes, Felix ----

func relevantPool(p *api.IPPool) *api.IPPool {
	c := &api.IPPool{}
	c.Name = p.Name
	c.Spec = api.IPPoolSpec{CIDR: p.Spec.CIDR, VXLANMode: p.Spec.VXLANMode, NATOutgoing: p.Spec.NATOutgoing, Disabled: p.Spec.Disabled}
	return c
}

// UpsertIPPool adds or replaces an IP pool.
func (c *Calculator) UpsertIPPool(p *api.IPPool) {
	np := relevantPool(p)
	if old := c.pools[np.Name]; old != nil && reflect.DeepEqual(old, np) {
		return
	}
	c.touch()
	c.pools[np.Name] = np
	c.routesDirty, c.natDirty = true, true
}

// DeleteIPPool removes an IP pool.
func (c *Calculator) DeleteIPPool(name string) {
	if _, ok := c.pools[name]; !ok {
		return
	}
	c.touch()
	delete(c.pools, name)
	c.routesDirty, c.natDirty = true, true
}

// SetBlocks replaces every IPAM block.
func (c *Calculator) SetBlocks(blocks []Block) {
	nb := make(map[netip.Prefix]Block, len(blocks))
	for _, b := range blocks {
		nb[b.CIDR.Masked()] = Block{CIDR: b.CIDR.Masked(), Node: b.Node}
	}
	if maps.Equal(nb, c.blocks) {
		return
	}
	c.touch()
	c.blocks = nb
	c.routesDirty = true
}

// UpsertBlock adds or replaces the IPAM block b.CIDR.
func (c *Calculator) UpsertBlock(b Block) {
	b = Block{CIDR: b.CIDR.Masked(), Node: b.Node}
	if old, ok := c.blocks[b.CIDR]; ok && old == b {
		return
	}
	c.touch()
	c.blocks[b.CIDR] = b
	c.routesDirty = true
}

// DeleteBlock removes the IPAM block cidr.
func (c *Calculator) DeleteBlock(cidr netip.Prefix) {
	cidr = cidr.Masked()
	if _, ok := c.blocks[cidr]; !ok {
		return
	}
	c.touch()
	delete(c.blocks, cidr)
	c.routesDirty = true
}

func relevantNode(n *api.Node) *api.Node {
	c := &api.Node{}
	c.Name = n.Name
	c.Spec.IPv4VXLANTunnelAddr = n.Spec.IPv4VXLANTunnelAddr
	c.Spec.VXLANTunnelMACAddr = n.Spec.VXLANTunnelMACAddr
	c.Spec.Addresses = slices.Clone(n.Spec.Addresses)
	c.Spec.IPv6VXLANTunnelAddr = n.Spec.IPv6VXLANTunnelAddr
	c.Spec.VXLANTunnelMACAddrV6 = n.Spec.VXLANTunnelMACAddrV6
	if n.Spec.BGP != nil {
		c.Spec.BGP = &api.NodeBGPSpec{IPv4Address: n.Spec.BGP.IPv4Address, IPv6Address: n.Spec.BGP.IPv6Address,
			IPv4IPIPTunnelAddr: n.Spec.BGP.IPv4IPIPTunnelAddr}
	}
	return c
}

// UpsertNode adds or replaces a Node.
func (c *Calculator) UpsertNode(n *api.Node) {
	nn := relevantNode(n)
	if old := c.nodes[nn.Name]; old != nil && reflect.DeepEqual(old, nn) {
		return
	}
	c.touch()
	c.nodes[nn.Name] = nn
	c.routesDirty, c.cpDirty = true, true
}

// DeleteNode removes a Node.
func (c *Calculator) DeleteNode(name string) {
	if _, ok := c.nodes[name]; !ok {
		return
	}
	c.touch()
	delete(c.nodes, name)
	c.routesDirty, c.cpDirty = true, true
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func relevantFelix(f *api.FelixConfigurationSpec) *api.FelixConfigurationSpec {
	if f == nil {
		return nil
	}
	return &api.FelixConfigurationSpec{
		DefaultEndpointToHostAction: f.DefaultEndpointToHostAction,
		VXLANEnabled:                clonePtr(f.VXLANEnabled),
		VXLANPort:                   clonePtr(f.VXLANPort),
		VXLANVNI:                    clonePtr(f.VXLANVNI),
		VXLANMTU:                    clonePtr(f.VXLANMTU),
		VXLANMTUV6:                  clonePtr(f.VXLANMTUV6),
		HealthPort:                  clonePtr(f.HealthPort),
		PrometheusMetricsPort:       clonePtr(f.PrometheusMetricsPort),
		FailsafeInboundHostPorts:    cloneSlicePtr(f.FailsafeInboundHostPorts),
		FailsafeOutboundHostPorts:   cloneSlicePtr(f.FailsafeOutboundHostPorts),
	}
}

// SetFelix sets the merged FelixConfiguration (nil: defaults).
func (c *Calculator) SetFelix(f *api.FelixConfigurationSpec) {
	nf := relevantFelix(f)
	if reflect.DeepEqual(nf, c.felix) {
		return
	}
	c.touch()
	c.felix = nf
	c.routesDirty, c.hostDirty, c.cpDirty = true, true, true
}

// SetControlPlanePorts sets the control-plane ports this host is configured
// with beyond DefaultControlPlanePorts and FelixConfiguration's (see
// Snapshot.ControlPlanePorts). The slice is copied.
func (c *Calculator) SetControlPlanePorts(ports []dataplane.ProtoPort) {
	if slices.Equal(ports, c.cpPorts) {
		return
	}
	c.touch()
	c.cpPorts = slices.Clone(ports)
	c.cpDirty = true
}

// SetHostMTU sets the MTU of this host's uplink (0: unknown).
func (c *Calculator) SetHostMTU(mtu int) {
	if mtu == c.hostMTU {
		return
	}
	c.touch()
	c.hostMTU = mtu
	c.routesDirty = true
}

// ---- output ----

// Desired returns the desired dataplane for the current state. It is cheap
// when little changed, and returns the same pointer when nothing did. The
// result is shared and read-only.
func (c *Calculator) Desired() *dataplane.Desired {
	if !c.dirty && c.last != nil {
		return c.last
	}
	d := &dataplane.Desired{}
	if c.last != nil {
		*d = *c.last
	}
	if !c.orderDirty {
		c.order = applyOrderOps(c.order, c.orderOps)
	} else {
		c.order = c.order[:0]
		for e := range c.local {
			e.sortIface = e.w.Spec.InterfaceName
			c.order = append(c.order, e)
		}
		slices.SortFunc(c.order, func(a, b *wepEntry) int { return compareEPKey(a, b.sortIface, b.id) })
	}
	c.orderOps = c.orderOps[:0]
	if c.endpointsDirty || c.orderDirty {
		eps := makeOrNil[dataplane.Endpoint](len(c.order))
		for _, e := range c.order {
			if e.outStale {
				e.out = c.buildOut(e)
				e.outStale = false
			}
			eps = append(eps, e.out)
		}
		d.Endpoints = eps
	}
	if !c.chainOrderDirty {
		c.chainOrder = applyToggles(c.chainOrder, c.chainToggles,
			func(ce *chainEntry) string { return ce.chain.ID }, func(ce *chainEntry) bool { return ce.active })
	} else {
		c.chainOrder = c.chainOrder[:0]
		for _, p := range c.policies {
			if p.active {
				c.chainOrder = append(c.chainOrder, &p.chainEntry)
			}
		}
		for _, p := range c.profiles {
			if p.active {
				c.chainOrder = append(c.chainOrder, &p.chainEntry)
			}
		}
		slices.SortFunc(c.chainOrder, func(a, b *chainEntry) int { return strings.Compare(a.chain.ID, b.chain.ID) })
	}
	c.chainToggles = c.chainToggles[:0]
	if c.chainsDirty || c.chainOrderDirty {
		chains := makeOrNil[dataplane.PolicyChain](len(c.chainOrder))
		for _, ce := range c.chainOrder {
			chains = append(chains, ce.chain)
		}
		d.Chains = chains
	}
	if !c.setOrderDirty {
		c.setOrder = applyToggles(c.setOrder, c.setToggles,
			func(s *setEntry) string { return s.id }, func(s *setEntry) bool { return s.active > 0 })
	} else {
		c.setOrder = c.setOrder[:0]
		for _, s := range c.sets {
			if s.active > 0 {
				c.setOrder = append(c.setOrder, s)
			}
		}
		slices.SortFunc(c.setOrder, func(a, b *setEntry) int { return strings.Compare(a.id, b.id) })
	}
	c.setToggles = c.setToggles[:0]
	if c.setsDirty || c.setOrderDirty {
		sets := makeOrNil[dataplane.IPSet](len(c.setOrder))
		for _, s := range c.setOrder {
			if s.m.portName != "" {
				sets = append(sets, dataplane.IPSet{ID: s.id, Selector: s.m.key, NamedPort: s.m.portName, Protocol: s.m.portProto,
					PortMembers: s.sortedPortMembers()})
				continue
			}
			sets = append(sets, dataplane.IPSet{ID: s.id, Selector: s.m.key, Members: s.sortedMembers()})
		}
		d.Sets = sets
	}
	if c.routesDirty {
		d.Routes, d.VXLAN, d.VXLANV6 = computeRoutes(c.routeInput())
	}
	if c.natDirty {
		d.NAT = computeNAT(c.poolList())
	}
	if c.hostDirty {
		d.Host = computeHost(c.felix)
	}
	if c.hostPortsDirty {
		var hps []dataplane.HostPort
		for e := range c.withPorts {
			hps = append(hps, endpointHostPorts(e.id, e.w.Spec.Ports, e.addrs)...)
		}
		d.HostPorts = resolveHostPorts(hps)
		c.hostPortsDirty = false
	}
	if c.cpDirty {
		d.ControlPlane = computeControlPlane(c.nodes, c.felix, c.cpPorts)
	}
	c.finishHosts(d, c.chainsDirty || c.chainOrderDirty, c.setsDirty || c.setOrderDirty)
	c.last = d
	c.dirty = false
	c.endpointsDirty, c.orderDirty, c.chainsDirty, c.chainOrderDirty = false, false, false, false
	c.setsDirty, c.setOrderDirty, c.routesDirty, c.natDirty, c.hostDirty, c.cpDirty = false, false, false, false, false, false
	return d
}

// makeOrNil returns an empty slice with room for n, or nil when n is 0
// (Desired's empty slices are nil).
func makeOrNil[T any](n int) []T {
	if n == 0 {
		return nil
	}
	return make([]T, 0, n)
}

func (c *Calculator) buildOut(e *wepEntry) dataplane.Endpoint {
	pols := make([]*polMeta, 0, len(e.pols))
	for p := range e.pols {
		pols = append(pols, &p.meta)
	}
	slices.SortFunc(pols, comparePolMeta)
	return tieredEndpoint(e.w, e.addrs, pols, endpointProfiles(e.w.Spec.Profiles, c.profileExists), c.tiers)
}

func (c *Calculator) poolList() []*api.IPPool {
	out := make([]*api.IPPool, 0, len(c.pools))
	for _, name := range sortedKeys(c.pools) {
		out = append(out, c.pools[name])
	}
	return out
}

func (c *Calculator) routeInput() *routeInput {
	in := &routeInput{
		node:    c.node,
		blocks:  mapValues(c.blocks),
		pools:   c.poolList(),
		nodes:   c.nodes,
		felix:   c.felix,
		hostMTU: c.hostMTU,
		remote: func(yield func(string, []netip.Prefix)) {
			for _, e := range c.weps {
				if e.w.Spec.Node != c.node {
					yield(e.w.Spec.Node, e.addrs)
				}
			}
		},
	}
	for _, e := range c.order {
		in.local = append(in.local, routeLocalEP{iface: e.w.Spec.InterfaceName, addrs: e.addrs})
	}
	return in
}
