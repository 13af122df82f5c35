package calc

import (
	"net/netip"
	"testing"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/selector"
)

// Builders that keep the tables readable.

func wep(ns, name, node, iface string, ips []string, labels map[string]string, profiles ...string) api.WorkloadEndpoint {
	w := api.WorkloadEndpoint{}
	w.Name, w.Namespace, w.Labels = name, ns, labels
	w.Spec = api.WorkloadEndpointSpec{
		Orchestrator: "docker", Node: node, InterfaceName: iface, IPNetworks: ips, Profiles: profiles,
	}
	return w
}

func gnp(name string, order *float64, sel string, types []string, ingress, egress []api.Rule) api.GlobalNetworkPolicy {
	p := api.GlobalNetworkPolicy{}
	p.Name = name
	p.Spec = api.PolicySpec{Order: order, Selector: sel, Types: types, Ingress: ingress, Egress: egress}
	return p
}

func netpol(ns, name string, order *float64, sel string, types []string, ingress, egress []api.Rule) api.NetworkPolicy {
	p := api.NetworkPolicy{}
	p.Name, p.Namespace = name, ns
	p.Spec = api.PolicySpec{Order: order, Selector: sel, Types: types, Ingress: ingress, Egress: egress}
	return p
}

func profile(name string, labels map[string]string, ingress, egress []api.Rule) api.Profile {
	p := api.Profile{}
	p.Name = name
	p.Spec = api.ProfileSpec{Ingress: ingress, Egress: egress, LabelsToApply: labels}
	return p
}

func pool(name, cidr, vxlan string, nat, disabled bool) api.IPPool {
	p := api.IPPool{}
	p.Name = name
	p.Spec = api.IPPoolSpec{CIDR: cidr, VXLANMode: vxlan, NATOutgoing: nat, Disabled: disabled}
	return p
}

func node(name, ipv4, tunnel, mac string) api.Node {
	n := api.Node{}
	n.Name = name
	if ipv4 != "" {
		n.Spec.BGP = &api.NodeBGPSpec{IPv4Address: ipv4}
	}
	n.Spec.IPv4VXLANTunnelAddr = tunnel
	n.Spec.VXLANTunnelMACAddr = mac
	return n
}

func ord(f float64) *float64 { return &f }
func intp(i int) *int        { return &i }
func u8(i uint8) *uint8      { return &i }

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func pfxs(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, pfx(s))
	}
	return out
}
func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func proto(name string) *api.Protocol { return &api.Protocol{Name: name} }

func allow() api.Rule { return api.Rule{Action: api.ActionAllow} }
func deny() api.Rule  { return api.Rule{Action: api.ActionDeny} }

// setID is the set ID of a selector text, via its canonical form.
func setID(t testing.TB, sel string) string {
	t.Helper()
	c, err := selector.Canonical(sel)
	if err != nil {
		t.Fatalf("canonical %q: %v", sel, err)
	}
	return setIDFor(c)
}

func canon(t testing.TB, sel string) string {
	t.Helper()
	c, err := selector.Canonical(sel)
	if err != nil {
		t.Fatalf("canonical %q: %v", sel, err)
	}
	return c
}
