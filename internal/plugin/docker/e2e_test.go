package docker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/ipam"
	"github.com/calico-docker/calico/internal/lab"
	"github.com/calico-docker/calico/internal/plugin/docker"
	"github.com/calico-docker/calico/internal/testutil"
	"github.com/moby/moby/client"
)

// End-to-end tests against real dockerds: a lab host (a network namespace
// with its own dockerd and /run/docker/plugins), `calico node run` in it
// (agent, dataplane, embedded etcd, and the plugins), and the Docker CLI.

const testImage = "calico-lab/busybox:latest"

// serveEnv, when set, makes the test binary a plugin server (see TestMain):
// used when the calico binary's `node run` does not serve the plugins yet.
const serveEnv = "CALICO_DOCKER_TEST_SERVE"

func TestMain(m *testing.M) {
	if node := os.Getenv(serveEnv); node != "" {
		os.Exit(servePlugins(node))
	}
	os.Exit(m.Run())
}

// servePlugins runs the plugin server in this process until SIGTERM.
func servePlugins(node string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, err := datastore.NewEtcd(ctx, datastore.Config{Endpoints: strings.Split(os.Getenv("ETCD_ENDPOINTS"), ",")})
	if err != nil {
		log.Error("datastore", "error", err)
		return 1
	}
	defer st.Close()
	dc, err := client.New(client.FromEnv)
	if err != nil {
		log.Error("docker", "error", err)
		return 1
	}
	s, err := docker.NewServer(docker.Config{Store: st, IPAM: ipam.New(st, ipam.WithLogger(log)), Node: node,
		PluginDir: "/run/docker/plugins", Docker: dc, Logger: log, GracePeriod: 20 * time.Second})
	if err != nil {
		log.Error("server", "error", err)
		return 1
	}
	if err := s.Run(ctx); err != nil {
		log.Error("serve", "error", err)
		return 1
	}
	return 0
}

// calicoBin is the binary under test.
func calicoBin(t *testing.T) string { return testutil.CalicoBin(t) }

func requireDockerLab(t *testing.T) {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "dockerd", "docker", "nsenter", "unshare", "ip")
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("skipped: /bin/busybox (busybox-static) missing")
	}
	if testing.Short() {
		t.Skip("skipped in -short mode: builds a lab with a real dockerd")
	}
}

// dlab is a lab whose hosts run `calico node run` as plain processes.
type dlab struct {
	t     *testing.T
	bgp   bool // run the nodes' BGP speakers (needed for routes between hosts)
	st    *lab.State
	bin   string
	dir   string
	nodes map[string]*nodeProc
}

type nodeProc struct {
	cmd    *exec.Cmd
	plugin *exec.Cmd // the test binary serving the plugins, when node run cannot
	log    string
	done   chan error
}

func newDockerLab(t *testing.T, hosts int) *dlab {
	t.Helper()
	return newDockerLabWith(t, hosts, nil)
}

// newDockerLabWith is newDockerLab with a change to the lab's config.
func newDockerLabWith(t *testing.T, hosts int, tweak func(*lab.Config)) *dlab {
	t.Helper()
	requireDockerLab(t)
	bin := calicoBin(t)
	name := "dk" + testutil.RandSuffix(5)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	began := time.Now()
	cfg := lab.Config{Name: name, Hosts: hosts, Subnets: 1, CalicoBin: bin, TestImage: testImage, Progress: &progress}
	if tweak != nil {
		tweak(&cfg)
	}
	st, err := lab.Up(ctx, cfg)
	l := &dlab{t: t, st: st, bin: bin, dir: t.TempDir(), nodes: map[string]*nodeProc{}}
	t.Cleanup(func() {
		failed := t.Failed()
		if failed {
			for h := range l.nodes {
				l.dumpLog(h)
			}
		}
		// Containers go while the plugins still answer: without them Docker
		// retries each plugin call for half a minute.
		for _, h := range l.st.Hosts {
			if l.nodes[h.Name] == nil {
				continue
			}
			out, _ := l.exec(h.Name, "docker", "ps", "-aq")
			if ids := strings.Fields(out); len(ids) > 0 {
				_, _ = l.exec(h.Name, append([]string{"docker", "rm", "-f"}, ids...)...)
			}
		}
		for h := range l.nodes {
			l.stopNode(h, syscall.SIGTERM)
		}
		if failed && l.st != nil {
			for _, h := range l.st.Hosts {
				b, _ := os.ReadFile(filepath.Join(h.LibDir, "dockerd.log"))
				if len(b) > 6000 {
					b = b[len(b)-6000:]
				}
				t.Logf("=== %s dockerd log:\n%s", h.Name, b)
			}
		}
		if err := lab.Down(context.Background(), name, nil); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	if err != nil {
		t.Fatalf("lab up: %v\n%s", err, progress.String())
	}
	t.Logf("lab %s up in %v", name, time.Since(began).Round(time.Millisecond))
	return l
}

func (l *dlab) host(name string) *lab.Host {
	h, err := l.st.HostByName(name)
	if err != nil {
		l.t.Fatal(err)
	}
	return h
}

func (l *dlab) dumpLog(host string) {
	n := l.nodes[host]
	if n == nil {
		return
	}
	b, _ := os.ReadFile(n.log)
	if len(b) > 20000 {
		b = b[len(b)-20000:]
	}
	l.t.Logf("=== %s node log (%s):\n%s", host, n.log, b)
}

// startNode runs `calico node run` in the host (the first host runs etcd).
// If this calico binary does not serve the Docker plugins yet, the node runs
// with --no-docker-plugin and the test binary serves them instead.
func (l *dlab) startNode(host string) {
	l.t.Helper()
	h := l.host(host)
	args := []string{"node", "run", "--name", h.Name, "--ip", h.IP, "--ip6", h.IP6,
		"--etcd-data-dir", filepath.Join(h.LibDir, "etcd")}
	if !l.bgp {
		args = append(args, "--no-bgp")
	}
	if h.Name == l.st.Hosts[0].Name {
		args = append(args, "--embedded-etcd")
	} else {
		// Other hosts join the first one's datastore with a token.
		tok, err := lab.CalicoOn(context.Background(), l.st, l.host(l.st.Hosts[0].Name), l.bin, "node", "token", "create")
		if err != nil {
			l.t.Fatal(err)
		}
		args = append(args, "--join-url", lab.JoinURL(l.st), "--join-token", strings.TrimSpace(tok))
	}
	logPath := filepath.Join(l.dir, h.Name+".log")
	n := &nodeProc{log: logPath}
	start := func(extra ...string) {
		logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			l.t.Fatal(err)
		}
		defer logf.Close()
		cmd, err := lab.ExecCmd(context.Background(), l.st, h, l.bin, append(args, extra...)...)
		if err != nil {
			l.t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.Env = append(cmd.Env, "CALICO_LOG_LEVEL=debug")
		if err := cmd.Start(); err != nil {
			l.t.Fatal(err)
		}
		n.cmd, n.done = cmd, make(chan error, 1)
		go func(c *exec.Cmd, done chan error) { done <- c.Wait() }(cmd, n.done)
	}
	began := time.Now()
	defer func() { l.t.Logf("node %s ready in %v", host, time.Since(began).Round(time.Millisecond)) }()
	start()
	l.nodes[host] = n
	if err := l.waitReady(h, n); err != nil {
		b, _ := os.ReadFile(logPath)
		if !strings.Contains(string(b), "Docker plugin is not part of this build") {
			l.dumpLog(host)
			l.t.Fatalf("node %s: %v", host, err)
		}
		start("--no-docker-plugin")
		self, err := os.Executable()
		if err != nil {
			l.t.Fatal(err)
		}
		pcmd, err := lab.ExecCmd(context.Background(), l.st, h, self)
		if err != nil {
			l.t.Fatal(err)
		}
		logf, _ := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		pcmd.Stdout, pcmd.Stderr = logf, logf
		pcmd.Env = append(pcmd.Env, serveEnv+"="+h.Name)
		if err := pcmd.Start(); err != nil {
			l.t.Fatal(err)
		}
		logf.Close()
		n.plugin = pcmd
		if err := l.waitReady(h, n); err != nil {
			l.dumpLog(host)
			l.t.Fatalf("node %s: %v", host, err)
		}
	}
}

// waitReady waits for the node's readiness endpoint and the plugin sockets.
func (l *dlab) waitReady(h *lab.Host, n *nodeProc) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-n.done:
			return fmt.Errorf("calico node run exited: %v", err)
		default:
		}
		_, err := l.exec(h.Name, "busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9099/readiness")
		if err == nil {
			if _, err = os.Stat(filepath.Join(h.RunDir, "plugins", "calico.sock")); err == nil {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("not ready within 60s")
}

// stopNode stops the node (and a test-served plugin) and waits for it.
func (l *dlab) stopNode(host string, sig syscall.Signal) {
	n := l.nodes[host]
	if n == nil {
		return
	}
	for _, c := range []*exec.Cmd{n.plugin, n.cmd} {
		if c != nil && c.Process != nil {
			_ = c.Process.Signal(sig)
		}
	}
	if n.plugin != nil {
		_ = n.plugin.Wait()
	}
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
	delete(l.nodes, host)
}

func (l *dlab) exec(host string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, err := lab.ExecCmd(ctx, l.st, l.host(host), args[0], args[1:]...)
	if err != nil {
		return "", err
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s on %s: %w: %s", strings.Join(args, " "), host, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

func (l *dlab) must(host string, args ...string) string {
	l.t.Helper()
	out, err := l.exec(host, args...)
	if err != nil {
		l.t.Fatal(err)
	}
	return out
}

func (l *dlab) docker(host string, args ...string) string {
	l.t.Helper()
	return strings.TrimSpace(l.must(host, append([]string{"docker"}, args...)...))
}

func (l *dlab) calico(host string, args ...string) string {
	l.t.Helper()
	return l.must(host, append([]string{l.bin}, args...)...)
}

// run starts a container (stopping within a second) and returns its addresses.
func (l *dlab) run(host, name string, args ...string) (v4, v6 string) {
	l.t.Helper()
	all := append([]string{"run", "-d", "--stop-timeout", "1", "--name", name}, args...)
	all = append(all, testImage, "sleep", "1d")
	l.docker(host, all...)
	return l.addrs(host, name)
}

func (l *dlab) addrs(host, name string) (v4, v6 string) {
	l.t.Helper()
	out := l.docker(host, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.GlobalIPv6Address}};{{end}}", name)
	first, _, _ := strings.Cut(out, ";")
	v4, v6, _ = strings.Cut(first, " ")
	return strings.TrimSpace(v4), strings.TrimSpace(v6)
}

func (l *dlab) canPing(host, container, ip string) bool {
	_, err := l.exec(host, "docker", "exec", container, "ping", "-c1", "-W1", ip)
	return err == nil
}

func (l *dlab) reaches(host, container, ip string) {
	l.t.Helper()
	testutil.Eventually(l.t, 30*time.Second, func() error {
		if !l.canPing(host, container, ip) {
			return fmt.Errorf("%s on %s cannot reach %s", container, host, ip)
		}
		return nil
	})
}

func (l *dlab) blocked(host, container, ip string) {
	l.t.Helper()
	testutil.Eventually(l.t, 30*time.Second, func() error {
		if l.canPing(host, container, ip) {
			return fmt.Errorf("%s on %s still reaches %s", container, host, ip)
		}
		return nil
	})
	for i := 0; i < 2; i++ {
		if l.canPing(host, container, ip) {
			l.t.Fatalf("%s on %s reaches %s, want denied", container, host, ip)
		}
	}
}

func (l *dlab) apply(host, manifest string) {
	l.t.Helper()
	f := filepath.Join(l.dir, fmt.Sprintf("m%d.yaml", time.Now().UnixNano()))
	if err := os.WriteFile(f, []byte(manifest), 0o644); err != nil {
		l.t.Fatal(err)
	}
	l.calico(host, "apply", "-f", f)
}

// endpoints reads the workload endpoints through the CLI.
func (l *dlab) endpoints(host string) []api.WorkloadEndpoint {
	l.t.Helper()
	var list struct {
		Items []api.WorkloadEndpoint `json:"items"`
	}
	if err := json.Unmarshal([]byte(l.calico(host, "get", "workloadendpoints", "-o", "json")), &list); err != nil {
		l.t.Fatal(err)
	}
	return list.Items
}

func (l *dlab) endpointOf(host, container string) api.WorkloadEndpoint {
	l.t.Helper()
	for _, w := range l.endpoints(host) {
		// calico container add's endpoints have the short container ID in
		// spec.workload (Calico derives the name from it); both kinds carry
		// the container's name as a label.
		if w.Labels["docker.container"] == container || w.Spec.Workload == container {
			return w
		}
	}
	l.t.Fatalf("no endpoint for container %s", container)
	return api.WorkloadEndpoint{}
}

// inUse is the number of assigned addresses, from `calico ipam show`.
func (l *dlab) inUse(host string) int {
	l.t.Helper()
	var u ipam.Usage
	if err := json.Unmarshal([]byte(l.calico(host, "ipam", "show", "-o", "json")), &u); err != nil {
		l.t.Fatal(err)
	}
	n := 0
	for _, p := range u.Pools {
		n += p.InUse
	}
	return n
}

// pluginPost posts raw bytes to one of a host's plugin sockets.
func pluginPost(h *lab.Host, sock, method, body string) (int, string, error) {
	path := filepath.Join(h.RunDir, "plugins", sock)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}}
	resp, err := c.Post("http://plugin/"+method, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
