package workload

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/calico-docker/calico/internal/nsexec"
)

const (
	// IfacePrefix starts every host-side workload interface name.
	IfacePrefix = "cali"
	// HostMAC is the MAC of the host side of every workload veth.
	HostMAC = "ee:ee:ee:ee:ee:ee"
	// ContainerIface is the container side's name after Plumb.
	ContainerIface = "eth0"
	maxIfaceLen    = 15
)

var (
	// IPv4Gateway is the workload's IPv4 next hop, answered by proxy ARP.
	IPv4Gateway = netip.MustParseAddr("169.254.1.1")
	// HostIPv6Gateway is the link-local address of the host side of every
	// veth: the workload's IPv6 next hop.
	HostIPv6Gateway = netip.MustParseAddr("fe80::ecee:eeff:feee:eeee")

	hostMAC, _ = net.ParseMAC(HostMAC)
)

// HostIfaceName is the host-side interface name for an endpoint: "cali" and
// the first 11 characters of its ID (Calico's convention for Docker).
func HostIfaceName(endpointID string) string {
	id := endpointID
	if len(id) > maxIfaceLen-len(IfacePrefix) {
		id = id[:maxIfaceLen-len(IfacePrefix)]
	}
	return IfacePrefix + id
}

func validIfaceName(name string) error {
	if name == "" || len(name) > maxIfaceLen || strings.ContainsAny(name, "/ \t\n:") || name == "." || name == ".." {
		return fmt.Errorf("invalid interface name %q (1-%d characters, no '/', ':' or spaces)", name, maxIfaceLen)
	}
	return nil
}

func isNotFound(err error) bool {
	var lnf netlink.LinkNotFoundError
	return errors.As(err, &lnf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT)
}

// CreateVeth creates a veth pair in the host namespace hostNS ("" = current):
// hostName gets MAC ee:ee:ee:ee:ee:ee and is brought up; peerName stays in
// the host namespace, down, for Docker to move into the sandbox and rename.
// mtu 0 keeps the kernel default. If hostName already exists as a veth the
// call succeeds (and re-applies MAC, MTU, up); as another kind it fails.
func CreateVeth(hostName, peerName string, mtu int, hostNS string) error {
	if err := validIfaceName(hostName); err != nil {
		return err
	}
	if err := validIfaceName(peerName); err != nil {
		return err
	}
	h, err := nsexec.Handle(hostNS)
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := ensureVeth(h, hostName, peerName, mtu, nil)
	if err != nil {
		return err
	}
	// Docker needs the IPv6 gateway before the peer is in place, so the
	// link-local address is set now (best effort: the host may have no IPv6).
	return configureHostSide(h, link, mtu, hostNS, false)
}

// ensureVeth returns the existing veth hostName or creates the pair; with
// peerNS set the peer is created directly in that namespace.
func ensureVeth(h *netlink.Handle, hostName, peerName string, mtu int, peerNS *netns.NsHandle) (netlink.Link, error) {
	if l, err := h.LinkByName(hostName); err == nil {
		if l.Type() != "veth" {
			return nil, fmt.Errorf("interface %s exists and is a %s, not a veth", hostName, l.Type())
		}
		return l, nil
	} else if !isNotFound(err) {
		return nil, fmt.Errorf("look up %s: %w", hostName, err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = hostName
	attrs.HardwareAddr = hostMAC
	if mtu > 0 {
		attrs.MTU = mtu
	}
	veth := netlink.NewVeth(attrs)
	veth.PeerName = peerName
	if peerNS != nil {
		veth.PeerNamespace = netlink.NsFd(int(*peerNS))
	}
	if err := h.LinkAdd(veth); err != nil {
		if errors.Is(err, unix.EEXIST) {
			// A concurrent create of the same pair, or a name clash on the peer side.
			if l, lerr := h.LinkByName(hostName); lerr == nil && l.Type() == "veth" {
				return l, nil
			}
			return nil, fmt.Errorf("create veth %s/%s: peer name %s already in use: %w", hostName, peerName, peerName, err)
		}
		return nil, fmt.Errorf("create veth %s/%s: %w", hostName, peerName, err)
	}
	l, err := h.LinkByName(hostName)
	if err != nil {
		return nil, fmt.Errorf("read back %s: %w", hostName, err)
	}
	return l, nil
}

// configureHostSide sets MAC, MTU, no DAD, up, and the IPv6 link-local
// gateway address. With needV6 false a host without IPv6 is not an error.
func configureHostSide(h *netlink.Handle, l netlink.Link, mtu int, hostNS string, needV6 bool) error {
	a := l.Attrs()
	name := a.Name
	if !slices.Equal(a.HardwareAddr, hostMAC) {
		if err := h.LinkSetHardwareAddr(l, hostMAC); err != nil {
			return fmt.Errorf("set MAC of %s: %w", name, err)
		}
	}
	if mtu > 0 && a.MTU != mtu {
		if err := h.LinkSetMTU(l, mtu); err != nil {
			return fmt.Errorf("set MTU of %s to %d: %w", name, mtu, err)
		}
	}
	// No duplicate address detection on a point-to-point link: it would keep
	// the link-local gateway unusable for a second or more. Must precede up.
	settings := []nsexec.Sysctl{{Key: "net/ipv6/conf/" + name + "/accept_dad", Value: "0", Optional: !needV6}}
	if needV6 {
		// A host whose new interfaces start with IPv6 disabled would give
		// the veth no link-local address, so no IPv6 gateway.
		settings = append([]nsexec.Sysctl{{Key: "net/ipv6/conf/" + name + "/disable_ipv6", Value: "0"}}, settings...)
	}
	_, err := nsexec.Ensure(hostNS, settings)
	if err != nil {
		return fmt.Errorf("host side %s: %w", name, err)
	}
	if a.Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(l); err != nil {
			return fmt.Errorf("set %s up: %w", name, err)
		}
	}
	ll := &netlink.Addr{
		IPNet: &net.IPNet{IP: HostIPv6Gateway.AsSlice(), Mask: net.CIDRMask(64, 128)},
		Flags: unix.IFA_F_NODAD | unix.IFA_F_PERMANENT,
		Scope: unix.RT_SCOPE_LINK,
	}
	if err := h.AddrReplace(l, ll); err != nil {
		if needV6 {
			return fmt.Errorf("add IPv6 link-local %s to %s: %w", HostIPv6Gateway, name, err)
		}
		slog.Debug("no IPv6 link-local on host veth (IPv6 disabled?)", "iface", name, "err", err)
	}
	return nil
}

// DeleteVeth removes the veth hostName (and so its peer, wherever it is) from
// hostNS ("" = current). A missing interface is success; one that is not a
// veth is refused.
func DeleteVeth(hostName, hostNS string) error {
	if err := validIfaceName(hostName); err != nil {
		return err
	}
	h, err := nsexec.Handle(hostNS)
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(hostName)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("look up %s: %w", hostName, err)
	}
	if l.Type() != "veth" {
		return fmt.Errorf("interface %s is a %s, not a veth; not deleting it", hostName, l.Type())
	}
	if err := h.LinkDel(l); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete %s: %w", hostName, err)
	}
	return nil
}
