package calc

import (
	"reflect"
	"testing"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/dataplane"
)

func wport(name, protocol string, port uint16) api.WorkloadEndpointPort {
	return api.WorkloadEndpointPort{Name: name, Protocol: api.Protocol{Name: protocol}, Port: port}
}

func app(a string, p uint8, port uint16) dataplane.AddrProtoPort {
	return dataplane.AddrProtoPort{Addr: addr(a), Protocol: p, Port: port}
}

// TestComputeNamedPorts resolves named ports as Calico does: a set per
// (side selector, name, rule protocol) of the (address, protocol, port) of
// the picked endpoints' ports of that name; numbers and names in one list
// are alternatives that never both match.
func TestComputeNamedPorts(t *testing.T) {
	a := wep("ns", "a", "h1", "cali1", []string{"10.0.0.1/32"}, map[string]string{"app": "web"})
	a.Spec.Ports = []api.WorkloadEndpointPort{wport("http", "TCP", 80), wport("http", "UDP", 8080), wport("dns", "UDP", 53)}
	b := wep("ns", "b", "h2", "cali2", []string{"10.0.0.2/32", "fd00::2/128", "10.8.0.0/24"}, map[string]string{"app": "web"})
	b.Spec.Ports = []api.WorkloadEndpointPort{wport("http", "6", 8080)}
	c := wep("ns", "c", "h2", "cali3", []string{"10.0.0.3/32"}, map[string]string{"app": "db"})
	c.Spec.Ports = []api.WorkloadEndpointPort{wport("http", "TCP", 81)}
	rules := []api.Rule{
		{Action: api.ActionAllow, Protocol: proto("TCP"), Destination: api.EntityRule{Selector: "app == 'web'",
			Ports: []api.Port{{PortName: "http"}, {MinPort: 443, MaxPort: 443}}}},
		{Action: api.ActionDeny, Destination: api.EntityRule{Ports: []api.Port{{PortName: "http"}, {PortName: "dns"}}}},
		{Action: api.ActionLog, Protocol: proto("UDP"), Destination: api.EntityRule{NotPorts: []api.Port{{PortName: "dns"}}}},
	}
	s := &Snapshot{Node: "h1", WorkloadEndpoints: []api.WorkloadEndpoint{a, b, c},
		GlobalNetworkPolicies: []api.GlobalNetworkPolicy{gnp("p", nil, "all()", nil, rules, nil)}}
	d := compute(t, s)

	web := setID(t, "app == 'web'")
	webHTTP := setIDFor(canon(t, "app == 'web'") + " namedPort(http/6)")
	anyHTTP := setIDFor("all() namedPort(http/any)")
	anyDNS := setIDFor("all() namedPort(dns/any)")
	udpDNS := setIDFor("all() namedPort(dns/17)")
	want := []dataplane.Rule{
		{Action: dataplane.Allow, Protocol: u8(6), Dst: dataplane.Match{Sets: []string{web}, Ports: []dataplane.PortRange{{First: 443, Last: 443}}}},
		{Action: dataplane.Allow, Protocol: u8(6), Dst: dataplane.Match{Sets: []string{web}, PortSets: []string{webHTTP},
			NotPorts: []dataplane.PortRange{{First: 443, Last: 443}}}},
		{Action: dataplane.Deny, Dst: dataplane.Match{PortSets: []string{anyHTTP}}},
		{Action: dataplane.Deny, Dst: dataplane.Match{PortSets: []string{anyDNS}, NotPortSets: []string{anyHTTP}}},
		{Action: dataplane.Log, Protocol: u8(17), Dst: dataplane.Match{NotPortSets: []string{udpDNS}}},
	}
	if got := chainByID(t, d, "gnp:p").Ingress; !reflect.DeepEqual(got, want) {
		t.Fatalf("rules:\n got %+v\nwant %+v", got, want)
	}
	for _, tt := range []struct {
		id   string
		name string
		want []dataplane.AddrProtoPort
	}{
		// b's /24 has no single address to pair with a port; c is not web.
		{webHTTP, "http", []dataplane.AddrProtoPort{app("10.0.0.1", 6, 80), app("10.0.0.2", 6, 8080), app("fd00::2", 6, 8080)}},
		{anyHTTP, "http", []dataplane.AddrProtoPort{app("10.0.0.1", 6, 80), app("10.0.0.1", 17, 8080), app("10.0.0.2", 6, 8080),
			app("10.0.0.3", 6, 81), app("fd00::2", 6, 8080)}},
		{anyDNS, "dns", []dataplane.AddrProtoPort{app("10.0.0.1", 17, 53)}},
		{udpDNS, "dns", []dataplane.AddrProtoPort{app("10.0.0.1", 17, 53)}},
	} {
		got := setByID(t, d, tt.id)
		if got.NamedPort != tt.name || got.Members != nil || !reflect.DeepEqual(got.PortMembers, tt.want) {
			t.Errorf("set %s (%s): got %+v, want port %s members %v", tt.id, got.Selector, got, tt.name, tt.want)
		}
	}

	// The incremental calculator agrees, and follows endpoints gaining
	// and losing a named port.
	calc := NewCalculator("h1")
	for i := range s.WorkloadEndpoints {
		calc.UpsertWorkloadEndpoint(&s.WorkloadEndpoints[i])
	}
	calc.UpsertGlobalNetworkPolicy(&s.GlobalNetworkPolicies[0])
	if diff := diffDesired(calc.Desired(), d); diff != "" {
		t.Fatalf("calculator differs from Compute:\n%s", diff)
	}
	for _, step := range []struct {
		name  string
		ports []api.WorkloadEndpointPort
		want  []dataplane.AddrProtoPort
	}{
		{"c loses its port", nil, []dataplane.AddrProtoPort{app("10.0.0.1", 6, 80), app("10.0.0.1", 17, 8080), app("10.0.0.2", 6, 8080), app("fd00::2", 6, 8080)}},
		{"c gains another", []api.WorkloadEndpointPort{wport("http", "SCTP", 9000)}, []dataplane.AddrProtoPort{app("10.0.0.1", 6, 80), app("10.0.0.1", 17, 8080),
			app("10.0.0.2", 6, 8080), app("10.0.0.3", 132, 9000), app("fd00::2", 6, 8080)}},
	} {
		s.WorkloadEndpoints[2].Spec.Ports = step.ports
		calc.UpsertWorkloadEndpoint(&s.WorkloadEndpoints[2])
		want := compute(t, s)
		got := calc.Desired()
		if diff := diffDesired(got, want); diff != "" {
			t.Fatalf("%s: calculator differs from Compute:\n%s", step.name, diff)
		}
		if m := setByID(t, got, anyHTTP).PortMembers; !reflect.DeepEqual(m, step.want) {
			t.Errorf("%s: members %v, want %v", step.name, m, step.want)
		}
	}
}
