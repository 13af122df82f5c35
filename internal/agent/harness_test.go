package agent_test

// End-to-end harness: a real embedded etcd, a "host" network namespace that
// the agent programs, workload namespaces wired by hand the way the seed's
// network_container script did, an "outside" namespace behind the host's
// uplink, and resources written with the real `calico apply`.
//
// Addresses (all inside namespaces the tests create):
//   10.71.0.0/24, fd71::/64   workloads (IP pool "ag-pool", "ag-pool6")
//   10.72.0.1/24, fd72::1/64  the host's uplink; 10.72.0.2, fd72::2 the outside
// Names: netns "agh-*" (host), "agw-*" (workloads), "ago-*" (outside); host
// veth sides "cali<name>"; the uplink "agup0" (host) / "eth0" (outside).

import (
	"bytes"
	"context"
	"fmt"
	"github.com/calico-docker/calico/internal/api"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/agent"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/datastore/etcdtest"
	"github.com/calico-docker/calico/internal/testutil"
)

const (
	testNode   = "ag-node"
	hostV4     = "10.72.0.1"
	outsideV4  = "10.72.0.2"
	hostV6     = "fd72::1"
	outsideV6  = "fd72::2"
	poolV4     = "10.71.0.0/24"
	poolV6     = "fd71::/64"
	hostMAC    = "ee:ee:ee:ee:ee:ee"
	hostLLV6   = "fe80::ecee:eeff:feee:eeee" // EUI-64 link-local of hostMAC
	waitLong   = 20 * time.Second            // generous: the machine is shared
	profileKey = "ag.profile"
)

func calicoBin(t testing.TB) string { return testutil.CalicoBin(t) }

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveBuiltCalicoBin()
	os.Exit(code)
}

// logBuffer collects an agent's logs; they are printed only if the test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// env is one host under test.
type env struct {
	t       testing.TB
	etcd    *etcdtest.Server
	store   datastore.Store
	host    testutil.NetNS
	outside testutil.NetNS
	logs    *logBuffer
	cfg     agent.Config
	agent   *runningAgent
	nextIP  int
}

type envOpts struct {
	// resync is Config.ResyncInterval (0: FelixConfiguration or the default).
	resync time.Duration
	// noStart leaves the agent to the test (startAgent).
	noStart bool
	// quiet discards agent logs (benchmarks).
	quiet bool
}

// newEnv starts etcd, builds the host and outside namespaces, applies the
// workload IP pools (so the agent creates no default pool) and starts the agent.
func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "ip", "busybox", "sysctl")
	calicoBin(t)
	e := &env{t: t, logs: &logBuffer{}, nextIP: 10}
	e.etcd = etcdtest.StartServer(t)
	e.store = etcdtest.Store(t, e.etcd.Endpoints())
	e.host = testutil.NewNetNS(t, "agh")
	e.outside = testutil.NewNetNS(t, "ago")

	// The uplink: the host's default route points at the outside namespace
	// (a default route is also what makes proxy ARP answer for 169.254.1.1).
	e.host.MustExec(t, "ip", "link", "add", "agup0", "type", "veth", "peer", "name", "eth0", "netns", e.outside.Name)
	for _, ns := range []testutil.NetNS{e.host, e.outside} {
		ns.MustExec(t, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}
	e.host.MustExec(t, "ip", "addr", "add", hostV4+"/24", "dev", "agup0")
	e.host.MustExec(t, "ip", "-6", "addr", "add", hostV6+"/64", "dev", "agup0", "nodad")
	e.host.MustExec(t, "ip", "link", "set", "agup0", "up")
	e.outside.MustExec(t, "ip", "addr", "add", outsideV4+"/24", "dev", "eth0")
	e.outside.MustExec(t, "ip", "-6", "addr", "add", outsideV6+"/64", "dev", "eth0", "nodad")
	e.outside.MustExec(t, "ip", "link", "set", "eth0", "up")
	e.host.MustExec(t, "ip", "route", "add", "default", "via", outsideV4)
	e.host.MustExec(t, "ip", "-6", "route", "add", "default", "via", outsideV6)
	// The outside namespace knows no route to the workloads: only
	// masqueraded traffic can get an answer from it.

	e.apply(t, poolYAML("ag-pool", poolV4, false)+poolYAML("ag-pool6", poolV6, false))

	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if o.quiet {
		logger = slog.New(slog.DiscardHandler)
	}
	e.cfg = agent.Config{
		NodeName:       testNode,
		IPv4:           hostV4 + "/24",
		Datastore:      datastore.Config{Endpoints: e.etcd.Endpoints()},
		BGP:            false,
		DockerPlugin:   false,
		HealthAddr:     "127.0.0.1:0",
		MetricsAddr:    "127.0.0.1:0",
		NetNS:          e.host.Path(),
		ResyncInterval: o.resync,
		Logger:         logger,
	}
	if t, ok := t.(*testing.T); ok {
		t.Cleanup(func() {
			if t.Failed() {
				logs := e.logs.String()
				if len(logs) > 20000 {
					logs = "...\n" + logs[len(logs)-20000:]
				}
				t.Logf("agent logs:\n%s", logs)
			}
		})
	}
	if !o.noStart {
		e.startAgent(t)
		e.waitReady(t)
	}
	return e
}

// runningAgent is an agent run in-process, in a goroutine.
type runningAgent struct {
	a        *agent.Agent
	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

// startAgent starts a new agent with e.cfg; it is stopped at cleanup.
func (e *env) startAgent(t testing.TB) *runningAgent {
	t.Helper()
	a, err := agent.New(e.cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningAgent{a: a, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	e.agent = r
	return r
}

// stop cancels the agent and waits for Run to return. Stopping twice is fine.
func (r *runningAgent) stop(t testing.TB) {
	t.Helper()
	r.stopOnce.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("agent Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("agent did not stop within 30s")
		}
	})
}

// waitReady waits until the agent reports ready.
func (e *env) waitReady(t testing.TB) {
	t.Helper()
	testutil.Eventually(t, waitLong, func() error {
		if s := e.agent.a.Status(); !s.Ready {
			return fmt.Errorf("not ready: %s", s.Reason)
		}
		return nil
	})
}

// apply runs `calico apply` with a manifest.
func (e *env) apply(t testing.TB, manifest string) {
	t.Helper()
	e.calico(t, manifest, "apply", "-f", "-")
}

// calico runs the calico binary against this env's datastore.
func (e *env) calico(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(calicoBin(t), append(args, "--etcd-endpoints", strings.Join(e.etcd.Endpoints(), ","))...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("calico %s: %v\n%s\nmanifest:\n%s", strings.Join(args, " "), err, out, stdin)
	}
	return string(out)
}

// Manifests.

func poolYAML(name, cidr string, nat bool) string {
	return fmt.Sprintf(`apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: %s}
spec: {cidr: "%s", natOutgoing: %t}
---
`, name, cidr, nat)
}

// profileYAML is the seed's security group: members get label ag.profile=NAME;
// ingress only from members, egress anywhere.
func profileYAML(name string) string {
	return fmt.Sprintf(`apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: %[1]s}
spec:
  labelsToApply: {%[2]s: %[1]s}
  ingress:
  - action: Allow
    source: {selector: "%[2]s == '%[1]s'"}
  egress:
  - action: Allow
---
`, name, profileKey)
}

// workload is one hand-wired workload namespace and its endpoint.
type workload struct {
	name    string
	iface   string
	ns      testutil.NetNS
	v4, v6  string
	profile string
	labels  map[string]string
	extra   []string // additional ipNetworks beyond v4/v6
}

func (w *workload) addrs() []string {
	var a []string
	if w.v4 != "" {
		a = append(a, w.v4)
	}
	if w.v6 != "" {
		a = append(a, w.v6)
	}
	return append(a, w.extra...)
}

// wepYAML is the WorkloadEndpoint of w on this env's node.
func (w *workload) wepYAML() string {
	var b strings.Builder
	// Calico's name, derived from the spec below.
	name, err := api.WorkloadEndpointName(api.WorkloadEndpointSpec{Node: testNode, Orchestrator: "test", Workload: w.name, Endpoint: "eth0"})
	if err != nil {
		panic(err)
	}
	fmt.Fprintf(&b, "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata:\n  name: %s\n  namespace: default\n", name)
	if len(w.labels) > 0 {
		b.WriteString("  labels:\n")
		keys := make([]string, 0, len(w.labels))
		for k := range w.labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "    %s: %q\n", k, w.labels[k])
		}
	}
	fmt.Fprintf(&b, "spec:\n  orchestrator: test\n  workload: %s\n  endpoint: eth0\n  node: %s\n  interfaceName: %s\n  mac: %s\n",
		w.name, testNode, w.iface, hostMAC)
	b.WriteString("  ipNetworks:\n")
	for _, a := range w.addrs() {
		bits := "/32"
		if strings.Contains(a, ":") {
			bits = "/128"
		}
		fmt.Fprintf(&b, "  - %s%s\n", a, bits)
	}
	if w.profile != "" {
		fmt.Fprintf(&b, "  profiles: [%s]\n", w.profile)
	}
	b.WriteString("---\n")
	return b.String()
}

// newWorkload allocates addresses for a workload (not yet wired or applied).
func (e *env) newWorkload(name, profile string, v6 bool, labels map[string]string) *workload {
	n := e.nextIP
	e.nextIP++
	w := &workload{name: name, iface: "cali" + name, v4: fmt.Sprintf("10.71.0.%d", n), profile: profile, labels: labels}
	if v6 {
		w.v6 = fmt.Sprintf("fd71::%x", n)
	}
	return w
}

// wire creates w's namespace and veth the way the seed's network_container
// script did: host side cali<name> with MAC ee:ee:ee:ee:ee:ee and no
// address; workload side eth0 with its /32 (/128), 169.254.1.1 on-link and
// the default route through it; for IPv6 the default route goes to the host
// side's link-local address. Host-side sysctls and routes are the agent's job.
func (e *env) wire(t testing.TB, w *workload) {
	t.Helper()
	w.ns = testutil.NewNetNS(t, "agw")
	w.ns.MustExec(t, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	e.host.MustExec(t, "ip", "link", "add", w.iface, "address", hostMAC, "type", "veth", "peer", "name", "eth0", "netns", w.ns.Name)
	e.host.MustExec(t, "sysctl", "-qw", "net.ipv6.conf."+w.iface+".accept_dad=0")
	e.host.MustExec(t, "ip", "link", "set", w.iface, "up")
	w.ns.MustExec(t, "ip", "link", "set", "eth0", "up")
	if w.v4 != "" {
		w.ns.MustExec(t, "ip", "addr", "add", w.v4+"/32", "dev", "eth0")
		w.ns.MustExec(t, "ip", "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link")
		w.ns.MustExec(t, "ip", "route", "add", "default", "via", "169.254.1.1", "dev", "eth0")
	}
	if w.v6 != "" {
		w.ns.MustExec(t, "ip", "-6", "addr", "add", w.v6+"/128", "dev", "eth0", "nodad")
		w.ns.MustExec(t, "ip", "-6", "route", "add", "default", "via", hostLLV6, "dev", "eth0")
	}
}

// addWorkloads wires the workloads and applies their endpoints (and any
// extra manifest) in one `calico apply`.
func (e *env) addWorkloads(t testing.TB, extra string, ws ...*workload) {
	t.Helper()
	m := extra
	for _, w := range ws {
		e.wire(t, w)
		m += w.wepYAML()
	}
	e.apply(t, m)
}

// Traffic. Every probe has a one-second timeout, so a negative check costs
// a second; positive checks poll until they pass.

func ping(from testutil.NetNS, dst string, src ...string) error {
	args := []string{"busybox", "ping", "-c", "1", "-W", "1"}
	if strings.Contains(dst, ":") {
		args = append(args, "-6")
	}
	if len(src) > 0 {
		args = append(args, "-I", src[0])
	}
	_, err := from.Exec(append(args, dst)...)
	return err
}

// serve runs a TCP server on port in ns that answers every connection with
// reply (via busybox nc -ll -e); killed by PID at cleanup.
func serve(t testing.TB, ns testutil.NetNS, port int, prog ...string) {
	t.Helper()
	if len(prog) == 0 {
		prog = []string{"busybox", "echo", "hello"}
	}
	args := append([]string{"netns", "exec", ns.Name, "busybox", "nc", "-ll", "-p", fmt.Sprint(port), "-e"}, prog...)
	cmd := exec.Command("ip", args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// Wait until it listens (a local connection inside its own namespace).
	testutil.Eventually(t, 10*time.Second, func() error {
		out, err := ns.Exec("busybox", "netstat", "-ltn")
		if err != nil {
			return err
		}
		if !strings.Contains(out, fmt.Sprintf(":%d ", port)) {
			return fmt.Errorf("port %d not listening yet", port)
		}
		return nil
	})
}

// connect opens a TCP connection and returns what the server sent.
func connect(from testutil.NetNS, dst string, port int) (string, error) {
	cmd := exec.Command("ip", "netns", "exec", from.Name, "busybox", "nc", "-w", "1", dst, fmt.Sprint(port))
	cmd.Stdin = nil
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return out.String(), fmt.Errorf("connect %s:%d: %w: %s", dst, port, err, out.String())
		}
		if out.Len() == 0 {
			return "", fmt.Errorf("connect %s:%d: no reply", dst, port)
		}
		return out.String(), nil
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return "", fmt.Errorf("connect %s:%d: timed out", dst, port)
	}
}

func tcp(from testutil.NetNS, dst string, port int) error {
	_, err := connect(from, dst, port)
	return err
}

// reach polls until probe succeeds.
func reach(t testing.TB, what string, probe func() error) {
	t.Helper()
	testutil.Eventually(t, waitLong, func() error {
		if err := probe(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}

// blocked checks once that probe fails. Callers first establish (with a
// positive probe over the same endpoints) that the state is programmed.
func blocked(t testing.TB, what string, probe func() error) {
	t.Helper()
	if err := probe(); err == nil {
		t.Fatalf("%s: got through, want it dropped", what)
	}
}

// becomesBlocked polls until probe fails (a change has taken effect).
func becomesBlocked(t testing.TB, what string, probe func() error) {
	t.Helper()
	testutil.Eventually(t, waitLong, func() error {
		if err := probe(); err == nil {
			return fmt.Errorf("%s still gets through", what)
		}
		return nil
	})
}

func pingP(from *workload, dst string, src ...string) func() error {
	return func() error { return ping(from.ns, dst, src...) }
}

func tcpP(from *workload, dst string, port int) func() error {
	return func() error { return tcp(from.ns, dst, port) }
}

// httpGet fetches a URL from the agent's servers (on the test's loopback).
func httpGet(url string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// nftTable is `nft list table inet calico` in the host namespace.
func (e *env) nftTable(t testing.TB) string {
	t.Helper()
	out, err := e.host.Exec("nft", "list", "table", "inet", "calico")
	if err != nil {
		t.Fatal(err)
	}
	return withoutCounts(out)
}

// withoutCounts drops the values of the per-rule counters from an nft
// listing: traffic changes them, the ruleset is what tests compare.
func withoutCounts(listing string) string {
	return counterValues.ReplaceAllString(listing, "counter")
}

var counterValues = regexp.MustCompile(`counter packets \d+ bytes \d+`)

// ourRoutes lists the routes with the agent's protocol (80), both families.
func (e *env) ourRoutes(t testing.TB) string {
	t.Helper()
	return e.host.MustExec(t, "ip", "route", "show", "proto", "80") +
		e.host.MustExec(t, "ip", "-6", "route", "show", "proto", "80")
}
