package docker

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/api"
)

func TestContainerNamedPorts(t *testing.T) {
	ports, problems := containerNamedPorts(map[string]string{
		LabelPortPrefix + "http":    "80",
		LabelPortPrefix + "dns":     "53/udp, 53/TCP",
		LabelPortPrefix + "assoc":   "2905/sctp",
		LabelPortPrefix + "HTTP":    "80",        // bad name
		LabelPortPrefix + "metrics": "9090/icmp", // bad protocol
		LabelPortPrefix + "admin":   "0",         // bad port
		LabelPortPrefix + "big":     "70000",     // bad port
		"role":                      "web",
	})
	want := []api.WorkloadEndpointPort{
		{Name: "assoc", Protocol: api.Protocol{Name: "SCTP"}, Port: 2905},
		{Name: "dns", Protocol: api.Protocol{Name: "TCP"}, Port: 53},
		{Name: "dns", Protocol: api.Protocol{Name: "UDP"}, Port: 53},
		{Name: "http", Protocol: api.Protocol{Name: "TCP"}, Port: 80},
	}
	if !slices.EqualFunc(ports, want, samePort) {
		t.Errorf("ports %+v, want %+v", ports, want)
	}
	if len(problems) != 4 {
		t.Fatalf("problems %q, want 4", problems)
	}
	for i, want := range []string{"HTTP", "admin", "big", "metrics"} {
		if !strings.Contains(problems[i], LabelPortPrefix+want) {
			t.Errorf("problem %d %q does not name label %s", i, problems[i], want)
		}
	}
}

// TestNamedPortLabels: container labels give the endpoint named ports,
// valid as Calico validates spec.ports; published ports stay; a label
// removed removes its port.
func TestNamedPortLabels(t *testing.T) {
	e := newEnv(t)
	e.networkCreated(testNetID, "frontend")
	a := e.requestAddress(PoolIDv4, "", macA)
	e.ok("/NetworkDriver.CreateEndpoint", map[string]any{"NetworkID": testNetID, "EndpointID": epA,
		"Interface": map[string]any{"Address": a, "MacAddress": macA}})
	published := api.WorkloadEndpointPort{Protocol: api.Protocol{Name: "TCP"}, Port: 80, HostPort: 8080}
	if err := updateWEP(context.Background(), e.srv.store, libnetworkWEPName(e.srv.node, epA), func(w *api.WorkloadEndpoint) bool {
		w.Spec.Ports = []api.WorkloadEndpointPort{published}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	cid := strings.Repeat("e", 64)
	labels := map[string]string{"role": "web", LabelPortPrefix + "http": "80", LabelPortPrefix + "dns": "53/udp", LabelPortPrefix + "x_y": "1"}
	if err := e.srv.applyLabels(context.Background(), cid, "/web_1", labels, []string{epA}); err != nil {
		t.Fatal(err)
	}
	w := e.wep(epA)
	want := []api.WorkloadEndpointPort{published,
		{Name: "dns", Protocol: api.Protocol{Name: "UDP"}, Port: 53},
		{Name: "http", Protocol: api.Protocol{Name: "TCP"}, Port: 80}}
	if !slices.EqualFunc(w.Spec.Ports, want, samePort) {
		t.Fatalf("ports %+v, want %+v", w.Spec.Ports, want)
	}
	for k := range w.Labels {
		if strings.HasPrefix(k, LabelPortPrefix) {
			t.Errorf("port label %s became an endpoint label", k)
		}
	}
	if err := api.Validate(w); err != nil {
		t.Fatalf("endpoint with named ports does not validate: %v", err)
	}
	rv := w.ResourceVersion
	if err := e.srv.applyLabels(context.Background(), cid, "/web_1", labels, []string{epA}); err != nil {
		t.Fatal(err)
	}
	if e.wep(epA).ResourceVersion != rv {
		t.Fatal("unchanged named ports were rewritten")
	}
	delete(labels, LabelPortPrefix+"dns")
	if err := e.srv.applyLabels(context.Background(), cid, "/web_1", labels, []string{epA}); err != nil {
		t.Fatal(err)
	}
	if got := e.wep(epA).Spec.Ports; !slices.EqualFunc(got, []api.WorkloadEndpointPort{published, want[2]}, samePort) {
		t.Fatalf("after removing the dns label: ports %+v", got)
	}
}
