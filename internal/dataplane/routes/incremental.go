package routes

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/calico-docker/calico/internal/dataplane"
)

// Routes are applied incrementally: after an Apply that read the kernel's
// routes (the first one, the one after a Resync, and any after a failure or
// a conflict) and left every desired route in place, the driver remembers
// what it programmed and later Applies diff the desired routes against that
// memory, without dumping the kernel's routing table. A change costs the
// netlink calls for the routes that changed plus one pass over the desired
// routes in memory (no allocation per unchanged route). Drift (a route of
// ours removed or changed by someone else) is found by the periodic Resync,
// which forgets the memory so that the next Apply reads the kernel again.

// progRoute is a route of ours as programmed, without its destination.
type progRoute struct {
	typ    uint8 // unix.RTN_*
	onlink bool
	scope  netlink.Scope
	link   int
	gw     netip.Addr
	// gen is the Apply that last confirmed the route (see applyRoutesFast).
	gen uint64
}

func (p progRoute) same(q progRoute) bool {
	return p.typ == q.typ && p.onlink == q.onlink && p.scope == q.scope && p.link == q.link && p.gw == q.gw
}

// wantRoute is the kernel form of r at dst. missing names an interface the
// route needs that does not exist yet.
func wantRoute(r dataplane.Route, dst netip.Prefix, byName map[string]netlink.Link) (p progRoute, missing string, err error) {
	p = progRoute{typ: unix.RTN_UNICAST, scope: netlink.SCOPE_UNIVERSE}
	switch r.Type {
	case dataplane.RouteLocal:
		if r.Iface == "" {
			return p, "", fmt.Errorf("local route %s has no interface", dst)
		}
		l, ok := byName[r.Iface]
		if !ok {
			return p, r.Iface, nil
		}
		p.link = l.Attrs().Index
		if dst.Addr().Is4() {
			// IPv6 has no route scopes; the kernel reports universe.
			p.scope = netlink.SCOPE_LINK
		}
	case dataplane.RouteBlackhole:
		p.typ = unix.RTN_BLACKHOLE
	case dataplane.RouteVia:
		if !r.Gateway.IsValid() {
			return p, "", fmt.Errorf("route %s via: no gateway", dst)
		}
		p.gw = r.Gateway
	case dataplane.RouteVXLAN:
		if !r.Gateway.IsValid() {
			return p, "", fmt.Errorf("vxlan route %s: no gateway", dst)
		}
		iface := r.Iface
		if iface == "" {
			iface = VXLANDevice
		}
		l, ok := byName[iface]
		if !ok {
			return p, iface, nil
		}
		p.link = l.Attrs().Index
		p.gw = r.Gateway
		p.onlink = true
	default:
		return p, "", fmt.Errorf("route %s: unknown type %d", dst, r.Type)
	}
	return p, "", nil
}

// netlinkRoute is p at dst as the netlink library takes it.
func (p progRoute) netlinkRoute(dst netip.Prefix, proto netlink.RouteProtocol) *netlink.Route {
	nr := &netlink.Route{
		Dst:       prefixToIPNet(dst),
		Protocol:  proto,
		Table:     unix.RT_TABLE_MAIN,
		Type:      int(p.typ),
		Scope:     p.scope,
		LinkIndex: p.link,
	}
	if p.gw.IsValid() {
		nr.Gw = p.gw.AsSlice()
	}
	if p.onlink {
		nr.Flags = int(netlink.FLAG_ONLINK)
	}
	return nr
}

// remember records the routes a full apply left in place (wants), or
// forgets everything when the apply did not get there.
func (d *Driver) remember(wants map[netip.Prefix]progRoute, complete bool) {
	if !complete {
		d.programmed = nil
		return
	}
	d.gen++
	for dst, p := range wants {
		p.gen = d.gen
		wants[dst] = p
	}
	d.programmed = wants
}

// applyRoutesFast diffs desired against d.programmed and applies the
// difference. Any failure or conflict makes the next Apply a full one.
func (d *Driver) applyRoutesFast(ctx context.Context, desired []dataplane.Route, byName map[string]netlink.Link,
	pending map[string]bool, st *ApplyStats, ec *errCollector) {
	d.gen++
	gen := d.gen
	ok := true
	for _, r := range desired {
		if !r.Dst.IsValid() {
			ec.add(fmt.Errorf("route with invalid destination %v", r.Dst))
			continue
		}
		dst := r.Dst.Masked()
		have, known := d.programmed[dst]
		if known && have.gen == gen {
			continue // a duplicate destination: the first one wins
		}
		w, missing, err := wantRoute(r, dst, byName)
		if err != nil {
			ec.add(err)
			continue
		}
		if missing != "" {
			st.RoutesPending++
			pending[missing] = true
			continue // left unconfirmed: removed below if it was programmed
		}
		w.gen = gen
		switch {
		case known && have.same(w):
		case known:
			if err := d.h.RouteReplace(w.netlinkRoute(dst, d.proto)); err != nil {
				ec.add(fmt.Errorf("replace route %s: %w", dst, err))
				ok = false
				continue
			}
			st.RoutesReplaced++
		default:
			before := st.RouteConflicts + len(ec.errs) + ec.extra
			d.addRoute(dst, w.netlinkRoute(dst, d.proto), st, ec)
			if st.RouteConflicts+len(ec.errs)+ec.extra != before {
				ok = false
				continue
			}
		}
		d.programmed[dst] = w
	}
	for dst, p := range d.programmed {
		if p.gen == gen {
			continue
		}
		if ctx.Err() != nil {
			ec.add(ctx.Err())
			ok = false
			break
		}
		before := len(ec.errs) + ec.extra
		d.delRoute(p.netlinkRoute(dst, d.proto), st, ec)
		if len(ec.errs)+ec.extra != before {
			ok = false
			continue
		}
		delete(d.programmed, dst)
	}
	if !ok {
		d.programmed = nil
	}
}
