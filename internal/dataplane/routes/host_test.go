package routes

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/testutil"
)

// What the agent reads about the host through the driver, in a namespace
// standing for a host: its address (default route), the MTU of that
// interface, the host's own routes, BGP routes a previous agent left behind
// (ours, via a gateway), and the forwarding sysctls.
func TestHostReads(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "ip", "sysctl")
	ns := newHost(t)
	ns.MustExec(t, "ip", "link", "set", "rtup0", "mtu", "1400")
	ns.MustExec(t, "ip", "route", "add", "10.98.0.0/24", "via", "10.99.0.7")
	// A route a previous agent learned (our protocol, via a gateway).
	ns.MustExec(t, "ip", "route", "add", "10.97.0.0/26", "via", "10.99.0.8", "proto", fmt.Sprint(DefaultProtocol))
	d := newDriver(t, ns)

	v4, err := d.HostIPv4()
	if err != nil || v4 != pfx("10.99.0.1/24") {
		t.Fatalf("HostIPv4 = %v, %v; want 10.99.0.1/24", v4, err)
	}
	if mtu := d.HostMTU(addr("10.99.0.1")); mtu != 1400 {
		t.Errorf("HostMTU = %d, want 1400", mtu)
	}
	if mtu := d.HostMTU(addr("10.99.0.200")); mtu != 0 {
		t.Errorf("HostMTU of an address the host lacks = %d, want 0", mtu)
	}
	hr, err := d.HostRoutes()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"0.0.0.0/0", "10.98.0.0/24", "10.99.0.0/24"} {
		if !slices.Contains(hr, pfx(want)) {
			t.Errorf("HostRoutes %v lacks %s", hr, want)
		}
	}
	if slices.Contains(hr, pfx("10.97.0.0/26")) {
		t.Errorf("HostRoutes %v includes our own route 10.97.0.0/26", hr)
	}
	learned, err := d.LearnedRoutes()
	if err != nil {
		t.Fatal(err)
	}
	want := []dataplane.Route{{Dst: pfx("10.97.0.0/26"), Type: dataplane.RouteVia, Gateway: netip.MustParseAddr("10.99.0.8")}}
	if !slices.Equal(learned, want) {
		t.Errorf("LearnedRoutes = %+v, want %+v", learned, want)
	}

	ns.MustExec(t, "sysctl", "-qw", "net.ipv4.ip_forward=0")
	if p := d.ForwardingProblem(false); !strings.Contains(p, "net.ipv4.ip_forward=0") {
		t.Errorf("ForwardingProblem with forwarding off = %q", p)
	}
	ns.MustExec(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	if p := d.ForwardingProblem(false); p != "" {
		t.Errorf("ForwardingProblem with forwarding on = %q", p)
	}
}
