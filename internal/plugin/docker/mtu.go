package docker

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/nsexec"
	"github.com/calico-docker/calico/internal/resources"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// MTU bounds and encapsulation overheads (Calico's: VXLAN 50 over IPv4, 70
// over IPv6).
const (
	minMTU        = 68
	maxMTU        = 65535
	defaultMTU    = 1500
	vxlanOverhead = 50
	vxlan6Over    = 70
	// mtuCacheTTL: detection reads routes, links and pools; Join uses a
	// recent answer so that container start stays fast.
	mtuCacheTTL = 30 * time.Second
)

// vethMTU is the MTU of a new veth: the network's -o mtu, else Config.MTU,
// else the MTU of the host's uplink (the interface of its default route)
// minus the encapsulation overhead when an enabled IPPool uses VXLAN.
func (s *Server) vethMTU(ctx context.Context, networkMTU int) (int, error) {
	if networkMTU > 0 {
		return networkMTU, nil
	}
	if s.cfg.MTU > 0 {
		return s.cfg.MTU, nil
	}
	s.mtuMu.Lock()
	defer s.mtuMu.Unlock()
	if !s.mtuAt.IsZero() && s.now().Sub(s.mtuAt) < mtuCacheTTL {
		return s.mtuVal, s.mtuErr
	}
	uplink, err := uplinkMTU(s.cfg.NetNS)
	if err != nil {
		return 0, err
	}
	over, err := encapOverhead(ctx, s.store)
	if err != nil {
		return 0, err
	}
	s.mtuVal, s.mtuErr, s.mtuAt = max(uplink-over, minMTU), nil, s.now()
	return s.mtuVal, nil
}

// nsHandle opens a netlink handle in ns: "" is the current namespace,
// anything else a namespace path (as workload takes it). NewHandleAt switches
// its thread for a moment, so it runs under nsexec.Guard.
func nsHandle(ns string) (*netlink.Handle, error) {
	if ns == "" {
		return netlink.NewHandle()
	}
	var h *netlink.Handle
	err := nsexec.Guard(func() error {
		nsh, err := netns.GetFromPath(ns)
		if err != nil {
			return fmt.Errorf("open network namespace %s: %w", ns, err)
		}
		defer nsh.Close()
		h, err = netlink.NewHandleAt(nsh)
		return err
	})
	if err != nil {
		if h != nil {
			h.Close()
		}
		return nil, err
	}
	return h, nil
}

// uplinkMTU is the MTU of the interface of the default route (IPv4 first),
// or 1500 when there is none.
func uplinkMTU(ns string) (int, error) {
	h, err := nsHandle(ns)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := nsexec.RetryValue(func() ([]netlink.Route, error) { return h.RouteList(nil, fam) })
		if err != nil {
			return 0, fmt.Errorf("list routes: %w", err)
		}
		for _, r := range routes {
			if r.Dst != nil {
				if ones, _ := r.Dst.Mask.Size(); ones != 0 {
					continue
				}
			}
			idx := r.LinkIndex
			if idx == 0 && len(r.MultiPath) > 0 {
				idx = r.MultiPath[0].LinkIndex
			}
			if idx == 0 {
				continue
			}
			l, err := h.LinkByIndex(idx)
			if err != nil {
				continue
			}
			if m := l.Attrs().MTU; m > 0 {
				return m, nil
			}
		}
	}
	return defaultMTU, nil
}

// encapOverhead is the largest overhead of the enabled pools' encapsulation.
func encapOverhead(ctx context.Context, st datastore.Store) (int, error) {
	pools, _, err := resources.New(st).List(ctx, api.KindIPPool, "")
	if err != nil && !resources.Undecodable(err) {
		return 0, fmt.Errorf("list ippools: %w", err)
	}
	over := 0
	for _, r := range pools {
		p := r.(*api.IPPool)
		if p.Spec.Disabled {
			continue
		}
		if m := p.Spec.VXLANMode; m == api.EncapAlways || m == api.EncapCrossSubnet {
			o := vxlanOverhead
			if c, err := netip.ParsePrefix(p.Spec.CIDR); err == nil && c.Addr().Is6() {
				o = vxlan6Over
			}
			over = max(over, o)
		}
	}
	return over, nil
}

// hasAddr checks that a host interface carries ip.
func hasAddr(iface, ns string, ip netip.Addr) error {
	h, err := nsHandle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(iface)
	if err != nil {
		return fmt.Errorf("find %s: %w", iface, err)
	}
	addrs, err := nsexec.RetryValue(func() ([]netlink.Addr, error) { return h.AddrList(l, netlink.FAMILY_ALL) })
	if err != nil {
		return fmt.Errorf("list the addresses of %s: %w", iface, err)
	}
	for _, a := range addrs {
		if got, ok := netip.AddrFromSlice(a.IP); ok && got.Unmap() == ip {
			return nil
		}
	}
	return fmt.Errorf("%s has no address %s", iface, ip)
}
