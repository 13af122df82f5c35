package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/cli"
	"github.com/calico-docker/calico/internal/testutil"
)

// testPreDNATPublishedPorts runs in the Docker-defaults lab (each iptables
// back end): a "*" HostEndpoint on host1 with Calico's allow-all profile
// and a pre-DNAT GlobalNetworkPolicy ("only 203.0.113.0/24 may reach 8080
// and 8081") close the published port of a container on a calico network
// (our DNAT) and of one on Docker's bridge (Docker's DNAT) to host2, open
// them again when the policy admits host2, keep cluster traffic flowing,
// and leave Docker's tables as they were. Then, without the profile
// (deny-all), a host service closes while the failsafe and control-plane
// ports keep BGP and the datastore up.
func testPreDNATPublishedPorts(t *testing.T, l *Lab, backend string) {
	h1, h2 := l.host("host1"), l.host("host2")
	l.Docker("host1", "run", "-d", "--name", "pub-cal", "--net", "frontend", "--label", "role=pub", "-p", "8080:80",
		cli.TestImage, "httpd", "-f", "-p", "80")
	l.Docker("host1", "run", "-d", "--name", "pub-br", "-p", "8081:80", cli.TestImage, "httpd", "-f", "-p", "80")
	t.Cleanup(func() {
		_, _ = l.Exec("host1", "docker", "rm", "-f", "pub-cal", "pub-br")
	})
	// The calico container's profile admits its network only: open port 80.
	l.Apply("host1", `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: pub-open}
spec:
  order: 50
  selector: role == 'pub'
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    destination: {ports: [80]}
`)
	connects := func(port int) bool {
		_, err := l.Exec("host2", "busybox", "timeout", "3", "busybox", "nc", "-w", "2", h1.Addr(), fmt.Sprint(port))
		return err == nil
	}
	wait := func(port int, want bool) {
		t.Helper()
		testutil.Eventually(t, 30*time.Second, func() error {
			if connects(port) != want {
				return fmt.Errorf("host2 to %s:%d: connected=%v, want %v", h1.Addr(), port, !want, want)
			}
			return nil
		})
	}
	wait(8080, true)
	wait(8081, true)
	before := l.dockerTables("host1", backend)

	policy := func(nets string) string {
		return `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: published-from-office}
spec:
  order: 10
  selector: host-endpoint == 'all'
  preDNAT: true
  applyOnForward: true
  ingress:
  - action: Deny
    protocol: TCP
    source: {notNets: [` + nets + `]}
    destination: {ports: [8080, 8081]}
`
	}
	l.Apply("host1", `apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata:
  name: host1-all
  labels: {host-endpoint: all}
spec:
  node: `+h1.Name+`
  interfaceName: "*"
  profiles: [projectcalico-default-allow]
---
`+policy("203.0.113.0/24"))
	wait(8080, false)
	wait(8081, false)
	// Cluster traffic is untouched: across hosts and the datastore.
	l.EventuallyReach("host2", "web2", l.Run("host1", "web1c", "frontend", "role=web"), 30*time.Second)
	l.Calico("host2", "get", "hostendpoints")

	l.Apply("host1", policy("203.0.113.0/24, "+h2.Addr()+"/32"))
	wait(8080, true)
	wait(8081, true)
	if after := l.dockerTables("host1", backend); after != before {
		t.Fatalf("Docker's tables changed under pre-DNAT policy:\n%s\nbefore:\n%s", after, before)
	}

	// Deny-all: the same host endpoint without its allow-all profile. A
	// host service closes; the failsafe and control-plane ports do not:
	// the BGP session stays up, host2 still uses host1's datastore, and
	// forwarded container traffic (no applyOnForward policy) flows.
	if !l.listenIn("host1", h1.Addr()+":7777") {
		t.Fatal("port 7777 is taken on host1")
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if !connects(7777) {
			return fmt.Errorf("host service on host1 not reachable before the deny-all host endpoint")
		}
		return nil
	})
	l.Apply("host1", `apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata:
  name: host1-all
  labels: {host-endpoint: all}
spec:
  node: `+h1.Name+`
  interfaceName: "*"
`)
	wait(7777, false)
	l.Calico("host2", "get", "nodes")
	if st := l.Calico("host1", "node", "status"); !strings.Contains(st, "Established") {
		t.Fatalf("BGP session down under a deny-all host endpoint:\n%s", st)
	}
	l.EventuallyReach("host2", "web2", l.Run("host1", "web1d", "frontend", "role=web"), 30*time.Second)
	l.Calico("host1", "delete", "hostendpoint", "host1-all")
	l.Calico("host1", "delete", "globalnetworkpolicy", "published-from-office")
	l.Calico("host1", "delete", "globalnetworkpolicy", "pub-open")
	out := l.MustExec("host1", "nft", "list", "table", "inet", "calico")
	testutil.Eventually(t, 20*time.Second, func() error {
		out = l.MustExec("host1", "nft", "list", "table", "inet", "calico")
		if strings.Contains(out, "host-prednat") {
			return fmt.Errorf("host endpoint chains still there")
		}
		return nil
	})
}
