package bgp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/testutil"
)

// sessionTimeout bounds waiting for a session: the first connection attempt
// comes after up to 2 s, retries every ConnectRetry (1-3 s in tests).
const sessionTimeout = 20 * time.Second

// learnedView drains a speaker's Learned channel and keeps the latest set,
// so tests can poll it (the channel only carries changes).
type learnedView struct {
	mu     sync.Mutex
	routes []LearnedRoute
	got    bool
}

func watchLearned(t testing.TB, s Speaker) *learnedView {
	v := &learnedView{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case r, ok := <-s.Learned():
				if !ok {
					return
				}
				v.mu.Lock()
				v.routes, v.got = r, true
				v.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return v
}

func (v *learnedView) get() ([]LearnedRoute, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.routes), v.got
}

// route returns the learned route for a prefix.
func (v *learnedView) route(p netip.Prefix) (LearnedRoute, bool) {
	rs, _ := v.get()
	for _, r := range rs {
		if r.Prefix == p {
			return r, true
		}
	}
	return LearnedRoute{}, false
}

// waitRoute waits until the prefix is learned with the given next hop.
func (v *learnedView) waitRoute(t testing.TB, p netip.Prefix, nextHop netip.Addr, timeout time.Duration) {
	t.Helper()
	testutil.Eventually(t, timeout, func() error {
		r, ok := v.route(p)
		if !ok {
			all, _ := v.get()
			return fmt.Errorf("%s not learned (learned: %v)", p, all)
		}
		if r.NextHop != nextHop {
			return fmt.Errorf("%s learned via %s, want %s", p, r.NextHop, nextHop)
		}
		return nil
	})
}

// waitNoRoute waits until the prefix is not learned.
func (v *learnedView) waitNoRoute(t testing.TB, p netip.Prefix, timeout time.Duration) {
	t.Helper()
	testutil.Eventually(t, timeout, func() error {
		if r, ok := v.route(p); ok {
			return fmt.Errorf("%s still learned: %+v", p, r)
		}
		return nil
	})
}

// waitState waits until the session with peer is (or, with not set, is
// no longer) in the given state.
func waitState(t testing.TB, s Speaker, peer netip.Addr, state string, not bool, timeout time.Duration) {
	t.Helper()
	testutil.Eventually(t, timeout, func() error {
		st, err := s.Status(context.Background())
		if err != nil {
			return err
		}
		for _, p := range st {
			if p.Address == peer {
				if (p.State == state) != not {
					return nil
				}
				return fmt.Errorf("session with %s is %s %s", peer, p.State, p.Info)
			}
		}
		if not {
			return nil
		}
		return fmt.Errorf("no session with %s configured (status %+v)", peer, st)
	})
}

// freePort returns a TCP port free on the given loopback address.
func freePort(t testing.TB, host string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
