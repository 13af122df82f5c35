package routes

import (
	"context"
	"net"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/calico-docker/calico/internal/dataplane"
)

func TestPrefixConversions(t *testing.T) {
	for _, s := range []string{"10.65.0.2/32", "10.65.0.0/26", "0.0.0.0/0", "fd00::/122", "fd00::5/128", "::/0"} {
		p := pfx(s)
		back, ok := ipNetToPrefix(prefixToIPNet(p))
		if !ok || back != p {
			t.Errorf("%s -> %v %v", s, back, ok)
		}
	}
	// The kernel reports a default route with no destination.
	if p, ok := routeDst(netlink.Route{Family: netlink.FAMILY_V6}); !ok || p != pfx("::/0") {
		t.Errorf("default v6: %v", p)
	}
	// A 16-byte form of an IPv4 address is still IPv4.
	n := &net.IPNet{IP: net.ParseIP("10.1.2.3"), Mask: net.CIDRMask(32, 32)}
	if p, ok := ipNetToPrefix(n); !ok || p != pfx("10.1.2.3/32") {
		t.Errorf("16-byte v4: %v %v", p, ok)
	}
}

func TestRouteMatches(t *testing.T) {
	d := &Driver{proto: DefaultProtocol}
	byName := map[string]netlink.Link{
		"cali1":     &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "cali1", Index: 7}},
		VXLANDevice: &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: VXLANDevice, Index: 9}},
	}
	mk := func(r dataplane.Route) *netlink.Route {
		nr, missing, err := d.toNetlink(r, r.Dst, byName)
		if err != nil || missing != "" {
			t.Fatalf("%+v: %v %q", r, err, missing)
		}
		return nr
	}
	local := mk(dataplane.Route{Dst: pfx("10.0.0.1/32"), Type: dataplane.RouteLocal, Iface: "cali1"})
	local6 := mk(dataplane.Route{Dst: pfx("fd00::1/128"), Type: dataplane.RouteLocal, Iface: "cali1"})
	via := mk(dataplane.Route{Dst: pfx("10.1.0.0/24"), Type: dataplane.RouteVia, Gateway: addr("10.9.0.1")})
	vx := mk(dataplane.Route{Dst: pfx("10.2.0.0/26"), Type: dataplane.RouteVXLAN, Gateway: addr("10.2.0.0")})
	bh := mk(dataplane.Route{Dst: pfx("10.3.0.0/26"), Type: dataplane.RouteBlackhole})

	if local.Scope != netlink.SCOPE_LINK || local6.Scope != netlink.SCOPE_UNIVERSE || vx.Flags&int(netlink.FLAG_ONLINK) == 0 {
		t.Fatalf("built routes: %+v %+v %+v", local, local6, vx)
	}
	cases := []struct {
		name string
		w    *netlink.Route
		h    netlink.Route
		want bool
	}{
		{"local same", local, netlink.Route{Type: unix.RTN_UNICAST, LinkIndex: 7, Scope: netlink.SCOPE_LINK}, true},
		{"local other dev", local, netlink.Route{Type: unix.RTN_UNICAST, LinkIndex: 8, Scope: netlink.SCOPE_LINK}, false},
		{"local other scope", local, netlink.Route{Type: unix.RTN_UNICAST, LinkIndex: 7}, false},
		{"local linkdown flag ignored", local, netlink.Route{Type: unix.RTN_UNICAST, LinkIndex: 7, Scope: netlink.SCOPE_LINK, Flags: unix.RTNH_F_LINKDOWN}, true},
		{"via any dev", via, netlink.Route{Type: unix.RTN_UNICAST, LinkIndex: 3, Gw: net.ParseIP("10.9.0.1")}, true},
		{"via other gw", via, netlink.Route{Type: unix.RTN_UNICAST, LinkIndex: 3, Gw: net.ParseIP("10.9.0.2")}, false},
		{"via became blackhole", via, netlink.Route{Type: unix.RTN_BLACKHOLE}, false},
		{"vxlan same", vx, netlink.Route{Type: unix.RTN_UNICAST, LinkIndex: 9, Gw: net.IPv4(10, 2, 0, 0).To4(), Flags: unix.RTNH_F_ONLINK}, true},
		{"vxlan not onlink", vx, netlink.Route{Type: unix.RTN_UNICAST, LinkIndex: 9, Gw: net.IPv4(10, 2, 0, 0).To4()}, false},
		{"blackhole", bh, netlink.Route{Type: unix.RTN_BLACKHOLE, LinkIndex: 1}, true},
		{"multipath", via, netlink.Route{Type: unix.RTN_UNICAST, Gw: net.ParseIP("10.9.0.1"), MultiPath: []*netlink.NexthopInfo{{}}}, false},
	}
	for _, c := range cases {
		if got := routeMatches(c.w, &c.h); got != c.want {
			t.Errorf("%s: got %v", c.name, got)
		}
	}
	// Missing interfaces are reported, not errors.
	if _, missing, err := d.toNetlink(dataplane.Route{Dst: pfx("10.0.0.2/32"), Type: dataplane.RouteLocal, Iface: "cali2"}, pfx("10.0.0.2/32"), byName); err != nil || missing != "cali2" {
		t.Errorf("missing iface: %q %v", missing, err)
	}
	if _, missing, _ := d.toNetlink(dataplane.Route{Dst: pfx("10.2.0.0/26"), Type: dataplane.RouteVXLAN, Gateway: addr("10.2.0.0")}, pfx("10.2.0.0/26"), map[string]netlink.Link{}); missing != VXLANDevice {
		t.Errorf("missing vxlan device: %q", missing)
	}
	if _, _, err := d.toNetlink(dataplane.Route{Dst: pfx("10.1.0.0/24"), Type: dataplane.RouteVia}, pfx("10.1.0.0/24"), byName); err == nil {
		t.Error("via without gateway accepted")
	}
}

func TestApplyStatsChanges(t *testing.T) {
	s := ApplyStats{RoutesAdded: 1, RoutesReplaced: 2, RoutesDeleted: 3, LinksChanged: 4, SysctlsWritten: 5, NeighborsChanged: 6, RoutesPending: 100, RouteConflicts: 100}
	if s.Changes() != 21 {
		t.Fatalf("changes = %d", s.Changes())
	}
}

func TestApplyBeforeSetDesiredIsAnError(t *testing.T) {
	// Without a recorded desired state Apply must not read "nothing wanted"
	// and delete everything of ours.
	d, err := New(Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Apply(context.Background()); err == nil {
		t.Fatal("Apply without SetDesired succeeded")
	}
	if _, err := New(Options{Protocol: 300}); err == nil {
		t.Fatal("protocol 300 accepted")
	}
}
