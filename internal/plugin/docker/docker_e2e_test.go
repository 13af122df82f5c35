package docker_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/lab"
	"github.com/calico-docker/calico/internal/testutil"
)

// TestDockerPlugin drives one lab host end to end: networks and isolation,
// label-selected policy, --ip, --subnet, IPv6, bad input, address release,
// calico container add, then node and dockerd restarts. The steps share the
// lab (building one takes a while) and run in order.
func TestDockerPlugin(t *testing.T) {
	l := newDockerLab(t, 1)
	const h = "host1"
	l.startNode(h)

	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, func(t *testing.T) {
			parent := l.t
			l.t = t
			defer func() { l.t = parent }()
			f(t)
		}) {
			t.FailNow()
		}
	}

	var fe1, fe2, be1 string
	step("networks and isolation", func(t *testing.T) {
		l.docker(h, "network", "create", "--driver", "calico", "--ipam-driver", "calico-ipam", "frontend")
		l.docker(h, "network", "create", "--driver", "calico", "--ipam-driver", "calico-ipam", "backend")
		fe1, _ = l.run(h, "fe1", "--net", "frontend", "--label", "role=web")
		fe2, _ = l.run(h, "fe2", "--net", "frontend", "--label", "role=db")
		be1, _ = l.run(h, "be1", "--net", "backend", "--label", "role=api", "--restart", "always")
		for _, ip := range []string{fe1, fe2, be1} {
			if !strings.HasPrefix(ip, "192.168.") {
				t.Fatalf("address %q is not from the default pool", ip)
			}
		}
		l.reaches(h, "fe1", fe2)
		l.reaches(h, "fe2", fe1)
		l.blocked(h, "fe1", be1)
		l.blocked(h, "be1", fe2)
		w := l.endpointOf(h, "fe1")
		if w.Labels["role"] != "web" || w.Labels["docker.container"] != "fe1" || w.Spec.Profiles[0] != "frontend" ||
			w.Spec.Orchestrator != "libnetwork" || w.Spec.IPNetworks[0] != fe1+"/32" {
			t.Fatalf("endpoint of fe1: %+v", w)
		}
	})

	step("label-selected policy", func(t *testing.T) {
		l.apply(h, `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: api-to-db
spec:
  selector: role == 'db'
  ingress:
  - action: Allow
    source:
      selector: role == 'api'
`)
		l.reaches(h, "be1", fe2) // allowed by the policy across networks
		l.blocked(h, "fe1", fe2) // a policy selects fe2 now: the profile no longer decides
		l.reaches(h, "fe2", fe1) // fe1 is selected by no policy
		l.calico(h, "delete", "globalnetworkpolicy", "api-to-db")
		l.reaches(h, "fe1", fe2)
		l.blocked(h, "be1", fe2)
	})

	step("named port from a container label", func(t *testing.T) {
		// nsrv serves on 80 (named "http" by its label) and on 8080; a
		// policy opens only the named port to other networks.
		l.docker(h, "run", "-d", "--stop-timeout", "1", "--name", "nsrv", "--net", "frontend", "--label", "role=nsrv",
			"--label", "org.projectcalico.port.http=80/tcp", testImage, "sh", "-c",
			"mkdir -p /www && echo ok > /www/index.html && httpd -p 8080 -h /www && exec httpd -f -p 80 -h /www")
		srv, _ := l.addrs(h, "nsrv")
		testutil.Eventually(t, 30*time.Second, func() error {
			w := l.endpointOf(h, "nsrv")
			if len(w.Spec.Ports) != 1 || w.Spec.Ports[0].Name != "http" || w.Spec.Ports[0].Port != 80 {
				return fmt.Errorf("ports of nsrv's endpoint: %+v", w.Spec.Ports)
			}
			return nil
		})
		l.apply(h, `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: named-http}
spec:
  selector: role == 'nsrv'
  ingress: [{action: Allow, protocol: TCP, destination: {ports: [http]}}]
`)
		get := func(port string) error {
			// busybox's wget -T crashes: bound it with timeout (as ports_e2e_test.go).
			out, err := l.exec(h, "docker", "exec", "be1", "timeout", "3", "wget", "-q", "-O-", "http://"+srv+":"+port+"/")
			if err != nil || strings.TrimSpace(out) != "ok" {
				return fmt.Errorf("be1 to nsrv port %s: %v %s", port, err, out)
			}
			return nil
		}
		testutil.Eventually(t, 30*time.Second, func() error { return get("80") }) // another network: only the policy opens it
		if err := get("8080"); err == nil {
			t.Fatal("be1 reaches nsrv on 8080, which no named port opens")
		}
		l.calico(h, "delete", "globalnetworkpolicy", "named-http")
		l.docker(h, "rm", "-f", "nsrv")
	})

	step("--subnet and --ip", func(t *testing.T) {
		l.docker(h, "network", "create", "--driver", "calico", "--ipam-driver", "calico-ipam", "--subnet", "192.168.0.0/16", "pooled")
		sub, _ := l.run(h, "pooled1", "--net", "pooled")
		if !strings.HasPrefix(sub, "192.168.") {
			t.Fatalf("pooled network gave %q", sub)
		}
		out, err := l.exec(h, "docker", "network", "create", "--driver", "calico", "--ipam-driver", "calico-ipam", "--subnet", "10.50.0.0/16", "nopool")
		if err == nil || !strings.Contains(out, "--subnet 10.50.0.0/16 is not the CIDR of an IPPool; the IPv4 pools are: 192.168.0.0/16 (default-ipv4-ippool)") {
			t.Fatalf("--subnet of no pool: %v %s", err, out)
		}
		// Docker takes --ip only on networks created with --subnet.
		v4, _ := l.run(h, "fixed", "--net", "pooled", "--ip", "192.168.77.7")
		if v4 != "192.168.77.7" {
			t.Fatalf("--ip gave %q", v4)
		}
		l.reaches(h, "pooled1", v4)
		out, err = l.exec(h, "docker", "run", "--rm", "--net", "pooled", "--ip", "192.168.77.7", testImage, "true")
		if err == nil || !strings.Contains(out, "192.168.77.7 is already in use") {
			t.Fatalf("a second container with the same --ip: %v %s", err, out)
		}
		l.docker(h, "rm", "-f", "fixed", "pooled1")
		l.docker(h, "network", "rm", "pooled")
	})

	step("IPv6", func(t *testing.T) {
		l.docker(h, "network", "create", "--driver", "calico", "--ipam-driver", "calico-ipam", "--ipv6", "dual")
		a4, a6 := l.run(h, "d1", "--net", "dual")
		b4, b6 := l.run(h, "d2", "--net", "dual")
		if !strings.HasPrefix(a6, "fd80:24e2:f998:") || !strings.HasPrefix(b6, "fd80:24e2:f998:") || a4 == "" || b4 == "" {
			t.Fatalf("dual-stack addresses %q %q %q %q", a4, a6, b4, b6)
		}
		l.reaches(h, "d1", b6)
		l.reaches(h, "d2", a4)
		l.blocked(h, "fe1", b6)
		l.docker(h, "rm", "-f", "d1", "d2")
	})

	step("bad input is refused cleanly", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"network", "create", "--driver", "calico", "--ipam-driver", "calico-ipam", "-o", "color=blue", "x1"}, "unknown network option -o color"},
			{[]string{"network", "create", "--driver", "calico", "x2"}, "needs the calico IPAM driver"},
			{[]string{"network", "create", "--driver", "calico", "--ipam-driver", "calico-ipam", "--subnet", "192.168.0.0/16", "--ip-range", "192.168.5.0/24", "x3"}, "--ip-range is not supported"},
		} {
			out, err := l.exec(h, append([]string{"docker"}, c.args...)...)
			if err == nil || !strings.Contains(out, c.want) {
				t.Errorf("docker %s: %v: %s (want %q)", strings.Join(c.args, " "), err, out, c.want)
			}
		}
		l.docker(h, "network", "create", "--driver", "calico", "--ipam-driver", "calico-ipam", "Bad_Name")
		out, err := l.exec(h, "docker", "run", "--rm", "--net", "Bad_Name", testImage, "true")
		if err == nil || !strings.Contains(out, `docker network name "Bad_Name" cannot name a Calico profile`) {
			t.Errorf("network Bad_Name: %v %s", err, out)
		}
		l.docker(h, "network", "rm", "Bad_Name")
		host := l.host(h)
		for _, c := range []struct{ sock, method string }{
			{"calico.sock", "NetworkDriver.CreateEndpoint"}, {"calico-ipam.sock", "IpamDriver.RequestPool"},
		} {
			code, body, err := pluginPost(host, c.sock, c.method, `{"Pool": [`)
			if err != nil || code != http.StatusBadRequest || !strings.Contains(body, `"Err"`) {
				t.Errorf("%s with malformed JSON: %d %s %v", c.method, code, body, err)
			}
		}
		// Still serving.
		l.docker(h, "run", "--rm", "--net", "frontend", testImage, "true")
	})

	step("addresses freed on docker rm", func(t *testing.T) {
		before := l.inUse(h)
		for i := 0; i < 3; i++ {
			l.run(h, fmt.Sprintf("tmp%d", i), "--net", "frontend")
		}
		if got := l.inUse(h); got != before+3 {
			t.Fatalf("%d addresses in use, want %d", got, before+3)
		}
		l.docker(h, "rm", "-f", "tmp0", "tmp1", "tmp2")
		if got := l.inUse(h); got != before {
			t.Fatalf("%d addresses in use after docker rm, want %d", got, before)
		}
		if n := len(l.endpoints(h)); n != 3 {
			t.Fatalf("%d endpoints, want 3 (fe1, fe2, be1)", n)
		}
	})

	step("docker-compose up and down, pool chosen by driver_opts", func(t *testing.T) {
		if _, err := exec.LookPath("docker-compose"); err != nil {
			t.Fatal("docker-compose is not installed (hack/deps.sh installs Debian's docker-compose)")
		}
		l.apply(h, `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: compose-green
spec:
  cidr: 10.78.0.0/16
  blockSize: 26
  nodeSelector: all()
`)
		green := netip.MustParsePrefix("10.78.0.0/16")
		before, eps := l.inUse(h), len(l.endpoints(h))
		compose := func(pool string) string {
			f := filepath.Join(l.dir, "compose-"+pool+".yml")
			if err := os.WriteFile(f, []byte(`version: "2.4"
services:
  a: {image: `+testImage+`, command: sleep 1d, stop_grace_period: 1s, networks: [cnet]}
  b: {image: `+testImage+`, command: sleep 1d, stop_grace_period: 1s, networks: [cnet]}
networks:
  cnet:
    name: cnet
    driver: calico
    driver_opts: {pool: `+pool+`}
    ipam: {driver: calico-ipam}
`), 0o644); err != nil {
				t.Fatal(err)
			}
			return f
		}
		// An unknown pool: refused, naming the option; nothing is left.
		out, err := l.exec(h, "docker-compose", "-p", "h22c", "-f", compose("nope"), "up", "-d")
		if err == nil || !strings.Contains(out, `-o pool=nope: there is no IPPool named \"nope\"`) && !strings.Contains(out, `-o pool=nope: there is no IPPool named "nope"`) {
			t.Fatalf("compose up with an unknown pool: %v %s", err, out)
		}
		if _, err := l.exec(h, "docker", "network", "inspect", "cnet"); err == nil {
			t.Fatal("network cnet exists after a refused create")
		}
		f := compose("compose-green")
		l.must(h, "docker-compose", "-p", "h22c", "-f", f, "up", "-d")
		a, _ := l.addrs(h, "h22c_a_1")
		b, _ := l.addrs(h, "h22c_b_1")
		for _, ip := range []string{a, b} {
			if p, err := netip.ParseAddr(ip); err != nil || !green.Contains(p) {
				t.Fatalf("compose service address %q is not from pool compose-green", ip)
			}
		}
		l.reaches(h, "h22c_a_1", b)
		l.must(h, "docker", "exec", "h22c_b_1", "ping", "-c1", "-W2", "a") // by service name
		if got := l.inUse(h); got != before+2 {
			t.Fatalf("%d addresses in use, want %d", got, before+2)
		}
		l.must(h, "docker-compose", "-p", "h22c", "-f", f, "down")
		if got := l.inUse(h); got != before {
			t.Fatalf("%d addresses in use after compose down, want %d", got, before)
		}
		if n := len(l.endpoints(h)); n != eps {
			t.Fatalf("%d endpoints after compose down, want %d", n, eps)
		}
		l.ipamClean(h)
		// The same pool with `docker network create -o pool=NAME`.
		l.docker(h, "network", "create", "--driver", "calico", "--ipam-driver", "calico-ipam", "-o", "pool=compose-green", "green")
		g, _ := l.run(h, "g1", "--net", "green")
		if p, err := netip.ParseAddr(g); err != nil || !green.Contains(p) {
			t.Fatalf("-o pool address %q is not from pool compose-green", g)
		}
		l.docker(h, "rm", "-f", "g1")
		l.docker(h, "network", "rm", "green")
		if got := l.inUse(h); got != before {
			t.Fatalf("%d addresses in use, want %d", got, before)
		}
	})

	var bare string
	step("calico container add", func(t *testing.T) {
		l.docker(h, "run", "-d", "--stop-timeout", "1", "--net", "none", "--name", "bare", "--label", "role=legacy", testImage, "sleep", "1d")
		out := l.calico(h, "container", "add", "bare", "--node", h, "--profile", "frontend", "--labels", "tier=old")
		w := l.endpointOf(h, "bare")
		if w.Spec.Orchestrator != "docker" || w.Labels["role"] != "legacy" || w.Labels["tier"] != "old" || len(w.Spec.IPNetworks) != 1 {
			t.Fatalf("endpoint of bare: %+v (add said %s)", w, out)
		}
		bare = strings.TrimSuffix(w.Spec.IPNetworks[0], "/32")
		l.reaches(h, "fe1", bare)
		l.reaches(h, "bare", fe2)
		l.blocked(h, "be1", bare)
		if list := l.calico(h, "container", "list", "--node", h); !strings.Contains(list, "bare") || !strings.Contains(list, bare) || !strings.Contains(list, "container add") {
			t.Fatalf("container list:\n%s", list)
		}
		if out, err := l.exec(h, l.bin, "container", "add", "fe1", "--node", h); err == nil || !strings.Contains(out, "--net=none") {
			t.Fatalf("container add of a plugin container: %v %s", err, out)
		}
		before := l.inUse(h)
		l.calico(h, "container", "remove", "bare", "--node", h)
		if got := l.inUse(h); got != before-1 {
			t.Fatalf("%d in use after remove, want %d", got, before-1)
		}
		l.blocked(h, "fe1", bare)
		// Removing the container removes an endpoint the CLI made.
		l.calico(h, "container", "add", "bare", "--node", h, "--ip", bare, "--profile", "frontend")
		l.reaches(h, "fe1", bare)
		l.docker(h, "rm", "-f", "bare")
		testutil.Eventually(t, 20*time.Second, func() error {
			for _, w := range l.endpoints(h) {
				if w.Labels["docker.container"] == "bare" { // spec.workload is the short container ID
					return fmt.Errorf("endpoint of bare still there")
				}
			}
			return nil
		})
	})

	step("node restart", func(t *testing.T) {
		before := l.inUse(h)
		l.stopNode(h, syscall.SIGKILL)
		// The dataplane stays: traffic keeps flowing while the node is down.
		l.reaches(h, "fe1", fe2)
		l.startNode(h)
		l.reaches(h, "fe1", fe2)
		l.blocked(h, "fe1", be1)
		n1, _ := l.run(h, "after", "--net", "frontend", "--label", "role=web")
		l.reaches(h, "fe2", n1)
		if w := l.endpointOf(h, "after"); w.Labels["role"] != "web" {
			t.Fatalf("labels after a node restart: %v", w.Labels)
		}
		l.docker(h, "rm", "-f", "after")
		if got := l.inUse(h); got != before {
			t.Fatalf("%d in use, want %d", got, before)
		}
	})

	step("dockerd restart", func(t *testing.T) {
		host := l.host(h)
		if live := l.docker(h, "info", "-f", "{{.LiveRestoreEnabled}}"); live != "true" {
			t.Fatalf("lab dockerd runs without --live-restore (LiveRestoreEnabled=%s)", live)
		}
		before := l.inUse(h)
		restartDockerd(t, l, host)
		// be1 has --restart always; with live-restore every container keeps running.
		testutil.Eventually(t, 60*time.Second, func() error {
			if s := l.docker(h, "inspect", "-f", "{{.State.Running}}", "be1"); s != "true" {
				return fmt.Errorf("be1 running: %s", s)
			}
			return nil
		})
		nbe1, _ := l.addrs(h, "be1")
		if nbe1 != be1 {
			t.Fatalf("with live-restore be1 changed address %s -> %s", be1, nbe1)
		}
		l.reaches(h, "fe1", fe2)
		l.blocked(h, "fe1", nbe1)
		if w := l.endpointOf(h, "be1"); w.Labels["role"] != "api" {
			t.Fatalf("be1 labels after the dockerd restart: %v", w.Labels)
		}
		if got := l.inUse(h); got != before {
			t.Fatalf("%d addresses in use after the dockerd restart, want %d (leak or loss)", got, before)
		}
		if out := l.calico(h, "ipam", "check", "--docker-node", h, "--min-age", "0s"); !strings.Contains(out, "Check complete: 0 problems") {
			t.Fatalf("ipam check:\n%s", out)
		}
	})
}

// TestDockerTwoHosts: the same network name on two hosts is one network
// (one profile): its containers reach each other across hosts, other
// networks' containers do not, and policy selects by container label on
// either host.
func TestDockerTwoHosts(t *testing.T) {
	l := newDockerLab(t, 2)
	l.bgp = true
	l.startNode("host1")
	l.startNode("host2")
	for _, h := range []string{"host1", "host2"} {
		l.docker(h, "network", "create", "--driver", "calico", "--ipam-driver", "calico-ipam", "frontend")
		l.docker(h, "network", "create", "--driver", "calico", "--ipam-driver", "calico-ipam", "backend")
	}
	a, _ := l.run("host1", "ca", "--net", "frontend")
	b, _ := l.run("host2", "cb", "--net", "frontend", "--label", "role=db")
	c, _ := l.run("host2", "cc", "--net", "backend", "--label", "role=api")
	l.reaches("host1", "ca", b)
	l.reaches("host2", "cb", a)
	l.blocked("host2", "cc", a)
	l.blocked("host1", "ca", c)
	l.apply("host1", `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: api-to-db
spec:
  selector: role == 'db'
  ingress:
  - action: Allow
    source:
      selector: role == 'api'
`)
	l.reaches("host2", "cc", b)
	l.blocked("host1", "ca", b)
	if n := strings.Count(l.calico("host1", "get", "profiles"), "frontend"); n != 1 {
		t.Fatalf("%d frontend profiles, want 1", n)
	}
}

// restartDockerd stops the host's dockerd and lets lab.Up start it again.
func restartDockerd(t *testing.T, l *dlab, h *lab.Host) {
	t.Helper()
	pid := h.DockerdPID
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 60*time.Second, func() error {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			return fmt.Errorf("dockerd %d still running", pid)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := lab.Up(ctx, lab.Config{Name: l.st.Name, Hosts: len(l.st.Hosts), Subnets: len(l.st.Fabric.Bridges), CalicoBin: l.bin, TestImage: testImage})
	if err != nil {
		t.Fatalf("restart dockerd: %v", err)
	}
	l.st = st
}
