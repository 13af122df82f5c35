package routes

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/calico-docker/calico/internal/dataplane"
)

// applyVXLAN ensures the VXLAN device dev (VXLANDevice or VXLANDeviceV6)
// matches cfg (or is gone when cfg is nil), and keeps byName current for the
// routes that follow.
func (d *Driver) applyVXLAN(dev string, cfg *dataplane.VXLANConfig, byName map[string]netlink.Link, st *ApplyStats, ec *errCollector) {
	cur := byName[dev]
	if cur != nil {
		// The link dump carries only the basics; read the device in full.
		full, err := d.h.LinkByName(dev)
		if err != nil {
			ec.add(fmt.Errorf("read %s: %w", dev, err))
			return
		}
		cur = full
	}
	if cfg == nil {
		if cur == nil {
			return
		}
		// Its routes, neighbours and FDB entries go with it.
		if err := d.h.LinkDel(cur); err != nil {
			ec.add(fmt.Errorf("delete %s: %w", dev, err))
			return
		}
		delete(byName, dev)
		st.LinksChanged++
		return
	}
	link, err := d.ensureVXLANDevice(dev, cfg, cur, st)
	if err != nil {
		ec.add(err)
		if link == nil {
			delete(byName, dev)
			return
		}
	}
	byName[dev] = link
	ec.add(d.ensureTunnelAddr(link, cfg.TunnelIP, st))
	ec.add(d.syncVXLANNeighbors(link, cfg, st))
}

func (d *Driver) ensureVXLANDevice(dev string, cfg *dataplane.VXLANConfig, cur netlink.Link, st *ApplyStats) (netlink.Link, error) {
	if !cfg.LocalIP.IsValid() {
		return nil, fmt.Errorf("%s: no local IP", dev)
	}
	if cfg.TunnelIP.IsValid() && cfg.TunnelIP.Is4() != cfg.LocalIP.Is4() {
		return nil, fmt.Errorf("%s: tunnel IP %s and local IP %s are of different families", dev, cfg.TunnelIP, cfg.LocalIP)
	}
	var mac net.HardwareAddr
	if cfg.MAC != "" {
		m, err := net.ParseMAC(cfg.MAC)
		if err != nil {
			return nil, fmt.Errorf("%s: bad MAC %q: %w", dev, cfg.MAC, err)
		}
		mac = m
	}
	parent := d.linkWithAddr(cfg.LocalIP)
	if cur != nil {
		vx, ok := cur.(*netlink.Vxlan)
		if !ok || vx.VxlanId != cfg.VNI || vx.Port != cfg.Port || vx.Learning ||
			!vx.SrcAddr.Equal(cfg.LocalIP.AsSlice()) || (parent != 0 && vx.VtepDevIndex != parent) {
			// These attributes are fixed at creation: re-create the device.
			d.log.Info("re-creating VXLAN device with new parameters", "vni", cfg.VNI, "port", cfg.Port, "local", cfg.LocalIP)
			if err := d.h.LinkDel(cur); err != nil {
				return nil, fmt.Errorf("delete %s to re-create it: %w", dev, err)
			}
			st.LinksChanged++
			cur = nil
		}
	}
	if cur == nil {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = dev
		attrs.MTU = cfg.MTU
		attrs.HardwareAddr = mac
		vx := &netlink.Vxlan{
			LinkAttrs:    attrs,
			VxlanId:      cfg.VNI,
			SrcAddr:      cfg.LocalIP.AsSlice(),
			Port:         cfg.Port,
			VtepDevIndex: parent,
			Learning:     false,
		}
		if err := d.h.LinkAdd(vx); err != nil {
			if errors.Is(err, unix.EEXIST) {
				// No device of that name exists (cur is nil): another VXLAN
				// device holds the same VNI and UDP port here. Docker's swarm
				// overlay allocates VNIs from 4096 on port 4789, Calico's
				// defaults.
				return nil, fmt.Errorf("create %s (VNI %d, UDP port %d): %w: another VXLAN device on this host uses that VNI and port (Docker's swarm overlay takes VNIs from 4096 on port 4789): set FelixConfiguration vxlanVNI or vxlanPort", dev, cfg.VNI, cfg.Port, err)
			}
			return nil, fmt.Errorf("create %s: %w", dev, err)
		}
		st.LinksChanged++
		l, err := d.h.LinkByName(dev)
		if err != nil {
			return nil, fmt.Errorf("read back %s: %w", dev, err)
		}
		cur = l
	}
	a := cur.Attrs()
	var errs []error
	if cfg.MTU > 0 && a.MTU != cfg.MTU {
		if err := d.h.LinkSetMTU(cur, cfg.MTU); err != nil {
			errs = append(errs, fmt.Errorf("set %s MTU %d: %w", dev, cfg.MTU, err))
		} else {
			st.LinksChanged++
		}
	}
	if mac != nil && !slices.Equal(a.HardwareAddr, mac) {
		if err := d.h.LinkSetHardwareAddr(cur, mac); err != nil {
			errs = append(errs, fmt.Errorf("set %s MAC: %w", dev, err))
		} else {
			st.LinksChanged++
		}
	}
	if a.Flags&net.FlagUp == 0 {
		if err := d.h.LinkSetUp(cur); err != nil {
			errs = append(errs, fmt.Errorf("set %s up: %w", dev, err))
		} else {
			st.LinksChanged++
		}
	}
	if len(errs) > 0 {
		return cur, errors.Join(errs...)
	}
	return cur, nil
}

// linkWithAddr is the index of the interface holding ip, 0 if none: the
// VXLAN device is bound to it so its packets leave where the address lives.
func (d *Driver) linkWithAddr(ip netip.Addr) int {
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	addrs, err := dump(func() ([]netlink.Addr, error) { return d.h.AddrList(nil, fam) })
	if err != nil {
		d.log.Warn("cannot list addresses to bind the VXLAN device", "err", err)
		return 0
	}
	for _, a := range addrs {
		if a.IPNet != nil && a.IP.Equal(ip.AsSlice()) {
			return a.LinkIndex
		}
	}
	return 0
}

// ensureTunnelAddr gives the device exactly the address tunnel as a host
// address (/32 or /128). IPv6 link-local addresses are the kernel's and stay.
func (d *Driver) ensureTunnelAddr(link netlink.Link, tunnel netip.Addr, st *ApplyStats) error {
	dev := link.Attrs().Name
	fam := netlink.FAMILY_V4
	if tunnel.Is6() {
		fam = netlink.FAMILY_V6
	}
	addrs, err := dump(func() ([]netlink.Addr, error) { return d.h.AddrList(link, fam) })
	if err != nil {
		return fmt.Errorf("list %s addresses: %w", dev, err)
	}
	var errs []error
	found := false
	for _, a := range addrs {
		p, ok := ipNetToPrefix(a.IPNet)
		if ok && p.Addr().IsLinkLocalUnicast() && p.Addr().Is6() {
			continue
		}
		if ok && tunnel.IsValid() && p.Addr() == tunnel && p.IsSingleIP() {
			found = true
			continue
		}
		if err := d.h.AddrDel(link, &a); err != nil {
			errs = append(errs, fmt.Errorf("remove stale %s address %s: %w", dev, a.IPNet, err))
		} else {
			st.LinksChanged++
		}
	}
	if !found && tunnel.IsValid() {
		// No duplicate address detection: the address is IPAM's, and a
		// tentative address would not be usable as a source for seconds.
		addr := &netlink.Addr{IPNet: prefixToIPNet(netip.PrefixFrom(tunnel, tunnel.BitLen())), Flags: unix.IFA_F_NODAD}
		if err := d.h.AddrReplace(link, addr); err != nil {
			errs = append(errs, fmt.Errorf("add %s address %s: %w", dev, tunnel, err))
		} else {
			st.LinksChanged++
		}
	}
	return errors.Join(errs...)
}

// syncVXLANNeighbors keeps one permanent neighbour entry (tunnel IP -> MAC,
// ARP or NDP by the device's family) and one permanent FDB entry (MAC -> node
// IP) per peer, and removes permanent entries for peers that are gone.
// Dynamic entries are the kernel's business.
func (d *Driver) syncVXLANNeighbors(link netlink.Link, cfg *dataplane.VXLANConfig, st *ApplyStats) error {
	idx, dev := link.Attrs().Index, link.Attrs().Name
	v4 := cfg.TunnelIP.Is4()
	fam := netlink.FAMILY_V4
	if !v4 {
		fam = netlink.FAMILY_V6
	}
	arp := make(map[netip.Addr]net.HardwareAddr, len(cfg.Peers))
	fdb := make(map[string]netip.Addr, len(cfg.Peers))
	var errs []error
	for _, p := range cfg.Peers {
		mac, err := net.ParseMAC(p.MAC)
		if err != nil || p.TunnelIP.Is4() != v4 || p.NodeIP.Is4() != v4 || !p.TunnelIP.IsValid() || !p.NodeIP.IsValid() {
			errs = append(errs, fmt.Errorf("%s peer %s: bad MAC %q or addresses of the wrong family", dev, p.NodeIP, p.MAC))
			continue
		}
		arp[p.TunnelIP] = mac
		fdb[strings.ToLower(mac.String())] = p.NodeIP
	}

	neighs, err := dump(func() ([]netlink.Neigh, error) { return d.h.NeighList(idx, fam) })
	if err != nil {
		return fmt.Errorf("list %s neighbours: %w", dev, err)
	}
	haveARP := map[netip.Addr]bool{}
	for i := range neighs {
		n := &neighs[i]
		if n.State&netlink.NUD_PERMANENT == 0 {
			continue
		}
		ip, _ := netip.AddrFromSlice(n.IP)
		ip = ip.Unmap()
		if want, ok := arp[ip]; ok && slices.Equal(n.HardwareAddr, want) {
			haveARP[ip] = true
			continue
		}
		if _, ok := arp[ip]; ok {
			continue // wrong MAC: replaced below
		}
		if err := d.h.NeighDel(n); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete stale neighbour %s: %w", ip, err))
		} else {
			st.NeighborsChanged++
		}
	}
	for _, p := range cfg.Peers {
		mac, ok := arp[p.TunnelIP]
		if !ok || haveARP[p.TunnelIP] {
			continue
		}
		n := &netlink.Neigh{LinkIndex: idx, Family: fam, State: netlink.NUD_PERMANENT,
			Type: unix.RTN_UNICAST, IP: p.TunnelIP.AsSlice(), HardwareAddr: mac}
		if err := d.h.NeighSet(n); err != nil {
			errs = append(errs, fmt.Errorf("set neighbour %s: %w", p.TunnelIP, err))
		} else {
			st.NeighborsChanged++
			haveARP[p.TunnelIP] = true
		}
	}

	fdbs, err := dump(func() ([]netlink.Neigh, error) { return d.h.NeighList(idx, unix.AF_BRIDGE) })
	if err != nil {
		return fmt.Errorf("list %s fdb: %w", dev, err)
	}
	haveFDB := map[string]bool{}
	own := strings.ToLower(cfg.MAC)
	for i := range fdbs {
		f := &fdbs[i]
		if f.State&netlink.NUD_PERMANENT == 0 || f.HardwareAddr == nil {
			continue
		}
		mac := strings.ToLower(f.HardwareAddr.String())
		if mac == own {
			continue
		}
		dst, _ := netip.AddrFromSlice(f.IP)
		dst = dst.Unmap()
		if want, ok := fdb[mac]; ok && want == dst && !haveFDB[mac] {
			haveFDB[mac] = true
			continue
		}
		del := &netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF,
			State: netlink.NUD_PERMANENT, IP: f.IP, HardwareAddr: f.HardwareAddr}
		if err := d.h.NeighDel(del); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete stale fdb entry %s: %w", mac, err))
		} else {
			st.NeighborsChanged++
		}
	}
	for _, p := range cfg.Peers {
		mac, ok := arp[p.TunnelIP]
		if !ok {
			continue
		}
		key := strings.ToLower(mac.String())
		if haveFDB[key] {
			continue
		}
		n := &netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF,
			State: netlink.NUD_PERMANENT, IP: fdb[key].AsSlice(), HardwareAddr: mac}
		if err := d.h.NeighSet(n); err != nil {
			errs = append(errs, fmt.Errorf("set fdb entry %s -> %s: %w", key, fdb[key], err))
		} else {
			st.NeighborsChanged++
			haveFDB[key] = true
		}
	}
	return errors.Join(errs...)
}

// isVXLANDevice says whether name is one of the VXLAN devices this driver owns.
func isVXLANDevice(name string) bool { return name == VXLANDevice || name == VXLANDeviceV6 }

func isNotFound(err error) bool {
	return err != nil && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH))
}
