package calc

import (
	"reflect"
	"testing"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/dataplane"
)

func TestHostPorts(t *testing.T) {
	port := func(proto string, p, hp uint16, hostIP string) api.WorkloadEndpointPort {
		return api.WorkloadEndpointPort{Protocol: api.Protocol{Name: proto}, Port: p, HostPort: hp, HostIP: hostIP}
	}
	hp := func(proto uint8, hostIP string, hostPort uint16, target string, p uint16, ep string) dataplane.HostPort {
		h := dataplane.HostPort{Protocol: proto, HostPort: hostPort, Target: addr(target), Port: p, Endpoint: ep}
		if hostIP != "" {
			h.HostIP = addr(hostIP)
		}
		return h
	}
	dual := []string{"192.168.0.2/32", "fd00::2/128"}
	for _, c := range []struct {
		name  string
		weps  []api.WorkloadEndpoint
		ports [][]api.WorkloadEndpointPort
		want  []dataplane.HostPort
	}{
		{
			name:  "no host IP: every family the endpoint has",
			weps:  []api.WorkloadEndpoint{wep("default", "a", "h1", "cali1", dual, nil)},
			ports: [][]api.WorkloadEndpointPort{{port("TCP", 80, 8080, ""), {Name: "named", Protocol: api.Protocol{Name: "TCP"}, Port: 443}}},
			want:  []dataplane.HostPort{hp(6, "", 8080, "192.168.0.2", 80, "default/a"), hp(6, "", 8080, "fd00::2", 80, "default/a")},
		},
		{
			name: "wildcards pick a family, a specific address its own",
			weps: []api.WorkloadEndpoint{wep("default", "a", "h1", "cali1", dual, nil)},
			ports: [][]api.WorkloadEndpointPort{{port("UDP", 53, 5353, "0.0.0.0"), port("UDP", 53, 5354, "::"),
				port("TCP", 80, 80, "10.0.0.1"), port("TCP", 80, 80, "::ffff:10.0.0.2"), port("TCP", 80, 81, "fd00::9"), port("17", 7, 7, "127.0.0.1")}},
			want: []dataplane.HostPort{
				hp(6, "10.0.0.1", 80, "192.168.0.2", 80, "default/a"), hp(6, "10.0.0.2", 80, "192.168.0.2", 80, "default/a"),
				hp(6, "fd00::9", 81, "fd00::2", 80, "default/a"),
				hp(17, "127.0.0.1", 7, "192.168.0.2", 7, "default/a"),
				hp(17, "", 5353, "192.168.0.2", 53, "default/a"), hp(17, "", 5354, "fd00::2", 53, "default/a"),
			},
		},
		{
			name:  "a family the endpoint lacks, SCTP and remote endpoints are left out",
			weps:  []api.WorkloadEndpoint{wep("default", "a", "h1", "cali1", []string{"192.168.0.2/32"}, nil), wep("default", "b", "h2", "cali2", dual, nil)},
			ports: [][]api.WorkloadEndpointPort{{port("TCP", 80, 8080, "::"), port("SCTP", 80, 8081, "")}, {port("TCP", 80, 8082, "")}},
			want:  nil,
		},
		{
			name: "a conflict goes to the smaller endpoint ID; other families and addresses are no conflict",
			weps: []api.WorkloadEndpoint{wep("default", "b", "h1", "cali2", dual, nil), wep("default", "a", "h1", "cali1", []string{"192.168.0.1/32"}, nil)},
			ports: [][]api.WorkloadEndpointPort{{port("TCP", 80, 8080, ""), port("TCP", 80, 8080, "10.0.0.1")},
				{port("TCP", 81, 8080, "0.0.0.0"), port("UDP", 81, 8080, "")}},
			want: []dataplane.HostPort{
				hp(6, "", 8080, "192.168.0.1", 81, "default/a"), hp(6, "10.0.0.1", 8080, "192.168.0.2", 80, "default/b"),
				hp(6, "", 8080, "fd00::2", 80, "default/b"), hp(17, "", 8080, "192.168.0.1", 81, "default/a"),
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			for i := range c.weps {
				c.weps[i].Spec.Ports = c.ports[i]
			}
			got := Compute(&Snapshot{Node: "h1", WorkloadEndpoints: c.weps}).HostPorts
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
			calc := NewCalculator("h1")
			for i := range c.weps {
				calc.UpsertWorkloadEndpoint(&c.weps[i])
			}
			if got := calc.Desired().HostPorts; !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Calculator: got %+v\nwant %+v", got, c.want)
			}
			// Removing the ports removes them from the dataplane.
			for i := range c.weps {
				w := c.weps[i]
				w.Spec.Ports = nil
				calc.UpsertWorkloadEndpoint(&w)
			}
			if got := calc.Desired().HostPorts; got != nil {
				t.Fatalf("after removing the ports: %+v", got)
			}
		})
	}
}
