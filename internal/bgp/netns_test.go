package bgp

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/testutil"
)

// peersFor computes a node's peers from resources, as the agent will.
func peersFor(t testing.TB, in PeerInput) []Peer {
	t.Helper()
	peers, err := DesiredPeers(in)
	if err != nil {
		t.Fatalf("peers of %s: %v", in.NodeName, err)
	}
	return peers
}

// startSpeaker starts a speaker for fabric host i in its namespace.
func startSpeaker(t testing.TB, f *fabric, i int, name string, cfg Config) *remoteSpeaker {
	t.Helper()
	cfg.IPv4Address = addr(hostV4(i))
	if cfg.ConnectRetry == 0 {
		cfg.ConnectRetry = time.Second
	}
	s := newRemoteSpeaker(t, f.hosts[i], name, cfg)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNetnsTwoSpeakers(t *testing.T) {
	t.Parallel()
	f := newFabric(t, 2)
	ctx := context.Background()
	nodes := []api.Node{
		node("a", hostV4(0)+"/24", hostV6(0)+"/64"),
		node("b", hostV4(1)+"/24", hostV6(1)+"/64"),
	}
	a := startSpeaker(t, f, 0, "a", Config{IPv6Address: addr(hostV6(0))})
	b := startSpeaker(t, f, 1, "b", Config{IPv6Address: addr(hostV6(1))})
	bLearned := watchLearned(t, b)

	for _, s := range []struct {
		sp   *remoteSpeaker
		node string
	}{{a, "a"}, {b, "b"}} {
		if err := s.sp.SetPeers(ctx, peersFor(t, PeerInput{NodeName: s.node, Nodes: nodes})); err != nil {
			t.Fatal(err)
		}
	}
	// An IPv4 and an IPv6 session, like Calico's bird and bird6.
	waitState(t, b, addr(hostV4(0)), "Established", false, sessionTimeout)
	waitState(t, b, addr(hostV6(0)), "Established", false, sessionTimeout)

	block, borrowed, block6 := pfx("10.65.0.0/26"), pfx("10.66.0.7/32"), pfx("fd00:65::/122")
	start := time.Now()
	if err := a.SetAdvertisements(ctx, []Advertisement{{Prefix: block, ExportToExternal: true}, {Prefix: borrowed}, {Prefix: block6}}); err != nil {
		t.Fatal(err)
	}
	bLearned.waitRoute(t, block, addr(hostV4(0)), 5*time.Second)
	bLearned.waitRoute(t, borrowed, addr(hostV4(0)), 5*time.Second)
	bLearned.waitRoute(t, block6, addr(hostV6(0)), 5*time.Second)
	t.Logf("advertisement to learned on the other host: %v", time.Since(start))
	if r, _ := bLearned.route(block6); r.Peer != addr(hostV6(0)) {
		t.Errorf("IPv6 route learned from %s, want the IPv6 session %s", r.Peer, hostV6(0))
	}

	st, err := b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 || st[0].Type != PeerTypeMesh || st[0].State != "Established" {
		t.Errorf("status of b: %+v", st)
	}

	// Withdrawal.
	start = time.Now()
	if err := a.SetAdvertisements(ctx, []Advertisement{{Prefix: block, ExportToExternal: true}}); err != nil {
		t.Fatal(err)
	}
	bLearned.waitNoRoute(t, borrowed, 5*time.Second)
	bLearned.waitNoRoute(t, block6, 5*time.Second)
	t.Logf("withdrawal to gone on the other host: %v", time.Since(start))

	// Node a leaves: b's peers no longer include it, the sessions are torn
	// down and a's routes are gone from b at once (no graceful restart for
	// a deconfigured peer).
	if err := b.SetPeers(ctx, peersFor(t, PeerInput{NodeName: "b", Nodes: nodes[1:]})); err != nil {
		t.Fatal(err)
	}
	bLearned.waitNoRoute(t, block, 5*time.Second)
	waitState(t, a, addr(hostV4(1)), "Established", true, 10*time.Second)
	if st, err := b.Status(ctx); err != nil || len(st) != 0 {
		t.Errorf("b still has sessions: %+v %v", st, err)
	}
}

func TestNetnsRouteReflector(t *testing.T) {
	t.Parallel()
	f := newFabric(t, 3)
	ctx := context.Background()
	// Host 0 is the reflector; the mesh is off; one BGPPeer makes every
	// node peer with nodes labelled rr (and the reflector peers back).
	nodes := []api.Node{
		node("rr", hostV4(0)+"/24", "", labels("rr", "true"), rrCluster("224.0.0.1")),
		node("c1", hostV4(1)+"/24", ""),
		node("c2", hostV4(2)+"/24", ""),
	}
	in := PeerInput{
		Nodes:   nodes,
		Configs: []api.BGPConfiguration{defaultConfig(api.BGPConfigurationSpec{NodeToNodeMeshEnabled: boolp(false)})},
		Peers:   []api.BGPPeer{bgpPeer("peer-with-rr", api.BGPPeerSpec{PeerSelector: "rr == 'true'"})},
	}
	speakers := make([]*remoteSpeaker, 3)
	for i, n := range nodes {
		speakers[i] = startSpeaker(t, f, i, n.Name, Config{})
		in.NodeName = n.Name
		peers := peersFor(t, in)
		if i == 0 && (len(peers) != 2 || !peers[0].RRClient || !peers[1].RRClient) {
			t.Fatalf("reflector's peers: %+v", peers)
		}
		if i > 0 && len(peers) != 1 {
			t.Fatalf("client %s's peers: %+v (want only the reflector)", n.Name, peers)
		}
		if err := speakers[i].SetPeers(ctx, peers); err != nil {
			t.Fatal(err)
		}
	}
	c1, c2 := speakers[1], speakers[2]
	c2Learned, c1Learned := watchLearned(t, c2), watchLearned(t, c1)
	waitState(t, c1, addr(hostV4(0)), "Established", false, sessionTimeout)
	waitState(t, c2, addr(hostV4(0)), "Established", false, sessionTimeout)

	if err := c1.SetAdvertisements(ctx, []Advertisement{{Prefix: pfx("10.65.1.0/26")}}); err != nil {
		t.Fatal(err)
	}
	if err := c2.SetAdvertisements(ctx, []Advertisement{{Prefix: pfx("10.65.2.0/26")}}); err != nil {
		t.Fatal(err)
	}
	// Reflected: the next hop stays the originating client.
	c2Learned.waitRoute(t, pfx("10.65.1.0/26"), addr(hostV4(1)), 5*time.Second)
	c1Learned.waitRoute(t, pfx("10.65.2.0/26"), addr(hostV4(2)), 5*time.Second)
	if r, _ := c2Learned.route(pfx("10.65.1.0/26")); r.Peer != addr(hostV4(0)) {
		t.Errorf("c2 learned c1's block from %s, want the reflector %s", r.Peer, hostV4(0))
	}
	if err := c1.SetAdvertisements(ctx, nil); err != nil {
		t.Fatal(err)
	}
	c2Learned.waitNoRoute(t, pfx("10.65.1.0/26"), 5*time.Second)
}

func TestNetnsGracefulRestart(t *testing.T) {
	t.Parallel()
	f := newFabric(t, 2)
	ctx := context.Background()
	nodes := []api.Node{node("a", hostV4(0), ""), node("b", hostV4(1), "")}
	aPeers := peersFor(t, PeerInput{NodeName: "a", Nodes: nodes})
	kept, dropped := pfx("10.65.0.0/26"), pfx("10.65.0.64/26")

	startA := func(cfg Config, ads []Advertisement) *remoteSpeaker {
		a := startSpeaker(t, f, 0, "a", cfg)
		// Advertisements first, so the table is complete when sessions come up.
		if err := a.SetAdvertisements(ctx, ads); err != nil {
			t.Fatal(err)
		}
		if err := a.SetPeers(ctx, aPeers); err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := startA(Config{}, []Advertisement{{Prefix: kept}, {Prefix: dropped}})
	b := startSpeaker(t, f, 1, "b", Config{})
	if err := b.SetPeers(ctx, peersFor(t, PeerInput{NodeName: "b", Nodes: nodes})); err != nil {
		t.Fatal(err)
	}
	bLearned := watchLearned(t, b)
	bLearned.waitRoute(t, kept, addr(hostV4(0)), sessionTimeout)
	bLearned.waitRoute(t, dropped, addr(hostV4(0)), 5*time.Second)

	// a stops gracefully: b keeps a's routes while a is away.
	if err := a.Stop(ctx, true); err != nil {
		t.Fatal(err)
	}
	waitState(t, b, addr(hostV4(0)), "Established", true, 5*time.Second)
	if _, ok := bLearned.route(kept); !ok {
		t.Fatal("b dropped a's routes when a stopped gracefully")
	}

	// a comes back, restarting, and no longer has one of the prefixes: b
	// never loses the other, and drops the stale one once a has re-sent
	// its table (End-of-RIB).
	lost := make(chan string, 1)
	stopCheck := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopCheck:
				return
			case <-time.After(20 * time.Millisecond):
				if _, ok := bLearned.route(kept); !ok {
					select {
					case lost <- "b lost " + kept.String() + " while a restarted":
					default:
					}
				}
			}
		}
	}()
	a = startA(Config{Restarting: true, GracefulRestartTime: 4 * time.Second}, []Advertisement{{Prefix: kept}})
	waitState(t, b, addr(hostV4(0)), "Established", false, sessionTimeout)
	bLearned.waitNoRoute(t, dropped, 10*time.Second)
	close(stopCheck)
	select {
	case msg := <-lost:
		t.Fatal(msg)
	default:
	}
	if _, ok := bLearned.route(kept); !ok {
		t.Fatal("b lost a's route after the restart")
	}

	// a stops gracefully again and does not return: b drops its routes
	// when the restart time a announced (4 s) runs out, not before.
	down := time.Now()
	if err := a.Stop(ctx, true); err != nil {
		t.Fatal(err)
	}
	waitState(t, b, addr(hostV4(0)), "Established", true, 5*time.Second)
	if _, ok := bLearned.route(kept); !ok {
		t.Fatal("b dropped a's routes at once")
	}
	bLearned.waitNoRoute(t, kept, 15*time.Second)
	if d := time.Since(down); d < 3500*time.Millisecond {
		t.Errorf("routes dropped after %v, before the 4 s restart time", d)
	}
	t.Logf("stale routes dropped %v after a stopped (restart time 4s)", time.Since(down).Round(100*time.Millisecond))

	// A non-graceful stop withdraws at once.
	a = startA(Config{}, []Advertisement{{Prefix: kept}})
	bLearned.waitRoute(t, kept, addr(hostV4(0)), sessionTimeout)
	if err := a.Stop(ctx, false); err != nil {
		t.Fatal(err)
	}
	bLearned.waitNoRoute(t, kept, 2*time.Second)
}

// TestNetnsSpeakerPortAndStatus checks a non-default port and the status
// table of a peer that cannot be reached.
func TestNetnsSpeakerPortAndStatus(t *testing.T) {
	t.Parallel()
	f := newFabric(t, 2)
	ctx := context.Background()
	a := startSpeaker(t, f, 0, "a", Config{ListenPort: 1179})
	b := startSpeaker(t, f, 1, "b", Config{ListenPort: 1179})
	peer := func(i int) []Peer {
		return []Peer{{Address: addr(hostV4(i)), Port: 1179, ASN: 64512, Type: PeerTypeGlobal, SourceAddress: addr(hostV4(1 - i))}}
	}
	if err := a.SetPeers(ctx, peer(1)); err != nil {
		t.Fatal(err)
	}
	if err := b.SetPeers(ctx, append(peer(0), Peer{Address: addr("10.199.0.200"), ASN: 65000, Type: PeerTypeNode, External: true, SourceAddress: addr(hostV4(1))})); err != nil {
		t.Fatal(err)
	}
	waitState(t, b, addr(hostV4(0)), "Established", false, sessionTimeout)
	st, err := b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out fmt.Stringer = statusString(st)
	t.Logf("status of b:\n%s", out)
	if len(st) != 2 || st[1].Address != addr("10.199.0.200") || st[1].State == "Established" {
		t.Errorf("unexpected status %+v", st)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		// The listener is on the node address and port, nothing else.
		out, err := f.hosts[1].Exec("ss", "-Htln")
		if err != nil {
			return err
		}
		if want := hostV4(1) + ":1179"; !contains(out, want) || contains(out, "0.0.0.0:1179") || contains(out, ":179 ") {
			return fmt.Errorf("listening sockets:\n%s\nwant only %s", out, want)
		}
		return nil
	})
}

type statusString []PeerStatus

func (s statusString) String() string {
	var b strings.Builder
	_ = FormatStatus(&b, s)
	return b.String()
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
