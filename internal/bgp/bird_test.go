package bgp

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/testutil"
)

const (
	birdPath  = "/usr/sbin/bird"
	birdcPath = "/usr/sbin/birdc"
)

// birdConfig peers BIRD (fabric host 1) with our speaker (host 0) and
// announces one static route.
func birdConfig(asn uint32) string {
	return fmt.Sprintf(`router id %[1]s;
log stderr all;
protocol device { scan time 1; }
protocol static {
  ipv4;
  route 10.99.0.0/24 blackhole;
}
protocol bgp calico {
  local %[1]s as %[3]d;
  neighbor %[2]s as 64512;
  direct;
  connect delay time 1;
  connect retry time 1;
  error wait time 1, 5;
  graceful restart on;
  ipv4 {
    import all;
    export where source = RTS_STATIC;
    next hop self;
    gateway direct;
  };
}
`, hostV4(1), hostV4(0), asn)
}

// runBIRD starts bird in the namespace with its own files in a temp dir and
// returns the control socket; BIRD is killed by PID at cleanup.
func runBIRD(t *testing.T, ns testutil.NetNS, config string) string {
	t.Helper()
	dir := t.TempDir()
	cfg, sock, pid, logPath := filepath.Join(dir, "bird.conf"), filepath.Join(dir, "bird.ctl"), filepath.Join(dir, "bird.pid"), filepath.Join(dir, "bird.log")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(birdPath, "-p", "-c", cfg).CombinedOutput(); err != nil {
		t.Fatalf("bird rejects the config: %v: %s\n%s", err, out, config)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	// -f keeps bird in the foreground, so the PID we hold is bird's own.
	cmd := exec.Command("ip", "netns", "exec", ns.Name, birdPath, "-f", "-c", cfg, "-s", sock, "-P", pid)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("bird log:\n%s", b)
		}
	})
	testutil.Eventually(t, 5*time.Second, func() error {
		_, err := birdc(sock, "show status")
		return err
	})
	return sock
}

func birdc(sock string, args ...string) (string, error) {
	out, err := exec.Command(birdcPath, append([]string{"-s", sock}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// TestBIRDInterop peers our speaker with a real BIRD 2, over iBGP and eBGP,
// as an external router configured through a BGPPeer resource.
func TestBIRDInterop(t *testing.T) {
	t.Parallel()
	testutil.RequireRoot(t)
	if _, err := os.Stat(birdPath); err != nil {
		t.Skip("skipped: BIRD 2 not installed (apt-get install bird2; hack/deps.sh installs it)")
	}
	for _, tc := range []struct {
		name string
		asn  uint32
	}{{"iBGP", 64512}, {"eBGP", 65100}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFabric(t, 2)
			ctx := context.Background()
			sock := runBIRD(t, f.hosts[1], birdConfig(tc.asn))

			peers := peersFor(t, PeerInput{
				NodeName: "a",
				Nodes:    []api.Node{node("a", hostV4(0)+"/24", "")},
				Peers:    []api.BGPPeer{bgpPeer("tor", api.BGPPeerSpec{PeerIP: hostV4(1), ASNumber: api.ASNumber(tc.asn)})},
			})
			if len(peers) != 1 || !peers[0].External {
				t.Fatalf("peers %+v, want one external peer", peers)
			}
			a := startSpeaker(t, f, 0, "a", Config{})
			learned := watchLearned(t, a)
			block, borrowed := pfx("10.65.0.0/26"), pfx("10.66.0.7/32")
			if err := a.SetAdvertisements(ctx, []Advertisement{{Prefix: block, ExportToExternal: true}, {Prefix: borrowed}}); err != nil {
				t.Fatal(err)
			}
			if err := a.SetPeers(ctx, peers); err != nil {
				t.Fatal(err)
			}
			waitState(t, a, addr(hostV4(1)), "Established", false, sessionTimeout)

			// BIRD learns the exportable block from us, with our address as
			// next hop, without our internal community, and not the /32.
			var birdRoutes string
			testutil.Eventually(t, 10*time.Second, func() error {
				out, err := birdc(sock, "show", "route", "all", "protocol", "calico")
				if err != nil {
					return err
				}
				birdRoutes = out
				if !strings.Contains(out, block.String()) || !strings.Contains(out, "via "+hostV4(0)) {
					return fmt.Errorf("BIRD has not learned %s via %s:\n%s", block, hostV4(0), out)
				}
				if strings.Contains(out, borrowed.String()) {
					return fmt.Errorf("BIRD learned %s, which is not exported to external peers:\n%s", borrowed, out)
				}
				if strings.Contains(out, "(64512,4000)") {
					return fmt.Errorf("the internal export community leaked to BIRD:\n%s", out)
				}
				return nil
			})

			t.Logf("BIRD's routes from us:\n%s", birdRoutes)

			// A route BIRD announces reaches us, via BIRD.
			learned.waitRoute(t, pfx("10.99.0.0/24"), addr(hostV4(1)), 10*time.Second)

			st, err := a.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			_ = FormatStatus(&b, st)
			found := false
			for _, line := range strings.Split(b.String(), "\n") {
				cells := strings.Split(line, "|")
				if len(cells) == 7 && strings.TrimSpace(cells[1]) == hostV4(1) && strings.TrimSpace(cells[2]) == PeerTypeGlobal &&
					strings.TrimSpace(cells[3]) == "up" && strings.TrimSpace(cells[5]) == "Established" {
					found = true
				}
			}
			if !found {
				t.Errorf("status table lacks an up row for %s:\n%s", hostV4(1), b.String())
			}

			// Withdrawal reaches BIRD too.
			if err := a.SetAdvertisements(ctx, nil); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, 10*time.Second, func() error {
				out, err := birdc(sock, "show", "route", "protocol", "calico")
				if err != nil {
					return err
				}
				if strings.Contains(out, block.String()) {
					return fmt.Errorf("BIRD still has %s:\n%s", block, out)
				}
				return nil
			})
		})
	}
}
