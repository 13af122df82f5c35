package calc

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/dataplane"
)

// Published ports (WorkloadEndpoint spec.ports[] with a hostPort).
//
// A port with hostPort H, port P and hostIP I of a local endpoint becomes
// one dataplane.HostPort per address family it serves:
//   - hostIP "": every family the endpoint has an address of;
//   - hostIP "0.0.0.0" / "::": every local address of IPv4 / IPv6 (HostIP
//     left zero);
//   - any other hostIP: that address only, served by the endpoint's address
//     of the same family.
//
// The target is the endpoint's first single address of the family. A port
// that cannot be served (no address of the family, a protocol other than
// TCP or UDP) is left out. When two endpoints claim the same key
// (protocol, family, host IP, host port), the endpoint with the smaller ID
// keeps it: the plugin refuses such a second claim, so this only settles
// hand-written conflicts deterministically.

// normalPorts keeps the ports with a hostPort or a name (named ports
// feed named-port sets), in a form that compares with
// == (the protocol as a name, never a pointer).
func normalPorts(ps []api.WorkloadEndpointPort) []api.WorkloadEndpointPort {
	var out []api.WorkloadEndpointPort
	for _, p := range ps {
		if p.HostPort == 0 && p.Name == "" {
			continue
		}
		proto := p.Protocol.Name
		if n, err := p.Protocol.NumberValue(); err == nil {
			proto = strconv.Itoa(int(n))
		}
		out = append(out, api.WorkloadEndpointPort{Name: p.Name, Protocol: api.Protocol{Name: proto},
			Port: p.Port, HostPort: p.HostPort, HostIP: strings.TrimSpace(p.HostIP)})
	}
	return out
}

// endpointHostPorts expands one endpoint's published ports (ports as
// normalPorts returns them; addrs sorted).
func endpointHostPorts(id string, ports []api.WorkloadEndpointPort, addrs []netip.Prefix) []dataplane.HostPort {
	if len(ports) == 0 {
		return nil
	}
	var v4, v6 netip.Addr
	for _, a := range addrs {
		if a.Bits() != a.Addr().BitLen() {
			continue
		}
		if a.Addr().Is4() && !v4.IsValid() {
			v4 = a.Addr()
		}
		if a.Addr().Is6() && !v6.IsValid() {
			v6 = a.Addr()
		}
	}
	var out []dataplane.HostPort
	for _, p := range ports {
		n, err := p.Protocol.NumberValue()
		if err != nil || (n != 6 && n != 17) || p.HostPort == 0 || p.Port == 0 {
			continue
		}
		add := func(hostIP, target netip.Addr) {
			if target.IsValid() {
				out = append(out, dataplane.HostPort{Protocol: n, HostIP: hostIP, HostPort: p.HostPort,
					Target: target, Port: p.Port, Endpoint: id})
			}
		}
		if p.HostIP == "" {
			add(netip.Addr{}, v4)
			add(netip.Addr{}, v6)
			continue
		}
		ip, err := netip.ParseAddr(p.HostIP)
		if err != nil || ip.Zone() != "" {
			continue
		}
		ip = ip.Unmap()
		target := v4
		if ip.Is6() {
			target = v6
		}
		if ip.IsUnspecified() {
			ip = netip.Addr{}
		}
		add(ip, target)
	}
	return out
}

// resolveHostPorts sorts the ports and keeps one per key: the one of the
// endpoint with the smallest ID.
func resolveHostPorts(all []dataplane.HostPort) []dataplane.HostPort {
	if len(all) == 0 {
		return nil
	}
	slices.SortFunc(all, func(a, b dataplane.HostPort) int {
		ka, kb := a.Key(), b.Key()
		if ka != kb {
			return dataplane.CompareHostPort(dataplane.HostPort{Protocol: ka.Protocol, HostIP: ka.HostIP, HostPort: ka.HostPort, Target: a.Target},
				dataplane.HostPort{Protocol: kb.Protocol, HostIP: kb.HostIP, HostPort: kb.HostPort, Target: b.Target})
		}
		if c := strings.Compare(a.Endpoint, b.Endpoint); c != 0 {
			return c
		}
		return dataplane.CompareHostPort(a, b)
	})
	out := all[:0]
	for _, h := range all {
		if n := len(out); n > 0 && out[n-1].Key() == h.Key() {
			continue
		}
		out = append(out, h)
	}
	return out
}
