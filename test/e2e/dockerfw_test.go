package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/cli"
	"github.com/calico-docker/calico/internal/dataplane/dockerfw"
	"github.com/calico-docker/calico/internal/lab"
	"github.com/calico-docker/calico/internal/testutil"
)

// The lab's dockerds run with Docker's defaults (iptables on, FORWARD policy
// DROP, default bridge, ip-masq). These tests run the whole product on such
// hosts with each iptables back end, and check that the only change to
// Docker's tables is our documented DOCKER-USER rule.

func TestDockerDefaultsNFT(t *testing.T)    { t.Parallel(); testDockerDefaults(t, "nft") }
func TestDockerDefaultsLegacy(t *testing.T) { t.Parallel(); testDockerDefaults(t, "legacy") }

// ourRuleLine is how iptables-save shows our rule.
var ourRuleLine = "-A DOCKER-USER " + strings.Join(quoteComment(dockerfw.WantedRule(0x40000)), " ")

func quoteComment(spec []string) []string {
	out := make([]string, len(spec))
	for i, w := range spec {
		if strings.Contains(w, " ") {
			w = `"` + w + `"`
		}
		out[i] = w
	}
	return out
}

// dockerTables is iptables-save of the filter and nat tables of the lab's
// back end, without comments and counters ("nftables": Docker 29's tables).
func (l *Lab) dockerTables(host, backend string) string {
	l.T.Helper()
	var b strings.Builder
	if backend == "nftables" {
		// Docker 29's own firewall back end: its tables, as nft lists them.
		for _, fam := range []string{"ip", "ip6"} {
			b.WriteString(l.MustExec(host, "nft", "-s", "list", "table", fam, "docker-bridges"))
		}
		return b.String()
	}
	for _, table := range []string{"filter", "nat"} {
		out := l.MustExec(host, "iptables-"+backend+"-save", "-t", table)
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "#") {
				continue
			}
			if strings.HasPrefix(line, ":") {
				if i := strings.Index(line, " ["); i > 0 {
					line = line[:i]
				}
			}
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

func testDockerDefaults(t *testing.T, backend string) {
	testutil.RequireCmd(t, "iptables-"+backend, "iptables-"+backend+"-save")
	l := newLabWith(t, lab.Config{Hosts: 2, Subnets: 1, IptablesBackend: backend})
	other := map[string]string{"nft": "legacy", "legacy": "nft"}[backend]

	// Docker's firewall as dockerd left it, before any calico node ran.
	before := map[string]string{}
	for _, h := range []string{"host1", "host2"} {
		before[h] = l.dockerTables(h, backend)
		if !strings.Contains(before[h], ":FORWARD DROP") || !strings.Contains(before[h], ":DOCKER-USER") {
			t.Fatalf("%s: dockerd did not set up its firewall with %s:\n%s", h, backend, before[h])
		}
		if out := l.MustExec(h, "iptables", "--version"); !strings.Contains(out, map[string]string{"nft": "nf_tables", "legacy": "legacy"}[backend]) {
			t.Fatalf("%s: iptables on the host's PATH is %q, want the %s back end", h, out, backend)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for i, h := range l.St.Hosts {
		if err := lab.StartNode(ctx, l.St, &h, l.Bin, cli.NodeImage(), i == 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []string{"host1", "host2"} {
		after := l.dockerTables(h, backend)
		want := strings.Replace(before[h], "-A DOCKER-USER -j RETURN\n", ourRuleLine+"\n-A DOCKER-USER -j RETURN\n", 1)
		if after != want {
			t.Fatalf("%s: Docker's tables changed beyond our DOCKER-USER rule:\n%s\nwant:\n%s", h, after, want)
		}
		// Nothing of ours in the back end Docker does not use.
		if out, _ := l.Exec(h, "iptables-"+other+"-save"); strings.Contains(out, dockerfw.Marker) {
			t.Fatalf("%s: a rule of ours in iptables-%s:\n%s", h, other, out)
		}
		if st := l.Calico(h, "node", "status"); !strings.Contains(st, "docker firewall: DOCKER-USER rule in place (iptables-"+backend+")") || !strings.Contains(st, "forwarding: ok") {
			t.Fatalf("%s: node status:\n%s", h, st)
		}
	}

	l.Network("frontend", "host1", "host2")
	l.Network("backend", "host1", "host2")
	web1 := l.Run("host1", "web1", "frontend", "role=web")
	web1b := l.Run("host1", "web1b", "frontend", "role=web")
	db1 := l.Run("host1", "db1", "backend", "role=db")
	web2 := l.Run("host2", "web2", "frontend", "role=web")
	db2 := l.Run("host2", "db2", "backend", "role=db")
	// Docker's default bridge beside calico networks.
	l.Docker("host1", "run", "-d", "--name", "br1", cli.TestImage, "sleep", "1d")
	l.Docker("host1", "run", "-d", "--name", "br2", cli.TestImage, "sleep", "1d")
	br2 := strings.TrimSpace(l.Docker("host1", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "br2"))

	check := func(when string) {
		t.Helper()
		t.Logf("checking connectivity and policy %s", when)
		l.EventuallyReach("host1", "web1", web1b, 30*time.Second) // same host
		l.EventuallyReach("host1", "web1", web2, 30*time.Second)  // across hosts
		l.EventuallyReach("host2", "db2", db1, 30*time.Second)
		// Profiles isolate networks (web's ingress has no policy).
		l.AssertBlocked("host1", "db1", web1b) // same host
		l.AssertBlocked("host2", "db2", web1)  // across hosts
		// Label policy: web may reach db on every host, db still not web.
		l.EventuallyReach("host1", "web1", db2, 15*time.Second)
		l.EventuallyReach("host2", "web2", db1, 15*time.Second)
		l.EventuallyReach("host1", "web1", db1, 15*time.Second)
		// The default bridge still works: container to container, and out
		// of the host through Docker's masquerade (to the other lab host).
		l.EventuallyReach("host1", "br1", br2, 10*time.Second)
		l.EventuallyReach("host1", "br1", l.host("host2").Addr(), 10*time.Second)
		// A container on Docker's bridge is no calico workload: it does not
		// get into calico workloads that policy does not open to it.
		l.AssertBlocked("host1", "br1", web1)
	}
	l.ApplyFile("host1", seedPolicy)
	check("with Docker's defaults")

	t.Run("host protection from outside", func(t *testing.T) { testHostProtection(t, l, backend) })

	t.Run("dockerd restart", func(t *testing.T) {
		// A deadline of its own: the one above also covered the nodes' start.
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		for _, name := range []string{"host1", "host2"} {
			start := time.Now()
			if err := lab.RestartDockerd(ctx, l.St, l.host(name)); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: dockerd restarted in %v", name, time.Since(start).Round(time.Millisecond))
		}
		for _, h := range []string{"host1", "host2"} {
			if out := l.dockerTables(h, backend); !strings.Contains(out, ourRuleLine) {
				t.Fatalf("%s: our rule is gone after the dockerd restart:\n%s", h, out)
			}
		}
		check("after both dockerds restarted")
	})

	t.Run("repair after DOCKER-USER is flushed", func(t *testing.T) {
		start := time.Now()
		l.MustExec("host1", "iptables", "-w", "-F", "DOCKER-USER")
		var repaired time.Duration
		testutil.Eventually(t, 20*time.Second, func() error {
			if !strings.Contains(l.MustExec("host1", "iptables", "-w", "-S", "DOCKER-USER"), dockerfw.Marker) {
				return fmt.Errorf("our rule is not back yet")
			}
			repaired = time.Since(start)
			return nil
		})
		t.Logf("repair latency after `iptables -F DOCKER-USER`: %v (check interval 5s)", repaired.Round(time.Millisecond))
		l.MustExec("host1", "iptables", "-w", "-A", "DOCKER-USER", "-j", "RETURN") // as Docker had it
		l.EventuallyReach("host1", "web1", web1b, 10*time.Second)
	})

	// ufw on host2, as a user enables it on a Docker host: its FORWARD
	// policy is DROP too ("deny (routed)"), and its chains come after
	// Docker's jump to DOCKER-USER. ufw writes through /usr/sbin/iptables,
	// the machine's back end, so this runs in the lab of that back end.
	// Its configuration is a copy bind-mounted over /etc/ufw in host2's
	// private mount namespace, so the machine's own ufw stays untouched.
	t.Run("ufw active", func(t *testing.T) {
		if mb, err := lab.MachineIptablesBackend(); err != nil || mb != backend {
			t.Skipf("ufw uses this machine's iptables back end (%s), not %s", mb, backend)
		}
		testutil.RequireCmd(t, "ufw")
		dir := filepath.Join(l.host("host2").LibDir, "ufw-etc")
		l.MustExec("host2", "cp", "-a", "/etc/ufw", dir)
		l.MustExec("host2", "mount", "--bind", dir, "/etc/ufw")
		l.MustExec("host2", "ufw", "allow", "179/tcp") // BGP from the other hosts
		l.MustExec("host2", "ufw", "--force", "enable")
		if st := l.MustExec("host2", "ufw", "status", "verbose"); !strings.Contains(st, "Status: active") || !strings.Contains(st, "deny (routed)") {
			t.Fatalf("ufw is not active with routed traffic denied:\n%s", st)
		}
		fwd := l.MustExec("host2", "iptables", "-w", "-S", "FORWARD")
		if !strings.Contains(fwd, "-P FORWARD DROP") || !strings.Contains(fwd, "-j ufw-before-forward") {
			t.Fatalf("ufw's FORWARD rules missing:\n%s", fwd)
		}
		check("with ufw active on host2")
	})

	t.Run("node stop --remove", func(t *testing.T) {
		// Docker 20.10 itself reorders FORWARD when it restarts (the
		// isolation jump comes first), so compare with the tables as they
		// are now, our rule taken out.
		cur := l.dockerTables("host1", backend)
		if !strings.Contains(cur, ourRuleLine+"\n") {
			t.Fatalf("our rule is missing before node stop --remove:\n%s", cur)
		}
		out := l.Calico("host1", "node", "stop", "--remove")
		if !strings.Contains(out, "removed 1 rule(s)") {
			t.Fatalf("node stop --remove: %s", out)
		}
		if got, want := l.dockerTables("host1", backend), strings.Replace(cur, ourRuleLine+"\n", "", 1); got != want {
			t.Fatalf("Docker's tables after node stop --remove:\n%s\nwant:\n%s", got, want)
		}
		// Without our rule Docker's DROP applies again, as documented.
		l.EventuallyBlocked("host1", "web1", web1b, 10*time.Second)
	})
}
