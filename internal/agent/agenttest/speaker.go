package agenttest

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/calico-docker/calico/internal/bgp"
)

// Speaker is a fake bgp.Speaker: it records what the agent configures and
// delivers the learned routes the test gives it (Learn).
type Speaker struct {
	mu      sync.Mutex
	cfg     bgp.Config
	started int
	stopped bool
	peers   []bgp.Peer
	ads     []bgp.Advertisement
	learned chan []bgp.LearnedRoute
	// StartErr, when set, makes Start fail (a port already bound).
	StartErr error
}

// NewSpeaker returns a fake speaker; Factory hands it to the agent.
func NewSpeaker() *Speaker {
	return &Speaker{learned: make(chan []bgp.LearnedRoute, 1)}
}

// Factory is for agent.Deps.NewSpeaker: every speaker the agent makes is s.
func (s *Speaker) Factory() func(bgp.Config) bgp.Speaker {
	return func(c bgp.Config) bgp.Speaker {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.cfg = c
		return s
	}
}

// Start implements bgp.Speaker.
func (s *Speaker) Start(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.StartErr != nil {
		return s.StartErr
	}
	s.started++
	s.stopped = false
	return nil
}

// SetPeers implements bgp.Speaker.
func (s *Speaker) SetPeers(_ context.Context, peers []bgp.Peer) error {
	return s.set(func() { s.peers = slices.Clone(peers) })
}

// SetAdvertisements implements bgp.Speaker.
func (s *Speaker) SetAdvertisements(_ context.Context, ads []bgp.Advertisement) error {
	return s.set(func() { s.ads = slices.Clone(ads) })
}

// set runs f under the lock if the speaker runs, as the real one refuses
// configuration before Start and after Stop.
func (s *Speaker) set(f func()) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started == 0 || s.stopped {
		return errors.New("speaker not running")
	}
	f()
	return nil
}

// Learned implements bgp.Speaker.
func (s *Speaker) Learned() <-chan []bgp.LearnedRoute { return s.learned }

// Learn makes the speaker report routes as its full set of best paths
// (replacing an undelivered earlier set, as the real one coalesces).
func (s *Speaker) Learn(routes []bgp.LearnedRoute) {
	for {
		select {
		case s.learned <- routes:
			return
		default:
		}
		select {
		case <-s.learned:
		default:
		}
	}
}

// Status implements bgp.Speaker.
func (s *Speaker) Status(context.Context) ([]bgp.PeerStatus, error) { return nil, nil }

// Stop implements bgp.Speaker.
func (s *Speaker) Stop(context.Context, bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	return nil
}

// Started reports how often the speaker was started and the config of the
// last one the agent made.
func (s *Speaker) Started() (int, bgp.Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started, s.cfg
}
