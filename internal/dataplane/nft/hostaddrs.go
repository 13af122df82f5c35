package nft

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nlenc"
	"golang.org/x/sys/unix"

	"github.com/calico-docker/calico/internal/dataplane"
)

// Host endpoints found by address (dataplane.HostEndpoint with Iface ""):
// the interfaces that carry one of their expectedIPs are the kernel's
// business, not the datastore's, so Apply reads the addresses of its
// namespace (one RTM_GETADDR dump, only while such an endpoint exists) and
// turns each of these endpoints into named ones before compiling. The
// caller follows address changes with WatchAddrs and applies again.

// needsAddrs reports whether hp has an endpoint found by address.
func needsAddrs(hp *dataplane.HostProtection) bool {
	return slices.ContainsFunc(hp.Endpoints, func(e dataplane.HostEndpoint) bool { return e.Iface == "" })
}

// resolveHostEndpoints returns hp with each endpoint found by address
// replaced by a copy per interface that carries one of its addresses.
// Named endpoints keep their interfaces; between endpoints found by
// address, the first (smallest ID) wins an interface. skip reports
// interfaces that are never host endpoints (workloads, lo, vxlan.calico).
// hp itself is not modified.
func resolveHostEndpoints(hp dataplane.HostProtection, ifAddrs map[string][]netip.Addr, skip func(string) bool) dataplane.HostProtection {
	if !needsAddrs(&hp) {
		return hp
	}
	owner := map[netip.Addr][]string{}
	for name, as := range ifAddrs {
		if skip(name) {
			continue
		}
		for _, a := range as {
			owner[a.Unmap()] = append(owner[a.Unmap()], name)
		}
	}
	taken := map[string]bool{}
	var out []dataplane.HostEndpoint
	for _, e := range hp.Endpoints {
		if e.Iface != "" {
			taken[e.Iface] = true
			out = append(out, e)
		}
	}
	for _, e := range hp.Endpoints {
		if e.Iface != "" {
			continue
		}
		var names []string
		for _, a := range e.ExpectedIPs {
			names = append(names, owner[a.Unmap()]...)
		}
		slices.Sort(names)
		for _, name := range slices.Compact(names) {
			if taken[name] {
				continue
			}
			taken[name] = true
			c := e
			c.Iface, c.ExpectedIPs = name, nil
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b dataplane.HostEndpoint) int {
		return cmp.Or(strings.Compare(a.Iface, b.Iface), strings.Compare(a.ID, b.ID))
	})
	hp.Endpoints = out
	return hp
}

// withResolvedHosts returns desired, or a shallow copy whose host
// endpoints found by address are resolved against the namespace's
// addresses (compile compares sources by value, so a copy costs nothing).
func (d *Driver) withResolvedHosts(desired *dataplane.Desired) (*dataplane.Desired, error) {
	if !needsAddrs(&desired.Hosts) {
		return desired, nil
	}
	ifAddrs, err := readIfaceAddrs(d.nsFd())
	if err != nil {
		return nil, fmt.Errorf("find host endpoints by address in %s: %w", d.nsName(), err)
	}
	prefix := hostOf(desired.Host).prefix
	skip := func(name string) bool {
		return strings.HasPrefix(name, prefix) || name == "lo" || name == vxlanIface
	}
	cp := *desired
	cp.Hosts = resolveHostEndpoints(desired.Hosts, ifAddrs, skip)
	return &cp, nil
}

// readIfaceAddrs lists the addresses of every interface in the namespace
// of fd (0: the current one), by interface name.
func readIfaceAddrs(nsFd int) (map[string][]netip.Addr, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{NetNS: nsFd, Strict: true})
	if err != nil {
		return nil, fmt.Errorf("open route netlink socket: %w", err)
	}
	defer c.Close()
	// struct ifaddrmsg with family AF_UNSPEC: every address.
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETADDR, Flags: netlink.Request | netlink.Dump},
		Data:   make([]byte, unix.SizeofIfAddrmsg),
	})
	if err != nil {
		return nil, fmt.Errorf("dump addresses: %w", err)
	}
	byIndex := map[uint32][]netip.Addr{}
	for _, m := range msgs {
		if len(m.Data) < unix.SizeofIfAddrmsg {
			continue
		}
		index := binary.NativeEndian.Uint32(m.Data[4:8])
		ad, err := netlink.NewAttributeDecoder(m.Data[unix.SizeofIfAddrmsg:])
		if err != nil {
			continue
		}
		var local, address netip.Addr
		for ad.Next() {
			a, ok := netip.AddrFromSlice(ad.Bytes())
			if !ok {
				continue
			}
			switch ad.Type() {
			case unix.IFA_LOCAL:
				local = a
			case unix.IFA_ADDRESS:
				address = a
			}
		}
		// IFA_LOCAL is the interface's own address where it differs from
		// IFA_ADDRESS (the peer of a point-to-point link).
		if local.IsValid() {
			address = local
		}
		if address.IsValid() {
			byIndex[index] = append(byIndex[index], address.Unmap())
		}
	}
	out := make(map[string][]netip.Addr, len(byIndex))
	for index, as := range byIndex {
		name, err := linkName(c, index)
		if err != nil {
			if errors.Is(err, unix.ENODEV) {
				continue // gone since the dump
			}
			return nil, err
		}
		out[name] = as
	}
	return out, nil
}

// linkName asks for one link by index (a full link dump would cost a
// host with thousands of workload interfaces much more).
func linkName(c *netlink.Conn, index uint32) (string, error) {
	req := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(req[4:8], index)
	msgs, err := c.Execute(netlink.Message{Header: netlink.Header{Type: unix.RTM_GETLINK, Flags: netlink.Request}, Data: req})
	if err != nil {
		return "", fmt.Errorf("get link %d: %w", index, err)
	}
	for _, m := range msgs {
		if len(m.Data) < unix.SizeofIfInfomsg {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[unix.SizeofIfInfomsg:])
		if err != nil {
			continue
		}
		for ad.Next() {
			if ad.Type() == unix.IFLA_IFNAME {
				return nlenc.String(ad.Bytes()), nil
			}
		}
	}
	return "", fmt.Errorf("get link %d: no name in the answer", index)
}

// WatchAddrs reports that an interface address was added or removed in the
// driver's namespace while the desired state has host endpoints found by
// address, so that they follow it (the caller applies again; without such
// endpoints, e.g. the link-local addresses of new workload veths wake
// nobody). The channel closes when ctx ends or the
// subscription fails; the periodic resync applies too.
func (d *Driver) WatchAddrs(ctx context.Context) <-chan struct{} {
	return d.watch(ctx, unix.NETLINK_ROUTE, []uint32{unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV6_IFADDR}, watchLogs{
		noSub: "watch addresses: no subscription; host endpoints found by address follow changes at the periodic resync",
		ended: "watch addresses ended; the periodic resync follows address changes",
	}, func(m netlink.Message) bool {
		return (m.Header.Type == unix.RTM_NEWADDR || m.Header.Type == unix.RTM_DELADDR) && d.byAddr.Load()
	})
}
