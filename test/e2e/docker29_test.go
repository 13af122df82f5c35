package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/cli"
	"github.com/calico-docker/calico/internal/lab"
)

// TestDocker29NFTables runs the host protection checks against Docker 29's
// nftables firewall back end. It is run by hand only (in `make test` it
// skips): this machine's Debian dockerd is 20.10, so it needs a Docker 29
// dockerd built from moby's source (its vendor directory: `go install` of
// moby/v2 fails on the module proxy), named by CALICO_DOCKERD29, with a
// runc of 1.2 or later and docker-proxy in the same directory. Each lab
// host's dockerd is restarted as that binary with
// --firewall-backend=nftables. See docs/docker.md, "Docker 29".
func TestDocker29NFTables(t *testing.T) {
	bin := os.Getenv("CALICO_DOCKERD29")
	if bin == "" {
		t.Skip("skipped: set CALICO_DOCKERD29 to a Docker 29 dockerd to run it")
	}
	l := newLabWith(t, lab.Config{Hosts: 2, Subnets: 1, IptablesBackend: "nft"})
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := l.Exec("host1", "nft", "list", "ruleset")
			t.Logf("host1 nft ruleset:\n%s", out)
			out, _ = l.Exec("host1", "sh", "-c", "sysctl net.ipv4.ip_forward; ip route; ip addr; iptables-nft-save")
			t.Logf("host1:\n%s", out)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	for i := range l.St.Hosts {
		h := &l.St.Hosts[i]
		// The host's bin directory comes first on its dockerd's PATH.
		// Its docker-proxy and runc, built beside it, first on its PATH
		// (Debian 12's runc 1.1 lacks the time namespace Docker 29 asks
		// for); CALICO_DOCKERD29_FLAGS adds flags (a runc built without
		// libseccomp needs --seccomp-profile=unconfined).
		wrapper := "#!/bin/sh\nPATH=" + filepath.Dir(bin) + ":$PATH exec " + bin + " --firewall-backend=nftables " +
			os.Getenv("CALICO_DOCKERD29_FLAGS") + " \"$@\"\n"
		if err := os.WriteFile(filepath.Join(h.BinDir, "dockerd"), []byte(wrapper), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := lab.RestartDockerd(ctx, l.St, h); err != nil {
			t.Fatalf("%s: restart dockerd as Docker 29: %v", h.Name, err)
		}
		// The lab's first dockerd (20.10) left iptables' tables (FORWARD
		// policy DROP); a host that runs Docker 29 with nftables from the
		// start has none.
		for _, tb := range []string{"ip filter", "ip nat", "ip6 filter", "ip6 nat"} {
			_, _ = l.Exec(h.Name, append([]string{"nft", "delete", "table"}, strings.Fields(tb)...)...)
		}
		v := l.Docker(h.Name, "version", "-f", "{{.Server.Version}}")
		if !strings.HasPrefix(strings.TrimSpace(v), "29.") {
			t.Fatalf("%s: dockerd is %s, want 29.x", h.Name, v)
		}
		if out := l.MustExec(h.Name, "nft", "list", "tables"); !strings.Contains(out, "docker-bridges") {
			t.Fatalf("%s: no nftables table of Docker's:\n%s", h.Name, out)
		}
	}
	for i := range l.St.Hosts {
		if err := lab.StartNode(ctx, l.St, &l.St.Hosts[i], l.Bin, cli.NodeImage(), i == 0); err != nil {
			t.Fatal(err)
		}
	}
	l.Network("frontend", "host1", "host2")
	web1 := l.Run("host1", "web1", "frontend", "role=web")
	l.Run("host2", "web2", "frontend", "role=web")
	l.EventuallyReach("host2", "web2", web1, 60*time.Second)
	testHostProtection(t, l, "nftables")
}
