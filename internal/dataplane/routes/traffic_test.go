package routes

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/dataplane"
	"github.com/calico-docker/calico/internal/testutil"
)

// wireWorkload makes a workload namespace connected to host by a veth, wired
// the way the seed's network_container script did: host side named iface
// with MAC ee:ee:ee:ee:ee:ee and no address; container side eth0 with its /32
// (and /128), an on-link route to 169.254.1.1, a default route through it,
// and an IPv6 default route through the host side's link-local address. The
// host side's settings and routes are left to the driver.
func wireWorkload(t *testing.T, host testutil.NetNS, iface string, addrs ...string) testutil.NetNS {
	t.Helper()
	w := testutil.NewNetNS(t, "rtw")
	host.MustExec(t, "ip", "link", "add", iface, "address", HostMAC, "type", "veth", "peer", "name", "eth0", "netns", w.Name)
	// No duplicate address detection on a point-to-point link: addresses are usable at once.
	host.MustExec(t, "sysctl", "-qw", "net.ipv6.conf."+iface+".accept_dad=0")
	w.MustExec(t, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0")
	host.MustExec(t, "ip", "link", "set", iface, "up")
	w.MustExec(t, "ip", "link", "set", "eth0", "up")
	for _, a := range addrs {
		if strings.Contains(a, ":") {
			w.MustExec(t, "ip", "-6", "addr", "add", a+"/128", "dev", "eth0", "nodad")
			w.MustExec(t, "ip", "-6", "route", "add", "default", "via", "fe80::ecee:eeff:feee:eeee", "dev", "eth0")
		} else {
			w.MustExec(t, "ip", "addr", "add", a+"/32", "dev", "eth0")
			w.MustExec(t, "ip", "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link")
			w.MustExec(t, "ip", "route", "add", "default", "via", "169.254.1.1", "dev", "eth0")
		}
	}
	return w
}

func ping(ns testutil.NetNS, dst string) error {
	args := []string{"busybox", "ping", "-c", "1", "-W", "1"}
	if strings.Contains(dst, ":") {
		args = append(args, "-6")
	}
	_, err := ns.Exec(append(args, dst)...)
	return err
}

func mustReach(t *testing.T, from testutil.NetNS, dst string) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() error { return ping(from, dst) })
}

func localRoutes(iface string, addrs ...string) []dataplane.Route {
	var rs []dataplane.Route
	for _, a := range addrs {
		rs = append(rs, dataplane.Route{Dst: netip.PrefixFrom(addr(a), addr(a).BitLen()), Type: dataplane.RouteLocal, Iface: iface})
	}
	return rs
}

func endpoint(id, iface string, addrs ...string) dataplane.Endpoint {
	e := dataplane.Endpoint{ID: id, Iface: iface}
	for _, a := range addrs {
		e.Addrs = append(e.Addrs, netip.PrefixFrom(addr(a), addr(a).BitLen()))
	}
	return e
}

func TestTrafficBetweenWorkloadsSameHost(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "busybox", "sysctl")
	host := newHost(t)
	w1 := wireWorkload(t, host, "caliw1", "10.65.0.2", "fd00:65::2")
	w2 := wireWorkload(t, host, "caliw2", "10.65.0.3", "fd00:65::3")
	d := newDriver(t, host)

	// Before the driver runs, nothing forwards.
	if err := ping(w1, "10.65.0.3"); err == nil {
		t.Fatal("workloads reach each other before any apply")
	}
	des := &dataplane.Desired{
		Endpoints: []dataplane.Endpoint{
			endpoint("ns/w1", "caliw1", "10.65.0.2", "fd00:65::2"),
			endpoint("ns/w2", "caliw2", "10.65.0.3", "fd00:65::3"),
		},
		Routes: append(localRoutes("caliw1", "10.65.0.2", "fd00:65::2"), localRoutes("caliw2", "10.65.0.3", "fd00:65::3")...),
	}
	apply(t, d, des)
	mustReach(t, w1, "10.65.0.3")
	mustReach(t, w2, "10.65.0.2")
	// IPv6 through the host veth's link-local gateway, with no proxy NDP entries.
	mustReach(t, w1, "fd00:65::3")
	mustReach(t, w2, "fd00:65::2")
	if out := host.MustExec(t, "ip", "-6", "neigh", "show", "proxy"); strings.TrimSpace(out) != "" {
		t.Fatalf("unexpected proxy NDP entries: %s", out)
	}

	// Removing w2's routes cuts it off again.
	des2 := &dataplane.Desired{Endpoints: des.Endpoints[:1], Routes: localRoutes("caliw1", "10.65.0.2", "fd00:65::2")}
	if st := apply(t, d, des2); st.RoutesDeleted != 2 {
		t.Fatalf("stats: %+v", st)
	}
	if err := ping(w1, "10.65.0.3"); err == nil {
		t.Fatal("w2 still reachable after its routes were removed")
	}
}

// vxlanHost is one side of the two-host VXLAN test.
type vxlanHost struct {
	ns       testutil.NetNS
	w        testutil.NetNS
	d        *Driver
	underlay string
	tunnel   string
	mac      string
	block    string
	wl       string
}

func (h *vxlanHost) desired(peer *vxlanHost, peerMAC string, mtu int) *dataplane.Desired {
	return &dataplane.Desired{
		Endpoints: []dataplane.Endpoint{endpoint("ns/"+h.wl, "calivx", h.wl)},
		Routes: []dataplane.Route{
			{Dst: pfx(h.block), Type: dataplane.RouteBlackhole},
			{Dst: pfx(h.wl + "/32"), Type: dataplane.RouteLocal, Iface: "calivx"},
			{Dst: pfx(peer.block), Type: dataplane.RouteVXLAN, Iface: VXLANDevice, Gateway: addr(peer.tunnel)},
		},
		VXLAN: &dataplane.VXLANConfig{
			VNI: 4096, Port: 4789, MTU: mtu,
			LocalIP: addr(h.underlay), TunnelIP: addr(h.tunnel), MAC: h.mac,
			Peers: []dataplane.VTEP{{NodeIP: addr(peer.underlay), TunnelIP: addr(peer.tunnel), MAC: peerMAC}},
		},
	}
}

type ipLinkDetail struct {
	Ifindex  int    `json:"ifindex"`
	MTU      int    `json:"mtu"`
	Address  string `json:"address"`
	Flags    []string
	LinkInfo struct {
		InfoKind string `json:"info_kind"`
		InfoData struct {
			ID       int    `json:"id"`
			Local    string `json:"local"`
			Local6   string `json:"local6"`
			Port     int    `json:"port"`
			Learning bool   `json:"learning"`
		} `json:"info_data"`
	} `json:"linkinfo"`
}

func vxlanLink(t *testing.T, ns testutil.NetNS) (ipLinkDetail, bool) {
	t.Helper()
	return vxlanLinkNamed(t, ns, VXLANDevice)
}

func vxlanLinkNamed(t *testing.T, ns testutil.NetNS, dev string) (ipLinkDetail, bool) {
	t.Helper()
	out, err := ns.Exec("ip", "-d", "-j", "link", "show", dev)
	if err != nil {
		return ipLinkDetail{}, false
	}
	var ls []ipLinkDetail
	if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) != 1 {
		t.Fatalf("parse %q: %v", out, err)
	}
	return ls[0], true
}

func TestVXLANBetweenTwoHosts(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "busybox", "sysctl", "bridge")
	h1 := &vxlanHost{ns: newHost(t), underlay: "172.31.250.1", tunnel: "10.65.1.0", mac: "66:00:00:00:01:01",
		block: "10.65.1.0/26", wl: "10.65.1.2"}
	h2 := &vxlanHost{ns: newHost(t), underlay: "172.31.250.2", tunnel: "10.65.2.0", mac: "66:00:00:00:02:02",
		block: "10.65.2.0/26", wl: "10.65.2.2"}
	// The underlay: one veth between the two host namespaces.
	h1.ns.MustExec(t, "ip", "link", "add", "rtu1", "type", "veth", "peer", "name", "rtu2", "netns", h2.ns.Name)
	h1.ns.MustExec(t, "ip", "addr", "add", "172.31.250.1/24", "dev", "rtu1")
	h2.ns.MustExec(t, "ip", "addr", "add", "172.31.250.2/24", "dev", "rtu2")
	h1.ns.MustExec(t, "ip", "link", "set", "rtu1", "up")
	h2.ns.MustExec(t, "ip", "link", "set", "rtu2", "up")
	for _, h := range []*vxlanHost{h1, h2} {
		h.w = wireWorkload(t, h.ns, "calivx", h.wl)
		h.d = newDriver(t, h.ns)
	}

	st := apply(t, h1.d, h1.desired(h2, h2.mac, 1450))
	if st.NeighborsChanged != 2 || st.RoutesAdded != 3 {
		t.Fatalf("h1 stats: %+v", st)
	}
	apply(t, h2.d, h2.desired(h1, h1.mac, 1450))
	mustReach(t, h1.w, h2.wl)
	mustReach(t, h2.w, h1.wl)

	l, ok := vxlanLink(t, h1.ns)
	if !ok {
		t.Fatal("no vxlan.calico on h1")
	}
	info := l.LinkInfo.InfoData
	if l.LinkInfo.InfoKind != "vxlan" || info.ID != 4096 || info.Port != 4789 || info.Local != "172.31.250.1" ||
		info.Learning || l.MTU != 1450 || l.Address != h1.mac {
		t.Fatalf("vxlan device: %+v", l)
	}
	if out := h1.ns.MustExec(t, "ip", "-4", "addr", "show", "dev", VXLANDevice); !strings.Contains(out, "10.65.1.0/32") {
		t.Fatalf("tunnel address: %s", out)
	}
	neigh := h1.ns.MustExec(t, "ip", "neigh", "show", "dev", VXLANDevice)
	if !strings.Contains(neigh, "10.65.2.0 lladdr "+h2.mac+" PERMANENT") {
		t.Fatalf("neighbour entry: %s", neigh)
	}
	fdb := h1.ns.MustExec(t, "bridge", "fdb", "show", "dev", VXLANDevice)
	if !strings.Contains(fdb, h2.mac+" dst 172.31.250.2 self permanent") {
		t.Fatalf("fdb entry: %s", fdb)
	}
	if r := kernelRoutes(t, h1.ns, "-4", "80")["10.65.2.0/26"]; r.Dev != VXLANDevice || r.Gateway != "10.65.2.0" ||
		!strings.Contains(fmt.Sprint(r.Flags), "onlink") {
		t.Fatalf("vxlan route: %+v", r)
	}
	if st := apply(t, h1.d, h1.desired(h2, h2.mac, 1450)); st.Changes() != 0 {
		t.Fatalf("second apply: %+v", st)
	}

	// MTU changes in place (same device).
	st = apply(t, h1.d, h1.desired(h2, h2.mac, 1400))
	l2, _ := vxlanLink(t, h1.ns)
	if st.LinksChanged != 1 || l2.MTU != 1400 || l2.Ifindex != l.Ifindex {
		t.Fatalf("mtu change: %+v %+v", st, l2)
	}

	// The peer's MAC changes: stale entries go, new ones come, traffic flows.
	const newMAC = "66:00:00:00:02:03"
	h2.ns.MustExec(t, "ip", "link", "set", VXLANDevice, "address", newMAC)
	h2.mac = newMAC
	apply(t, h2.d, h2.desired(h1, h1.mac, 1450))
	st = apply(t, h1.d, h1.desired(h2, newMAC, 1400))
	if st.NeighborsChanged != 3 { // ARP entry replaced, old FDB entry deleted, new one added
		t.Fatalf("peer change stats: %+v", st)
	}
	fdb = h1.ns.MustExec(t, "bridge", "fdb", "show", "dev", VXLANDevice)
	if strings.Contains(fdb, "66:00:00:00:02:02") || !strings.Contains(fdb, newMAC+" dst 172.31.250.2") {
		t.Fatalf("fdb after peer change: %s", fdb)
	}
	mustReach(t, h1.w, h2.wl)

	// VXLAN off: the device and everything on it go; the local parts stay.
	des := h1.desired(h2, newMAC, 1400)
	des.VXLAN = nil
	des.Routes = des.Routes[:2]
	st = apply(t, h1.d, des)
	if st.LinksChanged != 1 {
		t.Fatalf("vxlan off stats: %+v", st)
	}
	if _, ok := vxlanLink(t, h1.ns); ok {
		t.Fatal("vxlan.calico still present")
	}
	if ours := kernelRoutes(t, h1.ns, "-4", "80"); len(ours) != 2 {
		t.Fatalf("routes after vxlan off: %s", describe(ours))
	}
	if err := ping(h1.w, h2.wl); err == nil {
		t.Fatal("remote workload reachable with VXLAN off")
	}
	if st := apply(t, h1.d, des); st.Changes() != 0 {
		t.Fatalf("apply after vxlan off: %+v", st)
	}
}

// Both families at once, as Felix runs them: vxlan.calico over the IPv4
// underlay for the IPv4 blocks and vxlan-v6.calico over the IPv6 underlay for
// the IPv6 blocks, each with its own tunnel address, MAC, neighbours and FDB
// entries; turning IPv6 VXLAN off removes only its device.
func TestVXLANBothFamiliesBetweenTwoHosts(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCmd(t, "busybox", "sysctl", "bridge")
	type side struct {
		ns               testutil.NetNS
		w                testutil.NetNS
		d                *Driver
		u4, u6, t4, t6   string
		m4, m6, b4, b6   string
		wl4, wl6, uplink string
	}
	h1 := &side{ns: newHost(t), u4: "172.31.251.1", u6: "fd00:251::1", t4: "10.66.1.1", t6: "fd00:66:1::1",
		m4: "66:00:00:00:01:04", m6: "66:00:00:00:01:06", b4: "10.66.1.0/26", b6: "fd00:66:1::/122",
		wl4: "10.66.1.2", wl6: "fd00:66:1::2", uplink: "rtv1"}
	h2 := &side{ns: newHost(t), u4: "172.31.251.2", u6: "fd00:251::2", t4: "10.66.2.1", t6: "fd00:66:2::1",
		m4: "66:00:00:00:02:04", m6: "66:00:00:00:02:06", b4: "10.66.2.0/26", b6: "fd00:66:2::/122",
		wl4: "10.66.2.2", wl6: "fd00:66:2::2", uplink: "rtv2"}
	h1.ns.MustExec(t, "ip", "link", "add", "rtv1", "type", "veth", "peer", "name", "rtv2", "netns", h2.ns.Name)
	for _, h := range []*side{h1, h2} {
		h.ns.MustExec(t, "sysctl", "-qw", "net.ipv6.conf."+h.uplink+".accept_dad=0")
		h.ns.MustExec(t, "ip", "addr", "add", h.u4+"/24", "dev", h.uplink)
		h.ns.MustExec(t, "ip", "-6", "addr", "add", h.u6+"/64", "dev", h.uplink, "nodad")
		h.ns.MustExec(t, "ip", "link", "set", h.uplink, "up")
		h.w = wireWorkload(t, h.ns, "calivy", h.wl4, h.wl6)
		h.d = newDriver(t, h.ns)
	}
	desired := func(h, peer *side, v6 bool) *dataplane.Desired {
		des := &dataplane.Desired{
			Endpoints: []dataplane.Endpoint{endpoint("ns/w", "calivy", h.wl4, h.wl6)},
			Routes: append(localRoutes("calivy", h.wl4, h.wl6),
				dataplane.Route{Dst: pfx(h.b4), Type: dataplane.RouteBlackhole},
				dataplane.Route{Dst: pfx(peer.b4), Type: dataplane.RouteVXLAN, Iface: VXLANDevice, Gateway: addr(peer.t4)}),
			VXLAN: &dataplane.VXLANConfig{VNI: 4096, Port: 4789, MTU: 1450,
				LocalIP: addr(h.u4), TunnelIP: addr(h.t4), MAC: h.m4,
				Peers: []dataplane.VTEP{{NodeIP: addr(peer.u4), TunnelIP: addr(peer.t4), MAC: peer.m4}}},
		}
		if v6 {
			des.Routes = append(des.Routes,
				dataplane.Route{Dst: pfx(h.b6), Type: dataplane.RouteBlackhole},
				dataplane.Route{Dst: pfx(peer.b6), Type: dataplane.RouteVXLAN, Iface: VXLANDeviceV6, Gateway: addr(peer.t6)})
			des.VXLANV6 = &dataplane.VXLANConfig{VNI: 4096, Port: 4789, MTU: 1430,
				LocalIP: addr(h.u6), TunnelIP: addr(h.t6), MAC: h.m6,
				Peers: []dataplane.VTEP{{NodeIP: addr(peer.u6), TunnelIP: addr(peer.t6), MAC: peer.m6}}}
		}
		return des
	}
	apply(t, h1.d, desired(h1, h2, true))
	apply(t, h2.d, desired(h2, h1, true))
	mustReach(t, h1.w, h2.wl4)
	mustReach(t, h1.w, h2.wl6)
	mustReach(t, h2.w, h1.wl6)

	l, ok := vxlanLinkNamed(t, h1.ns, VXLANDeviceV6)
	if !ok {
		t.Fatal("no vxlan-v6.calico on h1")
	}
	info := l.LinkInfo.InfoData
	if l.LinkInfo.InfoKind != "vxlan" || info.ID != 4096 || info.Port != 4789 || info.Local6 != h1.u6 ||
		info.Learning || l.MTU != 1430 || l.Address != h1.m6 {
		t.Fatalf("vxlan-v6 device: %+v", l)
	}
	if out := h1.ns.MustExec(t, "ip", "-6", "addr", "show", "dev", VXLANDeviceV6); !strings.Contains(out, h1.t6+"/128") {
		t.Fatalf("IPv6 tunnel address: %s", out)
	}
	if out := h1.ns.MustExec(t, "ip", "-4", "addr", "show", "dev", VXLANDeviceV6); strings.TrimSpace(out) != "" {
		t.Fatalf("IPv4 address on %s: %s", VXLANDeviceV6, out)
	}
	if neigh := h1.ns.MustExec(t, "ip", "-6", "neigh", "show", "dev", VXLANDeviceV6); !strings.Contains(neigh, h2.t6+" lladdr "+h2.m6+" PERMANENT") {
		t.Fatalf("IPv6 neighbour entry: %s", neigh)
	}
	if fdb := h1.ns.MustExec(t, "bridge", "fdb", "show", "dev", VXLANDeviceV6); !strings.Contains(fdb, h2.m6+" dst "+h2.u6+" self permanent") {
		t.Fatalf("IPv6 fdb entry: %s", fdb)
	}
	if r := kernelRoutes(t, h1.ns, "-6", "80")[h2.b6]; r.Dev != VXLANDeviceV6 || r.Gateway != h2.t6 ||
		!strings.Contains(fmt.Sprint(r.Flags), "onlink") {
		t.Fatalf("IPv6 vxlan route: %+v", r)
	}
	// The IPv6 packets went through the IPv6 device, encapsulated.
	var stats struct {
		Stats64 struct {
			TX struct {
				Packets int `json:"packets"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	out := h1.ns.MustExec(t, "ip", "-s", "-j", "link", "show", VXLANDeviceV6)
	var ls []json.RawMessage
	if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) != 1 || json.Unmarshal(ls[0], &stats) != nil || stats.Stats64.TX.Packets == 0 {
		t.Fatalf("no packets sent on %s: %s", VXLANDeviceV6, out)
	}
	if st := apply(t, h1.d, desired(h1, h2, true)); st.Changes() != 0 {
		t.Fatalf("second apply: %+v", st)
	}

	// IPv6 VXLAN off on h1: only its device goes; IPv4 keeps flowing.
	apply(t, h1.d, desired(h1, h2, false))
	if _, ok := vxlanLinkNamed(t, h1.ns, VXLANDeviceV6); ok {
		t.Fatal("vxlan-v6.calico still present")
	}
	if _, ok := vxlanLink(t, h1.ns); !ok {
		t.Fatal("vxlan.calico went with the IPv6 device")
	}
	mustReach(t, h1.w, h2.wl4)
	if err := ping(h1.w, h2.wl6); err == nil {
		t.Fatal("remote IPv6 workload reachable with IPv6 VXLAN off")
	}
}

// Another VXLAN device holding the VNI and port (Docker's swarm overlay
// takes VNIs from 4096 on port 4789, Calico's defaults) makes the kernel
// refuse vxlan.calico: the error names the clash and the setting to change.
func TestVXLANClashNamesTheFix(t *testing.T) {
	testutil.RequireRoot(t)
	ns := newHost(t)
	ns.MustExec(t, "ip", "link", "add", "rtc1", "type", "veth", "peer", "name", "rtc2")
	ns.MustExec(t, "ip", "addr", "add", "172.31.251.1/24", "dev", "rtc1")
	ns.MustExec(t, "ip", "link", "set", "rtc1", "up")
	ns.MustExec(t, "ip", "link", "add", "dockervx", "type", "vxlan", "id", "4096", "dstport", "4789")
	h := &vxlanHost{ns: ns, underlay: "172.31.251.1", tunnel: "10.65.1.0", mac: "66:00:00:00:01:01", block: "10.65.1.0/26", wl: "10.65.1.2"}
	peer := &vxlanHost{underlay: "172.31.251.2", tunnel: "10.65.2.0", block: "10.65.2.0/26"}
	h.w = wireWorkload(t, ns, "calivx", h.wl)
	d := newDriver(t, ns)
	d.SetDesired(h.desired(peer, "66:00:00:00:02:02", 1450))
	_, err := d.Apply(context.Background())
	if err == nil || !strings.Contains(err.Error(), "another VXLAN device on this host uses that VNI and port") ||
		!strings.Contains(err.Error(), "vxlanVNI") {
		t.Fatalf("apply: %v", err)
	}
	// With another VNI it works beside the foreign device.
	des := h.desired(peer, "66:00:00:00:02:02", 1450)
	des.VXLAN.VNI = 7000000
	apply(t, d, des)
	if l, ok := vxlanLink(t, ns); !ok || l.LinkInfo.InfoData.ID != 7000000 {
		t.Fatalf("vxlan device: %+v", l)
	}
}
