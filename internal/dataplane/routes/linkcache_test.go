package routes

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/testutil"
)

// With WatchLinks running, Apply uses its link cache: an interface deleted
// and re-created under the same name (a new index) must still get its
// route and sysctls back, and an Apply of an unchanged state must not dump
// the links (it asks for none it knows).
func TestLinkCacheFollowsRecreatedInterface(t *testing.T) {
	testutil.RequireRoot(t)
	ns := newHost(t)
	d := newDriver(t, ns)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := d.WatchLinks(ctx)
	go func() {
		for range events {
		}
	}()
	ns.MustExec(t, "ip", "link", "add", "calieee", "type", "veth", "peer", "name", "rtpeee")
	des := &dataplane.Desired{
		Endpoints: []dataplane.Endpoint{{ID: "ns/e", Iface: "calieee", Addrs: []netip.Prefix{pfx("10.65.0.11/32")}}},
		Routes:    []dataplane.Route{{Dst: pfx("10.65.0.11/32"), Type: dataplane.RouteLocal, Iface: "calieee"}},
	}
	// Until the watch is subscribed and an Apply has filled the cache.
	testutil.Eventually(t, 10*time.Second, func() error {
		apply(t, d, des)
		d.linkMu.Lock()
		defer d.linkMu.Unlock()
		if !d.lc.watching || d.lc.allDirty || d.links == nil {
			return fmt.Errorf("link cache not in use yet")
		}
		return nil
	})
	if r := kernelRoutes(t, ns, "-4", "80")["10.65.0.11/32"]; r.Dev != "calieee" {
		t.Fatalf("route not installed: %+v", r)
	}
	ns.MustExec(t, "ip", "link", "del", "calieee")
	ns.MustExec(t, "ip", "link", "add", "calieee", "type", "veth", "peer", "name", "rtpeee")
	// The watch marks calieee; the next Applies find the new link, route it
	// and set its sysctls again.
	testutil.Eventually(t, 10*time.Second, func() error {
		apply(t, d, des)
		if r := kernelRoutes(t, ns, "-4", "80")["10.65.0.11/32"]; r.Dev != "calieee" {
			return fmt.Errorf("route: %+v", r)
		}
		if got := sysctlIn(t, ns, "net/ipv4/conf/calieee/proxy_arp"); got != "1" {
			return fmt.Errorf("proxy_arp %s", got)
		}
		return nil
	})
}
