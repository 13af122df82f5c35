package calc

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/dataplane"
)

// loadCalculator feeds a snapshot to a new Calculator.
func loadCalculator(s *Snapshot) *Calculator {
	c := NewCalculator(s.Node)
	for i := range s.Profiles {
		c.UpsertProfile(&s.Profiles[i])
	}
	for i := range s.WorkloadEndpoints {
		c.UpsertWorkloadEndpoint(&s.WorkloadEndpoints[i])
	}
	loadMore(c, s)
	for i := range s.GlobalNetworkPolicies {
		c.UpsertGlobalNetworkPolicy(&s.GlobalNetworkPolicies[i])
	}
	for i := range s.NetworkPolicies {
		c.UpsertNetworkPolicy(&s.NetworkPolicies[i])
	}
	for i := range s.IPPools {
		c.UpsertIPPool(&s.IPPools[i])
	}
	for i := range s.Nodes {
		c.UpsertNode(&s.Nodes[i])
	}
	for i := range s.HostEndpoints {
		c.UpsertHostEndpoint(&s.HostEndpoints[i])
	}
	c.SetBlocks(s.Blocks)
	c.SetFelix(s.Felix)
	c.SetHostMTU(s.HostMTU)
	return c
}

// compute runs Compute and checks that a Calculator fed the same state
// agrees, so that every table below tests both.
func compute(t *testing.T, s *Snapshot) *dataplane.Desired {
	t.Helper()
	want := Compute(s)
	got := loadCalculator(s).Desired()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Calculator disagrees with Compute:\n%s", diffDesired(got, want))
	}
	return want
}

func endpointByID(t *testing.T, d *dataplane.Desired, id string) dataplane.Endpoint {
	t.Helper()
	for _, e := range d.Endpoints {
		if e.ID == id {
			return e
		}
	}
	t.Fatalf("no endpoint %q in %+v", id, d.Endpoints)
	return dataplane.Endpoint{}
}

func chainByID(t *testing.T, d *dataplane.Desired, id string) dataplane.PolicyChain {
	t.Helper()
	for _, c := range d.Chains {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no chain %q in %+v", id, chainIDs(d))
	return dataplane.PolicyChain{}
}

func chainIDs(d *dataplane.Desired) []string {
	var ids []string
	for _, c := range d.Chains {
		ids = append(ids, c.ID)
	}
	return ids
}

func setByID(t *testing.T, d *dataplane.Desired, id string) dataplane.IPSet {
	t.Helper()
	for _, s := range d.Sets {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no set %q in %+v", id, d.Sets)
	return dataplane.IPSet{}
}

func TestComputeEmpty(t *testing.T) {
	got := compute(t, &Snapshot{Node: "h1"})
	want := &dataplane.Desired{Host: dataplane.HostConfig{EndpointToHostAction: "Drop", InterfacePrefix: "cali"},
		ControlPlane: dataplane.ControlPlane{Ports: DefaultControlPlanePorts()}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if !reflect.DeepEqual(Compute(nil), want) {
		t.Fatalf("Compute(nil) = %+v", Compute(nil))
	}
}

func TestComputeEndpointBasics(t *testing.T) {
	local := wep("ns1", "a", "h1", "cali1", []string{"fd00::1/128", "10.0.0.2/32", "10.0.0.1", "10.0.0.2/32"}, nil)
	local.Spec.MAC = "02:00:00:00:00:01"
	noIface := wep("ns1", "b", "h1", "", []string{"10.0.0.3/32"}, nil)
	remote := wep("ns1", "c", "h2", "cali2", []string{"10.0.1.1/32"}, nil)
	d := compute(t, &Snapshot{Node: "h1", WorkloadEndpoints: []api.WorkloadEndpoint{remote, noIface, local}})
	want := []dataplane.Endpoint{{
		ID: "ns1/a", Iface: "cali1", MAC: "02:00:00:00:00:01",
		Addrs: pfxs("10.0.0.1/32", "10.0.0.2/32", "fd00::1/128"),
	}}
	if !reflect.DeepEqual(d.Endpoints, want) {
		t.Fatalf("endpoints = %+v, want %+v", d.Endpoints, want)
	}
	wantRoutes := []dataplane.Route{
		{Dst: pfx("10.0.0.1/32"), Type: dataplane.RouteLocal, Iface: "cali1"},
		{Dst: pfx("10.0.0.2/32"), Type: dataplane.RouteLocal, Iface: "cali1"},
		{Dst: pfx("fd00::1/128"), Type: dataplane.RouteLocal, Iface: "cali1"},
	}
	if !reflect.DeepEqual(d.Routes, wantRoutes) {
		t.Fatalf("routes = %+v, want %+v", d.Routes, wantRoutes)
	}
}

func TestComputeLaterDuplicateWins(t *testing.T) {
	a1 := wep("ns", "a", "h1", "cali1", []string{"10.0.0.1/32"}, nil)
	a2 := wep("ns", "a", "h1", "cali9", []string{"10.0.0.9/32"}, nil)
	d := compute(t, &Snapshot{Node: "h1", WorkloadEndpoints: []api.WorkloadEndpoint{a1, a2}})
	if len(d.Endpoints) != 1 || d.Endpoints[0].Iface != "cali9" {
		t.Fatalf("endpoints = %+v, want only the later one", d.Endpoints)
	}
}

func TestComputePolicyOrder(t *testing.T) {
	ep := wep("ns", "a", "h1", "cali1", []string{"10.0.0.1/32"}, map[string]string{"app": "web"})
	s := &Snapshot{
		Node:              "h1",
		WorkloadEndpoints: []api.WorkloadEndpoint{ep},
		GlobalNetworkPolicies: []api.GlobalNetworkPolicy{
			gnp("no-order", nil, "", nil, nil, nil),
			gnp("b", ord(10), "app == 'web'", nil, nil, nil),
			gnp("a", ord(10), "all()", nil, nil, nil),
			gnp("first", ord(-1), "", nil, nil, nil),
			gnp("zzz", ord(5), "", nil, nil, nil),
			gnp("a-unordered", nil, "", nil, nil, nil),
			gnp("other", ord(1), "app == 'db'", nil, nil, nil),
		},
		NetworkPolicies: []api.NetworkPolicy{
			// Same order as gnp zzz: Felix compares "ns/np" with "zzz".
			netpol("ns", "np", ord(5), "", nil, nil, nil),
			netpol("other-ns", "np", ord(0), "", nil, nil, nil),
		},
	}
	d := compute(t, s)
	got := endpointByID(t, d, "ns/a").IngressPolicies
	want := []string{"gnp:first", "policy:ns/np", "gnp:zzz", "gnp:a", "gnp:b", "gnp:a-unordered", "gnp:no-order"}
	if !slices.Equal(got, want) {
		t.Fatalf("ingress policies = %v, want %v", got, want)
	}
	if e := endpointByID(t, d, "ns/a").EgressPolicies; e != nil {
		t.Fatalf("egress policies = %v, want none (types default to Ingress)", e)
	}
}

func TestComputeTypes(t *testing.T) {
	ep := wep("ns", "a", "h1", "cali1", []string{"10.0.0.1/32"}, nil)
	in := []api.Rule{allow()}
	eg := []api.Rule{deny()}
	tests := []struct {
		name            string
		types           []string
		ingress, egress []api.Rule
		wantIn, wantEg  bool
	}{
		{"no rules: ingress", nil, nil, nil, true, false},
		{"ingress rules: ingress", nil, in, nil, true, false},
		{"egress rules only: egress", nil, nil, eg, false, true},
		{"both: both", nil, in, eg, true, true},
		{"explicit egress with ingress rules", []string{"Egress"}, in, nil, false, true},
		{"explicit both, no rules", []string{"Ingress", "Egress"}, nil, nil, true, true},
		{"lower case", []string{"egress"}, nil, nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := compute(t, &Snapshot{
				Node:                  "h1",
				WorkloadEndpoints:     []api.WorkloadEndpoint{ep},
				GlobalNetworkPolicies: []api.GlobalNetworkPolicy{gnp("p", nil, "", tt.types, tt.ingress, tt.egress)},
			})
			e := endpointByID(t, d, "ns/a")
			if got := slices.Contains(e.IngressPolicies, "gnp:p"); got != tt.wantIn {
				t.Errorf("in ingress list: %v, want %v", got, tt.wantIn)
			}
			if got := slices.Contains(e.EgressPolicies, "gnp:p"); got != tt.wantEg {
				t.Errorf("in egress list: %v, want %v", got, tt.wantEg)
			}
			c := chainByID(t, d, "gnp:p")
			if (c.Ingress != nil) != (tt.wantIn && tt.ingress != nil) || (c.Egress != nil) != (tt.wantEg && tt.egress != nil) {
				t.Errorf("chain = %+v: rules of a direction the policy does not apply in must be left out", c)
			}
		})
	}
}

func TestComputeActions(t *testing.T) {
	ep := wep("ns", "a", "h1", "cali1", []string{"10.0.0.1/32"}, nil)
	rules := []api.Rule{{Action: "Log"}, {Action: "Pass"}, {Action: "Deny"}, {Action: "Allow"}}
	d := compute(t, &Snapshot{
		Node:                  "h1",
		WorkloadEndpoints:     []api.WorkloadEndpoint{ep},
		GlobalNetworkPolicies: []api.GlobalNetworkPolicy{gnp("p", nil, "", nil, rules, nil)},
	})
	want := []dataplane.Rule{{Action: dataplane.Log}, {Action: dataplane.Pass}, {Action: dataplane.Deny}, {Action: dataplane.Allow}}
	if got := chainByID(t, d, "gnp:p").Ingress; !reflect.DeepEqual(got, want) {
		t.Fatalf("rules = %+v, want %+v", got, want)
	}
}

func TestComputeNamespaceScoping(t *testing.T) {
	eps := []api.WorkloadEndpoint{
		wep("prod", "db", "h1", "cali1", []string{"10.0.0.1/32"}, map[string]string{"role": "db"}),
		wep("dev", "db", "h2", "cali2", []string{"10.0.0.2/32"}, map[string]string{"role": "db"}),
		wep("prod", "web", "h2", "cali3", []string{"10.0.0.3/32"}, map[string]string{"role": "web"}),
	}
	srcDB := api.Rule{Action: api.ActionAllow, Source: api.EntityRule{Selector: "role == 'db'"}}
	notWeb := api.Rule{Action: api.ActionAllow, Source: api.EntityRule{NotSelector: "role == 'web'"}}
	d := compute(t, &Snapshot{
		Node:                  "h1",
		WorkloadEndpoints:     eps,
		NetworkPolicies:       []api.NetworkPolicy{netpol("prod", "np", nil, "", nil, []api.Rule{srcDB, notWeb}, nil)},
		GlobalNetworkPolicies: []api.GlobalNetworkPolicy{gnp("g", nil, "", nil, []api.Rule{srcDB}, nil)},
	})
	scoped := "(projectcalico.org/namespace == 'prod') && (role == 'db')"
	nsOnly := "projectcalico.org/namespace == 'prod'"
	np := chainByID(t, d, "policy:prod/np")
	wantNP := []dataplane.Rule{
		{Action: dataplane.Allow, Src: dataplane.Match{Sets: []string{setID(t, scoped)}}},
		{Action: dataplane.Allow, Src: dataplane.Match{Sets: []string{setID(t, nsOnly)}, NotSets: []string{setID(t, "role == 'web'")}}},
	}
	if !reflect.DeepEqual(np.Ingress, wantNP) {
		t.Fatalf("NetworkPolicy rules = %+v, want %+v", np.Ingress, wantNP)
	}
	g := chainByID(t, d, "gnp:g")
	wantG := []dataplane.Rule{{Action: dataplane.Allow, Src: dataplane.Match{Sets: []string{setID(t, "role == 'db'")}}}}
	if !reflect.DeepEqual(g.Ingress, wantG) {
		t.Fatalf("GlobalNetworkPolicy rules = %+v, want %+v", g.Ingress, wantG)
	}
	for sel, members := range map[string][]netip.Prefix{
		scoped:          pfxs("10.0.0.1/32"),
		nsOnly:          pfxs("10.0.0.1/32", "10.0.0.3/32"),
		"role == 'web'": pfxs("10.0.0.3/32"),
		"role == 'db'":  pfxs("10.0.0.1/32", "10.0.0.2/32"),
	} {
		s := setByID(t, d, setID(t, sel))
		if !reflect.DeepEqual(s.Members, members) {
			t.Errorf("set %s members = %v, want %v", sel, s.Members, members)
		}
		if s.Selector != canon(t, sel) {
			t.Errorf("set selector = %q, want %q", s.Selector, canon(t, sel))
		}
	}
	// The NetworkPolicy itself only applies in its namespace.
	if e := endpointByID(t, d, "prod/db"); !slices.Equal(e.IngressPolicies, []string{"gnp:g", "policy:prod/np"}) {
		t.Fatalf("policies = %v", e.IngressPolicies)
	}
}

func TestComputeNetworkPolicyOnlyInItsNamespace(t *testing.T) {
	eps := []api.WorkloadEndpoint{
		wep("a", "x", "h1", "cali1", []string{"10.0.0.1/32"}, nil),
		wep("b", "x", "h1", "cali2", []string{"10.0.0.2/32"}, nil),
	}
	d := compute(t, &Snapshot{Node: "h1", WorkloadEndpoints: eps,
		NetworkPolicies: []api.NetworkPolicy{netpol("a", "p", nil, "all()", nil, nil, nil)}})
	if got := endpointByID(t, d, "a/x").IngressPolicies; !slices.Equal(got, []string{"policy:a/p"}) {
		t.Fatalf("a/x policies = %v", got)
	}
	if got := endpointByID(t, d, "b/x").IngressPolicies; got != nil {
		t.Fatalf("b/x policies = %v, want none", got)
	}
}

func TestComputeLabelsAndProfiles(t *testing.T) {
	profiles := []api.Profile{
		profile("p1", map[string]string{"a": "1", "only1": "x"}, []api.Rule{allow()}, nil),
		profile("p2", map[string]string{"a": "2", "b": "2", "only2": "y"}, nil, []api.Rule{allow()}),
	}
	own := map[string]string{"b": "3", "projectcalico.org/namespace": "spoofed"}
	eps := []api.WorkloadEndpoint{
		wep("ns", "both", "h1", "cali1", []string{"10.0.0.1/32"}, own, "p1", "missing", "p2", "p1"),
		wep("ns", "none", "h1", "cali2", []string{"10.0.0.2/32"}, nil),
		wep("ns", "missing", "h1", "cali3", []string{"10.0.0.3/32"}, nil, "missing"),
	}
	sel := "a == '1' && b == '3' && only1 == 'x' && only2 == 'y' && projectcalico.org/namespace == 'ns' && projectcalico.org/orchestrator == 'docker'"
	d := compute(t, &Snapshot{
		Node: "h1", WorkloadEndpoints: eps, Profiles: profiles,
		GlobalNetworkPolicies: []api.GlobalNetworkPolicy{gnp("sel", nil, sel, nil, nil, nil)},
	})
	both := endpointByID(t, d, "ns/both")
	if !slices.Equal(both.IngressPolicies, []string{"gnp:sel"}) {
		t.Fatalf("labels not inherited as Calico does: policies = %v", both.IngressPolicies)
	}
	if !slices.Equal(both.Profiles, []string{"profile:p1", "profile:p2"}) {
		t.Fatalf("profiles = %v, want existing ones in order without repeats", both.Profiles)
	}
	none := endpointByID(t, d, "ns/none")
	if none.IngressPolicies != nil || none.EgressPolicies != nil || none.Profiles != nil {
		t.Fatalf("endpoint with no profile and no policy = %+v, want empty lists (drop)", none)
	}
	if m := endpointByID(t, d, "ns/missing"); m.Profiles != nil {
		t.Fatalf("missing profile contributed %v", m.Profiles)
	}
	if !slices.Equal(chainIDs(d), []string{"gnp:sel", "profile:p1", "profile:p2"}) {
		t.Fatalf("chains = %v", chainIDs(d))
	}
	if c := chainByID(t, d, "profile:p2"); c.Ingress != nil || len(c.Egress) != 1 {
		t.Fatalf("profile chain = %+v", c)
	}
}

func TestComputeNetsFamilies(t *testing.T) {
	mixed := api.Rule{Action: api.ActionAllow, Source: api.EntityRule{Nets: []string{"fd00::/8", "10.0.0.0/8"}}}
	v4only := api.Rule{Action: api.ActionDeny, Destination: api.EntityRule{Nets: []string{"192.168.1.5"}}}
	impossible := api.Rule{Action: api.ActionDeny, IPVersion: intp(6), Source: api.EntityRule{Nets: []string{"10.0.0.0/8"}}}
	notMixed := api.Rule{Action: api.ActionAllow, Destination: api.EntityRule{NotNets: []string{"10.1.0.0/16", "fd01::/16"}}}
	crossSides := api.Rule{Action: api.ActionAllow, Source: api.EntityRule{Nets: []string{"10.0.0.0/8"}},
		Destination: api.EntityRule{Nets: []string{"fd00::/8"}}}
	v6WithNot := api.Rule{Action: api.ActionAllow, IPVersion: intp(6), Source: api.EntityRule{NotNets: []string{"10.0.0.0/8"}}}
	noNets := api.Rule{Action: api.ActionAllow, Source: api.EntityRule{Selector: "a == 'b'"}}
	ep := wep("ns", "a", "h1", "cali1", []string{"10.0.0.1/32"}, nil)
	d := compute(t, &Snapshot{Node: "h1", WorkloadEndpoints: []api.WorkloadEndpoint{ep},
		GlobalNetworkPolicies: []api.GlobalNetworkPolicy{gnp("p", nil, "", nil,
			[]api.Rule{mixed, v4only, impossible, notMixed, crossSides, v6WithNot, noNets}, nil)}})
	want := []dataplane.Rule{
		{Action: dataplane.Allow, IPVersion: 4, Src: dataplane.Match{Nets: pfxs("10.0.0.0/8")}},
		{Action: dataplane.Allow, IPVersion: 6, Src: dataplane.Match{Nets: pfxs("fd00::/8")}},
		{Action: dataplane.Deny, IPVersion: 4, Dst: dataplane.Match{Nets: pfxs("192.168.1.5/32")}},
		{Action: dataplane.Allow, IPVersion: 4, Dst: dataplane.Match{NotNets: pfxs("10.1.0.0/16")}},
		{Action: dataplane.Allow, IPVersion: 6, Dst: dataplane.Match{NotNets: pfxs("fd01::/16")}},
		{Action: dataplane.Allow, IPVersion: 6},
		{Action: dataplane.Allow, Src: dataplane.Match{Sets: []string{setID(t, "a == 'b'")}}},
	}
	if got := chainByID(t, d, "gnp:p").Ingress; !reflect.DeepEqual(got, want) {
		t.Fatalf("rules:\n got %+v\nwant %+v", got, want)
	}
}

func TestComputeProtocolsICMPPorts(t *testing.T) {
	rules := []api.Rule{
		{Action: api.ActionAllow, Protocol: proto("ICMPv6"), ICMP: &api.ICMPFields{Type: intp(128)}},
		{Action: api.ActionAllow, Protocol: proto("ICMP"), ICMP: &api.ICMPFields{Type: intp(8), Code: intp(0)}},
		{Action: api.ActionAllow, Protocol: proto("ICMP"), IPVersion: intp(6)}, // never matches
		{Action: api.ActionAllow, Protocol: proto("TCP"), Destination: api.EntityRule{
			Ports: []api.Port{{MinPort: 80, MaxPort: 80}, {MinPort: 8000, MaxPort: 8080}}}},
		{Action: api.ActionAllow, Protocol: proto("udp"), Source: api.EntityRule{NotPorts: []api.Port{{MinPort: 53, MaxPort: 53}, {PortName: "dns"}}}},
		{Action: api.ActionAllow, Protocol: proto("SCTP"), Destination: api.EntityRule{Ports: []api.Port{{PortName: "http"}}}},
		{Action: api.ActionDeny, Protocol: &api.Protocol{Number: u8(47)}, NotProtocol: proto("UDPLite")},
		{Action: api.ActionDeny, Protocol: proto("17")},
	}
	ep := wep("ns", "a", "h1", "cali1", []string{"10.0.0.1/32"}, nil, "pr")
	d := compute(t, &Snapshot{Node: "h1", WorkloadEndpoints: []api.WorkloadEndpoint{ep},
		Profiles: []api.Profile{profile("pr", nil, rules, nil)}})
	want := []dataplane.Rule{
		{Action: dataplane.Allow, IPVersion: 6, Protocol: u8(58), ICMP: &dataplane.ICMPMatch{Type: 128}},
		{Action: dataplane.Allow, IPVersion: 4, Protocol: u8(1), ICMP: &dataplane.ICMPMatch{Type: 8, Code: u8(0)}},
		{Action: dataplane.Allow, Protocol: u8(6), Dst: dataplane.Match{Ports: []dataplane.PortRange{{First: 80, Last: 80}, {First: 8000, Last: 8080}}}},
		{Action: dataplane.Allow, Protocol: u8(17), Src: dataplane.Match{NotPorts: []dataplane.PortRange{{First: 53, Last: 53}},
			NotPortSets: []string{setIDFor("all() namedPort(dns/17)")}}},
		{Action: dataplane.Allow, Protocol: u8(132), Dst: dataplane.Match{PortSets: []string{setIDFor("all() namedPort(http/132)")}}},
		{Action: dataplane.Deny, Protocol: u8(47), NotProtocol: u8(136)},
		{Action: dataplane.Deny, Protocol: u8(17)},
	}
	if got := chainByID(t, d, "profile:pr").Ingress; !reflect.DeepEqual(got, want) {
		t.Fatalf("rules:\n got %+v\nwant %+v", got, want)
	}
}

func TestComputeSetsShared(t *testing.T) {
	eps := []api.WorkloadEndpoint{
		wep("ns", "a", "h1", "cali1", []string{"10.0.0.1/32"}, map[string]string{"x": "1"}),
		wep("ns", "b", "h2", "cali1", []string{"10.0.0.1/32", "fd00::2/128"}, map[string]string{"x": "1"}),
		wep("ns", "c", "h3", "cali1", []string{"10.0.0.3/32"}, map[string]string{"x": "2"}),
	}
	r1 := api.Rule{Action: api.ActionAllow, Source: api.EntityRule{Selector: "x == '1'"}}
	r2 := api.Rule{Action: api.ActionAllow, Destination: api.EntityRule{Selector: `  x=="1" `}}
	d := compute(t, &Snapshot{Node: "h1", WorkloadEndpoints: eps,
		GlobalNetworkPolicies: []api.GlobalNetworkPolicy{
			gnp("p1", nil, "", nil, []api.Rule{r1}, nil),
			gnp("p2", nil, "", []string{"Egress"}, nil, []api.Rule{r2}),
			// Selects nothing local: its set must not appear.
			gnp("p3", nil, "x == '2'", nil, []api.Rule{{Action: "Allow", Source: api.EntityRule{Selector: "y == 'z'"}}}, nil),
		}})
	want := []dataplane.IPSet{{ID: setID(t, "x == '1'"), Selector: canon(t, "x == '1'"), Members: pfxs("10.0.0.1/32", "fd00::2/128")}}
	if !reflect.DeepEqual(d.Sets, want) {
		t.Fatalf("sets = %+v, want %+v", d.Sets, want)
	}
}

func TestComputeNATAndHost(t *testing.T) {
	yes := true
	d := compute(t, &Snapshot{
		Node: "h1",
		IPPools: []api.IPPool{
			pool("b", "10.1.0.0/16", "", true, false),
			pool("a", "10.0.0.0/16", "", false, false),
			pool("c", "fd00::/48", "", true, false),
			pool("off", "10.2.0.0/16", "", true, true),
		},
		// interfacePrefix is stored only: workload interfaces are cali*.
		Felix: &api.FelixConfigurationSpec{DefaultEndpointToHostAction: "ACCEPT", VXLANEnabled: &yes, InterfacePrefix: "tap"},
	})
	wantNAT := dataplane.NATConfig{
		MasqueradePools: pfxs("10.1.0.0/16", "fd00::/48"),
		AllPools:        pfxs("10.0.0.0/16", "10.1.0.0/16", "10.2.0.0/16", "fd00::/48"),
	}
	if !reflect.DeepEqual(d.NAT, wantNAT) {
		t.Fatalf("NAT = %+v, want %+v", d.NAT, wantNAT)
	}
	if d.Host != (dataplane.HostConfig{EndpointToHostAction: "Accept", InterfacePrefix: "cali"}) {
		t.Fatalf("host = %+v", d.Host)
	}
	if d.VXLAN != nil {
		t.Fatalf("VXLAN without a tunnel address on this node: %+v", d.VXLAN)
	}
}

func TestComputeVXLAN(t *testing.T) {
	nodes := []api.Node{
		node("h1", "10.0.0.1/24", "192.168.0.1", "66:00:00:00:00:01"),
		node("h2", "10.0.0.2/24", "192.168.1.1", ""),                  // same subnet
		node("h3", "10.0.5.3/24", "192.168.2.1", "66:00:00:00:00:03"), // other subnet
		node("h4", "10.0.6.4/24", "", ""),                             // no tunnel yet
	}
	blocks := []Block{
		{CIDR: pfx("192.168.0.0/26"), Node: "h1"},
		{CIDR: pfx("192.168.1.0/26"), Node: "h2"},
		{CIDR: pfx("192.168.2.0/26"), Node: "h3"},
		{CIDR: pfx("192.168.3.0/26"), Node: "h4"},
		{CIDR: pfx("192.168.4.0/26"), Node: ""},
	}
	eps := []api.WorkloadEndpoint{
		// Borrowed by h3 from h1's block, and from an unaffine block.
		wep("ns", "borrow", "h3", "caliB", []string{"192.168.0.9/32"}, nil),
		wep("ns", "borrow2", "h3", "caliC", []string{"192.168.4.2/32"}, nil),
		wep("ns", "own", "h3", "caliD", []string{"192.168.2.5/32"}, nil),
		wep("ns", "local", "h1", "cali1", []string{"192.168.0.2/32"}, nil),
	}
	h2mac := vxlanV4.vtepMAC("h2", nil)
	peers := []dataplane.VTEP{
		{NodeIP: addr("10.0.0.2"), TunnelIP: addr("192.168.1.1"), MAC: h2mac},
		{NodeIP: addr("10.0.5.3"), TunnelIP: addr("192.168.2.1"), MAC: "66:00:00:00:00:03"},
	}
	vx := func(dst, gw string) dataplane.Route {
		return dataplane.Route{Dst: pfx(dst), Type: dataplane.RouteVXLAN, Iface: "vxlan.calico", Gateway: addr(gw)}
	}
	local := dataplane.Route{Dst: pfx("192.168.0.2/32"), Type: dataplane.RouteLocal, Iface: "cali1"}
	black := dataplane.Route{Dst: pfx("192.168.0.0/26"), Type: dataplane.RouteBlackhole}

	tests := []struct {
		name       string
		mode       string
		felix      *api.FelixConfigurationSpec
		mtu        int
		nodes      []api.Node
		wantRoutes []dataplane.Route
		wantMTU    int
		noVXLAN    bool
	}{
		{name: "CrossSubnet", mode: "CrossSubnet", nodes: nodes, wantMTU: 1450, wantRoutes: []dataplane.Route{
			black, local, vx("192.168.0.9/32", "192.168.2.1"), vx("192.168.2.0/26", "192.168.2.1"), vx("192.168.4.2/32", "192.168.2.1"),
		}},
		{name: "Always", mode: "Always", nodes: nodes, mtu: 9000, wantMTU: 8950, wantRoutes: []dataplane.Route{
			black, local, vx("192.168.0.9/32", "192.168.2.1"), vx("192.168.1.0/26", "192.168.1.1"),
			vx("192.168.2.0/26", "192.168.2.1"), vx("192.168.4.2/32", "192.168.2.1"),
		}},
		{name: "Never", mode: "Never", nodes: nodes, noVXLAN: true, wantRoutes: []dataplane.Route{black, local}},
		{name: "disabled by Felix", mode: "Always", nodes: nodes, felix: &api.FelixConfigurationSpec{VXLANEnabled: new(bool)},
			noVXLAN: true, wantRoutes: []dataplane.Route{black, local}},
		{name: "no tunnel address here yet", mode: "Always", noVXLAN: true,
			nodes:      append([]api.Node{node("h1", "10.0.0.1/24", "", "")}, nodes[1:]...),
			wantRoutes: []dataplane.Route{black, local}},
		{name: "Felix MTU and VNI", mode: "Always", nodes: nodes, mtu: 9000, wantMTU: 1400,
			felix: &api.FelixConfigurationSpec{VXLANMTU: intp(1400), VXLANVNI: intp(7), VXLANPort: intp(8472)},
			wantRoutes: []dataplane.Route{
				black, local, vx("192.168.0.9/32", "192.168.2.1"), vx("192.168.1.0/26", "192.168.1.1"),
				vx("192.168.2.0/26", "192.168.2.1"), vx("192.168.4.2/32", "192.168.2.1"),
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := compute(t, &Snapshot{
				Node: "h1", Nodes: tt.nodes, Blocks: blocks, WorkloadEndpoints: eps,
				IPPools: []api.IPPool{pool("p", "192.168.0.0/16", tt.mode, false, false)},
				Felix:   tt.felix, HostMTU: tt.mtu,
			})
			if !reflect.DeepEqual(d.Routes, tt.wantRoutes) {
				t.Errorf("routes:\n got %+v\nwant %+v", d.Routes, tt.wantRoutes)
			}
			if tt.noVXLAN {
				if d.VXLAN != nil {
					t.Errorf("VXLAN = %+v, want none", d.VXLAN)
				}
				return
			}
			want := &dataplane.VXLANConfig{VNI: 4096, Port: 4789, MTU: tt.wantMTU, LocalIP: addr("10.0.0.1"),
				TunnelIP: addr("192.168.0.1"), MAC: "66:00:00:00:00:01", Peers: peers}
			if tt.felix != nil && tt.felix.VXLANVNI != nil {
				want.VNI, want.Port = 7, 8472
			}
			if !reflect.DeepEqual(d.VXLAN, want) {
				t.Errorf("VXLAN = %+v, want %+v", d.VXLAN, want)
			}
		})
	}
}

func TestVTEPMACDerived(t *testing.T) {
	// Felix's rule: 0x66 ("f") then the first five bytes of SHA-1(node
	// name); `echo -n h2 | sha1sum` starts bf1c365741.
	if got := vxlanV4.vtepMAC("h2", nil); got != "66:bf:1c:36:57:41" {
		t.Fatalf("derived MAC = %q, want 66:bf:1c:36:57:41", got)
	}
	n := node("h2", "", "", "66:AA:00:00:00:01")
	if got := vxlanV4.vtepMAC("h2", &n); got != "66:aa:00:00:00:01" {
		t.Fatalf("published MAC = %q", got)
	}
	// IPv6: SHA-1 of the name with "-v6" appended (`echo -n h2-v6 |
	// sha1sum` starts 6a97eec14e), and the Node's vxlanTunnelMACAddrV6.
	if got := vxlanV6.vtepMAC("h2", &n); got != "66:6a:97:ee:c1:4e" {
		t.Fatalf("derived IPv6 MAC = %q, want 66:6a:97:ee:c1:4e", got)
	}
	n.Spec.VXLANTunnelMACAddrV6 = "66:BB:00:00:00:02"
	if got := vxlanV6.vtepMAC("h2", &n); got != "66:bb:00:00:00:02" {
		t.Fatalf("published IPv6 MAC = %q", got)
	}
}

// An IPv6 pool in VXLAN mode gets its own device, vxlan-v6.calico, over the
// IPv6 underlay, with the Node's IPv6 VTEP fields; the IPv4 device is not
// created for it.
func TestComputeVXLANv6(t *testing.T) {
	node6 := func(name, ip6, tunnel, mac string) api.Node {
		n := node(name, "", "", "")
		n.Spec.BGP = &api.NodeBGPSpec{IPv6Address: ip6}
		n.Spec.IPv6VXLANTunnelAddr, n.Spec.VXLANTunnelMACAddrV6 = tunnel, mac
		return n
	}
	nodes := []api.Node{
		node6("h1", "fd00:99:1::10/64", "fd10::1", "66:00:00:00:00:01"),
		node6("h2", "fd00:99:1::11/64", "fd10::41", ""),                  // same subnet
		node6("h3", "fd00:99:2::10/64", "fd10::81", "66:00:00:00:00:03"), // other subnet
		node6("h4", "fd00:99:3::10/64", "", ""),                          // no tunnel yet
	}
	blocks := []Block{
		{CIDR: pfx("fd10::/122"), Node: "h1"},
		{CIDR: pfx("fd10::40/122"), Node: "h2"},
		{CIDR: pfx("fd10::80/122"), Node: "h3"},
		{CIDR: pfx("fd10::c0/122"), Node: "h4"},
	}
	eps := []api.WorkloadEndpoint{
		wep("ns", "borrow", "h3", "caliB", []string{"fd10::9/128"}, nil),
		wep("ns", "local", "h1", "cali1", []string{"fd10::2/128"}, nil),
	}
	vx := func(dst, gw string) dataplane.Route {
		return dataplane.Route{Dst: pfx(dst), Type: dataplane.RouteVXLAN, Iface: "vxlan-v6.calico", Gateway: addr(gw)}
	}
	local := dataplane.Route{Dst: pfx("fd10::2/128"), Type: dataplane.RouteLocal, Iface: "cali1"}
	black := dataplane.Route{Dst: pfx("fd10::/122"), Type: dataplane.RouteBlackhole}
	peers := []dataplane.VTEP{
		{NodeIP: addr("fd00:99:1::11"), TunnelIP: addr("fd10::41"), MAC: vxlanV6.vtepMAC("h2", nil)},
		{NodeIP: addr("fd00:99:2::10"), TunnelIP: addr("fd10::81"), MAC: "66:00:00:00:00:03"},
	}
	tests := []struct {
		name       string
		mode       string
		felix      *api.FelixConfigurationSpec
		mtu        int
		wantRoutes []dataplane.Route
		wantMTU    int
	}{
		{name: "Always", mode: "Always", mtu: 1500, wantMTU: 1430, wantRoutes: []dataplane.Route{
			black, local, vx("fd10::9/128", "fd10::81"), vx("fd10::40/122", "fd10::41"), vx("fd10::80/122", "fd10::81"),
		}},
		{name: "CrossSubnet", mode: "CrossSubnet", wantMTU: 1430, wantRoutes: []dataplane.Route{
			black, local, vx("fd10::9/128", "fd10::81"), vx("fd10::80/122", "fd10::81"),
		}},
		// vxlanEnabled is Felix's IPv4 switch; vxlanMTUV6 is the IPv6 MTU.
		{name: "Felix settings", mode: "Always", mtu: 9000, wantMTU: 8000,
			felix: &api.FelixConfigurationSpec{VXLANEnabled: new(bool), VXLANMTU: intp(1400), VXLANMTUV6: intp(8000)},
			wantRoutes: []dataplane.Route{
				black, local, vx("fd10::9/128", "fd10::81"), vx("fd10::40/122", "fd10::41"), vx("fd10::80/122", "fd10::81"),
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := compute(t, &Snapshot{
				Node: "h1", Nodes: nodes, Blocks: blocks, WorkloadEndpoints: eps,
				IPPools: []api.IPPool{pool("p6", "fd10::/64", tt.mode, false, false)},
				Felix:   tt.felix, HostMTU: tt.mtu,
			})
			if !reflect.DeepEqual(d.Routes, tt.wantRoutes) {
				t.Errorf("routes:\n got %+v\nwant %+v", d.Routes, tt.wantRoutes)
			}
			if d.VXLAN != nil {
				t.Errorf("IPv4 VXLAN = %+v, want none (no IPv4 pool uses VXLAN)", d.VXLAN)
			}
			want := &dataplane.VXLANConfig{VNI: 4096, Port: 4789, MTU: tt.wantMTU, LocalIP: addr("fd00:99:1::10"),
				TunnelIP: addr("fd10::1"), MAC: "66:00:00:00:00:01", Peers: peers}
			if !reflect.DeepEqual(d.VXLANV6, want) {
				t.Errorf("VXLANV6 = %+v, want %+v", d.VXLANV6, want)
			}
		})
	}
}

// namespaceSelector and serviceAccountSelector are refused by validation
// (namespaces and service accounts carry no labels here), but calc still
// gives them Calico's meaning rather than ignoring them: namespaces and
// service accounts are seen with only their projectcalico.org/name label.
func TestComputeNamespaceAndServiceAccountSelectors(t *testing.T) {
	a := wep("prod", "a", "h1", "cali1", []string{"10.0.0.1/32"}, map[string]string{"x": "1"})
	a.Spec.ServiceAccountName = "sa1"
	b := wep("dev", "b", "h2", "cali2", []string{"10.0.0.2/32"}, map[string]string{"x": "1"})
	rules := []api.Rule{
		{Action: "Allow", Source: api.EntityRule{Selector: "x == '1'", NamespaceSelector: "projectcalico.org/name == 'dev'"}},
		{Action: "Allow", Source: api.EntityRule{NamespaceSelector: "global()"}},
		{Action: "Allow", Source: api.EntityRule{NamespaceSelector: "all()"}},
	}
	g := gnp("g", nil, "", nil, rules, nil)
	g.Spec.ServiceAccountSelector = "projectcalico.org/name == 'sa1'"
	n := netpol("prod", "n", nil, "", nil, rules[:1], nil)
	d := compute(t, &Snapshot{Node: "h1", WorkloadEndpoints: []api.WorkloadEndpoint{a, b},
		GlobalNetworkPolicies: []api.GlobalNetworkPolicy{g}, NetworkPolicies: []api.NetworkPolicy{n}})
	if got := endpointByID(t, d, "prod/a").IngressPolicies; !slices.Equal(got, []string{"gnp:g", "policy:prod/n"}) {
		t.Fatalf("policies = %v", got)
	}
	want := map[string][]netip.Prefix{
		`x == "1" && namespaceSelector(projectcalico.org/name == "dev")`: pfxs("10.0.0.2/32"),
		`namespaceSelector(global())`:                                    nil,
		`namespaceSelector(all())`:                                       pfxs("10.0.0.1/32", "10.0.0.2/32"),
	}
	if len(d.Sets) != len(want) {
		t.Fatalf("sets = %+v", d.Sets)
	}
	for _, s := range d.Sets {
		w, ok := want[s.Selector]
		if !ok || !reflect.DeepEqual(s.Members, w) || s.ID != setIDFor(s.Selector) {
			t.Errorf("set %+v unexpected (want members %v)", s, w)
		}
	}
	// The NetworkPolicy's rule uses the same set: a namespaceSelector
	// replaces the confinement to the policy's own namespace.
	if r := chainByID(t, d, "policy:prod/n").Ingress[0]; r.Src.Sets[0] != chainByID(t, d, "gnp:g").Ingress[0].Src.Sets[0] {
		t.Fatalf("NetworkPolicy rule with namespaceSelector: %+v", r)
	}
}
