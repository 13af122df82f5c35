package bgp

import (
	"net/netip"
	"strings"
	"testing"
)

func guardInput() GuardInput {
	return GuardInput{
		Node:  "me",
		Pools: []netip.Prefix{pfx("10.65.0.0/16"), pfx("fd65::/48")},
		Blocks: []GuardBlock{
			{CIDR: pfx("10.65.0.0/26"), Node: "me", Holders: map[netip.Addr]string{addr("10.65.0.9"): "b"}},
			{CIDR: pfx("10.65.0.64/26"), Node: "b", Holders: map[netip.Addr]string{addr("10.65.0.70"): "c", addr("10.65.0.71"): "me"}},
			{CIDR: pfx("10.65.0.128/26"), Node: ""},
			{CIDR: pfx("fd65::/122"), Node: "b"},
		},
		NodeAddrs: map[string][]netip.Addr{
			"me": {addr("10.0.0.1"), addr("fd00::1")},
			"b":  {addr("10.0.0.2"), addr("fd00::2")},
			"c":  {addr("10.1.0.3")}, // another subnet, reached via the default route
		},
		PeerAddrs:  []netip.Addr{addr("10.0.0.254")},
		HostRoutes: []netip.Prefix{pfx("10.0.0.0/24"), pfx("0.0.0.0/0"), pfx("fd00::/64")},
	}
}

func TestRouteGuard(t *testing.T) {
	g := NewRouteGuard(guardInput())
	for _, tc := range []struct {
		prefix, nextHop string
		ok              bool
		why             string
	}{
		// Blocks and borrowed addresses with their owner's next hop.
		{"10.65.0.64/26", "10.0.0.2", true, ""},
		{"10.65.0.70/32", "10.1.0.3", true, ""},                 // borrowed by c from b's block
		{"10.65.0.9/32", "10.0.0.2", true, ""},                  // borrowed by b from our block
		{"10.65.0.65/32", "10.0.0.2", true, ""},                 // in b's block, held by b
		{"fd65::/122", "fd00::2", true, ""},                     // IPv6 block
		{"10.65.0.64/26", "10.0.0.9", false, "not its address"}, // a hijacker's next hop
		{"10.65.0.70/32", "10.0.0.2", false, "node c"},          // held by c, not b
		{"10.65.0.64/27", "10.0.0.2", false, "part of IPAM block"},
		{"10.65.0.0/26", "10.0.0.2", false, "belongs to this node"},
		{"10.65.0.5/32", "10.0.0.2", false, "belongs to this node"},
		{"10.65.0.71/32", "10.0.0.2", false, "belongs to this node"}, // we hold it in b's block
		{"10.65.0.128/26", "10.0.0.2", false, "no affine node"},
		{"10.65.0.130/32", "10.0.0.2", false, "no affine node"},
		{"10.65.1.0/26", "10.0.0.2", false, "in no IPAM block"},
		{"10.65.0.0/24", "10.0.0.2", false, "spans IPAM blocks"},
		{"10.65.0.0/16", "10.0.0.2", false, "spans IPAM blocks"}, // the pool itself
		{"10.64.0.0/15", "10.0.0.2", false, "covers IPPool"},
		{"0.0.0.0/1", "10.0.0.9", false, "covers IPPool"},
		{"fd65::/122", "fd00::9", false, "not its address"},
		// Node and peer addresses.
		{"10.0.0.2/32", "10.0.0.9", false, "node b's address"},
		{"10.0.0.0/25", "10.0.0.9", false, "more specific than this host's own /24"},
		{"10.0.0.254/32", "10.0.0.9", false, "BGP peer"},
		{"10.1.0.0/16", "10.0.0.9", false, "own /0 route to 10.1.0.3"},
		{"fd00::2/128", "fd00::9", false, "node b"},
		// Less specific than the host's routes, or elsewhere: accepted.
		{"10.0.0.0/23", "10.0.0.9", true, ""},
		{"10.200.0.0/24", "10.0.0.9", true, ""},
		{"192.168.0.0/16", "10.0.0.9", true, ""},
		{"10.0.0.1/32", "10.0.0.9", true, ""}, // our own address: the local table wins
		{"2001:db8::/32", "fd00::9", true, ""},
	} {
		ok, why := g.Check(LearnedRoute{Prefix: pfx(tc.prefix), NextHop: addr(tc.nextHop)})
		if ok != tc.ok || !strings.Contains(why, tc.why) {
			t.Errorf("%s via %s: got (%v, %q), want (%v, ...%q...)", tc.prefix, tc.nextHop, ok, why, tc.ok, tc.why)
		}
	}
}

// A node with no address on record owns nothing that can be routed, and a
// host without any route to a node refuses every route containing it.
func TestRouteGuardMissingData(t *testing.T) {
	in := guardInput()
	in.HostRoutes = nil
	delete(in.NodeAddrs, "b")
	g := NewRouteGuard(in)
	for _, tc := range []struct{ prefix, nextHop, why string }{
		{"10.65.0.64/26", "10.0.0.2", "not its address"},
		{"10.1.0.0/16", "10.0.0.9", "no route of its own"},
		{"0.0.0.0/0", "10.0.0.9", "covers IPPool"},
	} {
		if ok, why := g.Check(LearnedRoute{Prefix: pfx(tc.prefix), NextHop: addr(tc.nextHop)}); ok || !strings.Contains(why, tc.why) {
			t.Errorf("%s: got (%v, %q), want refused with %q", tc.prefix, ok, why, tc.why)
		}
	}
	ok, bad := g.Filter([]LearnedRoute{
		{Prefix: pfx("192.168.1.0/24"), NextHop: addr("10.0.0.9")},
		{Prefix: pfx("10.65.0.64/26"), NextHop: addr("10.0.0.2")},
	})
	if len(ok) != 1 || ok[0].Prefix != pfx("192.168.1.0/24") || len(bad) != 1 || bad[0].Route.Prefix != pfx("10.65.0.64/26") {
		t.Errorf("Filter: accepted %v, refused %v", ok, bad)
	}
}
