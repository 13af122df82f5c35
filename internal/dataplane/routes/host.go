package routes

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/nsexec"
)

// What the agent needs to know about the host's own network, read here so
// that kernel access stays inside the driver (and a fake driver can answer
// it in tests that run without root). Each call opens its own handle: they
// run rarely, and never share a socket with a concurrent Apply.

// AutodetectIPv4 picks the address on the interface of the default route in
// the namespace at netnsPath ("" = current): Calico's "first-found" in
// spirit, but deterministic (the route the host would use).
func AutodetectIPv4(netnsPath string) (netip.Prefix, error) {
	h, err := nsexec.Handle(netnsPath)
	if err != nil {
		return netip.Prefix{}, err
	}
	defer h.Close()
	rs, err := nsexec.RetryValue(func() ([]netlink.Route, error) { return h.RouteList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("autodetect IPv4: list routes: %w", err)
	}
	for _, r := range rs {
		if r.Dst != nil && r.Dst.String() != "0.0.0.0/0" {
			continue
		}
		link, err := h.LinkByIndex(r.LinkIndex)
		if err != nil {
			continue
		}
		addrs, err := nsexec.RetryValue(func() ([]netlink.Addr, error) { return h.AddrList(link, netlink.FAMILY_V4) })
		if err != nil {
			continue
		}
		for _, ad := range addrs {
			if ad.IP.IsGlobalUnicast() {
				ones, _ := ad.Mask.Size()
				ip, _ := netip.AddrFromSlice(ad.IP.To4())
				return netip.PrefixFrom(ip, ones), nil
			}
		}
	}
	return netip.Prefix{}, fmt.Errorf("autodetect IPv4: no default route with a global address; set --ip")
}

// HostIPv4 is AutodetectIPv4 in the driver's namespace.
func (d *Driver) HostIPv4() (netip.Prefix, error) { return AutodetectIPv4(d.opts.NetNS) }

// HostMTU is the MTU of the interface carrying addr, 0 when none does or
// the links cannot be read (the caller then keeps its default).
func (d *Driver) HostMTU(addr netip.Addr) int {
	h, err := nsexec.Handle(d.opts.NetNS)
	if err != nil {
		return 0
	}
	defer h.Close()
	links, err := nsexec.RetryValue(h.LinkList)
	if err != nil {
		return 0
	}
	for _, l := range links {
		addrs, err := nsexec.RetryValue(func() ([]netlink.Addr, error) { return h.AddrList(l, netlink.FAMILY_ALL) })
		if err != nil {
			continue
		}
		for _, ad := range addrs {
			if ad.IP.Equal(net.IP(addr.AsSlice())) {
				return l.Attrs().MTU
			}
		}
	}
	return 0
}

// LearnedRoutes reads the routes with our protocol that go via a gateway
// and not over VXLAN: what a previous agent learned from BGP and left in
// the kernel when it stopped.
func (d *Driver) LearnedRoutes() ([]dataplane.Route, error) {
	h, err := nsexec.Handle(d.opts.NetNS)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var out []dataplane.Route
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := nsexec.RetryValue(func() ([]netlink.Route, error) {
			return h.RouteListFiltered(fam, &netlink.Route{Protocol: d.proto}, netlink.RT_FILTER_PROTOCOL)
		})
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			if r.Dst == nil || r.Gw == nil {
				continue
			}
			if l, err := h.LinkByIndex(r.LinkIndex); err == nil && (l.Attrs().Name == VXLANDevice || l.Attrs().Name == VXLANDeviceV6) {
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

// HostRoutes reads the destinations of the main table's routes that are not
// ours (ours are learned or computed by the agent), sorted and deduplicated;
// a default route is 0.0.0.0/0 or ::/0.
func (d *Driver) HostRoutes() ([]netip.Prefix, error) {
	h, err := nsexec.Handle(d.opts.NetNS)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var out []netip.Prefix
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := nsexec.RetryValue(func() ([]netlink.Route, error) {
			return h.RouteListFiltered(fam, &netlink.Route{Table: 254}, netlink.RT_FILTER_TABLE)
		})
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			if r.Protocol == d.proto {
				continue
			}
			if r.Dst == nil {
				if fam == netlink.FAMILY_V4 {
					out = append(out, netip.MustParsePrefix("0.0.0.0/0"))
				} else {
					out = append(out, netip.MustParsePrefix("::/0"))
				}
				continue
			}
			ip, ok := netip.AddrFromSlice(r.Dst.IP)
			if !ok {
				continue
			}
			ones, _ := r.Dst.Mask.Size()
			out = append(out, netip.PrefixFrom(ip.Unmap(), ones).Masked())
		}
	}
	slices.SortFunc(out, func(x, y netip.Prefix) int {
		if c := x.Addr().Compare(y.Addr()); c != 0 {
			return c
		}
		return x.Bits() - y.Bits()
	})
	return slices.Compact(out), nil
}

// ForwardingProblem reads what forwarding to and from workloads needs: IPv4
// forwarding (Apply sets net.ipv4.ip_forward=1, which also turns on
// forwarding of every interface), forwarding on the host's own interfaces
// (the kernel checks the input interface's setting), and with v6 IPv6
// forwarding. Workload interfaces' own settings are Apply's and Resync's.
// It returns "" when all is well, else what is off and why that matters.
func (d *Driver) ForwardingProblem(v6 bool) string {
	keys := []string{"net/ipv4/ip_forward", "net/ipv4/conf/all/forwarding", "net/ipv4/conf/default/forwarding"}
	vals, err := nsexec.Read(d.opts.NetNS, keys...)
	if err != nil {
		return fmt.Sprintf("cannot read forwarding sysctls: %v", err)
	}
	if v6 {
		// Missing when IPv6 is disabled on this host; then there is nothing to forward.
		if v, err := nsexec.Read(d.opts.NetNS, "net/ipv6/conf/all/forwarding"); err == nil {
			keys, vals = append(keys, "net/ipv6/conf/all/forwarding"), append(vals, v[0])
		}
	}
	var bad []string
	for i, k := range keys {
		if strings.TrimSpace(vals[i]) != "1" {
			bad = append(bad, strings.ReplaceAll(k, "/", ".")+"="+strings.TrimSpace(vals[i]))
		}
	}
	if len(bad) > 0 {
		return "forwarding is off (" + strings.Join(bad, ", ") + "); the node sets it on its next apply, unless something on the host keeps turning it off"
	}
	return ""
}
