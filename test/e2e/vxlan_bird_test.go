package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/testutil"
)

// Two hosts on different subnets (a router between them) reach each other's
// containers through VXLAN: over vxlan.calico for an IPv4 CrossSubnet pool,
// and over vxlan-v6.calico (IPv6 underlay) for an IPv6 pool with vxlanMode
// Always; profile isolation holds on the IPv6 overlay.
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
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: vxlan6-pool
spec:
  cidr: fd00:123::/64
  vxlanMode: Always
`)
	dual := []string{"network", "create", "--driver", "calico", "--ipam-driver", "calico-ipam",
		"--ipv6", "--subnet", "10.123.0.0/16", "--subnet", "fd00:123::/64"}
	for _, h := range []string{"host1", "host2"} {
		l.Docker(h, append(dual, "vx")...)
	}
	l.Docker("host1", append(dual, "vxother")...)
	l.Run("host1", "ca", "vx")
	l.Run("host1", "cz", "vxother")
	b := l.Run("host2", "cb", "vx")
	if !strings.HasPrefix(b, "10.123.") {
		t.Fatalf("container b got %s, want an address from 10.123.0.0/16", b)
	}
	l.EventuallyReach("host1", "ca", b, 45*time.Second)
	routes := l.MustExec("host1", "ip", "route", "show", "dev", "vxlan.calico")
	if !strings.Contains(routes, "10.123.") {
		t.Fatalf("host1 has no route over vxlan.calico to host2's block:\n%s", routes)
	}

	t.Run("IPv6", func(t *testing.T) {
		ip6 := func(h, c string) string {
			return strings.TrimSpace(l.Docker(h, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}", c))
		}
		a6, b6 := ip6("host1", "ca"), ip6("host2", "cb")
		if !strings.HasPrefix(a6, "fd00:123:") || !strings.HasPrefix(b6, "fd00:123:") {
			t.Fatalf("IPv6 addresses %q %q, want them from fd00:123::/64", a6, b6)
		}
		// Each node has an IPv6 VTEP on its Node resource, from the pool.
		for _, h := range []string{"host1", "host2"} {
			// (YAML quotes an address that ends in "::".)
			y := strings.ReplaceAll(l.Calico(h, "get", "node", h, "-o", "yaml"), "'", "")
			if !strings.Contains(y, "ipv6VXLANTunnelAddr: fd00:123:") || !strings.Contains(y, "vxlanTunnelMACAddrV6: ") {
				t.Fatalf("node %s has no IPv6 VTEP:\n%s", h, y)
			}
		}
		before := txPackets(t, l, "host1", "vxlan-v6.calico")
		l.EventuallyReach("host1", "ca", b6, 45*time.Second)
		l.EventuallyReach("host2", "cb", a6, 45*time.Second)
		l.MustExec("host2", "docker", "exec", "-d", "cb", "httpd", "-p", "8080")
		testutil.Eventually(t, 30*time.Second, func() error {
			if !l.TCPConnects("host1", "ca", b6, 8080) {
				return fmt.Errorf("ca cannot open TCP to [%s]:8080", b6)
			}
			return nil
		})
		// The packets left host1 encapsulated, through the IPv6 device,
		// whose MTU leaves room for the IPv6 VXLAN header (70 bytes).
		if after := txPackets(t, l, "host1", "vxlan-v6.calico"); after <= before {
			t.Fatalf("vxlan-v6.calico sent %d packets before and %d after the pings", before, after)
		}
		r6 := l.MustExec("host1", "ip", "-6", "route", "show", "dev", "vxlan-v6.calico")
		if !strings.Contains(r6, "fd00:123:") || !strings.Contains(r6, "onlink") {
			t.Fatalf("host1 has no route over vxlan-v6.calico to host2's IPv6 block:\n%s", r6)
		}
		d := l.MustExec("host1", "ip", "-d", "link", "show", "vxlan-v6.calico")
		if !strings.Contains(d, "vxlan id 4096") || !strings.Contains(d, "dstport 4789") || !strings.Contains(d, "local "+l.Host("host1").Addr6()) {
			t.Fatalf("vxlan-v6.calico: %s", d)
		}
		if got, want := linkMTU(t, l, "host1", "vxlan-v6.calico"), linkMTU(t, l, "host1", "eth0")-70; got != want {
			t.Fatalf("vxlan-v6.calico MTU %d, want %d (eth0's minus 70)", got, want)
		}
		// The containers' veths leave the same room (the larger overhead
		// of the two pools' families).
		if got, want := strings.TrimSpace(l.MustExec("host1", "docker", "exec", "ca", "cat", "/sys/class/net/eth0/mtu")),
			fmt.Sprint(linkMTU(t, l, "host1", "eth0")-70); got != want {
			t.Fatalf("container ca's MTU %s, want %s (eth0's minus 70)", got, want)
		}
		// Another network is another profile: no IPv6 way in either.
		if l.TCPConnects("host1", "cz", b6, 8080) {
			t.Fatalf("cz (network vxother) opens TCP to cb's [%s]:8080, want denied by profile", b6)
		}
		l.AssertBlocked("host1", "cz", b6)
		l.IPAMCheck("host1")
	})
}

// txPackets is the number of packets a lab host's interface has sent.
func txPackets(t *testing.T, l *Lab, host, dev string) int {
	t.Helper()
	var ls []struct {
		Stats64 struct {
			TX struct {
				Packets int `json:"packets"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	out := l.MustExec(host, "ip", "-s", "-j", "link", "show", dev)
	if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) != 1 {
		t.Fatalf("parse %q: %v", out, err)
	}
	return ls[0].Stats64.TX.Packets
}

// linkMTU is the MTU of a lab host's interface.
func linkMTU(t *testing.T, l *Lab, host, dev string) int {
	t.Helper()
	var ls []struct {
		MTU int `json:"mtu"`
	}
	out := l.MustExec(host, "ip", "-j", "link", "show", dev)
	if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) != 1 {
		t.Fatalf("parse %q: %v", out, err)
	}
	return ls[0].MTU
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
