package reliability

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/lab"
	"github.com/calico-docker/calico/internal/lab/labtest"
	"github.com/calico-docker/calico/internal/testutil"
)

// TestExternalEtcdMemberKilled: the node runs against an operator's
// 3-member etcd cluster (TLS, client certificates); one member is killed
// with SIGKILL while a ping stream runs between two containers. Nothing
// may notice: the node stays ready, no ping is lost, and a new container
// (an IPAM write) and a policy (a watch) work with two members left.
// Full form only: it needs a lab of its own.
func TestExternalEtcdMemberKilled(t *testing.T) {
	if !full() {
		t.Skip("full form only (CALICO_RELIABILITY=full)")
	}
	testutil.RequireCmd(t, "nft")
	l := &Lab{labtest.New(t, "re", lab.Config{Hosts: 1, Subnets: 1}, 6*time.Minute)}
	h := l.host("host1")

	dir := t.TempDir()
	p := labtest.ExternalPKI(t, dir, h.Addr())
	// Three members in host1's namespace: clients on its address, peers on
	// its loopback.
	var eps, peers []string
	for i := 1; i <= 3; i++ {
		eps = append(eps, fmt.Sprintf("https://%s:%d", h.Addr(), 2379+100*i))
		peers = append(peers, fmt.Sprintf("m%d=http://127.0.0.1:%d", i, 2380+100*i))
	}
	members := make([]*exec.Cmd, 3)
	// start starts member i and returns a channel that is closed when it
	// says it is ready.
	start := func(i int) <-chan struct{} {
		c, err := lab.ExecCmd(context.Background(), l.St, h, l.Bin, "datastore", "run", "--name", fmt.Sprintf("m%d", i+1),
			"--data-dir", filepath.Join(dir, fmt.Sprintf("etcd%d", i+1)),
			"--listen-client-urls", eps[i], "--listen-peer-urls", strings.SplitN(peers[i], "=", 2)[1],
			"--initial-cluster", strings.Join(peers, ","),
			"--cert-file", p.Cert(), "--key-file", p.Key(), "--trusted-ca-file", p.CACert(), "--client-cert-auth")
		if err != nil {
			t.Fatal(err)
		}
		out, _ := c.StdoutPipe()
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		members[i] = c
		t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
		ready := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "etcd ready") {
					close(ready)
					break
				}
			}
			for sc.Scan() {
			}
		}()
		return ready
	}
	var readies []<-chan struct{}
	for i := range members {
		readies = append(readies, start(i))
	}
	for i, r := range readies {
		select {
		case <-r:
		case <-time.After(2 * time.Minute):
			t.Fatalf("etcd member m%d not ready", i+1)
		}
	}

	creds := []string{"--etcd-endpoints", strings.Join(eps, ","), "--etcd-ca-cert-file", p.CACert(), "--etcd-cert-file", p.Cert(), "--etcd-key-file", p.Key()}
	l.Calico("host1", append([]string{"node", "start", "--name", "host1", "--ip", h.IP, "--ip6", h.IP6, "--image", l.St.NodeImage, "--timeout", "90s"}, creds...)...)
	l.Docker("host1", "network", "create", "--driver", "calico", "--ipam-driver", "calico-ipam", "enet")
	x1 := l.Run("host1", "x1", "enet")
	x2 := l.Run("host1", "x2", "enet")
	l.EventuallyReach("host1", "x1", x2, time.Minute)

	// Kill each member in turn (the node's client is connected to one of
	// them, which one is not known), restarting it before the next, so
	// the one the node uses is certainly killed once.
	ping := l.Start(context.Background(), "host1", "docker", "exec", "x1", "ping", "-i", "0.2", "-w", "75", x2)
	notReady := 0
	checks := 0
	began := time.Now()
	for i := range members {
		_ = members[i].Process.Kill()
		_ = members[i].Wait()
		// The node's readiness, read from its health endpoint, must not
		// change while the member is down.
		until := time.Now().Add(10 * time.Second)
		for time.Now().Before(until) {
			out, _ := l.Exec("host1", l.Bin, "node", "status")
			checks++
			if !strings.Contains(out, ", ready,") {
				notReady++
				t.Errorf("member m%d killed: node status says:\n%s", i+1, out)
			}
			time.Sleep(500 * time.Millisecond) // polling interval, not synchronisation
		}
		select {
		case <-start(i):
		case <-time.After(time.Minute):
			t.Fatalf("etcd member m%d did not come back", i+1)
		}
	}
	took := time.Since(began)
	pout, _ := ping.Wait(2 * time.Minute)
	sent, recv, _ := pingCounts(pout)
	// Writes and watches work: a new container gets an address and is
	// reachable; a policy applied through the cluster takes effect.
	x3 := l.Run("host1", "x3", "enet")
	l.EventuallyReach("host1", "x1", x3, time.Minute)
	manifest := filepath.Join(dir, "deny-x1.yaml")
	if err := os.WriteFile(manifest, []byte(denyFrom("deny-x1", x1)), 0o644); err != nil {
		t.Fatal(err)
	}
	l.Calico("host1", append([]string{"apply", "-f", manifest}, creds...)...)
	l.EventuallyBlocked("host1", "x1", x3, time.Minute)
	if out := l.Calico("host1", append([]string{"ipam", "check", "--min-age", "0s"}, creds...)...); !strings.Contains(out, "Check complete: 0 problems") {
		t.Errorf("ipam check:\n%s", out)
	}
	report(t, record{"external etcd: a member killed", "3-member external etcd (TLS, client certificates); each member in turn killed with SIGKILL for 10 s and restarted, during a ping stream",
		"node stayed ready, traffic, new container, policy applied after", fmt.Sprintf("%d of %d pings; not ready in %d of %d status checks", sent-recv, sent, notReady, checks),
		fmt.Sprintf("three kills in %v", took.Round(time.Second)),
		"CALICO_RELIABILITY=full go test -run 'TestExternalEtcdMemberKilled' ./test/reliability/"})
	if sent == 0 || recv < sent {
		t.Errorf("pings lost while a member was down: %d of %d", sent-recv, sent)
	}
}
