package calc

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/dataplane"
)

// Transport protocol numbers used in control-plane port lists.
const (
	ProtoTCP uint8 = 6
	ProtoUDP uint8 = 17
)

// DefaultControlPlanePorts is THE list of a node's control-plane ports that
// workloads may not reach on any node unless a policy allows it. A feature
// that opens a new listening port on nodes adds it here (and a configurable
// one is added by the agent through Calculator.SetControlPlanePorts or
// Snapshot.ControlPlanePorts). Returned fresh on every call.
func DefaultControlPlanePorts() []dataplane.ProtoPort {
	return []dataplane.ProtoPort{
		{Protocol: ProtoTCP, Port: 179},  // BGP (GoBGP; BGPConfiguration listenPort adds others)
		{Protocol: ProtoTCP, Port: 2379}, // etcd client (embedded datastore)
		{Protocol: ProtoTCP, Port: 2380}, // etcd peer (embedded datastore cluster)
		{Protocol: ProtoTCP, Port: 9091}, // Prometheus metrics (FelixConfiguration prometheusMetricsPort)
		{Protocol: ProtoTCP, Port: 9096}, // flows API for other hosts' `calico flows` (flows.DefaultPort, --flows-port)
		{Protocol: ProtoTCP, Port: 9099}, // health (FelixConfiguration healthPort)
		{Protocol: ProtoUDP, Port: 4789}, // VXLAN: an injected packet would bypass anti-spoofing (vxlanPort)
	}
}

// computeControlPlane builds the control-plane description from every Node's
// addresses and the port list: the defaults, the ports FelixConfiguration
// names, and extra (what the agent is configured with).
func computeControlPlane(nodes map[string]*api.Node, felix *api.FelixConfigurationSpec, extra []dataplane.ProtoPort) dataplane.ControlPlane {
	var cp dataplane.ControlPlane
	for _, n := range nodes {
		cp.Addrs = append(cp.Addrs, nodeAddrs(n)...)
	}
	slices.SortFunc(cp.Addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	cp.Addrs = slices.Compact(cp.Addrs)
	if len(cp.Addrs) == 0 {
		cp.Addrs = nil
	}

	ports := DefaultControlPlanePorts()
	if felix != nil {
		for _, p := range []struct {
			proto uint8
			v     *int
		}{{ProtoTCP, felix.HealthPort}, {ProtoTCP, felix.PrometheusMetricsPort}, {ProtoUDP, felix.VXLANPort}} {
			if p.v != nil && *p.v > 0 && *p.v <= 65535 {
				ports = append(ports, dataplane.ProtoPort{Protocol: p.proto, Port: uint16(*p.v)})
			}
		}
	}
	for _, p := range extra {
		if p.Port != 0 && p.Protocol != 0 {
			ports = append(ports, p)
		}
	}
	slices.SortFunc(ports, compareProtoPort)
	cp.Ports = slices.Compact(ports)
	return cp
}

func compareProtoPort(a, b dataplane.ProtoPort) int {
	if a.Protocol != b.Protocol {
		return int(a.Protocol) - int(b.Protocol)
	}
	return int(a.Port) - int(b.Port)
}

// nodeAddrs lists the addresses a Node declares: its BGP addresses, its
// VXLAN tunnel addresses and spec.addresses. Each may be an address or an
// address with prefix length; unparsable and unspecified ones are skipped
// (validation reports them).
func nodeAddrs(n *api.Node) []netip.Addr {
	var raw []string
	if b := n.Spec.BGP; b != nil {
		raw = append(raw, b.IPv4Address, b.IPv6Address, b.IPv4IPIPTunnelAddr)
	}
	raw = append(raw, n.Spec.IPv4VXLANTunnelAddr, n.Spec.IPv6VXLANTunnelAddr)
	for _, a := range n.Spec.Addresses {
		raw = append(raw, a.Address)
	}
	var out []netip.Addr
	for _, s := range raw {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		var a netip.Addr
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				continue
			}
			a = p.Addr()
		} else {
			var err error
			if a, err = netip.ParseAddr(s); err != nil {
				continue
			}
		}
		a = a.Unmap().WithZone("")
		if a.IsUnspecified() || a.IsLoopback() {
			continue
		}
		out = append(out, a)
	}
	return out
}
