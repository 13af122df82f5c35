package nft

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/dataplane"
)

// The control plane of every host is out of a workload's reach unless one of
// its egress policies allows it: real traffic from a workload namespace to
// the "outside" namespace (another node), to this host's node address and
// to another local address of this host.
func TestControlPlaneBlocked(t *testing.T) {
	tp := newTopo(t)
	w1 := tp.addWorkload(t, "cali1", 1)
	w2 := tp.addWorkload(t, "cali2", 2)
	// The outside namespace plays another node: it routes workloads back.
	tp.outside.MustExec(t, "ip", "route", "replace", "10.65.0.0/24", "via", tp.hostAddr.String())
	tp.outside.MustExec(t, "ip", "-6", "route", "replace", "fd00:65::/64", "via", tp.hostAddr6.String())
	// A second local address of this host that no Node resource names.
	other := netip.MustParseAddr("198.51.100.1")
	tp.host.MustExec(t, "ip", "addr", "add", other.String()+"/32", "dev", "lo")

	serve(t, tp.outside, "tcp:2379", "tcp:179", "tcp:9091", "tcp:8080", "udp:4789", "udp:8080")
	serve(t, tp.host, "tcp:2379", "tcp:9099", "tcp:8080")
	serve(t, w2.ns, "tcp:2379", "tcp:8080")

	tcp := u8(6)
	cp := dataplane.ControlPlane{
		Addrs: []netip.Addr{tp.hostAddr, tp.outsideAddr, tp.hostAddr6, tp.outsideAddr6},
		Ports: []dataplane.ProtoPort{{Protocol: 6, Port: 179}, {Protocol: 6, Port: 2379}, {Protocol: 6, Port: 2380},
			{Protocol: 6, Port: 9091}, {Protocol: 6, Port: 9099}, {Protocol: 17, Port: 4789}},
	}
	desired := func(action string, egress ...dataplane.PolicyChain) *dataplane.Desired {
		d := &dataplane.Desired{
			Endpoints:    []dataplane.Endpoint{w1.ep("profile:open"), w2.ep("profile:open")},
			Chains:       append([]dataplane.PolicyChain{allowAll("profile:open")}, egress...),
			Host:         dataplane.HostConfig{EndpointToHostAction: action},
			ControlPlane: cp,
		}
		for _, p := range egress {
			d.Endpoints[0].EgressPolicies = append(d.Endpoints[0].EgressPolicies, p.ID)
		}
		return d
	}

	t.Run("profile allows egress, the control plane stays shut", func(t *testing.T) {
		tp.apply(t, desired("Accept"))
		// Other node: ordinary ports open, control-plane ports shut, both families.
		mustReach(t, w1.ns, "tcp", ap(tp.outsideAddr, 8080))
		mustReach(t, w1.ns, "tcp", ap(tp.outsideAddr6, 8080))
		mustReach(t, w1.ns, "udp", ap(tp.outsideAddr, 8080))
		mustNotReach(t, w1.ns, "tcp", ap(tp.outsideAddr, 2379))
		mustNotReach(t, w1.ns, "tcp", ap(tp.outsideAddr6, 2379))
		mustNotReach(t, w1.ns, "tcp", ap(tp.outsideAddr, 179))
		mustNotReach(t, w1.ns, "tcp", ap(tp.outsideAddr, 9091))
		mustNotReach(t, w1.ns, "udp", ap(tp.outsideAddr, 4789))
		// Own host (defaultEndpointToHostAction Accept): the same, on the
		// node address and on an address no Node names.
		mustReach(t, w1.ns, "tcp", ap(tp.hostAddr, 8080))
		mustReach(t, w1.ns, "tcp", ap(other, 8080))
		mustNotReach(t, w1.ns, "tcp", ap(tp.hostAddr, 2379))
		mustNotReach(t, w1.ns, "tcp", ap(tp.hostAddr6, 2379))
		mustNotReach(t, w1.ns, "tcp", ap(tp.hostAddr, 9099))
		mustNotReach(t, w1.ns, "tcp", ap(other, 2379))
		// A workload's own port of the same number is not control plane.
		mustReach(t, w1.ns, "tcp", ap(w2.v4, 2379))
		out := nftList(t, tp.host)
		for _, want := range []string{"tcp . 2379", "udp . 4789", "fib daddr type local meta l4proto . th dport @cp-ports drop"} {
			if !strings.Contains(out, want) {
				t.Errorf("nft list lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("Return keeps the control plane shut", func(t *testing.T) {
		tp.apply(t, desired("Return"))
		mustReach(t, w1.ns, "tcp", ap(tp.hostAddr, 8080))
		mustNotReach(t, w1.ns, "tcp", ap(tp.hostAddr, 2379))
		mustNotReach(t, w1.ns, "tcp", ap(other, 9099))
	})

	t.Run("an explicit egress policy Allow opens one port", func(t *testing.T) {
		etcd := dataplane.PolicyChain{ID: "gnp:allow-etcd", Egress: []dataplane.Rule{
			{Action: dataplane.Allow, Protocol: tcp, Dst: dataplane.Match{Ports: []dataplane.PortRange{{First: 2379, Last: 2379}}}},
			{Action: dataplane.Pass},
		}}
		tp.apply(t, desired("Accept", etcd))
		mustReach(t, w1.ns, "tcp", ap(tp.outsideAddr, 2379))
		mustReach(t, w1.ns, "tcp", ap(tp.outsideAddr6, 2379))
		mustReach(t, w1.ns, "tcp", ap(tp.hostAddr, 2379))
		// Pass hands the rest to the profile: other ports as before.
		mustNotReach(t, w1.ns, "tcp", ap(tp.outsideAddr, 179))
		mustNotReach(t, w1.ns, "tcp", ap(tp.hostAddr, 9099))
		mustReach(t, w1.ns, "tcp", ap(tp.outsideAddr, 8080))
		// The policy is w1's only: w2 is still shut out.
		mustNotReach(t, w2.ns, "tcp", ap(tp.outsideAddr, 2379))
	})

	t.Run("the sets follow the nodes and ports", func(t *testing.T) {
		d := desired("Accept")
		d.ControlPlane = dataplane.ControlPlane{Addrs: []netip.Addr{tp.hostAddr}, Ports: cp.Ports[2:]} // no 179, 2379
		st := tp.apply(t, d)
		if st.ChainsRewritten+st.ChainsAdded != 0 {
			t.Errorf("a control-plane change should only edit set elements: %+v", st)
		}
		mustReach(t, w1.ns, "tcp", ap(tp.outsideAddr, 9091)) // outside is no node any more
		mustReach(t, w1.ns, "tcp", ap(tp.hostAddr, 2379))    // 2379 is no control-plane port any more
		mustNotReach(t, w1.ns, "tcp", ap(tp.hostAddr, 9099))
	})
}
