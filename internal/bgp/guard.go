package bgp

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/calico-docker/calico/internal/api"
)

// GuardInput is what RouteGuard decides with: the cluster's IPAM state and
// nodes, and this host's own routes. The agent fills it from its datastore
// snapshot and a read of the kernel's main table.
type GuardInput struct {
	// Node is this node's name.
	Node string
	// Pools are the IPPool CIDRs.
	Pools []netip.Prefix
	// Blocks are the IPAM blocks.
	Blocks []GuardBlock
	// NodeAddrs are every node's BGP addresses (IPv4 and IPv6), by name.
	NodeAddrs map[string][]netip.Addr
	// PeerAddrs are the addresses of the configured BGP peers; like node
	// addresses, no learned route may take over the host's route to them.
	PeerAddrs []netip.Addr
	// HostRoutes are the destinations of this host's own routes in the main
	// table (every protocol but ours: connected subnets, the default route,
	// static routes).
	HostRoutes []netip.Prefix
}

// GuardBlock is one IPAM block: its affinity and the addresses in it that
// IPAM records as held by another node (borrowed).
type GuardBlock struct {
	CIDR    netip.Prefix
	Node    string
	Holders map[netip.Addr]string
}

// Rejected is a learned route RouteGuard refused, and why.
type Rejected struct {
	Route  LearnedRoute
	Reason string
}

// RouteGuard decides which learned routes may be installed, so that no BGP
// peer (another node, a route reflector or an external router) can divert
// traffic meant for a workload or a node:
//
//   - A route inside an IPPool must be an IPAM block, or a single address
//     (/32, /128) in a block, and its next hop must be an address of the node
//     that owns it: the block's affine node, or for a single address the node
//     IPAM records as holding it (a borrowed address). A route reflector
//     passes the originating node's next hop on, so reflected routes pass.
//     Anything else inside a pool (a /27 inside a block, an aggregate of
//     blocks, a prefix in no block, a block without affinity) is refused.
//   - A block affine to this node, or an address this node holds, is never
//     taken from a peer.
//   - A route that covers an IPPool (a shorter prefix containing it) is
//     refused: it would draw the pool's traffic that no more specific route
//     carries (for example while a node restarts).
//   - No route may contain another node's address, or a BGP peer's, and be
//     more specific than this host's own route to that address: a peer cannot
//     change how this host reaches the nodes and its peers (a /32 of a node,
//     a /25 inside the fabric's /24, a 0.0.0.0/1 when the nodes are reached
//     through the default route).
//
// Other routes are accepted. RouteGuard is pure: no I/O, no clock.
type RouteGuard struct {
	node      string
	pools     []netip.Prefix
	blocks    []GuardBlock // sorted by address
	nodeAddrs map[string][]netip.Addr
	protected []protectedAddr
}

// protectedAddr is an address no learned route may take over, with the
// prefix length of the host's own most specific route to it (-1: none).
type protectedAddr struct {
	addr     netip.Addr
	what     string
	hostBits int
}

// NewRouteGuard prepares the decision for one snapshot.
func NewRouteGuard(in GuardInput) *RouteGuard {
	g := &RouteGuard{node: in.Node, nodeAddrs: map[string][]netip.Addr{}}
	for _, p := range in.Pools {
		if p.IsValid() {
			g.pools = append(g.pools, p.Masked())
		}
	}
	for _, b := range in.Blocks {
		if b.CIDR.IsValid() {
			b.CIDR = b.CIDR.Masked()
			g.blocks = append(g.blocks, b)
		}
	}
	slices.SortFunc(g.blocks, func(a, b GuardBlock) int { return comparePrefix(a.CIDR, b.CIDR) })
	hostBits := func(a netip.Addr) int {
		best := -1
		for _, r := range in.HostRoutes {
			if r.IsValid() && r.Addr().Is4() == a.Is4() && r.Contains(a) && r.Bits() > best {
				best = r.Bits()
			}
		}
		return best
	}
	seen := map[netip.Addr]bool{}
	names := make([]string, 0, len(in.NodeAddrs))
	for n := range in.NodeAddrs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		for _, a := range in.NodeAddrs[n] {
			if !a.IsValid() {
				continue
			}
			a = a.Unmap()
			g.nodeAddrs[n] = append(g.nodeAddrs[n], a)
			if n == in.Node || seen[a] {
				continue
			}
			seen[a] = true
			g.protected = append(g.protected, protectedAddr{addr: a, what: "node " + n + "'s address", hostBits: hostBits(a)})
		}
	}
	for _, a := range in.PeerAddrs {
		if !a.IsValid() {
			continue
		}
		a = a.Unmap()
		if seen[a] {
			continue
		}
		seen[a] = true
		g.protected = append(g.protected, protectedAddr{addr: a, what: "BGP peer " + a.String(), hostBits: hostBits(a)})
	}
	return g
}

// Check decides one learned route: ok, or the reason it is refused.
func (g *RouteGuard) Check(r LearnedRoute) (bool, string) {
	p := r.Prefix.Masked()
	if !p.IsValid() {
		return false, "invalid prefix"
	}
	nh := r.NextHop.Unmap()
	for _, pool := range g.pools {
		if !p.Overlaps(pool) {
			continue
		}
		if p.Bits() < pool.Bits() {
			return false, fmt.Sprintf("covers IPPool %s", pool)
		}
		return g.checkPoolRoute(p, nh, pool)
	}
	for _, x := range g.protected {
		if p.Contains(x.addr) && p.Bits() > x.hostBits {
			if x.hostBits < 0 {
				return false, fmt.Sprintf("contains %s (%s), which this host has no route of its own to", x.addr, x.what)
			}
			return false, fmt.Sprintf("more specific than this host's own /%d route to %s (%s)", x.hostBits, x.addr, x.what)
		}
	}
	return true, ""
}

// checkPoolRoute decides a route inside an IPPool.
func (g *RouteGuard) checkPoolRoute(p netip.Prefix, nh netip.Addr, pool netip.Prefix) (bool, string) {
	b, ok := g.blockOf(p)
	if !ok {
		for _, b := range g.blocks {
			if p.Contains(b.CIDR.Addr()) {
				return false, fmt.Sprintf("spans IPAM blocks (%s and others) of IPPool %s: only a block or a single address may be routed", b.CIDR, pool)
			}
		}
		return false, fmt.Sprintf("inside IPPool %s but in no IPAM block", pool)
	}
	var owner, what string
	switch {
	case p == b.CIDR:
		owner, what = b.Node, "block "+b.CIDR.String()
		if owner == "" {
			return false, fmt.Sprintf("IPAM block %s has no affine node", b.CIDR)
		}
	case p.IsSingleIP():
		owner, what = b.Node, "address "+p.Addr().String()
		if h, ok := b.Holders[p.Addr()]; ok {
			owner = h
		}
		if owner == "" {
			return false, fmt.Sprintf("address %s is in IPAM block %s, which has no affine node", p.Addr(), b.CIDR)
		}
	default:
		return false, fmt.Sprintf("part of IPAM block %s: only the block or a single address may be routed", b.CIDR)
	}
	if owner == g.node {
		return false, fmt.Sprintf("%s belongs to this node", what)
	}
	addrs := g.nodeAddrs[owner]
	if !slices.Contains(addrs, nh) {
		return false, fmt.Sprintf("%s belongs to node %s but the next hop %s is not its address %v", what, owner, nh, addrs)
	}
	return true, ""
}

// blockOf returns the block that contains p (blocks never overlap).
func (g *RouteGuard) blockOf(p netip.Prefix) (GuardBlock, bool) {
	// The last block starting at or before p's address.
	i, _ := slices.BinarySearchFunc(g.blocks, p.Addr(), func(b GuardBlock, a netip.Addr) int {
		return b.CIDR.Addr().Compare(a)
	})
	for j := min(i, len(g.blocks)-1); j >= 0 && j >= i-1; j-- {
		b := g.blocks[j]
		if b.CIDR.Bits() <= p.Bits() && b.CIDR.Contains(p.Addr()) {
			return b, true
		}
	}
	return GuardBlock{}, false
}

// Filter splits routes into the accepted and the refused, keeping order.
func (g *RouteGuard) Filter(routes []LearnedRoute) ([]LearnedRoute, []Rejected) {
	ok := make([]LearnedRoute, 0, len(routes))
	var bad []Rejected
	for _, r := range routes {
		if accept, why := g.Check(r); accept {
			ok = append(ok, r)
		} else {
			bad = append(bad, Rejected{Route: r, Reason: why})
		}
	}
	return ok, bad
}

// NodeAddrs returns the BGP addresses (spec.bgp.ipv4Address and
// ipv6Address) of each node; unparsable ones are left out.
func NodeAddrs(nodes []api.Node) map[string][]netip.Addr {
	out := make(map[string][]netip.Addr, len(nodes))
	for _, n := range nodes {
		if n.Spec.BGP == nil {
			continue
		}
		for _, s := range []struct {
			v  string
			v6 bool
		}{{n.Spec.BGP.IPv4Address, false}, {n.Spec.BGP.IPv6Address, true}} {
			if a, err := parseNodeAddr(s.v, s.v6); err == nil && a.IsValid() {
				out[n.Name] = append(out[n.Name], a)
			}
		}
	}
	return out
}
