package bgp

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/testutil"
)

const birdPath = "/usr/sbin/bird"

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

// runBIRD starts BIRD in the namespace (testutil.StartBIRD) and returns
// its control socket.
func runBIRD(t *testing.T, ns testutil.NetNS, config string) string {
	t.Helper()
	return testutil.StartBIRD(t, ns.Name, config).Sock
}

func birdc(sock string, args ...string) (string, error) {
	return (&testutil.BIRD{Sock: sock}).Ctl(args...)
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
