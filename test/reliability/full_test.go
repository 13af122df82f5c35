package reliability

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/cli"
	"github.com/calico-docker/calico/internal/lab"
	"github.com/calico-docker/calico/internal/testutil"
)

// dockerd on host1 restarted (live-restore, as the lab runs it) with
// running containers: the same addresses, connectivity, no leaked or
// doubled address.
func testDockerdRestart(t *testing.T, l *Lab) {
	names := strings.Fields(l.Docker("host1", "ps", "--format", "{{.Names}}", "--filter", "network=net"))
	before := map[string]string{}
	for _, n := range names {
		before[n] = l.IP("host1", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	if err := lab.RestartDockerd(ctx, l.St, l.host("host1")); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	changed := 0
	for n, ip := range before {
		if got := l.IP("host1", n); got != ip {
			changed++
			t.Errorf("%s: address %s before the restart, %q after", n, ip, got)
		}
	}
	l.EventuallyReach("host2", "cb", before["ca"], 60*time.Second)
	c := l.Run("host1", "cafter", "net")
	l.EventuallyReach("host2", "cb", c, 60*time.Second)
	l.Docker("host1", "rm", "-f", "cafter")
	l.IPAMCheck("host1")
	report(t, record{"dockerd restarted", fmt.Sprintf("host1's dockerd stopped and started with %d running containers", len(before)),
		"same addresses, connectivity, new containers work", fmt.Sprintf("%d addresses changed; ipam check: 0 problems", changed),
		fmt.Sprintf("restart took %v", took.Round(time.Millisecond)),
		"CALICO_RELIABILITY=full go test -run 'TestReliability/dockerd-restart' ./test/reliability/"})
}

// The plugin sockets are gone (node stopped) while Docker creates a
// container on host2: Docker gives up with an error that names the plugin,
// and no address is leaked; with the node back, the same run works.
func testPluginSocketGone(t *testing.T, l *Lab) {
	l.Calico("host2", "node", "stop")
	start := time.Now()
	out, err := l.Exec("host2", "docker", "run", "-d", "--name", "nosock", "--net", "net", cli.TestImage, "sleep", "1d")
	took := time.Since(start)
	if err == nil {
		t.Fatalf("docker run succeeded with no plugin socket: %s", out)
	}
	if !strings.Contains(out, "calico") {
		t.Errorf("docker's error does not name the plugin: %s", out)
	}
	_, _ = l.Exec("host2", "docker", "rm", "-f", "nosock")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := lab.StartNode(ctx, l.St, l.host("host2"), l.Bin, l.St.NodeImage, false); err != nil {
		t.Fatal(err)
	}
	l.IPAMCheck("host2")
	c := l.Run("host2", "sockback", "net")
	l.EventuallyReach("host1", "ca", c, 60*time.Second)
	l.Docker("host2", "rm", "-f", "sockback")
	// Docker's own lines follow the error ("Run 'docker run --help'..."):
	// report the line that names the plugin.
	msg := strings.TrimSpace(out)
	for _, line := range strings.Split(msg, "\n") {
		if strings.Contains(line, "calico") {
			msg = line
			break
		}
	}
	report(t, record{"plugin socket gone", "`docker run --net net` on host2 with its node (and sockets) stopped",
		"clear error, no leak; works once the node is back", "the one container run",
		fmt.Sprintf("docker gave up after %v: %.160s", took.Round(time.Second), strings.ReplaceAll(msg, "|", "/")),
		"CALICO_RELIABILITY=full go test -run 'TestReliability/plugin-socket-gone' ./test/reliability/"})
}

// The datastore (embedded in host1's node) stops for a minute: traffic
// between existing containers keeps flowing, host2's node says not ready,
// and everything recovers by itself when it is back; a change made right
// after it returns (a new container) works. With one etcd nothing can be
// changed while it is down; testDatastorePartition covers changes made
// while a node cannot reach it.
func testDatastoreDown(t *testing.T, l *Lab, a, b string) {
	const down = time.Minute
	ping := l.Start(context.Background(), "host2", "docker", "exec", "cb", "ping", "-i", "0.2", "-w", strconv.Itoa(int((down+40*time.Second)/time.Second)), a)
	start := time.Now()
	l.Calico("host1", "node", "stop")
	notReady := l.waitReadiness(t, "host2", false, 90*time.Second, start)
	// Down for a while; host2's existing traffic is measured by ping.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	testutil.Eventually(t, down+30*time.Second, func() error {
		if time.Since(start) < down {
			return fmt.Errorf("datastore down for %v only", time.Since(start))
		}
		return nil
	})
	if err := lab.StartNode(ctx, l.St, l.host("host1"), l.Bin, l.St.NodeImage, true); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	ready := l.waitReadiness(t, "host2", true, 2*time.Minute, back)
	pout, _ := ping.Wait(down + 90*time.Second)
	sent, recv, _ := pingCounts(pout)
	// A change after it is back takes effect: a new container on host2.
	c := l.Run("host2", "dsback", "net")
	l.EventuallyReach("host1", "ca", c, 60*time.Second)
	l.Docker("host2", "rm", "-f", "dsback")
	report(t, record{"datastore stopped", fmt.Sprintf("host1's node (which runs the embedded etcd) stopped for %v during a ping stream cb -> ca", back.Sub(start).Round(time.Second)),
		"traffic between existing containers; host2 went not-ready and recovered by itself",
		fmt.Sprintf("%d of %d pings", sent-recv, sent),
		fmt.Sprintf("host2 not ready after %v; ready %v after the datastore came back", notReady.Round(time.Millisecond), ready.Round(time.Millisecond)),
		"CALICO_RELIABILITY=full go test -run 'TestReliability/datastore-down' ./test/reliability/"})
	if sent == 0 || recv < sent*99/100 {
		t.Errorf("traffic lost while the datastore was down: %d of %d", sent-recv, sent)
	}
}

// host2 is cut off from the datastore (its packets to host1's etcd client
// port dropped, as a partition would) while a policy denying ca -> cb is
// applied through host1: host2 says not ready and keeps its dataplane as it
// was, and once the partition ends it catches up and applies the policy by
// itself. This is "a change made while the datastore was down" as one node
// sees it; with one etcd member the datastore itself cannot take changes
// while it is down.
func testDatastorePartition(t *testing.T, l *Lab, a, b string) {
	const table = "reliability-partition"
	h1 := l.host("host1").Addr()
	l.MustExec("host2", "nft", "add", "table", "inet", table)
	defer func() { _, _ = l.Exec("host2", "nft", "delete", "table", "inet", table) }()
	l.MustExec("host2", "nft", "add", "chain", "inet", table, "out", "{ type filter hook output priority 0; }")
	l.MustExec("host2", "nft", "add", "rule", "inet", table, "out", "ip", "daddr", h1, "tcp", "dport", "2379", "drop")
	start := time.Now()
	notReady := l.waitReadiness(t, "host2", false, 2*time.Minute, start)
	l.Apply("host1", denyFrom("reliability-deny-ca", a))
	defer func() { _, _ = l.Exec("host1", l.Bin, "delete", "globalnetworkpolicy", "reliability-deny-ca") }()
	// host2 has not seen the policy: its dataplane is as it was.
	if !l.CanPing("host1", "ca", b) {
		t.Fatalf("ca cannot reach cb while host2 is cut off: host2 changed its dataplane without the datastore")
	}
	l.MustExec("host2", "nft", "delete", "table", "inet", table)
	healed := time.Now()
	var applied time.Duration
	testutil.Eventually(t, 2*time.Minute, func() error {
		if l.CanPing("host1", "ca", b) {
			return fmt.Errorf("host2 has not applied the policy made while it was cut off")
		}
		applied = time.Since(healed)
		return nil
	})
	ready := l.waitReadiness(t, "host2", true, time.Minute, healed)
	if !l.CanPing("host2", "cb", a) {
		t.Errorf("cb cannot reach ca: the policy denies more than ca -> cb")
	}
	l.Calico("host1", "delete", "globalnetworkpolicy", "reliability-deny-ca")
	l.EventuallyReach("host1", "ca", b, time.Minute)
	report(t, record{"node cut off from the datastore", "host2's packets to the etcd client port dropped; meanwhile a policy denying ca -> cb applied through host1; then the partition ended",
		"host2 kept its dataplane while cut off, went not-ready, then applied the policy and was ready by itself", "nothing",
		fmt.Sprintf("not ready %v after the cut; policy applied %v and ready %v after it ended", notReady.Round(time.Millisecond), applied.Round(time.Millisecond), ready.Round(time.Millisecond)),
		"CALICO_RELIABILITY=full go test -run 'TestReliability/datastore-partition' ./test/reliability/"})
}

// waitReadiness waits until host's `node status` says ready (or not ready)
// and returns the time since since.
func (l *Lab) waitReadiness(t *testing.T, host string, ready bool, within time.Duration, since time.Time) time.Duration {
	t.Helper()
	var took time.Duration
	testutil.Eventually(t, within, func() error {
		out, _ := l.Exec(host, l.Bin, "node", "status")
		if got := strings.Contains(out, ", ready,"); got != ready {
			return fmt.Errorf("%s: ready %v, want %v:\n%s", host, got, ready, out)
		}
		took = time.Since(since)
		return nil
	})
	return took
}

// denyFrom is a GlobalNetworkPolicy that denies ingress from ip to every
// endpoint and passes everything else on to the profiles.
func denyFrom(name, ip string) string {
	return fmt.Sprintf(`apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: %s
spec:
  selector: all()
  types: [Ingress]
  ingress:
  - action: Deny
    source:
      nets: [%s/32]
  - action: Pass
`, name, ip)
}
