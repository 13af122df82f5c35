package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/testutil"
)

// Two hosts on different subnets (a router between them) reach each other's
// containers through VXLAN for a CrossSubnet pool.
func TestCrossSubnetVXLAN(t *testing.T) {
	t.Parallel()
	l := newLab(t, 2, 2)
	l.Apply("host1", `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: vxlan-pool
spec:
  cidr: 10.123.0.0/16
  vxlanMode: CrossSubnet
  natOutgoing: false
`)
	for _, h := range []string{"host1", "host2"} {
		l.Docker(h, "network", "create", "--driver", "calico", "--ipam-driver", "calico-ipam", "--subnet", "10.123.0.0/16", "vx")
	}
	l.Run("host1", "ca", "vx")
	b := l.Run("host2", "cb", "vx")
	if !strings.HasPrefix(b, "10.123.") {
		t.Fatalf("container b got %s, want an address from 10.123.0.0/16", b)
	}
	l.EventuallyReach("host1", "ca", b, 45*time.Second)
	routes := l.MustExec("host1", "ip", "route", "show", "dev", "vxlan.calico")
	if !strings.Contains(routes, "10.123.") {
		t.Fatalf("host1 has no route over vxlan.calico to host2's block:\n%s", routes)
	}
}

// A BIRD 2 router on the fabric peers with both hosts through a BGPPeer: it
// learns the container routes, and a route it announces reaches the hosts.
func TestBIRDInterop(t *testing.T) {
	t.Parallel()
	testutil.RequireCmd(t, "bird", "birdc")
	l := newLab(t, 2, 1)
	// BIRD lives in its own namespace on the fabric bridge.
	ns := "calab-" + l.St.Name + "-bird"
	testutil.Run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	fab := l.St.Fabric.NetNS
	testutil.Run(t, "ip", "-n", fab, "link", "add", "bird0", "type", "veth", "peer", "name", "eth0", "netns", ns)
	testutil.Run(t, "ip", "-n", fab, "link", "set", "bird0", "master", "br1", "up")
	testutil.Run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	testutil.Run(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	testutil.Run(t, "ip", "-n", ns, "addr", "add", "10.99.1.200/24", "dev", "eth0")

	var nb strings.Builder
	for _, h := range l.St.Hosts {
		fmt.Fprintf(&nb, "protocol bgp %s {\n  local 10.99.1.200 as 64512;\n  neighbor %s as 64512;\n  direct;\n  ipv4 { import all; export where source = RTS_STATIC; next hop self; gateway direct; };\n}\n", h.Name, h.Addr())
	}
	cfg := fmt.Sprintf(`router id 10.99.1.200;
protocol device { }
protocol kernel { ipv4 { export none; import none; }; }
protocol static { ipv4; route 10.200.0.0/24 blackhole; }
%s`, nb.String())
	bird := testutil.StartBIRD(t, ns, cfg)

	l.Apply("host1", `apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: bird
spec:
  peerIP: 10.99.1.200
  asNumber: 64512
`)
	l.Network("net", "host1", "host2")
	a := l.Run("host1", "ca", "net")

	birdc := func(args ...string) string {
		out, err := bird.Ctl(args...)
		if err != nil {
			return err.Error()
		}
		return out
	}
	// BIRD learns host1's block, which holds container a.
	testutil.Eventually(t, 60*time.Second, func() error {
		routes := birdc("show", "route")
		prefix := a[:strings.LastIndex(a, ".")]
		if !strings.Contains(routes, prefix) {
			return fmt.Errorf("bird has no route for %s:\n%s\n%s", a, routes, birdc("show", "protocols"))
		}
		return nil
	})
	// The hosts install the route BIRD announces.
	for _, h := range []string{"host1", "host2"} {
		h := h
		testutil.Eventually(t, 60*time.Second, func() error {
			if r := l.Routes(h); !strings.Contains(r, "10.200.0.0/24") {
				return fmt.Errorf("%s has no route to 10.200.0.0/24:\n%s", h, r)
			}
			return nil
		})
	}
	if s := l.Calico("host1", "node", "status"); !strings.Contains(s, "10.99.1.200") || !strings.Contains(s, "global") {
		t.Fatalf("node status lacks the global BIRD peer:\n%s", s)
	}
}
