package bgp

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"
)

func testLogger(t testing.TB, name string) *slog.Logger {
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("speaker", name)
}

// TestGoBGPLoopback runs two speakers in this process on 127.0.0.1 and
// 127.0.0.2 (all of 127/8 is local), without root: session, advertisement,
// withdrawal, our own prefix never learned, and peer removal.
func TestGoBGPLoopback(t *testing.T) {
	ctx := context.Background()
	aAddr, bAddr := addr("127.0.0.1"), addr("127.0.0.2")
	aPort, bPort := freePort(t, aAddr.String()), freePort(t, bAddr.String())

	a := NewGoBGP(Config{IPv4Address: aAddr, ListenPort: aPort, ConnectRetry: time.Second, Logger: testLogger(t, "a")})
	b := NewGoBGP(Config{IPv4Address: bAddr, ListenPort: bPort, ConnectRetry: time.Second, Logger: testLogger(t, "b")})
	for _, s := range []*GoBGP{a, b} {
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Stop(context.Background(), false) })
	}
	aLearned, bLearned := watchLearned(t, a), watchLearned(t, b)

	if err := a.SetPeers(ctx, []Peer{{Address: bAddr, Port: uint16(bPort), ASN: 64512, Type: PeerTypeMesh, SourceAddress: aAddr}}); err != nil {
		t.Fatal(err)
	}
	if err := b.SetPeers(ctx, []Peer{{Address: aAddr, Port: uint16(aPort), ASN: 64512, Type: PeerTypeMesh, SourceAddress: bAddr, Passive: true}}); err != nil {
		t.Fatal(err)
	}
	waitState(t, a, bAddr, "Established", false, sessionTimeout)
	waitState(t, b, aAddr, "Established", false, sessionTimeout)

	block, borrowed := pfx("10.65.0.0/26"), pfx("10.66.0.7/32")
	if err := a.SetAdvertisements(ctx, []Advertisement{{Prefix: block, ExportToExternal: true}, {Prefix: borrowed}}); err != nil {
		t.Fatal(err)
	}
	// b also advertises a's block: a must never report it as learned.
	if err := b.SetAdvertisements(ctx, []Advertisement{{Prefix: pfx("10.65.1.0/26")}, {Prefix: block}}); err != nil {
		t.Fatal(err)
	}
	bLearned.waitRoute(t, borrowed, aAddr, 5*time.Second)
	aLearned.waitRoute(t, pfx("10.65.1.0/26"), bAddr, 5*time.Second)
	if r, ok := aLearned.route(block); ok {
		t.Fatalf("a learned its own block: %+v", r)
	}
	if r, ok := bLearned.route(block); ok {
		t.Fatalf("b learned a prefix it advertises itself: %+v", r)
	}
	// When b stops advertising the block, a's path shows up at b.
	if err := b.SetAdvertisements(ctx, []Advertisement{{Prefix: pfx("10.65.1.0/26")}}); err != nil {
		t.Fatal(err)
	}
	bLearned.waitRoute(t, block, aAddr, 5*time.Second)

	if err := a.SetAdvertisements(ctx, []Advertisement{{Prefix: block, ExportToExternal: true}}); err != nil {
		t.Fatal(err)
	}
	bLearned.waitNoRoute(t, borrowed, 5*time.Second)
	if _, ok := bLearned.route(block); !ok {
		t.Fatal("withdrawing one prefix withdrew the other")
	}

	st, err := a.Status(ctx)
	if err != nil || len(st) != 1 || st[0].Type != PeerTypeMesh || st[0].Since.IsZero() {
		t.Fatalf("status %+v, %v", st, err)
	}

	// Removing the peer tears the session down and withdraws its routes.
	if err := b.SetPeers(ctx, nil); err != nil {
		t.Fatal(err)
	}
	waitState(t, a, bAddr, "Established", true, 10*time.Second)
	bLearned.waitNoRoute(t, block, 5*time.Second)
	aLearned.waitNoRoute(t, pfx("10.65.1.0/26"), 5*time.Second)
}
