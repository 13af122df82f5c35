package agent

import (
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/dataplane/routes"
	"github.com/calico-docker/calico/internal/nsexec"
)

// staleRouteGrace is how long a restarted agent keeps the BGP-learned routes
// a previous instance left in the kernel while its own speaker re-learns
// them. Without it the first apply after a restart would delete them and cut
// cross-host traffic until BGP converged (the agent-side half of graceful
// restart; the peers keep our routes by BGP graceful restart).
const staleRouteGrace = 90 * time.Second

// kernelLearnedRoutes reads the routes with our protocol that go via a
// gateway and not over VXLAN: what a previous instance learned from BGP.
func kernelLearnedRoutes(netnsPath string) ([]dataplane.Route, error) {
	h, err := nsexec.Handle(netnsPath)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var out []dataplane.Route
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := h.RouteListFiltered(fam, &netlink.Route{Protocol: netlink.RouteProtocol(routes.DefaultProtocol)}, netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			if r.Dst == nil || r.Gw == nil {
				continue
			}
			if l, err := h.LinkByIndex(r.LinkIndex); err == nil && l.Attrs().Name == routes.VXLANDevice {
				continue
			}
			dst, ok1 := netip.AddrFromSlice(r.Dst.IP)
			gw, ok2 := netip.AddrFromSlice(r.Gw)
			if !ok1 || !ok2 {
				continue
			}
			ones, _ := r.Dst.Mask.Size()
			out = append(out, dataplane.Route{
				Dst: netip.PrefixFrom(dst.Unmap(), ones), Type: dataplane.RouteVia, Gateway: gw.Unmap(),
			})
		}
	}
	return out, nil
}

// learnedRoutes is what the apply loop merges into the desired routes: the
// speaker's current best paths and, during the grace period after a restart,
// the routes the previous instance had learned that the speaker has not
// (re)learned yet.
func (a *Agent) learnedRoutes() []dataplane.Route {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.stale) == 0 || time.Now().After(a.staleUntil) {
		a.stale = nil
		return a.learned
	}
	out := append([]dataplane.Route(nil), a.learned...)
	have := make(map[netip.Prefix]bool, len(out))
	for _, r := range out {
		have[r.Dst] = true
	}
	for _, r := range a.stale {
		if !have[r.Dst] {
			out = append(out, r)
		}
	}
	return out
}
