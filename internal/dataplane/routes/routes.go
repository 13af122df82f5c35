package routes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/calico-docker/calico/internal/dataplane"
)

// defaultPriority is the metric the kernel gives a route added without one:
// IPv4 keeps 0, IPv6 stores 1024. Our routes always have it; a route of ours
// with another metric was not made by us the usual way and is removed.
func defaultPriority(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 0
	}
	return 1024
}

// applyRoutes diffs the desired routes against the kernel's routes with our
// protocol in the main table and applies the difference.
func (d *Driver) applyRoutes(ctx context.Context, desired []dataplane.Route, byName map[string]netlink.Link,
	pending map[string]bool, st *ApplyStats, ec *errCollector) {
	if d.programmed != nil {
		d.applyRoutesFast(ctx, desired, byName, pending, st, ec)
		return
	}
	errsBefore, conflictsBefore := len(ec.errs)+ec.extra, st.RouteConflicts
	wants := make(map[netip.Prefix]*netlink.Route, len(desired))
	progs := make(map[netip.Prefix]progRoute, len(desired))
	order := make([]netip.Prefix, 0, len(desired))
	defer func() {
		d.remember(progs, ctx.Err() == nil && len(ec.errs)+ec.extra == errsBefore && st.RouteConflicts == conflictsBefore)
	}()
	for _, r := range desired {
		if !r.Dst.IsValid() {
			ec.add(fmt.Errorf("route with invalid destination %v", r.Dst))
			continue
		}
		dst := r.Dst.Masked()
		if _, dup := wants[dst]; dup {
			continue
		}
		p, missing, err := wantRoute(r, dst, byName)
		if err != nil {
			ec.add(err)
			continue
		}
		if missing != "" {
			st.RoutesPending++
			pending[missing] = true
			continue
		}
		wants[dst] = p.netlinkRoute(dst, d.proto)
		progs[dst] = p
		order = append(order, dst)
	}

	have, err := d.ourRoutes()
	if err != nil {
		ec.add(err)
		return
	}
	done := make(map[netip.Prefix]bool, len(have))
	for dst, hs := range have {
		if ctx.Err() != nil {
			ec.add(ctx.Err())
			return
		}
		done[dst] = true
		w := wants[dst]
		if w == nil {
			for i := range hs {
				d.delRoute(&hs[i], st, ec)
			}
			continue
		}
		var same []netlink.Route // ours at dst with the default metric
		for i := range hs {
			if hs[i].Priority != defaultPriority(dst) {
				d.delRoute(&hs[i], st, ec)
				continue
			}
			same = append(same, hs[i])
		}
		kept := -1
		for i := range same {
			if routeMatches(w, &same[i]) {
				kept = i
				break
			}
		}
		switch {
		case kept >= 0:
			for i := range same {
				if i != kept {
					d.delRoute(&same[i], st, ec)
				}
			}
		case len(same) == 1:
			// One route of ours with the same key: replace it atomically.
			if err := d.h.RouteReplace(w); err != nil {
				ec.add(fmt.Errorf("replace route %s: %w", dst, err))
			} else {
				st.RoutesReplaced++
			}
		default:
			for i := range same {
				d.delRoute(&same[i], st, ec)
			}
			d.addRoute(dst, w, st, ec)
		}
	}
	for _, dst := range order {
		if done[dst] {
			continue
		}
		if ctx.Err() != nil {
			ec.add(ctx.Err())
			return
		}
		d.addRoute(dst, wants[dst], st, ec)
	}
}

func (d *Driver) addRoute(dst netip.Prefix, r *netlink.Route, st *ApplyStats, ec *errCollector) {
	err := d.h.RouteAdd(r)
	switch {
	case err == nil:
		st.RoutesAdded++
	case errors.Is(err, unix.EEXIST):
		// Someone else's route holds this destination; it is not ours to touch.
		st.RouteConflicts++
		d.log.Warn("destination held by a route of another protocol; leaving it", "dst", dst)
	default:
		ec.add(fmt.Errorf("add route %s: %w", dst, err))
	}
}

func (d *Driver) delRoute(r *netlink.Route, st *ApplyStats, ec *errCollector) {
	err := d.h.RouteDel(r)
	switch {
	case err == nil:
		st.RoutesDeleted++
	case errors.Is(err, unix.ESRCH):
		// Already gone (its interface was removed meanwhile).
	default:
		ec.add(fmt.Errorf("delete route %s: %w", r.Dst, err))
	}
}

// ourRoutes returns our routes in the main table, both families, by destination.
func (d *Driver) ourRoutes() (map[netip.Prefix][]netlink.Route, error) {
	out := make(map[netip.Prefix][]netlink.Route)
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := dump(func() ([]netlink.Route, error) { return d.dump.routes(fam, unix.RT_TABLE_MAIN, d.proto) })
		if err != nil {
			return nil, fmt.Errorf("list routes: %w", err)
		}
		for _, r := range rs {
			dst, ok := routeDst(r)
			if !ok {
				continue
			}
			out[dst] = append(out[dst], r)
		}
	}
	return out, nil
}

// routeDst is a kernel route's destination as a prefix (nil Dst = default route).
func routeDst(r netlink.Route) (netip.Prefix, bool) {
	if r.Dst == nil {
		switch r.Family {
		case netlink.FAMILY_V4:
			return netip.PrefixFrom(netip.IPv4Unspecified(), 0), true
		case netlink.FAMILY_V6:
			return netip.PrefixFrom(netip.IPv6Unspecified(), 0), true
		}
		return netip.Prefix{}, false
	}
	return ipNetToPrefix(r.Dst)
}

func ipNetToPrefix(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	ones, bits := n.Mask.Size()
	if bits != a.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones).Masked(), true
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// toNetlink builds the kernel route for r. missing names an interface the
// route needs that does not exist yet.
func (d *Driver) toNetlink(r dataplane.Route, dst netip.Prefix, byName map[string]netlink.Link) (nr *netlink.Route, missing string, err error) {
	p, missing, err := wantRoute(r, dst, byName)
	if err != nil || missing != "" {
		return nil, missing, err
	}
	return p.netlinkRoute(dst, d.proto), "", nil
}

// routeMatches says whether the kernel route h is what w asks for. A route
// without a device in w (RouteVia) accepts whatever device the kernel chose.
func routeMatches(w, h *netlink.Route) bool {
	if h.Type != w.Type || len(h.MultiPath) > 0 {
		return false
	}
	if w.Type == unix.RTN_BLACKHOLE {
		return true
	}
	if !h.Gw.Equal(w.Gw) {
		return false
	}
	if w.LinkIndex != 0 && h.LinkIndex != w.LinkIndex {
		return false
	}
	if h.Scope != w.Scope {
		return false
	}
	onlink := int(netlink.FLAG_ONLINK)
	return h.Flags&onlink == w.Flags&onlink
}
