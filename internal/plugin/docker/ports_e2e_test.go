package docker_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/lab"
	"github.com/calico-docker/calico/internal/testutil"
)

// httpdWhoami serves /cgi-bin/ip on port 80: the address the client
// connected from, as the container saw it.
const httpdWhoami = `mkdir -p /www/cgi-bin && printf '#!/bin/sh\necho Content-Type: text/plain\necho\necho $REMOTE_ADDR\n' > /www/cgi-bin/ip && chmod +x /www/cgi-bin/ip && exec httpd -f -p 80 -h /www`

// TestDockerPublishedPorts: `docker run -p` on a calico network, with real
// dockerds (Docker's default firewall) on two lab hosts: reachable from the
// other host (IPv4 and IPv6) with the client's address kept, so that the
// container's ingress policy judges the real client; from the host itself,
// its loopback and the container itself; -P and host port ranges; a port
// already taken is refused with no address leaked; closed after docker stop.
func TestDockerPublishedPorts(t *testing.T) {
	l := newDockerLab(t, 2)
	l.bgp = true
	l.startNode("host1")
	l.startNode("host2")
	h1, h2 := l.host("host1"), l.host("host2")
	for _, h := range []string{"host1", "host2"} {
		l.docker(h, "network", "create", "--driver", "calico", "--ipam-driver", "calico-ipam", "--ipv6", "web")
	}
	l.docker("host1", "run", "-d", "--stop-timeout", "1", "--name", "srv", "--net", "web", "--label", "role=srv",
		"-p", "8080:80", "-p", "9000-9005:80", "-p", "127.0.0.1:8081:80", "--expose", "81", "-P",
		testImage, "sh", "-c", httpdWhoami)
	l.run("host1", "near", "--net", "web", "--label", "role=near")
	l.run("host2", "far", "--net", "web", "--label", "role=far")

	// whoami asks the published port from a host (container "") or a
	// container and returns the address the server saw.
	whoami := func(host, container, addr string) (string, error) {
		url := "http://" + addr + "/cgi-bin/ip"
		// busybox's own wget -T crashes (static busybox 1.35): bound it with timeout.
		args := []string{"busybox", "timeout", "3", "busybox", "wget", "-q", "-O", "-", url}
		if container != "" {
			args = []string{"docker", "exec", container, "timeout", "3", "wget", "-q", "-O", "-", url}
		}
		out, err := l.exec(host, args...)
		// httpd shows the peer as "[::ffff:10.0.0.1]" or "[fd00::1]".
		peer := strings.Trim(strings.TrimSpace(out), "[]")
		if a, perr := netip.ParseAddr(peer); perr == nil {
			peer = a.Unmap().String()
		}
		return peer, err
	}
	reach := func(host, container, addr, wantPeer string) {
		t.Helper()
		testutil.Eventually(t, 30*time.Second, func() error {
			peer, err := whoami(host, container, addr)
			if err != nil {
				return err
			}
			if wantPeer != "" && peer != wantPeer {
				return fmt.Errorf("%s from %s %s: the server saw %s, want %s", addr, host, container, peer, wantPeer)
			}
			return nil
		})
	}
	denied := func(host, container, addr string) {
		t.Helper()
		testutil.Eventually(t, 30*time.Second, func() error {
			if peer, err := whoami(host, container, addr); err == nil {
				return fmt.Errorf("%s from %s %s still answers (peer %s)", addr, host, container, peer)
			}
			return nil
		})
	}
	hp := func(h *lab.Host, port int) string { return net.JoinHostPort(h.Addr(), fmt.Sprint(port)) }

	// The network's profile admits only its members; clients from outside
	// it need a policy, published port or not.
	open := `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: srv-open}
spec:
  selector: role == 'srv'
  ingress:
  - action: Allow
    protocol: TCP
    destination: {ports: [80]}
`
	l.apply("host1", open)

	t.Run("reachable, source kept", func(t *testing.T) {
		reach("host2", "", hp(h1, 8080), h2.Addr())
		reach("host2", "", net.JoinHostPort(h1.Addr6(), "8080"), h2.Addr6())
		nearIP, _ := l.addrs("host1", "near")
		reach("host1", "near", hp(h1, 8080), nearIP) // another container, through the host address
		reach("host1", "srv", hp(h1, 8080), "")      // hairpin: the container itself
		reach("host1", "", hp(h1, 8080), "")         // the host itself
		reach("host1", "", "127.0.0.1:8080", "")     // loopback, through the node's proxy
		reach("host1", "", "127.0.0.1:8081", "")     // published on loopback only
		reach("host2", "far", hp(h1, 8080), "")
		denied("host2", "", hp(h1, 8081))
		w := l.endpointOf("host1", "srv")
		var ranged, random bool
		for _, p := range w.Spec.Ports {
			switch {
			case p.Port == 80 && p.HostPort >= 9000 && p.HostPort <= 9005:
				ranged = true
			case p.Port == 81 && p.HostPort >= 1024:
				random = true
			}
		}
		if !ranged || !random {
			t.Fatalf("published ports of srv: %+v", w.Spec.Ports)
		}
		for _, p := range w.Spec.Ports {
			if p.Port == 80 && p.HostPort >= 9000 && p.HostPort <= 9005 {
				reach("host2", "", hp(h1, int(p.HostPort)), h2.Addr())
			}
		}
	})

	t.Run("ingress policy judges the real client", func(t *testing.T) {
		nearIP, _ := l.addrs("host1", "near")
		l.apply("host1", `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: srv-open}
spec:
  selector: role == 'srv'
  ingress:
  - action: Allow
    source: {nets: [`+h2.Addr()+`/32]}
`)
		reach("host2", "", hp(h1, 8080), h2.Addr())
		denied("host1", "near", hp(h1, 8080))
		l.apply("host1", `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: srv-open}
spec:
  selector: role == 'srv'
  ingress:
  - action: Allow
    source: {selector: role == 'near'}
`)
		reach("host1", "near", hp(h1, 8080), nearIP)
		denied("host2", "", hp(h1, 8080))
		l.apply("host1", open)
		reach("host2", "", hp(h1, 8080), h2.Addr())
	})

	t.Run("a taken port is refused and nothing leaks", func(t *testing.T) {
		before := l.inUse("host1")
		out, err := l.exec("host1", "docker", "run", "-d", "--name", "dup", "--net", "web", "-p", "8080:80", testImage, "sleep", "1d")
		if err == nil || !strings.Contains(out, "8080") || !strings.Contains(out, "already allocated") {
			t.Fatalf("a second -p 8080: %v %s", err, out)
		}
		// A port another process holds on the host.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cmd, err := lab.ExecCmd(ctx, l.st, h1, "busybox", "nc", "-l", "-p", "7070")
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = cmd.Wait() }()
		testutil.Eventually(t, 10*time.Second, func() error {
			out, err := l.exec("host1", "busybox", "netstat", "-ltn")
			if err != nil || !strings.Contains(out, ":7070 ") {
				return fmt.Errorf("nc not listening yet: %v %s", err, out)
			}
			return nil
		})
		out, err = l.exec("host1", "docker", "run", "-d", "--name", "dup2", "--net", "web", "-p", "7070:80", testImage, "sleep", "1d")
		if err == nil || !strings.Contains(out, "7070") || !strings.Contains(out, "already allocated") {
			t.Fatalf("-p of a port another process holds: %v %s", err, out)
		}
		l.docker("host1", "rm", "-f", "dup", "dup2")
		testutil.Eventually(t, 30*time.Second, func() error {
			if n := l.inUse("host1"); n != before {
				return fmt.Errorf("%d addresses in use, want %d", n, before)
			}
			return nil
		})
		if out := l.calico("host1", "ipam", "check", "--docker-node", "host1", "--min-age", "0s"); !strings.Contains(out, "Check complete: 0 problems") {
			t.Fatalf("ipam check:\n%s", out)
		}
		reach("host2", "", hp(h1, 8080), h2.Addr()) // the first container still has it
	})

	t.Run("closed after docker stop, free again", func(t *testing.T) {
		l.docker("host1", "stop", "srv")
		denied("host2", "", hp(h1, 8080))
		denied("host1", "", "127.0.0.1:8080")
		for _, p := range l.endpoints("host1") {
			for _, port := range p.Spec.Ports {
				if port.HostPort != 0 {
					t.Fatalf("endpoint %s still publishes %+v", p.Name, port)
				}
			}
		}
		l.docker("host1", "run", "-d", "--stop-timeout", "1", "--name", "srv2", "--net", "web", "--label", "role=srv", "-p", "8080:80", testImage, "sh", "-c", httpdWhoami)
		reach("host2", "", hp(h1, 8080), h2.Addr())
	})
}
