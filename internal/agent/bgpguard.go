package agent

import (
	"net/netip"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/bgp"
	"github.com/calico-docker/calico/internal/dataplane"
)

// hostRoutesMaxAge bounds how long the host's own routes, read from the
// kernel for the BGP route guard, are reused before being read again.
const hostRoutesMaxAge = 10 * time.Second

// guardState is the apply loop's memory for the BGP route guard; only the
// apply loop goroutine touches it.
type guardState struct {
	hostRoutes []netip.Prefix
	readAt     time.Time
	refused    map[netip.Prefix]string // logged refusals, to log each once
}

// guardLearned drops the learned routes that bgp.RouteGuard refuses, for
// the current datastore snapshot and the host's own routes. Refusals are
// logged once each (and again if the reason changes).
func (a *Agent) guardLearned(learned []dataplane.Route) []dataplane.Route {
	if len(learned) == 0 {
		return learned
	}
	g := &a.guard
	if g.readAt.IsZero() || a.clock.Since(g.readAt) > hostRoutesMaxAge {
		hr, err := a.rt.HostRoutes()
		if err != nil {
			// Without the host's routes every route containing a node's
			// address is refused: failing closed.
			a.log.Warn("bgp route guard: cannot read the host's routes", "err", err)
		} else {
			g.hostRoutes, g.readAt = hr, a.clock.Now()
		}
	}
	in := a.guardInput()
	in.HostRoutes = g.hostRoutes
	guard := bgp.NewRouteGuard(in)
	out := make([]dataplane.Route, 0, len(learned))
	refused := map[netip.Prefix]string{}
	for _, r := range learned {
		ok, why := guard.Check(bgp.LearnedRoute{Prefix: r.Dst, NextHop: r.Gateway})
		if ok {
			out = append(out, r)
			continue
		}
		refused[r.Dst] = why
		if g.refused[r.Dst] != why {
			a.log.Warn("refusing a BGP route", "prefix", r.Dst, "nextHop", r.Gateway, "reason", why)
		}
	}
	g.refused = refused
	return out
}

// guardInput collects the guard's inputs from the datastore snapshot.
func (a *Agent) guardInput() bgp.GuardInput {
	in := bgp.GuardInput{Node: a.cfg.NodeName}
	s := a.calc
	s.mu.Lock()
	nodes := make([]api.Node, 0, len(s.nodes))
	for _, n := range s.nodes {
		nodes = append(nodes, *n)
	}
	for _, p := range s.pools {
		if c, err := netip.ParsePrefix(p.Spec.CIDR); err == nil {
			in.Pools = append(in.Pools, c.Masked())
		}
	}
	for c, n := range s.blocks {
		in.Blocks = append(in.Blocks, bgp.GuardBlock{CIDR: c, Node: n, Holders: s.holders[c]})
	}
	s.mu.Unlock()
	in.NodeAddrs = bgp.NodeAddrs(nodes)
	if a.bgp != nil {
		in.PeerAddrs = a.bgp.peerAddresses()
	}
	return in
}
