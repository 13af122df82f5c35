package docker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/lab"
	"github.com/calico-docker/calico/internal/testutil"
)

// TestDockerSwarm: a two-host swarm (host1 manager) with the managed
// plugin on each host, the real Docker CLI, and `calico node run` on each
// host. Services' tasks on both hosts reach each other by address and by
// name, carry the swarm labels, a second swarm network is denied until a
// policy allows it, a stack deploys and is removed with every address
// released, and scaling and a rolling update leave `ipam check` clean with
// no stale routes.
func TestDockerSwarm(t *testing.T) {
	l := newDockerLabWith(t, 2, func(c *lab.Config) { c.Swarm = true })
	l.bgp = true
	l.startNode("host1")
	l.startNode("host2")
	const plugin = lab.PluginName
	t.Cleanup(func() {
		// Services and stacks go first, while the plugins still answer.
		out, _ := l.exec("host1", "docker", "service", "ls", "-q")
		if ids := strings.Fields(out); len(ids) > 0 {
			_, _ = l.exec("host1", append([]string{"docker", "service", "rm"}, ids...)...)
		}
		for _, h := range []string{"host1", "host2"} {
			_ = l.noContainers(h, "label=com.docker.swarm.task.id", 30*time.Second)
		}
	})
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
	baseline := 0

	var a1, a2 string // task addresses of service "web" on host1 and host2
	step("plugin and services on both hosts", func(t *testing.T) {
		for _, h := range []string{"host1", "host2"} {
			out := l.docker(h, "plugin", "inspect", "--format", "{{.Enabled}} {{json .Config.Interface.Types}}", plugin)
			if !strings.HasPrefix(out, "true") || !strings.Contains(out, "docker.networkdriver/1.0") || !strings.Contains(out, "docker.ipamdriver/1.0") {
				t.Fatalf("plugin on %s: %s", h, out)
			}
		}
		baseline = l.inUse("host1")
		l.docker("host1", "network", "create", "--driver", plugin, "--ipam-driver", plugin, "--scope", "swarm", "front")
		l.service("web", "--mode", "global", "--network", "front")
		a1 = l.taskAddr("host1", "web")
		a2 = l.taskAddr("host2", "web")
		for _, a := range []string{a1, a2} {
			if !strings.HasPrefix(a, "192.168.") {
				t.Fatalf("task address %q is not from the default pool", a)
			}
		}
		l.reaches("host1", l.task("host1", "web"), a2)
		l.reaches("host2", l.task("host2", "web"), a1)
		// By name (dnsrr): the service name resolves to both tasks.
		testutil.Eventually(t, 30*time.Second, func() error {
			out, _ := l.exec("host1", "docker", "exec", l.task("host1", "web"), "nslookup", "web")
			if !strings.Contains(out, a1) || !strings.Contains(out, a2) {
				return fmt.Errorf("nslookup web: %s", out)
			}
			return nil
		})
		l.must("host2", "docker", "exec", l.task("host2", "web"), "ping", "-c1", "-W2", "web")
		w := l.endpointOfTask("host2", "web")
		if w.Labels["com.docker.swarm.service.name"] != "web" || w.Labels["com.docker.swarm.task.name"] == "" || w.Spec.Profiles[0] != "front" {
			t.Fatalf("endpoint of web's task on host2: labels %v profiles %v", w.Labels, w.Spec.Profiles)
		}
		l.ipamClean("host1")
	})

	step("second network denied until a policy allows", func(t *testing.T) {
		l.docker("host1", "network", "create", "--driver", plugin, "--ipam-driver", plugin, "--scope", "swarm", "back")
		l.service("api", "--mode", "global", "--network", "back")
		api2 := l.task("host2", "api")
		l.blocked("host2", api2, a1)
		l.blocked("host2", api2, a2)
		l.apply("host1", `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: api-to-web
spec:
  selector: com.docker.swarm.service.name == 'web'
  ingress:
  - action: Allow
    source:
      selector: com.docker.swarm.service.name == 'api'
  - action: Allow
    source:
      selector: docker.network == 'front'
`)
		l.reaches("host2", api2, a1)
		l.reaches("host2", api2, a2)
		l.reaches("host1", l.task("host1", "web"), a2) // its own network still allowed
		l.calico("host1", "delete", "globalnetworkpolicy", "api-to-web")
		l.blocked("host2", api2, a1)
	})

	step("scale and rolling update", func(t *testing.T) {
		before := l.inUse("host1")
		l.service("rep", "--replicas", "4", "--network", "front")
		l.waitInUse(before + 4)
		l.docker("host1", "service", "scale", "--detach=false", "rep=1")
		l.waitInUse(before + 1)
		l.docker("host1", "service", "update", "--detach=false", "--no-resolve-image", "--env-add", "V=2", "rep")
		l.waitInUse(before + 1)
		l.docker("host1", "service", "scale", "--detach=false", "rep=3")
		l.waitInUse(before + 3)
		l.removeService("rep", before)
	})

	step("stack deploy and remove", func(t *testing.T) {
		before := l.inUse("host1")
		// A stack prefixes names with the stack's ("st_appnet"), which is no
		// valid profile name: `name:` keeps the network's own.
		f := l.stackFile("appnet", "")
		l.docker("host1", "stack", "deploy", "--resolve-image", "never", "-c", f, "st")
		d1 := l.taskAddr("host1", "st_db")
		d2 := l.taskAddr("host2", "st_db")
		l.reaches("host1", l.task("host1", "st_db"), d2)
		l.reaches("host2", l.task("host2", "st_db"), d1)
		l.waitInUse(before + 2)
		l.docker("host1", "stack", "rm", "st")
		// Removal is asynchronous: swarm frees the network's pool (and so
		// its addresses) at once, the tasks' containers stop after.
		l.waitGone("label=com.docker.stack.namespace=st")
		l.waitInUse(before)
		l.ipamClean("host1")
		l.noStaleRoutes()
	})

	step("pool chosen by driver_opts and -o pool", func(t *testing.T) {
		l.apply("host1", `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: swarm-blue
spec:
  cidr: 10.77.0.0/16
  blockSize: 26
  nodeSelector: all()
`)
		before := l.inUse("host1")
		blue := netip.MustParsePrefix("10.77.0.0/16")
		inBlue := func(what, a string) {
			t.Helper()
			if ip, err := netip.ParseAddr(a); err != nil || !blue.Contains(ip) {
				t.Fatalf("%s: address %q is not from pool swarm-blue (%s)", what, a, blue)
			}
		}
		// compose and stack drop ipam.options: the pool is a driver option.
		f := l.stackFile("bluenet", "driver_opts: {pool: swarm-blue}")
		l.docker("host1", "stack", "deploy", "--resolve-image", "never", "-c", f, "bl")
		b1, b2 := l.taskAddr("host1", "bl_db"), l.taskAddr("host2", "bl_db")
		inBlue("stack task on host1", b1)
		inBlue("stack task on host2", b2)
		l.reaches("host1", l.task("host1", "bl_db"), b2)
		l.reaches("host2", l.task("host2", "bl_db"), b1)

		// The same with `docker network create -o pool=NAME`.
		l.docker("host1", "network", "create", "--driver", plugin, "--ipam-driver", plugin, "--scope", "swarm", "-o", "pool=swarm-blue", "blue2")
		l.service("b2", "--mode", "global", "--network", "blue2")
		inBlue("-o pool task on host2", l.taskAddr("host2", "b2"))
		l.waitInUse(before + 4)

		// An unknown pool: swarm allocates networks after `network create`
		// returns, so the refusal is in the manager's node log (and the
		// network never gets an address).
		if out, err := l.exec("host1", "docker", "network", "create", "--driver", plugin, "--ipam-driver", plugin, "--scope", "swarm", "-o", "pool=nope", "h22bad"); err != nil {
			if !strings.Contains(out, `there is no IPPool named "nope"`) {
				t.Fatalf("create with an unknown pool: %v", err)
			}
		} else {
			testutil.Eventually(t, 60*time.Second, func() error {
				b, _ := os.ReadFile(filepath.Join(l.dir, "host1.log"))
				if !strings.Contains(string(b), `-o pool=nope: there is no IPPool named \"nope\"`) {
					return fmt.Errorf("the manager's node did not refuse -o pool=nope")
				}
				return nil
			})
			l.docker("host1", "network", "rm", "h22bad")
		}

		l.docker("host1", "stack", "rm", "bl")
		l.docker("host1", "service", "rm", "b2")
		l.waitGone("label=com.docker.stack.namespace=bl")
		l.waitGone("label=com.docker.swarm.service.name=b2")
		testutil.Eventually(t, 30*time.Second, func() error {
			_, err := l.exec("host1", "docker", "network", "rm", "blue2")
			return err
		})
		l.waitInUse(before)
		l.ipamClean("host1")
		l.noStaleRoutes()
	})

	step("node drained", func(t *testing.T) {
		before := l.inUse("host1")
		l.service("dr", "--replicas", "2", "--network", "front")
		l.waitInUse(before + 2)
		node2 := l.docker("host2", "info", "--format", "{{.Swarm.NodeID}}")
		l.docker("host1", "node", "update", "--availability", "drain", node2)
		undrain := func() { _, _ = l.exec("host1", "docker", "node", "update", "--availability", "active", node2) }
		t.Cleanup(undrain)
		// host2's tasks move (dr) or stop (the global web and api): their
		// addresses are released and their borrowed /32s go.
		// (Swarm keeps the stopped containers as task history.)
		testutil.Eventually(t, 60*time.Second, func() error {
			out, err := l.exec("host2", "docker", "ps", "-q", "--filter", "label=com.docker.swarm.task.id")
			if err != nil || strings.TrimSpace(out) != "" {
				return fmt.Errorf("tasks still running on the drained host2: %v %s", err, strings.TrimSpace(out))
			}
			return nil
		})
		testutil.Eventually(t, 60*time.Second, func() error {
			out, err := l.exec("host1", "docker", "ps", "-q", "--filter", "label=com.docker.swarm.service.name=dr")
			if n := len(strings.Fields(out)); err != nil || n != 2 {
				return fmt.Errorf("%d dr tasks on host1, want 2 (%v)", n, err)
			}
			return nil
		})
		l.waitInUse(before)
		l.ipamClean("host1")
		l.noStaleRoutes()
		// Traffic to the remaining tasks keeps flowing.
		out := l.docker("host1", "ps", "-q", "--filter", "label=com.docker.swarm.service.name=dr")
		for _, id := range strings.Fields(out) {
			a, _ := l.addrs("host1", id)
			l.reaches("host1", l.task("host1", "web"), a)
		}
		undrain()
		a2 = l.taskAddr("host2", "web")
		l.reaches("host1", l.task("host1", "web"), a2)
		l.removeService("dr", before)
	})

	step("host rebooted", func(t *testing.T) {
		before := l.inUse("host1")
		old := l.task("host2", "web")
		began := time.Now()
		mark := func(what string) { t.Logf("%s after %v", what, time.Since(began).Round(100*time.Millisecond)) }
		// A reboot: the node and dockerd both go down (the node first, so
		// dockerd's releases of its tasks' addresses reach nobody), then
		// both come back.
		l.stopNode("host2", syscall.SIGKILL)
		restart := func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			return lab.RestartDockerd(ctx, l.st, l.host("host2"))
		}
		if err := restart(); err != nil {
			// Under load a starting dockerd can give up waiting for its
			// containerd ("timeout waiting for containerd to start"); that
			// is dockerd's start, not what this step tests: once more.
			t.Logf("restart host2's dockerd: %v; trying again", err)
			if err := restart(); err != nil {
				t.Fatalf("restart host2's dockerd: %v", err)
			}
		}
		l.startNode("host2")
		mark("node and dockerd restarted")
		testutil.Eventually(t, 120*time.Second, func() error {
			if id := l.task("host2", "web"); id == old {
				return fmt.Errorf("web's task on host2 is still the old container")
			}
			return nil
		})
		a2 = l.taskAddr("host2", "web")
		mark("new web task on host2")
		l.reaches("host1", l.task("host1", "web"), a2)
		l.reaches("host2", l.task("host2", "web"), a1)
		l.waitInUse(before)
		mark("address count back")
		// Within a minute: the reconcile at the node's start frees the
		// endpoints of the containers dockerd stopped while the node was
		// down, without waiting for the 2-minute grace period.
		last := ""
		testutil.Eventually(t, 60*time.Second, func() error {
			err := l.ipamProblems("host1")
			if err != nil && err.Error() != last {
				last = err.Error()
				mark("ipam check: " + last)
			}
			return err
		})
		mark("ipam check clean")
		l.noStaleRoutes()
	})

	step("VIP mode: allocated from the pool, not served, reported", func(t *testing.T) {
		before := l.inUse("host1")
		l.docker("host1", "service", "create", "--detach", "--quiet", "--no-resolve-image", "--endpoint-mode", "vip",
			"--stop-grace-period", "1s", "--name", "vip", "--replicas", "1", "--network", "front", testImage, "sleep", "1d")
		var vip string
		testutil.Eventually(t, 60*time.Second, func() error {
			out, err := l.exec("host1", "docker", "service", "inspect", "--format", "{{range .Endpoint.VirtualIPs}}{{.Addr}}{{end}}", "vip")
			vip = strings.TrimSpace(out)
			if err != nil || vip == "" {
				return fmt.Errorf("no VIP allocated yet (%v)", err)
			}
			return nil
		})
		ip, _, _ := strings.Cut(vip, "/")
		if !strings.HasPrefix(ip, "192.168.") && !strings.HasPrefix(ip, "10.77.") {
			t.Fatalf("the VIP %q is not from a calico pool", vip)
		}
		// The manager's node says why it cannot work, and what to do.
		testutil.Eventually(t, 60*time.Second, func() error {
			b, _ := os.ReadFile(filepath.Join(l.dir, "host1.log"))
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, "swarm service uses endpoint mode vip on a calico network") && strings.Contains(line, "service=vip") &&
					strings.Contains(line, "--endpoint-mode dnsrr") {
					return nil
				}
			}
			return fmt.Errorf("the manager's node did not report the VIP-mode service")
		})
		// Docker's load balancer is not there: the VIP answers nothing.
		l.blocked("host1", l.task("host1", "web"), ip)
		l.removeService("vip", before)
	})

	step("everything released", func(t *testing.T) {
		l.docker("host1", "service", "rm", "web", "api")
		l.waitGone("label=com.docker.swarm.task.id")
		l.waitInUse(baseline)
		testutil.Eventually(t, 30*time.Second, func() error {
			_, err := l.exec("host1", "docker", "network", "rm", "front", "back")
			return err
		})
		l.ipamClean("host1")
		l.noStaleRoutes()
	})
}

// service creates a swarm service of the test image (dnsrr, no registry
// lookup) and waits until it has converged.
func (l *dlab) service(name string, args ...string) {
	l.t.Helper()
	all := append([]string{"service", "create", "--detach=false", "--quiet", "--no-resolve-image", "--endpoint-mode", "dnsrr",
		"--stop-grace-period", "1s", "--name", name}, args...)
	l.docker("host1", append(all, testImage, "sleep", "1d")...)
}

// stackFile writes a stack of one global dnsrr service, db, on a network
// of the plugin named network (extra: more of the network's settings).
func (l *dlab) stackFile(network, extra string) string {
	l.t.Helper()
	f := filepath.Join(l.dir, network+".yml")
	if err := os.WriteFile(f, []byte(`version: "3.8"
services:
  db:
    image: `+testImage+`
    command: sleep 1d
    stop_grace_period: 1s
    deploy: {mode: global, endpoint_mode: dnsrr}
    networks: [`+network+`]
networks:
  `+network+`:
    name: `+network+`
    driver: `+lab.PluginName+`
    ipam: {driver: `+lab.PluginName+`}
    `+extra+`
`), 0o644); err != nil {
		l.t.Fatal(err)
	}
	return f
}

// removeService removes a service and waits until its tasks are gone and
// the pools hold inUse addresses again, with ipam check clean and no stale
// routes.
func (l *dlab) removeService(name string, inUse int) {
	l.t.Helper()
	l.docker("host1", "service", "rm", name)
	l.waitGone("label=com.docker.swarm.service.name=" + name)
	l.waitInUse(inUse)
	l.ipamClean("host1")
	l.noStaleRoutes()
}

// task is the ID of the running container of a service's task on a host.
func (l *dlab) task(host, service string) string {
	l.t.Helper()
	var id string
	testutil.Eventually(l.t, 60*time.Second, func() error {
		out, err := l.exec(host, "docker", "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+service)
		if ids := strings.Fields(out); err == nil && len(ids) > 0 {
			id = ids[0]
			return nil
		}
		return fmt.Errorf("no running task of %s on %s (%v)", service, host, err)
	})
	return id
}

func (l *dlab) taskAddr(host, service string) string {
	l.t.Helper()
	a, _ := l.addrs(host, l.task(host, service))
	return a
}

func (l *dlab) endpointOfTask(host, service string) (w api.WorkloadEndpoint) {
	l.t.Helper()
	for _, e := range l.endpoints(host) {
		if e.Labels["com.docker.swarm.service.name"] == service && e.Spec.Node == host {
			return e
		}
	}
	l.t.Fatalf("no endpoint of a %s task on %s", service, host)
	return w
}

// waitInUse waits until the pools hold exactly n addresses.
func (l *dlab) waitInUse(n int) {
	l.t.Helper()
	testutil.Eventually(l.t, 60*time.Second, func() error {
		if got := l.inUse("host1"); got != n {
			return fmt.Errorf("%d addresses in use, want %d", got, n)
		}
		return nil
	})
}

// ipamClean runs `calico ipam check` and wants no problem.
func (l *dlab) ipamClean(host string) {
	l.t.Helper()
	if err := l.ipamProblems(host); err != nil {
		l.t.Fatal(err)
	}
}

// ipamProblems runs `calico ipam check` and returns what it found.
func (l *dlab) ipamProblems(host string) error {
	f := filepath.Join(l.dir, fmt.Sprintf("check%d.json", time.Now().UnixNano()))
	if _, err := l.exec(host, l.bin, "ipam", "check", "-o", f); err != nil {
		return fmt.Errorf("ipam check: %w", err)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return err
	}
	out := string(b)
	var r struct {
		Leaked          []json.RawMessage `json:"leaked"`
		Inconsistencies []json.RawMessage `json:"inconsistencies"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return fmt.Errorf("ipam check output: %w: %s", err, out)
	}
	if len(r.Leaked) > 0 || len(r.Inconsistencies) > 0 {
		return fmt.Errorf("ipam check found problems: %s", out)
	}
	return nil
}

// noStaleRoutes: every /32 a host routes to a local workload interface
// belongs to an endpoint that exists.
func (l *dlab) noStaleRoutes() {
	l.t.Helper()
	testutil.Eventually(l.t, 30*time.Second, func() error {
		var live []string
		for _, w := range l.endpoints("host1") {
			for _, n := range w.Spec.IPNetworks {
				live = append(live, strings.TrimSuffix(n, "/32"))
			}
		}
		for _, h := range []string{"host1", "host2"} {
			out := l.must(h, "ip", "-4", "route", "show")
			for _, line := range strings.Split(out, "\n") {
				f := strings.Fields(line)
				if len(f) < 3 || strings.Contains(f[0], "/") || f[1] != "dev" || !strings.HasPrefix(f[2], "cali") {
					continue
				}
				if !slices.Contains(live, f[0]) {
					return fmt.Errorf("%s routes %s to %s, which no endpoint has", h, f[0], f[2])
				}
			}
		}
		return nil
	})
}

// noContainers waits until a host has no container matching filter.
func (l *dlab) noContainers(host, filter string, timeout time.Duration) error {
	var last error
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		out, err := l.exec(host, "docker", "ps", "-aq", "--filter", filter)
		if err == nil && strings.TrimSpace(out) == "" {
			return nil
		}
		last = fmt.Errorf("containers %s still on %s: %v %s", filter, host, err, strings.TrimSpace(out))
		time.Sleep(200 * time.Millisecond)
	}
	return last
}

// waitGone waits until no host has a container matching filter.
func (l *dlab) waitGone(filter string) {
	l.t.Helper()
	for _, h := range []string{"host1", "host2"} {
		if err := l.noContainers(h, filter, 60*time.Second); err != nil {
			l.t.Fatal(err)
		}
	}
}
