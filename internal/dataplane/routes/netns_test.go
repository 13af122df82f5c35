package routes

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/testutil"
)

// Test networks: 10.65.0.0/16 workloads, 10.99.0.0/24 a host's dummy
// "uplink", 172.31.250.0/24 an underlay between two host namespaces. All of
// them exist only inside namespaces the tests create.

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newDriver(t testing.TB, ns testutil.NetNS) *Driver {
	t.Helper()
	d, err := New(Options{NetNS: ns.Path(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// newHost makes a namespace standing for a host: an uplink with an
// address and the default route (proxy ARP for 169.254.1.1 needs a route
// covering it).
func newHost(t *testing.T) testutil.NetNS {
	t.Helper()
	ns := testutil.NewNetNS(t, "rt")
	// No dummy driver in this kernel: a veth pair with both ends up stands in.
	ns.MustExec(t, "ip", "link", "add", "rtup0", "type", "veth", "peer", "name", "rtup1")
	ns.MustExec(t, "ip", "link", "set", "rtup1", "up")
	ns.MustExec(t, "ip", "addr", "add", "10.99.0.1/24", "dev", "rtup0")
	ns.MustExec(t, "ip", "-6", "addr", "add", "fd00:99::1/64", "dev", "rtup0", "nodad")
	ns.MustExec(t, "ip", "link", "set", "rtup0", "up")
	ns.MustExec(t, "ip", "route", "add", "default", "dev", "rtup0")
	return ns
}

func apply(t *testing.T, d *Driver, des *dataplane.Desired) ApplyStats {
	t.Helper()
	d.SetDesired(des)
	st, err := d.Apply(context.Background())
	if err != nil {
		t.Fatalf("apply: %v (stats %+v)", err, st)
	}
	return st
}

type ipRoute struct {
	Dst      string   `json:"dst"`
	Type     string   `json:"type"`
	Gateway  string   `json:"gateway"`
	Dev      string   `json:"dev"`
	Protocol string   `json:"protocol"`
	Scope    string   `json:"scope"`
	Flags    []string `json:"flags"`
}

// kernelRoutes lists the main table of ns for family "-4" or "-6", by
// destination, optionally only one protocol.
func kernelRoutes(t *testing.T, ns testutil.NetNS, family string, proto string) map[string]ipRoute {
	t.Helper()
	args := []string{"ip", "-j", family, "route", "show", "table", "main"}
	if proto != "" {
		args = append(args, "proto", proto)
	}
	out := ns.MustExec(t, args...)
	var rs []ipRoute
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("parse %q: %v", out, err)
	}
	m := map[string]ipRoute{}
	for _, r := range rs {
		dst := r.Dst
		if dst != "default" && !strings.Contains(dst, "/") {
			if strings.Contains(dst, ":") {
				dst += "/128"
			} else {
				dst += "/32"
			}
		}
		m[dst] = r
	}
	return m
}

func describe(m map[string]ipRoute) string {
	var b strings.Builder
	for k, r := range m {
		fmt.Fprintf(&b, "%s:%+v ", k, r)
	}
	return b.String()
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

func sysctlIn(t *testing.T, ns testutil.NetNS, key string) string {
	t.Helper()
	return strings.TrimSpace(ns.MustExec(t, "cat", "/proc/sys/"+key))
}

func TestRoutesAddReplaceRemoveOursOnly(t *testing.T) {
	testutil.RequireRoot(t)
	ns := newHost(t)
	ns.MustExec(t, "ip", "link", "add", "caliaaa", "type", "veth", "peer", "name", "rtpaaa")
	// Someone else's routes: a static one we also want (conflict), a static one we don't.
	ns.MustExec(t, "ip", "route", "add", "10.70.0.0/24", "via", "10.99.0.5", "proto", "static")
	ns.MustExec(t, "ip", "route", "add", "10.71.0.0/24", "via", "10.99.0.5", "proto", "static")
	// A stale route of ours from an earlier life: must go.
	ns.MustExec(t, "ip", "route", "add", "10.72.0.0/24", "via", "10.99.0.5", "proto", "80")

	d := newDriver(t, ns)
	des := &dataplane.Desired{
		Endpoints: []dataplane.Endpoint{{ID: "ns/a", Iface: "caliaaa", Addrs: []netip.Prefix{pfx("10.65.0.2/32")}}},
		Routes: []dataplane.Route{
			{Dst: pfx("10.65.0.0/26"), Type: dataplane.RouteBlackhole},
			{Dst: pfx("10.65.0.2/32"), Type: dataplane.RouteLocal, Iface: "caliaaa"},
			{Dst: pfx("10.70.0.0/24"), Type: dataplane.RouteVia, Gateway: addr("10.99.0.3")},
			{Dst: pfx("10.80.0.0/24"), Type: dataplane.RouteVia, Gateway: addr("10.99.0.2")},
		},
	}
	st := apply(t, d, des)
	if st.RoutesAdded != 3 || st.RoutesDeleted != 1 || st.RouteConflicts != 1 || st.RoutesPending != 0 {
		t.Fatalf("first apply stats: %+v", st)
	}
	ours := kernelRoutes(t, ns, "-4", "80")
	if len(ours) != 3 {
		t.Fatalf("want 3 routes of ours, got %s", describe(ours))
	}
	if r := ours["10.65.0.0/26"]; r.Type != "blackhole" {
		t.Errorf("blackhole: %+v", r)
	}
	if r := ours["10.65.0.2/32"]; r.Dev != "caliaaa" || r.Scope != "link" {
		t.Errorf("local: %+v", r)
	}
	if r := ours["10.80.0.0/24"]; r.Gateway != "10.99.0.2" || r.Dev != "rtup0" {
		t.Errorf("via: %+v", r)
	}
	all := kernelRoutes(t, ns, "-4", "")
	if r := all["10.70.0.0/24"]; r.Protocol != "static" || r.Gateway != "10.99.0.5" {
		t.Errorf("conflicting static route was touched: %+v", r)
	}
	if _, ok := all["10.71.0.0/24"]; !ok {
		t.Errorf("unrelated static route removed")
	}
	if _, ok := all["10.72.0.0/24"]; ok {
		t.Errorf("stale route of ours survived")
	}

	// Idempotent: nothing to do the second time (the conflict stays a conflict).
	st = apply(t, d, des)
	if st.Changes() != 0 {
		t.Fatalf("second apply changed things: %+v", st)
	}

	// Change a gateway, drop the blackhole and the conflicting wish.
	des2 := &dataplane.Desired{
		Endpoints: des.Endpoints,
		Routes: []dataplane.Route{
			{Dst: pfx("10.65.0.2/32"), Type: dataplane.RouteLocal, Iface: "caliaaa"},
			{Dst: pfx("10.80.0.0/24"), Type: dataplane.RouteVia, Gateway: addr("10.99.0.3")},
		},
	}
	st = apply(t, d, des2)
	if st.RoutesReplaced != 1 || st.RoutesDeleted != 1 || st.RoutesAdded != 0 || st.RouteConflicts != 0 {
		t.Fatalf("change stats: %+v", st)
	}
	ours = kernelRoutes(t, ns, "-4", "80")
	if len(ours) != 2 || ours["10.80.0.0/24"].Gateway != "10.99.0.3" {
		t.Fatalf("after change: %s", describe(ours))
	}
	all = kernelRoutes(t, ns, "-4", "")
	if all["10.70.0.0/24"].Protocol != "static" || all["10.71.0.0/24"].Protocol != "static" {
		t.Fatalf("static routes not intact: %s", describe(all))
	}

	// Someone replaces our local route by hand with one on another device:
	// an Apply trusts what it programmed (no dump of the kernel's routes),
	// the Resync (periodic in the agent) reads the kernel and puts ours back.
	ns.MustExec(t, "ip", "route", "replace", "10.65.0.2/32", "dev", "rtup0", "proto", "80")
	if st = apply(t, d, des2); st.Changes() != 0 {
		t.Fatalf("an apply without a resync read the kernel's routes: %+v", st)
	}
	st, err := d.Resync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.RoutesReplaced != 1 {
		t.Fatalf("drift repair stats: %+v", st)
	}
	if r := kernelRoutes(t, ns, "-4", "80")["10.65.0.2/32"]; r.Dev != "caliaaa" {
		t.Fatalf("drift not repaired: %+v", r)
	}

	// Empty desired state removes all of ours and nothing else.
	st = apply(t, d, &dataplane.Desired{})
	if st.RoutesDeleted != 2 {
		t.Fatalf("empty apply stats: %+v", st)
	}
	if ours := kernelRoutes(t, ns, "-4", "80"); len(ours) != 0 {
		t.Fatalf("routes of ours left: %s", describe(ours))
	}
	if len(kernelRoutes(t, ns, "-4", "static")) != 2 {
		t.Fatalf("static routes lost")
	}
}

func TestRoutesIPv6(t *testing.T) {
	testutil.RequireRoot(t)
	ns := newHost(t)
	ns.MustExec(t, "ip", "link", "add", "calibbb", "type", "veth", "peer", "name", "rtpbbb")
	ns.MustExec(t, "ip", "-6", "route", "add", "fd00:71::/64", "via", "fd00:99::5", "proto", "static")
	d := newDriver(t, ns)
	des := &dataplane.Desired{
		Endpoints: []dataplane.Endpoint{{ID: "ns/b", Iface: "calibbb", Addrs: []netip.Prefix{pfx("fd00:65::2/128")}}},
		Routes: []dataplane.Route{
			{Dst: pfx("fd00:65::/122"), Type: dataplane.RouteBlackhole},
			{Dst: pfx("fd00:65::2/128"), Type: dataplane.RouteLocal, Iface: "calibbb"},
			{Dst: pfx("fd00:80::/64"), Type: dataplane.RouteVia, Gateway: addr("fd00:99::2")},
		},
	}
	st := apply(t, d, des)
	if st.RoutesAdded != 3 {
		t.Fatalf("stats: %+v", st)
	}
	ours := kernelRoutes(t, ns, "-6", "80")
	if ours["fd00:65::/122"].Type != "blackhole" || ours["fd00:65::2/128"].Dev != "calibbb" ||
		ours["fd00:80::/64"].Gateway != "fd00:99::2" {
		t.Fatalf("routes: %s", describe(ours))
	}
	if st := apply(t, d, des); st.Changes() != 0 {
		t.Fatalf("second apply: %+v", st)
	}
	des.Routes[2].Gateway = addr("fd00:99::3")
	if st := apply(t, d, des); st.RoutesReplaced != 1 || st.Changes() != 1 {
		t.Fatalf("replace: %+v", st)
	}
	if st := apply(t, d, &dataplane.Desired{}); st.RoutesDeleted != 3 {
		t.Fatalf("remove: %+v", st)
	}
	if kernelRoutes(t, ns, "-6", "static")["fd00:71::/64"].Gateway != "fd00:99::5" {
		t.Fatalf("static IPv6 route lost")
	}
}

func TestSysctlsAndLinkSettings(t *testing.T) {
	testutil.RequireRoot(t)
	ns := newHost(t)
	ns.MustExec(t, "ip", "link", "add", "caliccc", "type", "veth", "peer", "name", "rtpccc")
	ns.MustExec(t, "ip", "link", "add", "calic6c", "type", "veth", "peer", "name", "rtpc6c")
	// Not ours by name: must not be configured even if an endpoint names it.
	ns.MustExec(t, "ip", "link", "add", "rtother", "type", "veth", "peer", "name", "rtpother")
	d := newDriver(t, ns)
	des := &dataplane.Desired{
		Endpoints: []dataplane.Endpoint{
			{ID: "ns/c", Iface: "caliccc", Addrs: []netip.Prefix{pfx("10.65.0.5/32")}},
			{ID: "ns/c6", Iface: "calic6c", Addrs: []netip.Prefix{pfx("10.65.0.6/32"), pfx("fd00:65::6/128")}},
			{ID: "ns/x", Iface: "rtother", Addrs: []netip.Prefix{pfx("10.65.0.7/32")}},
		},
	}
	st := apply(t, d, des)
	if st.LinksChanged != 4 { // two MACs, two up
		t.Errorf("links changed: %+v", st)
	}
	want := map[string]string{
		"net/ipv4/ip_forward":                "1",
		"net/ipv6/conf/all/forwarding":       "1",
		"net/ipv4/conf/caliccc/proxy_arp":    "1",
		"net/ipv4/neigh/caliccc/proxy_delay": "0",
		"net/ipv4/conf/caliccc/forwarding":   "1",
		"net/ipv4/conf/caliccc/rp_filter":    "1",
		"net/ipv6/conf/caliccc/accept_ra":    "0",
		"net/ipv6/conf/caliccc/proxy_ndp":    "0", // no IPv6 on this endpoint
		"net/ipv6/conf/calic6c/proxy_ndp":    "1",
		"net/ipv6/conf/calic6c/accept_ra":    "0",
		"net/ipv6/conf/calic6c/forwarding":   "1",
		"net/ipv4/conf/rtother/proxy_arp":    "0",
		"net/ipv4/neigh/rtother/proxy_delay": "80", // kernel default, untouched
	}
	for k, v := range want {
		if got := sysctlIn(t, ns, k); got != v {
			t.Errorf("%s = %s, want %s", k, got, v)
		}
	}
	for _, name := range []string{"caliccc", "calic6c"} {
		out := ns.MustExec(t, "ip", "-j", "link", "show", name)
		if !strings.Contains(out, `"address":"ee:ee:ee:ee:ee:ee"`) || !strings.Contains(out, `"UP"`) {
			t.Errorf("%s not configured: %s", name, out)
		}
	}
	if out := ns.MustExec(t, "ip", "-j", "link", "show", "rtother"); strings.Contains(out, "ee:ee:ee:ee:ee:ee") {
		t.Errorf("interface without the prefix was changed: %s", out)
	}
	// The settings went to the test namespace, not to this process's own.
	if _, err := os.Stat("/proc/sys/net/ipv4/conf/caliccc"); err == nil {
		t.Errorf("caliccc visible in the test process's namespace")
	}
	if st := apply(t, d, des); st.Changes() != 0 {
		t.Errorf("second apply: %+v", st)
	}
	// Drift in a sysctl is repaired by Resync (not by every Apply).
	ns.MustExec(t, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/conf/caliccc/proxy_arp")
	d.SetDesired(des)
	st, err := d.Resync(context.Background())
	if err != nil || st.SysctlsWritten != 1 {
		t.Fatalf("resync: %+v %v", st, err)
	}
	if got := sysctlIn(t, ns, "net/ipv4/conf/caliccc/proxy_arp"); got != "1" {
		t.Fatalf("proxy_arp not repaired: %s", got)
	}
	// A re-created interface (new index) is configured again.
	ns.MustExec(t, "ip", "link", "del", "caliccc")
	ns.MustExec(t, "ip", "link", "add", "caliccc", "type", "veth", "peer", "name", "rtpccc")
	st = apply(t, d, des)
	if st.SysctlsWritten < 3 || st.LinksChanged != 2 {
		t.Fatalf("re-created interface: %+v", st)
	}
	// An endpoint that gains IPv6 gets the IPv6 settings.
	des.Endpoints[0].Addrs = append(des.Endpoints[0].Addrs, pfx("fd00:65::5/128"))
	// (Its IPv6 forwarding is on already: all/forwarding=1 reaches every interface.)
	if st := apply(t, d, des); st.SysctlsWritten != 1 {
		t.Fatalf("IPv6 added: %+v", st)
	}
	if got := sysctlIn(t, ns, "net/ipv6/conf/caliccc/proxy_ndp"); got != "1" {
		t.Fatalf("proxy_ndp after IPv6 was added: %s", got)
	}
}

func TestPendingInterfaceAppearsThroughWatchLinks(t *testing.T) {
	testutil.RequireRoot(t)
	ns := newHost(t)
	d := newDriver(t, ns)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := d.WatchLinks(ctx)

	des := &dataplane.Desired{
		Endpoints: []dataplane.Endpoint{{ID: "ns/d", Iface: "caliddd", Addrs: []netip.Prefix{pfx("10.65.0.9/32")}}},
		Routes:    []dataplane.Route{{Dst: pfx("10.65.0.9/32"), Type: dataplane.RouteLocal, Iface: "caliddd"}},
	}
	st := apply(t, d, des)
	if st.RoutesPending != 1 || len(st.PendingIfaces) != 1 || st.PendingIfaces[0] != "caliddd" || st.RoutesAdded != 0 {
		t.Fatalf("pending stats: %+v", st)
	}
	// Links without the prefix are not reported.
	ns.MustExec(t, "ip", "link", "add", "rtnoise", "type", "veth", "peer", "name", "rtnoise1")
	ns.MustExec(t, "ip", "link", "add", "caliddd", "type", "veth", "peer", "name", "rtpddd")
	select {
	case name := <-events:
		if name != "caliddd" {
			t.Fatalf("event for %q", name)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no link event for caliddd")
	}
	st = apply(t, d, des)
	if st.RoutesAdded != 1 || st.RoutesPending != 0 {
		t.Fatalf("after link appeared: %+v", st)
	}
	if r := kernelRoutes(t, ns, "-4", "80")["10.65.0.9/32"]; r.Dev != "caliddd" {
		t.Fatalf("route not installed: %+v", r)
	}
	// Our own change (MAC, up) is reported too; a re-apply is then a no-op.
	select {
	case name := <-events:
		if name != "caliddd" {
			t.Fatalf("event for %q", name)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no link event for the configured caliddd")
	}
	if st := apply(t, d, des); st.Changes() != 0 {
		t.Fatalf("re-apply after event: %+v", st)
	}
	cancel()
	for range events {
	}
}
