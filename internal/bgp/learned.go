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
// Recording a change is cheap (a map update and a wake-up); building and
// sending the sorted set is done by publish, which run calls whenever
// something changed. A burst of changes (a peer sending a thousand routes)
// thus costs one set per wake-up, not one per route.
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
	dirty     bool
	kick      chan struct{}
	out       chan []LearnedRoute
}

func newLearnedTable() *learnedTable {
	return &learnedTable{
		best: map[netip.Prefix]LearnedRoute{},
		own:  map[netip.Prefix]bool{},
		kick: make(chan struct{}, 1),
		out:  make(chan []LearnedRoute, 1),
	}
}

// run publishes after every change until done is closed.
func (t *learnedTable) run(done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-t.kick:
			t.publish()
		}
	}
}

// apply records changes of best paths.
func (t *learnedTable) apply(changes []bestPath) {
	t.mu.Lock()
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
	t.dirty = true
	t.mu.Unlock()
	t.wake()
}

// setOwn replaces the set of prefixes this node advertises.
func (t *learnedTable) setOwn(prefixes []netip.Prefix) {
	t.mu.Lock()
	clear(t.own)
	for _, p := range prefixes {
		t.own[p.Masked()] = true
	}
	// Before the first set from the RIB there is nothing to correct.
	t.dirty = t.dirty || t.published
	t.mu.Unlock()
	t.wake()
}

func (t *learnedTable) wake() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// publish sends the current set if it differs from the last one sent. Only
// one goroutine may call it (run, or a test): it alone fills the channel,
// so after draining it the send cannot block.
func (t *learnedTable) publish() {
	t.mu.Lock()
	if !t.dirty {
		t.mu.Unlock()
		return
	}
	t.dirty = false
	routes := make([]LearnedRoute, 0, len(t.best))
	for p, r := range t.best {
		if !t.own[p] {
			routes = append(routes, r)
		}
	}
	slices.SortFunc(routes, compareLearned)
	if t.published && slices.Equal(routes, t.last) {
		t.mu.Unlock()
		return
	}
	t.last = routes
	t.published = true
	t.mu.Unlock()
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
