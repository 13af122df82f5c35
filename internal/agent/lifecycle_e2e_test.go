package agent_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/testutil"
)

// session is a long-lived TCP connection between two workloads: a busybox nc
// server in one, a client in the other whose stdin we write to; the server
// prints what it receives.
type session struct {
	in    io.WriteCloser
	lines chan string
}

func openSession(t *testing.T, server, client *workload, dst string, port int) *session {
	t.Helper()
	srv := exec.Command("ip", "netns", "exec", server.ns.Name, "busybox", "nc", "-l", "-p", strconv.Itoa(port))
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// busybox nc ends the connection when its stdin ends: keep it open.
	srvIn, err := srv.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srvIn.Close(); _ = srv.Process.Kill(); _ = srv.Wait() })
	s := &session{lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	testutil.Eventually(t, 10*time.Second, func() error {
		o, err := server.ns.Exec("busybox", "netstat", "-ltn")
		if err != nil || !strings.Contains(o, fmt.Sprintf(":%d ", port)) {
			return fmt.Errorf("server not listening yet")
		}
		return nil
	})
	cli := exec.Command("ip", "netns", "exec", client.ns.Name, "busybox", "nc", dst, strconv.Itoa(port))
	in, err := cli.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close(); _ = cli.Process.Kill(); _ = cli.Wait() })
	s.in = in
	return s
}

// say sends a line over the session and waits for the server to print it.
func (s *session) say(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(s.in, line+"\n"); err != nil {
		t.Fatalf("session write %q: %v", line, err)
	}
	select {
	case got, ok := <-s.lines:
		if !ok {
			t.Fatalf("session closed before %q arrived", line)
		}
		if got != line {
			t.Fatalf("session: got %q, want %q", got, line)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("session: %q did not arrive within 10s", line)
	}
}

// An agent restart keeps an established TCP connection and leaves the
// dataplane in place while no agent runs; the new agent catches up on what
// changed meanwhile without rewriting what did not.
func TestRestartKeepsEstablishedConnection(t *testing.T) {
	e := newEnv(t, envOpts{})
	a := e.newWorkload("a", "red", false, nil)
	b := e.newWorkload("b", "red", false, nil)
	e.addWorkloads(t, profileYAML("red"), a, b)
	reach(t, "a -> b", pingP(a, b.v4))
	s := openSession(t, b, a, b.v4, 7300)
	s.say(t, "before restart")

	table, routes := e.nftTable(t), e.ourRoutes(t)
	chains := chainBlocks(e.host.MustExec(t, "nft", "-a", "list", "table", "inet", "calico"))
	e.agent.stop(t)

	// Nothing is flushed while the agent is down.
	if got := e.nftTable(t); got != table {
		t.Fatalf("nft table changed when the agent stopped:\nbefore:\n%s\nafter:\n%s", table, got)
	}
	if got := e.ourRoutes(t); got != routes {
		t.Fatalf("routes changed when the agent stopped:\nbefore:\n%s\nafter:\n%s", routes, got)
	}
	s.say(t, "while the agent is down")

	// A change made while the agent is down is applied by the next one.
	c := e.newWorkload("c", "red", false, nil)
	e.addWorkloads(t, "", c)

	e.startAgent(t)
	e.waitReady(t)
	reach(t, "c -> b (added while down)", pingP(c, b.v4))
	s.say(t, "after restart")
	// c shares red's chains: the new agent added set and map elements and
	// left every chain, rule handles included, as it was.
	if got := chainBlocks(e.host.MustExec(t, "nft", "-a", "list", "table", "inet", "calico")); got != chains {
		t.Fatalf("chains were rewritten by the restarted agent:\nbefore:\n%s\nafter:\n%s", chains, got)
	}
}

// chainBlocks keeps only the chains (with their rules) of `nft list table` output.
func chainBlocks(table string) string {
	var b strings.Builder
	in := false
	for _, l := range strings.Split(withoutCounts(table), "\n") {
		if strings.HasPrefix(l, "\tchain ") {
			in = true
		}
		if in {
			b.WriteString(l + "\n")
		}
		if in && l == "\t}" {
			in = false
		}
	}
	return b.String()
}

// Someone flushing our table is repaired by the periodic resync, whose
// interval comes from FelixConfiguration nftablesRefreshInterval.
func TestFlushRepairedWithinResyncInterval(t *testing.T) {
	const interval = 5 * time.Second
	e := newEnv(t, envOpts{noStart: true})
	e.apply(t, `apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata: {name: default}
spec: {nftablesRefreshInterval: 5s}
`)
	e.startAgent(t)
	e.waitReady(t)
	a := e.newWorkload("a", "red", false, nil)
	b := e.newWorkload("b", "red", false, nil)
	c := e.newWorkload("c", "blue", false, nil)
	d := e.newWorkload("d", "blue", false, nil)
	e.addWorkloads(t, profileYAML("red")+profileYAML("blue"), a, b, c, d)
	reach(t, "a -> b", pingP(a, b.v4))
	reach(t, "c -> d", pingP(c, d.v4))
	blocked(t, "c -> a", pingP(c, a.v4))
	want := e.nftTable(t)

	e.host.MustExec(t, "nft", "flush", "table", "inet", "calico")
	flushed := time.Now()
	if got := e.nftTable(t); got == want {
		t.Fatal("nft flush changed nothing")
	}
	testutil.Eventually(t, interval+10*time.Second, func() error {
		if got := e.nftTable(t); got != want {
			return fmt.Errorf("table not repaired yet")
		}
		return nil
	})
	took := time.Since(flushed)
	t.Logf("table repaired %v after the flush (resync interval %v)", took.Round(time.Millisecond), interval)
	if took > interval+2*time.Second {
		t.Fatalf("repair took %v, want within the %v resync interval", took, interval)
	}
	reach(t, "a -> b after repair", pingP(a, b.v4))
	blocked(t, "c -> a after repair", pingP(c, a.v4))
}

// Someone deleting our whole table (nft delete table, nft flush ruleset)
// is repaired as soon as the kernel announces it, not at the next periodic
// resync: the resync interval here is the default 90 s.
func TestDeletedTableRepairedAtOnce(t *testing.T) {
	e := newEnv(t, envOpts{})
	a := e.newWorkload("a", "red", false, nil)
	b := e.newWorkload("b", "red", false, nil)
	c := e.newWorkload("c", "blue", false, nil)
	e.addWorkloads(t, profileYAML("red")+profileYAML("blue"), a, b, c)
	reach(t, "a -> b", pingP(a, b.v4))
	blocked(t, "c -> a", pingP(c, a.v4))
	want := e.nftTable(t)

	e.host.MustExec(t, "nft", "delete", "table", "inet", "calico")
	deleted := time.Now()
	testutil.Eventually(t, 30*time.Second, func() error {
		// The same content; a table made again lists its sets in another
		// order.
		got, err := e.host.Exec("nft", "list", "table", "inet", "calico")
		if err != nil || !slices.Equal(sortedLines(withoutCounts(got)), sortedLines(want)) {
			return fmt.Errorf("table not repaired yet (%v)", err)
		}
		return nil
	})
	took := time.Since(deleted)
	t.Logf("table back %v after its deletion", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Fatalf("repair took %v: it waited for the periodic resync", took)
	}
	reach(t, "a -> b after repair", pingP(a, b.v4))
	blocked(t, "c -> a after repair", pingP(c, a.v4))
}

// A route of ours deleted by someone (ip route del) is put back as soon as
// the kernel announces the deletion (routes.Driver.WatchRoutes), not at the
// next periodic resync: the resync interval here is the default 90 s. Both
// families, one after the other.
func TestDeletedRouteRepairedAtOnce(t *testing.T) {
	e := newEnv(t, envOpts{})
	a := e.newWorkload("a", "red", true, nil)
	b := e.newWorkload("b", "red", true, nil)
	e.addWorkloads(t, profileYAML("red"), a, b)
	reach(t, "a -> b", pingP(a, b.v4))
	for _, dst := range []string{b.v4, b.v6} {
		route := func() string {
			out, _ := e.host.Exec("ip", family(dst), "route", "show", "exact", hostPrefix(dst), "proto", "80")
			return strings.TrimSpace(out)
		}
		want := route()
		if !strings.Contains(want, "dev "+b.iface) {
			t.Fatalf("route to %s before the deletion: %q", dst, want)
		}
		e.host.MustExec(t, "ip", family(dst), "route", "del", hostPrefix(dst), "dev", b.iface, "proto", "80")
		deleted := time.Now()
		testutil.Eventually(t, 30*time.Second, func() error {
			if got := route(); got != want {
				return fmt.Errorf("route to %s not repaired yet: %q", dst, got)
			}
			return nil
		})
		took := time.Since(deleted)
		t.Logf("route %s back %v after its deletion", dst, took.Round(time.Millisecond))
		if took > 10*time.Second {
			t.Fatalf("repair of %s took %v: it waited for the periodic resync", dst, took)
		}
	}
	reach(t, "a -> b after repair", pingP(a, b.v4))
	reach(t, "a -> b over IPv6 after repair", pingP(a, b.v6))
}

// family is ip's family flag for the ip command.
func family(ip string) string {
	if strings.Contains(ip, ":") {
		return "-6"
	}
	return "-4"
}

// hostPrefix is ip as a host route (/32 or /128).
func hostPrefix(ip string) string {
	if strings.Contains(ip, ":") {
		return ip + "/128"
	}
	return ip + "/32"
}

// sortedLines is s's lines, sorted.
func sortedLines(s string) []string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	slices.Sort(l)
	return l
}

// While the datastore is down the dataplane keeps its last state (traffic
// flows, denials hold) and the agent reports not ready, naming the
// datastore; after it comes back the watch resumes, the agent is ready by
// itself and new changes are applied.
func TestDatastoreOutage(t *testing.T) {
	e := newEnv(t, envOpts{})
	a := e.newWorkload("a", "red", false, nil)
	b := e.newWorkload("b", "red", false, nil)
	c := e.newWorkload("c", "blue", false, nil)
	d := e.newWorkload("d", "blue", false, nil)
	e.addWorkloads(t, profileYAML("red")+profileYAML("blue"), a, b, c, d)
	reach(t, "a -> b", pingP(a, b.v4))
	reach(t, "c -> d", pingP(c, d.v4))
	table := e.nftTable(t)

	e.etcd.Stop()
	testutil.Eventually(t, waitLong, func() error {
		if e.agent.a.Status().InSync {
			return fmt.Errorf("agent has not noticed the outage")
		}
		return nil
	})
	if st := e.agent.a.Status(); st.Ready || !strings.Contains(st.Reason, "datastore") {
		t.Errorf("agent ready during the outage (reason %q); it should say the datastore is out of sync", st.Reason)
	}
	reach(t, "a -> b during the outage", pingP(a, b.v4))
	blocked(t, "c -> a during the outage", pingP(c, a.v4))
	if got := e.nftTable(t); got != table {
		t.Fatalf("nft table changed during the outage:\nbefore:\n%s\nafter:\n%s", table, got)
	}

	e.etcd.Restart()
	testutil.Eventually(t, waitLong, func() error {
		if st := e.agent.a.Status(); !st.InSync || !st.Ready {
			return fmt.Errorf("agent not back in sync and ready: %s", st.Reason)
		}
		return nil
	})
	c.profile = "red"
	e.apply(t, c.wepYAML())
	reach(t, "c -> a after the datastore came back (c moved to red)", pingP(c, a.v4))
	if v := metric(t, e, "calico_datastore_reconnects_total"); v < 1 {
		t.Errorf("calico_datastore_reconnects_total = %v, want >= 1", v)
	}
}

// An agent that starts while the datastore is down waits with the
// dataplane untouched (and says why it is not ready), then takes over once
// the datastore is back.
func TestStartDuringDatastoreOutage(t *testing.T) {
	e := newEnv(t, envOpts{})
	a := e.newWorkload("a", "red", false, nil)
	b := e.newWorkload("b", "red", false, nil)
	c := e.newWorkload("c", "blue", false, nil)
	e.addWorkloads(t, profileYAML("red")+profileYAML("blue"), a, b, c)
	reach(t, "a -> b", pingP(a, b.v4))
	table := e.nftTable(t)
	e.agent.stop(t)
	e.etcd.Stop()

	r := e.startAgent(t)
	testutil.Eventually(t, waitLong, func() error {
		// Health is served before the datastore is reached.
		code, body, err := httpGet("http://" + r.a.HealthAddr() + "/readiness")
		if err != nil || code != 503 {
			return fmt.Errorf("readiness %d %q %v, want 503", code, body, err)
		}
		return nil
	})
	if st := r.a.Status(); st.Ready || st.InSync {
		t.Fatalf("status %+v while the datastore is down", st)
	}
	reach(t, "a -> b while the new agent waits", pingP(a, b.v4))
	blocked(t, "c -> a while the new agent waits", pingP(c, a.v4))
	if got := e.nftTable(t); got != table {
		t.Fatalf("nft table changed before the first sync:\nbefore:\n%s\nafter:\n%s", table, got)
	}

	e.etcd.Restart()
	e.waitReady(t)
	c.profile = "red"
	e.apply(t, c.wepYAML())
	reach(t, "c -> a after the datastore came back", pingP(c, a.v4))
}

// An endpoint whose interface appears after its WorkloadEndpoint is
// programmed when the link appears: the resync interval is 10 minutes, so
// only the link watch can explain it.
func TestInterfaceAppearsAfterEndpoint(t *testing.T) {
	e := newEnv(t, envOpts{resync: 10 * time.Minute})
	a := e.newWorkload("a", "red", false, nil)
	e.addWorkloads(t, profileYAML("red"), a)
	b := e.newWorkload("b", "red", false, nil)
	e.apply(t, b.wepYAML())
	testutil.Eventually(t, waitLong, func() error {
		if n := e.agent.a.Status().Endpoints; n != 2 {
			return fmt.Errorf("%d endpoints programmed, want 2", n)
		}
		return nil
	})
	if strings.Contains(e.ourRoutes(t), b.v4) {
		t.Fatalf("route to %s exists before its interface", b.v4)
	}
	e.wire(t, b)
	start := time.Now()
	testutil.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(e.ourRoutes(t), b.v4+" dev "+b.iface) {
			return fmt.Errorf("no route to %s yet", b.v4)
		}
		return nil
	})
	t.Logf("route programmed %v after the link appeared", time.Since(start).Round(time.Millisecond))
	reach(t, "a -> b", pingP(a, b.v4))
	reach(t, "b -> a", pingP(b, a.v4))
}

var metricLine = regexp.MustCompile(`(?m)^(\w+) ([0-9.e+-]+)$`)

// metric reads one unlabelled sample from the agent's /metrics.
func metric(t *testing.T, e *env, name string) float64 {
	t.Helper()
	code, body, err := httpGet("http://" + e.agent.a.MetricsAddr() + "/metrics")
	if err != nil || code != 200 {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	for _, m := range metricLine.FindAllStringSubmatch(body, -1) {
		if m[1] == name {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("metric %s not served:\n%s", name, body)
	return 0
}

// Health and metrics endpoints report what is programmed.
func TestHealthAndMetrics(t *testing.T) {
	e := newEnv(t, envOpts{})
	a := e.newWorkload("a", "red", false, nil)
	b := e.newWorkload("b", "blue", false, map[string]string{"role": "db"})
	e.addWorkloads(t, profileYAML("red")+profileYAML("blue")+`apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: db}
spec:
  selector: role == 'db'
  ingress: [{action: Allow, source: {selector: "has(x)"}}]
---
`, a, b)
	testutil.Eventually(t, waitLong, func() error {
		if v := metric(t, e, "calico_endpoints"); v != 2 {
			return fmt.Errorf("calico_endpoints = %v, want 2", v)
		}
		return nil
	})
	for name, want := range map[string]float64{
		"calico_datastore_in_sync": 1,
		"calico_policy_chains":     3, // two profiles, one policy
	} {
		if v := metric(t, e, name); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	for _, name := range []string{"calico_ip_sets", "calico_rules", "calico_routes", "calico_dataplane_apply_seconds_count"} {
		if v := metric(t, e, name); v < 1 {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	for _, path := range []string{"/liveness", "/readiness"} {
		if code, body, err := httpGet("http://" + e.agent.a.HealthAddr() + path); err != nil || code != 200 {
			t.Errorf("GET %s: %d %q %v", path, code, body, err)
		}
	}
	_, body, err := httpGet("http://" + e.agent.a.HealthAddr() + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Ready     bool `json:"ready"`
		Endpoints int  `json:"endpoints"`
		InSync    bool `json:"datastoreInSync"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || !st.Ready || st.Endpoints != 2 || !st.InSync {
		t.Errorf("/status = %s (%v)", body, err)
	}
}

// `calico node run` as a process in the host namespace (with its embedded
// etcd): it programs workloads applied with `calico apply`, and SIGTERM
// stops it with a zero exit status and the dataplane left in place.
func TestNodeRunBinary(t *testing.T) {
	testutil.RequireRoot(t)
	bin := calicoBin(t)
	e := &env{t: t, nextIP: 10}
	e.host = testutil.NewNetNS(t, "agh")
	e.host.MustExec(t, "ip", "link", "add", "agup0", "type", "veth", "peer", "name", "agup1")
	e.host.MustExec(t, "ip", "addr", "add", hostV4+"/24", "dev", "agup0")
	e.host.MustExec(t, "ip", "link", "set", "agup0", "up")
	e.host.MustExec(t, "ip", "link", "set", "agup1", "up")
	e.host.MustExec(t, "ip", "route", "add", "default", "dev", "agup0")

	// The first host of a managed datastore: it creates the cluster CA and
	// writes calicoctl.cfg next to the credentials, which `calico apply`
	// below uses.
	dsDir := t.TempDir()
	node := exec.Command("ip", "netns", "exec", e.host.Name, bin, "node", "run", "--name", testNode,
		"--ip", hostV4+"/24", "--no-bgp", "--no-docker-plugin", "--embedded-etcd",
		"--etcd-data-dir", filepath.Join(dsDir, "etcd"), "--pki-dir", filepath.Join(dsDir, "pki"),
		"--etcd-socket", filepath.Join(dsDir, "etcd.sock"), "--join-port", "0")
	node.Env = []string{"PATH=" + os.Getenv("PATH"), "NO_DEFAULT_POOLS=true", "CALICO_NODENAME_FILE=" + filepath.Join(dsDir, "nodename")}
	var logs logBuffer
	node.Stdout, node.Stderr = &logs, &logs
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- node.Wait() }()
	t.Cleanup(func() {
		if node.ProcessState == nil {
			_ = node.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("node output:\n%s", logs.String())
		}
	})
	status := func() (ready bool, endpoints int, err error) {
		out, err := e.host.Exec("busybox", "wget", "-qO-", "http://127.0.0.1:9099/status")
		if err != nil {
			return false, 0, err
		}
		var st struct {
			Ready     bool `json:"ready"`
			Endpoints int  `json:"endpoints"`
		}
		err = json.Unmarshal([]byte(out), &st)
		return st.Ready, st.Endpoints, err
	}
	testutil.Eventually(t, waitLong, func() error {
		if ready, _, err := status(); err != nil || !ready {
			return fmt.Errorf("node not ready (%v)", err)
		}
		return nil
	})

	a := e.newWorkload("a", "red", false, nil)
	b := e.newWorkload("b", "red", false, nil)
	e.wire(t, a)
	e.wire(t, b)
	manifest := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(manifest, []byte(poolYAML("ag-pool", poolV4, false)+profileYAML("red")+a.wepYAML()+b.wepYAML()), 0o644); err != nil {
		t.Fatal(err)
	}
	e.host.MustExec(t, bin, "apply", "--config", filepath.Join(dsDir, "calicoctl.cfg"), "-f", manifest)
	reach(t, "a -> b", pingP(a, b.v4))
	table, routes := e.nftTable(t), e.ourRoutes(t)

	if err := node.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("node exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("node did not stop within 30s of SIGTERM")
	}
	if got := e.nftTable(t); got != table {
		t.Fatalf("nft table changed when the node stopped:\nbefore:\n%s\nafter:\n%s", table, got)
	}
	if got := e.ourRoutes(t); got != routes {
		t.Fatalf("routes changed when the node stopped:\nbefore:\n%s\nafter:\n%s", routes, got)
	}
	reach(t, "a -> b with the node stopped", pingP(a, b.v4))
}
