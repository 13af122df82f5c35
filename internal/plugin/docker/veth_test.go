package docker

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/testutil"
	"github.com/calico-docker/calico/internal/workload"
)

// Join and Leave against the kernel, in a network namespace the test
// creates (root only).

func TestJoinLeave(t *testing.T) {
	ns := testutil.NewNetNS(t, "dkp")
	// The namespace's uplink: a veth with MTU 9000 and the default route.
	ns.MustExec(t, "ip", "link", "add", "up0", "mtu", "9000", "type", "veth", "peer", "name", "up1", "mtu", "9000")
	ns.MustExec(t, "ip", "link", "set", "up0", "up")
	ns.MustExec(t, "ip", "addr", "add", "192.0.2.1/24", "dev", "up0")
	ns.MustExec(t, "ip", "route", "add", "default", "via", "192.0.2.254")
	e := newEnv(t, func(c *Config) { c.NetNS = ns.Path(); c.MTU = 0 })
	e.networkCreated(testNetID, "frontend")

	a := e.requestAddress(PoolIDv4, "", macA)
	a6 := e.requestAddress(PoolIDv6, "", macA)
	e.ok("/NetworkDriver.CreateEndpoint", map[string]any{"NetworkID": testNetID, "EndpointID": epA,
		"Interface": map[string]any{"Address": a, "AddressIPv6": a6, "MacAddress": macA}})
	join := map[string]any{"NetworkID": testNetID, "EndpointID": epA, "SandboxKey": "/var/run/docker/netns/x"}
	out := e.ok("/NetworkDriver.Join", join)
	ifn := out["InterfaceName"].(map[string]any)
	if ifn["SrcName"] != "tmp"+epA[:11] || ifn["DstPrefix"] != "eth" {
		t.Fatalf("InterfaceName %v", ifn)
	}
	if out["Gateway"] != "169.254.1.1" || out["GatewayIPv6"] != workload.HostIPv6Gateway.String() {
		t.Fatalf("gateways %v %v", out["Gateway"], out["GatewayIPv6"])
	}
	routes := out["StaticRoutes"].([]any)
	if len(routes) != 2 || routes[0].(map[string]any)["Destination"] != "169.254.1.1/32" ||
		routes[0].(map[string]any)["RouteType"] != float64(routeConnected) {
		t.Fatalf("static routes %v", routes)
	}
	host := "cali" + epA[:11]
	link := ns.MustExec(t, "ip", "-d", "link", "show", host)
	if !strings.Contains(link, "mtu 9000") || !strings.Contains(link, "ee:ee:ee:ee:ee:ee") || !strings.Contains(link, "veth") {
		t.Fatalf("host side: %s", link)
	}
	ns.MustExec(t, "ip", "link", "show", "tmp"+epA[:11])
	// Docker may repeat a Join; it succeeds.
	e.ok("/NetworkDriver.Join", join)

	e.ok("/NetworkDriver.Leave", map[string]any{"NetworkID": testNetID, "EndpointID": epA})
	if out, err := ns.Exec("ip", "link", "show", host); err == nil {
		t.Fatalf("%s still there after Leave: %s", host, out)
	}
	e.ok("/NetworkDriver.Leave", map[string]any{"NetworkID": testNetID, "EndpointID": epA})

	// MTU: a VXLAN pool takes its overhead off the uplink's; -o mtu wins.
	putPool(t, e.st, "vx", "10.90.0.0/16", func(p *api.IPPool) { p.Spec.VXLANMode = api.EncapAlways })
	e.clock.Add(mtuCacheTTL * 2)
	b := e.requestAddress(PoolIDv4, "", macB)
	e.ok("/NetworkDriver.CreateEndpoint", map[string]any{"NetworkID": testNetID, "EndpointID": epB,
		"Interface": map[string]any{"Address": b, "MacAddress": macB}})
	out = e.ok("/NetworkDriver.Join", map[string]any{"NetworkID": testNetID, "EndpointID": epB})
	if _, v6 := out["GatewayIPv6"]; v6 {
		t.Fatalf("IPv4-only endpoint got an IPv6 gateway: %v", out)
	}
	if link := ns.MustExec(t, "ip", "link", "show", "cali"+epB[:11]); !strings.Contains(link, "mtu 8950") {
		t.Fatalf("with a VXLAN pool: %s", link)
	}
	e.ok("/NetworkDriver.Leave", map[string]any{"NetworkID": testNetID, "EndpointID": epB})
	e.srv.setNetworkName(testNetID, "frontend", 1300)
	e.ok("/NetworkDriver.Join", map[string]any{"NetworkID": testNetID, "EndpointID": epB})
	if link := ns.MustExec(t, "ip", "link", "show", "cali"+epB[:11]); !strings.Contains(link, "mtu 1300") {
		t.Fatalf("with -o mtu=1300: %s", link)
	}
	e.ok("/NetworkDriver.Leave", map[string]any{"NetworkID": testNetID, "EndpointID": epB})

	// After a restart the server reads the endpoint back for Join.
	srv2, err := NewServer(e.srv.cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv2.setNetworkName(testNetID, "frontend", 0)
	if _, err := srv2.join(context.Background(), &joinRequest{NetworkID: testNetID, EndpointID: epA}); err != nil {
		t.Fatalf("join after restart: %v", err)
	}
	if _, err := srv2.leave(context.Background(), &endpointRequest{NetworkID: testNetID, EndpointID: epA}); err != nil {
		t.Fatal(err)
	}
	e.fails("/NetworkDriver.Join", map[string]any{"NetworkID": testNetID, "EndpointID": strings.Repeat("f", 64)},
		http.StatusBadRequest, "is unknown")
}

func TestUplinkMTUWithoutDefaultRoute(t *testing.T) {
	ns := testutil.NewNetNS(t, "dkp")
	m, err := uplinkMTU(ns.Path())
	if err != nil || m != defaultMTU {
		t.Fatalf("uplinkMTU = %d, %v; want %d", m, err, defaultMTU)
	}
}
