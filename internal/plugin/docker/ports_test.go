package docker

import (
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/hostports"
)

func TestParsePortMap(t *testing.T) {
	pm := func(bs ...map[string]any) map[string]any {
		l := make([]any, len(bs))
		for i, b := range bs {
			l[i] = b
		}
		return map[string]any{optPortMap: l, optExposedPorts: []any{map[string]any{"Proto": 6, "Port": 80}}}
	}
	for _, c := range []struct {
		name string
		opts map[string]any
		want []portRequest
		err  string
	}{
		{"none", map[string]any{}, nil, ""},
		{"-p 8080:80 as Docker 20.10 sends it", pm(map[string]any{"Proto": 6, "IP": "", "Port": 80, "HostIP": "", "HostPort": 8080, "HostPortEnd": 8080}),
			[]portRequest{{proto: "tcp", port: 80, first: 8080, last: 8080}}, ""},
		{"-P (no host port)", pm(map[string]any{"Proto": 6, "Port": 80}), []portRequest{{proto: "tcp", port: 80}}, ""},
		{"udp on one address, a range", pm(map[string]any{"Proto": 17, "Port": 53, "HostIP": "10.0.0.1", "HostPort": 5000, "HostPortEnd": 5010}),
			[]portRequest{{proto: "udp", port: 53, hostIP: "10.0.0.1", first: 5000, last: 5010}}, ""},
		{"IPv6 and a protocol name", pm(map[string]any{"Proto": "tcp", "Port": 80, "HostIP": "::", "HostPort": 80}),
			[]portRequest{{proto: "tcp", port: 80, hostIP: "::", first: 80, last: 80}}, ""},
		{"sctp", pm(map[string]any{"Proto": 132, "Port": 80, "HostPort": 80}), nil, "-p 80/sctp: the calico driver publishes TCP and UDP ports only"},
		{"bad host IP", pm(map[string]any{"Proto": 6, "Port": 80, "HostIP": "nope", "HostPort": 80}), nil, `host IP "nope" is not an IP address`},
		{"no container port", pm(map[string]any{"Proto": 6, "HostPort": 80}), nil, "has no container port"},
		{"backwards range", pm(map[string]any{"Proto": 6, "Port": 80, "HostPort": 90, "HostPortEnd": 80}), nil, "bad host port range 90-80"},
		{"not a list", map[string]any{optPortMap: "x"}, nil, "is not a list of port bindings"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parsePortMap(c.opts)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v %v, want %+v", got, err, c.want)
			}
		})
	}
}

// TestPublishPorts drives Program/RevokeExternalConnectivity with a real
// Holder bound to loopback addresses: ports recorded on the endpoint,
// conflicts with another endpoint and another process refused with the
// port named, nothing kept after a refusal, released on revoke and delete.
func TestPublishPorts(t *testing.T) {
	h := hostports.New(quietLogger())
	t.Cleanup(h.Close)
	e := newEnv(t, func(c *Config) { c.HostPorts = h })
	e.networkCreated(testNetID, "frontend")
	mk := func(ep, mac string) {
		a := e.requestAddress(PoolIDv4, "", mac)
		e.ok("/NetworkDriver.CreateEndpoint", map[string]any{"NetworkID": testNetID, "EndpointID": ep,
			"Interface": map[string]any{"Address": a, "MacAddress": mac}})
	}
	mk(epA, macA)
	mk(epB, "02:42:0a:00:00:02")
	lo := "127.0.0.1"
	free := freePort(t)
	bind := func(ep string, bs ...map[string]any) map[string]any {
		l := make([]any, len(bs))
		for i, b := range bs {
			l[i] = b
		}
		return map[string]any{"NetworkID": testNetID, "EndpointID": ep, "Options": map[string]any{optPortMap: l}}
	}
	e.ok("/NetworkDriver.ProgramExternalConnectivity", bind(epA,
		map[string]any{"Proto": 6, "Port": 80, "HostIP": lo, "HostPort": free, "HostPortEnd": free},
		map[string]any{"Proto": 17, "Port": 53, "HostIP": lo, "HostPort": free},
		map[string]any{"Proto": 6, "Port": 81, "HostIP": lo}))
	w := e.wep(epA)
	if len(w.Spec.Ports) != 3 || w.Spec.Ports[0].HostPort != uint16(free) || w.Spec.Ports[0].HostIP != lo ||
		w.Spec.Ports[1].Protocol.Name != "UDP" || w.Spec.Ports[2].HostPort == 0 {
		t.Fatalf("ports %+v", w.Spec.Ports)
	}
	if n := len(h.Held(w.Name)); n != 3 {
		t.Fatalf("%d sockets held, want 3", n)
	}
	// The same TCP port for another container: refused, naming the port.
	e.fails("/NetworkDriver.ProgramExternalConnectivity", bind(epB, map[string]any{"Proto": 6, "Port": 80, "HostPort": free}),
		http.StatusInternalServerError, "bind for 0.0.0.0:"+itoa(free)+"/tcp failed: port is already allocated")
	if wb := e.wep(epB); len(wb.Spec.Ports) != 0 || len(h.Held(wb.Name)) != 0 {
		t.Fatalf("a refused container kept %+v", wb.Spec.Ports)
	}
	// A port another process listens on.
	taken := listenTCP(t)
	e.fails("/NetworkDriver.ProgramExternalConnectivity", bind(epB,
		map[string]any{"Proto": 6, "Port": 90, "HostIP": lo, "HostPort": 0},
		map[string]any{"Proto": 6, "Port": 80, "HostIP": lo, "HostPort": taken}),
		http.StatusInternalServerError, "bind for 127.0.0.1:"+itoa(taken)+"/tcp failed: port is already allocated (another process")
	if wb := e.wep(epB); len(wb.Spec.Ports) != 0 || len(h.Held(wb.Name)) != 0 {
		t.Fatalf("a refused container kept ports %+v, sockets %v", wb.Spec.Ports, h.Held(wb.Name))
	}
	// A range skips the taken port. The range is wide because other
	// processes on a busy machine take ports next to it too.
	e.ok("/NetworkDriver.ProgramExternalConnectivity", bind(epB, map[string]any{"Proto": 6, "Port": 80, "HostIP": lo, "HostPort": taken, "HostPortEnd": taken + 32}))
	if wb := e.wep(epB); len(wb.Spec.Ports) != 1 || int(wb.Spec.Ports[0].HostPort) <= taken || int(wb.Spec.Ports[0].HostPort) > taken+32 {
		t.Fatalf("range %d-%d with %d taken: got %+v", taken, taken+32, taken, wb.Spec.Ports)
	}
	e.ok("/NetworkDriver.RevokeExternalConnectivity", map[string]any{"NetworkID": testNetID, "EndpointID": epA})
	if w := e.wep(epA); len(w.Spec.Ports) != 0 || len(h.Held(w.Name)) != 0 {
		t.Fatalf("after revoke: %+v", w.Spec.Ports)
	}
	// Free again: another container may have it now.
	e.ok("/NetworkDriver.ProgramExternalConnectivity", bind(epA, map[string]any{"Proto": 6, "Port": 80, "HostIP": lo, "HostPort": free}))
	e.ok("/NetworkDriver.DeleteEndpoint", map[string]any{"NetworkID": testNetID, "EndpointID": epA})
	if n := len(h.Held(libnetworkWEPName(testNode, epA))); n != 0 {
		t.Fatalf("%d sockets held after DeleteEndpoint", n)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// freePort is a TCP port free on loopback just now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// listenTCP holds a loopback TCP port for the test and returns it.
func listenTCP(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().(*net.TCPAddr).Port
}
