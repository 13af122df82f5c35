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

// VXLAN defaults (Felix's): VNI 4096, UDP port 4789, and 50 bytes of
// encapsulation overhead for IPv4.
const (
	defaultVXLANVNI       = 4096
	defaultVXLANPort      = 4789
	defaultVXLANMTU       = 1450
	vxlanOverhead         = 50
	vxlanDevice           = "vxlan.calico"
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

// nodeIPv4 returns a node's IPv4 address and its subnet: spec.bgp.ipv4Address
// (a CIDR such as 10.0.0.2/24), else the first IPv4 of spec.addresses
// (InternalIP first, then ExternalIP, then any).
func nodeIPv4(n *api.Node) (netip.Addr, netip.Prefix) {
	if n == nil {
		return netip.Addr{}, netip.Prefix{}
	}
	if n.Spec.BGP != nil && n.Spec.BGP.IPv4Address != "" {
		if a, p, ok := addrAndSubnet(n.Spec.BGP.IPv4Address); ok && a.Is4() {
			return a, p
		}
	}
	for _, want := range []string{"InternalIP", "ExternalIP", ""} {
		for _, na := range n.Spec.Addresses {
			if want != "" && na.Type != want {
				continue
			}
			if a, p, ok := addrAndSubnet(na.Address); ok && a.Is4() {
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

// vtepMAC is the node's VXLAN MAC: the one it published, else the one Felix
// derives from the node name ("f" then the first 5 bytes of its SHA-1), so
// both ends agree without the Node resource carrying it.
func vtepMAC(name string, n *api.Node) string {
	if n != nil && n.Spec.VXLANTunnelMACAddr != "" {
		return strings.ToLower(n.Spec.VXLANTunnelMACAddr)
	}
	h := sha1.Sum([]byte(name))
	b := append([]byte("f"), h[:5]...)
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5])
}

func vtepOf(name string, n *api.Node) (dataplane.VTEP, bool) {
	ip, _ := nodeIPv4(n)
	if !ip.IsValid() || n.Spec.IPv4VXLANTunnelAddr == "" {
		return dataplane.VTEP{}, false
	}
	tun, ok := parseAddr(n.Spec.IPv4VXLANTunnelAddr)
	if !ok || !tun.Is4() {
		return dataplane.VTEP{}, false
	}
	return dataplane.VTEP{NodeIP: ip, TunnelIP: tun, MAC: vtepMAC(name, n)}, true
}

// vxlanConfig decides whether this host runs vxlan.calico and with what.
// It is on when FelixConfiguration vxlanEnabled says so or, unset, when an
// IPv4 pool uses VXLAN; it also needs this node's IPv4 and tunnel address.
func vxlanConfig(in *routeInput, pools []poolInfo) (*dataplane.VXLANConfig, map[string]dataplane.VTEP, netip.Prefix) {
	enabled := false
	if in.felix != nil && in.felix.VXLANEnabled != nil {
		enabled = *in.felix.VXLANEnabled
	} else {
		for _, p := range pools {
			if p.cidr.Addr().Is4() && isVXLANMode(p.pool.Spec.VXLANMode) {
				enabled = true
				break
			}
		}
	}
	if !enabled {
		return nil, nil, netip.Prefix{}
	}
	me := in.nodes[in.node]
	mine, ok := vtepOf(in.node, me)
	if !ok {
		return nil, nil, netip.Prefix{}
	}
	_, subnet := nodeIPv4(me)
	cfg := &dataplane.VXLANConfig{
		VNI: defaultVXLANVNI, Port: defaultVXLANPort, MTU: defaultVXLANMTU,
		LocalIP: mine.NodeIP, TunnelIP: mine.TunnelIP, MAC: mine.MAC,
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
	case in.felix != nil && in.felix.VXLANMTU != nil && *in.felix.VXLANMTU > 0:
		cfg.MTU = *in.felix.VXLANMTU
	case in.hostMTU > vxlanOverhead:
		cfg.MTU = in.hostMTU - vxlanOverhead
	}
	vteps := make(map[string]dataplane.VTEP)
	for name, n := range in.nodes {
		if name == in.node {
			continue
		}
		if v, ok := vtepOf(name, n); ok {
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

// computeRoutes returns the routes this host should have and its VXLAN
// device, if any.
func computeRoutes(in *routeInput) ([]dataplane.Route, *dataplane.VXLANConfig) {
	pools := parsePools(in.pools)
	vx, vteps, subnet := vxlanConfig(in, pools)

	var cands []dataplane.Route
	for _, l := range in.local {
		for _, a := range l.addrs {
			cands = append(cands, dataplane.Route{Dst: a, Type: dataplane.RouteLocal, Iface: l.iface})
		}
	}
	// vxlanTo routes dst over VXLAN to node when dst's pool asks for it.
	vxlanTo := func(dst netip.Prefix, node string) {
		if !dst.Addr().Is4() {
			return
		}
		v, ok := vteps[node]
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
			if subnet.IsValid() && subnet.Contains(v.NodeIP) {
				return // same subnet: plain routing (BGP) reaches it
			}
		default:
			return
		}
		cands = append(cands, dataplane.Route{Dst: dst, Type: dataplane.RouteVXLAN, Iface: vxlanDevice, Gateway: v.TunnelIP})
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
		case vx != nil && b.Node != "":
			vxlanTo(cidr, b.Node)
		}
	}
	// Most specific first, so that overlapping blocks resolve the same way
	// whatever the input order.
	slices.Sort(blockBits)
	slices.Reverse(blockBits)
	if vx != nil && in.remote != nil {
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
	routes := slices.CompactFunc(cands, func(a, b dataplane.Route) bool { return a.Dst == b.Dst })
	if len(routes) == 0 {
		routes = nil
	}
	return routes, vx
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
	// Felix accepts a comma-separated list; this dataplane owns one prefix.
	if p, _, _ := strings.Cut(f.InterfacePrefix, ","); strings.TrimSpace(p) != "" {
		h.InterfacePrefix = strings.TrimSpace(p)
	}
	return h
}
