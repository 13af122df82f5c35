package workload

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/calico-docker/calico/internal/nsexec"
)

// PlumbConfig describes one container interface to wire up.
type PlumbConfig struct {
	// HostIface is the host side's name, usually HostIfaceName(endpointID).
	HostIface string
	// ContainerIface is the container side's name; "" means eth0.
	ContainerIface string
	// NetNS is the container's network namespace path; or give PID and its
	// /proc/<pid>/ns/net is used.
	NetNS string
	PID   int
	// HostNS is the host's namespace path; "" means the current one.
	HostNS string
	// MTU of both sides; 0 keeps the kernel default.
	MTU int
	// Addrs are the container's addresses; each is installed as a /32 or /128.
	Addrs []netip.Prefix
	// Timeout bounds the wait for the host side's IPv6 link-local address;
	// 0 means 5 s.
	Timeout time.Duration
}

func (c *PlumbConfig) containerNSPath() (string, error) {
	switch {
	case c.NetNS != "" && c.PID != 0:
		return "", errors.New("plumb: give the container's netns path or its PID, not both")
	case c.NetNS != "":
		return c.NetNS, nil
	case c.PID > 0:
		return "/proc/" + strconv.Itoa(c.PID) + "/ns/net", nil
	}
	return "", errors.New("plumb: the container's netns path or PID is required")
}

// Plumb connects a container that has no network plugin (docker run
// --net=none): a veth whose host side is cfg.HostIface in the host namespace
// and whose container side, created directly in the container's namespace,
// is named eth0 and gets the addresses and the gateway routes (see doc.go).
// It returns the container side's MAC. Host routes and host-side sysctls are
// the routes driver's job. Running Plumb again with the same config is safe.
func Plumb(cfg PlumbConfig) (mac string, err error) {
	if cfg.ContainerIface == "" {
		cfg.ContainerIface = ContainerIface
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if err := validIfaceName(cfg.HostIface); err != nil {
		return "", err
	}
	if err := validIfaceName(cfg.ContainerIface); err != nil {
		return "", err
	}
	var v4, v6 bool
	for _, p := range cfg.Addrs {
		if !p.IsValid() {
			return "", fmt.Errorf("plumb: invalid address %v", p)
		}
		if p.Addr().Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	cpath, err := cfg.containerNSPath()
	if err != nil {
		return "", err
	}
	cns, err := netns.GetFromPath(cpath)
	if err != nil {
		return "", fmt.Errorf("plumb: open container netns %s: %w", cpath, err)
	}
	defer cns.Close()
	hh, err := nsexec.Handle(cfg.HostNS)
	if err != nil {
		return "", err
	}
	defer hh.Close()
	ch, err := nsexec.Handle(cpath)
	if err != nil {
		return "", err
	}
	defer ch.Close()

	host, err := ensurePair(hh, ch, &cfg, cns)
	if err != nil {
		return "", err
	}
	if err := configureHostSide(hh, host, cfg.MTU, cfg.HostNS, v6); err != nil {
		return "", err
	}
	cont, err := ch.LinkByName(cfg.ContainerIface)
	if err != nil {
		return "", fmt.Errorf("plumb: container side %s: %w", cfg.ContainerIface, err)
	}
	if err := configureContainerSide(ch, cont, &cfg, cpath, v6); err != nil {
		return "", err
	}
	if v4 {
		if err := ipv4Routes(ch, cont); err != nil {
			return "", err
		}
	}
	if v6 {
		gw, err := waitHostLinkLocal(hh, host, cfg.Timeout)
		if err != nil {
			return "", err
		}
		r := &netlink.Route{
			LinkIndex: cont.Attrs().Index,
			Dst:       &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)},
			Gw:        gw.AsSlice(),
		}
		if err := ch.RouteReplace(r); err != nil {
			return "", fmt.Errorf("plumb: IPv6 default route via %s: %w", gw, err)
		}
	}
	return cont.Attrs().HardwareAddr.String(), nil
}

// ensurePair returns the host side of the pair, creating it with its peer
// directly in the container. An existing host veth whose peer is not the
// container's interface (left from an earlier container) is replaced.
func ensurePair(hh, ch *netlink.Handle, cfg *PlumbConfig, cns netns.NsHandle) (netlink.Link, error) {
	if l, err := hh.LinkByName(cfg.HostIface); err == nil {
		if l.Type() != "veth" {
			return nil, fmt.Errorf("plumb: interface %s exists and is a %s, not a veth", cfg.HostIface, l.Type())
		}
		// A veth's IFLA_LINK is its peer's index (in the peer's namespace).
		if c, cerr := ch.LinkByName(cfg.ContainerIface); cerr == nil && c.Type() == "veth" && c.Attrs().Index == l.Attrs().ParentIndex {
			return l, nil
		}
		if err := hh.LinkDel(l); err != nil && !isNotFound(err) {
			return nil, fmt.Errorf("plumb: remove stale %s: %w", cfg.HostIface, err)
		}
	} else if !isNotFound(err) {
		return nil, fmt.Errorf("plumb: look up %s: %w", cfg.HostIface, err)
	}
	if _, err := ch.LinkByName(cfg.ContainerIface); err == nil {
		return nil, fmt.Errorf("plumb: the container already has an interface %s", cfg.ContainerIface)
	}
	return ensureVeth(hh, cfg.HostIface, cfg.ContainerIface, cfg.MTU, &cns)
}

func configureContainerSide(ch *netlink.Handle, cont netlink.Link, cfg *PlumbConfig, cpath string, v6 bool) error {
	name := cfg.ContainerIface
	if cfg.MTU > 0 && cont.Attrs().MTU != cfg.MTU {
		if err := ch.LinkSetMTU(cont, cfg.MTU); err != nil {
			return fmt.Errorf("plumb: MTU of %s: %w", name, err)
		}
	}
	if v6 {
		// Docker may have disabled IPv6 in the container; the address must
		// also be usable at once (no DAD on a point-to-point link).
		_, err := nsexec.Ensure(cpath, []nsexec.Sysctl{
			{Key: "net/ipv6/conf/all/disable_ipv6", Value: "0"},
			{Key: "net/ipv6/conf/default/disable_ipv6", Value: "0"},
			{Key: "net/ipv6/conf/" + name + "/disable_ipv6", Value: "0"},
			{Key: "net/ipv6/conf/" + name + "/accept_dad", Value: "0"},
		})
		if err != nil {
			return fmt.Errorf("plumb: container IPv6 settings: %w", err)
		}
	}
	if cont.Attrs().Flags&net.FlagUp == 0 {
		if err := ch.LinkSetUp(cont); err != nil {
			return fmt.Errorf("plumb: set %s up: %w", name, err)
		}
	}
	// Exactly the wanted addresses (link-local ones are the kernel's).
	want := map[netip.Addr]bool{}
	for _, p := range cfg.Addrs {
		want[p.Addr().Unmap()] = true
	}
	have, err := nsexec.RetryValue(func() ([]netlink.Addr, error) { return ch.AddrList(cont, netlink.FAMILY_ALL) })
	if err != nil {
		return fmt.Errorf("plumb: list addresses of %s: %w", name, err)
	}
	present := map[netip.Addr]bool{}
	for _, a := range have {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.IsLinkLocalUnicast() {
			continue
		}
		ones, bits := a.Mask.Size()
		if want[ip] && ones == bits {
			present[ip] = true
			continue
		}
		if err := ch.AddrDel(cont, &a); err != nil {
			return fmt.Errorf("plumb: remove stale address %s: %w", a.IPNet, err)
		}
	}
	for ip := range want {
		if present[ip] {
			continue
		}
		a := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(ip.BitLen(), ip.BitLen())}}
		if ip.Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := ch.AddrReplace(cont, a); err != nil {
			return fmt.Errorf("plumb: add address %s to %s: %w", ip, name, err)
		}
	}
	return nil
}

// ipv4Routes installs "169.254.1.1 dev eth0 scope link" and "default via
// 169.254.1.1 dev eth0".
func ipv4Routes(ch *netlink.Handle, cont netlink.Link) error {
	idx := cont.Attrs().Index
	gw := IPv4Gateway.AsSlice()
	onlink := &netlink.Route{LinkIndex: idx, Dst: &net.IPNet{IP: gw, Mask: net.CIDRMask(32, 32)}, Scope: netlink.SCOPE_LINK}
	if err := ch.RouteReplace(onlink); err != nil {
		return fmt.Errorf("plumb: route to %s: %w", IPv4Gateway, err)
	}
	def := &netlink.Route{LinkIndex: idx, Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, Gw: gw}
	if err := ch.RouteReplace(def); err != nil {
		return fmt.Errorf("plumb: default route via %s: %w", IPv4Gateway, err)
	}
	return nil
}

// waitHostLinkLocal polls until the host side has a usable (not tentative)
// IPv6 link-local address and returns it, preferring HostIPv6Gateway. The
// kernel assigns link-local addresses only once the link has carrier, so a
// fresh veth may need a moment.
func waitHostLinkLocal(hh *netlink.Handle, host netlink.Link, timeout time.Duration) (netip.Addr, error) {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		addrs, err := hh.AddrList(host, netlink.FAMILY_V6)
		if err == nil || errors.Is(err, netlink.ErrDumpInterrupted) {
			var found netip.Addr
			for _, a := range addrs {
				ip, ok := netip.AddrFromSlice(a.IP)
				if !ok || !ip.IsLinkLocalUnicast() || a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
					continue
				}
				if ip == HostIPv6Gateway {
					return ip, nil
				}
				if !found.IsValid() {
					found = ip
				}
			}
			if found.IsValid() {
				return found, nil
			}
		}
		if time.Now().After(deadline) {
			return netip.Addr{}, fmt.Errorf("plumb: no usable IPv6 link-local address on %s after %v (IPv6 disabled on the host?)", host.Attrs().Name, timeout)
		}
		<-tick.C
	}
}

// Unplumb removes the veth hostName from hostNS ("" = current); its peer in
// the container goes with it. A missing interface is success.
func Unplumb(hostName, hostNS string) error {
	return DeleteVeth(hostName, hostNS)
}
