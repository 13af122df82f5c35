package agent

import (
	"testing"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/syncer"
)

// TestCalcStateHostEndpoints: HostEndpoint updates from the syncer reach
// the calculator (and their deletion too), with FelixConfiguration's
// failsafe lists, an explicit empty one included.
func TestCalcStateHostEndpoints(t *testing.T) {
	s := newCalcState("n1")
	h := &api.HostEndpoint{}
	h.Name = "n1-eth0"
	h.Spec = api.HostEndpointSpec{Node: "n1", InterfaceName: "eth0"}
	empty := []api.ProtoPort{}
	f := &api.FelixConfiguration{}
	f.Name = "default"
	f.Spec.FailsafeInboundHostPorts = &empty
	s.apply([]syncer.Update{
		{Kind: api.KindHostEndpoint, Name: h.Name, Object: h},
		{Kind: api.KindFelixConfiguration, Name: "default", Object: f},
	})
	d := s.c.Desired()
	if len(d.Hosts.Endpoints) != 1 || d.Hosts.Endpoints[0].Iface != "eth0" {
		t.Fatalf("host endpoints: %+v", d.Hosts.Endpoints)
	}
	if d.Hosts.FailsafeIn != nil || len(d.Hosts.FailsafeOut) == 0 {
		t.Fatalf("failsafes: in %+v (want none), out %+v (want Calico's defaults)", d.Hosts.FailsafeIn, d.Hosts.FailsafeOut)
	}
	s.apply([]syncer.Update{{Kind: api.KindHostEndpoint, Name: h.Name}})
	if d := s.c.Desired(); len(d.Hosts.Endpoints) != 0 {
		t.Fatalf("host endpoint not removed: %+v", d.Hosts)
	}
}
