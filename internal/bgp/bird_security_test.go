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

// Attacks on the BGP sessions, tried against a real BIRD 2 on a fabric of
// network namespaces: sessions without the right TCP MD5 password or TTL,
// a peer sending more prefixes than its limit, BGPFilter rules, and transit
// between two external peers.

func requireBIRD(t *testing.T) {
	t.Helper()
	testutil.RequireRoot(t)
	if _, err := os.Stat(birdPath); err != nil {
		t.Skip("skipped: BIRD 2 not installed (apt-get install bird2; hack/deps.sh installs it)")
	}
}

// birdProto is one BIRD "protocol bgp" towards host i.
func birdProto(name string, local, neighbor string, asn uint32, extra, ipv4 string) string {
	return fmt.Sprintf(`protocol bgp %s {
  local %s as %d;
  neighbor %s as 64512;
  connect delay time 1;
  connect retry time 1;
  error wait time 1, 5;
%s
  ipv4 {
    import all;
    export where source = RTS_STATIC;
    next hop self;
    gateway direct;
%s
  };
}
`, name, local, asn, neighbor, extra, ipv4)
}

func birdHead(routerID string, statics ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "router id %s;\nlog stderr all;\nprotocol device { scan time 1; }\nprotocol static {\n  ipv4;\n", routerID)
	for _, s := range statics {
		fmt.Fprintf(&b, "  route %s blackhole;\n", s)
	}
	b.WriteString("}\n")
	return b.String()
}

// externalPeer is the Peer for BIRD at address a, as DesiredPeers makes it
// from a BGPPeer (with the given extra spec fields and filters).
func externalPeer(t *testing.T, me int, birdAddr string, asn uint32, spec api.BGPPeerSpec, filters ...api.BGPFilter) Peer {
	t.Helper()
	spec.PeerIP, spec.ASNumber = birdAddr, api.ASNumber(asn)
	peers, err := DesiredPeers(PeerInput{
		NodeName: "a",
		Nodes:    []api.Node{node("a", hostV4(me)+"/24", "")},
		Peers:    []api.BGPPeer{bgpPeer("bird", spec)},
		Filters:  filters,
	})
	if err != nil || len(peers) != 1 {
		t.Fatalf("DesiredPeers: %v, %v", peers, err)
	}
	return peers[0]
}

// neverEstablished checks that the session with peer does not come up while
// another session that needs as long (the control) comes up, and for a few
// connection attempts more.
func neverEstablished(t *testing.T, s Speaker, peer string, attempts time.Duration) {
	t.Helper()
	deadline := time.Now().Add(attempts)
	for time.Now().Before(deadline) {
		st, err := s.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range st {
			if p.Address == addr(peer) && p.State == "Established" {
				t.Fatalf("session with %s established; it must not", peer)
			}
		}
		time.Sleep(200 * time.Millisecond) // polling a negative condition over a window
	}
}

// TCP MD5 (RFC 2385): BIRD requires a password; our session with the right
// one comes up, with a wrong one or none it does not.
func TestBIRDPassword(t *testing.T) {
	t.Parallel()
	requireBIRD(t)
	f := newFabric(t, 4)
	cfg := birdHead(hostV4(3), "10.99.0.0/24")
	for i := range 3 {
		cfg += birdProto(fmt.Sprintf("h%d", i), hostV4(3), hostV4(i), 64512, `  direct;
  password "s3cret-Pw";`, "")
	}
	sock := runBIRD(t, f.hosts[3], cfg)
	ctx := context.Background()
	right := startSpeaker(t, f, 0, "right", Config{})
	wrong := startSpeaker(t, f, 1, "wrong", Config{})
	none := startSpeaker(t, f, 2, "none", Config{})
	for i, sp := range []*remoteSpeaker{right, wrong, none} {
		p := externalPeer(t, i, hostV4(3), 64512, api.BGPPeerSpec{})
		switch i {
		case 0:
			p.Password = "s3cret-Pw"
		case 1:
			p.Password = "wrong-Pw"
		}
		if err := sp.SetPeers(ctx, []Peer{p}); err != nil {
			t.Fatal(err)
		}
	}
	waitState(t, right, addr(hostV4(3)), "Established", false, sessionTimeout)
	learned := watchLearned(t, right)
	learned.waitRoute(t, pfx("10.99.0.0/24"), addr(hostV4(3)), 10*time.Second)
	// Several connection attempts of the others (retry every second).
	neverEstablished(t, wrong, hostV4(3), 6*time.Second)
	neverEstablished(t, none, hostV4(3), time.Second)
	out, err := birdc(sock, "show", "protocols")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && (f[0] == "h1" || f[0] == "h2") && strings.Contains(l, "Established") {
			t.Fatalf("BIRD established a session without the password:\n%s", out)
		}
	}
	t.Logf("BIRD protocols:\n%s", out)
}

// GTSM: with ttlSecurity both sides send TTL 255 and accept nothing less;
// a peer sending with a lower TTL (here BIRD without ttl security: TTL 1 on
// a direct eBGP session) is not accepted.
func TestBIRDTTLSecurity(t *testing.T) {
	t.Parallel()
	requireBIRD(t)
	f := newFabric(t, 3)
	cfg := birdHead(hostV4(2), "10.99.0.0/24") +
		birdProto("gtsm", hostV4(2), hostV4(0), 65100, "  direct;\n  ttl security on;", "") +
		birdProto("plain", hostV4(2), hostV4(1), 65100, "  direct;", "")
	runBIRD(t, f.hosts[2], cfg)
	ctx := context.Background()
	one := uint8(1)
	a := startSpeaker(t, f, 0, "gtsm", Config{})
	b := startSpeaker(t, f, 1, "plain", Config{})
	for i, sp := range []*remoteSpeaker{a, b} {
		p := externalPeer(t, i, hostV4(2), 65100, api.BGPPeerSpec{TTLSecurity: &one})
		if p.TTLSecurity != 1 {
			t.Fatalf("peer %+v: want TTLSecurity 1", p)
		}
		if err := sp.SetPeers(ctx, []Peer{p}); err != nil {
			t.Fatal(err)
		}
	}
	waitState(t, a, addr(hostV4(2)), "Established", false, sessionTimeout)
	neverEstablished(t, b, hostV4(2), 6*time.Second)
}

// A peer that sends more prefixes than its limit is cut, the log and the
// status say so.
func TestBIRDMaxPrefixes(t *testing.T) {
	t.Parallel()
	requireBIRD(t)
	f := newFabric(t, 2)
	var statics []string
	for i := range 12 {
		statics = append(statics, fmt.Sprintf("10.98.%d.0/24", i))
	}
	runBIRD(t, f.hosts[1], birdHead(hostV4(1), statics...)+birdProto("calico", hostV4(1), hostV4(0), 65100, "  direct;", ""))
	ctx := context.Background()
	a := startSpeaker(t, f, 0, "a", Config{})
	p := externalPeer(t, 0, hostV4(1), 65100, api.BGPPeerSpec{})
	p.MaxPrefixes = 10
	if err := a.SetPeers(ctx, []Peer{p}); err != nil {
		t.Fatal(err)
	}
	var table string
	testutil.Eventually(t, sessionTimeout, func() error {
		st, err := a.Status(ctx)
		if err != nil {
			return err
		}
		var b strings.Builder
		_ = FormatStatus(&b, st)
		table = b.String()
		if len(st) != 1 || st[0].State == "Established" || !strings.Contains(st[0].Info, "max prefixes 10 exceeded") {
			return fmt.Errorf("session not cut for its prefix limit:\n%s", table)
		}
		return nil
	})
	t.Logf("status:\n%s", table)
	// Nothing of what it sent stays learned.
	learned := watchLearned(t, a)
	testutil.Eventually(t, 10*time.Second, func() error {
		rs, _ := learned.get()
		if len(rs) > 0 {
			return fmt.Errorf("still learned from the cut peer: %v", rs)
		}
		return nil
	})
	// It stays down (no reconnection) while the limit holds.
	neverEstablished(t, a, hostV4(1), 3*time.Second)
	logs, _ := os.ReadFile(a.logPath)
	if !strings.Contains(string(logs), "more prefixes than its limit") {
		t.Errorf("the log does not say the session was cut for its prefix limit:\n%s", logs)
	}
}

// BGPFilter rules: an import rule keeps a BIRD route out, an export rule
// keeps one of our blocks from BIRD; the rest goes through.
func TestBIRDFilters(t *testing.T) {
	t.Parallel()
	requireBIRD(t)
	f := newFabric(t, 2)
	sock := runBIRD(t, f.hosts[1], birdHead(hostV4(1), "10.98.0.0/24", "10.99.0.0/24")+birdProto("calico", hostV4(1), hostV4(0), 65100, "  direct;", ""))
	filter := api.BGPFilter{ObjectMeta: api.ObjectMeta{Name: "no-98"}, Spec: api.BGPFilterSpec{
		ImportV4: []api.BGPFilterRule{{CIDR: "10.98.0.0/16", MatchOperator: "In", Action: "Reject"}},
		ExportV4: []api.BGPFilterRule{{CIDR: "10.65.0.0/26", MatchOperator: "Equal", Action: "Reject"}},
	}}
	p := externalPeer(t, 0, hostV4(1), 65100, api.BGPPeerSpec{Filters: []string{"no-98"}}, filter)
	if len(p.Import) != 1 || len(p.Export) != 1 {
		t.Fatalf("peer rules: import %v export %v", p.Import, p.Export)
	}
	ctx := context.Background()
	a := startSpeaker(t, f, 0, "a", Config{})
	learned := watchLearned(t, a)
	if err := a.SetAdvertisements(ctx, []Advertisement{
		{Prefix: pfx("10.65.0.0/26"), ExportToExternal: true},
		{Prefix: pfx("10.65.0.64/26"), ExportToExternal: true},
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetPeers(ctx, []Peer{p}); err != nil {
		t.Fatal(err)
	}
	learned.waitRoute(t, pfx("10.99.0.0/24"), addr(hostV4(1)), sessionTimeout)
	if r, ok := learned.route(pfx("10.98.0.0/24")); ok {
		t.Fatalf("import filter let %v in", r)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		out, err := birdc(sock, "show", "route", "protocol", "calico")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "10.65.0.64/26") {
			return fmt.Errorf("BIRD lacks 10.65.0.64/26:\n%s", out)
		}
		if strings.Contains(out, "10.65.0.0/26") {
			return fmt.Errorf("export filter let 10.65.0.0/26 out:\n%s", out)
		}
		return nil
	})

	// Removing the filter lets both through on the running session.
	p.Import, p.Export = nil, nil
	if err := a.SetPeers(ctx, []Peer{p}); err != nil {
		t.Fatal(err)
	}
	learned.waitRoute(t, pfx("10.98.0.0/24"), addr(hostV4(1)), 10*time.Second)
	testutil.Eventually(t, 10*time.Second, func() error {
		out, err := birdc(sock, "show", "route", "protocol", "calico")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "10.65.0.0/26") {
			return fmt.Errorf("BIRD lacks 10.65.0.0/26 with the filter gone:\n%s", out)
		}
		return nil
	})
}

// No transit: a route one external peer sends, even marked with our export
// community, is not passed on to another external peer; our own exportable
// block goes to both.
func TestBIRDNoTransit(t *testing.T) {
	t.Parallel()
	requireBIRD(t)
	f := newFabric(t, 3)
	second := hostV4(2)
	withCommunity := "    export filter { if source = RTS_STATIC then { bgp_community.add((64512,4000)); accept; } reject; };"
	noStaticExport := func(proto string) string {
		return strings.Replace(proto, "    export where source = RTS_STATIC;\n", "", 1)
	}
	runBIRD(t, f.hosts[1], birdHead(hostV4(1), "10.97.0.0/24")+noStaticExport(birdProto("x1", hostV4(1), hostV4(0), 65101, "  direct;", withCommunity)))
	sock := runBIRD(t, f.hosts[2], birdHead(second)+noStaticExport(birdProto("x2", second, hostV4(0), 65102, "  direct;", "    export none;")))
	ctx := context.Background()
	a := startSpeaker(t, f, 0, "a", Config{})
	learned := watchLearned(t, a)
	if err := a.SetAdvertisements(ctx, []Advertisement{{Prefix: pfx("10.65.0.0/26"), ExportToExternal: true}}); err != nil {
		t.Fatal(err)
	}
	peers, err := DesiredPeers(PeerInput{
		NodeName: "a",
		Nodes:    []api.Node{node("a", hostV4(0)+"/24", "")},
		Peers: []api.BGPPeer{
			bgpPeer("x1", api.BGPPeerSpec{PeerIP: hostV4(1), ASNumber: 65101}),
			bgpPeer("x2", api.BGPPeerSpec{PeerIP: second, ASNumber: 65102}),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetPeers(ctx, peers); err != nil {
		t.Fatal(err)
	}
	learned.waitRoute(t, pfx("10.97.0.0/24"), addr(hostV4(1)), sessionTimeout)
	testutil.Eventually(t, 10*time.Second, func() error {
		out, err := birdc(sock, "show", "route", "protocol", "x2")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "10.65.0.0/26") {
			return fmt.Errorf("x2 lacks our block:\n%s", out)
		}
		return nil
	})
	out, err := birdc(sock, "show", "route", "protocol", "x2")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "10.97.0.0/24") {
		t.Fatalf("a route from external peer x1 was passed on to external peer x2:\n%s", out)
	}
}

// A session cut for its prefix limit is tried again after
// PrefixLimitRestart, and cut again while the peer still sends too many.
func TestBIRDMaxPrefixesRetry(t *testing.T) {
	t.Parallel()
	requireBIRD(t)
	f := newFabric(t, 2)
	var statics []string
	for i := range 4 {
		statics = append(statics, fmt.Sprintf("10.98.%d.0/24", i))
	}
	runBIRD(t, f.hosts[1], birdHead(hostV4(1), statics...)+birdProto("calico", hostV4(1), hostV4(0), 65100, "  direct;", ""))
	a := startSpeaker(t, f, 0, "a", Config{MaxPrefixes: 2, PrefixLimitRestart: 2 * time.Second})
	if err := a.SetPeers(context.Background(), []Peer{externalPeer(t, 0, hostV4(1), 65100, api.BGPPeerSpec{})}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 2*sessionTimeout, func() error {
		logs, _ := os.ReadFile(a.logPath)
		if n := strings.Count(string(logs), "more prefixes than its limit"); n < 2 || !strings.Contains(string(logs), "trying the session again") {
			return fmt.Errorf("cut %d times, want a retry and a second cut", n)
		}
		return nil
	})
}
