package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/selector"
)

// PeerInput is everything DesiredPeers looks at.
type PeerInput struct {
	// NodeName is this node's name.
	NodeName string
	// Nodes are all Node resources, this node's included.
	Nodes []api.Node
	// Peers are all BGPPeer resources.
	Peers []api.BGPPeer
	// Configs are the BGPConfiguration resources: "default" holds the
	// cluster-wide settings, "node.<name>" per-node ones (only the listen
	// port is taken from those, as in Calico).
	Configs []api.BGPConfiguration
	// Filters are all BGPFilter resources (BGPPeers name them).
	Filters []api.BGPFilter
}

// NodeSettings are this node's own BGP settings.
type NodeSettings struct {
	Name string
	// ASN is Node.spec.bgp.asNumber, else the default BGPConfiguration's
	// asNumber, else 64512.
	ASN uint32
	// IPv4 and IPv6 are the node's BGP addresses (either may be invalid).
	IPv4 netip.Addr
	IPv6 netip.Addr
	// ListenPort is the port to listen on (179 unless configured).
	ListenPort uint16
	// RRClusterID is set when this node is a route reflector.
	RRClusterID string
	// MeshEnabled is the default BGPConfiguration's nodeToNodeMeshEnabled
	// (true when unset).
	MeshEnabled bool
}

// bgpNode is a Node reduced to what peering needs.
type bgpNode struct {
	name      string
	labels    map[string]string
	v4, v6    netip.Addr
	asn       uint32
	port      uint16
	rrCluster string
}

func (n bgpNode) addr(v6 bool) netip.Addr {
	if v6 {
		return n.v6
	}
	return n.v4
}

// peerModel holds the resources of a PeerInput indexed for peering.
type peerModel struct {
	me          bgpNode
	nodes       []bgpNode // sorted by name, this node included
	byAddr      map[netip.Addr]*bgpNode
	globalASN   uint32
	meshEnabled bool
	meshRestart time.Duration
	filters     map[string]*api.BGPFilter
	problems    []error
}

// Settings returns this node's own BGP settings.
func Settings(in PeerInput) (NodeSettings, error) {
	m, err := newPeerModel(in)
	if err != nil {
		return NodeSettings{}, err
	}
	return NodeSettings{
		Name:        m.me.name,
		ASN:         m.me.asn,
		IPv4:        m.me.v4,
		IPv6:        m.me.v6,
		ListenPort:  m.me.port,
		RRClusterID: m.me.rrCluster,
		MeshEnabled: m.meshEnabled,
	}, nil
}

// DesiredPeers returns the BGP sessions this node should have, sorted by
// address, following Calico's rules:
//
//   - Node-to-node mesh (unless the default BGPConfiguration sets
//     nodeToNodeMeshEnabled: false): a session with every other node that has
//     an address of a family this node also has. Route reflectors (nodes with
//     routeReflectorClusterID) take no part in the mesh, neither as this node
//     nor as the other.
//   - BGPPeer resources that apply to this node: spec.nodeSelector matches
//     this node's labels, or spec.node names it (both "node specific"), or
//     neither is set ("global"). They peer with spec.peerIP ("ip",
//     "ip:port" or "[ip]:port"), or with the nodes spec.peerSelector picks
//     (both of their addresses, their AS number and listen port).
//   - Automatic reverse peerings, as Calico makes them: when a BGPPeer picks
//     this node as its peer (by peerSelector, or by peerIP, AS number and port
//     matching this node), this node peers back with the nodes the BGPPeer
//     applies to ("node specific").
//
// An address is peered with once. When several rules name it, the first
// wins in this order: mesh, global BGPPeers, node-specific BGPPeers, reverse
// peerings (BGPPeers in name order within each). Calico's own precedence
// makes global beat node-specific and explicit beat reverse; it does not
// deduplicate mesh against BGPPeers (BIRD then has two sessions with one
// neighbour), and one session per address is all GoBGP can have.
//
// When this node is a route reflector, every peer with its AS number that is
// not a reflector of the same cluster is its route-reflector client. A peer
// that is not one of the Nodes is External. Sessions with other nodes are
// passive on the side with the lower address, so each pair has one
// connecting side.
//
// The error is fatal (and the peers nil) only when this node cannot peer at
// all: it is missing or has no BGP address. Malformed other resources are
// skipped; the peers of the well-formed ones are returned together with an
// error describing what was skipped.
func DesiredPeers(in PeerInput) ([]Peer, error) {
	m, err := newPeerModel(in)
	if err != nil {
		return nil, err
	}

	var out []candidate
	seen := map[netip.Addr]bool{}
	emit := func(c candidate) {
		c.Address = c.Address.Unmap()
		if seen[c.Address] || c.Address == m.me.v4 || c.Address == m.me.v6 {
			return
		}
		// A session needs our own address of the same family as source.
		if !m.me.addr(c.Address.Is6()).IsValid() {
			return
		}
		seen[c.Address] = true
		out = append(out, c)
	}

	m.meshPeers(emit)
	peers := slices.Clone(in.Peers)
	slices.SortFunc(peers, func(a, b api.BGPPeer) int { return strings.Compare(a.Name, b.Name) })
	parsed := make([]parsedPeer, 0, len(peers))
	for _, p := range peers {
		pp, err := parseBGPPeer(p)
		if err != nil {
			m.problems = append(m.problems, err)
			continue
		}
		parsed = append(parsed, pp)
	}
	for _, global := range []bool{true, false} {
		for _, p := range parsed {
			m.forwardPeers(p, global, emit)
		}
	}
	for _, p := range parsed {
		m.reversePeers(p, emit)
	}

	result := make([]Peer, 0, len(out))
	for _, c := range out {
		p := c.Peer
		if m.me.rrCluster != "" && p.ASN == m.me.asn && c.rrCluster != m.me.rrCluster {
			p.RRClient = true
			p.RRClusterID = m.me.rrCluster
		}
		_, isNode := m.byAddr[p.Address]
		p.External = !isNode
		result = append(result, p)
	}
	slices.SortFunc(result, comparePeers)
	return result, errors.Join(m.problems...)
}

// candidate is a peer plus the route-reflector cluster of the node it is,
// if any.
type candidate struct {
	Peer
	rrCluster string
}

func newPeerModel(in PeerInput) (*peerModel, error) {
	m := &peerModel{globalASN: DefaultASN, meshEnabled: true, byAddr: map[netip.Addr]*bgpNode{}, filters: map[string]*api.BGPFilter{}}
	for i := range in.Filters {
		m.filters[in.Filters[i].Name] = &in.Filters[i]
	}
	var globalPort uint16
	nodePorts := map[string]uint16{}
	for _, c := range in.Configs {
		switch {
		case c.Name == "default":
			if c.Spec.ASNumber != nil && *c.Spec.ASNumber != 0 {
				m.globalASN = uint32(*c.Spec.ASNumber)
			}
			if c.Spec.NodeToNodeMeshEnabled != nil {
				m.meshEnabled = *c.Spec.NodeToNodeMeshEnabled
			}
			if c.Spec.NodeMeshMaxRestartTime != nil {
				m.meshRestart = c.Spec.NodeMeshMaxRestartTime.Duration
			}
			globalPort = c.Spec.ListenPort
		case strings.HasPrefix(c.Name, "node."):
			if c.Spec.ListenPort != 0 {
				nodePorts[strings.TrimPrefix(c.Name, "node.")] = c.Spec.ListenPort
			}
		}
	}

	found := false
	for _, n := range in.Nodes {
		bn := bgpNode{name: n.Name, labels: n.Labels, asn: m.globalASN, port: DefaultPort}
		if p, ok := nodePorts[n.Name]; ok {
			bn.port = p
		} else if globalPort != 0 {
			bn.port = globalPort
		}
		if b := n.Spec.BGP; b != nil {
			if b.ASNumber != nil && *b.ASNumber != 0 {
				bn.asn = uint32(*b.ASNumber)
			}
			bn.rrCluster = b.RouteReflectorClusterID
			var err error
			if bn.v4, err = parseNodeAddr(b.IPv4Address, false); err != nil {
				err = fmt.Errorf("node %s: spec.bgp.ipv4Address: %w", n.Name, err)
				if n.Name == in.NodeName {
					return nil, err
				}
				m.problems = append(m.problems, err)
			}
			if bn.v6, err = parseNodeAddr(b.IPv6Address, true); err != nil {
				err = fmt.Errorf("node %s: spec.bgp.ipv6Address: %w", n.Name, err)
				if n.Name == in.NodeName {
					return nil, err
				}
				m.problems = append(m.problems, err)
			}
		}
		if n.Name == in.NodeName {
			found = true
			m.me = bn
		}
		m.nodes = append(m.nodes, bn)
	}
	if !found {
		return nil, fmt.Errorf("node %q: no Node resource with that name", in.NodeName)
	}
	if !m.me.v4.IsValid() && !m.me.v6.IsValid() {
		return nil, fmt.Errorf("node %q has no BGP address: set spec.bgp.ipv4Address or spec.bgp.ipv6Address", in.NodeName)
	}
	slices.SortFunc(m.nodes, func(a, b bgpNode) int { return strings.Compare(a.name, b.name) })
	for i := range m.nodes {
		n := &m.nodes[i]
		for _, a := range []netip.Addr{n.v4, n.v6} {
			if a.IsValid() {
				if _, dup := m.byAddr[a]; !dup {
					m.byAddr[a] = n
				}
			}
		}
	}
	return m, nil
}

// parseNodeAddr reads a Node's BGP address, given either as an address or,
// as Calico writes it, with the subnet ("10.0.0.1/24").
func parseNodeAddr(s string, v6 bool) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Addr{}, nil
	}
	var a netip.Addr
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Addr{}, err
		}
		a = p.Addr()
	} else {
		var err error
		if a, err = netip.ParseAddr(s); err != nil {
			return netip.Addr{}, err
		}
	}
	a = a.Unmap()
	if a.Is6() != v6 {
		want := "IPv4"
		if v6 {
			want = "IPv6"
		}
		return netip.Addr{}, fmt.Errorf("%q is not an %s address", s, want)
	}
	return a, nil
}

func (m *peerModel) meshPeers(emit func(candidate)) {
	if !m.meshEnabled || m.me.rrCluster != "" {
		return
	}
	for _, n := range m.nodes {
		if n.name == m.me.name || n.rrCluster != "" {
			continue
		}
		for _, v6 := range []bool{false, true} {
			addr, mine := n.addr(v6), m.me.addr(v6)
			if !addr.IsValid() || !mine.IsValid() {
				continue
			}
			emit(candidate{Peer: Peer{
				Address:       addr,
				Port:          n.port,
				ASN:           n.asn,
				Type:          PeerTypeMesh,
				Name:          n.name,
				Passive:       passiveTowards(addr, mine),
				SourceAddress: mine,
				RestartTime:   m.meshRestart,
			}})
		}
	}
}

// parsedPeer is a BGPPeer with its selectors and peer address parsed.
type parsedPeer struct {
	res          api.BGPPeer
	nodeSelector *selector.Selector // nil when spec.nodeSelector is empty
	peerSelector *selector.Selector // nil when spec.peerSelector is empty
	peerIP       netip.Addr
	peerPort     uint16 // 0 when peerIP has no port
}

func parseBGPPeer(p api.BGPPeer) (parsedPeer, error) {
	pp := parsedPeer{res: p}
	var err error
	if s := strings.TrimSpace(p.Spec.NodeSelector); s != "" {
		if pp.nodeSelector, err = selector.Parse(s); err != nil {
			return pp, fmt.Errorf("BGPPeer %s: spec.nodeSelector: %w", p.Name, err)
		}
	}
	if s := strings.TrimSpace(p.Spec.PeerSelector); s != "" {
		if pp.peerSelector, err = selector.Parse(s); err != nil {
			return pp, fmt.Errorf("BGPPeer %s: spec.peerSelector: %w", p.Name, err)
		}
		return pp, nil
	}
	s := strings.TrimSpace(p.Spec.PeerIP)
	if s == "" {
		return pp, fmt.Errorf("BGPPeer %s: set spec.peerIP or spec.peerSelector", p.Name)
	}
	if a, err := netip.ParseAddr(s); err == nil {
		pp.peerIP = a.Unmap()
		return pp, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return pp, fmt.Errorf("BGPPeer %s: spec.peerIP %q: want an address, \"ip:port\" or \"[ip]:port\"", p.Name, s)
	}
	pp.peerIP, pp.peerPort = ap.Addr().Unmap(), ap.Port()
	return pp, nil
}

// appliesTo reports whether the BGPPeer's local side (nodeSelector, node,
// or neither = every node) includes n.
func (p parsedPeer) appliesTo(n bgpNode) bool {
	switch {
	case p.nodeSelector != nil:
		return p.nodeSelector.Evaluate(n.labels)
	case p.res.Spec.Node != "":
		return p.res.Spec.Node == n.name
	default:
		return true
	}
}

func (p parsedPeer) isGlobal() bool {
	return p.nodeSelector == nil && p.res.Spec.Node == ""
}

// asn is the BGPPeer's AS number, the cluster's when unset.
func (p parsedPeer) asn(m *peerModel) uint32 {
	if p.res.Spec.ASNumber != 0 {
		return uint32(p.res.Spec.ASNumber)
	}
	return m.globalASN
}

// source is the session's local address for a peer of the given family.
func (p parsedPeer) source(m *peerModel, v6 bool) netip.Addr {
	if p.res.Spec.SourceAddress == "None" {
		return netip.Addr{}
	}
	return m.me.addr(v6)
}

// secure fills in the session security and filters a BGPPeer gives its
// sessions: the password secret, GTSM and the filter rules of the session's
// family.
func (p parsedPeer) secure(m *peerModel, c candidate) candidate {
	s := p.res.Spec
	if s.Password != nil && s.Password.SecretKeyRef != nil {
		ref := s.Password.SecretKeyRef
		c.PasswordSecret = SecretRef{Name: ref.Name, Key: ref.Key, Optional: ref.Optional != nil && *ref.Optional}
	}
	if s.TTLSecurity != nil {
		c.TTLSecurity = *s.TTLSecurity
	}
	if len(s.Filters) > 0 {
		imp, exp, err := peerFilters(m.filters, s.Filters, c.Address.Is6())
		if err != nil {
			m.problems = append(m.problems, fmt.Errorf("BGPPeer %s: spec.filters: %w", p.res.Name, err))
		}
		c.Import, c.Export = imp, exp
	}
	return c
}

func (p parsedPeer) restartTime() time.Duration {
	if p.res.Spec.MaxRestartTime != nil {
		return p.res.Spec.MaxRestartTime.Duration
	}
	return 0
}

// forwardPeers emits the sessions a BGPPeer gives this node, in the global
// or the node-specific pass.
func (m *peerModel) forwardPeers(p parsedPeer, global bool, emit func(candidate)) {
	if p.isGlobal() != global || !p.appliesTo(m.me) {
		return
	}
	typ := PeerTypeNode
	if global {
		typ = PeerTypeGlobal
	}
	nodePeer := func(n bgpNode, v6 bool) {
		addr, mine := n.addr(v6), m.me.addr(v6)
		if !addr.IsValid() {
			return
		}
		emit(p.secure(m, candidate{Peer: Peer{
			Address:       addr,
			Port:          n.port,
			ASN:           n.asn,
			Type:          typ,
			Name:          p.res.Name,
			Passive:       passiveTowards(addr, mine),
			SourceAddress: p.source(m, v6),
			RestartTime:   p.restartTime(),
		}, rrCluster: n.rrCluster}))
	}
	if p.peerSelector != nil {
		for _, n := range m.nodes {
			if n.name != m.me.name && p.peerSelector.Evaluate(n.labels) {
				nodePeer(n, false)
				nodePeer(n, true)
			}
		}
		return
	}
	port := p.peerPort
	var cluster string
	passive := false
	if n, ok := m.byAddr[p.peerIP]; ok {
		if port == 0 {
			port = n.port
		}
		cluster = n.rrCluster
		mine := m.me.addr(p.peerIP.Is6())
		passive = passiveTowards(p.peerIP, mine)
	}
	if port == 0 {
		port = DefaultPort
	}
	emit(p.secure(m, candidate{Peer: Peer{
		Address:       p.peerIP,
		Port:          port,
		ASN:           p.asn(m),
		Type:          typ,
		Name:          p.res.Name,
		Passive:       passive,
		SourceAddress: p.source(m, p.peerIP.Is6()),
		RestartTime:   p.restartTime(),
	}, rrCluster: cluster}))
}

// passiveTowards says whether this node (at mine) waits for a Calico node
// at peer to connect: the higher address connects, the lower one listens.
// Both ends of a session between two of our nodes (mesh, a BGPPeer and its
// reverse) apply the same rule, so exactly one side connects; with both
// connecting, the BGP collision between the two connections can leave a
// session in OpenConfirm until a timer fires.
func passiveTowards(peer, mine netip.Addr) bool {
	return mine.IsValid() && peer.Compare(mine) > 0
}

// reversePeers emits the sessions back to the nodes a BGPPeer applies to,
// when the BGPPeer picks this node as its peer.
func (m *peerModel) reversePeers(p parsedPeer, emit func(candidate)) {
	families := []bool{false, true}
	if p.peerSelector != nil {
		if !p.peerSelector.Evaluate(m.me.labels) {
			return
		}
	} else {
		if p.peerIP != m.me.v4 && p.peerIP != m.me.v6 {
			return
		}
		if p.asn(m) != m.me.asn || (p.peerPort != 0 && p.peerPort != m.me.port) {
			return
		}
		families = []bool{p.peerIP.Is6()}
	}
	for _, n := range m.nodes {
		if n.name == m.me.name || !p.appliesTo(n) {
			continue
		}
		for _, v6 := range families {
			addr := n.addr(v6)
			if !addr.IsValid() {
				continue
			}
			emit(p.secure(m, candidate{Peer: Peer{
				Address:       addr,
				Port:          n.port,
				ASN:           n.asn,
				Type:          PeerTypeNode,
				Name:          p.res.Name,
				Passive:       passiveTowards(addr, m.me.addr(v6)),
				SourceAddress: p.source(m, v6),
				RestartTime:   p.restartTime(),
			}, rrCluster: n.rrCluster}))
		}
	}
}
