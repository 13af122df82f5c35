package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/flows"
	"github.com/calico-docker/calico/internal/testutil"
)

// The seed scenario across two hosts: same network reaches across hosts,
// other networks are isolated, a label-selected policy opens a path, a new
// container is reachable from the other host, and node status shows the mesh.
// With flow logs on (issue 16), `calico flows` on one host shows what the
// other host denied and allowed, and by which profile or policy rule; and
// `calico node diags` holds the ruleset and routes.
func TestTwoHostSeedScenario(t *testing.T) {
	t.Parallel()
	l := newLab(t, 2, 1)
	l.Apply("host1", flowLogsOn)
	l.Network("frontend", "host1", "host2")
	l.Network("backend", "host1", "host2")
	web1 := l.Run("host1", "web1", "frontend", "role=web")
	db1 := l.Run("host1", "db1", "backend", "role=db")
	web2 := l.Run("host2", "web2", "frontend", "role=web")
	db2 := l.Run("host2", "db2", "backend", "role=db")
	t.Logf("web1 %s db1 %s web2 %s db2 %s", web1, db1, web2, db2)

	// Same network, across hosts (routes over BGP).
	l.EventuallyReach("host1", "web1", web2, 30*time.Second)
	l.EventuallyReach("host2", "db2", db1, 30*time.Second)
	// Other network: denied, locally and across hosts.
	l.AssertBlocked("host1", "web1", db1)
	l.AssertBlocked("host1", "web1", db2)
	l.AssertBlocked("host2", "db2", web1)

	t.Run("denied flow on the other host", func(t *testing.T) {
		// db2 (host2) -> web1 (host1) is dropped at web1's ingress on host1:
		// asked on host2, the record comes from host1 over its flows API.
		r := l.eventuallyFlow(t, "host2", func() { l.CanPing("host2", "db2", web1) }, func(r flows.Record) bool {
			return r.Host == "host1" && r.Src.String() == db2 && r.Dst.String() == web1
		}, "--denied")
		if r.Action != "deny" || r.Direction != "ingress" || !strings.Contains(r.Reason, "profile:frontend") {
			t.Errorf("denied flow does not name web1's profile: %+v", r)
		}
		if r.SrcName != "db2" || r.SrcNetwork != "backend" || r.SrcLabels["role"] != "db" ||
			r.DstName != "web1" || r.DstNetwork != "frontend" || r.DstLabels["role"] != "web" {
			t.Errorf("denied flow does not name both endpoints: %+v", r)
		}
		table := l.Calico("host2", "flows", "--denied", "--node", "host1", "--from", "db2")
		if !strings.Contains(table, "host1") || !strings.Contains(table, "web1 ("+web1+" frontend role=web)") {
			t.Errorf("flows table lacks the host or web1 with its network and labels:\n%s", table)
		}
	})

	l.ApplyFile("host1", seedPolicy)
	l.EventuallyReach("host1", "web1", db2, 15*time.Second)
	l.EventuallyReach("host2", "web2", db1, 15*time.Second)
	// Pass keeps the profile: db to db still allowed, db to web still denied.
	l.EventuallyReach("host1", "db1", db2, 15*time.Second)
	l.AssertBlocked("host2", "db2", web1)

	t.Run("allowed flow names the policy rule", func(t *testing.T) {
		// web1 (host1) -> db2 (host2): allowed at db2's ingress on host2 by
		// the policy's rule 0; asked on host1.
		r := l.eventuallyFlow(t, "host1", func() { l.CanPing("host1", "web1", db2) }, func(r flows.Record) bool {
			return r.Host == "host2" && r.Src.String() == web1 && r.Dst.String() == db2 && r.Direction == "ingress"
		}, "--allowed", "--node", "host2")
		if r.Action != "allow" || r.Policy != "gnp:allow-web-to-db" || r.Rule != 0 {
			t.Errorf("allowed flow not attributed to gnp:allow-web-to-db rule 0: %+v", r)
		}
	})
	t.Run("diags hold the ruleset and routes", func(t *testing.T) {
		files := l.diagsFiles(t, "host1")
		nft, ok := fileEndingIn(files, "nftables/calico.txt")
		if !ok || !strings.Contains(nft, "table inet calico") || !strings.Contains(nft, "allow-web-to-db") {
			t.Errorf("diags nftables/calico.txt lacks the calico table or the policy's chain:\n%.2000s", nft)
		}
		routes, ok := fileEndingIn(files, "net/routes-ipv4.txt")
		// host2's block (blockSize 26 by default), learnt over BGP.
		block := netip.PrefixFrom(netip.MustParseAddr(db2), 26).Masked().String()
		if !ok || !strings.Contains(routes, web1+" dev cali") || !strings.Contains(routes, block+" via") {
			t.Errorf("diags net/routes-ipv4.txt lacks web1's route or host2's block %s:\n%s", block, routes)
		}
	})

	// A new container on host2 is reachable from host1.
	start := time.Now()
	web3 := l.Run("host2", "web3", "frontend", "role=web")
	l.EventuallyReach("host1", "web1", web3, 20*time.Second)
	t.Logf("new container on host2 reachable from host1 %v after docker run returned", time.Since(start))

	status := l.Calico("host1", "node", "status")
	if !strings.Contains(status, "node-to-node mesh") || !strings.Contains(status, "Established") {
		t.Fatalf("node status lacks an established mesh peer:\n%s", status)
	}
}

// Three hosts in a full mesh learn each other's blocks; removing a host
// withdraws its routes from the others.
func TestThreeHostMeshAndHostRemoval(t *testing.T) {
	t.Parallel()
	l := newLab(t, 3, 1)
	for _, h := range []string{"host1", "host2", "host3"} {
		l.Network("net", h)
	}
	l.Run("host1", "ca", "net")
	b := l.Run("host2", "cb", "net")
	c := l.Run("host3", "cc", "net")
	l.EventuallyReach("host1", "ca", b, 30*time.Second)
	l.EventuallyReach("host1", "ca", c, 30*time.Second)
	l.EventuallyReach("host2", "cb", c, 30*time.Second)

	status := l.Calico("host1", "node", "status")
	if n := strings.Count(status, "Established"); n < 2 {
		t.Fatalf("host1 has %d established sessions, want 2:\n%s", n, status)
	}

	// host3 dies (its link goes down) and the operator removes it from the
	// cluster: the others drop the session and withdraw its routes at once.
	// (A host that only dies is detected by the BGP hold time, and graceful
	// restart then keeps its routes for the restart time: see docs/bgp.md.)
	if !strings.Contains(l.Routes("host1"), via(l, "host3")) {
		t.Fatalf("host1 has no route via host3:\n%s", l.Routes("host1"))
	}
	l.MustExec("host3", "ip", "link", "set", "eth0", "down")
	start := time.Now()
	l.Calico("host1", "delete", "node", "host3")
	testutil.Eventually(t, 30*time.Second, func() error {
		if r := l.Routes("host1"); strings.Contains(r, via(l, "host3")) {
			return fmt.Errorf("host1 still routes via host3:\n%s", r)
		}
		return nil
	})
	t.Logf("routes via host3 withdrawn from host1 %v after its Node was deleted", time.Since(start))
	if s := l.Calico("host2", "node", "status"); strings.Contains(s, l.host("host3").Addr()) {
		t.Fatalf("host2 still has a session with host3:\n%s", s)
	}
}

func via(l *Lab, host string) string { return "via " + l.host(host).Addr() }

// A restarted node keeps cross-host traffic flowing: the kernel routes stay
// while it is down and graceful restart keeps them on the peers.
func TestNodeRestartKeepsCrossHostTraffic(t *testing.T) {
	t.Parallel()
	l := newLab(t, 2, 1)
	l.Network("net", "host1", "host2")
	l.Run("host1", "ca", "net")
	b := l.Run("host2", "cb", "net")
	l.EventuallyReach("host1", "ca", b, 30*time.Second)

	h2 := l.host("host2")
	// The same arguments the lab started the node with (its image included).
	startArgs := []string{"node", "start", "--name", "host2", "--ip", h2.IP, "--ip6", h2.IP6, "--image", l.St.NodeImage}
	if out := l.Calico("host2", startArgs...); !strings.Contains(out, "already running") {
		t.Fatalf("node start on a running node:\n%s", out)
	}
	l.Calico("host2", "node", "stop")
	// Traffic keeps flowing while the node on host2 is down.
	for i := 0; i < 3; i++ {
		if !l.CanPing("host1", "ca", b) {
			t.Fatalf("traffic stopped while host2's node was down")
		}
	}
	l.Calico("host2", startArgs...)
	for i := 0; i < 3; i++ {
		if !l.CanPing("host1", "ca", b) {
			t.Fatalf("traffic stopped after host2's node came back")
		}
	}
	testutil.Eventually(t, 30*time.Second, func() error {
		if s := l.Calico("host1", "node", "status"); !strings.Contains(s, "Established") {
			return fmt.Errorf("session not re-established:\n%s", s)
		}
		return nil
	})
	// A killed node container is brought back by node start.
	l.Docker("host2", "kill", "calico-node")
	if out := l.Calico("host2", startArgs...); !strings.Contains(out, "ready") {
		t.Fatalf("node start after kill:\n%s", out)
	}
	if !l.CanPing("host1", "ca", b) {
		t.Fatalf("traffic stopped after host2's node was killed and started")
	}
}

// Route reflector topology: mesh off, host1 reflects for host2 and host3.
func TestRouteReflector(t *testing.T) {
	t.Parallel()
	l := newLab(t, 3, 1)
	l.Apply("host1", `apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata:
  name: default
spec:
  nodeToNodeMeshEnabled: false
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: to-reflector
spec:
  nodeSelector: "!has(route-reflector)"
  peerSelector: has(route-reflector)
`)
	// Make host1 a reflector: label and cluster ID on its Node.
	node := l.Calico("host1", "get", "node", "host1", "-o", "yaml")
	node = addNodeRR(t, node)
	l.Apply("host1", node)

	for _, h := range []string{"host1", "host2", "host3"} {
		l.Network("net", h)
	}
	l.Run("host2", "cb", "net")
	c := l.Run("host3", "cc", "net")
	l.EventuallyReach("host2", "cb", c, 45*time.Second)
	s := l.Calico("host2", "node", "status")
	if strings.Contains(s, "node-to-node mesh") {
		t.Fatalf("mesh still configured on host2:\n%s", s)
	}
	if !strings.Contains(s, l.host("host1").Addr()) || strings.Contains(s, l.host("host3").Addr()) {
		t.Fatalf("host2 should peer with the reflector only:\n%s", s)
	}
}

// addNodeRR adds the route-reflector label and cluster ID to a Node manifest.
func addNodeRR(t *testing.T, node string) string {
	t.Helper()
	lines := strings.Split(node, "\n")
	var out []string
	for _, ln := range lines {
		out = append(out, ln)
		switch {
		case strings.HasPrefix(ln, "  labels:"):
			out = append(out, "    route-reflector: \"true\"")
		case strings.HasPrefix(ln, "  bgp:"):
			out = append(out, "    routeReflectorClusterID: 224.0.0.1")
		}
	}
	res := strings.Join(out, "\n")
	if !strings.Contains(res, "route-reflector") || !strings.Contains(res, "routeReflectorClusterID") {
		t.Fatalf("could not edit node manifest:\n%s", node)
	}
	return res
}
