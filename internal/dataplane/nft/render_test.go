package nft

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/calico-docker/calico/internal/dataplane"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func pfx(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func u8(v uint8) *uint8 { return &v }

// goldenCases are Desired values whose rendering is pinned in testdata/.
func goldenCases() map[string]*dataplane.Desired {
	return map[string]*dataplane.Desired{
		"empty": {},
		"profiles": {
			Endpoints: []dataplane.Endpoint{
				{ID: "ns/a", Iface: "cali1a", Addrs: pfx("10.65.0.1/32", "fd00::1/128"), Profiles: []string{"profile:net1"}},
				{ID: "ns/b", Iface: "cali1b", Addrs: pfx("10.65.0.2/32"), Profiles: []string{"profile:net1"}},
				{ID: "ns/c", Iface: "cali1c", Addrs: pfx("10.65.0.3/32")},
			},
			Chains: []dataplane.PolicyChain{{
				ID:      "profile:net1",
				Ingress: []dataplane.Rule{{Action: dataplane.Allow, Src: dataplane.Match{Sets: []string{"s-net1"}}}},
				Egress:  []dataplane.Rule{{Action: dataplane.Allow}},
			}},
			Sets: []dataplane.IPSet{{ID: "s-net1", Selector: "has(net1)", Members: pfx("10.65.0.1/32", "10.65.0.2/32", "fd00::1/128")}},
			NAT:  dataplane.NATConfig{MasqueradePools: pfx("10.65.0.0/16"), AllPools: pfx("10.65.0.0/16", "fd00::/64")},
			HostPorts: []dataplane.HostPort{
				{Protocol: 6, HostPort: 8080, Target: netip.MustParseAddr("10.65.0.1"), Port: 80, Endpoint: "ns/a"},
				{Protocol: 6, HostIP: netip.MustParseAddr("192.0.2.1"), HostPort: 8080, Target: netip.MustParseAddr("10.65.0.2"), Port: 80, Endpoint: "ns/b"},
				{Protocol: 6, HostPort: 8080, Target: netip.MustParseAddr("fd00::1"), Port: 80, Endpoint: "ns/a"},
				{Protocol: 6, HostIP: netip.MustParseAddr("fd00::9"), HostPort: 8443, Target: netip.MustParseAddr("fd00::1"), Port: 443, Endpoint: "ns/a"},
				{Protocol: 17, HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 53, Target: netip.MustParseAddr("10.65.0.3"), Port: 53, Endpoint: "ns/c"},
				{Protocol: 17, HostPort: 5353, Target: netip.MustParseAddr("10.65.0.3"), Port: 53, Endpoint: "ns/c"},
			},
			ControlPlane: dataplane.ControlPlane{
				Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::1")},
				Ports: []dataplane.ProtoPort{{Protocol: 6, Port: 179}, {Protocol: 6, Port: 2379}, {Protocol: 17, Port: 4789}},
			},
		},
		"policies": {
			Endpoints: []dataplane.Endpoint{{
				ID: "ns/web", Iface: "caliweb", Addrs: pfx("10.65.1.1/32", "fd00::1:1/128"),
				IngressPolicies: []string{"gnp:deny-bad", "policy:ns/web"}, EgressPolicies: []string{"policy:ns/web"},
				Profiles: []string{"profile:ns", "profile:extra"},
			}},
			Chains: []dataplane.PolicyChain{
				{ID: "gnp:deny-bad", Ingress: []dataplane.Rule{
					{Action: dataplane.Log, Src: dataplane.Match{Nets: pfx("192.0.2.0/24")}},
					{Action: dataplane.Deny, Src: dataplane.Match{Nets: pfx("192.0.2.0/24", "198.51.100.7/32", "2001:db8::/32")}},
					{Action: dataplane.Pass, Protocol: u8(6), Dst: dataplane.Match{Ports: []dataplane.PortRange{{First: 22, Last: 22}}}},
				}},
				{ID: "policy:ns/web",
					Ingress: []dataplane.Rule{
						{Action: dataplane.Allow, Protocol: u8(6), Src: dataplane.Match{Sets: []string{"s-app"}, NotSets: []string{"s-bad"}},
							Dst: dataplane.Match{Ports: []dataplane.PortRange{{First: 80, Last: 80}, {First: 443, Last: 443}, {First: 8000, Last: 8100}}}},
						{Action: dataplane.Allow, Protocol: u8(17), Dst: dataplane.Match{NotPorts: []dataplane.PortRange{{First: 1000, Last: 2000}}}},
						{Action: dataplane.Allow, Protocol: u8(1), ICMP: &dataplane.ICMPMatch{Type: 8, Code: u8(0)}},
						{Action: dataplane.Allow, IPVersion: 6, Protocol: u8(58), NotICMP: &dataplane.ICMPMatch{Type: 1}},
						{Action: dataplane.Deny, NotProtocol: u8(6), Src: dataplane.Match{NotNets: pfx("10.0.0.0/8", "fd00::/8")}},
					},
					Egress: []dataplane.Rule{{Action: dataplane.Allow, Dst: dataplane.Match{Nets: pfx("0.0.0.0/0")}}},
				},
				{ID: "profile:extra"},
				{ID: "profile:ns", Ingress: []dataplane.Rule{{Action: dataplane.Allow}}, Egress: []dataplane.Rule{{Action: dataplane.Allow}}},
			},
			Sets: []dataplane.IPSet{
				{ID: "s-app", Selector: "app == 'web'", Members: pfx("10.65.1.0/26", "10.65.1.5/32", "10.65.2.9/32", "fd00::1:0/120")},
				{ID: "s-bad", Selector: "bad == 'true'", Members: pfx("10.65.2.9/32")},
			},
			Host: dataplane.HostConfig{EndpointToHostAction: "Accept"},
		},
	}
}

func TestRenderGolden(t *testing.T) {
	for name, d := range goldenCases() {
		t.Run(name, func(t *testing.T) {
			got := Render(d)
			if again := Render(d); again != got {
				t.Fatalf("Render is not deterministic")
			}
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run `go test -run TestRenderGolden -update` to create it)", err)
			}
			if string(want) != got {
				t.Errorf("Render(%s) differs from %s (rerun with -update if intended):\n%s", name, path, got)
			}
		})
	}
}
