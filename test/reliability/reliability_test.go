package reliability

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/cli"
	"github.com/calico-docker/calico/internal/lab"
	"github.com/calico-docker/calico/internal/testutil"
)

// TestReliability runs the fault and isolation scenarios in one two-host
// lab, one subtest each. `make test` runs the short form (fewer containers,
// the faults that take seconds); `make test-reliability` runs them all.
func TestReliability(t *testing.T) {
	l := newLab(t, 2)
	l.Network("net", "host1", "host2")
	l.Network("other", "host1")
	a := l.Run("host1", "ca", "net")
	b := l.Run("host2", "cb", "net")
	l.Run("host1", "co", "other")
	l.EventuallyReach("host1", "ca", b, 60*time.Second)
	l.EventuallyReach("host2", "cb", a, 60*time.Second)

	t.Run("isolation", func(t *testing.T) { testIsolation(t, l, a, b) })
	t.Run("isolation6", func(t *testing.T) { testIsolation6(t, l) })
	t.Run("secrets", func(t *testing.T) { testSecrets(t, l) })
	t.Run("nft-table-deleted", func(t *testing.T) { testNftDeleted(t, l, a) })
	// Repaired as soon as the kernel announces the deletion (route watch).
	t.Run("route-deleted", func(t *testing.T) { testRouteDeleted(t, l, a, b) })
	t.Run("node-sigkill", func(t *testing.T) { testNodeKill(t, l, a, b) })
	n := 20
	if full() {
		n = 200
	}
	t.Run("many-containers", func(t *testing.T) { testManyContainers(t, l, n) })
	if !full() {
		return
	}
	t.Run("dockerd-restart", func(t *testing.T) { testDockerdRestart(t, l) })
	t.Run("plugin-socket-gone", func(t *testing.T) { testPluginSocketGone(t, l) })
	t.Run("datastore-partition", func(t *testing.T) { testDatastorePartition(t, l, a, b) })
	t.Run("datastore-down", func(t *testing.T) { testDatastoreDown(t, l, a, b) })
	// These three leave host2 on another build, restarted or rejoined: last.
	t.Run("upgrade-in-place", func(t *testing.T) { testUpgrade(t, l, b) })
	t.Run("host-removed-rejoin", func(t *testing.T) { testRemovedRejoin(t, l, a, b) })
	t.Run("host-reboot", func(t *testing.T) { testReboot(t, l, a, b) })
}

// A container cannot send with another container's source address, cannot
// reach another network's containers, and cannot reach its host's own
// services, even with NET_ADMIN in its namespace.
func testIsolation(t *testing.T, l *Lab, a, b string) {
	// The attacker can change its own addresses and MAC.
	l.RunWith("host1", "evil", "net", "--cap-add", "NET_ADMIN")
	l.EventuallyReach("host1", "evil", b, 30*time.Second)
	// Spoofed pings would fail at evil anyway (the replies go to the real
	// owner): count them where they land, at cb, and check first that the
	// count sees evil's honest pings.
	if n := l.echoesFrom("host1", "evil", l.IP("host1", "evil"), b, "host2", "cb"); n == 0 {
		t.Fatalf("cb counted none of evil's pings from its own address: the measure is broken")
	}
	tried := 0
	// Spoofed source: evil claims ca's address and pings cb from it; then
	// a made-up source in the pool.
	for _, src := range []string{a, nextAddr(t, b, 37)} {
		l.Docker("host1", "exec", "evil", "ip", "addr", "add", src+"/32", "dev", "eth0")
		tried++
		if n := l.echoesFrom("host1", "evil", src, b, "host2", "cb"); n > 0 {
			t.Fatalf("%d pings from evil with source %s reached cb (%s)", n, src, b)
		}
	}
	// ARP: evil announces ca's address (gratuitous ARP); the host keeps
	// routing ca's address to ca, so ca still answers and evil sees none
	// of its traffic.
	_, _ = l.Exec("host1", "docker", "exec", "evil", "arping", "-U", "-c", "3", "-I", "eth0", "-s", a, a)
	tried++
	evilBefore := l.icmpEchoes("host1", "evil", false)
	if n := l.echoesFrom("host2", "cb", b, a, "host1", "ca"); n == 0 {
		t.Fatalf("ca no longer gets pings to its address after evil's gratuitous ARP")
	}
	if n := l.icmpEchoes("host1", "evil", false) - evilBefore; n > 0 {
		t.Fatalf("evil received %d pings meant for ca (%s)", n, a)
	}
	if out := l.MustExec("host1", "ip", "route", "get", a); !strings.Contains(out, calicoIface(l, "host1", "ca")) {
		t.Fatalf("host1 routes ca's address %s elsewhere after evil's ARP: %s", a, out)
	}
	// MAC: evil takes ca's MAC; routing is by address, so nothing changes.
	mac := strings.TrimSpace(l.Docker("host1", "exec", "ca", "cat", "/sys/class/net/eth0/address"))
	l.Docker("host1", "exec", "evil", "ip", "link", "set", "eth0", "address", mac)
	tried++
	if !l.CanPing("host2", "cb", a) {
		t.Fatalf("ca unreachable after evil copied its MAC")
	}
	// Another network's container on the same host.
	co := l.IP("host1", "co")
	tried++
	if l.CanPing("host1", "ca", co) || l.CanPing("host1", "co", a) {
		t.Fatalf("containers on different networks reach each other (ca %s, co %s)", a, co)
	}
	// The host's own services: a listener on host1's address.
	h1 := l.host("host1").Addr()
	ln := listenIn(t, l.host("host1").NetNS, h1+":7777")
	if c, err := dialIn(l.host("host1").NetNS, h1+":7777"); err != nil {
		t.Fatalf("the host's own service is not up: %v", err)
	} else {
		c.Close()
	}
	defer ln.Close()
	tried++
	if l.TCPConnects("host1", "ca", h1, 7777) {
		t.Fatalf("ca reached its host's service at %s:7777 with no policy allowing it", h1)
	}
	report(t, record{"isolation (IPv4)", "spoofed source (another container's, made up), gratuitous ARP for another's address, copied MAC, other network, host service",
		"all refused; the victim kept its traffic", "nothing", fmt.Sprintf("%d attacks, 0 got through", tried),
		"go test -run 'TestReliability/isolation' ./test/reliability/"})
	l.Docker("host1", "rm", "-f", "evil")
}

func nextAddr(t *testing.T, ip string, n int) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		a = a.Next()
	}
	return a.String()
}

// calicoIface is the host side of a container's veth.
func calicoIface(l *Lab, host, container string) string {
	id := strings.TrimSpace(l.Docker(host, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.EndpointID}}{{end}}", container))
	if len(id) > 11 {
		id = id[:11]
	}
	return "cali" + id
}

// No secret in logs, `calico get` output or `node status`: the private key
// of the node, the datastore credentials and a join token's secret.
func testSecrets(t *testing.T, l *Lab) {
	tok := strings.TrimSpace(l.Calico("host1", "node", "token", "create", "--description", "reliability"))
	_, cred, ok := strings.Cut(tok, "::")
	if !ok {
		t.Fatalf("token %q has no secret part", tok)
	}
	id, secret, _ := strings.Cut(cred, ":")
	defer l.Calico("host1", "node", "token", "revoke", id)
	var outputs []string
	for _, h := range []string{"host1", "host2"} {
		logs, _ := lab.DockerCmd(context.Background(), l.host(h), "logs", "calico-node").CombinedOutput()
		outputs = append(outputs, string(logs))
		outputs = append(outputs, l.Calico(h, "node", "status"))
		for _, kind := range []string{"nodes", "ippools", "profiles", "workloadendpoints", "bgpconfigurations", "felixconfigurations"} {
			outputs = append(outputs, l.Calico(h, "get", kind, "-A", "-o", "yaml"))
		}
	}
	checked := 0
	for _, out := range outputs {
		checked += len(out)
		for _, bad := range []string{"PRIVATE KEY", secret, tok} {
			if bad != "" && strings.Contains(out, bad) {
				t.Fatalf("secret %.12q... appears in output:\n%.2000s", bad, out)
			}
		}
	}
	report(t, record{"no secrets in output", "node logs, node status, calico get of every kind, after a join token was made",
		"no private key, no token secret", "nothing", fmt.Sprintf("%d bytes of output checked", checked),
		"go test -run 'TestReliability/secrets' ./test/reliability/"})
}

// Someone deletes `inet calico` on host1: the agent puts it back. The
// exposure window is the time the table is missing; during it a probe
// from another network (co -> ca, normally denied) counts what got through.
func testNftDeleted(t *testing.T, l *Lab, a string) {
	if l.CanPing("host1", "co", a) {
		t.Fatal("co reaches ca before the fault: isolation is already broken")
	}
	probe := l.Start(context.Background(), "host1", "docker", "exec", "co", "ping", "-i", "0.1", "-w", "6", a)
	allowed := l.Start(context.Background(), "host2", "docker", "exec", "cb", "ping", "-i", "0.1", "-w", "15", a)
	start := time.Now()
	l.MustExec("host1", "nft", "delete", "table", "inet", "calico")
	var back time.Duration
	testutil.Eventually(t, 120*time.Second, func() error {
		if _, err := l.Exec("host1", "nft", "list", "chain", "inet", "calico", "forward"); err != nil {
			return err
		}
		back = time.Since(start)
		return nil
	})
	out, _ := probe.Wait(30 * time.Second)
	sent, recv, _ := pingCounts(out)
	aout, _ := allowed.Wait(30 * time.Second)
	asent, arecv, _ := pingCounts(aout)
	if l.CanPing("host1", "co", a) {
		t.Fatalf("co reaches ca after the table came back")
	}
	if !l.CanPing("host2", "cb", a) {
		t.Fatalf("cb cannot reach ca after the table came back")
	}
	report(t, record{"`nft delete table inet calico`", "the table deleted on a host with running containers",
		"table rebuilt; policy back; denied traffic stayed denied (Docker's FORWARD policy drop)",
		fmt.Sprintf("%d of %d denied probes got through; %d of %d allowed pings (cb -> ca) lost while it was missing", recv, sent, asent-arecv, asent),
		fmt.Sprintf("repaired in %v", back.Round(time.Millisecond)),
		"go test -run 'TestReliability/nft-table-deleted' ./test/reliability/"})
	if recv > 0 {
		t.Errorf("%d of %d denied pings got through while the table was missing (window %v)", recv, sent, back)
	}
}

// A route we own deleted: put back as soon as the kernel announces the
// deletion (well before the 90 s periodic resync); the traffic it carried
// recovers.
func testRouteDeleted(t *testing.T, l *Lab, a, b string) {
	iface := calicoIface(l, "host1", "ca")
	start := time.Now()
	l.MustExec("host1", "ip", "route", "del", a+"/32", "dev", iface)
	var back time.Duration
	testutil.Eventually(t, 20*time.Second, func() error {
		out, err := l.Exec("host1", "ip", "route", "show", a+"/32")
		if err != nil || !strings.Contains(out, iface) {
			return fmt.Errorf("route to %s not back: %q %v", a, out, err)
		}
		back = time.Since(start)
		return nil
	})
	l.EventuallyReach("host2", "cb", a, 10*time.Second)
	report(t, record{"route deleted", "`ip route del` of a local container's /32",
		"route put back at once (route watch), traffic recovers", "traffic to that container until repaired",
		fmt.Sprintf("repaired in %v", back.Round(time.Millisecond)),
		"go test -run 'TestReliability/route-deleted' ./test/reliability/"})
}

// host2's node is SIGKILLed while a ping stream and a TCP stream run from
// ca (host1) to cb (host2), then started again.
func testNodeKill(t *testing.T, l *Lab, a, b string) {
	f := l.startFlows(t, b, 30*time.Second)
	start := time.Now()
	l.Docker("host2", "kill", "--signal", "KILL", "calico-node")
	h2 := l.host("host2")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := lab.StartNode(ctx, l.St, h2, l.Bin, l.St.NodeImage, false); err != nil {
		t.Fatal(err)
	}
	restarted := time.Since(start)
	res := f.finish(t)
	// A new container on host2 works after.
	l.newContainerWorks("host2", "cnew")
	report(t, record{"node SIGKILL + restart", "host2's calico-node killed (SIGKILL) and started again during a ping stream (10/s) and a TCP stream ca -> cb",
		"TCP stream intact, new container works", res.lossText(),
		fmt.Sprintf("node back in %v; TCP %d/%d lines", restarted.Round(time.Millisecond), res.got, res.lines),
		"go test -run 'TestReliability/node-sigkill' ./test/reliability/"})
	res.check(t)
}

// flows is a ping stream (10/s) and a TCP stream (10 lines/s) from ca on
// host1 to cb on host2: a fault on either host must break neither.
type flows struct {
	l              *Lab
	lines          int
	srv, cli, ping *stream
}

// startFlows starts both streams for d; the TCP listener is up before it
// returns.
func (l *Lab) startFlows(t *testing.T, b string, d time.Duration) *flows {
	t.Helper()
	f := &flows{l: l, lines: int(d / (100 * time.Millisecond))}
	// busybox nc ends a connection when its stdin ends: the server's stdin
	// is a pipe kept open longer than the stream.
	f.srv = l.Start(context.Background(), "host2", "docker", "exec", "cb", "sh", "-c",
		fmt.Sprintf("sleep %d | nc -l -p 5001 > /got", int((d+5*time.Minute)/time.Second)))
	testutil.Eventually(t, 30*time.Second, func() error {
		if out, err := l.Exec("host2", "docker", "exec", "cb", "netstat", "-ltn"); err != nil || !strings.Contains(out, ":5001") {
			return fmt.Errorf("listener not up: %v: %s", err, out)
		}
		return nil
	})
	f.cli = l.Start(context.Background(), "host1", "docker", "exec", "ca", "sh", "-c",
		fmt.Sprintf("i=0; while [ $i -lt %d ]; do echo line$i; i=$((i+1)); usleep 100000; done | nc %s 5001", f.lines, b))
	f.ping = l.Start(context.Background(), "host1", "docker", "exec", "ca", "ping", "-i", "0.1", "-w", strconv.Itoa(int(d/time.Second)), b)
	return f
}

// flowResult is what the streams saw.
type flowResult struct {
	sent, recv, got, lines int
	cerr, serr             error
	cout                   string
}

// finish waits for both streams to end and counts what arrived.
func (f *flows) finish(t *testing.T) flowResult {
	t.Helper()
	defer func() { _ = f.srv.cmd.Process.Kill(); _, _ = f.srv.Wait(10 * time.Second) }()
	limit := time.Duration(f.lines)*100*time.Millisecond + 60*time.Second
	pout, _ := f.ping.Wait(limit)
	r := flowResult{lines: f.lines}
	r.cout, r.cerr = f.cli.Wait(limit)
	var ok bool
	if r.sent, r.recv, ok = pingCounts(pout); !ok {
		t.Fatalf("ping output: %s", pout)
	}
	// The client has sent everything; the last lines may still be in flight.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		var out string
		out, r.serr = f.l.Exec("host2", "docker", "exec", "cb", "sh", "-c", "wc -l < /got")
		r.got, _ = strconv.Atoi(strings.TrimSpace(out))
		if r.serr == nil && r.got == f.lines {
			break
		}
		time.Sleep(200 * time.Millisecond) // polling interval, not synchronisation
	}
	return r
}

func (r flowResult) loss() float64 { return 100 * float64(r.sent-r.recv) / float64(r.sent) }

func (r flowResult) lossText() string {
	return fmt.Sprintf("%d of %d pings (%.1f%%)", r.sent-r.recv, r.sent, r.loss())
}

// check fails the test if the TCP stream broke or more than 1% of the
// pings were lost.
func (r flowResult) check(t *testing.T) {
	t.Helper()
	if r.cerr != nil || r.serr != nil || r.got != r.lines {
		t.Errorf("TCP stream broken: client %v %q, server %v, %d of %d lines", r.cerr, r.cout, r.serr, r.got, r.lines)
	}
	if r.loss() > 1 {
		t.Errorf("ping loss %.1f%% > 1%%", r.loss())
	}
}

// newContainerWorks runs a new container on host, checks that ca on host1
// reaches it and removes it.
func (l *Lab) newContainerWorks(host, name string) {
	l.T.Helper()
	c := l.Run(host, name, "net")
	l.EventuallyReach("host1", "ca", c, 60*time.Second)
	l.Docker(host, "rm", "-f", name)
}

// n containers started at once on host1: unique addresses, all reachable.
func testManyContainers(t *testing.T, l *Lab, n int) {
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 25) // docker CLI processes in flight
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := l.Exec("host1", "docker", "run", "-d", "--name", fmt.Sprintf("m%d", i), "--net", "net", "--restart", "always", cli.TestImage, "sleep", "1d"); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	started := time.Since(start)
	seen := map[string]string{}
	var ips []string
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("m%d", i)
		ip := l.IP("host1", name)
		if other, dup := seen[ip]; dup || ip == "" {
			t.Fatalf("%s and %s both have address %q", name, other, ip)
		}
		seen[ip] = name
		ips = append(ips, ip)
	}
	// All programmed: cb on host2 reaches every one (routes, policy).
	prog := time.Now()
	testutil.Eventually(t, 2*time.Minute, func() error {
		args := []string{"docker", "exec", "cb", "sh", "-c"}
		var sb strings.Builder
		sb.WriteString("fail=0; for ip in " + strings.Join(ips, " ") + "; do ping -c1 -W1 $ip >/dev/null || { echo $ip; fail=1; }; done; exit $fail")
		if out, err := l.Exec("host2", append(args, sb.String())...); err != nil {
			return fmt.Errorf("unreachable: %s", out)
		}
		return nil
	})
	l.IPAMCheck("host1")
	report(t, record{fmt.Sprintf("%d containers at once", n), fmt.Sprintf("%d `docker run` on one host, 25 in flight", n),
		"all got unique addresses and were reachable from another host", "nothing (ipam check: 0 problems)",
		fmt.Sprintf("all started in %v; all reachable %v later", started.Round(time.Millisecond), time.Since(prog).Round(time.Millisecond)),
		"go test -run 'TestReliability/many-containers' ./test/reliability/"})
}
