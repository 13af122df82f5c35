package bgp

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkConvergence1000 measures, between two speakers on loopback, the
// time from SetAdvertisements of 1,000 /32s (a host full of containers) to
// the other speaker's Learned holding all of them, and back to none after
// withdrawing them.
func BenchmarkConvergence1000(b *testing.B) {
	const n = 1000
	ctx := context.Background()
	aAddr, bAddr := addr("127.0.0.1"), addr("127.0.0.2")
	aPort, bPort := freePort(b, aAddr.String()), freePort(b, bAddr.String())
	x := NewGoBGP(Config{IPv4Address: aAddr, ListenPort: aPort, ConnectRetry: time.Second, Logger: testLogger(b, "a")})
	y := NewGoBGP(Config{IPv4Address: bAddr, ListenPort: bPort, ConnectRetry: time.Second, Logger: testLogger(b, "b")})
	for _, s := range []*GoBGP{x, y} {
		if err := s.Start(ctx); err != nil {
			b.Fatal(err)
		}
		defer func() { _ = s.Stop(context.Background(), false) }()
	}
	if err := x.SetPeers(ctx, []Peer{{Address: bAddr, Port: uint16(bPort), ASN: 64512, SourceAddress: aAddr}}); err != nil {
		b.Fatal(err)
	}
	if err := y.SetPeers(ctx, []Peer{{Address: aAddr, Port: uint16(aPort), ASN: 64512, SourceAddress: bAddr, Passive: true}}); err != nil {
		b.Fatal(err)
	}
	waitState(b, y, aAddr, "Established", false, sessionTimeout)

	ads := make([]Advertisement, n)
	for i := range ads {
		ads[i] = Advertisement{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 65, byte(i >> 8), byte(i)}), 32)}
	}
	waitCount := func(want int) {
		timeout := time.After(30 * time.Second)
		for {
			select {
			case r := <-y.Learned():
				if len(r) == want {
					return
				}
			case <-timeout:
				b.Fatalf("learned set never reached %d routes", want)
			}
		}
	}
	var announce, withdraw time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := x.SetAdvertisements(ctx, ads); err != nil {
			b.Fatal(err)
		}
		waitCount(n)
		announce += time.Since(start)
		start = time.Now()
		if err := x.SetAdvertisements(ctx, nil); err != nil {
			b.Fatal(err)
		}
		waitCount(0)
		withdraw += time.Since(start)
	}
	b.ReportMetric(float64(announce.Milliseconds())/float64(b.N), "ms-announce-1000")
	b.ReportMetric(float64(withdraw.Milliseconds())/float64(b.N), "ms-withdraw-1000")
}
