package calc

import (
	"cmp"
	"crypto/sha1"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/dataplane"
)

// VXLAN defaults (Felix's): VNI 4096, UDP port 4789 (both families), and
// 50 bytes of encapsulation overhead over an IPv4 underlay, 70 over IPv6.
const (
	defaultVXLANVNI       = 4096
	defaultVXLANPort      = 4789
	defaultVXLANMTU       = 1450
	vxlanOverhead         = 50
	vxlanOverheadV6       = 70
	defaultIfacePrefix    = "cali"
	defaultEndpointToHost = "Drop"
)

// routeLocalEP is a programmed local endpoint, as routes need it.
type routeLocalEP struct {
	iface string
	addrs []netip.Prefix
}

// routeInput is everything routes and the VXLAN device depend on.
type routeInput struct {
	node    string
	local   []routeLocalEP
	blocks  []Block
	pools   []*api.IPPool
	nodes   map[string]*api.Node
	felix   *api.FelixConfigurationSpec
	hostMTU int
	// remote calls yield for every workload endpoint on another host; only
	// used when VXLAN is on (to route borrowed addresses).
	remote func(yield func(node string, addrs []netip.Prefix))
}

type poolInfo struct {
	cidr netip.Prefix
	pool *api.IPPool
}

func parsePools(pools []*api.IPPool) []poolInfo {
	var out []poolInfo
	for _, p := range pools {
		if c, ok := parsePrefixOrAddr(p.Spec.CIDR); ok {
			out = append(out, poolInfo{cidr: c, pool: p})
		}
	}
	// Most specific first, so the first pool that contains a prefix is the
	// one it belongs to.
	slices.SortStableFunc(out, func(a, b poolInfo) int { return cmp.Compare(b.cidr.Bits(), a.cidr.Bits()) })
	return out
}

func poolFor(pools []poolInfo, p netip.Prefix) *api.IPPool {
	for _, pi := range pools {
		if pi.cidr.Bits() <= p.Bits() && pi.cidr.Contains(p.Addr()) {
			return pi.pool
		}
	}
	return nil
}

func isVXLANMode(m string) bool {
	return strings.EqualFold(m, api.EncapAlways) || strings.EqualFold(m, api.EncapCrossSubnet)
}

// nodeIP returns a node's address of one family (v6: IPv6) and its subnet:
// spec.bgp.ipv4Address or ipv6Address (a CIDR such as 10.0.0.2/24), else
// the first of that family in spec.addresses (InternalIP first, then
// ExternalIP, then any).
func nodeIP(n *api.Node, v6 bool) (netip.Addr, netip.Prefix) {
	if n == nil {
		return netip.Addr{}, netip.Prefix{}
	}
	if n.Spec.BGP != nil {
		bgpAddr := n.Spec.BGP.IPv4Address
		if v6 {
			bgpAddr = n.Spec.BGP.IPv6Address
		}
		if a, p, ok := addrAndSubnet(bgpAddr); ok && a.Is6() == v6 {
			return a, p
		}
	}
	for _, want := range []string{"InternalIP", "ExternalIP", ""} {
		for _, na := range n.Spec.Addresses {
			if want != "" && na.Type != want {
				continue
			}
			if a, p, ok := addrAndSubnet(na.Address); ok && a.Is6() == v6 {
				return a, p
			}
		}
	}
	return netip.Addr{}, netip.Prefix{}
}

func addrAndSubnet(s string) (netip.Addr, netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr().Unmap(), p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return a, netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Addr{}, netip.Prefix{}, false
}

func parseAddr(s string) (netip.Addr, bool) {
	a, _, ok := addrAndSubnet(s)
	return a, ok
}

// vxlanFamily is what differs between the IPv4 and the IPv6 VXLAN device.
type vxlanFamily struct {
	v6       bool
	device   string
	overhead int
	// tunnel and mac read the Node fields of this family's VTEP.
	tunnel, mac func(*api.NodeSpec) string
	// macSalt is appended to the node name before hashing for the derived
	// MAC, as Felix does ("-v6"), so the two devices differ.
	macSalt string
	// mtu is FelixConfiguration's vxlanMTU or vxlanMTUV6.
	mtu func(*api.FelixConfigurationSpec) *int
}

var (
	vxlanV4 = vxlanFamily{
		device: dataplane.VXLANDevice, overhead: vxlanOverhead,
		tunnel: func(s *api.NodeSpec) string { return s.IPv4VXLANTunnelAddr },
		mac:    func(s *api.NodeSpec) string { return s.VXLANTunnelMACAddr },
		mtu:    func(f *api.FelixConfigurationSpec) *int { return f.VXLANMTU },
	}
	vxlanV6 = vxlanFamily{
		v6: true, device: dataplane.VXLANDeviceV6, overhead: vxlanOverheadV6, macSalt: "-v6",
		tunnel: func(s *api.NodeSpec) string { return s.IPv6VXLANTunnelAddr },
		mac:    func(s *api.NodeSpec) string { return s.VXLANTunnelMACAddrV6 },
		mtu:    func(f *api.FelixConfigurationSpec) *int { return f.VXLANMTUV6 },
	}
)

// vtepMAC is the node's VXLAN MAC for the family: the one it published,
// else the one Felix derives from the node name ("f" then the first 5 bytes
// of the SHA-1 of the name, "-v6" appended for IPv6), so both ends agree
// without the Node resource carrying it.
func (f vxlanFamily) vtepMAC(name string, n *api.Node) string {
	if n != nil && f.mac(&n.Spec) != "" {
		return strings.ToLower(f.mac(&n.Spec))
	}
	h := sha1.Sum([]byte(name + f.macSalt))
	b := append([]byte("f"), h[:5]...)
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5])
}

func (f vxlanFamily) vtepOf(name string, n *api.Node) (dataplane.VTEP, bool) {
	ip, _ := nodeIP(n, f.v6)
	if !ip.IsValid() || f.tunnel(&n.Spec) == "" {
		return dataplane.VTEP{}, false
	}
	tun, ok := parseAddr(f.tunnel(&n.Spec))
	if !ok || tun.Is6() != f.v6 {
		return dataplane.VTEP{}, false
	}
	return dataplane.VTEP{NodeIP: ip, TunnelIP: tun, MAC: f.vtepMAC(name, n)}, true
}

// enabled says whether this host runs the family's device: for IPv4 when
// FelixConfiguration vxlanEnabled says so or, unset, when an IPv4 pool uses
// VXLAN; for IPv6 when an IPv6 pool does (Felix has no IPv6 override).
func (f vxlanFamily) enabled(in *routeInput, pools []poolInfo) bool {
	if !f.v6 && in.felix != nil && in.felix.VXLANEnabled != nil {
		return *in.felix.VXLANEnabled
	}
	for _, p := range pools {
		if p.cidr.Addr().Is6() == f.v6 && isVXLANMode(p.pool.Spec.VXLANMode) {
			return true
		}
	}
	return false
}

// vxlanConfig decides whether this host runs the family's VXLAN device and
// with what: it also needs this node's underlay address and tunnel address
// of that family. It returns the remote VTEPs by node and this node's subnet
// (for CrossSubnet).
func vxlanConfig(in *routeInput, pools []poolInfo, fam vxlanFamily) (*dataplane.VXLANConfig, map[string]dataplane.VTEP, netip.Prefix) {
	if !fam.enabled(in, pools) {
		return nil, nil, netip.Prefix{}
	}
	me := in.nodes[in.node]
	mine, ok := fam.vtepOf(in.node, me)
	if !ok {
		return nil, nil, netip.Prefix{}
	}
	_, subnet := nodeIP(me, fam.v6)
	cfg := &dataplane.VXLANConfig{
		VNI: defaultVXLANVNI, Port: defaultVXLANPort, MTU: defaultVXLANMTU,
		LocalIP: mine.NodeIP, TunnelIP: mine.TunnelIP, MAC: mine.MAC,
	}
	if fam.v6 {
		cfg.MTU = defaultVXLANMTU + vxlanOverhead - vxlanOverheadV6
	}
	if f := in.felix; f != nil {
		if f.VXLANVNI != nil && *f.VXLANVNI > 0 {
			cfg.VNI = *f.VXLANVNI
		}
		if f.VXLANPort != nil && *f.VXLANPort > 0 {
			cfg.Port = *f.VXLANPort
		}
	}
	switch {
	case in.felix != nil && fam.mtu(in.felix) != nil && *fam.mtu(in.felix) > 0:
		cfg.MTU = *fam.mtu(in.felix)
	case in.hostMTU > fam.overhead:
		cfg.MTU = in.hostMTU - fam.overhead
	}
	vteps := make(map[string]dataplane.VTEP)
	for name, n := range in.nodes {
		if name == in.node {
			continue
		}
		if v, ok := fam.vtepOf(name, n); ok {
			vteps[name] = v
			cfg.Peers = append(cfg.Peers, v)
		}
	}
	slices.SortFunc(cfg.Peers, func(a, b dataplane.VTEP) int {
		if c := a.NodeIP.Compare(b.NodeIP); c != 0 {
			return c
		}
		if c := a.TunnelIP.Compare(b.TunnelIP); c != 0 {
			return c
		}
		return strings.Compare(a.MAC, b.MAC)
	})
	return cfg, vteps, subnet
}

// computeRoutes returns the routes this host should have and its IPv4 and
// IPv6 VXLAN devices, if any.
func computeRoutes(in *routeInput) (routes []dataplane.Route, vx4, vx6 *dataplane.VXLANConfig) {
	pools := parsePools(in.pools)
	type famState struct {
		fam    vxlanFamily
		vteps  map[string]dataplane.VTEP
		subnet netip.Prefix
	}
	var v4, v6 famState
	v4.fam, v6.fam = vxlanV4, vxlanV6
	vx4, v4.vteps, v4.subnet = vxlanConfig(in, pools, vxlanV4)
	vx6, v6.vteps, v6.subnet = vxlanConfig(in, pools, vxlanV6)
	vxOn := vx4 != nil || vx6 != nil

	var cands []dataplane.Route
	for _, l := range in.local {
		for _, a := range l.addrs {
			cands = append(cands, dataplane.Route{Dst: a, Type: dataplane.RouteLocal, Iface: l.iface})
		}
	}
	// vxlanTo routes dst over VXLAN to node when dst's pool asks for it.
	vxlanTo := func(dst netip.Prefix, node string) {
		fs := &v4
		if dst.Addr().Is6() {
			fs = &v6
		}
		v, ok := fs.vteps[node]
		if !ok {
			return
		}
		pool := poolFor(pools, dst)
		if pool == nil {
			return
		}
		switch {
		case strings.EqualFold(pool.Spec.VXLANMode, api.EncapAlways):
		case strings.EqualFold(pool.Spec.VXLANMode, api.EncapCrossSubnet):
			if fs.subnet.IsValid() && fs.subnet.Contains(v.NodeIP) {
				return // same subnet: plain routing (BGP) reaches it
			}
		default:
			return
		}
		cands = append(cands, dataplane.Route{Dst: dst, Type: dataplane.RouteVXLAN, Iface: fs.fam.device, Gateway: v.TunnelIP})
	}
	owner := make(map[netip.Prefix]string, len(in.blocks))
	var blockBits []int
	for _, b := range in.blocks {
		cidr := b.CIDR.Masked()
		owner[cidr] = b.Node
		if !slices.Contains(blockBits, cidr.Bits()) {
			blockBits = append(blockBits, cidr.Bits())
		}
		switch {
		case b.Node == in.node:
			cands = append(cands, dataplane.Route{Dst: cidr, Type: dataplane.RouteBlackhole})
		case vxOn && b.Node != "":
			vxlanTo(cidr, b.Node)
		}
	}
	// Most specific first, so that overlapping blocks resolve the same way
	// whatever the input order.
	slices.Sort(blockBits)
	slices.Reverse(blockBits)
	if vxOn && in.remote != nil {
		// Addresses a host uses from a block affine to another host (or to
		// none) are not covered by that host's block route.
		in.remote(func(node string, addrs []netip.Prefix) {
			if node == "" || node == in.node {
				return
			}
			for _, a := range addrs {
				if blockOwner(owner, blockBits, a) == node {
					continue
				}
				vxlanTo(a, node)
			}
		})
	}
	// One route per destination; on a clash local beats blackhole beats
	// VXLAN, then the lowest interface/gateway: deterministic whatever the
	// input order.
	slices.SortFunc(cands, func(a, b dataplane.Route) int {
		if c := comparePrefix(a.Dst, b.Dst); c != 0 {
			return c
		}
		if c := cmp.Compare(routeRank(a.Type), routeRank(b.Type)); c != 0 {
			return c
		}
		if c := strings.Compare(a.Iface, b.Iface); c != 0 {
			return c
		}
		return a.Gateway.Compare(b.Gateway)
	})
	routes = slices.CompactFunc(cands, func(a, b dataplane.Route) bool { return a.Dst == b.Dst })
	if len(routes) == 0 {
		routes = nil
	}
	return routes, vx4, vx6
}

func routeRank(t dataplane.RouteType) int {
	switch t {
	case dataplane.RouteLocal:
		return 0
	case dataplane.RouteBlackhole:
		return 1
	default:
		return 2
	}
}

// blockOwner returns the node the block holding a is affine to, "" if none.
func blockOwner(owner map[netip.Prefix]string, bits []int, a netip.Prefix) string {
	for _, b := range bits {
		if b > a.Bits() {
			continue
		}
		if n, ok := owner[netip.PrefixFrom(a.Addr(), b).Masked()]; ok {
			return n
		}
	}
	return ""
}

// computeNAT: natOutgoing pools (not disabled) masquerade traffic leaving
// every pool.
func computeNAT(pools []*api.IPPool) dataplane.NATConfig {
	var n dataplane.NATConfig
	for _, p := range pools {
		c, ok := parsePrefixOrAddr(p.Spec.CIDR)
		if !ok {
			continue
		}
		n.AllPools = append(n.AllPools, c)
		if p.Spec.NATOutgoing && !p.Spec.Disabled {
			n.MasqueradePools = append(n.MasqueradePools, c)
		}
	}
	slices.SortFunc(n.AllPools, comparePrefix)
	n.AllPools = slices.Compact(n.AllPools)
	slices.SortFunc(n.MasqueradePools, comparePrefix)
	n.MasqueradePools = slices.Compact(n.MasqueradePools)
	return n
}

// computeHost reads the host-wide settings from FelixConfiguration. Calico
// spells the action in capitals (DROP) or not; unknown values fail closed.
func computeHost(f *api.FelixConfigurationSpec) dataplane.HostConfig {
	h := dataplane.HostConfig{EndpointToHostAction: defaultEndpointToHost, InterfacePrefix: defaultIfacePrefix}
	if f == nil {
		return h
	}
	switch {
	case strings.EqualFold(f.DefaultEndpointToHostAction, "accept"):
		h.EndpointToHostAction = "Accept"
	case strings.EqualFold(f.DefaultEndpointToHostAction, "return"):
		h.EndpointToHostAction = "Return"
	}
	// FelixConfiguration interfacePrefix is stored but not read: this
	// project names every workload interface cali*, so another prefix would
	// leave them unmatched by the dataplane (api warns that it has no effect).
	return h
}
