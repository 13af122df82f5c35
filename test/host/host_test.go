// Package host is the non-lab test tier: it runs the calico node in this
// machine's own network namespace against the machine's own dockerd (started
// with Docker's defaults by hack/dockerd.sh), as a user following the
// README's "On your own hosts" would, with the lab e2e's assertions, then
// removes the node and checks that nothing it created is left.
//
// It takes the lock /tmp/calico-hostns.lock (flock, the same lock helpers'
// manual runs take with `flock /tmp/calico-hostns.lock ...`) for its whole
// run, and skips when the host already runs a calico node it did not start.
// Traffic flows only between containers the test creates.
package host

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/cli"
	"github.com/calico-docker/calico/internal/lab"
	"github.com/calico-docker/calico/internal/testutil"
)

const lockPath = "/tmp/calico-hostns.lock"

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBuiltCalicoBin()
	os.Exit(code)
}

// lockHostNS takes the host-namespace lock, waiting up to 15 minutes, and
// releases it at cleanup (registered first, so it is released last).
func lockHostNS(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("open %s: %v", lockPath, err)
	}
	deadline := time.Now().Add(15 * time.Minute)
	logged := false
	for {
		if ancestorHolds(f) {
			// `flock /tmp/calico-hostns.lock go test ...`: the lock is ours already.
			t.Logf("%s is held by a parent process of this test", lockPath)
			f.Close()
			return
		}
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if err != syscall.EWOULDBLOCK {
			f.Close()
			t.Fatalf("flock %s: %v", lockPath, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			t.Fatalf("%s is held by someone else for 15 minutes", lockPath)
		}
		if !logged {
			t.Logf("waiting for %s", lockPath)
			logged = true
		}
		time.Sleep(500 * time.Millisecond) // waiting for another process: there is no event to wait on
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}

// ancestorHolds reports whether a process among our ancestors holds a flock
// on f's file (read from /proc/locks).
func ancestorHolds(f *os.File) bool {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return false
	}
	holders := map[int]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		fs := strings.Fields(l)
		// "1: FLOCK  ADVISORY  WRITE 12345 00:1f:123456 0 EOF"
		if len(fs) < 6 || fs[1] != "FLOCK" {
			continue
		}
		dev := strings.Split(fs[5], ":")
		if len(dev) != 3 || dev[2] != strconv.FormatUint(st.Ino, 10) {
			continue
		}
		if pid, err := strconv.Atoi(fs[4]); err == nil {
			holders[pid] = true
		}
	}
	for pid := os.Getppid(); pid > 1; {
		if holders[pid] {
			return true
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		// The fields after the command name, which is in parentheses.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		fs := strings.Fields(rest)
		if len(fs) < 2 {
			return false
		}
		if pid, err = strconv.Atoi(fs[1]); err != nil {
			return false
		}
	}
	return false
}

// hostRun is one run of the node on this host.
type hostRun struct {
	t                    *testing.T
	bin                  string
	env                  []string
	suffix               string
	health               string
	containers, networks []string
}

func (h *hostRun) cmd(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, name, args...)
	c.Env = append(os.Environ(), h.env...)
	out, err := c.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (h *hostRun) must(name string, args ...string) string {
	h.t.Helper()
	out, err := h.cmd(name, args...)
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *hostRun) calico(args ...string) string {
	h.t.Helper()
	return h.must(h.bin, args...)
}

func (h *hostRun) docker(args ...string) string {
	h.t.Helper()
	return h.must("docker", args...)
}

func (h *hostRun) network(name string) string {
	h.t.Helper()
	full := name + "-" + h.suffix
	h.docker("network", "create", "--driver", "calico", "--ipam-driver", "calico-ipam", full)
	h.networks = append(h.networks, full)
	return full
}

func (h *hostRun) run(name, network string, cmd []string, labels ...string) (string, string) {
	h.t.Helper()
	full := name + "-" + h.suffix
	args := []string{"run", "-d", "--name", full}
	if network != "" {
		args = append(args, "--net", network)
	}
	for _, l := range labels {
		args = append(args, "--label", l)
	}
	args = append(args, cli.TestImage)
	args = append(args, cmd...)
	h.containers = append(h.containers, full)
	h.docker(args...)
	ip := strings.TrimSpace(h.docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", full))
	return full, ip
}

func (h *hostRun) canPing(from, ip string) bool {
	_, err := h.cmd("docker", "exec", from, "ping", "-c1", "-W1", ip)
	return err == nil
}

func (h *hostRun) canConnect(from, ip string, port int) bool {
	_, err := h.cmd("docker", "exec", from, "nc", "-w", "2", ip, fmt.Sprint(port))
	return err == nil
}

func (h *hostRun) eventually(what string, within time.Duration, ok func() bool) {
	h.t.Helper()
	testutil.Eventually(h.t, within, func() error {
		if !ok() {
			return fmt.Errorf("not yet: %s", what)
		}
		return nil
	})
}

func (h *hostRun) never(what string, ok func() bool) {
	h.t.Helper()
	for range 2 {
		if ok() {
			h.t.Fatalf("unexpectedly: %s", what)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ownedState is what the node may leave on the host, read from the kernel
// and Docker. An empty ownedState means nothing of ours is there.
type ownedState struct {
	table, routes, links, dockerUser, sockets, node string
}

func readOwned(h *hostRun) ownedState {
	var s ownedState
	if out, err := h.cmd("nft", "list", "table", "inet", "calico"); err == nil {
		s.table = firstLine(out)
	}
	r4, _ := h.cmd("ip", "route", "show", "table", "all", "proto", "80")
	r6, _ := h.cmd("ip", "-6", "route", "show", "table", "all", "proto", "80")
	s.routes = strings.TrimSpace(r4 + r6)
	if out, err := h.cmd("ip", "-br", "link"); err == nil {
		var ls []string
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 0 && (strings.HasPrefix(f[0], "cali") || strings.HasPrefix(f[0], "vxlan.calico")) {
				ls = append(ls, f[0])
			}
		}
		s.links = strings.Join(ls, " ")
	}
	var du []string
	for _, save := range []string{"iptables-nft-save", "ip6tables-nft-save", "iptables-legacy-save", "ip6tables-legacy-save"} {
		if _, err := exec.LookPath(save); err != nil {
			continue
		}
		out, _ := h.cmd(save, "-t", "filter")
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "-A DOCKER-USER") && strings.Contains(l, "cali") {
				du = append(du, save+": "+l)
			}
		}
	}
	s.dockerUser = strings.Join(du, "\n")
	var socks []string
	for _, p := range []string{"/run/docker/plugins/calico.sock", "/run/docker/plugins/calico-ipam.sock"} {
		if _, err := os.Stat(p); err == nil {
			socks = append(socks, p)
		}
	}
	s.sockets = strings.Join(socks, " ")
	if out, err := h.cmd("docker", "inspect", "-f", "{{.Name}} {{.State.Status}}", "calico-node"); err == nil {
		s.node = strings.TrimSpace(out)
	}
	return s
}

func firstLine(s string) string { l, _, _ := strings.Cut(strings.TrimSpace(s), "\n"); return l }

func TestOwnHostReadmeFlow(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "docker", "dockerd", "nft", "ip")
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("skipped: /bin/busybox (busybox-static) missing")
	}
	lockHostNS(t)
	start := time.Now()

	h := &hostRun{t: t, bin: testutil.CalicoBin(t), suffix: testutil.RandSuffix(5)}
	if out, err := exec.Command("../../hack/dockerd.sh", "start").CombinedOutput(); err != nil {
		t.Fatalf("hack/dockerd.sh start: %v\n%s", err, out)
	}
	if before := readOwned(h); before != (ownedState{}) {
		t.Skipf("skipped: this host already has calico node state that this test did not create (%+v); remove it with `calico node remove` first", before)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := lab.BuildBusyboxImage(ctx, &lab.Host{Name: "host", DockerHost: "unix:///var/run/docker.sock"}, cli.TestImage); err != nil {
		t.Fatal(err)
	}

	// The README's first node, with ports picked free on this shared
	// machine and the datastore embedded in the node on loopback.
	// The README's first host: etcd embedded with TLS and client
	// certificates on the host's address (ports 2378-2380) and on a local
	// socket; `calico` finds it through the calicoctl.cfg the node writes.
	healthPort, metricsPort, bgpPort := freePort(t), freePort(t), freePort(t)
	h.health = fmt.Sprintf("127.0.0.1:%d", healthPort)
	dataDir := "/var/lib/calico/etcd-hosttier-" + h.suffix
	removeArgs := []string{"node", "remove", "--force", "--purge", "--health-addr", h.health}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := h.cmd("docker", "logs", "--tail", "60", "calico-node")
			t.Logf("calico-node logs:\n%s", out)
			out, _ = h.cmd("iptables-save", "-c", "-t", "filter")
			t.Logf("iptables-save -t filter:\n%s", out)
		}
		// Best effort after a failure; the main flow below removes and checks.
		for _, c := range h.containers {
			_, _ = h.cmd("docker", "rm", "-f", c)
		}
		for _, n := range h.networks {
			_, _ = h.cmd("docker", "network", "rm", n)
		}
		_, _ = h.cmd(h.bin, removeArgs...)
		_ = os.RemoveAll(dataDir)
	})

	check := h.calico("node", "checksystem")
	t.Logf("checksystem:\n%s", check)
	t0 := time.Now()
	out := h.calico("node", "start", "--name", "hosttier-"+h.suffix,
		"--embedded-etcd", "--etcd-data-dir", dataDir,
		"--health-addr", h.health, "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", metricsPort),
		"--bgp-port", fmt.Sprint(bgpPort))
	t.Logf("node start (%v):\n%s", time.Since(t0).Round(time.Millisecond), out)
	if s := h.calico("node", "status", "--health-addr", h.health); !strings.Contains(s, "ready") {
		t.Fatalf("node status:\n%s", s)
	}
	// Starting again with the same flags changes nothing.
	if out := h.calico("node", "start", "--name", "hosttier-"+h.suffix,
		"--embedded-etcd", "--etcd-data-dir", dataDir,
		"--health-addr", h.health, "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", metricsPort),
		"--bgp-port", fmt.Sprint(bgpPort)); !strings.Contains(out, "already running") {
		t.Fatalf("second node start replaced the node:\n%s", out)
	}

	// The README's Docker usage.
	frontend := h.network("frontend")
	backend := h.network("backend")
	sleep := []string{"sleep", "1d"}
	web1, web1IP := h.run("web1", frontend, sleep, "role=web")
	_, web2IP := h.run("web2", frontend, sleep, "role=web")
	db1, db1IP := h.run("db1", backend, []string{"nc", "-ll", "-p", "8080", "-e", "echo", "hi"}, "role=db")
	t.Logf("web1 %s web2 %s db1 %s", web1IP, web2IP, db1IP)

	// Same network on one host: reachable.
	h.eventually(web1+" reaches web2", 30*time.Second, func() bool { return h.canPing(web1, web2IP) })
	// Another network: isolated, both ways, ICMP and TCP.
	h.never(web1+" reaches db1", func() bool { return h.canPing(web1, db1IP) })
	h.never(db1+" reaches web1", func() bool { return h.canPing(db1, web1IP) })
	h.never(web1+" connects to db1:8080", func() bool { return h.canConnect(web1, db1IP, 8080) })

	// A label policy opens one port from web to db; everything else stays closed.
	policy := "allow-web-db-8080-" + h.suffix
	f := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(f, []byte(fmt.Sprintf(`apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: %s
spec:
  order: 100
  selector: role == 'db'
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    source:
      selector: role == 'web'
    destination:
      ports: [8080]
  - action: Pass
`, policy)), 0o644); err != nil {
		t.Fatal(err)
	}
	h.calico("apply", "-f", f)
	h.eventually(web1+" connects to db1:8080 after the policy", 15*time.Second, func() bool { return h.canConnect(web1, db1IP, 8080) })
	h.never(web1+" pings db1 (the policy opens only TCP 8080)", func() bool { return h.canPing(web1, db1IP) })
	h.never(db1+" reaches web1", func() bool { return h.canPing(db1, web1IP) })

	// Docker's default bridge keeps working beside calico networks.
	b1, _ := h.run("bridge1", "", sleep)
	_, b2IP := h.run("bridge2", "", sleep)
	h.eventually(b1+" reaches bridge2 on docker0", 15*time.Second, func() bool { return h.canPing(b1, b2IP) })

	during := readOwned(h)
	if during.table == "" || during.routes == "" || during.links == "" || during.sockets == "" || during.node == "" {
		t.Fatalf("while running, expected our table, routes, links, sockets and container: %+v", during)
	}

	// Removal refuses while containers are on calico networks, and changes nothing.
	if out, err := h.cmd(h.bin, "node", "remove", "--health-addr", h.health); err == nil || !strings.Contains(out, web1) {
		t.Fatalf("node remove with containers attached: err %v, output:\n%s", err, out)
	}
	if s := h.calico("node", "status", "--health-addr", h.health); !strings.Contains(s, "ready") {
		t.Fatalf("the refused removal disturbed the node:\n%s", s)
	}
	h.eventually(web1+" still reaches web2", 10*time.Second, func() bool { return h.canPing(web1, web2IP) })

	// The README's removal: containers first, then the node.
	for _, c := range h.containers {
		h.docker("rm", "-f", c)
	}
	h.containers = nil
	out = h.calico(removeArgs...)
	t.Logf("node remove:\n%s", out)
	for _, n := range h.networks {
		if !strings.Contains(out, "removed docker network "+n) {
			t.Errorf("node remove did not remove network %s", n)
		}
	}
	h.networks = nil
	if after := readOwned(h); after != (ownedState{}) {
		t.Fatalf("left behind after node remove: %+v", after)
	}
	if ls, _ := h.cmd("docker", "network", "ls", "--filter", "driver=calico", "-q"); strings.TrimSpace(ls) != "" {
		t.Errorf("calico networks left: %s", ls)
	}
	if ps, _ := h.cmd("docker", "ps", "-a", "--filter", "name="+h.suffix, "-q"); strings.TrimSpace(ps) != "" {
		t.Errorf("test containers left: %s", ps)
	}
	for _, port := range []string{"2378", "2379", "2380"} {
		if out, _ := h.cmd("ss", "-Hltn", "sport = :"+port); strings.TrimSpace(out) != "" {
			t.Errorf("something still listens on the embedded datastore's port %s:\n%s", port, out)
		}
	}
	for _, d := range []string{"/var/lib/calico", "/var/run/calico", "/var/log/calico"} {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s left after --purge", d)
		}
	}
	// Removing again finds nothing and succeeds.
	h.calico(removeArgs...)
	t.Logf("host tier: %v in all", time.Since(start).Round(time.Second))
}
