package etcdtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/testutil"
)

// Cluster is an external etcd cluster: n processes of the etcd binary
// (Debian's etcd-server, 3.4) on loopback ports.
type Cluster struct {
	t       testing.TB
	members []*member
}

type member struct {
	name      string
	clientURL string
	args      []string
	logPath   string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// StartCluster starts an n-member etcd cluster from the `etcd` binary on
// PATH and waits until every member serves linearizable reads. It skips the
// test when etcd is not installed. Processes are killed by PID at cleanup.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	testutil.RequireCmd(t, "etcd")
	if n < 1 {
		t.Fatalf("etcdtest: cluster of %d members", n)
	}
	dir := t.TempDir()
	ports := freePorts(t, 2*n)
	token := "etcdtest-" + testutil.RandSuffix(8)
	var initial []string
	c := &Cluster{t: t}
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1])
		initial = append(initial, name+"="+peer)
		c.members = append(c.members, &member{
			name:      name,
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			logPath:   filepath.Join(dir, name+".log"),
		})
	}
	for i, m := range c.members {
		peer := strings.TrimPrefix(initial[i], m.name+"=")
		m.args = []string{
			"--name", m.name,
			"--data-dir", filepath.Join(dir, m.name),
			"--listen-client-urls", m.clientURL,
			"--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", peer,
			"--initial-advertise-peer-urls", peer,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", token,
			// etcd's defaults: a loaded 2-core test machine must not see
			// spurious leader elections.
			"--heartbeat-interval", "100",
			"--election-timeout", "1000",
			// The same limits as our embedded server, so one suite fits both.
			"--max-txn-ops", "10000",
			"--max-request-bytes", "8388608",
			"--logger", "zap",
			"--log-level", "error",
			"--log-outputs", "stderr",
		}
	}
	t.Cleanup(c.killAll)
	for _, m := range c.members {
		m.start(t)
	}
	c.waitHealthy(c.Endpoints())
	return c
}

// freePorts reserves n distinct loopback ports by binding them all at once,
// then frees them for etcd to take. Another process could grab one in
// between; etcd then fails to start and the test reports its log.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("etcdtest: reserve port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// cleanEnv drops ETCD_* variables: the etcd binary reads them as flags.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			env = append(env, kv)
		}
	}
	return env
}

func (m *member) start(t testing.TB) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	defer logf.Close()
	cmd := exec.Command("etcd", m.args...)
	cmd.Env = cleanEnv()
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("etcdtest: start etcd %s: %v", m.name, err)
	}
	m.cmd = cmd
}

func (m *member) kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
	m.cmd = nil
}

func (c *Cluster) killAll() {
	for _, m := range c.members {
		m.kill()
	}
}

// waitHealthy waits until each of endpoints answers a linearizable read on
// its own, i.e. the member is up and the cluster has a leader.
func (c *Cluster) waitHealthy(endpoints []string) {
	c.t.Helper()
	deadline := time.Now().Add(startTimeout)
	for _, ep := range endpoints {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := datastore.NewEtcd(ctx, datastore.Config{Endpoints: []string{ep}, DialTimeout: time.Second})
			cancel()
			if err == nil {
				_ = st.Close()
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("etcdtest: cluster member %s not healthy within %v: %v\n%s", ep, startTimeout, err, c.logs())
			}
			for _, m := range c.members {
				m.mu.Lock()
				exited := m.cmd != nil && m.cmd.ProcessState != nil
				m.mu.Unlock()
				if exited {
					c.t.Fatalf("etcdtest: etcd %s exited\n%s", m.name, c.logs())
				}
			}
		}
	}
}

func (c *Cluster) logs() string {
	var b strings.Builder
	for _, m := range c.members {
		out, _ := os.ReadFile(m.logPath)
		fmt.Fprintf(&b, "--- etcd %s log:\n%s", m.name, out)
	}
	return b.String()
}

// Endpoints are the client URLs of all members.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.clientURL)
	}
	return eps
}

// StopMember kills member i (SIGKILL, like a crash).
func (c *Cluster) StopMember(i int) { c.members[i].kill() }

// RestartMember starts a stopped member again with its data and waits
// until it serves.
func (c *Cluster) RestartMember(i int) {
	c.t.Helper()
	c.members[i].start(c.t)
	c.waitHealthy([]string{c.members[i].clientURL})
}
