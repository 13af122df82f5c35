package bgp

import (
	"net/netip"
	"slices"
	"sync"
)

// bestPath is one change of the best path to a prefix, as the speaker's RIB
// reports it.
type bestPath struct {
	Prefix  netip.Prefix
	NextHop netip.Addr
	// Peer is the peer the path came from; invalid for a path this node
	// originated.
	Peer netip.Addr
	// Withdrawn: the prefix has no best path any more.
	Withdrawn bool
}

// learnedTable keeps the best path per prefix learned from peers and
// publishes the full set, minus this node's own prefixes, on a channel that
// holds only the latest set.
//
// It keeps paths for prefixes we also advertise (when the peer's path is the
// best one), and hides them only when publishing: if we stop advertising the
// prefix, the peer's path shows up without waiting for the RIB to change.
type learnedTable struct {
	mu        sync.Mutex
	best      map[netip.Prefix]LearnedRoute
	own       map[netip.Prefix]bool
	last      []LearnedRoute
	published bool
	out       chan []LearnedRoute
}

func newLearnedTable() *learnedTable {
	return &learnedTable{
		best: map[netip.Prefix]LearnedRoute{},
		own:  map[netip.Prefix]bool{},
		out:  make(chan []LearnedRoute, 1),
	}
}

// apply records changes of best paths and publishes the result.
func (t *learnedTable) apply(changes []bestPath) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range changes {
		p := c.Prefix.Masked()
		// A best path we originated replaces whatever a peer sent: the
		// prefix is no longer reachable through that peer as far as route
		// selection is concerned.
		if c.Withdrawn || !c.Peer.IsValid() {
			delete(t.best, p)
			continue
		}
		t.best[p] = LearnedRoute{Prefix: p, NextHop: c.NextHop, Peer: c.Peer}
	}
	t.publishLocked()
}

// setOwn replaces the set of prefixes this node advertises and publishes the
// result.
func (t *learnedTable) setOwn(prefixes []netip.Prefix) {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.own)
	for _, p := range prefixes {
		t.own[p.Masked()] = true
	}
	if t.published {
		t.publishLocked()
	}
}

// current returns the set as last published.
func (t *learnedTable) current() []LearnedRoute {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.last)
}

func (t *learnedTable) publishLocked() {
	routes := make([]LearnedRoute, 0, len(t.best))
	for p, r := range t.best {
		if !t.own[p] {
			routes = append(routes, r)
		}
	}
	slices.SortFunc(routes, compareLearned)
	if t.published && slices.Equal(routes, t.last) {
		return
	}
	t.last = routes
	t.published = true
	// Only writers (holding t.mu) fill the channel, so after draining it
	// the send cannot block.
	select {
	case <-t.out:
	default:
	}
	t.out <- slices.Clone(routes)
}

func compareLearned(a, b LearnedRoute) int {
	if c := comparePrefix(a.Prefix, b.Prefix); c != 0 {
		return c
	}
	if c := a.NextHop.Compare(b.NextHop); c != 0 {
		return c
	}
	return a.Peer.Compare(b.Peer)
}

// comparePrefix orders by address, then by prefix length: IPv4 before IPv6.
func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
