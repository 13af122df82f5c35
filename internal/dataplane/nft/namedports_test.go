package nft

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/dataplane"
)

// TestRenderNamedPorts: a named-port set per family with address .
// protocol . port elements, the lookups of both sides, and a referenced
// set that is missing made empty (with a problem) rather than failing the
// batch.
func TestRenderNamedPorts(t *testing.T) {
	d := &dataplane.Desired{
		Endpoints: []dataplane.Endpoint{{ID: "ns/a", Iface: "cali1", Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")},
			IngressPolicies: []string{"gnp:p"}}},
		Chains: []dataplane.PolicyChain{{ID: "gnp:p", Ingress: []dataplane.Rule{
			{Action: dataplane.Allow, Dst: dataplane.Match{PortSets: []string{"s-http"}}},
			{Action: dataplane.Deny, Src: dataplane.Match{NotPortSets: []string{"s-gone"}}},
		}}},
		Sets: []dataplane.IPSet{{ID: "s-http", Selector: "all() namedPort(http/any)", NamedPort: "http", PortMembers: []dataplane.AddrProtoPort{
			{Addr: netip.MustParseAddr("10.0.0.1"), Protocol: 6, Port: 80},
			{Addr: netip.MustParseAddr("fd00::1"), Protocol: 17, Port: 8080},
		}}},
	}
	m := compile(d, nil)
	out := m.render()
	for _, want := range []string{
		"set " + portSetName("s-http", 4) + " { # s-http all() namedPort(http/any)\n\t\ttype ipv4_addr . inet_proto . inet_service",
		"10.0.0.1 . tcp . 80",
		"fd00::1 . udp . 8080",
		"meta l4proto { tcp, udp, sctp } ip daddr . meta l4proto . th dport @" + portSetName("s-http", 4),
		"ip6 daddr . meta l4proto . th dport @" + portSetName("s-http", 6),
		"ip saddr . meta l4proto . th sport != @" + portSetName("s-gone", 4),
		"set " + portSetName("s-gone", 6) + " { # s-gone (missing)\n\t\ttype ipv6_addr . inet_proto . inet_service",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("render lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(strings.Join(m.problems, "\n"), "named-port set s-gone is not in Desired.Sets") {
		t.Errorf("problems %q do not report the missing set", m.problems)
	}
}
