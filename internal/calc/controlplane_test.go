package calc

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/dataplane"
)

func cpNode(name, v4, v6, vxlan string, addrs ...string) api.Node {
	n := api.Node{}
	n.Name = name
	if v4 != "" || v6 != "" {
		n.Spec.BGP = &api.NodeBGPSpec{IPv4Address: v4, IPv6Address: v6}
	}
	n.Spec.IPv4VXLANTunnelAddr = vxlan
	for _, a := range addrs {
		n.Spec.Addresses = append(n.Spec.Addresses, api.NodeAddress{Address: a})
	}
	return n
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func ptrInt(v int) *int { return &v }

func TestControlPlane(t *testing.T) {
	tcp := func(p uint16) dataplane.ProtoPort { return dataplane.ProtoPort{Protocol: ProtoTCP, Port: p} }
	udp := func(p uint16) dataplane.ProtoPort { return dataplane.ProtoPort{Protocol: ProtoUDP, Port: p} }
	defaults := []dataplane.ProtoPort{tcp(179), tcp(2379), tcp(2380), tcp(9091), tcp(9096), tcp(9099), udp(4789)}
	for _, tc := range []struct {
		name      string
		snap      Snapshot
		wantAddrs []netip.Addr
		wantPorts []dataplane.ProtoPort
	}{
		{
			name:      "no nodes: ports only",
			snap:      Snapshot{Node: "h1"},
			wantPorts: defaults,
		},
		{
			name: "every node's BGP, VXLAN and listed addresses, sorted and without duplicates",
			snap: Snapshot{Node: "h1", Nodes: []api.Node{
				cpNode("h2", "10.0.0.2/24", "fd00::2/64", "10.65.1.0", "10.0.0.2", "192.168.5.2"),
				cpNode("h1", "10.0.0.1/24", "", "10.65.0.0"),
				cpNode("h3", "", "fd00::3/64", ""),
			}},
			wantAddrs: addrs("10.0.0.1", "10.0.0.2", "10.65.0.0", "10.65.1.0", "192.168.5.2", "fd00::2", "fd00::3"),
			wantPorts: defaults,
		},
		{
			name: "bad, unspecified and loopback addresses are skipped",
			snap: Snapshot{Node: "h1", Nodes: []api.Node{
				cpNode("h1", "not-an-ip", "::/0", "", "127.0.0.1", "0.0.0.0", "10.0.0.9"),
			}},
			wantAddrs: addrs("10.0.0.9"),
			wantPorts: defaults,
		},
		{
			name: "FelixConfiguration ports and the agent's ports are added",
			snap: Snapshot{Node: "h1",
				Felix:             &api.FelixConfigurationSpec{HealthPort: ptrInt(19099), PrometheusMetricsPort: ptrInt(19091), VXLANPort: ptrInt(8472)},
				ControlPlanePorts: []dataplane.ProtoPort{tcp(12379), tcp(179), {}},
			},
			wantPorts: []dataplane.ProtoPort{tcp(179), tcp(2379), tcp(2380), tcp(9091), tcp(9096), tcp(9099), tcp(12379), tcp(19091), tcp(19099), udp(4789), udp(8472)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Compute(&tc.snap).ControlPlane
			want := dataplane.ControlPlane{Addrs: tc.wantAddrs, Ports: tc.wantPorts}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %+v\nwant %+v", got, want)
			}
			// The incremental calculator agrees, whatever the order of changes.
			for _, reverse := range []bool{false, true} {
				c := NewCalculator(tc.snap.Node)
				nodes := slices.Clone(tc.snap.Nodes)
				if reverse {
					slices.Reverse(nodes)
					c.SetControlPlanePorts(tc.snap.ControlPlanePorts)
				}
				for i := range nodes {
					c.UpsertNode(&nodes[i])
				}
				c.SetFelix(tc.snap.Felix)
				if !reverse {
					c.SetControlPlanePorts(tc.snap.ControlPlanePorts)
				}
				if got := c.Desired().ControlPlane; !reflect.DeepEqual(got, want) {
					t.Fatalf("calculator (reverse %v): got %+v\nwant %+v", reverse, got, want)
				}
			}
		})
	}
}

// Removing a node takes its addresses out; a change that does not touch
// the control plane leaves the same value.
func TestControlPlaneFollowsNodes(t *testing.T) {
	c := NewCalculator("h1")
	n1, n2 := cpNode("h1", "10.0.0.1/24", "", ""), cpNode("h2", "10.0.0.2/24", "", "")
	c.UpsertNode(&n1)
	c.UpsertNode(&n2)
	if got := c.Desired().ControlPlane.Addrs; !slices.Equal(got, addrs("10.0.0.1", "10.0.0.2")) {
		t.Fatalf("addrs %v", got)
	}
	c.DeleteNode("h2")
	if got := c.Desired().ControlPlane.Addrs; !slices.Equal(got, addrs("10.0.0.1")) {
		t.Fatalf("after delete: addrs %v", got)
	}
	n1.Spec.BGP.IPv4Address = "10.0.0.11/24"
	c.UpsertNode(&n1)
	if got := c.Desired().ControlPlane.Addrs; !slices.Equal(got, addrs("10.0.0.11")) {
		t.Fatalf("after address change: addrs %v", got)
	}
	c.SetControlPlanePorts(nil)
	if c.Dirty() {
		t.Fatal("setting the same (empty) extra ports marked the state dirty")
	}
}
